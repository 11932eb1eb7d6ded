"""The real captured expositions, backfilled into a real Prometheus and judged by the catalog's PromQL.

Each fixture is replayed as one scrape target with the labels kube-prometheus-stack gives it. The
signals a fixture contains must be found (values checked against the captured numbers); the ones it
lacks must be "no data", never healthy.
"""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashboard.catalog import PRESETS
from dashboard.health import evaluate
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from tests.exposition import OpenMetricsWriter, parse_exposition

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
END = 1_764_000_000.0
STEP = 30.0
SCRAPES = 20
CLUSTER = {"cluster": "fixtures"}
KSM = {"job": "kube-state-metrics", **CLUSTER}

# fixture file -> (target labels, node its pod runs on or None when the series carry `node`)
TARGETS = {
    "kubelet.prom": ({"job": "kubelet", "metrics_path": "/metrics", "node": "node-a", "instance": "10.0.0.1:10250"}, None),
    "kubelet-legacy.prom": ({"job": "kubelet", "metrics_path": "/metrics", "node": "node-old", "instance": "10.0.0.2:10250"}, None),
    "kube-proxy.prom": ({"job": "kube-proxy", "namespace": "kube-system", "pod": "kube-proxy-a1", "instance": "10.0.0.1:10249"}, "node-a"),
    "coredns.prom": ({"job": "coredns", "namespace": "kube-system", "pod": "coredns-5d78c9869d-a", "instance": "10.244.0.5:9153"}, "node-a"),
    "coredns-1.6.9-legacy.prom": ({"job": "coredns", "namespace": "kube-system", "pod": "coredns-6955765f44-b", "instance": "10.244.1.7:9153"}, "node-old"),
    "kube-dns.prom": ({"job": "kube-dns", "namespace": "kube-system", "pod": "kube-dns-86f4d74b45-c", "instance": "10.244.2.9:10055"}, "node-kd"),
}
# cAdvisor's view of two containers on node-a (cores, working-set bytes). kube-proxy's process
# metrics are scraped and win; the CoreDNS fixture has none, so its container stands in.
CADVISOR = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "node": "node-a", "instance": "10.0.0.1:10250"}
CONTAINERS = {
    ("kube-proxy", "kube-proxy-a1", "registry.k8s.io/kube-proxy:v1.21.0"): (0.5, 7e9),
    ("coredns", "coredns-5d78c9869d-a", "registry.k8s.io/coredns/coredns:v1.9.3"): (0.003, 21e6),
}
# A kube-proxy whose pod kube-state-metrics does not know: its node comes from the instance host.
ORPHAN_PROXY = {"job": "kube-proxy", "namespace": "kube-system", "pod": "kube-proxy-zz", "instance": "10.0.0.9:10249"}


def captured(fixture: str, name: str, **labels: str) -> float:
    """Sum of a fixture's samples named ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in parse_exposition((FIXTURES / fixture).read_text()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= dict(sample.labels).items():
                total += sample.value
    return total


@pytest.fixture(scope="module")
def evaluation(prom_factory):
    writer = OpenMetricsWriter()
    times = [END - (SCRAPES - 1 - k) * STEP for k in range(SCRAPES)]
    for fixture, (labels, pod_node) in TARGETS.items():
        target = {**labels, **CLUSTER}
        writer.add_exposition((FIXTURES / fixture).read_text(), target, END, samples=SCRAPES, step=STEP)
        writer.add_series("up", target, [(t, 1.0) for t in times])
        if pod_node:
            pod = {"namespace": target["namespace"], "pod": target["pod"], "node": pod_node}
            writer.add_series("kube_pod_info", {**KSM, **pod}, [(t, 1.0) for t in times])
    for (container, pod, image), (cores, working_set) in CONTAINERS.items():
        series = {**CADVISOR, **CLUSTER, "namespace": "kube-system", "pod": pod, "container": container,
                  "image": image, "id": f"/kubepods/burstable/pod-{pod}/{container}", "name": container}
        writer.add_container_usage(series, times, cores, working_set)
    orphan = {**ORPHAN_PROXY, **CLUSTER}
    writer.add_exposition((FIXTURES / "kube-proxy.prom").read_text(), orphan, END, samples=SCRAPES, step=STEP)
    for node in ("node-a", "node-old", "node-kd"):
        writer.add_series("kube_node_info", {**KSM, "node": node}, [(t, 1.0) for t in times])
    server = prom_factory(writer.render(), name="real-expositions")
    source = PrometheusSource(PrometheusSettings(url=server.url, timeout_seconds=20))
    at = datetime.fromtimestamp(END, tz=timezone.utc)
    return evaluate(source, PRESETS["kube-prometheus-stack"], at=at, cluster="fixtures").verdicts


def row(verdicts, node, component):
    match = verdicts[(verdicts["node"] == node) & (verdicts["component"] == component)]
    assert len(match) == 1, f"{node}/{component} missing from\n{verdicts[['node', 'component', 'verdict']]}"
    return match.iloc[0]


def test_kubelet_1_21_signals_found_with_captured_values(evaluation):
    kubelet = row(evaluation, "node-a", "kubelet")
    work = kubelet["work"]
    # The only runtime errors are exec_sync (user probes): excluded, so the ratio is 0, not "no data".
    assert captured("kubelet.prom", "kubelet_runtime_operations_errors_total", operation_type="exec_sync") == 16
    assert work["runtime_error_ratio"] == 0
    errors = captured("kubelet.prom", "rest_client_requests_total", code="<error>") + sum(
        captured("kubelet.prom", "rest_client_requests_total", code=code) for code in ("500", "503", "504")
    )
    assert work["apiserver_error_ratio"] == pytest.approx(errors / captured("kubelet.prom", "rest_client_requests_total"))
    # PLEG: the 99th percentile rank falls between the captured le=0.05 and le=0.1 buckets.
    assert 0.05 < work["pleg_relist_p99"] <= 0.1
    assert 0 < work["runtime_operation_p99"] < 1
    assert kubelet["resources"]["kubelet_process_rss_bytes"] == pytest.approx(1.1157504e08)
    assert kubelet["no_data"] == []
    assert kubelet["verdict"] == "healthy"


def test_kubelet_1_13_legacy_names_are_understood(evaluation):
    kubelet = row(evaluation, "node-old", "kubelet")
    work = kubelet["work"]
    ops = captured("kubelet-legacy.prom", "kubelet_runtime_operations") - captured(
        "kubelet-legacy.prom", "kubelet_runtime_operations", operation_type="exec_sync"
    )
    assert work["runtime_error_ratio"] == pytest.approx(18 / ops)  # container_status 14 + remove_container 4
    assert work["pleg_relist_p99"] == pytest.approx(31234 / 1e6)  # the summary's 0.99 quantile, in seconds
    assert work["apiserver_error_ratio"] == pytest.approx(45 / captured("kubelet-legacy.prom", "rest_client_requests_total"))
    assert "runtime_operation_p99" in kubelet["no_data"]  # v1.13 fixture carries no runtime latency
    assert kubelet["verdict"] == "unhealthy"  # 18 errors in 6,000 quick calls is 0.3 %; the 5xx/<error> ratio is not
    assert any(r["signal"] == "apiserver_error_ratio" and r["level"] == "unhealthy" for r in kubelet["reasons"])


def test_kube_proxy_found_through_kube_pod_info_and_instance_fallback(evaluation):
    proxy = row(evaluation, "node-a", "kube-proxy")
    work = proxy["work"]
    assert 1.024 < work["sync_proxy_rules_p99"] <= 2.048
    assert 16 < work["network_programming_p99"] <= 17
    assert work["iptables_restore_failures"] == 0
    assert work["stale_rules_seconds"] == 0  # last queued change is older than the last sync
    assert work["apiserver_error_ratio"] == 0
    assert proxy["verdict"] == "healthy"
    orphan = row(evaluation, "10.0.0.9", "kube-proxy")
    assert orphan["verdict"] == "healthy"


def test_coredns_1_9_and_1_7_parts(evaluation):
    dns = row(evaluation, "node-a", "dns")
    servfail = captured("coredns.prom", "coredns_dns_responses_total", rcode="SERVFAIL")
    all_responses = captured("coredns.prom", "coredns_dns_responses_total")
    assert dns["work"]["servfail_ratio"] == pytest.approx(servfail / all_responses)  # REFUSED only in zone="dropped"
    assert 0.004 < dns["work"]["request_p99"] <= 0.008  # rank 14,868 of 15,018 lies in (0.004, 0.008]
    assert dns["work"]["panics"] == 0
    assert dns["verdict"] == "unhealthy"


def test_coredns_1_6_pre_rename_names(evaluation):
    dns = row(evaluation, "node-old", "dns")
    servfail = captured("coredns-1.6.9-legacy.prom", "coredns_dns_response_rcode_count_total", rcode="SERVFAIL")
    assert dns["work"]["servfail_ratio"] == pytest.approx(
        servfail / captured("coredns-1.6.9-legacy.prom", "coredns_dns_response_rcode_count_total")
    )
    assert dns["work"]["panics"] == 0  # coredns_panic_count_total
    assert dns["work"]["request_p99"] is not None


def test_kube_dns_skydns_names_and_missing_panics(evaluation):
    dns = row(evaluation, "node-kd", "dns")
    requests = captured("kube-dns.prom", "skydns_skydns_dns_request_count_total")
    assert dns["work"]["servfail_ratio"] == pytest.approx(1 / requests)
    assert 0 < dns["work"]["request_p99"] <= 2.5
    assert "panics" in dns["no_data"]
    assert dns["verdict"] == "healthy"


def test_node_without_kube_proxy_series_is_unknown(evaluation):
    assert row(evaluation, "node-old", "kube-proxy")["verdict"] == "unknown"
    assert row(evaluation, "node-kd", "kubelet")["verdict"] == "unknown"


def test_cluster_dns_rollup_merges_all_servers(evaluation):
    rollup = evaluation[(evaluation["component"] == "dns") & (evaluation["scope"] == "cluster")].iloc[0]
    assert rollup["node"] is None
    failures = (
        captured("coredns.prom", "coredns_dns_responses_total", rcode="SERVFAIL")
        + captured("coredns-1.6.9-legacy.prom", "coredns_dns_response_rcode_count_total", rcode="SERVFAIL")
        + captured("kube-dns.prom", "skydns_skydns_dns_error_count_total", cause="servfail")
    )
    answers = (
        captured("coredns.prom", "coredns_dns_responses_total")
        + captured("coredns-1.6.9-legacy.prom", "coredns_dns_response_rcode_count_total")
        + captured("kube-dns.prom", "skydns_skydns_dns_request_count_total")
    )
    assert rollup["work"]["servfail_ratio"] == pytest.approx(failures / answers)
    # kube-dns's half a million good answers drown two failing CoreDNS servers cluster-wide: the
    # per-node rows are what show them.
    assert rollup["verdict"] == "healthy"


def test_component_resources_from_the_process_else_the_container(evaluation):
    proxy = row(evaluation, "node-a", "kube-proxy")["resources"]
    assert proxy["kube-proxy_process_rss_bytes"] == pytest.approx(
        captured("kube-proxy.prom", "process_resident_memory_bytes"))
    # A replayed counter grows by its captured value over the replay (see tests/exposition.py).
    assert proxy["kube-proxy_process_cpu_cores"] == pytest.approx(
        captured("kube-proxy.prom", "process_cpu_seconds_total") / (SCRAPES * STEP))
    dns = row(evaluation, "node-a", "dns")["resources"]
    assert dns["dns_process_cpu_cores"] == pytest.approx(0.003)
    assert dns["dns_process_rss_bytes"] == pytest.approx(21e6)
