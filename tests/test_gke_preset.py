"""GKE Managed Service for Prometheus: kubelet targets named ``<node>:metrics`` and a curated metric set.

The real kubelet exposition is replayed without the families GMP's curated kubelet package drops
(the runtime error counter and the runtime latency histogram): those signals must read "no data,
not collected by the preset", and the node's name must come from the instance host.
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


@pytest.fixture(scope="module")
def verdicts(prom_factory):
    curated = "\n".join(line for line in FIXTURE.read_text().splitlines() if not any(name in line for name in DROPPED))
    writer = OpenMetricsWriter()
    for node in ("gke-pool-1-abcd", "gke-pool-1-efgh"):
        target = {"job": "kubelet", "instance": f"{node}:metrics", "cluster": "gke-prod"}
        writer.add_exposition(curated, target, END)
        writer.add_series("up", target, [(END - 30 * k, 1.0) for k in range(19, -1, -1)])
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
