"""The occurrence normaliser on real Grafeas samples (v1, v1beta1, v1alpha1) and on garbage."""

from __future__ import annotations

import copy
import gc
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import dashboard.occurrences as normaliser
from dashboard.occurrences import COLUMNS, kind, normalise, note_name, resource_uri

FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"
OCCURRENCE_SAMPLES = sorted(path.name for path in FIXTURES.glob("*.json")
                            if "note" not in path.name and "statement" not in path.name)
NOTE_SAMPLES = sorted(path.name for path in FIXTURES.glob("*note*.json"))
OSS_IMAGE = "https://gcr.io/project/image@sha256:foo"


def load(name: str) -> list[dict]:
    """The occurrences of a sample: a list response, a wrapped one, or a bare request body."""
    document = json.loads((FIXTURES / name).read_text())
    if "occurrences" in document:
        return document["occurrences"]
    if "occurrence" in document:
        return [document["occurrence"]]
    return [document]


def only_row(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1
    return frame.iloc[0]


def to_snake_case(value):
    if isinstance(value, dict):
        return {re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower(): to_snake_case(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [to_snake_case(item) for item in value]
    return value


@pytest.mark.parametrize("name", OCCURRENCE_SAMPLES)
def test_every_real_occurrence_sample_parses(name):
    occurrences = load(name)
    result = normalise(occurrences)
    assert len(result.all) == len(occurrences)
    assert result.all["resource_uri"].notna().all()
    for frame_name, columns in COLUMNS.items():
        assert tuple(getattr(result, frame_name).columns) == columns


@pytest.mark.parametrize("name", NOTE_SAMPLES)
def test_notes_given_by_mistake_do_not_crash(name):
    normalise(load(name))


def test_v1_vulnerability_prefers_the_package_issue_effective_severity():
    row = only_row(normalise(load("v1-vulnerability.json")).vulnerabilities)
    assert row["cve"] == "CVE-2022-29458"
    assert row["severity"] == "HIGH"
    assert row["effective_severity"] == "MEDIUM"
    assert row["cvss"] == pytest.approx(7.1)
    assert row["package"] == "ncurses"
    assert row["package_type"] == "OS"
    assert row["installed_version"] == "6.2+20201114-2"
    assert row["fixed_version"] == "6.2+20201114-2+deb11u1"
    assert row["fix_available"]
    assert row["create_time"] == pd.Timestamp("2023-03-15T14:49:29.339644Z")
    assert row["resource_uri"].endswith(
        "@sha256:3fa5256ad34b31901ca30021c722fc7ba11a66ca070c8442862205696b908ddb")


def test_v1_vulnerability_without_issue_severity_uses_the_occurrence_one():
    row = only_row(normalise(load("v1-vulnerability-binxio.json")).vulnerabilities)
    assert (row["cve"], row["effective_severity"], row["package"]) == (
        "CVE-2016-6301", "HIGH", "busybox")
    assert (row["installed_version"], row["fixed_version"]) == ("1.23.2-r3", "1.24.2-r1")
    assert row["cvss"] == pytest.approx(7.8)


def test_v1beta1_oss_server_list():
    result = normalise(load("v1beta1-oss-server-list-occurrences.json"))
    assert result.all["kind"].tolist() == ["BUILD", "ATTESTATION", "VULNERABILITY",
                                           "VULNERABILITY", "BUILD", "VULNERABILITY",
                                           "DISCOVERY", "DISCOVERY"]
    assert set(result.all["resource_uri"]) == {OSS_IMAGE}

    vulnerabilities = result.vulnerabilities.set_index(
        result.vulnerabilities["occurrence"].str.rsplit("/", n=1).str[-1])
    with_fix = vulnerabilities.loc["332c51c9-4140-4a75-b6b2-b918aba7270d"]
    assert (with_fix["installed_version"], with_fix["fixed_version"]) == ("v1.1.1-r", "namestring-1")
    assert with_fix["fix_available"]
    assert with_fix["effective_severity"] == "SEVERITY_UNSPECIFIED"
    assert with_fix["cvss"] == 0.0
    no_fix_location = vulnerabilities.loc["3690b2f5-cc34-4041-be95-76383cf315cb"]
    assert no_fix_location["fixed_version"] is None
    assert not no_fix_location["fix_available"]
    # effectiveSeverity SEVERITY_UNSPECIFIED is proto3's "unset": fall back to severity MINIMAL.
    minimal = vulnerabilities.loc["8e215cd3-2128-4005-aa54-7ee118620c9a"]
    assert (minimal["severity"], minimal["effective_severity"]) == ("MINIMAL", "MINIMAL")
    assert minimal["description"] is None

    builds = result.builds
    assert builds["build_start"].isna().all() and builds["build_end"].isna().all()
    assert builds["builder_version"].isna().all()
    assert builds["builder"].tolist() == ["Shopify", "Shopify"]
    assert builds["source_repo"].tolist() == ["https://github.com/Shopify/voucher"] * 2
    assert builds["source_revision"].tolist() == ["q1q", "2"]
    assert builds["built_artifacts"].tolist() == [["some_id1"], ["some_id2"]]

    attestation = only_row(result.attestations)
    assert attestation["pgp_key_id"] == "1234"
    assert attestation["content_type"] == "CONTENT_TYPE_UNSPECIFIED"
    assert attestation["serialized_payload"] is None and attestation["payload_error"]
    [signature] = attestation["signatures"]
    assert signature["public_key_id"] == "1234"
    assert signature["signature"] is None and "base64" in signature["error"]

    discoveries = result.discoveries
    assert discoveries["analysis_status"].tolist() == ["PENDING", "FINISHED_SUCCESS"]
    assert discoveries["continuous_analysis"].tolist() == ["ACTIVE", "ACTIVE"]
    assert discoveries["last_scan_time"].isna().all()


def test_v1beta1_fix_availability_comes_from_the_fixed_version_kind():
    [occurrence] = load("v1beta1-occurrence-vulnerability.json")
    no_fix = copy.deepcopy(occurrence)
    no_fix["vulnerability"]["packageIssue"][0]["fixedLocation"]["version"] = {"kind": "MAXIMUM"}
    fixed, unfixed = normalise([occurrence, no_fix]).vulnerabilities.itertuples()
    assert fixed.fix_available and fixed.fixed_version == "namestring-1"
    assert not unfixed.fix_available and unfixed.fixed_version is None
    assert fixed.package == "a" and fixed.installed_version == "v1.1.1-r"
    assert fixed.resource_uri == OSS_IMAGE
    assert fixed.note_name == "projects/provider_example/notes/exampleVulnerabilityNote"


def test_v1_fix_available_is_per_package_issue():
    occurrence = {
        "kind": "VULNERABILITY", "resourceUri": OSS_IMAGE,
        "vulnerability": {
            "effectiveSeverity": "CRITICAL", "fixAvailable": True,
            "packageIssue": [
                {"affectedPackage": "openssl", "fixAvailable": True,
                 "fixedVersion": {"name": "3.0.2", "kind": "NORMAL"}},
                # fixAvailable false is omitted on the wire; MAXIMUM says there is no fix.
                {"affectedPackage": "zlib", "fixedVersion": {"kind": "MAXIMUM"}},
                # Nothing per issue: the occurrence-wide flag is all there is.
                {"affectedPackage": "curl"},
            ]},
    }
    rows = normalise([occurrence]).vulnerabilities
    assert rows["package"].tolist() == ["openssl", "zlib", "curl"]
    assert rows["fix_available"].tolist() == [True, False, True]
    assert rows["effective_severity"].tolist() == ["CRITICAL"] * 3


def test_vulnerability_without_package_issues_still_gives_a_row():
    row = only_row(normalise([{"kind": "VULNERABILITY", "noteName": "projects/p/notes/x",
                               "vulnerability": {"severity": "LOW",
                                                 "shortDescription": "GHSA-abcd-1234-wxyz"}}]
                              ).vulnerabilities)
    assert (row["cve"], row["effective_severity"], row["fix_available"]) == (
        "GHSA-abcd-1234-wxyz", "LOW", False)
    assert math.isnan(row["cvss"])


def test_v1_builds_classic_provenance_and_intoto_statement():
    classic, intoto = normalise(load("v1-build.json")).builds.itertuples()
    digest = "41cb4b5e32e417b86c2b2229d0581b72f7dffd1cc6b0e586ab2cefdb7a527529"
    assert classic.builder == "79219187776@cloudbuild.gserviceaccount.com"
    assert classic.builder_version == "508019100"
    assert classic.source_revision == "6da093fbd4f14b31e6895154d070fb0113bc3aa8"
    assert classic.build_start == pd.Timestamp("2023-02-17T09:56:41.000101282Z")
    assert classic.build_start.nanosecond == 282
    assert classic.build_end == pd.Timestamp("2023-02-17T09:56:56.113063Z")
    assert classic.built_artifacts == [
        f"us-west2-docker.pkg.dev/imre-test/quickstart-docker-repo/quickstart-image@sha256:{digest}"]
    assert classic.provenance_builder_id is None and classic.predicate_type is None

    assert intoto.builder == "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3"
    assert intoto.provenance_builder_id == intoto.builder
    assert intoto.predicate_type == "https://slsa.dev/provenance/v0.1"
    assert intoto.source_repo == "https://github.com/irsl/gcb-tests"
    assert intoto.source_revision == "6da093fbd4f14b31e6895154d070fb0113bc3aa8"
    assert intoto.build_id == "1dbbe813-4f3d-4c8e-b2d3-776c91481bb8"
    assert intoto.build_end == pd.Timestamp("2023-02-17T09:56:56.113063Z")
    assert intoto.built_artifacts == [
        "https://us-west2-docker.pkg.dev/imre-test/quickstart-docker-repo/quickstart-image:v41"
        f"@sha256:{digest}"]


@pytest.mark.parametrize("predicate_key", ["predicate", "slsaProvenanceZeroTwo"])
def test_slsa_v02_statement_in_a_build_occurrence(predicate_key):
    statement = json.loads((FIXTURES / "v1-build-intoto-slsa02-statement.json").read_text())
    statement[predicate_key] = statement.pop("predicate")
    occurrence = {"kind": "BUILD", "resourceUri": OSS_IMAGE, "build": {"intotoStatement": statement}}
    row = only_row(normalise([occurrence]).builds)
    assert row["provenance_builder_id"] == "https://tekton.dev/chains/v2"
    assert row["builder"] == "https://tekton.dev/chains/v2"
    assert row["predicate_type"] == "https://slsa.dev/provenance/v0.2"
    assert row["build_start"] == pd.Timestamp("2022-05-25T18:30:35Z")
    assert row["build_end"] == pd.Timestamp("2022-05-25T18:30:46Z")
    assert row["built_artifacts"] == [
        "us-central1-docker.pkg.dev/test/kaniko-example/kaniko-chains@sha256:"
        "a2e500bebfe16cf12fc56316ba72c645e1d29054541dc1ab6c286197434170a9"]


def test_slsa_v1_provenance():
    occurrence = {"kind": "BUILD", "build": {"inTotoSlsaProvenanceV1": {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "ghcr.io/acme/app", "digest": {"sha256": "c" * 64}}],
        "predicate": {
            "buildDefinition": {"resolvedDependencies": [
                {"uri": "git+https://github.com/acme/app", "digest": {"gitCommit": "abc123"}}]},
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"},
                           "metadata": {"invocationId": "run-7",
                                        "startedOn": "2024-05-01T10:00:00Z",
                                        "finishedOn": "2024-05-01T10:05:00Z"}}}}}}
    row = only_row(normalise([occurrence]).builds)
    assert row["provenance_builder_id"] == "https://github.com/actions/runner"
    assert row["predicate_type"] == "https://slsa.dev/provenance/v1"
    assert (row["source_repo"], row["source_revision"]) == ("git+https://github.com/acme/app",
                                                            "abc123")
    assert row["build_id"] == "run-7"
    assert row["build_end"] == pd.Timestamp("2024-05-01T10:05:00Z")
    assert row["built_artifacts"] == [f"ghcr.io/acme/app@sha256:{'c' * 64}"]


def test_v1beta1_request_body_in_snake_case():
    row = only_row(normalise(load("v1beta1-occurrence-build.json")).builds)
    assert row["note_name"] == "projects/provider_example/notes/exampleBuildNote"
    assert row["built_artifacts"] == ["some identifier for the artifact"]
    assert (row["source_repo"], row["source_revision"]) == ("the git repo url", "git commit hash")
    assert row["build_start"] == pd.Timestamp("2020-03-12T14:02:39.728983Z")
    assert row["builder_version"] == "some version of the builder"
    assert pd.isna(row["create_time"])


@pytest.mark.parametrize("name", OCCURRENCE_SAMPLES)
def test_snake_case_and_camel_case_give_the_same_frames(name):
    camel = normalise(load(name))
    snake = normalise(to_snake_case(load(name)))
    for frame_name in COLUMNS:
        pd.testing.assert_frame_equal(getattr(snake, frame_name), getattr(camel, frame_name))


def test_a_long_stream_gives_the_frames_its_parts_give():
    # The normaliser builds its frames in chunks as the occurrences stream in: make several.
    samples = [occurrence for name in OCCURRENCE_SAMPLES for occurrence in load(name)]
    many = [{**sample, "name": f"projects/p/occurrences/{index}"}
            for index, sample in enumerate(samples * (30_000 // len(samples) + 1))]
    whole = normalise(iter(many))
    parts = [normalise(many[start:start + 500]) for start in range(0, len(many), 500)]
    assert len(whole.all) == len(many)
    assert len(whole.vulnerabilities) > 2 * normaliser._Table._CHUNK
    for frame_name in COLUMNS:
        expected = pd.concat([getattr(part, frame_name) for part in parts], ignore_index=True)
        pd.testing.assert_frame_equal(getattr(whole, frame_name), expected)


def test_mixed_spellings_prefer_camel_case_unless_it_is_null():
    occurrence = {
        "kind": "VULNERABILITY", "noteName": "projects/p/notes/CVE-2024-0001",
        "resourceUri": OSS_IMAGE, "resource_uri": "https://elsewhere",
        "createTime": None, "create_time": "2024-01-01T00:00:00Z",
        # "_type" (as in in-toto statements) is no snake_case spelling of anything.
        "vulnerability": {"_type": "x", "effectiveSeverity": "LOW", "effective_severity": "HIGH",
                          "packageIssue": [{"affected_package": "zlib", "fixAvailable": False,
                                            "fix_available": True}]}}
    row = only_row(normalise([occurrence]).vulnerabilities)
    assert row["resource_uri"] == OSS_IMAGE
    assert row["create_time"] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert (row["cve"], row["effective_severity"], row["package"]) == (
        "CVE-2024-0001", "LOW", "zlib")
    assert not row["fix_available"]


def test_v1_attestation_payload_and_signature_verify():
    document = json.loads((FIXTURES / "v1-attestation-SYNTHETIC.json").read_text())
    row = only_row(normalise([document["occurrence"]]).attestations)
    payload = json.loads(row["serialized_payload"])
    assert payload["critical"]["image"]["docker-manifest-digest"] == (
        "sha256:37e5287945774f27b418ce567cd77f4bbc9ef44a1bcd1a2312369f31f9cce567")
    assert row["payload_error"] is None and row["pgp_key_id"] is None
    [signature] = row["signatures"]
    assert signature["public_key_id"] == "ni:///sha-256;EXAMPLE-KEY-ID"
    assert signature["error"] is None
    public_key = serialization.load_pem_public_key(document["_publicKeyPem"].encode())
    public_key.verify(signature["signature"], row["serialized_payload"], ec.ECDSA(hashes.SHA256()))


def test_malformed_base64_gives_errors_not_exceptions():
    document = json.loads((FIXTURES / "v1-attestation-SYNTHETIC.json").read_text())
    attestation = document["occurrence"]["attestation"]
    attestation["serializedPayload"] = "%%% not base64 %%%"
    attestation["signatures"] += [{"signature": "abcde", "publicKeyId": "truncated"},
                                  {"publicKeyId": "missing"}, {"signature": 42}]
    row = only_row(normalise([document["occurrence"]]).attestations)
    assert row["serialized_payload"] is None
    assert "invalid base64" in row["payload_error"]
    good, truncated, missing, wrong_type = row["signatures"]
    assert good["signature"] and good["error"] is None
    assert truncated == {"public_key_id": "truncated", "signature": None,
                         "error": "signature: invalid base64 (truncated)"}
    assert missing["signature"] is None and "missing" in missing["error"]
    assert wrong_type["public_key_id"] is None and "expected a base64 string" in wrong_type["error"]


def test_url_safe_unpadded_base64_is_accepted():
    occurrence = {"kind": "ATTESTATION", "attestation": {
        "serializedPayload": "-_8", "signatures": [{"signature": "-_8="}]}}
    row = only_row(normalise([occurrence]).attestations)
    assert row["serialized_payload"] == b"\xfb\xff"
    assert row["signatures"][0]["signature"] == b"\xfb\xff"


def test_v1beta1_generic_signed_attestation():
    occurrence = {"name": "projects/p/occurrences/1", "resource": {"uri": OSS_IMAGE},
                  "kind": "ATTESTATION", "attestation": {"attestation": {
                      "genericSignedAttestation": {
                          "contentType": "SIMPLE_SIGNING_JSON",
                          "serializedPayload": "eyJhIjoxfQ==",
                          "signatures": [{"signature": "c2ln", "publicKeyId": "key-1"}]}}}}
    row = only_row(normalise([occurrence]).attestations)
    assert row["content_type"] == "SIMPLE_SIGNING_JSON"
    assert row["serialized_payload"] == b'{"a":1}'
    assert row["signatures"] == [{"public_key_id": "key-1", "signature": b"sig", "error": None}]


def test_v1alpha1_pgp_attestation():
    [occurrence] = load("v1alpha1-attestation-occurrence.json")
    assert resource_uri(occurrence) == (
        "https://gcr.io/hightowerlabs/echo@sha256:"
        "5dbeeb57bd86e1852ef3149431201ec2491978747299f1d1b69fb464bfc992c0")
    assert kind(occurrence) == "ATTESTATION"
    assert note_name(occurrence) == "projects/image-signing/notes/production"
    row = only_row(normalise([occurrence]).attestations)
    assert row["pgp_key_id"] == "39A56F5B"
    assert row["content_type"] == "application/vnd.gcr.image.summary.v1+json"
    [signature] = row["signatures"]
    assert signature["signature"].startswith(b"-----BEGIN PGP MESSAGE-----")
    assert signature["error"] is None


def test_v1beta1_deployment():
    row = only_row(normalise(load("v1beta1-occurrence-deployment.json")).deployments)
    assert row["deploy_time"] == pd.Timestamp("2000-01-23T04:56:07Z")
    assert row["undeploy_time"] == pd.Timestamp("2000-01-23T04:56:07Z")
    assert (row["platform"], row["address"], row["user_email"], row["config"]) == (
        "CUSTOM", "address", "user_email", "config")
    assert row["cluster"] is None
    assert row["deployed_resource_uris"] == ["resource_uri", "resource_uri"]


@pytest.mark.parametrize(("address", "cluster"), [
    ("https://container.googleapis.com/v1/projects/p/locations/europe-west1/clusters/prod-eu", "prod-eu"),
    ("gke_my-project_us-central1-a_staging", "staging"),
    ("10.0.0.1", None),
])
def test_deployment_cluster_from_address(address, cluster):
    occurrence = {"kind": "DEPLOYMENT", "deployment": {"address": address, "platform": "GKE",
                                                       "deployTime": "2024-02-01T08:00:00Z"}}
    row = only_row(normalise([occurrence]).deployments)
    assert row["cluster"] == cluster
    assert pd.isna(row["undeploy_time"])


def test_v1_discovery():
    row = only_row(normalise(load("v1-discovery.json")).discoveries)
    assert (row["analysis_status"], row["continuous_analysis"]) == ("FINISHED_SUCCESS", "INACTIVE")
    assert pd.isna(row["last_scan_time"])
    scanned = only_row(normalise([{"discovery": {"lastScanTime": "2024-03-01T00:00:00Z",
                                                 "analysisStatusError": {"message": "boom"}}}]
                                 ).discoveries)
    assert scanned["last_scan_time"] == pd.Timestamp("2024-03-01T00:00:00Z")
    assert scanned["analysis_error"] == "boom"


def test_unknown_and_other_kinds_are_kept():
    occurrences = [
        {"name": "o/1", "kind": "SBOM_REFERENCE", "sbomReference": {"payloadType": "x"}},
        {"name": "o/2", "kind": "UPGRADE", "upgrade": {"package": "libc"}},
        {"name": "o/3", "kind": "SOMETHING_NEW"},
        {"name": "o/4", "dsseAttestation": {"envelope": {}}},
        {"name": "o/5", "kind": "PACKAGE", "package": {"name": "bash"}},
    ]
    result = normalise(occurrences)
    assert result.other["kind"].tolist() == ["SBOM_REFERENCE", "UPGRADE", "SOMETHING_NEW",
                                             "DSSE_ATTESTATION", "PACKAGE"]
    assert result.other["details"].tolist()[0] == {"payloadType": "x"}
    assert len(result.all) == 5


def test_missing_and_empty_values():
    occurrence = {"name": "", "resourceUri": "", "noteName": "  ", "kind": "BUILD",
                  "createTime": "0001-01-01T00:00:00Z",
                  "build": {"provenance": {"creator": "", "builderVersion": "",
                                           "startTime": "", "endTime": "not a time"}}}
    result = normalise([occurrence])
    common = only_row(result.all)
    assert common["occurrence"] is None and common["resource_uri"] is None
    assert common["note_name"] is None and pd.isna(common["create_time"])
    build = only_row(result.builds)
    assert build["builder"] is None and build["creator"] is None
    assert pd.isna(build["build_start"]) and pd.isna(build["build_end"])
    assert build["built_artifacts"] == []


def test_strings_for_numbers_and_numbers_for_enums():
    occurrence = {"kind": 1, "vulnerability": {
        "cvssScore": "9.8", "severity": 5,
        "packageIssue": [{"affectedVersion": {"name": "1.2", "revision": "3", "epoch": "2"},
                          "fixedVersion": {"kind": 3}}]}}
    row = only_row(normalise([occurrence]).vulnerabilities)
    assert row["kind"] == "VULNERABILITY"
    assert row["cvss"] == pytest.approx(9.8)
    assert row["effective_severity"] == "CRITICAL"
    assert row["installed_version"] == "2:1.2-3"
    assert not row["fix_available"]


TIMES = [
    ("2024-01-01T02:00:00+02:00", pd.Timestamp("2024-01-01T00:00:00Z")),
    # Nanoseconds survive in a column whose other values have none.
    ("2023-02-17T09:56:41.000101282Z", pd.Timestamp("2023-02-17T09:56:41.000101282Z")),
    (" 2024-05-01T10:00:00 ", pd.Timestamp("2024-05-01T10:00:00Z")),
    # Not ISO 8601, but pandas reads it: it always has been.
    ("2024-05-01 10:00:00 UTC", pd.Timestamp("2024-05-01T10:00:00Z")),
    ({"seconds": "1700000000", "nanos": 5}, pd.Timestamp(1_700_000_000_000_000_005, tz="UTC")),
    ("0001-01-01T00:00:00Z", pd.NaT), ("", pd.NaT), ("now", pd.NaT), ("today", pd.NaT),
    ("1500-01-01T00:00:00Z", pd.NaT), ("2024-13-01T00:00:00Z", pd.NaT),
    ({"seconds": "soon"}, pd.NaT), (12345, pd.NaT), (None, pd.NaT),
]


def test_a_time_reads_the_same_alone_and_in_a_column():
    def deploy_times(values):
        return normalise([{"kind": "DEPLOYMENT", "deployment": {"deployTime": value}}
                          for value in values]).deployments["deploy_time"]

    column = deploy_times([value for value, _ in TIMES])
    assert column.dtype == "datetime64[ns, UTC]"
    for (value, expected), parsed in zip(TIMES, column):
        [alone] = deploy_times([value])
        if expected is pd.NaT:
            assert pd.isna(parsed) and pd.isna(alone), value
        else:
            assert parsed == alone == expected, value


def test_a_time_that_does_not_parse_gives_way_to_the_next_source():
    discovery = {"kind": "DISCOVERY", "discovery": {"lastScanTime": "0001-01-01T00:00:00Z",
                                                    "lastAnalysisTime": "2024-03-01T00:00:00Z"}}
    build = {"kind": "BUILD", "build": {
        "provenance": {"startTime": "not a time"},
        "intotoStatement": {"slsaProvenance": {
            "metadata": {"buildStartedOn": "2024-03-02T00:00:00Z"}}}}}
    result = normalise([discovery, build])
    assert only_row(result.discoveries)["last_scan_time"] == pd.Timestamp("2024-03-01T00:00:00Z")
    assert only_row(result.builds)["build_start"] == pd.Timestamp("2024-03-02T00:00:00Z")


def test_timestamps_are_utc_nanoseconds():
    result = normalise([{"kind": "DEPLOYMENT", "createTime": "2024-01-01T02:00:00+02:00",
                         "deployment": {"deployTime": {"seconds": "1700000000", "nanos": 5}}}])
    assert result.all["create_time"].dtype == "datetime64[ns, UTC]"
    assert result.all["create_time"][0] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert result.deployments["deploy_time"][0] == (
        pd.Timestamp(1_700_000_000, unit="s", tz="UTC") + pd.Timedelta(5, unit="ns"))


GARBAGE = [
    None, "a string", 42, [], {},
    {"kind": 99}, {"kind": "VULNERABILITY"}, {"kind": "VULNERABILITY", "vulnerability": "oops"},
    {"kind": "VULNERABILITY", "vulnerability": {"packageIssue": "x", "relatedUrls": "y"}},
    {"kind": "VULNERABILITY", "vulnerability": {
        "cvssScore": "high", "severity": ["HIGH"], "effectiveSeverity": True,
        "packageIssue": [None, "x", {"affectedVersion": "1.0", "fixedVersion": 7,
                                     "fixAvailable": "yes", "affectedLocation": []}]}},
    {"kind": "BUILD", "build": {"provenance": [], "intotoStatement": "x"}},
    {"kind": "BUILD", "build": {"provenance": {"builtArtifacts": [None, 3, {"id": 5}],
                                               "sourceProvenance": {"context": "git"}}},
     "envelope": {"payload": "bm90IGpzb24="}},
    {"kind": "BUILD", "build": {"inTotoSlsaProvenanceV1": {"predicate": {"runDetails": []},
                                                           "subject": [None, {"digest": []}]}}},
    {"kind": "ATTESTATION", "attestation": {"signatures": "x", "serializedPayload": 5, "jwts": 1}},
    {"kind": "ATTESTATION", "attestation": {"attestation": {"pgpSignedAttestation": "x"}}},
    {"kind": "ATTESTATION", "attestation": {"pgpSignedAttestation": {"signature": None}}},
    {"kind": "DEPLOYMENT", "deployment": {"deployment": "x", "deployTime": "now",
                                          "address": 5, "resourceUri": "x"}},
    {"kind": "DISCOVERY", "discovered": {"discovered": "x"}},
    {"kind": "DISCOVERY", "discovery": {"analysisStatusError": "plain text",
                                        "lastScanTime": {"seconds": "soon"}}},
    {"resource": "uri", "resourceUri": 7, "createTime": 12345, "noteName": {"a": 1}},
    {"createTime": "99999-01-01T00:00:00Z", "kind": "DEPLOYMENT",
     "deployment": {"deployTime": {"seconds": 10 ** 15}}},
]


def test_garbage_gives_rows_not_exceptions():
    result = normalise(GARBAGE)
    assert len(result.all) == len(GARBAGE)
    assert len(result.vulnerabilities) == 4
    assert result.vulnerabilities["effective_severity"].eq("SEVERITY_UNSPECIFIED").all()
    assert result.attestations["serialized_payload"].isna().all()
    assert result.deployments["deploy_time"].isna().all()


def test_odd_objects_give_rows_not_exceptions():
    result = normalise([
        {1: "not a text key", "kind": "VULNERABILITY",
         "vulnerability": {2: 3, "packageIssue": [{None: 1}]}},
        # An empty v1beta1 inner object is still the one that holds the details.
        {"kind": "DEPLOYMENT", "deployment": {"deployment": {}, "address": "outer"}},
    ])
    vulnerability = only_row(result.vulnerabilities)
    assert vulnerability["package"] is None and vulnerability["cve"] is None
    assert only_row(result.deployments)["address"] is None


def test_normalise_keeps_the_collector_running_for_the_app_s_other_sessions():
    """Inside the Streamlit server the collector serves every session: the engine never pauses it."""
    running = []

    def stream():
        for occurrence in load("v1-vulnerability.json") + GARBAGE:
            running.append(gc.isenabled())
            yield occurrence

    assert gc.isenabled()
    normalise(stream())
    assert running and all(running) and gc.isenabled()


def test_garbage_containers_give_empty_frames_with_the_schema():
    for nothing in ([], None, "x", {"occurrences": []}):
        result = normalise(nothing)
        assert result.vulnerabilities.empty
        assert tuple(result.vulnerabilities.columns) == COLUMNS["vulnerabilities"]
        assert result.builds["build_start"].dtype == "datetime64[ns, UTC]"
        assert result.vulnerabilities["cvss"].dtype == "float64"
        assert result.vulnerabilities["fix_available"].dtype == "bool"
