"""The supply-chain side of the engine as both faces use it: the policy to judge by, and the
normalised occurrences of the configured Grafeas (or the demo's), with a read error kept rather
than raised, so that the gate can fail closed and a page can still show the other half.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dashboard.config import Settings
from dashboard.occurrences import Occurrences, normalise
from dashboard.policy import Policy, load_policy
from dashboard.resources import not_found_message, similar_resources, uri_forms
from dashboard.sources import supply_chain_source
from dashboard.sources.base import SourceError, SupplyChainSource


class NoPolicyError(Exception):
    """A real Grafeas is configured but no gate policy: the gate cannot judge anything."""


@dataclass(frozen=True)
class SupplyChain:
    """What one listing read: the frames, from where, and the error that cut it short (if any)."""

    occurrences: Occurrences
    source: str
    error: str | None = None


@dataclass(frozen=True)
class ReleaseRead:
    """One release's occurrences, under the URI form the source holds them by.

    ``not_found`` is the line to show when no form matched (with close URIs the source does hold);
    ``error`` is a read error, which leaves the frames empty so that the gate denies.
    """

    resource: str
    occurrences: Occurrences
    error: str | None = None
    not_found: str | None = None


def gate_policy(settings: Settings) -> Policy:
    """The configured policy; the demo's own only when running on the demo's supply chain."""
    if settings.policy_path is not None:
        return load_policy(settings.policy_path)
    if settings.uses_demo_grafeas:
        from dashboard.sources.demo_grafeas import demo_policy

        return demo_policy()
    raise NoPolicyError("no gate policy: pass --policy FILE, set GATE_POLICY or [grafeas] policy in the config")


def read_supply_chain(settings: Settings, resource_uri: str | None = None, *, now: datetime | None = None) -> SupplyChain:
    """Every occurrence of the configured projects (or of one release), normalised.

    A source that cannot be read gives empty frames and its one-line error: the gate run on them
    denies, as it must.
    """
    try:
        source = supply_chain_source(settings.grafeas, now=now)
    except ValueError as error:
        return SupplyChain(normalise([]), "Grafeas (not configured correctly)", str(error))
    try:
        return SupplyChain(normalise(source.occurrences(resource_uri)), source.description)
    except SourceError as error:
        return SupplyChain(normalise([]), source.description, str(error))


def read_release(source: SupplyChainSource, uri: str) -> ReleaseRead:
    """The occurrences of the release ``uri``, given with or without ``https://``.

    Each stored form is asked for in turn; when none has occurrences the whole listing is read to
    suggest close URIs (only on that path, and a failure there just leaves the suggestions out).
    """
    try:
        for form in uri_forms(uri):
            occurrences = normalise(source.occurrences(form))
            if not occurrences.all.empty:
                return ReleaseRead(form, occurrences)
    except SourceError as error:
        return ReleaseRead(uri, normalise([]), error=str(error))
    try:
        known = normalise(source.occurrences()).all["resource_uri"].dropna().unique()
    except SourceError:
        known = []
    return ReleaseRead(uri, occurrences, not_found=not_found_message(similar_resources(uri, known)))
