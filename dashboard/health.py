"""The health judge: measured signals in, one verdict per (node, component) out, with its reasons.

Judged by work, not by resources: a component's verdict is the worst level its work signals (and
its ``up``) reach; CPU, memory, disk and network ride along as context and never decide. Truthful by
construction: a component expected on a known node with no series at all is ``unknown``; ``up == 0``
is ``unhealthy``; ``healthy`` needs at least one work signal with data besides ``up``; a signal the
source warned about may show a problem but never counts as evidence of health.

Plain Python over pandas, no streamlit and no HTTP: the app and the CLI both call :func:`judge`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

from dashboard.catalog import UP_RULE, Catalog, Signal, beyond_top_bucket
from dashboard.sources.base import LABEL_COLUMNS, HealthSource, Observations
from dashboard.verdicts import NO_DATA, Reason, Verdict, listing_order

VERDICT_COLUMNS = [
    "cluster", "node", "component", "scope", "verdict", "reasons", "work", "resources", "no_data",
]


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: when, from where, and the verdict frame (one row per node and component)."""

    at: datetime
    source: str
    cluster: str | None
    verdicts: pd.DataFrame

    def worst(self) -> Verdict | None:
        """The worst verdict, or None when nothing was judged."""
        return Verdict.worst(self.verdicts["verdict"])


def evaluate(source: HealthSource, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Evaluation:
    """Measure with ``source`` and judge: the one entry point shared by the app and the CLI."""
    observations = source.observe(catalog, at=at, cluster=cluster)
    return Evaluation(at, observations.source, cluster, judge(observations, catalog))


def judge(observations: Observations, catalog: Catalog) -> pd.DataFrame:
    """Verdicts for every expected (node, component), plus the cluster-wide DNS roll-up."""
    # Labels as objects: iterating a pandas string column costs far more per element.
    frame = observations.frame.astype({column: object for column in LABEL_COLUMNS})
    labelled = zip(frame["cluster"], frame["node"], frame["component"], frame["signal"], frame["scope"],
                   frame["value"].tolist())
    values = {
        (cluster, node if scope == "node" else None, component, signal): value
        for cluster, node, component, signal, scope, value in labelled
    }
    doubts: dict[tuple[str, str], str] = {}
    for warning in observations.warnings:
        doubts.setdefault((warning.component, warning.signal), warning.message)
    signals_by_component: dict[str, list[Signal]] = {}
    for sig in catalog.signals:
        signals_by_component.setdefault(sig.component, []).append(sig)

    rows = []
    for cluster, node, component, scope in _expected_rows(frame, catalog):
        rows.append(
            _judge_one(
                cluster, node, component, scope,
                signals_by_component.get(component, []),
                signals_by_component.get("node", []) if scope == "node" else [],
                values, doubts, catalog,
            )
        )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS, dtype=object)


def _expected_rows(frame: pd.DataFrame, catalog: Catalog) -> list[tuple[str, str | None, str, str]]:
    """Which (cluster, node, component, scope) must have a verdict, whether or not it has data: where
    the catalog expects each component (``Catalog.expected_on``, ``Catalog.rolls_up``)."""
    per_node = frame[frame["scope"] == "node"]
    inventory = per_node[per_node["component"] == "inventory"]
    expected = []
    for component, hosts in catalog.expected_on:
        if component not in catalog.components:
            continue
        listed = inventory[inventory["signal"] == hosts]
        alike = [c for c, h in catalog.expected_on if h == hosts]  # components expected on the same nodes
        measured = per_node[per_node["component"].isin(alike)]
        pairs = set(zip(listed["cluster"], listed["node"])) | set(zip(measured["cluster"], measured["node"]))
        expected.extend((cluster, node, component, "node") for cluster, node in pairs)
        if catalog.rolls_up(component):
            rolled = frame.loc[(frame["scope"] == "cluster") & (frame["component"] == component), "cluster"]
            clusters = {cluster for cluster, _ in pairs} | set(rolled)
            expected.extend((cluster, None, component, "cluster") for cluster in clusters)
    return sorted(expected, key=lambda r: (r[0], r[1] is not None, r[1] or "", r[2]))


def _judge_one(
    cluster: str,
    node: str | None,
    component: str,
    scope: str,
    component_signals: list[Signal],
    node_signals: list[Signal],
    values: dict,
    doubts: dict[tuple[str, str], str],
    catalog: Catalog,
) -> dict:
    reasons: list[Reason] = []
    work: dict[str, float | None] = {}
    resources: dict[str, float | None] = {}
    no_data: list[str] = []
    has_any_series = False
    has_work_evidence = False
    up_invalid = False
    worst_level = Verdict.HEALTHY

    for sig in component_signals:
        if scope == "cluster" and not sig.rollup:
            continue
        sent = values.get((cluster, node, component, sig.name))
        if sent is not None:
            has_any_series = True
        value = sent if sent is None or sig.valid(sent) else None
        if sig.kind == "resource":
            resources[f"{component}_{sig.name}"] = value
            continue
        if sig.kind == "work":
            work[sig.name] = value
        if value is None:
            no_data.append(sig.name)
            if sent is None:
                reasons.append(_no_data_reason(sig, catalog, component))
            else:
                reasons.append(_invalid_reason(sig, sent))
                up_invalid = up_invalid or sig.kind == "up"
            continue
        beyond = values.get((cluster, node, component, beyond_top_bucket(sig.name))) is not None
        level, reason = _assess(sig, value, catalog.window, beyond=beyond)
        if beyond and level == Verdict.HEALTHY:
            # Only a lower bound, under the threshold: the real quantile may be above it.
            no_data.append(sig.name)
            reasons.append(replace(reason, level=NO_DATA))
            continue
        doubt = doubts.get((component, sig.name))
        if doubt and level == Verdict.HEALTHY:
            no_data.append(sig.name)
            reasons.append(replace(reason, level=NO_DATA, text=f"{sig.name}: partial data ({doubt})"))
            continue
        if doubt:
            reason = replace(reason, text=f"{reason.text} (partial data: {doubt})")
        reasons.append(reason)
        worst_level = max(worst_level, level, key=lambda verdict: verdict.rank)
        if sig.kind == "work":
            has_work_evidence = True

    for sig in node_signals:
        sent = values.get((cluster, node, "node", sig.name))
        resources[f"node_{sig.name}"] = sent if sent is None or sig.valid(sent) else None

    if worst_level != Verdict.HEALTHY:
        verdict = worst_level
    elif up_invalid:
        verdict = Verdict.UNKNOWN  # whether the target is up at all is not known: its work cannot vouch for it
    elif not has_any_series:
        verdict = Verdict.UNKNOWN
        reasons.insert(0, Reason.missing(None, f"no series at all for {component} on this node"))
    elif not has_work_evidence:
        verdict = Verdict.UNKNOWN
        reasons.insert(0, Reason.missing(None, "no work signal had data besides up"))
    else:
        verdict = Verdict.HEALTHY
    return {
        "cluster": cluster,
        "node": node,
        "component": component,
        "scope": scope,
        "verdict": verdict,
        "reasons": listing_order(reasons),
        "work": work,
        "resources": resources,
        "no_data": no_data,
    }


def explain(row: Mapping) -> str:
    """One line saying why a verdict row got its verdict: the deciding reasons, or what was checked.

    ``row`` is a verdict row of :func:`judge` or of the CLI's JSON: its reasons are read by key,
    which a :class:`~dashboard.verdicts.Reason` and its JSON object both answer.
    """
    verdict = Verdict(row["verdict"])
    if verdict == Verdict.HEALTHY:
        checked = [r for r in row["reasons"] if r["level"] == Verdict.HEALTHY and r["signal"] != "up"]
        return f"{len(checked)} work signals within thresholds"
    decisive = [r for r in row["reasons"] if r["level"] in (verdict, NO_DATA)]
    if verdict != Verdict.UNKNOWN:
        decisive = [r for r in decisive if r["level"] == verdict]
    return "; ".join(r["text"] for r in decisive[:3])


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """A flat frame for people: one row per verdict with its explanation and resource context."""
    records = verdicts.to_dict(orient="records")
    return pd.DataFrame(
        {
            "cluster": [r["cluster"] for r in records],
            "node": [r["node"] or "(cluster)" for r in records],
            "component": [r["component"] for r in records],
            "verdict": [r["verdict"] for r in records],
            "why": [explain(r) for r in records],
            "node CPU busy": [r["resources"].get("node_cpu_busy_ratio") for r in records],
            "node memory used": [r["resources"].get("node_memory_used_ratio") for r in records],
        },
        columns=["cluster", "node", "component", "verdict", "why", "node CPU busy", "node memory used"],
    )


_SHOWN_OP = {">=": "≥", ">": ">", "<": "<", "<=": "≤"}
_BELOW = {">=": "<", ">": "<="}


def _assess(sig: Signal, value: float, window: str, *, beyond: bool = False) -> tuple[Verdict, Reason]:
    """The level ``value`` reaches, and the reason: the value as people read it, with its window.

    A count of events (``sig.events``) is judged and shown in whole events: ``increase()``
    extrapolates, so 0.5 means at least one event. ``beyond``: the quantile fell in the +Inf bucket,
    so ``value`` (the top finite bound) is only a lower bound.
    """
    if sig.kind == "up":
        level = UP_RULE.level(value)
        text = "target up" if level == Verdict.HEALTHY else "target down (up = 0)"
        return level, Reason(
            signal=sig.name, level=level, value=value, text=text, threshold=UP_RULE.healthy_at, degraded_at=None,
            unhealthy_at=None, op="<", unit=sig.unit, source=UP_RULE.source, window=None,
            beyond_top_bucket=False,
        )
    thresholds = sig.thresholds
    assert thresholds is not None, f"work signal {sig.name} needs thresholds"
    if sig.events:
        value = 0 if value <= 0 else max(1, math.floor(value))
    level = thresholds.level(value)
    threshold = thresholds.unhealthy if level == Verdict.UNHEALTHY else thresholds.degraded
    comparison = _SHOWN_OP[thresholds.op if level != Verdict.HEALTHY else _BELOW[thresholds.op]]
    limit = f"{comparison} {format_value(threshold, sig.unit)}"
    if sig.events:
        singular, plural = sig.events
        if value == 0:
            text = f"{sig.name}: no {plural} in the last {window}"
        else:
            text = f"{sig.name}: at least {value} {singular if value == 1 else plural} in the last {window}"
        if not (thresholds.op == ">" and threshold == 0):  # "any event counts" needs no threshold
            text += f" ({limit})"
    elif beyond:
        text = (
            f"{sig.name} ≥ {format_value(value, sig.unit)} over {window} (beyond the histogram's top bucket)"
            + (f", threshold {limit}" if level != Verdict.HEALTHY else f": cannot tell whether {limit}")
        )
    else:
        over = f" over {window}" if sig.windowed else ""
        text = f"{sig.name} = {format_value(value, sig.unit)}{over} {limit}"
    return level, Reason(
        signal=sig.name, level=level, value=value, text=text, threshold=threshold,
        degraded_at=thresholds.degraded, unhealthy_at=thresholds.unhealthy, op=thresholds.op, unit=sig.unit,
        source=thresholds.source, window=window if sig.windowed else None, beyond_top_bucket=beyond,
    )


def _no_data_reason(sig: Signal, catalog: Catalog, component: str) -> Reason:
    why = (
        f"not collected by the {catalog.preset} preset"
        if sig.name in catalog.known_absent(component)
        else "no series"
    )
    return Reason.missing(sig.name, f"{sig.name}: no data ({why})")


def _invalid_reason(sig: Signal, sent: float) -> Reason:
    """A value outside the signal's domain: no data, and the reason says what the source sent."""
    if math.isnan(sent):
        shown = "NaN"
    elif math.isinf(sent):
        shown = "+Inf" if sent > 0 else "-Inf"
    else:
        allowed = {"bool": "not 0 or 1", "ratio": "outside [0, 1]", "non-negative": "below 0"}[sig.domain]
        shown = f"{sent:g}, {allowed}"
    return Reason.missing(sig.name, f"{sig.name}: source sent an invalid value ({shown}), counted as no data")


def format_value(value: float | None, unit: str) -> str:
    """A measured value for people: ratios as percent, seconds with a unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    if math.isinf(value):
        return "∞"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "seconds":
        return f"{value:.3g} s"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "bytes/s":
        return f"{value / 2**20:.2f} MiB/s"
    if unit == "events":
        return f"{value:g}"
    return f"{value:.3g}"
