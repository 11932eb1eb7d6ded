"""Reading small configuration files (policy, keys) safely: regular files only, with a size cap.

``/dev/zero`` would fill memory and a FIFO would hang a read; both are refused before any byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileReadError(OSError):
    """A file could not be used; the message is one line naming the file and the problem."""


def read_regular_file(path: str | Path, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``what`` names it in errors."""
    name = f"{what} {path}"
    try:
        _require_regular(os.stat(path).st_mode, name)
        # O_NONBLOCK: a FIFO swapped in between the stat and the open cannot block the open.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileReadError(f"{name}: not found") from None
    except FileReadError:
        raise
    except OSError as error:
        raise FileReadError(f"{name}: cannot read: {error.strerror or error}") from None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            _require_regular(os.fstat(descriptor).st_mode, name)
            data = handle.read(limit + 1)
        except FileReadError:
            raise
        except OSError as error:
            raise FileReadError(f"{name}: cannot read: {error.strerror or error}") from None
    if len(data) > limit:
        raise FileReadError(f"{name}: larger than the {limit}-byte limit")
    return data


def _require_regular(mode: int, name: str) -> None:
    if not stat.S_ISREG(mode):
        raise FileReadError(f"{name}: not a regular file")
