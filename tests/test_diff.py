"""Release diff on occurrences in the real v1 wire shapes: the previous release, CVEs, attestations."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dashboard.diff import previous_release, previous_releases, release_diff
from dashboard.occurrences import normalise
from dashboard.policy import load_policy
from dashboard.provenance import release_table

FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"
VULNERABILITY = json.loads((FIXTURES / "v1-vulnerability.json").read_text())["occurrences"][0]
BUILD = json.loads((FIXTURES / "v1-build.json").read_text())["occurrences"][0]
SERVICE = "https://gcr.io/acme/checkout"


def uri(n: int, service: str = SERVICE) -> str:
    return f"{service}@sha256:{n:064x}"


def build(resource: str, end: str | None, revision: str) -> dict:
    occurrence = copy.deepcopy(BUILD)
    occurrence["name"] = f"projects/acme/occurrences/build-{resource[-6:]}"
    occurrence["resourceUri"] = resource
    provenance = occurrence["build"]["provenance"]
    provenance.pop("startTime", None)
    if end is None:
        provenance.pop("endTime", None)
    else:
        provenance["endTime"] = end
    provenance["sourceProvenance"] = {"context": {"git": {"url": "https://github.com/acme/checkout",
                                                          "revisionId": revision}}}
    return occurrence


def vulnerability(resource: str, cve: str, severity: str, fixable: bool) -> dict:
    occurrence = copy.deepcopy(VULNERABILITY)
    occurrence["name"] = f"projects/acme/occurrences/{cve}-{resource[-6:]}"
    occurrence["resourceUri"] = resource
    occurrence["noteName"] = f"projects/goog-vulnz/notes/{cve}"
    details = occurrence["vulnerability"]
    details["effectiveSeverity"] = severity
    details["fixAvailable"] = fixable
    for issue in details["packageIssue"]:
        issue["effectiveSeverity"], issue["fixAvailable"] = severity, fixable
    return occurrence


def attestation(resource: str, note: str) -> dict:
    return {"name": f"projects/acme/occurrences/att-{note[-4:]}-{resource[-6:]}", "resourceUri": resource,
            "noteName": note, "kind": "ATTESTATION",
            "attestation": {"serializedPayload": "e30=", "signatures": [{"signature": "AA==", "publicKeyId": "k"}]}}


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[gate]\nrequired_attestations = ["projects/a/notes/qa"]\nrequire_scan = false\n'
                    'max_fixable_severity = "HIGH"\nmax_unfixable_severity = "CRITICAL"\n')
    return load_policy(path)


def test_the_diff_names_cves_added_and_fixed_attestations_and_the_revision_range(policy):
    old, new, other = uri(1), uri(2), uri(3, "https://gcr.io/acme/cart")
    occurrences = normalise([
        build(old, "2026-11-01T10:00:00Z", "aaa111"),
        build(new, "2026-11-08T10:00:00Z", "bbb222"),
        build(other, "2026-11-05T10:00:00Z", "ccc333"),
        vulnerability(old, "CVE-2024-0001", "HIGH", True),
        vulnerability(old, "CVE-2024-0002", "LOW", False),
        vulnerability(new, "CVE-2024-0002", "LOW", False),
        vulnerability(new, "CVE-2024-0003", "CRITICAL", True),
        attestation(old, "projects/a/notes/qa"),
        attestation(new, "projects/a/notes/tests"),
    ])
    assert previous_release(occurrences, new) == old
    diff = release_diff(occurrences, policy, new)
    assert diff["resource"] == old
    assert diff["cves_added"] == [{"cve": "CVE-2024-0003", "severity": "CRITICAL", "fixable": True}]
    assert diff["cves_fixed"] == [{"cve": "CVE-2024-0001", "severity": "HIGH", "fixable": True}]
    assert diff["attestations_gained"] == ["projects/a/notes/tests"]
    assert diff["attestations_lost"] == ["projects/a/notes/qa"]
    assert diff["gate"] == {"previous": "allowed", "this": "denied"}
    assert diff["source_revisions"] == {"previous": "aaa111", "this": "bbb222"}


def test_the_first_release_of_a_service_has_no_previous(policy):
    occurrences = normalise([build(uri(1), "2026-11-01T10:00:00Z", "a"),
                             build(uri(3, "https://gcr.io/acme/cart"), "2026-10-01T10:00:00Z", "c")])
    assert release_diff(occurrences, policy, uri(1)) is None


def test_without_build_times_the_first_deploy_orders_releases(policy):
    deploy = json.loads((FIXTURES / "v1beta1-occurrence-deployment.json").read_text())

    def deployed(resource: str, at: str, name: str) -> dict:
        occurrence = copy.deepcopy(deploy)
        occurrence["name"], occurrence["resource"]["uri"] = f"projects/acme/occurrences/{name}", resource
        occurrence["deployment"]["deployment"]["deployTime"] = at
        return occurrence

    occurrences = normalise([deployed(uri(2), "2026-11-08T10:00:00Z", "b"), deployed(uri(1), "2026-11-01T10:00:00Z", "a")])
    assert previous_release(occurrences, uri(2)) == uri(1)
    assert previous_release(occurrences, uri(1)) is None
    assert previous_release(occurrences, uri(9)) is None


def test_the_release_table_names_each_release_s_previous(policy):
    releases = [uri(1), uri(2), uri(3), uri(4, "https://gcr.io/acme/cart")]
    occurrences = normalise([
        build(releases[2], "2026-11-15T10:00:00Z", "c"),
        build(releases[0], "2026-11-01T10:00:00Z", "a"),
        build(releases[1], "2026-11-08T10:00:00Z", "b"),
        build(releases[3], "2026-11-09T10:00:00Z", "d"),
    ])
    assert previous_releases(occurrences) == {
        releases[0]: None, releases[1]: releases[0], releases[2]: releases[1], releases[3]: None}
    table = release_table(occurrences, policy).set_index("resource_uri")
    assert table.loc[releases[2], "previous"] == releases[1] and table.loc[releases[3], "previous"] is None
