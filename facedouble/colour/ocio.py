"""Colour management (OpenColorIO): the plate's colour space <-> the model's working space.

The implementation is `facedouble.io.ocio`: the one frame reader converts plates as it decodes them and io
is the package's lowest floor (tests/test_layers.py), so the code lives there; this module is its name
among the colour tools.
"""

from facedouble.io.ocio import DEFAULT_CONFIG, WORKING_SPACE, ColourConverter, canonical_space, load_config

__all__ = ["DEFAULT_CONFIG", "WORKING_SPACE", "ColourConverter", "canonical_space", "load_config"]
