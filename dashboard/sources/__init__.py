"""The only code that talks to the outside: Prometheus, Grafeas, and the embedded demo."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from dashboard.sources.base import HealthSource


def health_source(prometheus_settings, *, now: datetime | None = None, demo=None) -> HealthSource:
    """The configured Prometheus, or the embedded demo (ending at ``now``) when none is configured.

    The demo's size is ``demo`` (a ``DemoSettings``), by default what DEMO_NODES and DEMO_DAYS say
    (``dashboard.config.demo_settings``), so every caller of ``health_source(settings.prometheus)``
    gets the configured size.
    """
    if prometheus_settings is not None:
        from dashboard.sources.prometheus import PrometheusSource

        return PrometheusSource(prometheus_settings)
    from dashboard.config import demo_settings
    from dashboard.sources.demo import DemoSource, demo_scenario

    demo = demo or demo_settings()
    return DemoSource(demo_scenario(now or datetime.now(timezone.utc), nodes=demo.nodes,
                                    history=timedelta(days=demo.days)))


def source_identity(settings, *, demo=None) -> str:
    """A short key naming the source that ``settings`` (Prometheus or Grafeas settings, or None
    for the demo) reads: two settings share it only when they read the same data the same way.

    The demo's key names its size (``demo`` as in :func:`health_source`, by default DEMO_NODES and
    DEMO_DAYS): ``demo:12x7d``, so a demo of another size never shares a cache entry.

    Every field takes part, the URL and credentials included (which ``repr`` leaves out), so two
    Prometheus URLs or two tenants never share a cache entry; the credentials enter only through
    a digest, so the key can sit in a cache without holding a secret.
    """
    if settings is None:
        from dashboard.config import demo_settings

        demo = demo or demo_settings()
        return f"demo:{demo.nodes}x{demo.days}d"
    fields = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
    text = json.dumps(fields, sort_keys=True, default=repr)
    return f"{type(settings).__name__}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def supply_chain_source(grafeas_settings, *, now: datetime | None = None):
    """The configured Grafeas, or the embedded demo's supply chain when none is configured.

    Either way the result has ``description`` and ``occurrences(resource_url=None) -> list[dict]``.
    """
    if grafeas_settings is not None:
        from dashboard.sources.grafeas import GrafeasSource

        return GrafeasSource(grafeas_settings)
    from dashboard.sources.demo_grafeas import DemoGrafeas

    return DemoGrafeas(demo_supply_chain_moment(now or datetime.now(timezone.utc)))


def demo_supply_chain_moment(now: datetime) -> datetime:
    """The moment the demo's supply chain is built for: ``now`` floored to the minute, so that the
    CLI and the pages asking within one minute see the same occurrences to the microsecond."""
    return datetime.fromtimestamp(int(now.timestamp()) // 60 * 60, tz=timezone.utc)
