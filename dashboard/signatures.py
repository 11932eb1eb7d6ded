"""Verification of Binary Authorization attestations (simple-signing payloads).

An attestation occurrence carries a ``serializedPayload`` and signatures over exactly
those bytes. The payload follows the simple-signing format used by Binary Authorization::

    {"critical": {"identity": {"docker-reference": "gcr.io/p/img"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "Google cloud binauthz container signature"}}

An attestation verifies when at least one of its signatures verifies with one of the
trusted keys *and* the signed payload's ``critical.image.docker-manifest-digest`` equals
the release's digest. The payload is read only after a signature over it has verified,
so nothing unauthenticated is trusted. ``critical.identity.docker-reference`` is not
compared: the digest alone binds the attestation to the image content.

Signature schemes, chosen by the key:

- ECDSA, DER-encoded signatures (as Binary Authorization and Cloud KMS produce); the curve
  fixes the hash: P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512.
- RSA of 2048 bits or more: PKCS#1 v1.5 and PSS (any salt length), each with SHA-256, SHA-384 and SHA-512;
  every combination is tried since the key does not say which one signed.
- Ed25519 (pure, over the payload bytes).

:func:`verify_attestation` never raises on bad input: every problem becomes an
unverified :class:`Verification` whose ``reason`` says what failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from dashboard.policy import MIN_RSA_BITS

_EC_HASH_BY_CURVE = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_RSA_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


@dataclass(frozen=True)
class Verification:
    """Outcome of verifying one attestation; ``reason`` says what verified or what failed."""

    verified: bool
    reason: str


def verify_attestation(
    payload: bytes | None,
    signatures: Sequence[dict[str, Any]],
    public_keys: Sequence[Any],
    expected_digest: str,
) -> Verification:
    """Verify one attestation's ``payload`` and ``signatures`` for the release ``expected_digest``.

    ``signatures`` are the normaliser's ``{"public_key_id", "signature": bytes | None,
    "error": str | None}`` entries; ``public_keys`` are keys loaded by the policy.
    """
    if not isinstance(payload, (bytes, bytearray)) or not payload:
        return Verification(False, "attestation has no payload")
    if not expected_digest:
        return Verification(False, "release has no digest to compare the payload with")
    keys = list(public_keys) if isinstance(public_keys, (list, tuple)) else []
    if not keys:
        return Verification(False, "no trusted keys to verify the signatures with")
    entries = list(signatures) if isinstance(signatures, (list, tuple)) else []
    if not entries:
        return Verification(False, "attestation carries no signatures")

    malformed: list[str] = []
    verified_with: int | None = None
    for number, entry in enumerate(entries, start=1):
        signature = entry.get("signature") if isinstance(entry, dict) else None
        if not isinstance(signature, (bytes, bytearray)) or not signature:
            error = entry.get("error") if isinstance(entry, dict) else None
            malformed.append(f"signature {number}: {error or 'no signature bytes'}")
            continue
        verified_with = _first_verifying_key(bytes(payload), bytes(signature), keys)
        if verified_with is not None:
            break

    if verified_with is None:
        key_count = f"{len(keys)} trusted key" + ("" if len(keys) == 1 else "s")
        if malformed and len(malformed) == len(entries):
            return Verification(False, f"malformed signature ({'; '.join(malformed)})")
        reason = f"no signature verified with the {key_count}"
        if malformed:
            reason += f" (also malformed: {'; '.join(malformed)})"
        return Verification(False, reason)

    signed_digest, problem = _signed_digest(bytes(payload))
    if problem:
        return Verification(False, problem)
    if signed_digest != expected_digest:
        return Verification(False, f"payload for another digest {signed_digest} vs release {expected_digest}")
    return Verification(
        True, f"signature verified with trusted key {verified_with} of {len(keys)}; payload names digest {expected_digest}"
    )


def _first_verifying_key(payload: bytes, signature: bytes, keys: list[Any]) -> int | None:
    """1-based index of the first key that verifies ``signature`` over ``payload``."""
    for index, key in enumerate(keys, start=1):
        if _verifies(key, payload, signature):
            return index
    return None


def _verifies(key: Any, payload: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            hash_type = _EC_HASH_BY_CURVE.get(key.curve.name)
            if hash_type is None:
                return False
            key.verify(signature, payload, ec.ECDSA(hash_type()))
            return True
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
            return True
        if isinstance(key, rsa.RSAPublicKey):
            # The policy refuses weak keys when it loads; a caller passing keys directly meets the same bar.
            return key.key_size >= MIN_RSA_BITS and _rsa_verifies(key, payload, signature)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False


def _rsa_verifies(key: rsa.RSAPublicKey, payload: bytes, signature: bytes) -> bool:
    for hash_type in _RSA_HASHES:
        schemes = (
            padding.PKCS1v15(),
            padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=padding.PSS.AUTO),
        )
        for scheme in schemes:
            try:
                key.verify(signature, payload, scheme, hash_type())
                return True
            except (InvalidSignature, ValueError, TypeError):
                continue
    return False


def _signed_digest(payload: bytes) -> tuple[str | None, str | None]:
    """``(critical.image.docker-manifest-digest, None)``, or ``(None, what is wrong)``."""
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, "payload is not JSON"
    critical = document.get("critical") if isinstance(document, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not digest:
        return None, "payload has no critical.image.docker-manifest-digest (not a simple-signing payload)"
    return digest, None
