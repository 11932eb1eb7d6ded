"""Release impact end to end (issue 10 §6): `python -m dashboard release` run as a user runs it,
against a real Prometheus backfilled with a generated fleet and the Grafeas test server.

One cluster (``prod``, four nodes, three hours of history, scraped every minute) is healthy except
for one incident: node-02's kubelet fails 12 % of its runtime operations from three minutes after
the ``BAD`` release was deployed, for 40 minutes. An hour before that, the ``QUIET`` release (the
same service, the previous build) went into the same cluster, into a quiet period. Both
DEPLOYMENT occurrences name the cluster by its GKE API address (``…/clusters/prod``). The impact
of ``BAD`` must be Fail naming the kubelet on node-02 (its transition and its error-ratio test);
that of ``QUIET`` Pass; ``--fail-on-impact`` must exit 1 for the first and 0 for the second.
"""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard.sources.demo import write_openmetrics
from harness.grafeas_server import GrafeasTestServer
from harness.scenarios import PROJECT, fleet, incident_after, release_occurrences, release_uri, rfc3339, write_policy

ROOT = Path(__file__).resolve().parent.parent
CLUSTER, NODES, NODE = "prod", 4, "node-02"
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
BAD_DEPLOY = NOW - timedelta(minutes=60)  # its after-window (30 min) is over, and so is the incident
QUIET_DEPLOY = NOW - timedelta(minutes=120)  # an hour apart: neither confounds the other
INCIDENT = incident_after(BAD_DEPLOY, CLUSTER, NODE)  # kubelet runtime errors, 12 %, +3 min, 40 min
BAD, QUIET = release_uri("b"), release_uri("a")


@pytest.fixture(scope="module")
def prometheus(prom_factory, tmp_path_factory):
    # The data runs ten minutes past now, so that however slow this machine is the CLI's "now"
    # (when it asks which clusters exist) still has samples within the 5 m lookback.
    scenario = fleet(NOW + timedelta(minutes=10), clusters=[CLUSTER], nodes=NODES,
                     history=timedelta(hours=3, minutes=10), incidents=[INCIDENT])
    path = tmp_path_factory.mktemp("impact") / "scenario.om"
    write_openmetrics(scenario, path)
    return prom_factory(path, name="impact")


@pytest.fixture(scope="module")
def grafeas():
    occurrences = (
        release_occurrences(QUIET, name="quiet", built=QUIET_DEPLOY - timedelta(hours=1),
                            deployments=[(QUIET_DEPLOY, CLUSTER)])
        + release_occurrences(BAD, name="bad", built=BAD_DEPLOY - timedelta(minutes=30),
                              deployments=[(BAD_DEPLOY, CLUSTER)])
    )
    with GrafeasTestServer({PROJECT: occurrences}, max_page_size=3) as server:
        yield server


@pytest.fixture(scope="module")
def release(prometheus, grafeas, tmp_path_factory):
    policy = write_policy(tmp_path_factory.mktemp("policy"))

    def run(resource: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dashboard", "release", "--resource", resource,
             "--prometheus-url", prometheus.url, "--grafeas-url", grafeas.url, "--project", PROJECT,
             "--policy", str(policy), *extra],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
        )

    return run


@pytest.fixture(scope="module")
def records(release):
    """Each release's JSON record: the quiet one read with ``--fail-on-impact`` (a Pass exits 0
    with it too), the failing one without (the record was read: exit 0)."""
    found = {}
    for resource, extra in ((BAD, ()), (QUIET, ("--fail-on-impact",))):
        completed = release(resource, "--format", "json", *extra)
        assert completed.returncode == 0, completed.stderr
        assert "Traceback" not in completed.stderr and "embedded demo" not in completed.stderr
        found[resource] = json.loads(completed.stdout)
    return found


def _only_deployment(record: dict) -> dict:
    assert len(record["deployments"]) == 1
    deployment = record["deployments"][0]
    assert deployment["cluster"] == CLUSTER and deployment["address"].endswith(f"/clusters/{CLUSTER}")
    return deployment


def test_a_release_deployed_just_before_an_incident_fails_naming_the_component(records):
    record = records[BAD]
    assert record["resource"] == BAD and record["gate"]["allowed"] is True
    deployment = _only_deployment(record)
    assert deployment["deploy_time"] == rfc3339(BAD_DEPLOY)
    impact = deployment["impact"]
    assert impact["verdict"] == "Fail" and impact["confounded_by"] == []
    assert impact["transitions"] == [
        {"node": NODE, "component": "kubelet", "from": "healthy", "to": "unhealthy", "signal": "runtime_error_ratio"}
    ]
    # Node-level verdicts (kubelet and kube-proxy on each node, DNS on its two hosts): all healthy
    # before; one unhealthy at the end of the after-window.
    judged = 2 * NODES + 2
    assert impact["before"] == {"healthy": judged, "degraded": 0, "unhealthy": 0, "unknown": 0}
    assert impact["after"] == {"healthy": judged - 1, "degraded": 0, "unhealthy": 1, "unknown": 0}
    failed = [s for s in impact["signals"] if s["verdict"] == "Fail"]
    assert [(s["component"], s["signal"]) for s in failed] == [("kubelet", "runtime_error_ratio")]
    errors = failed[0]
    assert errors["p"] < 0.01 and errors["n_before"] >= 10 and errors["n_after"] >= 10
    # One node in four failing 12 %: the cluster-wide ratio rises by about 3 percentage points.
    assert errors["before"] < 0.005 and 0.02 < errors["after"] < 0.05
    assert not [s for s in impact["signals"] if s["component"] != "kubelet" and s["verdict"] in ("Fail", "Marginal")]
    assert impact["summary"].startswith("Fail: ")
    assert f"kubelet went healthy → unhealthy on {NODE}" in impact["summary"]
    assert "runtime_error_ratio" in impact["summary"]


def test_a_release_deployed_into_a_quiet_period_passes(records):
    impact = _only_deployment(records[QUIET])["impact"]
    assert impact["verdict"] == "Pass", impact["summary"]
    assert impact["transitions"] == [] and impact["confounded_by"] == []
    assert impact["before"] == impact["after"] == {"healthy": 2 * NODES + 2, "degraded": 0, "unhealthy": 0,
                                                   "unknown": 0}
    assert {s["verdict"] for s in impact["signals"]} == {"Pass"}
    assert impact["summary"].startswith("Pass: ")


def test_the_failing_release_is_diffed_against_the_quiet_one(records):
    assert records[BAD]["previous"]["resource"] == QUIET
    assert records[QUIET]["previous"] is None


def test_fail_on_impact_exits_1_for_the_failing_release(release):
    failing = release(BAD, "--fail-on-impact")  # the text record, as CI logs show it
    assert failing.returncode == 1, failing.stderr
    assert "Fail" in failing.stdout and NODE in failing.stdout and "Traceback" not in failing.stderr
