"""One release's whole record: provenance, vulnerabilities, attestations, the gate, where it was
deployed with what impact, and the diff against the previous release.

The shape is the ``release`` command's JSON contract (issue 10 §5); the Release page shows the same
record. Impact is computed by the caller (it needs the health source) and passed in as a function
of one deployment, so this module reads no source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import pandas as pd

from dashboard.deployments import map_deployments
from dashboard.diff import release_diff
from dashboard.gate import GateResult, evaluate_gate, release_digest
from dashboard.occurrences import Occurrences
from dashboard.policy import Policy
from dashboard.resources import service_of

# One deployment ({"cluster", "address", "deploy_time", "undeploy_time", "mapped_by"}) → its impact object.
ImpactFor = Callable[[dict], dict]


def release_record(
    resource_uri: str,
    occurrences: Occurrences,
    policy: Policy,
    *,
    gate: GateResult | None = None,
    impact_for: ImpactFor | None = None,
    aliases: Mapping[str, str] | None = None,
    known_clusters: Collection[str] | None = None,
) -> dict:
    """The record of ``resource_uri`` as the ``release`` command prints it in JSON.

    ``occurrences`` must hold this release's occurrences; for the diff they must hold the previous
    release's too (the whole service's listing). ``gate`` defaults to evaluating it here.
    """
    gate = gate or evaluate_gate(resource_uri, occurrences, policy)
    mine = {name: frame[frame["resource_uri"] == resource_uri] for name, frame in _frames(occurrences).items()}
    deployments = []
    for row in _deployments(mine["deployments"], aliases, known_clusters):
        if impact_for is not None:
            row["impact"] = impact_for(row)
        deployments.append(row)
    previous = release_diff(occurrences, policy, resource_uri, gate_results={resource_uri: gate})
    return _plain({
        "resource": resource_uri,
        "service": service_of(resource_uri),
        "digest": release_digest(resource_uri),
        "provenance": _provenance(mine["builds"]),
        "vulnerabilities": _vulnerabilities(mine["vulnerabilities"]),
        "attestations": _attestations(mine["attestations"], policy, gate),
        "gate": gate.to_json_dict(),
        "deployments": deployments,
        "previous": previous,
    })


def _frames(occurrences: Occurrences) -> dict[str, pd.DataFrame]:
    return {"builds": occurrences.builds, "vulnerabilities": occurrences.vulnerabilities,
            "attestations": occurrences.attestations, "deployments": occurrences.deployments}


def _provenance(builds: pd.DataFrame) -> dict:
    if builds.empty:
        return {"builder": None, "source_repo": None, "source_revision": None, "build_start": None,
                "build_end": None, "slsa": None}

    def first(column: str) -> Any:
        values = [value for value in builds[column] if not _missing(value)]
        return values[0] if values else None

    slsa = None
    if first("predicate_type") is not None:
        slsa = {"predicate_type": first("predicate_type"), "builder_id": first("provenance_builder_id"),
                "built_artifacts": first("built_artifacts")}
    return {
        "builder": first("provenance_builder_id") or first("builder") or first("creator"),
        "source_repo": first("source_repo"),
        "source_revision": first("source_revision"),
        "build_start": first("build_start"),
        "build_end": first("build_end"),
        "slsa": slsa,
    }


def _vulnerabilities(vulnerabilities: pd.DataFrame) -> list[dict]:
    rows = [
        {
            "cve": row.cve or row.note_name,
            "severity": row.effective_severity or row.severity,
            "fixable": bool(row.fix_available),
            "package": row.package,
            "fixed_version": row.fixed_version,
        }
        for row in vulnerabilities.itertuples(index=False)
    ]
    order = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "MINIMAL")
    return sorted(rows, key=lambda r: (order.index(r["severity"]) if r["severity"] in order else len(order),
                                       str(r["cve"]), str(r["package"])))


def _attestations(attestations: pd.DataFrame, policy: Policy, gate: GateResult) -> list[dict]:
    """Every required note (present or not) and every other note attested, with the gate's word."""
    present = {note for note in attestations["note_name"] if isinstance(note, str)}
    checks = {check.subject: check for check in gate.checks if check.kind == "attestation"}
    rows = []
    for note in policy.required_attestations:
        check = checks.get(note)
        verified = bool(check and check.passed and policy.attestor_for(note) is not None)
        rows.append({"note": note, "present": note in present, "verified": verified,
                     "reason": check.detail if check else "not checked"})
    for note in sorted(present - set(policy.required_attestations)):
        rows.append({"note": note, "present": True, "verified": False,
                     "reason": "not required by the policy, so its signatures were not verified"})
    return rows


def _deployments(deployments: pd.DataFrame, aliases, known_clusters) -> list[dict]:
    mapped = map_deployments(deployments, aliases=aliases, known_clusters=known_clusters)
    mapped = mapped.sort_values("deploy_time", na_position="last", kind="stable")
    return [
        {
            "cluster": row.cluster,
            "address": row.address,
            "deploy_time": None if pd.isna(row.deploy_time) else row.deploy_time,
            "undeploy_time": None if pd.isna(row.undeploy_time) else row.undeploy_time,
            "mapped_by": row.mapped_by,
        }
        for row in mapped.itertuples(index=False)
    ]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """JSON-ready: times as RFC 3339 UTC, NaN and NaT as None, containers recursively."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.tz_convert("UTC").isoformat().replace("+00:00", "Z")
    if _missing(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return None
    return value
