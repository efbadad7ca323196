"""facedouble studio: a local web app over the same Python API as the CLI (see `facedouble studio`)."""
