"""Deployments on the cluster timeline: which Prometheus cluster each DEPLOYMENT went to.

A Grafeas DEPLOYMENT names where a release went by an ``address`` and a ``config``, in whatever form
the deploying tool wrote. The health side names clusters by the Prometheus ``cluster`` label. The
bridge, in order:

1. the configured alias map (``[clusters.aliases]``: an address, a kubectl context or a parsed
   cluster name → the cluster label), because an operator's explicit word beats any guess;
2. a ``/clusters/NAME`` path, as in a GKE API URL
   (``https://container.googleapis.com/v1/projects/P/locations/L/clusters/NAME``);
3. a kubectl context ``gke_PROJECT_LOCATION_NAME``, as ``gcloud container clusters
   get-credentials`` writes it;
4. an EKS ARN ``arn:aws:eks:REGION:ACCOUNT:cluster/NAME``.

When the clusters Prometheus knows are given, a name that is not among them (after the alias map)
is "unmapped": the deployment keeps its address and stays in the frame, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime

import pandas as pd

from dashboard.gate import evaluate_gates, release_digest
from dashboard.occurrences import Occurrences
from dashboard.policy import Policy
from dashboard.resources import service_of

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("api-path", re.compile(r"/clusters/([^/\s?#\"']+)")),
    ("gke-context", re.compile(r"\bgke_[^_\s]+_[^_\s]+_([^\s/\"']+)")),
    ("eks-arn", re.compile(r"\barn:aws[a-z-]*:eks:[^:\s]+:[0-9]{12}:cluster/([^/\s\"']+)")),
)
UNMAPPED = "unmapped"
MARKER_COLUMNS = ["time", "cluster", "service", "resource_uri", "short_digest", "gate",
                  "address", "mapped_by", "undeploy_time"]


def cluster_name_in(*texts: str | None) -> tuple[str | None, str]:
    """The cluster name that an address or config text spells, and the rule that found it."""
    for how, pattern in _PATTERNS:
        for text in texts:
            match = pattern.search(text) if isinstance(text, str) else None
            if match:
                return match.group(1), how
    return None, UNMAPPED


def map_cluster(
    address: str | None,
    config: str | None,
    *,
    aliases: Mapping[str, str] | None = None,
    known_clusters: Collection[str] | None = None,
) -> tuple[str | None, str]:
    """``(cluster label, how)`` for one deployment; ``(None, "unmapped")`` when none fits."""
    aliases = aliases or {}
    for text in (address, config):
        if isinstance(text, str) and text.strip() in aliases:
            return aliases[text.strip()], "alias"
    name, how = cluster_name_in(address, config)
    if name is not None and name in aliases:
        name, how = aliases[name], "alias"
    if name is None or (known_clusters is not None and name not in known_clusters):
        return None, UNMAPPED
    return name, how


def map_deployments(
    deployments: pd.DataFrame,
    *,
    aliases: Mapping[str, str] | None = None,
    known_clusters: Collection[str] | None = None,
) -> pd.DataFrame:
    """The deployments frame of :func:`dashboard.occurrences.normalise` with ``cluster`` set to the
    Prometheus cluster label (None when unmapped) and ``mapped_by`` saying which rule set it."""
    mapped = [
        map_cluster(address, config, aliases=aliases, known_clusters=known_clusters)
        for address, config in zip(deployments["address"], deployments["config"])
    ]
    frame = deployments.copy()
    frame["cluster"] = pd.Series([cluster for cluster, _ in mapped], index=frame.index, dtype=object)
    frame["mapped_by"] = pd.Series([how for _, how in mapped], index=frame.index, dtype=object)
    return frame


def deployments_between(
    occurrences: Occurrences,
    start: datetime,
    end: datetime,
    cluster: str | None = None,
    *,
    policy: Policy | None = None,
    aliases: Mapping[str, str] | None = None,
    known_clusters: Collection[str] | None = None,
) -> pd.DataFrame:
    """Deploy markers for a time chart: one row per deployment whose deploy time is in
    ``[start, end]``, oldest first, with :data:`MARKER_COLUMNS`.

    ``gate`` is ``allowed`` / ``denied`` by ``policy`` (``not evaluated`` without one). With
    ``cluster``, only deployments mapped to it; without, unmapped ones are included with cluster
    None. A deployment without a deploy time cannot be placed on a timeline and is left out here
    (it stays in :func:`map_deployments`).
    """
    mapped = map_deployments(occurrences.deployments, aliases=aliases, known_clusters=known_clusters)
    times = pd.to_datetime(mapped["deploy_time"], utc=True)
    inside = times.notna() & (times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))
    if cluster is not None:
        inside &= mapped["cluster"] == cluster
    chosen = (
        mapped[inside.to_numpy()].assign(time=times[inside]).sort_values("time", kind="stable").reset_index(drop=True)
    )
    uris = [uri for uri in dict.fromkeys(chosen["resource_uri"]) if isinstance(uri, str)]
    verdicts = evaluate_gates(occurrences, policy, uris) if policy is not None else {}
    markers = pd.DataFrame(
        {
            "time": chosen["time"],
            "cluster": chosen["cluster"],
            "service": [service_of(uri) if isinstance(uri, str) else None for uri in chosen["resource_uri"]],
            "resource_uri": chosen["resource_uri"],
            "short_digest": [_short_digest(uri) for uri in chosen["resource_uri"]],
            "gate": [_gate_word(verdicts.get(uri)) if policy is not None else "not evaluated"
                     for uri in chosen["resource_uri"]],
            "address": chosen["address"],
            "mapped_by": chosen["mapped_by"],
            "undeploy_time": pd.to_datetime(chosen["undeploy_time"], utc=True),
        },
        columns=MARKER_COLUMNS,
    )
    return markers.astype({"time": "datetime64[ns, UTC]", "undeploy_time": "datetime64[ns, UTC]"})


def _short_digest(resource_uri) -> str | None:
    """``sha256:`` and the first 12 hex digits, as the release table shows a digest."""
    digest = release_digest(resource_uri) if isinstance(resource_uri, str) else None
    return digest[:19] if digest else None


def _gate_word(result) -> str:
    if result is None:
        return "denied"  # no record of it at all: the gate fails closed
    return "allowed" if result.allowed else "denied"
