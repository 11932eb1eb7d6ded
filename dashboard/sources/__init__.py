"""The only code that talks to the outside: Prometheus, Grafeas, and the embedded demo."""

from __future__ import annotations

from datetime import datetime, timezone

from dashboard.sources.base import HealthSource


def health_source(prometheus_settings, *, now: datetime | None = None) -> HealthSource:
    """The configured Prometheus, or the embedded demo (ending at ``now``) when none is configured."""
    if prometheus_settings is not None:
        from dashboard.sources.prometheus import PrometheusSource

        return PrometheusSource(prometheus_settings)
    from dashboard.sources.demo import DemoSource, demo_scenario

    return DemoSource(demo_scenario(now or datetime.now(timezone.utc)))
