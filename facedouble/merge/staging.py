"""A render appears under its final name only once it is finished: joined, recorded and signed.

`finalize` joins the segments into a staging folder inside the work folder, the finalize hooks (render
record, C2PA signature) run on the file there, and only then is it moved beside its record at its final name
(a rename on the same file system). A kill -9 between joining and signing used to leave an unsigned video
under the final name (issue 16's kill drills); now it leaves the staging folder, which the next run empties.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from facedouble.io.atomic import remove_temps
from facedouble.merge.config import Outputs

STAGE_DIR = ".finalizing"


def stage(outputs: Outputs) -> Outputs:
    """`outputs` with the video moved into the work folder's (emptied) staging folder, under the same name."""
    remove_temps(outputs.work_dir())  # segments whose writer was killed (finalize holds the exclusive lock)
    if outputs.video is None:
        return outputs
    remove_temps(outputs.video.parent, outputs.video.name)  # also the temp files of what sits beside it
    folder = outputs.work_dir() / STAGE_DIR
    shutil.rmtree(folder, ignore_errors=True)  # what a killed finalize left
    folder.mkdir(parents=True)
    return dataclasses.replace(outputs, video=folder / outputs.video.name)


def publish(staged: Outputs, outputs: Outputs) -> None:
    """Move the staged video and what the hooks wrote beside it (the record) to the final names, video last."""
    if outputs.video is None or staged.video is None or staged.video == outputs.video:
        return
    folder = staged.video.parent
    for path in sorted(folder.iterdir()):
        if path != staged.video and path.is_file() and ".tmp" not in path.name:
            os.replace(path, outputs.video.parent / path.name)
    os.replace(staged.video, outputs.video)
    shutil.rmtree(folder, ignore_errors=True)
