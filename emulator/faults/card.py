"""The fault layer: one wrapper between a transport and the card OS.

:class:`FaultyCard` satisfies the transports' ``PoweredCard`` protocol
(:class:`eidemu.emulator.transport.vpcd.PoweredCard`) and forwards to the card it wraps,
applying the armed :class:`~eidemu.emulator.faults.plan.FaultPlan` and the latency model.
Neither the transport nor the card OS knows about faults: removal and muteness reach the
transport as the typed signals :class:`CardWithdrawn` and :class:`CardMute`, which vpcd's
card endpoint turns into an empty slot and an unanswered command; in-process callers see
the same exceptions.

With nothing armed, :attr:`FaultyCard.transmit` *is* the card's own bound method, so the
layer costs nothing on the APDU path.

Tearing (power lost during a command that writes) follows the guarantee of a card's
transaction mechanism: every write of the persistent state is one atomic commit (the
state file's write-and-rename, :mod:`eidemu.emulator.state`), and power loss leaves the
state of the last commit made. The layer counts the commits of the torn command and cuts
the power just before or just after the chosen one; the card's memory is then rolled to
that committed state, the card is powered down, and the next power-on shows it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..iso7816.tlv import TLVError, iter_tlv
from ..transport.vpcd import CardMute, CardWithdrawn
from .plan import FaultKind, FaultPlan, FaultRule, TearPoint
from .timing import LatencyModel, model_for

if TYPE_CHECKING:
    from ..cardos.card import Card
    from ..state import StateStore

log = logging.getLogger("eidemu.faults")

Tracer = Callable[..., None]


class PowerCut(BaseException):
    """Internal: the supply is gone at this instant; nothing after it runs on the card."""


class CommitRecorder:
    """Stands in for the card's state store during a torn command: counts the commits
    (each ``save`` is one atomic write) and cuts the power before or after the chosen one.
    ``committed`` is the last state that reached the store during the command."""

    def __init__(self, inner: StateStore | None, commit: int, point: TearPoint) -> None:
        self.inner = inner
        self.commit = commit
        self.point = point
        self.commits = 0
        self.committed: dict[str, Any] | None = None

    def save(self, state: dict[str, Any]) -> None:
        self.commits += 1
        cut_here = self.commits == self.commit
        if cut_here and self.point is TearPoint.BEFORE:
            raise PowerCut
        if self.inner is not None:
            self.inner.save(state)
        self.committed = state
        if cut_here:
            raise PowerCut

    def load(self) -> dict[str, Any] | None:
        return self.inner.load() if self.inner is not None else None


@dataclass(frozen=True)
class Tear:
    """What one injected power loss did: the command, where the power went, and how many
    commits the command had made by then."""

    command: bytes
    point: TearPoint
    commit: int
    commits_made: int
    completed: bool  # the command ran to its end (fewer commits than the cut point)


@dataclass(frozen=True)
class FaultEvent:
    """One fault injected: which rule (by index), on which APDU number, and what."""

    rule: int
    apdu: int
    kind: FaultKind
    detail: str = ""


class PersistentImage:
    """Everything a card keeps across power loss: PIN values and counters, file contents,
    and which files differ from personalisation; restored exactly by :meth:`apply`."""

    def __init__(self, card: Card) -> None:
        from ..cardos.fs import EF

        self.pins = {ref: (pin.remaining, pin.value) for ref, pin in card.pins.items()}
        self.files = {f.path: f.snapshot() for f in card.mf.walk() if isinstance(f, EF)}
        self.dirty = set(card.dirty_files)

    def apply(self, card: Card) -> None:
        from ..cardos.fs import EF

        for ref, (remaining, value) in self.pins.items():
            card.pins[ref].remaining, card.pins[ref].value = remaining, value
        for f in card.mf.walk():
            if isinstance(f, EF) and f.path in self.files:
                f.restore(self.files[f.path])
        card.dirty_files = set(self.dirty)


class FaultyCard:
    """A card behind the fault layer; give it to a transport in place of the card.

    ``arm(plan)`` replaces the plan (the APDU count and the success counts restart);
    ``clear()`` disarms. ``timing`` turns the latency model on (``scale`` multiplies its
    delays). Thread-safe: the control channel arms while the transport transmits.
    """

    def __init__(
        self,
        card: Card,
        plan: FaultPlan | None = None,
        *,
        timing: LatencyModel | None = None,
        timing_scale: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.card = card
        self.sleep = sleep
        self.events: list[FaultEvent] = []
        self.tears: list[Tear] = []
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._timing: LatencyModel | None = timing
        self._scale = timing_scale
        self._tracer: Tracer | None = None
        self._rng = random.Random()
        self._apdus = 0
        self._fired: list[int] = []
        self._successes: list[int] = []
        self._counting = False  # some rule counts successes ("after")
        self._update_path()
        if plan is not None:
            self.arm(plan)

    # -- the PoweredCard protocol ------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @atr.setter
    def atr(self, atr: bytes) -> None:
        self.card.atr = atr

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> bytes:
        return self.card.reset()

    def transmit(self, raw: bytes) -> bytes:  # replaced per instance by _update_path
        return self._faulty_transmit(raw)

    # -- arming ------------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan | None:
        return self._plan

    @property
    def timing(self) -> LatencyModel | None:
        return self._timing

    def arm(self, plan: FaultPlan) -> None:
        """Arm ``plan`` (replacing any other); its timing setting applies if it names one."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self._apdus = 0
            self._fired = [0] * len(plan.rules)
            self._successes = [0] * len(plan.rules)
            self._counting = any(rule.after for rule in plan.rules)
            if plan.timing == "real":
                self._timing, self._scale = model_for(self.card.atr), plan.timing_scale
            self._update_path()

    def clear(self) -> None:
        """Disarm every rule (the timing model stays as set at construction)."""
        with self._lock:
            self._plan = None
            self._update_path()

    def set_timing(self, model: LatencyModel | None, scale: float = 1.0) -> None:
        with self._lock:
            self._timing, self._scale = model, scale
            self._update_path()

    @property
    def tracer(self) -> Tracer | None:
        """Called ``tracer(command, response, start, duration=..., modelled=...)`` after each
        APDU: ``duration`` the seconds the reader waited, ``modelled`` the unscaled model time."""
        return self._tracer

    @tracer.setter
    def tracer(self, tracer: Tracer | None) -> None:
        with self._lock:
            self._tracer = tracer
            self._update_path()

    def status(self) -> dict[str, Any]:
        plan = self._plan
        return {
            "armed": plan is not None,
            "rules": [r.line() for r in plan.rules] if plan else [],
            "fired": list(self._fired),
            "apdus": self._apdus,
            "timing": self._timing.name if self._timing else "off",
            "timing_scale": self._scale,
            "events": len(self.events),
        }

    def _update_path(self) -> None:
        if self._plan is None and self._timing is None and self._tracer is None:
            # Nothing to do: the transport calls the card's own method, at no cost.
            self.transmit = self.card.transmit  # type: ignore[method-assign]
        else:
            self.__dict__.pop("transmit", None)

    # -- the faulty path ---------------------------------------------------------------

    def _faulty_transmit(self, raw: bytes) -> bytes:
        timing, tracer = self._timing, self._tracer
        if timing is not None or tracer is not None:
            start, started = time.time(), time.monotonic()
        with self._lock:
            plan = self._plan
            rule_index = self._select(raw, plan) if plan is not None else None
        rule = plan.rules[rule_index] if plan is not None and rule_index is not None else None
        response = self._apply(rule, rule_index, raw)  # CardWithdrawn and CardMute pass up
        if plan is not None and self._counting:
            self._count_success(plan, raw, response)
        modelled = None
        if timing is not None:
            modelled = timing.seconds(self.card.atr, raw, response, self._rng)
            remaining = modelled * self._scale - (time.monotonic() - started)
            if remaining > 0:
                self.sleep(remaining)
        if tracer is not None:
            tracer(raw, response, start, duration=time.monotonic() - started, modelled=modelled)
        return response

    def _select(self, raw: bytes, plan: FaultPlan) -> int | None:
        """The index of the first rule that fires on this command (and count its firing)."""
        self._apdus += 1
        for i, rule in enumerate(plan.rules):
            if rule.times and self._fired[i] >= rule.times:
                continue
            if rule.apdu is not None and rule.apdu != self._apdus:
                continue
            if rule.command is not None and not rule.command.matches(raw):
                continue
            if rule.after and self._successes[i] < rule.after:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            self._fired[i] += 1
            return i
        return None

    def _count_success(self, plan: FaultPlan, raw: bytes, response: bytes) -> None:
        ok = len(response) >= 2 and (response[-2] == 0x61 or response[-2:] == b"\x90\x00")
        if not ok:
            return
        with self._lock:
            if self._plan is not plan:
                return
            for i, rule in enumerate(plan.rules):
                counted = rule.after_command or rule.command
                if rule.after and counted is not None and counted.matches(raw):
                    self._successes[i] += 1

    def _apply(self, rule: FaultRule | None, index: int | None, raw: bytes) -> bytes:
        if rule is None or index is None:
            return self.card.transmit(raw)
        kind = rule.fault
        self._record(index, kind, rule)
        if kind is FaultKind.STATUS:
            return rule.sw.to_bytes(2, "big")
        if kind is FaultKind.DELAY:
            self.sleep(rule.seconds)
            return self.card.transmit(raw)
        if kind is FaultKind.CORRUPT:
            return corrupt_response(self.card.transmit(raw), rule.target, rule.offset, rule.xor)
        if kind is FaultKind.MUTE:
            self.card.power_off()
            raise CardMute(rule.timeout)
        if kind is FaultKind.REMOVE:
            self.card.power_off()
            raise CardWithdrawn(rule.reinsert_after)
        self.tear(raw, rule.point, rule.commit)
        raise CardWithdrawn(rule.reinsert_after)

    def _record(self, index: int, kind: FaultKind, rule: FaultRule) -> None:
        event = FaultEvent(index, self._apdus, kind, rule.line())
        self.events.append(event)
        log.info("fault injected on APDU %d: %s", self._apdus, event.detail)

    # -- tearing -----------------------------------------------------------------------

    def tear(self, raw: bytes, point: TearPoint, commit: int = 1, max_commits: int = 2) -> Tear:
        """Run ``raw`` on the card and cut the power at the given commit point; the card is
        left powered down with its memory at the last committed state. ``point`` random
        picks before/after and a commit from 1..``max_commits`` with the plan's generator."""
        card = self.card
        if point is TearPoint.RANDOM:
            point = TearPoint.BEFORE if self._rng.random() < 0.5 else TearPoint.AFTER
            commit = self._rng.randint(1, max_commits)
        image = PersistentImage(card)
        original = card.store
        recorder = CommitRecorder(original, commit, point)
        card.store = cast("StateStore", recorder)
        completed = False
        try:
            card.transmit(raw)
            completed = True  # fewer commits than the cut point: power lost after the command
        except PowerCut:
            pass
        finally:
            card.store = original
        image.apply(card)  # roll back whatever the command changed in memory ...
        if recorder.committed is not None:
            card.restore(recorder.committed)  # ... then forward to the last commit
        card.power_off()
        tear = Tear(bytes(raw), point, commit, recorder.commits, completed)
        self.tears.append(tear)
        return tear


def corrupt_response(response: bytes, target: str, offset: int, xor: int) -> bytes:
    """``response`` with one byte XORed: of the data field at ``offset`` (negative from
    its end), or of the secure-messaging MAC (the value of DO '8E', ISO/IEC 7816-4 §10.2)
    at ``offset``. A response without such a byte is returned unchanged."""
    data, sw = bytearray(response[:-2]), response[-2:]
    if target == "mac":
        start = length = None
        try:
            position = 0
            for tlv in iter_tlv(bytes(data)):
                encoded = tlv.encode()
                if tlv.tag == 0x8E:
                    start, length = position + len(encoded) - len(tlv.value), len(tlv.value)
                position += len(encoded)
        except (TLVError, ValueError):
            return response
        if start is None or not length:
            return response
        index = start + (offset % length)
    else:
        if not data or not -len(data) <= offset < len(data):
            return response
        index = offset % len(data)
    data[index] ^= xor
    return bytes(data) + sw
