"""Conformance tests written in Python, run and reported exactly like the script tests.

Some checks do not fit a line-oriented script: parsing a certificate read off the card and
checking its profile, signing and verifying with the certificate's key, validating a chain
against CRL and OCSP services. They are Python functions registered with
:func:`conformance_test`, which gives them what a script test case has: a stable ID in the
ICAO 9303 / BSI TR-03105 test-plan style, a title, a purpose, a spec citation,
applicability tokens and the destructive flag. The runner (:func:`eidemu.conformance.runner.run_test`)
selects, applies tokens, reports and traces them like script tests; the pytest plugin
collects them next to the script items.

A test function receives a :class:`FlowContext`: the card connection (every exchange is
recorded as a report step and traced, PINs redacted), the card's declared variables, and
:meth:`FlowContext.check`. A test FAILS by raising :class:`CheckFailed` (with expected and
received values) or ``AssertionError``; card-link problems (``CardConnectionError``) and a
missing variable are ERROR, as for scripts.

The shipped Python tests live in the modules of :data:`PYTHON_CATALOGUE`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .connection import CardConnection, ConnectionWrapper
from .script import ExpansionError, Location, Script, ScriptError, TestCase

PYTHON_CATALOGUE = (
    "eidemu.conformance.flows.moica_certificates",
    "eidemu.conformance.flows.moica_relying_party",
    "eidemu.conformance.flows.emrtd_access",
    "eidemu.conformance.flows.emrtd_sm",
    "eidemu.conformance.flows.emrtd_lds",
    "eidemu.conformance.flows.emrtd_pa",
    "eidemu.conformance.flows.emrtd_auth",
    "eidemu.conformance.flows.eid_pki",
    "eidemu.conformance.flows.eac",
)
"""Modules holding the shipped Python tests (imported by :func:`load_python_tests`)."""


class CheckFailed(Exception):
    """The card's behaviour differs from the test's expectation: the test is FAILED."""

    def __init__(self, message: str, expected: str = "", received: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.received = received


Exchange = Callable[[bytes, bytes, float, float, Location], None]
"""Called after each exchange: command, response, wall-clock start, elapsed seconds, caller location."""


class RecordingConnection(ConnectionWrapper):
    """A :class:`~eidemu.conformance.connection.CardConnection` that reports every exchange.

    The location of an exchange is the line of the test module that caused it, found by
    walking up the stack to the first frame in ``source`` (the test's file).
    """

    def __init__(self, inner: CardConnection, on_exchange: Exchange, source: str) -> None:
        super().__init__(inner)
        self.on_exchange = on_exchange
        self.source = source

    def transmit(self, command: bytes) -> bytes:
        wall = time.time()
        started = time.perf_counter()
        response = self.inner.transmit(command)
        self.on_exchange(command, response, wall, time.perf_counter() - started, self._caller())
        return response

    def _caller(self) -> Location:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == self.source:
                return Location(self.source, frame.f_lineno)
            frame = frame.f_back  # type: ignore[assignment]
        return Location(self.source, 0)


class FlowContext:
    """What a Python test gets: the connection, the card's variables, and ``check``."""

    def __init__(self, connection: RecordingConnection, variables: Mapping[str, bytes], card: str) -> None:
        self.connection = connection
        self.variables = variables
        self.card = card

    def variable(self, name: str) -> bytes:
        """A variable from the card declaration; unset is an ERROR of the harness, not a FAIL."""
        try:
            return self.variables[name]
        except KeyError:
            raise ExpansionError(f"variable ${{{name}}} is not set (declare it for this card)") from None

    @staticmethod
    def check(condition: object, message: str, expected: object = "", received: object = "") -> None:
        """FAIL with ``message`` and the expected and received values unless ``condition`` holds."""
        if not condition:
            raise CheckFailed(message, str(expected), str(received))


TestFunction = Callable[[FlowContext], None]


@dataclass(frozen=True)
class PythonTest:
    """A registered Python test: its metadata as a :class:`TestCase` (no steps) and its function."""

    test: TestCase
    function: TestFunction


REGISTRY: dict[str, PythonTest] = {}
"""Test ID -> registered Python test."""


def conformance_test(
    test_id: str,
    title: str,
    *,
    spec: str,
    purpose: str,
    tokens: tuple[str, ...] = (),
    destructive: bool = False,
    category: str = "",
    preconditions: tuple[str, ...] = (),
) -> Callable[[TestFunction], TestFunction]:
    """Register a function as conformance test ``test_id`` (IDs are unique across scripts and Python)."""

    def register(function: TestFunction) -> TestFunction:
        defined = inspect.unwrap(function)  # the test's own code, under any decorator's wrapper
        source = inspect.getsourcefile(defined) or defined.__code__.co_filename
        location = Location(source, defined.__code__.co_firstlineno)
        existing = REGISTRY.get(test_id)
        if existing is not None and existing.function.__qualname__ != function.__qualname__:
            raise ScriptError(location, f"duplicate test ID {test_id} (also at {existing.test.location})")
        test = TestCase(
            id=test_id,
            title=title,
            purpose=purpose,
            spec=spec,
            tokens=tokens,
            preconditions=preconditions,
            destructive=destructive,
            category=category,
            location=location,
        )
        REGISTRY[test_id] = PythonTest(test, function)
        return function

    return register


def python_test_for(test: TestCase) -> PythonTest | None:
    """The registered Python test behind this test case, if it is one."""
    found = REGISTRY.get(test.id)
    return found if found is not None and found.test is test else None


def load_python_tests(modules: tuple[str, ...] = PYTHON_CATALOGUE) -> list[Script]:
    """Import the modules and return their tests as one :class:`Script` per module, in definition order."""
    scripts = []
    for name in modules:
        module = importlib.import_module(name)
        source = str(Path(inspect.getsourcefile(module) or "").resolve())
        tests = sorted(
            (p.test for p in REGISTRY.values() if str(Path(p.test.location.path).resolve()) == source),
            key=lambda t: t.location.line,
        )
        suite = (module.__doc__ or name).strip().splitlines()[0]
        scripts.append(Script(path=source, suite=suite, tests=tuple(tests)))
    return scripts
