"""A hostile fake Grafeas server for error-path tests: it answers whatever the test says.

``FakeGrafeas`` listens on 127.0.0.1 (a free port) with a threaded ``http.server``. The test sets
``reply``, a function from the :class:`RecordedRequest` to a :class:`Reply`: any status, headers and
body, optionally gzip-compressed as sent (``gzipped`` is the compressed body itself, so a test can
hand over a prepared bomb), delayed, or trickled one byte every ``trickle`` seconds (status line and
headers too). Every request is recorded before it is answered. Handler threads are daemons and
every wait ends when ``stop()`` is called, so shutdown is prompt mid-trickle.

Unlike ``harness/grafeas_server.py`` (a faithful server with fault switches), this one is for answers
no real server should give: endless page tokens, bodies that inflate without end, redirects away.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake received it; header names are lower-cased."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    """What to answer: ``gzipped`` bodies are sent with ``Content-Encoding: gzip`` as they are."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    gzipped: bool = False
    delay: float = 0.0
    trickle: float = 0.0


def empty_listing(_: RecordedRequest) -> Reply:
    return Reply()


class FakeGrafeas:
    """Use as a context manager; ``url`` is then ``http://127.0.0.1:PORT``."""

    def __init__(self, reply: Callable[[RecordedRequest], Reply] = empty_listing) -> None:
        self.reply = reply
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def __enter__(self) -> FakeGrafeas:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
        return self.reply(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGrafeas) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (deadline, cap) mid-answer is what these tests provoke."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        fake = self.server.fake
        parts = urlsplit(self.path)
        request = RecordedRequest(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                                  {key.lower(): value for key, value in self.headers.items()})
        reply = fake._answer(request)
        if reply.delay and fake.stopping.wait(reply.delay):
            return
        headers = {"Content-Type": "application/json", **reply.headers,
                   "Content-Length": str(len(reply.body))}
        if reply.gzipped:
            headers["Content-Encoding"] = "gzip"
        head = f"HTTP/1.0 {reply.status} Fake\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        answer = head.encode("latin-1") + reply.body
        if not reply.trickle:
            self.wfile.write(answer)
            return
        for byte in answer:
            if fake.stopping.wait(reply.trickle):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        return
