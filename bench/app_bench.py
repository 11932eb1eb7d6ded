"""Benchmark of the app as users open it, on the embedded demo at a large size (a script, not a test).

Starts the app as users do (``streamlit run dashboard/app.py`` through ``harness.appserver.running_app``,
PYTHONPATH unset) with ``DEMO_NODES`` nodes per cluster, opens pages in headless Chromium (Debian's,
``CHROMIUM`` overrides) and measures:

- the On call page (``/``) at ``--nodes``: time from navigation start until it has rendered (the four
  st.metric counters and the node × component grid visible, the script finished, no "running"
  status widget), **cold** (a fresh server and a fresh browser context) and **warm** (a second load
  of the same page in a new browser page, the server's caches hot);
- the app's peak RSS: ``VmHWM`` from ``/proc/<pid>/status`` of the streamlit server and of every
  child process (summed), after the cold and the warm load;
- the Cluster health page (``/health?range=24h``) at ``--health-nodes``, cold: rendered when the
  script has finished and every Plotly chart has drawn;
- where the time goes: each page run in-process through Streamlit's AppTest on the same demo size,
  with the engine functions the pages call (evaluate, evaluate_range, signal_series, the supply
  chain, …) timed, cold caches then warm: engine time against the page's own code (pandas,
  styling, serialising elements); what the browser figure adds beyond the script is the session's
  start, the websocket and the frontend drawing.

Each cold measurement waits for the start of a wall-clock minute, so the cold and the warm load fall
in the same cache buckets (the pages key "now" to 30 s, the supply chain to the minute); a warm load
that still crossed a bucket is marked.

Targets (reported, not asserted): on call ≤ 6 s cold and ≤ 2 s warm at 2,000 nodes, peak RSS under
500 MB; cluster health over 24 h at 500 nodes ≤ 8 s cold.

Usage: ``.venv/bin/python -m bench.app_bench --nodes 2000 --health-nodes 500 --repeat 3``
(smoke: ``--nodes 50 --health-nodes 50 --repeat 1 --no-align``)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

from harness.appserver import CHROMIUM_ARGS, ROOT, chromium_path, running_app

TARGETS = {"oncall_cold": 6.0, "oncall_warm": 2.0, "rss_bytes": 500e6, "health_cold": 8.0}
HEALTH_RANGE = "24h"  # ?range= takes a preset or a PromQL duration (dashboard/ui/pickers.py)
VIEWPORT = {"width": 1600, "height": 1000}

# Evaluated in the page until it answers: 0 not yet, -1 an exception element, else performance.now()
# (milliseconds since the navigation started).
RENDERED_JS = """
(kind) => {
  if (document.querySelector('[data-testid="stException"]')) return -1;
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return 0;
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  if (status && /running/i.test(status.innerText)) return 0;
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const heading = (text) => [...document.querySelectorAll('h1, h2, h3')].find(h => h.innerText.includes(text));
  if (kind === 'oncall') {
    const metrics = [...document.querySelectorAll('[data-testid="stMetric"]')].filter(visible);
    if (metrics.length < 4) return 0;
    const title = heading('Node \u00d7 component');
    const column = title && title.closest('[data-testid="stColumn"]');
    const grid = column && column.querySelector('[data-testid="stDataFrame"]');
    if (!grid || !visible(grid) || !grid.querySelector('canvas')) return 0;
  } else {
    if (!heading('Verdicts over time')) return 0;
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    if (!charts.length || !charts.every(c => c.querySelector('.main-svg'))) return 0;
  }
  return performance.now();
}
"""


# ---- the server process tree and its peak RSS


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children[ppid].append(int(entry.name))
    return children


def server_pid(port: int) -> int:
    """The streamlit process serving ``port`` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "--server.port" in argv and argv[argv.index("--server.port") + 1:][:1] == [str(port)] \
                and any("streamlit" in arg for arg in argv):
            return int(entry.name)
    raise RuntimeError(f"no streamlit process found for port {port}")


def process_tree(pid: int) -> list[int]:
    children, tree, queue = _proc_children(), [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(children.get(current, []))
    return tree


def peak_rss_bytes(pid: int) -> tuple[int, int]:
    """(the server's VmHWM, the VmHWM summed over it and its children), in bytes."""
    peaks = {}
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[member] = int(line.split()[1]) * 1024
        except OSError:
            pass
    return peaks.get(pid, 0), sum(peaks.values())


# ---- the browser


def wait_for_minute(enabled: bool) -> None:
    """Sleep until just after the next wall-clock minute, so one load's cache buckets stay fresh."""
    if enabled:
        time.sleep(60.3 - time.time() % 60)


def _bucket(seconds: int) -> int:
    return int(time.time()) // seconds


def rendered_seconds(page, url: str, kind: str, timeout_s: float) -> float:
    """Navigate and wait until the page has rendered; seconds since the navigation started."""
    page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
    handle = page.wait_for_function(RENDERED_JS, arg=kind, polling=50, timeout=timeout_s * 1000)
    value = handle.json_value()
    if value < 0:
        text = page.locator('[data-testid="stException"]').first.inner_text()
        raise RuntimeError(f"{url}: the page shows an exception: {' '.join(text.split())[:800]}")
    return value / 1000


def browser_runs(args, log_dir: Path) -> dict[str, list]:
    from playwright.sync_api import sync_playwright

    results: dict[str, list] = defaultdict(list)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            for run in range(args.repeat):
                env = {"DEMO_NODES": str(args.nodes), **({"DEMO_DAYS": str(args.days)} if args.days else {})}
                with running_app(env, log_path=log_dir / f"oncall-{run}.log") as url:
                    pid = server_pid(urlsplit(url).port)
                    context = browser.new_context(viewport=VIEWPORT)
                    wait_for_minute(args.align)
                    buckets = (_bucket(30), _bucket(60))
                    cold = rendered_seconds(context.new_page(), url + "/", "oncall", args.timeout)
                    cold_rss = peak_rss_bytes(pid)
                    same_buckets = (_bucket(30), _bucket(60)) == buckets
                    warm = rendered_seconds(context.new_page(), url + "/", "oncall", args.timeout)
                    same_buckets = same_buckets and (_bucket(30), _bucket(60)) == buckets
                    rss = peak_rss_bytes(pid)
                    context.close()
                results["oncall_cold"].append(cold)
                results["oncall_warm"].append(warm)
                results["rss_after_cold"].append(cold_rss)
                results["rss"].append(rss)
                results["warm_same_bucket"].append(same_buckets)
                print(f"  on call run {run + 1}: cold {cold:.2f} s, warm {warm:.2f} s"
                      f"{'' if same_buckets else ' (warm crossed a cache bucket)'}, peak RSS {_mib(rss[1])}",
                      file=sys.stderr)
            for run in range(args.repeat):
                env = {"DEMO_NODES": str(args.health_nodes), **({"DEMO_DAYS": str(args.days)} if args.days else {})}
                with running_app(env, log_path=log_dir / f"health-{run}.log") as url:
                    pid = server_pid(urlsplit(url).port)
                    context = browser.new_context(viewport=VIEWPORT)
                    wait_for_minute(args.align)
                    cold = rendered_seconds(context.new_page(), f"{url}/health?range={HEALTH_RANGE}", "health",
                                            args.timeout)
                    rss = peak_rss_bytes(pid)
                    context.close()
                results["health_cold"].append(cold)
                results["health_rss"].append(rss)
                print(f"  cluster health run {run + 1}: cold {cold:.2f} s, peak RSS {_mib(rss[1])}", file=sys.stderr)
        finally:
            browser.close()
    return results


# ---- where the time goes: the pages in-process, engine calls timed

ENGINE_MODULES = ("dashboard.health", "dashboard.timeline", "dashboard.inventory", "dashboard.supply_chain",
                  "dashboard.provenance", "dashboard.deployments", "dashboard.deploy_impact", "dashboard.impact",
                  "dashboard.sources")
SOURCE_METHODS = ("observe", "observe_range", "observe_series")


class EngineTimer:
    """Wraps the engine's public functions (and the demo source's methods): the time of each
    outermost call, by name, and the time of nested calls, by name."""

    def __init__(self) -> None:
        self.top: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.nested: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._local = threading.local()

    def reset(self) -> None:
        self.top.clear()
        self.nested.clear()

    def wrap(self, name: str, function):
        timer = self

        def timed(*args, **kwargs):
            depth = getattr(timer._local, "depth", 0)
            timer._local.depth = depth + 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timer._local.depth = depth
                entry = (timer.top if depth == 0 else timer.nested)[name]
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        timed.__wrapped__ = function
        timed.__name__ = getattr(function, "__name__", name)
        timed.__qualname__ = getattr(function, "__qualname__", name)
        timed.__module__ = getattr(function, "__module__", None)
        timed.__doc__ = getattr(function, "__doc__", None)
        return timed

    def install(self) -> None:
        """Before ``dashboard.ui`` is imported, so its ``from … import`` names bind the wrappers."""
        if "dashboard.ui.data" in sys.modules:
            raise RuntimeError("install the engine timer before dashboard.ui is imported")
        for module_name in ENGINE_MODULES:
            module = import_module(module_name)
            for name, value in list(vars(module).items()):
                if name.startswith("_") or not callable(value) or isinstance(value, type):
                    continue
                if getattr(value, "__module__", None) != module_name:
                    continue
                setattr(module, name, self.wrap(f"{module_name.removeprefix('dashboard.')}.{name}", value))
        from dashboard.sources.demo import DemoSource

        for method in SOURCE_METHODS:
            if hasattr(DemoSource, method):
                setattr(DemoSource, method, self.wrap(f"DemoSource.{method}", getattr(DemoSource, method)))


@contextmanager
def environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def page_run(page: str, query: dict[str, str], timeout_s: float) -> float:
    """One run of ``page`` in a new AppTest session; its wall seconds."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=timeout_s)
    for key, value in query.items():
        app.query_params[key] = value
    started = time.perf_counter()
    app.switch_page(f"../pages/{page}").run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{page}: {app.exception[0].value}")
    return elapsed


def breakdowns(args) -> list[tuple[str, float, float, dict, dict, float]]:
    import streamlit as st

    timer = EngineTimer()
    timer.install()
    os.chdir(ROOT)  # as `streamlit run` from the repository root (.streamlit/, relative paths)
    days = {"DEMO_DAYS": str(args.days)} if args.days else {}
    with environment(DEMO_NODES="8", **days):  # imports pandas, plotly, the pages' modules
        page_run("oncall.py", {}, args.timeout)
        page_run("health.py", {"range": HEALTH_RANGE}, args.timeout)
    results = []
    for label, page, query, nodes in (("on call", "oncall.py", {}, args.nodes),
                                      ("cluster health 24 h", "health.py", {"range": HEALTH_RANGE},
                                       args.health_nodes)):
        st.cache_data.clear()
        st.cache_resource.clear()
        with environment(DEMO_NODES=str(nodes), **days):
            wait_for_minute(args.align)
            timer.reset()
            cold = page_run(page, query, args.timeout)
            engine = {name: tuple(value) for name, value in timer.top.items()}
            nested = {name: tuple(value) for name, value in timer.nested.items()}
            timer.reset()
            warm = page_run(page, query, args.timeout)
            warm_engine = sum(seconds for _, seconds in timer.top.values())
        results.append((f"{label} at {nodes:,} nodes", cold, warm, engine, nested, warm_engine))
    return results


# ---- the report


def _mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _spread(values: list[float], unit: str = " s") -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}{unit}"
    return f"{statistics.median(values):.2f}{unit} (median; {min(values):.2f}–{max(values):.2f})"


def _verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "MISSES"


def report(args, runs: dict[str, list], parts) -> None:
    rows = []
    for key, label, nodes in (("oncall_cold", "on call, cold (fresh server)", args.nodes),
                              ("oncall_warm", "on call, warm (cache hot, new page)", args.nodes)):
        median = statistics.median(runs[key])
        rows.append((f"{label}, {nodes:,} nodes", _spread(runs[key]),
                     f"≤ {TARGETS[key]:g} s: {_verdict(median, TARGETS[key])}"))
    peak = max(total for _, total in runs["rss"])
    server = max(own for own, _ in runs["rss"])
    rows.append((f"peak RSS of the server tree (VmHWM), {args.nodes:,} nodes", f"{_mib(peak)} (server {_mib(server)})",
                 f"< 500 MB: {_verdict(peak, TARGETS['rss_bytes'])}"))
    after_cold = max(total for _, total in runs["rss_after_cold"])
    rows.append(("  of which reached by the cold load", _mib(after_cold), ""))
    median = statistics.median(runs["health_cold"])
    rows.append((f"cluster health ?range={HEALTH_RANGE}, cold, {args.health_nodes:,} nodes", _spread(runs["health_cold"]),
                 f"≤ {TARGETS['health_cold']:g} s: {_verdict(median, TARGETS['health_cold'])}"))
    rows.append(("  its peak RSS", _mib(max(total for _, total in runs["health_rss"])), ""))
    if not all(runs["warm_same_bucket"]):
        rows.append(("  warm loads that crossed a cache bucket",
                     f"{runs['warm_same_bucket'].count(False)} of {len(runs['warm_same_bucket'])}", "(those were not warm)"))
    _table(("figure", "value", "target"), rows)

    print("\nWhere the time goes (each page in-process through AppTest, same demo size; cold caches, then warm)")
    browser = {0: statistics.median(runs["oncall_cold"]), 1: statistics.median(runs["health_cold"])}
    for index, (label, cold, warm, engine, nested, warm_engine) in enumerate(parts):
        engine_total = sum(seconds for _, seconds in engine.values())
        print(f"\n{label}")
        rows = [(f"  {name}", str(calls), f"{seconds:.2f} s")
                for name, (calls, seconds) in sorted(engine.items(), key=lambda item: -item[1][1])]
        rows.append(("engine calls from the page, total", "", f"{engine_total:.2f} s"))
        for name, (calls, seconds) in sorted(nested.items(), key=lambda item: -item[1][1]):
            if seconds >= 0.01:
                rows.append((f"  inside them (inclusive, overlapping): {name}", str(calls), f"{seconds:.2f} s"))
        rows.append(("page's own code (script − engine: pandas, styling, serialising)", "",
                     f"{cold - engine_total:.2f} s"))
        rows.append(("page script, cold (AppTest)", "", f"{cold:.2f} s"))
        rows.append(("browser cold − script (fresh server's first imports, session, websocket, drawing)", "",
                     f"{browser[index] - cold:.2f} s"))
        rows.append(("page script, warm (AppTest, caches hot)", "", f"{warm:.2f} s (engine {warm_engine:.2f} s)"))
        _table(("part", "calls", "time"), rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000, help="DEMO_NODES for the on-call page (default 2000)")
    parser.add_argument("--health-nodes", type=int, default=500,
                        help="DEMO_NODES for the cluster-health page (default 500)")
    parser.add_argument("--days", type=int, default=None, help="DEMO_DAYS (default: the app's default)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh servers per page (default 3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a page may take (default 300)")
    parser.add_argument("--no-align", dest="align", action="store_false",
                        help="do not wait for the next minute before each cold load (faster; a warm load may "
                             "then cross a cache bucket)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="skip the in-process breakdown of where the time goes")
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the servers' logs here")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    started = datetime.now(timezone.utc)
    print(f"app bench: on call at {args.nodes:,} nodes, cluster health at {args.health_nodes:,} nodes, "
          f"{args.repeat} run(s) each, {os.cpu_count()} CPUs, started {started:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="app-bench-") as scratch:
        log_dir = args.log_dir or Path(scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        runs = browser_runs(args, log_dir)
    parts = breakdowns(args) if args.breakdown else []
    print()
    report(args, runs, parts)


if __name__ == "__main__":
    main()
