"""Reading input files with a bound: every file eidemu reads goes through :func:`read_bounded`.

A profile, a state file, a script or a trace named on the command line may be anything the
user (or an attacker who controls the name) points at: ``/dev/zero`` never ends, a FIFO
blocks on open, a directory cannot be read, a multi-gigabyte file exhausts memory. The
reader opens without blocking, refuses everything that is not a regular file, and refuses
files larger than the limit for their kind, each with one line naming the file.

The limits are generous for real inputs (the largest shipped profile is a few tens of
kilobytes, a 200 000-test script a few tens of megabytes) and small enough that a mistake
costs seconds, not the machine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MiB = 1 << 20

PROFILE_LIMIT = 16 * MiB
"""A YAML/JSON card profile."""
CONTENT_LIMIT = 16 * MiB
"""A file a profile names as EF content or key (an EF holds at most 16 MiB, the profile's ``size`` bound)."""
STATE_LIMIT = 64 * MiB
"""A state file: PIN counters and every changed EF, hex encoded."""
SCRIPT_LIMIT = 64 * MiB
"""A conformance script or a file it includes."""
TRACE_LIMIT = 64 * MiB
"""A trace or scriptor session to import or replay."""
DECLARATION_LIMIT = 4 * MiB
"""A card declaration file (``cards.yaml`` or ``--card-config``)."""

MAX_NESTING = 64
"""Deepest nesting of mappings and lists accepted in a YAML/JSON document (profiles, state
files, card declarations): a real profile nests about a dozen levels."""
MAX_NODES = 1_000_000
"""Most values a document may hold, counting each use of a YAML alias again (so a few
lines of aliases cannot stand for billions of values)."""


class InputFileError(ValueError):
    """A file that cannot be read as input; the message is one line naming the file."""


def read_bounded(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, refusing other file types and files over ``limit``.

    ``what`` names the kind of file in messages ("profile", "state file"). The file is
    opened with ``O_NONBLOCK`` so that a FIFO with no writer does not hang the open, and
    read up to ``limit + 1`` bytes so that a file growing while it is read is still caught.
    Raises :class:`InputFileError`; :class:`FileNotFoundError` passes through for callers
    that treat a missing file as "not yet created".
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputFileError(f"{name}: cannot read {what}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{name}: {what} is not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise InputFileError(f"{name}: {what} of {info.st_size} bytes exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InputFileError(f"{name}: {what} exceeds the limit of {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise InputFileError(f"{name}: cannot read {what}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text_bounded(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """:func:`read_bounded`, decoded as UTF-8; undecodable bytes are one line naming the place."""
    data = read_bounded(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(f"{os.fspath(path)}: line {line}: {what} is not UTF-8 text") from None


def nesting_problem(document: object, max_depth: int = MAX_NESTING, max_nodes: int = MAX_NODES) -> str | None:
    """Why a parsed document is too deep or too large to walk safely, or ``None``.

    Walks without recursion, so it is safe on any document a parser could build; every
    later (recursive) use of the document can then rely on the bounds.
    """
    stack: list[tuple[object, int]] = [(document, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return f"more than {max_nodes} values (aliases counted at each use)"
        if isinstance(value, dict):
            children: list[object] = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            children = list(value)
        else:
            continue
        if depth >= max_depth and children:
            return f"nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (after resolving links and ``..``) lies inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
