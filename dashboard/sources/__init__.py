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


def supply_chain_source(grafeas_settings, *, now: datetime | None = None):
    """The configured Grafeas, or the embedded demo's supply chain when none is configured.

    Either way the result has ``description`` and ``occurrences(resource_url=None) -> list[dict]``.
    """
    if grafeas_settings is not None:
        from dashboard.sources.grafeas import GrafeasSource

        return GrafeasSource(grafeas_settings)
    from dashboard.sources.demo_grafeas import DemoGrafeas

    return DemoGrafeas(now or datetime.now(timezone.utc))
