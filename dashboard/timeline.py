"""Health over time: the verdict at every step of a range, its incidents, and the work-signal series.

:func:`evaluate_range` asks the source for every catalog signal over the range (one ``query_range``
per catalog query on Prometheus) and judges all steps and nodes at once, with exactly the rules and
thresholds of the instant judge (:func:`dashboard.health.judge`): a step's verdict equals
``evaluate(source, catalog, at=that step)``, as long as the step is not longer than the catalog's
window (a longer step widens the rate window, see :func:`range_window`).

:func:`incidents` turns a timeline into runs of non-healthy steps; :func:`signal_series` gives the
cluster-wide (or one node's) work-signal series for charts and for :mod:`dashboard.impact`.

Plain Python over pandas and numpy: no streamlit and no HTTP here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Protocol

import numpy as np
import pandas as pd

from dashboard.catalog import UP_RULE, Catalog, Signal, beyond_top_bucket
from dashboard.durations import format_duration, parse_duration
from dashboard.sources.base import LABEL_COLUMNS, Observations
from dashboard.verdicts import RANKS, Verdict

MAX_POINTS = 11_000
"""Prometheus refuses a range query of more than 11,000 points per series."""

TIMELINE_COLUMNS = ["time", "cluster", "node", "component", "scope", "verdict", "signal", "value"]
INCIDENT_COLUMNS = [
    "cluster", "node", "component", "start", "end", "duration_s", "verdict", "signal", "peak", "ongoing",
]
SERIES_COLUMNS = ["time", "cluster", "component", "signal", "value"]
_BY_RANK = np.array(tuple(Verdict), dtype=object)  # Verdict iterates in rank order
_HEALTHY, _DEGRADED = Verdict.HEALTHY.rank, Verdict.DEGRADED.rank
_UNKNOWN, _UNHEALTHY = Verdict.UNKNOWN.rank, Verdict.UNHEALTHY.rank


class RangeSource(Protocol):
    """A health source that can also measure the catalog's signals over a range of steps."""

    description: str

    def observe_range(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta, cluster: str | None = None
    ) -> Observations:
        """Every catalog signal at each step; the frame has the observation columns plus ``time``
        (its label columns may be categorical, to keep a long range small)."""

    def observe_series(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta,
        cluster: str | None = None, node: str | None = None,
    ) -> Observations:
        """Every work signal per cluster (or for one node) at each step, with a ``time`` column."""


def range_steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """The step times ``start, start + step, …`` up to ``end`` (in UTC).

    A range of 0 or less, or a step of 0 or less, is refused with a one-line ``ValueError``. There
    is no upper bound on the number of steps: a source splits a range of more than
    :data:`MAX_POINTS` steps into several ``query_range`` calls of at most that many points each.
    """
    start, end = _utc(start), _utc(end)
    if step <= timedelta(0):
        raise ValueError(f"the step must be longer than 0 s (got {step.total_seconds():g} s)")
    if end <= start:
        raise ValueError(f"the range must end after it starts ({start.isoformat()} to {end.isoformat()})")
    count = int((end - start) / step) + 1
    return [start + k * step for k in range(count)]


def split_steps(steps: list[datetime]) -> list[list[datetime]]:
    """``steps`` in runs of at most :data:`MAX_POINTS`: one ``query_range`` call per run."""
    return [steps[i:i + MAX_POINTS] for i in range(0, len(steps), MAX_POINTS)]


def range_window(catalog: Catalog, step: timedelta) -> Catalog:
    """The catalog with a rate window of max(window, step).

    A rate over ``[t - window, t]`` at steps further apart than the window would never see the
    samples between two windows, so an error burst shorter than the step could vanish from the
    timeline; a window as long as the step covers every sample (a subquery would cost a query per
    step inside Prometheus). With a step up to the window, the queries are exactly the instant ones.
    """
    window = parse_duration(catalog.window)
    seconds = step.total_seconds()
    if seconds <= window:
        return catalog
    return replace(catalog, window=format_duration(seconds))


def evaluate_range(
    source: RangeSource,
    catalog: Catalog,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    cluster: str | None = None,
) -> pd.DataFrame:
    """A verdict per (time, cluster, node, component) at every step from ``start`` to ``end``.

    Columns :data:`TIMELINE_COLUMNS`: ``signal`` and ``value`` name what decided a non-healthy
    verdict (the first signal, in catalog order, at the worst level; for ``unknown`` the signal
    without usable data, when one is to blame); a healthy row has neither.
    """
    range_steps(start, end, step)  # refuse a bad range before any query is sent
    observations = source.observe_range(catalog, start=start, end=end, step=step, cluster=cluster)
    return judge_range(observations, catalog)


JUDGED_ROWS_AT_ONCE = 50_000
"""Observation rows judged together: a long range is judged in blocks of whole steps, so that the
judge's working arrays (some 60 bytes a row) stay small next to the observations themselves."""


def judge_range(observations: Observations, catalog: Catalog) -> pd.DataFrame:
    """The instant judge's rules over a frame with a ``time`` column, vectorised over (time × node).

    Every label column is ranked once (:class:`_Ranked`), and each block of steps is judged on
    integer keys: the Python loops run over the catalog's signals and over the blocks (each step
    is judged on its own rows, so the blocks change nothing); every step and node is a numpy
    element.
    """
    frame = observations.frame
    if frame.empty:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    labels = _Labels.of(frame)
    doubts = {(w.component, w.signal) for w in observations.warnings}
    steps = len(labels.steps)
    per_block = max(1, steps * JUDGED_ROWS_AT_ONCE // len(frame))
    blocks = []
    for first in range(0, steps, per_block):
        rows = slice(None) if per_block >= steps else np.flatnonzero(
            (labels.step >= first) & (labels.step < first + per_block))
        if (judged := _judge_block(labels, rows, catalog, doubts)) is not None:
            blocks.append(judged)
    return _Judged.concat(blocks).frame(labels) if blocks else pd.DataFrame(columns=TIMELINE_COLUMNS)


@dataclass(frozen=True)
class _Ranked:
    """One label column as integers: each row's code (a categorical's own, a few bytes a row; -1
    where missing), each code's rank among the column's words in sorted order (so that ordering
    ranks orders the words; the missing's rank last, read by code -1), and those words."""

    codes: np.ndarray
    ranks: np.ndarray
    words: np.ndarray

    @classmethod
    def of(cls, column: pd.Series, *, missing: int = -1) -> _Ranked:
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes, words = column.cat.codes.to_numpy(), np.asarray(column.cat.categories, dtype=object)
            order = np.argsort(words, kind="stable")
        else:
            codes, words = pd.factorize(column, sort=True)
            codes, words = codes.astype(_small_int(len(words))), np.asarray(words, dtype=object)
            order = np.arange(len(words))
        ranks = np.empty(len(words) + 1, dtype=np.int32)
        ranks[order] = np.arange(len(words), dtype=np.int32)
        ranks[-1] = missing
        return cls(codes, ranks, words[order])

    def at(self, rows: np.ndarray | slice) -> np.ndarray:
        """The ranks of these rows."""
        return self.ranks[self.codes[rows]]

    def code(self, word: str) -> int:
        """The rank of ``word``, or -2, which no row has, when it is not there."""
        at = int(np.searchsorted(self.words, word)) if len(self.words) and isinstance(self.words[0], str) else 0
        return at if at < len(self.words) and self.words[at] == word else -2


def _small_int(count: int) -> type:
    return np.int8 if count < 2**7 else np.int16 if count < 2**15 else np.int32


@dataclass(frozen=True)
class _Labels:
    """The observations' labels, ranked (:class:`_Ranked`), and each row's step.

    A missing cluster ranks last (``None``, as pandas sorts it); a node rank is the key the judge
    uses, with "" (rank 0) for a roll-up's row and for a node row without a node label.
    """

    step: np.ndarray
    steps: pd.DatetimeIndex
    cluster: _Ranked
    node: _Ranked
    component: _Ranked
    signal: _Ranked
    scope: _Ranked
    value: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Labels:
        step, steps = _step_codes(frame["time"])
        cluster = _Ranked.of(frame["cluster"])
        cluster = replace(cluster, ranks=np.where(cluster.ranks < 0, len(cluster.words), cluster.ranks),
                          words=np.concatenate([cluster.words, np.array([None], dtype=object)]))
        node = _Ranked.of(frame["node"], missing=0)
        if not (len(node.words) and node.words[0] == ""):  # "" sorts first
            node = replace(node, ranks=np.where(np.arange(len(node.ranks)) < len(node.words), node.ranks + 1, 0),
                           words=np.concatenate([np.array([""], dtype=object), node.words]))
        return cls(step, steps, cluster, node,
                   _Ranked.of(frame["component"]), _Ranked.of(frame["signal"]), _Ranked.of(frame["scope"]),
                   frame["value"].to_numpy(dtype=float))


def _step_codes(times: pd.Series) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Each row's step (its time's index among the sorted distinct times, a few bytes a row) and the
    steps. Found a million rows at a time: a code per row as a machine integer, as ``pd.factorize``
    makes, would add some 24 MB per 3 M rows to the peak of a long range."""
    steps = pd.DatetimeIndex(times.unique()).sort_values()
    moments, distinct = times.array.asi8, steps.asi8  # the times' integers, not copies
    step = np.empty(len(moments), dtype=_small_int(len(distinct)))
    for start in range(0, len(moments), 1_000_000):
        step[start:start + 1_000_000] = np.searchsorted(distinct, moments[start:start + 1_000_000])
    return step, steps


@dataclass(frozen=True)
class _Judged:
    """Verdicts as arrays: each row's step, cluster and node ranks (as :class:`_Labels`), whether it
    is a node's (not the roll-up's), its component's rank, its verdict's rank, and what decided it."""

    step: np.ndarray
    cluster: np.ndarray
    node: np.ndarray
    per_node: np.ndarray
    component: np.ndarray
    verdict: np.ndarray
    signal: np.ndarray
    value: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[_Judged]) -> _Judged:
        return cls(*(np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(cls)))

    def frame(self, labels: _Labels) -> pd.DataFrame:
        """The timeline in :data:`TIMELINE_COLUMNS`, ordered as the instant judge orders a step's
        verdicts (cluster, its roll-up first, node, component) step after step."""
        order = np.lexsort((self.component, self.node, self.per_node, self.cluster, self.step))
        per_node = self.per_node[order]
        node = labels.node.words[self.node[order]]
        node[~per_node] = None
        return pd.DataFrame({
            "time": labels.steps.take(self.step[order]),
            "cluster": pd.Series(labels.cluster.words[self.cluster[order]], dtype=object),
            "node": pd.Series(node, dtype=object),
            "component": pd.Series(labels.component.words[self.component[order]], dtype="str"),
            "scope": pd.Series(np.where(per_node, "node", "cluster"), dtype="str"),
            "verdict": pd.Series(_BY_RANK[self.verdict[order]], dtype="str"),
            "signal": pd.Series(self.signal[order], dtype=object),
            "value": self.value[order],
        }, columns=TIMELINE_COLUMNS)


def _judge_block(labels: _Labels, rows: np.ndarray | slice, catalog: Catalog, doubts: set) -> _Judged | None:
    """The verdicts of the steps whose observation rows are ``rows`` (None when nothing is expected)."""
    step = labels.step[rows].astype(np.int64)
    first_step = int(step.min())
    step -= first_step
    component, signal, scope = labels.component.at(rows), labels.signal.at(rows), labels.scope.at(rows)
    node = np.where(scope == labels.scope.code("node"), labels.node.at(rows), 0)
    clusters, nodes = len(labels.cluster.words), len(labels.node.words)
    key = (step * clusters + labels.cluster.at(rows)) * nodes + node  # (step, cluster, node) in that order
    measured = _Measured.of(key, component, signal, labels.value[rows], keys=(int(step.max()) + 1) * clusters * nodes,
                            signals=labels.signal)
    per_step, parts = clusters * nodes, []
    for name, scope_name, expected in _expected_keys(key, component, signal, scope, labels, catalog, nodes):
        signals = [sig for sig in catalog.signals
                   if sig.component == name and (scope_name == "node" or sig.rollup)]
        code = labels.component.code(name)
        verdict, decided, value = _judge_keys(len(expected), partial(measured.at, expected, code), signals, doubts)
        parts.append(_Judged(
            expected // per_step + first_step, expected // nodes % clusters, expected % nodes,
            np.full(len(expected), scope_name == "node"), np.full(len(expected), code, dtype=np.int32),
            verdict, decided, value,
        ))
    return _Judged.concat(parts) if parts else None


@dataclass(frozen=True)
class _Measured:
    """A block's observations by (component, signal, key), the last row of a duplicated one kept as
    the instant judge keeps it: sorted keys and their values."""

    combined: np.ndarray
    values: np.ndarray
    keys: int
    signals: _Ranked

    @classmethod
    def of(cls, key: np.ndarray, component: np.ndarray, signal: np.ndarray, value: np.ndarray, *, keys: int,
           signals: _Ranked) -> _Measured:
        named = (component >= 0) & (signal >= 0)
        combined = (component[named].astype(np.int64) * len(signals.words) + signal[named]) * keys + key[named]
        unique, first_from_end = np.unique(combined[::-1], return_index=True)
        return cls(unique, value[named][len(combined) - 1 - first_from_end], keys, signals)

    def at(self, keys: np.ndarray, component: int, signal_name: str) -> tuple[np.ndarray, np.ndarray]:
        """The value of ``signal_name`` sent for each of ``keys`` (sorted) of a component, and
        whether one was (NaN and False where not)."""
        signal = self.signals.code(signal_name)
        if component < 0 or signal < 0:
            return np.full(len(keys), np.nan), np.zeros(len(keys), dtype=bool)
        base = (component * len(self.signals.words) + signal) * self.keys
        low, high = np.searchsorted(self.combined, [base, base + self.keys])
        sent_keys, sent = self.combined[low:high] - base, self.values[low:high]
        if not len(sent_keys):
            return np.full(len(keys), np.nan), np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(sent_keys, keys), len(sent_keys) - 1)
        present = sent_keys[at] == keys
        return np.where(present, sent[at], np.nan), present


def _expected_keys(key: np.ndarray, component: np.ndarray, signal: np.ndarray, scope: np.ndarray, labels: _Labels,
                   catalog: Catalog, nodes: int) -> list[tuple[str, str, np.ndarray]]:
    """Which (step, cluster, node) keys must have a verdict of each component and scope: the instant
    judge's rules, read from the catalog (``Catalog.expected_on``, ``Catalog.rolls_up``)."""
    per_node = scope == labels.scope.code("node")
    inventory = per_node & (component == labels.component.code("inventory"))
    hosting: dict[str, np.ndarray] = {}  # the keys of each host list, found once
    expected = []
    for name, hosts in catalog.expected_on:
        if name not in catalog.components:
            continue
        if hosts not in hosting:
            alike = [labels.component.code(c) for c, h in catalog.expected_on if h == hosts]  # on the same nodes
            listed = inventory & (signal == labels.signal.code(hosts))
            hosting[hosts] = np.unique(key[listed | (per_node & np.isin(component, alike))])
        if len(hosting[hosts]):
            expected.append((name, "node", hosting[hosts]))
        if catalog.rolls_up(name):
            rolled = key[(scope == labels.scope.code("cluster")) & (component == labels.component.code(name))]
            steps_and_clusters = np.unique(np.concatenate([hosting[hosts] // nodes, rolled // nodes]))
            if len(steps_and_clusters):
                expected.append((name, "cluster", steps_and_clusters * nodes))  # node "" ranks 0
    return expected


def _judge_keys(count: int, column: Callable[[str], tuple[np.ndarray, np.ndarray]], signals: list[Signal], doubts: set) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`dashboard.health._judge_one` for ``count`` rows of one component and scope at once:
    each row's verdict rank, the signal that decided it (None where none) and its value.
    ``column(signal)`` gives a signal's value per row and whether it was sent."""
    has_any = np.zeros(count, dtype=bool)
    up_invalid = np.zeros(count, dtype=bool)
    evidence = np.zeros(count, dtype=bool)
    worst = np.full(count, _HEALTHY, dtype=np.int8)  # the worst level rank so far
    decided = np.full(count, None, dtype=object)
    decided_value = np.full(count, np.nan)
    missing = np.full(count, None, dtype=object)  # the first work or up signal without usable data
    missing_value = np.full(count, np.nan)
    for sig in signals:
        sent, present = column(sig.name)
        has_any |= present
        valid = present & sig.valid(sent)
        if sig.kind == "resource":
            continue
        if sig.kind == "up":
            up_invalid |= present & ~valid
        level, shown = _levels(sig, np.where(valid, sent, 0.0))
        beyond = column(beyond_top_bucket(sig.name))[1]
        lower_bound = beyond | ((sig.component, sig.name) in doubts)
        counted = valid & ~(lower_bound & (level == _HEALTHY))
        worse = counted & (level > worst)
        decided[worse] = sig.name
        decided_value[worse] = shown[worse]
        worst = np.where(worse, level, worst)
        if sig.kind == "work":
            evidence |= counted
        blame = ~counted & (missing == None)  # noqa: E711 (elementwise over an object array)
        missing[blame] = sig.name
        missing_value[blame] = np.where(present, sent, np.nan)[blame]

    breached = worst > _HEALTHY
    unknown = ~breached & (up_invalid | ~has_any | ~evidence)
    verdict = np.where(unknown, _UNKNOWN, worst).astype(np.int8)
    signal = np.where(breached, decided, None)
    value = np.where(breached, decided_value, np.nan)
    # up sent as garbage decides an unknown; otherwise the first signal with no usable data, if any
    # series at all was there (with none, nothing in particular is to blame).
    blamed = unknown & has_any
    signal[blamed] = np.where(up_invalid, "up", missing)[blamed]
    value[blamed] = np.where(up_invalid, column("up")[0], missing_value)[blamed]
    return verdict, signal, value.astype(float)


def _plain_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its label columns as objects (a source may send them categorical), missing as None."""
    labels = [column for column in LABEL_COLUMNS if column in frame]
    plain = frame.astype({column: object for column in labels})
    for column in labels:
        plain[column] = plain[column].where(plain[column].notna(), None)
    return plain


def _levels(sig: Signal, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The level each value reaches (as a :attr:`Verdict.rank`: healthy, degraded or unhealthy),
    and the value as judged."""
    if sig.kind == "up":
        return np.where(values >= UP_RULE.healthy_at, _HEALTHY, _UNHEALTHY).astype(np.int8), values
    thresholds = sig.thresholds
    assert thresholds is not None, f"work signal {sig.name} needs thresholds"
    if sig.events:  # as dashboard.health._assess: increase() extrapolates, 0.5 is at least one event
        values = np.where(values <= 0, 0.0, np.maximum(1.0, np.floor(values)))

    def reaches(threshold: float | None) -> np.ndarray:
        if threshold is None:
            return np.zeros(values.shape, dtype=bool)
        return values >= threshold if thresholds.op == ">=" else values > threshold

    level = np.where(
        reaches(thresholds.unhealthy), _UNHEALTHY, np.where(reaches(thresholds.degraded), _DEGRADED, _HEALTHY)
    )
    return level.astype(np.int8), values


def incidents(timeline: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """Contiguous runs of non-healthy steps per (cluster, node, component).

    Columns :data:`INCIDENT_COLUMNS`. ``start`` is the first non-healthy step; ``end`` the first step
    after the run (the step where it was seen over, or no longer seen), or ``end`` when the run lasts
    to the timeline's last step (``ongoing``). ``verdict`` is the worst over the run (unknown ranks
    above degraded, as in ``--fail-on``), ``signal`` what decided its first step at that verdict
    that names one (a step without any series blames none) and ``peak`` that signal's largest value
    over the run.
    """
    if timeline.empty:
        return pd.DataFrame(columns=INCIDENT_COLUMNS)
    grid = np.sort(timeline["time"].unique())
    position = {t: i for i, t in enumerate(grid)}
    frame = timeline.assign(
        key_node=timeline["node"].fillna(""),
        step=timeline["time"].map(position),
        severity=timeline["verdict"].map(RANKS),
    ).sort_values(["cluster", "key_node", "component", "step"], kind="stable")
    keys = ["cluster", "key_node", "component"]
    bad = frame[frame["verdict"] != Verdict.HEALTHY].copy()
    if bad.empty:
        return pd.DataFrame(columns=INCIDENT_COLUMNS)
    same_key = (bad[keys] == bad[keys].shift()).all(axis=1)
    follows = bad["step"] == bad["step"].shift() + 1
    bad["run"] = (~(same_key & follows)).cumsum()
    groups = bad.groupby("run", sort=False)
    first = groups.first()
    last_step = groups["step"].max()
    bad["blamed"] = bad["signal"].notna()
    worst_index = bad.sort_values(
        ["run", "severity", "blamed", "step"], ascending=[True, False, False, True]
    ).groupby("run").head(1)
    worst_index = worst_index.set_index("run")
    peaks = bad.merge(worst_index[["signal"]], left_on="run", right_index=True, suffixes=("", "_worst"))
    peaks = peaks[peaks["signal"] == peaks["signal_worst"]].groupby("run")["value"].max()
    end_time = pd.Timestamp(_utc(end))
    ongoing = last_step == len(grid) - 1
    after = np.minimum(last_step.to_numpy() + 1, len(grid) - 1)
    stop = pd.Series(pd.to_datetime(grid[after], utc=True), index=last_step.index).where(~ongoing, end_time)
    found = pd.DataFrame({
        "cluster": first["cluster"],
        "node": first["node"],
        "component": first["component"],
        "start": first["time"],
        "end": stop,
        "verdict": worst_index["verdict"],
        "signal": worst_index["signal"],
        "peak": peaks.reindex(first.index),
        "ongoing": ongoing,
    })
    found["duration_s"] = (found["end"] - found["start"]).dt.total_seconds()
    for column in ("node", "signal"):
        found[column] = found[column].astype(object).where(found[column].notna(), None)
    return found[INCIDENT_COLUMNS].reset_index(drop=True)


def signal_series(
    source: RangeSource,
    catalog: Catalog,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    cluster: str | None = None,
    node: str | None = None,
) -> pd.DataFrame:
    """Every work signal over the range: per cluster (sum-based ratios, the quantile over all nodes'
    buckets), or for one ``node``; one query per signal either way.

    Columns :data:`SERIES_COLUMNS` (plus ``node`` when one was chosen). A quantile beyond its
    histogram's top bucket reads as the top bound, as on the verdict's reason.
    """
    range_steps(start, end, step)
    observations = source.observe_series(catalog, start=start, end=end, step=step, cluster=cluster, node=node)
    frame = _plain_labels(observations.frame)
    work = {(sig.component, sig.name) for sig in catalog.signals if sig.kind == "work"}
    keep = [(c, s) in work for c, s in zip(frame["component"], frame["signal"])]
    frame = frame[keep] if len(frame) else frame
    columns = [*SERIES_COLUMNS[:2], "node", *SERIES_COLUMNS[2:]] if node is not None else SERIES_COLUMNS
    return frame.sort_values(["cluster", "component", "signal", "time"], kind="stable")[columns].reset_index(drop=True)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


__all__ = [
    "INCIDENT_COLUMNS", "MAX_POINTS", "SERIES_COLUMNS", "TIMELINE_COLUMNS", "RangeSource",
    "evaluate_range", "incidents", "judge_range", "range_steps", "range_window", "signal_series", "split_steps",
]
