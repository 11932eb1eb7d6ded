"""The verdict timeline on the embedded demo and against a fake misbehaving Prometheus: range/instant
parity, incidents, the work-signal series, bad ranges, the 11,000-point split, and heavy queries."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from dashboard.catalog import PRESETS, build_queries
from dashboard.health import evaluate
from dashboard.sources.base import SourceError
from dashboard.sources.demo import DemoSource, demo_scenario
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from dashboard.timeline import (
    INCIDENT_COLUMNS,
    MAX_POINTS,
    TIMELINE_COLUMNS,
    evaluate_range,
    incidents,
    range_steps,
    range_window,
    signal_series,
)

CATALOG = PRESETS["kube-prometheus-stack"]
END = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
FIVE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def demo():
    return DemoSource(demo_scenario(END, nodes=8, history=timedelta(hours=3)))


@pytest.fixture(scope="module")
def demo_timeline(demo):
    return evaluate_range(demo, CATALOG, start=END - timedelta(hours=1), end=END, step=FIVE)


def test_range_steps_run_from_start_to_end():
    steps = range_steps(END - timedelta(minutes=12), END, FIVE)
    assert steps == [END - timedelta(minutes=12), END - timedelta(minutes=7), END - timedelta(minutes=2)]


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        (END, END, FIVE, "the range must end after it starts"),
        (END, END - FIVE, FIVE, "the range must end after it starts"),
        (END - FIVE, END, timedelta(0), "the step must be longer than 0 s"),
        (END - FIVE, END, -FIVE, "the step must be longer than 0 s"),
    ],
)
def test_bad_ranges_are_refused_before_any_query(fake_prom, start, end, step, message):
    source = PrometheusSource(PrometheusSettings(url=fake_prom.url))
    with pytest.raises(ValueError, match=message) as raised:
        evaluate_range(source, CATALOG, start=start, end=end, step=step)
    assert "\n" not in str(raised.value)
    assert fake_prom.requests == []


def test_a_range_over_11000_points_is_split_into_query_range_calls(fake_prom):
    fake_prom.set_mode("empty")
    source = PrometheusSource(PrometheusSettings(url=fake_prom.url))
    step = timedelta(seconds=1)
    start = END - timedelta(seconds=MAX_POINTS + 500)  # 11,501 steps: two runs
    evaluate_range(source, CATALOG, start=start, end=END, step=step)
    queries = build_queries(CATALOG)
    assert len(fake_prom.requests) == 2 * len(queries)
    runs = sorted({(float(r.params["start"]), float(r.params["end"])) for r in fake_prom.requests})
    assert runs == [
        (start.timestamp(), start.timestamp() + MAX_POINTS - 1),
        (start.timestamp() + MAX_POINTS, END.timestamp()),
    ]
    assert all(r.path == "/api/v1/query_range" and r.params["step"] == "1" for r in fake_prom.requests)


@pytest.mark.parametrize(("status", "error_type"), [(422, "execution"), (503, "timeout")])
def test_a_query_too_heavy_for_the_server_names_the_query(fake_prom, status, error_type):
    fake_prom.set_mode("error", status=status, error_type=error_type, error="query processing would load too many samples")
    source = PrometheusSource(PrometheusSettings(url=fake_prom.url))
    with pytest.raises(SourceError) as raised:
        evaluate_range(source, CATALOG, start=END - timedelta(hours=6), end=END, step=FIVE)
    message = str(raised.value)
    assert message.startswith("the range query for ") and f"HTTP {status}" in message
    assert "too heavy for the server" in message and "\n" not in message


def test_every_range_query_rejected_is_a_clear_error(fake_prom):
    fake_prom.set_mode("error", status=400, error_type="bad_data", error="parse error: unexpected character")
    source = PrometheusSource(PrometheusSettings(url=fake_prom.url))
    with pytest.raises(SourceError, match="every range query was rejected; first: .*HTTP 400: bad_data parse error"):
        evaluate_range(source, CATALOG, start=END - timedelta(hours=1), end=END, step=FIVE)


def test_a_step_longer_than_the_window_widens_it_to_see_every_sample():
    assert range_window(CATALOG, FIVE) is CATALOG
    assert range_window(CATALOG, timedelta(minutes=15)).window == "15m"
    wide = build_queries(range_window(CATALOG, timedelta(minutes=15)))
    assert all("[5m]" not in q.promql for q in wide) and any("[15m]" in q.promql for q in wide)


def test_demo_range_equals_the_instant_judge_at_every_step(demo, demo_timeline):
    assert list(demo_timeline.columns) == TIMELINE_COLUMNS
    for at in range_steps(END - timedelta(hours=1), END, FIVE):
        instant = evaluate(demo, CATALOG, at=at).verdicts
        expected = {(r["cluster"], r["node"], r["component"]): r["verdict"] for r in instant.to_dict("records")}
        step = demo_timeline[demo_timeline["time"] == pd.Timestamp(at)]
        assert {(r.cluster, r.node, r.component): r.verdict for r in step.itertuples()} == expected, at


def test_where_components_are_expected_comes_from_the_catalog_for_range_and_instant_alike(demo):
    """A catalog expecting DNS on every known node gives DNS a verdict on nodes without DNS pods
    (unknown, no data), in the timeline exactly as in the instant judge."""
    everywhere = replace(CATALOG, expected_on=tuple((c, "known_nodes") for c, _ in CATALOG.expected_on))
    at = END - FIVE
    instant = evaluate(demo, everywhere, at=at).verdicts
    timeline = evaluate_range(demo, everywhere, start=at - FIVE, end=at, step=FIVE)
    step = timeline[timeline["time"] == pd.Timestamp(at)]
    assert {(r.cluster, r.node, r.component): r.verdict for r in step.itertuples()} == {
        (r["cluster"], r["node"], r["component"]): r["verdict"] for r in instant.to_dict("records")
    }
    dns_nodes = set(step.loc[(step["component"] == "dns") & (step["scope"] == "node"), "node"])
    kubelet_nodes = set(step.loc[step["component"] == "kubelet", "node"])
    assert dns_nodes == kubelet_nodes
    default = evaluate_range(demo, CATALOG, start=at - FIVE, end=at, step=FIVE)
    assert set(default.loc[(default["component"] == "dns") & (default["scope"] == "node"), "node"]) < dns_nodes


def test_non_healthy_rows_carry_the_deciding_signal_and_value(demo_timeline):
    last = demo_timeline[demo_timeline["time"] == pd.Timestamp(END)].set_index(["cluster", "node", "component"])
    errors = last.loc[("prod", "node-05", "kubelet")]
    assert errors["verdict"] == "unhealthy" and errors["signal"] == "runtime_error_ratio"
    assert errors["value"] == pytest.approx(0.12)
    failures = last.loc[("prod", "node-07", "kube-proxy")]
    assert (failures["verdict"], failures["signal"], failures["value"]) == ("degraded", "iptables_restore_failures", 2)
    down = last.loc[("staging", "node-06", "kubelet")]
    assert (down["verdict"], down["signal"], down["value"]) == ("unhealthy", "up", 0)
    healthy = last[last["verdict"] == "healthy"]
    assert healthy["signal"].isna().all() and healthy["value"].isna().all()


def test_demo_incidents_are_ongoing_at_the_end(demo_timeline):
    found = incidents(demo_timeline, END)
    assert list(found.columns) == INCIDENT_COLUMNS
    errors = found[(found["node"] == "node-05") & (found["component"] == "kubelet")].iloc[0]
    assert errors["ongoing"] and errors["end"] == pd.Timestamp(END) and errors["signal"] == "runtime_error_ratio"
    assert errors["start"] == pd.Timestamp(END - timedelta(hours=1))  # began before the range
    assert errors["duration_s"] == 3600 and errors["peak"] == pytest.approx(0.12)


def test_incidents_from_a_constructed_timeline():
    times = pd.date_range(END - timedelta(minutes=30), END, freq="5min", tz="UTC")
    verdicts = ["healthy", "degraded", "unhealthy", "degraded", "healthy", "healthy", "unknown"]
    signals = [None, "pleg_relist_p99", "pleg_relist_p99", "pleg_relist_p99", None, None, None]
    values = [float("nan"), 4.0, 12.0, 5.0, float("nan"), float("nan"), float("nan")]
    timeline = pd.DataFrame({
        "time": times, "cluster": "prod", "node": "node-01", "component": "kubelet", "scope": "node",
        "verdict": verdicts, "signal": signals, "value": values,
    })
    found = incidents(timeline, END).to_dict("records")
    assert len(found) == 2
    first, second = found
    assert (first["start"], first["end"]) == (times[1], times[4])
    assert first["duration_s"] == 900 and not first["ongoing"]
    assert (first["verdict"], first["signal"], first["peak"]) == ("unhealthy", "pleg_relist_p99", 12.0)
    assert second["ongoing"] and second["verdict"] == "unknown" and second["duration_s"] == 0
    assert incidents(timeline[timeline["verdict"] == "healthy"], END).empty


def test_signal_series_cluster_wide_and_for_one_node(demo):
    start = END - timedelta(minutes=30)
    wide = signal_series(demo, CATALOG, start=start, end=END, step=FIVE, cluster="prod")
    assert list(wide.columns) == ["time", "cluster", "component", "signal", "value"]
    assert set(wide["cluster"]) == {"prod"} and len(wide["time"].unique()) == 7
    errors = wide[(wide["component"] == "kubelet") & (wide["signal"] == "runtime_error_ratio")]["value"]
    assert len(errors) == 7 and ((errors > 0.005) & (errors < 0.05)).all()  # one node in eight at 12 %
    one = signal_series(demo, CATALOG, start=start, end=END, step=FIVE, cluster="prod", node="node-05")
    assert list(one.columns) == ["time", "cluster", "node", "component", "signal", "value"]
    node_errors = one[(one["component"] == "kubelet") & (one["signal"] == "runtime_error_ratio")]["value"]
    assert node_errors.to_list() == pytest.approx([0.12] * 7)
    assert set(one["signal"]) <= {sig.name for sig in CATALOG.signals if sig.kind == "work"}
