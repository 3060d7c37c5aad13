"""A small, bounded HTTP/1.1 service for eidemu's local services (the test PKI's CRL and OCSP
today; a local signing service or mobile-certificate endpoints can reuse it).

Built on aiohttp's server (one event loop thread, no thread per connection) with the limits a
service on a developer's machine needs against slow or hostile clients:

- binds loopback (``127.0.0.1``) unless told otherwise;
- every connection lives at most :attr:`HttpLimits.connection_timeout` seconds from accept,
  whatever it is doing: a client that sends half a request and stops (a "slowloris") is
  closed then, as is one that trickles its body or never reads the answer;
- at most :attr:`HttpLimits.max_connections` connections are open: a new one beyond that
  closes the oldest connection still waiting for its request (so a pile of half-open
  connections cannot lock out a real client), or is refused when all are busy;
- request lines and header fields are limited in size, request bodies to
  :attr:`HttpLimits.max_body` bytes (``413``); bodies are never decompressed;
- handlers are plain functions ``HttpRequest -> HttpAnswer``, run on a small thread pool so
  a slow one (a signature) does not stall the others;
- HTTPS when given an :class:`ssl.SSLContext` (the ICS double, ``eidemu ics serve``);
- one answer per connection (``Connection: close``, RFC 9112 §9.6) and one log line per
  request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("eidemu.http")

ACCEPT_BACKLOG = 256
"""The kernel's queue of connections not yet accepted. Large enough that a burst does not drop
SYNs (a dropped SYN costs a real client a 1 s retransmission); asyncio accepts up to this many
at once, so the process can briefly hold ``max_connections + ACCEPT_BACKLOG`` sockets before
the cap closes the surplus."""


class _OneLine(logging.Filter):
    """aiohttp logs a malformed request with its traceback: keep one line, at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            detail = " ".join(str(error).split())[:200]
            record.msg, record.args = f"{record.getMessage()}: {type(error).__name__}: {detail}", ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_protocol_log = log.getChild("protocol")
_protocol_log.addFilter(_OneLine())


@dataclass(frozen=True)
class HttpLimits:
    """Bounds on what one client, and all clients together, can hold of a service."""

    max_connections: int = 256
    connection_timeout: float = 10.0
    max_body: int = 64 * 1024
    max_header_line: int = 8190
    workers: int = 4

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.workers < 1 or self.max_body < 0:
            raise ValueError("max_connections and workers must be at least 1, max_body not negative")
        if not self.connection_timeout > 0:
            raise ValueError("connection_timeout must be positive")


@dataclass(frozen=True)
class HttpRequest:
    """One complete request as a handler sees it: ``target`` is the raw path and query,
    header names are in lower case (the last of repeated fields wins)."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    peer: str


@dataclass(frozen=True)
class HttpAnswer:
    """A handler's answer: status, media type, body (and optional extra headers)."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[HttpRequest], HttpAnswer]


@dataclass
class _Connection:
    """An open connection: its reaper, and whether its request is complete and being answered
    (until then it is idle, and the first to close when the cap is reached)."""

    peer: str
    reaper: asyncio.TimerHandle
    busy: bool = False


@dataclass
class HttpCounters:
    """What the service did with connections it did not answer (for tests and the log)."""

    refused: int = 0
    evicted: int = 0
    reaped: int = 0
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


class _GuardedServer(web.Server):
    """aiohttp's low-level server, telling the service when connections come and go."""

    def __init__(self, service: LocalHttpService, **kwargs: Any) -> None:
        super().__init__(service._handle, **kwargs)
        self._service = service

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._service._admit(handler, transport)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._service._release(handler)


class LocalHttpService:
    """An HTTP service answering with ``handler``, bound in the constructor (``port=0`` picks one).

    Run it with :meth:`serve_forever` (blocks) or :meth:`start_in_thread`; stop it with
    :meth:`shutdown`. ``handler`` may be replaced while it runs.
    """

    def __init__(
        self,
        handler: Handler | None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
        name: str = "eidemu-http",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context  # HTTPS (the TLS handshake counts against the connection's time)
        self.limits = limits or HttpLimits()
        self.name = name
        self.counters = HttpCounters()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(ACCEPT_BACKLOG)
            self._socket.setblocking(False)
        except OSError:
            self._socket.close()
            raise
        self.server_address: tuple[str, int] = self._socket.getsockname()[:2]
        self._open: dict[RequestHandler, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running = threading.Event()
        self._finished = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server_address
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"

    @property
    def open_connections(self) -> int:
        """Connections currently open (at most ``limits.max_connections``)."""
        return len(self._open)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or KeyboardInterrupt) in the calling thread."""
        try:
            asyncio.run(self._serve())
        finally:
            self._socket.close()
            self._finished.set()

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.name, daemon=True)
        thread.start()
        self._running.wait(5.0)
        return thread

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving and close every connection; returns when the loop has ended."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not self._finished.is_set():
            loop.call_soon_threadsafe(stop.set)
            self._finished.wait(timeout)

    def request_stop(self) -> None:
        """Ask the loop to stop without waiting (safe from a signal handler in the serving thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    def server_close(self) -> None:
        self._socket.close()

    def __enter__(self) -> LocalHttpService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        executor = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix=f"{self.name}-worker")
        self._executor = executor
        protocol = _GuardedServer(
            self,
            access_log=None,  # one line per request is written by _handle
            logger=_protocol_log,
            max_line_size=self.limits.max_header_line,
            max_field_size=self.limits.max_header_line,
            auto_decompress=False,
            keepalive_timeout=self.limits.connection_timeout,
        )
        server = await self._loop.create_server(
            protocol, sock=self._socket, backlog=ACCEPT_BACKLOG, ssl=self.ssl_context
        )
        self._running.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for handler in list(self._open):
                handler.force_close()
                if handler.transport is not None:
                    handler.transport.abort()
            await protocol.shutdown(1.0)
            executor.shutdown(wait=False, cancel_futures=True)

    # -- connection bounds (event loop thread) ----------------------------------------------

    def _admit(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        peer = _peer_name(transport)
        if len(self._open) >= self.limits.max_connections:
            idle = next((h for h, c in self._open.items() if not c.busy), None)
            if idle is None:
                self.counters.refused += 1
                busy = self.limits.max_connections
                log.warning("%s: refused a connection from %s: %d requests in progress", self.name, peer, busy)
                transport.abort()
                return
            self.counters.evicted += 1
            self._close(idle)
        assert self._loop is not None
        reaper = self._loop.call_later(self.limits.connection_timeout, self._reap, handler)
        self._open[handler] = _Connection(peer, reaper)

    def _reap(self, handler: RequestHandler) -> None:
        if handler in self._open:
            self.counters.reaped += 1
            self._close(handler)

    def _close(self, handler: RequestHandler) -> None:
        connection = self._open.pop(handler, None)
        if connection is not None:
            connection.reaper.cancel()
        if handler.transport is not None:
            handler.transport.abort()

    def _release(self, handler: RequestHandler) -> None:
        connection = self._open.pop(handler, None)
        if connection is not None:
            connection.reaper.cancel()

    # -- requests ---------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        connection = self._open.get(request.protocol)
        peer = connection.peer if connection is not None else (request.remote or "?")
        answer = await self._answer(request, connection, peer)
        response = web.Response(
            status=answer.status,
            body=b"" if request.method == "HEAD" else answer.body,
            headers={
                "Content-Type": answer.content_type,
                "Cache-Control": "no-store",
                "Connection": "close",
                **dict(answer.headers),
            },
        )
        response.force_close()
        self.counters.requests += 1
        self.counters.by_status[answer.status] = self.counters.by_status.get(answer.status, 0) + 1
        log.info(
            '%s "%s %s" %d %d %.1f ms',
            peer,
            request.method,
            _printable(request.raw_path),
            answer.status,
            len(answer.body),
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _answer(self, request: web.BaseRequest, connection: _Connection | None, peer: str) -> HttpAnswer:
        handler = self.handler
        if handler is None:
            return HttpAnswer(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"nothing to serve yet\n")
        length = request.content_length
        if length is not None and length > self.limits.max_body:
            return _too_large(self.limits.max_body)
        body = bytearray()
        while chunk := await request.content.read(self.limits.max_body + 1 - len(body)):
            body += chunk
            if len(body) > self.limits.max_body:
                return _too_large(self.limits.max_body)
        if connection is not None:
            connection.busy = True  # a complete request: no longer the first to close for room
        http_request = HttpRequest(
            request.method, request.raw_path, {k.lower(): v for k, v in request.headers.items()}, bytes(body), peer
        )
        assert self._loop is not None
        try:
            return await self._loop.run_in_executor(self._executor, handler, http_request)
        except Exception:  # a handler bug is a 500 and a log line, never a dead service
            log.exception("%s: handler failed for %s %s", self.name, request.method, _printable(request.raw_path))
            return HttpAnswer(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"internal error\n")


def _too_large(limit: int) -> HttpAnswer:
    return HttpAnswer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "text/plain", f"request body over {limit} bytes\n".encode())


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


def _printable(text: str, limit: int = 200) -> str:
    """A request target for the log: control characters escaped, long ones cut."""
    cleaned = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
