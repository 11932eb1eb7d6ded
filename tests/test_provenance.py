"""The release table: from the real Grafeas samples, from built occurrences, and through the test
server in both dialects."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard import provenance
from dashboard.occurrences import normalise
from dashboard.policy import Attestor, Policy, load_policy
from dashboard.provenance import RELEASE_COLUMNS, release_table
from dashboard.resources import service_of
from dashboard.sources.grafeas import GrafeasClient
from harness.grafeas_server import GrafeasTestServer

FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"
TESTS_NOTE = "projects/attestors/notes/tests-passed"
QA_NOTE = "projects/attestors/notes/qa-approved"
CART = "gcr.io/shop/cart"
WEB = "us-docker.pkg.dev/shop/images/web"


def release(repository: str, number: int) -> str:
    return f"https://{repository}@sha256:{number:064x}"


C1, C2, C3 = release(CART, 1), release(CART, 2), release(CART, 3)
W1, W2 = release(WEB, 11), release(WEB, 12)


@pytest.mark.parametrize(("resource_uri", "service"), [
    ("https://gcr.io/acme/checkout@sha256:" + "a" * 64, "gcr.io/acme/checkout"),
    ("https://europe-docker.pkg.dev/acme/shop/web@sha256:" + "b" * 64, "europe-docker.pkg.dev/acme/shop/web"),
    ("gcr.io/acme/checkout:1.2@sha256:" + "c" * 64, "gcr.io/acme/checkout"),
    ("https://localhost:5000/team/app:v3", "localhost:5000/team/app"),
    ("https://gcr.io/project/image@sha256:foo", "gcr.io/project/image"),
    ("ubuntu:22.04", "ubuntu"),
])
def test_service_is_the_image_repository(resource_uri, service):
    assert service_of(resource_uri) == service


# --- the real samples -----------------------------------------------------------------------------


def sample_occurrences() -> list[dict]:
    """Every occurrence the sample files hold (list responses, wrapped and bare ones)."""
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document.get("occurrences"), list):
            found += document["occurrences"]
        elif isinstance(document.get("occurrence"), dict):
            found.append(document["occurrence"])
        elif any(key in document for key in ("resourceUri", "resourceUrl", "resource")):
            found.append(document)
    return found


@pytest.fixture(scope="module")
def sample_policy(tmp_path_factory) -> Policy:
    """Requires the synthetic sample's qa-approved note, verified with the key shipped beside it."""
    sample = json.loads((FIXTURES / "v1-attestation-SYNTHETIC.json").read_text())
    folder = tmp_path_factory.mktemp("policy")
    (folder / "qa.pub").write_text(sample["_publicKeyPem"])
    note = sample["occurrence"]["noteName"]
    (folder / "gate.toml").write_text(
        f'[gate]\nrequired_attestations = ["{note}"]\nmax_fixable_severity = "HIGH"\n'
        f'max_unfixable_severity = "CRITICAL"\n[[gate.attestor]]\nnote = "{note}"\npublic_keys = ["qa.pub"]\n')
    return load_policy(folder / "gate.toml")


@pytest.fixture(scope="module")
def sample_table(sample_policy) -> pd.DataFrame:
    return release_table(normalise(sample_occurrences()), sample_policy).set_index("resource_uri")


def test_real_samples_give_one_row_per_resource(sample_table):
    uris = {occurrence.get("resourceUri") or occurrence.get("resourceUrl") or occurrence["resource"]["uri"]
            for occurrence in sample_occurrences()}
    assert set(sample_table.index) == uris and sample_table.index.is_unique


def test_real_cloud_build_sample(sample_table):
    row = sample_table.loc["https://us-west2-docker.pkg.dev/imre-test/quickstart-docker-repo/quickstart-image@sha256:"
                           "41cb4b5e32e417b86c2b2229d0581b72f7dffd1cc6b0e586ab2cefdb7a527529"]
    assert row["service"] == "us-west2-docker.pkg.dev/imre-test/quickstart-docker-repo/quickstart-image"
    assert row["digest"] == "sha256:41cb4b5e32e417b86c2b2229d0581b72f7dffd1cc6b0e586ab2cefdb7a527529"
    assert row["source_revision"] == "6da093fbd4f14b31e6895154d070fb0113bc3aa8"
    assert row["build_time"] == pd.Timestamp("2023-02-17T09:56:56.113063Z")
    # The in-toto statement's SLSA builder id wins over the classic provenance's creator.
    assert row["builder"] == "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3"
    assert row["scan_status"] is None and not row["allowed"]
    assert row["failed_checks"] == ["attestation:projects/example-project/notes/qa-approved", "scan"]


def test_real_vulnerability_samples_count_by_effective_severity(sample_table):
    artifact_registry = sample_table.loc["https://us-docker.pkg.dev/valid-proj/valid-repo/valid-name@sha256:"
                                         "3fa5256ad34b31901ca30021c722fc7ba11a66ca070c8442862205696b908ddb"]
    # Provider severity HIGH, effective MEDIUM: the table counts the effective one.
    assert (artifact_registry["vulns_high"], artifact_registry["vulns_medium"], artifact_registry["vulns_fixable"]) == (0, 1, 1)
    binxio = sample_table.loc["https://gcr.io/binx-io-public/alpine@sha256:"
                              "ddac200f3ebc9902fb8cfcd599f41feb2151f1118929da21bcef57dc276975f9"]
    assert (binxio["vulns_high"], binxio["vulns_fixable"]) == (1, 1)


def test_real_attestation_sample_is_present_and_verified(sample_table):
    row = sample_table.loc["https://us-docker.pkg.dev/example-project/app/web@sha256:"
                           "37e5287945774f27b418ce567cd77f4bbc9ef44a1bcd1a2312369f31f9cce567"]
    assert (row["attestations_required"], row["attestations_present"], row["attestations_verified"]) == (1, 1, 1)
    assert row["failed_checks"] == ["scan", "build-provenance"]


def test_real_v1beta1_open_source_server_samples(sample_table):
    row = sample_table.loc["https://gcr.io/project/image@sha256:foo"]
    assert row["digest"] is None and "digest" in row["failed_checks"]
    # One DISCOVERY is PENDING, another FINISHED_SUCCESS: the finished scan counts, as in the gate.
    assert row["scan_status"] == "FINISHED_SUCCESS"
    assert (row["vulns_minimal"], row["vulns_unspecified"]) == (1, 2)
    assert row["source_repo"] is not None and row["source_revision"] is not None
    assert row["deployments"] == [{"cluster": None, "address": "address",
                                   "deploy_time": pd.Timestamp("2000-01-23T04:56:07Z"),
                                   "undeploy_time": pd.Timestamp("2000-01-23T04:56:07Z"), "platform": "CUSTOM"}]
    assert row["running_in"] == [] and row["last_deployed"] == pd.Timestamp("2000-01-23T04:56:07Z")


# --- built occurrences, in either dialect ---------------------------------------------------------


@pytest.fixture(scope="module")
def qa_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def policy(qa_key) -> Policy:
    return Policy(
        required_attestations=(TESTS_NOTE, QA_NOTE),
        max_fixable_severity="HIGH",
        max_unfixable_severity="CRITICAL",
        attestors=(Attestor(note=QA_NOTE, public_keys=(qa_key.public_key(),), key_files=(Path("qa.pub"),)),),
    )


class Builder:
    """Raw occurrences in the v1 or v1beta1 dialect, as the two kinds of server return them."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.occurrences: list[dict] = []

    def _add(self, uri: str, kind: str, note: str, v1_key: str, payload: dict, v1beta1: tuple[str, dict]) -> None:
        occurrence = {"name": f"projects/shop/occurrences/{len(self.occurrences) + 1}", "noteName": note,
                      "kind": kind, "createTime": "2024-05-01T00:00:00Z"}
        if self.dialect == "v1":
            occurrence.update({"resourceUri": uri, v1_key: payload})
        else:
            key, nested = v1beta1
            occurrence.update({"resource": {"uri": uri}, key: nested})
        self.occurrences.append(occurrence)

    def build(self, uri: str, start: str, end: str, revision: str) -> None:
        payload = {"provenance": {"id": revision, "startTime": start, "endTime": end,
                                  "creator": "ci@shop.iam.gserviceaccount.com",
                                  "sourceProvenance": {"context": {"git": {"url": "https://github.com/shop/app",
                                                                           "revisionId": revision}}}}}
        self._add(uri, "BUILD", "projects/shop/notes/build", "build", payload, ("build", payload))

    def scan(self, uri: str, status: str, when: str | None = None) -> None:
        v1 = {"analysisStatus": status, **({"lastScanTime": when} if when else {})}
        v1beta1 = {"analysisStatus": status, **({"lastAnalysisTime": when} if when else {})}
        self._add(uri, "DISCOVERY", "projects/goog-analysis/notes/PACKAGE_VULNERABILITY", "discovery", v1,
                  ("discovered", {"discovered": v1beta1}))

    def vulnerability(self, uri: str, cve: str, severity: str, package: str, fixed: str | None) -> None:
        fixed_version = {"name": fixed, "kind": "NORMAL"} if fixed else {"kind": "MAXIMUM"}
        v1_issue = {"affectedPackage": package, "affectedVersion": {"name": "1.0", "kind": "NORMAL"},
                    "fixedVersion": fixed_version, "effectiveSeverity": severity,
                    **({"fixAvailable": True} if fixed else {})}
        v1 = {"severity": severity, "effectiveSeverity": severity, "packageIssue": [v1_issue],
              **({"fixAvailable": True} if fixed else {})}
        v1beta1 = {"severity": severity, "effectiveSeverity": severity, "packageIssue": [{
            "affectedLocation": {"package": package, "version": {"name": "1.0", "kind": "NORMAL"}},
            "fixedLocation": {"package": package, "version": fixed_version}}]}
        self._add(uri, "VULNERABILITY", f"projects/goog-vulnz/notes/{cve}", "vulnerability", v1,
                  ("vulnerability", v1beta1))

    def attestation(self, uri: str, note: str, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        payload = json.dumps({"critical": {"identity": {"docker-reference": service_of(uri)},
                                           "image": {"docker-manifest-digest": uri.rsplit("@", 1)[1]},
                                           "type": "Google cloud binauthz container signature"}}).encode()
        signature = (key or ec.generate_private_key(ec.SECP256R1())).sign(payload, ec.ECDSA(hashes.SHA256()))
        signed = {"serializedPayload": base64.b64encode(payload).decode(),
                  "signatures": [{"signature": base64.b64encode(signature).decode(), "publicKeyId": "key"}]}
        self._add(uri, "ATTESTATION", note, "attestation", signed,
                  ("attestation", {"attestation": {"genericSignedAttestation": {
                      "contentType": "SIMPLE_SIGNING_JSON", **signed}}}))

    def deployment(self, uri: str, cluster: str, deployed: str, undeployed: str | None = None) -> None:
        details = {"address": f"https://container.googleapis.com/v1/projects/shop/locations/eu/clusters/{cluster}",
                   "deployTime": deployed, "platform": "GKE", **({"undeployTime": undeployed} if undeployed else {})}
        self._add(uri, "DEPLOYMENT", "projects/shop/notes/deploy", "deployment", details,
                  ("deployment", {"deployment": details}))


def shop_occurrences(dialect: str, qa_key: ec.EllipticCurvePrivateKey) -> list[dict]:
    """Two services, five releases, listed out of build order."""
    shop = Builder(dialect)
    # W1: allowed, running in prod.
    shop.build(W1, "2024-05-03T09:50:00Z", "2024-05-03T10:00:00Z", "w1" * 20)
    shop.scan(W1, "FINISHED_SUCCESS", "2024-05-03T10:05:00Z")
    shop.attestation(W1, TESTS_NOTE)
    shop.attestation(W1, QA_NOTE, qa_key)
    shop.deployment(W1, "prod", "2024-05-04T08:00:00Z")
    # C2: QA signature by an untrusted key and a fixable CRITICAL; a PENDING scan later finished.
    shop.build(C2, "2024-05-05T09:00:00Z", "2024-05-05T09:10:00Z", "c2" * 20)
    shop.scan(C2, "PENDING")
    shop.scan(C2, "FINISHED_SUCCESS", "2024-05-05T09:20:00Z")
    shop.vulnerability(C2, "CVE-2024-0004", "CRITICAL", "openssl", "3.0.9")
    shop.attestation(C2, TESTS_NOTE)
    shop.attestation(C2, QA_NOTE)
    shop.deployment(C2, "staging", "2024-05-05T12:00:00Z")
    # C3: no build, no attestations, still scanning, a vulnerability of unspecified severity.
    shop.scan(C3, "SCANNING")
    shop.vulnerability(C3, "CVE-2024-0005", "SEVERITY_UNSPECIFIED", "zlib", None)
    # W2: allowed, replaced in prod by W1.
    shop.build(W2, "2024-05-02T09:50:00Z", "2024-05-02T10:00:00Z", "w2" * 20)
    shop.scan(W2, "FINISHED_SUCCESS", "2024-05-02T10:05:00Z")
    shop.attestation(W2, TESTS_NOTE)
    shop.attestation(W2, QA_NOTE, qa_key)
    shop.deployment(W2, "prod", "2024-05-02T12:00:00Z", "2024-05-04T08:00:00Z")
    # C1: allowed; one CVE in two packages (HIGH with a fix, MEDIUM without) counts once, as HIGH.
    shop.build(C1, "2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", "c1" * 20)
    shop.scan(C1, "FINISHED_SUCCESS", "2024-05-01T10:30:00Z")
    shop.vulnerability(C1, "CVE-2024-0001", "HIGH", "openssl", "3.0.8")
    shop.vulnerability(C1, "CVE-2024-0001", "MEDIUM", "libssl3", None)
    shop.vulnerability(C1, "CVE-2024-0002", "LOW", "bash", None)
    shop.vulnerability(C1, "CVE-2024-0003", "MINIMAL", "apt", None)
    shop.attestation(C1, TESTS_NOTE)
    shop.attestation(C1, QA_NOTE, qa_key)
    shop.deployment(C1, "staging", "2024-05-01T12:00:00Z", "2024-05-05T12:00:00Z")
    shop.deployment(C1, "prod", "2024-05-02T09:00:00Z")
    return shop.occurrences


@pytest.fixture(scope="module")
def shop_table(qa_key, policy) -> pd.DataFrame:
    return release_table(normalise(shop_occurrences("v1", qa_key)), policy)


def test_columns_and_dtypes(shop_table):
    assert tuple(shop_table.columns) == RELEASE_COLUMNS
    assert str(shop_table["build_time"].dtype) == "datetime64[ns, UTC]"
    assert str(shop_table["last_deployed"].dtype) == "datetime64[ns, UTC]"
    assert shop_table["allowed"].dtype == bool and shop_table["vulns_high"].dtype == "int64"
    assert shop_table["digest"].dtype == object


def test_grouped_by_service_newest_build_first_and_no_build_last(shop_table):
    assert list(shop_table["resource_uri"]) == [C2, C1, C3, W1, W2]
    assert list(shop_table["service"]) == [CART, CART, CART, WEB, WEB]
    assert pd.isna(shop_table.loc[2, "build_time"])
    assert shop_table.loc[0, "build_time"] == pd.Timestamp("2024-05-05T09:10:00Z")


def test_build_facts(shop_table):
    row = shop_table.set_index("resource_uri").loc[C1]
    assert row["digest"] == "sha256:" + f"{1:064x}"
    assert (row["source_repo"], row["source_revision"]) == ("https://github.com/shop/app", "c1" * 20)
    assert row["builder"] == "ci@shop.iam.gserviceaccount.com"


def test_vulnerability_counts_per_distinct_cve_at_its_highest_severity(shop_table):
    table = shop_table.set_index("resource_uri")
    severities = ["vulns_critical", "vulns_high", "vulns_medium", "vulns_low", "vulns_minimal", "vulns_unspecified"]
    assert list(table.loc[C1, severities]) == [0, 1, 0, 1, 1, 0]
    assert table.loc[C1, "vulns_fixable"] == 1
    assert list(table.loc[C2, severities]) == [1, 0, 0, 0, 0, 0] and table.loc[C2, "vulns_fixable"] == 1
    assert list(table.loc[C3, severities]) == [0, 0, 0, 0, 0, 1] and table.loc[C3, "vulns_fixable"] == 0
    assert table.loc[W1, severities].sum() == 0


def test_scan_status(shop_table):
    table = shop_table.set_index("resource_uri")
    assert table.loc[C2, "scan_status"] == "FINISHED_SUCCESS"
    assert table.loc[C2, "last_scan_time"] == pd.Timestamp("2024-05-05T09:20:00Z")
    assert table.loc[C3, "scan_status"] == "SCANNING" and pd.isna(table.loc[C3, "last_scan_time"])


def test_attestations_present_and_verified(shop_table):
    table = shop_table.set_index("resource_uri")
    counts = table[["attestations_required", "attestations_present", "attestations_verified"]]
    # tests-passed has no attestor: present, never "verified".
    assert list(counts.loc[C1]) == [2, 2, 1]
    assert list(counts.loc[C2]) == [2, 2, 0]
    assert list(counts.loc[C3]) == [2, 0, 0]


def test_gate_verdicts(shop_table):
    table = shop_table.set_index("resource_uri")
    assert table["allowed"].to_dict() == {C2: False, C1: True, C3: False, W1: True, W2: True}
    assert table.loc[C2, "failed_checks"] == [f"attestation:{QA_NOTE}", "vulnerability:CVE-2024-0004"]
    assert table.loc[C3, "failed_checks"] == [f"attestation:{TESTS_NOTE}", f"attestation:{QA_NOTE}", "scan",
                                              "build-provenance", "vulnerability:CVE-2024-0005"]
    assert len(table.loc[C2, "gate_reasons"]) == 2 and "no signature verified" in table.loc[C2, "gate_reasons"][0]
    assert table.loc[C1, "gate_reasons"] == []


def test_deployments(shop_table):
    table = shop_table.set_index("resource_uri")
    assert table.loc[C1, "deployments"] == [
        {"cluster": "staging", "address": "https://container.googleapis.com/v1/projects/shop/locations/eu/clusters/staging",
         "deploy_time": pd.Timestamp("2024-05-01T12:00:00Z"), "undeploy_time": pd.Timestamp("2024-05-05T12:00:00Z"),
         "platform": "GKE"},
        {"cluster": "prod", "address": "https://container.googleapis.com/v1/projects/shop/locations/eu/clusters/prod",
         "deploy_time": pd.Timestamp("2024-05-02T09:00:00Z"), "undeploy_time": None, "platform": "GKE"},
    ]
    assert table["running_in"].to_dict() == {C2: ["staging"], C1: ["prod"], C3: [], W1: ["prod"], W2: []}
    assert table.loc[C1, "last_deployed"] == pd.Timestamp("2024-05-02T09:00:00Z")
    assert pd.isna(table.loc[C3, "last_deployed"]) and table.loc[C3, "deployments"] == []


def test_source_error_denies_every_release(qa_key, policy):
    table = release_table(normalise(shop_occurrences("v1", qa_key)), policy, source_error="Grafeas timed out")
    assert not table["allowed"].any()
    assert all(checks[0] == "source" for checks in table["failed_checks"])
    assert "Grafeas timed out" in table.loc[0, "gate_reasons"][0]


def test_no_occurrences_give_an_empty_table_with_every_column(policy, shop_table):
    table = release_table(normalise([]), policy)
    assert table.empty and tuple(table.columns) == RELEASE_COLUMNS
    assert table.dtypes.to_dict() == shop_table.dtypes.to_dict()


def test_the_gate_runs_once_for_all_releases(qa_key, policy, monkeypatch):
    calls = []
    real = provenance.evaluate_gates

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(provenance, "evaluate_gates", counting)
    release_table(normalise(shop_occurrences("v1", qa_key)), policy)
    assert len(calls) == 1


@pytest.mark.parametrize("dialect", ["v1", "v1beta1"])
def test_through_the_test_server_in_both_dialects(dialect, qa_key, policy, shop_table):
    with GrafeasTestServer({"shop": shop_occurrences(dialect, qa_key)}, max_page_size=7) as server:
        client = GrafeasClient(server.url, api=dialect, retry_base_delay=0.0)
        occurrences = list(client.occurrences_for_resource(None, ["shop"]))
    assert len(server.requests) > 1  # paged

    table = release_table(normalise(occurrences), policy)

    # ECDSA signatures differ between the two builds, but nothing in the table depends on their bytes.
    pd.testing.assert_frame_equal(table, shop_table)

