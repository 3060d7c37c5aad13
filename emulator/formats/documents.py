"""Declarative documents eidemu reads (card profiles, card declarations): YAML or JSON with
the rules every one of them follows.

- No implicit numbers in YAML: ``fid: 5000`` and ``ref: 0101`` stay the hex text the author
  wrote (plain YAML would read decimal 5000 and octal 65); fields that are counts convert
  their text as decimal where they are read.
- A key written twice in one mapping is an error (YAML and JSON both keep the last silently).
- Nesting is bounded (:data:`~eidemu.emulator.formats.files.MAX_NESTING`) while composing,
  before any recursion can run away.

Shared by the card side (profiles) and the tester (card declarations).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .files import MAX_NESTING, nesting_problem


class DocumentError(ValueError):
    """A document that does not parse; the message is one line naming the source and place."""


class _DocumentLoader(yaml.SafeLoader):
    """YAML without implicit numbers: ``fid: 5000`` and ``ref: 0101`` stay the hex text the
    author wrote (plain YAML would read them as decimal 5000 and octal 65); fields that
    are counts convert their text as decimal."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Nesting is bounded while composing, before any recursion can run away."""
        depth = getattr(self, "_eidemu_depth", 0) + 1
        if depth > MAX_NESTING:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_NESTING} levels", self.peek_event().start_mark
            )
        self._eidemu_depth = depth
        try:
            return super().compose_node(parent, index)
        finally:
            self._eidemu_depth = depth - 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """A key written twice in one mapping is an error (plain YAML keeps the last silently)."""
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    ) from None
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {str(key)[:40]!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (``json`` keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_document(text: str, source: str, json_syntax: bool = False) -> Any:
    """A YAML (or JSON) document with bounded nesting and size; DocumentError naming the place."""
    try:
        if json_syntax:
            doc = json.loads(text, object_pairs_hook=_unique_keys)
        else:
            doc = yaml.load(text, Loader=_DocumentLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise DocumentError(f"{source}: syntax error: duplicate key {exc.key[:40]!r}") from None
    except RecursionError:
        raise DocumentError(f"{source}: nested deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: line {exc.lineno}, column {exc.colno}: syntax error: {exc.msg}") from None
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(f"{source}: {where}syntax error: {problem}") from None
    problem = nesting_problem(doc)
    if problem:
        raise DocumentError(f"{source}: document is {problem}")
    return doc
