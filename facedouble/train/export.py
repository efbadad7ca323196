"""ONNX export of the dst->src swap path, verified against PyTorch with onnxruntime."""

from __future__ import annotations

import datetime
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedouble import __version__
from facedouble.errors import FacedoubleError, InternalError, PolicyError
from facedouble.io.atomic import atomic_write_bytes
from facedouble.train.swapper import load_swapper

EXPORT_NOTICE = ("synthetic face model exported from facedouble: outside facedouble its renders carry no guard, "
                 "watermark, label or C2PA signature; the consent record covers facedouble renders only")


class _SwapPath(torch.nn.Module):
    """Input `dst` float32 N×3×H×W in [0,1]; outputs `rgb` N×3×H×W and `mask` N×1×H×W in [0,1]."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.swap(dst)


def export_onnx(model_dir: str | Path, out: str | Path, opset: int = 17,
                check: bool = True) -> dict[str, Any]:
    """Write the swap path as ONNX (dynamic batch) and return {'max_abs_diff', 'model_hash', ...}.

    Refuses (PolicyError) a model without a consent record. The file's metadata_props carry the
    consent record and provenance (`facedouble.consent`, `facedouble.provenance`, `facedouble.notice`):
    an exported model leaves the trust boundary, since its renders get no guard, watermark, label or
    C2PA signature, so the metadata says whose face it is and that consent covered facedouble renders.

    With `check`, onnxruntime runs the file on real-valued input and the largest difference to
    PyTorch must be below 1e-3, else FacedoubleError and no file is written.
    """
    # ONNX is exported and checked in fp32 with plain convs (runtimes pick their own conv algorithms)
    sw = load_swapper(model_dir, precision="fp32", conv_algo="direct")
    if not sw.consent:
        raise PolicyError(f"model {model_dir} carries no consent record; only a model trained on a faceset bound "
                          "to a consent record (`facedouble identity bind`) can be exported")
    net = _SwapPath(sw.model).eval()
    r = sw.resolution
    example = torch.rand(2, 3, r, r, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript;
    # this small conv net exports exactly with the old path and one fewer dependency.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(net, (example,), buf, dynamo=False, opset_version=opset, input_names=["dst"],
                              output_names=["rgb", "mask"],
                              dynamic_axes={"dst": {0: "batch"}, "rgb": {0: "batch"}, "mask": {0: "batch"}})
    except ModuleNotFoundError as exc:
        raise FacedoubleError(f"ONNX export needs the '{exc.name}' package (pip install onnx==1.18.0)") \
            from None
    data = buf.getvalue()
    data = _add_metadata(data, {"facedouble.resolution": str(r), "facedouble.face_type": sw.face_type,
                                "facedouble.model_hash": sw.model_hash,
                                "facedouble.consent": json.dumps(sw.consent, sort_keys=True),
                                "facedouble.provenance": json.dumps(provenance(sw.model_hash), sort_keys=True),
                                "facedouble.notice": EXPORT_NOTICE})
    info: dict[str, Any] = {"model_hash": sw.model_hash, "resolution": r, "bytes": len(data)}
    if check:
        import onnxruntime as ort

        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).random((3, 3, r, r), dtype=np.float32)
        got = sess.run(["rgb", "mask"], {"dst": x})
        with torch.inference_mode():
            want = [t.numpy() for t in net(torch.from_numpy(x))]
        diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
        if diff >= 1e-3:
            raise InternalError(f"ONNX output differs from PyTorch by {diff:.2e} (limit 1e-3); not written")
        info["max_abs_diff"] = diff
    atomic_write_bytes(out, data)
    return info


def provenance(model_hash: str) -> dict[str, Any]:
    """Who made the exported file, when, from which model."""
    return {"tool": f"facedouble {__version__}", "model_hash": model_hash,
            "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "synthetic": True}


def _add_metadata(data: bytes, props: dict[str, str]) -> bytes:
    """Record identity, consent and provenance in the ONNX metadata_props; no file without them."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise FacedoubleError("ONNX export needs the 'onnx' package to write the consent metadata "
                              "(pip install onnx==1.18.0)") from None
    proto = onnx.load_from_string(data)
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    return proto.SerializeToString()
