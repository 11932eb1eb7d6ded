"""What each deployment of a release did to its cluster: the health source read around the deploy,
then judged by :func:`dashboard.impact.release_impact`.

The one place where impact meets a source, shared by the ``release`` command and the Release page.
Per deployment it reads the verdict timeline and the cluster-wide work-signal series over the
before- and after-windows (one ``query_range`` per catalog query each, so the cost grows with
deployments, never with nodes). A deployment with no deploy time or no known cluster, or a source
that cannot be read, is Inconclusive with the reason; it is never dropped or passed.

Said plainly: the samples of one window come from overlapping rate windows, so they are not
independent as the Mann-Whitney test assumes; p is a guide to how clear a shift is (as in Kayenta),
and the effect-size floors, not p alone, decide a Fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from dashboard.catalog import Catalog
from dashboard.impact import (
    COUNTED_VERDICTS, INCONCLUSIVE, ImpactRules, compared_verdicts, release_impact, worst_impact,
)
from dashboard.sources.base import HealthSource, SourceError
from dashboard.timeline import SERIES_COLUMNS, TIMELINE_COLUMNS, evaluate_range, signal_series

# Steps per window: enough samples for the Mann-Whitney test (at least ``min_samples`` a side).
STEPS_PER_WINDOW = 15
MIN_STEP = timedelta(seconds=15)


def impact_step(rules: ImpactRules) -> timedelta:
    """The step that gives each window :data:`STEPS_PER_WINDOW` samples (never under 15 s)."""
    return max(rules.window / STEPS_PER_WINDOW, MIN_STEP)


@dataclass(frozen=True)
class Around:
    """The cluster's health around one deploy: the node verdicts the impact compares (at the last
    step before the deploy and at the end of the after-window, :func:`compared_verdicts`) and the
    cluster-wide work series from ``window`` before to ``window`` after (capped at now), or the
    error that stopped the read. Only the compared steps of the timeline are kept: a page caches
    many reads, and at 2,000 nodes a whole hour of verdicts is some 190,000 rows."""

    cluster: str
    deploy_time: datetime
    start: datetime
    end: datetime
    timeline: pd.DataFrame
    series: pd.DataFrame
    error: str | None = None


def read_around(source: HealthSource, catalog: Catalog, cluster: str, deploy_time: datetime, *, now: datetime,
                rules: ImpactRules = ImpactRules()) -> Around:
    """Read the two windows around a deploy (one range read each for verdicts and for series), and
    keep the compared verdicts of the timeline."""
    start, end = deploy_time - rules.window, min(deploy_time + rules.window, now)
    timeline, series, error = pd.DataFrame(columns=TIMELINE_COLUMNS), pd.DataFrame(columns=SERIES_COLUMNS), None
    if end > start:
        step = impact_step(rules)
        try:
            judged = evaluate_range(source, catalog, start=start, end=end, step=step, cluster=cluster)
            timeline = pd.concat(compared_verdicts(judged, cluster=cluster, deploy_time=deploy_time, now=now,
                                                   rules=rules), ignore_index=True)
            series = signal_series(source, catalog, start=start, end=end, step=step, cluster=cluster)
        except SourceError as failure:
            error = str(failure)
    return Around(cluster, deploy_time, start, end, timeline, series, error)


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
    around: Around | None = None,
) -> dict:
    """The impact object of one deployment (``{"cluster", "deploy_time", …}`` as the release
    record lists them). ``source_error`` is a health-source failure already met (nothing is read
    then); ``around`` is a read already made (a page's cached one)."""
    cluster, deploy_time = deployment.get("cluster"), deployment.get("deploy_time")
    if deploy_time is None or pd.isna(deploy_time):
        return _inconclusive(rules, "the deployment records no deploy time, so there is no before and after")
    if cluster is None:
        return _inconclusive(rules, "the deployment maps to no cluster the health source knows "
                                    f"(address {deployment.get('address')!r}; map it under [clusters.aliases])")
    deploy = pd.Timestamp(deploy_time).to_pydatetime()
    if source_error is None and around is None:
        around = read_around(source, catalog, cluster, deploy, now=now, rules=rules)
    if around is not None and around.error:
        source_error = around.error
    return release_impact(
        cluster=cluster, deploy_time=deploy,
        timeline=around.timeline if around else pd.DataFrame(columns=TIMELINE_COLUMNS),
        series=around.series if around else pd.DataFrame(columns=SERIES_COLUMNS),
        catalog=catalog, now=now, rules=rules, other_deploys=other_deploys, resource_uri=resource_uri,
        source_error=source_error,
    )


def _inconclusive(rules: ImpactRules, why: str) -> dict:
    """An impact that could not be judged, in the shape of :func:`release_impact`'s."""
    empty = dict.fromkeys(COUNTED_VERDICTS, 0)
    return {
        "verdict": INCONCLUSIVE, "summary": f"Inconclusive: {why}.", "window_s": int(rules.window.total_seconds()),
        "before": dict(empty), "after": dict(empty), "components": {}, "transitions": [], "signals": [],
        "confounded_by": [],
    }


def impacts_by_release(
    source: HealthSource,
    catalog: Catalog,
    deployments: pd.DataFrame,
    *,
    now: datetime,
    rules: ImpactRules = ImpactRules(),
    source_error: str | None = None,
    read: Callable[[str, datetime], Around] | None = None,
) -> dict[str, str | None]:
    """The worst impact over each release's deployments (None for a release never deployed).

    ``deployments`` are deploy markers (:func:`dashboard.deployments.deployments_between`: ``time,
    cluster, resource_uri, address``), which also serve as each other's confounders. ``read`` reads
    the cluster around one deploy (cluster, deploy time); by default :func:`read_around` on
    ``source``, the app passes its cached read.
    """
    worst: dict[str, list[str]] = {}
    for row in deployments.itertuples(index=False):
        deployment = {"cluster": row.cluster, "deploy_time": row.time, "address": row.address}
        around = None
        if read is not None and source_error is None and row.cluster is not None and not pd.isna(row.time):
            around = read(row.cluster, pd.Timestamp(row.time).to_pydatetime())
        impact = deployment_impact(source, catalog, deployment, now=now, rules=rules, other_deploys=deployments,
                                   resource_uri=row.resource_uri, source_error=source_error, around=around)
        worst.setdefault(row.resource_uri, []).append(impact["verdict"])
    return {uri: worst_impact(verdicts) for uri, verdicts in worst.items()}
