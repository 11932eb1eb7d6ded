"""How the benches measure one CLI command's own peak memory.

:func:`cli_peak_rss_mib` runs ``python -m dashboard`` with the given arguments in a fresh
interpreter, which then reports its ``VmHWM``. Not ``ru_maxrss``: on Linux a child started by
``subprocess`` (vfork or fork, then exec) keeps its parent's high-water mark in ``ru_maxrss``, so a
bench that has grown would report its own peak (a day of 500 nodes: the timeline bench's 421 MiB
where the CLI's own was 352 MiB). ``VmHWM`` belongs to the memory the exec started, and
RUSAGE_CHILDREN would count promtool too.
"""

from __future__ import annotations

import os
import subprocess
import sys

_MEASURE_CLI = """
import runpy, sys
sys.argv = ["dashboard", *sys.argv[1:]]
try:
    runpy.run_module("dashboard", run_name="__main__")
except SystemExit:
    pass
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")), file=sys.stderr)
"""


def cli_peak_rss_mib(arguments: list[str], env: dict[str, str] | None = None) -> float:
    """Peak RSS of one ``python -m dashboard ARGUMENTS`` run (its output discarded), in MiB;
    ``env`` is added to this process' environment."""
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE_CLI, *arguments],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    return int(completed.stderr.strip().splitlines()[-1]) / 1024
