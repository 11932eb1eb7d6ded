"""Releases: every release of every service, what is in it, and whether it may be deployed.

Widgets and layout only: the table is dashboard.provenance.release_table, gated by the same policy
and engine that `python -m dashboard releases` uses. Picking a row opens its Release page.
"""

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard.config import ConfigError
from dashboard.policy import PolicyError
from dashboard.supply_chain import NoPolicyError
from dashboard.ui import data, navigation, panels, params
from dashboard.ui.style import gate_label

BUILT_WITHIN = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
GATE_FILTERS = ("all", "allowed", "denied")

st.title("Releases")
st.caption("Every release (image digest) by service: its vulnerabilities, attestations, gate verdict and "
           "where it runs. Pick a row to open the release beside the cluster it went to.")

try:
    settings = data.settings()
    chain_read = data.supply_chain(data.supply_chain_key(), data.supply_chain_bucket())
    table_read = data.releases(data.supply_chain_key(), data.supply_chain_bucket())
except (ConfigError, PolicyError, NoPolicyError) as error:
    st.error(f"Configuration error: {error}")
    st.stop()

panels.demo_banner(health_demo=False, supply_chain_demo=settings.uses_demo_grafeas)
chain = chain_read.value
if chain.error:
    panels.source_error("Supply chain", chain.error)
    st.warning("Could not evaluate the gate: every release counts as denied until the source can be read.")
st.caption(panels.freshness(chain.source, chain_read.read_at))
table: pd.DataFrame = table_read.value
if table.empty:
    st.warning("No releases found in the configured projects.")
    st.stop()

services = sorted(table["service"].unique())
problems = [params.seed("service", params.split), params.seed("gate"), params.seed("range")]
for problem in filter(None, problems):
    st.warning(problem)
if st.session_state.get("gate") not in GATE_FILTERS:
    st.session_state["gate"] = "all"
if st.session_state.get("range") not in BUILT_WITHIN:
    st.session_state["range"] = "all"
st.session_state["service"] = [s for s in st.session_state.get("service", []) if s in services]
with st.sidebar:
    chosen = st.multiselect("Services", services, key="service", placeholder="All services")
    gate = st.segmented_control("Gate verdict", GATE_FILTERS, key="gate")
    built = st.segmented_control("Built within", list(BUILT_WITHIN), key="range")
params.mirror("service", params.join)
params.mirror("gate", default="all")
params.mirror("range", default="all")

view = table
if chosen:
    view = view[view["service"].isin(chosen)]
if gate in ("allowed", "denied"):
    view = view[view["allowed"] == (gate == "allowed")]
if BUILT_WITHIN.get(built):
    since = datetime.now(timezone.utc) - BUILT_WITHIN[built]
    view = view[pd.to_datetime(view["build_time"], utc=True) >= since]

shown = pd.DataFrame({
    "service": view["service"],
    "digest": view["digest"].str.slice(0, 19),
    "revision": view["source_revision"].fillna("").astype(str).str.slice(0, 10),
    "built": pd.to_datetime(view["build_time"], utc=True),
    "critical": view["vulns_critical"], "high": view["vulns_high"],
    "medium": view["vulns_medium"], "low": view["vulns_low"], "fixable": view["vulns_fixable"],
    "attestations": [f"{p} of {r} present, {v} verified" for p, r, v in
                     zip(view["attestations_present"], view["attestations_required"], view["attestations_verified"])],
    "gate": [gate_label(allowed) for allowed in view["allowed"]],
    "first failed check": [checks[0] if len(checks) else "" for checks in view["failed_checks"]],
    "running in": ["; ".join(where) for where in view["running_in"]],
    "last deployed": pd.to_datetime(view["last_deployed"], utc=True),
    "resource": view["resource_uri"],
}).reset_index(drop=True)

st.caption(f"{len(shown)} of {len(table)} releases")
picked = st.dataframe(
    shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="release_table",
    height=min(38 + 35 * len(shown), 900),
    column_config={
        "built": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z"),
        "last deployed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z"),
    },
)
st.download_button("Download CSV", shown.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ"),
                   file_name="releases.csv", mime="text/csv")
rows = picked.selection.rows if picked is not None else []
if rows:
    resource = shown["resource"].iloc[rows[0]]
    st.switch_page(navigation.page("release"), query_params={"resource": resource})
