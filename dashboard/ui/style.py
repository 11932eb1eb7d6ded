"""Verdict colours, icons and words, and number formatting for people.

Colour is for verdicts only, and never alone: every verdict is shown with its icon and its word.
Resource context (CPU, memory) stays neutral.
"""

from __future__ import annotations

import math

from dashboard.verdicts import Verdict

VERDICT_ORDER = Verdict.worst_first()
VERDICT_COLOURS = {"unhealthy": "#d62728", "unknown": "#7f7f7f", "degraded": "#ff9f1c", "healthy": "#2ca02c"}
# Symbols every system font has (emoji fonts are not everywhere, a wall screen included).
VERDICT_ICONS = {"unhealthy": "✖", "unknown": "?", "degraded": "▲", "healthy": "✔"}
GATE_ICONS = {"allowed": "✔", "denied": "✖"}
IMPACT_ICONS = {"Fail": "✖", "Marginal": "▲", "Inconclusive": "?", "Pass": "✔"}


def verdict_label(verdict: str) -> str:
    """``🔴 unhealthy``: icon and word, readable without colour."""
    return f"{VERDICT_ICONS.get(verdict, '?')} {verdict}"


def verdict_cell_style(label: object) -> str:
    """CSS for a table cell holding a :func:`verdict_label`: the verdict's colour, text kept."""
    verdict = str(label).split(" ", 1)[-1]
    colour = VERDICT_COLOURS.get(verdict)
    return f"background-color: {colour}; color: white; font-weight: 600" if colour else ""


def gate_label(allowed: bool | None) -> str:
    if allowed is None:
        return "? not evaluated"
    word = "allowed" if allowed else "denied"
    return f"{GATE_ICONS[word]} {word}"


def impact_label(impact: str | None) -> str:
    if not impact:
        return "— not deployed"
    return f"{IMPACT_ICONS.get(impact, '?')} {impact}"


def percent(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data"
    return f"{value * 100:.1f} %"


def age(seconds: float) -> str:
    """``42 s``, ``3 min``, ``2 h 5 min``: a duration for people."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def escape_markdown(text: str) -> str:
    """A remote string made literal inside Streamlit markdown: every character markdown (or its
    HTML, links, math and emoji shortcodes) could act on is backslash-escaped."""
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in str(text))
