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

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
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
_HEALTHY, _DEGRADED, _UNHEALTHY = Verdict.HEALTHY.rank, Verdict.DEGRADED.rank, Verdict.UNHEALTHY.rank


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
judge's working copies stay small next to the observations themselves."""


def judge_range(observations: Observations, catalog: Catalog) -> pd.DataFrame:
    """The instant judge's rules over a frame with a ``time`` column, vectorised over (time × node).

    The Python loops run over the catalog's signals and over blocks of steps (each step is judged
    on its own rows, so the blocks change nothing); every step and node is a numpy row.
    """
    frame = _categorical_labels(observations.frame)
    doubts = {(w.component, w.signal) for w in observations.warnings}
    times = frame["time"].array  # compared as it is: no Timestamp per row, no converted copy
    steps = pd.DatetimeIndex(times.unique()).sort_values()
    per_block = max(1, len(steps) * JUDGED_ROWS_AT_ONCE // max(len(frame), 1))
    blocks = []
    for first in range(0, len(steps), per_block):
        block = steps[first:first + per_block]
        rows = frame if len(block) == len(steps) else frame[(times >= block[0]) & (times <= block[-1])]
        if (judged := _judge_block(rows, catalog, doubts)) is not None:
            blocks.append(judged)
    if not blocks:
        return pd.DataFrame(columns=TIMELINE_COLUMNS)
    # Blocks are whole steps in time order, each sorted by time first: together they are sorted.
    return pd.concat(blocks, ignore_index=True)


def _judge_block(frame: pd.DataFrame, catalog: Catalog, doubts: set) -> pd.DataFrame | None:
    """The verdicts of the steps in ``frame`` in timeline order (None when nothing is expected)."""
    # The verdicts' keys as objects; component, scope and signal stay categorical, so that picking
    # rows by them compares codes rather than a string per row.
    frame = _plain_labels(frame, ("cluster", "node"))
    frame = frame.assign(node=frame["node"].where(frame["scope"] == "node", "").fillna(""))
    parts = []
    for (component, scope), rows in _expected_rows(frame, catalog).groupby(["component", "scope"], sort=False):
        signals = [
            sig for sig in catalog.signals
            if sig.component == component and (scope == "node" or sig.rollup)
        ]
        parts.append(_judge_rows(rows.reset_index(drop=True), frame[frame["component"] == component], signals, doubts))
    if not parts:
        return None
    timeline = pd.concat(parts, ignore_index=True)
    timeline["cluster_first"] = timeline["scope"] == "node"
    timeline = timeline.sort_values(["time", "cluster", "cluster_first", "node", "component"], kind="stable")
    # object columns, as the instant judge's: the roll-up's node and a healthy row's signal are None
    timeline["node"] = timeline["node"].astype(object).where(timeline["scope"] == "node", None)
    timeline["signal"] = timeline["signal"].astype(object).where(timeline["signal"].notna(), None)
    return timeline[TIMELINE_COLUMNS]


def _categorical_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its label columns categorical, as the Prometheus source sends them: each block
    then picks rows by comparing codes and turns only its keys back into objects (a take from a few
    categories), where a string column (the demo's) would cost a comparison and a conversion per
    row and block."""
    converted = {column: "category" for column in LABEL_COLUMNS
                 if column in frame and not isinstance(frame[column].dtype, pd.CategoricalDtype)}
    return frame.astype(converted) if converted else frame


def _plain_labels(frame: pd.DataFrame, columns: Sequence[str] = LABEL_COLUMNS) -> pd.DataFrame:
    """``frame`` with these label columns as objects (a source may send them categorical), missing as None."""
    labels = [column for column in columns if column in frame]
    plain = frame.astype({column: object for column in labels})
    for column in labels:
        plain[column] = plain[column].where(plain[column].notna(), None)
    return plain


def _expected_rows(frame: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Which (time, cluster, node, component, scope) must have a verdict: the instant judge's rules,
    read from the catalog (``Catalog.expected_on``, ``Catalog.rolls_up``)."""
    keys = ["time", "cluster", "node"]
    per_node = frame["scope"] == "node"
    inventory = per_node & (frame["component"] == "inventory")
    parts = []
    hosting: dict[str, pd.DataFrame] = {}  # the (time, cluster, node) of each host list, found once
    for component, hosts in catalog.expected_on:
        if component not in catalog.components:
            continue
        if hosts not in hosting:
            alike = [c for c, h in catalog.expected_on if h == hosts]  # components expected on the same nodes
            chosen = (inventory & (frame["signal"] == hosts)) | (per_node & frame["component"].isin(alike))
            hosting[hosts] = frame.loc[chosen, keys].drop_duplicates()
        pairs = hosting[hosts]
        parts.append(pairs.assign(component=component, scope="node"))
        if catalog.rolls_up(component):
            rolled = frame.loc[(frame["scope"] == "cluster") & (frame["component"] == component), ["time", "cluster"]]
            clusters = pd.concat([pairs[["time", "cluster"]], rolled]).drop_duplicates()
            parts.append(clusters.assign(node="", component=component, scope="cluster"))
    columns = [*keys, "component", "scope"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _judge_rows(rows: pd.DataFrame, measured: pd.DataFrame, signals: list[Signal], doubts: set) -> pd.DataFrame:
    """:func:`dashboard.health._judge_one` for many rows of one component and scope at once."""
    keys = ["time", "cluster", "node"]
    index = pd.MultiIndex.from_frame(rows[keys])
    # The instant judge keeps the last value of a duplicated key; so does this.
    measured = measured.drop_duplicates([*keys, "signal"], keep="last")
    if isinstance(measured["signal"].dtype, pd.CategoricalDtype):  # one column per signal of this component
        measured = measured.assign(signal=measured["signal"].cat.remove_unused_categories())
    wide = measured.assign(present=1.0).set_index([*keys, "signal"])[["value", "present"]].unstack("signal")
    wide = wide.reindex(index)
    count = len(rows)

    def column(name: str, part: str) -> np.ndarray:
        if (part, name) not in wide.columns:
            return np.full(count, np.nan)
        return wide[(part, name)].to_numpy(dtype=float)

    has_any = np.zeros(count, dtype=bool)
    up_invalid = np.zeros(count, dtype=bool)
    evidence = np.zeros(count, dtype=bool)
    worst = np.full(count, _HEALTHY, dtype=np.int8)  # the worst level rank so far
    decided = np.full(count, None, dtype=object)
    decided_value = np.full(count, np.nan)
    missing = np.full(count, None, dtype=object)  # the first work or up signal without usable data
    missing_value = np.full(count, np.nan)
    for sig in signals:
        sent = column(sig.name, "value")
        present = ~np.isnan(column(sig.name, "present"))
        has_any |= present
        valid = present & sig.valid(sent)
        if sig.kind == "resource":
            continue
        if sig.kind == "up":
            up_invalid |= present & ~valid
        level, shown = _levels(sig, np.where(valid, sent, 0.0))
        beyond = ~np.isnan(column(beyond_top_bucket(sig.name), "present"))
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

    verdict = _BY_RANK[worst]
    breached = worst > _HEALTHY
    unknown = ~breached & (up_invalid | ~has_any | ~evidence)
    verdict[unknown] = Verdict.UNKNOWN
    signal = np.where(breached, decided, None)
    value = np.where(breached, decided_value, np.nan)
    # up sent as garbage decides an unknown; otherwise the first signal with no usable data, if any
    # series at all was there (with none, nothing in particular is to blame).
    blamed = unknown & has_any
    signal[blamed] = np.where(up_invalid, "up", missing)[blamed]
    value[blamed] = np.where(up_invalid, column("up", "value"), missing_value)[blamed]
    judged = rows.copy()
    judged["verdict"] = verdict
    judged["signal"] = signal
    judged["value"] = value.astype(float)
    return judged


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
