"""Benchmark of one health evaluation on a large cluster in a real Prometheus (a script, not a test).

Generates the demo scenario at ``--nodes`` nodes with ``--history`` of data, backfills it with promtool,
starts Prometheus on 127.0.0.1, then measures:

- queries per evaluation (counted on the wire by the source, and compared with the catalog);
- wall time of one evaluation (``dashboard.health.evaluate`` over ``PrometheusSource``) against the
  summed time of the same raw HTTP queries sent one by one with plain requests (the overhead ratio);
- peak RSS of one CLI evaluation (``python -m dashboard health --format json``) in a child process.

Usage: ``.venv/bin/python -m bench.health_bench --nodes 2000 --history 1h``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from dashboard.catalog import PRESETS, build_queries
from dashboard.durations import parse_duration
from dashboard.health import evaluate
from dashboard.sources.demo import demo_scenario, write_openmetrics
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from bench import peak_rss
from harness.promserver import start_prometheus

CATALOG = PRESETS["kube-prometheus-stack"]


def raw_query_seconds(url: str, at: datetime) -> tuple[float, int]:
    """Each catalog query sent alone with plain requests; returns summed seconds and response bytes."""
    total, size = 0.0, 0
    with requests.Session() as session:
        for query in build_queries(CATALOG):
            started = time.perf_counter()
            response = session.get(f"{url}/api/v1/query", params={"query": query.promql, "time": at.timestamp()}, timeout=120)
            response.json()
            total += time.perf_counter() - started
            size += len(response.content)
            response.raise_for_status()
    return total, size


def cli_peak_rss_mib(url: str, at: datetime) -> float:
    """Peak RSS of one ``python -m dashboard health --format json`` run, in MiB."""
    return peak_rss.cli_peak_rss_mib(["health", "--prometheus-url", url, "--at", str(at.timestamp()), "--format", "json"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--history", default="1h")
    parser.add_argument("--step", type=int, default=60, help="scrape step in seconds")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    scenario = demo_scenario(
        end, clusters=("bench",), nodes=args.nodes, history=timedelta(seconds=parse_duration(args.history)),
        step=timedelta(seconds=args.step),
    )
    with tempfile.TemporaryDirectory(prefix="health-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        openmetrics = workdir / "scenario.om"
        with openmetrics.open("w") as out:
            write_openmetrics(scenario, out)
        write_seconds = time.perf_counter() - started
        size_mb = openmetrics.stat().st_size / 1e6
        started = time.perf_counter()
        server = start_prometheus(openmetrics, workdir)
        backfill_seconds = time.perf_counter() - started
        try:
            at = end - timedelta(minutes=1)
            source = PrometheusSource(PrometheusSettings(url=server.url, timeout_seconds=120))
            sequential = PrometheusSource(PrometheusSettings(url=server.url, timeout_seconds=120, parallel_queries=1))
            evaluation = evaluate(source, CATALOG, at=at)  # warm-up: Prometheus caches postings
            queries_per_evaluation = source.requests_sent
            walls, sequential_walls, raws = [], [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                evaluate(source, CATALOG, at=at)
                walls.append(time.perf_counter() - started)
                started = time.perf_counter()
                evaluate(sequential, CATALOG, at=at)
                sequential_walls.append(time.perf_counter() - started)
                raw, response_bytes = raw_query_seconds(server.url, at)
                raws.append(raw)
            wall, raw = statistics.median(walls), statistics.median(raws)
            sequential_wall = statistics.median(sequential_walls)
            counts = evaluation.verdicts["verdict"].value_counts().to_dict()
            print(f"scenario: {args.nodes} nodes, {args.history} at {args.step} s steps; OpenMetrics {size_mb:.0f} MB written in {write_seconds:.1f} s")
            print(f"backfill + Prometheus start: {backfill_seconds:.1f} s ({server.samples:,} samples)")
            print(f"queries per evaluation: {queries_per_evaluation} on the wire (catalog: {len(build_queries(CATALOG))})")
            print(f"verdict rows: {len(evaluation.verdicts)} {counts}")
            print(f"summed raw HTTP query time, one by one (median of {args.repeat}): {raw:.2f} s; responses {response_bytes / 1e6:.1f} MB")
            print(f"evaluation wall time, queries one at a time (median of {args.repeat}): {sequential_wall:.2f} s"
                  f" = {sequential_wall / raw:.2f}x raw (target <= 1.3x)")
            print(f"evaluation wall time, default 4 queries in flight (median of {args.repeat}): {wall:.2f} s"
                  f" = {wall / raw:.2f}x raw", flush=True)
            cli_peak_rss_mb = cli_peak_rss_mib(server.url, at)
            print(f"peak RSS of one CLI evaluation: {cli_peak_rss_mb:.0f} MiB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
