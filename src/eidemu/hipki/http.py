"""The HTTP side of eidemu's local services, on aiohttp: limits, logging, start and stop.

One small module so the local services share the same safe defaults:

* bodies bounded (``client_max_size``; larger ones are answered 413 before being read);
* a connection that sends no complete request within ``read_timeout`` seconds is closed
  (aiohttp's keep-alive timer runs from the connection's start, so a slow sender of
  headers is dropped), and reading a body is bounded by the same time
  (:func:`read_form`);
* at most ``max_connections`` connections at once; the next ones get ``503`` and are closed;
* access logs name method, path (never the query string or the body, where a PIN could be)
  and status.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from multidict import MultiDictProxy

log = logging.getLogger("eidemu.http")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one service."""

    max_body: int = 1 << 20  # bytes of a request body
    read_timeout: float = 15.0  # seconds to receive a request (headers + body)
    max_connections: int = 64


class PathOnlyAccessLogger(AbstractAccessLogger):
    """``peer "METHOD /path" status bytes seconds``: no query string, no headers, no body."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3f',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


async def read_form(request: web.Request, limits: Limits) -> MultiDictProxy[Any]:
    """The url-encoded form of a POST, read within ``read_timeout`` (``asyncio.TimeoutError``)."""
    return await asyncio.wait_for(request.post(), limits.read_timeout)


class _Refuse(asyncio.Protocol):
    """Answers 503 and closes: the connection cap is reached."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.close()


class RunningServer:
    """A started service: its address, and :meth:`close`."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server) -> None:
        self.runner = runner
        self.server = server
        sock: socket.socket = server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        await self.runner.cleanup()


async def start(app: web.Application, host: str, port: int, limits: Limits) -> RunningServer:
    """Serve ``app`` on ``host:port`` (port 0: any free port) with ``limits``."""
    runner = web.AppRunner(
        app,
        access_log_class=PathOnlyAccessLogger,
        access_log=logging.getLogger("eidemu.http.access"),
        keepalive_timeout=limits.read_timeout,
        handle_signals=False,
    )
    await runner.setup()
    handlers = runner.server
    assert handlers is not None

    def factory() -> asyncio.Protocol:
        if len(handlers.connections) >= limits.max_connections:
            return _Refuse()
        return handlers()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host, port, reuse_address=True)
    return RunningServer(runner, server)


def application(limits: Limits, middlewares: list[Any] | None = None) -> web.Application:
    """A web application with the body bound of ``limits``."""
    return web.Application(client_max_size=limits.max_body, middlewares=middlewares or [])


__all__ = ["Limits", "PathOnlyAccessLogger", "RunningServer", "application", "read_form", "start"]
