"""Tests for dashboard.signatures: real keys of every supported algorithm signing real
simple-signing payloads, and every way an attestation can fail to verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from dashboard.signatures import Verification, verify_attestation

FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64


def simple_signing_payload(digest: str, reference: str = "gcr.io/p/img") -> bytes:
    """A Binary Authorization simple-signing payload, serialised as gcloud does."""
    document = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "Google cloud binauthz container signature",
        }
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature_entry(signature: bytes | None, error: str | None = None) -> dict:
    """One entry as the normaliser gives it."""
    return {"public_key_id": "ni:///sha-256;test", "signature": signature, "error": error}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec_signer(curve: ec.EllipticCurve, hash_type: type[hashes.HashAlgorithm]):
    def make(_rsa_key):
        key = ec.generate_private_key(curve)
        return key, lambda data: key.sign(data, ec.ECDSA(hash_type()))

    return make


def _rsa_signer(make_padding, hash_type: type[hashes.HashAlgorithm]):
    def make(rsa_key):
        return rsa_key, lambda data: rsa_key.sign(data, make_padding(hash_type), hash_type())

    return make


def _ed25519_signer(_rsa_key):
    key = ed25519.Ed25519PrivateKey.generate()
    return key, key.sign


def _pss(salt_length):
    return lambda hash_type: padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=salt_length)


SIGNERS = {
    "ecdsa-p256-sha256": _ec_signer(ec.SECP256R1(), hashes.SHA256),
    "ecdsa-p384-sha384": _ec_signer(ec.SECP384R1(), hashes.SHA384),
    "ecdsa-p521-sha512": _ec_signer(ec.SECP521R1(), hashes.SHA512),
    "rsa-pkcs1v15-sha256": _rsa_signer(lambda _hash: padding.PKCS1v15(), hashes.SHA256),
    "rsa-pkcs1v15-sha512": _rsa_signer(lambda _hash: padding.PKCS1v15(), hashes.SHA512),
    "rsa-pss-sha256-digest-salt": _rsa_signer(_pss(padding.PSS.DIGEST_LENGTH), hashes.SHA256),
    "rsa-pss-sha384-max-salt": _rsa_signer(_pss(padding.PSS.MAX_LENGTH), hashes.SHA384),
    "ed25519": _ed25519_signer,
}


@pytest.fixture(params=sorted(SIGNERS))
def signer(request, rsa_key):
    """(private key, sign(data) -> signature) for one algorithm."""
    return SIGNERS[request.param](rsa_key)


def test_each_algorithm_verifies_a_simple_signing_payload(signer):
    private_key, sign = signer
    payload = simple_signing_payload(DIGEST)

    result = verify_attestation(payload, [signature_entry(sign(payload))], [private_key.public_key()], DIGEST)

    assert result == Verification(True, f"signature verified with trusted key 1 of 1; payload names digest {DIGEST}")


def test_each_algorithm_rejects_a_signature_by_an_untrusted_key(signer):
    private_key, sign = signer
    payload = simple_signing_payload(DIGEST)
    untrusted = ec.generate_private_key(ec.SECP256R1())

    result = verify_attestation(payload, [signature_entry(sign(payload))], [untrusted.public_key()], DIGEST)

    assert result == Verification(False, "no signature verified with the 1 trusted key")


def test_each_algorithm_rejects_a_tampered_payload(signer):
    private_key, sign = signer
    signed = simple_signing_payload(DIGEST)
    tampered = simple_signing_payload(DIGEST, reference="gcr.io/p/evil")

    result = verify_attestation(tampered, [signature_entry(sign(signed))], [private_key.public_key()], DIGEST)

    assert not result.verified and "no signature verified" in result.reason


def test_any_trusted_key_and_any_signature_may_verify(rsa_key):
    payload = simple_signing_payload(DIGEST)
    untrusted = ed25519.Ed25519PrivateKey.generate()
    trusted = ec.generate_private_key(ec.SECP384R1())
    signatures = [
        signature_entry(untrusted.sign(payload)),
        signature_entry(None, "invalid base64 in signature"),
        signature_entry(trusted.sign(payload, ec.ECDSA(hashes.SHA384()))),
    ]

    result = verify_attestation(payload, signatures, [rsa_key.public_key(), trusted.public_key()], DIGEST)

    assert result.verified
    assert result.reason.startswith("signature verified with trusted key 2 of 2")


def test_ec_curve_fixes_the_hash():
    """A P-256 key signing with SHA-384 is not Binary Authorization's ECDSA_P256_SHA256."""
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload(DIGEST)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA384()))

    assert not verify_attestation(payload, [signature_entry(signature)], [key.public_key()], DIGEST).verified


def test_payload_for_another_digest():
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload(OTHER_DIGEST)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))

    result = verify_attestation(payload, [signature_entry(signature)], [key.public_key()], DIGEST)

    assert result == Verification(False, f"payload for another digest {OTHER_DIGEST} vs release {DIGEST}")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"this is not json", "payload is not JSON"),
        (b"\xff\xfe\x00binary", "payload is not JSON"),
        (b'["a", "list"]', "payload has no critical.image.docker-manifest-digest"),
        (b'{"critical": {"image": {}}}', "payload has no critical.image.docker-manifest-digest"),
        (b'{"critical": {"image": {"docker-manifest-digest": 7}}}', "payload has no critical.image.docker-manifest-digest"),
    ],
    ids=["text", "binary", "json-list", "no-digest", "digest-not-a-string"],
)
def test_signed_payload_that_is_not_simple_signing(payload, reason):
    key = ed25519.Ed25519PrivateKey.generate()

    result = verify_attestation(payload, [signature_entry(key.sign(payload))], [key.public_key()], DIGEST)

    assert not result.verified and result.reason.startswith(reason)


def test_unsigned_garbage_payload_reports_the_signature_first():
    """The payload is read only once a signature over it has verified."""
    key = ed25519.Ed25519PrivateKey.generate()
    other = ed25519.Ed25519PrivateKey.generate()
    payload = b"not json"

    result = verify_attestation(payload, [signature_entry(other.sign(payload))], [key.public_key()], DIGEST)

    assert result == Verification(False, "no signature verified with the 1 trusted key")


def test_malformed_signatures_from_the_normaliser():
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload(DIGEST)
    signatures = [signature_entry(None, "signature is not valid base64: Incorrect padding")]

    result = verify_attestation(payload, signatures, [key.public_key()], DIGEST)

    assert result == Verification(False, "malformed signature (signature 1: signature is not valid base64: Incorrect padding)")


def test_malformed_and_unverified_signatures_are_both_reported():
    key = ec.generate_private_key(ec.SECP256R1())
    payload = simple_signing_payload(DIGEST)
    signatures = [signature_entry(b"\x30\x06garbage"), signature_entry(None, "bad base64")]

    result = verify_attestation(payload, signatures, [key.public_key(), key.public_key()], DIGEST)

    assert result == Verification(False, "no signature verified with the 2 trusted keys (also malformed: signature 2: bad base64)")


@pytest.mark.parametrize(
    ("payload", "signatures", "keys", "digest", "reason"),
    [
        (None, [signature_entry(b"sig")], ["key"], DIGEST, "attestation has no payload"),
        (b"", [signature_entry(b"sig")], ["key"], DIGEST, "attestation has no payload"),
        ("a string", [signature_entry(b"sig")], ["key"], DIGEST, "attestation has no payload"),
        (b"{}", [], ["key"], DIGEST, "attestation carries no signatures"),
        (b"{}", None, ["key"], DIGEST, "attestation carries no signatures"),
        (b"{}", [signature_entry(b"sig")], [], DIGEST, "no trusted keys to verify the signatures with"),
        (b"{}", [signature_entry(b"sig")], None, DIGEST, "no trusted keys to verify the signatures with"),
        (b"{}", [signature_entry(b"sig")], ["key"], "", "release has no digest to compare the payload with"),
        (b"{}", ["not a dict", {}], ["key"], DIGEST, "malformed signature (signature 1: no signature bytes; signature 2: no signature bytes)"),
        (b"{}", [signature_entry("a str")], ["not a key"], DIGEST, "malformed signature (signature 1: no signature bytes)"),
        (b"{}", [signature_entry(b"sig")], ["not a key", None], DIGEST, "no signature verified with the 2 trusted keys"),
    ],
    ids=[
        "payload-none",
        "payload-empty",
        "payload-str",
        "no-signatures",
        "signatures-none",
        "no-keys",
        "keys-none",
        "no-digest",
        "entries-not-dicts",
        "signature-str",
        "keys-not-keys",
    ],
)
def test_bad_input_never_raises(payload, signatures, keys, digest, reason):
    assert verify_attestation(payload, signatures, keys, digest) == Verification(False, reason)


def test_real_synthetic_sample_verifies_with_its_included_key():
    sample = json.loads((FIXTURES / "v1-attestation-SYNTHETIC.json").read_text())
    occurrence = sample["occurrence"]
    attestation = occurrence["attestation"]
    payload = base64.b64decode(attestation["serializedPayload"])
    signatures = [
        signature_entry(base64.b64decode(entry["signature"])) for entry in attestation["signatures"]
    ]
    public_key = load_pem_public_key(sample["_publicKeyPem"].encode())
    digest = occurrence["resourceUri"].rsplit("@", 1)[1]

    assert verify_attestation(payload, signatures, [public_key], digest).verified
    assert verify_attestation(payload, signatures, [public_key], DIGEST) == Verification(
        False, f"payload for another digest {digest} vs release {DIGEST}"
    )


def test_rsa_key_under_2048_bits_never_verifies():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    payload = simple_signing_payload(DIGEST)
    signature = weak.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    result = verify_attestation(payload, [signature_entry(signature)], [weak.public_key()], DIGEST)
    assert not result.verified
    assert "no signature verified" in result.reason
