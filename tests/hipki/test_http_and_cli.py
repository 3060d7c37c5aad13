"""The HTTP limits (slow senders, connection cap) and the ``eidemu hipki`` command line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from eidemu.hipki.http import Limits
from eidemu.hipki.user import Step

from .conftest import PIN, ROOT


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_slow_sender_is_disconnected(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=Limits(read_timeout=0.5))
    with _connect(client.running.running.port) as sock:
        sock.sendall(b"GET /pkcs11info HTTP/1.1\r\nHost: localhost\r\n")  # headers never finished
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the service
        assert 0.3 < time.monotonic() - started < 4
    assert client.get("/pkcs11info").json()["ret_code"] == 0  # others are still served


def test_connections_beyond_the_cap_get_503(make_service):
    client = make_service("emulator:moica-g2-valid-1", limits=Limits(max_connections=2))
    port = client.running.running.port
    held = [_connect(port), _connect(port)]
    time.sleep(0.2)
    try:
        with _connect(port) as extra:
            extra.sendall(b"GET /pkcs11info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert extra.recv(1024).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert client.get("/pkcs11info").json()["ret_code"] == 0


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
    port = str(hipki.running.running.port)
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
