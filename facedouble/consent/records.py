"""Consent records: who agreed to be a face double, for what, until when, backed by which signed release.

Records live in the workspace (`<workspace>/identities/<name>.json`). A faceset is bound to a record by a
small JSON file inside the faceset folder (BINDING_FILE) that stores the record's name and hash; it travels
with the folder, so a copied faceset stays bound. Tampering with either side is caught: the binding's hash
must equal the hash of the record in the workspace, and the record's release file (if still on disk) must
still hash to what was recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from facedouble.errors import FacedoubleError, InputError, PolicyError
from facedouble.io.atomic import atomic_write_json
from facedouble.io.digest import sha256_file

SCHEMA_VERSION = 1
BINDING_FILE = ".facedouble-consent.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_workspace() -> Path:
    """FACEDOUBLE_WORKSPACE, else ./facedouble-workspace."""
    return Path(os.environ.get("FACEDOUBLE_WORKSPACE") or "facedouble-workspace")




def canonical_json(obj: Any) -> bytes:
    """The byte form that hashes are taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class ConsentRecord:
    """One performer's consent: name, scope, validity dates, hash of the signed release document."""

    name: str
    release_sha256: str
    release_path: str
    scope: str = ""
    created: str = ""  # ISO date
    expires: str | None = None  # ISO date, inclusive; None = no end date
    notes: str = ""
    version: int = SCHEMA_VERSION
    # identity embeddings of the person who signed (facedouble.consent.person); None: made without references,
    # so it cannot be bound or trained on
    reference_embeddings: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (what is stored and hashed; a record without references hashes as before)."""
        data = dataclasses.asdict(self)
        if data["reference_embeddings"] is None:
            del data["reference_embeddings"]
        return data

    @property
    def record_hash(self) -> str:
        """SHA-256 of the canonical record JSON: the value models and renders carry."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()

    def expired(self, today: dt.date | None = None) -> bool:
        """True once the expiry date has passed."""
        return self.expires is not None and (today or dt.date.today()) > dt.date.fromisoformat(self.expires)


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(f"identity name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def _record_path(workspace: Path, name: str) -> Path:
    return workspace / "identities" / f"{_check_name(name)}.json"


def _parse_date(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(f"{what} must be a date like 2027-12-31, got {text!r}") from None


def add_identity(workspace: Path, name: str, release: Path, scope: str = "", expires: str | None = None,
                 notes: str = "", reference: Path | None = None) -> ConsentRecord:
    """Store a new consent record; refuses to overwrite an existing one (records are evidence).

    `reference`: faces of the person who signed, from the release session (a faceset, a clip, an image
    or an image folder): their identity embeddings go into the record, and every faceset bound to it or
    trained on is compared with them (facedouble.consent.person). A record without them can be kept (e.g. for
    a model trained before), but no faceset can be bound to it or trained on with it.
    """
    release = Path(release)
    if not release.is_file():
        raise InputError(f"release document not found: {release}")
    path = _record_path(workspace, name)
    if path.exists():
        raise FacedoubleError(f"identity {name!r} already exists in {workspace}; "
                              "records are never overwritten")
    expires = _parse_date(expires, "--expires")
    if expires is not None and dt.date.fromisoformat(expires) < dt.date.today():
        raise InputError(f"--expires {expires} is in the past")
    references = None
    if reference is not None:
        from facedouble.consent.person import reference_embeddings

        references = reference_embeddings(Path(reference))
    record = ConsentRecord(name=name, release_sha256=sha256_file(release),
                           release_path=str(release.resolve()), scope=scope,
                           created=dt.date.today().isoformat(), expires=expires, notes=notes,
                           reference_embeddings=references)
    atomic_write_json(path, record.to_dict())
    return record


def load_identity(workspace: Path, name: str) -> ConsentRecord:
    """Read a record from the workspace; PolicyError if unknown, InputError if malformed."""
    path = _record_path(workspace, name)
    if not path.is_file():
        raise PolicyError(f"no consent record for {name!r} in {workspace} "
                          "(add one with `facedouble identity add`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = ConsentRecord(**data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"consent record {path} is malformed: {exc}") from None
    return _check_record(record, path)


def _check_record(record: ConsentRecord, path: Path) -> ConsentRecord:
    """InputError unless every field has its type and the dates parse (a hand-edited record must not
    crash a render at the expiry check)."""
    for field in ("name", "release_sha256", "release_path", "scope", "created", "notes"):
        if not isinstance(getattr(record, field), str):
            raise InputError(f"consent record {path} is malformed: '{field}' must be text")
    if record.expires is not None and not isinstance(record.expires, str):
        raise InputError(f"consent record {path} is malformed: 'expires' must be a date or null")
    if isinstance(record.version, bool) or not isinstance(record.version, int):
        raise InputError(f"consent record {path} is malformed: 'version' must be an integer")
    from facedouble.consent.person import check_references

    try:
        check_references(record.reference_embeddings)
    except ValueError as exc:
        raise InputError(f"consent record {path} is malformed: {exc}") from None
    try:
        _parse_date(record.expires, "'expires'")
        if record.created:
            _parse_date(record.created, "'created'")
    except InputError as exc:
        raise InputError(f"consent record {path} is malformed: {exc}") from None
    return record


def list_identities(workspace: Path) -> list[ConsentRecord]:
    """All records in the workspace, by name."""
    folder = workspace / "identities"
    if not folder.is_dir():
        return []
    return [load_identity(workspace, p.stem) for p in sorted(folder.glob("*.json"))]


def bind_faceset(workspace: Path, name: str, faceset_dir: Path) -> ConsentRecord:
    """Bind a faceset folder to a valid record by writing BINDING_FILE into it."""
    faceset_dir = Path(faceset_dir)
    if not faceset_dir.is_dir():
        raise InputError(f"faceset folder not found: {faceset_dir}")
    record = _validate(load_identity(workspace, name), workspace)
    _check_person(record, faceset_dir)
    atomic_write_json(faceset_dir / BINDING_FILE, {"version": SCHEMA_VERSION, "identity": record.name,
                                                   "record_hash": record.record_hash})
    return record


def _revocation_path(workspace: Path, name: str) -> Path:
    return workspace / "revocations" / f"{_check_name(name)}.json"


def revoke_identity(workspace: Path, name: str, reason: str = "") -> dict[str, Any]:
    """Withdraw a performer's consent: from now on no binding, training, render or preview uses the record.

    The record itself stays (records are evidence); the withdrawal is a separate file beside it.
    """
    workspace = Path(workspace)
    record = load_identity(workspace, name)
    path = _revocation_path(workspace, name)
    if path.exists():
        raise FacedoubleError(f"consent of {name!r} was already withdrawn ({path})")
    entry = {"name": record.name, "record_hash": record.record_hash, "revoked": dt.date.today().isoformat(),
             "reason": reason}
    atomic_write_json(path, entry)
    return entry


def revocation(workspace: Path, name: str) -> dict[str, Any] | None:
    """The withdrawal of `name`'s consent, or None; a withdrawal file that cannot be read counts as one."""
    path = _revocation_path(Path(workspace), name)
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return {"name": name, "revoked": "unknown (unreadable withdrawal file)"}  # fail closed
    return entry


def check_model_consent(consent: dict[str, Any] | None, workspace: Path | None = None) -> ConsentRecord:
    """Re-check a model's consent against the workspace at use time (every render and preview).

    PolicyError if the model carries none, the record is unknown or changed, expired or withdrawn.
    """
    if not consent or not isinstance(consent, dict) or "name" not in consent:
        raise PolicyError("the model carries no consent record; train it on a source faceset bound to a "
                          "consent record (`facedouble identity bind`)")
    workspace = Path(workspace) if workspace is not None else default_workspace()
    record = load_identity(workspace, str(consent["name"]))
    if record.record_hash != consent.get("record_hash"):
        raise PolicyError(f"the model's consent does not match the record {record.name!r} in {workspace}")
    return _validate(record, workspace)


def _validate(record: ConsentRecord, workspace: Path | None = None) -> ConsentRecord:
    if record.expired():
        raise PolicyError(f"consent record {record.name!r} expired on {record.expires}")
    if workspace is not None and (withdrawn := revocation(workspace, record.name)) is not None:
        raise PolicyError(f"consent of {record.name!r} was withdrawn on {withdrawn.get('revoked')}")
    release = Path(record.release_path)
    # the release may have moved to an archive; if it is still where it was, it must be unchanged
    if release.is_file() and sha256_file(release) != record.release_sha256:
        raise PolicyError(f"release document {release} for {record.name!r} changed since the record was made")
    return record


def require_consent(faceset_dir: Path, workspace: Path | None = None) -> ConsentRecord:
    """The record a faceset is bound to, if it is known, unchanged and unexpired; PolicyError otherwise."""
    faceset_dir = Path(faceset_dir)
    workspace = Path(workspace) if workspace is not None else default_workspace()
    binding_path = faceset_dir / BINDING_FILE
    if not binding_path.is_file():
        raise PolicyError(f"faceset {faceset_dir} is not bound to a consent record "
                          "(run `facedouble identity bind NAME FACESET_DIR`)")
    try:
        binding = json.loads(binding_path.read_text(encoding="utf-8"))
        name, bound_hash = binding["identity"], binding["record_hash"]
        if not isinstance(name, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise PolicyError(f"consent binding {binding_path} is malformed") from None
    record = load_identity(workspace, name)
    if record.record_hash != bound_hash:
        raise PolicyError(f"consent record {name!r} does not match the one faceset {faceset_dir} "
                          "was bound to")
    _validate(record, workspace)
    _check_person(record, faceset_dir)  # every training session: a binding copied onto other faces fails here
    return record


def _check_person(record: ConsentRecord, faceset_dir: Path) -> None:
    from facedouble.consent.person import check_person

    check_person(record.name, record.reference_embeddings, faceset_dir)
