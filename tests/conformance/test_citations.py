"""Every citation in the tester's code, catalogue and docs resolves inside the repository or
names a public specification with its edition.

- ``docs/<file>.md "Heading"`` names a file of the repository and one of its headings;
- any ``docs/...md`` or ``fixtures/...`` path mentioned exists;
- an ISO/IEC 7816 clause (``§``) names its edition (``ISO/IEC 7816-4:2020 §11.5.6``);
- nothing points outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CITING = sorted(
    [
        *(ROOT / "conformance").rglob("*.py"),
        *(ROOT / "conformance" / "catalogue").glob("*.apdu"),
        *(ROOT / "src" / "eidemu").rglob("*.py"),
        ROOT / "docs" / "conformance-scripts.md",
        ROOT / "docs" / "virtual-reader.md",
        ROOT / "README.md",
    ]
)
HEADING_CITATION = re.compile(r'(?<![\w/.-])([\w./-]+\.md),? "([^"]+)"')
REPO_PATH = re.compile(r"(?<![\w/.-])((?:docs|fixtures|tests|benchmarks|scripts)/[\w./-]*\w)")
ISO_CLAUSE = re.compile(r"7816-\d+(?!:\d{4})\W{0,3}§")


def _headings(path: Path) -> set[str]:
    return {line.lstrip("#").strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


def _where(path: Path, text: str, index: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(p.relative_to(ROOT)))
def test_citations_resolve_inside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    problems = []
    for match in HEADING_CITATION.finditer(text):
        cited, heading = match.groups()
        target = ROOT / cited
        if not cited.startswith("docs/") or not target.is_file():
            problems.append(f"{_where(path, text, match.start())}: {cited} is not a file under docs/")
        elif heading not in _headings(target):
            problems.append(f"{_where(path, text, match.start())}: {cited} has no heading {heading!r}")
    for match in REPO_PATH.finditer(text):
        cited = match.group(1).rstrip(".")
        if "<" in cited or "*" in cited or "{" in cited:
            continue  # a pattern, not a path
        if not (ROOT / cited).exists():
            problems.append(f"{_where(path, text, match.start())}: {cited} does not exist in the repository")
    for match in ISO_CLAUSE.finditer(text):
        problems.append(f"{_where(path, text, match.start())}: an ISO/IEC 7816 clause without its edition")
    for outside in ("../shared", "/work/"):
        if outside in text:
            problems.append(f"{path.relative_to(ROOT)}: points outside the repository ({outside})")
    assert problems == []


def test_the_checker_finds_a_missing_heading() -> None:
    match = HEADING_CITATION.search('spec: docs/moica-card.md "ATRs"')
    assert match is not None and match.groups() == ("docs/moica-card.md", "ATRs")
    assert "ATRs" not in _headings(ROOT / "docs" / "moica-card.md")
    assert ISO_CLAUSE.search("ISO 7816-4 §5.1") and not ISO_CLAUSE.search("ISO/IEC 7816-4:2020 §11.5.6")
