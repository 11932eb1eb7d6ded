"""The deploy gate: may this release (an image digest) be deployed under the policy?

:func:`evaluate_gate` judges one release from its normalised Grafeas occurrences
(see ``dashboard.occurrences``) and returns *every* check, not just the first failure;
the release is allowed only when all checks pass. :func:`evaluate_gates` judges many
releases at once, grouping the occurrences by resource once.

Only occurrences whose ``resource_uri`` equals the release's resource URI count, even if
the caller passes occurrences of other releases (defence in depth). The gate fails
closed: a source error, or a normalised frame that is missing or has no resource_uri
column, denies.

Check names (stable) and what their details say, in the order they are returned:

``source``
    Passes when the supply-chain record was read without errors; fails with the source
    error (``source_error=``) or the normalised frames that are missing or unusable.
``digest``
    Passes when the resource URI ends in ``@sha256:<64 hex>`` and names that digest;
    fails otherwise, since only a digest identifies a release.
``attestation:<note>``
    One per ``gate.required_attestations`` note, in policy order. Passes when the release
    has an ATTESTATION occurrence on the note; when the note has a ``[[gate.attestor]]``,
    one of those attestations must also verify with its keys (see ``dashboard.signatures``)
    for the release's digest. Fails naming the note and, per attestation, what failed.
``scan``
    Passes when a DISCOVERY occurrence has analysisStatus FINISHED_SUCCESS (``COMPLETE``
    is its alias in Grafeas v1), or when ``gate.require_scan`` is false.
``build-provenance``
    Passes when a BUILD occurrence exists, or when ``gate.require_build_provenance`` is
    false.
``vulnerability:<CVE>``
    One per vulnerability id (sorted), over all packages it affects. The detail names the
    CVE, its severity, package, fix availability and the threshold it was judged against.

Vulnerability rules (kritis-signer semantics): a CVE listed in ``gate.allowed_cves`` (by
id or full note name) never denies. Otherwise a vulnerability with a fix available is
judged against ``max_fixable_severity`` and one without against ``max_unfixable_severity``;
it denies when its severity is *above* the threshold (with HIGH, a CRITICAL denies and a
HIGH does not). ALLOW_ALL never denies; BLOCK_ALL denies every vulnerability of its class.

SEVERITY_UNSPECIFIED (or a missing or unknown severity) fails closed: such a
vulnerability is treated as above every named threshold, so it denies unless its
threshold is ALLOW_ALL -- the only level kritis-signer documents as tolerating unknown
severities. Likewise, when the fix availability is unknown (neither true nor false) the
vulnerability is judged against both thresholds and denies if either would deny.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dashboard.policy import ALLOW_ALL, BLOCK_ALL, SEVERITY_ORDER, Policy
from dashboard.signatures import verify_attestation

if TYPE_CHECKING:
    from dashboard.occurrences import Occurrences

# The normalised frames the gate reads (each grouped by resource_uri) and the columns it uses.
GATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "vulnerabilities": (
        "occurrence", "note_name", "cve", "effective_severity", "package", "installed_version",
        "fixed_version", "fix_available",
    ),
    "builds": ("occurrence", "builder", "provenance_builder_id"),
    "attestations": ("occurrence", "note_name", "serialized_payload", "payload_error", "signatures"),
    "discoveries": ("occurrence", "analysis_status", "last_scan_time"),
}
GATE_FRAMES: tuple[str, ...] = tuple(GATE_COLUMNS)
# DISCOVERY analysis statuses meaning "scan finished successfully" (COMPLETE aliases it in v1).
FINISHED_SCAN_STATUSES = frozenset({"FINISHED_SUCCESS", "COMPLETE"})

_DIGEST_IN_URI = re.compile(r"@(sha256:[0-9a-f]{64})$")
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}

Record = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One check of the gate and why it passed or failed.

    ``kind`` is what was checked (``attestation``, ``vulnerability``, ``scan``, …) and ``subject``
    the note or CVE a per-item check is about, so that readers never parse :attr:`name`.
    """

    kind: str
    passed: bool
    detail: str
    subject: str | None = None

    @property
    def name(self) -> str:
        """The stable check name: ``kind``, or ``kind:subject`` (``attestation:<note>``)."""
        return self.kind if self.subject is None else f"{self.kind}:{self.subject}"


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one release, with every check that led to it."""

    resource: str
    allowed: bool
    checks: list[Check]

    @property
    def reasons(self) -> list[str]:
        """Details of the failed checks: why the release is denied (empty when allowed)."""
        return [check.detail for check in self.checks if not check.passed]

    def to_json_dict(self) -> dict[str, Any]:
        """``{"resource", "allowed", "checks": [{"name", "passed", "detail"}], "reasons"}``."""
        return {
            "resource": self.resource,
            "allowed": self.allowed,
            "checks": [{"name": check.name, "passed": check.passed, "detail": check.detail} for check in self.checks],
            "reasons": self.reasons,
        }


@dataclass(frozen=True)
class _ResourceIndex:
    """The gate frames' records grouped by resource_uri, plus what made the frames unusable."""

    records: dict[str, dict[str, list[Record]]]
    problems: tuple[str, ...]

    def release(self, resource_uri: str) -> dict[str, list[Record]]:
        return {frame: self.records[frame].get(resource_uri, []) for frame in GATE_FRAMES}


def release_digest(resource_uri: str) -> str | None:
    """The ``sha256:…`` digest that ends ``resource_uri`` (with or without scheme), if any."""
    match = _DIGEST_IN_URI.search(resource_uri.strip()) if isinstance(resource_uri, str) else None
    return match.group(1) if match else None


def evaluate_gate(
    resource_uri: str,
    occurrences: Occurrences,
    policy: Policy,
    *,
    source_error: str | None = None,
) -> GateResult:
    """Judge the release ``resource_uri`` against ``policy``; ``source_error`` denies it."""
    index = _index_by_resource(occurrences, only=resource_uri)
    return _evaluate(resource_uri, index, policy, source_error)


def evaluate_gates(
    occurrences: Occurrences,
    policy: Policy,
    resource_uris: Iterable[str] | None = None,
    *,
    source_error: str | None = None,
) -> dict[str, GateResult]:
    """Judge many releases at once, keyed by resource URI.

    ``resource_uris`` defaults to every resource in ``occurrences.all`` (first-seen order).
    The frames are grouped by resource once, so the cost grows with the number of
    occurrences, not with releases × occurrences.
    """
    index = _index_by_resource(occurrences)
    if resource_uris is None:
        resource_uris = _resources_in(getattr(occurrences, "all", None), index)
    return {uri: _evaluate(uri, index, policy, source_error) for uri in dict.fromkeys(resource_uris)}


def _index_by_resource(occurrences: Any, only: str | None = None) -> _ResourceIndex:
    records: dict[str, dict[str, list[Record]]] = {}
    problems: list[str] = []
    for name in GATE_FRAMES:
        frame = getattr(occurrences, name, None)
        grouped: dict[str, list[Record]] = defaultdict(list)
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"the normalised occurrences have no {name} frame")
        elif not frame.empty and "resource_uri" not in frame.columns:
            problems.append(f"the {name} frame has no resource_uri column")
        elif not frame.empty:
            if only is not None:
                frame = frame[frame["resource_uri"] == only]
            used = ["resource_uri", *(column for column in GATE_COLUMNS[name] if column in frame.columns)]
            for record in frame[used].to_dict("records"):
                grouped[record["resource_uri"]].append(record)
        records[name] = grouped
    return _ResourceIndex(records=records, problems=tuple(problems))


def _resources_in(all_frame: Any, index: _ResourceIndex) -> list[str]:
    if isinstance(all_frame, pd.DataFrame) and "resource_uri" in all_frame.columns:
        return [uri for uri in pd.unique(all_frame["resource_uri"].dropna()) if isinstance(uri, str)]
    seen = (uri for grouped in index.records.values() for uri in grouped)
    return [uri for uri in dict.fromkeys(seen) if isinstance(uri, str)]


def _evaluate(resource_uri: str, index: _ResourceIndex, policy: Policy, source_error: str | None) -> GateResult:
    release = index.release(resource_uri)
    digest = release_digest(resource_uri)
    checks = [
        _source_check(source_error, index.problems),
        _digest_check(resource_uri, digest),
        *(_attestation_check(note, release["attestations"], policy, digest) for note in policy.required_attestations),
        _scan_check(release["discoveries"], policy),
        _build_provenance_check(release["builds"], policy),
        *_vulnerability_checks(release["vulnerabilities"], policy),
    ]
    return GateResult(resource=resource_uri, allowed=all(check.passed for check in checks), checks=checks)


def _source_check(source_error: str | None, problems: tuple[str, ...]) -> Check:
    failures = ([str(source_error)] if source_error else []) + list(problems)
    if failures:
        return Check("source", False, f"supply-chain record could not be read: {'; '.join(failures)}; the gate fails closed")
    return Check("source", True, "supply-chain record read without errors")


def _digest_check(resource_uri: str, digest: str | None) -> Check:
    if digest is None:
        return Check(
            "digest",
            False,
            f"resource URI {resource_uri} names no image digest (…@sha256:<64 hex digits>); only a digest identifies a release",
        )
    return Check("digest", True, f"release digest {digest}")


def _attestation_check(note: str, attestations: list[Record], policy: Policy, digest: str | None) -> Check:
    on_note = [record for record in attestations if record.get("note_name") == note]
    if not on_note:
        return Check("attestation", False, f"no ATTESTATION occurrence on note {note} for this release", note)
    attestor = policy.attestor_for(note)
    if attestor is None:
        return Check(
            "attestation",
            True,
            f"ATTESTATION occurrence on note {note} present (signatures not verified: no [[gate.attestor]] for this note)",
            note,
        )
    failures = []
    for record in on_note:
        occurrence = _text(record.get("occurrence")) or "(unnamed occurrence)"
        signatures = record.get("signatures")
        verification = verify_attestation(
            record.get("serialized_payload"),
            signatures if isinstance(signatures, (list, tuple)) else [],
            list(attestor.public_keys),
            digest or "",
        )
        if verification.verified:
            return Check("attestation", True, f"attestation {occurrence} on note {note} verified: {verification.reason}", note)
        reason = verification.reason
        payload_error = _text(record.get("payload_error"))
        if payload_error:
            reason += f" ({payload_error})"
        failures.append(f"{occurrence}: {reason}")
    key_files = ", ".join(key_file.name for key_file in attestor.key_files)
    return Check(
        "attestation",
        False,
        f"no attestation on note {note} verified with its attestor keys ({key_files}): {'; '.join(failures)}",
        note,
    )


def _scan_check(discoveries: list[Record], policy: Policy) -> Check:
    if not policy.require_scan:
        return Check("scan", True, "scan not required by the policy (gate.require_scan = false)")
    for record in discoveries:
        status = _text(record.get("analysis_status")).upper()
        if status in FINISHED_SCAN_STATUSES:
            occurrence = _text(record.get("occurrence")) or "(unnamed occurrence)"
            last_scan = _text(record.get("last_scan_time"))
            when = f", last scan {last_scan}" if last_scan else ""
            return Check("scan", True, f"vulnerability scan finished: DISCOVERY {occurrence} has analysisStatus {status}{when}")
    if not discoveries:
        return Check("scan", False, "no DISCOVERY occurrence for this release, so it has not been scanned (gate.require_scan = true)")
    statuses = ", ".join(dict.fromkeys(_text(record.get("analysis_status")) or "unknown" for record in discoveries))
    return Check(
        "scan",
        False,
        f"vulnerability scan not finished: DISCOVERY analysisStatus {statuses}; FINISHED_SUCCESS is required (gate.require_scan = true)",
    )


def _build_provenance_check(builds: list[Record], policy: Policy) -> Check:
    if not policy.require_build_provenance:
        return Check("build-provenance", True, "build provenance not required by the policy (gate.require_build_provenance = false)")
    if not builds:
        return Check(
            "build-provenance",
            False,
            "no BUILD occurrence for this release, so its build provenance is unknown (gate.require_build_provenance = true)",
        )
    record = builds[0]
    occurrence = _text(record.get("occurrence")) or "(unnamed occurrence)"
    builder = _text(record.get("provenance_builder_id")) or _text(record.get("builder"))
    by = f" by builder {builder}" if builder else ""
    return Check("build-provenance", True, f"BUILD occurrence {occurrence} records how the release was built{by}")


def _vulnerability_checks(vulnerabilities: list[Record], policy: Policy) -> list[Check]:
    judgements: dict[str, list[tuple[bool, str]]] = defaultdict(list)
    for record in vulnerabilities:
        vulnerability_id = (
            _text(record.get("cve")) or _text(record.get("note_name")) or _text(record.get("occurrence")) or "unidentified"
        )
        judgements[vulnerability_id].append(_judge_vulnerability(vulnerability_id, record, policy))
    checks = []
    for vulnerability_id in sorted(judgements):
        denials = [detail for denies, detail in judgements[vulnerability_id] if denies]
        details = denials or [detail for _, detail in judgements[vulnerability_id]]
        checks.append(Check("vulnerability", not denials, "; ".join(dict.fromkeys(details)), vulnerability_id))
    return checks


def _judge_vulnerability(vulnerability_id: str, record: Record, policy: Policy) -> tuple[bool, str]:
    """``(denies, detail)`` for one vulnerability occurrence."""
    severity = _text(record.get("effective_severity")).upper()
    known_severity = severity if severity in _SEVERITY_RANK else None
    package = " ".join(part for part in (_text(record.get("package")), _text(record.get("installed_version"))) if part)
    subject = f"{vulnerability_id} {known_severity or 'with unspecified severity'}" + (f" in {package}" if package else "")

    fix_available = _fix_available(record.get("fix_available"))
    fixed_version = _text(record.get("fixed_version"))
    if fix_available is True:
        fix = f"fix available: {fixed_version}" if fixed_version else "fix available"
        thresholds = [("max_fixable_severity", policy.max_fixable_severity)]
    elif fix_available is False:
        fix = "no fix available"
        thresholds = [("max_unfixable_severity", policy.max_unfixable_severity)]
    else:
        fix = "fix availability unknown, judged against both thresholds"
        thresholds = [
            ("max_fixable_severity", policy.max_fixable_severity),
            ("max_unfixable_severity", policy.max_unfixable_severity),
        ]
    subject += f" ({fix})"

    if vulnerability_id in policy.allowed_cves or _text(record.get("note_name")) in policy.allowed_cves:
        return False, f"{subject} is exempted by gate.allowed_cves"
    for key, threshold in thresholds:
        if threshold == BLOCK_ALL:
            return True, f"{subject} is denied by gate.{key} BLOCK_ALL (every such vulnerability denies)"
        if threshold == ALLOW_ALL:
            continue
        if known_severity is None:
            return True, f"{subject} is denied by gate.{key} {threshold}: only ALLOW_ALL tolerates an unspecified severity"
        if _SEVERITY_RANK[known_severity] > _SEVERITY_RANK[threshold]:
            return True, f"{subject} is above gate.{key} {threshold}"
    judged = " and ".join(f"gate.{key} {threshold}" for key, threshold in thresholds)
    return False, f"{subject} is within {judged}"


def _fix_available(value: Any) -> bool | None:
    """True or False when the record says so; None when fix availability is unknown."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return None


def _text(value: Any) -> str:
    """``value`` as stripped text; "" for None, NaN, NaT and other missing values."""
    if isinstance(value, str):
        return value.strip()
    if value is None or isinstance(value, (list, tuple, dict, bytes, bytearray)):
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        return ""
    return str(value).strip()
