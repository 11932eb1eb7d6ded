"""Streamlit entry point: page configuration and navigation over ../pages, nothing else."""

import streamlit as st

from dashboard.ui.navigation import all_pages


def main() -> None:
    st.set_page_config(page_title="Node health & release provenance", layout="wide")
    st.navigation(all_pages()).run()


main()
