"""The embedded demo: its scenario, what DemoSource reports, and the OpenMetrics it writes.

The demo-vs-Prometheus parity test lives elsewhere; here the writer's output is checked for form
(OpenMetrics ordering, real bucket layouts) and backfilled for real with promtool.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from dashboard.catalog import PRESETS, Catalog
from dashboard.sources.base import OBSERVATION_COLUMNS
from dashboard.sources.demo import (
    COREDNS_REQUEST_BUCKETS,
    INCIDENT_KINDS,
    NETWORK_PROGRAMMING_BUCKETS,
    PLEG_RELIST_BUCKETS,
    RUNTIME_OPERATION_BUCKETS,
    SYNC_PROXY_RULES_BUCKETS,
    DemoSource,
    Incident,
    Scenario,
    demo_scenario,
    histogram_quantile,
    parse_duration,
    quantile_profile,
    write_openmetrics,
)
from dashboard.timeline import range_window
from harness.promserver import backfill

END = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
CATALOG = PRESETS["kube-prometheus-stack"]
FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
INF = math.inf

Key = tuple[str, str | None, str, str, str]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return demo_scenario(END)


@pytest.fixture(scope="module")
def demo(scenario: Scenario) -> DemoSource:
    return DemoSource(scenario)


def observe(source: DemoSource, at: datetime, catalog: Catalog = CATALOG, cluster: str | None = None) -> dict[Key, float]:
    frame = source.observe(catalog, at=at, cluster=cluster).frame
    assert list(frame.columns) == OBSERVATION_COLUMNS
    return {
        (row.cluster, row.node if isinstance(row.node, str) else None, row.component, row.signal, row.scope): row.value
        for row in frame.itertuples()
    }


def level(component: str, signal: str, value: float) -> str:
    thresholds = CATALOG.signal(component, signal).thresholds
    assert thresholds is not None
    return thresholds.level(value)


# --- the scenario ---------------------------------------------------------------------------------


def test_node_names_repeat_across_clusters_with_two_dns_hosts_each(scenario: Scenario) -> None:
    assert scenario.clusters == ("prod", "staging")
    assert scenario.node_names[:3] == ("node-00", "node-01", "node-02") and len(scenario.node_names) == 12
    for cluster in scenario.clusters:
        assert len(scenario.dns_hosts(cluster)) == 2
    assert DemoSource(scenario).description == "embedded demo (2 clusters, 12 nodes each, generated)"


def test_demo_scenario_has_one_incident_of_each_kind_spread_over_both_clusters(scenario: Scenario) -> None:
    kinds = {(i.component, i.kind) for i in scenario.incidents}
    assert kinds == set(INCIDENT_KINDS) - {("kube-proxy", "down"), ("dns", "down")}
    assert {i.cluster for i in scenario.incidents} == {"prod", "staging"}
    ongoing = [i for i in scenario.incidents if i.end >= END]
    resolved = [i for i in scenario.incidents if i.end < END]
    assert len(ongoing) == 7 and [i.kind for i in resolved] == ["slow_pleg"]
    short = demo_scenario(END, history=timedelta(hours=1))
    assert "slow_pleg" not in {i.kind for i in short.incidents}


ERRORS = Incident("prod", "node-02", "kubelet", "runtime_errors", END - timedelta(hours=1), END, 0.1)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(node="node-99"), "unknown node"),
        (dict(kind="melting"), "unknown incident"),
        (dict(component="dns", kind="servfail", node="node-00"), "hosts no DNS"),
        (dict(end=END - timedelta(hours=2)), "must end after"),
    ],
)
def test_scenario_rejects_impossible_incidents(change: dict, message: str) -> None:
    incident = replace(ERRORS, **change)
    with pytest.raises(ValueError, match=message):
        Scenario(("prod",), 4, END, timedelta(hours=3), timedelta(seconds=60), (incident,))


def test_scenario_rejects_overlapping_incidents_of_one_kind() -> None:
    overlapping = (ERRORS, replace(ERRORS, start=END - timedelta(minutes=30)))
    with pytest.raises(ValueError, match="overlapping"):
        Scenario(("prod",), 4, END, timedelta(hours=3), timedelta(seconds=60), overlapping)


# --- DemoSource -----------------------------------------------------------------------------------

# (cluster, node, component, signal, value while it lasts, catalog level while it lasts)
EXPECTED = {
    "servfail": ("prod", "node-01", "dns", "servfail_ratio", 0.20, "unhealthy"),
    "busy": ("prod", "node-03", "node", "cpu_busy_ratio", 0.95, None),
    "runtime_errors": ("prod", "node-05", "kubelet", "runtime_error_ratio", 0.12, "unhealthy"),
    "slow_sync": ("staging", "node-04", "kube-proxy", "sync_proxy_rules_p99", 7.0, "degraded"),
    "down": ("staging", "node-06", "kubelet", "up", 0.0, None),
    "slow_pleg": ("staging", "node-02", "kubelet", "pleg_relist_p99", 10.0, "unhealthy"),  # 15 s reads as the top bucket
    "iptables_failures": ("prod", "node-07", "kube-proxy", "iptables_restore_failures", 2.5, "degraded"),  # 5 min x 0.5
    "panics": ("staging", "node-07", "dns", "panics", 0.5, "unhealthy"),  # 5 min x 0.1
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_incident_shows_while_it_lasts_and_not_before_or_after(
    scenario: Scenario, demo: DemoSource, kind: str
) -> None:
    (incident,) = [i for i in scenario.incidents if i.kind == kind]
    cluster, node, component, signal, value, expected_level = EXPECTED[kind]
    assert (incident.cluster, incident.node, incident.component, incident.signal) == (cluster, node, component, signal)
    key = (cluster, node, component, signal, "node")
    during = observe(demo, min(incident.end, END) - timedelta(minutes=10))
    tolerance = 0.03 if kind == "busy" else 1e-9  # CPU follows the daily wave around its level
    assert during[key] == pytest.approx(value, abs=tolerance)
    if expected_level:
        assert level(component, signal, during[key]) == expected_level
    before = observe(demo, incident.start - timedelta(minutes=10))
    usual = 1.0 if signal == "up" else before[key]
    assert before[key] == usual
    if expected_level:
        assert level(component, signal, before[key]) == "healthy"
    if incident.end < END:
        after = observe(demo, incident.end + timedelta(minutes=10))
        assert level(component, signal, after[key]) == "healthy"


def test_nodes_without_incidents_are_healthy_by_every_threshold(scenario: Scenario, demo: DemoSource) -> None:
    values = observe(demo, END - timedelta(minutes=10))
    troubled = {(i.cluster, i.node) for i in scenario.incidents if i.kind != "busy"}
    checked = 0
    for (cluster, node, component, signal, scope), value in values.items():
        thresholds = CATALOG.signal(component, signal).thresholds if component != "inventory" else None
        if thresholds is None or scope == "cluster" or (cluster, node) in troubled:
            continue
        assert thresholds.level(value) == "healthy", (cluster, node, component, signal, value)
        checked += 1
    assert checked > 150


def test_the_busy_node_is_loaded_but_its_components_answer_fast(demo: DemoSource) -> None:
    values = observe(demo, END - timedelta(minutes=10))
    busy = {k[2:4]: v for k, v in values.items() if k[:2] == ("prod", "node-03")}
    assert busy[("node", "cpu_busy_ratio")] > 0.9 and busy[("node", "memory_used_ratio")] == pytest.approx(0.9, abs=0.02)
    work = [(c, s) for (c, s) in busy if c != "inventory" and CATALOG.signal(c, s).kind == "work"]
    assert len(work) >= 8
    assert all(level(c, s, busy[(c, s)]) == "healthy" for c, s in work)


def test_a_down_kubelet_reports_up_zero_and_nothing_else(demo: DemoSource) -> None:
    values = observe(demo, END - timedelta(minutes=10))
    node = [k for k in values if k[:2] == ("staging", "node-06")]
    assert {k[2:4] for k in node if k[2] == "kubelet"} == {("kubelet", "up")}
    assert values[("staging", "node-06", "kubelet", "up", "node")] == 0.0
    assert ("staging", "node-06", "inventory", "known_nodes", "node") in values
    assert values[("staging", "node-06", "kube-proxy", "up", "node")] == 1.0
    # Within the 5-minute lookback after the kubelet went away, its last samples still answer.
    just_after = observe(demo, END - timedelta(minutes=24))
    assert ("staging", "node-06", "kubelet", "pleg_relist_p99", "node") in just_after


def test_dns_rows_exist_only_for_dns_hosts_and_roll_up_per_cluster(scenario: Scenario, demo: DemoSource) -> None:
    values = observe(demo, END - timedelta(minutes=10))
    for cluster in scenario.clusters:
        dns_nodes = {k[1] for k in values if k[0] == cluster and k[2] == "dns" and k[4] == "node"}
        assert dns_nodes == set(scenario.dns_hosts(cluster))
        hosts = {k[1] for k in values if k[0] == cluster and k[3] == "dns_hosts"}
        assert hosts == set(scenario.dns_hosts(cluster))
        rollup = {k[3] for k in values if k[0] == cluster and k[4] == "cluster"}
        assert rollup == {"up", "servfail_ratio", "request_p99", "panics"}
    storm = values[("prod", None, "dns", "servfail_ratio", "cluster")]
    assert 0.03 < storm < 0.2  # one of two replicas fails a fifth of its answers
    assert level("dns", "servfail_ratio", values[("staging", None, "dns", "servfail_ratio", "cluster")]) == "healthy"


def test_the_cluster_filter_tells_clusters_apart_though_node_names_repeat(demo: DemoSource) -> None:
    at = END - timedelta(minutes=10)
    prod, staging = observe(demo, at, cluster="prod"), observe(demo, at, cluster="staging")
    assert {k[0] for k in prod} == {"prod"} and {k[0] for k in staging} == {"staging"}
    assert {k[1] for k in prod} - {None} == {k[1] for k in staging} - {None}
    assert prod[("prod", "node-05", "kubelet", "runtime_error_ratio", "node")] == pytest.approx(0.12)
    assert staging[("staging", "node-05", "kubelet", "runtime_error_ratio", "node")] < 0.01
    assert observe(demo, at, cluster="nowhere") == {}


def test_nothing_before_the_first_sample_nor_after_the_lookback_past_the_last(
    scenario: Scenario, demo: DemoSource
) -> None:
    first = datetime.fromtimestamp(scenario.first_sample, timezone.utc)
    last = datetime.fromtimestamp(scenario.last_sample, timezone.utc)
    assert observe(demo, first - timedelta(seconds=1)) == {}
    at_first = observe(demo, first)  # one sample: gauges answer, rates need two
    assert ("prod", "node-00", "node", "memory_used_ratio", "node") in at_first
    assert ("prod", "node-00", "node", "cpu_busy_ratio", "node") not in at_first
    assert ("prod", "node-00", "node", "cpu_busy_ratio", "node") in observe(demo, first + scenario.step)
    assert ("prod", "node-00", "kubelet", "up", "node") in observe(demo, last + timedelta(minutes=5))
    assert observe(demo, last + timedelta(minutes=5, seconds=1)) == {}


def test_disabled_components_absent_signals_and_selectors_are_respected(demo: DemoSource) -> None:
    at = END - timedelta(minutes=10)
    kubelet_only = observe(demo, at, replace(CATALOG, components=("kubelet",)))
    assert {k[2] for k in kubelet_only} == {"inventory", "kubelet", "node"}
    without = observe(demo, at, replace(CATALOG, absent_signals=(("kubelet", "runtime_error_ratio"),)))
    assert not [k for k in without if k[2:4] == ("kubelet", "runtime_error_ratio")]
    # The demo's series are kube-prometheus-stack's: GKE's kubelet selector matches none of them.
    gke = observe(demo, at, PRESETS["gke-managed-prometheus"])
    assert not [k for k in gke if k[2] == "kubelet"] and [k for k in gke if k[2] == "kube-proxy"]
    slower = observe(demo, at, replace(CATALOG, window="10m"))
    assert slower[("prod", "node-05", "kubelet", "runtime_error_ratio", "node")] == pytest.approx(0.12)


def test_observations_are_deterministic() -> None:
    at = END - timedelta(hours=3, minutes=7, seconds=13)
    assert observe(DemoSource(demo_scenario(END)), at) == observe(DemoSource(demo_scenario(END)), at)


def test_a_range_evaluated_at_once_reads_as_an_instant_evaluation_at_each_step() -> None:
    # Steps across the start of the history and a down kubelet (staging node-06), off the sample
    # grid: series come and go between steps, as do the rows of the signals' fallbacks.
    scenario = demo_scenario(END, nodes=8, history=timedelta(hours=2))
    source = DemoSource(scenario)
    first = datetime.fromtimestamp(scenario.first_sample, timezone.utc)
    windows = ((first - timedelta(minutes=10), first + timedelta(minutes=20)), (END - timedelta(minutes=40), END))
    step = timedelta(seconds=150)
    for start, end in windows:
        frame = source.observe_range(CATALOG, start=start, end=end, step=step).frame
        labels = OBSERVATION_COLUMNS[:-1]
        # categorical, as the Prometheus source sends a range: a code per row, not a word
        assert all(isinstance(frame[column].dtype, pd.CategoricalDtype) for column in labels)
        at = start
        while at <= end:
            rows = frame[frame["time"] == at]
            single = DemoSource(scenario).observe(range_window(CATALOG, step), at=at).frame
            assert rows[labels].astype(object).fillna("").values.tolist() == single[labels].fillna("").values.tolist(), at
            assert rows["value"].tolist() == pytest.approx(single["value"].tolist(), rel=1e-12), at
            at += step


# --- Prometheus semantics -------------------------------------------------------------------------


def test_histogram_quantile_follows_prometheus() -> None:
    bounds = (0.1, 0.5, 1.0, INF)
    assert histogram_quantile(0.5, bounds, (10, 30, 40, 40)) == pytest.approx(0.1 + 0.4 * (20 - 10) / 20)
    assert histogram_quantile(0.1, bounds, (10, 30, 40, 40)) == pytest.approx(0.04)  # lowest bucket from 0
    assert histogram_quantile(0.99, bounds, (10, 30, 40, 50)) == 1.0  # rank in +Inf: highest finite bound
    assert histogram_quantile(0.5, (0.0, 1.0, INF), (30, 40, 40)) == 0.0  # lowest bucket at or below 0
    assert math.isnan(histogram_quantile(0.5, bounds, (0, 0, 0, 0)))
    assert math.isnan(histogram_quantile(0.5, (0.1, 0.5), (1, 2)))  # no +Inf bucket
    assert histogram_quantile(0.5, bounds, (10, 5, 40, 40)) == pytest.approx(0.5 + 0.5 * 10 / 30)  # made monotonic
    assert histogram_quantile(1.5, bounds, (1, 2, 3, 4)) == INF


@pytest.mark.parametrize(
    "bounds, targets",
    [
        (PLEG_RELIST_BUCKETS, (0.03, 0.09, 4.0, 9.99, 15.0)),
        (RUNTIME_OPERATION_BUCKETS, (0.02, 0.07, 0.078125, 2.0)),
        (SYNC_PROXY_RULES_BUCKETS, (0.15, 0.9, 7.0, 16.0)),
        (NETWORK_PROGRAMMING_BUCKETS, (1.2, 4.0, 35.0)),
        (COREDNS_REQUEST_BUCKETS, (0.003, 0.03, 2.0)),
    ],
)
def test_quantile_profiles_give_the_intended_p99(bounds: tuple[float, ...], targets: tuple[float, ...]) -> None:
    for target in targets:
        profile = quantile_profile(bounds, target)
        assert profile[-1] == 1 and list(profile) == sorted(profile)
        assert histogram_quantile(0.99, bounds, profile) == pytest.approx(min(target, bounds[-2]))
    usual = quantile_profile(bounds, targets[0])
    slow = quantile_profile(bounds, targets[-1], body=usual)
    assert histogram_quantile(0.5, bounds, slow) == pytest.approx(histogram_quantile(0.5, bounds, usual), rel=0.1)


def test_parse_duration() -> None:
    assert parse_duration("5m") == 300 and parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


def _fixture_bounds(fixture: str, family: str) -> list[float]:
    text = (FIXTURES / fixture).read_text()
    return sorted({float(le) for le in re.findall(rf'^{family}_bucket{{[^}}]*le="([^"]+)"', text, re.M)})


def test_bucket_layouts_are_the_real_exporters() -> None:
    assert _fixture_bounds("kubelet.prom", "kubelet_pleg_relist_duration_seconds") == list(PLEG_RELIST_BUCKETS)
    assert _fixture_bounds("kubelet.prom", "kubelet_runtime_operations_duration_seconds") == list(
        RUNTIME_OPERATION_BUCKETS
    )
    assert _fixture_bounds("kube-proxy.prom", "kubeproxy_sync_proxy_rules_duration_seconds") == list(
        SYNC_PROXY_RULES_BUCKETS
    )
    assert _fixture_bounds("coredns.prom", "coredns_dns_request_duration_seconds") == list(COREDNS_REQUEST_BUCKETS)
    assert set(NETWORK_PROGRAMMING_BUCKETS) <= set(
        _fixture_bounds("kube-proxy.prom", "kubeproxy_network_programming_duration_seconds")
    )


# --- the OpenMetrics writer -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Scenario:
    """Two 3-node clusters over 20 minutes, with a kubelet that goes down half-way."""
    incidents = (
        Incident("a", "node-02", "kubelet", "down", END - timedelta(minutes=10), END),
        Incident("a", "node-01", "dns", "servfail", END - timedelta(minutes=15), END, 0.2),
        Incident("b", "node-00", "kube-proxy", "slow_sync", END - timedelta(minutes=15), END, 7.0),
    )
    return Scenario(("a", "b"), 3, END, timedelta(minutes=20), timedelta(seconds=30), incidents)


@pytest.fixture(scope="module")
def small_text(small: Scenario) -> str:
    out = io.StringIO()
    write_openmetrics(small, out)
    return out.getvalue()


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (\d+)$")


def test_writer_output_follows_openmetrics_ordering(small_text: str) -> None:
    lines = small_text.splitlines()
    assert lines[-1] == "# EOF" and small_text.endswith("# EOF\n")
    declared: dict[str, str] = {}
    family, kind = "", ""
    last_time: dict[str, int] = {}
    for line in lines[:-1]:
        if line.startswith("# TYPE "):
            family, kind = line.split()[2:]
            assert family not in declared, f"{family} declared twice"
            declared[family] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, labels, value, timestamp = match.groups()
        suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}[kind]
        assert name in {family + suffix for suffix in suffixes}, (family, line)  # a family's samples are contiguous
        float(value)
        series = name + (labels or "")
        assert int(timestamp) > last_time.get(series, -1), series
        last_time[series] = int(timestamp)
    assert declared["kubelet_runtime_operations"] == "counter"
    assert declared["kubeproxy_sync_proxy_rules_duration_seconds"] == "histogram"


def test_writer_labels_follow_kube_prometheus_stack(small_text: str) -> None:
    kubelet = re.search(r"^kubelet_pleg_relist_duration_seconds_count\{([^}]*)\}", small_text, re.M).group(1)
    assert 'job="kubelet"' in kubelet and 'metrics_path="/metrics"' in kubelet and 'node="node-00"' in kubelet
    assert re.search(r'instance="10\.\d+\.\d+\.\d+:10250"', kubelet)
    proxy = re.search(r"^kubeproxy_sync_proxy_rules_duration_seconds_count\{([^}]*)\}", small_text, re.M).group(1)
    assert 'job="kube-proxy"' in proxy and re.search(r'pod="kube-proxy-\w{5}"', proxy) and "node=" not in proxy
    dns = re.search(r"^coredns_dns_responses_total\{([^}]*)\}", small_text, re.M).group(1)
    assert 'job="coredns"' in dns and re.search(r'pod="coredns-\w+-\w{5}"', dns) and "node=" not in dns
    assert re.search(r':9153"', dns)
    exporter = re.search(r"^node_cpu_seconds_total\{([^}]*)\}", small_text, re.M).group(1)
    assert 'job="node-exporter"' in exporter and 'instance="node-00"' in exporter
    pods = re.findall(r'^kube_pod_info\{[^}]*pod="([^"]+)"', small_text, re.M)
    assert {p.split("-")[0] for p in pods} == {"kube", "prometheus", "coredns"}


def test_a_down_target_has_up_zero_and_no_other_series(small: Scenario, small_text: str) -> None:
    down_from = int((END - timedelta(minutes=10)).timestamp())
    node_02 = [line for line in small_text.splitlines() if 'cluster="a"' in line and 'node="node-02"' in line]
    up = {int(line.split()[-1]): line.split()[-2] for line in node_02 if line.startswith("up{") and 'job="kubelet"' in line}
    assert len(up) == 41 and {v for t, v in up.items() if t < down_from} == {"1.0"}
    assert [v for t, v in sorted(up.items()) if t >= down_from] == ["0.0"] * 21
    others = [line for line in node_02 if not line.startswith(("up{", "kube_node_info{", "kube_pod_info{"))]
    assert others and max(int(line.split()[-1]) for line in others) < down_from


def test_writer_counters_realise_what_demo_source_reports(small: Scenario, small_text: str) -> None:
    """At a grid-aligned instant, rate() needs no extrapolation: the ratio of counter deltas is the answer."""
    at = END - timedelta(minutes=2)
    window_start = int((at - timedelta(minutes=5)).timestamp())
    (pod,) = set(re.findall(r'^kube_pod_info\{cluster="a",[^}]*pod="(coredns-[^"]+)",node="node-01"', small_text, re.M))
    values: dict[str, dict[int, float]] = {}
    for line in set(small_text.splitlines()):
        if line.startswith("coredns_dns_responses_total{") and f'pod="{pod}"' in line:
            rcode = re.search(r'rcode="(\w+)"', line).group(1)
            _, value, timestamp = line.rsplit(" ", 2)
            values.setdefault(rcode, {})[int(timestamp)] = float(value)
    end = int(at.timestamp())
    delta = {rcode: series[end] - series[window_start] for rcode, series in values.items()}
    reported = observe(DemoSource(small), at)[("a", "node-01", "dns", "servfail_ratio", "node")]
    assert reported == pytest.approx(delta["SERVFAIL"] / sum(delta.values()), rel=1e-12)
    assert reported == pytest.approx(0.2)


def test_writer_is_deterministic_and_narrows_to_a_time_range(small: Scenario, small_text: str) -> None:
    again = io.StringIO()
    write_openmetrics(small, again)
    assert again.getvalue() == small_text
    narrowed = io.StringIO()
    write_openmetrics(small, narrowed, start=END - timedelta(minutes=5), end=END - timedelta(minutes=1))
    stamps = {int(line.rsplit(" ", 1)[1]) for line in narrowed.getvalue().splitlines() if not line.startswith("#")}
    assert min(stamps) == int((END - timedelta(minutes=5)).timestamp())
    assert max(stamps) == int((END - timedelta(minutes=1)).timestamp())
    full = {line for line in small_text.splitlines() if not line.startswith("#")}
    assert {line for line in narrowed.getvalue().splitlines() if not line.startswith("#")} <= full


def test_promtool_backfills_every_written_sample(small: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "demo.om"
    write_openmetrics(small, path)
    samples = sum(1 for line in path.read_text().splitlines() if not line.startswith("#"))
    assert backfill(path, tmp_path / "tsdb", tmp_path / "promtool.log") == samples
