"""Run a real Prometheus (Debian's 2.42 ``prometheus`` + ``promtool``) on backfilled data, for tests.

``start_prometheus(openmetrics_path, workdir)`` backfills the OpenMetrics file into a fresh TSDB
with ``promtool tsdb create-blocks-from openmetrics``, starts ``prometheus`` on a free port of
127.0.0.1 with no scrape configs (so the backfilled blocks are the only data), and waits until
``/-/ready`` answers 200. Logs go to ``workdir`` (``promtool.log``, ``prometheus.log``), never the
terminal. The suite must not silently skip when the programs are missing: ``require_binaries()``
raises ``PrometheusNotInstalledError`` with install instructions instead.

Prometheus 2.42 facts this relies on:

* promtool 2.42 has no ``--max-block-duration`` flag for OpenMetrics: it cuts 2h-aligned blocks, so
  multi-day data makes many small blocks, which Prometheus loads (and later compacts) happily;
* promtool needs a timestamp on every sample and a final ``# EOF``, and silently drops a sample
  older than its series' previous one, so ``backfill()`` returns the sample count it reports;
* the default retention (15d) would delete old backfilled blocks at startup: retention is 3650d.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
_CONFIG = "# Written by harness/promserver.py: no scrape configs, only backfilled blocks.\nglobal: {}\n"


class PrometheusNotInstalledError(RuntimeError):
    """``prometheus`` or ``promtool`` is not on PATH."""


class BackfillError(RuntimeError):
    """``promtool`` rejected the OpenMetrics input; the message carries its output."""


class PrometheusStartError(RuntimeError):
    """``prometheus`` exited or did not become ready; the message carries its log's error lines."""


def require_binaries() -> None:
    """Fail loudly (not skip) when Prometheus' programs are missing."""
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        raise PrometheusNotInstalledError(
            f"{' and '.join(missing)} not found on PATH. The tests run PromQL against a real Prometheus: "
            "install it with `make system-deps` (Debian/Ubuntu: `apt-get install prometheus`, "
            "macOS: `brew install prometheus`)."
        )


def backfill(openmetrics_path: Path, data_dir: Path, log_path: Path | None = None) -> int:
    """Create TSDB blocks in ``data_dir`` from an OpenMetrics file; returns the number of samples written."""
    require_binaries()
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_path), str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if log_path is not None:
        log_path.write_text(output, encoding="utf-8")
    if result.returncode != 0:
        raise BackfillError(f"promtool could not backfill {openmetrics_path} (exit {result.returncode}):\n{output}")
    return _written_samples(result.stdout)


def _written_samples(table: str) -> int:
    """Sum the NUM SAMPLES column of promtool's block table (rows are aligned under the header)."""
    lines = table.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("BLOCK ULID"):
            column = line.index("NUM SAMPLES")
            return sum(int(row[column:].split()[0]) for row in lines[index + 1 :] if row.strip())
    return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PromServer:
    """A running ``prometheus`` process: ``url`` is its base URL, ``samples`` the number of samples
    promtool backfilled, ``workdir`` holds its data and logs; ``stop()`` ends it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path, samples: int) -> None:
        self.process = process
        self.url = url
        self.workdir = workdir
        self.samples = samples

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Evaluate an instant query at unix time ``at``; returns ``data.result`` (raises on an API error)."""
        params = urllib.parse.urlencode({"query": expr, "time": repr(float(at))})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"query {expr!r} failed: {error.code} {error.read().decode(errors='replace')}") from None
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def log_excerpt(self) -> str:
        """prometheus' error lines (``level=error``, or a command-line ``Error ...``), else its last 30 lines."""
        log = self.workdir / "prometheus.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = [line for line in lines if "level=error" in line or line.startswith("Error")]
        return "\n".join(errors[-10:] or lines[-30:])

    def stop(self) -> None:
        """Terminate prometheus (SIGTERM, then SIGKILL after a timeout). Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> PromServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_prometheus(openmetrics_path: Path, workdir: Path, extra_args: Sequence[str] = ()) -> PromServer:
    """Backfill ``openmetrics_path`` into ``workdir/data`` and serve it; returns once ``/-/ready`` is 200.

    ``extra_args`` are appended to prometheus' command line (e.g. ``--query.lookback-delta=1m``).
    """
    require_binaries()
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    samples = backfill(openmetrics_path, data_dir, workdir / "promtool.log")
    config = workdir / "prometheus.yml"
    config.write_text(_CONFIG, encoding="utf-8")
    for _attempt in range(3):  # the free port can be taken between choosing and binding it
        port = _free_port()
        with open(workdir / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    "--storage.tsdb.retention.time=3650d",
                    f"--web.listen-address=127.0.0.1:{port}",
                    *extra_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = PromServer(process, f"http://127.0.0.1:{port}", workdir, samples)
        try:
            _wait_ready(server)
        except PrometheusStartError:
            server.stop()
            if "address already in use" not in server.log_excerpt():
                raise
            continue
        return server
    raise PrometheusStartError(f"no free port for prometheus after 3 attempts:\n{server.log_excerpt()}")


def _wait_ready(server: PromServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PrometheusStartError(
                f"prometheus exited with {server.process.returncode} before ready:\n{server.log_excerpt()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise PrometheusStartError(f"prometheus not ready after {READY_TIMEOUT_S:.0f}s:\n{server.log_excerpt()}")
