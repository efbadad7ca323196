"""Verify view logic: which workspace files can be verified, and the verdict of one (facedouble.trust.verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facedouble.studio.paths import STUDIO_DIR, relative
from facedouble.studio.workspace import CLIP_SUFFIXES

VERIFIABLE = (*CLIP_SUFFIXES, ".png", ".jpg", ".jpeg")
MAX_LISTED = 500


def candidates(workspace: Path) -> list[str]:
    """Media files of the workspace (renders first), skipping the studio's state and merge work folders."""
    found = []
    for path in sorted(workspace.rglob("*")):
        rel = relative(workspace, path)
        parts = Path(rel).parts
        if any(p.startswith(".") or p.endswith(".parts") or p == STUDIO_DIR for p in parts) or len(parts) > 4:
            continue
        if path.is_file() and path.suffix.lower() in VERIFIABLE and "facesets" not in parts[:1]:
            found.append(rel)
        if len(found) >= MAX_LISTED:
            break
    return sorted(found, key=lambda r: ("render" not in r.lower(), r))


def verdict(workspace: Path, path: Path) -> dict[str, Any]:
    """The full `facedouble verify --json` report of `path`, with the workspace's key and trust list."""
    from facedouble.trust.verify import format_report, verify_file

    report = verify_file(path, workspace=workspace)
    report["file"] = relative(workspace, path)
    report["text"] = format_report(report)
    return report
