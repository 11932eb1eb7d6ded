"""Benchmark of the supply-chain path on a large Grafeas project (a script, not a test).

Serves ``--occurrences`` v1 occurrences over ``--releases`` releases from the Grafeas test server
(``harness/grafeas_server.py``, on 127.0.0.1, in a process of its own as a real server would be) and
measures, as the median of ``--repeat`` interleaved runs:

(a) raw paging: plain requests through every page (``pageSize`` 1000) with JSON decoding, keeping
    the decoded occurrences;
(b) fetch + normalise as the CLI does it: ``normalise`` over ``GrafeasClient.iter_occurrences``, which
    streams the occurrences and fetches the next page while they are normalised; against (a)
    (target <= 1.2x). Also timed apart: the fetch alone (``list_occurrences``) and the normalising
    of an already fetched list;
(c) the gate over every release: ``evaluate_gates`` on the normalised frames (target <= 1 s);
(d) ``release_table`` over them.

Each release has two BUILD occurrences, a DISCOVERY, two ATTESTATIONs (one signed with ECDSA P-256
and verified by the policy's attestor), two DEPLOYMENTs and VULNERABILITY occurrences for the rest,
shaped like the v1 samples in ``tests/fixtures/grafeas``. ``--latency`` makes the server answer late,
as a remote one does (the default, 0, is loopback: the hardest case for streaming to hide work in).

Usage: ``.venv/bin/python -m bench.grafeas_bench --occurrences 20000 --releases 200 [--latency 0.02]``
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.gate import evaluate_gates
from dashboard.occurrences import normalise
from dashboard.policy import Policy, load_policy
from dashboard.process import garbage_collection_paused
from dashboard.provenance import release_table
from dashboard.sources.grafeas import MAX_PAGE_SIZE, GrafeasClient
from harness.grafeas_server import GrafeasTestServer

PROJECT = "bench"
TESTS_NOTE = "projects/bench-attestors/notes/tests-passed"
QA_NOTE = "projects/bench-attestors/notes/qa-approved"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Release:
    number: int
    service: str
    repository: str
    digest: str
    built: datetime

    @property
    def uri(self) -> str:
        return f"https://{self.repository}@{self.digest}"


Payload = tuple[str, str, dict[str, Any]]


def generate(occurrence_count: int, release_count: int, qa_key: ec.EllipticCurvePrivateKey) -> list[dict]:
    """``occurrence_count`` v1 occurrences spread evenly over ``release_count`` releases."""
    per_release = occurrence_count // release_count
    occurrences: list[dict] = []
    for number in range(release_count):
        service = f"service-{number % 20:02d}"
        release = Release(number, service, f"gcr.io/bench-project/{service}", f"sha256:{number:064x}",
                          START + timedelta(hours=3 * number))
        payloads = [
            *build_payloads(release),
            ("DISCOVERY", "projects/goog-analysis/notes/PACKAGE_VULNERABILITY", {"discovery": {
                "continuousAnalysis": "ACTIVE", "analysisStatus": "FINISHED_SUCCESS",
                "analysisCompleted": {"analysisType": ["OS", "GO"]},
                "lastScanTime": rfc3339(release.built + timedelta(minutes=4))}}),
            *attestation_payloads(release, qa_key),
            *(("DEPLOYMENT", "projects/bench/notes/deploy", {"deployment": {
                "userEmail": "deployer@bench.iam.gserviceaccount.com",
                "deployTime": rfc3339(release.built + timedelta(hours=1)),
                "address": f"https://container.googleapis.com/v1/projects/bench/locations/eu/clusters/{cluster}",
                "resourceUri": [release.uri], "platform": "GKE"}}) for cluster in ("staging", "prod")),
        ]
        payloads += [vulnerability_payload(index) for index in range(per_release - len(payloads))]
        for kind, note, payload in payloads:
            created = rfc3339(release.built)
            occurrences.append({"name": f"projects/{PROJECT}/occurrences/{len(occurrences):08d}",
                                "resourceUri": release.uri, "noteName": note, "kind": kind,
                                "createTime": created, "updateTime": created, **payload})
    return occurrences


def build_payloads(release: Release) -> list[Payload]:
    """Cloud Build's two BUILD occurrences: classic provenance and the in-toto statement."""
    build_id, revision = f"b{release.number}", f"{release.number:040x}"
    source = f"https://github.com/bench/{release.service}"
    tag = f"{release.repository}:v{release.number}"
    started, finished = rfc3339(release.built - timedelta(minutes=5)), rfc3339(release.built)
    classic = {"provenance": {
        "id": build_id, "projectId": PROJECT, "startTime": started, "endTime": finished,
        "creator": "1234@cloudbuild.gserviceaccount.com",
        "builtArtifacts": [{"checksum": release.digest, "id": f"{release.repository}@{release.digest}",
                            "names": [tag]}],
        "sourceProvenance": {"context": {"git": {"url": source, "revisionId": revision}}},
    }}
    intoto = {"intotoStatement": {
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": f"https://{tag}", "digest": {"sha256": release.digest.removeprefix("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v0.1",
        "slsaProvenance": {
            "builder": {"id": "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3"},
            "metadata": {"buildInvocationId": build_id, "buildStartedOn": started, "buildFinishedOn": finished},
            "materials": [{"uri": source, "digest": {"sha1": revision}}],
        },
    }}
    return [("BUILD", f"projects/verified-builder/notes/{build_id}", {"build": classic}),
            ("BUILD", f"projects/verified-builder/notes/intoto_{build_id}", {"build": intoto})]


def attestation_payloads(release: Release, qa_key: ec.EllipticCurvePrivateKey) -> list[Payload]:
    """tests-passed (not verified by the policy) and qa-approved, signed with ``qa_key``."""
    payload = json.dumps({"critical": {"identity": {"docker-reference": release.repository},
                                       "image": {"docker-manifest-digest": release.digest},
                                       "type": "Google cloud binauthz container signature"}}).encode()
    attestations = []
    for note, signature in ((TESTS_NOTE, b"unverified"),
                            (QA_NOTE, qa_key.sign(payload, ec.ECDSA(hashes.SHA256())))):
        attestations.append(("ATTESTATION", note, {"attestation": {
            "serializedPayload": base64.b64encode(payload).decode(),
            "signatures": [{"signature": base64.b64encode(signature).decode(),
                            "publicKeyId": "ni:///sha-256;bench"}]}}))
    return attestations


def vulnerability_payload(index: int) -> Payload:
    """A Debian package vulnerability within the bench policy (HIGH at most), two in three fixable."""
    severity = SEVERITIES[1 + index % 4]
    fix = {"fixAvailable": True} if index % 3 else {}
    cpe = "cpe:/o:debian:debian_linux:12"
    issue = {
        "affectedCpeUri": cpe, "affectedPackage": f"package-{index}",
        "affectedVersion": {"name": "1.2.3", "revision": "1", "kind": "NORMAL", "fullName": "1.2.3-1"},
        "fixedCpeUri": cpe, "fixedPackage": f"package-{index}",
        "fixedVersion": ({"name": "1.2.4", "revision": "1", "kind": "NORMAL", "fullName": "1.2.4-1"}
                         if fix else {"kind": "MAXIMUM"}),
        "packageType": "OS", "effectiveSeverity": severity, **fix,
    }
    cve = f"CVE-2024-{10000 + index}"
    return ("VULNERABILITY", f"projects/goog-vulnz/notes/{cve}", {"vulnerability": {
        "severity": severity, "cvssScore": 7.5, "packageIssue": [issue], "shortDescription": cve,
        "longDescription": "NIST vectors: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        "relatedUrls": [{"url": f"https://security-tracker.debian.org/tracker/{cve}", "label": "More Info"}],
        "effectiveSeverity": severity, "cvssv3": {"baseScore": 7.5}, "cvssVersion": "CVSS_VERSION_3", **fix,
    }})


def bench_policy(folder: Path, qa_key: ec.EllipticCurvePrivateKey) -> Policy:
    pem = qa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "qa.pub").write_bytes(pem)
    (folder / "policy.toml").write_text(
        f'[gate]\nrequired_attestations = ["{TESTS_NOTE}", "{QA_NOTE}"]\n'
        'max_fixable_severity = "HIGH"\nmax_unfixable_severity = "CRITICAL"\n'
        f'[[gate.attestor]]\nnote = "{QA_NOTE}"\npublic_keys = ["qa.pub"]\n')
    return load_policy(folder / "policy.toml")


def raw_paging(url: str) -> tuple[list[dict], int, int]:
    """Every page with plain requests and JSON decoding, keeping the occurrences as any consumer
    must; returns (occurrences, pages, bytes)."""
    occurrences: list[dict] = []
    pages = size = 0
    token = ""
    with requests.Session() as session:
        while True:
            params = {"pageSize": str(MAX_PAGE_SIZE), **({"pageToken": token} if token else {})}
            response = session.get(f"{url}/v1/projects/{PROJECT}/occurrences", params=params, timeout=60)
            response.raise_for_status()
            page = response.json()
            occurrences += page.get("occurrences", [])
            pages += 1
            size += len(response.content)
            token = page.get("nextPageToken", "")
            if not token:
                return occurrences, pages, size


def serve(occurrence_count: int, release_count: int, key_pem: bytes, latency: float,
          connection: Connection, stop: Event) -> None:
    """Child process: generate the occurrences and serve them until ``stop`` is set, each answer
    ``latency`` seconds late."""
    qa_key = serialization.load_pem_private_key(key_pem, password=None)
    occurrences = {PROJECT: generate(occurrence_count, release_count, qa_key)}
    with GrafeasTestServer(occurrences, delay=latency) as server:
        connection.send(server.url)
        stop.wait()


def seconds(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=20_000)
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the server waits before each answer, as a remote one's round trip")
    args = parser.parse_args()
    if args.occurrences < 8 * args.releases:
        parser.error("need at least 8 occurrences per release")

    print("command: " + " ".join([Path(sys.executable).name, "-m", "bench.grafeas_bench", *sys.argv[1:]]))
    qa_key = ec.generate_private_key(ec.SECP256R1())
    key_pem = qa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(args.occurrences, args.releases, key_pem, args.latency, sender, stop),
                                     daemon=True)
    server.start()
    try:
        url = receiver.recv()
        with tempfile.TemporaryDirectory(prefix="grafeas-bench-") as folder:
            policy = bench_policy(Path(folder), qa_key)
        client = GrafeasClient(url, page_size=MAX_PAGE_SIZE, timeout=60)
        _, pages, size = raw_paging(url)  # warm-up: the server caches its selection
        runs: dict[str, list[float]] = {"raw": [], "both": [], "both_collecting": [], "fetch": [], "normalise": [], "gate": [], "table": []}
        for _ in range(args.repeat):
            # Interleaved, so that (a) and (b) see the same machine conditions, and each started
            # on a collected heap holding no other run's data: otherwise the garbage collector's
            # walks over one phase's objects would be billed to the next.
            gc.collect()
            runs["raw"].append(seconds(lambda: raw_paging(url))[0])
            gc.collect()
            with garbage_collection_paused():
                runs["both"].append(seconds(lambda: normalise(client.iter_occurrences(PROJECT)))[0])
            gc.collect()
            runs["both_collecting"].append(seconds(lambda: normalise(client.iter_occurrences(PROJECT)))[0])
            gc.collect()
            elapsed, fetched = seconds(lambda: client.list_occurrences(PROJECT))
            runs["fetch"].append(elapsed)
            elapsed, frames = seconds(lambda: normalise(fetched))
            runs["normalise"].append(elapsed)
            elapsed, verdicts = seconds(lambda: evaluate_gates(frames, policy))
            runs["gate"].append(elapsed)
            elapsed, table = seconds(lambda: release_table(frames, policy))
            runs["table"].append(elapsed)
            occurrence_count, vulnerability_rows = len(fetched), len(frames.vulnerabilities)
            del fetched, frames
    finally:
        stop.set()
        server.join(timeout=10)

    median = {name: statistics.median(values) for name, values in runs.items()}
    raw = median["raw"]
    allowed = sum(result.allowed for result in verdicts.values())
    services = table["service"].nunique()
    print(f"data: {occurrence_count:,} occurrences over {len(verdicts)} releases ({services} services), "
          f"{pages} pages of {MAX_PAGE_SIZE}, {size / 1e6:.1f} MB of JSON; "
          f"{vulnerability_rows:,} vulnerability rows; test server in its own process, "
          f"answering {args.latency * 1000:.0f} ms late")
    print(f"(a) raw paging, plain requests + JSON decoding (median of {args.repeat}): {raw:.3f} s")
    print(f"(b) fetch + normalise, streamed as the CLI does (median of {args.repeat}): {median['both']:.3f} s"
          f" = {median['both'] / raw:.2f}x raw (target <= 1.2x)")
    print(f"    the same with the garbage collector running, as inside the app: {median['both_collecting']:.3f} s"
          f" = {median['both_collecting'] / raw:.2f}x raw")
    print(f"    of which fetch alone {median['fetch']:.3f} s = {median['fetch'] / raw:.2f}x raw,"
          f" normalise of a fetched list alone (collector running) {median['normalise']:.3f} s")
    print(f"(c) gate over all {len(verdicts)} releases, evaluate_gates (median of {args.repeat}): "
          f"{median['gate']:.3f} s (target <= 1 s); {allowed} allowed")
    print(f"(d) release_table over all {len(table)} releases (median of {args.repeat}): {median['table']:.3f} s")


if __name__ == "__main__":
    main()
