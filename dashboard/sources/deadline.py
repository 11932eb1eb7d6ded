"""A requests adapter whose requests end at a total deadline, however slowly the server sends.

A socket timeout bounds each read, so a server trickling one byte a second never trips it. Here
every socket read of a request waits at most the time left before that request's deadline, which
the calling thread sets with :func:`deadline`; connect and the TLS handshake get the same bound.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Bound every socket operation of this thread's requests by ``at`` (a ``time.monotonic()`` value)."""
    _current.at = at
    try:
        yield
    finally:
        _current.at = None


def _bounded(timeout: float | None) -> float | None:
    at = getattr(_current, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise TimeoutError("request deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineSocket:
    """A connected socket whose reads never outlast the calling thread's deadline."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._timeout = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._timeout

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self._sock.settimeout(_bounded(self._timeout))
        return self._sock.recv_into(buffer, nbytes)

    def recv(self, bufsize: int) -> bytes:
        self._sock.settimeout(_bounded(self._timeout))
        return self._sock.recv(bufsize)

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_: Any) -> io.BufferedReader:
        self._sock._io_refs += 1  # type: ignore[attr-defined]  # as socket.makefile: close waits for the reader
        return io.BufferedReader(socket.SocketIO(self, "rb"), buffering or io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]


class _Deadlines:
    """Mixed into urllib3's connections: connect within the deadline, then read through it."""

    timeout: Any
    sock: Any

    def _new_conn(self) -> socket.socket:
        self.timeout = _bounded(self.timeout)
        sock = super()._new_conn()  # type: ignore[misc]
        sock.settimeout(_bounded(self.timeout))  # the TLS handshake, if any, within what is left
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPConnection(_Deadlines, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_Deadlines, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An :class:`HTTPAdapter` whose connections honour :func:`deadline`."""

    _pools = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pools)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = dict(self._pools)
        return manager
