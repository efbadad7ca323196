"""Face types: how much of the head an aligned crop covers.

The crop is a similarity transform that maps the landmark template (a mean face in a unit square
spanning brows to chin) into the output square, shrunk by a padding factor per face type:

| type  | padding | covers                                  |
|-------|---------|-----------------------------------------|
| half  | 0.00    | brows to chin, cheek to cheek            |
| mid   | 0.0675  | half plus a margin                       |
| full  | 0.2109  | the whole face, a little forehead        |
| whole | 0.40    | face plus forehead and ears              |
| head  | 0.70    | the whole head with some hair            |

Padding p means the template's unit square occupies the central 1/(1+2p) of the output side.
`full` and larger types are shifted up a little so the forehead is included.
"""

from __future__ import annotations

FACE_TYPES: dict[str, float] = {
    "half": 0.0,
    "mid": 0.0675,
    "full": 0.2109375,
    "whole": 0.40,
    "head": 0.70,
}

# Vertical shift (fraction of the unit square, negative = up) that centres the covered area.
FACE_TYPE_SHIFT: dict[str, float] = {"half": 0.0, "mid": 0.0, "full": -0.05, "whole": -0.12, "head": -0.20}
