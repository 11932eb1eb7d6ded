"""Releases: every release of every service, what is in it, and whether it may be deployed.

Widgets and layout only: the table is dashboard.provenance.release_table, gated by the same policy
and engine that `python -m dashboard releases` uses, with its impact column judged as that command
judges it (dashboard.ui.data.release_impacts). Picking a row opens its Release page.
"""

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard.config import ConfigError
from dashboard.policy import PolicyError
from dashboard.supply_chain import NoPolicyError
from dashboard.ui import data, navigation, panels, params
from dashboard.ui.style import age, gate_label, impact_label

WITHIN = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
TIME_BASES = ("built", "deployed")
GATE_FILTERS = ("all", "allowed", "denied")
NOT_DEPLOYED = "not deployed"
IMPACT_FILTERS = ("Fail", "Marginal", "Inconclusive", "Pass", NOT_DEPLOYED)

st.title("Releases")
st.caption("Every release (image digest) by service: its vulnerabilities, attestations, gate verdict and "
           "where it runs. Pick a row to open the release beside the cluster it went to.")

try:
    settings = data.settings()
    bucket = data.supply_chain_bucket()
    chain_read = data.supply_chain(data.supply_chain_key(), bucket)
    table_read = data.releases(data.supply_chain_key(), bucket)
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
    panels.source_status()
    st.stop()
impacts_read = data.release_impacts(data.health_key(), data.supply_chain_key(), bucket)
impacts = impacts_read.value
if impacts.error:
    panels.source_error("the impact column (node health)", impacts.error)
    st.caption("Impact reads Inconclusive for every deployed release until the health source can be read; "
               "the rest of the table is the supply chain's.")
else:
    st.caption("Impact: the worst over each release's deployments, as `python -m dashboard releases` judges it "
               f"(judged {age((datetime.now(timezone.utc) - impacts_read.read_at).total_seconds())} ago).")
markers = impacts.markers

services = sorted(table["service"].unique())
problems = [params.seed("service", params.split), params.seed("gate"), params.seed("impact", params.split),
            params.seed("time_by"), params.seed("range")]
for problem in filter(None, problems):
    panels.problem(problem)
if st.session_state.get("gate") not in GATE_FILTERS:
    st.session_state["gate"] = "all"
if st.session_state.get("range") not in WITHIN:
    st.session_state["range"] = "all"
if st.session_state.get("time_by") not in TIME_BASES:
    st.session_state["time_by"] = "built"
st.session_state["service"] = [s for s in st.session_state.get("service", []) if s in services]
st.session_state["impact"] = [i for i in st.session_state.get("impact", []) if i in IMPACT_FILTERS]
with st.sidebar:
    chosen = st.multiselect("Services", services, key="service", placeholder="All services")
    gate = st.segmented_control("Gate verdict", GATE_FILTERS, key="gate")
    wanted_impacts = st.multiselect("Impact", IMPACT_FILTERS, key="impact", placeholder="Any impact")
    basis = st.segmented_control("Time", TIME_BASES, key="time_by", help="filter by build time, or by any deploy time")
    within = st.segmented_control("Within the last", list(WITHIN), key="range")
params.mirror("service", params.join)
params.mirror("gate", default="all")
params.mirror("impact", params.join)
params.mirror("time_by", default="built")
params.mirror("range", default="all")

impact_of = pd.Series([impacts.worst.get(uri) for uri in table["resource_uri"]], index=table.index, dtype=object)
deployed: dict[str, list[str]] = {}
for row in markers.itertuples(index=False):
    where = row.cluster or f"unmapped {row.address}"
    deployed.setdefault(row.resource_uri, []).append(f"{where} {row.time:%Y-%m-%d %H:%M} UTC")
table = table.assign(impact=impact_of, deployed=[deployed.get(uri, []) for uri in table["resource_uri"]])

view = table
if chosen:
    view = view[view["service"].isin(chosen)]
if gate in ("allowed", "denied"):
    view = view[view["allowed"] == (gate == "allowed")]
if wanted_impacts:
    view = view[[(impact or NOT_DEPLOYED) in wanted_impacts for impact in view["impact"]]]
if WITHIN.get(within):
    since = pd.Timestamp(datetime.now(timezone.utc) - WITHIN[within])
    if basis == "deployed":
        recent = set(markers.loc[markers["time"] >= since, "resource_uri"])
        view = view[view["resource_uri"].isin(recent)]
    else:
        view = view[pd.to_datetime(view["build_time"], utc=True) >= since]

# The verdicts and where the release went come right after what identifies it: on a narrow
# screen those are what a release manager reads first, the details follow to the right.
shown = pd.DataFrame({
    "service": view["service"],
    "digest": view["digest"].str.slice(0, 19),
    "gate": [gate_label(allowed) for allowed in view["allowed"]],
    "impact": [impact_label(impact) for impact in view["impact"]],
    "deployed where and when": ["; ".join(where) for where in view["deployed"]],
    "revision": view["source_revision"].fillna("").astype(str).str.slice(0, 10),
    "built": pd.to_datetime(view["build_time"], utc=True),
    "critical": view["vulns_critical"], "high": view["vulns_high"],
    "medium": view["vulns_medium"], "low": view["vulns_low"], "fixable": view["vulns_fixable"],
    "attestations": [f"{p} of {r} present, {v} verified" for p, r, v in
                     zip(view["attestations_present"], view["attestations_required"], view["attestations_verified"])],
    "first failed check": [checks[0] if len(checks) else "" for checks in view["failed_checks"]],
    "running in": ["; ".join(where) for where in view["running_in"]],
    "last deployed": pd.to_datetime(view["last_deployed"], utc=True),
    "resource": view["resource_uri"],
}).reset_index(drop=True)

st.caption(f"{len(shown)} of {len(table)} releases")
picked = st.dataframe(
    shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="release_table",
    height="content",  # the table is the page: every release shown, the page scrolls rather than the table
    column_config={
        "built": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z"),
        "last deployed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm z"),
    },
)
st.download_button("Download CSV", shown.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%SZ"),
                   file_name="releases.csv", mime="text/csv")
panels.source_status()
rows = picked.selection.rows if picked is not None else []
if rows:
    resource = shown["resource"].iloc[rows[0]]
    st.switch_page(navigation.page("release"), query_params={"resource": resource})
