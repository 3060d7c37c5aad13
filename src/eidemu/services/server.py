"""Running a service: bound at once, served in the foreground until SIGTERM/SIGINT (the CLI) or
in a thread (tests, examples, benchmarks), on the project's bounded HTTP base
(:class:`~eidemu.emulator.pki.http_service.LocalHttpService`)."""

from __future__ import annotations

import contextlib
import logging
import signal
import ssl
from collections.abc import Iterator

from eidemu.emulator.pki.http_service import Handler, HttpLimits, LocalHttpService

log = logging.getLogger(__name__)


def serve_until_signal(service: LocalHttpService) -> None:
    """Serve in this thread; SIGTERM and SIGINT stop it cleanly (connections closed, loop ended)."""

    def stop(signum: int, _frame: object) -> None:
        log.info("%s: signal %d, stopping", service.name, signum)
        service.request_stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.serve_forever()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def running(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    name: str,
    ssl_context: ssl.SSLContext | None = None,
    limits: HttpLimits | None = None,
) -> Iterator[LocalHttpService]:
    """The service in a background thread for the duration of the block."""
    service = LocalHttpService(handler, host, port, limits=limits, name=name, ssl_context=ssl_context)
    with service:
        service.start_in_thread()
        yield service
