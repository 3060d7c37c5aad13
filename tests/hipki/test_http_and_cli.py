"""The HTTP limits on the service (slow senders, the connection cap, keep-alive, a request that
waits for a busy card) and the ``eidemu hipki`` command line."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

from eidemu.emulator.pki.http_service import HttpLimits
from eidemu.hipki.server import LIMITS
from eidemu.hipki.user import Step
from tests.pki.test_http_service import wait_until

from .conftest import PIN, ROOT

SIGN = {"tbs": "x", "pin": PIN}


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def limits(**changes: float) -> HttpLimits:
    return dataclasses.replace(LIMITS, **changes)


def test_a_slow_sender_is_disconnected(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=limits(connection_timeout=0.5))
    with _connect(client.running.port) as sock:
        sock.sendall(b"GET /pkcs11info HTTP/1.1\r\nHost: localhost\r\n")  # headers never finished
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the service
        assert 0.3 < time.monotonic() - started < 4
    assert client.get("/pkcs11info").json()["ret_code"] == 0  # others are still served


def test_a_body_never_finished_is_cut_off(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=limits(connection_timeout=0.5))
    with _connect(client.running.port) as sock:
        sock.sendall(b"POST /sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\ntbsPackage=")
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert 0.3 < time.monotonic() - started < 4
    assert client.http.counters.requests == 0


def _sign_request() -> bytes:
    body = urlencode({"tbsPackage": json.dumps(SIGN)}).encode()
    head = b"POST /sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_idle_connections_make_room_and_busy_ones_get_503(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=limits(max_connections=2), queue_timeout=5)
    port = client.running.port
    idle = [_connect(port), _connect(port)]
    try:
        # the cap holds idle connections: a real request closes the oldest to get in
        assert client.get("/pkcs11info").json()["ret_code"] == 0
        assert client.http.counters.evicted >= 1
    finally:
        for sock in idle:
            sock.close()
    (session,) = client.service.sessions.values()
    session.lock.acquire()  # a long card operation: the next two requests wait for the card
    waiting = [_connect(port), _connect(port)]
    try:
        for sock in waiting:
            sock.sendall(_sign_request())
        assert wait_until(lambda: client.http.open_connections == 2 and client.http.counters.evicted >= 1)
        time.sleep(0.2)
        with _connect(port) as extra:
            extra.sendall(b"GET /pkcs11info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert (
                extra.recv(1024)
                == b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        assert client.http.counters.refused == 1
    finally:
        session.lock.release()
    for sock in waiting:  # the waiting requests are answered once the card is free
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        sock.close()
    assert client.get("/pkcs11info").json()["ret_code"] == 0


def test_a_request_waiting_for_the_card_outlives_the_connection_timeout(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=limits(connection_timeout=0.5), queue_timeout=3)
    assert client.http.limits.answer_timeout >= 3.5  # room for the queue
    client.get("/pkcs11info")
    (session,) = client.service.sessions.values()
    session.lock.acquire()
    threading.Timer(1.2, session.lock.release).start()  # the card is busy for longer than 0.5 s
    started = time.monotonic()
    assert client.call("/sign", SIGN)["ret_code"] == 0
    assert time.monotonic() - started >= 1.0


def test_keep_alive_connections_are_reused_and_reaped_when_idle(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=limits(connection_timeout=0.5))
    with _connect(client.running.port) as sock:
        for _ in range(3):  # one connection, three answers
            sock.sendall(b"GET /selfTest.htm HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" not in head
            while b"</html>" not in head:
                head += sock.recv(65536)
        started = time.monotonic()
        assert sock.recv(1024) == b""  # idle after its answer: reaped at the timeout
        assert 0.3 < time.monotonic() - started < 4
    assert client.http.counters.reaped == 1


def test_user_steps_never_show_a_pin():
    step = Step.parse(f"pin:{PIN}")
    assert repr(step) == "Step('pin')" and PIN not in repr([step])


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eidemu.cli", "hipki", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_serve_refuses_a_non_loopback_host_and_bad_steps():
    result = run_cli("serve", "--card", "emulator:moica-g2-valid-1", "--host", "0.0.0.0")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr == "eidemu: error: --host 0.0.0.0: the service binds only loopback addresses (127.0.0.1, ::1)\n"
    )
    result = run_cli("serve", "--card", "emulator:moica-g2-valid-1", "--user", "pin:12ab")
    assert result.returncode == 2 and result.stderr == "eidemu: error: --user: user step pin: the PIN is digits\n"
    result = run_cli("serve", "--card", "floppy:a")
    assert result.returncode == 2
    assert result.stderr == (
        "eidemu: error: --card 'floppy:a': the service serves emulator:<profile> or pcsc:[reader prefix]\n"
    )


def test_control_cli_against_a_running_service(hipki):
    port = str(hipki.running.port)
    result = run_cli(
        "control", "--port", port, "--fail-next", "0x76100006", "--last-error", "0x80000001", "--path", "/sign"
    )
    assert result.returncode == 0, result.stderr
    assert '"ok": true' in result.stdout
    answer = hipki.call("/sign", {"tbs": "x", "pin": PIN})
    assert (answer["ret_code"], answer["last_error"]) == (0x76100006, -2147483647)
    assert run_cli("control", "--port", port, "--user", f"pin:{PIN}").returncode == 0
    assert hipki.call("/sign", {"tbs": "x"})["ret_code"] == 0
    result = run_cli("control", "--port", port)
    assert result.returncode == 2 and "nothing to do" in result.stderr
    result = run_cli("control", "--port", port, "--fail-next", "sometimes")
    assert result.returncode == 2 and result.stderr == (
        "eidemu: error: --fail-next 'sometimes': not a number (0x76000006 or decimal)\n"
    )
