"""Benchmark of the embedded demo source alone at a large size (a script, not a test).

Times what the pages ask of the demo, at ``--nodes`` nodes per cluster (two clusters, as the app's
demo): building it (``demo_scenario`` + ``DemoSource``), one instant ``observe``, a 3 h
``observe_range`` at 5 min, and ``observe_series`` for one cluster over the same range; the instant
judge (``health.judge``) on the instant answer and the timeline judge (``timeline.judge_range``) on
the range; then the process's peak RSS. One run each, in this order, in one process.

Usage: ``.venv/bin/python -m bench.demo_bench --nodes 2000``
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import datetime, timedelta, timezone

import pandas as pd

from dashboard import health, timeline
from dashboard.catalog import PRESETS
from dashboard.sources.demo import DemoSource, demo_scenario

CATALOG = PRESETS["kube-prometheus-stack"]
RANGE, STEP = timedelta(hours=3), timedelta(minutes=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000, help="nodes per cluster (default 2000)")
    args = parser.parse_args()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    timings = []

    def timed(what: str, call):
        started = time.perf_counter()
        result = call()
        rows = result if isinstance(result, pd.DataFrame) else getattr(result, "frame", None)
        timings.append((what, time.perf_counter() - started, None if rows is None else len(rows)))
        return result

    source = timed("build (demo_scenario + DemoSource)", lambda: DemoSource(demo_scenario(now, nodes=args.nodes)))
    instant = timed("one instant observe", lambda: source.observe(CATALOG, at=now))
    ranged = timed("observe_range, 3 h at 5 min",
                   lambda: source.observe_range(CATALOG, start=now - RANGE, end=now, step=STEP))
    timed("observe_series, one cluster, 3 h at 5 min",
          lambda: source.observe_series(CATALOG, start=now - RANGE, end=now, step=STEP, cluster="prod"))
    timed("health.judge of the instant", lambda: health.judge(instant, CATALOG))
    timed("timeline.judge_range of the 3 h range", lambda: timeline.judge_range(ranged, CATALOG))
    print(f"embedded demo, 2 clusters x {args.nodes} nodes")
    for what, seconds, rows in timings:
        print(f"  {what}: {seconds:.2f} s" + ("" if rows is None else f" ({rows:,} rows)"))
    print(f"  peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
