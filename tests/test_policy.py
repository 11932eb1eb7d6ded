"""Tests for dashboard.policy: loading the [gate] TOML, safe defaults and one-line errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from dashboard.policy import BLOCK_ALL, Policy, PolicyError, load_policy

ROOT = Path(__file__).resolve().parent.parent

QA_NOTE = "projects/attestors/notes/qa-approved"
TESTS_NOTE = "projects/attestors/notes/tests-passed"

EXAMPLE_POLICY = f"""
[gate]
required_attestations = ["{TESTS_NOTE}", "{QA_NOTE}"]
max_fixable_severity = "HIGH"
max_unfixable_severity = "CRITICAL"
allowed_cves = ["CVE-2023-44487"]
require_scan = true
require_build_provenance = true

[[gate.attestor]]
note = "{QA_NOTE}"
public_keys = ["keys/qa.pub"]
"""


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_policy(folder: Path, text: str, keys: dict[str, bytes] | None = None) -> Path:
    """Write ``text`` as folder/policy/gate.toml and each key file relative to it."""
    policy_dir = folder / "policy"
    for name, pem in (keys or {}).items():
        key_file = policy_dir / name
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(pem)
    policy_dir.mkdir(parents=True, exist_ok=True)
    policy_file = policy_dir / "gate.toml"
    policy_file.write_text(text)
    return policy_file


def policy_error(policy_file: Path) -> str:
    with pytest.raises(PolicyError) as raised:
        load_policy(policy_file)
    message = str(raised.value)
    assert "\n" not in message, "policy errors are one line"
    return message


def test_example_policy_loads_with_keys_relative_to_the_policy_file(tmp_path, monkeypatch, p256_key):
    policy_file = write_policy(tmp_path, EXAMPLE_POLICY, {"keys/qa.pub": public_pem(p256_key)})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    policy = load_policy(policy_file)

    assert policy.required_attestations == (TESTS_NOTE, QA_NOTE)
    assert policy.max_fixable_severity == "HIGH"
    assert policy.max_unfixable_severity == "CRITICAL"
    assert policy.allowed_cves == frozenset({"CVE-2023-44487"})
    assert policy.require_scan is True and policy.require_build_provenance is True
    attestor = policy.attestor_for(QA_NOTE)
    assert attestor is not None and attestor.key_files == (policy_file.parent / "keys/qa.pub",)
    assert attestor.public_keys[0].public_numbers() == p256_key.public_key().public_numbers()
    assert policy.attestor_for(TESTS_NOTE) is None


def test_absent_keys_take_the_safe_defaults(tmp_path):
    policy = load_policy(write_policy(tmp_path, "[gate]\nrequired_attestations = []\n"))

    assert policy == Policy(required_attestations=())
    assert policy.max_fixable_severity == BLOCK_ALL
    assert policy.max_unfixable_severity == BLOCK_ALL
    assert policy.allowed_cves == frozenset()
    assert policy.require_scan is True
    assert policy.require_build_provenance is True
    assert policy.attestors == ()


def test_policy_is_frozen(tmp_path):
    policy = load_policy(write_policy(tmp_path, "[gate]\nrequired_attestations = []\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.require_scan = False  # type: ignore[misc]


@pytest.mark.parametrize("value", ["allow_all", "Block_All", "critical", " medium "])
def test_severity_names_are_case_insensitive(tmp_path, value):
    text = f'[gate]\nrequired_attestations = []\nmax_fixable_severity = "{value}"\n'
    assert load_policy(write_policy(tmp_path, text)).max_fixable_severity == value.strip().upper()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[other]\nx = 1\n", "missing [gate] table"),
        ("[gate]\nmax_fixable_severity = \"HIGH\"\n", "gate.required_attestations: missing"),
        (
            "[gate]\nrequired_attestations = []\nmax_fixable_severity = \"SEVERE\"\n",
            "gate.max_fixable_severity: unknown severity 'SEVERE'",
        ),
        (
            "[gate]\nrequired_attestations = []\nmax_unfixable_severity = \"SEVERITY_UNSPECIFIED\"\n",
            "gate.max_unfixable_severity: unknown severity 'SEVERITY_UNSPECIFIED'",
        ),
        ("[gate]\nrequired_attestations = []\nmax_unfixable_severity = 3\n", "gate.max_unfixable_severity: expected a severity string, got integer"),
        ("[gate]\nrequired_attestations = \"notes/x\"\n", "gate.required_attestations: expected a list of strings, got string"),
        ("[gate]\nrequired_attestations = [\"a\", \"a\"]\n", "gate.required_attestations: note a is listed twice"),
        ("[gate]\nrequired_attestations = []\nallowed_cves = [1]\n", "gate.allowed_cves: expected non-empty strings, got integer"),
        ("[gate]\nrequired_attestations = []\nrequire_scan = \"yes\"\n", "gate.require_scan: expected true or false, got string"),
        ("[gate]\nrequired_attestations = []\nrequire_build_provenance = 1\n", "gate.require_build_provenance: expected true or false, got integer"),
        ("[gate]\nrequired_attestations = []\nrequire_scans = false\n", "gate.require_scans: unknown key"),
        ("[gate]\nrequired_attestations = []\nattestor = \"x\"\n", "gate.attestor: expected [[gate.attestor]] tables, got string"),
        (
            "[gate]\nrequired_attestations = [\"n\"]\n[[gate.attestor]]\nnote = \"other\"\npublic_keys = [\"k.pub\"]\n",
            "gate.attestor[0].note: other is not in gate.required_attestations",
        ),
        ("[gate]\nrequired_attestations = [\"n\"]\n[[gate.attestor]]\nnote = \"n\"\n", "gate.attestor[0].public_keys: missing"),
        (
            "[gate]\nrequired_attestations = [\"n\"]\n[[gate.attestor]]\nnote = \"n\"\npublic_keys = []\n",
            "gate.attestor[0].public_keys: empty",
        ),
        (
            "[gate]\nrequired_attestations = [\"n\"]\n[[gate.attestor]]\nnote = \"n\"\npublic_keys = [\"k.pub\"]\nkey = \"x\"\n",
            "gate.attestor[0].key: unknown key",
        ),
        ("[gate]\nrequired_attestations = [\"n\"]\n[[gate.attestor]]\npublic_keys = [\"k.pub\"]\n", "gate.attestor[0].note: expected a note name"),
        ("[gate\nrequired_attestations = []\n", "invalid TOML"),
    ],
)
def test_invalid_policies_raise_one_line_errors_naming_the_key(tmp_path, text, expected):
    assert expected in policy_error(write_policy(tmp_path, text))


def test_missing_policy_file(tmp_path):
    absent = tmp_path / "absent.toml"
    assert f"policy {absent}: not found" in policy_error(absent)


def test_missing_key_file_names_the_key_and_the_path(tmp_path):
    policy_file = write_policy(tmp_path, EXAMPLE_POLICY)
    message = policy_error(policy_file)
    assert "gate.attestor[0].public_keys[0]" in message
    assert f"key file {policy_file.parent / 'keys/qa.pub'}: not found" in message


def test_duplicate_attestor_for_one_note(tmp_path, p256_key):
    text = EXAMPLE_POLICY + f'\n[[gate.attestor]]\nnote = "{QA_NOTE}"\npublic_keys = ["keys/qa.pub"]\n'
    message = policy_error(write_policy(tmp_path, text, {"keys/qa.pub": public_pem(p256_key)}))
    assert f"gate.attestor[1].note: {QA_NOTE} already has a [[gate.attestor]] entry" in message


@pytest.mark.parametrize(
    "content",
    [
        b"not a pem at all",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
    ids=["garbage", "corrupt-pem"],
)
def test_unreadable_pem(tmp_path, content):
    message = policy_error(write_policy(tmp_path, EXAMPLE_POLICY, {"keys/qa.pub": content}))
    assert "gate.attestor[0].public_keys[0]" in message and "is not a PEM public key" in message


def test_private_key_instead_of_public_key(tmp_path, p256_key):
    private_pem = p256_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    message = policy_error(write_policy(tmp_path, EXAMPLE_POLICY, {"keys/qa.pub": private_pem}))
    assert "is not a PEM public key" in message


@pytest.mark.parametrize(
    ("make_key", "expected"),
    [
        (lambda: x25519.X25519PrivateKey.generate(), "unsupported key type"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "unsupported curve secp256k1"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA key of 1024 bits"),
    ],
    ids=["x25519", "secp256k1", "rsa1024"],
)
def test_unsupported_key_types(tmp_path, make_key, expected):
    message = policy_error(write_policy(tmp_path, EXAMPLE_POLICY, {"keys/qa.pub": public_pem(make_key())}))
    assert "gate.attestor[0].public_keys[0]" in message and expected in message


def test_every_supported_key_type_loads(tmp_path, p256_key):
    keys = {
        "keys/p256.pub": public_pem(p256_key),
        "keys/p384.pub": public_pem(ec.generate_private_key(ec.SECP384R1())),
        "keys/p521.pub": public_pem(ec.generate_private_key(ec.SECP521R1())),
        "keys/rsa.pub": public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "keys/ed25519.pub": public_pem(ed25519.Ed25519PrivateKey.generate()),
    }
    names = ", ".join(f'"{name}"' for name in keys)
    text = f'[gate]\nrequired_attestations = ["{QA_NOTE}"]\n[[gate.attestor]]\nnote = "{QA_NOTE}"\npublic_keys = [{names}]\n'

    attestor = load_policy(write_policy(tmp_path, text, keys)).attestor_for(QA_NOTE)

    assert attestor is not None
    key_types = [
        ec.EllipticCurvePublicKey,
        ec.EllipticCurvePublicKey,
        ec.EllipticCurvePublicKey,
        rsa.RSAPublicKey,
        ed25519.Ed25519PublicKey,
    ]
    assert len(attestor.public_keys) == len(key_types)
    assert all(isinstance(key, key_type) for key, key_type in zip(attestor.public_keys, key_types))
    assert [key.curve.name for key in attestor.public_keys[:3]] == ["secp256r1", "secp384r1", "secp521r1"]


def test_device_fifo_and_oversized_key_files_are_refused(tmp_path):
    text = EXAMPLE_POLICY.replace('"keys/qa.pub"', '"/dev/zero"')
    assert "key file /dev/zero: not a regular file" in policy_error(write_policy(tmp_path, text))
    fifo = tmp_path / "qa.fifo"
    os.mkfifo(fifo)
    text = EXAMPLE_POLICY.replace('"keys/qa.pub"', f'"{fifo}"')
    assert f"key file {fifo}: not a regular file" in policy_error(write_policy(tmp_path, text))
    message = policy_error(write_policy(tmp_path, EXAMPLE_POLICY, {"keys/qa.pub": b"A" * (64 * 1024 + 1)}))
    assert "qa.pub: larger than the 65536-byte limit" in message


def test_policy_that_is_not_a_regular_file_or_too_large(tmp_path):
    assert "policy /dev/zero: not a regular file" in policy_error(Path("/dev/zero"))
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    assert f"policy {big}: larger than the 1048576-byte limit" in policy_error(big)


@pytest.mark.parametrize("key_file", ["/dev/zero", "weak.pub"])
def test_cli_gate_refuses_unusable_key_files_with_exit_2(tmp_path, key_file):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    text = EXAMPLE_POLICY.replace('"keys/qa.pub"', f'"{key_file}"')
    policy_file = write_policy(tmp_path, text, {"weak.pub": public_pem(weak)})
    result = subprocess.run(
        [sys.executable, "-m", "dashboard", "gate", "--policy", str(policy_file),
         "--resource", "https://gcr.io/p/img@sha256:" + "a" * 64],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert str(policy_file) in result.stderr or key_file in result.stderr
    assert "Traceback" not in result.stderr
