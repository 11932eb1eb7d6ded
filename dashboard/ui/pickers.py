"""The pickers every page shares: cluster, time range and "as of" moment, each bound to its query
parameter (``cluster``, ``range``, ``at``) so that a link reproduces the view.

Each picker seeds its widget from the URL, draws it in the sidebar, mirrors it back, and returns
what the page applies: the widget and what is applied can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import streamlit as st

from dashboard.durations import parse_duration
from dashboard.ui import panels, params

ALL_CLUSTERS = "All clusters"
RANGES = ("1h", "6h", "24h", "7d", "custom")
DEFAULT_RANGE = "6h"


def cluster_picker(known: list[str], configured: str | None, *, allow_all: bool = True) -> str | None:
    """A cluster select bound to ``?cluster=``; None means every cluster."""
    choices = [ALL_CLUSTERS, *known] if allow_all else list(known)
    problem = params.seed("cluster")
    if problem:
        panels.problem(problem)
    if st.session_state.get("cluster") not in choices:
        if "cluster" in st.session_state:
            panels.problem(f"Cluster {st.session_state['cluster']!r} is not known to the source; showing "
                           + ("all clusters." if allow_all else "another one."))
        fallback = ALL_CLUSTERS if allow_all else (known[0] if known else None)
        st.session_state["cluster"] = configured if configured in known else fallback
    with st.sidebar:
        chosen = st.selectbox("Cluster", choices, key="cluster")
    params.mirror("cluster", default=ALL_CLUSTERS)
    return None if chosen in (ALL_CLUSTERS, None) else chosen


@dataclass(frozen=True)
class TimeRange:
    """What a page applies: from ``start`` to ``end``, ``label`` as shown (``6h``)."""

    start: datetime
    end: datetime
    label: str

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def step_for(span: timedelta, target_steps: int = 120) -> timedelta:
    """A round step giving at most about ``target_steps`` points over ``span`` (charts, heatmaps)."""
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440):
        if span / timedelta(minutes=minutes) <= target_steps:
            return timedelta(minutes=minutes)
    return timedelta(days=-(-span // timedelta(days=target_steps)))


def _moment(text: str) -> datetime:
    """``at`` as links carry it: unix seconds or RFC 3339; never in the future."""
    try:
        moment = datetime.fromtimestamp(float(text), tz=timezone.utc)
    except ValueError:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if moment > datetime.now(timezone.utc):
        raise ValueError("that moment is in the future, with nothing to show yet")
    return moment


def _duration(text: str) -> str:
    if parse_duration(text) < 60:
        raise ValueError("a range is at least 1m")
    return text


def range_picker(now: datetime) -> TimeRange:
    """Range (1 h, 6 h, 24 h, 7 d or a custom duration) ending "as of" now or a past moment.

    ``?range=`` holds the duration (a preset or any PromQL duration), ``?at=`` the end when it is
    not now. A past moment defaults to an hour ago, a moment that has data.
    """
    for key, parse in (("range", _duration), ("at", _moment)):
        problem = params.seed(key, parse)
        if problem:
            panels.problem(problem)
    chosen_range = st.session_state.get("range", DEFAULT_RANGE)
    preset = chosen_range if chosen_range in RANGES else "custom"
    st.session_state.setdefault("range_preset", preset)
    with st.sidebar:
        preset = st.segmented_control("Range", RANGES, key="range_preset") or DEFAULT_RANGE
        if preset == "custom":
            text = st.text_input("Custom range (PromQL duration, e.g. 90m, 3d)",
                                 value=chosen_range if chosen_range not in RANGES else "12h")
            try:
                label = _duration(text.strip())
            except ValueError as error:
                panels.problem(f"Custom range {text!r} ignored: {error}")
                label = DEFAULT_RANGE
        else:
            label = preset
        st.session_state["range"] = label
        live = st.toggle("As of now", value="at" not in st.session_state, key="as_of_now")
        if live:
            st.session_state.pop("at", None)
            end = now
        else:
            default = st.session_state.get("at", now - timedelta(hours=1))
            day = st.date_input("As of (UTC date)", value=default.date(), max_value=now.date())
            clock = st.time_input("As of (UTC time)", value=default.time().replace(second=0, microsecond=0),
                                  step=300)
            end = datetime.combine(day, clock, tzinfo=timezone.utc)
            if end > now:
                st.warning("That moment is in the future: showing up to now.")
                end = now
            st.session_state["at"] = end
    params.mirror("range", default=DEFAULT_RANGE)
    params.mirror("at", lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return TimeRange(end - timedelta(seconds=parse_duration(label)), end, label)
