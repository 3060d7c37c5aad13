"""Fault injection for relying-party tests: a connection to an emulated card behind the
fault layer, the pytest fixture ``faulty_card``, and fault arming for the in-process
``emulator:`` connections (what the script runner's ``fault`` steps reach through
:class:`~eidemu.conformance.connection.FaultControl`).

This module sits above both halves (it builds emulated cards for the tester), beside
:mod:`eidemu.cards`; the tester itself only knows the FaultControl protocol.

In a pytest suite (the plugin is registered through the ``pytest11`` entry point)::

    def test_signing_while_the_card_is_pulled_out(faulty_card):
        card = faulty_card("moica-g2-valid-1")
        card.arm("fault=remove command=80EA02")
        client = MoicaCard(card)
        client.verify_pin(PIN)
        with pytest.raises(CardConnectionError, match="card removed"):
            client.sign_sha256(5, digest)

A removed or mute card raises :class:`~eidemu.conformance.connection.CardConnectionError`
from ``transmit``, as a lost PC/SC link does; ``reinsert()`` brings the card back
(powered down, as a card put back in the reader). See docs/faults.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eidemu.conformance.connection import CardConnectionError
from eidemu.emulator.faults import FaultPlan, FaultyCard, load_plan
from eidemu.emulator.transport.vpcd import CardMute, CardWithdrawn


def plan_of(plan: FaultPlan | str) -> FaultPlan:
    """A plan as given, or one-line rules separated by ``;`` (docs/faults.md)."""
    if isinstance(plan, FaultPlan):
        return plan
    return FaultPlan.from_lines([r for r in plan.split(";") if r.strip()], source="fault arm")


class FaultArming:
    """Fault arming for an in-process connection (its ``card`` attribute): the first plan
    puts the card behind :class:`FaultyCard`; until then the card runs bare. Makes the
    connection a :class:`~eidemu.conformance.connection.FaultControl`."""

    card: Any

    def arm(self, plan: FaultPlan | str) -> None:
        if not isinstance(self.card, FaultyCard):
            self.card = FaultyCard(self.card)
        self.card.arm(plan_of(plan))

    def clear(self) -> None:
        if isinstance(self.card, FaultyCard):
            self.card.clear()


class FaultyConnection:
    """An in-process connection to a card behind :class:`FaultyCard` (a CardConnection
    and a FaultControl). Removal and muteness become CardConnectionError; a removed card
    stays out until :meth:`reinsert`, or until its rule's ``reinsert_after`` has passed."""

    def __init__(self, card: FaultyCard, description: str = "emulator (faults)") -> None:
        self.faulty = card
        self.description = description
        self._back_at: float | None = None  # monotonic time of re-insertion; inf: never
        if not card.card.powered:
            card.power_on()

    @property
    def atr(self) -> bytes:
        return self.faulty.atr

    def arm(self, plan: FaultPlan | str) -> None:
        """A plan, or one-line rules separated by ``;``."""
        self.faulty.arm(plan_of(plan))

    def clear(self) -> None:
        self.faulty.clear()
        self.reinsert()

    def reinsert(self) -> None:
        self._back_at = None

    @property
    def absent(self) -> bool:
        if self._back_at is not None and time.monotonic() >= self._back_at:
            self._back_at = None
        return self._back_at is not None

    def transmit(self, command: bytes) -> bytes:
        if self.absent:
            raise CardConnectionError("transmit: card removed from the reader")
        try:
            return self.faulty.transmit(command)
        except CardWithdrawn as exc:
            wait = float("inf") if exc.reinsert_after is None else exc.reinsert_after
            self._back_at = time.monotonic() + wait
            raise CardConnectionError(f"transmit: {exc}") from None
        except CardMute as exc:
            raise CardConnectionError(f"transmit: {exc}") from None

    def reset(self) -> bytes:
        if self.absent:
            raise CardConnectionError("reset: card removed from the reader")
        return self.faulty.reset()

    def close(self) -> None:
        self.faulty.power_off()


def _faulty_card(tmp_path: Path) -> Iterator[Callable[..., FaultyConnection]]:
    """Factory: ``faulty_card(profile="iso-demo", plan=None, state=True)`` builds a fresh
    emulated card (with a state file under tmp_path unless ``state=False``) behind the
    fault layer and returns its :class:`FaultyConnection`; ``plan`` is a FaultPlan, a plan
    file path, or one-line rules separated by ``;``."""
    from eidemu.emulator.profile import load_profile

    opened: list[FaultyConnection] = []

    def make(
        profile: str = "iso-demo", plan: FaultPlan | str | Path | None = None, state: bool = True
    ) -> FaultyConnection:
        state_file = tmp_path / f"state-{len(opened)}.json" if state else None
        connection = FaultyConnection(
            FaultyCard(load_profile(profile).build(state_file)), f"emulator:{profile} (faults)"
        )
        if isinstance(plan, Path):
            plan = load_plan(plan)
        if plan is not None:
            connection.arm(plan)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


try:  # the fixture exists where pytest does; the rest of this module needs no pytest
    import pytest
except ImportError:  # pragma: no cover - a wheel-only install without the test extra
    pass
else:
    faulty_card = pytest.fixture(name="faulty_card")(_faulty_card)
