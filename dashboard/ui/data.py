"""Cached settings, sources and engine results for the pages, on small keys with a ttl.

Keys name what identifies the data (the source's identity digest, a time bucket, a cluster), never a
DataFrame, so every session asking the same question shares one answer. Each result carries the
moment it was read, so a page can say how old it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard import inventory
from dashboard.config import Settings, load_settings
from dashboard.deploy_impact import read_around
from dashboard.health import Evaluation, evaluate
from dashboard.impact import ImpactRules
from dashboard.provenance import release_table
from dashboard.sources import demo_supply_chain_moment, health_source, source_identity
from dashboard.sources.base import HealthSource, SourceError
from dashboard.supply_chain import SupplyChain, gate_policy, read_supply_chain
from dashboard.timeline import evaluate_range, signal_series

SUPPLY_CHAIN_BUCKET_SECONDS = 60  # as demo_supply_chain_moment floors


@dataclass(frozen=True)
class Read:
    """An engine result and when it was read."""

    value: object
    read_at: datetime


@st.cache_resource(ttl=300)
def settings() -> Settings:
    """The settings of the process (environment, config file, secrets), re-read every 5 minutes."""
    return load_settings()


def health_key() -> str:
    return source_identity(settings().prometheus)


def supply_chain_key() -> str:
    current = settings()
    return f"{source_identity(current.grafeas)}|{current.policy_path}"


# The demo's scenario ends when it is built; Prometheus keeps a series visible 5 minutes after its
# last sample, so rebuilding well within that keeps "now" inside the demo's data.
@st.cache_resource(ttl=120, max_entries=8)
def _health_source(key: str) -> HealthSource:
    return health_source(settings().prometheus)


@st.cache_data(ttl=30, max_entries=64, show_spinner="Evaluating node components…")
def evaluation(key: str, at_iso: str, cluster: str | None) -> Read:
    """The health evaluation at ``at_iso`` (shared by every session asking for it)."""
    current = settings()
    result: Evaluation = evaluate(_health_source(key), current.catalog, at=datetime.fromisoformat(at_iso),
                                  cluster=cluster)
    return Read(result, datetime.now(timezone.utc))


def supply_chain_bucket(now: datetime | None = None) -> str:
    """The current minute (the demo's supply-chain moment), as the cache key."""
    return demo_supply_chain_moment(now or datetime.now(timezone.utc)).isoformat()


@st.cache_data(ttl=SUPPLY_CHAIN_BUCKET_SECONDS, max_entries=8, show_spinner="Reading the supply chain…")
def supply_chain(key: str, bucket_iso: str) -> Read:
    """Every occurrence of the configured projects (the demo's, built for the bucket's moment)."""
    chain: SupplyChain = read_supply_chain(settings(), now=datetime.fromisoformat(bucket_iso))
    return Read(chain, datetime.now(timezone.utc))


@st.cache_data(ttl=SUPPLY_CHAIN_BUCKET_SECONDS, max_entries=8, show_spinner="Judging every release…")
def releases(key: str, bucket_iso: str) -> Read:
    """The release table of the supply chain read for ``bucket_iso``, gated by the policy."""
    chain: SupplyChain = supply_chain(key, bucket_iso).value
    table: pd.DataFrame = release_table(chain.occurrences, gate_policy(settings()), source_error=chain.error)
    return Read(table, datetime.now(timezone.utc))


@st.cache_data(ttl=300, max_entries=16, show_spinner=False)
def known_clusters(key: str, at_iso: str) -> list[str]:
    """The clusters the health source knows (empty when it cannot be read: the page says why)."""
    try:
        return inventory.known_clusters(_health_source(key), settings().catalog, at=datetime.fromisoformat(at_iso))
    except SourceError:
        return []


@st.cache_data(ttl=60, max_entries=32, show_spinner="Judging every step of the range…")
def timeline(key: str, start_iso: str, end_iso: str, step_s: int, cluster: str | None) -> Read:
    """The verdict timeline of a range (shared by every session asking for the same range)."""
    frame = evaluate_range(_health_source(key), settings().catalog, start=datetime.fromisoformat(start_iso),
                           end=datetime.fromisoformat(end_iso), step=timedelta(seconds=step_s), cluster=cluster)
    return Read(frame, datetime.now(timezone.utc))


@st.cache_data(ttl=60, max_entries=32, show_spinner="Reading the work signals…")
def series(key: str, start_iso: str, end_iso: str, step_s: int, cluster: str | None, node: str | None) -> Read:
    """Work-signal series of a range: cluster-wide, or for one node."""
    frame = signal_series(_health_source(key), settings().catalog, start=datetime.fromisoformat(start_iso),
                          end=datetime.fromisoformat(end_iso), step=timedelta(seconds=step_s), cluster=cluster,
                          node=node)
    return Read(frame, datetime.now(timezone.utc))


@st.cache_data(ttl=300, max_entries=64, show_spinner="Reading the cluster around the deploy…")
def around(key: str, cluster: str, deploy_iso: str, window_s: int) -> Read:
    """The cluster's health ``window_s`` before and after one deploy (capped at now)."""
    rules = ImpactRules(window=timedelta(seconds=window_s))
    read = read_around(_health_source(key), settings().catalog, cluster, datetime.fromisoformat(deploy_iso),
                       now=datetime.now(timezone.utc), rules=rules)
    return Read(read, datetime.now(timezone.utc))
