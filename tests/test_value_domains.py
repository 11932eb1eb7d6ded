"""Garbage is never healthy: a value outside its signal's domain is no data, with a reason (issue 9 §4)."""

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from dashboard.catalog import DOMAINS, PRESETS
from dashboard.health import evaluate, judge
from dashboard.sources.base import Observations, observation_frame
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from tests.test_health_judge import healthy_kubelet, rows, verdict_of

CATALOG = PRESETS["kube-prometheus-stack"]
AT = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
NAN, INF = math.nan, math.inf


def test_every_signal_declares_a_domain():
    for sig in CATALOG.signals:
        assert sig.domain == DOMAINS[sig.unit], sig.name
    assert CATALOG.signal("kubelet", "up").domain == "bool"
    assert CATALOG.signal("kubelet", "runtime_error_ratio").domain == "ratio"
    assert CATALOG.signal("dns", "panics").domain == "non-negative"


@pytest.mark.parametrize(
    "component, name, good, bad",
    [
        ("kubelet", "up", [0.0, 1.0], [2.0, 0.5, -1.0, INF, -INF, NAN]),
        ("kubelet", "runtime_error_ratio", [0.0, 0.3, 1.0], [1.5, -0.01, INF, NAN]),
        ("kubelet", "pleg_relist_p99", [0.0, 12.0, 1e9], [-0.5, INF, -INF, NAN]),
        ("dns", "panics", [0.0, 0.5, 3.0], [-1.0, INF, NAN]),
    ],
)
def test_valid_on_floats_and_arrays_alike(component, name, good, bad):
    sig = CATALOG.signal(component, name)
    assert all(sig.valid(v) is True for v in good)
    assert all(sig.valid(v) is False for v in bad)
    mixed = np.array(good + bad)
    assert sig.valid(mixed).tolist() == [True] * len(good) + [False] * len(bad)
    series = pd.Series(good + bad, index=range(10, 10 + len(mixed)))
    assert sig.valid(series).tolist() == [True] * len(good) + [False] * len(bad)
    assert sig.valid(mixed.reshape(1, -1)).shape == (1, len(mixed))


def judge_entries(entries):
    return judge(Observations(observation_frame(entries), "test"), CATALOG)


@pytest.mark.parametrize("up, shown", [(NAN, "NaN"), (2.0, "2, not 0 or 1"), (INF, "+Inf")])
def test_garbage_up_leaves_the_component_unknown_never_healthy(up, shown):
    entries = healthy_kubelet()
    entries[0]["value"] = up
    kubelet = verdict_of(judge_entries(entries), "n1", "kubelet")
    assert kubelet["verdict"] == "unknown"
    assert "up" in kubelet["no_data"]
    reason = next(r for r in kubelet["reasons"] if r["signal"] == "up")
    assert reason["level"] == "no data" and reason["value"] is None
    assert reason["text"] == f"up: source sent an invalid value ({shown}), counted as no data"


@pytest.mark.parametrize(
    "signal, value, shown",
    [
        ("pleg_relist_p99", -INF, "-Inf"),
        ("pleg_relist_p99", -3.0, "-3, below 0"),
        ("runtime_error_ratio", 1.5, "1.5, outside [0, 1]"),
        ("runtime_error_ratio", NAN, "NaN"),
    ],
)
def test_a_garbage_work_value_is_no_data_not_evidence(signal, value, shown):
    entries = [e for e in healthy_kubelet() if e["signal"] in ("up", signal)]
    entries[-1]["value"] = value
    kubelet = verdict_of(judge_entries(entries), "n1", "kubelet")
    assert kubelet["verdict"] == "unknown"
    assert kubelet["work"][signal] is None and signal in kubelet["no_data"]
    assert any(r["text"] == f"{signal}: source sent an invalid value ({shown}), counted as no data"
               for r in kubelet["reasons"])


def test_a_garbage_value_never_hides_a_real_problem():
    entries = healthy_kubelet() + rows(("n1", "kubelet", "runtime_operation_p99", NAN))
    entries[1]["value"] = 0.2  # runtime_error_ratio: unhealthy
    assert verdict_of(judge_entries(entries), "n1", "kubelet")["verdict"] == "unhealthy"


def test_garbage_resource_context_is_left_out():
    entries = healthy_kubelet() + rows(
        ("n1", "node", "cpu_busy_ratio", 7.0), ("n1", "kubelet", "process_rss_bytes", -INF),
        ("n1", "node", "memory_used_ratio", 0.5),
    )
    kubelet = verdict_of(judge_entries(entries), "n1", "kubelet")
    assert kubelet["verdict"] == "healthy"
    assert kubelet["resources"]["node_cpu_busy_ratio"] is None
    assert kubelet["resources"]["kubelet_process_rss_bytes"] is None
    assert kubelet["resources"]["node_memory_used_ratio"] == 0.5


@pytest.mark.parametrize("sent, shown", [("NaN", "NaN"), ("+Inf", "+Inf"), ("2", "2, not 0 or 1")])
def test_garbage_from_a_prometheus_reaches_the_judge_as_garbage(fake_prom, sent, shown):
    """A server answering every query with one odd value: nothing it says is evidence of health."""
    fake_prom.set_mode("ok", result=[{"metric": {"cluster": "c1", "node": "n1"}, "value": [AT.timestamp(), sent]}])
    source = PrometheusSource(PrometheusSettings(url=fake_prom.url, timeout_seconds=2))
    verdicts = evaluate(source, CATALOG, at=AT).verdicts
    assert not verdicts.empty and "healthy" not in set(verdicts["verdict"])
    kubelet = verdict_of(verdicts, "n1", "kubelet")
    up = next(r for r in kubelet["reasons"] if r["signal"] == "up")
    assert up["text"] == f"up: source sent an invalid value ({shown}), counted as no data"
