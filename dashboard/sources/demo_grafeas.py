"""The embedded demo's supply chain: Grafeas v1 occurrences for five services over five weeks.

:func:`demo_occurrences` returns raw v1 occurrences, shaped like the real samples in
``tests/fixtures/grafeas`` (lowerCamelCase, base64 ``bytes``, false bools omitted, resource URIs
``https://REGISTRY/PROJECT/IMAGE@sha256:…``), so the demo goes through the same normaliser, gate
and release table as a real server. :class:`DemoGrafeas` serves them behind the interface of
``GrafeasSource``; :func:`demo_policy` is the policy they are judged by
(``dashboard/demo/policy.toml``).

Each release has two BUILD occurrences (classic Cloud Build provenance and its in-toto SLSA v0.1
statement, as Cloud Build writes them), a DISCOVERY, VULNERABILITY occurrences for the packages it
ships, ATTESTATIONs on the ``tests-passed`` and ``qa-approved`` notes, and a DEPLOYMENT per rollout
into the clusters ``staging`` and ``prod`` of the cluster demo (``dashboard.sources.demo``). A
rollout ends (``undeployTime``) when the next release of the service reaches that cluster, so the
latest allowed release of every service is running. Some rollouts are placed right before or inside
the cluster demo's incidents, read from ``demo_scenario(end)``, so the two halves of the dashboard
tell one story.

Attestations carry real ECDSA P-256 signatures over Binary Authorization simple-signing payloads,
made with RFC 6979 deterministic signing, so the output is identical for a given ``end``. The
signing keys are derived from public seeds in this module instead of being stored as private-key
files: nothing secret-looking is committed, and anyone can re-sign the demo. Their public halves are
committed as ``dashboard/demo/keys/*.pub`` and named by the demo policy. They sign demo data only.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.policy import Policy, load_policy
from dashboard.sources.demo import demo_scenario

PROJECT = "acme-demo"
PROJECT_NUMBER = "418207735521"
ATTESTOR_PROJECT = "acme-attestors"
TESTS_PASSED_NOTE = f"projects/{ATTESTOR_PROJECT}/notes/tests-passed"
QA_APPROVED_NOTE = f"projects/{ATTESTOR_PROJECT}/notes/qa-approved"
DEMO_POLICY_PATH = Path(__file__).resolve().parent.parent / "demo" / "policy.toml"
CLUSTERS = ("prod", "staging")

# Why a demo release is denied; each fails exactly the gate check in DENIAL_CHECKS.
MISSING_ATTESTATION = "missing attestation"
BAD_SIGNATURE = "bad signature"
OTHER_DIGEST = "payload for another digest"
CRITICAL_FIXABLE_CVE = "critical fixable CVE"
UNFINISHED_SCAN = "unfinished scan"
NO_PROVENANCE = "no provenance"
_CRITICAL_CVE = "CVE-2024-24790"
DENIAL_CHECKS: dict[str, str] = {
    MISSING_ATTESTATION: f"attestation:{QA_APPROVED_NOTE}",
    BAD_SIGNATURE: f"attestation:{QA_APPROVED_NOTE}",
    OTHER_DIGEST: f"attestation:{QA_APPROVED_NOTE}",
    CRITICAL_FIXABLE_CVE: f"vulnerability:{_CRITICAL_CVE}",
    UNFINISHED_SCAN: "scan",
    NO_PROVENANCE: "build-provenance",
}
"""The gate check that denies each kind of demo release."""

_DISCOVERY_NOTE = "projects/goog-analysis/notes/PACKAGE_VULNERABILITY"
_DEPLOY_NOTE = f"projects/{PROJECT}/notes/gke-deploy"
_DEPLOYER = f"clouddeploy@{PROJECT}.iam.gserviceaccount.com"
_CLOUD_BUILD_BUILDER = "https://cloudbuild.googleapis.com/GoogleHostedWorker@v0.3"
_SIGNATURE_TYPE = "Google cloud binauthz container signature"
# Artifact Registry keeps analysing an image for 30 days after its push.
_CONTINUOUS_ANALYSIS_DAYS = 30
# The untrusted key is a developer's own key, which the policy does not list.
_KEY_SEEDS = {
    TESTS_PASSED_NOTE: "acme-demo ci tests-passed attestor (demo only)",
    QA_APPROVED_NOTE: "acme-demo qa-approved attestor (demo only)",
    "untrusted": "acme-demo developer laptop key (demo only, not trusted)",
}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# --- what the demo contains -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Vulnerability:
    """A vulnerability of a package the service ships in releases ``releases``."""

    cve: str
    package: str
    package_type: str
    installed: str
    fixed: str | None
    severity: str
    effective_severity: str
    cvss: float
    releases: range


@dataclasses.dataclass(frozen=True)
class _Service:
    name: str
    repository: str
    source_repo: str
    os_cpe: str
    analysis_types: tuple[str, ...]
    vulnerabilities: tuple[_Vulnerability, ...]


def _vuln(cve: str, package: str, package_type: str, installed: str, fixed: str | None,
          severity: str, cvss: float, releases: range, effective: str | None = None) -> _Vulnerability:
    return _Vulnerability(cve, package, package_type, installed, fixed, severity,
                          effective or severity, cvss, releases)


_EVERY = range(1, 100)
_SERVICES = {service.name: service for service in (
    _Service("checkout", "gcr.io/acme-demo/checkout", "https://github.com/acme-demo/checkout",
             "cpe:/o:debian:debian_linux:12", ("OS", "GO"), (
                 _vuln("CVE-2023-44487", "golang.org/x/net", "GO", "0.15.0", "0.17.0", "HIGH", 7.5, range(1, 3)),
                 _vuln("CVE-2023-39325", "stdlib", "GO", "1.21.1", "1.21.3", "HIGH", 7.5, range(1, 3)),
                 _vuln("CVE-2023-45288", "golang.org/x/net", "GO", "0.17.0", "0.23.0", "MEDIUM", 5.3, range(3, 5)),
                 _vuln(_CRITICAL_CVE, "stdlib", "GO", "1.22.3", "1.22.4", "CRITICAL", 9.8, range(3, 4)),
                 _vuln("CVE-2024-34156", "stdlib", "GO", "1.22.5", "1.22.7", "HIGH", 7.5, range(4, 6)),
                 _vuln("CVE-2025-22869", "golang.org/x/crypto", "GO", "0.31.0", "0.35.0", "HIGH", 7.5, range(6, 8)),
                 _vuln("CVE-2019-1010022", "glibc", "OS", "2.36-9+deb12u4", None, "CRITICAL", 9.8, _EVERY, "LOW"),
             )),
    _Service("frontend", "gcr.io/acme-demo/frontend", "https://github.com/acme-demo/frontend",
             "cpe:/o:debian:debian_linux:12", ("OS", "NPM"), (
                 _vuln("CVE-2022-25883", "semver", "NPM", "7.5.1", "7.5.2", "HIGH", 7.5, range(1, 3)),
                 _vuln("CVE-2023-38545", "curl", "OS", "7.88.1-10+deb12u3", "7.88.1-10+deb12u4", "CRITICAL", 9.8,
                       range(2, 4)),
                 _vuln("CVE-2024-4068", "braces", "NPM", "3.0.2", "3.0.3", "HIGH", 7.5, range(1, 5)),
                 _vuln("CVE-2024-37890", "ws", "NPM", "8.16.0", "8.17.1", "HIGH", 7.5, range(4, 6)),
                 _vuln("CVE-2023-52425", "expat", "OS", "2.5.0-1", "2.5.0-1+deb12u1", "HIGH", 7.5, range(5, 7)),
                 _vuln("CVE-2024-45590", "body-parser", "NPM", "1.20.2", "1.20.3", "HIGH", 7.5, range(5, 8)),
                 _vuln("CVE-2023-50495", "ncurses", "OS", "6.4-4", None, "MEDIUM", 6.5, _EVERY, "LOW"),
                 _vuln("CVE-2011-3374", "apt", "OS", "2.6.1", None, "LOW", 3.7, _EVERY, "MINIMAL"),
             )),
    _Service("ledger", "europe-west1-docker.pkg.dev/acme-demo/finance/ledger",
             "https://github.com/acme-demo/ledger", "cpe:/o:debian:debian_linux:12", ("OS", "MAVEN"), (
                 _vuln("CVE-2023-34062", "io.projectreactor.netty:reactor-netty-http", "MAVEN", "1.1.12", "1.1.13",
                       "HIGH", 7.5, range(1, 3)),
                 _vuln("CVE-2024-29025", "io.netty:netty-codec-http", "MAVEN", "4.1.100.Final", "4.1.108.Final",
                       "MEDIUM", 5.3, range(1, 5)),
                 _vuln("CVE-2023-6378", "ch.qos.logback:logback-classic", "MAVEN", "1.4.11", "1.4.12", "HIGH", 7.1,
                       range(2, 4)),
                 _vuln("CVE-2024-2961", "glibc", "OS", "2.36-9+deb12u4", "2.36-9+deb12u7", "HIGH", 7.3, range(3, 5)),
                 _vuln("CVE-2024-7254", "com.google.protobuf:protobuf-java", "MAVEN", "3.25.3", "3.25.5", "HIGH", 7.5,
                       range(5, 7)),
                 _vuln("CVE-2019-1010022", "glibc", "OS", "2.36-9+deb12u4", None, "CRITICAL", 9.8, _EVERY, "LOW"),
             )),
    _Service("payments", "gcr.io/acme-demo/payments", "https://github.com/acme-demo/payments",
             "cpe:/o:canonical:ubuntu_linux:22.04", ("OS", "MAVEN"), (
                 _vuln("CVE-2022-42003", "com.fasterxml.jackson.core:jackson-databind", "MAVEN", "2.13.3", "2.13.4.1",
                       "HIGH", 7.5, range(1, 3)),
                 _vuln("CVE-2023-20863", "org.springframework:spring-expression", "MAVEN", "5.3.26", "5.3.27",
                       "MEDIUM", 6.5, range(1, 5)),
                 _vuln("CVE-2023-5363", "openssl", "OS", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.12", "HIGH", 7.5,
                       range(2, 5), "MEDIUM"),
                 _vuln("CVE-2024-22262", "org.springframework:spring-web", "MAVEN", "5.3.32", "5.3.34", "HIGH", 8.1,
                       range(5, 8)),
                 _vuln("CVE-2016-2781", "coreutils", "OS", "8.32-4.1ubuntu1", None, "MEDIUM", 6.5, _EVERY, "LOW"),
                 _vuln("CVE-2022-3219", "gnupg2", "OS", "2.2.27-3ubuntu2.1", None, "LOW", 3.3, _EVERY),
             )),
    _Service("search", "gcr.io/acme-demo/search", "https://github.com/acme-demo/search",
             "cpe:/o:debian:debian_linux:12", ("OS", "PYPI"), (
                 _vuln("CVE-2023-32681", "requests", "PYPI", "2.28.2", "2.31.0", "MEDIUM", 6.1, range(1, 3)),
                 _vuln("CVE-2024-35195", "requests", "PYPI", "2.31.0", "2.32.0", "MEDIUM", 5.6, range(3, 6)),
                 _vuln("CVE-2022-40897", "setuptools", "PYPI", "65.5.0", "65.5.1", "MEDIUM", 5.9, _EVERY),
                 _vuln("CVE-2024-6345", "setuptools", "PYPI", "65.5.0", "70.0.0", "HIGH", 8.8, range(4, 8)),
                 # Critical but without a fix: tolerated by max_unfixable_severity = CRITICAL.
                 _vuln("CVE-2023-45853", "zlib", "OS", "1:1.2.13.dfsg-1", None, "CRITICAL", 9.8, _EVERY),
                 _vuln("CVE-2022-0563", "util-linux", "OS", "2.38.1-5+b1", None, "MEDIUM", 5.5, _EVERY, "MINIMAL"),
             )),
)}


@dataclasses.dataclass(frozen=True)
class _Rollout:
    """A deployment into ``cluster``: ``after_build`` past the build, or ``offset`` from the start of
    the cluster demo's incident ``(component, kind)`` in that cluster."""

    cluster: str
    after_build: timedelta | None = None
    incident: tuple[str, str] | None = None
    offset: timedelta = timedelta(0)


def _staged(hours: float = 1) -> tuple[_Rollout, ...]:
    return (_Rollout("staging", after_build=timedelta(hours=hours)),)


def _promoted(staging_hours: float = 1, prod_hours: float = 24) -> tuple[_Rollout, ...]:
    return _staged(staging_hours) + (_Rollout("prod", after_build=timedelta(hours=prod_hours)),)


@dataclasses.dataclass(frozen=True)
class _Plan:
    service: str
    number: int
    age: timedelta
    rollouts: tuple[_Rollout, ...]
    denial: str | None = None


def _days(days: float) -> timedelta:
    return timedelta(days=days)


def _hours(hours: float) -> timedelta:
    return timedelta(hours=hours)


def _minutes(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


# Every release: service, number, build finished ``age`` before ``end``, rollouts, denial (None:
# allowed). Rollouts naming an incident coincide with the cluster demo's incidents.
_PLANS: tuple[_Plan, ...] = (
    _Plan("checkout", 1, _days(34) + _hours(2), _promoted()),
    _Plan("checkout", 2, _days(29), _promoted()),
    # Denied: a fixable CRITICAL in Go's stdlib (net/netip); staged, never promoted.
    _Plan("checkout", 3, _days(23), _staged(), CRITICAL_FIXABLE_CVE),
    _Plan("checkout", 4, _days(18), _promoted()),
    _Plan("checkout", 5, _days(11), _promoted(2)),
    _Plan("checkout", 6, _days(4), _promoted()),
    # Reaches prod 5 minutes before node-05's kubelet starts failing runtime operations.
    _Plan("checkout", 7, _hours(30), _staged() + (
        _Rollout("prod", incident=("kubelet", "runtime_errors"), offset=-_minutes(5)),)),
    _Plan("frontend", 1, _days(34) + _hours(5), _promoted()),
    _Plan("frontend", 2, _days(28), _promoted()),
    # Denied: its qa-approved attestation was copied from release 2 (payload names release 2).
    _Plan("frontend", 3, _days(22), _staged(), OTHER_DIGEST),
    _Plan("frontend", 4, _days(16), _promoted()),
    _Plan("frontend", 5, _days(8), _promoted()),
    _Plan("frontend", 6, _days(2), _promoted(1, 20)),
    # Denied: awaiting QA (no qa-approved attestation); rolled out to staging for QA while
    # staging's node-06 kubelet is down.
    _Plan("frontend", 7, _hours(5), (
        _Rollout("staging", incident=("kubelet", "down"), offset=_minutes(10)),), MISSING_ATTESTATION),
    _Plan("ledger", 1, _days(33) + _hours(3), _promoted()),
    _Plan("ledger", 2, _days(26), _promoted()),
    _Plan("ledger", 3, _days(19), _promoted()),
    _Plan("ledger", 4, _days(12), _promoted()),
    _Plan("ledger", 5, _days(5), _promoted()),
    # Reaches staging 5 minutes before staging's node-04 kube-proxy syncs slowly; not in prod yet.
    _Plan("ledger", 6, _hours(6), (
        _Rollout("staging", incident=("kube-proxy", "slow_sync"), offset=-_minutes(5)),)),
    _Plan("payments", 1, _days(33), _promoted()),
    _Plan("payments", 2, _days(27), _promoted()),
    # Denied: qa-approved signed with a developer's own key, which the policy does not trust.
    _Plan("payments", 3, _days(21), _staged(), BAD_SIGNATURE),
    _Plan("payments", 4, _days(15), _promoted()),
    _Plan("payments", 5, _days(9), _promoted()),
    # Reaches prod 10 minutes before prod's node-03 gets busy.
    _Plan("payments", 6, _days(2), _staged() + (
        _Rollout("prod", incident=("node", "busy"), offset=-_minutes(10)),)),
    # Denied: a QA-approved hotfix whose vulnerability scan is still running.
    _Plan("payments", 7, _minutes(90), (), UNFINISHED_SCAN),
    _Plan("search", 1, _days(35), _promoted()),
    _Plan("search", 2, _days(30), _promoted()),
    # Denied: a hotfix built outside Cloud Build, so no BUILD occurrence records its provenance.
    _Plan("search", 3, _days(24), _staged(0.5), NO_PROVENANCE),
    _Plan("search", 4, _days(17), _promoted()),
    _Plan("search", 5, _days(10), _promoted()),
    # Reaches staging during staging's node-02 PLEG incident (resolved two days ago).
    _Plan("search", 6, _days(3), (
        _Rollout("staging", incident=("kubelet", "slow_pleg"), offset=_minutes(60)),
        _Rollout("prod", after_build=_hours(30)))),
    # Reaches prod 4 minutes before prod's node-01 starts answering DNS queries with SERVFAIL.
    _Plan("search", 7, _hours(20), _staged() + (
        _Rollout("prod", incident=("dns", "servfail"), offset=-_minutes(4)),)),
)


# --- public API -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DemoDeployment:
    """One rollout of a demo release; ``undeploy_time`` is None while it runs."""

    cluster: str
    deploy_time: datetime
    undeploy_time: datetime | None


@dataclasses.dataclass(frozen=True)
class DemoRelease:
    """What the demo says about one release, to check the gate's verdict against."""

    service: str
    number: int
    resource_uri: str
    digest: str
    build_time: datetime
    denial: str | None
    deployments: tuple[DemoDeployment, ...]

    @property
    def expected_failed_checks(self) -> list[str]:
        """The gate checks this release must fail: none when allowed."""
        return [DENIAL_CHECKS[self.denial]] if self.denial else []


def demo_releases(end: datetime) -> list[DemoRelease]:
    """Every demo release, ending at ``end`` (naive times are UTC), in service and build order."""
    end = _utc(end)
    incidents = _incident_starts(end)
    releases: dict[tuple[str, int], DemoRelease] = {}
    rollouts: dict[tuple[str, str], list[tuple[datetime, tuple[str, int]]]] = {}
    for plan in _PLANS:
        built = end - plan.age
        for rollout in plan.rollouts:
            if rollout.incident is None:
                when = built + rollout.after_build
            else:
                when = incidents[(rollout.cluster, *rollout.incident)] + rollout.offset
            rollouts.setdefault((plan.service, rollout.cluster), []).append((when, (plan.service, plan.number)))
        repository = _SERVICES[plan.service].repository
        digest = "sha256:" + _hex(f"image {plan.service} {plan.number}", 64)
        releases[(plan.service, plan.number)] = DemoRelease(
            service=plan.service, number=plan.number, resource_uri=f"https://{repository}@{digest}",
            digest=digest, build_time=built, denial=plan.denial, deployments=())
    deployments: dict[tuple[str, int], list[DemoDeployment]] = {key: [] for key in releases}
    for (_, cluster), timeline in rollouts.items():
        timeline.sort()
        for index, (when, key) in enumerate(timeline):
            following = timeline[index + 1][0] if index + 1 < len(timeline) else None
            deployments[key].append(DemoDeployment(cluster, when, following))
    return [dataclasses.replace(release, deployments=tuple(sorted(
                deployments[key], key=lambda deployment: deployment.deploy_time)))
            for key, release in releases.items()]


def demo_occurrences(end: datetime) -> list[dict]:
    """The demo's raw Grafeas v1 occurrences ending at ``end``; the same list for the same ``end``."""
    releases = demo_releases(end)
    by_key = {(release.service, release.number): release for release in releases}
    end = _utc(end)
    occurrences: list[dict] = []
    for plan, release in zip(_PLANS, releases):
        service = _SERVICES[plan.service]
        if plan.denial != NO_PROVENANCE:
            occurrences += _builds(service, release)
        occurrences.append(_discovery(service, release, end, finished=plan.denial != UNFINISHED_SCAN))
        if plan.denial != UNFINISHED_SCAN:
            occurrences += [_vulnerability(service, release, vulnerability)
                            for vulnerability in service.vulnerabilities
                            if plan.number in vulnerability.releases]
        occurrences.append(_attestation(release, TESTS_PASSED_NOTE, release.build_time + _minutes(12)))
        approved = release.build_time + _minutes(40)
        if plan.denial == BAD_SIGNATURE:
            occurrences.append(_attestation(release, QA_APPROVED_NOTE, approved, signer="untrusted"))
        elif plan.denial == OTHER_DIGEST:
            copied_from = by_key[(plan.service, plan.number - 1)]
            occurrences.append(_attestation(release, QA_APPROVED_NOTE, approved, signed_digest=copied_from.digest))
        elif plan.denial != MISSING_ATTESTATION:
            occurrences.append(_attestation(release, QA_APPROVED_NOTE, approved))
        occurrences += [_deployment(release, deployment) for deployment in release.deployments]
    return occurrences


def demo_policy() -> Policy:
    """The demo's gate policy (``dashboard/demo/policy.toml``, keys in ``dashboard/demo/keys``)."""
    return load_policy(DEMO_POLICY_PATH)


class DemoGrafeas:
    """The demo's supply chain behind the same interface as ``GrafeasSource``.

    ``occurrences()`` returns every release's occurrences, ``occurrences(resource_url)`` those whose
    resource URI is exactly ``resource_url`` (as ``GrafeasClient.occurrences_for_resource`` does);
    the demo never fails, so it never raises ``SourceError``.
    """

    def __init__(self, end: datetime) -> None:
        self.end = _utc(end)
        self._occurrences = demo_occurrences(self.end)
        self.description = (f"embedded demo supply chain ({len(_PLANS)} releases of {len(_SERVICES)} "
                            f"services, Grafeas v1 occurrences)")

    def occurrences(self, resource_url: str | None = None) -> list[dict]:
        """Raw occurrences of one release, or of every release."""
        if resource_url is None:
            return list(self._occurrences)
        return [occurrence for occurrence in self._occurrences if occurrence["resourceUri"] == resource_url]


# --- occurrence builders ----------------------------------------------------------------------


def _builds(service: _Service, release: DemoRelease) -> list[dict]:
    """Cloud Build's two BUILD occurrences: classic provenance and the in-toto statement."""
    build_id = _uuid(f"build {release.resource_uri}")
    commit = _hex(f"commit {service.name} {release.number}", 40)
    finished = release.build_time
    started = finished - _minutes(3 + int(_hex(f"duration {release.resource_uri}", 2), 16) % 7)
    tag = f"{service.repository}:v1.{release.number}.0"
    recorded = _time(finished + timedelta(seconds=1))
    classic = {
        **_header(PROJECT, f"build {release.resource_uri}", release.resource_uri,
                  f"projects/verified-builder/notes/{build_id}", "BUILD", recorded),
        "build": {"provenance": {
            "id": build_id,
            "projectId": PROJECT,
            "commands": [{"name": "gcr.io/cloud-builders/docker", "args": ["build", "-t", tag, "."]}],
            "builtArtifacts": [{"checksum": release.digest, "id": f"{service.repository}@{release.digest}",
                                "names": [tag]}],
            "createTime": _time(started - timedelta(seconds=14)),
            "startTime": _time(started),
            "endTime": _time(finished),
            "creator": f"{PROJECT_NUMBER}@cloudbuild.gserviceaccount.com",
            "logsUri": f"gs://{PROJECT_NUMBER}.cloudbuild-logs.googleusercontent.com",
            "sourceProvenance": {"context": {"git": {"url": service.source_repo, "revisionId": commit}}},
            "triggerId": _uuid(f"trigger {service.name}"),
            "buildOptions": {"VerifyOption": "VERIFIED"},
            "builderVersion": "508019100",
        }},
    }
    intoto = {
        **_header(PROJECT, f"intoto {release.resource_uri}", release.resource_uri,
                  f"projects/verified-builder/notes/intoto_{build_id}", "BUILD", recorded),
        "build": {"intotoStatement": {
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [{"name": f"https://{tag}", "digest": {"sha256": release.digest.removeprefix("sha256:")}}],
            "predicateType": "https://slsa.dev/provenance/v0.1",
            "slsaProvenance": {
                "builder": {"id": _CLOUD_BUILD_BUILDER},
                "recipe": {"type": "https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1",
                           "entryPoint": "cloudbuild.yaml"},
                "metadata": {"buildInvocationId": build_id, "buildStartedOn": _time(started),
                             "buildFinishedOn": _time(finished)},
                "materials": [{"uri": service.source_repo, "digest": {"sha1": commit}}],
            },
        }},
    }
    return [classic, intoto]


def _discovery(service: _Service, release: DemoRelease, end: datetime, *, finished: bool) -> dict:
    created = release.build_time + _minutes(1)
    discovery: dict[str, Any] = {"continuousAnalysis": "ACTIVE", "analysisStatus": "SCANNING"}
    if finished:
        analysis_ends = release.build_time + _days(_CONTINUOUS_ANALYSIS_DAYS)
        if analysis_ends <= end:
            discovery["continuousAnalysis"] = "INACTIVE"
            last_scan = analysis_ends
        else:
            rescanned = end - _minutes(int(_hex(f"rescan {release.resource_uri}", 4), 16) % 720)
            last_scan = max(rescanned, release.build_time + _minutes(4))
        discovery.update(analysisStatus="FINISHED_SUCCESS",
                         analysisCompleted={"analysisType": list(service.analysis_types)},
                         lastScanTime=_time(last_scan))
    return {
        **_header(PROJECT, f"discovery {release.resource_uri}", release.resource_uri, _DISCOVERY_NOTE,
                  "DISCOVERY", _time(created)),
        "discovery": discovery,
    }


def _vulnerability(service: _Service, release: DemoRelease, vulnerability: _Vulnerability) -> dict:
    is_os = vulnerability.package_type == "OS"
    issue: dict[str, Any] = {
        "affectedPackage": vulnerability.package,
        "affectedVersion": _version(vulnerability.installed, is_os),
        "fixedPackage": vulnerability.package,
        "fixedVersion": _version(vulnerability.fixed, is_os) if vulnerability.fixed else {"kind": "MAXIMUM"},
        "packageType": vulnerability.package_type,
        "effectiveSeverity": vulnerability.effective_severity,
    }
    if is_os:
        issue = {"affectedCpeUri": service.os_cpe, "fixedCpeUri": service.os_cpe, **issue}
    details: dict[str, Any] = {
        "severity": vulnerability.severity,
        "cvssScore": vulnerability.cvss,
        "packageIssue": [issue],
        "shortDescription": vulnerability.cve,
        "relatedUrls": [{"url": f"https://nvd.nist.gov/vuln/detail/{vulnerability.cve}", "label": "More Info"}],
        "effectiveSeverity": vulnerability.effective_severity,
        "cvssv3": {"baseScore": vulnerability.cvss},
        "cvssVersion": "CVSS_VERSION_3",
    }
    # Protobuf JSON omits a false bool, as the real service does.
    if vulnerability.fixed:
        issue["fixAvailable"] = True
        details["fixAvailable"] = True
    return {
        **_header(PROJECT, f"vulnerability {release.resource_uri} {vulnerability.cve} {vulnerability.package}",
                  release.resource_uri, f"projects/goog-vulnz/notes/{vulnerability.cve}", "VULNERABILITY",
                  _time(release.build_time + _minutes(3))),
        "vulnerability": details,
    }


def _attestation(release: DemoRelease, note: str, created: datetime, *, signer: str | None = None,
                 signed_digest: str | None = None) -> dict:
    """A simple-signing attestation signed with the note's demo key (or the key named ``signer``)
    for ``signed_digest`` (default: the release's own digest)."""
    repository = release.resource_uri.removeprefix("https://").split("@", 1)[0]
    payload = json.dumps({"critical": {
        "identity": {"docker-reference": repository},
        "image": {"docker-manifest-digest": signed_digest or release.digest},
        "type": _SIGNATURE_TYPE,
    }}, separators=(",", ":")).encode()
    signing_key = _signing_key(signer or note)
    signature = signing_key.sign(payload, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return {
        **_header(ATTESTOR_PROJECT, f"attestation {release.resource_uri} {note}", release.resource_uri, note,
                  "ATTESTATION", _time(created)),
        "attestation": {
            "serializedPayload": base64.b64encode(payload).decode(),
            "signatures": [{"signature": base64.b64encode(signature).decode(),
                            "publicKeyId": _public_key_id(signing_key.public_key())}],
        },
    }


def _deployment(release: DemoRelease, deployment: DemoDeployment) -> dict:
    details: dict[str, Any] = {
        "userEmail": _DEPLOYER,
        "deployTime": _time(deployment.deploy_time),
        "config": f"deployment.apps/{release.service} in namespace shop",
        "address": (f"https://container.googleapis.com/v1/projects/{PROJECT}/locations/europe-west1/"
                    f"clusters/{deployment.cluster}"),
        "resourceUri": [release.resource_uri],
        "platform": "GKE",
    }
    if deployment.undeploy_time is not None:
        details["undeployTime"] = _time(deployment.undeploy_time)
    return {
        **_header(PROJECT, f"deployment {release.resource_uri} {deployment.cluster} {deployment.deploy_time}",
                  release.resource_uri, _DEPLOY_NOTE, "DEPLOYMENT", _time(deployment.deploy_time),
                  updated=_time(deployment.undeploy_time or deployment.deploy_time)),
        "deployment": details,
    }


# --- helpers ------------------------------------------------------------------------------------


def _header(project: str, seed: str, resource_uri: str, note: str, kind: str, created: str, *,
            updated: str | None = None) -> dict[str, str]:
    return {
        "name": f"projects/{project}/occurrences/{_uuid(seed)}",
        "resourceUri": resource_uri,
        "noteName": note,
        "kind": kind,
        "createTime": created,
        "updateTime": updated or created,
    }


def _incident_starts(end: datetime) -> dict[tuple[str, str, str], datetime]:
    """Start of each cluster-demo incident, by (cluster, component, kind)."""
    return {(incident.cluster, incident.component, incident.kind): _utc(incident.start)
            for incident in demo_scenario(end, clusters=CLUSTERS).incidents}


def _signing_key(name: str) -> ec.EllipticCurvePrivateKey:
    """The demo key ``name`` (a note, or "untrusted"), derived from its public seed: demo data only."""
    seed = hashlib.sha256(_KEY_SEEDS[name].encode()).digest()
    return ec.derive_private_key(int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def _public_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 6920 ``ni:///sha-256;…`` id Binary Authorization gives a PKIX key by default."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "ni:///sha-256;" + base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def _version(text: str, is_os: bool) -> dict[str, Any]:
    """A Grafeas Version: Debian-style ``[epoch:]upstream-revision`` for OS packages."""
    version: dict[str, Any] = {"name": text, "kind": "NORMAL", "fullName": text}
    if is_os:
        epoch, _, rest = text.rpartition(":")
        upstream, _, revision = rest.rpartition("-")
        version.update(name=upstream or rest, **({"revision": revision} if upstream else {}))
        if epoch:
            version["epoch"] = int(epoch)
    return version


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))
