"""The two small extensions of the bounded HTTP base the services need: HTTPS with an
``ssl.SSLContext`` (ICS) and :meth:`LocalHttpService.request_stop` (SIGTERM handlers)."""

from __future__ import annotations

import http.client
import ssl
import threading
import time

import pytest

from eidemu.emulator.pki.http_service import HttpAnswer, LocalHttpService
from eidemu.services import ics


def constant(_request: object) -> HttpAnswer:
    return HttpAnswer(200, "text/plain", b"hello\n")


def test_https_with_a_context_and_plain_http_without() -> None:
    with LocalHttpService(constant, name="tls", ssl_context=ics.server_context()) as service:
        service.start_in_thread()
        host, port = service.server_address
        assert service.base_url == f"https://{host}:{port}/"
        connection = http.client.HTTPSConnection(host, port, timeout=10, context=ics.client_context())
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello\n")
        assert connection.sock is None or isinstance(connection.sock, ssl.SSLSocket)
        connection.close()
        plain = http.client.HTTPConnection(host, port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/")
            plain.getresponse()
        plain.close()
        assert service.counters.requests == 1
    with LocalHttpService(constant, name="plain") as service:
        assert service.base_url.startswith("http://127.0.0.1:")


def test_request_stop_ends_serve_forever_without_waiting() -> None:
    service = LocalHttpService(constant, name="stop")
    thread = threading.Thread(target=service.serve_forever)
    thread.start()
    deadline = time.monotonic() + 5
    while service._loop is None and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    service.request_stop()
    assert time.monotonic() - started < 0.1  # returns at once
    thread.join(5)
    assert not thread.is_alive()
    with LocalHttpService(constant, name="never-started") as idle:
        idle.request_stop()  # harmless before serving
