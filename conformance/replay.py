"""Replay a recorded APDU trace against another card and report where the answers differ.

The trace is the JSON-lines format of :mod:`eidemu.emulator.iso7816.trace`. Each recorded exchange becomes
a step whose expectations are the recorded response (see :mod:`eidemu.conformance.importers`):
status word and data exactly, except data that is fresh by design (challenges, signatures,
authentication cryptograms), compared by length. More masks are declared per step, either
on the response line of the trace (``"mask": ["data[0:8]"]``) or on the command line
(``--mask 3:data[0:8]``, step numbers counting exchanges from 1). Every step is sent even
after a difference, so one replay shows all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .importers import from_trace, read_trace_text
from .reports import format_step
from .runner import CardUnderTest, Outcome, RunOptions, TestResult, run_test
from .script import Location, Masks, Script, ScriptError, Send, TestCase, parse_mask


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of a replay: the underlying test result and the steps that differed."""

    trace: Path
    result: TestResult

    @property
    def identical(self) -> bool:
        return self.result.outcome == Outcome.PASSED

    @property
    def exchanges(self) -> int:
        return sum(1 for s in self.result.steps if s.kind == "send")

    def text(self) -> str:
        differing = [s for s in self.result.steps if not s.ok]
        lines = [format_step(s) for s in differing]
        verdict = "identical" if self.identical else f"{len(differing)} differ"
        if self.result.outcome in (Outcome.ERROR, Outcome.NOT_RUN):
            verdict = f"stopped: {self.result.message}"
        lines.append(f"{self.trace}: {self.exchanges} exchanges replayed against {self.result.card}: {verdict}")
        return "\n".join(lines)


def _apply_masks(steps: list, masks: list[str]) -> list:
    sends = [i for i, s in enumerate(steps) if isinstance(s, Send)]
    for item in masks:
        number, sep, spec = item.partition(":")
        if not sep or not number.strip().isdigit() or not 1 <= int(number) <= len(sends):
            raise ScriptError(Location("--mask", 0), f"{item!r}: write STEP:data[a:b] with STEP 1..{len(sends)}")
        index = sends[int(number) - 1]
        step = steps[index]
        rng = parse_mask(spec, Location("--mask", 0))
        steps[index] = replace(step, masks=Masks((*step.masks.ranges, rng)))
    return steps


def replay_trace(
    path: Path, card: CardUnderTest, masks: list[str] | None = None, trace_out: Path | None = None
) -> ReplayReport:
    """Send every command of ``path`` to ``card``; compare with the recorded responses."""
    text = read_trace_text(path)
    steps = _apply_masks(from_trace(text, str(path)), masks or [])
    if not steps:
        raise ScriptError(Location(str(path), 0), "no exchanges in the trace")
    test = TestCase("REPLAY_TRACE_01", f"replay of {path.name}", steps=tuple(steps), location=Location(str(path), 1))
    options = RunOptions(allow_destructive=True, continue_on_failure=True)
    if trace_out is not None:
        options.trace_dir = trace_out.parent
    result = run_test(card, Script(str(path)), test, options)
    if trace_out is not None:
        (trace_out.parent / f"{test.id}.jsonl").replace(trace_out)
    return ReplayReport(path, result)
