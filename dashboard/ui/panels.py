"""Banners and error panels shared by the pages: the demo banner, source status, and an error
panel for the part of a page whose source failed, so the rest of the page still renders."""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from dashboard.ui.style import age


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
    one-line error, already free of secrets)."""
    st.error(f"Could not read the source for {what}: {error}")


def freshness(source: str, read_at: datetime) -> str:
    """``Prometheus at http://… · read 42 s ago``."""
    return f"{source} · read {age((datetime.now(timezone.utc) - read_at).total_seconds())} ago"
