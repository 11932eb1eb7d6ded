"""Release impact on constructed series with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from dashboard.catalog import PRESETS
from dashboard.impact import ImpactRules, release_impact, worst_impact

CATALOG = PRESETS["kube-prometheus-stack"]
DEPLOY = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
NOW = DEPLOY + timedelta(hours=2)
STEP = timedelta(minutes=1)
NODES = ("node-01", "node-02", "node-03")


def steps(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start) / STEP)
    return [start + i * STEP for i in range(count + 1)]


def timeline(changes: dict[tuple[str, str], str] | None = None, *, start=DEPLOY - timedelta(minutes=30),
             end=DEPLOY + timedelta(minutes=30)) -> pd.DataFrame:
    """Every node component healthy, except ``changes`` = {(node, component): verdict} after the deploy."""
    rows = []
    for moment in steps(start, end):
        for node in NODES:
            for component in ("kubelet", "kube-proxy", "dns"):
                verdict = "healthy"
                if moment > DEPLOY + timedelta(minutes=5) and (node, component) in (changes or {}):
                    verdict = changes[(node, component)]
                rows.append({"time": moment, "cluster": "prod", "node": node, "component": component,
                             "scope": "node", "verdict": verdict,
                             "signal": None if verdict == "healthy" else "request_p99", "value": None})
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def series(values_before, values_after, *, component="dns", signal="request_p99", cluster="prod") -> pd.DataFrame:
    """The cluster-wide series of one signal: ``values_before`` up to the deploy, then ``values_after``."""
    before_times = [DEPLOY - (len(values_before) - i) * STEP for i in range(len(values_before))]
    after_times = [DEPLOY + (i + 1) * STEP for i in range(len(values_after))]
    frame = pd.DataFrame({
        "time": pd.to_datetime(before_times + after_times, utc=True),
        "cluster": cluster, "component": component, "signal": signal,
        "value": list(values_before) + list(values_after),
    })
    return frame


def impact(tl, se, **kwargs):
    return release_impact(cluster="prod", deploy_time=DEPLOY, timeline=tl, series=se, catalog=CATALOG,
                          now=kwargs.pop("now", NOW), **kwargs)


def noisy(center, spread, n, seed):
    return np.random.default_rng(seed).normal(center, spread, n).clip(min=0)


def signal_row(result, component, signal):
    return next(s for s in result["signals"] if s["component"] == component and s["signal"] == signal)


def test_a_clear_latency_regression_fails_with_its_numbers():
    result = impact(timeline(), series(noisy(0.02, 0.002, 30, 1), noisy(2.5, 0.2, 30, 2)))
    dns = signal_row(result, "dns", "request_p99")
    assert dns["verdict"] == "Fail" and dns["p"] < 1e-6
    assert dns["n_before"] == dns["n_after"] == 30
    assert dns["effect"] > 50 and dns["after"] > 1.0
    assert result["verdict"] == "Fail" and result["components"]["dns"] == "Fail"
    assert "dns request_p99 rose from" in result["summary"] and "p = " in result["summary"]


def test_no_change_passes():
    result = impact(timeline(), series(noisy(0.02, 0.002, 30, 3), noisy(0.02, 0.002, 30, 4)))
    assert signal_row(result, "dns", "request_p99")["verdict"] == "Pass"
    assert result["components"]["dns"] == "Pass"
    assert result["before"] == result["after"] == {"healthy": 9, "degraded": 0, "unhealthy": 0, "unknown": 0}
    assert result["transitions"] == []


def test_a_significant_rise_under_the_floor_is_marginal():
    # p99 up from 20 ms to 30 ms: significant, +50 %, but far under the 1 s degraded threshold.
    result = impact(timeline(), series(noisy(0.02, 0.001, 30, 5), noisy(0.03, 0.001, 30, 6)))
    dns = signal_row(result, "dns", "request_p99")
    assert dns["p"] < 0.01 and dns["verdict"] == "Marginal"
    assert result["components"]["dns"] == "Marginal"


def test_an_error_ratio_needs_half_a_percentage_point():
    small = impact(timeline(), series(noisy(0.001, 0.0001, 30, 7), noisy(0.003, 0.0001, 30, 8),
                                      signal="servfail_ratio"))
    assert signal_row(small, "dns", "servfail_ratio")["verdict"] == "Marginal"
    large = impact(timeline(), series(noisy(0.001, 0.0001, 30, 9), noisy(0.02, 0.001, 30, 10),
                                      signal="servfail_ratio"))
    assert signal_row(large, "dns", "servfail_ratio")["verdict"] == "Fail"


def test_too_few_samples_are_inconclusive():
    result = impact(timeline(), series(noisy(0.02, 0.002, 9, 11), noisy(2.5, 0.2, 30, 12)))
    dns = signal_row(result, "dns", "request_p99")
    assert dns["verdict"] == "Inconclusive" and dns["n_before"] == 9
    assert result["components"]["dns"] == "Inconclusive"


def test_an_after_window_that_is_not_over_is_inconclusive_and_says_how_far_it_got():
    now = DEPLOY + timedelta(minutes=12)
    result = impact(timeline(end=now), series(noisy(0.02, 0.002, 30, 13), noisy(0.02, 0.002, 12, 14)), now=now)
    assert result["verdict"] == "Inconclusive"
    assert "after-window is not over (12 of 30 min)" in result["summary"]


def test_healthy_to_unhealthy_fails_and_names_the_nodes():
    result = impact(timeline({("node-02", "kubelet"): "unhealthy", ("node-03", "kube-proxy"): "degraded"}),
                    series(noisy(0.02, 0.002, 30, 15), noisy(0.02, 0.002, 30, 16)))
    assert result["components"]["kubelet"] == "Fail"
    assert result["components"]["kube-proxy"] == "Marginal"
    assert result["verdict"] == "Fail"
    assert {(t["node"], t["component"], t["from"], t["to"]) for t in result["transitions"]} == {
        ("node-02", "kubelet", "healthy", "unhealthy"), ("node-03", "kube-proxy", "healthy", "degraded")}
    assert result["after"]["unhealthy"] == 1 and result["after"]["degraded"] == 1
    assert "kubelet went healthy → unhealthy on node-02" in result["summary"]


def test_losing_the_evidence_is_not_a_pass():
    result = impact(timeline({("node-01", "dns"): "unknown"}), series(noisy(0.02, 0.002, 30, 17), noisy(0.02, 0.002, 30, 18)))
    assert result["components"]["dns"] == "Inconclusive"


def test_overlapping_deploys_are_confounded_and_the_verdict_stands():
    others = pd.DataFrame({
        "time": pd.to_datetime([DEPLOY + timedelta(minutes=10), DEPLOY + timedelta(hours=3),
                                DEPLOY - timedelta(minutes=5)], utc=True),
        "cluster": ["prod", "prod", "staging"],
        "resource_uri": ["https://gcr.io/a/cart@sha256:1", "https://gcr.io/a/late@sha256:2", "https://gcr.io/a/s@sha256:3"],
    })
    result = impact(timeline(), series(noisy(0.02, 0.002, 30, 19), noisy(2.5, 0.2, 30, 20)),
                    other_deploys=others, resource_uri="https://gcr.io/a/checkout@sha256:0")
    assert result["verdict"] == "Fail"
    assert result["confounded_by"] == ["https://gcr.io/a/cart@sha256:1"]
    assert "confounded" in result["summary"] and "cart" in result["summary"]


def test_no_data_at_all_is_inconclusive_never_pass():
    empty_timeline = timeline().iloc[0:0]
    result = impact(empty_timeline, series([], []))
    assert result["verdict"] == "Inconclusive"
    assert result["before"] == {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 0}


def test_a_source_error_is_inconclusive_with_the_reason():
    result = impact(timeline(), series(noisy(0.02, 0.002, 30, 21), noisy(2.5, 0.2, 30, 22)),
                    source_error="cannot reach Prometheus at http://p")
    assert result["verdict"] == "Inconclusive" and "cannot reach Prometheus" in result["summary"]


def test_constant_equal_windows_pass_without_a_degenerate_test():
    result = impact(timeline(), series([0.0] * 30, [0.0] * 30, component="kube-proxy", signal="iptables_restore_failures"))
    row = signal_row(result, "kube-proxy", "iptables_restore_failures")
    assert row["verdict"] == "Pass" and row["p"] == 1.0


@pytest.mark.parametrize("verdicts, worst", [(["Pass", "Fail", "Marginal"], "Fail"),
                                             (["Pass", "Inconclusive"], "Inconclusive"), ([], None)])
def test_worst_impact(verdicts, worst):
    assert worst_impact(verdicts) == worst


def test_a_longer_window_is_configurable():
    rules = ImpactRules(window=timedelta(minutes=10))
    result = impact(timeline(), series(noisy(0.02, 0.002, 30, 23), noisy(2.5, 0.2, 30, 24)), rules=rules)
    dns = signal_row(result, "dns", "request_p99")
    assert result["window_s"] == 600 and dns["n_before"] == 10 and dns["n_after"] == 10


def test_a_significant_rise_of_a_hair_is_no_regression():
    # A steady series creeping from 50.4 ms to 50.5 ms: p is tiny, the rise is 0.2 %, under 5 %.
    before = np.linspace(0.0504, 0.05045, 30)
    after = np.linspace(0.05046, 0.0505, 30)
    result = impact(timeline(), series(before, after))
    dns = signal_row(result, "dns", "request_p99")
    assert dns["p"] < 0.01 and dns["verdict"] == "Pass"
    small = impact(timeline(), series(noisy(0.001, 0.00001, 30, 11), noisy(0.0013, 0.00001, 30, 12),
                                      signal="servfail_ratio"))
    assert signal_row(small, "dns", "servfail_ratio")["verdict"] == "Pass"  # +0.03 pp, under 0.05 pp
