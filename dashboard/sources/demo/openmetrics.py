"""``write_openmetrics``: the demo's raw series as OpenMetrics text, for promtool to backfill.

The writer evaluates the same closed forms as ``DemoSource``, at every point of the scenario's
sample grid, so that ``promtool tsdb create-blocks-from openmetrics`` gives a Prometheus whose
answers to the catalog's PromQL can be checked against what the demo reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from dashboard.catalog import escape_label_value
from dashboard.sources.demo.fleet import _FleetModel
from dashboard.sources.demo.scenario import Scenario, _utc_seconds
from dashboard.sources.demo.series import _Clock, _Counters, _Gauges, _Histograms, _Target, exposed_name, le_text

_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("up", "gauge", "1 if the target was scraped, 0 if the scrape failed."),
    ("kube_node_info", "gauge", "Information about a cluster node."),
    ("kube_pod_info", "gauge", "Information about pod."),
    ("kubelet_runtime_operations", "counter", "Cumulative number of runtime operations by operation type."),
    ("kubelet_runtime_operations_errors", "counter", "Cumulative number of runtime operation errors by operation type."),
    ("kubelet_runtime_operations_duration_seconds", "histogram", "Duration in seconds of runtime operations."),
    ("kubelet_pleg_relist_duration_seconds", "histogram", "Duration in seconds for relisting pods in PLEG."),
    ("rest_client_requests", "counter", "Number of HTTP requests, partitioned by status code, method, and host."),
    ("process_cpu_seconds", "counter", "Total user and system CPU time spent in seconds."),
    ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    ("kubeproxy_sync_proxy_rules_duration_seconds", "histogram", "SyncProxyRules latency in seconds"),
    ("kubeproxy_network_programming_duration_seconds", "histogram", "In Cluster Network Programming Latency in seconds"),
    ("kubeproxy_sync_proxy_rules_iptables_restore_failures", "counter", "Cumulative proxy iptables restore failures"),
    ("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "gauge", "The last time a sync of proxy rules was queued"),
    ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge", "The last time proxy rules were successfully synced"),
    ("coredns_dns_responses", "counter", "Counter of response status codes."),
    ("coredns_dns_request_duration_seconds", "histogram", "Histogram of the time (in seconds) each request took per zone."),
    ("coredns_panics", "counter", "A metrics that counts the number of panics."),
    ("node_cpu_seconds", "counter", "Seconds the CPUs spent in each mode."),
    ("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes."),
    ("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes."),
    ("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes."),
    ("node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes."),
    ("node_network_receive_bytes", "counter", "Network device statistic receive_bytes."),
    ("node_network_transmit_bytes", "counter", "Network device statistic transmit_bytes."),
)


def _label_text(*label_sets: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{escape_label_value(v)}"' for labels in label_sets for k, v in labels.items())


def write_openmetrics(
    scenario: Scenario,
    out: Path | TextIO,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Write the scenario's raw series as OpenMetrics text, family by family, ending with ``# EOF``.

    ``start``/``end`` narrow the written grid (counters keep their values, so a narrowed file
    answers like the full one for windows inside it). Streamed: one target's block at a time.
    """
    grid = np.arange(scenario.first_sample, scenario.last_sample + 1, scenario.step_seconds, dtype=np.int64)
    if start is not None:
        grid = grid[grid >= _utc_seconds(start)]
    if end is not None:
        grid = grid[grid <= _utc_seconds(end)]
    targets = _FleetModel(scenario).targets
    opened = open(out, "w", encoding="utf-8", buffering=1 << 20) if isinstance(out, Path) else nullcontext(out)
    with opened as stream:
        for family, kind, help_text in _FAMILIES:
            stream.write(f"# HELP {family} {help_text}\n# TYPE {family} {kind}\n")
            for target in targets:
                block = target.families.get(family)
                if block is None:
                    continue
                times = target.sample_times(grid, family=family)
                if times.size == 0:
                    continue
                suffixes = [f" {t}\n" for t in times.tolist()]
                clock = target.clock(times)
                if isinstance(block, _Histograms):
                    _write_histograms(stream, family, target, block, clock, suffixes)
                else:
                    _write_series(stream, exposed_name(family, block), target, block, block.values(clock), suffixes)
        stream.write("# EOF\n")


def _write_series(
    stream: TextIO, name: str, target: _Target, block: _Counters | _Gauges, values: np.ndarray, suffixes: list[str]
) -> None:
    for labels, row in zip(block.labels, values.tolist()):
        prefix = f"{name}{{{_label_text(target.labels, labels)}}} "
        stream.write(prefix + prefix.join(map(str.__add__, map(repr, row), suffixes)))


def _write_histograms(
    stream: TextIO, family: str, target: _Target, block: _Histograms, clock: _Clock, suffixes: list[str]
) -> None:
    """Each labelset's MetricPoints in time order: its buckets, ``_count`` and ``_sum`` per timestamp."""
    buckets, counts, sums = block.values(clock)
    width = len(block.bounds) + 2
    repeated_suffixes = [suffix for suffix in suffixes for _ in range(width)]
    for index, labels in enumerate(block.labels):
        common = _label_text(target.labels, labels)
        prefixes = [f'{family}_bucket{{{common},le="{le_text(b)}"}} ' for b in block.bounds]
        prefixes += [f"{family}_count{{{common}}} ", f"{family}_sum{{{common}}} "]
        points = np.concatenate([buckets[index], counts[index][None], sums[index][None]]).T
        values = map(repr, points.ravel().tolist())
        stream.write("".join(map(str.__add__, map(str.__add__, prefixes * len(suffixes), values), repeated_suffixes)))
