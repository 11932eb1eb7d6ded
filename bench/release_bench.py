"""Benchmark of one ``release`` record with three deployments on a real Prometheus (a script, not a test).

Generates three clusters (``staging``, ``canary``, ``prod``) of ``--nodes`` nodes, scraped every
``--scrape`` seconds, and one release deployed into each, five minutes apart, the last one
``--window`` + 10 min ago; prod's kubelet on node-02 fails 12 % of its runtime operations from three
minutes after its deploy (``harness/scenarios.py``). Backfills it with promtool, starts Prometheus on
127.0.0.1, serves the release's occurrences (and its predecessor's) from the Grafeas test server,
then measures, as the median of ``--repeat`` interleaved runs:

- queries per record (counted on the wire: the instant queries that find the known clusters, then
  per deployment one ``query_range`` per catalog query for the verdicts and one per work signal
  for the series);
- wall time of the engine's part of ``python -m dashboard release`` once the supply chain is read:
  the known clusters, the deploy markers and ``dashboard.release_record.release_record`` with
  ``dashboard.deploy_impact.deployment_impact`` per deployment (queries one at a time, and with
  the default parallelism), against the summed time of the same HTTP calls (recorded from one run)
  sent one by one with plain requests (the overhead ratio, target <= 1.3x);
- for context: the Grafeas read (``read_supply_chain``) against its pages fetched with plain
  requests, and one CLI run end to end (``python -m dashboard release --format json``, interpreter
  start included).

The engine runs at the fixed ``now`` the scenario was generated for; the data runs 30 minutes past
it, so that the CLI run (which asks at the real now) still finds every cluster.

Usage: ``.venv/bin/python -m bench.release_bench --nodes 100 --window 30m``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from dashboard.catalog import PRESETS
from dashboard.config import load_settings
from dashboard.deploy_impact import deployment_impact
from dashboard.deployments import deployments_between
from dashboard.durations import parse_duration
from dashboard.gate import evaluate_gate
from dashboard.impact import ImpactRules
from dashboard.inventory import known_clusters
from dashboard.policy import Policy, load_policy
from dashboard.release_record import release_record
from dashboard.sources.demo import write_openmetrics
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from dashboard.supply_chain import SupplyChain, read_supply_chain
from harness.grafeas_server import GrafeasTestServer
from harness.promserver import start_prometheus
from harness.scenarios import PROJECT, fleet, incident_after, release_occurrences, release_uri, write_policy

CATALOG = PRESETS["kube-prometheus-stack"]
CLUSTERS = ("staging", "canary", "prod")
MARGIN = timedelta(minutes=30)  # data past the engine's now, for the CLI run at the real now


class RecordingSource(PrometheusSource):
    """A Prometheus source that also records every call it sends (endpoint, the request's params)."""

    def __init__(self, settings: PrometheusSettings) -> None:
        super().__init__(settings)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._calls_lock = threading.Lock()

    def query(self, promql, at, *, until=None):
        with self._calls_lock:
            self.calls.append(("query", {"query": promql, "time": f"{at.timestamp():.3f}"}))
        return super().query(promql, at, until=until)

    def query_range(self, promql, start, end, step_seconds, *, until=None):
        with self._calls_lock:
            self.calls.append(("query_range", {"query": promql, "start": f"{start.timestamp():.3f}",
                                               "end": f"{end.timestamp():.3f}", "step": f"{step_seconds:g}"}))
        return super().query_range(promql, start, end, step_seconds, until=until)


def engine_record(source: PrometheusSource, chain: SupplyChain, resource: str, policy: Policy, *,
                  now: datetime, rules: ImpactRules) -> dict:
    """What ``run_release`` in ``dashboard/__main__.py`` computes once the supply chain is read."""
    gate = evaluate_gate(resource, chain.occurrences, policy, source_error=chain.error)
    clusters = known_clusters(source, CATALOG, at=now)
    markers = deployments_between(chain.occurrences, datetime.min.replace(tzinfo=timezone.utc), now,
                                  known_clusters=clusters)

    def impact_for(deployment: dict) -> dict:
        return deployment_impact(source, CATALOG, deployment, now=now, rules=rules, other_deploys=markers,
                                 resource_uri=resource)

    return release_record(resource, chain.occurrences, policy, gate=gate, impact_for=impact_for,
                          known_clusters=clusters)


def raw_seconds(url: str, calls: list[tuple[str, dict[str, str]]]) -> tuple[float, int]:
    """Each recorded call sent alone with plain requests; returns summed seconds and response bytes."""
    total, size = 0.0, 0
    with requests.Session() as session:
        for endpoint, params in calls:
            started = time.perf_counter()
            response = session.get(f"{url}/api/v1/{endpoint}", params=params, timeout=300)
            response.json()
            total += time.perf_counter() - started
            size += len(response.content)
            response.raise_for_status()
    return total, size


def raw_grafeas_seconds(server: GrafeasTestServer, paths_and_params: list[tuple[str, dict[str, str]]]) -> float:
    """The Grafeas pages one read fetched, fetched again with plain requests (JSON decoded)."""
    total = 0.0
    with requests.Session() as session:
        for path, params in paths_and_params:
            started = time.perf_counter()
            response = session.get(f"{server.url}{path}", params=params, timeout=300)
            response.json()
            total += time.perf_counter() - started
            response.raise_for_status()
    return total


def cli_seconds(prometheus_url: str, grafeas_url: str, policy: Path, resource: str, window: str) -> tuple[float, int]:
    """One ``python -m dashboard release --format json`` run: wall seconds and exit code."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "dashboard", "release", "--resource", resource, "--window", window,
         "--prometheus-url", prometheus_url, "--grafeas-url", grafeas_url, "--project", PROJECT,
         "--policy", str(policy), "--format", "json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PROMETHEUS_TIMEOUT": "300", "PROMETHEUS_EVALUATION_TIMEOUT": "600"},
    )
    return time.perf_counter() - started, completed.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100, help="nodes per cluster (three clusters)")
    parser.add_argument("--window", default="30m", help="the impact window before and after each deploy")
    parser.add_argument("--scrape", type=int, default=60, help="scrape interval of the generated data, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    window = timedelta(seconds=parse_duration(args.window))
    rules = ImpactRules(window=window)
    stamp = int(datetime.now(timezone.utc).timestamp())
    now = datetime.fromtimestamp(stamp - stamp % args.scrape, timezone.utc)
    deploys = [(now - window - timedelta(minutes=10 + 5 * (len(CLUSTERS) - 1 - i)), cluster)
               for i, cluster in enumerate(CLUSTERS)]
    first_deploy, (prod_deploy, _) = deploys[0][0], deploys[-1]
    history = now + MARGIN - (first_deploy - window - timedelta(minutes=10))
    scenario = fleet(now + MARGIN, clusters=CLUSTERS, nodes=args.nodes, history=history,
                     step=timedelta(seconds=args.scrape), incidents=[incident_after(prod_deploy, "prod", "node-02")])
    resource, previous = release_uri("c"), release_uri("9")
    occurrences = (release_occurrences(previous, name="previous", built=first_deploy - timedelta(days=1),
                                       deployments=[(first_deploy - timedelta(days=1), c) for c in CLUSTERS])
                   + release_occurrences(resource, name="bench", built=first_deploy - timedelta(hours=1),
                                         deployments=deploys))
    with tempfile.TemporaryDirectory(prefix="release-bench-") as tmp:
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
        openmetrics.unlink()
        policy_path = write_policy(workdir / "policy")
        policy = load_policy(policy_path)
        try:
            with GrafeasTestServer({PROJECT: occurrences}) as grafeas:
                settings = load_settings({"grafeas_url": grafeas.url, "project": PROJECT, "policy": str(policy_path)},
                                         env={})
                chain = read_supply_chain(settings)  # warm-up
                assert chain.error is None, chain.error
                grafeas.requests.clear()
                read_supply_chain(settings)
                pages = [(r.path, r.params) for r in grafeas.requests]
                prom = PrometheusSettings(url=server.url, timeout_seconds=300, evaluation_timeout_seconds=600)
                source = PrometheusSource(prom)
                sequential = PrometheusSource(
                    PrometheusSettings(url=server.url, timeout_seconds=300, evaluation_timeout_seconds=600,
                                       parallel_queries=1)
                )
                recorder = RecordingSource(prom)
                record = engine_record(recorder, chain, resource, policy, now=now, rules=rules)  # warm-up, recorded
                calls = recorder.calls
                walls, sequential_walls, raws, reads, raw_reads = [], [], [], [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    engine_record(source, chain, resource, policy, now=now, rules=rules)
                    walls.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    engine_record(sequential, chain, resource, policy, now=now, rules=rules)
                    sequential_walls.append(time.perf_counter() - started)
                    raw, response_bytes = raw_seconds(server.url, calls)
                    raws.append(raw)
                    started = time.perf_counter()
                    read_supply_chain(settings)
                    reads.append(time.perf_counter() - started)
                    raw_reads.append(raw_grafeas_seconds(grafeas, pages))
                wall, raw, sequential_wall, read, raw_read = (
                    statistics.median(x) for x in (walls, raws, sequential_walls, reads, raw_reads))
                impacts = ", ".join(f"{d['cluster']} {d['impact']['verdict']}" for d in record["deployments"])
                instant = sum(endpoint == "query" for endpoint, _ in calls)
                hours = history.total_seconds() / 3600
                print(f"scenario: {len(CLUSTERS)} clusters x {args.nodes} nodes, {hours:g} h scraped every "
                      f"{args.scrape} s; OpenMetrics {size_mb:.0f} MB written in {write_seconds:.1f} s")
                print(f"backfill + Prometheus start: {backfill_seconds:.1f} s ({server.samples:,} samples)")
                print(f"release: {len(record['deployments'])} deployments ({impacts}), window {args.window}")
                print(f"queries per record: {sequential.requests_sent // args.repeat} on the wire "
                      f"({instant} instant for the known clusters, {len(calls) - instant} query_range)")
                print(f"summed raw query time, one by one (median of {args.repeat}): {raw:.2f} s; "
                      f"responses {response_bytes / 1e6:.1f} MB")
                print(f"record wall time, queries one at a time (median of {args.repeat}): {sequential_wall:.2f} s"
                      f" = {sequential_wall / raw:.2f}x raw (target <= 1.3x)")
                print(f"record wall time, default {prom.parallel_queries} queries in flight: {wall:.2f} s"
                      f" = {wall / raw:.2f}x raw")
                print(f"Grafeas read ({len(chain.occurrences.all):,} occurrences, {len(pages)} pages): {read:.3f} s"
                      f" against {raw_read:.3f} s raw", flush=True)
                if datetime.now(timezone.utc) < now + MARGIN - timedelta(minutes=5):
                    seconds, code = cli_seconds(server.url, grafeas.url, policy_path, resource, args.window)
                    print(f"one CLI run end to end (interpreter start included): {seconds:.2f} s, exit {code}")
                else:
                    print("one CLI run end to end: skipped (the data no longer reaches now; backfill took too long)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
