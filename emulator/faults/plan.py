"""Declarative fault plans: rules saying when the emulated card misbehaves, and how.

A plan is a YAML (or JSON) document, or the same rules written one per line as
``key=value`` words (CLI flags, the control channel, ``fault arm`` script steps)::

    eidemu_faults: 1
    seed: 7                       # for rules with a probability
    timing: real                  # optional: the latency model (see timing.py)
    timing_scale: 0.1             # optional: model time x 0.1, for fast CI runs
    rules:
      - fault: remove             # card pulled out during the signature
        command: 80EA02           # CLA INS [P1 [P2]] in hex; 'xx' matches any byte
        reinsert_after: 2.0
      - fault: status
        sw: 6581
        apdu: 3                   # the third APDU since the plan was armed
      - fault: tear               # power lost during VERIFY, after its first commit
        command: xx20
        point: after
        commit: 1

The one-line form of the first rule is ``fault=remove command=80EA02 reinsert_after=2``.

When a rule fires (ISO/IEC 7816-3 and -4 behaviour each kind models):

* ``apdu: N`` -- on the N-th command APDU since the plan was armed (1-based);
* ``command: PATTERN`` -- on commands whose header starts with these bytes;
* ``after: K`` with ``after_command: PATTERN`` (default: ``command``) -- only once K
  responses to matching commands answered ``9000`` or ``61xx`` ("after K successful
  signatures");
* ``probability: p`` -- then with probability p (the plan's ``seed`` makes runs repeat);
* ``times: n`` -- fire at most n times (default 1; 0 means every time).

Fault kinds: ``status`` (answer ``sw`` without processing), ``remove`` (the card leaves the
reader; back after ``reinsert_after`` seconds, or when cleared), ``mute`` (no answer; the
reader gives up after ``timeout`` seconds), ``tear`` (power lost during the command at a
commit point, then as ``remove``), ``corrupt`` (flip bits of one response byte, in the
data or in the secure-messaging MAC), ``delay`` (answer ``seconds`` later).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum, unique
from pathlib import Path
from typing import Any

import yaml

PLAN_VERSION = 1


class PlanError(ValueError):
    """A plan that cannot be used; the message is one line naming the place."""


@unique
class FaultKind(StrEnum):
    STATUS = "status"
    REMOVE = "remove"
    MUTE = "mute"
    TEAR = "tear"
    CORRUPT = "corrupt"
    DELAY = "delay"


@unique
class TearPoint(StrEnum):
    """Where power is lost relative to a commit (an atomic write of the persistent state)."""

    BEFORE = "before"  # the commit never happened: the state is as before it
    AFTER = "after"  # the commit happened; the response never left the card
    RANDOM = "random"  # before or after a commit chosen by the plan's random generator


@dataclass(frozen=True)
class HeaderPattern:
    """``CLA INS [P1 [P2]]`` with ``None`` for a wildcard byte (``xx``)."""

    bytes_: tuple[int | None, ...]
    _mask: int = field(default=0, init=False, repr=False, compare=False)
    _want: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One integer comparison per command: the header bytes masked where not wildcards.
        mask = want = 0
        for b in self.bytes_:
            mask = mask << 8 | (0 if b is None else 0xFF)
            want = want << 8 | (b or 0)
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "_want", want)

    @classmethod
    def parse(cls, text: str) -> HeaderPattern:
        compact = "".join(str(text).split())
        if len(compact) % 2 or not 4 <= len(compact) <= 8:
            raise ValueError(f"command pattern {text!r} must be CLA INS [P1 [P2]] in hex, 'xx' for any byte")
        values: list[int | None] = []
        for i in range(0, len(compact), 2):
            pair = compact[i : i + 2]
            if pair.lower() == "xx":
                values.append(None)
                continue
            try:
                values.append(int(pair, 16))
            except ValueError:
                raise ValueError(f"command pattern {text!r}: {pair!r} is not a hex byte or 'xx'") from None
        return cls(tuple(values))

    def matches(self, command: bytes) -> bool:
        n = len(self.bytes_)
        return len(command) >= n and int.from_bytes(command[:n], "big") & self._mask == self._want

    def encode(self) -> str:
        return "".join("xx" if b is None else f"{b:02X}" for b in self.bytes_)


_KIND_KEYS: dict[FaultKind, frozenset[str]] = {
    FaultKind.STATUS: frozenset({"sw"}),
    FaultKind.REMOVE: frozenset({"reinsert_after"}),
    FaultKind.MUTE: frozenset({"timeout"}),
    FaultKind.TEAR: frozenset({"point", "commit", "reinsert_after"}),
    FaultKind.CORRUPT: frozenset({"target", "offset", "xor"}),
    FaultKind.DELAY: frozenset({"seconds"}),
}
_TRIGGER_KEYS = frozenset({"name", "fault", "apdu", "command", "after", "after_command", "probability", "times"})
_ALL_RULE_KEYS = _TRIGGER_KEYS.union(*_KIND_KEYS.values())


@dataclass(frozen=True)
class FaultRule:
    """One rule: a trigger (all given conditions must hold) and the fault it injects."""

    fault: FaultKind
    name: str = ""
    apdu: int | None = None
    command: HeaderPattern | None = None
    after: int = 0
    after_command: HeaderPattern | None = None
    probability: float = 1.0
    times: int = 1
    sw: int = 0x6F00
    reinsert_after: float | None = None
    timeout: float = 5.0
    point: TearPoint = TearPoint.AFTER
    commit: int = 1
    target: str = "data"
    offset: int = 0
    xor: int = 0xFF
    seconds: float = 0.0

    @classmethod
    def parse(cls, doc: Mapping[str, Any], where: str = "rule") -> FaultRule:
        """A rule from a mapping (a YAML rule, or the ``key=value`` words of one line)."""
        if not isinstance(doc, Mapping):
            raise PlanError(f"{where}: a rule is a mapping of key: value")
        unknown = sorted(set(doc) - _ALL_RULE_KEYS)
        if unknown:
            raise PlanError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(_ALL_RULE_KEYS))})")
        if "fault" not in doc:
            raise PlanError(f"{where}: 'fault' is required ({', '.join(k.value for k in FaultKind)})")
        try:
            kind = FaultKind(str(doc["fault"]).lower())
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise PlanError(f"{where}.fault: unknown fault {doc['fault']!r} (one of {kinds})") from None
        foreign = sorted(set(doc) - _TRIGGER_KEYS - _KIND_KEYS[kind])
        if foreign:
            raise PlanError(f"{where}.{foreign[0]}: not a setting of fault '{kind.value}'")
        values: dict[str, Any] = {"fault": kind}
        for key, raw in doc.items():
            if key == "fault":
                continue
            try:
                values[key] = _convert(key, raw)
            except (ValueError, TypeError) as exc:
                raise PlanError(f"{where}.{key}: {exc}") from None
        rule = cls(**values)
        if rule.apdu is None and rule.command is None and not rule.after and rule.probability >= 1.0:
            raise PlanError(f"{where}: give a trigger (apdu, command, after or probability)")
        if rule.after and rule.after_command is None and rule.command is None:
            raise PlanError(f"{where}.after: needs 'after_command' or 'command' to count")
        return rule

    @classmethod
    def parse_line(cls, text: str, where: str = "rule") -> FaultRule:
        """``fault=remove command=80EA02 reinsert_after=2`` (shell-style quoting allowed)."""
        doc: dict[str, str] = {}
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise PlanError(f"{where}: {exc}") from None
        for word in words:
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise PlanError(f"{where}: {word!r} is not key=value")
            if key in doc:
                raise PlanError(f"{where}: {key!r} given twice")
            doc[key] = value
        return cls.parse(doc, where)

    def encode(self) -> dict[str, Any]:
        """The rule as a plan mapping (trigger defaults left out, the settings of its kind
        always in); ``parse(encode())`` round-trips."""
        out: dict[str, Any] = {"fault": self.fault.value}
        defaults = FaultRule(self.fault)
        own = _KIND_KEYS[self.fault]
        for key in sorted(_ALL_RULE_KEYS - {"fault"}):
            value = getattr(self, key)
            if value is None or (value == getattr(defaults, key) and key not in own):
                continue
            if isinstance(value, HeaderPattern):
                value = value.encode()
            elif isinstance(value, Enum):
                value = value.value
            elif key == "sw":
                value = f"{value:04X}"
            elif key == "xor":
                value = f"{value:02X}"
            out[key] = value
        return out

    def line(self) -> str:
        return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.encode().items())


def _convert(key: str, raw: Any) -> Any:
    if key in ("command", "after_command"):
        return HeaderPattern.parse(str(raw))
    if key == "name" or key == "target":
        value = str(raw)
        if key == "target" and value not in ("data", "mac"):
            raise ValueError("must be 'data' or 'mac'")
        return value
    if key in ("apdu", "times", "after", "commit", "offset"):
        if isinstance(raw, bool):
            raise ValueError("must be an integer")
        number = int(str(raw), 0)
        if key == "apdu" and number < 1:
            raise ValueError("APDUs are numbered from 1")
        if key in ("times", "after") and number < 0:
            raise ValueError("must be 0 or more")
        if key == "commit" and number < 1:
            raise ValueError("commits are numbered from 1")
        return number
    if key in ("sw", "xor"):
        digits = 4 if key == "sw" else 2
        # YAML reads sw: 6581 as the integer 6581 (and xor: 01 as 1): the decimal digits
        # written are the hex digits meant.
        text = str(raw).replace(" ", "")
        if isinstance(raw, int) and key == "xor":
            text = text.zfill(digits)
        if len(text) != digits:
            raise ValueError(f"must be {digits} hex digits")
        return int(text, 16)
    if key == "point":
        try:
            return TearPoint(str(raw).lower())
        except ValueError:
            raise ValueError("must be before, after or random") from None
    seconds_or_p = float(raw)
    if key == "probability" and not 0.0 <= seconds_or_p <= 1.0:
        raise ValueError("must be between 0 and 1")
    if key in ("reinsert_after", "timeout", "seconds") and not 0.0 <= seconds_or_p <= 3600.0:
        raise ValueError("must be between 0 and 3600 seconds")
    return seconds_or_p


@dataclass(frozen=True)
class FaultPlan:
    """Rules in order (the first that fires wins), a seed, and the timing settings."""

    rules: tuple[FaultRule, ...] = ()
    seed: int | None = None
    timing: str = "off"
    timing_scale: float = 1.0
    source: str = field(default="<plan>", compare=False)

    @classmethod
    def parse(cls, doc: Any, source: str = "<plan>") -> FaultPlan:
        if not isinstance(doc, Mapping):
            raise PlanError(f"{source}: a fault plan is a mapping with 'eidemu_faults: 1' and 'rules'")
        known = {"eidemu_faults", "seed", "timing", "timing_scale", "rules"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise PlanError(f"{source}: unknown key {unknown[0]!r} (keys: {', '.join(sorted(known))})")
        if doc.get("eidemu_faults") != PLAN_VERSION:
            raise PlanError(f"{source}: eidemu_faults: must be {PLAN_VERSION} (the plan format version)")
        rules_doc = doc.get("rules") or []
        if not isinstance(rules_doc, list):
            raise PlanError(f"{source}: rules: must be a list of rules")
        rules = tuple(FaultRule.parse(r, f"{source}: rules[{i}]") for i, r in enumerate(rules_doc))
        seed = doc.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise PlanError(f"{source}: seed: must be an integer")
        timing = str(doc.get("timing", "off"))
        if timing not in ("off", "real"):
            raise PlanError(f"{source}: timing: must be 'off' or 'real'")
        try:
            scale = float(doc.get("timing_scale", 1.0))
        except (TypeError, ValueError):
            scale = -1.0
        if not 0.0 <= scale <= 100.0:
            raise PlanError(f"{source}: timing_scale: must be a number from 0 to 100")
        return cls(rules, seed, timing, scale, source)

    @classmethod
    def from_lines(cls, lines: list[str], seed: int | None = None, source: str = "--fault") -> FaultPlan:
        rules = tuple(FaultRule.parse_line(text, f"{source} {i + 1}") for i, text in enumerate(lines))
        return cls(rules, seed, source=source)

    def encode(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"eidemu_faults": PLAN_VERSION, "rules": [r.encode() for r in self.rules]}
        if self.seed is not None:
            doc["seed"] = self.seed
        if self.timing != "off":
            doc["timing"] = self.timing
        if self.timing_scale != 1.0:
            doc["timing_scale"] = self.timing_scale
        return doc


def load_plan(path: str | Path) -> FaultPlan:
    """Read a plan file (YAML or JSON); any problem is one-line PlanError naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{source}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PlanError(f"{source}: not UTF-8 text") from None
    try:
        doc = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlanError(f"{source}: {where}syntax error: {problem}") from None
    return FaultPlan.parse(doc, source)
