"""PromQL durations (``5m``, ``1h30m``, ``500ms``): the one parser the settings, the CLI and the
engine use, so that a window accepted on one face means the same on the other."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")


def format_duration(seconds: float) -> str:
    """A PromQL duration for ``seconds``, in the largest unit that divides it (``300`` → ``5m``)."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        raise ValueError(f"{seconds!r} s is not a positive duration")
    for unit in ("w", "d", "h", "m", "s"):
        size = round(_UNIT_SECONDS[unit] * 1000)
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def parse_duration(text: str) -> float:
    """Seconds in a PromQL duration; ``ValueError`` for anything else (whitespace included)."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a PromQL duration such as 5m or 1h30m")
    return float(sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text)))
