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

    Known as the judge knows nodes: from the two inventory queries (known nodes, DNS hosts) alone.
    With no component enabled and the node context marked absent, the catalog asks for nothing
    else, so the cost does not include a resource query per node.
    """
    node_context = tuple(("node", sig.name) for sig in catalog.signals if sig.component == "node")
    inventory_only = replace(catalog, components=(), absent_signals=(*catalog.absent_signals, *node_context))
    frame = source.observe(inventory_only, at=at).frame
    return sorted({str(cluster) for cluster in frame["cluster"].dropna()})
