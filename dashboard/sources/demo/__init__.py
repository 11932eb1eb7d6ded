"""The embedded demo: a generated fleet whose PromQL answers are known in closed form.

One scenario serves two ends. ``DemoSource`` answers the catalog's signals analytically (the app and
CLI use it when no Prometheus is configured), and ``write_openmetrics`` writes the very same series as
OpenMetrics, for ``promtool tsdb create-blocks-from openmetrics``, so that tests can check that the
catalog's PromQL on a real Prometheus reaches what the demo reports.

A module per idea; this one re-exports the public names:

* ``scenario``: the clusters, nodes and incidents a demo shows (``Scenario``, ``demo_scenario``).
* ``promql``: the Prometheus semantics both ends share (``histogram_quantile``, ``quantile_profile``,
  extrapolated rates, durations, label matchers).
* ``series``: series as closed-form functions of time, per scrape target.
* ``fleet``: the scenario's scrape targets, as the real exporters expose them (bucket layouts).
* ``expressions``: the catalog's expression templates read as the PromQL they are.
* ``groups``: targets of one layout, their series computed for all of them at once.
* ``vectors``: instant vectors over many targets' series, and PromQL's operators on them.
* ``answers``: a signal's shape (ratio, quantile, aggregation) over a vector, or per node at once.
* ``source``: ``DemoSource``, what the catalog's PromQL answers on those series, every signal
  answered from its catalog definition (selectors, expressions, shape).
* ``openmetrics``: ``write_openmetrics``, the same series as OpenMetrics text.
"""

from __future__ import annotations

from dashboard.sources.demo.fleet import (
    COREDNS_REQUEST_BUCKETS,
    INF,
    NETWORK_PROGRAMMING_BUCKETS,
    PLEG_RELIST_BUCKETS,
    RUNTIME_OPERATION_BUCKETS,
    SYNC_PROXY_RULES_BUCKETS,
)
from dashboard.sources.demo.openmetrics import write_openmetrics
from dashboard.durations import parse_duration
from dashboard.sources.demo.promql import LOOKBACK_SECONDS, QUANTILE, histogram_quantile, quantile_profile
from dashboard.sources.demo.scenario import INCIDENT_KINDS, Incident, Scenario, demo_scenario
from dashboard.sources.demo.series import DAY_SECONDS
from dashboard.sources.demo.source import DemoSource

__all__ = [
    "COREDNS_REQUEST_BUCKETS",
    "DAY_SECONDS",
    "INCIDENT_KINDS",
    "INF",
    "LOOKBACK_SECONDS",
    "NETWORK_PROGRAMMING_BUCKETS",
    "PLEG_RELIST_BUCKETS",
    "QUANTILE",
    "RUNTIME_OPERATION_BUCKETS",
    "SYNC_PROXY_RULES_BUCKETS",
    "DemoSource",
    "Incident",
    "Scenario",
    "demo_scenario",
    "histogram_quantile",
    "parse_duration",
    "quantile_profile",
    "write_openmetrics",
]
