"""Run the README's "In Python" example as a user would: the code block, verbatim.

Usage: ``python scripts/readme_example.py README.md`` (tox's ``wheel`` environment runs it
in a fresh virtual environment that holds only the built wheel).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def python_example(readme: str) -> str:
    section = readme.split("### In Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    if match is None:
        raise SystemExit("README: no python block under 'In Python'")
    return match.group(1)


if __name__ == "__main__":
    code = python_example(Path(sys.argv[1]).read_text(encoding="utf-8"))
    exec(compile(code, "README.md (In Python)", "exec"), {"__name__": "__main__"})  # noqa: S102
