"""``DemoSource``: what the catalog's PromQL answers on the generated data, in closed form.

Samples sit on an epoch-aligned grid of ``step`` seconds. ``DemoSource`` evaluates the same
functions at the grid points a query would see and applies Prometheus 2.x semantics: range
selectors take samples in ``[t - range, t]``, ``rate()``/``increase()`` extrapolate as
``extrapolatedRate`` does, instant selectors look back 5 minutes, ``histogram_quantile`` is a
port of ``bucketQuantile``. Ratios, quantiles, rates and increases therefore match a real
Prometheus to float rounding (counters that start from zero, as the count signals' do, are not
extrapolated below it, as in Prometheus).

A range is evaluated at all its steps at once: each target's series are computed at every step's
first and last sample in one call, and the expressions combine (series x steps) arrays that also
say at which steps each series exists, so a range costs about what one instant does.

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
    _bucket_quantiles,
    _Extrapolation,
    _extrapolated_rate,
    _matches,
    _parse_matchers,
)
from dashboard.sources.demo.scenario import Scenario, _utc_seconds
from dashboard.sources.demo.series import _Clock, _Histograms, _Target, exposed_name, le_text
from dashboard.timeline import range_steps, range_window


@dataclass(frozen=True)
class _Sampled:
    """Where a family's samples fall in every step's window: the steps with enough of them (one in a
    lookback, two in a range), and at those the first and last sample's time and, for a range, how
    ``rate()`` extrapolates."""

    seen: np.ndarray  # (steps,)
    at: np.ndarray | slice  # the steps seen (a slice when all are)
    first_ms: np.ndarray
    last_ms: np.ndarray
    extrapolation: _Extrapolation | None

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Values at the steps seen (on the last axis) at every step, 0 where not seen."""
        if isinstance(self.at, slice):
            return values
        full = np.zeros((*values.shape[:-1], self.seen.size))
        full[..., self.at] = values
        return full


class _Probe:
    """Evaluates series of targets as PromQL would at every step at once, with one range window.

    Values come as (series, steps) arrays with the steps at which a selector sees the series."""

    def __init__(self, scenario: Scenario, at_ms: np.ndarray, range_ms: int):
        self.at_ms = at_ms
        self.range_ms = range_ms
        step_ms = scenario.step_seconds * 1000
        lookback_ms = int(LOOKBACK_SECONDS * 1000)
        first_ms, last_ms = scenario.first_sample * 1000, scenario.last_sample * 1000
        self._windows = {
            "range": (np.maximum(at_ms - range_ms, first_ms), np.minimum(at_ms, last_ms)),
            "lookback": (np.maximum(at_ms - lookback_ms, first_ms), np.minimum(at_ms, last_ms)),
        }
        lo = int(min(window[0].min() for window in self._windows.values()))
        hi = int(self._windows["range"][1].max())
        self._grid_ms = np.arange(-((-lo) // step_ms), hi // step_ms + 1, dtype=np.int64) * step_ms
        self._grid = self._grid_ms / 1000
        self._kept: dict[tuple[int, str], np.ndarray] = {}
        self._sampled: dict[tuple[int, str], _Sampled] = {}
        self._clocks: dict[tuple[int, bytes], _Clock] = {}
        self._values: dict[tuple[int, str, object], tuple[np.ndarray, np.ndarray] | None] = {}

    def _samples(self, target: _Target, family: str, window: str) -> _Sampled:
        """Where ``family``'s samples fall in every step's ``range`` or ``lookback`` window."""
        key = (id(target), family)
        if key not in self._kept:
            times = target.sample_times(self._grid, family=family)
            # All of the grid (the usual case) is shared, not copied per target and family.
            self._kept[key] = self._grid_ms if times.size == self._grid.size else np.rint(times * 1000).astype(np.int64)
        kept = self._kept[key]
        found = (id(kept), window)  # every kept array stays in self._kept: its id is not reused
        if found not in self._sampled:
            lo, hi = self._windows[window]
            start, stop = np.searchsorted(kept, lo, "left"), np.searchsorted(kept, hi, "right")
            count = stop - start
            seen = count >= (2 if window == "range" else 1)
            at = slice(None) if seen.all() else np.flatnonzero(seen)
            first_ms, last_ms = count[at], count[at]  # no sample at all: no step is seen
            if kept.size:
                first_ms, last_ms = kept[np.minimum(start, kept.size - 1)][at], kept[np.maximum(stop - 1, 0)][at]
            extrapolation = None
            if window == "range" and seen.any():
                at_ms = self.at_ms[at]
                extrapolation = _Extrapolation.of(first_ms, last_ms, count[at], at_ms - self.range_ms, at_ms)
            self._sampled[found] = _Sampled(seen, at, first_ms, last_ms, extrapolation)
        return self._sampled[found]

    def _clock(self, target: _Target, times_ms: np.ndarray) -> _Clock:
        """The target's clock at these sample times (shared by its families sampled alike)."""
        key = (id(target), times_ms.tobytes())
        if key not in self._clocks:
            self._clocks[key] = target.clock(times_ms / 1000)
        return self._clocks[key]

    def latest(self, target: _Target, family: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every series' latest value within the lookback and the steps that have one (None at none)."""
        key = (id(target), family, "latest")
        if key not in self._values:
            sampled = self._samples(target, family, "lookback")
            result = None
            if sampled.seen.any():
                values = target.families[family].values(self._clock(target, sampled.last_ms))
                result = sampled.spread(values), sampled.seen
            self._values[key] = result
        return self._values[key]

    def increase(self, target: _Target, family: str, is_rate: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """Every series' (or, for histograms, every bucket's) rate or increase and the steps with two samples."""
        key = (id(target), family, is_rate)
        if key not in self._values:
            sampled = self._samples(target, family, "range")
            result = None
            if sampled.extrapolation is not None:
                block = target.families[family]
                taken = sampled.first_ms.size
                values = block.values(self._clock(target, np.concatenate([sampled.first_ms, sampled.last_ms])))
                if isinstance(block, _Histograms):
                    values = values[0]
                rates = _extrapolated_rate(
                    values[..., :taken], values[..., taken:], sampled.extrapolation, is_rate=is_rate
                )
                result = sampled.spread(rates).reshape(-1, sampled.seen.size), sampled.seen
            self._values[key] = result
        return self._values[key]


@dataclass(frozen=True)
class _Vector:
    """An instant vector at every step: each series' labels (without the metric name, which vector
    matching ignores), values and the steps it exists at (series x steps), and, for a histogram's
    buckets, upper bound (NaN for other series)."""

    keys: tuple[frozenset[tuple[str, str]], ...]
    values: np.ndarray
    present: np.ndarray
    bounds: np.ndarray

    def take(self, positions: np.ndarray) -> _Vector:
        keys = tuple(self.keys[i] for i in positions)
        return _Vector(keys, self.values[positions], self.present[positions], self.bounds[positions])


def _no_series(steps: int) -> _Vector:
    return _Vector((), np.empty((0, steps)), np.empty((0, steps), dtype=bool), np.empty(0))


def _concat(vectors: list[_Vector]) -> _Vector:
    return _Vector(
        tuple(key for vector in vectors for key in vector.keys),
        np.concatenate([vector.values for vector in vectors]),
        np.concatenate([vector.present for vector in vectors]),
        np.concatenate([vector.bounds for vector in vectors]),
    )


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
    """The catalog's templates on one probe: selectors, ``rate``/``increase``, ``or``, arithmetic.

    A scalar is an array of one value per step, a vector a :class:`_Vector`."""

    def __init__(self, probe: _Probe, layouts: dict[tuple[int, int], _Layout | None]):
        self.probe = probe
        self.layouts = layouts
        self.steps = probe.at_ms.size
        self._picked: dict[tuple[int, int], _Vector | None] = {}

    def vector(self, template: str, targets: list[_Target]) -> _Vector:
        result = self._evaluate(parse(template), targets)
        if not isinstance(result, _Vector):
            raise Unsupported(f"the demo cannot evaluate {template!r}: a scalar, not a vector")
        return result

    def _evaluate(self, expr: Expr, targets: list[_Target]) -> _Vector | np.ndarray:
        if isinstance(expr, Number):
            return np.full(self.steps, expr.value)
        if isinstance(expr, Time):
            return self.probe.at_ms / 1000
        if isinstance(expr, Select):
            return self._select(expr, targets)
        if isinstance(expr, LabelReplace):
            found = self._evaluate(expr.expr, targets)
            if not isinstance(found, _Vector):
                raise Unsupported("the demo cannot evaluate label_replace over a scalar")
            keys = tuple(frozenset({**dict(key), expr.label: expr.value}.items()) for key in found.keys)
            return _Vector(keys, found.values, found.present, found.bounds)
        left, right = self._evaluate(expr.left, targets), self._evaluate(expr.right, targets)
        if expr.op == "or":
            return _or(left, right)
        return _binary(expr.op, left, right)

    def _select(self, select: Select, targets: list[_Target]) -> _Vector:
        found = [picked for target in targets if (picked := self._pick(target, select)) is not None]
        if len(found) < 2:
            return found[0] if found else _no_series(self.steps)
        return _concat(found)

    def _pick(self, target: _Target, select: Select) -> _Vector | None:
        """The target's series that ``select`` picks, None when it has none or the window no sample."""
        key = (id(target), id(select))  # parse() keeps every Select alive: its id is not reused
        if key not in self._picked:
            if key not in self.layouts:
                self.layouts[key] = _layout(target, select)
            self._picked[key] = self._sample(target, select, self.layouts[key])
        return self._picked[key]

    def _sample(self, target: _Target, select: Select, layout: _Layout | None) -> _Vector | None:
        if layout is None:
            return None
        if select.function is None:
            sampled = self.probe.latest(target, layout.family)
        else:
            sampled = self.probe.increase(target, layout.family, is_rate=select.function == "rate")
        if sampled is None:
            return None
        values, seen = sampled
        chosen = values[layout.mask]
        return _Vector(layout.keys, chosen, np.repeat(seen[None, :], len(chosen), axis=0), layout.bounds)


def _or(left: _Vector | np.ndarray, right: _Vector | np.ndarray) -> _Vector:
    """``left or right``: every series of ``left``, and those of ``right`` whose labels ``left`` lacks
    at that step."""
    if not isinstance(left, _Vector) or not isinstance(right, _Vector):
        raise Unsupported("the demo cannot evaluate 'or' with a scalar")
    if not right.keys:
        return left
    if not left.keys:
        return right
    rows: dict[frozenset[tuple[str, str]], list[int]] = {}
    for i, key in enumerate(left.keys):
        rows.setdefault(key, []).append(i)
    nowhere = np.zeros(left.present.shape[1], dtype=bool)
    covered = np.array([left.present[rows[key]].any(axis=0) if key in rows else nowhere for key in right.keys])
    extra = _Vector(right.keys, right.values, right.present & ~covered, right.bounds)
    return _concat([left, extra])


def _binary(op: str, left: _Vector | np.ndarray, right: _Vector | np.ndarray) -> _Vector | np.ndarray:
    """Arithmetic or ``> bool``: with a scalar on every series, else between series with equal labels."""
    apply = _OPERATORS[op]
    with np.errstate(divide="ignore", invalid="ignore"):  # values at steps without the series are unused
        if not isinstance(left, _Vector) and not isinstance(right, _Vector):
            return apply(left, right)
        if not isinstance(left, _Vector):
            return _Vector(right.keys, apply(left[None, :], right.values), right.present, right.bounds)
        if not isinstance(right, _Vector):
            return _Vector(left.keys, apply(left.values, right[None, :]), left.present, left.bounds)
        positions: dict[frozenset[tuple[str, str]], list[int]] = {}
        for j, key in enumerate(right.keys):
            positions.setdefault(key, []).append(j)
        pairs = [(i, j) for i, key in enumerate(left.keys) for j in positions.get(key, ())]
        mine = np.array([i for i, _ in pairs], dtype=int)
        theirs = np.array([j for _, j in pairs], dtype=int)
        matched = left.take(mine)
        return _Vector(
            matched.keys,
            apply(matched.values, right.values[theirs]),
            matched.present & right.present[theirs],
            matched.bounds,
        )


_Positions = np.ndarray | slice


def _groups(present: np.ndarray) -> Iterator[tuple[_Positions, _Positions]]:
    """The steps at which the same series are present, as (those series, those steps), for every
    such set that is not empty."""
    if not present.size:
        return
    if present.all():
        yield slice(None), slice(None)
        return
    patterns, inverse = np.unique(present.T, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for k, pattern in enumerate(patterns):
        if pattern.any():
            yield np.flatnonzero(pattern), np.flatnonzero(inverse == k)


def _by_step(vector: _Vector, rows: _Positions, steps: _Positions) -> np.ndarray:
    """The values of those series at those steps, a row per step (so reductions go as on one vector)."""
    return np.ascontiguousarray(vector.values[rows][:, steps].T)


@dataclass(frozen=True)
class _Answer:
    """A signal's value at every step, the steps that have one, and those whose quantile rank fell in
    the +Inf bucket (then the value is the top finite bound)."""

    values: np.ndarray
    has: np.ndarray
    beyond_top_bucket: np.ndarray

    def or_else(self, other: _Answer) -> _Answer:
        return _Answer(
            np.where(self.has, self.values, other.values),
            self.has | other.has,
            np.where(self.has, self.beyond_top_bucket, other.beyond_top_bucket),
        )


def _plain(values: np.ndarray, has: np.ndarray) -> _Answer:
    return _Answer(values, has, np.zeros(has.shape, dtype=bool))


def _sum(vector: _Vector) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the sum of the series present (0 with none) and whether any is."""
    steps = vector.present.shape[1]
    total, has = np.zeros(steps), np.zeros(steps, dtype=bool)
    for rows, at in _groups(vector.present):
        total[at] = _by_step(vector, rows, at).sum(axis=1)
        has[at] = True
    return total, has


def _ratio(numerator: _Vector, denominator: _Vector) -> _Answer:
    """``(sum(num) or sum(den) * 0) / sum(den) > -Inf``: 0/0 (nothing in the window) is no series."""
    above, _ = _sum(numerator)
    below, has = _sum(denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = above / below
    return _plain(ratio, has & ~np.isnan(ratio))


def _quantile(buckets: _Vector, q: float) -> _Answer:
    """``histogram_quantile(q, sum by (le) (…)) > -Inf``, and the catalog's marker: the top finite
    bucket (the largest finite cumulative rate) holds under ``q`` of all observations."""
    steps = buckets.present.shape[1]
    answer = _Answer(np.zeros(steps), np.zeros(steps, dtype=bool), np.zeros(steps, dtype=bool))
    for rows, at in _groups(buckets.present):
        if np.isnan(buckets.bounds[rows]).any():
            raise Unsupported("the demo cannot take a quantile of series that are not histogram buckets")
        bounds, position = np.unique(buckets.bounds[rows], return_inverse=True)
        chosen = buckets.values[rows][:, at]
        rates = np.zeros((len(bounds), chosen.shape[1]))
        np.add.at(rates, position, chosen)  # in series order, as np.bincount adds
        rates = rates.T
        values = _bucket_quantiles(q, bounds, rates)
        finite = ~np.isinf(bounds)
        total = rates[:, ~finite].sum(axis=1)
        answer.values[at] = values
        answer.has[at] = ~np.isnan(values)
        answer.beyond_top_bucket[at] = finite.any() and rates[:, finite].max(axis=1) < q * total
    return answer


_AGGREGATIONS: dict[str, Callable[..., np.ndarray]] = {"max": np.max, "min": np.min, "sum": np.sum}


def _aggregate(shape: str, vector: _Vector) -> _Answer:
    if shape not in _AGGREGATIONS:
        raise Unsupported(f"the demo cannot aggregate by {shape!r}")
    steps = vector.present.shape[1]
    values, has = np.zeros(steps), np.zeros(steps, dtype=bool)
    for rows, at in _groups(vector.present):
        values[at] = _AGGREGATIONS[shape](_by_step(vector, rows, at), axis=1)
        has[at] = True
    return _plain(values, has)


def _answer(
    evaluator: _Evaluator, sig: Signal, targets: list[_Target], containers: list[_Target]
) -> _Answer:
    """What the catalog's query of ``sig`` answers over these targets (one node's, or a cluster's)
    at every step: its shape over its expressions, else its ``legacy`` fallback, else its ``container`` one."""
    try:
        if sig.shape == "ratio":
            numerator, denominator = (evaluator.vector(expr, targets) for expr in sig.exprs)
            value = _ratio(numerator, denominator)
        elif sig.shape == "quantile":
            value = _quantile(evaluator.vector(sig.exprs[0], targets), sig.quantile)
        else:
            value = _aggregate(sig.shape, evaluator.vector(sig.exprs[0], targets))
        for legacy in sig.legacy:
            if not value.has.all():
                value = value.or_else(_aggregate("max", evaluator.vector(legacy, targets)))
        for container in sig.container:
            if not value.has.all():
                value = value.or_else(_aggregate(sig.shape, evaluator.vector(container, containers)))
    except Unsupported as error:
        raise Unsupported(f"{sig.component}/{sig.name}: {error}") from error
    return value


class _Rows:
    """Observation rows at every step, collected slot by slot (a cluster, node, component, signal
    and scope, in the order a single evaluation lists them) and read out step by step."""

    def __init__(self, steps: int):
        self.steps = steps
        self.slots: list[tuple[str, str | None, str, str, str]] = []
        self.values: list[np.ndarray] = []
        self.has: list[np.ndarray] = []

    def add(self, slot: tuple[str, str | None, str, str, str], values: np.ndarray, has: np.ndarray) -> None:
        self.slots.append(slot)
        self.values.append(values)
        self.has.append(has)

    def answer(self, cluster: str, node: str | None, component: str, signal: str, scope: str, answer: _Answer) -> None:
        """The signal's row where it has a value, and the catalog's marker row beside a quantile
        beyond its top bucket."""
        self.add((cluster, node, component, signal, scope), answer.values, answer.has)
        if answer.beyond_top_bucket.any():
            self.add((cluster, node, component, beyond_top_bucket(signal), scope), np.ones(self.steps),
                     answer.has & answer.beyond_top_bucket)

    def frame(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The observation frame, step after step, and each row's step."""
        if not self.slots:
            return observation_frame([]), np.empty(0, dtype=int)
        has = np.array(self.has).T
        step, slot = np.nonzero(has)
        columns = list(zip(*self.slots))
        frame = pd.DataFrame(
            {name: np.array(column, dtype=object)[slot] for name, column in zip(OBSERVATION_COLUMNS, columns)},
            columns=OBSERVATION_COLUMNS,
        )
        frame["value"] = np.array(self.values).T[has].astype(float)
        return frame, step


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

    def _evaluator(self, catalog: Catalog, steps: list[datetime]) -> _Evaluator:
        at_ms = np.array([round(_utc_seconds(at) * 1000) for at in steps], dtype=np.int64)
        return _Evaluator(_Probe(self.scenario, at_ms, round(parse_duration(catalog.window) * 1000)), self._layouts)

    def _evaluate(
        self, catalog: Catalog, steps: list[datetime], cluster: str | None
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The catalog's signals at every step, as its queries would read them from the written
        series: the observation frame and each row's step."""
        evaluator = self._evaluator(catalog, steps)
        rows = _Rows(len(steps))
        for name in self._clusters(cluster):
            selected = {c: self._component(catalog, name, c) for c in (*COMPONENTS, "node")}
            inventory = self._selected(name, catalog.selectors.kube_state_metrics)
            own_targets = {c: own for c, (own, _) in selected.items()}
            self._inventory(evaluator.probe, rows, catalog, name, inventory, own_targets)
            by_node = {c: (_by_node(own), _by_node(cadvisor)) for c, (own, cadvisor) in selected.items()}
            for sig in catalog.signals:
                if sig.name in catalog.known_absent(sig.component):
                    continue
                own, cadvisor = by_node[sig.component]
                for node in {**own, **cadvisor}:
                    value = _answer(evaluator, sig, own.get(node, []), cadvisor.get(node, []))
                    rows.answer(name, node, sig.component, sig.name, "node", value)
                if sig.rollup and (own or cadvisor):
                    value = _answer(evaluator, sig, *selected[sig.component])
                    rows.answer(name, None, sig.component, sig.name, "cluster", value)
        return rows.frame()

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        """The catalog's signals at ``at``, as its queries would read them from the written series."""
        frame, _ = self._evaluate(catalog, [at], cluster)
        return Observations(frame, source=self.description)

    def observe_range(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta, cluster: str | None = None
    ) -> Observations:
        """The catalog's signals at every step, as ``query_range`` would read them: :meth:`observe`
        at each step (all steps evaluated at once), with the rate window max(window, step) as the
        Prometheus source uses."""
        steps = range_steps(start, end, step)
        frame, step_of_row = self._evaluate(range_window(catalog, step), steps, cluster)
        return Observations(_timed(frame, steps, step_of_row), source=self.description)

    def observe_series(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta,
        cluster: str | None = None, node: str | None = None,
    ) -> Observations:
        """Every work signal at every step over all of a cluster's series (or one node's), as the
        Prometheus source's per-cluster (or node-picked) queries read them."""
        range_catalog = range_window(catalog, step)
        signals = [
            sig for sig in range_catalog.signals
            if sig.kind == "work" and sig.name not in catalog.known_absent(sig.component)
        ]
        steps = range_steps(start, end, step)
        evaluator = self._evaluator(range_catalog, steps)
        rows = _Rows(len(steps))
        for name in self._clusters(cluster):
            for sig in signals:
                chosen = self._component(catalog, name, sig.component, node)
                if any(chosen):
                    rows.answer(name, node, sig.component, sig.name, "cluster" if node is None else "node",
                                _answer(evaluator, sig, *chosen))
        frame, step_of_row = rows.frame()
        return Observations(_timed(frame, steps, step_of_row), source=self.description)

    def _inventory(
        self,
        probe: _Probe,
        rows: _Rows,
        catalog: Catalog,
        cluster: str,
        inventory: list[_Target],
        selected: Mapping[str, list[_Target]],
    ) -> None:
        known: dict[str, np.ndarray] = {}
        hosts: dict[str, np.ndarray] = {}
        for t in inventory:
            for labels, seen in _visible(probe, t, "kube_node_info"):
                known[labels["node"]] = known.get(labels["node"], False) | seen
        for t in selected["kubelet"]:
            for _, seen in _visible(probe, t, "up"):
                known[t.node] = known.get(t.node, False) | seen
        dns_pods = re.compile(catalog.dns_pod_regex)
        for t in inventory:
            for labels, seen in _visible(probe, t, "kube_pod_info"):
                if labels["namespace"] == catalog.dns_namespace and dns_pods.fullmatch(labels["pod"]):
                    hosts[labels["node"]] = hosts.get(labels["node"], False) | seen
        for t in selected["dns"]:
            for _, seen in _visible(probe, t, "up"):
                hosts[t.node] = hosts.get(t.node, False) | seen
        for signal, nodes in (("known_nodes", known), ("dns_hosts", hosts)):
            for node in self.scenario.node_names:
                if node in nodes:
                    rows.add((cluster, node, "inventory", signal, "node"), np.ones(rows.steps), nodes[node])


def _by_node(targets: list[_Target]) -> dict[str, list[_Target]]:
    """Targets grouped by the node they run on, in order (targets on no node left out)."""
    grouped: dict[str, list[_Target]] = {}
    for target in targets:
        if target.node is not None:
            grouped.setdefault(target.node, []).append(target)
    return grouped


def _visible(probe: _Probe, target: _Target, family: str) -> list[tuple[Mapping[str, str], np.ndarray]]:
    """The labels of ``family``'s series, each with the steps at which the lookback sees them."""
    latest = probe.latest(target, family) if family in target.families else None
    if latest is None:
        return []
    return [(labels, latest[1]) for labels in target.families[family].labels]


def _timed(frame: pd.DataFrame, steps: list[datetime], step_of_row: np.ndarray) -> pd.DataFrame:
    """The observation frame with each row's step time first (UTC)."""
    frame.insert(0, "time", pd.to_datetime([pd.Timestamp(at) for at in steps], utc=True)[step_of_row])
    return frame
