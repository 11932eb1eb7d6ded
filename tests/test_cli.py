"""The health CLI as scripts use it: JSON contract, table, exit codes, demo labelling."""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = {"healthy", "degraded", "unhealthy", "unknown"}


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.fixture(scope="module")
def demo_json():
    completed = cli("health", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    return completed


def test_demo_is_said_on_stderr_and_in_the_source(demo_json):
    assert "embedded demo" in demo_json.stderr
    assert "demo" in json.loads(demo_json.stdout)["source"]


def test_json_contract(demo_json):
    document = json.loads(demo_json.stdout)
    assert set(document) == {"cluster", "at", "source", "verdicts"}
    assert document["cluster"] is None
    datetime.fromisoformat(document["at"])
    verdicts = document["verdicts"]
    assert verdicts
    for verdict in verdicts:
        assert {"node", "component", "verdict", "reasons", "work", "resources"} <= set(verdict)
        assert verdict["component"] in {"kubelet", "kube-proxy", "dns"}
        assert verdict["verdict"] in VERDICTS
        for reason in verdict["reasons"]:
            assert {"signal", "level", "value", "text"} <= set(reason)
    problems = [v for v in verdicts if v["verdict"] in ("degraded", "unhealthy")]
    assert problems
    for verdict in problems:
        deciding = [r for r in verdict["reasons"] if r["level"] == verdict["verdict"]]
        assert deciding and all("threshold" in r for r in deciding)
    assert any(v["node"] is None and v["component"] == "dns" for v in verdicts)


def test_table_for_people():
    completed = cli("health")
    assert completed.returncode == 0
    lines = completed.stdout.splitlines()
    assert lines[0].split() == ["CLUSTER", "NODE", "COMPONENT", "VERDICT", "WHY"]
    assert "unhealthy" in completed.stdout and "embedded demo" in lines[-1]


def test_fail_on_levels():
    assert cli("health", "--fail-on", "unhealthy").returncode == 1


def test_cluster_filter_and_past_time():
    at = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    completed = cli("health", "--cluster", "staging", "--at", at, "--format", "json")
    assert completed.returncode == 0, completed.stderr
    clusters = {v["cluster"] for v in json.loads(completed.stdout)["verdicts"]}
    assert clusters == {"staging"}


def test_unix_seconds_are_accepted_and_echoed():
    at = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp())
    completed = cli("health", "--at", str(at), "--format", "json")
    assert completed.returncode == 0
    assert datetime.fromisoformat(json.loads(completed.stdout)["at"]).timestamp() == at


@pytest.mark.parametrize(
    "args",
    [("health", "--format", "xml"), ("health", "--at", "yesterday"), ("health", "--window", "5 minutes"),
     ("health", "--fail-on", "sometimes"), ("nonsense",)],
)
def test_usage_errors_exit_2_without_traceback(args):
    completed = cli(*args)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr


def test_config_file_disables_a_component_and_overrides_a_threshold(tmp_path):
    config = tmp_path / "dashboard.toml"
    config.write_text(
        '[health]\ncomponents = ["kubelet", "dns"]\n'
        "[health.thresholds.kubelet.runtime_error_ratio]\ndegraded = 0.2\nunhealthy = 0.5\n"
    )
    completed = cli("health", "--config", str(config), "--cluster", "prod", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    verdicts = json.loads(completed.stdout)["verdicts"]
    assert {v["component"] for v in verdicts} == {"kubelet", "dns"}
    # node-05's 12 % runtime errors are under the raised thresholds.
    node05 = next(v for v in verdicts if v["node"] == "node-05" and v["component"] == "kubelet")
    assert node05["verdict"] == "healthy"
    reason = next(r for r in node05["reasons"] if r["signal"] == "runtime_error_ratio")
    assert reason["source"] == "configured" and reason["threshold"] == 0.2


def test_runs_from_any_directory_as_an_installed_package(tmp_path):
    """`python -m dashboard` with the venv's Python and PYTHONPATH unset, outside the repository."""
    completed = subprocess.run(
        [sys.executable, "-m", "dashboard", "health", "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["verdicts"]


@pytest.mark.parametrize("cluster", ["nosuch", "Prod"])
def test_a_cluster_the_source_does_not_know_is_a_usage_error_naming_the_known_ones(cluster):
    completed = cli("health", "--cluster", cluster)
    assert completed.returncode == 2
    error = completed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cluster {cluster!r} is not known")
    assert error.endswith("known clusters: prod, staging")
    assert completed.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("--window", "0s"), "too short"),
        (("--window", "30s"), "too short"),
        (("--window", "5m\n"), "control characters"),
        (("--at", "9999999999"), "in the future"),
        (("--at", (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()), "in the future"),
        (("--at", "inf"), "expected unix seconds"),
        (("--at", "nan"), "expected unix seconds"),
        (("--at", "1e300"), "out of range"),
    ],
)
def test_windows_and_times_that_cannot_be_judged_are_refused_in_one_line(args, message):
    completed = cli("health", *args)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in completed.stderr


def test_a_misspelt_config_is_refused_naming_the_key_meant(tmp_path):
    config = tmp_path / "dashboard.toml"
    config.write_text('[healthh]\nwindow = "5m"\n')
    completed = cli("health", "--config", str(config))
    assert completed.returncode == 2
    assert "unknown section [healthh] (did you mean 'health'?)" in completed.stderr


def test_help_is_plain_text_and_agrees_with_the_readme_on_how_unknown_ranks():
    completed = cli("health", "--help")
    assert completed.returncode == 0
    assert "``" not in completed.stdout and "``" not in cli("--help").stdout
    ordering = "healthy < degraded < unknown < unhealthy"
    assert ordering in " ".join(completed.stdout.split())
    assert ordering in " ".join((ROOT / "README.md").read_text().split())
