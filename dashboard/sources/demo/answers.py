"""A signal's shape over its vectors: sums, ratios, quantiles and aggregations at every step.

Each reduction comes in two forms: over one vector (a cluster, or the series one query selects), and
per group of series at once (every node of a cluster, ``group`` naming each series' node). The
grouped form reshapes the groups that hold the same number of series, all present at the same steps,
into one (groups x steps x series) array and reduces its last axis, which numpy sums as it sums each
group's own (steps x series) array; any other group goes through the one-vector form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dashboard.sources.demo.expressions import Unsupported
from dashboard.sources.demo.promql import _bucket_quantiles
from dashboard.sources.demo.vectors import Vector

_Positions = np.ndarray | slice


@dataclass(frozen=True)
class Answer:
    """A signal's value at every step, the steps that have one, and those whose quantile rank fell in
    the +Inf bucket (then the value is the top finite bound); grouped answers have a row per group."""

    values: np.ndarray
    has: np.ndarray
    beyond_top_bucket: np.ndarray

    def or_else(self, other: Answer) -> Answer:
        return Answer(
            np.where(self.has, self.values, other.values),
            self.has | other.has,
            np.where(self.has, self.beyond_top_bucket, other.beyond_top_bucket),
        )

    def rows(self, positions: np.ndarray) -> Answer:
        return Answer(self.values[positions], self.has[positions], self.beyond_top_bucket[positions])

    def with_rows(self, positions: np.ndarray, other: Answer) -> Answer:
        """This answer with ``other``'s rows at ``positions``."""
        values, has, beyond = self.values.copy(), self.has.copy(), self.beyond_top_bucket.copy()
        values[positions], has[positions], beyond[positions] = other.values, other.has, other.beyond_top_bucket
        return Answer(values, has, beyond)


def _plain(values: np.ndarray, has: np.ndarray) -> Answer:
    return Answer(values, has, np.zeros(has.shape, dtype=bool))


def _empty(shape: tuple[int, ...]) -> Answer:
    return Answer(np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool))


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


def _by_step(vector: Vector, rows: _Positions, steps: _Positions) -> np.ndarray:
    """The values of those series at those steps, a row per step (so reductions go as on one vector)."""
    return np.ascontiguousarray(vector.values[rows][:, steps].T)


def _sum(vector: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the sum of the series present (0 with none) and whether any is."""
    steps = vector.present.shape[1]
    total, has = np.zeros(steps), np.zeros(steps, dtype=bool)
    for rows, at in _groups(vector.present):
        total[at] = _by_step(vector, rows, at).sum(axis=1)
        has[at] = True
    return total, has


def ratio(numerator: Vector, denominator: Vector) -> Answer:
    """``(sum(num) or sum(den) * 0) / sum(den) > -Inf``: 0/0 (nothing in the window) is no series."""
    above, _ = _sum(numerator)
    below, has = _sum(denominator)
    return _ratio(above, below, has)


def _ratio(above: np.ndarray, below: np.ndarray, has: np.ndarray) -> Answer:
    with np.errstate(divide="ignore", invalid="ignore"):
        value = above / below
    return _plain(value, has & ~np.isnan(value))


def quantile(buckets: Vector, q: float) -> Answer:
    """``histogram_quantile(q, sum by (le) (…)) > -Inf``, and the catalog's marker: the top finite
    bucket (the largest finite cumulative rate) holds under ``q`` of all observations."""
    steps = buckets.present.shape[1]
    answer = _empty((steps,))
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


def aggregate(shape: str, vector: Vector) -> Answer:
    if shape not in _AGGREGATIONS:
        raise Unsupported(f"the demo cannot aggregate by {shape!r}")
    steps = vector.present.shape[1]
    values, has = np.zeros(steps), np.zeros(steps, dtype=bool)
    for rows, at in _groups(vector.present):
        values[at] = _AGGREGATIONS[shape](_by_step(vector, rows, at), axis=1)
        has[at] = True
    return _plain(values, has)


@dataclass(frozen=True)
class _Split:
    """A vector's series by group: the regular groups (as many series each, all present at the same
    steps) as arrays, and every other group that has series as its own vector."""

    regular: np.ndarray  # (groups,)
    values: np.ndarray  # (groups, series, steps)
    present: np.ndarray  # (groups, steps)
    bounds: np.ndarray  # (groups, series)
    others: list[tuple[int, Vector]]


def _split(vector: Vector, group: np.ndarray, count: int) -> _Split:
    if not group.size:
        steps = vector.present.shape[1]
        return _Split(group, np.empty((0, 0, steps)), np.empty((0, steps), dtype=bool), np.empty((0, 0)), [])
    if (np.diff(group) < 0).any():  # in target order, nodes come in order but for cAdvisor-only ones
        order = np.argsort(group, kind="stable")
        vector, group = vector.take(order), group[order]
    sizes = np.bincount(group, minlength=count)
    starts = np.cumsum(sizes) - sizes
    used = np.flatnonzero(sizes)
    width = int(np.bincount(sizes[used]).argmax())
    candidates = used[sizes[used] == width]
    rows = starts[candidates][:, None] + np.arange(width)
    present = vector.present[rows]
    uniform = (present == present[:, :1]).all(axis=(1, 2))
    regular = candidates[uniform]
    others = [(int(g), vector.take(slice(starts[g], starts[g] + sizes[g])))
              for g in np.setdiff1d(used, regular).tolist()]
    rows = rows[uniform]
    return _Split(regular, vector.values[rows], present[uniform][:, 0], vector.bounds[rows], others)


def _last_axis(values: np.ndarray) -> np.ndarray:
    """(groups, series, steps) as (groups, steps, series), contiguous as ``_by_step`` makes each group's."""
    return np.ascontiguousarray(values.transpose(0, 2, 1))


def _group_sums(vector: Vector, group: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    steps = vector.present.shape[1]
    total, has = np.zeros((count, steps)), np.zeros((count, steps), dtype=bool)
    split = _split(vector, group, count)
    if split.regular.size:
        total[split.regular] = np.where(split.present, _last_axis(split.values).sum(axis=-1), 0.0)
        has[split.regular] = split.present
    for g, own in split.others:
        total[g], has[g] = _sum(own)
    return total, has


def group_ratio(numerator: Vector, numerator_group: np.ndarray, denominator: Vector, denominator_group: np.ndarray,
                count: int) -> Answer:
    above, _ = _group_sums(numerator, numerator_group, count)
    below, has = _group_sums(denominator, denominator_group, count)
    return _ratio(above, below, has)


def group_aggregate(shape: str, vector: Vector, group: np.ndarray, count: int) -> Answer:
    if shape not in _AGGREGATIONS:
        raise Unsupported(f"the demo cannot aggregate by {shape!r}")
    steps = vector.present.shape[1]
    values, has = np.zeros((count, steps)), np.zeros((count, steps), dtype=bool)
    split = _split(vector, group, count)
    if split.regular.size:
        reduced = _AGGREGATIONS[shape](_last_axis(split.values), axis=-1)
        values[split.regular] = np.where(split.present, reduced, 0.0)
        has[split.regular] = split.present
    for g, own in split.others:
        answer = aggregate(shape, own)
        values[g], has[g] = answer.values, answer.has
    return _plain(values, has)


def group_quantile(buckets: Vector, group: np.ndarray, count: int, q: float) -> Answer:
    steps = buckets.present.shape[1]
    answer = _empty((count, steps))
    split = _split(buckets, group, count)
    others = [g for g, _ in split.others]
    # NaN bounds (series that are no buckets) are never alike: quantile() names them.
    alike = (split.bounds == split.bounds[:1]).all(axis=1)
    others += split.regular[~alike].tolist()
    regular, values, present = split.regular[alike], split.values[alike], split.present[alike]
    if regular.size:
        distinct, position = np.unique(split.bounds[alike][0], return_inverse=True)
        rates = np.zeros((regular.size, distinct.size, steps))
        for j, p in enumerate(position.reshape(-1).tolist()):  # in series order, as np.add.at adds
            rates[:, p, :] += values[:, j, :]
        rates = rates.transpose(0, 2, 1).reshape(-1, distinct.size)
        found = _bucket_quantiles(q, distinct, rates).reshape(regular.size, steps)
        finite = ~np.isinf(distinct)
        beyond = np.zeros(found.shape, dtype=bool)
        if finite.any():
            total = rates[:, ~finite].sum(axis=1)
            beyond = (rates[:, finite].max(axis=1) < q * total).reshape(found.shape)
        answer.values[regular] = np.where(present, found, 0.0)
        answer.has[regular] = present & ~np.isnan(found)
        answer.beyond_top_bucket[regular] = present & beyond
    for g in others:
        one = quantile(buckets.take(np.flatnonzero(group == g)), q)
        answer.values[g], answer.has[g], answer.beyond_top_bucket[g] = one.values, one.has, one.beyond_top_bucket
    return answer
