"""Links out of the app: a chart's PromQL opened in the Prometheus UI, over the chart's range."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from dashboard.durations import format_duration


def prometheus_graph_link(graph_url: str, promql: str, *, range_seconds: float, end: datetime) -> str:
    """The Prometheus expression browser showing ``promql`` as a graph over the same range."""
    query = urlencode({
        "g0.expr": promql,
        "g0.tab": "0",
        "g0.range_input": format_duration(range_seconds),
        "g0.end_input": end.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    })
    return f"{graph_url}?{query}"
