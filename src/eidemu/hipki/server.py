"""Running the service: in the foreground (the CLI) or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import http
from .app import build_app
from .cards import open_source
from .service import HipkiService
from .trust import TrustedSites
from .user import ScriptedUser, Step

DEFAULT_PORT = 61161


@dataclass
class ServiceConfig:
    """Everything ``eidemu hipki serve`` can set."""

    card: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    trust_file: Path | None = None
    trusted: tuple[str, ...] = ()
    auto_approve: bool = False
    user_steps: list[Step] = field(default_factory=list)
    test_control: bool = False
    queue_timeout: float = 30.0
    prompt_timeout: float = 1.0
    limits: http.Limits = field(default_factory=http.Limits)


def build(config: ServiceConfig) -> tuple[HipkiService, TrustedSites]:
    source = open_source(config.card)
    user = ScriptedUser(list(config.user_steps), config.auto_approve, config.prompt_timeout)
    trust = TrustedSites(config.trust_file, config.trusted)
    return HipkiService(source, user, config.queue_timeout), trust


async def serve_forever(config: ServiceConfig, ready: threading.Event | None = None) -> None:
    service, trust = build(config)
    running = await http.start(
        build_app(service, trust, config.limits, config.test_control), config.host, config.port, config.limits
    )
    print(f"eidemu hipki: serving {service.source.description} on {running.url}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await running.close()
        service.close()


class BackgroundService:
    """The service on its own event loop in a daemon thread; ``url``, ``service``, ``trust``."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.service, self.trust = build(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hipki-service", daemon=True)
        self._thread.start()
        app = build_app(self.service, self.trust, config.limits, config.test_control)
        self.running = asyncio.run_coroutine_threadsafe(
            http.start(app, config.host, config.port, config.limits), self.loop
        ).result(10)
        self.url = f"http://localhost:{self.running.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
        self.service.close()


@contextlib.contextmanager
def background(config: ServiceConfig) -> Iterator[BackgroundService]:
    running = BackgroundService(config)
    try:
        yield running
    finally:
        running.close()


__all__ = ["DEFAULT_PORT", "BackgroundService", "ServiceConfig", "background", "build", "serve_forever"]
