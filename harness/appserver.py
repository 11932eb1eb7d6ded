"""Starts the real Streamlit app as a subprocess on 127.0.0.1 for browser tests and screenshots."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a user starts the app with: no PYTHONPATH crutch, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, **(extra or {})}


@contextmanager
def running_app(env: dict[str, str] | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Run ``streamlit run dashboard/app.py`` from the repository root as the README says, with
    PYTHONPATH unset; yields its URL once /_stcore/health answers."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "streamlit"), "run", "dashboard/app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]
    with _serving(command, user_environment(env), port, log_path) as url:
        yield url


@contextmanager
def running_make_run(env: dict[str, str] | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Run ``make run`` itself on a free port (bound to 127.0.0.1), PYTHONPATH unset."""
    port = free_port()
    extra = {"PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "127.0.0.1", **(env or {})}
    with _serving(["make", "run"], user_environment(extra), port, log_path) as url:
        yield url


@contextmanager
def _serving(command: list[str], env: dict[str, str], port: int, log_path: Path | None) -> Iterator[str]:
    log = open(log_path or os.devnull, "w")
    # Its own process group: `make run` starts streamlit as a child, and both must stop.
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(command[:3])} exited with {process.returncode}")
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("streamlit did not become healthy within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def chromium_path() -> str:
    """Debian's Chromium (a test tool cannot download its own browser here); CHROMIUM overrides."""
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def wait_for_script(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the page's script."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
