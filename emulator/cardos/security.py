"""Access conditions, PIN objects and the per-channel security state.

ISO/IEC 7816-4:2020 §9 (security architecture: security status, security attributes) and
§11.5 (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, GET CHALLENGE); retry counters
answered with the status words ``63Cx`` and ``6983`` of §5.6.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ..iso7816.sw import SW, CardError, verify_failed


class AccessOperation(StrEnum):
    """An operation an access rule governs, by the name profiles give it."""

    READ = "read"
    UPDATE = "update"


class ConditionKind(StrEnum):
    """What an access condition asks for, by the name profiles give it."""

    ALWAYS = "always"
    NEVER = "never"
    PIN = "pin"  # after VERIFY of the PIN with the condition's reference
    AUTH = "auth"  # after authentication with the key of the condition's reference
    TA = "ta"  # the terminal's effective CHAT grants the right bit of the reference (BSI TR-03110-3 §C.4)


# Bound once: an attribute look-up on an Enum class costs a few hundred nanoseconds in
# Python 3.11, and access checks run on most commands.
_ALWAYS_KIND, _PIN_KIND, _AUTH_KIND = ConditionKind.ALWAYS, ConditionKind.PIN, ConditionKind.AUTH
_TA_KIND = ConditionKind.TA


@dataclass(frozen=True)
class AccessCondition:
    """When an operation on an object is allowed (ISO/IEC 7816-4:2020 §9).

    ``kind`` says what is needed; ``ref`` is the PIN or key reference of ``pin`` and
    ``auth`` conditions (EXTERNAL AUTHENTICATE or a secure channel for ``auth``).
    ``alternatives`` holds further conditions, any one of which suffices; ``requires``
    conditions that must hold together with this one (``&``). ``ta`` conditions name a
    right of an authentication terminal's CHAT: ``ta:DG3`` (read DG3, bit 10 of BSI
    TR-03110-3 Table C.4) or the bit number in hex (``ta:05``, PIN management).
    """

    kind: ConditionKind
    ref: int = 0
    alternatives: tuple[AccessCondition, ...] = ()
    requires: tuple[AccessCondition, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AccessCondition:
        """``always``, ``never``, ``pin:01``, ``auth:02``, ``ta:DG3`` (hex references), all of
        several joined by ``&``, any of several joined by ``|`` (``&`` binds tighter)."""
        conds = [cls._parse_all(p) for p in str(text).split("|")]
        first = conds[0]
        return first if len(conds) == 1 else cls(first.kind, first.ref, tuple(conds[1:]), first.requires)

    @classmethod
    def _parse_all(cls, text: str) -> AccessCondition:
        first, *rest = (cls._parse_one(p.strip()) for p in text.split("&"))
        return cls(first.kind, first.ref, (), tuple(rest)) if rest else first

    @classmethod
    def _parse_one(cls, text: str) -> AccessCondition:
        name, _, ref = text.partition(":")
        try:
            kind = ConditionKind(name.strip().lower())
        except ValueError:
            kind = None
        if kind in (ConditionKind.ALWAYS, ConditionKind.NEVER) and not ref:
            return cls(kind)
        if kind in (ConditionKind.PIN, ConditionKind.AUTH) and ref:
            try:
                value = int(ref, 16)
            except ValueError:
                raise ValueError(f"bad reference in access condition {text!r}") from None
            return cls(kind, value)
        if kind is ConditionKind.TA and ref:
            name = ref.strip().upper()
            if name.startswith("DG") and name[2:].isdigit() and 1 <= int(name[2:]) <= 21:
                return cls(kind, 7 + int(name[2:]))  # read DGn is bit 7 + n (TR-03110-3 Table C.4)
            try:
                value = int(ref, 16)
            except ValueError:
                raise ValueError(f"bad right in access condition {text!r} (DG1..DG21 or a hex bit)") from None
            return cls(kind, value)
        raise ValueError(
            f"unknown access condition {text!r} (expected always, never, pin:<ref>, auth:<ref>, ta:<right>)"
        )

    def __str__(self) -> str:
        own = self.kind.value if self._without_reference() else f"{self.kind}:{self.ref:02X}"
        own = "&".join([own, *(str(r) for r in self.requires)])
        return "|".join([own, *(str(a) for a in self.alternatives)])

    def _without_reference(self) -> bool:
        return self.kind in (ConditionKind.ALWAYS, ConditionKind.NEVER)

    def satisfied_by(self, state: SecurityState) -> bool:
        if self._one(state):
            return True
        return any(a._one(state) for a in self.alternatives)

    def _one(self, state: SecurityState) -> bool:
        if self.requires and not all(r._one(state) for r in self.requires):
            return False
        kind = self.kind
        if kind is _ALWAYS_KIND:
            return True
        if kind is _PIN_KIND:
            return self.ref in state.verified_pins
        if kind is _AUTH_KIND:
            return self.ref in state.authenticated_keys
        if kind is _TA_KIND:
            return bool(state.terminal_rights >> self.ref & 1)
        return False


ALWAYS = AccessCondition(ConditionKind.ALWAYS)
NEVER = AccessCondition(ConditionKind.NEVER)


@dataclass
class SecurityState:
    """Volatile security status of one logical channel (ISO/IEC 7816-4:2020 §5.4.2, §9)."""

    verified_pins: set[int] = field(default_factory=set)
    authenticated_keys: set[int] = field(default_factory=set)
    challenge: bytes = b""
    terminal_rights: int = 0
    """The effective CHAT rights after Terminal Authentication (BSI TR-03110-3 §C.4), 0 without."""

    def clear_local(self) -> None:
        """On application change: specific (local) references, b8 = 1, lose their status."""
        self.verified_pins = {p for p in self.verified_pins if not p & 0x80}
        self.authenticated_keys = {k for k in self.authenticated_keys if not k & 0x80}
        self.challenge = b""


@dataclass(repr=False)
class Pin:
    """A PIN (or PUK) object: reference data with a persistent retry counter.

    ``pad_to``/``pad_byte`` describe how the reference data is formatted on the wire
    (for example padded with FF to 8 bytes); ``min_length``/``max_length`` apply to the
    unpadded value. ``unblock`` says what allows RESET RETRY COUNTER without a PUK in
    the command data (ISO/IEC 7816-4:2020 §11.5, RESET RETRY COUNTER P1 = 02/03);
    ``change`` what allows CHANGE REFERENCE DATA with the new value only (P1 = 01) without
    a prior VERIFY, as a terminal with the PIN-management right may (BSI TR-03110-3 Table C.4, bit 5).
    The value never appears in a repr, and so in no log line or error message.
    """

    ref: int
    value: bytes = field(repr=False)
    max_tries: int = 3
    remaining: int = -1
    name: str = ""
    min_length: int = 4
    max_length: int = 8
    pad_to: int = 0
    pad_byte: int = 0xFF
    puk_ref: int | None = None
    unblock: AccessCondition = NEVER
    change: AccessCondition = NEVER

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.max_tries

    def __repr__(self) -> str:
        return (
            f"Pin(ref={self.ref:#04x}, name={self.name!r}, remaining={self.remaining}/{self.max_tries}, "
            "value=<redacted>)"
        )

    @property
    def blocked(self) -> bool:
        return self.remaining <= 0

    def format_value(self, raw: bytes) -> bytes:
        """Check the length rules of a new value and return its stored (unpadded) form."""
        value = self.strip_padding(raw)
        if not self.min_length <= len(value) <= self.max_length:
            raise CardError(
                SW.INCORRECT_PARAMETERS_IN_DATA_FIELD,
                f"new reference data must be {self.min_length}..{self.max_length} characters",
            )
        return value

    def strip_padding(self, raw: bytes) -> bytes:
        if self.pad_to:
            if len(raw) != self.pad_to:
                raise CardError(SW.WRONG_LENGTH, f"PIN block must be {self.pad_to} bytes")
            return raw.rstrip(bytes((self.pad_byte,)))
        return raw

    @property
    def wire_length(self) -> int:
        """Length of one value in command data, for splitting old||new."""
        return self.pad_to or len(self.value)

    def check(self, candidate: bytes, persist: Callable[[], None]) -> None:
        """Compare ``candidate`` (wire form) with the reference data.

        The retry counter is decremented and persisted *before* the comparison, so that
        cutting power during the check can never yield a free try; it is restored and
        persisted again on success. Comparison is constant-time. Raises 63Cx / 6983.
        """
        if self.blocked:
            raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED, "PIN blocked")
        try:
            value = self.strip_padding(candidate)
        except CardError:
            value = None
        self.remaining -= 1
        persist()
        if value is not None and hmac.compare_digest(value, self.value):
            self.remaining = self.max_tries
            persist()
            return
        if self.remaining <= 0:
            raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED, "PIN now blocked")
        raise verify_failed(self.remaining)

    def status_error(self) -> CardError:
        """VERIFY with no data: 63Cx with the tries left, or 6983 (ISO/IEC 7816-4:2020 §11.5)."""
        if self.blocked:
            return CardError(SW.AUTHENTICATION_METHOD_BLOCKED)
        return verify_failed(self.remaining)
