"""``DemoSource``: what the catalog's PromQL answers on the generated data, in closed form.

Samples sit on an epoch-aligned grid of ``step`` seconds. ``DemoSource`` evaluates the same
functions at the grid points a query would see and applies Prometheus 2.x semantics: range
selectors take samples in ``[t - range, t]``, ``rate()``/``increase()`` extrapolate as
``extrapolatedRate`` does, instant selectors look back 5 minutes, ``histogram_quantile`` is a
port of ``bucketQuantile``. Ratios, quantiles, rates and increases therefore match a real
Prometheus to float rounding (counters that start from zero, as the count signals' do, are not
extrapolated below it, as in Prometheus).

Prometheus 3 takes left-open ranges and lookbacks (one sample fewer on an aligned window):
ratios and quantiles are unchanged, plain rates of the daily-varying counters move by under 0.1 %,
and the edges of the history shift by a sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from dashboard.catalog import QUICK_RUNTIME_OPERATIONS, Catalog, beyond_top_bucket
from dashboard.durations import parse_duration
from dashboard.sources.base import OBSERVATION_COLUMNS, Observations, observation_frame
from dashboard.sources.demo.fleet import _FleetModel
from dashboard.sources.demo.promql import (
    LOOKBACK_SECONDS,
    QUANTILE,
    _extrapolated_rate,
    _matches,
    _parse_matchers,
    histogram_quantile,
)
from dashboard.sources.demo.scenario import Scenario, _utc_seconds
from dashboard.sources.demo.series import _Block, _Clock, _Histograms, _Target
from dashboard.timeline import range_steps, range_window


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
    """``(sum(num) or sum(den) * 0) / sum(den) > -Inf``: 0/0 (nothing in the window) is no series."""
    if denominator.size == 0:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(numerator.sum()) / np.float64(denominator.sum()))
    return None if math.isnan(ratio) else ratio


class _Quantile(float):
    """A quantile that knows whether its rank fell in the +Inf bucket (then it is the top finite bound)."""

    beyond_top_bucket: bool = False


def _quantile(found: tuple[tuple[float, ...], np.ndarray] | None) -> float | None:
    """``histogram_quantile(…) > -Inf``, and the catalog's marker: the top finite bucket (the largest
    finite cumulative rate) holds under ``QUANTILE`` of all observations."""
    if found is None:
        return None
    bounds, rates = found[0], found[1].tolist()
    value = histogram_quantile(QUANTILE, bounds, rates)
    if math.isnan(value):
        return None
    quantile = _Quantile(value)
    finite = [rate for bound, rate in zip(bounds, rates) if not math.isinf(bound)]
    total = sum(rate for bound, rate in zip(bounds, rates) if math.isinf(bound))
    quantile.beyond_top_bucket = bool(finite) and max(finite) < QUANTILE * total
    return quantile


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
                    rows.extend(_rows(name, node, sig.component, sig.name, "node", evaluate(probe, on_node)))
                if sig.rollup and selected[sig.component]:
                    value = evaluate(probe, selected[sig.component])
                    rows.extend(_rows(name, None, sig.component, sig.name, "cluster", value))
        return Observations(observation_frame(rows), source=self.description)

    def observe_range(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta, cluster: str | None = None
    ) -> Observations:
        """The catalog's signals at every step, as ``query_range`` would read them: :meth:`observe`
        at each step, with the rate window max(window, step) as the Prometheus source uses."""
        range_catalog = range_window(catalog, step)
        frames = [
            self.observe(range_catalog, at=at, cluster=cluster).frame.assign(time=pd.Timestamp(at))
            for at in range_steps(start, end, step)
        ]
        return Observations(_timed(frames), source=self.description)

    def observe_series(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta,
        cluster: str | None = None, node: str | None = None,
    ) -> Observations:
        """Every work signal at every step over all of a cluster's series (or one node's), as the
        Prometheus source's per-cluster (or node-picked) queries read them."""
        range_catalog = range_window(catalog, step)
        window_ms = round(parse_duration(range_catalog.window) * 1000)
        signals = [
            (sig, _EVALUATORS[sig.component][sig.name])
            for sig in range_catalog.signals
            if sig.kind == "work" and sig.name not in catalog.known_absent(sig.component)
            and sig.name in _EVALUATORS.get(sig.component, {})
        ]
        clusters = self.scenario.clusters if cluster is None else [c for c in self.scenario.clusters if c == cluster]
        chosen = {
            (name, sig.component): [
                t for t in self._targets.get((name, sig.component), [])
                if _matches(t.labels, _parse_matchers(catalog.selectors.for_component(sig.component)))
                and (node is None or t.node == node)
            ]
            for name in clusters for sig, _ in signals
        }
        frames = []
        for at in range_steps(start, end, step):
            probe = _Probe(self.scenario, round(_utc_seconds(at) * 1000), window_ms)
            rows = [
                row
                for name in clusters for sig, evaluate in signals if chosen[(name, sig.component)]
                for row in _rows(name, node, sig.component, sig.name, "cluster" if node is None else "node",
                                 evaluate(probe, chosen[(name, sig.component)]))
            ]
            frames.append(observation_frame(rows).assign(time=pd.Timestamp(at)))
        return Observations(_timed(frames), source=self.description)

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


def _timed(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-step observation frames as one, ``time`` first (UTC)."""
    frame = pd.concat(frames, ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame[["time", *OBSERVATION_COLUMNS]]


def _rows(cluster: str, node: str | None, component: str, signal: str, scope: str, value: float | None) -> list[dict]:
    """The signal's row, if it has a value, and the catalog's marker row beside a quantile beyond its top bucket."""
    if value is None:
        return []
    found = [_row(cluster, node, component, signal, scope, float(value))]
    if getattr(value, "beyond_top_bucket", False):
        found.append(_row(cluster, node, component, beyond_top_bucket(signal), scope, 1.0))
    return found


def _row(cluster: str, node: str | None, component: str, signal: str, scope: str, value: float) -> dict:
    return {"cluster": cluster, "node": node, "component": component, "signal": signal, "scope": scope, "value": value}
