"""Write the report: report.json and a self-contained index.html (plots and thumbnails inlined)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facedouble.io.atomic import atomic_write_json, atomic_write_text

PLOTTED = (("pose_error", "pose error (deg)"), ("mouth_error", "mouth error (IOD)"),
           ("eyes_error", "eyes error (IOD)"), ("identity_to_source", "identity distance to source"),
           ("identity_to_target", "identity distance to target"), ("residual_flicker", "residual flicker"),
           ("gaze_error", "gaze error (eye widths)"), ("seam_score", "seam score, render/target"),
           ("seam_step", "seam step (L*)"),
           ("ssim", "face SSIM"), ("occluder_untouched", "occluder pixels untouched"))


def _png_data_uri(image_rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def _plot(rows: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(PLOTTED), 1, figsize=(9, 1.7 * len(PLOTTED)), sharex=True)
    for ax, (key, label) in zip(axes, PLOTTED, strict=True):
        pts = [(r["frame"], r[key]) for r in rows if key in r and np.isfinite(r[key])]
        if pts:
            ax.plot(*zip(*pts, strict=True), lw=1.2, marker=".", ms=3)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def face_thumb(frame: np.ndarray, landmarks: np.ndarray | None, size: int = 128) -> np.ndarray:
    """A size x size thumbnail of the face around `landmarks` (the whole frame without them)."""
    if landmarks is None:
        return cv2.resize(frame, (size, size))
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
    mat = np.array([[size / (2 * half), 0, size / 2 - cx * size / (2 * half)],
                    [0, size / (2 * half), size / 2 - cy * size / (2 * half)]])
    return cv2.warpAffine(frame, mat, (size, size), flags=cv2.INTER_AREA)


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.json and index.html into `out_dir`; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thumbs = report["_thumbs"]
    public = {k: v for k, v in report.items() if k != "_thumbs"}
    atomic_write_json(out / "report.json", public)
    s = public["summary"]

    def fmt(value: Any) -> str:
        if isinstance(value, dict):
            return f"mean {value['mean']:.3f} · median {value['median']:.3f} · max {value['max']:.3f}"
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape(str(value))

    rows_html = "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>"
                        for k, v in s.items() if k not in ("worst_frames", "flicker"))  # flicker: an alias
    worst_html = []
    for key, frames in s["worst_frames"].items():
        tiles = []
        for idx in frames:
            pair = thumbs[idx]
            value = next(row.get(key) for row in public["frames"] if row["frame"] == idx)
            tiles.append(f'<figure><img src="{_png_data_uri(pair)}" alt="frame {idx}">'
                         f"<figcaption>frame {idx}: {value:.3f}</figcaption></figure>")
        worst_html.append(f"<h3>{html.escape(key)}</h3><div class=tiles>{''.join(tiles)}</div>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>facedouble report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.tiles{{display:flex;flex-wrap:wrap;gap:8px}}
figure{{margin:0}}figcaption{{font-size:12px}}</style></head><body>
<h1>facedouble quality report</h1>
<p>render <code>{html.escape(public['render'])}</code> · target <code>{html.escape(public['target'])}</code>
· source <code>{html.escape(public['source'])}</code></p>
<h2>Summary</h2><table id="summary">{rows_html}</table>
<h2>Metrics over time</h2><img id="plots" src="{_plot(public['frames'])}" alt="metrics over time">
<h2>Worst frames (render | target)</h2>{''.join(worst_html)}
<script type="application/json" id="data">{html.escape(json.dumps(s))}</script>
</body></html>"""
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
