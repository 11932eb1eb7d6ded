"""Banners and error panels shared by the pages: the demo banner, source status, and an error
panel for the part of a page whose source failed, so the rest of the page still renders."""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from dashboard.ui import data
from dashboard.ui.style import age, escape_markdown


def demo_banner(*, health_demo: bool, supply_chain_demo: bool) -> None:
    """Say plainly which halves run on generated data."""
    if health_demo and supply_chain_demo:
        st.info("DEMO: no Prometheus or Grafeas configured; everything below is generated demo data. "
                "Set PROMETHEUS_URL and GRAFEAS_URL (or a config file) to see your clusters.")
    elif health_demo:
        st.info("DEMO health data: no Prometheus configured (set PROMETHEUS_URL).")
    elif supply_chain_demo:
        st.info("DEMO supply chain: no Grafeas configured (set GRAFEAS_URL).")


def source_error(what: str, error: str) -> None:
    """The panel for a part of the page whose source could not be read (the text is the engine's
    one-line error, already free of secrets; a server's message inside it is shown literally)."""
    st.error(f"Could not read the source for {escape_markdown(what)}: {escape_markdown(error)}")


def problem(text: str) -> None:
    """A warning about a value the user or a link typed (a query parameter, a custom range),
    shown literally: a link can carry markdown or HTML."""
    st.warning(escape_markdown(text))


def freshness(source: str, read_at: datetime) -> str:
    """``Prometheus at http://… · read 42 s ago``."""
    return f"{source} · read {age((datetime.now(timezone.utc) - read_at).total_seconds())} ago"


def _public_url(url: str) -> str:
    """A configured URL as a page may show it: no user-info, query or fragment."""
    from dashboard.sources.prometheus import redacted_url

    return redacted_url(url)


def source_descriptions() -> dict[str, str]:
    """Which source each half reads, without credentials (never a token, a password or a header)."""
    current = data.settings()
    if current.prometheus is None:
        health = "DEMO: embedded demo, generated data (no Prometheus configured)"
    else:
        health = f"Prometheus at {_public_url(current.prometheus.url)}"
    grafeas = current.grafeas
    if grafeas is None:
        chain = "DEMO: embedded demo supply chain, generated data (no Grafeas configured)"
    else:
        chain = f"Grafeas {grafeas.api} at {_public_url(grafeas.url)} (projects {', '.join(grafeas.projects)})"
    return {data.HEALTH: health, data.SUPPLY_CHAIN: chain}


def status_lines(now: datetime | None = None) -> list[tuple[str, str, str, str | None]]:
    """Per source: ``(half, description, state, error)``; the state says reachable or not (from
    the last read that reached it), when that read was and its age, and STALE when it is older
    than the refresh interval."""
    now = now or datetime.now(timezone.utc)
    refresh = data.refresh_seconds()
    statuses = data.source_statuses()
    lines = []
    for half, description in source_descriptions().items():
        status = statuses.get(half)
        if status is None:
            lines.append((half, description, "? not read yet", None))
            continue
        seconds = (now - status.read_at).total_seconds()
        state = "✔ reachable" if status.ok else "✖ unreachable"
        state += f" · last read {status.read_at:%H:%M:%S} UTC, {age(seconds)} ago"
        if seconds > refresh:
            state += f" · STALE (older than the {age(refresh)} refresh)"
        lines.append((half, description, state, status.error))
    return lines


def _status_panel() -> None:
    st.caption("Sources")
    for half, description, state, error in status_lines():
        st.text(f"{half}: {description}\n{state}" + (f"\nlast error: {error}" if error else ""))


def source_status() -> None:
    """The source status panel, in the sidebar: which Prometheus and Grafeas (or DEMO), reachable
    or not, the last read and how old it is. Call it last on a page, after its reads; it renders
    again every refresh interval on its own, so ages and staleness stay current."""
    with st.sidebar:
        st.fragment(_status_panel, run_every=data.refresh_seconds())()
