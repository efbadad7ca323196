"""Trust's low policies, beside the faceset: the content guard extract calls and the workspace keys."""
