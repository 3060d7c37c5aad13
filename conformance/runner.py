"""Run script test cases against a card and collect results with expected and received values.

Verdicts follow the ICAO 9303-10/-11 and BSI TR-03105 test plans: a test whose applicability
tokens the card does not declare is NOT APPLICABLE (never PASSED); a destructive test is
SKIPPED unless allowed; a step whose response differs from its expectations makes the test
FAILED; a test needing a variable the card's declaration does not set is NOT RUN, decided
before any APDU is sent (:func:`unset_variables`); a problem of the harness or the link
(a reader error, a capture that found nothing) is ERROR.

The card under test is described by a :class:`CardUnderTest`: how to connect, its tokens
and its variables. Emulated cards are rebuilt fresh from their profile before every test,
so tests never depend on each other's leftovers (a blocked PIN, a written file).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

from eidemu.emulator.iso7816.apdu import ResponseAPDU, parse_hex
from eidemu.fixtures import fixture_path

from .connection import CardConnection, CardConnectionError, FaultControl, Rebuildable, open_card
from .pythontests import CheckFailed, FlowContext, PythonTest, RecordingConnection, load_python_tests, python_test_for
from .script import (
    ExpansionError,
    FaultStep,
    Location,
    Mismatch,
    Reset,
    Script,
    ScriptError,
    Send,
    SetVariable,
    TestCase,
    expand,
    load_scripts,
    nibbles_match,
    variables_in,
)

CATALOGUE_DIR = Path(str(files(__package__).joinpath("catalogue")))
CARDS_FILE = fixture_path("conformance", "cards.yaml")


class Outcome(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    NOT_APPLICABLE = "NOT APPLICABLE"
    SKIPPED = "SKIPPED"
    NOT_RUN = "NOT RUN"  # needs variables the card's declaration does not set
    ERROR = "ERROR"


# Report order: what needs attention first.
OUTCOME_ORDER = (
    Outcome.ERROR,
    Outcome.FAILED,
    Outcome.NOT_RUN,
    Outcome.PASSED,
    Outcome.SKIPPED,
    Outcome.NOT_APPLICABLE,
)


@dataclass(frozen=True)
class StepResult:
    """One executed step: what was sent, what came back, and what did not match."""

    index: int
    kind: str  # "send", "reset", "power-cycle", "set"
    location: Location
    command: bytes = b""
    response: bytes = b""
    elapsed: float = 0.0
    mismatches: tuple[Mismatch, ...] = ()
    error: str = ""
    comment: str = ""

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.error


@dataclass(frozen=True)
class TestResult:
    """A test case's verdict, with the expected and received values behind it."""

    __test__ = False

    test: TestCase
    outcome: Outcome
    message: str = ""
    expected: str = ""
    received: str = ""
    steps: tuple[StepResult, ...] = ()
    duration: float = 0.0
    card: str = ""

    @property
    def apdus(self) -> int:
        return sum(1 for s in self.steps if s.kind == "send" and s.response)


# -- the card under test ------------------------------------------------------------------


@dataclass(frozen=True)
class CardDeclaration:
    """What a card declares: applicability tokens and the values its tests need.

    Read from ``fixtures/conformance/cards.yaml`` (by emulator profile name or ATR), from
    a card file given with ``--card-config``, plus ``--tokens`` and ``--var`` options.
    """

    name: str = ""
    tokens: frozenset[str] = frozenset()
    variables: Mapping[str, bytes] = field(default_factory=dict)

    def merged(self, tokens: Iterable[str] = (), variables: Mapping[str, bytes] | None = None) -> CardDeclaration:
        return CardDeclaration(self.name, self.tokens | set(tokens), {**self.variables, **(variables or {})})


def _declaration(name: str, entry: Any, source: str) -> CardDeclaration:
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: card {name!r}: expected a mapping with tokens and variables")
    unknown = set(entry) - {"tokens", "variables", "atr", "profile", "description"}
    if unknown:
        raise ValueError(f"{source}: card {name!r}: unknown key {sorted(unknown)[0]!r}")
    tokens = entry.get("tokens") or []
    variables = entry.get("variables") or {}
    if not isinstance(tokens, list) or not isinstance(variables, dict):
        raise ValueError(f"{source}: card {name!r}: tokens is a list, variables a mapping")
    values = {}
    for key, value in variables.items():
        try:
            values[str(key)] = parse_hex(str(value))
        except ValueError:
            raise ValueError(f"{source}: card {name!r}: variable {key} is not hex") from None
    return CardDeclaration(name, frozenset(map(str, tokens)), values)


def _read_declarations(path: Path) -> Any:
    """A card declaration document: bounded size and nesting, one-line errors naming the place."""
    from eidemu.emulator.formats.documents import DocumentError, parse_document
    from eidemu.emulator.formats.files import DECLARATION_LIMIT, InputFileError, read_text_bounded

    try:
        return parse_document(read_text_bounded(path, DECLARATION_LIMIT, "card declaration"), str(path)) or {}
    except FileNotFoundError:
        raise ValueError(f"{path}: cannot read: no such file") from None
    except (InputFileError, DocumentError) as exc:
        raise ValueError(str(exc)) from None


def load_card_declarations(path: Path = CARDS_FILE) -> dict[str, tuple[CardDeclaration, bytes | None, str | None]]:
    """Card name -> (declaration, ATR to recognise it by, emulator profile)."""
    doc = _read_declarations(path)
    cards = doc.get("cards") if isinstance(doc, dict) else None
    if not isinstance(cards, dict):
        raise ValueError(f"{path}: expected 'cards:' mapping card names to tokens and variables")
    out = {}
    for name, entry in cards.items():
        decl = _declaration(str(name), entry, str(path))
        atr = parse_hex(str(entry["atr"])) if entry.get("atr") else None
        out[str(name)] = (decl, atr, entry.get("profile", str(name)))
    return out


def declaration_for(uri: str, atr: bytes | None, card_config: str | None = None) -> CardDeclaration:
    """The shipped or given declaration for a card: by ``--card-config``, profile or ATR."""
    if card_config:
        path = Path(card_config)
        if path.exists():
            return _declaration(path.stem, _read_declarations(path), str(path))
        known = load_card_declarations()
        if card_config not in known:
            raise ValueError(f"no card {card_config!r} in {CARDS_FILE} (known: {', '.join(sorted(known))})")
        return known[card_config][0]
    known = load_card_declarations()
    scheme, _, target = uri.partition(":")
    if scheme in ("emulator", "served"):
        profile = Path(target.partition("?")[0]).stem
        for decl, _atr, prof in known.values():
            if prof == profile:
                return decl
    if atr is not None:
        for decl, card_atr, _prof in known.values():
            if card_atr == atr:
                return decl
    return CardDeclaration(uri)


def is_undeclared(declaration: CardDeclaration) -> bool:
    """True when nothing describes the card: no shipped entry, no file, no tokens given."""
    return not declaration.tokens


def unset_variables(script: Script, test: TestCase, variables: Mapping[str, bytes]) -> list[str]:
    """The variables ``test`` reads that neither ``variables`` (the card's) nor the script
    sets before they are read (``set`` lines, captures), in first-use order.

    Found from the script text alone, so the runner knows before sending any APDU. Python
    tests declare nothing and are checked when they run (an unset variable is NOT RUN then).
    """
    defined = set(variables)
    missing: list[str] = []

    unbuilt: dict[str, list[str]] = {}  # file variable -> the unset variables it is built from

    def need(text: str) -> None:
        for name in variables_in(text):
            for wanted in unbuilt.get(name, [name]):
                if wanted not in defined and wanted not in missing:
                    missing.append(wanted)

    for setvar in script.variables:  # in file order, as run_test builds them
        if setvar.name in defined:
            continue
        lacking = [n for n in variables_in(setvar.value) if n not in defined]
        if lacking:
            unbuilt[setvar.name] = [m for n in lacking for m in unbuilt.get(n, [n])]
        else:
            defined.add(setvar.name)
    for step in test.steps:
        if isinstance(step, SetVariable):
            need(step.value)
            defined.add(step.name)
        elif isinstance(step, Send):
            need(str(step.command))
            for expectation in step.expectations:
                need(str(expectation))
            defined.update(capture.name for capture in step.captures)
        elif isinstance(step, Reset) and step.atr:
            need(step.atr)
    return missing


def not_run_reason(missing: Iterable[str]) -> str:
    names = ", ".join(f"${{{name}}}" for name in missing)
    return f"needs {names}: not set by the card's declaration (set with --var NAME=HEX or in the card file)"


class CardUnderTest:
    """How to reach one card between tests: opened once through :func:`open_card`.

    A card whose connection is :class:`Rebuildable` (``emulator:``; ``served:``, an emulated
    card the harness serves into pcscd through vpcd) is built afresh before every test; for
    these :attr:`emulated` is true and destructive tests are always allowed. Any other card
    is reset (warm) before each test.
    """

    def __init__(self, uri: str, declaration: CardDeclaration | None = None, card_config: str | None = None) -> None:
        self.uri = uri
        self._connection: CardConnection | None = open_card(uri)
        self.description = self._connection.description
        self.emulated = isinstance(self._connection, Rebuildable)
        try:
            self.declaration = declaration or declaration_for(uri, self._connection.atr, card_config)
        except BaseException:
            self.close()
            raise

    def fresh(self) -> CardConnection:
        """The connection, its card in its initial state (rebuildable cards) or just reset (others)."""
        if self._connection is None:
            raise CardConnectionError(f"{self.description}: the connection is closed")
        if isinstance(self._connection, Rebuildable):
            self._connection.rebuild()
        else:
            self._connection.reset()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# -- running ------------------------------------------------------------------------------


Tracer = Callable[[bytes, bytes, float], None]


@dataclass
class RunOptions:
    allow_destructive: bool = False
    trace_dir: Path | None = None
    continue_on_failure: bool = False


def select_tests(scripts: Iterable[Script], patterns: Iterable[str] = ()) -> list[tuple[Script, TestCase]]:
    """Tests whose ID or category matches any glob (all tests without patterns), in file order."""
    wanted = [p.strip() for chunk in patterns for p in chunk.split(",") if p.strip()]
    out = []
    for script in scripts:
        for test in script.tests:
            if not wanted or any(fnmatch.fnmatchcase(test.id, p) or fnmatch.fnmatchcase(test.group, p) for p in wanted):
                out.append((script, test))
    return out


def load_catalogue(
    extra: Iterable[Path] = (), include_shipped: bool = True, errors: list[ScriptError] | None = None
) -> list[Script]:
    """The shipped catalogue (script files and the Python tests of
    :data:`~eidemu.conformance.pythontests.PYTHON_CATALOGUE`) and any extra script files.

    With ``errors``, every file that does not parse and every duplicate ID is added there
    and the rest still loads; without, the first problem is raised."""
    paths = ([CATALOGUE_DIR] if include_shipped else []) + list(extra)
    scripts = load_scripts(paths, errors)
    if include_shipped:
        scripts += load_python_tests()
    seen: dict[str, Location] = {}
    for script in scripts:
        for test in script.tests:
            if test.id in seen:
                duplicate = ScriptError(test.location, f"duplicate test ID {test.id} (first at {seen[test.id]})")
                if errors is None:
                    raise duplicate
                errors.append(duplicate)
                continue
            seen[test.id] = test.location
    return scripts


@contextmanager
def _trace_file(options: RunOptions, test: TestCase) -> Iterator[IO[str] | None]:
    if options.trace_dir is None:
        yield None
        return
    options.trace_dir.mkdir(parents=True, exist_ok=True)
    with open(options.trace_dir / f"{test.id}.jsonl", "w", encoding="utf-8") as fh:
        yield fh


def run_test(card: CardUnderTest, script: Script, test: TestCase, options: RunOptions | None = None) -> TestResult:
    """Run one test case and return its verdict; never raises for card or script problems."""
    options = options or RunOptions()
    applies, reason = test.applies_to(card.declaration.tokens)
    if not applies:
        return TestResult(test, Outcome.NOT_APPLICABLE, reason, card=card.description)
    if test.destructive and not (options.allow_destructive or card.emulated):
        return TestResult(
            test, Outcome.SKIPPED, "destructive test: run with --allow-destructive", card=card.description
        )
    missing = unset_variables(script, test, card.declaration.variables)
    if missing:
        return TestResult(test, Outcome.NOT_RUN, not_run_reason(missing), card=card.description)
    started = time.perf_counter()
    with _trace_file(options, test) as trace:
        tracer = None
        if trace is not None:
            from eidemu.emulator.iso7816.trace import JsonLinesTracer

            tracer = JsonLinesTracer(trace, source=card.description)
            tracer.event("test", id=test.id, title=test.title)
        python_test = python_test_for(test)
        try:
            connection = card.fresh()
        except (CardConnectionError, OSError) as exc:
            return TestResult(test, Outcome.ERROR, f"cannot reach the card: {exc}", card=card.description)
        variables: dict[str, bytes] = dict(card.declaration.variables)
        for setvar in script.variables:  # in file order; the card's values win
            if setvar.name not in variables:
                try:
                    variables[setvar.name] = bytes.fromhex(expand(setvar.value, variables))
                except ExpansionError as exc:
                    return TestResult(test, Outcome.ERROR, f"{setvar.location}: {exc}", card=card.description)
        if python_test is not None:
            return _run_python_test(python_test, connection, variables, tracer, started, card.description)
        steps = _run_steps(connection, test, variables, tracer, options.continue_on_failure)
    duration = time.perf_counter() - started
    return _verdict(test, steps, duration, card.description)


def _run_python_test(
    python_test: PythonTest,
    connection: CardConnection,
    variables: dict[str, bytes],
    tracer: Any,
    started: float,
    card: str,
) -> TestResult:
    """Run a registered Python test: each exchange becomes a step; CheckFailed and
    AssertionError are FAILED, link problems and unset variables ERROR."""
    test = python_test.test
    steps: list[StepResult] = []

    def on_exchange(command: bytes, response: bytes, wall: float, elapsed: float, where: Location) -> None:
        steps.append(StepResult(len(steps) + 1, "send", where, command, response, elapsed))
        if tracer is not None:
            tracer(command, response, wall)

    recording = RecordingConnection(connection, on_exchange, test.location.path)
    context = FlowContext(recording, variables, card)
    outcome, message, expected, received = Outcome.PASSED, "", "", ""
    try:
        python_test.function(context)
    except CheckFailed as exc:
        outcome, message, expected, received = Outcome.FAILED, exc.message, exc.expected, exc.received
    except AssertionError as exc:
        outcome, message = Outcome.FAILED, str(exc) or "assertion failed"
    except ExpansionError as exc:  # a variable the declaration does not set
        outcome, message = Outcome.NOT_RUN, f"{exc} (set with --var NAME=HEX or in the card file)"
    except (CardConnectionError, OSError) as exc:
        outcome, message = Outcome.ERROR, f"card link failed: {exc}"
    except Exception as exc:  # a defect of the test itself: report it, never abort the run
        outcome, message = Outcome.ERROR, f"{test.location}: {type(exc).__name__}: {exc}"
    duration = time.perf_counter() - started
    return TestResult(test, outcome, message, expected, received, tuple(steps), duration, card)


def _run_steps(
    connection: CardConnection,
    test: TestCase,
    variables: dict[str, bytes],
    tracer: Any,
    keep_going: bool,
) -> tuple[StepResult, ...]:
    results: list[StepResult] = []
    for index, step in enumerate(test.steps, 1):
        if isinstance(step, SetVariable):
            try:
                from .script import expand

                variables[step.name] = bytes.fromhex(expand(step.value, variables))
            except ExpansionError as exc:
                results.append(StepResult(index, "set", step.location, error=str(exc)))
                break
            continue
        if isinstance(step, Reset):
            result = _reset(connection, step, index, tracer)
        elif isinstance(step, FaultStep):
            result = _fault(connection, step, index, tracer)
        else:
            assert isinstance(step, Send)
            result = _send(connection, step, index, variables, tracer)
        results.append(result)
        if result.error or (result.mismatches and not keep_going):
            break
    return tuple(results)


def _reset(connection: CardConnection, step: Reset, index: int, tracer: Any) -> StepResult:
    kind = "power-cycle" if step.cold else "reset"
    started = time.perf_counter()
    try:
        atr = connection.reset(cold=step.cold)
    except (CardConnectionError, OSError) as exc:
        return StepResult(index, kind, step.location, error=f"{kind} failed: {exc}")
    if tracer is not None:
        tracer.event(kind, atr=atr.hex().upper())
    mismatches: tuple[Mismatch, ...] = ()
    if step.atr is not None and not nibbles_match(step.atr, atr.hex().upper()):
        mismatches = (
            Mismatch("ATR", " ".join(step.atr[i : i + 2] for i in range(0, len(step.atr), 2)), atr.hex(" ").upper()),
        )
    return StepResult(
        index, kind, step.location, response=atr, elapsed=time.perf_counter() - started, mismatches=mismatches
    )


def _fault(connection: CardConnection, step: FaultStep, index: int, tracer: Any) -> StepResult:
    """``fault arm``/``fault clear`` on a card behind the fault layer (docs/faults.md)."""
    if not isinstance(connection, FaultControl):
        return StepResult(index, "fault", step.location, error="this card takes no fault plans (emulated cards do)")
    if step.action == "arm":
        connection.arm(step.rule)
    else:
        connection.clear()
    if tracer is not None:
        tracer.event("fault", action=step.action, rule=step.rule)
    return StepResult(index, "fault", step.location)


def _send(connection: CardConnection, step: Send, index: int, variables: dict[str, bytes], tracer: Any) -> StepResult:
    try:
        command = step.command.build(variables)
    except (ExpansionError, ValueError) as exc:
        return StepResult(index, "send", step.location, error=f"cannot build the APDU: {exc}", comment=step.comment)
    wall = time.time()
    started = time.perf_counter()
    try:
        raw = connection.transmit(command)
    except (CardConnectionError, OSError) as exc:
        return StepResult(index, "send", step.location, command, error=f"transmit failed: {exc}", comment=step.comment)
    elapsed = time.perf_counter() - started
    if tracer is not None:
        tracer(command, raw, wall)
    if len(raw) < 2:
        return StepResult(index, "send", step.location, command, raw, elapsed, error="response without a status word")
    response = ResponseAPDU.parse(raw)
    mismatches = []
    for expectation in step.expectations:
        try:
            mismatch = expectation.check(response, variables, step.masks)
        except ExpansionError as exc:
            return StepResult(index, "send", step.location, command, raw, elapsed, error=str(exc))
        if mismatch is not None:
            mismatches.append(mismatch)
    if not mismatches:
        for capture in step.captures:
            try:
                variables[capture.name] = capture.take(response)
            except (ExpansionError, ValueError) as exc:
                return StepResult(index, "send", step.location, command, raw, elapsed, error=str(exc))
    return StepResult(index, "send", step.location, command, raw, elapsed, tuple(mismatches), comment=step.comment)


def _verdict(test: TestCase, steps: tuple[StepResult, ...], duration: float, card: str) -> TestResult:
    for step in steps:
        if step.error:
            return TestResult(
                test, Outcome.ERROR, f"step {step.index} ({step.location}): {step.error}", "", "", steps, duration, card
            )
    failing = [s for s in steps if s.mismatches]
    if failing:
        first = failing[0].mismatches[0]
        message = "; ".join(f"step {s.index} ({s.location}): {m}" for s in failing for m in s.mismatches)
        return TestResult(test, Outcome.FAILED, message, first.expected, first.received, steps, duration, card)
    return TestResult(test, Outcome.PASSED, "", "", "", steps, duration, card)


def run_tests(
    card: CardUnderTest,
    selected: Iterable[tuple[Script, TestCase]],
    options: RunOptions | None = None,
    on_result: Callable[[TestResult], None] | None = None,
) -> list[TestResult]:
    """Run tests in order; ``on_result`` is called after each (progress display)."""
    results = []
    for script, test in selected:
        result = run_test(card, script, test, options)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def summary(results: Iterable[TestResult]) -> dict[Outcome, int]:
    counts = dict.fromkeys(Outcome, 0)
    for r in results:
        counts[r.outcome] += 1
    return counts
