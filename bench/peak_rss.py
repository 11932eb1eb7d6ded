"""How the benches measure one CLI command's own peak memory.

``MEASURE_CLI`` is a program for ``python -c``: it runs ``python -m dashboard`` with the given
arguments in that fresh interpreter, then prints its ``VmHWM`` (KiB) to stderr. Not ``ru_maxrss``:
on Linux a child started by ``subprocess`` (vfork or fork, then exec) keeps its parent's high-water
mark in ``ru_maxrss``, so a bench that has grown would report its own peak (a day of 500 nodes: the
bench's 421 MiB in place of the CLI's ~355). ``VmHWM`` belongs to the memory the exec started, and
RUSAGE_CHILDREN would count promtool too.
"""

MEASURE_CLI = """
import runpy, sys
sys.argv = ["dashboard", *sys.argv[1:]]
try:
    runpy.run_module("dashboard", run_name="__main__")
except SystemExit:
    pass
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")), file=sys.stderr)
"""
