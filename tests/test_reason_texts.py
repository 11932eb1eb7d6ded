"""Verdict reasons that read right: whole events, the window named, a quantile's lower bound (issue 8 §4)."""

from dataclasses import replace

import pytest

from dashboard.catalog import PRESETS, beyond_top_bucket
from dashboard.health import explain
from tests.test_health_judge import healthy_kubelet, judge_rows, rows, verdict_of

CATALOG = PRESETS["kube-prometheus-stack"]


def reason(row, signal):
    return next(r for r in row["reasons"] if r["signal"] == signal)


def dns_with_panics(value, catalog=CATALOG):
    entries = rows(
        ("n1", "dns", "up", 1.0), ("n1", "dns", "servfail_ratio", 0.0), ("n1", "dns", "panics", value),
    )
    return verdict_of(judge_rows(entries, catalog=catalog), "n1", "dns")


@pytest.mark.parametrize(
    "value, whole, verdict, text",
    [
        (0.5, 1, "unhealthy", "panics: at least 1 panic in the last 5m"),
        (1.2, 1, "unhealthy", "panics: at least 1 panic in the last 5m"),
        (2.5, 2, "unhealthy", "panics: at least 2 panics in the last 5m"),
        (0.0, 0, "healthy", "panics: no panics in the last 5m"),
    ],
)
def test_increase_counts_are_whole_events_in_a_named_window(value, whole, verdict, text):
    dns = dns_with_panics(value)
    panics = reason(dns, "panics")
    assert dns["verdict"] == verdict
    assert panics["value"] == whole and panics["text"] == text and panics["window"] == "5m"
    assert {"signal", "level", "value", "threshold", "op", "unit", "source", "text"} <= panics.keys()
    assert panics["unit"] == "events"


def test_a_configured_count_threshold_is_shown_in_whole_events():
    catalog = replace(CATALOG, threshold_overrides=(("dns", "panics", 2.0, 10.0),), window="10m")
    panics = reason(dns_with_panics(3.7, catalog), "panics")
    assert panics["level"] == "degraded" and panics["value"] == 3
    assert panics["text"] == "panics: at least 3 panics in the last 10m (> 2)"
    assert reason(dns_with_panics(2.9, catalog), "panics")["text"] == "panics: at least 2 panics in the last 10m (≤ 2)"


def test_rate_based_reasons_name_their_window_and_gauges_do_not():
    entries = healthy_kubelet() + rows(("n1", "kube-proxy", "up", 1.0), ("n1", "kube-proxy", "stale_rules_seconds", 0.0))
    entries[1]["value"] = 0.032
    frame = judge_rows(entries)
    kubelet = verdict_of(frame, "n1", "kubelet")
    errors = reason(kubelet, "runtime_error_ratio")
    assert errors["text"] == "runtime_error_ratio = 3.20 % over 5m ≥ 1.00 %" and errors["window"] == "5m"
    assert explain(kubelet) == errors["text"]
    assert reason(kubelet, "pleg_relist_p99")["text"] == "pleg_relist_p99 = 0.05 s over 5m < 3 s"
    stale = reason(verdict_of(frame, "n1", "kube-proxy"), "stale_rules_seconds")
    assert stale["text"] == "stale_rules_seconds = 0 s < 60 s" and "window" not in stale


def test_a_quantile_beyond_the_top_bucket_is_a_lower_bound():
    entries = healthy_kubelet() + rows(("n1", "kubelet", beyond_top_bucket("pleg_relist_p99"), 1.0))
    entries[2]["value"] = 10.0
    kubelet = verdict_of(judge_rows(entries), "n1", "kubelet")
    pleg = reason(kubelet, "pleg_relist_p99")
    assert kubelet["verdict"] == "unhealthy" and pleg["beyond_top_bucket"] and pleg["value"] == 10.0
    assert pleg["text"] == "pleg_relist_p99 ≥ 10 s over 5m (beyond the histogram's top bucket), threshold ≥ 10 s"


def test_a_lower_bound_under_the_threshold_is_no_evidence_of_health():
    """Buckets that stop at 1 s cannot tell a 1.2 s p99 from a 30 s one: not healthy."""
    entries = [e for e in healthy_kubelet() if e["signal"] != "runtime_error_ratio"]
    entries[1]["value"] = 1.0
    entries += rows(("n1", "kubelet", beyond_top_bucket("pleg_relist_p99"), 1.0))
    kubelet = verdict_of(judge_rows(entries), "n1", "kubelet")
    pleg = reason(kubelet, "pleg_relist_p99")
    assert kubelet["verdict"] == "unknown" and "pleg_relist_p99" in kubelet["no_data"]
    assert pleg["level"] == "no data"
    assert pleg["text"] == (
        "pleg_relist_p99 ≥ 1 s over 5m (beyond the histogram's top bucket): cannot tell whether < 3 s"
    )
