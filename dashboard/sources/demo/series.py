"""Scrape targets whose series have closed forms, so any sample is computed when asked for.

Every series of a scrape target is a function of time with a closed form. A counter's rate is
``level + swing * sin(2 pi t / 1 day + phase)`` on each *phase* (a time span with a fixed set of
active incidents), so its value at any sample time is its base (its count before the history,
from the process's uptime) plus an exact integral. Gauges are ``level + swing * sin(...)``.
Histograms share one observation rate per labelset, split over the buckets by a cumulative
profile per phase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DAY_SECONDS = 86400.0


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


def exposed_name(family: str, block: _Block) -> str:
    """The name ``family``'s samples carry when written: counters end in ``_total``, histograms'
    buckets in ``_bucket`` (their ``_count`` and ``_sum`` are written too, and no signal reads them)."""
    if isinstance(block, _Counters):
        return f"{family}_total"
    if isinstance(block, _Histograms):
        return f"{family}_bucket"
    return family


def le_text(bound: float) -> str:
    """A bucket bound as the Go exporters print it in ``le``: ``0.005``, ``1``, ``+Inf``."""
    if math.isinf(bound):
        return "+Inf"
    text = repr(bound)
    return text[:-2] if text.endswith(".0") else text


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


def _profile_mean(bounds: Sequence[float], profile: Sequence[float]) -> float:
    """A plausible mean duration for a profile (bucket midpoints; 1.5 x the top bound for +Inf)."""
    mean, previous_bound, previous_share = 0.0, 0.0, 0.0
    for bound, share in zip(bounds, profile):
        mid = 1.5 * previous_bound if math.isinf(bound) else (max(previous_bound, 0.0) + bound) / 2
        mean += (share - previous_share) * mid
        previous_bound, previous_share = bound, share
    return mean


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
        per_phase = [[fn(p.effects) for p in self.phases] for _, _, fn in series]
        usual_profiles = [fn({}) for _, _, fn in series]
        mean_of: dict[tuple[float, ...], float] = {}  # a phase without incidents has the usual profile

        def mean(profile: tuple[float, ...]) -> float:
            if profile not in mean_of:
                mean_of[profile] = _profile_mean(bounds, profile)
            return mean_of[profile]

        profiles = np.array(per_phase)
        usual = np.array(usual_profiles)
        base_count = np.array([rate * self.uptime for _, rate, _ in series])
        widest = np.maximum(profiles.max(axis=1), usual)
        means = np.array([[mean(pr) for pr in per_series] for per_series in per_phase])
        usual_means = np.array([mean(pr) for pr in usual_profiles])
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
