"""Release diff: what changed from the previous release of the same service.

The previous release is the one built last before this one; releases without a build time are
ordered by their first deploy instead. The diff names the CVEs added and fixed (with severity and
whether a fix exists), the attestation notes gained and lost, the gate verdict of each, and the
source revision range (previous → this).

Plain Python over the normalised occurrences; the gate is the same one ``gate`` runs.
"""

from __future__ import annotations

import pandas as pd

from dashboard.gate import GateResult, evaluate_gates
from dashboard.occurrences import Occurrences
from dashboard.policy import Policy
from dashboard.resources import service_of

_SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL", "SEVERITY_UNSPECIFIED")


def release_order(occurrences: Occurrences) -> pd.DataFrame:
    """Every release with ``service`` and the time that orders it (``order_time``: build end,
    else build start, else first deploy), oldest first within each service."""
    uris = [uri for uri in dict.fromkeys(occurrences.all["resource_uri"]) if isinstance(uri, str)]
    builds = occurrences.builds
    built = pd.to_datetime(builds["build_end"], utc=True).fillna(pd.to_datetime(builds["build_start"], utc=True))
    build_time = built.groupby(builds["resource_uri"]).min()
    deployments = occurrences.deployments
    first_deploy = pd.to_datetime(deployments["deploy_time"], utc=True).groupby(deployments["resource_uri"]).min()
    frame = pd.DataFrame({"resource_uri": uris, "service": [service_of(uri) for uri in uris]})
    built_at, deployed_at = build_time.dropna().to_dict(), first_deploy.dropna().to_dict()
    frame["order_time"] = pd.to_datetime(
        [built_at.get(uri, deployed_at.get(uri)) for uri in uris], utc=True
    ).astype("datetime64[ns, UTC]")
    return frame.sort_values(["service", "order_time"], na_position="first", kind="stable").reset_index(drop=True)


def previous_releases(occurrences: Occurrences) -> dict[str, str | None]:
    """For every release, the release of the same service ordered just before it (None for a
    service's first release, or one with no build or deploy time to order it by)."""
    order = release_order(occurrences)
    ordered = order.dropna(subset=["order_time"])
    before = ordered.groupby("service", sort=False)["resource_uri"].shift(1)
    found = dict(zip(ordered["resource_uri"], before))
    return {uri: (found.get(uri) if isinstance(found.get(uri), str) else None) for uri in order["resource_uri"]}


def previous_release(occurrences: Occurrences, resource_uri: str) -> str | None:
    """The release of the same service ordered just before ``resource_uri``, if any."""
    return previous_releases(occurrences).get(resource_uri)


def release_diff(
    occurrences: Occurrences,
    policy: Policy,
    resource_uri: str,
    *,
    gate_results: dict[str, GateResult] | None = None,
) -> dict | None:
    """The diff against the previous release, or None when there is none.

    ``{"resource", "cves_added": [{"cve", "severity", "fixable"}], "cves_fixed": [...],
    "attestations_gained": [note], "attestations_lost": [note], "gate": {"previous", "this"},
    "source_revisions": {"previous", "this"}}``
    """
    previous = previous_release(occurrences, resource_uri)
    if previous is None:
        return None
    gate_results = dict(gate_results or {})
    missing = [uri for uri in (previous, resource_uri) if uri not in gate_results]
    gate_results.update(evaluate_gates(occurrences, policy, missing) if missing else {})
    this_cves, previous_cves = _cves(occurrences, resource_uri), _cves(occurrences, previous)
    this_notes, previous_notes = _notes(occurrences, resource_uri), _notes(occurrences, previous)
    return {
        "resource": previous,
        "cves_added": [this_cves[cve] for cve in _by_severity(this_cves, set(this_cves) - set(previous_cves))],
        "cves_fixed": [previous_cves[cve] for cve in _by_severity(previous_cves, set(previous_cves) - set(this_cves))],
        "attestations_gained": sorted(this_notes - previous_notes),
        "attestations_lost": sorted(previous_notes - this_notes),
        "gate": {"previous": _word(gate_results[previous]), "this": _word(gate_results[resource_uri])},
        "source_revisions": {"previous": _revision(occurrences, previous), "this": _revision(occurrences, resource_uri)},
    }


def _cves(occurrences: Occurrences, resource_uri: str) -> dict[str, dict]:
    """Each CVE of a release at its highest effective severity, fixable when any package has a fix."""
    rows = occurrences.vulnerabilities[occurrences.vulnerabilities["resource_uri"] == resource_uri]
    found: dict[str, dict] = {}
    for row in rows.itertuples(index=False):
        cve = row.cve or row.note_name
        if not isinstance(cve, str):
            continue
        severity = row.effective_severity or row.severity or "SEVERITY_UNSPECIFIED"
        entry = found.setdefault(cve, {"cve": cve, "severity": severity, "fixable": False})
        if _rank(severity) < _rank(entry["severity"]):
            entry["severity"] = severity
        entry["fixable"] = entry["fixable"] or bool(row.fix_available)
    return found


def _rank(severity: str) -> int:
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else len(_SEVERITY_ORDER)


def _by_severity(cves: dict[str, dict], chosen: set[str]) -> list[str]:
    return sorted(chosen, key=lambda cve: (_rank(cves[cve]["severity"]), cve))


def _notes(occurrences: Occurrences, resource_uri: str) -> set[str]:
    attestations = occurrences.attestations
    return {note for note in attestations.loc[attestations["resource_uri"] == resource_uri, "note_name"]
            if isinstance(note, str)}


def _revision(occurrences: Occurrences, resource_uri: str) -> str | None:
    builds = occurrences.builds
    revisions = [r for r in builds.loc[builds["resource_uri"] == resource_uri, "source_revision"] if isinstance(r, str)]
    return revisions[0] if revisions else None


def _word(result: GateResult) -> str:
    return "allowed" if result.allowed else "denied"
