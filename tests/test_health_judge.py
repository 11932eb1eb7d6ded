"""The judge's rules on hand-made observation frames (the PromQL itself is tested on a real Prometheus)."""

import pandas as pd
import pytest

from dashboard.catalog import PRESETS
from dashboard.health import explain, judge
from dashboard.sources.base import Observations, SourceWarning, observation_frame

CATALOG = PRESETS["kube-prometheus-stack"]
GKE = PRESETS["gke-managed-prometheus"]


def rows(*entries):
    return [
        {"cluster": "c1", "node": node, "component": component, "signal": signal,
         "scope": "cluster" if node is None else "node", "value": value}
        for node, component, signal, value in entries
    ]


def healthy_kubelet(node="n1"):
    return rows(
        (node, "kubelet", "up", 1.0),
        (node, "kubelet", "runtime_error_ratio", 0.001),
        (node, "kubelet", "pleg_relist_p99", 0.05),
    )


def verdict_of(frame, node, component):
    match = frame[(frame["node"] == node) & (frame["component"] == component)]
    assert len(match) == 1, frame
    return match.iloc[0]


def judge_rows(entries, warnings=(), catalog=CATALOG):
    return judge(Observations(observation_frame(entries), "test", tuple(warnings)), catalog)


def test_known_node_without_any_series_is_unknown_never_healthy():
    frame = judge_rows(rows(("n1", "inventory", "known_nodes", 1.0)))
    kubelet = verdict_of(frame, "n1", "kubelet")
    assert kubelet["verdict"] == "unknown"
    assert "no series at all" in explain(kubelet)
    assert verdict_of(frame, "n1", "kube-proxy")["verdict"] == "unknown"


def test_up_alone_is_not_evidence_of_health():
    frame = judge_rows(rows(("n1", "kubelet", "up", 1.0)))
    kubelet = verdict_of(frame, "n1", "kubelet")
    assert kubelet["verdict"] == "unknown"
    assert "no work signal had data" in explain(kubelet)


def test_down_target_is_unhealthy_even_with_good_work_signals():
    entries = healthy_kubelet()
    entries[0]["value"] = 0.0
    kubelet = verdict_of(judge_rows(entries), "n1", "kubelet")
    assert kubelet["verdict"] == "unhealthy"
    assert "up = 0" in explain(kubelet)


def test_healthy_needs_a_work_signal_and_reports_every_signal():
    kubelet = verdict_of(judge_rows(healthy_kubelet()), "n1", "kubelet")
    assert kubelet["verdict"] == "healthy"
    assert kubelet["work"]["runtime_error_ratio"] == pytest.approx(0.001)
    assert set(kubelet["no_data"]) == {"runtime_operation_p99", "apiserver_error_ratio"}
    by_signal = {r["signal"]: r for r in kubelet["reasons"]}
    assert by_signal["runtime_error_ratio"]["threshold"] == 0.01
    assert by_signal["apiserver_error_ratio"]["level"] == "no data"


@pytest.mark.parametrize(
    "value, expected, threshold", [(0.02, "degraded", 0.01), (0.05, "unhealthy", 0.05), (0.0099, "healthy", 0.01)]
)
def test_thresholds_degraded_at_first_unhealthy_at_second(value, expected, threshold):
    entries = healthy_kubelet()
    entries[1]["value"] = value
    kubelet = verdict_of(judge_rows(entries), "n1", "kubelet")
    assert kubelet["verdict"] == expected
    reason = next(r for r in kubelet["reasons"] if r["signal"] == "runtime_error_ratio")
    assert (reason["value"], reason["threshold"], reason["level"]) == (value, threshold, expected)


def test_resources_never_decide_a_busy_node_is_healthy():
    entries = healthy_kubelet() + rows(
        ("n1", "node", "cpu_busy_ratio", 0.95),
        ("n1", "node", "memory_used_ratio", 0.97),
        ("n1", "kubelet", "process_cpu_cores", 3.5),
    )
    kubelet = verdict_of(judge_rows(entries), "n1", "kubelet")
    assert kubelet["verdict"] == "healthy"
    assert kubelet["resources"]["node_cpu_busy_ratio"] == 0.95
    assert kubelet["resources"]["kubelet_process_cpu_cores"] == 3.5


def test_component_without_series_on_a_measured_node_is_unknown():
    frame = judge_rows(healthy_kubelet())
    assert verdict_of(frame, "n1", "kube-proxy")["verdict"] == "unknown"


def test_warned_signal_can_show_a_problem_but_not_health():
    warning = SourceWarning("kubelet", "runtime_error_ratio", "partial response")
    entries = rows(("n1", "kubelet", "up", 1.0), ("n1", "kubelet", "runtime_error_ratio", 0.0))
    kubelet = verdict_of(judge_rows(entries, [warning]), "n1", "kubelet")
    assert kubelet["verdict"] == "unknown"
    assert "partial data" in explain(kubelet)
    entries[1]["value"] = 0.2
    assert verdict_of(judge_rows(entries, [warning]), "n1", "kubelet")["verdict"] == "unhealthy"


def test_any_panic_is_unhealthy_and_dns_rollup_row_exists():
    entries = rows(
        ("n1", "inventory", "dns_hosts", 1.0),
        ("n1", "dns", "up", 1.0),
        ("n1", "dns", "servfail_ratio", 0.0),
        ("n1", "dns", "panics", 1.0),
        (None, "dns", "up", 1.0),
        (None, "dns", "servfail_ratio", 0.02),
    )
    frame = judge_rows(entries)
    assert verdict_of(frame, "n1", "dns")["verdict"] == "unhealthy"
    rollup = frame[(frame["component"] == "dns") & (frame["scope"] == "cluster")].iloc[0]
    assert rollup["node"] is None and rollup["verdict"] == "degraded"


def test_same_node_name_in_two_clusters_stays_apart():
    entries = healthy_kubelet() + [
        {**row, "cluster": "c2", "value": 0.0 if row["signal"] == "up" else row["value"]} for row in healthy_kubelet()
    ]
    frame = judge_rows(entries)
    kubelets = frame[frame["component"] == "kubelet"].set_index("cluster")["verdict"]
    assert kubelets.to_dict() == {"c1": "healthy", "c2": "unhealthy"}


def test_gke_preset_names_signals_it_cannot_collect():
    kubelet = verdict_of(judge_rows(healthy_kubelet()[:1] + healthy_kubelet()[2:], catalog=GKE), "n1", "kubelet")
    texts = [r["text"] for r in kubelet["reasons"] if r["level"] == "no data"]
    assert any("runtime_error_ratio: no data (not collected by the gke-managed-prometheus preset)" in t for t in texts)
    assert kubelet["verdict"] == "healthy"  # PLEG p99 has data


def test_disabled_component_gets_no_rows():
    from dataclasses import replace

    cilium = replace(CATALOG, components=("kubelet", "dns"))
    frame = judge_rows(healthy_kubelet(), catalog=cilium)
    assert set(frame["component"]) == {"kubelet"}


def test_empty_observations_give_an_empty_frame_with_the_columns():
    frame = judge_rows([])
    assert frame.empty and "verdict" in frame.columns
    assert isinstance(frame, pd.DataFrame)
