"""Prometheus semantics the demo shares between its source and its writer.

``histogram_quantile`` is a port of ``bucketQuantile`` and ``_extrapolated_rate`` of
``extrapolatedRate`` (promql, Prometheus 2.x); ``_parse_matchers`` reads the catalog's selectors
as Prometheus does.

Latency profiles are built from the p99 a node should show with ``quantile_profile``, which
checks its result with ``histogram_quantile``: what the writer's buckets make Prometheus answer
is what the demo reports. A latency above the top finite bucket reads as that bound (PLEG's
buckets stop at 10 s), as in Prometheus.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

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
