"""GKE Managed Service for Prometheus: kubelet targets named ``<node>:metrics`` and a curated metric set.

The real kubelet exposition is replayed without the families GMP's curated kubelet package drops
(the runtime error counter and the runtime latency histogram): those signals must read "no data,
not collected by the preset", and the node's name must come from the instance host.

GMP's kubelet scraping (OperatorConfig ``kubeletScraping``) covers the kubelet and its cAdvisor
endpoint (``instance="<node>:cadvisor"``, as in prometheus-engine's ``makeKubeletScrapeConfigs``),
not kube-proxy: the components' resource context then comes from their containers (kube-proxy) or
cgroup (the kubelet, when its own process metrics are missing), in cAdvisor's label layout.
"""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashboard.catalog import PRESETS
from dashboard.health import evaluate
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from tests.exposition import OpenMetricsWriter

FIXTURE = Path(__file__).parent / "fixtures" / "prometheus" / "kubelet.prom"
END = 1_764_000_000.0
DROPPED = ("kubelet_runtime_operations_errors_total", "kubelet_runtime_operations_duration_seconds")
NODES = ("gke-pool-1-abcd", "gke-pool-1-efgh")
TIMES = [END - 30 * k for k in range(19, -1, -1)]
# Per node: (kube-proxy container cores, bytes), (kubelet cgroup cores, bytes)
CONTAINERS = {"gke-pool-1-abcd": ((0.004, 31e6), (0.09, 95e6)), "gke-pool-1-efgh": ((0.006, 27e6), (0.07, 88e6))}


def add_cadvisor(writer: OpenMetricsWriter, node: str) -> None:
    """cAdvisor series of one node: kube-proxy's container, its pod's cgroup, the kubelet's cgroup."""
    target = {"job": "kubelet", "instance": f"{node}:cadvisor", "cluster": "gke-prod"}
    (proxy_cores, proxy_bytes), (kubelet_cores, kubelet_bytes) = CONTAINERS[node]
    pod = {"namespace": "kube-system", "pod": f"kube-proxy-{node}"}
    cgroups = [
        ({**pod, "container": "kube-proxy", "image": "gke.gcr.io/kube-proxy-amd64:v1.30.5-gke.1014000",
          "id": f"/kubepods/burstable/pod-{node}/c0ffee", "name": "c0ffee"}, proxy_cores, proxy_bytes),
        # The pod's own cgroup (no container, no image) counts the same usage again: never added.
        ({**pod, "id": f"/kubepods/burstable/pod-{node}"}, proxy_cores, proxy_bytes),
        ({"id": "/system.slice/kubelet.service"}, kubelet_cores, kubelet_bytes),
    ]
    for labels, cores, working_set in cgroups:
        writer.add_container_usage({**target, **labels}, TIMES, cores, working_set)


@pytest.fixture(scope="module")
def verdicts(prom_factory):
    curated = "\n".join(line for line in FIXTURE.read_text().splitlines() if not any(name in line for name in DROPPED))
    without_process = "\n".join(line for line in curated.splitlines() if "process_" not in line)
    writer = OpenMetricsWriter()
    for node, exposition in zip(NODES, (curated, without_process)):
        target = {"job": "kubelet", "instance": f"{node}:metrics", "cluster": "gke-prod"}
        writer.add_exposition(exposition, target, END)
        writer.add_series("up", target, [(t, 1.0) for t in TIMES])
        add_cadvisor(writer, node)
    server = prom_factory(writer.render(), name="gke")
    source = PrometheusSource(PrometheusSettings(url=server.url))
    at = datetime.fromtimestamp(END, tz=timezone.utc)
    return evaluate(source, PRESETS["gke-managed-prometheus"], at=at).verdicts


def test_nodes_named_from_the_instance_host(verdicts):
    kubelets = verdicts[verdicts["component"] == "kubelet"]
    assert sorted(kubelets["node"]) == ["gke-pool-1-abcd", "gke-pool-1-efgh"]
    assert set(kubelets["cluster"]) == {"gke-prod"}


def test_curated_away_signals_are_no_data_never_healthy_evidence(verdicts):
    kubelet = verdicts[verdicts["component"] == "kubelet"].iloc[0]
    assert {"runtime_error_ratio", "runtime_operation_p99"} <= set(kubelet["no_data"])
    texts = " ".join(r["text"] for r in kubelet["reasons"])
    assert "not collected by the gke-managed-prometheus preset" in texts
    assert kubelet["work"]["pleg_relist_p99"] is not None
    assert kubelet["verdict"] == "healthy"  # PLEG and API-server signals carry the verdict


def test_kube_proxy_expected_on_every_node_but_absent_is_unknown(verdicts):
    proxies = verdicts[verdicts["component"] == "kube-proxy"]
    assert len(proxies) == 2 and set(proxies["verdict"]) == {"unknown"}


def test_resource_context_falls_back_to_the_container_where_the_process_is_not_scraped(verdicts):
    def resources(node, component):
        match = verdicts[(verdicts["node"] == node) & (verdicts["component"] == component)]
        return match.iloc[0]["resources"]

    for node, ((proxy_cores, proxy_bytes), _) in CONTAINERS.items():
        proxy = resources(node, "kube-proxy")
        assert proxy["kube-proxy_process_cpu_cores"] == pytest.approx(proxy_cores)
        assert proxy["kube-proxy_process_rss_bytes"] == pytest.approx(proxy_bytes)
    # The kubelet's own process metrics win where they are scraped; its cgroup stands in elsewhere.
    with_process = resources("gke-pool-1-abcd", "kubelet")
    assert with_process["kubelet_process_rss_bytes"] == pytest.approx(1.1157504e08)
    (_, (kubelet_cores, kubelet_bytes)) = CONTAINERS["gke-pool-1-efgh"]
    without_process = resources("gke-pool-1-efgh", "kubelet")
    assert without_process["kubelet_process_cpu_cores"] == pytest.approx(kubelet_cores)
    assert without_process["kubelet_process_rss_bytes"] == pytest.approx(kubelet_bytes)
