"""`python -m dashboard gate` and `releases` as CI pipelines use them, against the Grafeas test server.

The occurrences are raw v1 / v1beta1 JSON with real ECDSA signatures, so the whole path runs:
client, normaliser, policy file with key files, signature verification, exit codes.
"""

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.appserver import free_port
from harness.grafeas_server import GrafeasTestServer

ROOT = Path(__file__).resolve().parent.parent
QA_NOTE = "projects/attestors/notes/qa-approved"
TESTS_NOTE = "projects/attestors/notes/tests-passed"
GOOD = "https://gcr.io/acme/checkout@sha256:" + "1" * 64
UNATTESTED = "https://gcr.io/acme/checkout@sha256:" + "2" * 64
OTHER_IMAGE = "https://gcr.io/acme/payments@sha256:" + "3" * 64
ATTESTED_ELSEWHERE = "https://gcr.io/acme/ledger@sha256:" + "4" * 64
STORED_WITHOUT_SCHEME = "gcr.io/acme/cart@sha256:" + "5" * 64


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def qa_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory, qa_key):
    folder = tmp_path_factory.mktemp("policy")
    (folder / "keys").mkdir()
    (folder / "keys" / "qa.pub").write_bytes(
        qa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = folder / "policy.toml"
    path.write_text(
        "[gate]\n"
        f'required_attestations = ["{TESTS_NOTE}", "{QA_NOTE}"]\n'
        'max_fixable_severity = "HIGH"\nmax_unfixable_severity = "CRITICAL"\n'
        "require_scan = true\nrequire_build_provenance = true\n"
        f'[[gate.attestor]]\nnote = "{QA_NOTE}"\npublic_keys = ["keys/qa.pub"]\n'
    )
    return path


def occurrences_of(resource: str, qa_key, *, attested: bool = True, name: str = "a") -> list[dict]:
    digest = resource.rsplit("@", 1)[1]
    payload = json.dumps(
        {"critical": {"identity": {"docker-reference": resource.split("@")[0].removeprefix("https://")},
                      "image": {"docker-manifest-digest": digest},
                      "type": "Google cloud binauthz container signature"}}
    ).encode()
    signature = qa_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    common = {"resourceUri": resource, "createTime": "2026-11-01T10:00:00Z"}
    found = [
        {**common, "name": f"projects/acme/occurrences/{name}-scan", "kind": "DISCOVERY",
         "noteName": "projects/goog-analysis/notes/PACKAGE_VULNERABILITY",
         "discovery": {"analysisStatus": "FINISHED_SUCCESS", "lastScanTime": "2026-11-01T10:05:00Z"}},
        {**common, "name": f"projects/acme/occurrences/{name}-build", "kind": "BUILD",
         "noteName": "projects/acme/notes/cloudbuild",
         "build": {"provenance": {"id": "b-1", "builderVersion": "v1", "creator": "ci@acme.example",
                                  "startTime": "2026-11-01T09:50:00Z", "endTime": "2026-11-01T09:58:00Z",
                                  "sourceProvenance": {"context": {"git": {"url": "https://github.com/acme/checkout",
                                                                          "revisionId": "abc123"}}}}}},
        {**common, "name": f"projects/acme/occurrences/{name}-cve", "kind": "VULNERABILITY",
         "noteName": "projects/goog-vulnz/notes/CVE-2023-44487",
         "vulnerability": {"effectiveSeverity": "HIGH", "cvssScore": 7.5, "fixAvailable": True,
                           "packageIssue": [{"affectedPackage": "golang.org/x/net",
                                             "affectedVersion": {"name": "0.7.0", "kind": "NORMAL"},
                                             "fixedVersion": {"name": "0.17.0", "kind": "NORMAL"},
                                             "fixAvailable": True, "effectiveSeverity": "HIGH"}]}},
        {**common, "name": f"projects/attestors/occurrences/{name}-tests", "kind": "ATTESTATION", "noteName": TESTS_NOTE,
         "attestation": {"serializedPayload": b64(payload), "signatures": [{"signature": b64(signature)}]}},
    ]
    if attested:
        found.append(
            {**common, "name": f"projects/attestors/occurrences/{name}-qa", "kind": "ATTESTATION", "noteName": QA_NOTE,
             "attestation": {"serializedPayload": b64(payload),
                             "signatures": [{"signature": b64(signature), "publicKeyId": "qa"}]}}
        )
    return found


@pytest.fixture(scope="module")
def grafeas(qa_key):
    data = {"acme": occurrences_of(GOOD, qa_key, name="good")
            + occurrences_of(UNATTESTED, qa_key, attested=False, name="bad")}
    # Another image's QA attestation, in the attestor project: must never count for UNATTESTED.
    data["attestors"] = [o for o in occurrences_of(OTHER_IMAGE, qa_key, name="other") if o["kind"] == "ATTESTATION"]
    # A release whose attestations live only in the attestor project.
    elsewhere = occurrences_of(ATTESTED_ELSEWHERE, qa_key, name="elsewhere")
    data["acme"] += [o for o in elsewhere if o["kind"] != "ATTESTATION"]
    data["acme"] += occurrences_of(STORED_WITHOUT_SCHEME, qa_key, name="bare")
    data["attestors"] += [o for o in elsewhere if o["kind"] == "ATTESTATION"]
    with GrafeasTestServer(data, max_page_size=2) as server:
        yield server


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def gate(server_url, policy, resource, *extra, env=None):
    return cli("gate", "--resource", resource, "--grafeas-url", server_url, "--project", "acme",
               "--policy", str(policy), *extra, env=env)


def test_allowed_release_exits_0_with_every_check_passed(grafeas, policy_file):
    completed = gate(grafeas.url, policy_file, GOOD, "--format", "json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout)
    assert set(result) == {"resource", "allowed", "checks", "reasons"}
    assert result["allowed"] is True and result["reasons"] == []
    names = {check["name"] for check in result["checks"]}
    assert {f"attestation:{QA_NOTE}", f"attestation:{TESTS_NOTE}", "scan", "build-provenance"} <= names
    assert all(check["passed"] for check in result["checks"])


def test_missing_attestation_exits_1_and_text_names_the_note(grafeas, policy_file):
    completed = gate(grafeas.url, policy_file, UNATTESTED)
    assert completed.returncode == 1
    assert completed.stdout.startswith("DENIED: " + UNATTESTED)
    assert f"FAILED attestation:{QA_NOTE}" in completed.stdout


def test_v1beta1_server_ignoring_filter_cannot_lend_other_images_attestations(grafeas, policy_file):
    completed = gate(grafeas.url, policy_file, UNATTESTED, "--grafeas-api", "v1beta1", "--format", "json")
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["allowed"] is False


def test_unreachable_grafeas_fails_closed_with_exit_3(policy_file):
    url = f"http://127.0.0.1:{free_port()}"
    completed = gate(url, policy_file, GOOD, "--format", "json")
    assert completed.returncode == 3
    assert json.loads(completed.stdout)["allowed"] is False
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    "fault, fragment",
    [
        ({"raw_response": (200, b'{"occurrences": [')}, "invalid JSON"),
        ({"repeat_page_token": True}, "repeated page token"),
        ({"delay": 30}, "did not answer within"),
    ],
    ids=["invalid-json", "repeated-token", "timeout"],
)
def test_bad_answers_fail_closed_with_exit_3_in_bounded_time(policy_file, tmp_path, fault, fragment):
    config = tmp_path / "dashboard.toml"
    with GrafeasTestServer({"acme": occurrences_of(GOOD, ec.generate_private_key(ec.SECP256R1()))}, **fault) as server:
        config.write_text(f'[grafeas]\nurl = "{server.url}"\nproject = "acme"\ntimeout_seconds = 1\n')
        completed = cli("gate", "--resource", GOOD, "--config", str(config), "--policy", str(policy_file))
    assert completed.returncode == 3
    assert completed.stdout.startswith("DENIED")
    assert fragment in completed.stderr and "Traceback" not in completed.stderr


def test_server_error_fails_closed_and_the_token_is_never_printed(policy_file):
    with GrafeasTestServer({"acme": []}, always_fail=500) as server:
        completed = gate(server.url, policy_file, GOOD, env={"GRAFEAS_TOKEN": "tok-very-secret"})
    assert completed.returncode == 3
    assert "tok-very-secret" not in completed.stdout + completed.stderr
    assert server.requests[0].headers["authorization"] == "Bearer tok-very-secret"


def test_attestations_in_a_second_project_via_config(grafeas, policy_file, tmp_path):
    assert gate(grafeas.url, policy_file, ATTESTED_ELSEWHERE).returncode == 1
    config = tmp_path / "dashboard.toml"
    config.write_text(f'[grafeas]\nurl = "{grafeas.url}"\nproject = "acme"\nextra_projects = ["attestors"]\n')
    completed = cli("gate", "--resource", ATTESTED_ELSEWHERE, "--config", str(config), "--policy", str(policy_file))
    assert completed.returncode == 0, completed.stdout


def test_a_real_grafeas_without_a_policy_is_a_usage_error(grafeas):
    completed = cli("gate", "--resource", GOOD, "--grafeas-url", grafeas.url, "--project", "acme")
    assert completed.returncode == 2
    assert "no gate policy" in completed.stderr


def test_a_real_grafeas_without_a_project_is_a_usage_error(grafeas, policy_file):
    completed = cli("gate", "--resource", GOOD, "--grafeas-url", grafeas.url, "--policy", str(policy_file))
    assert completed.returncode == 2
    assert "project" in completed.stderr


def test_broken_policy_is_a_usage_error(grafeas, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[gate]\nrequired_attestations = []\nmax_fixable_severity = "SEVERE"\n')
    completed = gate(grafeas.url, policy, GOOD)
    assert completed.returncode == 2 and "SEVERE" in completed.stderr


def test_releases_json_and_csv_from_the_server(grafeas, policy_file):
    completed = cli("releases", "--grafeas-url", grafeas.url, "--project", "acme", "--policy", str(policy_file),
                    "--format", "json")
    assert completed.returncode == 0, completed.stderr
    rows = {row["resource_uri"]: row for row in json.loads(completed.stdout)}
    assert set(rows) == {GOOD, UNATTESTED, ATTESTED_ELSEWHERE, STORED_WITHOUT_SCHEME}
    assert rows[GOOD]["allowed"] is True and rows[UNATTESTED]["allowed"] is False
    assert rows[GOOD]["service"] == "gcr.io/acme/checkout"
    assert rows[GOOD]["source_revision"] == "abc123"
    assert rows[GOOD]["vulns_high"] == 1 and rows[GOOD]["vulns_fixable"] == 1
    csv = cli("releases", "--grafeas-url", grafeas.url, "--project", "acme", "--policy", str(policy_file),
              "--format", "csv", "--service", "checkout")
    assert csv.returncode == 0
    header, *lines = csv.stdout.strip().splitlines()
    assert header.startswith("service,") and len(lines) == 2  # ledger is another service


@pytest.mark.parametrize("given, stored", [
    (GOOD.removeprefix("https://"), GOOD),
    ("https://" + STORED_WITHOUT_SCHEME, STORED_WITHOUT_SCHEME),
    (STORED_WITHOUT_SCHEME, STORED_WITHOUT_SCHEME),
], ids=["scheme-left-out", "scheme-added", "as-stored"])
def test_gate_matches_a_resource_with_or_without_https(grafeas, policy_file, given, stored):
    completed = gate(grafeas.url, policy_file, given, "--format", "json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout)
    assert result["resource"] == stored and result["allowed"] is True


def test_a_resource_with_no_occurrences_says_so_and_suggests_the_close_one(grafeas, policy_file):
    typo = GOOD[:-1] + "0"
    completed = gate(grafeas.url, policy_file, typo)
    assert completed.returncode == 1
    assert completed.stdout.splitlines() == [
        f"DENIED: {typo}",
        f"  no occurrences for this resource (check the URI; did you mean {GOOD}?)",
    ]
    as_json = json.loads(gate(grafeas.url, policy_file, typo, "--format", "json").stdout)
    assert as_json["allowed"] is False and as_json["not_found"].startswith("no occurrences for this resource")


@pytest.mark.parametrize("resource", ["", "   ", "checkout", "gcr.io/acme/check out@sha256:1"])
def test_an_empty_or_non_uri_resource_is_a_usage_error(grafeas, policy_file, resource):
    requests_before = len(grafeas.requests)
    completed = gate(grafeas.url, policy_file, resource)
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: --resource")
    assert len(grafeas.requests) == requests_before, "an empty filter would have listed the whole project"


def test_releases_csv_cells_are_plain_text(grafeas, policy_file):
    completed = cli("releases", "--grafeas-url", grafeas.url, "--project", "acme", "--policy", str(policy_file),
                    "--format", "csv")
    assert completed.returncode == 0, completed.stderr
    rows = {row["resource_uri"]: row for row in csv.DictReader(io.StringIO(completed.stdout))}
    good, bad = rows[GOOD], rows[UNATTESTED]
    assert good["build_time"] == "2026-11-01T09:58:00Z" and good["last_scan_time"] == "2026-11-01T10:05:00Z"
    assert good["allowed"] == "True" and good["failed_checks"] == "" and good["running_in"] == ""
    assert bad["failed_checks"] == f"attestation:{QA_NOTE}"
    assert "Timestamp(" not in completed.stdout and "['" not in completed.stdout


def test_releases_table_shows_the_full_uri_and_one_word_verdicts(grafeas, policy_file):
    completed = cli("releases", "--grafeas-url", grafeas.url, "--project", "acme", "--policy", str(policy_file))
    assert completed.returncode == 0, completed.stderr
    header, *lines = completed.stdout.splitlines()
    assert header.split()[-5:] == ["first", "failed", "check", "impact", "resource"]
    by_uri = {line.split()[-1]: line.split() for line in lines}
    assert by_uri[GOOD][-4:-1] == ["allowed", "-", "-"]  # never deployed: no impact
    assert by_uri[UNATTESTED][-4:-1] == ["denied", f"attestation:{QA_NOTE}", "-"]
    assert "DENIED" not in completed.stdout
