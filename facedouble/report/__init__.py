"""Stage 6: measured quality report of a render against its target clip and source identity."""
