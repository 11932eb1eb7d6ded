"""`python -m dashboard timeline` and `release` as scripts and CI run them: the contracts of
issue 10 §5 (columns, JSON keys, exit codes), on the embedded demo and against the Grafeas test
server with Prometheus unreachable."""

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.appserver import free_port
from harness.grafeas_server import GrafeasTestServer
from tests.test_cli_supply_chain import GOOD, occurrences_of, policy_file, qa_key  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
IMPACT_KEYS = {"verdict", "summary", "window_s", "before", "after", "transitions", "signals", "confounded_by"}


def cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "dashboard", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={"PATH": "/usr/bin:/bin", **(env or {})})


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
HOUR = ("--start", rfc3339(NOW - timedelta(hours=1)), "--end", rfc3339(NOW), "--step", "10m")


def test_timeline_csv_has_the_contract_columns_and_one_row_per_step_and_component():
    completed = cli("timeline", *HOUR)
    assert completed.returncode == 0, completed.stderr
    assert "embedded demo" in completed.stderr
    rows = list(csv.DictReader(io.StringIO(completed.stdout)))
    assert list(rows[0]) == ["time", "cluster", "node", "component", "verdict", "signal", "value"]
    times = sorted({row["time"] for row in rows})
    assert times[0] == rfc3339(NOW - timedelta(hours=1)) and times[-1] == rfc3339(NOW) and len(times) == 7
    assert {row["verdict"] for row in rows} <= {"healthy", "degraded", "unknown", "unhealthy"}
    rollups = [row for row in rows if row["node"] == ""]
    assert rollups and all(row["component"] == "dns" for row in rollups)
    decided = [row for row in rows if row["verdict"] in ("degraded", "unhealthy")]
    assert decided and all(row["signal"] and row["value"] for row in decided)


def test_timeline_json_and_incidents():
    completed = cli("timeline", *HOUR, "--format", "json", "--cluster", "prod")
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert set(answer) == {"cluster", "start", "end", "step", "source", "timeline"}
    assert answer["cluster"] == "prod" and answer["step"] == "10m"
    assert {row["cluster"] for row in answer["timeline"]} == {"prod"}
    incidents = cli("timeline", *HOUR, "--incidents")
    assert incidents.returncode == 0, incidents.stderr
    header, *lines = incidents.stdout.splitlines()
    assert header == "cluster,node,component,start,end,duration_s,verdict,signal,peak,ongoing"
    assert lines and all(line.split(",")[6] in ("degraded", "unknown", "unhealthy") for line in lines)


@pytest.mark.parametrize("flags, message", [
    (("--start", rfc3339(NOW), "--end", rfc3339(NOW)), "the range is empty"),
    (("--start", rfc3339(NOW), "--end", rfc3339(NOW - timedelta(hours=1))), "the range is empty"),
    (("--step", "0s"), "--step"),
    (("--step", "five"), "--step"),
    (("--end", rfc3339(NOW + timedelta(hours=1))), "in the future"),
    (("--cluster", "nosuch"), "known clusters: prod, staging"),
], ids=["zero-range", "negative-range", "zero-step", "bad-step", "future-end", "unknown-cluster"])
def test_timeline_bad_input_is_a_usage_error(flags, message):
    completed = cli("timeline", *flags)
    assert completed.returncode == 2
    assert message in completed.stderr and "Traceback" not in completed.stderr


@pytest.fixture(scope="module")
def demo_releases():
    completed = cli("releases", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_the_demo_has_releases_that_fail_pass_and_are_inconclusive(demo_releases):
    impacts = {row["impact"] for row in demo_releases}
    assert {"Fail", "Pass", "Inconclusive"} <= impacts
    never = [row for row in demo_releases if not row["deployments"]]
    assert all(row["impact"] is None for row in never)
    assert all(row["previous"] is None or row["previous"].split("@")[0] == row["resource_uri"].split("@")[0]
               for row in demo_releases)


def test_release_json_is_the_whole_record_and_its_gate_is_the_gate_command_s(demo_releases):
    failing = next(row["resource_uri"] for row in demo_releases if row["impact"] == "Fail")
    completed = cli("release", "--resource", failing, "--format", "json")
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert set(record) == {"resource", "service", "digest", "provenance", "vulnerabilities", "attestations",
                           "gate", "deployments", "previous"}
    assert {"builder", "source_repo", "source_revision", "build_start", "build_end", "slsa"} <= set(record["provenance"])
    gate = json.loads(cli("gate", "--resource", failing, "--format", "json").stdout)
    assert record["gate"] == gate
    deployed = record["deployments"]
    assert {"cluster", "address", "deploy_time", "undeploy_time", "impact"} <= set(deployed[0])
    assert IMPACT_KEYS <= set(deployed[0]["impact"])
    failed = [d for d in deployed if d["impact"]["verdict"] == "Fail"]
    assert failed and failed[0]["impact"]["summary"].startswith("Fail: ")
    assert any(t["to"] == "unhealthy" for t in failed[0]["impact"]["transitions"]) or any(
        s["verdict"] == "Fail" for s in failed[0]["impact"]["signals"])
    assert cli("release", "--resource", failing, "--fail-on-impact").returncode == 1


@pytest.fixture(scope="module")
def grafeas(qa_key):  # noqa: F811 (the fixture imported above)
    with GrafeasTestServer({"acme": occurrences_of(GOOD, qa_key, name="good")}) as server:
        yield server


def test_a_release_never_deployed_has_no_deployments_and_exits_0(grafeas, policy_file):  # noqa: F811
    completed = cli("release", "--resource", GOOD, "--grafeas-url", grafeas.url, "--project", "acme",
                    "--policy", str(policy_file), "--format", "json")
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert record["deployments"] == [] and record["gate"]["allowed"] is True


def test_prometheus_down_prints_the_record_with_impact_inconclusive_and_exits_3(grafeas, policy_file, qa_key):  # noqa: F811
    deployed = {
        "name": "projects/acme/occurrences/good-deploy", "kind": "DEPLOYMENT", "resourceUri": GOOD,
        "noteName": "projects/acme/notes/deploy", "createTime": rfc3339(NOW - timedelta(hours=2)),
        "deployment": {"deployTime": rfc3339(NOW - timedelta(hours=2)), "platform": "GKE",
                       "address": "https://container.googleapis.com/v1/projects/acme/locations/x/clusters/prod"},
    }
    grafeas.add_occurrences("acme", [deployed])
    prometheus = f"http://127.0.0.1:{free_port()}"
    completed = cli("release", "--resource", GOOD, "--grafeas-url", grafeas.url, "--project", "acme",
                    "--policy", str(policy_file), "--prometheus-url", prometheus, "--format", "json",
                    env={"PROMETHEUS_TIMEOUT": "2"})
    assert completed.returncode == 3
    record = json.loads(completed.stdout)
    impact = record["deployments"][0]["impact"]
    assert record["deployments"][0]["cluster"] == "prod"
    assert impact["verdict"] == "Inconclusive" and "could not be read" in impact["summary"]
    lines = completed.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in completed.stderr
