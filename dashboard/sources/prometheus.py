"""Reads the catalog's signals from any Prometheus-API-compatible backend.

Prometheus, Thanos, Mimir/Cortex (with ``X-Scope-OrgID``) and VictoriaMetrics all answer
``/api/v1/query``. The requests are issued here on a requests.Session, not through
prometheus-api-client: its ``custom_query`` reads the whole body into memory before returning
and keeps only ``data.result``, so it can bound neither the time nor the size of an answer, and
hides ``status``, ``resultType`` and ``warnings``, which decide whether an answer is evidence.
Each request streams its body against a size cap before a total deadline
(:mod:`dashboard.sources.deadline`), inside the evaluation's own deadline; a refused or reset
connection is retried once, a status code never (Prometheus answers 503 when a query timed out).
Redirects are followed only to the same scheme, host and port.

Errors that make the whole evaluation meaningless (unreachable, timeout, 5xx, an answer over a cap,
malformed answers, a ``status`` other than success, a result that is not an instant vector) raise
:class:`SourceError` with one line that names the server but never a credential. A query the
backend rejects (400/422) or answers with ``warnings`` only makes its signal doubtful.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import requests
import urllib3.exceptions
from urllib3.util.retry import Retry

from dashboard.catalog import (  # the builder, to ask for the work signals alone (per cluster or node)
    BEYOND_TOP_BUCKET, Catalog, Query, _QueryBuilder, beyond_top_bucket, build_queries, escape_label_value,
)
from dashboard.config import PrometheusSettings
from dashboard.redaction import redact, secret_forms
from dashboard.sources.base import (
    LABEL_COLUMNS, Observations, SourceError, SourceWarning, label_codes, observation_frame,
)
from dashboard.sources.deadline import DeadlineAdapter, deadline
from dashboard.timeline import range_steps, range_window, split_steps

_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3


def redacted_url(url: str) -> str:
    """The URL without user-info, query or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class PrometheusSource:
    """A :class:`~dashboard.sources.base.HealthSource` over the Prometheus HTTP API."""

    def __init__(self, settings: PrometheusSettings):
        self.settings = settings
        self.url = redacted_url(settings.url)
        self.description = f"Prometheus at {self.url}"
        self._count_lock = threading.Lock()
        self.requests_sent = 0  # HTTP requests answered so far: evaluations' cost, for benchmarks
        parts = urlsplit(settings.url)
        session = requests.Session()
        session.headers.update(settings.headers)
        session.headers["Accept-Encoding"] = "gzip"
        if settings.bearer_token:
            session.headers["Authorization"] = f"Bearer {settings.bearer_token}"
        if settings.basic_auth:
            session.auth = settings.basic_auth
        elif parts.username is not None:
            session.auth = (parts.username, parts.password or "")
        session.verify = settings.ca_bundle or not settings.insecure
        # One quick retry of a refused/reset connection; none on read errors or status codes.
        adapter = DeadlineAdapter(max_retries=Retry(total=1, connect=1, read=False, status=0, other=0, redirect=False))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        # Proxies echo requests: a server's error and warning texts are redacted before any cut.
        self._secrets = secret_forms(
            bearer_token=settings.bearer_token, basic_auth=settings.basic_auth, headers=settings.headers, url=settings.url
        )

    def query(self, promql: str, at: datetime, *, until: float | None = None) -> tuple[list[dict], list[str]]:
        """Run one instant query; returns the result vector and the backend's warnings.

        ``until`` (a ``time.monotonic()`` value) is the evaluation's deadline, if it ends sooner
        than this request's own timeout.
        """
        params = {"query": promql, "time": f"{at.timestamp():.3f}"}
        return self._request("query", params, "vector", until)

    def query_range(self, promql: str, start: datetime, end: datetime, step_seconds: float, *,
                    until: float | None = None) -> tuple[list[dict], list[str]]:
        """Run one range query (``/api/v1/query_range``); returns the result matrix and warnings."""
        params = {"query": promql, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
                  "step": f"{step_seconds:g}"}
        return self._request("query_range", params, "matrix", until)

    def _request(self, endpoint: str, params: dict, result_type: str, until: float | None) -> tuple[list[dict], list[str]]:
        timeout = self.settings.timeout_seconds
        own = time.monotonic() + timeout
        end = own if until is None else min(own, until)
        if end == own:
            late = f"{self.description} did not answer within {timeout:g} s"
        else:
            late = (
                f"the evaluation on {self.description} did not finish within "
                f"{self.settings.evaluation_timeout_seconds:g} s (evaluation_timeout_seconds)"
            )
        if time.monotonic() >= end:
            raise SourceError(late)
        try:
            with deadline(end):
                status, body = self._fetch(endpoint, params, timeout)
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise SourceError(late) from None
        except requests.exceptions.SSLError:
            raise SourceError(f"TLS verification failed for {self.description}") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            if time.monotonic() >= end:
                raise SourceError(late) from None
            raise SourceError(f"cannot reach {self.description} ({type(error).__name__})") from None
        if status != 200:
            raise _status_error(self.description, status, body, self._secrets)
        return self._result(body, result_type)

    def _fetch(self, endpoint: str, params: dict | None, timeout: float) -> tuple[int, bytes]:
        url = f"{self.url}/api/v1/{endpoint}"
        for _ in range(_MAX_REDIRECTS + 1):
            # verify per request: requests lets REQUESTS_CA_BUNDLE override the session's verify.
            with self._session.get(
                url, params=params, timeout=timeout, stream=True, allow_redirects=False, verify=self._session.verify
            ) as response:
                with self._count_lock:
                    self.requests_sent += 1
                if not response.is_redirect:
                    return response.status_code, self._read(response)
                target = urljoin(response.url, response.headers["location"])
            if _origin(target) != _origin(self.url):
                raise SourceError(
                    f"{self.description} redirected to {redacted_url(target)}, another scheme, host or port: not followed"
                )
            url, params = target, None
        raise SourceError(f"{self.description} redirected more than {_MAX_REDIRECTS} times")

    def _read(self, response: requests.Response) -> bytes:
        """The decoded body, stopped at the cap: a small gzip bomb never inflates in memory."""
        cap = self.settings.max_body_bytes
        chunks, size = [], 0
        while chunk := response.raw.read(_CHUNK, decode_content=True):
            size += len(chunk)
            if size > cap:
                raise SourceError(
                    f"{self.description} sent an answer over {cap:,} bytes decoded (max_body_bytes): not read"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _result(self, body: bytes, expected: str) -> tuple[list[dict], list[str]]:
        """The checked ``data.result`` of an answer (``expected``: "vector" or "matrix") and its warnings."""
        malformed = f"{self.description} sent a malformed answer"
        try:
            answer = json.loads(body)
        except RecursionError:
            raise SourceError(f"{malformed} (JSON nested too deeply)") from None
        except ValueError:
            raise SourceError(f"{malformed} (not JSON)") from None
        if not isinstance(answer, dict):
            raise SourceError(f"{malformed} (not a query result)")
        if answer.get("status") != "success":
            detail = redact(f"{answer.get('status')!r}: {answer.get('errorType', '')} {answer.get('error', '')}", self._secrets)
            raise SourceError(_one_line(f"{self.description} answered HTTP 200 with status {detail}"))
        data = answer.get("data")
        result_type = data.get("resultType") if isinstance(data, dict) else None
        if result_type != expected:
            asked = "an instant vector" if expected == "vector" else "a range matrix"
            raise SourceError(f"{self.description} sent a {result_type!r} result where {asked} was asked")
        result = data.get("result")
        if not isinstance(result, list):
            raise SourceError(f"{malformed} (the result is not a list)")
        if len(result) > self.settings.max_samples:
            raise SourceError(
                f"{self.description} sent {len(result):,} samples for one query, over {self.settings.max_samples:,} (max_samples)"
            )
        well_formed = _is_sample if expected == "vector" else _is_series
        if not all(well_formed(sample) for sample in result):
            raise SourceError(f"{malformed} (a sample is not a label set and a value)")
        warnings = answer.get("warnings") or []
        if not isinstance(warnings, list):
            raise SourceError(f"{malformed} (warnings is not a list)")
        return result, [redact(str(w), self._secrets) for w in warnings]

    def observe(self, catalog: Catalog, *, at: datetime, cluster: str | None = None) -> Observations:
        queries = build_queries(catalog, cluster)
        until = time.monotonic() + self.settings.evaluation_timeout_seconds
        with ThreadPoolExecutor(max_workers=self.settings.parallel_queries) as pool:
            futures = [pool.submit(self._answer, q, at, until) for q in queries]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()  # one failure decides the evaluation: send no more queries
                raise failed.exception()
            answers = [future.result() for future in futures]
        rejected = [query_warnings[0] for result, query_warnings in answers if query_warnings and not result]
        if len(rejected) == len(queries):
            raise SourceError(f"every query was rejected; first: {rejected[0]}")
        rows: list[dict] = []
        warnings: list[SourceWarning] = []
        for query, (result, query_warnings) in zip(queries, answers):
            rows.extend(_rows(query, result, catalog))
            warnings.extend(SourceWarning(query.component, query.signal, w) for w in query_warnings)
        return Observations(observation_frame(rows), self.description, tuple(warnings))

    def observe_range(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta, cluster: str | None = None
    ) -> Observations:
        """Every catalog signal at each step from ``start`` to ``end``: the frame has the observation
        columns plus ``time``.

        One ``query_range`` per catalog query (the queries :meth:`observe` sends), and per run of at
        most 11,000 steps (Prometheus' limit per series), so the count depends on neither the number
        of nodes nor, below that limit, the number of steps. The rate window is max(window, step)
        (:func:`dashboard.timeline.range_window`): a longer step would otherwise skip the samples
        between two windows.
        """
        steps = range_steps(start, end, step)
        queries = build_queries(range_window(catalog, step), cluster)
        return self._observe_queries(queries, steps, step, catalog)

    def observe_series(
        self, catalog: Catalog, *, start: datetime, end: datetime, step: timedelta,
        cluster: str | None = None, node: str | None = None,
    ) -> Observations:
        """Every work signal at each step, per cluster (summed over all nodes before the ratio or
        the quantile), or for one ``node``: one ``query_range`` per signal either way."""
        steps = range_steps(start, end, step)
        range_catalog = range_window(catalog, step)
        builder = _QueryBuilder(range_catalog, cluster)
        queries = []
        for sig in range_catalog.signals:
            if sig.kind != "work" or sig.name in catalog.known_absent(sig.component):
                continue
            if node is None:
                queries.append(Query(sig.component, sig.name, "cluster", builder.signal(sig, per_node=False)))
            else:
                # Node identity is resolved inside the query, so the node is picked after it.
                # "$" would expand in label_replace's replacement: "$$" is a literal one.
                wanted = escape_label_value(node.replace("$", "$$"))
                only = f'label_replace(vector(1), "{catalog.node_label}", "{wanted}", "", "")'
                promql = f"({builder.signal(sig, per_node=True)}) and on ({catalog.node_label}) {only}"
                queries.append(Query(sig.component, sig.name, "node", promql))
        return self._observe_queries(queries, steps, step, catalog)

    def _observe_queries(
        self, queries: list[Query], steps: list[datetime], step: timedelta, catalog: Catalog
    ) -> Observations:
        runs = split_steps(steps)
        until = time.monotonic() + self.settings.evaluation_timeout_seconds
        jobs = [(query, run) for query in queries for run in runs]
        with ThreadPoolExecutor(max_workers=self.settings.parallel_queries) as pool:
            futures = [pool.submit(self._read_range, query, run, steps, step, catalog, until) for query, run in jobs]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()  # one failure decides the evaluation: send no more queries
                raise failed.exception()
            answers = [future.result() for future in futures]
        rejected = [query_warnings[0] for _, answered, query_warnings in answers if query_warnings and not answered]
        if jobs and len(rejected) == len(jobs):
            raise SourceError(f"every range query was rejected; first: {rejected[0]}")
        warnings = [
            SourceWarning(query.component, query.signal, w)
            for (query, _), (_, _, query_warnings) in zip(jobs, answers) for w in query_warnings
        ]
        frame = _range_frame([rows for rows, _, _ in answers], steps)
        return Observations(frame, self.description, tuple(dict.fromkeys(warnings)))

    def _read_range(
        self, query: Query, run: list[datetime], steps: list[datetime], step: timedelta, catalog: Catalog,
        until: float,
    ) -> tuple[_RangeRows, bool, list[str]]:
        """One range query's rows, whether it answered any series, and its warnings.

        The decoded answer becomes rows in the worker that read it, so that at most one decoded
        answer per query in flight is alive, rather than every answer of the evaluation at once.
        """
        result, warnings = self._answer_range(query, run, step, until)
        return _range_rows(query, result, catalog, steps, step), bool(result), warnings

    def _answer_range(
        self, query: Query, run: list[datetime], step: timedelta, until: float
    ) -> tuple[list[dict], list[str]]:
        what = f"the range query for {query.component} {query.signal} ({query.scope}, {len(run):,} steps)"
        try:
            return self.query_range(query.promql, run[0], run[-1], step.total_seconds(), until=until)
        except _RejectedQuery as rejected:
            if rejected.status != 422:
                return [], [str(rejected)]
            error: SourceError = rejected
        except SourceError as failure:
            error = failure
        heavy = any(mark in str(error) for mark in ("HTTP 422", "HTTP 503", "execution"))
        hint = "; too heavy for the server: shorten the range, raise the step or name a cluster" if heavy else ""
        raise SourceError(_one_line(f"{what} failed: {error}{hint}")) from None

    def _answer(self, query: Query, at: datetime, until: float) -> tuple[list[dict], list[str]]:
        try:
            return self.query(query.promql, at, until=until)
        except _RejectedQuery as rejected:
            return [], [str(rejected)]


class _RejectedQuery(SourceError):
    """The backend refused one query (400/422): that signal has no data, the others stand."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _is_sample(sample: object) -> bool:
    if not isinstance(sample, dict):
        return False
    labels, value = sample.get("metric"), sample.get("value")
    if not isinstance(labels, dict) or not all(type(v) is str for v in labels.values()):
        return False
    if value is None:
        return "histogram" in sample  # a native histogram: no float value, nothing for the judge
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
            and isinstance(value[1], str)):
        return False
    try:
        float(value[1])  # "NaN" and "+Inf" parse: the judge refuses them as values, with a reason
    except ValueError:
        return False
    return True


def _is_series(series: object) -> bool:
    """A range result's series: a label set and ``[[time, "value"], …]`` (native histograms skipped)."""
    if not isinstance(series, dict):
        return False
    labels, values = series.get("metric"), series.get("values")
    if not isinstance(labels, dict) or not all(type(v) is str for v in labels.values()):
        return False
    if values is None:
        return "histograms" in series
    return isinstance(values, list) and all(_is_sample({"metric": labels, "value": point}) for point in values)


@dataclass(frozen=True)
class _RangeRows:
    """One range answer's rows before they are a frame: each series' labels as :func:`_rows` maps
    them (in :data:`LABEL_COLUMNS` order) and its number of points, and every point's step and value."""

    labels: list[tuple[str | None, ...]]
    counts: list[int]
    step_index: np.ndarray
    values: np.ndarray


def _range_rows(query: Query, result: list[dict], catalog: Catalog, steps: list[datetime], step: timedelta) -> _RangeRows:
    """A range answer's rows. Each point's time is snapped to its step (Prometheus answers
    ``start + k * step`` in float seconds), so that rows of different queries share exact times."""
    origin, seconds = steps[0].timestamp(), step.total_seconds()
    labels, counts, at_parts, value_parts = [], [], [], []
    for series in result:
        points = series.get("values") or []
        mapped = _rows(query, [{"metric": series["metric"], "value": points[0]}], catalog) if points else []
        if not mapped:
            continue
        at_parts.append(np.fromiter((point[0] for point in points), dtype=float, count=len(points)))
        value_parts.append(np.fromiter((float(point[1]) for point in points), dtype=float, count=len(points)))
        counts.append(len(points))
        labels.append(tuple(mapped[0][column] for column in LABEL_COLUMNS))
    at = np.concatenate(at_parts) if at_parts else np.empty(0)
    at -= origin
    at /= seconds
    np.rint(at, out=at)
    np.clip(at, 0, len(steps) - 1, out=at)
    step_index = at.astype(np.int32)
    return _RangeRows(labels, counts, step_index, np.concatenate(value_parts) if value_parts else np.empty(0))


def _range_frame(answers: list[_RangeRows], steps: list[datetime]) -> pd.DataFrame:
    """Every answer's rows as one observation frame with a ``time`` column, its label columns
    categorical (:func:`~dashboard.sources.base.label_codes`), factorised per series, not per row."""
    counts = [count for answer in answers for count in answer.counts]
    series_labels = [labels for answer in answers for labels in answer.labels]
    step_index = np.concatenate([answer.step_index for answer in answers]) if answers else np.empty(0, dtype=np.int32)
    columns: dict[str, object] = {"time": pd.DatetimeIndex(steps)[step_index]}
    for position, column in enumerate(LABEL_COLUMNS):
        codes, categories = label_codes([labels[position] for labels in series_labels])
        columns[column] = pd.Categorical.from_codes(np.repeat(codes, counts), categories=categories)
    columns["value"] = np.concatenate([answer.values for answer in answers]) if answers else np.empty(0)
    return pd.DataFrame(columns, copy=False)  # each column was built for this frame: no second copy


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _status_error(description: str, status: int, body: bytes, secrets: list[str]) -> SourceError:
    detail = ""
    try:
        answer = json.loads(body)
        detail = redact(f": {answer.get('errorType', '')} {answer.get('error', '')}", secrets)
    except (ValueError, AttributeError, RecursionError):
        detail = ""
    message = _one_line(f"{description} answered HTTP {status}{detail}")
    if status in (400, 422):
        return _RejectedQuery(message, status)
    return SourceError(message)


def _rows(query: Query, result: list[dict], catalog: Catalog) -> list[dict]:
    rows = []
    for sample in result:
        try:
            labels = sample["metric"]
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        # NaN and ±Inf are kept: the judge must see that the source sent an invalid value.
        marker = BEYOND_TOP_BUCKET in labels
        rows.append(
            {
                "cluster": labels.get(catalog.cluster_label, ""),
                "node": labels.get(catalog.node_label) if query.scope == "node" else None,
                "component": query.component,
                "signal": beyond_top_bucket(query.signal) if marker else query.signal,
                "scope": query.scope,
                "value": value,
            }
        )
    return [row for row in rows if row["scope"] == "cluster" or row["node"]]
