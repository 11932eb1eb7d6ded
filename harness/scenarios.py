"""Release-impact scenarios for a real Prometheus and the Grafeas test server.

Shared by ``tests/test_release_impact_end_to_end.py`` and ``bench/release_bench.py``: a generated
fleet (``dashboard.sources.demo.Scenario``, written with ``write_openmetrics`` and backfilled by
``harness.promserver``) whose incidents start just after chosen deploy times, and the Grafeas
occurrences of releases deployed at those times (raw v1 JSON, as ``harness.grafeas_server`` serves
it): a BUILD, a finished DISCOVERY and one DEPLOYMENT per (time, cluster), the cluster named by a
GKE API address (``…/clusters/NAME``), which is how ``dashboard.deployments`` maps it to the
Prometheus ``cluster`` label.

The gate policy here (``POLICY_TOML``) requires a scan and build provenance and no attestation, so
these releases are allowed and the gate stays out of the way of what is measured: the impact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dashboard.sources.demo import Incident, Scenario

PROJECT = "acme"
SERVICE = "gcr.io/acme/checkout"
POLICY_TOML = (
    "[gate]\n"
    "required_attestations = []\n"
    'max_fixable_severity = "HIGH"\n'
    'max_unfixable_severity = "CRITICAL"\n'
    "require_scan = true\n"
    "require_build_provenance = true\n"
)


def rfc3339(moment: datetime) -> str:
    """``2026-11-20T12:00:00Z`` (UTC, whole seconds), as Grafeas and the CLI write times."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_uri(digit: str, service: str = SERVICE) -> str:
    """A release of ``service`` whose digest is ``digit`` 64 times (as Grafeas stores images)."""
    return f"https://{service}@sha256:" + digit * 64


def gke_address(cluster: str, *, project: str = PROJECT, location: str = "europe-west1") -> str:
    """The GKE API URL of a cluster, as a DEPLOYMENT occurrence's address names it."""
    return f"https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{cluster}"


def incident_after(
    deploy_time: datetime,
    cluster: str,
    node: str,
    *,
    delay: timedelta = timedelta(minutes=3),
    duration: timedelta = timedelta(minutes=40),
    component: str = "kubelet",
    kind: str = "runtime_errors",
    value: float = 0.12,
) -> Incident:
    """An incident that starts ``delay`` after a deploy and lasts ``duration``; by default the
    kubelet failing 12 % of runtime operations (unhealthy, above the catalog's 5 %)."""
    start = deploy_time + delay
    return Incident(cluster, node, component, kind, start, start + duration, value)


def fleet(
    end: datetime,
    *,
    clusters: Sequence[str],
    nodes: int,
    history: timedelta,
    incidents: Sequence[Incident] = (),
    step: timedelta = timedelta(seconds=60),
) -> Scenario:
    """Healthy clusters of ``nodes`` nodes, scraped every ``step`` over ``history`` up to ``end``,
    with only the given incidents (none of the product demo's)."""
    return Scenario(clusters=tuple(clusters), nodes=nodes, end=end, history=history, step=step,
                    incidents=tuple(incidents), dns_replicas=min(2, nodes))


def deployment_occurrence(resource: str, *, name: str, deploy_time: datetime, cluster: str,
                          project: str = PROJECT) -> dict:
    """A v1 DEPLOYMENT occurrence of ``resource`` into ``cluster`` (a GKE address) at ``deploy_time``."""
    return {
        "name": f"projects/{project}/occurrences/{name}", "kind": "DEPLOYMENT", "resourceUri": resource,
        "noteName": f"projects/{project}/notes/deploy", "createTime": rfc3339(deploy_time),
        "deployment": {"deployTime": rfc3339(deploy_time), "platform": "GKE", "address": gke_address(cluster),
                       "userEmail": "deployer@acme.example"},
    }


def release_occurrences(
    resource: str,
    *,
    name: str,
    built: datetime,
    deployments: Sequence[tuple[datetime, str]] = (),
    revision: str | None = None,
    project: str = PROJECT,
) -> list[dict]:
    """A release's v1 occurrences: a BUILD (with provenance) at ``built``, a finished scan and a
    DEPLOYMENT per ``(deploy time, cluster)``."""
    common = {"resourceUri": resource, "createTime": rfc3339(built)}
    found = [
        {**common, "name": f"projects/{project}/occurrences/{name}-build", "kind": "BUILD",
         "noteName": f"projects/{project}/notes/cloudbuild",
         "build": {"provenance": {
             "id": f"build-{name}", "builderVersion": "v1", "creator": "ci@acme.example",
             "startTime": rfc3339(built - timedelta(minutes=8)), "endTime": rfc3339(built),
             "sourceProvenance": {"context": {"git": {"url": "https://github.com/acme/checkout",
                                                      "revisionId": revision or f"rev-{name}"}}}}}},
        {**common, "name": f"projects/{project}/occurrences/{name}-scan", "kind": "DISCOVERY",
         "noteName": "projects/goog-analysis/notes/PACKAGE_VULNERABILITY",
         "discovery": {"analysisStatus": "FINISHED_SUCCESS",
                       "lastScanTime": rfc3339(built + timedelta(minutes=5))}},
    ]
    found += [
        deployment_occurrence(resource, name=f"{name}-deploy-{index}", deploy_time=when, cluster=cluster,
                              project=project)
        for index, (when, cluster) in enumerate(deployments)
    ]
    return found


def write_policy(folder: Path) -> Path:
    """``POLICY_TOML`` written to ``folder/policy.toml``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.toml"
    path.write_text(POLICY_TOML, encoding="utf-8")
    return path
