"""Release impact: what one deploy did to the cluster it went to, in the manner of Kayenta.

The cluster's health over a window before the deploy is compared with the same window after it:

- verdict counts of the node components at the last step before the deploy and at the end of the
  after-window (capped at now), and every (node, component) that left ``healthy``;
- per component and work signal, the cluster-wide series before against after: a one-sided
  Mann-Whitney U test for a rise (every judged work signal is worse when higher), the effect size
  (median after / median before, and the absolute change) and n on each side.

The verdict, per component and overall, is stated with its numbers:

- **Fail**: a component went from healthy to unhealthy, or a work signal rose significantly
  (p < alpha) by more than its floor (an error ratio by at least 0.5 percentage points; a latency
  by at least 50 % and past its degraded threshold; a count past its degraded threshold);
- **Marginal**: a component went to degraded, or a significant rise stayed under its floor (a rise
  under a tenth of its floor, ``noise_share``, is no rise at all);
- **Inconclusive**: a window has fewer than ``min_samples`` samples, the after-window is not over,
  the source had no data, or a component went from healthy to unknown (losing the evidence is not
  evidence of health);
- **Pass** otherwise.

Another release deployed into the same cluster within the window confounds the comparison: the
verdict stands and names the other release.

Plain Python over pandas, fed by the timeline's frames; no source is read here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from dashboard.catalog import Catalog, Signal
from dashboard.health import format_value
from dashboard.verdicts import Verdict

FAIL, MARGINAL, INCONCLUSIVE, PASS = "Fail", "Marginal", "Inconclusive", "Pass"
IMPACT_RANK = {PASS: 0, INCONCLUSIVE: 1, MARGINAL: 2, FAIL: 3}
# The JSON key order of the before/after counts (a contract), not the verdicts' rank order.
COUNTED_VERDICTS = (Verdict.HEALTHY, Verdict.DEGRADED, Verdict.UNHEALTHY, Verdict.UNKNOWN)


@dataclass(frozen=True)
class ImpactRules:
    """How much of a rise counts, and how much evidence a verdict needs."""

    window: timedelta = timedelta(minutes=30)
    alpha: float = 0.01
    min_samples: int = 10
    error_ratio_points: float = 0.005  # an error ratio must rise by at least this much (0.5 pp)
    latency_increase: float = 0.5  # a latency must rise by at least this share (50 %)
    # A significant rise under this share of its floor (0.05 pp, 5 %) is no regression at all: a
    # steady series shifts "significantly" by a hair, and a release manager must not chase it.
    noise_share: float = 0.1


def release_impact(
    *,
    cluster: str,
    deploy_time: datetime,
    timeline: pd.DataFrame,
    series: pd.DataFrame,
    catalog: Catalog,
    now: datetime,
    rules: ImpactRules = ImpactRules(),
    other_deploys: pd.DataFrame | None = None,
    resource_uri: str | None = None,
    source_error: str | None = None,
) -> dict:
    """The impact of one deploy into ``cluster`` at ``deploy_time``.

    ``timeline`` has a verdict per (time, cluster, node, component) (columns ``time, cluster,
    node, component, scope, verdict, signal``) and ``series`` the cluster-wide work signals
    (``time, cluster, component, signal, value``), both covering the two windows. ``other_deploys``
    are deploy markers (``time, cluster, resource_uri``) that may confound this one.
    """
    deploy = pd.Timestamp(deploy_time)
    window = pd.Timedelta(rules.window)
    after_end = min(deploy + window, pd.Timestamp(now))
    after_over = deploy + window <= pd.Timestamp(now)
    before_snapshot, after_snapshot = compared_verdicts(timeline, cluster=cluster, deploy_time=deploy_time, now=now,
                                                        rules=rules)
    transitions = _transitions(before_snapshot, after_snapshot)
    signals = [
        _signal_impact(sig, series, cluster, deploy, window, after_end, rules)
        for sig in catalog.signals
        if sig.kind == "work"
    ]
    components = sorted({sig.component for sig in catalog.signals if sig.kind == "work"})
    per_component = {
        component: _component_verdict(
            [s for s in signals if s["component"] == component],
            [t for t in transitions if t["component"] == component],
        )
        for component in components
    }
    problems: list[str] = []
    if source_error:
        problems.append(f"the source could not be read ({source_error})")
    elif not after_over:
        minutes = (pd.Timestamp(now) - deploy) / pd.Timedelta(minutes=1)
        problems.append(
            f"the after-window is not over ({max(minutes, 0):.0f} of {window / pd.Timedelta(minutes=1):.0f} min)"
        )
    elif before_snapshot.empty or after_snapshot.empty:
        problems.append("no verdicts " + ("before" if before_snapshot.empty else "after") + " the deploy")
    if problems:
        per_component = {component: INCONCLUSIVE for component in per_component}
    verdict = max(per_component.values(), key=IMPACT_RANK.__getitem__, default=INCONCLUSIVE)
    confounded_by = _confounders(other_deploys, cluster, deploy, window, resource_uri)
    return {
        "verdict": verdict,
        "summary": _summary(verdict, problems, transitions, signals, confounded_by),
        "window_s": int(window.total_seconds()),
        "before": _counts(before_snapshot),
        "after": _counts(after_snapshot),
        "components": per_component,
        "transitions": transitions,
        "signals": signals,
        "confounded_by": confounded_by,
    }


def compared_verdicts(timeline: pd.DataFrame, *, cluster: str, deploy_time: datetime, now: datetime,
                      rules: ImpactRules = ImpactRules()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The node verdicts an impact compares: the cluster's at the last step of the window before the
    deploy, and at the last step of the after-window (capped at now); the rest of the timeline does
    not count."""
    deploy = pd.Timestamp(deploy_time)
    window = pd.Timedelta(rules.window)
    after_end = min(deploy + window, pd.Timestamp(now))
    nodes = timeline[(timeline["cluster"] == cluster) & (timeline["scope"] == "node")]
    return _snapshot(nodes, deploy - window, deploy), _snapshot(nodes, deploy + pd.Timedelta(microseconds=1), after_end)


def worst_impact(verdicts: Iterable[str]) -> str | None:
    """The worst of several impact verdicts (Fail > Marginal > Inconclusive > Pass), or None."""
    return max(verdicts, key=IMPACT_RANK.__getitem__, default=None)


def _snapshot(nodes: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The verdict rows at the last step in ``[start, end]``."""
    inside = nodes[(nodes["time"] >= start) & (nodes["time"] <= end)]
    if inside.empty:
        return inside
    return inside[inside["time"] == inside["time"].max()]


def _counts(snapshot: pd.DataFrame) -> dict[str, int]:
    counts = snapshot["verdict"].astype(str).value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in COUNTED_VERDICTS}


def _transitions(before: pd.DataFrame, after: pd.DataFrame) -> list[dict]:
    joined = before[["node", "component", "verdict"]].merge(
        after[["node", "component", "verdict", "signal"]], on=["node", "component"], suffixes=("_from", "_to")
    )
    left = joined[(joined["verdict_from"] == Verdict.HEALTHY) & (joined["verdict_to"] != Verdict.HEALTHY)]
    return [
        {"node": row.node, "component": row.component, "from": row.verdict_from, "to": row.verdict_to,
         "signal": row.signal if isinstance(row.signal, str) else None}
        for row in left.sort_values(["component", "node"]).itertuples(index=False)
    ]


def _signal_impact(
    sig: Signal,
    series: pd.DataFrame,
    cluster: str,
    deploy: pd.Timestamp,
    window: pd.Timedelta,
    after_end: pd.Timestamp,
    rules: ImpactRules,
) -> dict:
    mine = series[(series["cluster"] == cluster) & (series["component"] == sig.component) & (series["signal"] == sig.name)]
    values = pd.to_numeric(mine["value"], errors="coerce")
    finite = values.abs() < math.inf  # NaN compares False too
    before = values[finite & (mine["time"] >= deploy - window) & (mine["time"] < deploy)].to_numpy(float)
    after = values[finite & (mine["time"] > deploy) & (mine["time"] <= after_end)].to_numpy(float)
    result = {
        "component": sig.component, "signal": sig.name, "unit": sig.unit,
        "before": None, "after": None, "effect": None, "change": None, "p": None,
        "n_before": len(before), "n_after": len(after), "verdict": INCONCLUSIVE,
    }
    if len(before) < rules.min_samples or len(after) < rules.min_samples:
        return result
    median_before, median_after = float(pd.Series(before).median()), float(pd.Series(after).median())
    if (before == before[0]).all() and (after == before[0]).all():
        p = 1.0  # identical constant windows: no rise at all (the test's variance would be zero)
    else:
        # scipy.stats costs ~70 MiB and ~1 s to import: only the release commands and pages test
        # windows, so the CLI's other commands do not pay for it.
        from scipy.stats import mannwhitneyu

        p = float(mannwhitneyu(after, before, alternative="greater").pvalue)
    effect = median_after / median_before if median_before > 0 else (None if median_after > 0 else 1.0)
    change = median_after - median_before
    result.update(before=median_before, after=median_after, effect=effect, change=change, p=p)
    if p >= rules.alpha or not _material(sig, median_before, median_after, effect, rules):
        result["verdict"] = PASS
    elif _beyond_floor(sig, median_before, median_after, effect, rules):
        result["verdict"] = FAIL
    else:
        result["verdict"] = MARGINAL
    return result


def _material(sig: Signal, before: float, after: float, effect: float | None, rules: ImpactRules) -> bool:
    """Whether a rise is more than noise: at least ``noise_share`` of its floor."""
    if sig.unit == "ratio":
        return after - before >= rules.error_ratio_points * rules.noise_share
    if sig.unit == "seconds":
        return effect is None or effect >= 1 + rules.latency_increase * rules.noise_share
    return after > before


def _beyond_floor(sig: Signal, before: float, after: float, effect: float | None, rules: ImpactRules) -> bool:
    """Whether a significant rise is large enough to fail a release."""
    if sig.unit == "ratio":
        return after - before >= rules.error_ratio_points
    past_degraded = sig.thresholds is not None and sig.thresholds.level(after) != Verdict.HEALTHY
    if sig.unit == "seconds":
        grew = effect is None or effect >= 1 + rules.latency_increase
        return grew and past_degraded
    return past_degraded


def _component_verdict(signals: list[dict], transitions: list[dict]) -> str:
    to = {t["to"] for t in transitions}
    if Verdict.UNHEALTHY in to or any(s["verdict"] == FAIL for s in signals):
        return FAIL
    if Verdict.DEGRADED in to or any(s["verdict"] == MARGINAL for s in signals):
        return MARGINAL
    if Verdict.UNKNOWN in to or not any(s["verdict"] == PASS for s in signals):
        return INCONCLUSIVE
    return PASS


def _confounders(
    other_deploys: pd.DataFrame | None, cluster: str, deploy: pd.Timestamp, window: pd.Timedelta,
    resource_uri: str | None,
) -> list[str]:
    if other_deploys is None or other_deploys.empty:
        return []
    near = other_deploys[
        (other_deploys["cluster"] == cluster)
        & ((other_deploys["time"] - deploy).abs() <= window)
        & (other_deploys["resource_uri"] != resource_uri)
    ]
    return sorted({uri for uri in near["resource_uri"] if isinstance(uri, str)})


def _summary(verdict: str, problems: list[str], transitions: list[dict], signals: list[dict],
             confounded_by: list[str]) -> str:
    """One sentence a release manager can read: the verdict and the numbers that decided it."""
    parts: list[str] = []
    if problems:
        parts.append("; ".join(problems))
    by_change: dict[tuple[str, str], list[str]] = {}
    for t in transitions:
        by_change.setdefault((t["component"], t["to"]), []).append(t["node"])
    for (component, to), nodes in sorted(by_change.items()):
        shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
        parts.append(f"{component} went healthy → {to} on {shown}")
    for s in signals:
        if s["verdict"] in (FAIL, MARGINAL):
            ratio = f" (×{s['effect']:.2g})" if s["effect"] is not None else ""
            parts.append(
                f"{s['component']} {s['signal']} rose from {format_value(s['before'], s['unit'])} to "
                f"{format_value(s['after'], s['unit'])}{ratio}, p = {s['p']:.2g}, n = {s['n_before']}/{s['n_after']}"
                + ("" if s["verdict"] == FAIL else ", under the floor")
            )
    if not parts:
        judged = sum(s["verdict"] == PASS for s in signals)
        parts.append(
            f"no component left healthy and none of {judged} work signals rose significantly"
            if judged else "no work signal had enough samples on both sides"
        )
    sentence = f"{verdict}: " + "; ".join(parts)
    if confounded_by:
        sentence += f" (confounded: also deployed within the window: {', '.join(confounded_by)})"
    return sentence
