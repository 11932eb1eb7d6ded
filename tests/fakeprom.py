"""A fake, misbehaving Prometheus HTTP API for error-path tests.

``FakePrometheus`` serves ``/api/v1/query`` and ``/api/v1/query_range`` (GET, or POST with a form
body) on 127.0.0.1 from a threaded ``http.server``; any other path gets Go's plain-text
``404 page not found``, as a real Prometheus does. What the API answers is set per test with
``set_mode()``:

=============  ================================================================================
``ok``         200 ``{"status":"success","data":{"resultType":..,"result":..}}`` with ``result``
``empty``      200 success with an empty result
``slow``       sleeps ``delay`` seconds, then answers like ``ok``
``error``      ``status`` with ``{"status":"error","errorType":..,"error":..}``; Prometheus maps
               bad_data->400, execution->422, timeout/canceled->503, internal->500 (2.x API)
``malformed``  200 ``application/json`` whose body is cut off mid-JSON
``warnings``   200 success with ``result`` and a top-level ``"warnings": [...]``
``html``       ``status`` (default 502) with a reverse proxy's ``text/html`` error page
``raw``        200 ``application/json`` with ``body`` as given (bytes), for hostile answers
``gzip``       like ``raw``, but ``body`` is sent gzip-compressed (``Content-Encoding: gzip``)
``trickle``    the answer ``ok`` would give, one byte every ``delay`` seconds
``redirect``   ``status`` (default 302) with ``Location: location``
=============  ================================================================================

The result type defaults to ``vector`` on ``/query`` and ``matrix`` on ``/query_range``. Every request
is recorded (``requests``: method, path, params, lower-cased headers) before it is answered, so a
test can check the bearer token or ``X-Scope-OrgID`` sent, and count requests to prove that a 503
is not blindly retried. Handler threads are daemons and a slow handler waits on an event that
``stop()`` sets, so shutdown is prompt even mid-sleep.
"""

from __future__ import annotations

import gzip
import json
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, get_args

Mode = Literal["ok", "slow", "error", "malformed", "empty", "warnings", "html", "raw", "gzip", "trickle", "redirect"]
MODES: tuple[Mode, ...] = get_args(Mode)

QUERY_PATHS = {"/api/v1/query": "vector", "/api/v1/query_range": "matrix"}
ERROR_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 503, "internal": 500, "not_found": 404}
_ERROR_TYPE = {400: "bad_data", 404: "not_found", 422: "execution", 500: "internal", 503: "timeout"}
_ERROR_TEXT = {  # modelled on Prometheus 2.42's own messages
    "bad_data": 'invalid parameter "query": 1:6: parse error: unclosed left parenthesis',
    "execution": 'found duplicate series for the match group {job="kubelet"} on the right hand-side of the '
    "operation;many-to-many matching not allowed: matching labels must be unique on one side",
    "timeout": "query timed out in expression evaluation",
    "canceled": "query was canceled in expression evaluation",
    "internal": "unexpected error",
    "not_found": "not found",
}
DEFAULT_WARNINGS = ["No StoreAPIs matched for this query"]  # as Thanos Query, which speaks this API, warns
MALFORMED_BODY = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"kube'
HTML_BODY = (  # nginx's error page
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake received it; ``params`` merges the query string and a form body."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class _Behaviour:
    mode: Mode
    result: list[dict[str, Any]] | None
    result_type: str | None
    delay: float
    status: int
    error_type: str
    error: str
    warnings: list[str]
    body: bytes
    location: str


class FakePrometheus:
    """A fake Prometheus API server; use as a context manager or ``start()``/``stop()``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server-side context, to serve HTTPS instead of HTTP."""
        self._tls = tls
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self.url = ""
        self.set_mode("ok")

    def set_mode(
        self,
        mode: Mode,
        *,
        result: list[dict[str, Any]] | None = None,
        result_type: str | None = None,
        delay: float = 5.0,
        status: int | None = None,
        error_type: str | None = None,
        error: str | None = None,
        warnings: list[str] | None = None,
        body: bytes = b"",
        location: str = "",
    ) -> None:
        """Choose how the API answers from now on (see the module doc for the modes).

        ``error`` mode: give ``status`` or ``error_type`` (the other follows Prometheus' mapping);
        the default is 400 ``bad_data``. ``delay`` only matters for ``slow`` and ``trickle``.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        if mode == "error":
            error_type = error_type or _ERROR_TYPE.get(status or 400, "internal")
            status = status or ERROR_STATUS.get(error_type, 500)
        elif mode == "html":
            status = status or 502
        elif mode == "redirect":
            status = status or 302
        else:
            status = 200
        behaviour = _Behaviour(
            mode=mode,
            result=[] if mode == "empty" else result,
            result_type=result_type,
            delay=delay,
            status=status,
            error_type=error_type or "",
            error=error or _ERROR_TEXT.get(error_type or "", "unexpected error"),
            warnings=list(warnings or DEFAULT_WARNINGS),
            body=body,
            location=location,
        )
        with self._lock:
            self._behaviour = behaviour

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def start(self) -> FakePrometheus:
        """Listen on a free port of 127.0.0.1; ``url`` is then e.g. ``http://127.0.0.1:PORT``."""
        self._stopping.clear()
        server = _Server(self)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes sleeping handlers, which then close their connection unanswered."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePrometheus:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> _Behaviour:
        with self._lock:
            self._requests.append(request)
            return self._behaviour


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakePrometheus) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) while a slow answer was pending is normal here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def _handle(self, body: bytes) -> None:
        fake = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        headers = {key.lower(): value for key, value in self.headers.items()}
        behaviour = fake._record(RecordedRequest(self.command, url.path, params, headers))
        if url.path not in QUERY_PATHS:
            self._send(404, "text/plain; charset=utf-8", b"404 page not found\n")
            return
        if behaviour.mode == "slow" and fake._stopping.wait(behaviour.delay):
            return
        if behaviour.mode == "html":
            status_line = f"{behaviour.status} {HTTPStatus(behaviour.status).phrase}"
            page = HTML_BODY.format(status=status_line).encode()
            self._send(behaviour.status, "text/html", page)
        elif behaviour.mode == "redirect":
            self.send_response(behaviour.status)
            self.send_header("Location", behaviour.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif behaviour.mode == "raw":
            self._send(200, "application/json", behaviour.body)
        elif behaviour.mode == "gzip":
            self._send(200, "application/json", gzip.compress(behaviour.body, 9), encoding="gzip")
        elif behaviour.mode == "malformed":
            self._send(200, "application/json", MALFORMED_BODY)
        elif behaviour.mode == "error":
            payload = {"status": "error", "errorType": behaviour.error_type, "error": behaviour.error}
            self._send(behaviour.status, "application/json", json.dumps(payload).encode())
        else:
            data = {
                "resultType": behaviour.result_type or QUERY_PATHS[url.path],
                "result": behaviour.result or [],
            }
            payload = {"status": "success", "data": data}
            if behaviour.mode == "warnings":
                payload["warnings"] = behaviour.warnings
            body = json.dumps(payload).encode()
            if behaviour.mode == "trickle":
                self._trickle(body, behaviour.delay)
            else:
                self._send(200, "application/json", body)

    def _send(self, status: int, content_type: str, body: bytes, encoding: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, body: bytes, delay: float) -> None:
        """The status line, headers and body one byte at a time: no single read ever waits long."""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        for byte in head.encode() + body:
            if self.server.fake._stopping.wait(delay):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
