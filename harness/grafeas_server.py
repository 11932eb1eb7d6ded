"""A Grafeas test server: the v1 and v1beta1 list APIs over HTTP on 127.0.0.1, with fault modes.

Serves, under both ``/v1`` and ``/v1beta1``::

    GET /{api}/projects/{project}/occurrences
    GET /{api}/projects/{project}/notes
    GET /{api}/projects/{project}/notes/{note}/occurrences

with ``filter``, ``pageSize`` (default 20, values above 1000 clamped) and ``pageToken``, the way the
real servers do: empty fields are omitted (an empty page is ``{}``); ``filter`` is honoured in v1
(``field="value"`` clauses joined with ``AND``; fields ``resourceUrl``, ``kind``, ``noteName``) and
ignored in v1beta1, as the open-source server does; errors are Google-style
``{"error": {"code", "message", "status"}}``.

The test decides the data (plain dicts, served as given) and the faults, by setting attributes:

* ``max_page_size``: the server's own page cap, to get pages shorter than asked;
* ``empty_pages``: put a page with no items (only a token) between data pages;
* ``trailing_empty_page``: end with a ``{}`` page reached through one more token;
* ``delay``: seconds to wait before answering (cut short when the server closes);
* ``fail_next(statuses, retry_after=...)``: answer the next requests with these statuses;
* ``always_fail``: answer every request with this status;
* ``raw_response``: ``(status, body bytes)`` to answer every request with (invalid JSON, …);
* ``repeat_page_token``: every page carries the same next token, forever;
* ``required_token``: answer 401 unless ``Authorization: Bearer <token>`` is sent.
* ``gzip``: compress answers for clients that accept it, as Google's front ends do;
* ``body_fault``: send the headers and half the body, then ``"close"`` the connection or
  ``"stall"`` until the server closes.

Every request is recorded in ``requests`` (path, query parameters, lower-cased headers).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_ROUTE = re.compile(r"/(v1|v1beta1)/projects/([^/]+)/(occurrences|notes)"
                    r"|/(v1|v1beta1)/projects/([^/]+)/notes/([^/]+)/occurrences")
_CLAUSE = re.compile(r'\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')
_AND = re.compile(r"AND\b")
_REPEATED_TOKEN = "again"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; header names are lower-cased. ``client_port`` tells
    connections apart (a client that keeps its connection alive sends from one port)."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    client_port: int


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _resource_uri(occurrence: dict) -> str | None:
    resource = occurrence.get("resource")
    return (occurrence.get("resourceUri") or occurrence.get("resource_uri")
            or (resource.get("uri") if isinstance(resource, dict) else None)
            or occurrence.get("resourceUrl"))


_FILTER_FIELDS = {
    "resourceUrl": _resource_uri,
    "kind": lambda item: item.get("kind"),
    "noteName": lambda item: item.get("noteName") or item.get("note_name"),
}


def parse_filter(expression: str) -> list[tuple[str, str]]:
    """``a="x" AND b="y\\"z"`` as ``[("a", "x"), ("b", 'y"z')]``; ValueError if malformed."""
    clauses = []
    position = 0
    while True:
        match = _CLAUSE.match(expression, position)
        if not match:
            raise ValueError(f"cannot parse filter at character {position}")
        field, escaped = match.groups()
        if field not in _FILTER_FIELDS:
            raise ValueError(f"unsupported filter field {field!r}")
        clauses.append((field, re.sub(r"\\(.)", r"\1", escaped)))
        position = match.end()
        if position == len(expression):
            return clauses
        and_match = _AND.match(expression, position)
        if not and_match:
            raise ValueError(f"expected AND at character {position}")
        position = and_match.end()


def _encode_token(offset: int, empty: bool) -> str:
    raw = json.dumps({"offset": offset, "empty": empty}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, bool]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        state = json.loads(raw)
        return int(state["offset"]), bool(state["empty"])
    except (ValueError, KeyError, TypeError):
        raise _ApiError(400, "invalid page token") from None


class GrafeasTestServer:
    """A threaded Grafeas server on 127.0.0.1 (a free port); use it as a context manager."""

    def __init__(self, occurrences: dict[str, list[dict]] | None = None,
                 notes: dict[str, list[dict]] | None = None, *,
                 max_page_size: int = MAX_PAGE_SIZE, empty_pages: bool = False,
                 trailing_empty_page: bool = False, delay: float = 0.0,
                 always_fail: int | None = None,
                 raw_response: tuple[int, bytes] | None = None,
                 repeat_page_token: bool = False, required_token: str | None = None,
                 gzip: bool = False, body_fault: str | None = None) -> None:
        if body_fault not in (None, "close", "stall"):
            raise ValueError("body_fault is None, 'close' or 'stall'")
        self._occurrences: dict[str, list[dict]] = {}
        self._notes: dict[str, list[dict]] = {}
        self._filtered: dict[tuple, list[dict]] = {}
        self._lock = threading.Lock()
        self._failures: deque[tuple[int, str | None]] = deque()
        self._closing = threading.Event()
        self.max_page_size = max_page_size
        self.empty_pages = empty_pages
        self.trailing_empty_page = trailing_empty_page
        self.delay = delay
        self.always_fail = always_fail
        self.raw_response = raw_response
        self.repeat_page_token = repeat_page_token
        self.required_token = required_token
        self.gzip = gzip
        self.body_fault = body_fault
        self.requests: list[RecordedRequest] = []
        for project, items in (occurrences or {}).items():
            self.add_occurrences(project, items)
        for project, items in (notes or {}).items():
            self.add_notes(project, items)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- data and faults ----------------------------------------------------------------------

    def add_occurrences(self, project: str, occurrences: list[dict]) -> None:
        """Serve these occurrences (as given) in ``project``; the project exists afterwards."""
        with self._lock:
            self._occurrences.setdefault(project, []).extend(occurrences)
            self._notes.setdefault(project, [])
            self._filtered.clear()

    def add_notes(self, project: str, notes: list[dict]) -> None:
        """Serve these notes (as given) in ``project``; the project exists afterwards."""
        with self._lock:
            self._notes.setdefault(project, []).extend(notes)
            self._occurrences.setdefault(project, [])
            self._filtered.clear()

    def fail_next(self, statuses: list[int], *, retry_after: str | None = None) -> None:
        """Answer the next ``len(statuses)`` requests with these error statuses."""
        with self._lock:
            self._failures.extend((status, retry_after) for status in statuses)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> GrafeasTestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; requests still waiting in ``delay`` are released at once."""
        self._closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    # --- request handling ---------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # idle keep-alive connections end instead of holding a thread

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                try:
                    status, body, headers = server._answer(self)
                    if server.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
                        body = gzip.compress(body)
                        headers = {**headers, "Content-Encoding": "gzip"}
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json; charset=utf-8",
                                        **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if server.body_fault is None:
                        self.wfile.write(body)
                        return
                    self.wfile.write(body[:len(body) // 2])
                    if server.body_fault == "stall":
                        server._closing.wait()
                    self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(parts.path, params, headers,
                                                 handler.client_address[1]))
            failure = self._failures.popleft() if self._failures else None
        try:
            if self.required_token is not None:
                if headers.get("authorization") != f"Bearer {self.required_token}":
                    raise _ApiError(401, "Request had invalid authentication credentials.",
                                    {"WWW-Authenticate": "Bearer"})
            if self.delay:
                self._closing.wait(self.delay)
            if self.raw_response is not None:
                status, raw_body = self.raw_response
                return status, raw_body, {}
            if self.always_fail is not None:
                raise _ApiError(self.always_fail, "injected failure")
            if failure is not None:
                status, retry_after = failure
                raise _ApiError(status, "injected failure",
                                {"Retry-After": retry_after} if retry_after else {})
            body = self._list(parts.path, params)
        except _ApiError as error:
            body = {"error": {"code": error.status, "message": error.message,
                              "status": _STATUS_NAMES.get(error.status, "UNKNOWN")}}
            return error.status, json.dumps(body).encode(), error.headers
        return 200, json.dumps(body, separators=(",", ":")).encode(), {}

    def _list(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        route = _ROUTE.fullmatch(path)
        if not route:
            raise _ApiError(404, f"no such method: GET {path}")
        if route.group(1):
            api, project, collection = route.group(1), unquote(route.group(2)), route.group(3)
            note = None
        else:
            api, project, collection = route.group(4), unquote(route.group(5)), "occurrences"
            note = f"projects/{project}/notes/{unquote(route.group(6))}"
        page_size = self._page_size(params.get("pageSize", ""))
        expression = params.get("filter", "")
        with self._lock:
            if project not in self._occurrences:
                raise _ApiError(404, f"project projects/{project} not found")
            key = (project, collection, note, expression if api == "v1" else "")
            items = self._filtered.get(key)
            if items is None:
                items = self._select(project, collection, note, key[3])
                self._filtered[key] = items
        return self._page(collection, items, page_size, params.get("pageToken", ""))

    def _select(self, project: str, collection: str, note: str | None,
                expression: str) -> list[dict]:
        if note is not None:
            items = [occurrence for occurrences in self._occurrences.values()
                     for occurrence in occurrences
                     if (occurrence.get("noteName") or occurrence.get("note_name")) == note]
        else:
            items = (self._occurrences if collection == "occurrences" else self._notes)[project]
        if not expression:
            return items
        try:
            clauses = parse_filter(expression)
        except ValueError as error:
            raise _ApiError(400, f"invalid filter: {error}") from None
        return [item for item in items
                if all(_FILTER_FIELDS[field](item) == value for field, value in clauses)]

    def _page_size(self, text: str) -> int:
        if not text:
            requested = DEFAULT_PAGE_SIZE
        else:
            try:
                requested = int(text)
            except ValueError:
                raise _ApiError(400, f"invalid page size {text!r}") from None
            if requested < 0:
                raise _ApiError(400, "page size must not be negative")
            requested = min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        return max(1, min(requested, self.max_page_size))

    def _page(self, collection: str, items: list[dict], page_size: int,
              page_token: str) -> dict[str, Any]:
        if self.repeat_page_token:
            return {collection: items[:page_size], "nextPageToken": _REPEATED_TOKEN}
        offset, empty = _decode_token(page_token) if page_token else (0, False)
        if empty:
            return {"nextPageToken": _encode_token(offset, False)}
        page = items[offset:offset + page_size]
        end = offset + len(page)
        body: dict[str, Any] = {collection: page} if page else {}
        if end < len(items):
            body["nextPageToken"] = _encode_token(end, self.empty_pages)
        elif self.trailing_empty_page and page:
            body["nextPageToken"] = _encode_token(end, False)
        return body


def unused_local_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
