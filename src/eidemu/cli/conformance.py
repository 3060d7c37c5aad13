"""``eidemu conformance`` (lint, import, list, run, probe) and ``eidemu replay``.

Exit codes as for every eidemu command: 0 all selected tests passed (or were not
applicable / skipped); 1 a test FAILED or hit an ERROR, or a replay differed; 2 usage or
input errors (a script that does not parse, an unknown card).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import EXIT_CARD_ERROR, EXIT_OK, EXIT_USAGE, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conformance",
        help="run APDU test scripts against a card; lint and import scripts",
        description="The conformance suite: shipped catalogue and your own scripts "
        "(format: docs/conformance-scripts.md).",
    )
    csub = p.add_subparsers(dest="conformance_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(handler=lambda args: p.print_help() or 2)

    lint = csub.add_parser("lint", help="parse scripts and report errors with file:line")
    lint.add_argument("files", nargs="+", metavar="FILE", help="script files or directories")
    lint.add_argument("--strict", action="store_true", help="treat warnings as errors")
    lint.set_defaults(handler=run_lint)

    imp = csub.add_parser("import", help="turn a scriptor script, hex trace or JSON-lines trace into a script")
    imp.add_argument("--from", dest="fmt", required=True, choices=("scriptor", "hex", "trace"))
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("-o", "--output", help="write the script here (default: standard output)")
    imp.add_argument("--id", help="test ID (default IMPORTED_<FILE>_01)")
    imp.add_argument("--title", help="test title")
    imp.set_defaults(handler=run_import)

    for name, handler, help_text in (
        ("run", run_suite, "run test cases against a card"),
        ("list", run_list, "list the selected test cases and whether they apply to the card"),
    ):
        r = csub.add_parser(name, help=help_text)
        _card_options(r)
        _selection_options(r)
        if name == "run":
            r.add_argument("--junit", metavar="FILE", help="write JUnit XML results")
            r.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
            r.add_argument("--trace", metavar="DIR", help="write a JSON-lines APDU trace per test (PINs redacted)")
            r.add_argument(
                "--allow-destructive", action="store_true", help="run destructive tests on a real card (blocks PINs!)"
            )
            r.add_argument("-q", "--quiet", action="store_true", help="no progress; print failures and a summary")
            r.add_argument(
                "--probe",
                action="store_true",
                help="a card without a declaration: probe it first (harmless commands only) and use what it finds",
            )
        r.set_defaults(handler=handler)

    pr = csub.add_parser(
        "probe",
        help="infer a card's tokens with harmless commands and write a card declaration",
        description="Send only harmless commands (SELECT, GET RESPONSE, GET CHALLENGE, GET DATA, MANAGE CHANNEL; "
        "never VERIFY, never a write), infer the applicability tokens and write a declaration for --card-config.",
    )
    pr.add_argument("--card", required=True, help="card URI: pcsc:<reader>, vpcd:<host:port>, emulator:<profile>, ...")
    pr.add_argument("--out", metavar="FILE.yaml", help="write the declaration here (default: standard output)")
    pr.set_defaults(handler=run_probe)

    rp = sub.add_parser(
        "replay",
        help="replay a JSON-lines APDU trace against a card and report the differences",
        description="Send every command of a trace (the format of 'eidemu apdu --trace') to a card and "
        "compare the responses. Fresh data (GET CHALLENGE, signatures, authentication) is compared by "
        'length only; declare more with --mask or a "mask" key on a response line.',
    )
    _card_options(rp)
    rp.add_argument("trace_file", metavar="TRACE")
    rp.add_argument(
        "--mask", action="append", default=[], metavar="STEP:RANGE", help="ignore bytes of step N, e.g. 3:data[0:8]"
    )
    rp.add_argument("--trace", metavar="FILE", help="record the replay itself as a JSON-lines trace")
    rp.set_defaults(handler=run_replay)


def _card_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--card",
        default="emulator:iso-demo",
        help="card URI: emulator:<profile>, pcsc:<reader>, vpcd:<host:port>, served:<profile> "
        "(default emulator:iso-demo)",
    )
    p.add_argument(
        "--card-config",
        metavar="NAME|FILE",
        help="card declaration: a name in fixtures/conformance/cards.yaml, or a YAML file",
    )
    p.add_argument("--tokens", action="append", default=[], metavar="T1,T2", help="add applicability tokens")
    p.add_argument("--var", action="append", default=[], metavar="NAME=HEX", help="set a script variable")


def _selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--select", action="append", default=[], metavar="IDS", help="test IDs or categories, globs allowed: ISO_PIN_*"
    )
    p.add_argument(
        "--scripts", action="append", default=[], metavar="PATH", help="more script files or directories to run"
    )
    p.add_argument("--no-catalogue", action="store_true", help="run only --scripts, not the shipped catalogue")


# -- helpers ---------------------------------------------------------------------------------


def _variables(items: list[str]) -> dict[str, bytes]:
    from eidemu.emulator.iso7816.apdu import parse_hex

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {item!r}: write NAME=HEX")
        try:
            out[name.strip()] = parse_hex(value)
        except ValueError as exc:
            raise UsageError(f"--var {name}: {exc}") from None
    return out


def _tokens(items: list[str]) -> list[str]:
    return [t.strip() for chunk in items for t in chunk.split(",") if t.strip()]


def _open_card(args: argparse.Namespace) -> Any:
    from eidemu.conformance.runner import CardUnderTest

    card = CardUnderTest(args.card, card_config=args.card_config)
    card.declaration = card.declaration.merged(_tokens(args.tokens), _variables(args.var))
    return card


def _declare_or_probe(args: argparse.Namespace, card: Any) -> None:
    """A card nothing describes: probe it (``--probe``) or stop with one line saying what to do."""
    from eidemu.conformance.runner import is_undeclared

    if not is_undeclared(card.declaration):
        return
    if not getattr(args, "probe", False):
        card.close()
        raise UsageError(
            f"{card.description}: no card declaration (not in fixtures/conformance/cards.yaml, no --card-config or "
            f"--tokens), so every test would be NOT APPLICABLE; run 'eidemu conformance probe --card {args.card} "
            "--out card.yaml' and pass --card-config card.yaml, or add --probe"
        )
    from eidemu.conformance.probe import probe

    result = probe(card.fresh())
    card.declaration = result.declaration().merged(_tokens(args.tokens), _variables(args.var))
    print(
        f"eidemu: probed {card.description}: {result.card}; tokens {', '.join(result.tokens)}",
        file=sys.stderr,
    )


def _report_unset(card: Any, selected: list[Any]) -> None:
    """Before any APDU: the applicable tests that will be NOT RUN, and the variables they lack."""
    from eidemu.conformance.runner import unset_variables

    lacking: dict[str, list[str]] = {}
    for script, test in selected:
        if test.applies_to(card.declaration.tokens)[0]:
            for name in unset_variables(script, test, card.declaration.variables):
                lacking.setdefault(name, []).append(test.id)
    if not lacking:
        return
    tests = {t for ids in lacking.values() for t in ids}
    print(f"eidemu: {len(tests)} tests will be NOT RUN: variables not set by the card's declaration:", file=sys.stderr)
    for name, ids in sorted(lacking.items()):
        print(f"eidemu:   ${{{name}}}: {', '.join(ids)}", file=sys.stderr)


def _scripts(args: argparse.Namespace) -> list[Any]:
    from eidemu.conformance.runner import load_catalogue
    from eidemu.conformance.script import ScriptError

    extra = [Path(p) for p in args.scripts]
    for path in extra:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    errors: list[ScriptError] = []
    scripts = load_catalogue(extra, include_shipped=not args.no_catalogue, errors=errors)
    if errors:  # every broken file, one line each, then exit 2 like any usage error
        for error in errors[:-1]:
            print(f"eidemu: error: {error}", file=sys.stderr)
        raise UsageError(str(errors[-1]))
    return scripts


def _selected(args: argparse.Namespace) -> list[Any]:
    from eidemu.conformance.runner import select_tests

    selected = select_tests(_scripts(args), args.select)
    if not selected:
        raise UsageError("no test case matches the selection")
    return selected


# -- handlers --------------------------------------------------------------------------------


def run_lint(args: argparse.Namespace) -> int:
    from eidemu.conformance.script import ScriptError, load_scripts

    problems = 0
    count = 0
    for name in args.files:
        path = Path(name)
        if not path.exists():
            print(f"{name}: no such file or directory", file=sys.stderr)
            problems += 1
            continue
        errors: list[ScriptError] = []
        for script in load_scripts([path], errors):  # every file of a directory, broken or not
            count += len(script.tests)
            for warning in script.warnings:
                print(f"{warning} (warning)", file=sys.stderr)
                problems += args.strict
        for error in errors:
            print(str(error), file=sys.stderr)
        problems += len(errors)
    if problems:
        return EXIT_USAGE
    print(f"{count} test case(s) OK")
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    from eidemu.conformance.importers import import_file
    from eidemu.conformance.script import Script, ScriptError, format_script

    try:
        test = import_file(Path(args.file), args.fmt, args.id, args.title)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    text = format_script(
        Script(args.output or "-", tests=(test,)),
        header=f"Imported by 'eidemu conformance import --from {args.fmt}' from {Path(args.file).name}.\n"
        "Review the expectations: they state what the recorded card answered.",
    )
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}: {test.id} with {len(test.steps)} steps", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    selected = _selected(args)
    card = _open_card(args)
    try:
        for _script, test in selected:
            applies, reason = test.applies_to(card.declaration.tokens)
            flag = "destructive" if test.destructive else ""
            print(f"{test.id:<18} {'applies' if applies else 'n/a: ' + reason:<28} {flag:<11} {test.title}")
    finally:
        card.close()
    return EXIT_OK


def run_suite(args: argparse.Namespace) -> int:
    from eidemu.conformance.reports import html_report, junit_xml
    from eidemu.conformance.runner import Outcome, RunOptions, run_tests, summary

    selected = _selected(args)
    card = _open_card(args)
    _declare_or_probe(args, card)
    _report_unset(card, selected)
    options = RunOptions(allow_destructive=args.allow_destructive, trace_dir=Path(args.trace) if args.trace else None)
    try:
        with _progress(args.quiet, len(selected), card.description) as on_result:
            results = run_tests(card, selected, options, on_result)
    finally:
        card.close()
    totals = summary(results)
    if args.junit:
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    if args.report:
        Path(args.report).write_text(html_report(results, card.description), encoding="utf-8")
    if args.quiet:
        for r in results:
            if r.outcome in (Outcome.FAILED, Outcome.ERROR):
                print(f"{r.outcome} {r.test.id} ({r.test.location}): {r.message}")
    line = ", ".join(f"{totals[o]} {o.value.lower()}" for o in Outcome if totals[o])
    print(f"{card.description}: {len(results)} tests: {line}")
    return EXIT_CARD_ERROR if totals[Outcome.FAILED] or totals[Outcome.ERROR] else EXIT_OK


class _progress:
    """Context manager yielding the per-result callback: rich on a TTY, lines otherwise."""

    def __init__(self, quiet: bool, total: int, card: str) -> None:
        self.quiet, self.total, self.card = quiet, total, card
        self.progress: Any = None

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        if sys.stdout.isatty():
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            except ImportError:
                pass
            else:
                self.progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("{task.fields[last]}"),
                )
                self.progress.start()
                task = self.progress.add_task(self.card, total=self.total, last="")

                def on_rich(result: Any) -> None:
                    from eidemu.conformance.runner import Outcome

                    if result.outcome in (Outcome.FAILED, Outcome.ERROR):
                        self.progress.console.print(
                            f"[red]{result.outcome}[/red] {result.test.id}: {result.message}", markup=True
                        )
                    self.progress.update(task, advance=1, last=result.test.id)

                return on_rich

        rate = _Throughput(self.total)

        def on_line(result: Any) -> None:
            detail = f"  {result.message}" if result.message else ""
            print(f"{result.outcome.value:<14} {result.test.id:<18} {result.test.title}{detail}", flush=True)
            rate.tick()

        return on_line

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


class _Throughput:
    """On long runs without a progress bar, a line on stderr every ``interval`` seconds:
    tests done, rate and the time left (standard output keeps one line per test)."""

    def __init__(self, total: int, interval: float = 5.0) -> None:
        import time

        self.clock = time.monotonic
        self.total, self.interval = total, interval
        self.done = 0
        self.started = self.clock()
        self.next_report = self.started + interval

    def tick(self) -> None:
        self.done += 1
        now = self.clock()
        if now < self.next_report or self.done >= self.total:
            return
        self.next_report = now + self.interval
        rate = self.done / (now - self.started)
        left = (self.total - self.done) / rate
        print(
            f"eidemu: progress: {self.done}/{self.total} tests, {rate:.0f} tests a second, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )


def run_probe(args: argparse.Namespace) -> int:
    from eidemu.conformance.connection import open_card
    from eidemu.conformance.probe import probe

    connection = open_card(args.card)
    try:
        result = probe(connection, log=lambda line: print(f"eidemu: probe: {line}", file=sys.stderr))
    finally:
        connection.close()
    text = result.yaml()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(
            f"eidemu: wrote {args.out}: {result.card}; {len(result.tokens)} tokens, "
            f"{len(result.placeholders)} variable(s) to fill in; run with --card-config {args.out}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    from eidemu.conformance.replay import replay_trace
    from eidemu.conformance.runner import Outcome
    from eidemu.conformance.script import ScriptError

    card = _open_card(args)
    try:
        report = replay_trace(Path(args.trace_file), card, args.mask, Path(args.trace) if args.trace else None)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    finally:
        card.close()
    print(report.text())
    if report.result.outcome in (Outcome.ERROR, Outcome.NOT_RUN):
        return EXIT_USAGE
    return EXIT_OK if report.identical else EXIT_CARD_ERROR
