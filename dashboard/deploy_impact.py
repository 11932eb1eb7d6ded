"""What each deployment of a release did to its cluster: the health source read around the deploy,
then judged by :func:`dashboard.impact.release_impact`.

The one place where impact meets a source, shared by the ``release`` command and the Release page.
Per deployment it reads the verdict timeline and the cluster-wide work-signal series over the
before- and after-windows (one ``query_range`` per catalog query each, so the cost grows with
deployments, never with nodes). A deployment with no deploy time or no known cluster, or a source
that cannot be read, is Inconclusive with the reason; it is never dropped or passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from dashboard.catalog import Catalog
from dashboard.impact import INCONCLUSIVE, ImpactRules, release_impact
from dashboard.sources.base import HealthSource, SourceError
from dashboard.timeline import evaluate_range, signal_series

# Steps per window: enough samples for the Mann-Whitney test (at least ``min_samples`` a side).
STEPS_PER_WINDOW = 30
MIN_STEP = timedelta(seconds=15)


def impact_step(rules: ImpactRules) -> timedelta:
    """The step that gives each window :data:`STEPS_PER_WINDOW` samples (never under 15 s)."""
    return max(rules.window / STEPS_PER_WINDOW, MIN_STEP)


def deployment_impact(
    source: HealthSource,
    catalog: Catalog,
    deployment: dict,
    *,
    now: datetime,
    rules: ImpactRules = ImpactRules(),
    other_deploys: pd.DataFrame | None = None,
    resource_uri: str | None = None,
    source_error: str | None = None,
) -> dict:
    """The impact object of one deployment (``{"cluster", "deploy_time", …}`` as the release
    record lists them); ``source_error`` is a health-source failure already met (no read then)."""
    cluster, deploy_time = deployment.get("cluster"), deployment.get("deploy_time")
    if deploy_time is None or pd.isna(deploy_time):
        return _inconclusive(rules, "the deployment records no deploy time, so there is no before and after")
    if cluster is None:
        return _inconclusive(rules, "the deployment maps to no cluster the health source knows "
                                    f"(address {deployment.get('address')!r}; map it under [clusters.aliases])")
    deploy = pd.Timestamp(deploy_time).to_pydatetime()
    start, end = deploy - rules.window, min(deploy + rules.window, now)
    timeline = series = None
    if source_error is None and end > start:
        step = impact_step(rules)
        try:
            timeline = evaluate_range(source, catalog, start=start, end=end, step=step, cluster=cluster)
            series = signal_series(source, catalog, start=start, end=end, step=step, cluster=cluster)
        except SourceError as error:
            source_error = str(error)
    return release_impact(
        cluster=cluster, deploy_time=deploy, timeline=_or_empty(timeline, _TIMELINE_COLUMNS),
        series=_or_empty(series, _SERIES_COLUMNS), catalog=catalog, now=now, rules=rules,
        other_deploys=other_deploys, resource_uri=resource_uri, source_error=source_error,
    )


_TIMELINE_COLUMNS = ["time", "cluster", "node", "component", "scope", "verdict", "signal", "value"]
_SERIES_COLUMNS = ["time", "cluster", "component", "signal", "value"]


def _or_empty(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    return frame if frame is not None else pd.DataFrame(columns=columns)


def _inconclusive(rules: ImpactRules, why: str) -> dict:
    """An impact that could not be judged, in the shape of :func:`release_impact`'s."""
    empty = {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 0}
    return {
        "verdict": INCONCLUSIVE, "summary": f"Inconclusive: {why}.", "window_s": int(rules.window.total_seconds()),
        "before": dict(empty), "after": dict(empty), "components": {}, "transitions": [], "signals": [],
        "confounded_by": [],
    }
