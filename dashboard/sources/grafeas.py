"""Read occurrences and notes from a Grafeas server (v1 or v1beta1 REST dialect).

The list APIs page with ``pageSize`` (at most 1000) and ``pageToken`` until ``nextPageToken`` is
empty; a page may be ``{}`` or shorter than asked. Listings are streamed: a worker thread requests
each page as soon as the one before is decoded, a few pages ahead of the caller, so a caller that
works through the occurrences as they come (``normalise`` does) works while the server is busy.
The open-source server ignores ``filter``, so the client always re-filters by resource URI and
kind itself: trusting the server would attribute other images' attestations to this release.

A listing is bounded by pages, by items and by a deadline; each request by a total deadline
(connect, headers and body within ``timeout``, :mod:`dashboard.sources.deadline`) and its body,
decoded as it streams in, by a size cap. Redirects are followed only to the same scheme, host and
port, a few times.

Every failure surfaces as :class:`GrafeasError`, a one-line message fit for an operator; an answer
of the wrong shape is one too, never an exception from deep inside. The bearer token never appears
in messages, ``repr`` or logs: every text that came from the server is redacted
(:mod:`dashboard.redaction`, whole token or any fragment of it) before it is cut.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import queue
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3.exceptions

from dashboard.occurrences import kind as occurrence_kind
from dashboard.occurrences import resource_uri as occurrence_resource_uri
from dashboard.redaction import printable, redact, secret_forms
from dashboard.sources.base import SourceError
from dashboard.sources.deadline import DeadlineAdapter, deadline

log = logging.getLogger(__name__)

API_VERSIONS = ("v1", "v1beta1")
MAX_PAGE_SIZE = 1000
# Decoded pages the paging worker may hold for a caller still busy with an earlier one.
_PAGES_AHEAD = 2
_HAND_OVER_POLL = 0.1
RETRYABLE_STATUSES = frozenset({429, 503})
_MAX_REDIRECTS = 3
# Decoded body bytes per read: urllib3 inflates at most this much per call, so a gzip bomb stops
# within one chunk of the cap; large enough that a 1 MB page takes a handful of reads.
_CHUNK = 256 * 1024
# Of an error answer only a summary is shown; the rest is not read.
_ERROR_BODY_BYTES = 64 * 1024
_MAX_SERVER_TEXT = 200
# google.rpc.Code names by number, for gRPC-gateway error bodies that carry only the number.
_GRPC_CODES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
               "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
               "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
               "UNAUTHENTICATED")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")
_NOTE_NAME = re.compile(r"projects/([^/]+)/notes/([^/]+)")
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9._~+/=-]{24,}")
_MAX_MESSAGE = 300


class GrafeasError(SourceError):
    """Talking to Grafeas failed; the message is one line, safe to show to an operator."""

    def __init__(self, message: str) -> None:
        one_line = " ".join(str(message).split())
        if len(one_line) > _MAX_MESSAGE:
            one_line = one_line[:_MAX_MESSAGE - 1] + "…"
        super().__init__(one_line)


_T = TypeVar("_T")


class _Secret(Generic[_T]):
    """Holds the token (or its forms) so that ``repr``/``vars`` of the client never show it."""

    __slots__ = ("value",)

    def __init__(self, value: _T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


class GrafeasClient:
    """A client of the Grafeas list APIs.

    ``url`` is the server root (e.g. ``https://containeranalysis.googleapis.com``); ``api`` picks
    the ``/v1`` or ``/v1beta1`` paths. Requests are retried only on 429 and 503, with exponential
    backoff from ``retry_base_delay`` seconds, honouring ``Retry-After``; every wait is capped at
    ``max_retry_delay``. One listing ends with an error after ``max_pages`` pages, more than
    ``max_occurrences`` items or ``listing_deadline_seconds``; one request after ``timeout``
    seconds in all or a body over ``max_body_bytes`` decoded.
    """

    def __init__(self, url: str, *, api: str = "v1", token: str | None = None,
                 user_project: str | None = None, ca_bundle: str | None = None,
                 insecure: bool = False, timeout: float = 10.0, page_size: int = MAX_PAGE_SIZE,
                 max_retries: int = 3, retry_base_delay: float = 0.5,
                 max_retry_delay: float = 10.0, max_pages: int = 10_000,
                 max_occurrences: int = 1_000_000, listing_deadline_seconds: float = 300.0,
                 max_body_bytes: int = 64 * 2**20) -> None:
        parts = urlsplit(url.strip() if isinstance(url, str) else "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("Grafeas url must be an http:// or https:// URL")
        if api not in API_VERSIONS:
            raise ValueError(f"api must be one of {', '.join(API_VERSIONS)}")
        if token is not None and not _HEADER_VALUE.fullmatch(token):
            raise ValueError("token is empty or contains whitespace or control characters")
        if user_project is not None and not _HEADER_VALUE.fullmatch(user_project):
            raise ValueError("user_project is empty or contains whitespace or control characters")
        if ca_bundle and insecure:
            raise ValueError("give either ca_bundle or insecure, not both")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if not all(math.isfinite(value) for value in
                   (timeout, retry_base_delay, max_retry_delay, listing_deadline_seconds)):
            raise ValueError("timeouts and retry delays must be finite numbers")
        if timeout <= 0 or listing_deadline_seconds <= 0:
            raise ValueError("timeout and listing_deadline_seconds must be positive")
        if max_retries < 0 or retry_base_delay < 0 or max_retry_delay < 0:
            raise ValueError("retry settings must not be negative")
        if min(max_pages, max_occurrences, max_body_bytes) < 1:
            raise ValueError("max_pages, max_occurrences and max_body_bytes must be at least 1")
        self._base_url = url.strip().rstrip("/")
        port = f":{parts.port}" if parts.port else ""
        # Shown in messages: no user-info, path or query that might carry a secret.
        self.display_url = f"{parts.scheme}://{parts.hostname}{port}"
        self.api = api
        self._token = _Secret(token) if token else None
        self._user_project = user_project
        self._verify: bool | str = ca_bundle if ca_bundle else not insecure
        self._timeout = float(timeout)
        self._page_size = min(int(page_size), MAX_PAGE_SIZE)
        self._max_retries = int(max_retries)
        self._retry_base_delay = float(retry_base_delay)
        self._max_retry_delay = float(max_retry_delay)
        self._max_pages = int(max_pages)
        self._max_occurrences = int(max_occurrences)
        self._listing_deadline = float(listing_deadline_seconds)
        self._max_body_bytes = int(max_body_bytes)
        # Server texts may echo the request: the token or URL user-info, whole or in part.
        self._secrets = _Secret(secret_forms(bearer_token=token, url=url))
        self._session = requests.Session()
        adapter = DeadlineAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        token = "<set>" if self._token else None
        return f"GrafeasClient(url={self.display_url!r}, api={self.api!r}, token={token})"

    # --- public API ---------------------------------------------------------------------------

    def list_occurrences(self, project: str, *, resource_url: str | None = None,
                         kind: str | None = None) -> list[dict]:
        """All occurrences in ``project``, only those of ``resource_url`` and ``kind`` if given.

        The filter is sent to the server and applied again here, since servers may ignore it.
        """
        return list(self.iter_occurrences(project, resource_url=resource_url, kind=kind))

    def iter_occurrences(self, project: str, *, resource_url: str | None = None,
                         kind: str | None = None) -> Iterator[dict]:
        """:meth:`list_occurrences` as it arrives, a page at a time."""
        wanted_kind = kind.strip().upper() if kind else None
        path = f"/{self.api}/projects/{_project_id(project)}/occurrences"
        found = self._pages(path, "occurrences", _filter(resource_url, wanted_kind))
        return _matching(found, resource_url, wanted_kind)

    def list_notes(self, project: str) -> list[dict]:
        """All notes in ``project``."""
        return list(self._pages(f"/{self.api}/projects/{_project_id(project)}/notes", "notes", ""))

    def list_note_occurrences(self, note_name: str, *,
                              resource_url: str | None = None) -> list[dict]:
        """Occurrences of one note (e.g. an attestor's) across projects, optionally of one resource."""
        match = _NOTE_NAME.fullmatch(note_name.strip()) if isinstance(note_name, str) else None
        if not match:
            raise ValueError("note_name must look like projects/PROJECT/notes/NOTE")
        project, note = (quote(part, safe="") for part in match.groups())
        path = f"/{self.api}/projects/{project}/notes/{note}/occurrences"
        found = self._pages(path, "occurrences", _filter(resource_url, None))
        return list(_matching(found, resource_url, None))

    def occurrences_for_resource(self, resource_url: str | None, projects: Iterable[str], *,
                                 kind: str | None = None) -> Iterator[dict]:
        """Occurrences of one resource (every resource when None) from several projects, without
        duplicates, as they arrive.

        An image's vulnerability and build occurrences usually live in the image's project while
        attestations live with the attestor; pass every project that may hold either.
        """
        seen_names: set[str] = set()
        for project in dict.fromkeys(_project_id(project) for project in projects):
            for occurrence in self.iter_occurrences(project, resource_url=resource_url, kind=kind):
                name = occurrence.get("name")
                if isinstance(name, str) and name:
                    if name in seen_names:
                        continue
                    seen_names.add(name)
                yield occurrence

    # --- paging and transport -----------------------------------------------------------------

    def _pages(self, path: str, field: str, filter_expression: str) -> Iterator[dict]:
        """The ``field`` items of every page of a listing, as they arrive.

        A worker thread requests each page as soon as it has decoded the one before, so paging
        waits for the caller's work on the items only when ``_PAGES_AHEAD`` decoded pages are
        waiting for it (the worker owns the session until the listing ends). A failure reaches the
        caller at the page where it happened; a caller that stops early stops the worker.
        """
        params = {"pageSize": str(self._page_size)}
        if filter_expression:
            params["filter"] = filter_expression
        pages: queue.Queue[list[dict] | BaseException | None] = queue.Queue(maxsize=_PAGES_AHEAD)
        stopped = threading.Event()
        worker = threading.Thread(target=self._fetch_pages, name="grafeas-pages", daemon=True,
                                  args=(path, field, params, pages, stopped))
        worker.start()
        try:
            while (page := pages.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                yield from page
        finally:
            stopped.set()
            worker.join()

    def _fetch_pages(self, path: str, field: str, params: dict[str, str],
                     pages: queue.Queue, stopped: threading.Event) -> None:
        """The worker of :meth:`_pages`: each page's items onto ``pages``, then None (or the
        error that ended the listing), until done or ``stopped``."""

        def hand_over(item: list[dict] | BaseException | None) -> bool:
            while not stopped.is_set():
                try:
                    pages.put(item, timeout=_HAND_OVER_POLL)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            where = f"Grafeas at {self.display_url}"
            listing_end = time.monotonic() + self._listing_deadline
            listed = 0
            seen_tokens: set[str] = set()
            page_token = ""
            for page_number in range(1, self._max_pages + 1):
                page = self._get(path, {**params, "pageToken": page_token} if page_token
                                 else params, listing_end)
                page_items = page.get(field)
                if page_items is None:
                    page_items = []
                if not isinstance(page_items, list):
                    raise GrafeasError(f"{where} answered {path} with {field!r} that is not a list")
                if not all(isinstance(item, dict) for item in page_items):
                    raise GrafeasError(f"{where} answered {path} with an item of {field!r} that "
                                       f"is not an object")
                page_token = page.get("nextPageToken", page.get("next_page_token"))
                if page_token is None:
                    page_token = ""
                if not isinstance(page_token, str):
                    raise GrafeasError(f"{where} answered {path} with a nextPageToken that is "
                                       f"not a string")
                if page_token in seen_tokens:
                    raise GrafeasError(f"{where} repeated page token "
                                       f"{self._server_text(page_token, 40)!r} on page "
                                       f"{page_number} of {path}; stopped to avoid an endless loop")
                seen_tokens.add(page_token)
                listed += len(page_items)
                if listed > self._max_occurrences:
                    raise GrafeasError(f"{where} sent more than {self._max_occurrences:,} {field} "
                                       f"for {path}: stopped after {page_number} pages "
                                       f"(max_occurrences)")
                if not hand_over(page_items):
                    return
                if not page_token:
                    log.debug("listed %d %s from %s in %d page(s)", listed, field, path,
                              page_number)
                    hand_over(None)
                    return
            raise GrafeasError(f"{where} still had more pages of {path}: stopped after "
                               f"{self._max_pages} pages (max_pages)")
        except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there
            hand_over(error)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.value}"
        if self._user_project:
            headers["X-Goog-User-Project"] = self._user_project
        return headers

    def _get(self, path: str, params: dict[str, str], listing_end: float) -> dict:
        """One page: retried on 429/503, same-origin redirects followed, every request (each
        retry and hop) within ``timeout`` and all of them before ``listing_end``."""
        where = f"Grafeas at {self.display_url}"
        url, query = self._base_url + path, params
        attempt = redirects = 0
        while True:
            answer = self._exchange(url, query, path, listing_end)
            if answer.location is not None:
                target = self._redirect_target(answer, path)
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise GrafeasError(f"{where} redirected {path} more than {_MAX_REDIRECTS} "
                                       f"times")
                url, query = target, None  # the Location carries its own query
                continue
            if answer.status in RETRYABLE_STATUSES and attempt < self._max_retries:
                delay = self._retry_delay(attempt, answer.headers.get("Retry-After"))
                if time.monotonic() + delay >= listing_end:
                    raise GrafeasError(self._listing_late(path))
                log.info("Grafeas at %s answered %d; retrying %s in %.2f s", self.display_url,
                         answer.status, path, delay)
                time.sleep(delay)
                attempt += 1
                continue
            if not 200 <= answer.status < 300:
                status, message = _error_summary(answer.reason, answer.body)
                text = f"{where} answered {answer.status} {self._server_text(status, 60)}"
                message = self._server_text(message, _MAX_SERVER_TEXT)
                raise GrafeasError(f"{text}: {message}" if message else text)
            return self._decode(answer.body, path)

    def _exchange(self, url: str, query: dict[str, str] | None, path: str,
                  listing_end: float) -> _Answer:
        """One HTTP request and its body, read against the cap, all within the deadline."""
        own_end = time.monotonic() + self._timeout
        end = min(own_end, listing_end)
        if time.monotonic() >= end:
            raise GrafeasError(self._listing_late(path))
        try:
            with deadline(end), self._session.get(
                    url, params=query, headers=self._headers(), timeout=self._timeout,
                    verify=self._verify, stream=True, allow_redirects=False) as response:
                status, reason = response.status_code, response.reason or ""
                headers = response.headers
                if response.is_redirect:
                    return _Answer(status, reason, headers, b"", response.url, headers["location"])
                if 200 <= status < 300:
                    body = self._read(response, path)
                else:
                    body = response.raw.read(_ERROR_BODY_BYTES, decode_content=True)
                return _Answer(status, reason, headers, body, response.url, None)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            if end < own_end and _is_timeout(error):
                raise GrafeasError(self._listing_late(path)) from None
            raise GrafeasError(self._redact(self._transport_message(error))) from None

    def _read(self, response: requests.Response, path: str) -> bytes:
        """The decoded body, stopped at ``max_body_bytes``: a small gzip bomb never inflates."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.raw.read(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise GrafeasError(f"Grafeas at {self.display_url} sent an answer to {path} "
                                   f"larger than {self._max_body_bytes:,} bytes decoded "
                                   f"(max_body_bytes); stopped reading")
            chunks.append(chunk)
        return b"".join(chunks)

    def _redirect_target(self, answer: _Answer, path: str) -> str:
        """Where a redirect points, if it stays on this server's scheme, host and port."""
        where = f"Grafeas at {self.display_url}"
        try:
            target = urljoin(answer.url, answer.location or "")
            same_origin = _origin(target) == _origin(self._base_url)
            shown = _display_url(target)
        except ValueError:
            raise GrafeasError(f"{where} redirected {path} to an invalid location") from None
        if not same_origin:
            raise GrafeasError(f"{where} redirected {path} to {self._server_text(shown, 120)}, "
                               f"another scheme, host or port: not followed")
        return target

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self._retry_base_delay * 2 ** attempt
        server_delay = _retry_after_seconds(retry_after)
        if server_delay is not None:
            delay = max(delay, server_delay)
        return min(delay, self._max_retry_delay)

    def _decode(self, content: bytes, path: str) -> dict:
        where = f"Grafeas at {self.display_url}"
        try:
            body = json.loads(content)
        except RecursionError:
            raise GrafeasError(f"{where} answered {path} with JSON nested too deeply") from None
        except ValueError:
            raise GrafeasError(f"{where} answered {path} with invalid JSON") from None
        if not isinstance(body, dict):
            raise GrafeasError(f"{where} answered {path} with JSON that is not an object "
                               f"({type(body).__name__})")
        return body

    def _listing_late(self, path: str) -> str:
        return (f"listing {path} from Grafeas at {self.display_url} did not finish within "
                f"{self._listing_deadline:g} s (listing_deadline_seconds)")

    def _transport_message(self, error: Exception) -> str:
        where = f"Grafeas at {self.display_url}"
        # Checked before timeouts: urllib3's NewConnectionError subclasses ConnectTimeoutError.
        if _find_cause(error, (ConnectionRefusedError,)):
            return f"{where} is unreachable: connection refused"
        if _find_cause(error, (socket.gaierror,)):
            return f"{where} is unreachable: host name not resolved"
        tls_error = _find_cause(error, (ssl.SSLError,))
        if tls_error is not None or isinstance(error, requests.exceptions.SSLError):
            reason = getattr(tls_error, "verify_message", None) or getattr(tls_error, "reason", None)
            return (f"{where}: TLS handshake failed ({reason or 'unknown reason'}); "
                    f"check ca_bundle")
        if _is_timeout(error):
            return f"{where} did not answer within {self._timeout:g} s"
        if _find_cause(error, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            return f"{where} closed the connection before the answer was complete"
        if _find_cause(error, (ConnectionResetError,)):
            return f"{where} closed the connection"
        return f"request to {where} failed ({type(error).__name__})"

    def _redact(self, message: str) -> str:
        return printable(redact(message, self._secrets.value))

    def _server_text(self, text: str, limit: int) -> str:
        """A text the server sent, safe to show: secrets cut out first, then made one visible
        line, then shortened (cutting first could leave part of a token that redaction misses)."""
        clean = self._redact(" ".join(text.split()))
        return clean if len(clean) <= limit else clean[:limit] + "…"


class _Answer(NamedTuple):
    """One HTTP exchange: ``location`` is set for a redirect (whose body is not read)."""

    status: int
    reason: str
    headers: Any
    body: bytes
    url: str
    location: str | None


# --- helpers --------------------------------------------------------------------------------------


def _project_id(project: str) -> str:
    name = project.strip() if isinstance(project, str) else ""
    name = name.removeprefix("projects/")
    if not name or "/" in name:
        raise ValueError("project must be a project id such as 'my-project'")
    return quote(name, safe="")


def _escape_filter_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _filter(resource_url: str | None, kind: str | None) -> str:
    clauses = []
    if resource_url:
        clauses.append(f'resourceUrl="{_escape_filter_value(resource_url)}"')
    if kind:
        clauses.append(f'kind="{_escape_filter_value(kind)}"')
    return " AND ".join(clauses)


def _matching(found: Iterable[dict], resource_url: str | None,
              kind: str | None) -> Iterator[dict]:
    if resource_url is None and kind is None:
        yield from found
        return
    dropped = 0
    for occurrence in found:
        if ((resource_url is None or occurrence_resource_uri(occurrence) == resource_url)
                and (kind is None or occurrence_kind(occurrence) == kind)):
            yield occurrence
        else:
            dropped += 1
    if dropped:
        log.debug("dropped %d occurrence(s) the server returned despite the filter", dropped)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_summary(reason: str, content: bytes) -> tuple[str, str]:
    """Status name and message of an error answer (Google, gRPC-gateway or plain text body), as
    the server sent them: the caller redacts and shortens them."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            status = error.get("status")
            message = error.get("message")
            return (status if isinstance(status, str) and status else reason,
                    message if isinstance(message, str) else "")
        code = body.get("code")
        message = body.get("message") or (error if isinstance(error, str) else "")
        if isinstance(code, int) and 0 <= code < len(_GRPC_CODES):
            reason = _GRPC_CODES[code]
        return reason, message if isinstance(message, str) else ""
    text = content.decode("utf-8", "replace").strip()
    return reason, "" if text.startswith("<") else text


def _is_timeout(error: BaseException) -> bool:
    # requests reports a timeout while reading the body as a ConnectionError, hence the search.
    return isinstance(error, requests.Timeout) or _find_cause(
        error, (TimeoutError, urllib3.exceptions.TimeoutError)) is not None


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _display_url(url: str) -> str:
    """``url`` without user-info, query or fragment."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _find_cause(error: BaseException,
                wanted: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of a ``wanted`` type in a requests/urllib3 exception chain."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, wanted):
            return current
        # urllib3 keeps the underlying error in ``reason`` (MaxRetryError) or in ``args``.
        pending.extend([current.__cause__, current.__context__, *current.args,
                        getattr(current, "reason", None)])
    return None


def token_from_command(argv: list[str], timeout: float = 10.0) -> str:
    """Run ``argv`` (no shell) and return the access token it prints, e.g. ``gcloud auth
    print-access-token``. Errors never repeat the command's standard output."""
    if not argv or not all(isinstance(part, str) and part for part in argv):
        raise ValueError("argv must be a non-empty list of strings")
    program = argv[0]
    try:
        completed = subprocess.run(argv, capture_output=True, timeout=timeout,
                                   stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise GrafeasError(f"token command {program!r} was not found") from None
    except PermissionError:
        raise GrafeasError(f"token command {program!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise GrafeasError(f"token command {program!r} did not finish within {timeout:g} s"
                           ) from None
    except OSError as error:
        raise GrafeasError(f"token command {program!r} could not run: {error.strerror}") from None
    if completed.returncode != 0:
        # stderr usually says why (no account, expired login); long token-like words are masked
        # in case the command wrote its secret there.
        stderr = completed.stderr.decode("utf-8", "replace")
        first_line = next((line for line in stderr.splitlines() if line.strip()), "")
        detail = _TOKEN_LIKE.sub("[redacted]", first_line.strip())[:200]
        raise GrafeasError(f"token command {program!r} exited with status {completed.returncode}"
                           + (f": {detail}" if detail else ""))
    token = completed.stdout.decode("utf-8", "replace").strip()
    if not token:
        raise GrafeasError(f"token command {program!r} printed no token")
    if not _HEADER_VALUE.fullmatch(token):
        raise GrafeasError(f"token command {program!r} printed more than one token-like word")
    return token


class GrafeasSource:
    """The supply-chain source the CLI and the pages use: a configured Grafeas and its projects.

    ``settings`` is a :class:`dashboard.config.GrafeasSettings`; a token command runs once, on the
    first request, so that commands that never reach Grafeas never run it.
    """

    def __init__(self, settings: Any) -> None:
        if not settings.projects:
            raise ValueError("a Grafeas project is required (--project, GRAFEAS_PROJECT or [grafeas] project)")
        self._settings = settings
        self._client: GrafeasClient | None = None
        self.description = f"Grafeas {settings.api} at {urlsplit(settings.url).hostname} (projects {', '.join(settings.projects)})"

    def occurrences(self, resource_url: str | None = None) -> Iterator[dict]:
        """Raw occurrences of one release, or of every release in the configured projects, as
        they arrive; a :class:`GrafeasError` may come at any point of the iteration."""
        return self._connect().occurrences_for_resource(resource_url, self._settings.projects)

    def _connect(self) -> GrafeasClient:
        if self._client is None:
            settings = self._settings
            token = settings.token
            if not token and settings.token_command:
                token = token_from_command(list(settings.token_command), timeout=settings.timeout_seconds)
            try:
                self._client = GrafeasClient(
                    settings.url, api=settings.api, token=token, user_project=settings.user_project,
                    ca_bundle=settings.ca_bundle, insecure=settings.insecure, timeout=settings.timeout_seconds,
                    max_pages=settings.max_pages, max_occurrences=settings.max_occurrences,
                    listing_deadline_seconds=settings.listing_deadline_seconds,
                    max_body_bytes=settings.max_body_bytes,
                )
            except ValueError as error:
                raise GrafeasError(f"Grafeas settings: {error}") from None
        return self._client
