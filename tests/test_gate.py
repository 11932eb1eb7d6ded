"""Tests for dashboard.gate: every kind of denial, an allowed release, fail-closed
behaviour, many releases at once, and the real Grafeas samples through the normaliser."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.gate import Check, GateResult, evaluate_gate, evaluate_gates, release_digest
from dashboard.occurrences import COLUMNS, Occurrences
from dashboard.policy import Attestor, Policy, load_policy

FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"
QA_NOTE = "projects/attestors/notes/qa-approved"
TESTS_NOTE = "projects/attestors/notes/tests-passed"
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
RELEASE = f"https://gcr.io/p/img@{DIGEST}"
OTHER_RELEASE = f"https://gcr.io/p/img@{OTHER_DIGEST}"
FRAME_KINDS = [kind for kind in COLUMNS if kind != "all"]

def frame(kind: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS[kind]))


def frames(**rows_by_kind: list[dict]) -> Occurrences:
    """The normaliser's frames, with only the given rows (the columns are the normaliser's own)."""
    built = {kind: frame(kind, rows_by_kind.get(kind, [])) for kind in FRAME_KINDS}
    every = pd.concat([built[kind][list(COLUMNS["all"])] for kind in rows_by_kind], ignore_index=True) \
        if rows_by_kind else frame("all", [])
    return Occurrences(**built, all=every)


_counter = iter(range(1, 1_000_000))


def occurrence(kind: str, resource: str = RELEASE, note: str = "projects/p/notes/n", **fields) -> dict:
    return {
        "occurrence": f"projects/p/occurrences/{kind.lower()}-{next(_counter)}",
        "resource_uri": resource,
        "note_name": note,
        "kind": kind,
        "create_time": pd.Timestamp("2024-01-01T00:00:00Z"),
        **fields,
    }


def vulnerability(cve: str, severity: str, fix_available, resource: str = RELEASE, package: str = "openssl") -> dict:
    return occurrence(
        "VULNERABILITY",
        resource,
        note=f"projects/goog-vulnz/notes/{cve}",
        cve=cve,
        effective_severity=severity,
        cvss=7.5,
        package=package,
        installed_version="3.0.1",
        fixed_version="3.0.2" if fix_available else None,
        fix_available=fix_available,
        description="",
    )


def simple_signing_payload(digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "gcr.io/p/img"},
                "image": {"docker-manifest-digest": digest},
                "type": "Google cloud binauthz container signature",
            }
        }
    ).encode()


def attestation(note: str, resource: str = RELEASE, payload: bytes | None = None, signatures=(), payload_error=None) -> dict:
    return occurrence(
        "ATTESTATION",
        resource,
        note=note,
        serialized_payload=payload,
        payload_error=payload_error,
        content_type="SIMPLE_SIGNING_JSON",
        signatures=list(signatures),
    )


def signature(value: bytes | None, error: str | None = None) -> dict:
    return {"public_key_id": "ni:///sha-256;qa", "signature": value, "error": error}


def scan(status: str = "FINISHED_SUCCESS", resource: str = RELEASE) -> dict:
    return occurrence(
        "DISCOVERY",
        resource,
        note="projects/goog-analysis/notes/PACKAGE_VULNERABILITY",
        analysis_status=status,
        last_scan_time=pd.Timestamp("2024-01-02T00:00:00Z"),
    )


def build(resource: str = RELEASE) -> dict:
    return occurrence(
        "BUILD",
        resource,
        note="projects/verified-builder/notes/build",
        builder="cloudbuild",
        provenance_builder_id="https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3",
    )


@pytest.fixture(scope="module")
def qa_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


@pytest.fixture()
def policy(qa_key) -> Policy:
    """The issue's example policy, with qa-approved attestations verified by qa_key."""
    return Policy(
        required_attestations=(TESTS_NOTE, QA_NOTE),
        max_fixable_severity="HIGH",
        max_unfixable_severity="CRITICAL",
        allowed_cves=frozenset({"CVE-2023-44487"}),
        require_scan=True,
        require_build_provenance=True,
        attestors=(Attestor(note=QA_NOTE, public_keys=(qa_key.public_key(),), key_files=(Path("keys/qa.pub"),)),),
    )


def good_release(qa_key, resource: str = RELEASE, digest: str = DIGEST, vulnerabilities: list[dict] | None = None) -> dict:
    """Rows of a release that passes the example policy."""
    payload = simple_signing_payload(digest)
    return {
        "attestations": [
            attestation(TESTS_NOTE, resource),
            attestation(QA_NOTE, resource, payload, [signature(sign(qa_key, payload))]),
        ],
        "discoveries": [scan(resource=resource)],
        "builds": [build(resource)],
        "vulnerabilities": vulnerabilities if vulnerabilities is not None else [
            vulnerability("CVE-2024-0001", "HIGH", True, resource),
            vulnerability("CVE-2024-0002", "CRITICAL", False, resource),
        ],
    }


def check(result: GateResult, name: str) -> Check:
    matches = [candidate for candidate in result.checks if candidate.name == name]
    assert len(matches) == 1, f"expected one {name} check in {[c.name for c in result.checks]}"
    return matches[0]


def denied_by(result: GateResult, name: str) -> Check:
    """Assert the release is denied and ``name`` is (among) the failing checks."""
    failed = check(result, name)
    assert not result.allowed and not failed.passed
    assert failed.detail in result.reasons
    return failed


# --- an allowed release ------------------------------------------------------------------


def test_allowed_release_passes_every_check(qa_key, policy):
    result = evaluate_gate(RELEASE, frames(**good_release(qa_key)), policy)

    assert result.allowed and result.reasons == []
    assert [c.name for c in result.checks] == [
        "source",
        "digest",
        f"attestation:{TESTS_NOTE}",
        f"attestation:{QA_NOTE}",
        "scan",
        "build-provenance",
        "vulnerability:CVE-2024-0001",
        "vulnerability:CVE-2024-0002",
    ]
    assert check(result, "source").detail == "supply-chain record read without errors"
    assert check(result, "digest").detail == f"release digest {DIGEST}"
    assert check(result, "scan").detail.startswith("vulnerability scan finished: DISCOVERY projects/p/occurrences/discovery-")
    assert check(result, "scan").detail.endswith("has analysisStatus FINISHED_SUCCESS, last scan 2024-01-02 00:00:00+00:00")
    assert check(result, f"attestation:{QA_NOTE}").detail.endswith(
        f"on note {QA_NOTE} verified: signature verified with trusted key 1 of 1; payload names digest {DIGEST}"
    )
    assert "signatures not verified" in check(result, f"attestation:{TESTS_NOTE}").detail
    assert check(result, "vulnerability:CVE-2024-0001").detail == (
        "CVE-2024-0001 HIGH in openssl 3.0.1 (fix available: 3.0.2) is within gate.max_fixable_severity HIGH"
    )
    assert check(result, "vulnerability:CVE-2024-0002").detail == (
        "CVE-2024-0002 CRITICAL in openssl 3.0.1 (no fix available) is within gate.max_unfixable_severity CRITICAL"
    )


def test_to_json_dict_has_exactly_the_public_shape(qa_key, policy):
    rows = good_release(qa_key)
    rows["builds"] = []
    result = evaluate_gate(RELEASE, frames(**rows), policy)

    document = result.to_json_dict()

    assert list(document) == ["resource", "allowed", "checks", "reasons"]
    assert document["resource"] == RELEASE and document["allowed"] is False
    assert all(list(entry) == ["name", "passed", "detail"] for entry in document["checks"])
    assert document["reasons"] == [check(result, "build-provenance").detail]
    assert json.loads(json.dumps(document)) == document


# --- attestations -------------------------------------------------------------------------


def test_missing_attestation_denies(qa_key, policy):
    rows = good_release(qa_key)
    rows["attestations"] = rows["attestations"][1:]

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    failed = denied_by(result, f"attestation:{TESTS_NOTE}")
    assert failed.detail == f"no ATTESTATION occurrence on note {TESTS_NOTE} for this release"
    assert len(result.reasons) == 1


def test_signature_by_an_untrusted_key_denies(qa_key, policy):
    payload = simple_signing_payload(DIGEST)
    intruder = ec.generate_private_key(ec.SECP256R1())
    rows = good_release(qa_key)
    rows["attestations"][1] = attestation(QA_NOTE, RELEASE, payload, [signature(sign(intruder, payload))])

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    detail = denied_by(result, f"attestation:{QA_NOTE}").detail
    assert detail.startswith(f"no attestation on note {QA_NOTE} verified with its attestor keys (qa.pub): ")
    assert detail.endswith("no signature verified with the 1 trusted key")


def test_attestation_payload_for_another_digest_denies(qa_key, policy):
    payload = simple_signing_payload(OTHER_DIGEST)
    rows = good_release(qa_key)
    rows["attestations"][1] = attestation(QA_NOTE, RELEASE, payload, [signature(sign(qa_key, payload))])

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert f"payload for another digest {OTHER_DIGEST} vs release {DIGEST}" in denied_by(result, f"attestation:{QA_NOTE}").detail


def test_malformed_signature_and_missing_payload_are_reported_not_raised(qa_key, policy):
    payload = simple_signing_payload(DIGEST)
    rows = good_release(qa_key)
    rows["attestations"][1:] = [
        attestation(QA_NOTE, RELEASE, payload, [signature(None, "signature is not valid base64")]),
        attestation(QA_NOTE, RELEASE, None, [], payload_error="serializedPayload is not valid base64"),
        attestation(QA_NOTE, RELEASE, b"not json", [signature(sign(qa_key, b"not json"))]),
    ]

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    detail = denied_by(result, f"attestation:{QA_NOTE}").detail
    assert "malformed signature (signature 1: signature is not valid base64)" in detail
    assert "attestation has no payload (serializedPayload is not valid base64)" in detail
    assert "payload is not JSON" in detail


def test_one_verified_attestation_on_the_note_is_enough(qa_key, policy):
    rows = good_release(qa_key)
    rows["attestations"].insert(1, attestation(QA_NOTE, RELEASE, b"junk", [signature(b"junk")]))

    assert evaluate_gate(RELEASE, frames(**rows), policy).allowed


def test_attestation_of_another_release_does_not_count(qa_key, policy):
    rows = good_release(qa_key)
    other = good_release(qa_key, OTHER_RELEASE, OTHER_DIGEST)
    rows["attestations"] = other["attestations"]

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    denied_by(result, f"attestation:{TESTS_NOTE}")
    denied_by(result, f"attestation:{QA_NOTE}")


# --- vulnerabilities ----------------------------------------------------------------------


def test_critical_fixable_cve_denies(qa_key, policy):
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-1111", "CRITICAL", True)])

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert denied_by(result, "vulnerability:CVE-2024-1111").detail == (
        "CVE-2024-1111 CRITICAL in openssl 3.0.1 (fix available: 3.0.2) is above gate.max_fixable_severity HIGH"
    )
    assert result.reasons == [check(result, "vulnerability:CVE-2024-1111").detail]


def test_unfixable_vulnerability_above_threshold_denies(qa_key, policy):
    strict = dataclasses.replace(policy, max_unfixable_severity="MEDIUM")
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-2222", "HIGH", False)])

    result = evaluate_gate(RELEASE, frames(**rows), strict)

    assert denied_by(result, "vulnerability:CVE-2024-2222").detail == (
        "CVE-2024-2222 HIGH in openssl 3.0.1 (no fix available) is above gate.max_unfixable_severity MEDIUM"
    )


def test_allowed_cves_are_never_denied(qa_key, policy):
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2023-44487", "CRITICAL", True, package="nghttp2")])

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert result.allowed
    assert check(result, "vulnerability:CVE-2023-44487").detail == (
        "CVE-2023-44487 CRITICAL in nghttp2 3.0.1 (fix available: 3.0.2) is exempted by gate.allowed_cves"
    )


def test_allowed_cves_match_full_note_names_too(qa_key, policy):
    by_note = dataclasses.replace(policy, allowed_cves=frozenset({"projects/goog-vulnz/notes/CVE-2024-3333"}))
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-3333", "CRITICAL", True)])

    assert evaluate_gate(RELEASE, frames(**rows), by_note).allowed


@pytest.mark.parametrize(
    ("severity", "threshold", "denies"),
    [
        ("CRITICAL", "HIGH", True),
        ("HIGH", "HIGH", False),
        ("MINIMAL", "MINIMAL", False),
        ("LOW", "MINIMAL", True),
        ("CRITICAL", "CRITICAL", False),
        ("CRITICAL", "ALLOW_ALL", False),
        ("SEVERITY_UNSPECIFIED", "ALLOW_ALL", False),
        ("MINIMAL", "BLOCK_ALL", True),
        ("SEVERITY_UNSPECIFIED", "CRITICAL", True),
        (None, "CRITICAL", True),
        ("bogus", "CRITICAL", True),
    ],
)
@pytest.mark.parametrize("fixable", [True, False])
def test_severity_thresholds(qa_key, policy, severity, threshold, denies, fixable):
    key = "max_fixable_severity" if fixable else "max_unfixable_severity"
    judged = dataclasses.replace(policy, **{key: threshold})
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-4444", severity, fixable)])

    result = evaluate_gate(RELEASE, frames(**rows), judged)

    vulnerability_check = check(result, "vulnerability:CVE-2024-4444")
    assert vulnerability_check.passed is not denies and result.allowed is not denies
    assert f"gate.{key} {threshold}" in vulnerability_check.detail


def test_unspecified_severity_detail_explains_the_fail_closed_choice(qa_key, policy):
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-5555", "SEVERITY_UNSPECIFIED", True)])

    detail = denied_by(evaluate_gate(RELEASE, frames(**rows), policy), "vulnerability:CVE-2024-5555").detail

    assert detail == (
        "CVE-2024-5555 with unspecified severity in openssl 3.0.1 (fix available: 3.0.2) is denied by "
        "gate.max_fixable_severity HIGH: only ALLOW_ALL tolerates an unspecified severity"
    )


def test_block_all_detail(qa_key, policy):
    blocking = dataclasses.replace(policy, max_unfixable_severity="BLOCK_ALL")
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-6666", "LOW", False)])

    detail = denied_by(evaluate_gate(RELEASE, frames(**rows), blocking), "vulnerability:CVE-2024-6666").detail

    assert detail.endswith("is denied by gate.max_unfixable_severity BLOCK_ALL (every such vulnerability denies)")


@pytest.mark.parametrize("fix_available", [None, float("nan")])
def test_unknown_fix_availability_is_judged_against_both_thresholds(qa_key, policy, fix_available):
    rows = good_release(qa_key, vulnerabilities=[vulnerability("CVE-2024-7777", "CRITICAL", fix_available)])

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert denied_by(result, "vulnerability:CVE-2024-7777").detail.endswith(
        "(fix availability unknown, judged against both thresholds) is above gate.max_fixable_severity HIGH"
    )


def test_one_check_per_cve_across_packages_reports_the_denials(qa_key, policy):
    rows = good_release(
        qa_key,
        vulnerabilities=[
            vulnerability("CVE-2024-8888", "CRITICAL", False, package="libssl"),
            vulnerability("CVE-2024-8888", "CRITICAL", True, package="openssl"),
        ],
    )

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert denied_by(result, "vulnerability:CVE-2024-8888").detail == (
        "CVE-2024-8888 CRITICAL in openssl 3.0.1 (fix available: 3.0.2) is above gate.max_fixable_severity HIGH"
    )


def test_vulnerability_of_another_release_does_not_count(qa_key, policy):
    rows = good_release(qa_key)
    rows["vulnerabilities"].append(vulnerability("CVE-2024-9999", "CRITICAL", True, OTHER_RELEASE))

    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert result.allowed
    assert "vulnerability:CVE-2024-9999" not in [c.name for c in result.checks]


# --- scan and build provenance ------------------------------------------------------------


@pytest.mark.parametrize("status", ["PENDING", "SCANNING", "FINISHED_FAILED", "FINISHED_UNSUPPORTED", "ANALYSIS_STATUS_UNSPECIFIED"])
def test_unfinished_scan_denies(qa_key, policy, status):
    rows = good_release(qa_key)
    rows["discoveries"] = [scan(status)]

    detail = denied_by(evaluate_gate(RELEASE, frames(**rows), policy), "scan").detail

    assert detail == (
        f"vulnerability scan not finished: DISCOVERY analysisStatus {status}; FINISHED_SUCCESS is required (gate.require_scan = true)"
    )


def test_no_scan_denies_unless_not_required(qa_key, policy):
    rows = good_release(qa_key)
    rows["discoveries"] = [scan(resource=OTHER_RELEASE)]

    detail = denied_by(evaluate_gate(RELEASE, frames(**rows), policy), "scan").detail
    relaxed = evaluate_gate(RELEASE, frames(**rows), dataclasses.replace(policy, require_scan=False))

    assert detail == "no DISCOVERY occurrence for this release, so it has not been scanned (gate.require_scan = true)"
    assert relaxed.allowed
    assert check(relaxed, "scan").detail == "scan not required by the policy (gate.require_scan = false)"


def test_complete_is_the_v1_alias_of_finished_success(qa_key, policy):
    rows = good_release(qa_key)
    rows["discoveries"] = [scan("PENDING"), scan("COMPLETE")]

    assert evaluate_gate(RELEASE, frames(**rows), policy).allowed


def test_no_build_provenance_denies_unless_not_required(qa_key, policy):
    rows = good_release(qa_key)
    rows["builds"] = []

    detail = denied_by(evaluate_gate(RELEASE, frames(**rows), policy), "build-provenance").detail
    relaxed = evaluate_gate(RELEASE, frames(**rows), dataclasses.replace(policy, require_build_provenance=False))

    assert detail == (
        "no BUILD occurrence for this release, so its build provenance is unknown (gate.require_build_provenance = true)"
    )
    assert relaxed.allowed


def test_build_provenance_detail_names_the_builder(qa_key, policy):
    rows = good_release(qa_key)
    result = evaluate_gate(RELEASE, frames(**rows), policy)

    assert check(result, "build-provenance").detail == (
        f"BUILD occurrence {rows['builds'][0]['occurrence']} records how the release was built "
        "by builder https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3"
    )


# --- failing closed -----------------------------------------------------------------------


def test_source_error_denies_and_keeps_every_other_check(qa_key, policy):
    result = evaluate_gate(RELEASE, frames(**good_release(qa_key)), policy, source_error="Grafeas returned HTTP 503")

    failed = denied_by(result, "source")
    assert failed.detail == "supply-chain record could not be read: Grafeas returned HTTP 503; the gate fails closed"
    assert result.reasons == [failed.detail]
    assert len(result.checks) == 8


def test_missing_or_unusable_frames_deny():
    broken = SimpleNamespace(
        vulnerabilities=pd.DataFrame({"cve": ["CVE-2024-0001"]}),
        builds=None,
        attestations=frame("attestations", []),
        discoveries=frame("discoveries", []),
    )

    result = evaluate_gate(RELEASE, broken, Policy(required_attestations=()))

    assert denied_by(result, "source").detail == (
        "supply-chain record could not be read: the vulnerabilities frame has no resource_uri column; "
        "the normalised occurrences have no builds frame; the gate fails closed"
    )


def test_empty_record_is_denied_by_the_safe_defaults():
    result = evaluate_gate(RELEASE, frames(), Policy(required_attestations=(QA_NOTE,)))

    assert not result.allowed
    assert [c.name for c in result.checks if not c.passed] == [f"attestation:{QA_NOTE}", "scan", "build-provenance"]


@pytest.mark.parametrize(
    ("resource_uri", "digest"),
    [
        (f"https://gcr.io/p/img@{DIGEST}", DIGEST),
        (f"gcr.io/p/img@{DIGEST}", DIGEST),
        (f"us-docker.pkg.dev/p/repo/img:v1@{DIGEST}", DIGEST),
        ("https://gcr.io/p/img:latest", None),
        ("https://gcr.io/p/img@sha256:foo", None),
        (f"https://gcr.io/p/img@{DIGEST}0", None),
        (f"https://gcr.io/p/img@{DIGEST.upper()}", None),
    ],
)
def test_release_digest_is_parsed_from_the_resource_uri(resource_uri, digest):
    assert release_digest(resource_uri) == digest


def test_release_without_a_digest_is_denied(qa_key, policy):
    tagged = "https://gcr.io/p/img:latest"
    rows = good_release(qa_key, resource=tagged)

    result = evaluate_gate(tagged, frames(**rows), policy)

    assert denied_by(result, "digest").detail.startswith(f"resource URI {tagged} names no image digest")
    assert "release has no digest to compare the payload with" in denied_by(result, f"attestation:{QA_NOTE}").detail


# --- many releases at once ----------------------------------------------------------------


def test_evaluate_gates_matches_evaluate_gate_per_release(qa_key, policy):
    releases = [f"https://gcr.io/p/img@sha256:{index:064x}" for index in range(1, 7)]
    combined: dict[str, list[dict]] = {"attestations": [], "discoveries": [], "builds": [], "vulnerabilities": []}
    for index, uri in enumerate(releases):
        rows = good_release(qa_key, uri, uri.rsplit("@", 1)[1])
        if index % 2:
            rows["vulnerabilities"].append(vulnerability(f"CVE-2024-{index:04d}", "CRITICAL", True, uri))
        if index % 3 == 0:
            rows["builds"] = []
        for kind, kind_rows in rows.items():
            combined[kind].extend(kind_rows)
    occurrences = frames(**combined)

    results = evaluate_gates(occurrences, policy)

    assert list(results) == releases
    for uri in releases:
        assert results[uri] == evaluate_gate(uri, occurrences, policy)
    assert [results[uri].allowed for uri in releases] == [False, False, True, False, True, False]


def test_evaluate_gates_for_chosen_releases_and_a_source_error(qa_key, policy):
    occurrences = frames(**good_release(qa_key))
    unknown = "https://gcr.io/p/unknown@" + OTHER_DIGEST

    results = evaluate_gates(occurrences, policy, [RELEASE, unknown, RELEASE], source_error="timeout")

    assert list(results) == [RELEASE, unknown]
    assert not any(result.allowed for result in results.values())
    assert check(results[RELEASE], "source").detail.startswith("supply-chain record could not be read: timeout")


def test_evaluate_gates_without_an_all_frame_uses_the_gate_frames(qa_key, policy):
    rows = good_release(qa_key)
    rows["builds"].append(build(OTHER_RELEASE))
    built = frames(**rows)
    without_all = SimpleNamespace(**{name: getattr(built, name) for name in ("vulnerabilities", "builds", "attestations", "discoveries")})

    results = evaluate_gates(without_all, policy)

    assert sorted(results) == sorted([RELEASE, OTHER_RELEASE])
    assert results[RELEASE].allowed and not results[OTHER_RELEASE].allowed


# --- through the real normaliser and the real samples --------------------------------------


def _real_sample() -> dict:
    return json.loads((FIXTURES / "v1-attestation-SYNTHETIC.json").read_text())


def _sample_policy(tmp_path: Path, sample: dict) -> Policy:
    note = sample["occurrence"]["noteName"]
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "qa.pub").write_text(sample["_publicKeyPem"])
    (tmp_path / "gate.toml").write_text(
        "[gate]\n"
        f'required_attestations = ["{note}"]\n'
        "require_scan = false\n"
        "require_build_provenance = false\n"
        f'[[gate.attestor]]\nnote = "{note}"\npublic_keys = ["keys/qa.pub"]\n'
    )
    return load_policy(tmp_path / "gate.toml")


def test_real_v1_attestation_sample_verifies_through_the_normaliser(tmp_path):
    occurrences_module = pytest.importorskip("dashboard.occurrences")
    sample = _real_sample()
    occurrence_json = sample["occurrence"]
    policy = _sample_policy(tmp_path, sample)

    result = evaluate_gate(occurrence_json["resourceUri"], occurrences_module.normalise([occurrence_json]), policy)

    assert result.allowed, result.reasons
    assert check(result, f"attestation:{occurrence_json['noteName']}").detail.endswith(
        "signature verified with trusted key 1 of 1; payload names digest "
        + occurrence_json["resourceUri"].rsplit("@", 1)[1]
    )


def test_real_v1_attestation_sample_is_denied_for_a_tampered_copy(tmp_path):
    occurrences_module = pytest.importorskip("dashboard.occurrences")
    sample = _real_sample()
    policy = _sample_policy(tmp_path, sample)
    other_release = copy.deepcopy(sample["occurrence"])
    other_release["resourceUri"] = other_release["resourceUri"].rsplit("@", 1)[0] + "@" + OTHER_DIGEST
    bad_base64 = copy.deepcopy(sample["occurrence"])
    bad_base64["attestation"]["signatures"][0]["signature"] = "***not base64***"

    moved = evaluate_gate(other_release["resourceUri"], occurrences_module.normalise([other_release]), policy)
    mangled = evaluate_gate(bad_base64["resourceUri"], occurrences_module.normalise([bad_base64]), policy)

    note_check = f"attestation:{sample['occurrence']['noteName']}"
    assert "payload for another digest" in denied_by(moved, note_check).detail
    assert "malformed signature" in denied_by(mangled, note_check).detail


def test_v1beta1_generic_signed_attestation_verifies_through_the_normaliser(tmp_path):
    occurrences_module = pytest.importorskip("dashboard.occurrences")
    sample = _real_sample()
    v1 = sample["occurrence"]
    v1beta1 = {
        "name": v1["name"],
        "resource": {"uri": v1["resourceUri"]},
        "noteName": v1["noteName"],
        "kind": "ATTESTATION",
        "createTime": v1["createTime"],
        "attestation": {
            "attestation": {
                "genericSignedAttestation": {
                    "contentType": "SIMPLE_SIGNING_JSON",
                    "serializedPayload": v1["attestation"]["serializedPayload"],
                    "signatures": v1["attestation"]["signatures"],
                }
            }
        },
    }
    policy = _sample_policy(tmp_path, sample)

    result = evaluate_gate(v1["resourceUri"], occurrences_module.normalise([v1beta1]), policy)

    assert result.allowed, result.reasons


def test_sample_key_and_payload_match_the_fixture():
    """Guards the fixture copy: the embedded key is P-256 and the payload names the URI's digest."""
    sample = _real_sample()
    key = serialization.load_pem_public_key(sample["_publicKeyPem"].encode())
    payload = json.loads(base64.b64decode(sample["occurrence"]["attestation"]["serializedPayload"]))

    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert payload["critical"]["image"]["docker-manifest-digest"] == release_digest(sample["occurrence"]["resourceUri"])


def _occurrences_in(document) -> list[dict]:
    """The occurrences a sample file holds: a list response, a wrapped one, or a bare one (notes: none)."""
    if isinstance(document, dict) and isinstance(document.get("occurrences"), list):
        return document["occurrences"]
    if isinstance(document, dict) and isinstance(document.get("occurrence"), dict):
        return [document["occurrence"]]
    if isinstance(document, dict) and any(key in document for key in ("resourceUri", "resourceUrl", "resource")):
        return [document]
    return []


@pytest.mark.parametrize("sample", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.name)
def test_every_real_sample_is_judged_without_raising(sample, policy):
    occurrences_module = pytest.importorskip("dashboard.occurrences")

    results = evaluate_gates(occurrences_module.normalise(_occurrences_in(json.loads(sample.read_text()))), policy)

    for uri, result in results.items():
        document = result.to_json_dict()
        assert document["resource"] == uri and isinstance(document["allowed"], bool)
        assert document["allowed"] == (document["reasons"] == []) and document["checks"][0]["name"] == "source"
