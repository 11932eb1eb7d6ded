"""The deploy gate's policy: a ``[gate]`` table in a TOML file, read with ``tomllib``.

Example::

    [gate]
    required_attestations = ["projects/attestors/notes/tests-passed",
                             "projects/attestors/notes/qa-approved"]
    max_fixable_severity = "HIGH"        # a fixable vulnerability above this denies
    max_unfixable_severity = "CRITICAL"  # an unfixable one above this denies
    allowed_cves = ["CVE-2023-44487"]    # never deny for these
    require_scan = true                  # a FINISHED_SUCCESS DISCOVERY must exist
    require_build_provenance = true      # a BUILD occurrence must exist

    [[gate.attestor]]                    # optional per note: verify signatures
    note = "projects/attestors/notes/qa-approved"
    public_keys = ["keys/qa.pub"]        # PEM SubjectPublicKeyInfo, relative to this file

Severities order MINIMAL < LOW < MEDIUM < HIGH < CRITICAL; a threshold may also be
ALLOW_ALL (never denies, not even an unknown severity) or BLOCK_ALL (denies every
vulnerability of its class), as in kritis-signer's vulnerability signing policy.

Defaults for absent keys are the safe ones, so that loosening the gate is always written
down in the policy:

- ``required_attestations``: no default; the key must be present (an explicit ``[]``
  is accepted). Any default would either invent note names or silently let
  unattested releases through.
- ``max_fixable_severity`` and ``max_unfixable_severity``: ``BLOCK_ALL``.
- ``allowed_cves``: none.
- ``require_scan`` and ``require_build_provenance``: ``true``.
- attestors: none (required attestations are then checked for presence only).

Validation is strict: an unknown key inside ``[gate]`` (a typo would otherwise silently
fall back to a default), a wrong type, an unknown severity, a missing or unreadable key
file, a key of an unsupported type, an attestor without keys or for a note that is not
required all raise :class:`PolicyError` with a one-line message naming the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from dashboard.files import FileReadError, read_regular_file

SEVERITY_ORDER: tuple[str, ...] = ("MINIMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
ALLOW_ALL = "ALLOW_ALL"
BLOCK_ALL = "BLOCK_ALL"
THRESHOLDS: tuple[str, ...] = (*SEVERITY_ORDER, ALLOW_ALL, BLOCK_ALL)

# Curves whose ECDSA signatures the gate verifies; each curve fixes the hash (see signatures.py).
SUPPORTED_CURVES: tuple[str, ...] = ("secp256r1", "secp384r1", "secp521r1")
MIN_RSA_BITS = 2048
POLICY_LIMIT = 1024 * 1024
KEY_LIMIT = 64 * 1024

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]

_GATE_KEYS = frozenset(
    {
        "required_attestations",
        "max_fixable_severity",
        "max_unfixable_severity",
        "allowed_cves",
        "require_scan",
        "require_build_provenance",
        "attestor",
    }
)
_ATTESTOR_KEYS = frozenset({"note", "public_keys"})

# Builds the PolicyError for (key, problem); it knows the policy file being read.
_Fail = Callable[[str, str], "PolicyError"]


class PolicyError(ValueError):
    """The policy file cannot be used; the message is one line naming the offending key."""


@dataclass(frozen=True)
class Attestor:
    """Trusted keys for the attestations on one note."""

    note: str
    public_keys: tuple[PublicKey, ...]
    key_files: tuple[Path, ...]


@dataclass(frozen=True)
class Policy:
    """A loaded gate policy; field defaults are the safe defaults documented above."""

    required_attestations: tuple[str, ...]
    max_fixable_severity: str = BLOCK_ALL
    max_unfixable_severity: str = BLOCK_ALL
    allowed_cves: frozenset[str] = frozenset()
    require_scan: bool = True
    require_build_provenance: bool = True
    attestors: tuple[Attestor, ...] = field(default=())

    def attestor_for(self, note: str) -> Attestor | None:
        """The attestor whose keys must verify attestations on ``note``, if one is configured."""
        for attestor in self.attestors:
            if attestor.note == note:
                return attestor
        return None


def load_policy(path: str | Path) -> Policy:
    """Read and validate the ``[gate]`` table of the TOML policy at ``path``.

    Key files are resolved relative to the policy file's folder.
    Raises :class:`PolicyError` on any problem.
    """
    policy_path = Path(path)
    try:
        document = tomllib.loads(read_regular_file(policy_path, limit=POLICY_LIMIT, what="policy").decode("utf-8"))
    except FileReadError as error:
        raise PolicyError(str(error)) from None
    except UnicodeDecodeError:
        raise PolicyError(f"policy {policy_path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy {policy_path}: invalid TOML: {error}") from None

    gate = document.get("gate")
    if not isinstance(gate, dict):
        raise PolicyError(f"policy {policy_path}: missing [gate] table")
    return _parse_gate(gate, policy_path)


def _parse_gate(gate: dict[str, Any], policy_path: Path) -> Policy:
    def fail(key: str, problem: str) -> PolicyError:
        return PolicyError(f"policy {policy_path}: {key}: {problem}")

    for key in gate:
        if key not in _GATE_KEYS:
            raise fail(f"gate.{key}", f"unknown key (expected one of {', '.join(sorted(_GATE_KEYS))})")

    if "required_attestations" not in gate:
        raise fail("gate.required_attestations", "missing (list the required attestation notes; [] for none)")
    required = _string_list(gate["required_attestations"], "gate.required_attestations", fail)
    for index, note in enumerate(required):
        if note in required[:index]:
            raise fail("gate.required_attestations", f"note {note} is listed twice")

    attestors = _parse_attestors(gate.get("attestor", []), required, policy_path, fail)
    return Policy(
        required_attestations=required,
        max_fixable_severity=_threshold(gate, "max_fixable_severity", fail),
        max_unfixable_severity=_threshold(gate, "max_unfixable_severity", fail),
        allowed_cves=frozenset(_string_list(gate.get("allowed_cves", []), "gate.allowed_cves", fail)),
        require_scan=_boolean(gate, "require_scan", fail),
        require_build_provenance=_boolean(gate, "require_build_provenance", fail),
        attestors=attestors,
    )


def _string_list(value: Any, key: str, fail: _Fail) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise fail(key, f"expected a list of strings, got {_toml_type(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise fail(key, f"expected non-empty strings, got {_toml_type(item)} {item!r}")
    return tuple(item.strip() for item in value)


def _threshold(gate: dict[str, Any], name: str, fail: _Fail) -> str:
    key = f"gate.{name}"
    value = gate.get(name, BLOCK_ALL)
    if not isinstance(value, str):
        raise fail(key, f"expected a severity string, got {_toml_type(value)}")
    severity = value.strip().upper()
    if severity not in THRESHOLDS:
        raise fail(key, f"unknown severity {value!r} (expected one of {', '.join(THRESHOLDS)})")
    return severity


def _boolean(gate: dict[str, Any], name: str, fail: _Fail) -> bool:
    value = gate.get(name, True)
    if not isinstance(value, bool):
        raise fail(f"gate.{name}", f"expected true or false, got {_toml_type(value)}")
    return value


def _parse_attestors(value: Any, required: tuple[str, ...], policy_path: Path, fail: _Fail) -> tuple[Attestor, ...]:
    if not isinstance(value, list):
        raise fail("gate.attestor", f"expected [[gate.attestor]] tables, got {_toml_type(value)}")
    attestors: list[Attestor] = []
    for index, entry in enumerate(value):
        prefix = f"gate.attestor[{index}]"
        if not isinstance(entry, dict):
            raise fail(prefix, f"expected a table, got {_toml_type(entry)}")
        for key in entry:
            if key not in _ATTESTOR_KEYS:
                raise fail(f"{prefix}.{key}", "unknown key (expected note, public_keys)")
        note = entry.get("note")
        if not isinstance(note, str) or not note.strip():
            raise fail(f"{prefix}.note", f"expected a note name, got {_toml_type(note)}")
        note = note.strip()
        if note not in required:
            raise fail(f"{prefix}.note", f"{note} is not in gate.required_attestations, so its keys would never be used")
        if any(attestor.note == note for attestor in attestors):
            raise fail(f"{prefix}.note", f"{note} already has a [[gate.attestor]] entry")
        if "public_keys" not in entry:
            raise fail(f"{prefix}.public_keys", "missing (list PEM public key files)")
        key_names = _string_list(entry["public_keys"], f"{prefix}.public_keys", fail)
        if not key_names:
            raise fail(f"{prefix}.public_keys", "empty: an attestor needs at least one key")
        key_files = tuple(policy_path.parent / name for name in key_names)
        keys = tuple(
            _load_key(key_file, f"{prefix}.public_keys[{key_index}]", fail)
            for key_index, key_file in enumerate(key_files)
        )
        attestors.append(Attestor(note=note, public_keys=keys, key_files=key_files))
    return tuple(attestors)


def _load_key(key_file: Path, key: str, fail: _Fail) -> PublicKey:
    try:
        pem = read_regular_file(key_file, limit=KEY_LIMIT, what="key file")
    except FileReadError as error:
        raise fail(key, str(error)) from None
    try:
        public_key = load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(key, f"{key_file} is not a PEM public key: {first_line}") from None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in SUPPORTED_CURVES:
            raise fail(key, f"{key_file}: unsupported curve {public_key.curve.name} (expected P-256, P-384 or P-521)")
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise fail(key, f"{key_file}: RSA key of {public_key.key_size} bits (at least {MIN_RSA_BITS} required)")
        return public_key
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key
    raise fail(key, f"{key_file}: unsupported key type {type(public_key).__name__} (expected ECDSA, RSA or Ed25519)")


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)
