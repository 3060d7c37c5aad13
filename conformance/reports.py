"""Reports of a conformance run: JUnit XML for CI, a self-contained HTML page for people.

JUnit XML follows the schema CI servers read (Jenkins, GitLab, GitHub actions): one
``<testsuite>`` per category, ``<failure>`` for FAILED, ``<error>`` for ERROR and
``<skipped>`` for SKIPPED, NOT APPLICABLE and NOT RUN (with the verdict and reason, so they stay
apart: NOT RUN names the variables the card's declaration does not set).

The HTML report needs no network or script: a summary by category with an inline SVG bar
chart, then every test, failures first, with each step's APDU and response decoded. PIN
data is masked with :func:`eidemu.emulator.iso7816.trace.redacted_hex`.
"""

from __future__ import annotations

import html
import platform
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence

from eidemu.emulator.iso7816.sw import describe_ins, describe_sw
from eidemu.emulator.iso7816.trace import redacted_hex

from .runner import OUTCOME_ORDER, Outcome, StepResult, TestResult, summary

COLOURS = {
    Outcome.PASSED: "#2e7d32",
    Outcome.FAILED: "#c62828",
    Outcome.ERROR: "#6a1b9a",
    Outcome.SKIPPED: "#f9a825",
    Outcome.NOT_RUN: "#ef6c00",
    Outcome.NOT_APPLICABLE: "#9e9e9e",
}


def by_category(results: Sequence[TestResult]) -> dict[str, list[TestResult]]:
    groups: dict[str, list[TestResult]] = defaultdict(list)
    for r in results:
        groups[r.test.group].append(r)
    return dict(sorted(groups.items()))


def failures_first(results: Sequence[TestResult]) -> list[TestResult]:
    rank = {o: i for i, o in enumerate(OUTCOME_ORDER)}
    return sorted(results, key=lambda r: rank[r.outcome])  # stable: file order inside each verdict


# -- JUnit XML -------------------------------------------------------------------------------


def junit_xml(results: Sequence[TestResult], name: str = "eidemu-conformance") -> str:
    """The results as JUnit XML (testsuites / testsuite per category / testcase)."""
    root = ET.Element("testsuites", name=name)
    totals = summary(results)
    root.set("tests", str(len(results)))
    root.set("failures", str(totals[Outcome.FAILED]))
    root.set("errors", str(totals[Outcome.ERROR]))
    root.set("skipped", str(_skipped(totals)))
    root.set("time", f"{sum(r.duration for r in results):.3f}")
    for category, group in by_category(results).items():
        counts = summary(group)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=category,
            tests=str(len(group)),
            failures=str(counts[Outcome.FAILED]),
            errors=str(counts[Outcome.ERROR]),
            skipped=str(_skipped(counts)),
            time=f"{sum(r.duration for r in group):.3f}",
        )
        for r in group:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=category,
                name=r.test.id,
                time=f"{r.duration:.3f}",
                file=r.test.location.path,
            )
            case.set("line", str(r.test.location.line))
            if r.outcome == Outcome.FAILED:
                failure = ET.SubElement(case, "failure", message=r.message, type="FAILED")
                failure.text = _details(r)
            elif r.outcome == Outcome.ERROR:
                error = ET.SubElement(case, "error", message=r.message, type="ERROR")
                error.text = _details(r)
            elif r.outcome in SKIPPED_OUTCOMES:
                ET.SubElement(case, "skipped", message=f"{r.outcome}: {r.message}")
            props = ET.SubElement(case, "properties")
            for key, value in (("title", r.test.title), ("spec", r.test.spec), ("card", r.card)):
                ET.SubElement(props, "property", name=key, value=value)
            if r.steps:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(format_step(s) for s in r.steps)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


SKIPPED_OUTCOMES = (Outcome.SKIPPED, Outcome.NOT_APPLICABLE, Outcome.NOT_RUN)


def _skipped(counts: dict[Outcome, int]) -> int:
    return sum(counts[o] for o in SKIPPED_OUTCOMES)


def _details(r: TestResult) -> str:
    lines = [f"{r.test.id}: {r.test.title}", f"spec: {r.test.spec}", r.message]
    if r.expected or r.received:
        lines += [f"expected: {r.expected}", f"received: {r.received}"]
    return "\n".join(lines)


def format_step(step: StepResult) -> str:
    """One step as text: '> command  INS' / '< response  SW name', plus what did not match."""
    if step.kind != "send":
        text = f"[{step.index}] {step.kind}" + (f"  ATR {step.response.hex(' ').upper()}" if step.response else "")
    elif not step.command:
        text = f"[{step.index}] > (not sent)"
    else:
        text = f"[{step.index}] > {_spaced(redacted_hex(step.command))}  {_ins_name(step.command)}"
        if len(step.response) >= 2:
            sw = int.from_bytes(step.response[-2:], "big")
            text += f"\n    < {_spaced(step.response.hex().upper())}  {describe_sw(sw)}"
    for m in step.mismatches:
        text += f"\n    ! {m}"
    if step.error:
        text += f"\n    ! {step.error}"
    return text


def _spaced(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def _ins_name(command: bytes) -> str:
    return describe_ins(command[1]) if len(command) > 1 else "MALFORMED"


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}
th{background:#f4f4f4}.mono{font-family:ui-monospace,monospace;font-size:.9em;white-space:pre-wrap;word-break:break-all}
.v{font-weight:bold;color:#fff;padding:.1em .5em;border-radius:.3em;white-space:nowrap}
details{border:1px solid #ddd;border-radius:.3em;margin:.4em 0;padding:.3em .6em}summary{cursor:pointer}
.bad{background:#fdecea}.meta{color:#555}
"""


def _badge(outcome: Outcome) -> str:
    return f'<span class="v" style="background:{COLOURS[outcome]}">{html.escape(str(outcome))}</span>'


def _chart(groups: dict[str, list[TestResult]]) -> str:
    """A horizontal stacked bar per category, as inline SVG."""
    row, label_w, bar_w = 22, 170, 420
    height = row * len(groups) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" height="{height}" role="img">']
    widest = max((len(g) for g in groups.values()), default=1)
    for i, (category, group) in enumerate(groups.items()):
        y = i * row + 4
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(category)}</text>')
        x = float(label_w)
        counts = summary(group)
        for outcome in OUTCOME_ORDER:
            n = counts[outcome]
            if not n:
                continue
            w = bar_w * n / widest
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{COLOURS[outcome]}">'
                f"<title>{html.escape(category)}: {n} {outcome}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}" font-size="11">{len(group)}</text>')
    legend_y = row * len(groups) + 22
    x = 0
    for outcome in OUTCOME_ORDER:
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="10" height="10" fill="{COLOURS[outcome]}"/>')
        parts.append(f'<text x="{x + 14}" y="{legend_y}" font-size="11">{outcome}</text>')
        x += 120
    parts.append("</svg>")
    return "".join(parts)


def _step_rows(result: TestResult) -> str:
    rows = []
    for s in result.steps:
        where = html.escape(str(s.location))
        if s.kind == "send":
            cmd = _spaced(redacted_hex(s.command))
            resp = ""
            if len(s.response) >= 2:
                sw = int.from_bytes(s.response[-2:], "big")
                data = s.response[:-2]
                resp = (_spaced(data.hex().upper()) + "\n" if data else "") + f"{sw:04X} {describe_sw(sw)}"
            sent = f"{html.escape(cmd)}\n{_ins_name(s.command)}"
        else:
            sent, resp = s.kind, (f"ATR {s.response.hex(' ').upper()}" if s.response else "")
        problems = [str(m) for m in s.mismatches] + ([s.error] if s.error else [])
        verdict = html.escape("; ".join(problems)) if problems else "ok"
        cls = ' class="bad"' if problems else ""
        rows.append(
            f"<tr{cls}><td>{s.index}</td><td>{where}</td><td class=mono>{sent}</td>"
            f"<td class=mono>{html.escape(resp)}</td><td>{verdict}</td></tr>"
        )
    return "".join(rows)


def html_report(results: Sequence[TestResult], card: str = "", title: str = "eidemu conformance report") -> str:
    """A self-contained HTML page: summary, chart, then tests with failures first."""
    groups = by_category(results)
    totals = summary(results)
    out = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=meta>card: <b>{html.escape(card)}</b> · {len(results)} tests · "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} · Python {platform.python_version()}</p>",
        "<p>" + " ".join(f"{_badge(o)} {totals[o]}" for o in OUTCOME_ORDER) + "</p>",
        "<h2>Summary by category</h2>",
        _chart(groups),
        "<table><tr><th>category</th>" + "".join(f"<th>{o}</th>" for o in OUTCOME_ORDER) + "<th>total</th></tr>",
    ]
    for category, group in groups.items():
        counts = summary(group)
        out.append(
            f"<tr><td>{html.escape(category)}</td>"
            + "".join(f"<td>{counts[o] or ''}</td>" for o in OUTCOME_ORDER)
            + f"<td>{len(group)}</td></tr>"
        )
    out.append("</table><h2>Tests (failures first)</h2>")
    for r in failures_first(results):
        t = r.test
        attention = r.outcome in (Outcome.FAILED, Outcome.ERROR)
        out.append(f'<details id="{html.escape(t.id)}"{" open" if attention else ""}>')
        out.append(f"<summary>{_badge(r.outcome)} <b>{html.escape(t.id)}</b> {html.escape(t.title)}</summary>")
        meta = [
            ("purpose", t.purpose),
            ("spec", t.spec),
            ("tokens", ", ".join(t.tokens)),
            ("preconditions", "; ".join(t.preconditions)),
            ("destructive", "yes" if t.destructive else ""),
            ("source", str(t.location)),
            ("result", r.message),
            ("expected", r.expected),
            ("received", r.received),
            ("time", f"{r.duration * 1000:.1f} ms" if r.steps else ""),
        ]
        out.append("<table>" + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in meta if v))
        out.append("</table>")
        if r.steps:
            out.append("<table><tr><th>#</th><th>source</th><th>command</th><th>response</th><th>check</th></tr>")
            out.append(_step_rows(r))
            out.append("</table>")
        out.append("</details>")
    out.append("</body></html>\n")
    return "\n".join(out)
