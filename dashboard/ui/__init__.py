"""Shared page plumbing: cached settings and sources, pickers bound to the URL, verdict colours and
icons, number formatting and error panels. The only place besides ``dashboard/app.py`` and
``pages/`` that imports streamlit; every page uses it instead of repeating it."""
