"""Prometheus semantics the demo shares between its source and its writer.

``histogram_quantile`` is a port of ``bucketQuantile`` and ``_extrapolated_rate`` of
``extrapolatedRate`` (promql, Prometheus 2.x); ``_parse_matchers`` reads the catalog's selectors
as Prometheus does.

Latency profiles are built from the p99 a node should show with ``quantile_profile`` (or, many at
once, checked together with ``check_profiles``), which checks its result with the same port of
``bucketQuantile``: what the writer's buckets make Prometheus answer is what the demo reports. A latency above the top finite bucket reads as that bound (PLEG's
buckets stop at 10 s), as in Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LOOKBACK_SECONDS = 300.0
"""Prometheus's default ``--query.lookback-delta``: an instant selector sees samples this old."""
QUANTILE = 0.99


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """What Prometheus's ``histogram_quantile`` answers for cumulative bucket counts.

    A port of ``bucketQuantile`` (promql/quantile.go, 2.x): buckets sorted by upper bound (+Inf
    last), equal bounds merged, counts forced monotonic, linear interpolation inside the bucket where
    the rank ``q * total`` falls (from 0 for the lowest bucket), and the highest finite bound when
    the rank falls in the +Inf bucket.
    """
    merged: list[list[float]] = []
    for bound, count in sorted(zip(bounds, counts), key=lambda pair: pair[0]):
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    merged_bounds = np.array([bound for bound, _ in merged], dtype=float)
    return float(_bucket_quantiles(q, merged_bounds, np.array([[count for _, count in merged]], dtype=float))[0])


def _bucket_quantiles(q: float, bounds: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``bucketQuantile`` at several evaluations at once: ``bounds`` ascending and distinct, ``counts``
    one row of cumulative counts per evaluation (evaluations x bounds); one quantile per evaluation."""
    evaluations = counts.shape[0]
    if math.isnan(q):
        return np.full(evaluations, math.nan)
    if q < 0:
        return np.full(evaluations, -math.inf)
    if q > 1:
        return np.full(evaluations, math.inf)
    if bounds.size < 2 or not math.isinf(bounds[-1]):
        return np.full(evaluations, math.nan)
    # Forced monotonic as max(highest, count) from -Inf: a NaN count never wins (nor does it in Python's max).
    counts = np.fmax.accumulate(np.hstack([np.full((evaluations, 1), -math.inf), counts]), axis=1)[:, 1:]
    observations = counts[:, -1]
    rank = q * observations
    reached = counts[:, :-1] >= rank[:, None]
    b = np.where(reached.any(axis=1), reached.argmax(axis=1), bounds.size - 1)
    rows = np.arange(evaluations)
    below = b > 0
    bucket_start = np.where(below, bounds[b - 1], 0.0)
    count_below = np.where(below, counts[rows, b - 1], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = bucket_start + (bounds[b] - bucket_start) * ((rank - count_below) / (counts[rows, b] - count_below))
    value = np.where((b == 0) & (bounds[0] <= 0), bounds[0], value)
    value = np.where(b == bounds.size - 1, bounds[-2], value)
    return np.where(observations == 0, math.nan, value)


_BODY_SHAPE = (1.0, 0.6, 0.25, 0.05)
"""Default cumulative share of the fast observations at the bounds below a profile's p99 bucket."""


def quantile_profile(
    bounds: Sequence[float],
    target: float,
    *,
    q: float = QUANTILE,
    body: Sequence[float] | None = None,
) -> tuple[float, ...]:
    """Cumulative bucket fractions (one per bound, 1 at +Inf) whose ``q``-quantile is ``target``,
    checked with ``histogram_quantile`` (see :func:`_unchecked_profile`)."""
    profile = _unchecked_profile(bounds, target, q=q, body=body)
    check_profiles(bounds, [profile], [target], q=q)
    return profile


def check_profiles(
    bounds: Sequence[float], profiles: Sequence[Sequence[float]], targets: Sequence[float], *, q: float = QUANTILE
) -> None:
    """Raise unless each profile's ``q``-quantile is its target (the highest finite bound for a target
    above it), as ``histogram_quantile`` reads them: all profiles of one layout in one call."""
    finite = max(b for b in bounds if not math.isinf(b))
    counts = np.array(profiles, dtype=float).reshape(-1, len(bounds))
    measured = _bucket_quantiles(q, np.array(bounds, dtype=float), counts)
    for value, target in zip(measured.tolist(), targets):
        if not math.isclose(value, min(target, finite), rel_tol=1e-9):
            raise AssertionError(f"profile gives {value}, not {min(target, finite)}")


def _unchecked_profile(
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
    return tuple([below * s for s in shape] + [at_hi] + [1.0] * (len(bounds) - hi - 1))


@dataclass(frozen=True)
class _Extrapolation:
    """Where the samples of a range sit, at several evaluations: all ``extrapolatedRate`` needs
    besides the counters' values (seconds to the range's start, between first and last sample, and
    over the whole range; the extrapolation threshold, half the average interval between samples,
    and how far the end is extrapolated)."""

    to_start: np.ndarray
    sampled: np.ndarray
    duration: np.ndarray
    threshold: np.ndarray
    half_interval: np.ndarray
    end_part: np.ndarray

    @staticmethod
    def of(
        first_ms: np.ndarray, last_ms: np.ndarray, samples: np.ndarray, range_start_ms: np.ndarray,
        range_end_ms: np.ndarray,
    ) -> _Extrapolation:
        """Ranges ``[range_start_ms, range_end_ms]`` whose first and last of ``samples`` (at least two)
        are at ``first_ms`` and ``last_ms``."""
        to_end = (range_end_ms - last_ms) / 1000
        sampled = (last_ms - first_ms) / 1000
        average = sampled / (samples - 1)
        threshold = average * 1.1
        return _Extrapolation(
            (first_ms - range_start_ms) / 1000,
            sampled,
            (range_end_ms - range_start_ms) / 1000,
            threshold,
            average / 2,
            np.where(to_end < threshold, to_end, average / 2),
        )


def _extrapolated_rate(first: np.ndarray, last: np.ndarray, where: _Extrapolation, *, is_rate: bool) -> np.ndarray:
    """``rate()``/``increase()`` of counters at several evaluations (Prometheus 2.x extrapolatedRate).

    Evaluations run along the last axis: ``first``/``last`` are the counters' values at each
    evaluation's first and last sample, placed in their ranges by ``where``; counters here never reset.
    """
    result = last - first
    # A counter is not extrapolated below zero: a nearer zero point replaces the range start.
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first >= 0), where.sampled * (first / result), math.inf)
    start = np.minimum(where.to_start, to_zero)
    start_part = np.where(start < where.threshold, start, where.half_interval)
    result = result * ((where.sampled + start_part + where.end_part) / where.sampled)
    if is_rate:
        result = result / where.duration
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
