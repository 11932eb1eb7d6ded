"""Every view is a link: widget state and the URL's query parameters kept as one.

A widget's key is its query parameter's name. :func:`seed` fills the widget's state from the URL
before the widget is drawn (a link opened in a new tab reproduces the view); :func:`mirror` writes
the state back to the URL after it is drawn (changing a widget updates the link). The widget's
state is the one source of truth; the URL only mirrors it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def seed(key: str, parse: Callable[[str], Any] = str) -> str | None:
    """Set ``st.session_state[key]`` from the query parameter ``key`` unless it is set already.

    Returns a one-line problem when the URL's value cannot be used (it is then ignored)."""
    if key in st.session_state or key not in st.query_params:
        return None
    text = st.query_params[key]
    try:
        st.session_state[key] = parse(text)
    except (ValueError, TypeError) as error:
        return f"The link's {key}={text!r} was ignored: {error}"
    return None


def mirror(key: str, dump: Callable[[Any], str] = str, default: Any = None) -> None:
    """Write ``st.session_state[key]`` to the query parameter ``key`` (removed at its default)."""
    value = st.session_state.get(key, default)
    if value is None or value == default or value == [] or value == "":
        if key in st.query_params:
            del st.query_params[key]
        return
    text = dump(value)
    if st.query_params.get(key) != text:
        st.query_params[key] = text


def split(text: str) -> list[str]:
    """A comma-separated query parameter as a list."""
    return [part for part in (item.strip() for item in text.split(",")) if part]


def join(values: list[str]) -> str:
    return ",".join(values)
