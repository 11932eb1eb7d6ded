"""Impact of one deployment for the pages: the cached read around the deploy, judged by the engine
(dashboard.deploy_impact), with the health source's failure kept as the verdict's reason so the
supply-chain half of a page still renders."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from dashboard.deploy_impact import Around, deployment_impact
from dashboard.impact import ImpactRules
from dashboard.sources.base import SourceError
from dashboard.ui import data


def impact_of(deployment: dict, *, markers: pd.DataFrame | None, resource: str, now: datetime,
              rules: ImpactRules = ImpactRules()) -> tuple[dict, Around | None]:
    """``(impact, around)`` of ``deployment`` (``{"cluster", "deploy_time", "address"}``)."""
    settings = data.settings()
    judged = {"now": now, "rules": rules, "other_deploys": markers, "resource_uri": resource}
    if deployment.get("cluster") is None or deployment.get("deploy_time") is None:
        return deployment_impact(None, settings.catalog, deployment, **judged), None
    deploy_iso = pd.Timestamp(deployment["deploy_time"]).isoformat()
    try:
        around = data.around(data.health_key(), deployment["cluster"], deploy_iso,
                             int(rules.window.total_seconds())).value
    except SourceError as error:
        return deployment_impact(None, settings.catalog, deployment, source_error=str(error), **judged), None
    return deployment_impact(None, settings.catalog, deployment, around=around, **judged), around
