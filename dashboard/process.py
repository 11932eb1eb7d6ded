"""Process-wide tuning that only the owner of a process may apply: the CLI, never the app.

Reading a large Grafeas project keeps millions of decoded JSON objects alive while hundreds of
thousands of short-lived rows are built; every collection the rows trigger walks that JSON again.
A one-shot CLI process may pause the collector around that work. Inside the Streamlit server the
collector is shared by every session, so the engine itself never touches it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block; resume it only if it was running."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
