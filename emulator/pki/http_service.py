"""The one bounded HTTP/1.1 base of eidemu's local services: the test PKI's CRL and OCSP
(``eidemu pki serve``) and the HiPKI-compatible signing service (``eidemu hipki serve``).

Built on aiohttp's server (one event loop thread, no thread per connection) with the limits a
service on a developer's machine needs against slow or hostile clients:

- binds loopback (``127.0.0.1``) unless told otherwise;
- every connection has one deadline, :attr:`HttpLimits.connection_timeout` seconds from accept
  (on a keep-alive connection: from its previous answer), whatever it is doing: a client that
  sends half a request and stops (a "slowloris") is closed then, as is one that trickles its
  body or never reads the answer. A service whose answers wait (for a card) gives a complete
  request at least :attr:`HttpLimits.answer_timeout` seconds from the moment it is complete;
- at most :attr:`HttpLimits.max_connections` connections are open: a new one beyond that
  closes the oldest connection still waiting for (or sending) its request, so a pile of
  half-open connections cannot lock out a real client; when every connection has a request
  being answered, the new one gets ``503`` and is closed;
- request lines and header fields are limited in size, request bodies to
  :attr:`HttpLimits.max_body` bytes (``413``), read completely before any route runs;
  bodies are never decompressed;
- HTTPS when given an :class:`ssl.SSLContext` (the ICS double, ``eidemu ics serve``);
- one log line per request: peer, method, path (never the query string or the body, where a
  PIN could be), status, size and time.

What it serves is either a plain function ``HttpRequest -> HttpAnswer``, run on a small thread
pool so a slow one (a signature) does not stall the others, one answer per connection
(``Connection: close``, RFC 9112 §9.6); or an aiohttp :class:`~aiohttp.web.Application` with
its routes and middlewares (keep-alive allowed), built with :func:`application`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
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

_BUSY_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


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
    """Bounds on what one client, and all clients together, can hold of a service.

    ``answer_timeout``: a complete request keeps its connection at least this many seconds
    while it is answered and its answer taken (0: the connection's deadline stands); for a
    service whose answers wait for something bounded of its own, such as a busy card."""

    max_connections: int = 256
    connection_timeout: float = 10.0
    max_body: int = 64 * 1024
    max_header_line: int = 8190
    workers: int = 4
    answer_timeout: float = 0.0

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.workers < 1 or self.max_body < 0:
            raise ValueError("max_connections and workers must be at least 1, max_body not negative")
        if not self.connection_timeout > 0:
            raise ValueError("connection_timeout must be positive")
        if not self.answer_timeout >= 0:
            raise ValueError("answer_timeout must not be negative")


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


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux and macOS): libuv's
    loop cuts the request round trip and the hand-off to worker threads (figures in
    ``docs/hipki.md``); None, asyncio's own loop, elsewhere."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def application(limits: HttpLimits, middlewares: Iterable[Any] = ()) -> web.Application:
    """An aiohttp application for :class:`LocalHttpService`: its body bound is ``limits.max_body``
    (aiohttp's ``client_max_size``); add routes, then hand it to the service."""
    return web.Application(client_max_size=limits.max_body, middlewares=list(middlewares))


@dataclass
class _Connection:
    """An open connection: its reaper, and whether it has a complete request being answered
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
    """An HTTP service, bound in the constructor (``port=0`` picks one), answering with a
    ``handler`` function (replaceable while it runs) or an aiohttp ``web.Application``.

    The service adds one middleware to an application, innermost, that reads the request body
    within the limits before any route runs (so ``request.post()`` and ``request.json()`` never
    wait on the network); the application's own middlewares see a too-large body as
    ``web.HTTPRequestEntityTooLarge``. Run it with :meth:`serve_forever` (blocks) or
    :meth:`start_in_thread`; stop it with :meth:`shutdown`.
    """

    def __init__(
        self,
        handler: Handler | web.Application | None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
        name: str = "eidemu-http",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context  # HTTPS (the TLS handshake counts against the connection's time)
        self.limits = limits or HttpLimits()
        self.name = name
        self.counters = HttpCounters()
        if isinstance(handler, web.Application):
            self.handler: Handler | None = None
            self.app = handler
        else:
            self.handler = handler
            self.app = application(self.limits)
            self.app.router.add_route("*", "/{target:.*}", self._call_handler)
        self.app.middlewares.append(self._receive_middleware())
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
        self._dispatch: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]] | None = None
        self._executor: ThreadPoolExecutor | None = None
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

    def serve_forever(self, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> None:
        """Serve until :meth:`shutdown` (or KeyboardInterrupt) in the calling thread, on a new
        event loop made by ``loop_factory`` (None: :func:`event_loop_factory`)."""
        try:
            with asyncio.Runner(loop_factory=loop_factory or event_loop_factory()) as runner:
                runner.run(self._serve())
        finally:
            self._socket.close()
            self._finished.set()

    def start_in_thread(self, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, args=(loop_factory,), name=self.name, daemon=True)
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
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await runner.setup()  # the application's startup hooks; its routing is what we dispatch to
        assert runner.server is not None
        self._dispatch = runner.server.request_handler
        executor = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix=f"{self.name}-worker")
        self._executor = executor
        protocol = _GuardedServer(
            self,
            request_factory=runner.server.request_factory,
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
            await runner.cleanup()
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
                transport.write(_BUSY_ANSWER)
                transport.close()
                return
            self.counters.evicted += 1
            self._close(idle)
        self._open[handler] = _Connection(peer, self._arm(handler, self.limits.connection_timeout))

    def _arm(self, handler: RequestHandler, seconds: float) -> asyncio.TimerHandle:
        assert self._loop is not None
        return self._loop.call_later(seconds, self._reap, handler)

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

    def _answering(self, connection: _Connection, handler: RequestHandler) -> None:
        """The request is complete: no longer the first to close for room; a service that waits
        gets at least ``answer_timeout`` from now."""
        connection.busy = True
        assert self._loop is not None
        wanted = self._loop.time() + self.limits.answer_timeout
        if self.limits.answer_timeout and wanted > connection.reaper.when():
            connection.reaper.cancel()
            connection.reaper = self._arm(handler, self.limits.answer_timeout)

    def _answered(self, connection: _Connection, handler: RequestHandler) -> None:
        """The answer is written: on a keep-alive connection, the next request has the full
        ``connection_timeout`` from now, and the connection is idle again."""
        connection.busy = False
        connection.reaper.cancel()
        connection.reaper = self._arm(handler, self.limits.connection_timeout)

    # -- requests ---------------------------------------------------------------------------

    def _receive_middleware(self) -> Any:
        @web.middleware
        async def receive(request: web.Request, handler: Any) -> web.StreamResponse:
            """The whole body, within ``max_body``, before any route runs."""
            limit = self.limits.max_body
            length = request.content_length
            try:
                if length is not None and length > limit:
                    raise _too_large(limit, length)
                body = await request.read()  # the application's client_max_size bounds it too
            except web.HTTPRequestEntityTooLarge:
                raise _too_large(limit, length or limit + 1) from None
            if len(body) > limit:
                raise _too_large(limit, len(body))
            connection = self._open.get(request.protocol)
            if connection is not None:
                self._answering(connection, request.protocol)
            return await handler(request)

        return receive

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        connection = self._open.get(request.protocol)
        peer = connection.peer if connection is not None else (request.remote or "?")
        assert self._dispatch is not None
        try:
            response = await self._dispatch(request)
        except web.HTTPException as refusal:  # a route's or the body bound's error answer
            response = web.Response(status=refusal.status, reason=refusal.reason, body=refusal.body)
            response.headers.update(refusal.headers)
            if refusal.keep_alive is False:
                response.force_close()
        self.counters.requests += 1
        self.counters.by_status[response.status] = self.counters.by_status.get(response.status, 0) + 1
        try:  # written here, so the deadline for the next request starts after it
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the client left, or its deadline closed it: aiohttp ends the connection
        else:
            if connection is not None and request.protocol in self._open:
                self._answered(connection, request.protocol)
        log.info(
            '%s "%s %s" %d %d %.1f ms',
            peer,
            request.method,
            _printable(request.path),
            response.status,
            response.body_length,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _call_handler(self, request: web.Request) -> web.Response:
        """The function handler's route: its answer, ``Connection: close``."""
        answer = await self._answer(request)
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
        return response

    async def _answer(self, request: web.Request) -> HttpAnswer:
        handler = self.handler
        if handler is None:
            return HttpAnswer(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"nothing to serve yet\n")
        connection = self._open.get(request.protocol)
        peer = connection.peer if connection is not None else (request.remote or "?")
        headers = {k.lower(): v for k, v in request.headers.items()}
        http_request = HttpRequest(request.method, request.raw_path, headers, await request.read(), peer)
        assert self._loop is not None
        try:
            return await self._loop.run_in_executor(self._executor, handler, http_request)
        except Exception:  # a handler bug is a 500 and a log line, never a dead service
            log.exception("%s: handler failed for %s %s", self.name, request.method, _printable(request.path))
            return HttpAnswer(HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", b"internal error\n")


def _too_large(limit: int, size: int) -> web.HTTPRequestEntityTooLarge:
    """413, and the connection closed: the rest of the body is not read."""
    refusal = web.HTTPRequestEntityTooLarge(limit, size, text=f"request body over {limit} bytes\n")
    refusal.force_close()
    return refusal


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


def _printable(text: str, limit: int = 200) -> str:
    """A request path for the log: control characters escaped, long ones cut."""
    cleaned = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
