"""Scrape targets grouped by layout, so that a query computes their series for all of them at once.

Targets of one cluster and component whose families carry the same series, and whose time is cut
into the same phases and sampled alike, form a group. A group answers with (targets x series x
times) arrays. Most targets have a single phase (no incident), where the phase products of
``series`` reduce to plain products that numpy broadcasts over the group; a group of targets cut
into several phases (a few incident targets) asks each target, as the writer does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dashboard.sources.demo.series import DAY_SECONDS, _Block, _Clock, _Counters, _Gauges, _Target

_OMEGA = 2 * math.pi / DAY_SECONDS


@dataclass(frozen=True)
class _Stacked:
    """One family's parameters over a single-phase group: each field of the block with the targets first."""

    block: _Block  # the first target's: labels, bounds, and the block's kind
    base: np.ndarray | None = None  # (targets, series); histograms: (targets, series, buckets)
    level: np.ndarray | None = None  # (targets, series)
    swing: np.ndarray | None = None
    base_sum: np.ndarray | None = None  # histograms: (targets, series)
    profile: np.ndarray | None = None  # histograms: (targets, series, buckets)
    mean: np.ndarray | None = None  # histograms: (targets, series)


def _stack(blocks: Sequence[_Block]) -> _Stacked:
    first = blocks[0]
    if isinstance(first, _Counters):
        return _Stacked(first, np.stack([b.base for b in blocks]), np.stack([b.level[:, 0] for b in blocks]),
                        np.stack([b.swing[:, 0] for b in blocks]))
    if isinstance(first, _Gauges):
        return _Stacked(first, None, np.stack([b.level[:, 0] for b in blocks]),
                        np.stack([b.swing[:, 0] for b in blocks]))
    return _Stacked(
        first,
        np.stack([b.base_buckets for b in blocks]),
        np.stack([b.level[:, 0] for b in blocks]),
        np.stack([b.swing[:, 0] for b in blocks]),
        np.stack([b.base_sum for b in blocks]),
        np.stack([b.profile[:, 0] for b in blocks]),
        np.stack([b.mean[:, 0] for b in blocks]),
    )


@dataclass(frozen=True)
class _GroupClock:
    """A group's time-dependent arrays at some sample times; ``per_target`` for a multi-phase group."""

    times: np.ndarray
    elapsed: np.ndarray | None = None  # (times,): seconds since the single phase started
    wave_area: np.ndarray | None = None  # (targets, times)
    within: np.ndarray | None = None  # (times,)
    wave: np.ndarray | None = None  # (targets, times)
    per_target: tuple[_Clock, ...] = ()


@dataclass(frozen=True)
class _Group:
    """Targets (positions in the source's list, ascending) that share one layout."""

    index: np.ndarray
    targets: tuple[_Target, ...]
    label_names: frozenset[str]  # of the targets' labels
    varying: frozenset[str]  # target labels whose value differs between the group's targets
    waves: np.ndarray  # (targets, 1): each target's wave phase
    start_area: np.ndarray  # (targets, 1): the wave's antiderivative at the first phase's start
    _stacked: dict[str, _Stacked] = field(default_factory=dict, compare=False)

    @property
    def first(self) -> _Target:
        return self.targets[0]

    @property
    def families(self) -> Mapping[str, _Block]:
        """The first target's families: their labels and bounds are every target's."""
        return self.first.families

    @property
    def single_phase(self) -> bool:
        return len(self.first.phases) == 1

    def sample_times(self, grid: np.ndarray, *, family: str) -> np.ndarray:
        return self.first.sample_times(grid, family=family)

    def clock(self, times: np.ndarray) -> _GroupClock:
        if not self.single_phase:
            return _GroupClock(times, per_target=tuple(target.clock(times) for target in self.targets))
        t = times.astype(float)
        phase = self.first.phases[0]
        clipped = np.clip(t, phase.start, phase.end)
        area = -np.cos(_OMEGA * clipped[None, :] + self.waves) / _OMEGA - self.start_area
        within = ((t >= phase.start) & (t < phase.end)).astype(float)
        return _GroupClock(t, clipped - phase.start, area, within, np.sin(_OMEGA * t[None, :] + self.waves))

    def _family(self, family: str) -> _Stacked:
        if family not in self._stacked:
            self._stacked[family] = _stack([target.families[family] for target in self.targets])
        return self._stacked[family]

    def values(self, family: str, clock: _GroupClock, rows: slice = slice(None)) -> np.ndarray:
        """The series of ``family`` of these rows' targets (targets x series x times); histograms'
        buckets as (targets x series x buckets x times). The same floats as each target's ``values``."""
        if clock.per_target:
            found = [target.families[family].values(c) for target, c in zip(self.targets[rows], clock.per_target[rows])]
            return np.stack([f[0] if isinstance(f, tuple) else f for f in found])
        stacked = self._family(family)
        level, swing = stacked.level[rows, :, None], stacked.swing[rows, :, None]
        if isinstance(stacked.block, _Counters):
            return (
                stacked.base[rows, :, None]
                + level * clock.elapsed[None, None, :]
                + swing * clock.wave_area[rows, None, :]
            )
        if isinstance(stacked.block, _Gauges):
            return (
                level * clock.within[None, None, :]
                + (swing * clock.within[None, None, :]) * clock.wave[rows, None, :]
                + stacked.block.clock[None, :, None] * clock.times[None, None, :]
            )
        observed = level * clock.elapsed[None, None, :] + swing * clock.wave_area[rows, None, :]
        return stacked.base[rows, :, :, None] + stacked.profile[rows, :, :, None] * observed[:, :, None, :]


def _layout_key(target: _Target) -> tuple:
    return (
        target.cluster, target.component, tuple((p.start, p.end) for p in target.phases), target.down,
        tuple(target.families),
    )


def _same_series(target: _Target, other: _Target) -> bool:
    return all(
        block.labels == other.families[family].labels
        and getattr(block, "bounds", None) == getattr(other.families[family], "bounds", None)
        for family, block in target.families.items()
    )


def group_targets(targets: Sequence[_Target]) -> list[_Group]:
    """The targets in groups of one layout, each group's targets in their order."""
    members: dict[tuple, list[list[int]]] = {}
    for position, target in enumerate(targets):
        candidates = members.setdefault(_layout_key(target), [])
        for candidate in candidates:
            if _same_series(targets[candidate[0]], target):
                candidate.append(position)
                break
        else:
            candidates.append([position])
    groups = []
    for candidates in members.values():
        for positions in candidates:
            chosen = tuple(targets[p] for p in positions)
            names = frozenset(name for target in chosen for name in target.labels)
            first = chosen[0].labels
            varying = frozenset(n for n in names if any(t.labels.get(n) != first.get(n) for t in chosen))
            waves = np.array([target.wave_phase for target in chosen])[:, None]
            start = chosen[0].phases[0].start
            # One scalar call each, as a target's own clock takes it.
            start_area = np.array([-np.cos(_OMEGA * start + w) / _OMEGA for w in waves[:, 0]])[:, None]
            groups.append(_Group(np.array(positions), chosen, names, varying, waves, start_area))
    return groups
