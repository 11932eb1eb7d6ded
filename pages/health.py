"""Cluster health: how the node components did over a time range, and whether a deploy did it.

Widgets and layout only: the timeline is dashboard.timeline.evaluate_range (the engine `python -m
dashboard timeline` runs), incidents dashboard.timeline.incidents, deploy markers
dashboard.deployments.deployments_between.
"""

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard.catalog import series_promql
from dashboard.config import ConfigError
from dashboard.deployments import deployments_between
from dashboard.policy import PolicyError
from dashboard.sources.base import SourceError
from dashboard.supply_chain import NoPolicyError, gate_policy
from dashboard.timeline import incidents
from dashboard.ui import data, navigation, panels, params, pickers
from dashboard.ui.charts import signal_chart, verdict_heatmap
from dashboard.ui.links import prometheus_graph_link
from dashboard.ui.style import VERDICT_ORDER, age, verdict_label

ALL_NODES = "All nodes"
COMPONENTS = ("kubelet", "kube-proxy", "dns")

st.title("Cluster health")
st.caption("How each node's kubelet, kube-proxy and DNS did over time, judged by their work, with every deploy "
           "marked: what broke, since when, and whether a release went out just before.")

try:
    settings = data.settings()
except ConfigError as error:
    st.error(f"Configuration error: {error}")
    st.stop()
panels.demo_banner(health_demo=settings.uses_demo, supply_chain_demo=settings.uses_demo_grafeas)
now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
cluster = pickers.cluster_picker(data.known_clusters(data.health_key(), now.isoformat()), settings.cluster)
time_range = pickers.range_picker(now)
step = pickers.step_for(time_range.span)
# Steps fall on whole multiples of the step, so reruns within a step share one cached timeline.
end = datetime.fromtimestamp(time_range.end.timestamp() // step.total_seconds() * step.total_seconds(), timezone.utc)
start = end - time_range.span
key = (data.health_key(), start.isoformat(), end.isoformat(), int(step.total_seconds()), cluster)

try:
    read = data.timeline(*key)
except (SourceError, ValueError) as error:
    panels.source_error("Cluster health", str(error))
    panels.source_status()
    st.stop()
timeline: pd.DataFrame = read.value
st.caption(f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC, one step every {age(step.total_seconds())} · "
           + panels.freshness(settings.prometheus.url if settings.prometheus else "embedded demo", read.read_at))
if timeline.empty:
    st.warning("No node components in this range: nothing can be judged. Check the cluster and that the source "
               "scrapes kubelet, kube-proxy and DNS.")
    panels.source_status()
    st.stop()


def _markers() -> pd.DataFrame | None:
    """Deploys in the range, with their gate verdicts; None when the supply chain cannot be read."""
    try:
        chain = data.supply_chain(data.supply_chain_key(), data.supply_chain_bucket()).value
        policy = gate_policy(settings)
    except (PolicyError, NoPolicyError) as error:
        st.error(f"Configuration error: {error}")
        return None
    if chain.error:
        panels.source_error("deploy markers", chain.error)
        return None
    known = sorted(timeline["cluster"].unique())
    return deployments_between(chain.occurrences, start, end, cluster, policy=policy,
                               aliases=settings.cluster_aliases, known_clusters=known)


markers = _markers()
nodes = sorted(timeline.loc[timeline["scope"] == "node", "node"].dropna().unique())
problem = params.seed("node")
if problem:
    panels.problem(problem)
if st.session_state.get("node") not in [ALL_NODES, *nodes]:
    st.session_state["node"] = ALL_NODES
with st.sidebar:
    node = st.selectbox("Drill down to a node", [ALL_NODES, *nodes], key="node")
params.mirror("node", default=ALL_NODES)
node = None if node == ALL_NODES else node

shown = timeline if node is None else timeline[(timeline["node"] == node) | (timeline["scope"] == "cluster")]
per_node = shown[shown["scope"] == "node"]
counts = per_node[per_node["time"] == per_node["time"].max()]["verdict"].value_counts()
for column, verdict in zip(st.columns(4), VERDICT_ORDER):
    column.metric(verdict.capitalize(), int(counts.get(verdict, 0)), help=f"node components {verdict} at {end:%H:%M} UTC")

st.subheader("Verdicts over time" + (f" on {node}" if node else ""))
if node is None:
    st.caption("Each row a node, each cell its worst component at that step; worst nodes first, beyond 50 "
               "nodes the rest folded into one row. Dotted blue lines are deploys.")
    figure = verdict_heatmap(shown)
else:
    figure = verdict_heatmap(per_node.assign(node=per_node["component"]))
    st.caption("Each row one of the node's components.")
if markers is not None and not markers.empty:
    for time in markers["time"]:
        figure.add_vline(x=time, line_dash="dot", line_color="#4c6ef5")
st.plotly_chart(figure, width="stretch", key="heatmap")

st.subheader("Incidents")
found = incidents(shown, end)
if found.empty:
    st.success("No incident in this range: every component stayed healthy.")
else:
    st.dataframe(
        found.assign(verdict=found["verdict"].map(verdict_label), node=found["node"].fillna("(all DNS servers)"),
                     duration=found["duration_s"].map(age),
                     ongoing=found["ongoing"].map({True: "ongoing", False: ""}))
        .sort_values("start", ascending=False)[["start", "end", "duration", "ongoing", "cluster", "node", "component",
                                                "verdict", "signal", "peak"]],
        hide_index=True, height=min(38 + 35 * len(found), 420),
        column_config={"start": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z"),
                       "end": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z")},
    )

if markers is not None and not markers.empty:
    st.subheader("Deploys in this range")
    for row in markers.sort_values("time", ascending=False).itertuples(index=False):
        st.page_link(navigation.page("release"), query_params={"resource": row.resource_uri},
                     label=f"{row.time:%m-%d %H:%M} · {row.cluster or 'unmapped'} · {row.service} "
                           f"{row.short_digest} · gate {row.gate}")

st.subheader("Work signals" + (f" on {node}" if node else ", whole cluster"))
st.caption("Dashed lines are the thresholds (degraded, unhealthy); dotted lines and triangles are deploys. "
           "Each chart links to its PromQL in the Prometheus UI.")
try:
    series = data.series(*key, node).value
except SourceError as error:
    panels.source_error("the work signals", str(error))
    series = None
if series is not None:
    catalog = settings.catalog
    for component in COMPONENTS:
        signals = [sig for sig in catalog.signals if sig.component == component and sig.kind == "work"]
        mine = series[series["component"] == component]
        if mine.empty:
            continue
        st.markdown(f"**{component}**")
        columns = st.columns(2)
        for position, sig in enumerate(signals):
            signal_frame = mine[mine["signal"] == sig.name]
            if signal_frame.empty:
                continue
            with columns[position % 2]:
                if cluster is None and "cluster" in signal_frame and signal_frame["cluster"].nunique() > 1:
                    signal_frame = signal_frame.assign(node=signal_frame["cluster"])
                st.plotly_chart(signal_chart(signal_frame, sig, markers), width="stretch",
                                key=f"chart-{component}-{sig.name}")
                if settings.prometheus is not None:
                    promql = series_promql(catalog, sig, cluster=cluster, node=node)
                    st.link_button("Open in Prometheus", prometheus_graph_link(
                        settings.prometheus.graph_url, promql, range_seconds=time_range.span.total_seconds(), end=end))

panels.source_status()
