"""Instant vectors at every step, as arrays over all their series, and PromQL's operators on them.

A series is named by integers rather than by its labels: the scrape target it comes from and the id
of its own labels (what the family, ``le`` and ``label_replace`` add), interned in :class:`Labels`.
Two series then have equal label sets exactly when their keys are equal (the key pairs the id of the
target's label set with the series' own), as long as their own labels never restate one of their
target's labels; otherwise the vector keeps the id of each series' whole label set instead
(``whole``), which costs a Python call per series but reads the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_LabelSet = frozenset[tuple[str, str]]


class Labels:
    """Label sets interned as ids, and the targets' labels (by position in the source's list).

    ``distinct_targets`` says that no two targets carry the same labels, so that series of different
    targets never match: a vector's answer per node is then its answer over each node's series."""

    def __init__(self, targets: Sequence[Mapping[str, str]]):
        self._ids: dict[_LabelSet, int] = {}
        self.sets: list[_LabelSet] = []
        self._lock = threading.Lock()  # the app's sessions query one source from several threads
        self.targets = targets
        self.target_key = np.array([self.intern(frozenset(labels.items())) for labels in targets], dtype=np.int64)
        self.distinct_targets = len(set(self.target_key.tolist())) == len(targets)

    def intern(self, labels: _LabelSet) -> int:
        with self._lock:
            if labels not in self._ids:
                self._ids[labels] = len(self.sets)
                self.sets.append(labels)
            return self._ids[labels]

    def keys(self, targets: np.ndarray, own: np.ndarray) -> np.ndarray:
        """The keys of series of these targets with these own label ids (see the module's docstring)."""
        return (self.target_key[targets] << 32) | own


@dataclass(frozen=True)
class Vector:
    """An instant vector at every step: each series' target, own (or, ``whole``, full) label set id
    and key, values and the steps it exists at (series x steps), and for a histogram's buckets their
    upper bound (NaN for other series)."""

    targets: np.ndarray
    own: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    present: np.ndarray
    bounds: np.ndarray
    whole: bool = False

    def take(self, positions: np.ndarray | slice) -> Vector:
        return Vector(self.targets[positions], self.own[positions], self.keys[positions], self.values[positions],
                      self.present[positions], self.bounds[positions], self.whole)

    def as_whole(self, labels: Labels) -> Vector:
        """The same series keyed by their whole label sets."""
        if self.whole:
            return self
        ids = np.array(
            [labels.intern(frozenset({**labels.targets[t], **dict(labels.sets[o])}.items()))
             for t, o in zip(self.targets.tolist(), self.own.tolist())],
            dtype=np.int64,
        )
        return Vector(self.targets, ids, ids, self.values, self.present, self.bounds, True)


def no_series(steps: int) -> Vector:
    empty = np.empty(0, dtype=np.int64)
    return Vector(empty, empty, empty, np.empty((0, steps)), np.empty((0, steps), dtype=bool), np.empty(0))


def concat(vectors: Sequence[Vector], labels: Labels) -> Vector:
    if any(v.whole for v in vectors) and not all(v.whole for v in vectors):
        vectors = [v.as_whole(labels) for v in vectors]
    return Vector(
        *(np.concatenate([getattr(v, name) for v in vectors]) for name in ("targets", "own", "keys", "values",
                                                                           "present", "bounds")),
        vectors[0].whole,
    )


def in_target_order(vector: Vector) -> Vector:
    """The series sorted by target, each target's in their order (a selector lists them so)."""
    if vector.targets.size < 2 or (np.diff(vector.targets) >= 0).all():
        return vector
    return vector.take(np.argsort(vector.targets, kind="stable"))


def label_replace(vector: Vector, label: str, value: str, labels: Labels) -> Vector:
    """Every series gains ``label="value"``."""
    if not vector.whole and any(label in labels.targets[t] for t in np.unique(vector.targets).tolist()):
        vector = vector.as_whole(labels)
    distinct, position = np.unique(vector.own, return_inverse=True)
    renamed = np.array(
        [labels.intern(frozenset({**dict(labels.sets[o]), label: value}.items())) for o in distinct.tolist()],
        dtype=np.int64,
    )[position.reshape(-1)]
    keys = renamed if vector.whole else labels.keys(vector.targets, renamed)
    return Vector(vector.targets, renamed, keys, vector.values, vector.present, vector.bounds, vector.whole)


def _alike(left: Vector, right: Vector, labels: Labels) -> tuple[Vector, Vector]:
    if left.whole != right.whole:
        return left.as_whole(labels), right.as_whole(labels)
    return left, right


def or_(left: Vector, right: Vector, labels: Labels) -> Vector:
    """``left or right``: every series of ``left``, and those of ``right`` whose labels ``left`` lacks
    at that step."""
    if not right.keys.size:
        return left
    if not left.keys.size:
        return right
    left, right = _alike(left, right, labels)
    order = np.argsort(left.keys, kind="stable")
    keys, starts = np.unique(left.keys[order], return_index=True)
    seen = np.logical_or.reduceat(left.present[order], starts, axis=0)
    where = np.minimum(np.searchsorted(keys, right.keys), keys.size - 1)
    found = keys[where] == right.keys
    covered = np.where(found[:, None], seen[where], False)
    extra = Vector(right.targets, right.own, right.keys, right.values, right.present & ~covered, right.bounds,
                   right.whole)
    return concat([left, extra], labels)


_OPERATORS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "> bool": lambda left, right: np.greater(left, right).astype(float),
}


def binary(op: str, left: Vector | np.ndarray, right: Vector | np.ndarray, labels: Labels) -> Vector | np.ndarray:
    """Arithmetic or ``> bool``: with a scalar on every series, else between series with equal labels
    (every pair, in the left's order)."""
    apply = _OPERATORS[op]
    with np.errstate(divide="ignore", invalid="ignore"):  # values at steps without the series are unused
        if not isinstance(left, Vector) and not isinstance(right, Vector):
            return apply(left, right)
        if not isinstance(left, Vector):
            return Vector(right.targets, right.own, right.keys, apply(left[None, :], right.values), right.present,
                          right.bounds, right.whole)
        if not isinstance(right, Vector):
            return Vector(left.targets, left.own, left.keys, apply(left.values, right[None, :]), left.present,
                          left.bounds, left.whole)
        left, right = _alike(left, right, labels)
        order = np.argsort(right.keys, kind="stable")
        ordered = right.keys[order]
        lo, hi = np.searchsorted(ordered, left.keys, "left"), np.searchsorted(ordered, left.keys, "right")
        counts = hi - lo
        mine = np.repeat(np.arange(left.keys.size), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        theirs = order[np.repeat(lo, counts) + offsets]
        matched = left.take(mine)
        return Vector(
            matched.targets, matched.own, matched.keys,
            apply(matched.values, right.values[theirs]),
            matched.present & right.present[theirs],
            matched.bounds, matched.whole,
        )
