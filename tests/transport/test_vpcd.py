"""The vpcd transport over real loopback sockets: framing, control messages, both modes,
misbehaving peers, reconnection. The tester side plays vpcd (eidemu.conformance.vpcd)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from eidemu.conformance.connection import CardConnectionError, open_card
from eidemu.conformance.vpcd import VpcdConnection
from eidemu.emulator.profile import load_profile
from eidemu.emulator.transport.echo import ECHO_ATR, EchoCard
from eidemu.emulator.transport.vpcd import (
    MAX_FRAME,
    CardSlots,
    FrameSocket,
    FramingError,
    VpcdClient,
    VpcdListener,
    tune_socket,
)

ATR = bytes.fromhex("3B88800145494445 4D5530313A")
SELECT_APP_NO_FCI = bytes.fromhex("00A4040C07A0000002471001")
PIN_OK = bytes.fromhex("0020000108313233343536FFFF")
PIN_BAD = bytes.fromhex("0020000108393939393939FFFF")
PIN_STATUS = bytes.fromhex("00200001")
FCI = bytes.fromhex("6F13820138830250008407A00000024710018A0105")


@pytest.fixture
def demo_card():
    return load_profile("iso-demo").build()


@pytest.fixture
def listener(demo_card):
    endpoint = VpcdListener(demo_card, "127.0.0.1", 0, frame_timeout=0.5).start()
    yield endpoint
    endpoint.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# -- framing ---------------------------------------------------------------------------


def test_frame_split_across_segments_is_reassembled():
    a, b = socket.socketpair()
    framed = FrameSocket(b)
    payload = bytes(range(256)) * 4

    def dribble():
        data = len(payload).to_bytes(2, "big") + payload
        for i in range(0, len(data), 7):
            a.sendall(data[i : i + 7])
            time.sleep(0.0005)

    threading.Thread(target=dribble).start()
    assert framed.read_frame() == payload
    a.close()
    assert framed.read_frame() is None


def test_two_frames_in_one_segment_are_both_read():
    a, b = socket.socketpair()
    a.sendall(b"\x00\x01\x04\x00\x04\x00\xa4\x04\x00")
    framed = FrameSocket(b)
    assert framed.read_frame() == b"\x04"
    assert framed.read_frame() == b"\x00\xa4\x04\x00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "length 0"),
        (b"\x00\x10\x00\xa4", "closed after 4 bytes"),
        (b"\x00", "closed after 1 bytes"),
    ],
)
def test_framing_errors(data, message):
    a, b = socket.socketpair()
    a.sendall(data)
    a.close()
    with pytest.raises(FramingError, match=message):
        FrameSocket(b).read_frame()


def test_oversized_frame_is_refused():
    a, b = socket.socketpair()
    a.sendall(b"\x10\x01" + b"\x00" * 16)
    with pytest.raises(FramingError, match="4097 bytes exceeds the limit of 4096"):
        FrameSocket(b, max_frame=4096).read_frame()


def test_stalled_frame_times_out():
    a, b = socket.socketpair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50_000))
    a.sendall(b"\x00\x10\x00")
    started = time.monotonic()
    with pytest.raises(FramingError, match=r"^frame incomplete at its deadline: 3 of 18 bytes received$"):
        FrameSocket(b, frame_timeout=0.2).read_frame()
    assert 0.15 < time.monotonic() - started < 1.0
    a.close()


def test_trickling_frame_times_out_although_bytes_keep_arriving():
    """One byte every 0.45 s never lets the receive timeout (0.5 s) pass, yet the whole frame
    has FRAME_TIMEOUT-style bounds: here 1.5 s from its first byte (real TCP sockets)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
    tune_socket(receiver, 0.5)
    stop = threading.Event()

    def trickle() -> None:
        for byte in b"\x00\x20" + bytes(32):
            if stop.is_set():
                return
            try:
                sender.sendall(bytes((byte,)))
            except OSError:
                return
            stop.wait(0.45)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(FramingError, match=r"^frame incomplete at its deadline: [45] of 34 bytes received$"):
            FrameSocket(receiver, frame_timeout=1.5).read_frame()
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 3.0  # the deadline, plus one 0.45 s gap between bytes (and a loaded machine)
    finally:
        stop.set()
        thread.join()
        sender.close()
        receiver.close()


def test_deadline_argument_cuts_a_frame_short():
    a, b = socket.socketpair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50_000))
    a.sendall(b"\x00")
    started = time.monotonic()
    with pytest.raises(FramingError, match=r"^frame incomplete at its deadline: 1 bytes received$"):
        FrameSocket(b, frame_timeout=5.0).read_frame(deadline=started + 0.2)
    assert time.monotonic() - started < 1.0
    a.close()
    b.close()


def test_write_frame_limits():
    a, b = socket.socketpair()
    framed = FrameSocket(a)
    framed.write_frame(b"\x01" * MAX_FRAME)
    with pytest.raises(FramingError):
        framed.write_frame(b"")
    with pytest.raises(FramingError):
        framed.write_frame(b"\x01" * (MAX_FRAME + 1))
    assert FrameSocket(b).read_frame() == b"\x01" * MAX_FRAME


# -- reverse mode: the card listens, the tester plays vpcd ------------------------------


def test_reverse_mode_atr_and_four_cases(listener):
    with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
        assert conn.atr == ATR
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")  # case 1
        assert conn.transmit(SELECT_APP_NO_FCI) == bytes.fromhex("9000")  # case 3
        assert conn.transmit(bytes.fromhex("00B0810010")) == b"Hello from eidem\x90\x00"  # case 2
        assert conn.transmit(bytes.fromhex("00A4040007A000000247100100")) == FCI + b"\x90\x00"  # case 4
        # extended length: case 4 SELECT, case 3 UPDATE BINARY, case 2 READ BINARY
        assert conn.transmit(bytes.fromhex("00A40400000007A00000024710010000")) == FCI + b"\x90\x00"
        assert conn.transmit(bytes.fromhex("00A4020C025003")) == bytes.fromhex("9000")
        assert conn.transmit(bytes.fromhex("00D6000000000411223344")) == bytes.fromhex("9000")
        assert conn.transmit(bytes.fromhex("00B00000000004")) == bytes.fromhex("112233449000")
        # 61xx and GET RESPONSE
        assert conn.transmit(bytes.fromhex("00A4040007A0000002471001")) == bytes.fromhex("6115")
        assert conn.transmit(bytes.fromhex("00C0000015")) == FCI + b"\x90\x00"


def test_reverse_mode_large_extended_read(listener):
    expected = load_profile("iso-demo").build().transmit(bytes.fromhex("00A4000C020101"))
    assert expected == b"\x90\x00"
    with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
        assert conn.transmit(bytes.fromhex("00A4000C020101")) == b"\x90\x00"
        response = conn.transmit(bytes.fromhex("00B00000009C40"))  # Le = 40000
        assert len(response) == 40002 and response[-2:] == b"\x90\x00"
        assert response.startswith(b"eidemu large file: readable past offset 32767")
        assert response[-3] == 0x5A


def test_power_cycle_and_reset_clear_security_state(listener):
    with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
        assert conn.transmit(PIN_OK) == b"\x90\x00"
        assert conn.transmit(PIN_STATUS) == b"\x90\x00"
        assert conn.reset() == ATR
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        assert conn.transmit(PIN_OK) == b"\x90\x00"
        assert conn.reset(cold=True) == ATR
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")


def test_disconnect_powers_off_but_keeps_pin_counter(listener):
    with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
        assert conn.transmit(PIN_OK) == b"\x90\x00"
        assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
    with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")


def test_one_byte_payload_other_than_control_goes_to_the_card():
    card = EchoCard(echo_command=True)
    endpoint = VpcdListener(card, "127.0.0.1", 0).start()
    try:
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=3) as raw:
            raw.sendall(b"\x00\x01\x04\x00\x01\x03")
            framed = FrameSocket(raw)  # one reader: both answers may arrive in one segment
            assert framed.read_frame() == card.atr
            assert framed.read_frame() == b"\x03\x90\x00"
    finally:
        endpoint.stop()


def test_extended_frames_up_to_65535_bytes_both_ways():
    card = EchoCard(echo_command=True)
    endpoint = VpcdListener(card, "127.0.0.1", 0).start()
    try:
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            command = bytes(range(256)) * 255 + bytes(253)  # 65533 bytes, echoed + 9000 = 65535
            assert conn.transmit(command) == command + b"\x90\x00"
        card.reply = b"\x00" * 65536  # cannot be framed: the card answers 6F00 instead
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            assert conn.transmit(b"\x00\xb0\x00\x00") == b"\x6f\x00"
    finally:
        endpoint.stop()


def test_control_messages_reach_the_card():
    card = EchoCard(echo_command=True)
    endpoint = VpcdListener(card, "127.0.0.1", 0).start()
    try:
        conn = VpcdConnection.connect("127.0.0.1", endpoint.port)
        assert conn.atr == ECHO_ATR
        conn.reset()
        conn.reset(cold=True)
        conn.close()
        assert wait_until(lambda: card.events[-1:] == ["off"] and endpoint.status == "listening")
        assert card.events[:4] == ["on", "reset", "off", "on"]
    finally:
        endpoint.stop()


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"\x00\x00", "frame of length 0"),
        (b"\x00\x20\x00\xa4\x04", "connection closed after 5 bytes of a frame"),
        (b"\xff\xff" + b"\x00" * 100, "connection closed after 102 bytes of a frame"),
        (b"\x00\x40\x00\xa4", "frame incomplete at its deadline: 4 of 66 bytes received"),
    ],
    ids=["length-0", "truncated", "oversized-announced", "stalled"],
)
def test_misbehaving_peer_is_dropped_and_the_card_comes_back(demo_card, garbage, reason):
    events: list[tuple[str, str]] = []
    endpoint = VpcdListener(
        demo_card, "127.0.0.1", 0, frame_timeout=0.3, on_event=lambda k, m: events.append((k, m))
    ).start()
    try:
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
        raw = poll_like_vpcd(endpoint.port)  # a peer that speaks vpcd, then breaks the framing
        raw.sendall(garbage)
        if "closed" in reason:
            raw.shutdown(socket.SHUT_WR)
        assert wait_until(lambda: any(k == "peer-error" for k, _ in events))
        assert raw.recv(10) == b""  # the card closed this connection
        raw.close()
        assert [m for k, m in events if k == "peer-error"] == [f"dropped the connection: {reason}"]
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            assert conn.atr == ATR
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")  # persistent state intact
    finally:
        endpoint.stop()


def test_oversized_length_beyond_the_cards_limit(demo_card):
    endpoint = VpcdListener(demo_card, "127.0.0.1", 0, max_frame=1024).start()
    try:
        with socket.create_connection(("127.0.0.1", endpoint.port)) as raw:
            raw.sendall(b"\x04\x01" + b"\x00" * 10)
            assert raw.recv(10) == b""
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
    finally:
        endpoint.stop()


def test_connection_reset_mid_frame(demo_card):
    endpoint = VpcdListener(demo_card, "127.0.0.1", 0).start()
    try:
        raw = socket.create_connection(("127.0.0.1", endpoint.port))
        raw.sendall(b"\x00\x30\x00\xa4\x04\x00")
        time.sleep(0.05)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()  # RST
        with VpcdConnection.connect("127.0.0.1", endpoint.port) as conn:
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        assert endpoint.connections == 2
    finally:
        endpoint.stop()


# -- reverse mode: silent, slow and foreign peers cannot hold the card --------------------


def poll_like_vpcd(port: int) -> socket.socket:
    """What vpcd does in reverse mode on pcscd's presence poll: connect, ask for the ATR."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(b"\x00\x01\x04")
    assert FrameSocket(sock).read_frame() == ATR
    return sock


def events_of(endpoint_events: list[tuple[str, str]], kind: str) -> list[str]:
    return [m for k, m in endpoint_events if k == kind]


@pytest.fixture
def guarded(demo_card):
    events: list[tuple[str, str]] = []
    endpoint = VpcdListener(
        demo_card, "127.0.0.1", 0, hello_timeout=1.0, idle_takeover=0.6, on_event=lambda k, m: events.append((k, m))
    ).start()
    endpoint.events = events  # type: ignore[attr-defined]
    yield endpoint
    endpoint.stop()


def test_silent_peer_is_displaced_at_once_by_vpcd(demo_card):
    events: list[tuple[str, str]] = []
    endpoint = VpcdListener(demo_card, "127.0.0.1", 0, hello_timeout=5.0, on_event=lambda k, m: events.append((k, m)))
    endpoint.start()
    silent = socket.create_connection(("127.0.0.1", endpoint.port), timeout=6)
    assert wait_until(lambda: endpoint.connections == 1)
    started = time.monotonic()
    vpcd = poll_like_vpcd(endpoint.port)
    assert time.monotonic() - started < 2.5  # long before the silent peer's 5 s hello timeout
    assert silent.recv(10) == b""  # the silent peer was closed
    [displaced] = events_of(events, "displaced")
    assert displaced.startswith("the connection had sent no vpcd message yet; new connection from 127.0.0.1:")
    framed = FrameSocket(vpcd)
    framed.write_frame(PIN_STATUS)
    assert framed.read_frame() == bytes.fromhex("63C3")
    vpcd.close()
    silent.close()
    endpoint.stop()


def test_silent_peer_alone_is_dropped_after_the_hello_timeout(guarded):
    started = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", guarded.port), timeout=3)
    silent.settimeout(3)
    assert silent.recv(10) == b""
    assert 1.0 <= time.monotonic() - started < 2.5
    wait_until(lambda: events_of(guarded.events, "peer-error"), 1.0)  # told just after the socket closes
    assert events_of(guarded.events, "peer-error") == ["dropped the connection: no vpcd control message within 1 s"]
    assert guarded.status == "listening"
    poll_like_vpcd(guarded.port).close()


def test_trickling_first_message_is_dropped_at_the_hello_deadline(guarded):
    trickler = socket.create_connection(("127.0.0.1", guarded.port))
    trickler.settimeout(5)
    started = time.monotonic()
    for byte in b"\x00\x01":  # a control message, one byte every 0.4 s: never complete in time
        trickler.sendall(bytes((byte,)))
        time.sleep(0.4)
    assert trickler.recv(10) == b""
    assert time.monotonic() - started < 3.0  # the 1 s hello deadline, not the 5 s frame timeout
    wait_until(lambda: events_of(guarded.events, "peer-error"), 1.0)  # told just after the socket closes
    assert events_of(guarded.events, "peer-error") == [
        "dropped the connection: frame incomplete at its deadline: 2 of 3 bytes received"
    ]


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (b"\x00\x05\x00\xa4\x04\x00\x00", "the first message is not a vpcd control message"),
        (b"\x00\x01\x03", "the first message is not a vpcd control message"),
        (b"GET / HTTP/1.1\r\n\r\n", "the first message is not a vpcd control message"),
    ],
    ids=["apdu-first", "unknown-control", "http"],
)
def test_peer_that_does_not_speak_vpcd_never_reaches_the_card(demo_card, first, reason):
    card = EchoCard()
    events: list[tuple[str, str]] = []
    endpoint = VpcdListener(card, "127.0.0.1", 0, max_frame=MAX_FRAME, on_event=lambda k, m: events.append((k, m)))
    endpoint.start()
    try:
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=3) as raw:
            raw.sendall(first)
            assert raw.recv(10) == b""
        assert wait_until(lambda: bool(events_of(events, "peer-error")))
        assert events_of(events, "peer-error") == [f"dropped the connection: {reason}"]
        assert card.events == ["off"]  # powered off on disconnect; no command ever reached it
    finally:
        endpoint.stop()


def test_second_connection_is_refused_while_vpcd_is_active_then_takes_over_when_it_goes_silent(guarded):
    holder = poll_like_vpcd(guarded.port)
    holder_framed = FrameSocket(holder)
    # the holder keeps polling: a newcomer is closed at once and the holder is unaffected
    intruder = socket.create_connection(("127.0.0.1", guarded.port), timeout=3)
    assert intruder.recv(10) == b""
    intruder.close()
    holder_framed.write_frame(PIN_STATUS)
    assert holder_framed.read_frame() == bytes.fromhex("63C3")
    assert events_of(guarded.events, "refused")[0].endswith(": the card is in use")
    # the holder goes silent past idle_takeover (0.6 s): the next vpcd takes over
    time.sleep(0.7)
    successor = poll_like_vpcd(guarded.port)
    assert holder.recv(10) == b""
    [displaced] = events_of(guarded.events, "displaced")
    assert displaced.startswith("the connection was silent for ")
    successor.close()
    holder.close()


def test_many_silent_connections_then_vpcd_gets_the_card(guarded):
    silent = [socket.create_connection(("127.0.0.1", guarded.port)) for _ in range(6)]
    started = time.monotonic()
    vpcd = poll_like_vpcd(guarded.port)
    assert time.monotonic() - started < 3.0
    framed = FrameSocket(vpcd)
    framed.write_frame(SELECT_APP_NO_FCI)
    assert framed.read_frame() == bytes.fromhex("9000")
    for sock in silent:
        sock.settimeout(3)
        assert sock.recv(10) == b""
        sock.close()
    vpcd.close()


# -- normal mode: the card connects, the tester listens as vpcd does -------------------


def test_normal_mode_connects_and_reconnects_with_state_intact(demo_card):
    port = free_port()
    client = VpcdClient(demo_card, "127.0.0.1", port, backoff=(0.01, 0.05)).start()
    try:
        conn = VpcdConnection.listen("127.0.0.1", port, timeout=3)
        assert conn.atr == ATR
        assert conn.transmit(PIN_OK) == b"\x90\x00"
        assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
        conn.close()  # vpcd (pcscd) goes away; the card retries until it is back
        time.sleep(0.2)
        assert client.status == "waiting for vpcd"
        conn = VpcdConnection.listen("127.0.0.1", port, timeout=3)
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")  # counter kept, verification cleared
        conn.close()
    finally:
        client.stop()
    assert client.status == "stopped"


def test_normal_mode_misbehaving_vpcd_then_recovery(demo_card):
    port = free_port()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    client = VpcdClient(demo_card, "127.0.0.1", port, backoff=(0.01, 0.05)).start()
    try:
        for garbage in (b"\x00\x00", b"\x00\x09\x00\xa4"):
            sock, _ = server.accept()
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(10) == b""
            sock.close()
        server.settimeout(3)
        sock, _ = server.accept()
        tune_socket(sock)
        conn = VpcdConnection(sock, "fake vpcd")
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        conn.close()
    finally:
        server.close()
        client.stop()


def test_self_connection_is_refused():
    # With no listener, a loopback connect can hit its own port (simultaneous open); the
    # client must never treat that as vpcd. Probe the check directly.
    client = VpcdClient(EchoCard(echo_command=True), "127.0.0.1", free_port())
    with pytest.raises(OSError):
        client.connect_once(timeout=0.5)


# -- several slots, insert and remove --------------------------------------------------


def test_card_slots_insert_remove_reinsert():
    events: list[tuple[int, str]] = []
    with CardSlots("127.0.0.1", 0, listen=True, on_event=lambda s, k, m: events.append((s, k))) as slots:
        a = slots.insert(0, load_profile("iso-demo").build())
        b = slots.insert(1, EchoCard(echo_command=True))
        with pytest.raises(ValueError, match="already holds a card"):
            slots.insert(1, EchoCard(echo_command=True))
        with VpcdConnection.connect("127.0.0.1", a.port) as one, VpcdConnection.connect("127.0.0.1", b.port) as two:
            assert one.transmit(PIN_STATUS) == bytes.fromhex("63C3")
            assert two.transmit(PIN_STATUS) == PIN_STATUS + b"\x90\x00"
        slots.remove(1)
        with pytest.raises(CardConnectionError, match="no card listening"):
            VpcdConnection.connect("127.0.0.1", b.port, timeout=1)
        slots.insert(1, EchoCard(echo_command=True))
        assert set(slots.endpoints) == {0, 1}
    assert a.stopped


# -- URIs ------------------------------------------------------------------------------


def test_open_card_vpcd_uri_both_directions(demo_card):
    endpoint = VpcdListener(demo_card, "127.0.0.1", 0).start()
    try:
        conn = open_card(f"vpcd:127.0.0.1:{endpoint.port}")
        assert conn.description == f"vpcd:127.0.0.1:{endpoint.port}"
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        conn.close()
    finally:
        endpoint.stop()
    port = free_port()
    client = VpcdClient(load_profile("iso-demo").build(), "127.0.0.1", port, backoff=(0.01, 0.05)).start()
    try:
        conn = open_card(f"vpcd:127.0.0.1:{port}?listen&timeout=3")
        assert conn.atr == ATR
        conn.close()
    finally:
        client.stop()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("vpcd:nowhere", "vpcd: expects HOST:PORT, not 'nowhere'"),
        ("vpcd:127.0.0.1:1?bogus", "unknown vpcd: option 'bogus'"),
        ("vpcd:127.0.0.1:1", "no card listening on 127.0.0.1:1"),
    ],
)
def test_vpcd_uri_errors(uri, message):
    with pytest.raises(CardConnectionError, match=message):
        open_card(uri)
