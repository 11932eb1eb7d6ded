"""Node health: is every node's kubelet, kube-proxy and cluster DNS doing its work, and why not?

Widgets and layout only; every verdict comes from dashboard.health, the same engine the CLI runs.
"""

from datetime import datetime, time, timezone

import streamlit as st

from dashboard.config import ConfigError, load_settings
from dashboard.health import evaluate, verdict_table
from dashboard.sources import health_source, source_identity
from dashboard.sources.base import SourceError

VERDICT_ORDER = {"unhealthy": 0, "unknown": 1, "degraded": 2, "healthy": 3}


@st.cache_resource(ttl=300)
def _settings():
    return load_settings()


# The demo's scenario ends when it is built; Prometheus keeps a series visible 5 minutes after its
# last sample, so rebuilding well within that keeps "now" inside the demo's data.
@st.cache_resource(ttl=120)
def _source(_settings_key: str):
    return health_source(_settings().prometheus)


@st.cache_data(ttl=30, max_entries=64, show_spinner="Evaluating node components…")
def _evaluate(source_key: str, at_iso: str, cluster: str | None):
    settings = _settings()
    evaluation = evaluate(
        _source(source_key), settings.catalog, at=datetime.fromisoformat(at_iso), cluster=cluster
    )
    return evaluation.source, evaluation.verdicts


try:
    settings = _settings()
except ConfigError as error:
    st.error(f"Configuration error: {error}")
    st.stop()

source_key = source_identity(settings.prometheus)
if settings.uses_demo:
    st.info(
        "Embedded demo: no Prometheus configured (set PROMETHEUS_URL or a config file). "
        "The data below is generated."
    )

st.title("Node health")
st.caption(
    "Judged by work (error ratios, latency, up), not by resources: CPU and memory are context."
)

with st.sidebar:
    live = st.toggle("Now", value=True, help="Off: evaluate at a past moment")
    if live:
        # Round to the cache ttl so reruns within half a minute reuse one evaluation.
        now = datetime.now(timezone.utc).replace(microsecond=0)
        at = now.replace(second=now.second - now.second % 30)
    else:
        day = st.date_input("Date (UTC)", value=datetime.now(timezone.utc).date())
        clock = st.time_input("Time (UTC)", value=time(12, 0), step=300)
        at = datetime.combine(day, clock, tzinfo=timezone.utc)

try:
    source_description, verdicts = _evaluate(source_key, at.isoformat(), settings.cluster)
except SourceError as error:
    st.error(f"Could not read the source: {error}")
    st.stop()

st.caption(f"Source: {source_description} · evaluated at {at.isoformat()}")
if verdicts.empty:
    st.warning("No node components found at this time: nothing can be judged healthy.")
    st.stop()

table = verdict_table(verdicts)
clusters = sorted(table["cluster"].unique())
with st.sidebar:
    chosen = st.multiselect("Clusters", clusters, default=clusters)
    problems_only = st.checkbox("Only components that are not healthy", value=False)
in_chosen = (verdicts["cluster"].isin(chosen)).to_numpy()
# The counters count node components; the cluster-wide DNS roll-up is a view of the same DNS
# servers, so it is shown beside them, never added to them.
per_node = in_chosen & (verdicts["scope"] == "node").to_numpy()
rollups = in_chosen & (verdicts["scope"] == "cluster").to_numpy()
table = table[in_chosen]

counts = verdicts.loc[per_node, "verdict"].value_counts()
columns = st.columns(4)
for column, verdict in zip(columns, ("unhealthy", "unknown", "degraded", "healthy")):
    column.metric(verdict.capitalize(), int(counts.get(verdict, 0)))
if rollups.any():
    st.caption(
        "Cluster DNS, all servers together: "
        + ", ".join(f"{row.cluster} {row.verdict}" for row in verdicts[rollups].itertuples(index=False))
    )

if problems_only:
    table = table[table["verdict"] != "healthy"]
table = table.sort_values(
    ["verdict", "cluster", "node", "component"], key=lambda s: s.map(VERDICT_ORDER) if s.name == "verdict" else s
)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "node CPU busy": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
        "node memory used": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
    },
)
