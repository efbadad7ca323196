"""Input/output shared by all stages: video reading, atomic writes."""
