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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from dashboard.catalog import COMPONENTS, Catalog, Signal, beyond_top_bucket
from dashboard.durations import parse_duration
from dashboard.sources.base import OBSERVATION_COLUMNS, Observations, observation_frame
from dashboard.sources.demo.expressions import Expr, LabelReplace, Number, Select, Time, Unsupported, parse
from dashboard.sources.demo.fleet import _FleetModel
from dashboard.sources.demo.promql import (
    LOOKBACK_SECONDS,
    _extrapolated_rate,
    _matches,
    _parse_matchers,
    histogram_quantile,
)
from dashboard.sources.demo.scenario import Scenario, _utc_seconds
from dashboard.sources.demo.series import _Clock, _Histograms, _Target, exposed_name, le_text
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
        self.range_grid = grid(at_ms - range_ms, at_ms)
        self.lookback_grid = grid(at_ms - lookback_ms, at_ms)

    def _times(self, target: _Target, family: str, grid_ms: np.ndarray) -> np.ndarray:
        return target.sample_times(grid_ms / 1000, family=family)

    def _clock(self, target: _Target, times: np.ndarray) -> _Clock:
        key = (id(target), times.tobytes())
        if key not in self._clocks:
            self._clocks[key] = target.clock(times)
        return self._clocks[key]

    def latest(self, target: _Target, family: str) -> np.ndarray | None:
        """Every series' latest value within the lookback, or None without a sample there."""
        key = (id(target), family, "latest")
        if key not in self._values:
            times = self._times(target, family, self.lookback_grid)
            block = target.families[family]
            self._values[key] = block.values(self._clock(target, times[-1:]))[:, 0] if times.size else None
        return self._values[key]

    def increase(self, target: _Target, family: str, is_rate: bool) -> np.ndarray | None:
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


@dataclass(frozen=True)
class _Vector:
    """An instant vector: each series' labels (without the metric name, which vector matching
    ignores), value and, for a histogram's buckets, upper bound (NaN for other series)."""

    keys: tuple[frozenset[tuple[str, str]], ...]
    values: np.ndarray
    bounds: np.ndarray

    def take(self, positions: np.ndarray) -> _Vector:
        return _Vector(tuple(self.keys[i] for i in positions), self.values[positions], self.bounds[positions])


_NO_SERIES = _Vector((), np.empty(0), np.empty(0))


@dataclass(frozen=True)
class _Layout:
    """Which of a target's series a selector picks (static: labels never change over time)."""

    family: str
    mask: np.ndarray  # over the family's series (for histograms: series x buckets, flattened)
    keys: tuple[frozenset[tuple[str, str]], ...]
    bounds: np.ndarray


def _layout(target: _Target, select: Select) -> _Layout | None:
    """The target's series named ``select.name`` (as the writer exposes them) that its matchers pick."""
    family = next((f for f, block in target.families.items() if exposed_name(f, block) == select.name), None)
    if family is None:
        return None
    block = target.families[family]
    if isinstance(block, _Histograms):
        if select.function is None:
            raise Unsupported(f"the demo cannot evaluate an instant selector over {select.name}")
        series = [({**target.labels, **labels, "le": le_text(b)}, b) for labels in block.labels for b in block.bounds]
    else:
        series = [({**target.labels, **labels}, math.nan) for labels in block.labels]
    mask = np.array([_matches(labels, select.matchers) for labels, _ in series], dtype=bool)
    if not mask.any():
        return None
    chosen = [(labels, bound) for (labels, bound), keep in zip(series, mask) if keep]
    return _Layout(
        family, mask, tuple(frozenset(labels.items()) for labels, _ in chosen), np.array([b for _, b in chosen])
    )


_OPERATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "> bool": lambda left, right: np.greater(left, right).astype(float),
}


class _Evaluator:
    """The catalog's templates on one probe: selectors, ``rate``/``increase``, ``or``, arithmetic."""

    def __init__(self, probe: _Probe, layouts: dict[tuple[int, int], _Layout | None]):
        self.probe = probe
        self.layouts = layouts

    def vector(self, template: str, targets: list[_Target]) -> _Vector:
        result = self._evaluate(parse(template), targets)
        if isinstance(result, float):
            raise Unsupported(f"the demo cannot evaluate {template!r}: a scalar, not a vector")
        return result

    def _evaluate(self, expr: Expr, targets: list[_Target]) -> _Vector | float:
        if isinstance(expr, Number):
            return expr.value
        if isinstance(expr, Time):
            return self.probe.at_ms / 1000
        if isinstance(expr, Select):
            return self._select(expr, targets)
        if isinstance(expr, LabelReplace):
            found = self._evaluate(expr.expr, targets)
            if isinstance(found, float):
                raise Unsupported("the demo cannot evaluate label_replace over a scalar")
            keys = tuple(frozenset({**dict(key), expr.label: expr.value}.items()) for key in found.keys)
            return _Vector(keys, found.values, found.bounds)
        left, right = self._evaluate(expr.left, targets), self._evaluate(expr.right, targets)
        if expr.op == "or":
            return _or(left, right)
        return _binary(expr.op, left, right)

    def _select(self, select: Select, targets: list[_Target]) -> _Vector:
        found: list[_Vector] = []
        for target in targets:
            key = (id(target), id(select))  # parse() keeps every Select alive: its id is not reused
            if key not in self.layouts:
                self.layouts[key] = _layout(target, select)
            layout = self.layouts[key]
            if layout is None:
                continue
            if select.function is None:
                values = self.probe.latest(target, layout.family)
            else:
                values = self.probe.increase(target, layout.family, is_rate=select.function == "rate")
            if values is not None:
                found.append(_Vector(layout.keys, values.ravel()[layout.mask], layout.bounds))
        if len(found) < 2:
            return found[0] if found else _NO_SERIES
        return _Vector(
            tuple(key for vector in found for key in vector.keys),
            np.concatenate([vector.values for vector in found]),
            np.concatenate([vector.bounds for vector in found]),
        )


def _or(left: _Vector | float, right: _Vector | float) -> _Vector:
    """``left or right``: every series of ``left``, and those of ``right`` whose labels ``left`` lacks."""
    if isinstance(left, float) or isinstance(right, float):
        raise Unsupported("the demo cannot evaluate 'or' with a scalar")
    if not right.keys:
        return left
    if not left.keys:
        return right
    seen = set(left.keys)
    extra = right.take(np.flatnonzero([key not in seen for key in right.keys]))
    return _Vector(left.keys + extra.keys, np.concatenate([left.values, extra.values]),
                   np.concatenate([left.bounds, extra.bounds]))


def _binary(op: str, left: _Vector | float, right: _Vector | float) -> _Vector | float:
    """Arithmetic or ``> bool``: with a scalar on every series, else between series with equal labels."""
    apply = _OPERATORS[op]
    if isinstance(left, float) and isinstance(right, float):
        return float(apply(np.float64(left), np.float64(right)))
    if isinstance(left, float):
        return _Vector(right.keys, apply(np.float64(left), right.values), right.bounds)
    if isinstance(right, float):
        return _Vector(left.keys, apply(left.values, np.float64(right)), left.bounds)
    if left.keys != right.keys:
        position = {key: i for i, key in enumerate(right.keys)}
        pairs = [(i, position[key]) for i, key in enumerate(left.keys) if key in position]
        left = left.take(np.array([i for i, _ in pairs], dtype=int))
        right = right.take(np.array([j for _, j in pairs], dtype=int))
    return _Vector(left.keys, apply(left.values, right.values), left.bounds)


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


def _quantile(buckets: _Vector, q: float) -> float | None:
    """``histogram_quantile(q, sum by (le) (…)) > -Inf``, and the catalog's marker: the top finite
    bucket (the largest finite cumulative rate) holds under ``q`` of all observations."""
    if not buckets.keys:
        return None
    if np.isnan(buckets.bounds).any():
        raise Unsupported("the demo cannot take a quantile of series that are not histogram buckets")
    bounds, position = np.unique(buckets.bounds, return_inverse=True)
    rates = np.bincount(position, weights=buckets.values, minlength=len(bounds)).tolist()
    value = histogram_quantile(q, bounds.tolist(), rates)
    if math.isnan(value):
        return None
    quantile = _Quantile(value)
    finite = [rate for bound, rate in zip(bounds, rates) if not math.isinf(bound)]
    total = sum(rate for bound, rate in zip(bounds, rates) if math.isinf(bound))
    quantile.beyond_top_bucket = bool(finite) and max(finite) < q * total
    return quantile


_AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {"max": np.max, "min": np.min, "sum": np.sum}


def _aggregate(shape: str, values: np.ndarray) -> float | None:
    if shape not in _AGGREGATIONS:
        raise Unsupported(f"the demo cannot aggregate by {shape!r}")
    return float(_AGGREGATIONS[shape](values)) if values.size else None


def _answer(
    evaluator: _Evaluator, sig: Signal, targets: list[_Target], containers: list[_Target]
) -> float | None:
    """What the catalog's query of ``sig`` answers over these targets (one node's, or a cluster's):
    its shape over its expressions, else its ``legacy`` fallback, else its ``container`` one."""
    try:
        if sig.shape == "ratio":
            numerator, denominator = (evaluator.vector(expr, targets) for expr in sig.exprs)
            value = _ratio(numerator.values, denominator.values)
        elif sig.shape == "quantile":
            value = _quantile(evaluator.vector(sig.exprs[0], targets), sig.quantile)
        else:
            value = _aggregate(sig.shape, evaluator.vector(sig.exprs[0], targets).values)
        for legacy in sig.legacy:
            if value is None:
                value = _aggregate("max", evaluator.vector(legacy, targets).values)
        for container in sig.container:
            if value is None:
                value = _aggregate(sig.shape, evaluator.vector(container, containers).values)
    except Unsupported as error:
        raise Unsupported(f"{sig.component}/{sig.name}: {error}") from error
    return value


class DemoSource:
    """A ``HealthSource`` over a generated scenario, answered in closed form (no time series kept).

    Every signal is answered from its catalog definition: the component's selector picks the
    targets, the signal's expressions (read by :mod:`.expressions`) pick and combine their series,
    its shape aggregates them, and its ``legacy`` and ``container`` expressions stand in where the
    main ones find nothing. Nothing about a signal is restated here.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        clusters = len(scenario.clusters)
        self.description = (
            f"embedded demo ({clusters} cluster{'s' if clusters != 1 else ''}, "
            f"{scenario.nodes} node{'s' if scenario.nodes != 1 else ''} each, generated)"
        )
        self._targets: dict[str, list[_Target]] = {}
        for target in _FleetModel(scenario).targets:
            self._targets.setdefault(target.cluster, []).append(target)
        self._layouts: dict[tuple[int, int], _Layout | None] = {}

    def _clusters(self, cluster: str | None) -> list[str]:
        return [c for c in self.scenario.clusters if cluster is None or c == cluster]

    def _selected(self, cluster: str, selector: str, node: str | None = None) -> list[_Target]:
        """The cluster's targets whose labels ``selector`` matches (on ``node`` only, if given)."""
        matchers = _parse_matchers(selector)
        return [
            t for t in self._targets.get(cluster, []) if _matches(t.labels, matchers) and node in (None, t.node)
        ]

    def _component(
        self, catalog: Catalog, cluster: str, component: str, node: str | None = None
    ) -> tuple[list[_Target], list[_Target]]:
        """The targets ``$sel`` picks for ``component``: by its selector, and its cAdvisor series."""
        own = self._selected(cluster, catalog.selectors.for_component(component), node)
        if component not in COMPONENTS:
            return own, []
        return own, self._selected(cluster, catalog.selectors.for_container(component), node)

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        """The catalog's signals at ``at``, as its queries would read them from the written series."""
        probe = _Probe(self.scenario, round(_utc_seconds(at) * 1000), round(parse_duration(catalog.window) * 1000))
        evaluator = _Evaluator(probe, self._layouts)
        rows: list[dict] = []
        for name in self._clusters(cluster):
            selected = {c: self._component(catalog, name, c) for c in (*COMPONENTS, "node")}
            inventory = self._selected(name, catalog.selectors.kube_state_metrics)
            rows.extend(self._inventory(probe, catalog, name, inventory, {c: own for c, (own, _) in selected.items()}))
            by_node = {c: (_by_node(own), _by_node(cadvisor)) for c, (own, cadvisor) in selected.items()}
            for sig in catalog.signals:
                if sig.name in catalog.known_absent(sig.component):
                    continue
                own, cadvisor = by_node[sig.component]
                for node in {**own, **cadvisor}:
                    value = _answer(evaluator, sig, own.get(node, []), cadvisor.get(node, []))
                    rows.extend(_rows(name, node, sig.component, sig.name, "node", value))
                if sig.rollup and (own or cadvisor):
                    value = _answer(evaluator, sig, *selected[sig.component])
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
            sig for sig in range_catalog.signals
            if sig.kind == "work" and sig.name not in catalog.known_absent(sig.component)
        ]
        clusters = self._clusters(cluster)
        chosen = {
            (name, component): self._component(catalog, name, component, node)
            for name in clusters for component in {sig.component for sig in signals}
        }
        frames = []
        for at in range_steps(start, end, step):
            evaluator = _Evaluator(_Probe(self.scenario, round(_utc_seconds(at) * 1000), window_ms), self._layouts)
            rows = [
                row
                for name in clusters for sig in signals if any(chosen[(name, sig.component)])
                for row in _rows(name, node, sig.component, sig.name, "cluster" if node is None else "node",
                                 _answer(evaluator, sig, *chosen[(name, sig.component)]))
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
        known = {labels["node"] for t in inventory for labels in _visible(probe, t, "kube_node_info")}
        known |= {t.node for t in selected["kubelet"] if _visible(probe, t, "up")}
        dns_pods = re.compile(catalog.dns_pod_regex)
        hosts = {
            labels["node"]
            for t in inventory
            for labels in _visible(probe, t, "kube_pod_info")
            if labels["namespace"] == catalog.dns_namespace and dns_pods.fullmatch(labels["pod"])
        }
        hosts |= {t.node for t in selected["dns"] if _visible(probe, t, "up")}
        for signal, nodes in (("known_nodes", known), ("dns_hosts", hosts)):
            for node in self.scenario.node_names:
                if node in nodes:
                    yield _row(cluster, node, "inventory", signal, "node", 1.0)


def _by_node(targets: list[_Target]) -> dict[str, list[_Target]]:
    """Targets grouped by the node they run on, in order (targets on no node left out)."""
    grouped: dict[str, list[_Target]] = {}
    for target in targets:
        if target.node is not None:
            grouped.setdefault(target.node, []).append(target)
    return grouped


def _visible(probe: _Probe, target: _Target, family: str) -> tuple[Mapping[str, str], ...]:
    """The labels of ``family``'s series when the lookback sees them."""
    if family not in target.families or probe.latest(target, family) is None:
        return ()
    return target.families[family].labels


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
