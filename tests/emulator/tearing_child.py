"""Child side of the tearing test (``test_tearing.py``): a card process to be killed.

Run as ``python3 tearing_child.py PROFILE STATE_FILE``. It is a small fork server, so
that each of the hundreds of kills does not pay for Python start-up and imports: it loads
the profile once, prints ``Z``, then for every ``go SEQ SEED`` line on stdin forks a
worker and, once the worker has died, prints ``X PID STATUS``.

A worker builds the card from the state file (as a restarted card process would), prints
``R PID PIN_TRIES PUK_TRIES``, selects DF.DEMO and loops forever over:

* ``W``: VERIFY PIN 01 with a wrong value (only while two or more tries remain),
* ``V``: VERIFY PIN 01 with the right value,
* ``N``: UPDATE BINARY of EF.NOTES (SFI 03, access always) with new content,
* ``P``: UPDATE BINARY of EF.PRIVATE (SFI 02, after PIN 01) with new content,
* ``U``: RESET RETRY COUNTER of PIN 01 with the PUK, whenever the PIN is blocked (a kill
  during a right VERIFY on the last try may leave it blocked, as on a real card).

Each operation is announced before it starts (``B SEQ OP``) and confirmed after the card
answered (``E SEQ SW``); ``C SEQ`` reports the moment the card compares a PIN
(``hmac.compare_digest``), so that the parent can tell whether the outcome of an
interrupted VERIFY was already known to the card. Every line is a single ``write`` to a
pipe, shorter than ``PIPE_BUF``, so lines never interleave or tear.
"""

from __future__ import annotations

import hmac
import os
import random
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eidemu.emulator.cardos.card import Card  # noqa: E402
from eidemu.emulator.profile import Profile, load_profile  # noqa: E402

SELECT_DEMO = bytes.fromhex("00A4040C07A0000002471001")
RIGHT_PIN = b"123456".ljust(8, b"\xff")
WRONG_PIN = b"000000".ljust(8, b"\xff")
PUK = b"87654321"
NOTES_SFI, NOTES_SIZE = 0x03, 64
PRIVATE_SFI, PRIVATE_SIZE = 0x02, 26


def content(op: str, seq: int, size: int) -> bytes:
    """The recognisable content written by update number ``seq``."""
    stamp = f"<{op}{seq:09d}>".encode()
    return (stamp * (size // len(stamp) + 1))[:size]


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def serve_card(profile: Profile, state_file: str, first_seq: int, seed: int) -> None:
    """The worker: never returns."""
    current = [first_seq]
    real_compare = hmac.compare_digest

    def reporting_compare(a: bytes, b: bytes) -> bool:  # type: ignore[type-arg]
        result = real_compare(a, b)
        say(f"C {current[0]}")
        return result

    hmac.compare_digest = reporting_compare  # type: ignore[assignment]
    card: Card = profile.build(state_file)
    pin = card.pins[0x01]
    say(f"R {os.getpid()} {pin.remaining} {card.pins[0x02].remaining}")
    if card.transmit(SELECT_DEMO) != b"\x90\x00":
        raise RuntimeError("cannot select DF.DEMO")
    rng = random.Random(seed)
    verified = False
    seq = first_seq
    while True:
        op = rng.choice("WVNP")
        if op == "W" and pin.remaining < 2:
            op = "V"
        if op == "P" and not verified:
            op = "V"
        if pin.blocked:
            op = "U"
        current[0] = seq
        say(f"B {seq} {op}")
        if op == "W":
            apdu = b"\x00\x20\x00\x01\x08" + WRONG_PIN
        elif op == "V":
            apdu = b"\x00\x20\x00\x01\x08" + RIGHT_PIN
        elif op == "U":
            apdu = b"\x00\x2c\x01\x01\x08" + PUK
        elif op == "N":
            apdu = bytes((0x00, 0xD6, 0x80 | NOTES_SFI, 0x00, NOTES_SIZE)) + content(op, seq, NOTES_SIZE)
        else:
            apdu = bytes((0x00, 0xD6, 0x80 | PRIVATE_SFI, 0x00, PRIVATE_SIZE)) + content(op, seq, PRIVATE_SIZE)
        response = card.transmit(apdu)
        say(f"E {seq} {response.hex().upper()}")
        if op == "V":
            verified = response == b"\x90\x00"
        elif op in "WU":
            verified = False
        seq += 1


def main(argv: list[str]) -> int:
    profile_name, state_file = argv
    profile = load_profile(profile_name)
    say("Z")
    for line in sys.stdin.buffer:
        words = line.split()
        if not words or words[0] != b"go":
            break
        first_seq, seed = int(words[1]), int(words[2])
        pid = os.fork()
        if pid == 0:
            try:
                serve_card(profile, state_file, first_seq, seed)
            except BaseException:
                say("F " + traceback.format_exc().replace("\n", " | "))
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        say(f"X {pid} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
