"""The verdict timeline on a real Prometheus with backfilled history.

The demo scenario, written as OpenMetrics, plus: a kube-proxy incident that starts and ends inside
the range; staging's node-03 joining halfway (its series removed before it joined); a scraping gap
of prod's node-06 kubelet (its kubelet samples removed for half an hour). Checks the incidents, the
instant/range equality at several steps, and that the number of queries is the same at 1 m and 5 m.
"""

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from dashboard.catalog import PRESETS, build_queries
from dashboard.deploy_impact import impact_step, read_around
from dashboard.health import evaluate
from dashboard.impact import ImpactRules, release_impact
from dashboard.sources.demo import DemoSource, Incident, demo_scenario, write_openmetrics
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
import dashboard.timeline
from dashboard.timeline import evaluate_range, incidents, judge_range, signal_series

CATALOG = PRESETS["kube-prometheus-stack"]
END = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
START = END - timedelta(hours=5)
STEP = timedelta(minutes=5)
RESOLVED = Incident("prod", "node-02", "kube-proxy", "slow_sync", END - timedelta(hours=4), END - timedelta(hours=3), 7.0)
JOINS = ("staging", "node-03", END - timedelta(hours=3))
GAP = ("prod", "node-06", END - timedelta(hours=2), END - timedelta(hours=1, minutes=30))


def _timestamp(line: str) -> float:
    return float(line.rsplit(" ", 1)[1])


def _without_joiner_and_gap(text: str) -> str:
    """The exposition minus the joining node's series before it joined and the gap's kubelet samples."""
    cluster, node, joined = JOINS
    on_node = [line for line in text.splitlines() if f'cluster="{cluster}"' in line and f'node="{node}"' in line]
    pods = {m.group(1) for line in on_node if line.startswith("kube_pod_info{") for m in [re.search(r'pod="([^"]+)"', line)]}
    ips = {m.group(1) for line in on_node if line.startswith("up{") for m in [re.search(r'instance="([^":]+):', line)] if m}
    marks = [f'node="{node}"', *(f'pod="{pod}"' for pod in pods), *(f'instance="{ip}:' for ip in ips)]
    gap_cluster, gap_node, gap_start, gap_end = GAP
    kept = []
    for line in text.splitlines():
        if not line.startswith("#"):
            if (f'cluster="{cluster}"' in line and any(mark in line for mark in marks)
                    and _timestamp(line) < joined.timestamp()):
                continue
            if (f'cluster="{gap_cluster}"' in line and 'job="kubelet"' in line and f'node="{gap_node}"' in line
                    and gap_start.timestamp() <= _timestamp(line) < gap_end.timestamp()):
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


@pytest.fixture(scope="module")
def scenario():
    base = demo_scenario(END, nodes=8, history=timedelta(hours=6))
    return replace(base, incidents=(*base.incidents, RESOLVED))


@pytest.fixture(scope="module")
def prometheus(scenario, prom_factory, tmp_path_factory):
    path = tmp_path_factory.mktemp("timeline") / "scenario.om"
    write_openmetrics(scenario, path)
    path.write_text(_without_joiner_and_gap(path.read_text(encoding="utf-8")), encoding="utf-8")
    return prom_factory(path, name="timeline")


def _source(prometheus):
    return PrometheusSource(PrometheusSettings(url=prometheus.url, timeout_seconds=30))


@pytest.fixture(scope="module")
def timeline(prometheus):
    return evaluate_range(_source(prometheus), CATALOG, start=START, end=END, step=STEP)


def _rows(frame, cluster, node, component):
    return frame[(frame["cluster"] == cluster) & (frame["node"] == node) & (frame["component"] == component)]


def test_an_incident_inside_the_range_starts_and_ends(timeline):
    found = incidents(timeline, END)
    sync = found[(found["node"] == "node-02") & (found["component"] == "kube-proxy")].to_dict("records")
    assert len(sync) == 1
    incident = sync[0]
    assert RESOLVED.start <= incident["start"] <= RESOLVED.start + timedelta(minutes=10)
    assert RESOLVED.end <= incident["end"] <= RESOLVED.end + timedelta(minutes=10)
    assert not incident["ongoing"] and incident["verdict"] == "degraded"
    assert incident["signal"] == "sync_proxy_rules_p99" and incident["peak"] >= 5
    gap = found[(found["cluster"] == GAP[0]) & (found["node"] == GAP[1]) & (found["component"] == "kubelet")]
    assert [(g["verdict"], g["signal"], g["ongoing"]) for g in gap.to_dict("records")] == [("unknown", "runtime_error_ratio", False)]


def test_an_incident_still_running_at_the_end_says_so(timeline):
    found = incidents(timeline, END)
    errors = found[(found["node"] == "node-05") & (found["component"] == "kubelet")].iloc[0]
    assert errors["ongoing"] and errors["end"] == pd.Timestamp(END)
    assert END - timedelta(minutes=90) <= errors["start"] <= END - timedelta(minutes=80)
    assert errors["verdict"] == "unhealthy" and errors["signal"] == "runtime_error_ratio"
    assert errors["peak"] == pytest.approx(0.12)


def test_a_node_that_joins_halfway_has_verdicts_from_then_on(timeline):
    cluster, node, joined = JOINS
    kubelet = _rows(timeline, cluster, node, "kubelet")
    assert pd.Timestamp(joined) <= kubelet["time"].min() <= pd.Timestamp(joined + timedelta(minutes=5))
    assert kubelet.iloc[-1]["verdict"] == "healthy" and kubelet.iloc[-1]["time"] == pd.Timestamp(END)
    others = _rows(timeline, cluster, "node-02", "kubelet")
    assert others["time"].min() == pd.Timestamp(START)


def test_a_scraping_gap_is_unknown_never_healthy(timeline):
    cluster, node, gap_start, gap_end = GAP
    kubelet = _rows(timeline, cluster, node, "kubelet").set_index("time")
    inside = kubelet.loc[pd.Timestamp(gap_start + timedelta(minutes=10)):pd.Timestamp(gap_end - timedelta(minutes=5)), "verdict"]
    assert len(inside) >= 3 and set(inside) == {"unknown"}
    assert kubelet.loc[pd.Timestamp(gap_start - timedelta(minutes=10)), "verdict"] == "healthy"
    assert kubelet.loc[pd.Timestamp(gap_end + timedelta(minutes=15)), "verdict"] == "healthy"
    proxy = _rows(timeline, cluster, node, "kube-proxy").set_index("time")  # still scraped: still judged
    assert proxy.loc[pd.Timestamp(gap_start + timedelta(minutes=15)), "verdict"] == "healthy"


def test_judging_one_step_at_a_time_gives_the_same_timeline(prometheus, monkeypatch):
    observations = _source(prometheus).observe_range(CATALOG, start=START, end=END, step=STEP)
    whole = judge_range(observations, CATALOG)
    monkeypatch.setattr(dashboard.timeline, "JUDGED_ROWS_AT_ONCE", 1)  # every block holds one step
    pd.testing.assert_frame_equal(judge_range(observations, CATALOG), whole)


@pytest.mark.parametrize(
    "at",
    [END, GAP[2] + timedelta(minutes=15), RESOLVED.start + timedelta(minutes=30), JOINS[2] + timedelta(minutes=5), START],
    ids=str,
)
def test_each_step_equals_the_instant_judge(prometheus, timeline, at):
    instant = evaluate(_source(prometheus), CATALOG, at=at).verdicts.to_dict("records")
    step = timeline[timeline["time"] == pd.Timestamp(at)]
    assert {(r.cluster, r.node, r.component): r.verdict for r in step.itertuples()} == {
        (r["cluster"], r["node"], r["component"]): r["verdict"] for r in instant
    }


def test_the_demo_range_agrees_with_the_real_one_where_the_data_is_the_same(scenario, timeline):
    demo = evaluate_range(DemoSource(scenario), CATALOG, start=END - timedelta(hours=1), end=END, step=STEP)
    real = timeline[timeline["time"] >= pd.Timestamp(END - timedelta(hours=1))]
    untouched = ~((real["cluster"] == JOINS[0]) & (real["node"] == JOINS[1]))
    key = ["time", "cluster", "node", "component"]
    merged = real[untouched].merge(demo, on=key, how="outer", suffixes=("_real", "_demo"), indicator=True)
    merged = merged[~((merged["cluster"] == JOINS[0]) & (merged["node"] == JOINS[1]))]
    assert set(merged["_merge"]) == {"both"}
    assert (merged["verdict_real"] == merged["verdict_demo"]).all()


def test_a_rejected_range_query_is_no_data_for_its_signal_only(prometheus):
    from dashboard.catalog import Selectors

    broken = replace(CATALOG, selectors=replace(Selectors(), dns='job=~"("'))
    observations = _source(prometheus).observe_range(broken, start=END - timedelta(hours=1), end=END, step=STEP)
    assert {w.component for w in observations.warnings} == {"dns", "inventory"}
    assert all("HTTP 400: bad_data" in w.message for w in observations.warnings)
    assert "dns" not in set(observations.frame["component"])
    assert {"kubelet", "kube-proxy"} <= set(observations.frame["component"])
    last = judge_range(observations, broken).query("time == @END")
    instant = evaluate(_source(prometheus), broken, at=END).verdicts
    assert {(r.cluster, r.node, r.component): r.verdict for r in last.itertuples()} == {
        (r.cluster, r.node, r.component): r.verdict for r in instant.itertuples()
    }


def test_the_query_count_depends_on_neither_steps_nor_nodes(prometheus):
    counts = {}
    for minutes in (1, 5):
        source = _source(prometheus)
        evaluate_range(source, CATALOG, start=END - timedelta(hours=2), end=END, step=timedelta(minutes=minutes))
        counts[minutes] = source.requests_sent
    assert counts[1] == counts[5] == len(build_queries(CATALOG))
    one_cluster = _source(prometheus)
    evaluate_range(one_cluster, CATALOG, start=START, end=END, step=STEP, cluster="prod")
    assert one_cluster.requests_sent == len(build_queries(CATALOG, cluster="prod"))


def test_signal_series_on_the_real_prometheus_match_the_demo(scenario, prometheus):
    start = END - timedelta(minutes=30)
    source = _source(prometheus)
    real = signal_series(source, CATALOG, start=start, end=END, step=STEP, cluster="prod", node="node-05")
    work = [sig for sig in CATALOG.signals if sig.kind == "work"]
    assert source.requests_sent == len(work)
    demo = signal_series(DemoSource(scenario), CATALOG, start=start, end=END, step=STEP, cluster="prod", node="node-05")
    key = ["time", "cluster", "node", "component", "signal"]
    merged = real.merge(demo, on=key, suffixes=("_real", "_demo"))
    assert len(merged) == len(real) == len(demo) > 0
    assert merged["value_real"].to_list() == pytest.approx(merged["value_demo"].to_list(), rel=1e-6, abs=1e-9)
    wide = signal_series(_source(prometheus), CATALOG, start=start, end=END, step=STEP, cluster="prod")
    errors = wide[(wide["component"] == "kubelet") & (wide["signal"] == "runtime_error_ratio")]["value"]
    assert len(errors) == 7 and ((errors > 0.005) & (errors < 0.05)).all()


def test_a_read_around_a_deploy_keeps_only_the_compared_verdicts_and_judges_as_the_whole_timeline(prometheus):
    deploy, rules, source = RESOLVED.start - timedelta(minutes=6), ImpactRules(), _source(prometheus)
    around = read_around(source, CATALOG, "prod", deploy, now=END, rules=rules)
    assert around.error is None
    assert sorted(around.timeline["time"].unique()) == [pd.Timestamp(deploy), pd.Timestamp(deploy + rules.window)]
    whole = evaluate_range(source, CATALOG, start=deploy - rules.window, end=deploy + rules.window,
                           step=impact_step(rules), cluster="prod")
    assert whole["time"].nunique() == 31
    judged = {name: release_impact(cluster="prod", deploy_time=deploy, timeline=timeline, series=around.series,
                                   catalog=CATALOG, now=END, rules=rules)
              for name, timeline in (("kept", around.timeline), ("whole", whole))}
    assert judged["kept"] == judged["whole"]
    assert {(t["node"], t["component"]) for t in judged["kept"]["transitions"]} == {("node-02", "kube-proxy")}
