"""One key-type table for C2PA and detached signatures (facedouble.trust.keyalg)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from facedouble.errors import InputError
from facedouble.trust import c2pa_sign, keyalg

KEYS = {
    "es256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "es384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "es512": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ps256": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_sign_and_verify_follow_the_key(alg):
    key = KEYS[alg]()
    assert keyalg.algorithm(key) == alg == c2pa_sign.signing_alg(_pem(key))
    signature = keyalg.sign(key, b"record")
    assert keyalg.verify(key.public_key(), signature, b"record")
    assert not keyalg.verify(key.public_key(), signature, b"recorD")


def test_ec_hash_follows_the_curve_and_old_sha256_records_still_verify():
    key = ec.generate_private_key(ec.SECP384R1())
    # ES384 means ECDSA with SHA-384: what C2PA would use with this key
    key.public_key().verify(keyalg.sign(key, b"data"), b"data", ec.ECDSA(hashes.SHA384()))
    old = key.sign(b"data", ec.ECDSA(hashes.SHA256()))  # how sidecars were signed before
    assert keyalg.verify(key.public_key(), old, b"data")


def test_unusable_key_types_are_refused_not_crashed():
    key = dsa.generate_private_key(2048)
    with pytest.raises(InputError, match="cannot sign with a"):
        keyalg.algorithm(key)
    assert keyalg.verify(key.public_key(), b"\0" * 64, b"data") is False
    with pytest.raises(InputError, match="P-256"):
        keyalg.algorithm(ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(InputError, match="unencrypted PEM"):
        c2pa_sign.signing_alg(b"not a key")
