"""``eidemu serve``: emulated cards in the slots of a virtual PC/SC reader (vpcd).

Normal mode connects each card to vpcd (the reader driver inside pcscd), slot *N* on port
*base + N*; the base is ``--vpcd HOST:PORT``, else ``$EIDEMU_VPCD`` (printed by
``eidemu pcscd start``), else ``localhost:35963`` (Debian's reader.conf for vpcd).
``--listen`` is vpcd's reverse mode: each card listens and vpcd connects to it.

While serving, lines on standard input insert and remove cards: ``remove N``,
``insert N PROFILE``, ``status``, ``quit``.

Every card sits behind the fault layer (:mod:`eidemu.emulator.faults`, docs/faults.md):
``--faults PLAN`` and ``--fault RULE`` arm a plan on each card, ``--timing real`` turns the
latency model on, and ``eidemu fault arm|clear|status --slot N`` changes plans while the
cards run, over the control socket whose path is printed at start.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import threading
import time
from typing import IO, Any

from eidemu.emulator.transport.pcscd import reader_name

from . import EXIT_OK, EXIT_USAGE, UsageError

NOT_LISTENING_HINT = (
    "is pcscd running with the vpcd reader? Install it with 'apt-get install pcscd vsmartcard-vpcd' and start "
    "pcscd (system: 'systemctl restart pcscd' or 'pcscd'; private: 'eidemu pcscd start', then use the "
    "EIDEMU_VPCD and PCSCLITE_CSOCK_NAME it prints); or pass --wait to keep trying"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve emulated cards in a virtual PC/SC reader (pcscd + vsmartcard's vpcd)",
        description="Insert emulated cards into vpcd's slots, one per --profile, so that PC/SC "
        "applications see them. Stop with Ctrl-C or SIGTERM. Standard input accepts 'remove N', "
        "'insert N PROFILE', 'status' and 'quit'.",
    )
    p.add_argument(
        "--profile",
        action="append",
        required=True,
        help="profile to emulate; repeat for more slots: beyond two, the next readers of "
        "'eidemu pcscd start --readers N' in order (slot N on port base+N)",
    )
    p.add_argument("--state", action="append", default=[], help="state file for the card of the same position")
    p.add_argument("--slot", type=int, default=0, help="slot of the first card (default 0); the next cards follow")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--vpcd", metavar="HOST:PORT", help="vpcd's address for slot 0 (default: $EIDEMU_VPCD or localhost:35963)"
    )
    mode.add_argument("--listen", metavar="HOST:PORT", help="reverse mode: listen here for vpcd (slot N on PORT+N)")
    p.add_argument("--trace", help="append a JSON-lines APDU trace (PINs masked) to this file")
    p.add_argument("--wait", action="store_true", help="keep trying when vpcd is not reachable at start")
    faults = p.add_argument_group("faults and timing (docs/faults.md)")
    faults.add_argument("--faults", metavar="PLAN", help="fault plan file (YAML or JSON) armed on every card")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="a one-line rule, e.g. 'fault=remove command=80EA02'",
    )
    faults.add_argument("--seed", type=int, help="seed for rules with a probability (with --fault)")
    faults.add_argument("--timing", choices=("off", "real"), help="latency model: off (default) or real")
    faults.add_argument("--timing-scale", type=float, default=None, help="multiply modelled delays (e.g. 0.1 in CI)")
    faults.add_argument("--control", metavar="PATH", help="fault control socket (default: printed at start)")
    p.set_defaults(handler=run)


def parse_address(text: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` of an option; a UsageError (exit 2) naming the option otherwise."""
    from eidemu.conformance.connection import parse_address as parse

    try:
        return parse(text, option)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class Server:
    """The serve command's state: cards by slot, their output lines, the shutdown flag."""

    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        from eidemu.emulator.transport.vpcd import VPCD_PORT, CardSlots

        self.out = out
        self.done = threading.Event()
        self.trace_file = open(args.trace, "a", encoding="utf-8") if args.trace else None
        self.first_result: dict[int, threading.Event] = {}
        self.failures: dict[int, str] = {}
        self.profiles: dict[int, str] = {}
        self._print_lock = threading.Lock()
        if args.listen:
            host, port = parse_address(args.listen, "--listen")
            self.listen = True
        else:
            default = os.environ.get("EIDEMU_VPCD") or f"localhost:{VPCD_PORT}"
            host, port = parse_address(args.vpcd or default, "--vpcd" if args.vpcd else "EIDEMU_VPCD")
            self.listen = False
        self.slots = CardSlots(host, port, listen=self.listen, on_event=self._on_event)
        self.plan, self.timing, self.timing_scale = _fault_settings(args)
        self.control: Any = None

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, file=self.out, flush=True)

    def _on_event(self, slot: int, kind: str, message: str) -> None:
        name = self.profiles.get(slot, "?")
        first = self.first_result.get(slot)
        if first is not None and not first.is_set():
            if kind == "waiting" and not self.listen:
                self.failures[slot] = message
            else:
                self.say(self.describe(slot, "present" if kind == "connected" else "listening"))
            first.set()
            return
        if (
            kind in ("connected", "disconnected", "peer-error", "displaced", "waiting", "withdrawn", "mute")
            and not self.done.is_set()
        ):
            self.say(f"slot {slot}: {name}: {message}")

    def describe(self, slot: int, status: str) -> str:
        endpoint = self.slots.endpoints.get(slot)
        address = getattr(endpoint, "address", "?")
        name = self.profiles.get(slot, "?")
        if self.listen:
            return f"slot {slot}: {name}: listening on {address} for vpcd (reverse mode): {status}"
        return f"slot {slot}: {name} in reader '{reader_name(slot)}' (vpcd {address}): {status}"

    def insert(
        self, slot: int, profile_name: str, state: str | None = None, connected: socket.socket | None = None
    ) -> None:
        from eidemu.emulator.faults import FaultyCard
        from eidemu.emulator.profile import load_profile

        card = FaultyCard(load_profile(profile_name).build(state), timing=self.timing, timing_scale=self.timing_scale)
        if self.plan is not None:
            card.arm(self.plan)
        if self.trace_file is not None:
            from eidemu.emulator.iso7816.trace import JsonLinesTracer

            card.tracer = JsonLinesTracer(self.trace_file, source=f"slot{slot}:{profile_name}")
        self.profiles[slot] = profile_name
        self.first_result[slot] = threading.Event()
        self.slots.insert(slot, card, name=f"slot{slot}", connected=connected)

    def remove(self, slot: int) -> None:
        self.slots.remove(slot)
        self.say(f"slot {slot}: {self.profiles.get(slot, '?')}: removed")

    def status(self) -> None:
        if not self.slots.endpoints:
            self.say("no cards inserted")
        for slot, endpoint in sorted(self.slots.endpoints.items()):
            self.say(self.describe(slot, endpoint.status))

    def command(self, line: str) -> None:
        """One line from standard input."""
        words = line.split()
        try:
            if not words:
                return
            if words[0] == "quit":
                self.done.set()
            elif words[0] == "status":
                self.status()
            elif words[0] == "remove" and len(words) == 2:
                self.remove(int(words[1]))
            elif words[0] == "insert" and len(words) in (3, 4):
                slot = int(words[1])
                self.insert(slot, words[2], words[3] if len(words) == 4 else None)
            else:
                self.say("commands: remove N | insert N PROFILE [STATE] | status | quit")
        except (ValueError, OSError) as exc:
            self.say(f"error: {exc}")

    def start_control(self, path: str | None) -> None:
        """The fault control socket (``eidemu fault``), its path printed for the user."""
        from eidemu.emulator.faults.card import FaultyCard
        from eidemu.emulator.faults.control import ControlServer

        def resolve(slot: int) -> FaultyCard | None:
            endpoint = self.slots.endpoints.get(slot)
            card = endpoint.card if endpoint is not None else None
            return card if isinstance(card, FaultyCard) else None

        self.control = ControlServer(
            resolve, self.slots.reinsert, path, slots=lambda: sorted(self.slots.endpoints)
        ).start()
        self.say(f"fault control: {self.control.path} (eidemu fault --control {self.control.path} ...)")

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
        self.slots.close()
        if self.trace_file is not None:
            self.trace_file.close()


def _fault_settings(args: argparse.Namespace) -> tuple[Any, Any, float]:
    """The plan (--faults or --fault), the latency model and its scale; UsageError when bad."""
    from eidemu.emulator.faults import CITIZEN_CARD, FaultPlan, PlanError, load_plan

    if args.faults and args.fault:
        raise UsageError("give --faults PLAN or --fault RULE, not both")
    try:
        plan = load_plan(args.faults) if args.faults else None
        if args.fault:
            plan = FaultPlan.from_lines(args.fault, seed=args.seed)
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    timing_name = args.timing or (plan.timing if plan is not None else "off")
    scale = args.timing_scale if args.timing_scale is not None else (plan.timing_scale if plan is not None else 1.0)
    if not 0.0 <= scale <= 100.0:
        raise UsageError("--timing-scale must be from 0 to 100")
    return plan, CITIZEN_CARD if timing_name == "real" else None, scale


def _read_commands(server: Server, stream: IO[str]) -> None:
    for line in stream:
        server.command(line)
        if server.done.is_set():
            return


def run(args: argparse.Namespace, out: IO[str] | None = None, stdin: IO[str] | None = None) -> int:
    if args.slot < 0:
        raise UsageError("--slot must be 0 or more")
    if len(args.state) > len(args.profile):
        raise UsageError("more --state files than --profile cards")
    resolved = [os.path.realpath(state) for state in args.state]
    for i, state in enumerate(resolved):
        if state in resolved[:i]:
            raise UsageError(f"{args.state[i]}: the same state file for two cards (one state file serves one card)")
    out = out or sys.stdout
    server = Server(args, out)
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, _frame: object) -> None:
        server.done.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        # Connect before building the cards: pcscd polls every 0.4 s, and the profile then
        # loads while vpcd's next poll is still to come (it waits for the ATR if need be).
        connected: dict[int, socket.socket] = {}
        if not server.listen:
            from eidemu.emulator.transport.vpcd import connect_to_vpcd

            for slot in range(args.slot, args.slot + len(args.profile)):
                address = f"{server.slots.host}:{server.slots.port(slot)}"
                try:
                    connected[slot] = connect_to_vpcd(server.slots.host, server.slots.port(slot))
                except OSError as exc:
                    if not args.wait:
                        for sock in connected.values():
                            sock.close()
                        reason = exc.strerror or str(exc)
                        print(
                            f"eidemu: error: vpcd is not listening on {address} ({reason}): {NOT_LISTENING_HINT}",
                            file=sys.stderr,
                        )
                        return EXIT_USAGE
        for i, profile_name in enumerate(args.profile):
            state = args.state[i] if i < len(args.state) else None
            server.insert(args.slot + i, profile_name, state, connected.pop(args.slot + i, None))
        for slot, first in list(server.first_result.items()):
            while not first.wait(0.1):
                if server.done.is_set():
                    break
            if slot in server.failures:
                server.say(f"{server.describe(slot, 'waiting for vpcd')} ({server.failures[slot]})")
        server.start_control(args.control)
        # The cards and the modules they need live as long as the process: keep them out of
        # the cyclic garbage collector's scans, which otherwise land on the APDU path.
        gc.freeze()
        threading.Thread(target=_read_commands, args=(server, stdin or sys.stdin), daemon=True).start()
        while not server.done.wait(0.2):
            pass
        server.say("stopping")
        return EXIT_OK
    finally:
        started = time.monotonic()
        server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server.done.is_set():
            server.say(f"stopped ({time.monotonic() - started:.2f} s)")
