"""C2PA manifests on outputs (c2pa-python 0.38.1), and a local test CA for trying it out.

Signing is the very last step: any remux or re-encode afterwards strips or invalidates the manifest.
The algorithm follows the key (EC P-256/384/521: ES256/384/512, RSA: PS256, Ed25519), so a studio's own
certificate works as it is. The signed file is streamed to a temp file beside the output and renamed over
it (never held in memory). No timestamp authority is used by default (`tsa_url` adds one; an unreachable
TSA makes signing fail).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from facedouble.errors import FacedoubleError, InputError
from facedouble.io.atomic import atomic_open, atomic_write_bytes
from facedouble.trust import keyalg

RECORD_LABEL = "org.facedouble.render-record"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
         ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff", ".tiff": "image/tiff"}


def mime_type(path: Path) -> str:
    """C2PA format of a file from its suffix; InputError if unsupported."""
    try:
        return _MIME[Path(path).suffix.lower()]
    except KeyError:
        raise InputError(f"C2PA signing supports {', '.join(sorted(_MIME))}, not {path}") from None


def _manifest(record: dict[str, Any], has_parent: bool) -> dict[str, Any]:
    # C2PA requires the first action to be c2pa.opened (edit of a parent) or c2pa.created (no parent)
    if has_parent:
        first = {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}}
    else:
        first = {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE}
    edited = {"action": "c2pa.edited", "digitalSourceType": SOURCE_TYPE,
              "softwareAgent": {"name": "facedouble"}, "description": "face replaced with a trained model"}
    return {
        "claim_generator_info": [{"name": "facedouble",
                                  "version": str(record.get("tool", {}).get("version", ""))}],
        "title": str(record.get("output") or "facedouble render"),
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [first, edited]}},
            {"label": RECORD_LABEL, "data": record},
        ],
    }


def signing_alg(key_pem: bytes) -> str:
    """C2PA algorithm for a private key: ES256/384/512 by EC curve, PS256 for RSA, Ed25519; InputError else."""
    return keyalg.algorithm(keyalg.load_private_key(key_pem))


def sign_manifest(path: Path, manifest: dict[str, Any], cert: Path, key: Path, parent: Path | None = None,
                  tsa_url: str | None = None) -> None:
    """Sign `manifest` into `path` in place, streamed to a temp file that replaces it only on success."""
    import c2pa

    path = Path(path)
    fmt = mime_type(path)
    try:
        cert_pem, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read signing certificate/key: {exc}") from None
    alg = signing_alg(key_pem)
    try:
        info = c2pa.C2paSignerInfo(alg=alg.encode(), sign_cert=cert_pem, private_key=key_pem,
                                   ta_url=tsa_url.encode() if tsa_url else None)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder:
            if parent is not None:
                parent = Path(parent)
                ingredient = {"title": parent.name, "relationship": "parentOf", "label": "parent"}
                with open(parent, "rb") as handle:
                    builder.add_ingredient(ingredient, mime_type_or_default(parent), handle)
            with open(path, "rb") as source, atomic_open(path) as out:
                builder.sign(signer, fmt, source, out)
    except c2pa.C2paError as exc:
        raise FacedoubleError(f"C2PA signing of {path} failed ({alg}): {str(exc).splitlines()[0]}") from None


def sign_file(path: Path, record: dict[str, Any], parent: Path | None, cert: Path, key: Path,
              tsa_url: str | None = None) -> None:
    """Add a signed C2PA edit manifest carrying the render record to `path` in place (atomic)."""
    sign_manifest(path, _manifest(record, parent is not None), cert, key, parent, tsa_url)


def mime_type_or_default(path: Path) -> str:
    """Format for an ingredient: known suffixes map exactly; other video (e.g. MPEG-1 .mpg) as video/mpeg."""
    suffix = Path(path).suffix.lower()
    return _MIME.get(suffix, "video/mpeg" if suffix in (".mpg", ".mpeg") else "application/octet-stream")


def has_manifest_bytes(path: Path, chunk: int = 1 << 20) -> bool:
    """True if the file's bytes hold a C2PA JUMBF store (a 'jumb' box labelled 'c2pa'), streamed."""
    seen_jumb = seen_c2pa = False
    tail = b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            data = tail + block
            seen_jumb = seen_jumb or b"jumb" in data
            seen_c2pa = seen_c2pa or b"c2pa" in data
            if seen_jumb and seen_c2pa:
                return True
            tail = data[-3:]
    return False


# validation codes about who signed (trust list, certificate dates, revocation), not about the content
TRUST_CODES = ("signingCredential.untrusted", "signingCredential.expired", "signingCredential.revoked",
               "signingCredential.ocsp.revoked", "signingCredential.ocsp.unknown", "timeStamp.untrusted",
               "timeStamp.outsideValidity", "timeStamp.mismatch")


def _absent(errors: list[str] | None = None) -> dict[str, Any]:
    return {"status": "absent", "trusted": False, "trust_list": False, "signer": None, "record": None,
            "errors": errors or [], "manifests": []}


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action of a manifest (actions v1 and v2), as {action, digitalSourceType, softwareAgent}."""
    found = []
    for assertion in manifest.get("assertions", []) or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions", []) or []:
            agent = action.get("softwareAgent")
            found.append({"action": action.get("action"),
                          "digitalSourceType": action.get("digitalSourceType"),
                          "softwareAgent": agent.get("name") if isinstance(agent, dict) else agent})
    return found


def _history(store: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest in the store, active one first: signer, issuer, time, generator, actions, ours or not."""
    manifests = store.get("manifests", {}) or {}
    active = store.get("active_manifest", "")
    order = [active] + [label for label in manifests if label != active]
    history = []
    for label in order:
        manifest = manifests.get(label)
        if not isinstance(manifest, dict):
            continue
        signature = manifest.get("signature_info") or {}
        generators = manifest.get("claim_generator_info") or []
        history.append({
            "label": label, "active": label == active,
            "signer": signature.get("common_name") or signature.get("issuer"),
            "issuer": signature.get("issuer"), "signed_at": signature.get("time"),
            "alg": signature.get("alg"),
            "claim_generator": ", ".join(str(g.get("name")) for g in generators if isinstance(g, dict))
            or manifest.get("claim_generator"),
            "actions": _actions(manifest),
            "facedouble_record": any(a.get("label") == RECORD_LABEL for a in manifest.get("assertions", []) or []),
        })
    return history


def _context(trust_anchors: str | None):
    import c2pa

    if not trust_anchors:
        return None
    try:
        return c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors}})
    except c2pa.C2paError as exc:
        raise InputError(f"the trust anchors are not usable PEM certificates: {str(exc).splitlines()[0]}") from None


def read_manifest(path: Path, trust_anchors: str | None = None) -> dict[str, Any]:
    """C2PA status of a file: {"status": valid|tampered|absent, "trusted", "trust_list", "signer", "record",
    "errors", "manifests", "validation_state"}.

    "valid" means the manifest signature and content hashes verify. "trusted" says whether the signer
    chains to `trust_anchors` (PEM text; without them, no signer is trusted: a `certs init` test CA never
    is); an untrusted or expired signer is reported, but it is not tampering. "manifests" is the whole
    history (every manifest, ours or not) with each one's actions and digitalSourceType.
    """
    import c2pa

    path = Path(path)
    try:
        fmt = mime_type(path)
    except InputError:
        return _absent()
    context = _context(trust_anchors)
    try:
        with open(path, "rb") as handle:
            reader = c2pa.Reader.try_create(fmt, handle, context=context)
            if reader is None:
                return _absent()
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        error = [str(exc).splitlines()[0]]
        if not has_manifest_bytes(path):
            # the reader could not parse the container (wrong suffix, not a video at all) and there is no
            # C2PA store in the bytes: no provenance, not tampering
            return _absent(error)
        # a manifest that is there but cannot be parsed, or whose hashes fail hard, is tampered
        return {**_absent(error), "status": "tampered"}
    finally:
        if context is not None:
            context.close()
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    signature = active.get("signature_info") or {}
    signer = signature.get("common_name") or signature.get("issuer")
    record = next((a.get("data") for a in active.get("assertions", []) if a.get("label") == RECORD_LABEL),
                  None)
    codes = [s.get("code", "") for s in store.get("validation_status") or []]
    state = store.get("validation_state")
    failures = [c for c in codes if c not in TRUST_CODES]
    status = "tampered" if failures or state == "Invalid" else "valid"
    trust_failures = [c for c in codes if c in TRUST_CODES]
    return {"status": status, "trusted": status == "valid" and not trust_failures and state == "Trusted",
            "trust_list": bool(trust_anchors), "signer": signer, "record": record, "errors": codes,
            "validation_state": state, "manifests": _history(store),
            "expired": any(c in ("signingCredential.expired", "timeStamp.outsideValidity") for c in codes)}


def init_test_ca(folder: Path, common_name: str = "facedouble test signer",
                 root_dir: Path | None = None, algorithm: str = "es256") -> tuple[Path, Path]:
    """Make a local test CA: root (CA) -> leaf (CA:false, digitalSignature, emailProtection).

    Writes signer.pem (leaf + root chain), signer.key and root.pem into `folder`, and the root's private
    key into `root_dir` (default: a `root-ca` folder beside `folder`, never next to the signer key: whoever
    can read the signer's folder cannot mint more signers). Private keys are created with mode 0600 (os.open
    with the mode; never world-readable, not even for an instant). `algorithm`: es256 | es384 | ps256 |
    ed25519 (the signer's key type). Returns (cert, key). For trying signing out only: verifiers report
    the signer as untrusted unless root.pem is given to them as a trust anchor.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facedouble local test CA")])

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_dir = Path(root_dir) if root_dir is not None else folder.parent / f"{folder.name}-root-ca"
    root_name = name("facedouble test root")
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256()))
    leaf_key = _new_key(algorithm)
    leaf = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(root.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256()))

    def key_pem(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    from facedouble.policy.keys import write_private

    pem = serialization.Encoding.PEM
    for private in (folder / "signer.key", root_dir / "root.key"):
        private.unlink(missing_ok=True)  # a fresh test CA replaces the old one; the new file is 0600 from birth
    write_private(root_dir / "root.key", key_pem(root_key))
    write_private(folder / "signer.key", key_pem(leaf_key))
    atomic_write_bytes(folder / "root.pem", root.public_bytes(pem))
    atomic_write_bytes(folder / "signer.pem", leaf.public_bytes(pem) + root.public_bytes(pem))
    return folder / "signer.pem", folder / "signer.key"


def _new_key(algorithm: str):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    makers = {"es256": lambda: ec.generate_private_key(ec.SECP256R1()),
              "es384": lambda: ec.generate_private_key(ec.SECP384R1()),
              "ps256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
              "ed25519": ed25519.Ed25519PrivateKey.generate}
    if algorithm not in makers:
        raise InputError(f"test signer algorithm must be one of {', '.join(makers)}, not {algorithm!r}")
    return makers[algorithm]()
