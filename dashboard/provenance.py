"""The release table: one row per release with its supply-chain record and gate verdict.

A release is one resource URI (``https://REGISTRY/PROJECT/IMAGE@sha256:…``). Releases are grouped by
service (the image repository, see :func:`service_of`) and, within a service, ordered newest build
first; releases without a build time come last.

Everything is computed from the normalised frames (``dashboard.occurrences``) by grouping each frame
by resource once, and the gate runs once over all releases (``dashboard.gate.evaluate_gates``), so
the cost grows with the number of occurrences, not with releases × occurrences.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.diff import previous_releases
from dashboard.gate import FINISHED_SCAN_STATUSES, GateResult, evaluate_gates, release_digest
from dashboard.occurrences import SEVERITIES, SEVERITY_UNSPECIFIED, Occurrences
from dashboard.policy import Policy
from dashboard.resources import service_of

# vulns_<severity> column per effective severity, most severe first.
VULNERABILITY_COLUMNS: dict[str, str] = {
    "CRITICAL": "vulns_critical",
    "HIGH": "vulns_high",
    "MEDIUM": "vulns_medium",
    "LOW": "vulns_low",
    "MINIMAL": "vulns_minimal",
    SEVERITY_UNSPECIFIED: "vulns_unspecified",
}
RELEASE_COLUMNS: tuple[str, ...] = (
    "service", "resource_uri", "digest", "source_repo", "source_revision", "build_time", "builder",
    "scan_status", "last_scan_time", *VULNERABILITY_COLUMNS.values(), "vulns_fixable",
    "attestations_required", "attestations_present", "attestations_verified", "deployments",
    "running_in", "last_deployed", "allowed", "failed_checks", "gate_reasons", "previous",
)
"""Columns of :func:`release_table`, in order."""

# Rank used to pick a vulnerability's severity across the packages it affects: a known severity
# outranks an unspecified one.
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_TIME_COLUMNS = ("build_time", "last_scan_time", "last_deployed")
_LIST_COLUMNS = ("deployments", "running_in", "failed_checks", "gate_reasons")
_COUNT_COLUMNS = (*VULNERABILITY_COLUMNS.values(), "vulns_fixable", "attestations_required",
                  "attestations_present", "attestations_verified")


def release_table(occurrences: Occurrences, policy: Policy, *,
                  source_error: str | None = None) -> pd.DataFrame:
    """One row per release found in ``occurrences.all``; columns are :data:`RELEASE_COLUMNS`.

    Rows come by service (alphabetically), newest build first within a service, releases without a
    build time last.

    - ``build_time``: end of the build (its start when no end is recorded), ``builder``: the SLSA
      builder id when provenance names one, else the build's creator. With several BUILD
      occurrences, each build column takes the first value recorded.
    - ``scan_status``: ``FINISHED_SUCCESS`` (or ``COMPLETE``) when any scan finished, else the
      latest DISCOVERY status; None without a DISCOVERY occurrence.
    - ``vulns_<severity>``: distinct vulnerabilities (by CVE id, as the gate counts them), each at
      its highest effective severity over the packages it affects; ``vulns_fixable``: how many of
      them have a fix for at least one affected package.
    - ``attestations_present``: required notes with an ATTESTATION occurrence;
      ``attestations_verified``: required notes whose attestation verified with the note's
      ``[[gate.attestor]]`` keys (a note without an attestor is never counted as verified).
    - ``deployments``: ``{"cluster", "address", "deploy_time", "undeploy_time", "platform"}`` dicts,
      oldest first (missing times are None); ``running_in``: clusters (or addresses) of the
      deployments without an undeploy time; ``last_deployed``: latest deploy time.
    - ``allowed``, ``failed_checks`` (check names) and ``gate_reasons`` (their details) come from
      the gate; ``source_error`` denies every release, as it does in the gate.
    - ``previous``: the service's release before this one (see :func:`dashboard.diff.previous_releases`).
    """
    uris = _release_uris(occurrences.all)
    verdicts = evaluate_gates(occurrences, policy, uris, source_error=source_error)
    table = pd.DataFrame(index=pd.Index(uris, name="resource_uri", dtype=object))
    table["service"] = [service_of(uri) for uri in uris]
    table["digest"] = [release_digest(uri) for uri in uris]
    table = table.join(_build_facts(occurrences.builds))
    table = table.join(_scan_facts(occurrences.discoveries))
    table = table.join(_vulnerability_counts(occurrences.vulnerabilities))
    table["attestations_required"] = len(policy.required_attestations)
    table = table.join(_attestations_present(occurrences.attestations, policy))
    table["attestations_verified"] = [_verified_notes(verdicts[uri], policy) for uri in uris]
    table = table.join(_deployment_facts(occurrences.deployments))
    table["allowed"] = [verdicts[uri].allowed for uri in uris]
    table["failed_checks"] = [[check.name for check in verdicts[uri].checks if not check.passed]
                              for uri in uris]
    table["gate_reasons"] = [verdicts[uri].reasons for uri in uris]
    previous = previous_releases(occurrences)
    table["previous"] = [previous.get(uri) for uri in uris]
    table = _with_schema(table.reset_index())
    table = table.sort_values(["service", "build_time"], ascending=[True, False],
                              na_position="last", kind="stable")
    return table[list(RELEASE_COLUMNS)].reset_index(drop=True)


def _with_schema(table: pd.DataFrame) -> pd.DataFrame:
    """Every release column with a fixed dtype, so that an empty table has the same schema.

    Text stays ``object`` so that missing text is None (pandas 3's ``str`` dtype would make it NaN).
    """
    columns: dict[str, pd.Series] = {}
    for column in RELEASE_COLUMNS:
        values = table[column]
        if column in _COUNT_COLUMNS:
            columns[column] = values.fillna(0).astype("int64")
        elif column in _TIME_COLUMNS:
            columns[column] = pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
        elif column in _LIST_COLUMNS:
            columns[column] = pd.Series([value if isinstance(value, list) else [] for value in values],
                                        index=table.index, dtype=object)
        elif column == "allowed":
            columns[column] = values.astype(bool)
        else:
            columns[column] = pd.Series([None if pd.isna(value) else value for value in values],
                                        index=table.index, dtype=object)
    return pd.DataFrame(columns, index=table.index)


def _release_uris(all_frame: pd.DataFrame) -> list[str]:
    uris = all_frame["resource_uri"] if "resource_uri" in all_frame.columns else []
    return [uri for uri in pd.unique(pd.Series(uris, dtype=object).dropna()) if isinstance(uri, str)]


def _first_by_resource(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The first non-missing value of each column per resource_uri."""
    return frame[["resource_uri", *columns]].groupby("resource_uri", sort=False).first()


def _build_facts(builds: pd.DataFrame) -> pd.DataFrame:
    columns = ["source_repo", "source_revision", "build_end", "build_start",
               "provenance_builder_id", "builder"]
    first = _first_by_resource(builds, columns)
    return pd.DataFrame({
        "source_repo": first["source_repo"],
        "source_revision": first["source_revision"],
        "build_time": first["build_end"].fillna(first["build_start"]),
        "builder": first["provenance_builder_id"].fillna(first["builder"]),
    }, index=first.index)


def _scan_facts(discoveries: pd.DataFrame) -> pd.DataFrame:
    scans = discoveries[["resource_uri", "analysis_status", "last_scan_time", "create_time"]].copy()
    scans["finished"] = scans["analysis_status"].isin(FINISHED_SCAN_STATUSES)
    # The row kept per release is a finished scan if there is one, else the latest scan.
    scans = scans.sort_values(["finished", "last_scan_time", "create_time"], na_position="first",
                              kind="stable")
    latest = scans.drop_duplicates("resource_uri", keep="last").set_index("resource_uri")
    return latest[["analysis_status", "last_scan_time"]].rename(
        columns={"analysis_status": "scan_status"})


def _vulnerability_counts(vulnerabilities: pd.DataFrame) -> pd.DataFrame:
    identity = (vulnerabilities["cve"].fillna(vulnerabilities["note_name"])
                .fillna(vulnerabilities["occurrence"]).fillna("unidentified"))
    rows = pd.DataFrame({
        "resource_uri": vulnerabilities["resource_uri"],
        "identity": identity,
        "rank": vulnerabilities["effective_severity"].map(_SEVERITY_RANK).fillna(0).astype("int64"),
        "fixable": vulnerabilities["fix_available"].astype(bool),
    })
    per_vulnerability = rows.groupby(["resource_uri", "identity"], sort=False).agg(
        rank=("rank", "max"), fixable=("fixable", "any")).reset_index()
    counts = per_vulnerability.groupby(["resource_uri", "rank"]).size().unstack(fill_value=0)
    result = pd.DataFrame(index=counts.index)
    for severity, column in VULNERABILITY_COLUMNS.items():
        rank = _SEVERITY_RANK[severity]
        result[column] = counts[rank] if rank in counts.columns else 0
    result["vulns_fixable"] = per_vulnerability.groupby("resource_uri")["fixable"].sum()
    return result


def _attestations_present(attestations: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    required = attestations[attestations["note_name"].isin(policy.required_attestations)]
    present = required.groupby("resource_uri")["note_name"].nunique()
    return present.rename("attestations_present").to_frame()


def _verified_notes(verdict: GateResult, policy: Policy) -> int:
    attested_notes = {attestor.note for attestor in policy.attestors}
    return sum(1 for check in verdict.checks
               if check.kind == "attestation" and check.passed and check.subject in attested_notes)


def _deployment_facts(deployments: pd.DataFrame) -> pd.DataFrame:
    ordered = deployments.sort_values(["deploy_time"], na_position="first", kind="stable")
    by_release: dict[str, list[dict[str, Any]]] = {}
    for record in ordered[["resource_uri", "cluster", "address", "deploy_time", "undeploy_time",
                           "platform"]].to_dict("records"):
        by_release.setdefault(record.pop("resource_uri"), []).append({
            key: None if value is pd.NaT else value for key, value in record.items()
        })
    by_release.pop(None, None)
    uris = list(by_release)
    return pd.DataFrame({
        "deployments": [by_release[uri] for uri in uris],
        "running_in": [sorted({entry["cluster"] or entry["address"] or "unknown"
                               for entry in by_release[uri] if entry["undeploy_time"] is None})
                       for uri in uris],
        "last_deployed": [max((entry["deploy_time"] for entry in by_release[uri]
                               if entry["deploy_time"] is not None), default=pd.NaT)
                          for uri in uris],
    }, index=pd.Index(uris, name="resource_uri", dtype=object))
