"""``DemoSource``: what the catalog's PromQL answers on the generated data, in closed form.

Samples sit on an epoch-aligned grid of ``step`` seconds. ``DemoSource`` evaluates the same
functions at the grid points a query would see and applies Prometheus 2.x semantics: range
selectors take samples in ``[t - range, t]``, ``rate()``/``increase()`` extrapolate as
``extrapolatedRate`` does, instant selectors look back 5 minutes, ``histogram_quantile`` is a
port of ``bucketQuantile``. Ratios, quantiles, rates and increases therefore match a real
Prometheus to float rounding (counters that start from zero, as the count signals' do, are not
extrapolated below it, as in Prometheus).

A range is evaluated at all its steps at once, and over all targets at once: targets of one layout
(:mod:`.groups`) have their series computed at every step's first and last sample in one call, the
expressions combine (series x steps) arrays that also say at which steps each series exists
(:mod:`.vectors`), and a cluster's nodes are answered together (:mod:`.answers`), so a range costs
about what one instant does, and a large fleet about what numpy takes over its arrays.

Prometheus 3 takes left-open ranges and lookbacks (one sample fewer on an aligned window):
ratios and quantiles are unchanged, plain rates of the daily-varying counters move by under 0.1 %,
and the edges of the history shift by a sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from dashboard.catalog import COMPONENTS, Catalog, Signal, beyond_top_bucket
from dashboard.durations import parse_duration
from dashboard.sources.base import OBSERVATION_COLUMNS, Observations, label_codes, observation_frame
from dashboard.sources.demo.answers import (
    Answer,
    aggregate,
    group_aggregate,
    group_quantile,
    group_ratio,
    quantile,
    ratio,
)
from dashboard.sources.demo.expressions import Expr, LabelReplace, Number, Select, Time, Unsupported, parse
from dashboard.sources.demo.fleet import _FleetModel
from dashboard.sources.demo.groups import _Group, group_targets
from dashboard.sources.demo.promql import (
    LOOKBACK_SECONDS,
    _Extrapolation,
    _extrapolated_rate,
    _matches,
    _parse_matchers,
)
from dashboard.sources.demo.scenario import Scenario, _utc_seconds
from dashboard.sources.demo.series import _Histograms, exposed_name, le_text
from dashboard.sources.demo.vectors import (
    Labels,
    Vector,
    binary,
    concat,
    in_target_order,
    label_replace,
    no_series,
    or_,
)
from dashboard.timeline import range_steps, range_window


_CHUNK_VALUES = 1 << 16
"""At most this many values of one group's family are computed at once (targets are taken in chunks):
temporaries of half a megabyte are reused by the allocator, where larger ones are mapped afresh and
their page faults cost more than the arithmetic (2,000 nodes: 3.8 -> 2.5 s for a 3 h range)."""


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


def _chunks(group: _Group, values_per_target: int) -> list[slice]:
    size = max(1, _CHUNK_VALUES // max(1, values_per_target))
    return [slice(start, start + size) for start in range(0, len(group.targets), size)]


class _Probe:
    """Evaluates the series of target groups as PromQL would at every step at once, with one range
    window. Values come as (targets, series, steps) arrays with the steps at which a selector sees
    the group's series (a group's targets are sampled alike)."""

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
        self._values: dict[tuple[int, str, object], tuple[np.ndarray, np.ndarray] | None] = {}

    def _samples(self, group: _Group, family: str, window: str) -> _Sampled:
        """Where ``family``'s samples fall in every step's ``range`` or ``lookback`` window."""
        key = (id(group), family)
        if key not in self._kept:
            times = group.sample_times(self._grid, family=family)
            # All of the grid (the usual case) is shared, not copied per group and family.
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

    def latest(self, group: _Group, family: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Every series' latest value within the lookback and the steps that have one (None at none)."""
        key = (id(group), family, "latest")
        if key not in self._values:
            sampled = self._samples(group, family, "lookback")
            result = None
            if sampled.seen.any():
                clock = group.clock(sampled.last_ms / 1000)
                series = len(group.families[family].labels)
                values = np.empty((len(group.targets), series, sampled.seen.size))
                for rows in _chunks(group, series * sampled.last_ms.size):
                    values[rows] = sampled.spread(group.values(family, clock, rows))
                result = values, sampled.seen
            self._values[key] = result
        return self._values[key]

    def increase(self, group: _Group, family: str, is_rate: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """Every series' (or, for histograms, every bucket's) rate or increase and the steps with two samples."""
        key = (id(group), family, is_rate)
        if key not in self._values:
            sampled = self._samples(group, family, "range")
            result = None
            if sampled.extrapolation is not None:
                block = group.families[family]
                taken = sampled.first_ms.size
                clock = group.clock(np.concatenate([sampled.first_ms, sampled.last_ms]) / 1000)
                series = len(block.labels) * (len(block.bounds) if isinstance(block, _Histograms) else 1)
                rates = np.empty((len(group.targets), series, sampled.seen.size))
                for rows in _chunks(group, series * 2 * taken):
                    values = group.values(family, clock, rows)
                    found = _extrapolated_rate(
                        values[..., :taken], values[..., taken:], sampled.extrapolation, is_rate=is_rate
                    )
                    rates[rows] = sampled.spread(found).reshape(found.shape[0], series, -1)
                result = rates, sampled.seen
            self._values[key] = result
        return self._values[key]


@dataclass(frozen=True)
class _Layout:
    """Which of a group's series a selector picks (static: labels never change over time): a mask over
    the family's series (for histograms: series x buckets, flattened), per target when a matcher
    reads a target label that differs between the group's targets; every series' own label set id
    and bound; and whether those own labels restate a target label."""

    family: str
    mask: np.ndarray
    own: np.ndarray
    bounds: np.ndarray
    whole: bool


def _layout(group: _Group, select: Select, labels: Labels) -> _Layout | None:
    """The group's series named ``select.name`` (as the writer exposes them) that its matchers pick."""
    family = next((f for f, block in group.families.items() if exposed_name(f, block) == select.name), None)
    if family is None:
        return None
    block = group.families[family]
    if isinstance(block, _Histograms):
        if select.function is None:
            raise Unsupported(f"the demo cannot evaluate an instant selector over {select.name}")
        series = [({**own, "le": le_text(b)}, b) for own in block.labels for b in block.bounds]
    else:
        series = [(own, math.nan) for own in block.labels]
    per_target = bool({name for name, _, _ in select.matchers} & group.varying)
    picked_by = group.targets if per_target else group.targets[:1]
    mask = np.array(
        [[_matches({**target.labels, **own}, select.matchers) for own, _ in series] for target in picked_by], dtype=bool
    ).reshape(len(picked_by), len(series))
    if not per_target:
        mask = mask[0]
    if not mask.any():
        return None
    return _Layout(
        family,
        mask,
        np.array([labels.intern(frozenset(own.items())) for own, _ in series], dtype=np.int64),
        np.array([bound for _, bound in series]),
        any(group.label_names & own.keys() for own, _ in series),
    )


class _Evaluator:
    """The catalog's templates on one probe: selectors, ``rate``/``increase``, ``or``, arithmetic,
    over a set of targets (positions in the source's list, ascending).

    A scalar is an array of one value per step, a vector a :class:`Vector`."""

    def __init__(self, probe: _Probe, source: DemoSource):
        self.probe = probe
        self.source = source
        self.labels = source._labels
        self.steps = probe.at_ms.size
        self._picked: dict[tuple[int, bytes], Vector] = {}

    def vector(self, template: str, targets: np.ndarray) -> Vector:
        result = self._evaluate(parse(template), targets)
        if not isinstance(result, Vector):
            raise Unsupported(f"the demo cannot evaluate {template!r}: a scalar, not a vector")
        return result

    def _evaluate(self, expr: Expr, targets: np.ndarray) -> Vector | np.ndarray:
        if isinstance(expr, Number):
            return np.full(self.steps, expr.value)
        if isinstance(expr, Time):
            return self.probe.at_ms / 1000
        if isinstance(expr, Select):
            return self._select(expr, targets)
        if isinstance(expr, LabelReplace):
            found = self._evaluate(expr.expr, targets)
            if not isinstance(found, Vector):
                raise Unsupported("the demo cannot evaluate label_replace over a scalar")
            return label_replace(found, expr.label, expr.value, self.labels)
        left, right = self._evaluate(expr.left, targets), self._evaluate(expr.right, targets)
        if expr.op == "or":
            if not isinstance(left, Vector) or not isinstance(right, Vector):
                raise Unsupported("the demo cannot evaluate 'or' with a scalar")
            return or_(left, right, self.labels)
        return binary(expr.op, left, right, self.labels)

    def _select(self, select: Select, targets: np.ndarray) -> Vector:
        """The series of these targets that ``select`` picks, in target order."""
        key = (id(select), targets.tobytes())  # parse() keeps every Select alive: its id is not reused
        if key not in self._picked:
            found = [
                picked for group, rows in self.source._members(targets)
                if (picked := self._pick(group, rows, select)) is not None
            ]
            if not found:
                self._picked[key] = no_series(self.steps)
            else:
                self._picked[key] = found[0] if len(found) == 1 else in_target_order(concat(found, self.labels))
        return self._picked[key]

    def _pick(self, group: _Group, rows: np.ndarray, select: Select) -> Vector | None:
        layout = self.source._layout(group, select)
        if layout is None:
            return None
        if select.function is None:
            sampled = self.probe.latest(group, layout.family)
        else:
            sampled = self.probe.increase(group, layout.family, is_rate=select.function == "rate")
        if sampled is None:
            return None
        values, seen = sampled
        if layout.mask.ndim == 1:
            mask = np.broadcast_to(layout.mask, (rows.size, layout.mask.size))
        else:
            mask = layout.mask[rows]
        targets = np.broadcast_to(group.index[rows][:, None], mask.shape)[mask]
        own = np.broadcast_to(layout.own, mask.shape)[mask]
        if rows.size < len(group.targets):
            values = values[rows]
        chosen = values.reshape(-1, self.steps) if mask.all() else values[mask]
        # Every series of a group is seen at the same steps: one row, read-only, stands for all.
        present = np.broadcast_to(seen, chosen.shape)
        vector = Vector(targets, own, self.labels.keys(targets, own), chosen, present,
                        np.broadcast_to(layout.bounds, mask.shape)[mask])
        return vector.as_whole(self.labels) if layout.whole else vector


def _answer(evaluator: _Evaluator, sig: Signal, targets: np.ndarray, containers: np.ndarray) -> Answer:
    """What the catalog's query of ``sig`` answers over these targets (one node's, or a cluster's)
    at every step: its shape over its expressions, else its ``legacy`` fallback, else its ``container`` one."""
    try:
        if sig.shape == "ratio":
            numerator, denominator = (evaluator.vector(expr, targets) for expr in sig.exprs)
            value = ratio(numerator, denominator)
        elif sig.shape == "quantile":
            value = quantile(evaluator.vector(sig.exprs[0], targets), sig.quantile)
        else:
            value = aggregate(sig.shape, evaluator.vector(sig.exprs[0], targets))
        for legacy in sig.legacy:
            if not value.has.all():
                value = value.or_else(aggregate("max", evaluator.vector(legacy, targets)))
        for container in sig.container:
            if not value.has.all():
                value = value.or_else(aggregate(sig.shape, evaluator.vector(container, containers)))
    except Unsupported as error:
        raise Unsupported(f"{sig.component}/{sig.name}: {error}") from error
    return value


@dataclass(frozen=True)
class _Nodes:
    """A component's targets by the node they run on (targets on no node left out): the nodes in
    order (those of its own targets, then those only its cAdvisor series know), and each target's node."""

    names: list[str]
    own: np.ndarray
    own_node: np.ndarray
    cadvisor: np.ndarray
    cadvisor_node: np.ndarray

    @staticmethod
    def of(source: DemoSource, own: np.ndarray, cadvisor: np.ndarray) -> _Nodes:
        position: dict[str, int] = {}
        chosen = []
        for targets in (own, cadvisor):
            on_nodes = [(t, node) for t in targets.tolist() if (node := source._targets[t].node) is not None]
            node_of = [position.setdefault(node, len(position)) for _, node in on_nodes]
            chosen.append((np.array([t for t, _ in on_nodes], dtype=np.int64), np.array(node_of, dtype=np.int64)))
        (own, own_node), (cadvisor, cadvisor_node) = chosen
        return _Nodes(list(position), own, own_node, cadvisor, cadvisor_node)

    def on(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        return self.own[self.own_node == node], self.cadvisor[self.cadvisor_node == node]


class _Grouped(Exception):
    """A vector whose series may match across targets: its nodes cannot be answered all at once."""


def _node_answers(evaluator: _Evaluator, sig: Signal, nodes: _Nodes) -> Answer:
    """:func:`_answer` for every node (a row each), all nodes evaluated at once."""
    count = len(nodes.names)
    node_of = np.full(len(evaluator.source._targets), -1, dtype=np.int64)
    node_of[nodes.own] = nodes.own_node
    container_of = np.full(len(evaluator.source._targets), -1, dtype=np.int64)
    container_of[nodes.cadvisor] = nodes.cadvisor_node

    def vector(template: str, targets: np.ndarray) -> tuple[Vector, np.ndarray]:
        found = evaluator.vector(template, targets)
        if found.whole or not evaluator.labels.distinct_targets:
            raise _Grouped
        return found, found.targets

    def needing(value: Answer, targets: np.ndarray, target_node: np.ndarray) -> np.ndarray:
        return targets[np.isin(target_node, np.flatnonzero(~value.has.all(axis=1)))]

    try:
        if sig.shape == "ratio":
            (numerator, num_targets), (denominator, den_targets) = (vector(e, nodes.own) for e in sig.exprs)
            value = group_ratio(numerator, node_of[num_targets], denominator, node_of[den_targets], count)
        elif sig.shape == "quantile":
            buckets, targets = vector(sig.exprs[0], nodes.own)
            value = group_quantile(buckets, node_of[targets], count, sig.quantile)
        else:
            found, targets = vector(sig.exprs[0], nodes.own)
            value = group_aggregate(sig.shape, found, node_of[targets], count)
        for legacy in sig.legacy:
            if not value.has.all():
                found, targets = vector(legacy, needing(value, nodes.own, nodes.own_node))
                value = value.or_else(group_aggregate("max", found, node_of[targets], count))
        for container in sig.container:
            if not value.has.all():
                found, targets = vector(container, needing(value, nodes.cadvisor, nodes.cadvisor_node))
                value = value.or_else(group_aggregate(sig.shape, found, container_of[targets], count))
    except _Grouped:
        each = [_answer(evaluator, sig, *nodes.on(node)) for node in range(count)]
        return Answer(*(np.array([getattr(a, name) for a in each]) for name in ("values", "has", "beyond_top_bucket")))
    except Unsupported as error:
        raise Unsupported(f"{sig.component}/{sig.name}: {error}") from error
    return value


class _Rows:
    """Observation rows at every step, collected slot by slot (a cluster, node, component, signal
    and scope, in the order a single evaluation lists them) and read out step by step."""

    def __init__(self, steps: int):
        self.steps = steps
        self.slots: list[tuple[str, str | None, str, str, str]] = []
        self.values: list[np.ndarray] = []  # blocks of (slots, steps)
        self.has: list[np.ndarray] = []

    def add(self, slot: tuple[str, str | None, str, str, str], values: np.ndarray, has: np.ndarray) -> None:
        self.slots.append(slot)
        self.values.append(values[None, :])
        self.has.append(has[None, :])

    def answer(self, cluster: str, node: str | None, component: str, signal: str, scope: str, answer: Answer) -> None:
        """The signal's row where it has a value, and the catalog's marker row beside a quantile
        beyond its top bucket."""
        self.nodes(cluster, [node], component, signal,
                   Answer(answer.values[None, :], answer.has[None, :], answer.beyond_top_bucket[None, :]), scope)

    def nodes(self, cluster: str, nodes: list[str | None], component: str, signal: str, answer: Answer,
              scope: str = "node") -> None:
        """:meth:`answer` for every node, a row of ``answer`` each."""
        marked = answer.beyond_top_bucket.any(axis=1)
        marker = beyond_top_bucket(signal)
        at = np.arange(len(nodes)) + np.cumsum(marked) - marked  # each node's row, after the markers before it
        values = np.empty((len(nodes) + int(marked.sum()), self.steps))
        has = np.empty(values.shape, dtype=bool)
        values[at], has[at] = answer.values, answer.has
        values[at[marked] + 1], has[at[marked] + 1] = 1.0, (answer.has & answer.beyond_top_bucket)[marked]
        for node, with_marker in zip(nodes, marked.tolist()):
            self.slots.append((cluster, node, component, signal, scope))
            if with_marker:
                self.slots.append((cluster, node, component, marker, scope))
        self.values.append(values)
        self.has.append(has)

    def frame(self, *, categorical: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """The observation frame, step after step, and each row's step; ``categorical`` labels for
        a range, as the Prometheus source sends them (:func:`~dashboard.sources.base.label_codes`)."""
        if not self.slots:
            return observation_frame([]), np.empty(0, dtype=int)
        has = np.concatenate(self.has).T
        step, slot = np.nonzero(has)
        # Each column is built over the slots that have rows and then repeated, which pandas does far
        # faster than reading a row's labels each; the values are the same, so is the inferred dtype.
        with_rows = np.zeros(len(self.slots), dtype=bool)
        with_rows[slot] = True
        used, inverse = np.flatnonzero(with_rows), (np.cumsum(with_rows) - 1)[slot]
        columns = [np.array(column, dtype=object)[used] for column in zip(*self.slots)]
        if categorical:
            labels = {}
            for name, column in zip(OBSERVATION_COLUMNS, columns):
                codes, categories = label_codes(column)
                labels[name] = pd.Categorical.from_codes(codes[inverse], categories=categories)
        else:
            labels = {name: pd.Series(column).array.take(inverse) for name, column in zip(OBSERVATION_COLUMNS, columns)}
        frame = pd.DataFrame(labels, columns=OBSERVATION_COLUMNS)
        frame["value"] = np.concatenate(self.values).T[has].astype(float)
        return frame, step


class DemoSource:
    """A ``HealthSource`` over a generated scenario, answered in closed form (no time series kept).

    Every signal is answered from its catalog definition: the component's selector picks the
    targets, the signal's expressions (read by :mod:`.expressions`) pick and combine their series,
    its shape aggregates them, and its ``legacy`` and ``container`` expressions stand in where the
    main ones find nothing. Nothing about a signal is restated here. Targets of one layout are
    evaluated together (:mod:`.groups`), and every node of a cluster at once.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        clusters = len(scenario.clusters)
        self.description = (
            f"embedded demo ({clusters} cluster{'s' if clusters != 1 else ''}, "
            f"{scenario.nodes} node{'s' if scenario.nodes != 1 else ''} each, generated)"
        )
        self._targets = _FleetModel(scenario).targets
        self._by_cluster: dict[str, list[int]] = {}
        for position, target in enumerate(self._targets):
            self._by_cluster.setdefault(target.cluster, []).append(position)
        self._groups = group_targets(self._targets)
        self._group_of = np.empty(len(self._targets), dtype=np.int64)
        self._row_of = np.empty(len(self._targets), dtype=np.int64)
        for g, group in enumerate(self._groups):
            self._group_of[group.index] = g
            self._row_of[group.index] = np.arange(group.index.size)
        self._labels = Labels([target.labels for target in self._targets])
        self._layouts: dict[tuple[int, int], _Layout | None] = {}
        self._matched: dict[tuple[str, str], np.ndarray] = {}
        self._membership: dict[bytes, list[tuple[_Group, np.ndarray]]] = {}

    def _members(self, targets: np.ndarray) -> list[tuple[_Group, np.ndarray]]:
        """The groups these targets belong to, each with the rows of its targets among them."""
        key = targets.tobytes()
        if key not in self._membership:
            groups = self._group_of[targets]
            self._membership[key] = [
                (self._groups[g], self._row_of[targets[groups == g]]) for g in np.unique(groups).tolist()
            ]
        return self._membership[key]

    def _layout(self, group: _Group, select: Select) -> _Layout | None:
        key = (id(group), id(select))  # groups and parsed selects live as long as the source
        if key not in self._layouts:
            self._layouts[key] = _layout(group, select, self._labels)
        return self._layouts[key]

    def _clusters(self, cluster: str | None) -> list[str]:
        return [c for c in self.scenario.clusters if cluster is None or c == cluster]

    def _selected(self, cluster: str, selector: str, node: str | None = None) -> np.ndarray:
        """The cluster's targets whose labels ``selector`` matches (on ``node`` only, if given)."""
        key = (cluster, selector)
        if key not in self._matched:
            matchers = _parse_matchers(selector)
            self._matched[key] = np.array(
                [t for t in self._by_cluster.get(cluster, []) if _matches(self._targets[t].labels, matchers)],
                dtype=np.int64,
            )
        found = self._matched[key]
        if node is None:
            return found
        return np.array([t for t in found.tolist() if self._targets[t].node == node], dtype=np.int64)

    def _component(
        self, catalog: Catalog, cluster: str, component: str, node: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The targets ``$sel`` picks for ``component``: by its selector, and its cAdvisor series."""
        own = self._selected(cluster, catalog.selectors.for_component(component), node)
        if component not in COMPONENTS:
            return own, np.empty(0, dtype=np.int64)
        return own, self._selected(cluster, catalog.selectors.for_container(component), node)

    def _evaluator(self, catalog: Catalog, steps: list[datetime]) -> _Evaluator:
        at_ms = np.array([round(_utc_seconds(at) * 1000) for at in steps], dtype=np.int64)
        return _Evaluator(_Probe(self.scenario, at_ms, round(parse_duration(catalog.window) * 1000)), self)

    def _evaluate(
        self, catalog: Catalog, steps: list[datetime], cluster: str | None, *, categorical: bool = False
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The catalog's signals at every step, as its queries would read them from the written
        series: the observation frame and each row's step."""
        # the evaluator's arrays are freed by the time the frame is built
        return self._rows(catalog, steps, cluster).frame(categorical=categorical)

    def _rows(self, catalog: Catalog, steps: list[datetime], cluster: str | None) -> _Rows:
        rows = _Rows(len(steps))
        for name in self._clusters(cluster):
            evaluator = self._evaluator(catalog, steps)  # a cluster's arrays serve no other: one each
            selected = {c: self._component(catalog, name, c) for c in (*COMPONENTS, "node")}
            inventory = self._selected(name, catalog.selectors.kube_state_metrics)
            own_targets = {c: own for c, (own, _) in selected.items()}
            self._inventory(evaluator.probe, rows, catalog, name, inventory, own_targets)
            nodes = {c: _Nodes.of(self, own, cadvisor) for c, (own, cadvisor) in selected.items()}
            for sig in catalog.signals:
                if sig.name in catalog.known_absent(sig.component):
                    continue
                on = nodes[sig.component]
                if on.names:
                    rows.nodes(name, on.names, sig.component, sig.name, _node_answers(evaluator, sig, on))
                    if sig.rollup:
                        value = _answer(evaluator, sig, *selected[sig.component])
                        rows.answer(name, None, sig.component, sig.name, "cluster", value)
        return rows

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
        frame, step_of_row = self._evaluate(range_window(catalog, step), steps, cluster, categorical=True)
        return Observations(_timed(frame, steps, step_of_row), source=self.description)

    def observe_series(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta,
        cluster: str | None = None, node: str | None = None,
    ) -> Observations:
        """Every work signal at every step over all of a cluster's series (or one node's), as the
        Prometheus source's per-cluster (or node-picked) queries read them."""
        steps = range_steps(start, end, step)
        rows = self._series_rows(catalog, range_window(catalog, step), steps, cluster, node)
        frame, step_of_row = rows.frame(categorical=True)
        return Observations(_timed(frame, steps, step_of_row), source=self.description)

    def _series_rows(
        self, catalog: Catalog, range_catalog: Catalog, steps: list[datetime], cluster: str | None, node: str | None
    ) -> _Rows:
        signals = [
            sig for sig in range_catalog.signals
            if sig.kind == "work" and sig.name not in catalog.known_absent(sig.component)
        ]
        rows = _Rows(len(steps))
        for name in self._clusters(cluster):
            evaluator = self._evaluator(range_catalog, steps)
            for sig in signals:
                own, cadvisor = self._component(catalog, name, sig.component, node)
                if own.size or cadvisor.size:
                    rows.answer(name, node, sig.component, sig.name, "cluster" if node is None else "node",
                                _answer(evaluator, sig, own, cadvisor))
        return rows

    def _inventory(
        self,
        probe: _Probe,
        rows: _Rows,
        catalog: Catalog,
        cluster: str,
        inventory: np.ndarray,
        selected: Mapping[str, np.ndarray],
    ) -> None:
        known: dict[str, np.ndarray] = {}
        hosts: dict[str, np.ndarray] = {}
        for labels, seen in self._visible(probe, inventory, "kube_node_info"):
            known[labels["node"]] = known.get(labels["node"], False) | seen
        for node, seen in self._up(probe, selected["kubelet"]):
            known[node] = known.get(node, False) | seen
        dns_pods = re.compile(catalog.dns_pod_regex)
        for labels, seen in self._visible(probe, inventory, "kube_pod_info"):
            if labels["namespace"] == catalog.dns_namespace and dns_pods.fullmatch(labels["pod"]):
                hosts[labels["node"]] = hosts.get(labels["node"], False) | seen
        for node, seen in self._up(probe, selected["dns"]):
            hosts[node] = hosts.get(node, False) | seen
        for signal, nodes in (("known_nodes", known), ("dns_hosts", hosts)):
            listed = [node for node in self.scenario.node_names if node in nodes]
            if listed:
                rows.nodes(cluster, listed, "inventory", signal,
                           _plain_rows(np.array([nodes[node] for node in listed]).reshape(len(listed), rows.steps)))

    def _visible(self, probe: _Probe, targets: np.ndarray, family: str) -> list[tuple[Mapping[str, str], np.ndarray]]:
        """The labels of the targets' ``family`` series, each with the steps at which the lookback sees them."""
        found = []
        for group, _ in self._members(targets):
            latest = probe.latest(group, family) if family in group.families else None
            if latest is not None:
                found += [(labels, latest[1]) for target in group.targets for labels in target.families[family].labels]
        return found

    def _up(self, probe: _Probe, targets: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """The targets on a node whose ``up`` the lookback sees, each with the steps at which it does."""
        found = []
        for t in targets.tolist():
            target = self._targets[t]
            group = self._groups[self._group_of[t]]
            latest = probe.latest(group, "up") if "up" in group.families else None
            if latest is not None and target.node is not None:
                found.append((target.node, latest[1]))
        return found


def _plain_rows(has: np.ndarray) -> Answer:
    return Answer(np.ones(has.shape), has, np.zeros(has.shape, dtype=bool))


def _timed(frame: pd.DataFrame, steps: list[datetime], step_of_row: np.ndarray) -> pd.DataFrame:
    """The observation frame with each row's step time first (UTC)."""
    frame.insert(0, "time", pd.to_datetime([pd.Timestamp(at) for at in steps], utc=True)[step_of_row])
    return frame
