"""Running the service: in the foreground (the CLI) or in a background thread (tests, benchmarks),
on eidemu's one HTTP base (:class:`~eidemu.emulator.pki.http_service.LocalHttpService`: loopback,
connection deadline and cap, bounded bodies, one log line per request)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eidemu.emulator.pki.http_service import HttpLimits, LocalHttpService

from .app import build_app
from .cards import open_source
from .service import HipkiService
from .trust import TrustedSites
from .user import ScriptedUser, Step

DEFAULT_PORT = 61161
LIMITS = HttpLimits(max_connections=64, connection_timeout=15.0, max_body=1 << 20)
"""The service's HTTP limits: 15 s to send a request, 1 MiB bodies, 64 connections."""


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
    limits: HttpLimits = LIMITS

    def http_limits(self) -> HttpLimits:
        """``limits``, with room for a request that waits for a busy card (``queue_timeout``)
        or the scripted user, then is answered."""
        waits = self.queue_timeout + self.prompt_timeout + self.limits.connection_timeout
        return dataclasses.replace(self.limits, answer_timeout=max(self.limits.answer_timeout, waits))


def build(config: ServiceConfig) -> tuple[HipkiService, TrustedSites, LocalHttpService]:
    """The service's calls, its trusted sites, and its HTTP service (bound, not yet serving)."""
    source = open_source(config.card)
    user = ScriptedUser(list(config.user_steps), config.auto_approve, config.prompt_timeout)
    trust = TrustedSites(config.trust_file, config.trusted)
    service = HipkiService(source, user, config.queue_timeout)
    limits = config.http_limits()
    app = build_app(service, trust, limits, config.test_control)
    return service, trust, LocalHttpService(app, config.host, config.port, limits=limits, name="eidemu-hipki")


def serve_forever(config: ServiceConfig) -> None:
    """Serve in the calling thread until interrupted."""
    service, _trust, http = build(config)
    print(f"eidemu hipki: serving {service.source.description} on {local_url(http)}", flush=True)
    try:
        http.serve_forever()
    finally:
        http.server_close()
        service.close()


def local_url(http: LocalHttpService) -> str:
    """``http://localhost:PORT``: the name web pages use (the ``Host`` the service accepts)."""
    return f"http://localhost:{http.server_address[1]}"


class BackgroundService:
    """The service on its own event loop in a daemon thread; ``url``, ``port``, ``service``, ``trust``."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.service, self.trust, self.http = build(config)
        self._thread = self.http.start_in_thread()
        self.port = self.http.server_address[1]
        self.url = local_url(self.http)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self._thread.join(5)
        self.service.close()


@contextlib.contextmanager
def background(config: ServiceConfig) -> Iterator[BackgroundService]:
    running = BackgroundService(config)
    try:
        yield running
    finally:
        running.close()


__all__ = ["DEFAULT_PORT", "LIMITS", "BackgroundService", "ServiceConfig", "background", "build", "serve_forever"]
