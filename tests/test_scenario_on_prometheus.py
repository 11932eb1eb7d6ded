"""The demo scenario written as OpenMetrics, backfilled into a real Prometheus, judged by the catalog.

Checks every catalog query on real data, the scenario's verdicts now and at a past time for two
clusters that share node names, and parity: the embedded demo path reaches the same verdicts (and
values) as the real-Prometheus path.
"""

import json
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests

from dashboard.catalog import PRESETS, build_queries
from dashboard.health import evaluate
from dashboard.inventory import known_clusters
from dashboard.sources.demo import DemoSource, Incident, demo_scenario, write_openmetrics
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource

CATALOG = PRESETS["kube-prometheus-stack"]
END = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW = END - timedelta(minutes=5)
DURING_PAST = END - timedelta(hours=3, minutes=30)
AFTER_PAST = END - timedelta(hours=2, minutes=40)
# The demo's own past incident lies 2 days back; a 6-hour history keeps the backfill small, so the
# test adds a resolved incident of the same kind inside it.
RESOLVED = Incident("staging", "node-02", "kubelet", "slow_pleg", END - timedelta(hours=4), END - timedelta(hours=3), 15.0)


@pytest.fixture(scope="module")
def scenario():
    base = demo_scenario(END, nodes=8, history=timedelta(hours=6))
    return replace(base, incidents=(*base.incidents, RESOLVED))


@pytest.fixture(scope="module")
def prometheus(scenario, prom_factory, tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "scenario.om"
    write_openmetrics(scenario, path)
    return prom_factory(path, name="scenario")


@pytest.fixture(scope="module")
def real(prometheus):
    return PrometheusSource(PrometheusSettings(url=prometheus.url, timeout_seconds=30))


def verdicts_at(source, at, cluster=None):
    frame = evaluate(source, CATALOG, at=at, cluster=cluster).verdicts
    return {(r["cluster"], r["node"], r["component"]): r for r in frame.to_dict(orient="records")}


def test_every_catalog_query_runs_and_finds_data(prometheus):
    for query in build_queries(CATALOG, cluster="prod"):
        response = requests.get(
            f"{prometheus.url}/api/v1/query", params={"query": query.promql, "time": NOW.timestamp()}, timeout=30
        )
        assert response.status_code == 200, (query.signal, response.text)
        body = response.json()
        assert body["status"] == "success" and "warnings" not in body
        assert body["data"]["result"], f"{query.component}/{query.signal} ({query.scope}) found no series"


def test_scenario_verdicts_now(real):
    verdicts = verdicts_at(real, NOW)
    problems = {key: row["verdict"] for key, row in verdicts.items() if row["verdict"] != "healthy"}
    assert problems == {
        ("prod", "node-01", "dns"): "unhealthy",
        ("prod", None, "dns"): "unhealthy",
        ("prod", "node-05", "kubelet"): "unhealthy",
        ("prod", "node-07", "kube-proxy"): "degraded",
        ("staging", "node-04", "kube-proxy"): "degraded",
        ("staging", "node-06", "kubelet"): "unhealthy",
        ("staging", "node-05", "dns"): "unhealthy",
        ("staging", None, "dns"): "unhealthy",
    }
    failures = next(r for r in verdicts[("prod", "node-07", "kube-proxy")]["reasons"]
                    if r["signal"] == "iptables_restore_failures")
    # increase() extrapolates to 2.5 failures and 0.5 panics: shown as whole events, with the window
    assert failures["value"] == 2 and failures["level"] == "degraded" and failures["window"] == "5m"
    assert failures["text"] == "iptables_restore_failures: at least 2 iptables-restore failures in the last 5m"
    panics = next(r for r in verdicts[("staging", "node-05", "dns")]["reasons"] if r["signal"] == "panics")
    assert panics["value"] == 1 and panics["level"] == "unhealthy"
    assert panics["text"] == "panics: at least 1 panic in the last 5m"
    assert verdicts[("staging", "node-06", "kubelet")]["reasons"][0]["text"] == "target down (up = 0)"
    busy = verdicts[("prod", "node-03", "kubelet")]
    assert busy["resources"]["node_cpu_busy_ratio"] > 0.9 and busy["verdict"] == "healthy"
    errors = next(r for r in verdicts[("prod", "node-05", "kubelet")]["reasons"] if r["signal"] == "runtime_error_ratio")
    assert errors["value"] == pytest.approx(0.12) and errors["threshold"] == 0.05
    assert errors["text"] == "runtime_error_ratio = 12.00 % over 5m ≥ 5.00 %"


def test_the_known_clusters_come_from_the_two_inventory_queries_on_both_sources(scenario, prometheus):
    source = PrometheusSource(PrometheusSettings(url=prometheus.url, timeout_seconds=30))
    assert known_clusters(source, CATALOG, at=NOW) == ["prod", "staging"]
    assert source.requests_sent == 2
    assert known_clusters(DemoSource(scenario), CATALOG, at=NOW) == ["prod", "staging"]
    assert known_clusters(source, CATALOG, at=END - timedelta(days=30)) == []  # before the data


def test_a_quantile_beyond_the_top_bucket_says_so_in_the_same_query(scenario, prometheus):
    """The resolved incident's PLEG p99 is 15 s; the buckets stop at 10 s, so Prometheus answers 10 s."""
    source = PrometheusSource(PrometheusSettings(url=prometheus.url, timeout_seconds=30))
    during = verdicts_at(source, DURING_PAST, cluster="staging")
    assert source.requests_sent == len(build_queries(CATALOG, cluster="staging"))
    pleg = next(r for r in during[("staging", "node-02", "kubelet")]["reasons"] if r["signal"] == "pleg_relist_p99")
    assert pleg["level"] == "unhealthy" and pleg["value"] == pytest.approx(10) and pleg["beyond_top_bucket"]
    assert pleg["text"] == "pleg_relist_p99 ≥ 10 s over 5m (beyond the histogram's top bucket), threshold ≥ 10 s"
    demo = verdicts_at(DemoSource(scenario), DURING_PAST, cluster="staging")
    assert next(r for r in demo[("staging", "node-02", "kubelet")]["reasons"] if r["signal"] == "pleg_relist_p99") == pleg
    elsewhere = next(r for r in during[("staging", "node-03", "kubelet")]["reasons"] if r["signal"] == "pleg_relist_p99")
    assert "beyond_top_bucket" not in elsewhere and elsewhere["text"].endswith("over 5m < 3 s")
    after = verdicts_at(source, AFTER_PAST, cluster="staging")
    pleg = next(r for r in after[("staging", "node-02", "kubelet")]["reasons"] if r["signal"] == "pleg_relist_p99")
    assert "beyond_top_bucket" not in pleg and pleg["level"] == "healthy"


def test_same_node_names_in_two_clusters_never_mix(real):
    verdicts = verdicts_at(real, NOW)
    assert verdicts[("prod", "node-05", "kubelet")]["verdict"] == "unhealthy"
    assert verdicts[("staging", "node-05", "kubelet")]["verdict"] == "healthy"
    only_staging = verdicts_at(real, NOW, cluster="staging")
    assert {cluster for cluster, _, _ in only_staging} == {"staging"}
    assert only_staging[("staging", "node-06", "kubelet")]["verdict"] == "unhealthy"


def test_resolved_incident_is_visible_in_the_past_and_gone_after(real):
    during = verdicts_at(real, DURING_PAST)
    pleg = during[("staging", "node-02", "kubelet")]
    assert pleg["verdict"] == "unhealthy"
    assert any(r["signal"] == "pleg_relist_p99" and r["level"] == "unhealthy" for r in pleg["reasons"])
    assert during[("prod", "node-05", "kubelet")]["verdict"] == "healthy"  # errors began later
    after = verdicts_at(real, AFTER_PAST)
    assert after[("staging", "node-02", "kubelet")]["verdict"] == "healthy"


@pytest.mark.parametrize("at", [NOW, DURING_PAST, AFTER_PAST, END - timedelta(minutes=23)], ids=str)
def test_demo_path_matches_the_real_prometheus_path(scenario, real, at):
    demo = verdicts_at(DemoSource(scenario), at)
    prom = verdicts_at(real, at)
    assert demo.keys() == prom.keys()
    for key in demo:
        assert demo[key]["verdict"] == prom[key]["verdict"], key
        assert demo[key]["no_data"] == prom[key]["no_data"], key
        for signal, value in prom[key]["work"].items():
            expected = None if value is None else pytest.approx(value, rel=1e-6, abs=1e-9)
            assert demo[key]["work"][signal] == expected, (key, signal)


def test_cli_on_the_real_prometheus(prometheus):
    completed = subprocess.run(
        [sys.executable, "-m", "dashboard", "health", "--prometheus-url", prometheus.url, "--cluster", "prod",
         "--at", NOW.isoformat(), "--format", "json", "--fail-on", "unhealthy"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stderr == ""
    document = json.loads(completed.stdout)
    assert document["cluster"] == "prod" and document["source"].startswith("Prometheus at http://127.0.0.1:")
    kubelet = next(v for v in document["verdicts"] if v["node"] == "node-05" and v["component"] == "kubelet")
    assert kubelet["verdict"] == "unhealthy"
