"""The embedded demo: a generated fleet whose PromQL answers are known in closed form.

One scenario serves two ends. ``DemoSource`` answers the catalog's signals analytically (the app and
CLI use it when no Prometheus is configured), and ``write_openmetrics`` writes the very same series as
OpenMetrics, for ``promtool tsdb create-blocks-from openmetrics``, so that tests can check that the
catalog's PromQL on a real Prometheus reaches what the demo reports.

How values are made, so that both ends agree:

* Every series of a scrape target is a function of time with a closed form. A counter's rate is
  ``level + swing * sin(2 pi t / 1 day + phase)`` on each *phase* (a time span with a fixed set of
  active incidents), so its value at any sample time is its base (its count before the history,
  from the process's uptime) plus an exact integral. Gauges are ``level + swing * sin(...)``.
  Histograms share one observation rate per labelset, split over the buckets by a cumulative
  profile per phase.
* Samples sit on an epoch-aligned grid of ``step`` seconds. ``DemoSource`` evaluates the same
  functions at the grid points a query would see and applies Prometheus 2.x semantics: range
  selectors take samples in ``[t - range, t]``, ``rate()``/``increase()`` extrapolate as
  ``extrapolatedRate`` does, instant selectors look back 5 minutes, ``histogram_quantile`` is a
  port of ``bucketQuantile``. Ratios and quantiles therefore match a real Prometheus to float
  rounding; rates match too because no counter starts near zero. ``increase()`` of the count
  signals (iptables-restore failures, panics) is zero in this demo; only "zero vs. non-zero" is a
  promise for them.
* Latency profiles are built from the p99 a node should show with ``quantile_profile``, which
  checks its result with ``histogram_quantile``: what the writer's buckets make Prometheus answer
  is what the demo reports. A latency above the top finite bucket reads as that bound (PLEG's
  buckets stop at 10 s), as in Prometheus.

Series follow kube-prometheus-stack's conventions (kubelet with its own ``node`` label; kube-proxy
and CoreDNS found through ``kube_pod_info``; node-exporter with ``instance=<node>``), about 145 per
node. Prometheus 3 takes left-open ranges and lookbacks (one sample fewer on an aligned window):
ratios and quantiles are unchanged, plain rates of the daily-varying counters move by under 0.1 %,
and the edges of the history shift by a sample.

Node names repeat across clusters (``node-00`` ... in each). Noise is deterministic: every per-node
parameter is drawn from a generator seeded with the cluster, node and component names, so a node
looks the same whatever the size of the scenario.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import numpy as np

from dashboard.catalog import QUICK_RUNTIME_OPERATIONS, Catalog
from dashboard.sources.base import Observations, observation_frame

DAY_SECONDS = 86400.0
LOOKBACK_SECONDS = 300.0
"""Prometheus's default ``--query.lookback-delta``: an instant selector sees samples this old."""
QUANTILE = 0.99

INF = math.inf


def _exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang's ExponentialBuckets (repeated multiplication, so the floats are the same)."""
    bounds = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return tuple(bounds)


# Bucket layouts of the real exporters (see the fixtures in shared/fixtures/real/prometheus), +Inf last.
PLEG_RELIST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF)
RUNTIME_OPERATION_BUCKETS = _exponential_buckets(0.005, 2.5, 14) + (INF,)
SYNC_PROXY_RULES_BUCKETS = _exponential_buckets(0.001, 2, 15) + (INF,)
# kube-proxy's network-programming histogram has 82 bounds (0, 0.25, 0.5, 1..59, 60..115 by 5, 120..300
# by 30). The demo keeps 20 of them, as a ``metricRelabelings`` rule dropping ``le`` values would, to
# keep the series per node modest; every kept bucket counts what the real one would.
NETWORK_PROGRAMMING_BUCKETS = (
    0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, INF,
)
COREDNS_REQUEST_BUCKETS = _exponential_buckets(0.00025, 2, 16) + (INF,)

# What each incident kind does, and the catalog signal that shows it. ``Incident.value`` is, per kind:
INCIDENT_KINDS: dict[tuple[str, str], str] = {
    ("node", "busy"): "cpu_busy_ratio",  # share of CPU busy; memory use goes to 90 %, work stays fast
    ("kubelet", "down"): "up",  # value ignored: scrapes fail (up 0, no other series; counters keep counting)
    ("kubelet", "runtime_errors"): "runtime_error_ratio",  # share of runtime operations failing
    ("kubelet", "slow_pleg"): "pleg_relist_p99",  # p99 relist duration, seconds
    ("kube-proxy", "down"): "up",
    ("kube-proxy", "slow_sync"): "sync_proxy_rules_p99",  # p99 rule sync duration, seconds
    ("dns", "down"): "up",
    ("dns", "servfail"): "servfail_ratio",  # share of answers that are SERVFAIL
}


# --------------------------------------------------------------------------------------------------
# Prometheus semantics, shared by the source and the writer
# --------------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``5m`` or ``1h30m``."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * _DURATION_UNITS[u] for n, u in parts))


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """What Prometheus's ``histogram_quantile`` answers for cumulative bucket counts.

    A port of ``bucketQuantile`` (promql/quantile.go, 2.x): buckets sorted by upper bound (+Inf
    last), equal bounds merged, counts forced monotonic, linear interpolation inside the bucket where
    the rank ``q * total`` falls (from 0 for the lowest bucket), and the highest finite bound when
    the rank falls in the +Inf bucket.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    merged: list[list[float]] = []
    for bound, count in sorted(zip(bounds, counts), key=lambda pair: pair[0]):
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    if not merged or not math.isinf(merged[-1][0]):
        return math.nan
    highest = -math.inf
    for bucket in merged:
        highest = max(highest, bucket[1])
        bucket[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start, bucket_end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        bucket_start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


_BODY_SHAPE = (1.0, 0.6, 0.25, 0.05)
"""Default cumulative share of the fast observations at the bounds below a profile's p99 bucket."""


def quantile_profile(
    bounds: Sequence[float],
    target: float,
    *,
    q: float = QUANTILE,
    body: Sequence[float] | None = None,
) -> tuple[float, ...]:
    """Cumulative bucket fractions (one per bound, 1 at +Inf) whose ``q``-quantile is ``target``.

    The rank falls in the bucket holding ``target``; what lies below it is ``body``'s shape (a
    profile that reaches 1 at or below that bucket's lower bound: the node's usual latencies, so an
    incident only adds a slow tail) or a default spread over the few buckets below. A target above
    the highest finite bound puts ``2 * (1 - q)`` of the observations in +Inf; Prometheus then
    answers that bound.
    """
    finite = [b for b in bounds if not math.isinf(b)]
    if len(finite) != len(bounds) - 1 or not math.isinf(bounds[-1]) or list(finite) != sorted(finite):
        raise ValueError("bounds must be ascending and end with +Inf")
    if target > finite[-1]:
        hi = len(bounds) - 1
        below, at_hi = 1 - 2 * (1 - q), 1.0
    else:
        hi = next(i for i, b in enumerate(bounds) if b >= target)
        if hi == 0 or bounds[hi - 1] <= 0:
            raise ValueError(f"target {target} leaves no positive bucket below it")
        x = (target - bounds[hi - 1]) / (bounds[hi] - bounds[hi - 1])
        if x <= 0.9:
            below, at_hi = (q - x) / (1 - x), 1.0
        else:
            below = 0.9
            at_hi = below + (q - below) / x
    lo = hi - 1
    if body is None:
        shape = [0.0] * (lo + 1)
        for k, share in enumerate(_BODY_SHAPE):
            if lo - k >= 0 and bounds[lo - k] > 0:
                shape[lo - k] = share
    else:
        if abs(body[lo] - 1) > 1e-12:
            raise ValueError(f"body reaches {bounds[lo]} s for only {body[lo]:.4f} of observations")
        shape = list(body[: lo + 1])
    profile = tuple([below * s for s in shape] + [at_hi] + [1.0] * (len(bounds) - hi - 1))
    expected = min(target, finite[-1])
    measured = histogram_quantile(q, bounds, profile)
    if not math.isclose(measured, expected, rel_tol=1e-9):
        raise AssertionError(f"profile gives {measured}, not {expected}")
    return profile


def _profile_mean(bounds: Sequence[float], profile: Sequence[float]) -> float:
    """A plausible mean duration for a profile (bucket midpoints; 1.5 x the top bound for +Inf)."""
    mean, previous_bound, previous_share = 0.0, 0.0, 0.0
    for bound, share in zip(bounds, profile):
        mid = 1.5 * previous_bound if math.isinf(bound) else (max(previous_bound, 0.0) + bound) / 2
        mean += (share - previous_share) * mid
        previous_bound, previous_share = bound, share
    return mean


def _extrapolated_rate(
    first: np.ndarray,
    last: np.ndarray,
    times_ms: np.ndarray,
    range_start_ms: int,
    range_end_ms: int,
    *,
    is_rate: bool,
) -> np.ndarray:
    """``rate()``/``increase()`` of counters sampled at ``times_ms`` (Prometheus 2.x extrapolatedRate).

    ``first``/``last`` are the values at the first and last sample; counters here never reset.
    """
    result = last - first
    first_ms, last_ms = int(times_ms[0]), int(times_ms[-1])
    to_start = (first_ms - range_start_ms) / 1000
    to_end = (range_end_ms - last_ms) / 1000
    sampled = (last_ms - first_ms) / 1000
    average = sampled / (len(times_ms) - 1)
    threshold = average * 1.1
    end_part = to_end if to_end < threshold else average / 2
    # A counter is not extrapolated below zero: a nearer zero point replaces the range start.
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first >= 0), sampled * (first / result), math.inf)
    if (to_zero >= to_start).all():
        start_part: float | np.ndarray = to_start if to_start < threshold else average / 2
    else:
        start = np.minimum(to_start, to_zero)
        start_part = np.where(start < threshold, start, average / 2)
    result = result * ((sampled + start_part + end_part) / sampled)
    if is_rate:
        result = result / ((range_end_ms - range_start_ms) / 1000)
    return result


_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _parse_matchers(selector: str) -> tuple[tuple[str, str, str], ...]:
    """``job="kubelet", metrics_path="/metrics"`` as (label, op, value) triples."""
    matchers, position = [], 0
    while position < len(selector):
        found = _MATCHER.match(selector, position)
        if not found:
            raise ValueError(f"cannot read selector {selector!r}")
        value = re.sub(r"\\(.)", r"\1", found.group(3))
        matchers.append((found.group(1), found.group(2), value))
        position = found.end()
    return tuple(matchers)


def _matches(labels: Mapping[str, str], matchers: Iterable[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        actual = labels.get(name, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual):
            return False
        if op == "!~" and re.fullmatch(value, actual):
            return False
    return True


# --------------------------------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------------------------------


def _utc_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class Incident:
    """Something wrong with one component of one node, from ``start`` until ``end``.

    ``(component, kind)`` is a key of ``INCIDENT_KINDS``; ``value`` sets the incident's signal while
    it lasts (see there): a share, or a p99 in seconds, which reads as the histogram's highest
    finite bound when it lies above it. An incident that ends at or after the scenario's last
    sample is ongoing.
    """

    cluster: str
    node: str
    component: str
    kind: str
    start: datetime
    end: datetime
    value: float = 0.0

    @property
    def signal(self) -> str:
        """The catalog signal of ``component`` that shows this incident."""
        return INCIDENT_KINDS[(self.component, self.kind)]


@dataclass(frozen=True)
class Scenario:
    """A generated fleet: clusters of ``nodes`` nodes each, sampled every ``step`` over ``history``.

    Samples sit on the epoch-aligned grid of ``step`` inside ``[end - history, end]``. Each
    cluster runs ``dns_replicas`` CoreDNS pods, on distinct nodes (``dns_hosts``).
    """

    clusters: tuple[str, ...]
    nodes: int
    end: datetime
    history: timedelta
    step: timedelta
    incidents: tuple[Incident, ...] = ()
    dns_replicas: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "clusters", tuple(self.clusters))
        object.__setattr__(self, "incidents", tuple(self.incidents))
        if not self.clusters or len(set(self.clusters)) != len(self.clusters):
            raise ValueError("clusters must be distinct and at least one")
        if self.nodes < 1 or not 1 <= self.dns_replicas <= self.nodes:
            raise ValueError("need at least one node, and 1..nodes DNS replicas")
        step = self.step.total_seconds()
        if step < 1 or step != int(step):
            raise ValueError("step must be a whole number of seconds")
        if self.history < self.step:
            raise ValueError("history must cover at least one step")
        spans: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
        for incident in self.incidents:
            if incident.cluster not in self.clusters or incident.node not in self.node_names:
                raise ValueError(f"incident on unknown node {incident.cluster}/{incident.node}")
            if (incident.component, incident.kind) not in INCIDENT_KINDS:
                raise ValueError(f"unknown incident {incident.component}/{incident.kind}")
            if incident.component == "dns" and incident.node not in self.dns_hosts(incident.cluster):
                raise ValueError(f"{incident.cluster}/{incident.node} hosts no DNS server")
            start, end = _utc_seconds(incident.start), _utc_seconds(incident.end)
            if end <= start:
                raise ValueError("an incident must end after it starts")
            key = (incident.cluster, incident.node, incident.component, incident.kind)
            if any(start < other_end and other_start < end for other_start, other_end in spans.get(key, [])):
                raise ValueError(f"overlapping {incident.kind} incidents on {incident.cluster}/{incident.node}")
            spans.setdefault(key, []).append((start, end))

    @property
    def step_seconds(self) -> int:
        return int(self.step.total_seconds())

    @property
    def first_sample(self) -> int:
        """Epoch seconds of the first grid point."""
        begin = _utc_seconds(self.end) - self.history.total_seconds()
        return math.ceil(begin / self.step_seconds) * self.step_seconds

    @property
    def last_sample(self) -> int:
        """Epoch seconds of the last grid point."""
        return math.floor(_utc_seconds(self.end) / self.step_seconds) * self.step_seconds

    @property
    def node_names(self) -> tuple[str, ...]:
        width = max(2, len(str(self.nodes - 1)))
        return tuple(f"node-{i:0{width}d}" for i in range(self.nodes))

    def dns_hosts(self, cluster: str) -> tuple[str, ...]:
        """Nodes running the cluster's CoreDNS pods (the same positions in every cluster)."""
        names = self.node_names
        indexes = sorted({(1 + k * self.nodes // self.dns_replicas) % self.nodes for k in range(self.dns_replicas)})
        return tuple(names[i] for i in indexes)


def demo_scenario(
    end: datetime,
    *,
    clusters: Sequence[str] = ("prod", "staging"),
    nodes: int = 12,
    history: timedelta = timedelta(days=7),
    step: timedelta = timedelta(seconds=60),
) -> Scenario:
    """The product demo: mostly healthy clusters with one of each kind of trouble.

    First cluster (``prod``): node-01 (a DNS host) answers 20 % SERVFAIL for the last 40 minutes;
    node-03 is busy (CPU ~95 %, memory 90 %) but its components answer fast and without errors,
    for the last 6 hours; node-05's kubelet fails 12 % of runtime operations for the last 90
    minutes. Second cluster (``staging``, or the first again when there is one): node-04's
    kube-proxy syncs rules with a p99 of ~7 s (degraded) for the last 2 hours; node-06's kubelet has
    been unreachable for the last 25 minutes; node-02's PLEG relists took over 10 s (p99, reads
    10 s) from 50 to 48 hours before ``end`` (resolved). Incidents outside ``history`` are left out.
    """
    if nodes < 8:
        raise ValueError("the demo scenario needs at least 8 nodes per cluster")
    clusters = tuple(clusters)
    first, second = clusters[0], clusters[1 % len(clusters)]
    width = max(2, len(str(nodes - 1)))

    def node(index: int) -> str:
        return f"node-{index:0{width}d}"

    def ago(**delta: float) -> datetime:
        return end - timedelta(**delta)

    incidents = [
        Incident(first, node(1), "dns", "servfail", ago(minutes=40), end, 0.20),
        Incident(first, node(3), "node", "busy", ago(hours=6), end, 0.95),
        Incident(first, node(5), "kubelet", "runtime_errors", ago(minutes=90), end, 0.12),
        Incident(second, node(4), "kube-proxy", "slow_sync", ago(hours=2), end, 7.0),
        Incident(second, node(6), "kubelet", "down", ago(minutes=25), end),
        Incident(second, node(2), "kubelet", "slow_pleg", ago(hours=50), ago(hours=48), 15.0),
    ]
    begin = end - history
    return Scenario(
        clusters=clusters,
        nodes=nodes,
        end=end,
        history=history,
        step=step,
        incidents=tuple(i for i in incidents if i.end > begin),
    )


# --------------------------------------------------------------------------------------------------
# The model: scrape targets whose series have closed forms
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    """A time span of a target with a fixed set of active incidents (kind -> value)."""

    start: float
    end: float
    effects: Mapping[str, float]


@dataclass(frozen=True)
class _Clock:
    """Time-dependent matrices of one target at some sample times (phases x times)."""

    times: np.ndarray
    elapsed: np.ndarray  # seconds of each phase elapsed by each time
    wave_area: np.ndarray  # integral of the wave over the elapsed part of each phase
    within: np.ndarray  # 1 where the time lies in the phase
    wave: np.ndarray  # the wave at each time


@dataclass(frozen=True)
class _Counters:
    """Counters: value = base + integral of (level + swing * wave) over the phases."""

    labels: tuple[Mapping[str, str], ...]
    base: np.ndarray  # (series,)
    level: np.ndarray  # (series, phases)
    swing: np.ndarray  # (series, phases)

    def values(self, clock: _Clock) -> np.ndarray:
        return self.base[:, None] + self.level @ clock.elapsed + self.swing @ clock.wave_area


@dataclass(frozen=True)
class _Gauges:
    """Gauges: value = level + swing * wave (+ the time itself for timestamp gauges)."""

    labels: tuple[Mapping[str, str], ...]
    level: np.ndarray  # (series, phases)
    swing: np.ndarray  # (series, phases)
    clock: np.ndarray  # (series,) 1 for gauges that hold a recent timestamp

    def values(self, clock: _Clock) -> np.ndarray:
        return (
            self.level @ clock.within
            + (self.swing @ clock.within) * clock.wave[None, :]
            + self.clock[:, None] * clock.times[None, :]
        )


@dataclass(frozen=True)
class _Histograms:
    """Classic histograms: one observation rate per labelset, split over buckets by a profile."""

    labels: tuple[Mapping[str, str], ...]
    bounds: tuple[float, ...]
    base_buckets: np.ndarray  # (series, buckets)
    base_sum: np.ndarray  # (series,)
    level: np.ndarray  # (series, phases) observations per second
    swing: np.ndarray  # (series, phases)
    profile: np.ndarray  # (series, phases, buckets) cumulative fractions
    mean: np.ndarray  # (series, phases) mean duration

    def values(self, clock: _Clock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Buckets (series, buckets, times), count and sum (series, times)."""
        observed = self.level[:, :, None] * clock.elapsed[None] + self.swing[:, :, None] * clock.wave_area[None]
        buckets = self.base_buckets[:, :, None] + np.einsum("spb,spt->sbt", self.profile, observed)
        total = buckets[:, -1, :]
        sums = self.base_sum[:, None] + np.einsum("sp,spt->st", self.mean, observed)
        return buckets, total, sums


_Block = _Counters | _Gauges | _Histograms


@dataclass(frozen=True)
class _Target:
    """One scrape target (or, for kube-state-metrics, one cluster's objects)."""

    component: str  # kubelet | kube-proxy | dns | node | kube-state-metrics
    cluster: str
    node: str | None
    labels: Mapping[str, str]
    phases: tuple[_Phase, ...]
    wave_phase: float
    down: tuple[tuple[float, float], ...]
    families: Mapping[str, _Block]

    def sample_times(self, grid: np.ndarray, *, family: str) -> np.ndarray:
        """Grid points at which ``family`` has samples: ``up`` always, the rest only while up."""
        if family == "up" or not self.down:
            return grid
        keep = np.ones(grid.shape, dtype=bool)
        for start, end in self.down:
            keep &= ~((grid >= start) & (grid < end))
        return grid[keep]

    def clock(self, times: np.ndarray) -> _Clock:
        t = times.astype(float)
        omega = 2 * math.pi / DAY_SECONDS

        def antiderivative(u: np.ndarray | float) -> np.ndarray | float:
            return -np.cos(omega * u + self.wave_phase) / omega

        elapsed, area, within = [], [], []
        for phase in self.phases:
            clipped = np.clip(t, phase.start, phase.end)
            elapsed.append(clipped - phase.start)
            area.append(antiderivative(clipped) - antiderivative(phase.start))
            within.append(((t >= phase.start) & (t < phase.end)).astype(float))
        return _Clock(t, np.array(elapsed), np.array(area), np.array(within), np.sin(omega * t + self.wave_phase))


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

_POD_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NODE_CPUS = 2
_CPU_BUSY_MODES = {"user": 0.62, "system": 0.24, "nice": 0.01, "irq": 0.02, "softirq": 0.11}
_CPU_IOWAIT, _CPU_STEAL = 0.01, 0.002
_QUICK_OPERATIONS = {"container_status": 0.4, "list_podsandbox": 0.2}  # (ops/s) with a latency histogram
_OTHER_OPERATIONS = {"list_containers": 0.2, "image_status": 0.05, "status": 0.2, "version": 0.1}
_EXEC_SYNC_RATE, _EXEC_SYNC_FAILING = 1.5, 0.005  # failing exec probes: user pods' problem, excluded
_CONTAINER_STATUS_NOT_FOUND = 0.001  # status of a container deleted meanwhile: a routine error share
_DNS_RCODE_SHARES = {"NXDOMAIN": 0.19, "SERVFAIL": 0.001}
_DNS_DROPPED_REFUSED = 0.009  # REFUSED for queries matching no server block (zone="dropped")


def _pod_suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_POD_HASH_ALPHABET[b % len(_POD_HASH_ALPHABET)] for b in digest[:length])


def _steady(level: float, swing_share: float) -> Callable[[Mapping[str, float]], tuple[float, float]]:
    """The same (level, swing) in every phase: ``swing_share`` is the daily swing relative to the level."""
    return lambda effects: (level, level * swing_share)


class _TargetBuilder:
    """Collects a target's families, evaluating per-phase rate functions into matrices."""

    def __init__(self, phases: tuple[_Phase, ...], uptime: float):
        self.phases = phases
        self.uptime = uptime
        self.families: dict[str, _Block] = {}

    def counters(
        self,
        family: str,
        series: Sequence[tuple[Mapping[str, str], Callable[[Mapping[str, float]], tuple[float, float]]]],
        *,
        base: Sequence[float] | None = None,
    ) -> None:
        """Counters from per-phase (level, swing) functions; base defaults to the usual rate x uptime."""
        rates = np.array([[fn(p.effects) for p in self.phases] for _, fn in series])
        if base is None:
            base = [fn({})[0] * self.uptime for _, fn in series]
        self.families[family] = _Counters(
            tuple(labels for labels, _ in series), np.array(base, dtype=float), rates[:, :, 0], rates[:, :, 1]
        )

    def gauges(
        self,
        family: str,
        series: Sequence[tuple[Mapping[str, str], Callable[[Mapping[str, float]], tuple[float, float]]]],
        *,
        clock: bool = False,
    ) -> None:
        values = np.array([[fn(p.effects) for p in self.phases] for _, fn in series])
        self.families[family] = _Gauges(
            tuple(labels for labels, _ in series),
            values[:, :, 0],
            values[:, :, 1],
            np.full(len(series), 1.0 if clock else 0.0),
        )

    def histograms(
        self,
        family: str,
        bounds: tuple[float, ...],
        series: Sequence[tuple[Mapping[str, str], float, Callable[[Mapping[str, float]], tuple[float, ...]]]],
        *,
        swing_share: float = 0.0,
    ) -> None:
        """Histograms from (labels, observations per second, per-phase profile function).

        The count before the history covers every bucket any phase fills, so no bucket a window
        sees increasing starts near zero (rate() then extrapolates the same for all buckets).
        """
        profiles = np.array([[fn(p.effects) for p in self.phases] for _, _, fn in series])
        usual = np.array([fn({}) for _, _, fn in series])
        base_count = np.array([rate * self.uptime for _, rate, _ in series])
        widest = np.maximum(profiles.max(axis=1), usual)
        means = np.array([[_profile_mean(bounds, pr) for pr in per_series] for per_series in profiles])
        usual_means = np.array([_profile_mean(bounds, pr) for pr in usual])
        rates = np.array([rate for _, rate, _ in series])
        phases = len(self.phases)
        self.families[family] = _Histograms(
            tuple(labels for labels, _, _ in series),
            bounds,
            base_count[:, None] * widest,
            base_count * usual_means,
            np.repeat(rates[:, None], phases, axis=1),
            np.repeat((rates * swing_share)[:, None], phases, axis=1),
            profiles,
            means,
        )


def _phases_of(incidents: Sequence[Incident], origin: float, last: float) -> tuple[_Phase, ...]:
    """Cut ``[origin, +inf)`` wherever an incident starts or ends; ongoing incidents never end."""
    spans = []
    for incident in incidents:
        end = _utc_seconds(incident.end)
        spans.append((incident.kind, incident.value, _utc_seconds(incident.start), math.inf if end >= last else end))
    starts = {s for _, _, s, _ in spans if s > origin}
    ends = {e for _, _, _, e in spans if origin < e < math.inf}
    cuts = sorted({origin} | starts | ends)
    phases: list[_Phase] = []
    for start, end in zip(cuts, cuts[1:] + [math.inf]):
        effects = {kind: value for kind, value, s, e in spans if s <= start < e}
        if phases and phases[-1].effects == effects:
            phases[-1] = _Phase(phases[-1].start, end, effects)
        else:
            phases.append(_Phase(start, end, effects))
    return tuple(phases)


class _FleetModel:
    """Every target of a scenario, in a fixed order (cluster, node, component)."""

    def __init__(self, scenario: Scenario):
        self.targets: list[_Target] = []
        origin, last = float(scenario.first_sample), float(scenario.last_sample)
        for ci, cluster in enumerate(scenario.clusters):
            dns_hosts = scenario.dns_hosts(cluster)
            dns_pods = self._dns_pods(cluster, ci, dns_hosts)
            cluster_wave = random.Random(f"wave/{cluster}").uniform(0, 2 * math.pi)
            node_targets = []
            pods_on_nodes: list[tuple[str, str, str, str]] = []  # namespace, pod, node, created_by
            for ni, node in enumerate(scenario.node_names):
                node_ip = f"10.{ci}.{ni // 250}.{ni % 250 + 4}"
                wave = cluster_wave + random.Random(f"wave/{cluster}/{node}").uniform(-0.3, 0.3)

                def phases(component: str, node: str = node) -> tuple[_Phase, ...]:
                    where = (cluster, node, component)
                    return _phases_of([i for i in scenario.incidents if (i.cluster, i.node, i.component) == where], origin, last)

                proxy_pod = f"kube-proxy-{_pod_suffix(f'{cluster}/{node}/kube-proxy', 5)}"
                exporter_pod = f"prometheus-node-exporter-{_pod_suffix(f'{cluster}/{node}/node-exporter', 5)}"
                node_targets.append(_kubelet(cluster, node, node_ip, phases("kubelet"), wave))
                node_targets.append(_kube_proxy(cluster, node, node_ip, proxy_pod, phases("kube-proxy"), wave))
                node_targets.append(_node_exporter(cluster, node, exporter_pod, phases("node"), wave))
                pods_on_nodes.append(("kube-system", proxy_pod, node, "DaemonSet"))
                pods_on_nodes.append(("monitoring", exporter_pod, node, "DaemonSet"))
                if node in dns_pods:
                    pod, pod_ip = dns_pods[node]
                    node_targets.append(_coredns(cluster, node, pod, pod_ip, phases("dns"), wave))
                    pods_on_nodes.append(("kube-system", pod, node, "ReplicaSet"))
            self.targets.append(
                _kube_state_metrics(cluster, ci, scenario.node_names, pods_on_nodes, _phases_of([], origin, last))
            )
            self.targets.extend(node_targets)

    @staticmethod
    def _dns_pods(cluster: str, ci: int, hosts: Sequence[str]) -> dict[str, tuple[str, str]]:
        template_hash = _pod_suffix(f"{cluster}/coredns", 10)
        return {
            node: (f"coredns-{template_hash}-{_pod_suffix(f'{cluster}/{node}/coredns', 5)}", f"10.{100 + ci}.{k}.2")
            for k, node in enumerate(hosts)
        }


def _down_spans(phases: tuple[_Phase, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((p.start, p.end) for p in phases if "down" in p.effects)


def _up(builder: _TargetBuilder) -> None:
    builder.gauges("up", [({}, lambda effects: (0.0 if "down" in effects else 1.0, 0.0))])


def _kubelet(cluster: str, node: str, node_ip: str, phases: tuple[_Phase, ...], wave: float) -> _Target:
    rng = random.Random(f"{cluster}/{node}/kubelet")
    uptime = rng.uniform(2, 30) * DAY_SECONDS
    load = rng.uniform(0.6, 1.4)
    builder = _TargetBuilder(phases, uptime)
    _up(builder)
    swing = 0.3
    quick = {op: rate * load for op, rate in _QUICK_OPERATIONS.items()}
    others = {op: rate * load for op, rate in _OTHER_OPERATIONS.items()}
    counted = {**quick, **others}
    failing_share = sum(counted.values()) / sum(quick.values())  # errors on the quick ops only

    def error_rate(op: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        usual = _CONTAINER_STATUS_NOT_FOUND if op == "container_status" else 0.0

        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            share = effects["runtime_errors"] * failing_share if "runtime_errors" in effects else usual
            if share > 1:
                raise ValueError("runtime error ratio too high for the demo's operation mix")
            return quick[op] * share, quick[op] * share * swing

        return rate

    builder.counters(
        "kubelet_runtime_operations",
        [({"operation_type": op}, _steady(rate, swing)) for op, rate in counted.items()]
        + [({"operation_type": "exec_sync"}, _steady(_EXEC_SYNC_RATE * load, swing))],
    )
    exec_sync_failures = _EXEC_SYNC_RATE * load * _EXEC_SYNC_FAILING
    builder.counters(
        "kubelet_runtime_operations_errors",
        [({"operation_type": op}, error_rate(op)) for op in quick]
        + [({"operation_type": "exec_sync"}, _steady(exec_sync_failures, swing))],
        # Errors since the kubelet started: a 0.1 % share of every quick operation type's calls.
        base=[uptime * rate * _CONTAINER_STATUS_NOT_FOUND for rate in quick.values()] + [uptime * exec_sync_failures],
    )
    runtime_profiles = {
        op: quantile_profile(RUNTIME_OPERATION_BUCKETS, rng.uniform(0.02, 0.07)) for op in quick
    }
    builder.histograms(
        "kubelet_runtime_operations_duration_seconds",
        RUNTIME_OPERATION_BUCKETS,
        [({"operation_type": op}, rate, lambda effects, p=runtime_profiles[op]: p) for op, rate in quick.items()],
        swing_share=swing,
    )
    usual_pleg = quantile_profile(PLEG_RELIST_BUCKETS, rng.uniform(0.03, 0.09))

    def pleg(effects: Mapping[str, float]) -> tuple[float, ...]:
        if "slow_pleg" in effects:
            return quantile_profile(PLEG_RELIST_BUCKETS, effects["slow_pleg"], body=usual_pleg)
        return usual_pleg

    builder.histograms("kubelet_pleg_relist_duration_seconds", PLEG_RELIST_BUCKETS, [({}, 1.0, pleg)])
    api_host = f"{cluster}-api.example.internal:443"
    builder.counters(
        "rest_client_requests",
        [
            ({"code": "200", "host": api_host, "method": "GET"}, _steady(0.5 * load, swing)),
            ({"code": "200", "host": api_host, "method": "PATCH"}, _steady(0.1 * load, swing)),
            ({"code": "201", "host": api_host, "method": "POST"}, _steady(0.05 * load, swing)),
            ({"code": "<error>", "host": api_host, "method": "PUT"}, _steady(0.0002 * load, swing)),
        ],
    )
    builder.counters("process_cpu_seconds", [({}, _steady(rng.uniform(0.03, 0.08) * load, 0.2))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(80, 160) * 2**20, 0.02))])
    return _Target(
        "kubelet", cluster, node,
        {"cluster": cluster, "job": "kubelet", "metrics_path": "/metrics", "node": node, "instance": f"{node_ip}:10250"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _kube_proxy(cluster: str, node: str, node_ip: str, pod: str, phases: tuple[_Phase, ...], wave: float) -> _Target:
    rng = random.Random(f"{cluster}/{node}/kube-proxy")
    builder = _TargetBuilder(phases, rng.uniform(2, 30) * DAY_SECONDS)
    _up(builder)
    usual_sync = quantile_profile(SYNC_PROXY_RULES_BUCKETS, rng.uniform(0.15, 0.9))

    def sync(effects: Mapping[str, float]) -> tuple[float, ...]:
        if "slow_sync" in effects:
            return quantile_profile(SYNC_PROXY_RULES_BUCKETS, effects["slow_sync"], body=usual_sync)
        return usual_sync

    builder.histograms("kubeproxy_sync_proxy_rules_duration_seconds", SYNC_PROXY_RULES_BUCKETS, [({}, 0.2, sync)])
    programming = quantile_profile(NETWORK_PROGRAMMING_BUCKETS, rng.uniform(1.2, 4.0))
    builder.histograms(
        "kubeproxy_network_programming_duration_seconds",
        NETWORK_PROGRAMMING_BUCKETS,
        [({}, 0.1, lambda effects: programming)],
    )
    builder.counters("kubeproxy_sync_proxy_rules_iptables_restore_failures", [({}, _steady(0.0, 0.0))])
    synced_lag = rng.uniform(0.5, 25.0)
    builder.gauges(
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
        [({}, _steady(-synced_lag - rng.uniform(0.01, 0.5), 0.0))],
        clock=True,
    )
    builder.gauges("kubeproxy_sync_proxy_rules_last_timestamp_seconds", [({}, _steady(-synced_lag, 0.0))], clock=True)
    api_host = f"{cluster}-api.example.internal:443"
    builder.counters(
        "rest_client_requests",
        [
            ({"code": "200", "host": api_host, "method": "GET"}, _steady(0.05, 0.1)),
            ({"code": "201", "host": api_host, "method": "POST"}, _steady(0.01, 0.1)),
            ({"code": "<error>", "host": api_host, "method": "GET"}, _steady(0.0, 0.0)),
        ],
        base=[0.05 * builder.uptime, 0.01 * builder.uptime, 2.0],
    )
    builder.counters("process_cpu_seconds", [({}, _steady(rng.uniform(0.005, 0.03), 0.2))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(25, 45) * 2**20, 0.02))])
    return _Target(
        "kube-proxy", cluster, node,
        {"cluster": cluster, "job": "kube-proxy", "namespace": "kube-system", "pod": pod, "instance": f"{node_ip}:10249"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _coredns(cluster: str, node: str, pod: str, pod_ip: str, phases: tuple[_Phase, ...], wave: float) -> _Target:
    rng = random.Random(f"{cluster}/{node}/coredns")
    builder = _TargetBuilder(phases, rng.uniform(2, 30) * DAY_SECONDS)
    _up(builder)
    queries = rng.uniform(50, 200)
    swing = 0.3

    def answers(rcode: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            shares = dict(_DNS_RCODE_SHARES)
            if "servfail" in effects:
                shares["SERVFAIL"] = effects["servfail"]
            shares["NOERROR"] = 1 - sum(shares.values()) - _DNS_DROPPED_REFUSED
            if shares["NOERROR"] < 0:
                raise ValueError("SERVFAIL share too high for the demo's answer mix")
            return queries * shares[rcode], queries * shares[rcode] * swing

        return rate

    zone = {"server": "dns://:53", "zone": "."}
    builder.counters(
        "coredns_dns_responses",
        [({**zone, "rcode": rcode}, answers(rcode)) for rcode in ("NOERROR", "NXDOMAIN", "SERVFAIL")]
        + [({"server": "", "zone": "dropped", "rcode": "REFUSED"}, _steady(queries * _DNS_DROPPED_REFUSED, swing))],
    )
    latency = quantile_profile(COREDNS_REQUEST_BUCKETS, rng.uniform(0.003, 0.03))
    builder.histograms(
        "coredns_dns_request_duration_seconds", COREDNS_REQUEST_BUCKETS, [(zone, queries, lambda effects: latency)],
        swing_share=swing,
    )
    builder.counters("coredns_panics", [({}, _steady(0.0, 0.0))])
    builder.counters("process_cpu_seconds", [({}, _steady(queries * rng.uniform(1e-4, 3e-4), swing))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(20, 40) * 2**20, 0.02))])
    return _Target(
        "dns", cluster, node,
        {"cluster": cluster, "job": "coredns", "namespace": "kube-system", "pod": pod, "instance": f"{pod_ip}:9153"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _node_exporter(cluster: str, node: str, pod: str, phases: tuple[_Phase, ...], wave: float) -> _Target:
    rng = random.Random(f"{cluster}/{node}/node")
    builder = _TargetBuilder(phases, rng.uniform(2, 60) * DAY_SECONDS)
    _up(builder)
    usual_busy = rng.uniform(0.15, 0.5)

    def busy(effects: Mapping[str, float]) -> tuple[float, float]:
        if "busy" in effects:
            return effects["busy"], 0.02
        return usual_busy, usual_busy * 0.3

    def mode_rate(mode: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            level, swing = busy(effects)
            if mode in _CPU_BUSY_MODES:
                return level * _CPU_BUSY_MODES[mode], swing * _CPU_BUSY_MODES[mode]
            if mode == "iowait":
                return _CPU_IOWAIT, 0.0
            if mode == "steal":
                return _CPU_STEAL, 0.0
            return 1 - level - _CPU_IOWAIT - _CPU_STEAL, -swing

        return rate

    modes = (*_CPU_BUSY_MODES, "iowait", "steal", "idle")
    builder.counters(
        "node_cpu_seconds",
        [({"cpu": str(cpu), "mode": mode}, mode_rate(mode)) for cpu in range(_NODE_CPUS) for mode in modes],
    )
    memory = float(rng.choice((16, 32, 64)) * 2**30)
    usual_memory = rng.uniform(0.35, 0.7)

    def available(effects: Mapping[str, float]) -> tuple[float, float]:
        used, swing = (0.9, 0.01) if "busy" in effects else (usual_memory, 0.05)
        return memory * (1 - used), -memory * swing

    builder.gauges("node_memory_MemTotal_bytes", [({}, _steady(memory, 0.0))])
    builder.gauges("node_memory_MemAvailable_bytes", [({}, available)])
    root = {"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
    disk = 100.0 * 2**30
    builder.gauges("node_filesystem_size_bytes", [(root, _steady(disk, 0.0))])
    builder.gauges("node_filesystem_avail_bytes", [(root, _steady(disk * (1 - rng.uniform(0.2, 0.6)), 0.0))])
    received = rng.uniform(2e6, 2e7)
    for family, share in (("node_network_receive_bytes", 1.0), ("node_network_transmit_bytes", 0.5)):
        builder.counters(
            family,
            [({"device": "eth0"}, _steady(received * share, 0.4)), ({"device": "lo"}, _steady(1e5, 0.0))],
        )
    return _Target(
        "node", cluster, node,
        {"cluster": cluster, "job": "node-exporter", "namespace": "monitoring", "pod": pod, "instance": node},
        phases, wave, (), builder.families,
    )


def _kube_state_metrics(
    cluster: str, ci: int, nodes: Sequence[str], pods: Sequence[tuple[str, str, str, str]], phases: tuple[_Phase, ...]
) -> _Target:
    builder = _TargetBuilder(phases, 0.0)
    _up(builder)
    one = _steady(1.0, 0.0)
    builder.gauges(
        "kube_node_info",
        [({"node": node, "kubelet_version": "v1.29.4", "container_runtime_version": "containerd://1.7.13"}, one)
         for node in nodes],
    )
    builder.gauges(
        "kube_pod_info",
        [({"namespace": namespace, "pod": pod, "node": node, "created_by_kind": kind}, one)
         for namespace, pod, node, kind in pods],
    )
    return _Target(
        "kube-state-metrics", cluster, None,
        {"cluster": cluster, "job": "kube-state-metrics", "instance": f"10.{100 + ci}.250.10:8080"},
        phases, 0.0, (), builder.families,
    )


# --------------------------------------------------------------------------------------------------
# DemoSource: what the catalog's PromQL answers on the generated data
# --------------------------------------------------------------------------------------------------


class _Probe:
    """Evaluates series of targets as PromQL would at one instant, with one range window."""

    def __init__(self, scenario: Scenario, at_ms: int, range_ms: int):
        self.at_ms = at_ms
        self.range_ms = range_ms
        step_ms = scenario.step_seconds * 1000
        lookback_ms = int(LOOKBACK_SECONDS * 1000)
        first_ms, last_ms = scenario.first_sample * 1000, scenario.last_sample * 1000

        def grid(lo_ms: int, hi_ms: int) -> np.ndarray:
            lo, hi = max(lo_ms, first_ms), min(hi_ms, last_ms)
            k_lo, k_hi = -((-lo) // step_ms), hi // step_ms
            return np.arange(k_lo, k_hi + 1, dtype=np.int64) * step_ms

        self._clocks: dict[tuple[int, bytes], _Clock] = {}
        self._values: dict[tuple[int, str, object], np.ndarray | None] = {}
        self._masks: dict[tuple[int, object], np.ndarray] = {}
        self.range_grid = grid(at_ms - range_ms, at_ms)
        self.lookback_grid = grid(at_ms - lookback_ms, at_ms)

    def _times(self, target: _Target, family: str, grid_ms: np.ndarray) -> np.ndarray:
        return target.sample_times(grid_ms / 1000, family=family)

    def _clock(self, target: _Target, times: np.ndarray) -> _Clock:
        key = (id(target), times.tobytes())
        if key not in self._clocks:
            self._clocks[key] = target.clock(times)
        return self._clocks[key]

    def _latest(self, target: _Target, family: str) -> np.ndarray | None:
        """Every series' latest value within the lookback, or None without a sample there."""
        key = (id(target), family, "latest")
        if key not in self._values:
            times = self._times(target, family, self.lookback_grid)
            block = target.families[family]
            self._values[key] = block.values(self._clock(target, times[-1:]))[:, 0] if times.size else None
        return self._values[key]

    def _increase(self, target: _Target, family: str, is_rate: bool) -> np.ndarray | None:
        """Every series' (or, for histograms, every bucket's) rate or increase; None under two samples."""
        key = (id(target), family, is_rate)
        if key not in self._values:
            times = self._times(target, family, self.range_grid)
            result = None
            if times.size >= 2:
                block = target.families[family]
                values = block.values(self._clock(target, times[[0, -1]]))
                if isinstance(block, _Histograms):
                    values = values[0]
                times_ms = np.rint(times * 1000).astype(np.int64)
                result = _extrapolated_rate(
                    values[..., 0], values[..., 1], times_ms, self.at_ms - self.range_ms, self.at_ms, is_rate=is_rate
                )
            self._values[key] = result
        return self._values[key]

    def _select(self, block: _Block, select: Callable[[Mapping[str, str]], bool] | None) -> np.ndarray:
        key = (id(block), select)  # holding the function keeps its id from being reused
        if key not in self._masks:
            self._masks[key] = np.array([select is None or select(labels) for labels in block.labels], dtype=bool)
        return self._masks[key]

    def gauges(
        self, targets: Iterable[_Target], family: str, select: Callable[[Mapping[str, str]], bool] | None = None
    ) -> np.ndarray:
        """Latest value within the lookback of every selected series that has one."""
        found = []
        for target in targets:
            if family in target.families and (values := self._latest(target, family)) is not None:
                found.append(values[self._select(target.families[family], select)])
        return np.concatenate(found) if found else np.empty(0)

    def increases(
        self,
        targets: Iterable[_Target],
        family: str,
        select: Callable[[Mapping[str, str]], bool] | None = None,
        *,
        is_rate: bool = True,
    ) -> np.ndarray:
        """``rate()`` (or ``increase()``) of every selected counter with two samples in the window."""
        found = []
        for target in targets:
            if family in target.families and (rates := self._increase(target, family, is_rate)) is not None:
                found.append(rates[self._select(target.families[family], select)])
        return np.concatenate(found) if found else np.empty(0)

    def bucket_rates(
        self, targets: Iterable[_Target], family: str, select: Callable[[Mapping[str, str]], bool] | None = None
    ) -> tuple[tuple[float, ...], np.ndarray] | None:
        """``sum by (le) (rate(<family>_bucket[...]))`` over the selected labelsets."""
        total, bounds = None, ()
        for target in targets:
            if family not in target.families or (rates := self._increase(target, family, True)) is None:
                continue
            chosen = self._select(target.families[family], select)
            if chosen.any():
                total = rates[chosen].sum(axis=0) if total is None else total + rates[chosen].sum(axis=0)
                bounds = target.families[family].bounds
        return None if total is None else (bounds, total)


def _label_is(name: str, pattern: str, *, negate: bool = False) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: bool(re.fullmatch(pattern, labels.get(name, ""))) != negate


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> float | None:
    """``(sum(num) or sum(den) * 0) / sum(den)``."""
    if denominator.size == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator.sum()) / np.float64(denominator.sum()))


def _quantile(found: tuple[tuple[float, ...], np.ndarray] | None) -> float | None:
    return None if found is None else histogram_quantile(QUANTILE, found[0], found[1].tolist())


def _reduce(values: np.ndarray, how: Callable[[np.ndarray], float]) -> float | None:
    return float(how(values)) if values.size else None


_Evaluator = Callable[[_Probe, list[_Target]], float | None]


def _stale_rules(probe: _Probe, targets: list[_Target]) -> float | None:
    queued = probe.gauges(targets, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds")
    synced = probe.gauges(targets, "kubeproxy_sync_proxy_rules_last_timestamp_seconds")
    if queued.size == 0 or queued.size != synced.size:
        return None
    return float(np.max((probe.at_ms / 1000 - queued) * (queued > synced)))


def _apiserver_errors(probe: _Probe, targets: list[_Target]) -> float | None:
    return _ratio(
        probe.increases(targets, "rest_client_requests", _SERVER_ERROR),
        probe.increases(targets, "rest_client_requests"),
    )


def _process_signals() -> dict[str, _Evaluator]:
    return {
        "process_cpu_cores": lambda p, t: _reduce(p.increases(t, "process_cpu_seconds"), np.sum),
        "process_rss_bytes": lambda p, t: _reduce(p.gauges(t, "process_resident_memory_bytes"), np.max),
    }


_NOT_EXEC_SYNC = _label_is("operation_type", "exec_sync", negate=True)
_QUICK_OPERATION = _label_is("operation_type", "|".join(QUICK_RUNTIME_OPERATIONS))
_SERVER_ERROR = _label_is("code", "5..|<error>")
_SERVFAIL = _label_is("rcode", "SERVFAIL")
_CPU_BUSY = _label_is("mode", "idle|iowait|steal", negate=True)
_PHYSICAL_DEVICE = _label_is("device", "lo|veth.*|cali.*|cilium.*|lxc.*|flannel.*|cni.*|docker.*", negate=True)


def _refused_in_a_zone(labels: Mapping[str, str]) -> bool:
    return labels.get("rcode") == "REFUSED" and labels.get("zone") != "dropped"


def _root_filesystem(labels: Mapping[str, str]) -> bool:
    return labels.get("mountpoint") == "/" and not re.fullmatch("tmpfs|overlay|squashfs", labels.get("fstype", ""))


_EVALUATORS: dict[str, dict[str, _Evaluator]] = {
    "kubelet": {
        "up": lambda p, t: _reduce(p.gauges(t, "up"), np.min),
        "runtime_error_ratio": lambda p, t: _ratio(
            p.increases(t, "kubelet_runtime_operations_errors", _NOT_EXEC_SYNC),
            p.increases(t, "kubelet_runtime_operations", _NOT_EXEC_SYNC),
        ),
        "pleg_relist_p99": lambda p, t: _quantile(p.bucket_rates(t, "kubelet_pleg_relist_duration_seconds")),
        "runtime_operation_p99": lambda p, t: _quantile(
            p.bucket_rates(t, "kubelet_runtime_operations_duration_seconds", _QUICK_OPERATION)
        ),
        "apiserver_error_ratio": _apiserver_errors,
        **_process_signals(),
    },
    "kube-proxy": {
        "up": lambda p, t: _reduce(p.gauges(t, "up"), np.min),
        "sync_proxy_rules_p99": lambda p, t: _quantile(p.bucket_rates(t, "kubeproxy_sync_proxy_rules_duration_seconds")),
        "network_programming_p99": lambda p, t: _quantile(
            p.bucket_rates(t, "kubeproxy_network_programming_duration_seconds")
        ),
        "iptables_restore_failures": lambda p, t: _reduce(
            p.increases(t, "kubeproxy_sync_proxy_rules_iptables_restore_failures", is_rate=False), np.sum
        ),
        "stale_rules_seconds": _stale_rules,
        "apiserver_error_ratio": _apiserver_errors,
        **_process_signals(),
    },
    "dns": {
        "up": lambda p, t: _reduce(p.gauges(t, "up"), np.min),
        "servfail_ratio": lambda p, t: _ratio(
            np.concatenate([
                p.increases(t, "coredns_dns_responses", _SERVFAIL),
                p.increases(t, "coredns_dns_responses", _refused_in_a_zone),
            ]),
            p.increases(t, "coredns_dns_responses"),
        ),
        "request_p99": lambda p, t: _quantile(p.bucket_rates(t, "coredns_dns_request_duration_seconds")),
        "panics": lambda p, t: _reduce(p.increases(t, "coredns_panics", is_rate=False), np.sum),
        **_process_signals(),
    },
    "node": {
        "cpu_busy_ratio": lambda p, t: _ratio(
            p.increases(t, "node_cpu_seconds", _CPU_BUSY),
            p.increases(t, "node_cpu_seconds"),
        ),
        "memory_used_ratio": lambda p, t: _ratio(
            p.gauges(t, "node_memory_MemTotal_bytes") - p.gauges(t, "node_memory_MemAvailable_bytes"),
            p.gauges(t, "node_memory_MemTotal_bytes"),
        ),
        "filesystem_used_ratio": lambda p, t: _ratio(
            p.gauges(t, "node_filesystem_size_bytes", _root_filesystem)
            - p.gauges(t, "node_filesystem_avail_bytes", _root_filesystem),
            p.gauges(t, "node_filesystem_size_bytes", _root_filesystem),
        ),
        "network_bytes_per_second": lambda p, t: _reduce(
            np.concatenate([
                p.increases(t, family, _PHYSICAL_DEVICE)
                for family in ("node_network_receive_bytes", "node_network_transmit_bytes")
            ]),
            np.sum,
        ),
    },
}


class DemoSource:
    """A ``HealthSource`` over a generated scenario, answered in closed form (no time series kept)."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        clusters = len(scenario.clusters)
        self.description = (
            f"embedded demo ({clusters} cluster{'s' if clusters != 1 else ''}, "
            f"{scenario.nodes} node{'s' if scenario.nodes != 1 else ''} each, generated)"
        )
        self._targets: dict[tuple[str, str], list[_Target]] = {}
        for target in _FleetModel(scenario).targets:
            self._targets.setdefault((target.cluster, target.component), []).append(target)

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        """The catalog's signals at ``at``, as its queries would read them from the written series."""
        at_ms = round(_utc_seconds(at) * 1000)
        probe = _Probe(self.scenario, at_ms, round(parse_duration(catalog.window) * 1000))
        selectors = {
            component: _parse_matchers(catalog.selectors.for_component(component))
            for component in ("kubelet", "kube-proxy", "dns", "node")
        }
        inventory_selector = _parse_matchers(catalog.selectors.kube_state_metrics)
        rows: list[dict] = []
        clusters = self.scenario.clusters if cluster is None else [c for c in self.scenario.clusters if c == cluster]
        for name in clusters:
            selected = {
                component: [t for t in self._targets.get((name, component), []) if _matches(t.labels, matchers)]
                for component, matchers in selectors.items()
            }
            inventory = [
                t for t in self._targets.get((name, "kube-state-metrics"), []) if _matches(t.labels, inventory_selector)
            ]
            rows.extend(self._inventory(probe, catalog, name, inventory, selected))
            by_node: dict[str, dict[str, list[_Target]]] = {}
            for component, targets in selected.items():
                for target in targets:
                    by_node.setdefault(component, {}).setdefault(target.node, []).append(target)
            for sig in catalog.signals:
                evaluate = _EVALUATORS.get(sig.component, {}).get(sig.name)
                if evaluate is None or sig.name in catalog.known_absent(sig.component):
                    continue
                for node, on_node in by_node.get(sig.component, {}).items():
                    value = evaluate(probe, on_node)
                    if value is not None:
                        rows.append(_row(name, node, sig.component, sig.name, "node", value))
                if sig.rollup and selected[sig.component]:
                    value = evaluate(probe, selected[sig.component])
                    if value is not None:
                        rows.append(_row(name, None, sig.component, sig.name, "cluster", value))
        return Observations(observation_frame(rows), source=self.description)

    def _inventory(
        self,
        probe: _Probe,
        catalog: Catalog,
        cluster: str,
        inventory: list[_Target],
        selected: Mapping[str, list[_Target]],
    ) -> Iterator[dict]:
        known = {labels["node"] for t in inventory for labels in self._visible(probe, t, "kube_node_info")}
        known |= {t.node for t in selected["kubelet"] if probe.gauges([t], "up").size}
        dns_pods = re.compile(catalog.dns_pod_regex)
        hosts = {
            labels["node"]
            for t in inventory
            for labels in self._visible(probe, t, "kube_pod_info")
            if labels["namespace"] == catalog.dns_namespace and dns_pods.fullmatch(labels["pod"])
        }
        hosts |= {t.node for t in selected["dns"] if probe.gauges([t], "up").size}
        for signal, nodes in (("known_nodes", known), ("dns_hosts", hosts)):
            for node in self.scenario.node_names:
                if node in nodes:
                    yield _row(cluster, node, "inventory", signal, "node", 1.0)

    @staticmethod
    def _visible(probe: _Probe, target: _Target, family: str) -> tuple[Mapping[str, str], ...]:
        """The labels of ``family``'s series when the lookback sees them."""
        return target.families[family].labels if probe.gauges([target], family).size else ()


def _row(cluster: str, node: str | None, component: str, signal: str, scope: str, value: float) -> dict:
    return {"cluster": cluster, "node": node, "component": component, "signal": signal, "scope": scope, "value": value}


# --------------------------------------------------------------------------------------------------
# The OpenMetrics writer
# --------------------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(*label_sets: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for labels in label_sets for k, v in labels.items())


def _le(bound: float) -> str:
    """A bucket bound as the Go exporters print it: ``0.005``, ``1``, ``+Inf``."""
    if math.isinf(bound):
        return "+Inf"
    text = repr(bound)
    return text[:-2] if text.endswith(".0") else text


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
                    name = f"{family}_total" if kind == "counter" else family
                    _write_series(stream, name, target, block, block.values(clock), suffixes)
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
        prefixes = [f'{family}_bucket{{{common},le="{_le(b)}"}} ' for b in block.bounds]
        prefixes += [f"{family}_count{{{common}}} ", f"{family}_sum{{{common}}} "]
        points = np.concatenate([buckets[index], counts[index][None], sums[index][None]]).T
        values = map(repr, points.ravel().tolist())
        stream.write("".join(map(str.__add__, map(str.__add__, prefixes * len(suffixes), values), repeated_suffixes)))
