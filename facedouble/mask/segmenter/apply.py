"""Run a segmenter: load it, predict masks in batches, store them in the faces (`mask apply|remove|show`).

A model is a folder trained by `facedouble mask train` (latest.json + checkpoints) or an exported one
(segmenter.json + weights.safetensors, as the generic model shipped in facedouble/mask/data/generic).
`generic` names the shipped model. Inference runs under torch.inference_mode, channels-last, in bf16
autocast where the hardware does bf16 natively, in batches.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from facedouble.errors import FacedoubleError, InputError
from facedouble.faceset.xseg import decode_mask, encode_mask
from facedouble.log import get_logger
from facedouble.mask.segmenter.model import Segmenter, SegmenterConfig, check_weights

log = get_logger("facedouble.mask")
GENERIC = Path(__file__).resolve().parents[1] / "data" / "generic"
EXPORT_CONFIG = "segmenter.json"
EXPORT_WEIGHTS = "weights.safetensors"
BATCH = 32
WRITERS = 4  # threads encoding and writing the predicted masks (mostly waiting on fsync)


def resolve(model: str | Path | None) -> Path:
    """The folder of `model` (None or "generic" = the shipped generic segmenter)."""
    if model is None or str(model) == "generic":
        return GENERIC
    return Path(model)


def load_segmenter(model: str | Path | None) -> tuple[Segmenter, SegmenterConfig]:
    """Load a segmenter for inference (eval mode, channels-last); one-line errors for wrong folders."""
    from safetensors.torch import load as st_load

    from facedouble.nn.checkpoint import has_checkpoint, load_checkpoint

    folder = resolve(model)
    if has_checkpoint(folder):
        ckpt = load_checkpoint(folder, with_optimizer=False)
        if ckpt.state.get("kind") != "facedouble.segmenter":
            raise InputError(f"{folder} holds a face model, not a mask segmenter")
        cfg, weights, digest = SegmenterConfig.from_dict(ckpt.state.get("config")), ckpt.weights, ckpt.weights_sha256
    elif (folder / EXPORT_CONFIG).is_file():
        try:
            cfg = SegmenterConfig.from_dict(json.loads((folder / EXPORT_CONFIG).read_text("utf-8")))
            data = (folder / EXPORT_WEIGHTS).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            weights = st_load(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{folder / EXPORT_CONFIG} is not valid JSON") from None
        except FileNotFoundError:
            raise InputError(f"{folder}: {EXPORT_WEIGHTS} is missing") from None
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for corrupt files
            if isinstance(exc, FacedoubleError):
                raise
            raise InputError(f"{folder / EXPORT_WEIGHTS} is corrupt ({type(exc).__name__})") from None
    elif not folder.exists():
        raise FacedoubleError(f"mask model not found: {folder}")
    else:
        raise FacedoubleError(f"{folder} holds no mask segmenter (train one with `facedouble mask train`)")
    net = Segmenter(cfg)
    check_weights(net, weights, str(folder))
    net.load_state_dict(weights)
    net.model_id = digest[:16]  # recorded with every mask it predicts
    return net.eval().to(memory_format=torch.channels_last), cfg


@functools.cache
def _cached(folder: str) -> tuple[Segmenter, SegmenterConfig, str]:
    net, cfg = load_segmenter(folder)
    return net, cfg, net.model_id


_lock = threading.Lock()


def cached_segmenter(model: str | Path | None = None) -> tuple[Segmenter, SegmenterConfig, str]:
    """(model, config, short id) loaded once per process (merge calls this from its compositing threads)."""
    with _lock:
        return _cached(str(resolve(model).resolve()))


def predict(net: Segmenter, faces: np.ndarray, bf16: bool | None = None, batch: int = BATCH,
            outlines: np.ndarray | None = None) -> np.ndarray:
    """(N, R, R) float32 face-visible probabilities for (N, R, R, 3) uint8 RGB faces at the model resolution.

    `outlines`: (N, R, R) uint8 filled face outlines (outline.meta_outline / points_outline), which an outline
    segmenter needs (InputError without them) and an RGB one ignores."""
    from facedouble.nn.precision import use_bf16

    takes_outline = net.cfg.prior == "outline"
    if takes_outline and (outlines is None or outlines.shape != faces.shape[:3]):
        raise InputError("this mask model takes each face's outline from its landmarks, and none was given")
    use = use_bf16(bf16)
    out = np.empty(faces.shape[:3], np.float32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use):
        for s in range(0, len(faces), batch):
            x = torch.from_numpy(np.ascontiguousarray(faces[s:s + batch])).permute(0, 3, 1, 2).float().div_(255)
            if takes_outline:
                x = torch.cat([x, torch.from_numpy(outlines[s:s + batch]).float().div_(255)[:, None]], 1)
            x = x.contiguous(memory_format=torch.channels_last)
            out[s:s + batch] = torch.sigmoid(net(x).float())[:, 0].numpy()
    return out


def to_resolution(face: np.ndarray, res: int) -> np.ndarray:
    """A face image resampled to the segmenter's input side."""
    if face.shape[0] == res:
        return face
    return cv2.resize(face, (res, res), interpolation=cv2.INTER_AREA if face.shape[0] > res else cv2.INTER_CUBIC)


def segment_frame_faces(frame_rgb: np.ndarray, to_aligned: np.ndarray, size: int,
                        model: str | Path | None = None, landmarks: np.ndarray | None = None,
                        mesh: np.ndarray | None = None) -> np.ndarray:
    """The segmenter's face-visible mask for one face of a frame, in the `size` crop given by `to_aligned`.

    The segmenter sees its own crop at its resolution, taken from the frame (not an upscaled small crop).
    `landmarks` (68) and `mesh` (or None): the face's points in the `size` crop's pixels, which an outline
    segmenter needs.
    """
    from facedouble.mask.segmenter.outline import points_outline

    net, cfg, _ = cached_segmenter(model)
    r = cfg.resolution
    scale = np.diag([r / size, r / size, 1.0])
    to_seg = (scale @ np.vstack([to_aligned, [0, 0, 1]]))[:2]
    crop = cv2.warpAffine(frame_rgb, to_seg, (r, r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    outline = None
    if cfg.prior == "outline":
        if landmarks is None:
            raise InputError("this mask model takes each face's outline from its landmarks, and none was given")
        outline = points_outline(mesh, landmarks, r, r / size)[None]
    with _lock:  # one forward at a time: the threads of a merge share the model
        prob = predict(net, crop[None], outlines=outline)[0]
    return cv2.resize(prob, (size, size), interpolation=cv2.INTER_AREA if size < r else cv2.INTER_LINEAR)


def _rewrite(path: Path, xseg: dict[str, str] | None) -> None:
    from facedouble.faceset.meta import META_KEY, _meta_from_bytes
    from facedouble.io import imagemeta
    from facedouble.io.atomic import atomic_write_bytes

    data = path.read_bytes()
    meta = _meta_from_bytes(data, path)
    meta.xseg = xseg
    # only the metadata chunk changes: the face's pixels are not re-encoded
    atomic_write_bytes(path, imagemeta.set_text(data, META_KEY, meta.to_json()))


def _batches(items: list[Path], n: int) -> Iterable[list[Path]]:
    for s in range(0, len(items), n):
        yield items[s:s + n]


def apply_model(faceset: str | Path, model: str | Path | None = None, batch: int = BATCH,
                progress: Any = None) -> int:
    """Predict and store the mask of every face of `faceset`; returns how many."""
    from facedouble.faceset import Faceset
    from facedouble.faceset.meta import META_KEY, _meta_from_bytes
    from facedouble.io import imagemeta
    from facedouble.io.atomic import atomic_write_bytes
    from facedouble.mask.segmenter.outline import meta_outline
    from facedouble.progress import Progress, report

    fs = Faceset(faceset)
    paths = fs.paths()
    if not paths:
        raise FacedoubleError(f"faceset {fs.folder} has no faces")
    net, cfg, model_id = cached_segmenter(model)

    def store(p: Path, data: bytes, meta: Any, prob: np.ndarray) -> None:
        if meta.size != cfg.resolution:
            prob = cv2.resize(prob, (meta.size, meta.size), interpolation=cv2.INTER_AREA
                              if meta.size < cfg.resolution else cv2.INTER_LINEAR)
        meta.xseg = encode_mask(prob, model_id)
        # only the metadata chunk changes: the face's pixels are not re-encoded
        atomic_write_bytes(p, imagemeta.set_text(data, META_KEY, meta.to_json()))

    done, types = 0, set()
    # The PNG encode and the atomic write (an fsync per face) of one batch run on threads while the next
    # batch is read and predicted: they wait on the disk, not the CPU.
    with cf.ThreadPoolExecutor(WRITERS) as pool:
        writing: list[cf.Future] = []
        for group in _batches(paths, batch):
            faces, outlines, items = [], [], []
            for p in group:  # each file is read and its metadata parsed once
                data = p.read_bytes()
                meta = _meta_from_bytes(data, p)
                bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise InputError(f"{p}: image data is corrupt")
                faces.append(to_resolution(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cfg.resolution))
                if cfg.prior == "outline":
                    outlines.append(meta_outline(meta, cfg.resolution))
                items.append((p, data, meta))
                types.add(meta.face_type)
            probs = predict(net, np.stack(faces), batch=batch, outlines=np.stack(outlines) if outlines else None)
            for f in writing:  # the previous batch is on disk before this one's writes queue up
                f.result()
            if writing:
                report(progress, Progress("mask apply", done, len(paths), "face"))
            writing = [pool.submit(store, *item, prob) for item, prob in zip(items, probs, strict=True)]
            done += len(group)
        for f in writing:
            f.result()
    report(progress, Progress("mask apply", done, len(paths), "face"))
    if types - {cfg.face_type}:  # still usable (trained with ±20 % scale jitter), but say so
        log.warning("faceset face type %s, the segmenter was trained on %s faces", ", ".join(sorted(types)),
                    cfg.face_type)
    return done


def remove_masks(faceset: str | Path) -> int:
    """Clear the stored masks of a faceset; returns how many faces had one."""
    from facedouble.faceset import Faceset

    n = 0
    fs = Faceset(faceset)
    for p, meta in fs.metas():
        if meta.xseg is not None:
            _rewrite(p, None)
            n += 1
    return n


def show_masks(faceset: str | Path, out_dir: str | Path, limit: int | None = None) -> int:
    """Write `<face>.jpg` overlay previews (face | face with the mask: green kept, red cut) to `out_dir`."""
    from facedouble.faceset import Faceset, read_face
    from facedouble.io.atomic import atomic_write_bytes

    fs = Faceset(faceset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for p, meta in fs.metas():
        if meta.xseg is None:
            continue
        rgb, _ = read_face(p)
        m = decode_mask(meta.xseg)[..., None]
        tint = np.concatenate([1 - m, m, np.zeros_like(m)], -1) * 255
        over = (rgb * 0.6 + tint * 0.4).astype(np.uint8)
        edge = cv2.Canny((m[..., 0] > 0.5).astype(np.uint8) * 255, 50, 150) > 0
        over[edge] = (255, 255, 0)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.hstack([rgb, over]), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            atomic_write_bytes(out / f"{p.stem}.jpg", buf.tobytes())
            n += 1
        if limit is not None and n >= limit:
            break
    if n == 0:
        raise FacedoubleError(f"faceset {fs.folder} has no applied masks (run `facedouble mask apply` first)")
    return n
