"""Provenance of renders: the merge hooks that mark every output as synthetic.

In frame order (merge's post-composite hook, every shard): the explicit-content guard on sampled frames,
the invisible watermark in each face, and the optional visible label. The mark's face alignment (detector and
landmarks, most of its cost) runs earlier, on merge's compositing threads beside the model (the prepare hook),
where it depends on the frame alone (the default); the mark itself keeps state from frame to frame and stays
in order. The mark covers the aligned face
square (forehead to chin, about the face box), not only the matte, so pixels near the face but outside
the matte change by the (invisible) mark; the rest of the frame is untouched. After the video is joined:
the render record (in the MP4's metadata, beside the output, inside each PNG) and, as the very last
step, the C2PA manifest signed with the user's certificate (remuxing or re-encoding would strip it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from facedouble.errors import FacedoubleError, PolicyError
from facedouble.merge.pipeline import FrameContext, MergeHooks, MergeResult, clip_digest
from facedouble.policy.guard import StreamGuard
from facedouble.trust import c2pa_sign, record
from facedouble.trust.label import apply_label
from facedouble.trust.watermark import Watermarker, WatermarkKey

CERTS_DIR = "certs"
WATERMARK_ALIGNMENT = "watermark_alignment"  # prepare -> post_composite: (image aligned on, alignments)
PREVIEW_LABEL = "SYNTHETIC PREVIEW"  # burnt into every preview, whatever --label says (a preview is never unmarked)


def check_consent(model: Any, workspace: str | Path | None = None) -> dict[str, Any]:
    """The model's consent, re-checked against the workspace's record now (the gate of renders and previews).

    PolicyError when the model carries none, or the record is unknown, changed, expired or withdrawn, or
    (a model loaded from a checkpoint) its consent seal does not verify with the workspace's key.
    """
    from facedouble.consent.records import check_model_consent
    from facedouble.consent.seal import check_seal

    consent = getattr(model, "consent", None)
    check_model_consent(consent, Path(workspace) if workspace is not None else None)
    seal = getattr(model, "consent_seal", None)
    if seal is not None:  # None only for in-memory stand-ins; a checkpoint without a seal carries ""
        check_seal(consent, str(model.model_hash), seal, workspace)
    return consent


def render_preview(model: Any, faceset: str | Path, index: int, *, workspace: str | Path | None = None,
                   config: Any = None, rules: list | None = None, clip: str | Path | None = None,
                   label: str | None = None, plan: Any = None, frame: Any = None) -> np.ndarray:
    """Frame `index` of the target swapped and marked: the one preview path of the CLI and the studio.

    The same consent check as a render (the model's record in `workspace`, default $FACEDOUBLE_WORKSPACE:
    unknown, changed, expired or withdrawn is refused), the explicit-content guard on the frame, the
    invisible watermark in each face (the render's payload for these settings) and the visible label
    ("SYNTHETIC PREVIEW", or `label` followed by it). Returns the marked RGB uint8 frame; the caller
    writes or shows it. Raises PolicyError (consent, explicit content) and FacedoubleError (bad input).

    `plan` (from facedouble.merge.pipeline.load_plan for this model, faceset, config and clip) spares a
    caller that previews many frames re-reading the shot plan on each call; every trust step above still
    runs on every call, and the payload is taken from the plan's clip, the frames it renders. `frame`
    (facedouble.io.video.Frame) is that clip's frame `index` already decoded, for a caller that keeps its
    decoder open while scrubbing; it is swapped and marked like one read here.
    """
    from facedouble.config import to_dict
    from facedouble.merge.pipeline import MergeConfig, load_plan, preview

    check_consent(model, workspace)
    config = (config or MergeConfig()).validate()
    if plan is None:
        plan = load_plan(model, faceset, config, clip)
    elif int(plan.resolution) != int(model.resolution) or (
            clip is not None and Path(clip).resolve() != Path(plan.clip).resolve()):
        raise FacedoubleError("the shot plan passed to the preview was built for another model or clip; "
                              "build it with load_plan for this one")
    text = f"{label} - {PREVIEW_LABEL}" if label else PREVIEW_LABEL
    marks = RenderProvenance.for_render(model_hash=model.model_hash, clip=plan.clip, settings=to_dict(config),
                                        fps=float(plan.fps), frame_count=1, cert=None, key=None, label=text,
                                        workspace=workspace)
    return preview(model, faceset, index, marks.hooks(), config, rules, clip, plan=plan, frame=frame)


def payload_for(model_hash: str, clip: Path, settings: dict[str, Any]) -> int:
    """Watermark payload id of a render: the same for every shard of it, different between renders.

    The clip enters by its content digest (a regraded plate of the same size is another render)."""
    key = json.dumps([model_hash, clip_digest(clip), settings], sort_keys=True, default=str)
    return int(hashlib.sha256(key.encode()).hexdigest()[:4], 16)


def find_signer(workspace: Path, cert: str | Path | None, key: str | Path | None) -> tuple[Path, Path]:
    """The signing certificate and key: given ones, else the workspace's (`facedouble certs init`)."""
    if cert and key:
        return Path(cert), Path(key)
    if cert or key:
        raise PolicyError("give both --cert and --key")
    found = Path(workspace) / CERTS_DIR / "signer.pem", Path(workspace) / CERTS_DIR / "signer.key"
    if not all(p.exists() for p in found):
        raise PolicyError(f"every render is C2PA-signed: give --cert/--key, or make a test signer with "
                          f"`facedouble certs init --out {Path(workspace) / CERTS_DIR}`")
    return found


def _segment_layout(settings: dict[str, Any], frame_count: int | None,
                    first_number: int = 0) -> tuple[int, int] | None:
    """(first frame, frames per segment) of a render with these merge settings; None if they do not say."""
    from facedouble.config import from_dict
    from facedouble.merge.config import MergeConfig

    try:
        config = from_dict(MergeConfig, settings)
        return config.window(frame_count, first_number)[0], int(config.segment_frames)
    except (FacedoubleError, TypeError, ValueError, KeyError):
        return None


class RenderProvenance:
    """Guard, watermark, label, record and signature for one render; `hooks()` plugs them into merge."""

    def __init__(self, *, payload_id: int, fps: float, frame_count: int | None, cert: Path | None,
                 key: Path | None, label: str | None = None, workspace: str | Path | None = None,
                 watermark_key: WatermarkKey | None = None):
        # cert/key None: marks frames only (a preview); finalize then refuses to run unsigned.
        # The watermark is keyed by the workspace's secret (made at the first marked render).
        self.payload_id, self.label = payload_id, label
        self.cert, self.key = (Path(cert) if cert else None), (Path(key) if key else None)
        self.watermark_key = watermark_key or WatermarkKey.for_workspace(workspace, create=True)
        self.watermarker = Watermarker(payload_id, self.watermark_key, fps=fps)
        self.guard = StreamGuard(fps, frame_count, "merge output")
        self._record: dict[str, Any] | None = None

    @classmethod
    def for_render(cls, *, model_hash: str, clip: Path, settings: dict[str, Any], fps: float,
                   frame_count: int | None, cert: Path | None, key: Path | None,
                   label: str | None = None, workspace: str | Path | None = None,
                   watermark_key: WatermarkKey | None = None, first_number: int = 0) -> RenderProvenance:
        """Provenance of the render of `clip` with this model and settings (the same payload in every shard);
        the watermark is keyed by `watermark_key`, default the workspace's (FACEDOUBLE_WORKSPACE if None)."""
        provenance = cls(payload_id=payload_for(model_hash, clip, settings), fps=fps, frame_count=frame_count,
                         cert=cert, key=key, label=label, workspace=workspace, watermark_key=watermark_key)
        provenance.segments = _segment_layout(settings, frame_count, first_number)
        return provenance

    def hooks(self) -> MergeHooks:
        """Merge hooks running this provenance."""
        return MergeHooks(post_composite=[self.post_composite], prepare=[self.prepare], metadata=[self.metadata],
                          finalize=[self.finalize])

    @staticmethod
    def _faces(ctx: FrameContext) -> list[tuple]:
        return [(face["box_xyxy"], face.get("track_id", 0), face.get("frame_to_aligned")) for face in ctx.faces]

    def prepare(self, ctx: FrameContext) -> dict[str, Any] | None:
        """On merge's compositing threads: align the faces the mark goes on (the detector and landmarker, most
        of the mark's cost), when that depends on this frame alone (Watermarker.align_alone)."""
        faces = self._faces(ctx)
        alignment = Watermarker.align_alone(ctx.image, faces) if faces and not ctx.warmup else None
        # the image it was computed on goes along: post_composite uses it only if no hook changed the frame since
        return None if alignment is None else {WATERMARK_ALIGNMENT: (ctx.image, alignment)}

    def post_composite(self, ctx: FrameContext) -> np.ndarray | None:
        """Guard, watermark each face, label; returns the marked frame."""
        if ctx.warmup:
            return None
        self.guard.check(ctx.index, ctx.image)
        first, length = getattr(self, "segments", None) or (0, 0)
        if length and (ctx.index - first) % length == 0:
            # The mark keeps each bit's lattice point from the previous frame (hysteresis); a resumed run or a
            # later shard starts at a segment without that history, so every run starts each segment afresh
            # (it starts with an IDR frame anyway): resumed and sharded renders equal a single run (issue 16).
            # The key frames of the mark's alignment (Watermarker: detector + landmarks on 1 frame in KEY_INTERVAL,
            # merge's own motion of the face between) restart there too.
            self.watermarker.reset()
        faces = self._faces(ctx)
        aligned_on, alignment = ctx.prepared.get(WATERMARK_ALIGNMENT, (None, None))
        if aligned_on is not ctx.image:
            alignment = None
        image = self.watermarker.embed_faces(ctx.image, faces, ctx.index, alignment) if faces else ctx.image
        if self.label:
            image = apply_label(image, self.label)
        return image

    def record(self, result: MergeResult) -> dict[str, Any]:
        """The render record (built once per render)."""
        if self._record is None:
            if not result.consent:
                raise PolicyError("the model carries no consent record; train it on a faceset bound with "
                                  "`facedouble identity bind`")
            output = result.outputs.video or result.outputs.png_dir or getattr(result.outputs, "sequence", None)
            self._record = record.build_record(
                model_hash=result.model_hash, consent=result.consent, target=result.clip,
                settings=result.settings | {"label": self.label}, payload_id=self.payload_id,
                output_name=Path(output).name if output else "", watermark_key_id=self.watermark_key.key_id)
        return self._record

    def metadata(self, result: MergeResult) -> dict[str, str]:
        """MP4 container tags carrying the record."""
        return record.mp4_metadata(self.record(result))

    def finalize(self, result: MergeResult) -> None:
        """Record beside and inside every output, then sign each one (last)."""
        if self.cert is None or self.key is None:
            raise PolicyError("every render is C2PA-signed: no signing certificate/key given")
        rec = self.record(result)
        signed: list[Path] = []
        if result.outputs.video is not None:  # the record is already in its metadata
            signed.append(Path(result.outputs.video))
            record.write_sidecar(signed[-1], rec)
        if result.outputs.png_dir is not None:
            record.write_sidecar(Path(result.outputs.png_dir), rec)
            for png in sorted(Path(result.outputs.png_dir).glob("*.png")):
                record.embed_in_image(png, rec)
                signed.append(png)
        if getattr(result.outputs, "patch_dir", None) is not None:  # face patches: marked like the PNG frames
            record.write_sidecar(Path(result.outputs.patch_dir), rec)
            for png in sorted(Path(result.outputs.patch_dir).glob("*.png")):
                record.embed_in_image(png, rec)
                signed.append(png)
        # the plate is the C2PA parent; an image folder or sequence has no single file to name as one
        parent = Path(result.clip) if Path(result.clip).is_file() else None
        for path in signed:
            c2pa_sign.sign_file(path, rec, parent, self.cert, self.key)
        if getattr(result.outputs, "sequence", None) is not None:  # EXR/DPX/PNG16/TIFF: facedouble.trust.seqsign
            from facedouble.trust.seqsign import finalize_sequence

            finalize_sequence(Path(result.outputs.sequence), rec, Path(result.clip), self.cert, self.key)

