"""On call: is anything broken right now, where, and what shipped just before?

Widgets and layout only: verdicts come from dashboard.health.evaluate (the engine `python -m
dashboard health` runs), deploy markers from dashboard.deployments. The live parts refresh in a
fragment every `DASHBOARD_REFRESH_SECONDS` (default 60) without reloading the page.
"""

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard.config import ConfigError
from dashboard.deployments import deployments_between
from dashboard.health import explain
from dashboard.timeline import incidents
from dashboard.policy import PolicyError
from dashboard.sources.base import SourceError
from dashboard.supply_chain import NoPolicyError, gate_policy
from dashboard.ui import data, panels, params
from dashboard.ui.impacts import impact_of
from dashboard.ui.style import (
    VERDICT_ORDER,
    age,
    gate_label,
    impact_label,
    percent,
    verdict_cell_style,
    verdict_label,
)
from dashboard.verdicts import RANKS

ALL_CLUSTERS = "All clusters"
RECENT_DEPLOYS = timedelta(hours=6)
SINCE_LOOKBACK = timedelta(hours=3)
COMPONENTS = ("kubelet", "kube-proxy", "dns")

st.title("On call")
st.caption("Is anything broken right now, where, and what shipped just before? Judged by work (errors, "
           "latency, up), not by resources.")

try:
    settings = data.settings()
except ConfigError as error:
    st.error(f"Configuration error: {error}")
    st.stop()
panels.demo_banner(health_demo=settings.uses_demo, supply_chain_demo=settings.uses_demo_grafeas)
refresh = data.refresh_seconds()


def _now_bucket() -> datetime:
    """Now, floored to 30 s: reruns within half a minute share one cached evaluation."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now.replace(second=now.second - now.second % 30)


def _grid(per_node: pd.DataFrame) -> pd.DataFrame:
    """Node × component, each cell the verdict's icon and word, worst nodes first."""
    grid = per_node.pivot_table(index=["cluster", "node"], columns="component", values="verdict", aggfunc="first")
    grid = grid.reindex(columns=[c for c in COMPONENTS if c in grid.columns])
    worst = grid.apply(lambda row: -max(RANKS[v] for v in row if isinstance(v, str)), axis=1)
    grid = grid.assign(_worst=worst).sort_values(["_worst", "cluster", "node"]).drop(columns="_worst")
    return grid.map(lambda v: verdict_label(v) if isinstance(v, str) else "—").reset_index()


def _coloured(grid: pd.DataFrame):
    components = [c for c in COMPONENTS if c in grid.columns]
    return grid.style.map(verdict_cell_style, subset=components)


def _since(cluster: str | None, at: datetime) -> dict[tuple[str, str, str], str]:
    """For each component not healthy now, since when (from the timeline's incidents): "since 18:25
    UTC (35 min)", or "for more than 3 h" when it was already so at the lookback's first step."""
    step = timedelta(minutes=5)
    end = datetime.fromtimestamp(at.timestamp() // step.total_seconds() * step.total_seconds(), timezone.utc)
    start = end - SINCE_LOOKBACK
    try:
        frame = data.timeline(data.health_key(), start.isoformat(), end.isoformat(), int(step.total_seconds()),
                              cluster).value
    except SourceError:
        return {}
    since = {}
    for row in incidents(frame, end).itertuples(index=False):
        if not row.ongoing:
            continue
        began = row.start.to_pydatetime()
        text = (f"for more than {age(SINCE_LOOKBACK.total_seconds())}" if began <= start
                else f"since {began:%H:%M} UTC ({age((at - began).total_seconds())})")
        since[(row.cluster, row.node or "", row.component)] = text
    return since


def _problems(per_node: pd.DataFrame, rollups: pd.DataFrame, since: dict[tuple[str, str, str], str]) -> None:
    """The worst problems first, each with since when, all its reasons and the node's resources."""
    rows = pd.concat([rollups, per_node])
    rows = rows[rows["verdict"] != "healthy"]
    if rows.empty:
        st.success("Every node component is doing its work.")
        return
    rows = rows.assign(_rank=-rows["verdict"].map(RANKS)).sort_values(["_rank", "cluster", "node"], na_position="first")
    for row in rows.to_dict(orient="records"):
        where = row["node"] or "all DNS servers"
        when = since.get((row["cluster"], row["node"] or "", row["component"]), "new in the last 5 min")
        with st.expander(f"{verdict_label(row['verdict'])} · {row['cluster']} · {where} · {row['component']} · {when}"):
            work, context = st.columns([3, 1])
            reasons = pd.DataFrame(row["reasons"]).reindex(columns=["level", "signal", "text", "value", "threshold",
                                                                      "source"])
            work.text(explain(row))
            work.dataframe(reasons, hide_index=True)
            resources = row["resources"]
            context.caption("Context (does not decide)")
            context.text(f"node CPU busy {percent(resources.get('node_cpu_busy_ratio'))}\n"
                         f"node memory used {percent(resources.get('node_memory_used_ratio'))}")


@st.fragment(run_every=refresh)
def live(cluster: str | None) -> None:
    at = _now_bucket()
    try:
        read = data.evaluation(data.health_key(), at.isoformat(), cluster)
    except SourceError as error:
        panels.source_error("Node health", str(error))
        return
    evaluation = read.value
    st.caption(panels.freshness(evaluation.source, read.read_at) + f" · evaluated at {at.isoformat()}")
    verdicts = evaluation.verdicts
    if verdicts.empty:
        st.warning("No node components found at this time: nothing can be judged healthy. Check the "
                   "cluster filter and that the source scrapes kubelet, kube-proxy and DNS.")
        return
    per_node = verdicts[verdicts["scope"] == "node"]
    rollups = verdicts[verdicts["scope"] == "cluster"]
    counts = per_node["verdict"].value_counts()
    for column, verdict in zip(st.columns(4), VERDICT_ORDER):
        column.metric(verdict.capitalize(), int(counts.get(verdict, 0)), help=f"node components {verdict}")
    if not rollups.empty:
        st.caption("Cluster DNS, all servers together: "
                   + ", ".join(f"{r.cluster} {verdict_label(r.verdict)}" for r in rollups.itertuples(index=False)))
    if cluster is None:
        by_cluster = per_node.groupby(["cluster", "verdict"]).size().unstack(fill_value=0)
        st.dataframe(by_cluster.reindex(columns=list(VERDICT_ORDER), fill_value=0), height="content")
    grid, problems = st.columns([1, 1], gap="large")
    with grid:
        st.subheader("Node × component")
        st.dataframe(_coloured(_grid(per_node)), hide_index=True, height="content")
    with problems:
        st.subheader("Problems, worst first")
        _problems(per_node, rollups, _since(cluster, at))


def recent_releases(cluster: str | None) -> None:
    st.subheader(f"Releases deployed in the last {RECENT_DEPLOYS.total_seconds() / 3600:.0f} h")
    try:
        chain_read = data.supply_chain(data.supply_chain_key(), data.supply_chain_bucket())
        policy = gate_policy(settings)
    except (PolicyError, NoPolicyError) as error:
        st.error(f"Configuration error: {error}")
        return
    chain = chain_read.value
    if chain.error:
        panels.source_error("Supply chain", chain.error)
        st.caption("Could not evaluate the gate: denied.")
        return
    now = datetime.now(timezone.utc)
    known = data.known_clusters(data.health_key(), _now_bucket().isoformat()) or None
    markers = deployments_between(chain.occurrences, now - RECENT_DEPLOYS, now, cluster, policy=policy,
                                  aliases=settings.cluster_aliases, known_clusters=known)
    st.caption(panels.freshness(chain.source, chain_read.read_at))
    if markers.empty:
        st.caption("None.")
        return
    impacts = [
        impact_of({"cluster": row.cluster, "deploy_time": row.time, "address": row.address}, markers=markers,
                  resource=row.resource_uri, now=now)[0]
        for row in markers.itertuples(index=False)
    ]
    st.dataframe(
        pd.DataFrame({
            "deployed": markers["time"], "cluster": markers["cluster"].fillna("unmapped"),
            "service": markers["service"], "digest": markers["short_digest"],
            "gate": [gate_label(g == "allowed") for g in markers["gate"]],
            "impact": [impact_label(impact["verdict"]) for impact in impacts],
            "why": [impact["summary"] for impact in impacts],
            "resource": markers["resource_uri"],
        }).sort_values("deployed", ascending=False),
        hide_index=True,
        column_config={"deployed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z")},
    )


clusters = [ALL_CLUSTERS, *(known := data.known_clusters(data.health_key(), _now_bucket().isoformat()))]
problem = params.seed("cluster")
if problem:
    panels.problem(problem)
if st.session_state.get("cluster") not in clusters:
    if "cluster" in st.session_state:
        panels.problem(f"Cluster {st.session_state['cluster']!r} is not known to the source; showing all clusters.")
    st.session_state["cluster"] = settings.cluster if settings.cluster in known else ALL_CLUSTERS
with st.sidebar:
    chosen = st.selectbox("Cluster", clusters, key="cluster")
params.mirror("cluster", default=ALL_CLUSTERS)
chosen_cluster = None if chosen == ALL_CLUSTERS else chosen

live(chosen_cluster)
recent_releases(chosen_cluster)
panels.source_status()
