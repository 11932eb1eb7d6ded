"""Shared fixtures: real Prometheus servers on backfilled data, and a fake misbehaving one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakeprom import FakePrometheus
from harness.promserver import PromServer, require_binaries, start_prometheus

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def prom_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., PromServer]]:
    """``start(openmetrics, name="prom")``: serve OpenMetrics text (str) or a file (Path) from a real
    Prometheus; every server started is stopped at the end of the session. Fails (never skips) when
    prometheus/promtool are missing."""
    require_binaries()
    servers: list[PromServer] = []

    def start(openmetrics: str | Path, name: str = "prom") -> PromServer:
        workdir = tmp_path_factory.mktemp(name)
        if isinstance(openmetrics, str):
            path = workdir / "input.om"
            path.write_text(openmetrics, encoding="utf-8")
        else:
            path = openmetrics
        server = start_prometheus(path, workdir)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fake_prom() -> Iterator[FakePrometheus]:
    """A started ``FakePrometheus`` (mode ``ok``, empty result) for one test."""
    with FakePrometheus() as fake:
        yield fake
