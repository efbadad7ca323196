"""What a workspace folder holds: clips, facesets, models, renders and studio jobs, found by looking."""

from __future__ import annotations

import os
from pathlib import Path

from facedouble.faceset.store import FACE_SUFFIXES, REJECTS_DIR
from facedouble.studio.paths import STUDIO_DIR, relative

CLIP_SUFFIXES = (".mpg", ".mp4", ".mkv", ".mov", ".avi", ".webm")
MODEL_SUFFIXES = (".safetensors",)
MODEL_MARKER = "latest.json"  # a trained model's folder (facedouble.nn.checkpoint.LATEST)
MAX_DEPTH = 3  # workspaces are shallow; a deep walk of a media drive would stall the page


def _is_faceset(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.is_file() and e.name.lower().endswith(FACE_SUFFIXES) and not e.name.startswith(".") for e in it)


def scan_workspace(workspace: Path) -> dict:
    """Workspace-relative paths of clips, facesets (with face counts), models and renders."""
    out: dict = {"clips": [], "facesets": [], "models": [], "renders": []}
    root = workspace.resolve()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        if folder != root and (folder / MODEL_MARKER).is_file():
            continue  # a model folder (its preview.png is no face; training.model_dirs lists it)
        if folder != root and _is_faceset(folder):
            n = sum(1 for e in os.scandir(folder) if e.name.lower().endswith(FACE_SUFFIXES))
            out["facesets"].append({"path": relative(root, folder), "faces": n})
            continue  # a faceset's subfolders are its rejects and debug frames
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith(".") or e.name in (STUDIO_DIR, REJECTS_DIR):
                continue
            path = Path(e.path)
            if e.is_dir(follow_symlinks=False):
                if depth + 1 < MAX_DEPTH:
                    stack.append((path, depth + 1))
            elif e.name.lower().endswith(CLIP_SUFFIXES):
                kind = "renders" if "render" in relative(root, path).lower() else "clips"
                out[kind].append(relative(root, path))
            elif e.name.lower().endswith(MODEL_SUFFIXES):
                out["models"].append(relative(root, path))
    out["facesets"].sort(key=lambda f: f["path"])
    return out
