"""Release: one release's supply-chain record beside what it did to the clusters it went to.

Widgets and layout only: the record is dashboard.release_record.release_record, the same one
`python -m dashboard release` prints; the gate is the same engine as `python -m dashboard gate`.
"""

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboard.config import ConfigError
from dashboard.deploy_impact import Around
from dashboard.deployments import deployments_between
from dashboard.gate import evaluate_gate
from dashboard.policy import PolicyError
from dashboard.release_record import release_record
from dashboard.reports import gate_text
from dashboard.resources import not_found_message, similar_resources, uri_forms
from dashboard.supply_chain import NoPolicyError, gate_policy
from dashboard.ui import data, navigation, panels
from dashboard.ui.impacts import impact_of
from dashboard.ui.charts import signal_chart
from dashboard.ui.style import VERDICT_ORDER, escape_markdown, gate_label, impact_label

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL", "SEVERITY_UNSPECIFIED")

st.title("Release")
st.caption("One release's supply-chain record (provenance, vulnerabilities, attestations, the gate) beside "
           "the health of each cluster it was deployed to.")

resource = st.query_params.get("resource")
try:
    settings = data.settings()
    policy = gate_policy(settings)
    chain_read = data.supply_chain(data.supply_chain_key(), data.supply_chain_bucket())
except (ConfigError, PolicyError, NoPolicyError) as error:
    st.error(f"Configuration error: {error}")
    st.stop()
panels.demo_banner(health_demo=settings.uses_demo, supply_chain_demo=settings.uses_demo_grafeas)
chain = chain_read.value
if not resource:
    st.info("No release chosen: pick one on the Releases page.")
    st.page_link(navigation.page("releases"), label="Open Releases")
    panels.source_status()
    st.stop()

known_uris = set(chain.occurrences.all["resource_uri"].dropna())
# As `gate --resource` does: the URI matches with or without https://.
resource = next((form for form in uri_forms(resource) if form in known_uris), resource)
not_found = None if resource in known_uris or chain.error else not_found_message(similar_resources(resource, known_uris))
st.text(resource)
if chain.error:
    panels.source_error("Supply chain", chain.error)
gate = evaluate_gate(resource, chain.occurrences, policy, source_error=chain.error)
now = datetime.now(timezone.utc)
# No clusters known (the health source is down): keep every mapped name rather than call all unmapped.
known = data.known_clusters(data.health_key(), now.replace(second=0, microsecond=0).isoformat()) or None
markers = deployments_between(chain.occurrences, datetime.min.replace(tzinfo=timezone.utc), now,
                              aliases=settings.cluster_aliases, known_clusters=known)
reads: dict[tuple[str, str], Around | None] = {}


def impact_for(deployment: dict) -> dict:
    """The impact of one deployment, from the cached read around it (the health half may fail alone)."""
    impact, around = impact_of(deployment, markers=markers, resource=resource, now=now)
    if deployment["cluster"] and deployment["deploy_time"]:
        reads[(deployment["cluster"], pd.Timestamp(deployment["deploy_time"]).isoformat())] = around
    return impact


record = release_record(resource, chain.occurrences, policy, gate=gate, impact_for=impact_for,
                        aliases=settings.cluster_aliases, known_clusters=known)
supply, cluster_side = st.columns(2, gap="large")

with supply:
    st.subheader("Gate")
    st.markdown(f"**{gate_label(gate.allowed)}**" + (" (could not evaluate: denied)" if chain.error else ""))
    st.caption("As `python -m dashboard gate --resource …` prints it:")
    st.code(gate_text(gate, not_found=not_found), language=None)
    checks = pd.DataFrame(record["gate"]["checks"])
    checks["passed"] = checks["passed"].map({True: "✔ passed", False: "✖ FAILED"})
    st.dataframe(checks, hide_index=True, column_config={"detail": st.column_config.TextColumn(width="large")})

    st.subheader("Provenance")
    provenance = record["provenance"]
    st.dataframe(
        pd.DataFrame({
            "field": ["builder", "source repository", "source revision", "build start", "build end", "SLSA predicate"],
            "value": [provenance["builder"], provenance["source_repo"], provenance["source_revision"],
                      provenance["build_start"], provenance["build_end"],
                      (provenance["slsa"] or {}).get("predicate_type")],
        }).fillna("—"),
        hide_index=True,
    )

    st.subheader("Attestations")
    st.dataframe(pd.DataFrame(record["attestations"], columns=["note", "present", "verified", "reason"]),
                 hide_index=True)

    st.subheader("Vulnerabilities")
    vulnerabilities = pd.DataFrame(record["vulnerabilities"],
                                   columns=["cve", "severity", "fixable", "package", "fixed_version"])
    severities = st.multiselect("Severity", SEVERITIES, default=list(SEVERITIES[:4]), key="severity")
    fixable_only = st.checkbox("Only those with a fix", key="fixable")
    shown = vulnerabilities[vulnerabilities["severity"].isin(severities)]
    if fixable_only:
        shown = shown[shown["fixable"]]
    st.caption(f"{len(shown)} of {len(vulnerabilities)} package issues")
    st.dataframe(shown, hide_index=True)
    st.download_button("Download vulnerabilities (CSV)", shown.to_csv(index=False),
                       file_name="vulnerabilities.csv", mime="text/csv")

    st.subheader("Against the previous release")
    previous = record["previous"]
    if previous is None:
        st.caption("The first release of its service: nothing to compare with.")
    else:
        st.text(f"previous: {previous['resource']}")
        revisions = previous["source_revisions"]
        st.text(f"source: {revisions['previous'] or '?'} → {revisions['this'] or '?'}; "
                f"gate: {previous['gate']['previous']} → {previous['gate']['this']}")
        changes = pd.DataFrame(
            [{"change": "CVE added", **cve} for cve in previous["cves_added"]]
            + [{"change": "CVE fixed", **cve} for cve in previous["cves_fixed"]]
            + [{"change": "attestation gained", "cve": note} for note in previous["attestations_gained"]]
            + [{"change": "attestation lost", "cve": note} for note in previous["attestations_lost"]],
            columns=["change", "cve", "severity", "fixable"],
        ).rename(columns={"cve": "what"})
        if changes.empty:
            st.caption("No changes in CVEs or attestations.")
        else:
            st.dataframe(changes, hide_index=True)

def _deployment_health(deployment: dict) -> None:
    """One deployment's cluster side: the impact verdict and its numbers, before/after counts,
    the components that changed, and the work signals around the deploy."""
    impact = deployment["impact"]
    where = deployment["cluster"] or f"unmapped ({deployment['address']})"
    st.markdown(f"**{escape_markdown(where)}** · deployed {deployment['deploy_time'] or 'at an unknown time'} · "
                f"impact **{impact_label(impact['verdict'])}**")
    st.text(impact["summary"])
    around = reads.get((deployment["cluster"], pd.Timestamp(deployment["deploy_time"]).isoformat())) \
        if deployment["cluster"] and deployment["deploy_time"] else None
    if around is not None and around.error:
        panels.source_error(f"the health of {deployment['cluster']}", around.error)
    before, after = impact["before"], impact["after"]
    for column, verdict in zip(st.columns(4), VERDICT_ORDER):
        column.metric(f"{verdict.capitalize()} after", after.get(verdict, 0),
                      delta=after.get(verdict, 0) - before.get(verdict, 0),
                      delta_color="normal" if verdict == "healthy" else "inverse",
                      help=f"node components {verdict} at the end of the after-window; the delta is against "
                           "just before the deploy")
    if impact["transitions"]:
        st.caption("Components that left healthy")
        st.dataframe(pd.DataFrame(impact["transitions"]), hide_index=True)
    if impact["signals"]:
        signals = pd.DataFrame(impact["signals"]).reindex(
            columns=["component", "signal", "verdict", "before", "after", "effect", "change", "p", "n_before",
                     "n_after"])
        signals["verdict"] = signals["verdict"].map(impact_label)
        st.dataframe(signals, hide_index=True)
    if impact["confounded_by"]:
        st.caption("Confounded: also deployed into this cluster within the window: "
                   + "; ".join(impact["confounded_by"]))
    if around is not None and not around.series.empty:
        marker = pd.DataFrame({"time": [pd.Timestamp(deployment["deploy_time"])], "service": [record["service"]],
                               "short_digest": [(record["digest"] or "")[:19]], "gate": [gate_label(gate.allowed)],
                               "impact": [impact["verdict"]]})
        with st.expander("Work signals before and after the deploy"):
            columns = st.columns(2)
            charted = 0
            for sig in settings.catalog.signals:
                frame = around.series[(around.series["component"] == sig.component)
                                      & (around.series["signal"] == sig.name)]
                if sig.kind != "work" or frame.empty:
                    continue
                with columns[charted % 2]:
                    st.plotly_chart(signal_chart(frame, sig, marker), width="stretch",
                                    key=f"around-{where}-{deployment['deploy_time']}-{sig.component}-{sig.name}")
                charted += 1


with cluster_side:
    st.subheader("What it did to the clusters it went to")
    if not record["deployments"]:
        st.caption("Never deployed: no cluster to show.")
    for deployment in record["deployments"]:
        with st.container(border=True):
            _deployment_health(deployment)
    if any(d["mapped_by"] == "unmapped" for d in record["deployments"]):
        st.caption("Unmapped deployments name no cluster Prometheus knows; map them under [clusters.aliases].")

panels.source_status()
