"""``eidemu serve`` and ``eidemu pcscd`` without pcscd: the tester side plays vpcd."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eidemu.cli import build_parser, main
from eidemu.conformance.vpcd import VpcdConnection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pipe:
    """A blocking stdin for the serve command, fed by the test."""

    def __init__(self) -> None:
        r, w = os.pipe()
        self.reader = os.fdopen(r, "r")
        self.writer = os.fdopen(w, "w")

    def send(self, line: str) -> None:
        self.writer.write(line + "\n")
        self.writer.flush()


def start_serve(argv: list[str]):
    from eidemu.cli import serve

    args = build_parser().parse_args(["serve", *argv])
    out = io.StringIO()
    stdin = Pipe()
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", serve.run(args, out=out, stdin=stdin.reader)))
    thread.start()
    return thread, out, stdin, result


def test_serve_two_cards_with_trace_insert_remove_quit(tmp_path):
    port = free_port()
    trace = tmp_path / "trace.jsonl"
    argv = ["--profile", "iso-demo", "--profile", "iso-demo", "--vpcd", f"127.0.0.1:{port}", "--wait"]
    thread, out, stdin, result = start_serve([*argv, "--trace", str(trace)])
    try:
        conn = VpcdConnection.listen("127.0.0.1", port, timeout=5)
        assert conn.transmit(bytes.fromhex("0020000108313233343536FFFF")) == b"\x90\x00"
        conn2 = VpcdConnection.listen("127.0.0.1", port + 1, timeout=5)
        assert conn2.transmit(bytes.fromhex("00200001")) == bytes.fromhex("63C3")
        stdin.send("remove 1")
        assert conn2._framed.read_frame() is None  # the card closed its connection
        stdin.send("status")
        time.sleep(0.1)
        conn.close()
        conn2.close()
    finally:
        stdin.send("quit")
        thread.join(5)
    assert result["rc"] == 0
    text = out.getvalue()
    assert f"slot 0: iso-demo in reader 'Virtual PCD 00 00' (vpcd 127.0.0.1:{port}): present" in text
    # Slot 1's listener opens only after slot 0's exchange: serve may first report it waiting.
    slot1 = f"slot 1: iso-demo in reader 'Virtual PCD 00 01' (vpcd 127.0.0.1:{port + 1}): "
    assert f"{slot1}present" in text or (
        f"{slot1}waiting for vpcd" in text and f"slot 1: iso-demo: connected to vpcd at 127.0.0.1:{port + 1}" in text
    )
    assert "slot 1: iso-demo: removed" in text
    assert "stopped" in text
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    verify = next(line for line in lines if line.get("direction") == "command" and line["hex"].startswith("00200001"))
    assert verify["hex"] == "0020000108" + "**" * 8  # the PIN never reaches the trace
    assert verify["source"] == "slot0:iso-demo"


def test_serve_reports_unreachable_vpcd_in_one_line(capsys):
    port = free_port()
    rc = main(["serve", "--profile", "iso-demo", "--vpcd", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith(f"eidemu: error: vpcd is not listening on 127.0.0.1:{port} (Connection refused): ")
    assert "apt-get install pcscd vsmartcard-vpcd" in err and "Traceback" not in err


def test_serve_usage_errors(capsys):
    assert main(["serve", "--profile", "iso-demo", "--vpcd", "nonsense"]) == 2
    assert "--vpcd expects HOST:PORT, not 'nonsense'" in capsys.readouterr().err
    assert main(["serve", "--profile", "no-such-profile", "--listen", "127.0.0.1:0"]) == 2
    assert "no-such-profile" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_listen_mode_stops_cleanly_on_signal(sig):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "eidemu.cli", "serve", "--profile", "iso-demo", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line == f"slot 0: iso-demo: listening on 127.0.0.1:{port} for vpcd (reverse mode): listening\n"
        with VpcdConnection.connect("127.0.0.1", port) as conn:
            assert conn.transmit(bytes.fromhex("00200001")) == bytes.fromhex("63C3")
        process.send_signal(sig)
        out, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "stopping" in out and "stopped" in out
    assert err == ""


def card_line(process: subprocess.Popen[str]) -> str:
    """The next line of ``serve`` about a card: the fault-control line is printed once the
    first card has a result, which in listen mode races with the card's own lines."""
    assert process.stdout is not None
    line = process.stdout.readline()
    while line.startswith("fault control: "):
        line = process.stdout.readline()
    return line


def test_serve_listen_mode_an_idle_peer_gives_way_to_vpcd():
    """The issue's case: a TCP connection that sends nothing no longer holds the card."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "eidemu.cli", "serve", "--profile", "iso-demo", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    idle = None
    try:
        assert process.stdout.readline().endswith("(reverse mode): listening\n")
        idle = socket.create_connection(("127.0.0.1", port))
        assert card_line(process).startswith("slot 0: iso-demo: connected to vpcd at 127.0.0.1:")
        started = time.monotonic()
        with VpcdConnection.connect("127.0.0.1", port, timeout=3) as conn:
            assert conn.transmit(bytes.fromhex("00200001")) == bytes.fromhex("63C3")
        assert time.monotonic() - started < 1.8  # before the idle peer's 2 s hello timeout
        assert card_line(process).startswith(
            "slot 0: iso-demo: the connection had sent no vpcd message yet; new connection from 127.0.0.1:"
        )
        idle.settimeout(3)
        assert idle.recv(10) == b""
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=5)
    finally:
        if idle is not None:
            idle.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_pcscd_status_without_instance(tmp_path, capsys):
    assert main(["pcscd", "status", "--run-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.startswith("private pcscd: not running")
    assert main(["pcscd", "stop", "--run-dir", str(tmp_path)]) == 1
    assert "no private pcscd was running" in capsys.readouterr().err
