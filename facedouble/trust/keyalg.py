"""One table from a signing key's type to its algorithm, shared by C2PA signing and detached signatures.

C2PA names the algorithm (ES256/384/512 by EC curve, PS256 for RSA, Ed25519); the detached signature of
a sequence's record (facedouble.trust.seqsign) signs with the same algorithm, so one key signs both the
same way and one place decides which key types are accepted.
"""

from __future__ import annotations

from typing import Any

from facedouble.errors import InputError

# EC curve -> (C2PA algorithm, hash name); the hash follows the curve as in ES256/ES384/ES512
EC_CURVES = {"secp256r1": ("es256", "SHA256"), "secp384r1": ("es384", "SHA384"), "secp521r1": ("es512", "SHA512")}


def load_private_key(key_pem: bytes) -> Any:
    """The private key in `key_pem` (unencrypted PEM); InputError when it is not one."""
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"the signing key is not an unencrypted PEM private key ({exc})") from None


def algorithm(key: Any) -> str:
    """C2PA algorithm name for a private or public key: es256/384/512, ps256 or ed25519; InputError else."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if key.curve.name in EC_CURVES:
            return EC_CURVES[key.curve.name][0]
        raise InputError(f"signing needs EC P-256, P-384 or P-521, not {key.curve.name}")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "ps256"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    raise InputError(f"cannot sign with a {type(key).__name__} (use EC P-256/384/521, RSA or Ed25519)")


def _scheme(alg: str, hash_name: str | None = None) -> tuple[Any, ...]:
    """The cryptography arguments after the data for `alg` (hash overridable for EC, see `verify`)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    if alg.startswith("es"):
        default = {a: h for a, h in EC_CURVES.values()}[alg]
        return (ec.ECDSA(getattr(hashes, hash_name or default)()),)
    if alg == "ps256":
        return (padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    return ()  # ed25519 hashes internally


def sign(key: Any, data: bytes) -> bytes:
    """Signature over `data` with the private key's algorithm (see `algorithm`)."""
    return key.sign(data, *_scheme(algorithm(key)))


def verify(public: Any, signature: bytes, data: bytes) -> bool:
    """True when `signature` is the key's signature over `data`; False when not or the key type is unusable.

    Records signed before 2026-12-07 used SHA-256 with every EC curve; those still verify.
    """
    from cryptography.exceptions import InvalidSignature

    try:
        alg = algorithm(public)
    except InputError:
        return False
    tries = [_scheme(alg)] + ([_scheme(alg, "SHA256")] if alg in ("es384", "es512") else [])
    for scheme in tries:
        try:
            public.verify(signature, data, *scheme)
            return True
        except InvalidSignature:
            continue
    return False
