"""The user at the keyboard, for headless runs: PIN entry, cancel, timeout, site approval.

None of the vendor's services has this: it stands in for the dialogs a person answers. A
script is a list of steps consumed one per question:

* ``pin:DIGITS``  - the user types this PIN when a request carries none;
* ``cancel``      - the user presses Cancel (``0x76000999``);
* ``timeout``     - the user does not answer (``0x7600000D`` after ``prompt_timeout`` seconds);
* ``approve`` / ``deny`` - the answer to an ``/addDomain`` question.

With no step left: a missing PIN is ``0x76000998`` (no PIN given); an ``/addDomain``
question is approved when ``auto_approve`` is set, else shown to the person in the popup.
Steps are never logged: a ``pin:`` step holds a PIN.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from .errors import HipkiError, RetCode

STEP_KINDS = ("pin", "cancel", "timeout", "approve", "deny")


@dataclass(frozen=True)
class Step:
    kind: str
    pin: str = ""

    def __repr__(self) -> str:  # a PIN never appears in a repr
        return f"Step({self.kind!r})"

    @classmethod
    def parse(cls, text: str) -> Step:
        kind, sep, value = text.strip().partition(":")
        if kind not in STEP_KINDS or (kind == "pin") != bool(sep):
            raise ValueError(f"user step {kind!r}: expected pin:DIGITS, cancel, timeout, approve or deny")
        if kind == "pin" and not (value.isascii() and value.isdigit()):
            raise ValueError("user step pin: the PIN is digits")
        return cls(kind, value)


class ScriptedUser:
    """Answers the service's questions from a script of :class:`Step`."""

    def __init__(self, steps: list[Step] | None = None, auto_approve: bool = False, prompt_timeout: float = 1.0):
        self._steps: deque[Step] = deque(steps or [])
        self._lock = threading.Lock()
        self.auto_approve = auto_approve
        self.prompt_timeout = prompt_timeout

    def push(self, steps: list[Step]) -> None:
        with self._lock:
            self._steps.extend(steps)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._steps)

    def _next(self, kinds: tuple[str, ...]) -> Step | None:
        with self._lock:
            if self._steps and self._steps[0].kind in kinds:
                return self._steps.popleft()
            return None

    async def ask_pin(self) -> str:
        """The PIN the user types, or the error their answer means."""
        step = self._next(("pin", "cancel", "timeout"))
        if step is None:
            raise HipkiError(RetCode.NO_PIN, "no PIN given and nobody to ask for one")
        if step.kind == "cancel":
            raise HipkiError(RetCode.CANCELLED, "the user cancelled the PIN entry")
        if step.kind == "timeout":
            await asyncio.sleep(self.prompt_timeout)
            raise HipkiError(RetCode.EXECUTION_ERROR, "the user did not enter the PIN in time")
        return step.pin

    def decide_site(self) -> bool | None:
        """True/False from the script (or auto-approve), None when a person must answer."""
        step = self._next(("approve", "deny", "cancel"))
        if step is not None:
            return step.kind == "approve"
        return True if self.auto_approve else None


__all__ = ["STEP_KINDS", "ScriptedUser", "Step"]
