"""Face types: how much of the head an aligned crop covers.

The crop is a similarity transform that maps the landmark template (a mean face in a unit square
spanning brows to chin) into the output square, shrunk by a padding factor per face type:

| type  | padding | covers                                  |
|-------|---------|-----------------------------------------|
| half  | 0.00    | brows to lower lip, eye corner to corner |
| mid   | 0.10    | brows to chin                            |
| full  | 0.25    | the whole face from forehead to chin     |
| whole | 0.45    | face plus forehead and ears              |
| head  | 0.75    | the whole head with hair                 |

Padding p means the template's unit square occupies the central 1/(1+2p) of the output side.
The template is shifted up (FACE_TYPE_SHIFT) so that the chin, below the template, is included.
"""

from __future__ import annotations

FACE_TYPES: dict[str, float] = {
    "half": 0.0,
    "mid": 0.10,
    "full": 0.25,
    "whole": 0.45,
    "head": 0.75,
}

# Vertical shift (fraction of the unit square, negative = up) that centres the covered area.
FACE_TYPE_SHIFT: dict[str, float] = {"half": 0.0, "mid": -0.08, "full": -0.12, "whole": -0.12, "head": -0.1}
