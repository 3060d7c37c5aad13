"""pytest plugin: ``pytest --card URI`` runs every conformance script test case as a pytest item.

Registered as the ``pytest11`` entry point ``eidemu.conformance.pytest_plugin`` (or load it with
``-p eidemu.conformance.pytest_plugin``). Without ``--card`` it does nothing, so it is safe to
have installed.

- Script test cases (the shipped catalogue, ``--conformance-scripts PATH``, and ``*.apdu``
  files on the command line) and the catalogue's registered Python tests
  (:mod:`eidemu.conformance.pythontests`, e.g. ``MOICA_FLOW_01``) become items named by their test
  ID, next to the project's own Python tests; ``-k ISO_PIN`` selects by ID, ``-m "not destructive"`` leaves the
  destructive ones out, ``-m "not strict"`` those stricter than ISO/IEC 7816-4 on purpose
  (token ``STRICT``, docs/conformance-scripts.md "Strictness").
- NOT APPLICABLE and SKIPPED verdicts are pytest skips whose reason starts with the verdict;
  FAILED is a failure showing expected and received values and the exchanged APDUs.
- Python tests get the card through fixtures: ``card_under_test`` (the
  :class:`~eidemu.conformance.runner.CardUnderTest`) and ``card_connection`` (a fresh connection
  per test); ``@pytest.mark.card_tokens("PIN")`` makes them NOT APPLICABLE on cards
  without the tokens.
- NOT RUN (the test needs variables the card's declaration does not set) is a pytest skip
  whose reason names the variables.
- pytest-xdist: ``--card`` may be given several times; worker ``gwN`` uses card
  ``N mod count``, so each worker has its own card (several readers, or several emulated
  cards, which are built per worker process anyway). A ``served:`` URI without ``slot=``
  gets slot ``N`` for worker ``gwN`` (worker IDs are unique, so slots never collide), so
  ``pytest -n 8 --card served:moica-g2-valid-1`` serves eight cards into
  eight slots of one pcscd (``eidemu pcscd start --readers 4``) without collisions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .runner import CATALOGUE_DIR, CardUnderTest, Outcome, RunOptions, TestResult, run_test
from .script import SCRIPT_SUFFIX, Script, ScriptError, TestCase, load_script

_CARD_KEY = pytest.StashKey[CardUnderTest]()
_SEEN_KEY = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eidemu", "eidemu conformance suite")
    group.addoption(
        "--card",
        action="append",
        default=[],
        metavar="URI",
        help="card to test: emulator:<profile>, pcsc:<reader>, vpcd:<host:port>, served:<profile>; repeat to give each "
        "xdist worker its own card",
    )
    group.addoption("--card-config", metavar="NAME|FILE", help="card declaration (tokens and variables)")
    group.addoption("--card-tokens", action="append", default=[], metavar="T1,T2", help="add applicability tokens")
    group.addoption("--card-var", action="append", default=[], metavar="NAME=HEX", help="set a script variable")
    group.addoption(
        "--conformance-scripts", action="append", default=[], metavar="PATH", help="more script files or directories"
    )
    group.addoption("--no-catalogue", action="store_true", help="do not collect the shipped catalogue")
    group.addoption("--allow-destructive", action="store_true", help="run destructive tests on real cards")
    group.addoption("--conformance-trace", metavar="DIR", help="write a JSON-lines trace per script test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a test case from an APDU conformance script")
    config.addinivalue_line("markers", "destructive: changes the card irreversibly (blocks a PIN, writes a file)")
    config.addinivalue_line("markers", "card_tokens(*tokens): the test applies only to cards declaring these tokens")
    config.addinivalue_line(
        "markers", "strict: stricter than ISO/IEC 7816-4 on purpose (token STRICT); -m 'not strict'"
    )
    config.stash[_SEEN_KEY] = set()


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("card"))


def card_uri_for_worker(uris: list[str], worker: str | None) -> str:
    """``gw3`` with four URIs gets the fourth; without xdist, the first. A ``served:`` URI
    without a slot gets one of its own per worker: slot 3 for ``gw3`` with one URI."""
    if not worker or not worker.startswith("gw") or not worker[2:].isdigit():
        return uris[0]
    index = int(worker[2:])
    uri = uris[index % len(uris)]
    if uri.startswith("served:") and "slot=" not in uri.partition("?")[2]:
        uri += ("&" if "?" in uri else "?") + f"slot={index}"
    return uri


def _card(config: pytest.Config) -> CardUnderTest:
    if _CARD_KEY not in config.stash:
        from .connection import CardConnectionError

        uri = card_uri_for_worker(config.getoption("card"), os.environ.get("PYTEST_XDIST_WORKER"))
        try:
            card = CardUnderTest(uri, card_config=config.getoption("card_config"))
        except (CardConnectionError, ValueError, OSError) as exc:
            raise pytest.UsageError(f"--card {uri}: {exc}") from None
        from eidemu.emulator.iso7816.apdu import parse_hex

        tokens = [t.strip() for chunk in config.getoption("card_tokens") for t in chunk.split(",") if t.strip()]
        variables = {}
        for item in config.getoption("card_var"):
            name, _, value = item.partition("=")
            variables[name.strip()] = parse_hex(value)
        card.declaration = card.declaration.merged(tokens, variables)
        config.stash[_CARD_KEY] = card
    return config.stash[_CARD_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CARD_KEY in config.stash:
        config.stash[_CARD_KEY].close()


# -- collection -------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """``*.apdu`` files named on the command line or found under given directories."""
    if file_path.suffix != SCRIPT_SUFFIX or file_path.name.startswith("_") or not _active(parent.config):
        return None
    seen = parent.config.stash[_SEEN_KEY]
    if file_path.resolve() in seen:
        return None
    seen.add(file_path.resolve())
    return ScriptFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the catalogue and ``--conformance-scripts`` before -k/-m deselection runs."""
    if not _active(config):
        return
    roots = [] if config.getoption("no_catalogue") else [CATALOGUE_DIR]
    roots += [Path(p) for p in config.getoption("conformance_scripts")]
    seen = config.stash[_SEEN_KEY]
    for root in roots:
        if not root.exists():
            raise pytest.UsageError(f"--conformance-scripts {root}: no such file or directory")
        files = sorted(root.rglob(f"*{SCRIPT_SUFFIX}")) if root.is_dir() else [root]
        for path in files:
            if path.name.startswith("_") or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            collector = ScriptFile.from_parent(session, path=path)
            items.extend(collector.collect())
    if not config.getoption("no_catalogue"):
        from .pythontests import load_python_tests

        for script in load_python_tests():
            items.extend(PythonTestModule.from_parent(session, path=Path(script.path), script=script).collect())


class ScriptFile(pytest.File):
    """One script file: its test cases are the items."""

    def collect(self) -> Iterator[ScriptItem]:
        try:
            script = load_script(self.path)
        except ScriptError as exc:
            raise self.CollectError(str(exc)) from None
        for test in script.tests:
            item = ScriptItem.from_parent(self, name=test.id, script=script, test=test)
            item.add_marker("conformance")
            if test.destructive:
                item.add_marker("destructive")
            if "STRICT" in test.tokens:
                item.add_marker("strict")
            yield item


class PythonTestModule(pytest.File):
    """The registered Python tests of one catalogue module: run through the conformance runner,
    so they get the same verdicts, reports and traces as script tests."""

    def __init__(self, *, script: Script, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script

    def collect(self) -> Iterator[ScriptItem]:
        for test in self.script.tests:
            item = ScriptItem.from_parent(self, name=test.id, script=self.script, test=test)
            item.add_marker("conformance")
            if test.destructive:
                item.add_marker("destructive")
            if "STRICT" in test.tokens:
                item.add_marker("strict")
            yield item


class ConformanceFailure(Exception):
    """A FAILED or ERROR verdict, carrying the result for the failure report."""

    def __init__(self, result: TestResult) -> None:
        super().__init__(result.message)
        self.result = result


class ScriptItem(pytest.Item):
    """One script test case run against the worker's card."""

    def __init__(self, *, script: Script, test: TestCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = script
        self.test = test
        self.user_properties.append(("spec", test.spec))
        self.user_properties.append(("title", test.title))

    def runtest(self) -> None:
        config = self.config
        card = _card(config)
        trace = config.getoption("conformance_trace")
        options = RunOptions(
            allow_destructive=config.getoption("allow_destructive"), trace_dir=Path(trace) if trace else None
        )
        result = run_test(card, self.script, self.test, options)
        self.user_properties.append(("verdict", str(result.outcome)))
        self.user_properties.append(("card", result.card))
        if result.outcome in (Outcome.NOT_APPLICABLE, Outcome.SKIPPED, Outcome.NOT_RUN):
            pytest.skip(f"{result.outcome}: {result.message}")
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            raise ConformanceFailure(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            from .reports import format_step

            r = excinfo.value.result
            lines = [f"{r.outcome} {self.test.id}: {self.test.title}", f"spec: {self.test.spec}", r.message]
            if r.expected or r.received:
                lines += [f"expected: {r.expected}", f"received: {r.received}"]
            lines += ["", f"card: {r.card}"] + [format_step(s) for s in r.steps]
            return "\n".join(lines)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.test.location.line - 1, f"{self.test.id}: {self.test.title}"


# -- fixtures for Python-written flow tests --------------------------------------------------


@pytest.fixture
def card_under_test(request: pytest.FixtureRequest) -> CardUnderTest:
    """The card given with ``--card`` (this worker's); skips when no card was given."""
    if not _active(request.config):
        pytest.skip("no --card given")
    card = _card(request.config)
    marker = request.node.get_closest_marker("card_tokens")
    if marker is not None:
        needed = TestCase("FLOW_TEST_00", request.node.name, tokens=tuple(marker.args))
        applies, reason = needed.applies_to(card.declaration.tokens)
        if not applies:
            pytest.skip(f"{Outcome.NOT_APPLICABLE}: {reason}")
    return card


@pytest.fixture
def card_connection(card_under_test: CardUnderTest) -> Any:
    """A connection to the card in its initial state (emulator) or just reset (real card)."""
    return card_under_test.fresh()
