"""Benchmark of one verdict timeline on a large cluster in a real Prometheus (a script, not a test).

Generates the demo scenario at ``--nodes`` nodes over ``--history`` (scraped every ``--scrape``
seconds), backfills it with promtool, starts Prometheus on 127.0.0.1, then measures a timeline over
``--range`` at ``--step``:

- queries per timeline (counted on the wire by the source, compared with the catalog's count);
- wall time of ``dashboard.timeline.evaluate_range`` (queries one at a time, and with the default
  parallelism) against the summed time of the same raw ``query_range`` calls sent one by one with
  plain requests (the overhead ratio, target <= 1.3x);
- peak RSS of one CLI timeline (``python -m dashboard timeline --format csv``) in a child process,
  over ``--cli-runs`` runs, since it varies between runs (target <= 400 MB);
- the embedded demo's timeline (``--demo-nodes`` nodes, the CLI's default 6 h at 5 m).

Usage: ``.venv/bin/python -m bench.timeline_bench --nodes 500 --range 24h --step 5m``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from dashboard.catalog import PRESETS, build_queries
from dashboard.durations import parse_duration
from dashboard.sources.demo import DemoSource, demo_scenario, write_openmetrics
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from dashboard.sources.base import SourceError
from dashboard.timeline import evaluate_range, range_steps, range_window, split_steps
from bench import peak_rss
from harness.promserver import start_prometheus

CATALOG = PRESETS["kube-prometheus-stack"]


def raw_range_seconds(url: str, start: datetime, end: datetime, step: timedelta) -> tuple[float, float, int]:
    """Each range query sent alone with plain requests; returns summed and slowest seconds, and
    response bytes."""
    total, slowest, size = 0.0, 0.0, 0
    runs = split_steps(range_steps(start, end, step))
    with requests.Session() as session:
        for query in build_queries(range_window(CATALOG, step)):
            for run in runs:
                params = {"query": query.promql, "start": run[0].timestamp(), "end": run[-1].timestamp(),
                          "step": step.total_seconds()}
                started = time.perf_counter()
                response = session.get(f"{url}/api/v1/query_range", params=params, timeout=300)
                response.json()
                took = time.perf_counter() - started
                total, slowest = total + took, max(slowest, took)
                size += len(response.content)
                response.raise_for_status()
    return total, slowest, size


def cli_peak_rss_mib(url: str, start: datetime, end: datetime, step: str) -> float:
    """Peak RSS of one ``python -m dashboard timeline --format csv`` run, in MiB."""
    return peak_rss.cli_peak_rss_mib(
        ["timeline", "--prometheus-url", url, "--start", str(start.timestamp()), "--end", str(end.timestamp()),
         "--step", step, "--format", "csv"],
        # the bench's deadlines: a day of 500 nodes is more than the defaults (10 s, 60 s) allow
        env={"PROMETHEUS_TIMEOUT": "300", "PROMETHEUS_EVALUATION_TIMEOUT": "600"},
    )


def demo_seconds(nodes: int, step: timedelta) -> tuple[float, int]:
    """One timeline on the embedded demo (two clusters) over the CLI's default 6 hours."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    source = DemoSource(demo_scenario(end, nodes=nodes, history=timedelta(hours=7)))
    started = time.perf_counter()
    timeline = evaluate_range(source, CATALOG, start=end - timedelta(hours=6), end=end, step=step)
    return time.perf_counter() - started, len(timeline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--range", default="24h", help="the timeline's range (the history is 10 minutes longer)")
    parser.add_argument("--step", default="5m", help="the timeline's step")
    parser.add_argument("--scrape", type=int, default=300, help="scrape interval of the generated data, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli-runs", type=int, default=3,
                        help="CLI timelines whose peak RSS is measured (it varies between runs)")
    parser.add_argument("--demo-nodes", type=int, default=12)
    parser.add_argument("--query-timeout", default="2m",
                        help="Prometheus' --query.timeout (default 2m, Prometheus' own default)")
    args = parser.parse_args()

    step = timedelta(seconds=parse_duration(args.step))
    span = timedelta(seconds=parse_duration(args.range))
    # On the scrape grid: a 5m window at a 5m scrape then holds two samples, as rate() needs.
    now = int(datetime.now(timezone.utc).timestamp())
    end = datetime.fromtimestamp(now - now % args.scrape, timezone.utc)
    start = end - span
    scenario = demo_scenario(
        end, clusters=("bench",), nodes=args.nodes, history=span + timedelta(minutes=10),
        step=timedelta(seconds=args.scrape),
    )
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        openmetrics = workdir / "scenario.om"
        with openmetrics.open("w") as out:
            write_openmetrics(scenario, out)
        write_seconds = time.perf_counter() - started
        size_mb = openmetrics.stat().st_size / 1e6
        started = time.perf_counter()
        server = start_prometheus(openmetrics, workdir, extra_args=[f"--query.timeout={args.query_timeout}"])
        backfill_seconds = time.perf_counter() - started
        openmetrics.unlink()
        print(f"scenario: {args.nodes} nodes, {args.range} + 10m scraped every {args.scrape} s; "
              f"OpenMetrics {size_mb:.0f} MB written in {write_seconds:.1f} s")
        print(f"backfill + Prometheus start: {backfill_seconds:.1f} s ({server.samples:,} samples); "
              f"query timeout {args.query_timeout}", flush=True)
        try:
            settings = PrometheusSettings(url=server.url, timeout_seconds=300, evaluation_timeout_seconds=600)
            source = PrometheusSource(settings)
            sequential = PrometheusSource(
                PrometheusSettings(url=server.url, timeout_seconds=300, evaluation_timeout_seconds=600, parallel_queries=1)
            )
            timeline = evaluate_range(source, CATALOG, start=start, end=end, step=step)  # warm-up
            queries = source.requests_sent
            walls, sequential_walls, raws, slowest = [], [], [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                evaluate_range(source, CATALOG, start=start, end=end, step=step)
                walls.append(time.perf_counter() - started)
                started = time.perf_counter()
                evaluate_range(sequential, CATALOG, start=start, end=end, step=step)
                sequential_walls.append(time.perf_counter() - started)
                raw, slow, response_bytes = raw_range_seconds(server.url, start, end, step)
                raws.append(raw)
                slowest.append(slow)
            wall, raw, sequential_wall = (statistics.median(x) for x in (walls, raws, sequential_walls))
            steps = len(range_steps(start, end, step))
            print(f"timeline: {args.range} at {args.step} = {steps} steps; {len(timeline):,} verdict rows "
                  f"{timeline['verdict'].value_counts().to_dict()}")
            print(f"queries per timeline: {queries} on the wire "
                  f"(catalog: {len(build_queries(range_window(CATALOG, step)))} x {len(split_steps(range_steps(start, end, step)))} run)")
            print(f"summed raw query_range time, one by one (median of {args.repeat}): {raw:.2f} s; "
                  f"responses {response_bytes / 1e6:.1f} MB; slowest query {statistics.median(slowest):.2f} s")
            print(f"timeline wall time, queries one at a time (median of {args.repeat}): {sequential_wall:.2f} s"
                  f" = {sequential_wall / raw:.2f}x raw (target <= 1.3x)")
            print(f"timeline wall time, default {settings.parallel_queries} queries in flight: {wall:.2f} s"
                  f" = {wall / raw:.2f}x raw", flush=True)
            peaks = [cli_peak_rss_mib(server.url, start, end, args.step) for _ in range(args.cli_runs)]
            print(f"peak RSS of one CLI timeline ({args.cli_runs} runs): {min(peaks):.0f}-{max(peaks):.0f} MiB, "
                  f"median {statistics.median(peaks):.0f} (target <= 400 MB = 381 MiB)", flush=True)
        except SourceError as error:
            sys.exit(f"the timeline could not be read: {error}")
        finally:
            server.stop()
    seconds, rows = demo_seconds(args.demo_nodes, step)
    print(f"embedded demo timeline (2 clusters x {args.demo_nodes} nodes, 6h at {args.step}): "
          f"{seconds:.2f} s for {rows:,} rows")


if __name__ == "__main__":
    main()
