"""The app's pages and their URL paths (a contract: links into the app use them).

``dashboard/app.py`` routes with these; a page that links to another asks for it here, so a link
and the router can never disagree on a path.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent.parent / "pages"
# name: (file in pages/, title, URL path; "" is the default page at /)
PAGES: dict[str, tuple[str, str, str]] = {
    "oncall": ("oncall.py", "On call", ""),
    "health": ("health.py", "Cluster health", "health"),
    "releases": ("releases.py", "Releases", "releases"),
    "release": ("release.py", "Release", "release"),
}


# Reached through a link that names what to show, not from the menu.
LINKED_ONLY = {"release"}


def page(name: str) -> st.Page:
    """The page ``name`` as st.navigation and st.switch_page want it."""
    file, title, url_path = PAGES[name]
    if not url_path:
        return st.Page(PAGES_DIR / file, title=title, default=True)
    visibility = "hidden" if name in LINKED_ONLY else "visible"
    return st.Page(PAGES_DIR / file, title=title, url_path=url_path, visibility=visibility)


def all_pages() -> list[st.Page]:
    return [page(name) for name in PAGES]
