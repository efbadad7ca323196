"""facedouble: face replacement for film and video work, with consent and provenance built in."""

__version__ = "0.1.0"
