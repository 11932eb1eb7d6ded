"""Streamlit entry point: page configuration and navigation over ../pages, nothing else."""

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def main() -> None:
    st.set_page_config(page_title="Node health & release provenance", layout="wide")
    navigation = st.navigation(
        [st.Page(PAGES_DIR / "health.py", title="Node health", default=True)]
    )
    navigation.run()


main()
