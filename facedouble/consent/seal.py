"""Seal of the consent a model checkpoint carries: HMAC-SHA256 under the workspace's `state` key.

A checkpoint's files are listed with their SHA-256 in latest.json, but anyone can recompute those after
editing state.json, e.g. to move another model's consent into a model trained on someone else's face.
So at every save the trainer writes SEAL_FILE into the checkpoint folder before latest.json publishes it
(a kill -9 at any point leaves a sealed checkpoint as the newest): an HMAC, under a secret key of the
workspace that trained it, over the consent (record name and hash) *and the weights' SHA-256*. A consent
copied into another model, a changed consent, or a model whose seal is missing does not verify: loading
keeps working (for inspection) but every render and preview refuses it with a one-line error.
A copied model folder stays sealed (the seal names no path); a model trained in another workspace must be
rendered with that workspace (`--workspace`) or retrained there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from facedouble.errors import PolicyError
from facedouble.policy.keys import workspace_key

SEAL_FILE = "consent.seal.json"
KEY_NAME = "state"
SCHEME = "hmac-sha256-v1"


def _message(consent: dict[str, Any], weights_sha256: str) -> bytes:
    body = {"name": str(consent.get("name")), "record_hash": str(consent.get("record_hash")),
            "weights_sha256": str(weights_sha256)}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def compute_seal(consent: dict[str, Any], weights_sha256: str, workspace: str | Path | None,
                 create_key: bool = False) -> str:
    """Hex HMAC of (consent name, record hash, weights hash) under the workspace's state key."""
    key = workspace_key(workspace, KEY_NAME, create=create_key)
    return hmac.new(key, _message(consent, weights_sha256), hashlib.sha256).hexdigest()


def write_seal(checkpoint: str | Path, consent: dict[str, Any], weights_sha256: str,
               workspace: str | Path | None) -> Path:
    """Seal a checkpoint folder (the trainer calls this at each save of a consented model, before the folder is
    published)."""
    from facedouble.io.atomic import atomic_write_json

    seal = compute_seal(consent, weights_sha256, workspace, create_key=True)
    path = Path(checkpoint) / SEAL_FILE
    atomic_write_json(path, {"scheme": SCHEME, "seal": seal})
    return path


def read_seal(checkpoint: str | Path) -> str | None:
    """The seal stored in a checkpoint folder, or None (missing or unreadable: treated as unsealed)."""
    try:
        data = json.loads((Path(checkpoint) / SEAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seal = data.get("seal") if isinstance(data, dict) and data.get("scheme") == SCHEME else None
    return seal if isinstance(seal, str) else None


def check_seal(consent: dict[str, Any], weights_sha256: str, seal: str | None,
               workspace: str | Path | None) -> None:
    """PolicyError unless `seal` authenticates this consent for these weights under the workspace key."""
    if not seal:
        raise PolicyError("the model's consent is not sealed (its checkpoint has no consent seal: trained by an "
                          "older facedouble, or edited); resume training for one save in this workspace to "
                          "seal it")
    expected = compute_seal(consent, weights_sha256, workspace)
    if not hmac.compare_digest(expected, seal):
        raise PolicyError("the model's consent seal does not verify with this workspace's key: its state.json "
                          "was edited or its consent copied from another model (or it was trained in another "
                          "workspace: pass that one with --workspace)")


def seal_model(model_dir: str | Path, workspace: str | Path | None) -> Path:
    """Seal the newest checkpoint of `model_dir` as the trainer would (for checkpoints built by hand, e.g.
    in tests); the consent is the checkpoint's own. PolicyError if it carries none."""
    from facedouble.nn import checkpoint as ck

    ckpt, files = ck.checkpoint_dir(model_dir)
    consent = ck.load_state(model_dir).get("consent")
    if not consent:
        raise PolicyError(f"{model_dir} carries no consent to seal")
    return write_seal(ckpt, consent, files[ck.WEIGHTS], workspace)
