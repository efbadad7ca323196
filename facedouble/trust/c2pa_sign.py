"""C2PA manifests on outputs (c2pa-python 0.38.1), and a local test CA for trying it out.

Signing is the very last step: any remux or re-encode afterwards strips or invalidates the manifest.
No timestamp authority is used by default (an unreachable TSA URL makes signing fail).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from facedouble.errors import FacedoubleError, InputError
from facedouble.io.atomic import atomic_write_bytes

RECORD_LABEL = "org.facedouble.render-record"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
         ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


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


def sign_file(path: Path, record: dict[str, Any], parent: Path | None, cert: Path, key: Path,
              tsa_url: str | None = None) -> None:
    """Add a signed C2PA edit manifest to `path` in place (atomic: the file is replaced only on success)."""
    import c2pa

    path = Path(path)
    fmt = mime_type(path)
    try:
        cert_pem, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read signing certificate/key: {exc}") from None
    try:
        info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=cert_pem, private_key=key_pem,
                                   ta_url=tsa_url.encode() if tsa_url else None)
        manifest = _manifest(record, parent is not None)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder:
            if parent is not None:
                parent = Path(parent)
                ingredient = {"title": parent.name, "relationship": "parentOf", "label": "parent"}
                with open(parent, "rb") as handle:
                    builder.add_ingredient(ingredient, mime_type_or_default(parent), handle)
            out = io.BytesIO()
            with open(path, "rb") as source:
                builder.sign(signer, fmt, source, out)
    except c2pa.C2paError as exc:
        raise FacedoubleError(f"C2PA signing of {path} failed: {str(exc).splitlines()[0]}") from None
    atomic_write_bytes(path, out.getvalue())


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


def read_manifest(path: Path) -> dict[str, Any]:
    """C2PA status of a file: {"status": valid|tampered|absent, "trusted", "signer", "record", "errors"}.

    "valid" means the manifest signature and content hashes verify. "trusted" is False when the signer's
    chain is not on a trust list (always the case for a `certs init` test CA): that is reported, but it is
    not tampering.
    """
    import c2pa

    path = Path(path)
    try:
        fmt = mime_type(path)
    except InputError:
        return {"status": "absent", "trusted": False, "signer": None, "record": None, "errors": []}
    try:
        with open(path, "rb") as handle:
            reader = c2pa.Reader.try_create(fmt, handle)
            if reader is None:
                return {"status": "absent", "trusted": False, "signer": None, "record": None, "errors": []}
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        error = [str(exc).splitlines()[0]]
        if not has_manifest_bytes(path):
            # the reader could not parse the container (wrong suffix, not a video at all) and there is no
            # C2PA store in the bytes: no provenance, not tampering
            return {"status": "absent", "trusted": False, "signer": None, "record": None, "errors": error}
        # a manifest that is there but cannot be parsed, or whose hashes fail hard, is tampered
        return {"status": "tampered", "trusted": False, "signer": None, "record": None, "errors": error}
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    signature = active.get("signature_info") or {}
    signer = signature.get("common_name") or signature.get("issuer")
    record = next((a.get("data") for a in active.get("assertions", []) if a.get("label") == RECORD_LABEL),
                  None)
    codes = [s.get("code", "") for s in store.get("validation_status") or []]
    state = store.get("validation_state")
    failures = [c for c in codes if c != "signingCredential.untrusted"]
    status = "tampered" if failures or state == "Invalid" else "valid"
    return {"status": status, "trusted": status == "valid" and "signingCredential.untrusted" not in codes,
            "signer": signer, "record": record, "errors": codes, "validation_state": state}


def init_test_ca(folder: Path, common_name: str = "facedouble test signer") -> tuple[Path, Path]:
    """Make a local test CA: root (CA) -> leaf (CA:false, digitalSignature, emailProtection), ES256.

    Writes root.pem, root.key, signer.pem (leaf + root chain) and signer.key; returns (cert, key).
    For trying signing out only: verifiers will report the signer as untrusted.
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
    leaf_key = ec.generate_private_key(ec.SECP256R1())
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

    pem = serialization.Encoding.PEM
    atomic_write_bytes(folder / "root.pem", root.public_bytes(pem))
    atomic_write_bytes(folder / "root.key", key_pem(root_key))
    atomic_write_bytes(folder / "signer.pem", leaf.public_bytes(pem) + root.public_bytes(pem))
    atomic_write_bytes(folder / "signer.key", key_pem(leaf_key))
    for private in ("root.key", "signer.key"):
        (folder / private).chmod(0o600)
    return folder / "signer.pem", folder / "signer.key"
