"""Robustness of the card OS against random and mutated command APDUs (issue 2).

Commands are built from valid ISO 7816-4 commands for the ``iso-demo`` profile (SELECT in
all its forms, READ/UPDATE BINARY, records, GET DATA, GET CHALLENGE, EXTERNAL AUTHENTICATE,
VERIFY right and wrong, CHANGE REFERENCE DATA, RESET RETRY COUNTER, MANAGE CHANNEL, GET
RESPONSE), sent on random logical channels, with chaining bits and extended lengths, and
then mutated (truncations, bit flips, wrong Lc, foreign class bytes); some are plain random
bytes. After every exchange :class:`CardChecker` asserts:

* the response is a well-formed response APDU: at least the two status bytes, SW1 in
  61..6F or the response is ``9000``, data only with ``9000``/``61xx``/``62xx``/``63xx``
  and never more than Ne;
* no unexpected exception: no ``6F00`` and nothing logged at error level on
  ``eidemu.card`` (the OS logs every exception it turns into ``6F00``);
* retry counters: at most one counter falls, by one, answered ``63Cx`` with the real count
  or ``6983``; a counter only rises to its maximum by a correct VERIFY (also inside CHANGE
  REFERENCE DATA and RESET RETRY COUNTER with a PUK) or a permitted unblock.

The same generator drives two entropy sources: hypothesis (this module's tests, which
shrink a failure to a short command sequence) and :class:`random.Random` for the soak run
``benchmarks/soak.py`` (a million APDUs, too many for hypothesis' bookkeeping).

Hypothesis settings profiles: ``ci`` (default, about ten seconds), ``dev`` (quick) and
``thorough``; choose one with the ``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.security import Pin
from eidemu.emulator.iso7816.apdu import ClassByte, CommandAPDU
from eidemu.emulator.iso7816.sw import CardError
from eidemu.emulator.profile import load_profile

T = TypeVar("T")

PROFILE = load_profile("iso-demo")


# -- hypothesis settings profiles ---------------------------------------------------------


def _register_profiles() -> None:
    """Register ``ci``/``dev``/``thorough`` unless a conftest already defined them."""
    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
    for name, examples in (("ci", 100), ("dev", 20), ("thorough", 3000)):
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(name, max_examples=examples, **common)  # type: ignore[arg-type]


_register_profiles()
FUZZ_SETTINGS = settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")))


# -- entropy sources ------------------------------------------------------------------------


class Entropy(Protocol):
    """Where the generator's choices come from: hypothesis draws or a seeded PRNG."""

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low..high`` inclusive."""
        ...

    def blob(self, low: int, high: int) -> bytes:
        """Random bytes, ``low..high`` of them."""
        ...


class RandomEntropy:
    """Entropy from :class:`random.Random`: fast, for the soak run."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random

    def integer(self, low: int, high: int) -> int:
        return low + int(self._random() * (high - low + 1))

    def blob(self, low: int, high: int) -> bytes:
        return self.rng.randbytes(self.integer(low, high))


class HypothesisEntropy:
    """Entropy drawn from hypothesis, so failures shrink to small choices."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def blob(self, low: int, high: int) -> bytes:
        return self.data.draw(st.binary(min_size=low, max_size=high))


def pick(ent: Entropy, options: Sequence[T]) -> T:
    return options[ent.integer(0, len(options) - 1)]


# -- the command generator -------------------------------------------------------------------

# Files and names of the iso-demo profile (fixtures/profiles/iso-demo.yaml).
DEMO_AID = bytes.fromhex("A0000002471001")
FIDS = (0x3F00, 0x2F00, 0x2F01, 0x0101, 0x5000, 0x5001, 0x5002, 0x5003, 0x5004, 0x5005, 0x1234, 0xFFFF)
SFIS = (1, 2, 3, 4, 0x1E, 0x1F, 0)
PIN_REFS = (0x01, 0x02, 0x01, 0x02, 0x03, 0x81)
OTHER_INS = (0x00, 0x04, 0x0E, 0x22, 0x2A, 0x88, 0xA0, 0xB3, 0xC2, 0xCB, 0xDA, 0xE0, 0xFF)


def _fid(ent: Entropy) -> bytes:
    return pick(ent, FIDS).to_bytes(2, "big")


def _ne(ent: Entropy) -> int | None:
    return pick(ent, (None, 256, 1, 2, 8, 16, 200, 255, 300, 1000, 65536, ent.integer(1, 256)))


def _pin_block(pin: Pin | None, right: bool, ent: Entropy) -> bytes:
    """Wire form of the PIN's current value (``right``) or of a plausible wrong one."""
    if pin is None:
        return ent.blob(0, 10)
    value = pin.value if right else pick(ent, (b"000000", b"1234567", b"87654320", ent.blob(0, 9)))
    if pin.pad_to:
        return value.ljust(pin.pad_to, bytes((pin.pad_byte,)))[: pin.pad_to] if ent.integer(0, 9) else value
    return value


def _new_pin(ent: Entropy, pin: Pin | None) -> bytes:
    digits = b"".join(bytes((0x30 + ent.integer(0, 9),)) for _ in range(ent.integer(4, 9)))
    if pin is not None and pin.pad_to and ent.integer(0, 5):
        return digits.ljust(pin.pad_to, bytes((pin.pad_byte,)))[: pin.pad_to]
    return digits


def _external_auth_data(card: Card, channel_number: int) -> bytes:
    """The correct response to the channel's last challenge with key 01 (3DES-ECB)."""
    channel = card.channels.get(channel_number)
    key = card.keys.get(0x01)
    if channel is None or key is None or not channel.security.challenge:
        return bytes(8)
    block = 8 if key.algorithm == "3des" else 16
    padded = channel.security.challenge[:block].ljust(block, b"\x00")
    # Two-key 3DES as K1 K2 K1: the same cipher, without the deprecation warning for 16-byte keys.
    value = key.value + key.value[:8] if len(key.value) == 16 and block == 8 else key.value
    algo = TripleDES(value) if key.algorithm == "3des" else algorithms.AES(value)
    enc = Cipher(algo, modes.ECB()).encryptor()
    return enc.update(padded) + enc.finalize()


def _command(ent: Entropy, card: Card, channel_number: int) -> CommandAPDU:
    """One valid-looking command for the iso-demo card (before any mutation)."""
    kind = ent.integer(0, 19)
    pins = card.pins
    if kind <= 2:  # SELECT
        form = ent.integer(0, 8)
        p2 = pick(ent, (0x0C, 0x00, 0x04, 0x08, 0x0C, 0x02, 0x10))
        ne = None if p2 == 0x0C and ent.integer(0, 3) else _ne(ent)
        if form == 0:
            return CommandAPDU(0, 0xA4, 0x00, p2, pick(ent, (b"\x3f\x00", b"", _fid(ent))), ne)
        if form == 1:
            return CommandAPDU(0, 0xA4, 0x04, p2, pick(ent, (DEMO_AID, DEMO_AID[:5], DEMO_AID + b"\x01", b"")), ne)
        if form == 2:
            return CommandAPDU(0, 0xA4, pick(ent, (0x01, 0x02)), p2, _fid(ent), ne)
        if form == 3:
            path = b"".join(_fid(ent) for _ in range(ent.integer(0, 3)))
            return CommandAPDU(0, 0xA4, pick(ent, (0x08, 0x09)), p2, pick(ent, (b"\x50\x00\x50\x01", path)), ne)
        if form == 4:
            return CommandAPDU(0, 0xA4, 0x03, p2, b"", ne)
        return CommandAPDU(0, 0xA4, 0x00, p2, pick(ent, (b"\x50\x00", b"\x50\x01", b"\x50\x03", b"\x01\x01")), ne)
    if kind <= 4:  # READ BINARY, current EF or SFI
        if ent.integer(0, 2):
            offset = pick(ent, (0, 0, 1, 100, 199, 200, 201, 0x7FFF, ent.integer(0, 0x7FFF)))
            p1, p2 = offset >> 8, offset & 0xFF
        else:
            p1, p2 = 0x80 | pick(ent, SFIS), ent.integer(0, 255)
        ne = pick(ent, (200, 256, 1, ent.integer(1, 256), 65536, 300))
        return CommandAPDU(0, 0xB0, p1, p2, b"", ne if ent.integer(0, 9) else None)
    if kind == 5:  # READ BINARY odd INS with an offset data object
        offset = pick(ent, (0, 32767, 32768, 39990, 40000, 50000, ent.integer(0, 0xFFFFFF)))
        width = pick(ent, (1, 2, 3, 4, 0))
        do = bytes((0x54, width)) + offset.to_bytes(4, "big")[-width:] if width else b"\x54\x00"
        data = pick(ent, (do, do[:-1], b"\x53\x00", b"", ent.blob(0, 6)))
        fid = pick(ent, (0x0000, 0x0101, 0x0003, 0x5001, 0x001E, 0x5000))
        return CommandAPDU(0, 0xB1, fid >> 8, fid & 0xFF, data, pick(ent, (256, 1, 4, 5, 65536, None)))
    if kind == 6:  # UPDATE BINARY
        data = pick(ent, (b"note", ent.blob(1, 70), bytes(64), b""))
        if ent.integer(0, 1):
            p1, p2 = 0x80 | pick(ent, SFIS), ent.integer(0, 70)
        else:
            offset = pick(ent, (0, 10, 63, 64, 65, ent.integer(0, 0x7FFF)))
            p1, p2 = offset >> 8, offset & 0xFF
        return CommandAPDU(0, 0xD6, p1, p2, data, None if ent.integer(0, 5) else _ne(ent))
    if kind == 7:  # records
        ins = pick(ent, (0xB2, 0xB2, 0xDC, 0xE2))
        p1 = pick(ent, (0, 1, 2, 5, 6, 255))
        p2 = (pick(ent, SFIS) << 3) | pick(ent, (4, 4, 4, 0, 5))
        data = b"" if ins == 0xB2 else pick(ent, (b"\x0a\x0b", ent.blob(0, 260)))
        ne = pick(ent, (256, 3, 1, 14, None)) if ins == 0xB2 else None
        return CommandAPDU(0, ins, p1, p2, data, ne)
    if kind == 8:  # GET DATA, GET CHALLENGE
        if ent.integer(0, 1):
            tag = pick(ent, (0x5F52, 0x9F7F, 0x0000, 0x0101))
            return CommandAPDU(0, 0xCA, tag >> 8, tag & 0xFF, b"", _ne(ent))
        return CommandAPDU(0, 0x84, pick(ent, (0, 0, 1)), 0, pick(ent, (b"", b"", b"x")), pick(ent, (8, 16, 256, None)))
    if kind == 9:  # EXTERNAL AUTHENTICATE with key 01, right or wrong
        data = _external_auth_data(card, channel_number) if ent.integer(0, 2) else ent.blob(0, 16)
        return CommandAPDU(0, 0x82, 0x00, pick(ent, (0x01, 0x81, 0x02)), data)
    if kind <= 12:  # VERIFY
        ref = pick(ent, PIN_REFS)
        pin = pins.get(ref)
        form = ent.integer(0, 5)
        if form == 0:
            return CommandAPDU(0, 0x20, 0x00, ref)  # ask the remaining tries
        if form == 1:
            return CommandAPDU(0, 0x20, pick(ent, (0xFF, 0x01)), ref)
        return CommandAPDU(0, 0x20, 0x00, ref, _pin_block(pin, form >= 3, ent), None if ent.integer(0, 7) else 256)
    if kind == 13:  # CHANGE REFERENCE DATA
        ref = pick(ent, PIN_REFS)
        pin = pins.get(ref)
        if ent.integer(0, 2):
            data = _pin_block(pin, bool(ent.integer(0, 2)), ent) + _new_pin(ent, pin)
            return CommandAPDU(0, 0x24, 0x00, ref, data)
        return CommandAPDU(0, 0x24, pick(ent, (0x01, 0x02)), ref, _new_pin(ent, pin))
    if kind == 14:  # RESET RETRY COUNTER
        ref = pick(ent, PIN_REFS)
        pin = pins.get(ref)
        puk = pins.get(pin.puk_ref) if pin is not None and pin.puk_ref is not None else None
        p1 = pick(ent, (0, 1, 2, 3, 4))
        puk_block = _pin_block(puk, bool(ent.integer(0, 3)), ent)
        data = {0: puk_block + _new_pin(ent, pin), 1: puk_block, 2: _new_pin(ent, pin), 3: b""}.get(p1, b"")
        return CommandAPDU(0, 0x2C, p1, ref, data)
    if kind == 15:  # MANAGE CHANNEL
        p1 = pick(ent, (0x00, 0x00, 0x80, 0x80, 0x01))
        p2 = pick(ent, (0, 1, 2, 3, 4, 19))
        ne = 1 if p1 == 0 and p2 == 0 and ent.integer(0, 4) else pick(ent, (None, 1, 2))
        return CommandAPDU(0, 0x70, p1, p2, b"" if ent.integer(0, 7) else b"\x01", ne)
    if kind <= 17:  # GET RESPONSE
        return CommandAPDU(0, 0xC0, 0, pick(ent, (0, 0, 0, 1)), b"", pick(ent, (256, 1, 16, 200, None, 65536)))
    if kind == 18:  # an instruction the card does not know, or a proprietary class
        return CommandAPDU(pick(ent, (0, 0x80, 0xA0)), pick(ent, OTHER_INS), ent.integer(0, 255), ent.integer(0, 255))
    return CommandAPDU(0, ent.integer(0, 255), ent.integer(0, 255), ent.integer(0, 255), ent.blob(0, 8), _ne(ent))


def _class_byte(ent: Entropy, channel_number: int, chained: bool) -> int:
    """Interindustry class for a channel (ISO 7816-4 §5.4.1), sometimes with SM bits."""
    if channel_number < 4:
        cla = channel_number | (0x0C if ent.integer(0, 40) == 0 else 0)
    else:
        cla = 0x40 | (channel_number - 4) | (0x20 if ent.integer(0, 40) == 0 else 0)
    return cla | (0x10 if chained else 0)


def _mutate(ent: Entropy, raw: bytes) -> bytes:
    """Damage an encoded APDU the way a broken terminal or a noisy line would."""
    buf = bytearray(raw)
    kind = ent.integer(0, 7)
    if kind == 0 and buf:  # bit flip
        i = ent.integer(0, len(buf) - 1)
        buf[i] ^= 1 << ent.integer(0, 7)
    elif kind == 1 and buf:  # truncation
        del buf[ent.integer(0, len(buf) - 1) :]
    elif kind == 2:  # extra bytes
        buf += ent.blob(1, 3)
    elif kind == 3 and len(buf) > 4:  # wrong Lc / Le byte
        buf[4] = ent.integer(0, 255)
    elif kind == 4 and buf:  # random byte anywhere
        buf[ent.integer(0, len(buf) - 1)] = ent.integer(0, 255)
    elif kind == 5 and buf:  # foreign or odd class byte
        buf[0] = pick(ent, (0x80, 0x90, 0xFF, 0x0C, 0x10, 0x40, 0x7F, 0x60, ent.integer(0, 255)))
    elif kind == 6 and len(buf) > 5:  # drop a byte from the body
        del buf[ent.integer(5, len(buf) - 1)]
    elif kind == 7 and len(buf) >= 2:  # another instruction on the same body
        buf[1] = ent.integer(0, 255)
    return bytes(buf)


def generate_apdu(ent: Entropy, card: Card) -> bytes:
    """One command APDU: valid, chained, extended, mutated, or plain random bytes."""
    roll = ent.integer(0, 99)
    if roll < 4:
        return ent.blob(0, 12)
    if roll < 6:
        return ent.blob(13, 300)
    channel_number = pick(ent, (0, 0, 0, 0, 1, 2, 3, ent.integer(0, 19)))
    cmd = _command(ent, card, channel_number)
    chained = bool(cmd.data) and ent.integer(0, 11) == 0
    if cmd.cla == 0:
        cmd = cmd._replace(cla=_class_byte(ent, channel_number, chained))
    if ent.integer(0, 7) == 0:
        cmd = cmd._replace(extended=True)
    raw = cmd.encode()
    for _ in range(pick(ent, (0, 0, 0, 0, 1, 1, 2, 3))):
        raw = _mutate(ent, raw)
    return raw


# -- invariants ------------------------------------------------------------------------------


class InvariantViolation(AssertionError):
    """A response or a state change the card must never produce."""


class _ErrorRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class CardChecker:
    """Sends APDUs to a card and checks every exchange against the invariants above.

    Use as a context manager: it listens on the ``eidemu.card`` logger meanwhile.
    """

    SUCCESS_OR_WARNING = frozenset((0x90, 0x61, 0x62, 0x63))

    def __init__(self, card: Card) -> None:
        self.card = card
        self.sw_counts: Counter[int] = Counter()
        self.exchanges = 0
        self._errors = _ErrorRecorder()
        self._logger = logging.getLogger("eidemu.card")

    def __enter__(self) -> CardChecker:
        self._logger.addHandler(self._errors)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self._errors)

    def exchange(self, raw: bytes) -> bytes:
        card = self.card
        before = {ref: (pin.remaining, pin.value) for ref, pin in card.pins.items()}
        context = self._context(raw)
        response = card.transmit(raw)
        self.exchanges += 1
        try:
            sw = self._check_response(raw, response)
            self.sw_counts[sw] += 1
            self._check_counters(raw, sw, before, context)
        except InvariantViolation as exc:
            raise InvariantViolation(f"{raw.hex().upper()} -> {response.hex().upper()}: {exc}") from None
        return response

    def _context(self, raw: bytes) -> tuple[bytes, set[int]]:
        """Effective command data (a chain's earlier parts included) and authenticated keys."""
        if len(raw) < 4:
            return b"", set()
        try:
            number = ClassByte.decode(raw[0]).channel
        except CardError:
            return b"", set()
        channel = self.card.channels.get(number)
        if channel is None:
            return b"", set()
        try:
            data = CommandAPDU.parse(raw).data
        except Exception:
            data = b""
        if channel.chain is not None:
            data = bytes(channel.chain.data) + data
        return data, set(channel.security.authenticated_keys)

    def _check_response(self, raw: bytes, response: bytes) -> int:
        if not isinstance(response, bytes) or len(response) < 2:
            raise InvariantViolation("response shorter than a status word")
        sw1, sw = response[-2], int.from_bytes(response[-2:], "big")
        if not (0x61 <= sw1 <= 0x6F or sw == 0x9000):
            raise InvariantViolation(f"status word {sw:04X} outside 61xx..6Fxx/9000")
        if sw1 == 0x6F or self._errors.records:
            messages = [r.getMessage() for r in self._errors.records]
            self._errors.records.clear()
            raise InvariantViolation(f"unexpected exception in the card (6F00): {messages}")
        data_len = len(response) - 2
        if data_len:
            if sw1 not in self.SUCCESS_OR_WARNING:
                raise InvariantViolation(f"data returned with error status {sw:04X}")
            try:
                cmd = CommandAPDU.parse(raw)
            except Exception:
                raise InvariantViolation("data returned for an unparseable command") from None
            if cmd.ins != 0xC0 and data_len > (cmd.ne or 0):
                raise InvariantViolation(f"{data_len} data bytes for Ne={cmd.ne}")
        return sw

    def _check_counters(
        self, raw: bytes, sw: int, before: dict[int, tuple[int, bytes]], context: tuple[bytes, set[int]]
    ) -> None:
        fallen = []
        for ref, pin in self.card.pins.items():
            old, _ = before[ref]
            now = pin.remaining
            if now < old:
                if now != old - 1:
                    raise InvariantViolation(f"PIN {ref:02X} counter fell from {old} to {now}")
                fallen.append((ref, now))
            elif now > old and not self._rise_allowed(raw, sw, pin, before, context):
                raise InvariantViolation(f"PIN {ref:02X} counter rose from {old} to {now} without a correct VERIFY")
        if len(fallen) > 1:
            raise InvariantViolation(f"several counters fell at once: {fallen}")
        if fallen:
            _, now = fallen[0]
            expected = 0x6983 if now == 0 else 0x63C0 | min(now, 15)
            if sw != expected:
                raise InvariantViolation(f"counter fell to {now} but the card answered {sw:04X}, not {expected:04X}")
        elif sw & 0xFFF0 == 0x63C0:
            if not any(p.remaining == sw & 0x0F for p in self.card.pins.values()):
                raise InvariantViolation("63Cx does not name any real remaining count")

    def _rise_allowed(
        self, raw: bytes, sw: int, pin: Pin, before: dict[int, tuple[int, bytes]], context: tuple[bytes, set[int]]
    ) -> bool:
        """A counter may only go back to its maximum after proof of the PIN or its unblocking."""
        if sw != 0x9000 or pin.remaining != pin.max_tries or raw[0] & 0x80:
            return False
        cmd = CommandAPDU.parse(raw)
        data, auth_keys = context
        pins = self.card.pins

        def knows(ref: int, candidate: bytes) -> bool:
            target = pins[ref]
            value = before[ref][1]
            if target.pad_to:
                return candidate == value.ljust(target.pad_to, bytes((target.pad_byte,)))
            return candidate == value

        if cmd.ins == 0x20 and cmd.p1 == 0 and cmd.p2 == pin.ref:
            return knows(pin.ref, data)
        if cmd.ins == 0x24 and cmd.p1 == 0 and cmd.p2 == pin.ref:
            return knows(pin.ref, data[: pin.wire_length])
        if cmd.ins == 0x2C and cmd.p1 in (0, 1):
            target = pins.get(cmd.p2)
            if target is None or target.puk_ref is None:
                return False
            puk = pins[target.puk_ref]
            if not knows(puk.ref, data[: puk.wire_length]):
                return False
            return pin.ref in (target.ref, puk.ref)  # the unblocked PIN or the PUK just verified
        if cmd.ins == 0x2C and cmd.p1 in (2, 3) and cmd.p2 == pin.ref:
            # The profile's unblock condition for PIN 01 is auth:01 (EXTERNAL AUTHENTICATE).
            return pin.unblock.kind == "auth" and pin.unblock.ref in auth_keys
        return False


def run_random(
    count: int,
    seed: int | None = None,
    reset_every: int = 5000,
    card_factory: Callable[[], Card] = PROFILE.build,
) -> CardChecker:
    """Send ``count`` generated APDUs from a seeded PRNG; raises InvariantViolation on the first breach.

    Every ``reset_every`` APDUs the card is warm-reset, and every tenth time rebuilt, so both
    long sessions and fresh states are covered.
    """
    ent = RandomEntropy(seed)
    card = card_factory()
    checker = CardChecker(card)
    with checker:
        for i in range(count):
            if i and i % reset_every == 0:
                if (i // reset_every) % 10 == 0:
                    checker.card = card = card_factory()
                else:
                    card.reset()
            checker.exchange(generate_apdu(ent, card))
    return checker


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ_SETTINGS
@given(st.data())
def test_command_sequences_keep_the_invariants(data: st.DataObject) -> None:
    """Sequences of mutated commands on one card: well-formed answers, honest counters."""
    ent = HypothesisEntropy(data)
    card = PROFILE.build()
    with CardChecker(card) as checker:
        for _ in range(data.draw(st.integers(1, 60), label="length")):
            checker.exchange(generate_apdu(ent, card))


@FUZZ_SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_answer_a_status_word(raw: bytes) -> None:
    card = PROFILE.build()
    with CardChecker(card) as checker:
        checker.exchange(raw)
        checker.exchange(b"\x00\xa4\x00\x0c\x02\x3f\x00")  # the card still answers afterwards


def test_seeded_random_run() -> None:
    """A fixed-seed PRNG run: reproducible, and exercises the soak path of this module."""
    checker = run_random(20000, seed=2, reset_every=2500)
    assert checker.exchanges == 20000
    # The generator reaches the interesting outcomes, or this test could not fail.
    for sw in (0x9000, 0x6700, 0x6982, 0x6983, 0x6A82, 0x6D00, 0x6E00, 0x6881, 0x6883):
        assert checker.sw_counts[sw] > 0, f"{sw:04X} never produced"
    assert any(sw & 0xFF00 == 0x6100 for sw in checker.sw_counts)
    assert any(sw & 0xFFF0 == 0x63C0 for sw in checker.sw_counts)


def test_checker_catches_a_rising_counter() -> None:
    """The counter invariant itself can fail: a counter raised behind the card's back."""
    card = PROFILE.build()
    with CardChecker(card) as checker:
        checker.exchange(bytes.fromhex("0020000108303030303030FFFF"))  # wrong PIN: 63C2
        pin = card.pins[0x01]
        real_transmit = card.transmit

        def cheating_transmit(raw: bytes) -> bytes:
            pin.remaining = pin.max_tries
            return real_transmit(raw)

        card.transmit = cheating_transmit  # type: ignore[method-assign]
        with pytest.raises(InvariantViolation, match="rose"):
            checker.exchange(bytes.fromhex("00A4000C023F00"))


def test_checker_catches_an_unexpected_exception() -> None:
    card = PROFILE.build()

    def broken(cmd: CommandAPDU, channel: object) -> bytes:
        raise ZeroDivisionError

    card.default_app.handlers[0xCA] = broken  # type: ignore[assignment]
    with CardChecker(card) as checker, pytest.raises(InvariantViolation, match="6F00"):
        checker.exchange(bytes.fromhex("00CA5F5200"))


def test_regression_change_reference_data_p1_01_keeps_the_counter() -> None:
    """Found by this fuzzer: CHANGE REFERENCE DATA P1 01 on a channel that had verified the
    PIN used to reset the counter, undoing wrong tries made on another channel since."""
    card = PROFILE.build()
    with CardChecker(card) as checker:
        assert checker.exchange(bytes.fromhex("0020000108313233343536FFFF")) == b"\x90\x00"
        assert checker.exchange(bytes.fromhex("0070000001")) == b"\x01\x90\x00"
        assert checker.exchange(bytes.fromhex("0120000108303030303030FFFF")) == b"\x63\xc2"
        assert checker.exchange(bytes.fromhex("0024010108393939393939FFFF")) == b"\x90\x00"
        assert card.pins[0x01].remaining == 2
        assert checker.exchange(bytes.fromhex("0120000108303030303030FFFF")) == b"\x63\xc1"
        assert checker.exchange(bytes.fromhex("0120000108303030303030FFFF")) == b"\x69\x83"
        assert checker.exchange(bytes.fromhex("0024010108383838383838FFFF")) == b"\x69\x83"
        assert card.pins[0x01].remaining == 0


def test_regression_odd_read_binary_never_exceeds_ne() -> None:
    """Found by the soak run: READ BINARY B1 with Ne 1 or 2 answered the 2-byte-or-longer
    DO 53 wrapper (53 00 6282), more than the terminal asked for."""
    card = PROFILE.build()
    with CardChecker(card) as checker:
        checker.exchange(bytes.fromhex("00A4000C020101"))
        assert checker.exchange(bytes.fromhex("00B1000004540200C801")) == b"\x67\x00"
        assert checker.exchange(bytes.fromhex("00B1000004540200C802")) == b"\x67\x00"
        assert checker.exchange(bytes.fromhex("00B1000004540200C803")) == b"\x53\x01Z\x90\x00"
