"""Cached settings, sources and engine results for the pages, on small keys with a ttl.

Keys name what identifies the data (the source's identity digest, a time bucket, a cluster), never a
DataFrame, so every session asking the same question shares one answer. Each result carries the
moment it was read, so a page can say how old it is; every read that reaches a source also notes
whether it succeeded, for the source status panel (:func:`source_statuses`).

Results are cached as resources, not as data: every session gets the one object, where
``st.cache_data`` would unpickle a copy per call (some 0.8 s of a warm On call load at 2,000
nodes). The pages treat them as read-only: filters and ``assign`` make new frames, never write back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from dashboard import inventory
from dashboard.config import Settings, load_settings
from dashboard.deploy_impact import Around, impacts_by_release, read_around
from dashboard.deployments import deployments_between
from dashboard.health import Evaluation, evaluate
from dashboard.impact import ImpactRules
from dashboard.provenance import release_table
from dashboard.sources import demo_supply_chain_moment, health_source, source_identity
from dashboard.sources.base import HealthSource, SourceError
from dashboard.supply_chain import SupplyChain, gate_policy, read_supply_chain
from dashboard.timeline import evaluate_range, signal_series

SUPPLY_CHAIN_BUCKET_SECONDS = 60  # as demo_supply_chain_moment floors
HEALTH, SUPPLY_CHAIN = "Node health", "Supply chain"


@dataclass(frozen=True)
class Read:
    """An engine result and when it was read."""

    value: object
    read_at: datetime


@dataclass(frozen=True)
class SourceStatus:
    """The last read that reached a source: when, and whether it succeeded (with the error)."""

    read_at: datetime
    ok: bool
    error: str | None = None


@st.cache_resource(ttl=300)
def settings() -> Settings:
    """The settings of the process (environment, config file, secrets), re-read every 5 minutes."""
    return load_settings()


def refresh_seconds() -> float:
    """How often live parts refresh (``DASHBOARD_REFRESH_SECONDS``, default 60); data older is stale."""
    return settings().refresh_seconds


@st.cache_resource
def _statuses() -> dict[tuple[str, str], SourceStatus]:
    """Per (half, source key), the last read that reached the source; shared by every session, as
    the cached answers are."""
    return {}


def _note(half: str, key: str, error: str | None = None) -> None:
    _statuses()[(half, key)] = SourceStatus(datetime.now(timezone.utc), error is None, error)


def source_statuses() -> dict[str, SourceStatus | None]:
    """The last read of each configured source (None: not read yet by this server)."""
    statuses = _statuses()
    return {HEALTH: statuses.get((HEALTH, health_key())), SUPPLY_CHAIN: statuses.get((SUPPLY_CHAIN, supply_chain_key()))}


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


@st.cache_resource(ttl=30, max_entries=64, show_spinner="Evaluating node components…")
def evaluation(key: str, at_iso: str, cluster: str | None) -> Read:
    """The health evaluation at ``at_iso`` (shared by every session asking for it)."""
    current = settings()
    try:
        result: Evaluation = evaluate(_health_source(key), current.catalog, at=datetime.fromisoformat(at_iso),
                                      cluster=cluster)
    except SourceError as error:
        _note(HEALTH, key, str(error))
        raise
    _note(HEALTH, key)
    return Read(result, datetime.now(timezone.utc))


def supply_chain_bucket(now: datetime | None = None) -> str:
    """The current minute (the demo's supply-chain moment), as the cache key."""
    return demo_supply_chain_moment(now or datetime.now(timezone.utc)).isoformat()


@st.cache_resource(ttl=SUPPLY_CHAIN_BUCKET_SECONDS, max_entries=8, show_spinner="Reading the supply chain…")
def supply_chain(key: str, bucket_iso: str) -> Read:
    """Every occurrence of the configured projects (the demo's, built for the bucket's moment)."""
    chain: SupplyChain = read_supply_chain(settings(), now=datetime.fromisoformat(bucket_iso))
    _note(SUPPLY_CHAIN, key, chain.error)
    return Read(chain, datetime.now(timezone.utc))


@st.cache_resource(ttl=SUPPLY_CHAIN_BUCKET_SECONDS, max_entries=8, show_spinner="Judging every release…")
def releases(key: str, bucket_iso: str) -> Read:
    """The release table of the supply chain read for ``bucket_iso``, gated by the policy."""
    chain: SupplyChain = supply_chain(key, bucket_iso).value
    table: pd.DataFrame = release_table(chain.occurrences, gate_policy(settings()), source_error=chain.error)
    return Read(table, datetime.now(timezone.utc))


@st.cache_resource(ttl=300, max_entries=16, show_spinner=False)
def known_clusters(key: str, at_iso: str) -> list[str]:
    """The clusters the health source knows (empty when it cannot be read: the page says why)."""
    try:
        clusters = inventory.known_clusters(_health_source(key), settings().catalog, at=datetime.fromisoformat(at_iso))
    except SourceError as error:
        _note(HEALTH, key, str(error))
        return []
    _note(HEALTH, key)
    return clusters


@st.cache_resource(ttl=60, max_entries=32, show_spinner="Judging every step of the range…")
def timeline(key: str, start_iso: str, end_iso: str, step_s: int, cluster: str | None) -> Read:
    """The verdict timeline of a range (shared by every session asking for the same range)."""
    try:
        frame = evaluate_range(_health_source(key), settings().catalog, start=datetime.fromisoformat(start_iso),
                               end=datetime.fromisoformat(end_iso), step=timedelta(seconds=step_s), cluster=cluster)
    except SourceError as error:
        _note(HEALTH, key, str(error))
        raise
    _note(HEALTH, key)
    return Read(frame, datetime.now(timezone.utc))


@st.cache_resource(ttl=60, max_entries=32, show_spinner="Reading the work signals…")
def series(key: str, start_iso: str, end_iso: str, step_s: int, cluster: str | None, node: str | None) -> Read:
    """Work-signal series of a range: cluster-wide, or for one node."""
    try:
        frame = signal_series(_health_source(key), settings().catalog, start=datetime.fromisoformat(start_iso),
                              end=datetime.fromisoformat(end_iso), step=timedelta(seconds=step_s), cluster=cluster,
                              node=node)
    except SourceError as error:
        _note(HEALTH, key, str(error))
        raise
    _note(HEALTH, key)
    return Read(frame, datetime.now(timezone.utc))


@st.cache_resource(ttl=300, max_entries=256, show_spinner="Reading the cluster around the deploy…")
def around(key: str, cluster: str, deploy_iso: str, window_s: int) -> Read:
    """The cluster's health ``window_s`` before and after one deploy (capped at now)."""
    rules = ImpactRules(window=timedelta(seconds=window_s))
    read = read_around(_health_source(key), settings().catalog, cluster, datetime.fromisoformat(deploy_iso),
                       now=datetime.now(timezone.utc), rules=rules)
    _note(HEALTH, key, read.error)
    return Read(read, datetime.now(timezone.utc))


@dataclass(frozen=True)
class ReleaseImpacts:
    """Per release URI, the worst impact over its deployments (as ``python -m dashboard releases``
    computes it), the deploy markers it was judged on, and the health source's error if any."""

    worst: dict[str, str | None]
    markers: pd.DataFrame
    error: str | None = None


@st.cache_resource(ttl=SUPPLY_CHAIN_BUCKET_SECONDS, max_entries=8, show_spinner="Judging the impact of every deploy…")
def release_impacts(health: str, chain_key: str, bucket_iso: str,
                    window_s: int = int(ImpactRules().window.total_seconds())) -> Read:
    """Every deployment of the supply chain read for ``bucket_iso`` judged as the ``releases``
    command judges it (dashboard.deploy_impact.impacts_by_release), each read
    around a deploy taken from the cached :func:`around`, so a real source's fixed deploys are not
    re-read every minute."""
    current = settings()
    chain: SupplyChain = supply_chain(chain_key, bucket_iso).value
    now = datetime.now(timezone.utc)
    error = None
    try:
        clusters = inventory.known_clusters(_health_source(health), current.catalog, at=now)
        _note(HEALTH, health)
    except SourceError as failure:
        clusters, error = None, str(failure)
        _note(HEALTH, health, error)
    markers = deployments_between(chain.occurrences, datetime.min.replace(tzinfo=timezone.utc), now,
                                  aliases=current.cluster_aliases, known_clusters=clusters)
    # As the command does: only the releases the table lists, which are also each other's confounders.
    markers = markers[markers["resource_uri"].isin(releases(chain_key, bucket_iso).value["resource_uri"])]

    def cached_read(cluster: str, deploy_time: datetime) -> Around:
        return around(health, cluster, deploy_time.isoformat(), window_s).value

    rules = ImpactRules(window=timedelta(seconds=window_s))
    worst = impacts_by_release(None, current.catalog, markers, now=now, rules=rules, source_error=error,
                               read=cached_read)
    return Read(ReleaseImpacts(worst, markers, error), datetime.now(timezone.utc))
