"""Text and CSV renderings of the engine's results, shared by the CLI and the pages so that a gate
verdict or a release table reads the same on screen and in CI.

Remote strings (label values, note names, check details) pass through
:func:`dashboard.redaction.printable`, so a terminal escape in a label is shown, never obeyed.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

import pandas as pd

from dashboard.gate import GateResult
from dashboard.health import Evaluation, verdict_table
from dashboard.redaction import printable

LIST_SEPARATOR = "; "
RFC3339_UTC = "%Y-%m-%dT%H:%M:%SZ"
CSV_ROWS_AT_ONCE = 20_000


def rfc3339(moment: Any) -> str:
    """A time as RFC 3339 UTC (``2026-12-02T10:00:00Z``); empty for a missing one."""
    if moment is None or (not isinstance(moment, str) and pd.isna(moment)):
        return ""
    return pd.Timestamp(moment).tz_convert("UTC").strftime(RFC3339_UTC)


def gate_verdict_word(allowed: bool) -> str:
    """One word per verdict, the same in every output."""
    return "allowed" if allowed else "denied"


def gate_text(result: GateResult, *, not_found: str | None = None) -> str:
    """The gate's verdict for people: the verdict line, each failed check, the count passed.

    ``not_found`` replaces the list of checks when the release has no occurrences at all: every
    check would fail for the same reason, and the reason is the URI.
    """
    lines = [f"{gate_verdict_word(result.allowed).upper()}: {printable(result.resource)}"]
    if not_found is not None:
        lines.append(f"  {not_found}")
        return "\n".join(lines)
    lines += [f"  FAILED {printable(check.name)}: {printable(check.detail)}"
              for check in result.checks if not check.passed]
    passed = sum(check.passed for check in result.checks)
    lines.append(f"  {passed} of {len(result.checks)} checks passed")
    return "\n".join(lines)


def releases_text(table: pd.DataFrame) -> str:
    """The release table for people: one line per release, the full resource URI last."""
    if table.empty:
        return "no releases found"
    view = pd.DataFrame({
        "service": table["service"],
        "digest": table["digest"].fillna("").str.slice(0, 19),
        "revision": table["source_revision"].fillna("").astype(str).str.slice(0, 10),
        "built": _minutes(table["build_time"]),
        "scan": table["scan_status"].fillna("-"),
        "critical": table["vulns_critical"],
        "high": table["vulns_high"],
        "fixable": table["vulns_fixable"],
        "verified": [f"{v}/{r}" for v, r in zip(table["attestations_verified"], table["attestations_required"])],
        "deployed": _minutes(table["last_deployed"]),
        "gate": [gate_verdict_word(allowed) for allowed in table["allowed"]],
        "first failed check": [checks[0] if checks else "-" for checks in table["failed_checks"]],
        "impact": [impact or "-" for impact in table["impact"]] if "impact" in table else "-",
        "resource": table["resource_uri"],
    })
    for column in ("service", "first failed check", "resource", "scan"):
        view[column] = view[column].map(lambda text: printable(str(text)))
    return view.to_string(index=False, justify="left")


def releases_csv(table: pd.DataFrame) -> str:
    """Every release column as plain text cells: RFC 3339 UTC times, lists joined by ``; ``."""
    return pd.DataFrame({column: table[column].map(_csv_cell) for column in table.columns}).to_csv(index=False)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict):
        # A deployment: where and when, the two facts a spreadsheet reader filters by.
        where = value.get("cluster") or value.get("address") or ""
        return f"{where}@{rfc3339(value.get('deploy_time'))}" if value.get("deploy_time") else where
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(_csv_cell(item)) for item in value)
    if isinstance(value, pd.Timestamp):
        return rfc3339(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _minutes(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, utc=True).dt.strftime("%Y-%m-%d %H:%M").fillna("-")


TIMELINE_COLUMNS = ("time", "cluster", "node", "component", "verdict", "signal", "value")
INCIDENT_COLUMNS = ("cluster", "node", "component", "start", "end", "duration_s", "verdict", "signal", "peak",
                    "ongoing")


def timeline_records(timeline: pd.DataFrame) -> list[dict]:
    """The timeline's JSON rows: times in RFC 3339 UTC, no value as null, the DNS roll-up's node null."""
    return _records(timeline, TIMELINE_COLUMNS, times=("time",))


def write_timeline_csv(timeline: pd.DataFrame, out: TextIO) -> None:
    """``time,cluster,node,component,verdict,signal,value`` (the roll-up's node empty), written a
    block of rows at a time, so that a day of 500 nodes never sits in memory as records and text at once."""
    for first in range(0, max(len(timeline), 1), CSV_ROWS_AT_ONCE):
        block = timeline.iloc[first:first + CSV_ROWS_AT_ONCE]
        out.write(_csv(_records(block, TIMELINE_COLUMNS, times=("time",)), TIMELINE_COLUMNS, header=first == 0))


def incidents_records(found: pd.DataFrame) -> list[dict]:
    """One JSON row per incident, its times in RFC 3339 UTC."""
    return _records(found, INCIDENT_COLUMNS, times=("start", "end"))


def incidents_csv(found: pd.DataFrame) -> str:
    """``cluster,node,component,start,end,duration_s,verdict,signal,peak,ongoing``."""
    return _csv(incidents_records(found), INCIDENT_COLUMNS)


def _records(frame: pd.DataFrame, columns: tuple[str, ...], *, times: tuple[str, ...]) -> list[dict]:
    records = []
    for row in frame[list(columns)].itertuples(index=False):
        record = {}
        for column, value in zip(columns, row):
            if column in times:
                value = rfc3339(value)
            elif value is None or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
                value = None
            elif hasattr(value, "item"):  # a numpy scalar: JSON wants the Python one
                value = value.item()
            record[column] = value
        records.append(record)
    return records


def _csv(records: list[dict], columns: tuple[str, ...], *, header: bool = True) -> str:
    frame = pd.DataFrame(records, columns=list(columns), dtype=object)
    printed = frame.map(lambda value: printable(value) if isinstance(value, str) else value)
    return printed.to_csv(index=False, header=header)


def release_text(record: dict, gate_block: str) -> str:
    """The ``release`` command's record for people: provenance, vulnerabilities, attestations, the
    gate exactly as ``gate`` prints it (``gate_block``), each deployment's impact, the diff."""
    provenance = record["provenance"]
    lines = [f"release {printable(record['resource'])}", f"  service {printable(record['service'])}",
             f"  digest  {record['digest'] or '(none)'}", "", "provenance"]
    for label, key in (("builder", "builder"), ("source", "source_repo"), ("revision", "source_revision"),
                       ("built", "build_end")):
        lines.append(f"  {label:<9}{printable(str(provenance[key])) if provenance[key] else '-'}")
    if provenance["slsa"]:
        lines.append(f"  SLSA     {printable(str(provenance['slsa'].get('predicate_type')))}")
    by_severity: dict[str, int] = {}
    for vulnerability in record["vulnerabilities"]:
        by_severity[vulnerability["severity"]] = by_severity.get(vulnerability["severity"], 0) + 1
    fixable = sum(vulnerability["fixable"] for vulnerability in record["vulnerabilities"])
    lines += ["", f"vulnerabilities: {len(record['vulnerabilities'])} package issues"
              + (f" ({', '.join(f'{n} {s}' for s, n in by_severity.items())}; {fixable} fixable)" if by_severity else "")]
    lines += ["", "attestations"]
    lines += [f"  {'verified' if a['verified'] else 'present' if a['present'] else 'MISSING':<9}"
              f"{printable(a['note'])}: {printable(a['reason'])}" for a in record["attestations"]] or ["  none"]
    lines += ["", gate_block, "", "deployments"]
    if not record["deployments"]:
        lines.append("  never deployed")
    for deployment in record["deployments"]:
        where = deployment["cluster"] or f"unmapped ({printable(str(deployment['address']))})"
        lines.append(f"  {printable(where)} at {deployment['deploy_time'] or 'an unknown time'}"
                     + (f", undeployed {deployment['undeploy_time']}" if deployment["undeploy_time"] else ""))
        impact = deployment.get("impact")
        if impact:
            lines.append(f"    impact {impact['verdict']}: {printable(impact['summary'])}")
    previous = record["previous"]
    lines += ["", "against the previous release"]
    if previous is None:
        lines.append("  none: the first release of its service")
    else:
        lines.append(f"  previous {printable(previous['resource'])}")
        lines += [f"  CVE added {c['cve']} ({c['severity']}{', fixable' if c['fixable'] else ''})"
                  for c in previous["cves_added"]]
        lines += [f"  CVE fixed {c['cve']} ({c['severity']})" for c in previous["cves_fixed"]]
        lines += [f"  attestation gained {printable(n)}" for n in previous["attestations_gained"]]
        lines += [f"  attestation lost {printable(n)}" for n in previous["attestations_lost"]]
    return "\n".join(lines)


def evaluation_table(evaluation: Evaluation) -> str:
    """A plain-text table for people: one line per node and component, with the deciding reason."""
    table = verdict_table(evaluation.verdicts)
    header = ("CLUSTER", "NODE", "COMPONENT", "VERDICT", "WHY")
    lines = [header] + [
        tuple(printable(str(cell)) for cell in (row.cluster or "-", row.node, row.component, row.verdict, row.why))
        for row in table.itertuples(index=False)
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1]
        for line in lines
    ]
    counts = table["verdict"].value_counts()
    summary = f"{printable(evaluation.source)} at {evaluation.at.isoformat()}: " + (
        ", ".join(f"{count} {verdict}" for verdict, count in counts.items()) or "no node components found"
    )
    return "\n".join([*text, "", summary])
