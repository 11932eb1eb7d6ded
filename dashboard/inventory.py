"""What a health source knows exists: its clusters, read from the catalog's inventory queries.

Used to tell a user who asked for a cluster the source does not know (a typo, the wrong case) which
clusters it does know, instead of reporting an empty evaluation as if nothing were there.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dashboard.catalog import Catalog
from dashboard.sources.base import HealthSource


def known_clusters(source: HealthSource, catalog: Catalog, *, at: datetime) -> list[str]:
    """The cluster label values of every node the source knows at ``at``, sorted.

    Runs the inventory (known nodes, DNS hosts) and the node context queries only: with no
    component enabled the catalog asks for nothing else.
    """
    frame = source.observe(replace(catalog, components=()), at=at).frame
    return sorted({str(cluster) for cluster in frame["cluster"].dropna()})
