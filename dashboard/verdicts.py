"""The words of a health verdict and of its reasons: :class:`Verdict`, :class:`Reason`, :data:`NO_DATA`.

Every ordering of verdicts in the engine, the CLI and the pages derives from :attr:`Verdict.rank`:
healthy < degraded < unknown < unhealthy (unknown, no evidence, is worse than degraded, so
``--fail-on degraded`` also fails on a component that cannot be judged). Both types are
:class:`~enum.StrEnum`, so a member is equal to its word (``Verdict.HEALTHY == "healthy"``) and
frames, CSV and JSON hold the same text as before they existed. Compare by :attr:`Verdict.rank`,
never with ``<``, which compares the words.

A :class:`Reason` is one line of evidence behind a verdict: a frozen record with the same fields
whichever rule produced it (``None`` where a field does not apply), read like the JSON object the
CLI prints for it (:meth:`Reason.to_dict`, also its :class:`~collections.abc.Mapping` view).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """A node component's health, declared least severe first: the declaration order is the rank,
    and iterating the class gives the verdicts in that order."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNKNOWN = "unknown"
    UNHEALTHY = "unhealthy"

    @property
    def rank(self) -> int:
        """0 for healthy up to 3 for unhealthy."""
        return RANKS[self]

    @classmethod
    def worst(cls, verdicts: Iterable[str]) -> Verdict | None:
        """The highest-ranked of ``verdicts`` (words or members), or None when there is none."""
        return max((cls(verdict) for verdict in verdicts), key=RANKS.__getitem__, default=None)

    @classmethod
    def worst_first(cls) -> tuple[Verdict, ...]:
        """Every verdict, unhealthy first: the order in which people read them."""
        return tuple(reversed(cls))


RANKS: Mapping[Verdict, int] = {verdict: rank for rank, verdict in enumerate(Verdict)}
"""Each verdict's :attr:`~Verdict.rank`, for ``Series.map`` (a member and its word look up alike)."""


class NoData(StrEnum):
    """A reason's level when its signal gave nothing to judge (none, invalid, or only a lower bound).

    Not a verdict: a component whose only evidence is missing is :attr:`Verdict.UNKNOWN`.
    """

    NO_DATA = "no data"


NO_DATA = NoData.NO_DATA
Level = Verdict | NoData
"""A reason's level: the verdict its signal reaches (healthy, degraded or unhealthy), or no data."""


@dataclass(frozen=True)
class Reason(Mapping[str, Any]):
    """One piece of evidence behind a verdict. Every rule fills every field, ``None`` where it does
    not apply: a signal without data has no threshold, a gauge no window, a summary no signal.

    ``threshold`` is the limit the value was compared with (``op``); ``degraded_at`` and
    ``unhealthy_at`` the signal's two thresholds, for signals judged against them (not ``up``).
    ``beyond_top_bucket``: the value is the histogram's top finite bound, a lower bound only.
    """

    signal: str | None
    level: Level
    value: float | None
    text: str
    threshold: float | None
    degraded_at: float | None
    unhealthy_at: float | None
    op: str | None
    unit: str | None
    source: str | None
    window: str | None
    beyond_top_bucket: bool

    @classmethod
    def missing(cls, signal: str | None, text: str) -> Reason:
        """No data for ``signal`` (or, with None, for the component as a whole), saying why."""
        return cls(
            signal=signal, level=NO_DATA, value=None, text=text, threshold=None, degraded_at=None,
            unhealthy_at=None, op=None, unit=None, source=None, window=None, beyond_top_bucket=False,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the CLI prints (a public contract): ``signal, level, value, text`` always,
        the comparison (``threshold, op, unit, source``) when there was one, the signal's two
        thresholds when it has them, ``window`` for a rate-based value and ``beyond_top_bucket``
        only when true; in the key order below."""
        judged = self.threshold is not None
        banded = self.degraded_at is not None
        entries: tuple[tuple[str, Any, bool], ...] = (
            ("signal", self.signal, True),
            ("level", str(self.level), True),
            ("value", self.value, True),
            ("threshold", self.threshold, judged),
            ("degraded_at", self.degraded_at, banded),
            ("unhealthy_at", self.unhealthy_at, banded),
            ("op", self.op, judged),
            ("unit", self.unit, judged),
            ("source", self.source, judged),
            ("text", self.text, True),
            ("window", self.window, self.window is not None),
            ("beyond_top_bucket", True, self.beyond_top_bucket),
        )
        return {key: value for key, value, shown in entries if shown}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def listing_order(reasons: Iterable[Reason]) -> list[Reason]:
    """Reasons as a verdict lists them: thresholds reached first (worst rank first), then signals
    without data, then those within thresholds; otherwise in the order given."""

    def key(reason: Reason) -> tuple[int, int]:
        if reason.level == NO_DATA:
            return (1, 0)
        if reason.level == Verdict.HEALTHY:
            return (2, 0)
        return (0, -Verdict(reason.level).rank)

    return sorted(reasons, key=key)


__all__ = ["NO_DATA", "RANKS", "Level", "NoData", "Reason", "Verdict", "listing_order"]
