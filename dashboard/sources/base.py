"""What every health source returns, so that the judge cannot tell a demo from a Prometheus.

A source measures the catalog's signals at one instant and hands back one tidy frame with a row per
(cluster, node, component, signal, scope). Inventory rows (component ``inventory``, signals
``known_nodes`` and ``dns_hosts``, value 1) say which nodes the cluster knows and which host a DNS
server. Cluster-scope rows (the DNS roll-up) have ``node`` None. A signal a source has no data for
simply has no row: absence is information, never a default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd

from dashboard.catalog import Catalog

OBSERVATION_COLUMNS = ["cluster", "node", "component", "signal", "scope", "value"]
LABEL_COLUMNS = OBSERVATION_COLUMNS[:-1]
"""The observation columns that name what was measured (all but ``value``)."""


class SourceError(Exception):
    """The source could not be read; the message is one line, safe to show (no secrets)."""


@dataclass(frozen=True)
class SourceWarning:
    """A source's doubt about one signal's data (a backend warning, a rejected query)."""

    component: str
    signal: str
    message: str


@dataclass(frozen=True)
class Observations:
    """Measured values at one instant, plus what the source warned about.

    A warned signal's data may be partial: the judge lets it show a problem but never count it as
    evidence of health.
    """

    frame: pd.DataFrame
    source: str
    warnings: tuple[SourceWarning, ...] = field(default_factory=tuple)


class HealthSource(Protocol):
    """Anything that can measure the catalog's signals at an instant."""

    description: str

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        """Measure every signal of ``catalog`` at ``at``, for one cluster or all of them."""


class SupplyChainSource(Protocol):
    """Anything that lists raw Grafeas occurrences: of one release, or of every release."""

    description: str

    def occurrences(self, resource_url: str | None = None) -> Iterable[dict]:
        """Raw occurrences as the Grafeas API returns them; may raise :class:`SourceError`."""


def observation_frame(rows: list[dict]) -> pd.DataFrame:
    """A frame with exactly the observation columns, also when there are no rows."""
    frame = pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


def label_codes(labels: Sequence[str | None]) -> tuple[np.ndarray, pd.Index]:
    """The labels of a range frame's series as codes into sorted categories (-1 for None), for a
    categorical label column (``pd.Categorical.from_codes``) with a code per row.

    A range is millions of rows over far fewer series: a label per row as an object or a string
    would cost pointers or bytes a row (and a second copy while concatenating), where codes cost a
    few bytes, and the judge reads the codes rather than comparing words.
    """
    codes, categories = pd.factorize(pd.Series(labels, dtype=object), sort=True)
    return codes.astype(np.int32), categories
