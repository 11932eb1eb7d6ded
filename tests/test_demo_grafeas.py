"""The demo's supply chain: shape, every kind of denial, verifying signatures, deployments tied to the
cluster demo's incidents, determinism, and the source interface."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from dashboard.occurrences import normalise
from dashboard.policy import load_policy
from dashboard.provenance import release_table
from dashboard.signatures import verify_attestation
from dashboard.sources import supply_chain_source
from dashboard.sources.demo import demo_scenario
from dashboard.sources.demo_grafeas import (
    BAD_SIGNATURE,
    CRITICAL_FIXABLE_CVE,
    DEMO_POLICY_PATH,
    MISSING_ATTESTATION,
    NO_PROVENANCE,
    OTHER_DIGEST,
    QA_APPROVED_NOTE,
    TESTS_PASSED_NOTE,
    UNFINISHED_SCAN,
    DemoGrafeas,
    demo_occurrences,
    demo_policy,
    demo_releases,
)

END = datetime(2026, 3, 2, 9, 30, 15, 250000, tzinfo=timezone.utc)
RESOURCE_URI = re.compile(r"^https://[a-z0-9.-]+/[a-z0-9-]+(/[a-z0-9-]+)+@sha256:[0-9a-f]{64}$")
CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
KEYS_FOLDER = DEMO_POLICY_PATH.parent / "keys"


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    return demo_occurrences(END)


@pytest.fixture(scope="module")
def frames(raw):
    return normalise(raw)


@pytest.fixture(scope="module")
def releases():
    return demo_releases(END)


@pytest.fixture(scope="module")
def table(frames) -> pd.DataFrame:
    return release_table(frames, demo_policy())


# --- size and shape -------------------------------------------------------------------------------


def test_services_releases_and_weeks(table, releases):
    assert table["service"].nunique() >= 4
    assert len(table) == len(releases) >= 30
    assert set(table["resource_uri"]) == {release.resource_uri for release in releases}
    build_times = [release.build_time for release in releases]
    assert max(build_times) <= END and END - min(build_times) >= timedelta(weeks=4)
    assert table.groupby("service").size().min() >= 5


def test_occurrences_are_shaped_like_the_real_v1_samples(raw):
    assert {occurrence["kind"] for occurrence in raw} == {"BUILD", "DISCOVERY", "VULNERABILITY", "ATTESTATION",
                                                          "DEPLOYMENT"}
    names = [occurrence["name"] for occurrence in raw]
    assert len(set(names)) == len(names)
    for occurrence in raw:
        assert RESOURCE_URI.match(occurrence["resourceUri"]), occurrence["resourceUri"]
        assert re.fullmatch(r"projects/[a-z-]+/occurrences/[0-9a-f-]{36}", occurrence["name"])
        assert re.fullmatch(r"projects/[a-z-]+/notes/[A-Za-z0-9_-]+", occurrence["noteName"])
        assert occurrence["createTime"].endswith("Z") and occurrence["kind"].lower() in occurrence
        assert all("_" not in key for key in occurrence)  # lowerCamelCase


def test_vulnerabilities_are_realistic(raw, frames):
    vulnerabilities = [occurrence["vulnerability"] for occurrence in raw if occurrence["kind"] == "VULNERABILITY"]
    for details in vulnerabilities:
        assert CVE_ID.match(details["shortDescription"]) and 0 < details["cvssScore"] <= 10
        [issue] = details["packageIssue"]
        assert issue["affectedPackage"] and issue["affectedVersion"]["fullName"]
        assert issue.get("fixAvailable", False) == details.get("fixAvailable", False)
        assert issue["fixedVersion"]["kind"] == ("NORMAL" if issue.get("fixAvailable") else "MAXIMUM")
    rows = frames.vulnerabilities
    assert rows["cve"].map(lambda cve: bool(CVE_ID.match(cve))).all()
    assert set(rows["effective_severity"]) >= {"CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL"}
    assert rows["fix_available"].any() and not rows["fix_available"].all()
    assert (rows["severity"] != rows["effective_severity"]).any()
    assert set(rows["package_type"]) >= {"OS", "GO", "MAVEN", "NPM", "PYPI"}
    assert rows.loc[rows["fix_available"], "fixed_version"].notna().all()


def test_builds_record_source_builder_and_times(frames, releases):
    builds = frames.builds
    assert builds["source_repo"].str.startswith("https://github.com/acme-demo/").all()
    assert builds["source_revision"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert builds["builder"].notna().all() and (builds["build_start"] < builds["build_end"]).all()
    build_times = {release.resource_uri: release.build_time for release in releases}
    for row in builds.itertuples():
        assert row.build_end == pd.Timestamp(build_times[row.resource_uri])


# --- verdicts -----------------------------------------------------------------------------------


def test_every_kind_of_denial_is_present_and_fails_its_check(table, releases):
    by_denial = {release.denial for release in releases}
    assert by_denial >= {MISSING_ATTESTATION, BAD_SIGNATURE, OTHER_DIGEST, CRITICAL_FIXABLE_CVE, UNFINISHED_SCAN,
                         NO_PROVENANCE}
    verdicts = table.set_index("resource_uri")
    for release in releases:
        row = verdicts.loc[release.resource_uri]
        assert row["failed_checks"] == release.expected_failed_checks, (release.service, release.number,
                                                                        row["gate_reasons"])
        assert row["allowed"] == (release.denial is None)


@pytest.mark.parametrize(("denial", "reason"), [
    (MISSING_ATTESTATION, f"no ATTESTATION occurrence on note {QA_APPROVED_NOTE}"),
    (BAD_SIGNATURE, "no signature verified with the 1 trusted key"),
    (OTHER_DIGEST, "payload for another digest"),
    (CRITICAL_FIXABLE_CVE, "CRITICAL in stdlib 1.22.3 (fix available: 1.22.4) is above gate.max_fixable_severity HIGH"),
    (UNFINISHED_SCAN, "vulnerability scan not finished: DISCOVERY analysisStatus SCANNING"),
    (NO_PROVENANCE, "no BUILD occurrence for this release"),
])
def test_denial_reasons_say_what_is_wrong(table, releases, denial, reason):
    denied = [release.resource_uri for release in releases if release.denial == denial]
    reasons = table.set_index("resource_uri").loc[denied, "gate_reasons"]
    assert all(len(found) == 1 and reason in found[0] for found in reasons), list(reasons)


def test_allowed_releases_in_every_service(table):
    allowed = table[table["allowed"]]
    assert len(allowed) >= 20
    assert set(allowed["service"]) == set(table["service"])
    assert (allowed["attestations_verified"] == 2).all() and (allowed["scan_status"] == "FINISHED_SUCCESS").all()


def test_policy_tolerates_unfixable_criticals_and_exempted_cves(table):
    allowed = table[table["allowed"]]
    assert (allowed["vulns_critical"] > 0).any()
    reasons = [detail for result in table["gate_reasons"] for detail in result]
    assert not any("CVE-2023-38545" in detail for detail in reasons)


# --- signatures and keys ----------------------------------------------------------------------------


def test_demo_policy_is_the_committed_file_with_committed_public_keys():
    policy = demo_policy()
    assert policy == load_policy(DEMO_POLICY_PATH)
    assert policy.required_attestations == (TESTS_PASSED_NOTE, QA_APPROVED_NOTE)
    for attestor in policy.attestors:
        assert [key_file.parent for key_file in attestor.key_files] == [KEYS_FOLDER]
        assert all(key_file.suffix == ".pub" and key_file.is_file() for key_file in attestor.key_files)
    assert (KEYS_FOLDER / "README.md").read_text().startswith("# Demo attestor keys: they sign demo data only")
    assert not any("PRIVATE KEY" in path.read_text() for path in DEMO_POLICY_PATH.parent.rglob("*") if path.is_file())


def test_demo_signatures_verify_with_the_committed_public_keys(raw, frames, releases):
    policy = demo_policy()
    digests = {release.resource_uri: release.digest for release in releases}
    denial = {release.resource_uri: release.denial for release in releases}
    verified = 0
    for row in frames.attestations.itertuples():
        keys = list(policy.attestor_for(row.note_name).public_keys)
        result = verify_attestation(row.serialized_payload, row.signatures, keys, digests[row.resource_uri])
        if row.note_name == QA_APPROVED_NOTE and denial[row.resource_uri] == BAD_SIGNATURE:
            assert not result.verified and "no signature verified" in result.reason
        elif row.note_name == QA_APPROVED_NOTE and denial[row.resource_uri] == OTHER_DIGEST:
            assert not result.verified and result.reason.startswith("payload for another digest")
        else:
            assert result.verified, result.reason
            verified += 1
    assert verified >= 2 * 25
    payloads = [json.loads(base64.b64decode(occurrence["attestation"]["serializedPayload"]))
                for occurrence in raw if occurrence["kind"] == "ATTESTATION"]
    assert {payload["critical"]["type"] for payload in payloads} == {"Google cloud binauthz container signature"}
    assert all(payload["critical"]["identity"]["docker-reference"] for payload in payloads)


# --- deployments and the cluster timeline -------------------------------------------------------------


def test_deployments_go_to_prod_and_staging_after_their_build(table, releases):
    clusters = {entry["cluster"] for entries in table["deployments"] for entry in entries}
    assert clusters == {"prod", "staging"}
    for release in releases:
        for deployment in release.deployments:
            assert release.build_time < deployment.deploy_time <= END
            assert deployment.undeploy_time is None or deployment.deploy_time < deployment.undeploy_time <= END


def test_latest_allowed_release_of_every_service_is_running(table):
    for service, rows in table.groupby("service"):
        allowed = rows[rows["allowed"]].sort_values("build_time")
        assert allowed.iloc[-1]["running_in"], f"{service}: latest allowed release is not running"
    running = [(row.service, cluster) for row in table.itertuples() for cluster in row.running_in]
    assert len(running) == len(set(running)), "one release per service and cluster at a time"
    assert sum(cluster == "prod" for _, cluster in running) == table["service"].nunique()


def test_some_deployments_coincide_with_the_cluster_demo_incidents(table):
    incidents = demo_scenario(END).incidents
    deployments = [(entry["cluster"], entry["deploy_time"]) for entries in table["deployments"] for entry in entries]
    before, during = set(), set()
    for incident in incidents:
        start, end = pd.Timestamp(incident.start), pd.Timestamp(incident.end)
        for cluster, deployed in deployments:
            if cluster != incident.cluster:
                continue
            if start - pd.Timedelta(minutes=15) <= deployed < start:
                before.add((incident.cluster, incident.component, incident.kind))
            elif start <= deployed <= end:
                during.add((incident.cluster, incident.component, incident.kind))
    assert len(before) >= 3 and len(during) >= 2
    assert {cluster for cluster, _, _ in before | during} == {"prod", "staging"}
    assert ("staging", "kubelet", "slow_pleg") in during  # the resolved incident, two days ago


# --- determinism and the source interface ---------------------------------------------------------------


def test_deterministic_for_a_given_end(raw):
    again = demo_occurrences(END)
    assert json.dumps(again, sort_keys=True) == json.dumps(raw, sort_keys=True)
    naive = demo_occurrences(END.replace(tzinfo=None))
    assert naive == raw


def test_releases_keep_their_digests_when_end_moves(releases):
    later = demo_releases(END + timedelta(hours=3))
    assert [release.resource_uri for release in later] == [release.resource_uri for release in releases]
    assert later[0].build_time - releases[0].build_time == timedelta(hours=3)


def test_demo_grafeas_serves_all_releases_or_one(raw, releases):
    source = DemoGrafeas(END)
    assert "demo" in source.description
    assert source.occurrences() == raw
    chosen = releases[3].resource_uri
    one = source.occurrences(chosen)
    assert one and {occurrence["resourceUri"] for occurrence in one} == {chosen}
    assert len(one) == sum(occurrence["resourceUri"] == chosen for occurrence in raw)
    assert source.occurrences(chosen.replace("sha256:", "sha256:0")) == []


def test_supply_chain_source_without_grafeas_is_the_demo_built_for_the_minute():
    source = supply_chain_source(None, now=END)
    minute = END.replace(second=0, microsecond=0)
    assert isinstance(source, DemoGrafeas) and source.occurrences() == demo_occurrences(minute)
