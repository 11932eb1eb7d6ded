"""Reads the catalog's signals from any Prometheus-API-compatible backend.

Prometheus, Thanos, Mimir/Cortex (with ``X-Scope-OrgID``) and VictoriaMetrics all answer
``/api/v1/query``. The HTTP work goes through prometheus-api-client on a requests.Session we
configure ourselves: prometheus-api-client has no timeout by default and retries a 503 three times,
while Prometheus answers 503 precisely when a query timed out, so we bound every request and never
retry on a status code.

Errors that make the whole evaluation meaningless (unreachable, timeout, 5xx, malformed answers)
raise :class:`SourceError` with one line that names the server but never a credential. A query the
backend rejects (400/422) or answers with ``warnings`` only makes its signal doubtful.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from math import isnan
from urllib.parse import urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from dashboard.catalog import Catalog, Query, build_queries
from dashboard.sources.base import Observations, SourceError, SourceWarning, observation_frame

@dataclass(frozen=True)
class PrometheusSettings:
    """How to reach the backend. Secrets are kept out of ``repr``."""

    url: str = field(repr=False)  # may carry user:password@
    timeout_seconds: float = 10.0
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ca_bundle: str | None = None
    insecure: bool = False
    # Queries of one evaluation run side by side; a few at a time keeps the backend comfortable.
    parallel_queries: int = 4


def redacted_url(url: str) -> str:
    """The URL without user-info, query or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class PrometheusSource:
    """A :class:`~dashboard.sources.base.HealthSource` over the Prometheus HTTP API."""

    def __init__(self, settings: PrometheusSettings):
        self.settings = settings
        self.url = redacted_url(settings.url)
        self.description = f"Prometheus at {self.url}"
        self._last_response = threading.local()
        self._count_lock = threading.Lock()
        self.requests_sent = 0  # HTTP requests answered so far: evaluations' cost, for benchmarks
        session = requests.Session()
        session.headers.update(settings.headers)
        if settings.bearer_token:
            session.headers["Authorization"] = f"Bearer {settings.bearer_token}"
        session.verify = settings.ca_bundle or not settings.insecure
        session.hooks["response"].append(self._remember_response)
        # One quick retry of a refused/reset connection; none on read errors or status codes.
        retry = Retry(total=1, connect=1, read=False, status=0, other=0, redirect=3, backoff_factor=0)
        self._client = PrometheusConnect(
            url=settings.url.rstrip("/"),
            session=session,
            retry=retry,
            auth=settings.basic_auth,
            timeout=settings.timeout_seconds,
        )

    def _remember_response(self, response: requests.Response, *args, **kwargs) -> None:
        self._last_response.value = response
        with self._count_lock:
            self.requests_sent += 1

    def query(self, promql: str, at: datetime) -> tuple[list[dict], list[str]]:
        """Run one instant query; returns the result vector and the backend's warnings."""
        self._last_response.value = None
        try:
            result = self._client.custom_query(promql, params={"time": f"{at.timestamp():.3f}"})
        except requests.exceptions.Timeout:
            raise SourceError(
                f"{self.description} did not answer within {self.settings.timeout_seconds:g} s"
            ) from None
        except requests.exceptions.JSONDecodeError:
            raise SourceError(f"{self.description} sent a malformed answer (not JSON)") from None
        except requests.exceptions.SSLError:
            raise SourceError(f"TLS verification failed for {self.description}") from None
        except requests.exceptions.RequestException as error:
            raise SourceError(f"cannot reach {self.description} ({type(error).__name__})") from None
        except PrometheusApiClientException:
            raise _status_error(self.description, self._last_response.value) from None
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"{self.description} sent a malformed answer (not a query result)") from None
        if not isinstance(result, list):
            raise SourceError(f"{self.description} sent a result that is not an instant vector")
        return result, _warnings(self._last_response.value)

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        queries = build_queries(catalog, cluster)
        with ThreadPoolExecutor(max_workers=self.settings.parallel_queries) as pool:
            answers = list(pool.map(lambda q: self._answer(q, at), queries))
        rejected = [query_warnings[0] for result, query_warnings in answers if query_warnings and not result]
        if len(rejected) == len(queries):
            raise SourceError(f"every query was rejected; first: {rejected[0]}")
        rows: list[dict] = []
        warnings: list[SourceWarning] = []
        for query, (result, query_warnings) in zip(queries, answers):
            rows.extend(_rows(query, result, catalog))
            warnings.extend(SourceWarning(query.component, query.signal, w) for w in query_warnings)
        return Observations(observation_frame(rows), self.description, tuple(warnings))

    def _answer(self, query: Query, at: datetime) -> tuple[list[dict], list[str]]:
        try:
            return self.query(query.promql, at)
        except _RejectedQuery as rejected:
            return [], [str(rejected)]


class _RejectedQuery(SourceError):
    """The backend refused one query (400/422): that signal has no data, the others stand."""


def _status_error(description: str, response: requests.Response | None) -> SourceError:
    status = response.status_code if response is not None else "?"
    detail = ""
    if response is not None:
        try:
            body = response.json()
            detail = f": {body.get('errorType', '')} {body.get('error', '')}".rstrip()
        except (ValueError, AttributeError):
            detail = ""
    message = f"{description} answered HTTP {status}{detail}"
    message = " ".join(message.split())[:300]
    if status in (400, 422):
        return _RejectedQuery(message)
    return SourceError(message)


def _warnings(response: requests.Response | None) -> list[str]:
    if response is None or b'"warnings"' not in response.content:
        return []
    try:
        return [str(w) for w in response.json().get("warnings", [])]
    except ValueError:
        return []


def _rows(query: Query, result: list[dict], catalog: Catalog) -> list[dict]:
    rows = []
    for sample in result:
        try:
            labels = sample["metric"]
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if isnan(value):
            continue
        rows.append(
            {
                "cluster": labels.get(catalog.cluster_label, ""),
                "node": labels.get(catalog.node_label) if query.scope == "node" else None,
                "component": query.component,
                "signal": query.signal,
                "scope": query.scope,
                "value": value,
            }
        )
    return [row for row in rows if row["scope"] == "cluster" or row["node"]]
