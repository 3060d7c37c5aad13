"""Persistent card state: what a real card keeps in EEPROM across power cycles.

The state file holds PIN retry counters and reference data, and the content of every file
changed since personalisation. It is JSON (never pickle: a state file is data a user may
inspect and must not be able to execute code). Every write is atomic: a temporary file in
the same directory, ``fsync``, ``rename`` over the old file, ``fsync`` of the directory;
a kill at any instant leaves either the old or the new state on disk.

**One card at a time.** A state file is used by one card at a time: the card holds an
exclusive lock (``flock``) on the sidecar file ``.NAME.lock`` beside the state file for its
whole life, and a second process that opens the same state file is refused with one line
(two processes each keeping their own counter would give twice the allowed tries). The
lock is on a sidecar file because every save replaces the state file's inode. Inside one
process a newly built card *takes over* the state file from an older one (harnesses
rebuild cards from their profile); the older card can no longer write, so any command of
it that would change a counter fails closed.

**Complete or refused.** :func:`validate_state` checks a loaded state against the card's
profile before anything is applied: every PIN present with a counter and a value of the
right type and range, every file known and of the right shape. Nothing is coerced.

**Fail closed.** When the state cannot be written, the command that needed the write is
answered ``6581`` (memory failure, ISO/IEC 7816-4 §5.1.3) before any comparison, and one
line says why; no counter changes without reaching the disk first. The format is
described in ``docs/state-files.md``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .formats.files import STATE_LIMIT, InputFileError, nesting_problem, read_bounded
from .iso7816.sw import SW, CardError

if TYPE_CHECKING:
    from .cardos.card import Card

STATE_VERSION = 1
STATE_KEYS = frozenset({"eidemu_state", "profile", "pins", "files"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*\Z")

log = logging.getLogger("eidemu.state")


class StateError(ValueError):
    """A state file that cannot be used (unreadable, foreign, incomplete, in use); one line."""


class StateWriteError(CardError):
    """The state could not be written: the command is refused with 6581 (fail closed)."""

    def __init__(self, message: str) -> None:
        super().__init__(SW.MEMORY_FAILURE, message)


# Locks held by this process: lock-file path -> (descriptor, the store that may write).
_HELD: dict[str, tuple[int, StateStore]] = {}
_HELD_GUARD = threading.Lock()


class StateStore:
    """Atomic load and save of one JSON state file, under an exclusive lock."""

    def __init__(self, path: str | os.PathLike[str], profile_id: str) -> None:
        self.path = Path(path)
        self.profile_id = profile_id
        self._acquired = False

    @property
    def lock_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.lock"

    def _lock_key(self) -> str:
        # One key per directory entry, however the path was spelled (relative, via links).
        return os.path.join(os.path.realpath(self.path.parent), self.lock_path.name)

    # -- the lock -------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the state file for this store: refused (StateError) while another process holds it."""
        key = self._lock_key()
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None:
                _HELD[key] = (held[0], self)  # take over from an older card of this process
                self._acquired = True
                return
            try:
                mode = os.stat(self.path).st_mode
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StateError(f"{self.path}: cannot use state file: {exc.strerror}") from None
            else:
                if not stat.S_ISREG(mode):  # no lock file beside a device or FIFO
                    raise StateError(f"{self.path}: state file is not a regular file")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise StateError(f"{self.path}: cannot use state file: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StateError(
                        f"{self.path}: state file is in use by another card (process {self._holder(key)}); "
                        "one state file serves one card at a time"
                    ) from None
                raise StateError(f"{self.path}: cannot lock state file: {exc.strerror}") from None
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError:
                pass  # the pid is for messages only
            _HELD[key] = (fd, self)
            self._acquired = True

    @staticmethod
    def _holder(lock_path: str) -> str:
        try:
            with open(lock_path, "rb") as fh:
                text = fh.read(32).decode("ascii", "replace").strip()
        except OSError:
            return "unknown"
        return text if text.isdigit() else "unknown"

    def owns_lock(self) -> bool:
        held = _HELD.get(self._lock_key())
        return held is not None and held[1] is self

    def release(self) -> None:
        """Give the state file up (also done by the operating system when the process ends)."""
        key = self._lock_key()
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None or held[1] is not self:
                return
            del _HELD[key]
            os.close(held[0])  # closing the last descriptor releases the flock

    # -- load and save --------------------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        """Lock the state file and return the saved state, or None when the card has never
        been used. The document is checked for its header here and against the card by
        :func:`validate_state`.

        Temporary files left by a process killed mid-write are removed here: the rename
        never happened, so they hold nothing the state file lacks.
        """
        self.acquire()
        self._remove_stale_temporaries()
        return self.read()

    def read(self) -> dict[str, Any] | None:
        """The saved state without taking the lock: for inspecting a state file that a card
        (perhaps in another process) is using. Atomic saves make every read consistent."""
        try:
            raw = read_bounded(self.path, STATE_LIMIT, "state file")
        except FileNotFoundError:
            return None
        except InputFileError as exc:
            raise StateError(str(exc)) from None
        try:
            doc = json.loads(raw)
        except RecursionError:
            raise StateError(f"{self.path}: state file is nested too deeply") from None
        except ValueError as exc:
            raise StateError(f"{self.path}: state file is not valid JSON: {_first_line(exc)}") from None
        problem = nesting_problem(doc)
        if problem:
            raise StateError(f"{self.path}: state file is {problem}")
        version = doc.get("eidemu_state") if isinstance(doc, dict) else None
        if type(version) is not int or version != STATE_VERSION:
            raise StateError(f"{self.path}: not an eidemu state file (version {STATE_VERSION})")
        if doc.get("profile") != self.profile_id:
            shown = doc.get("profile") if isinstance(doc.get("profile"), str) else "(not a name)"
            raise StateError(
                f"{self.path}: state belongs to profile {shown!r}, "
                f"not {self.profile_id!r}; use another state file or delete this one"
            )
        return doc

    def _remove_stale_temporaries(self, min_age: float = 10.0) -> None:
        now = time.time()
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                if now - leftover.stat().st_mtime >= min_age:
                    leftover.unlink()
            except OSError:
                pass  # another process's write in flight, or already gone

    def save(self, state: dict[str, Any]) -> None:
        """Write atomically; refused (StateWriteError, 6581) when the state cannot be written
        or another card has taken the state file over."""
        if not self._acquired:
            try:
                self.acquire()
            except StateError as exc:
                raise self._write_failed(str(exc)) from None
        if not self.owns_lock():
            raise self._write_failed(f"{self.path}: state file was taken over by another card; this card is retired")
        doc = {"eidemu_state": STATE_VERSION, "profile": self.profile_id, **state}
        payload = json.dumps(doc, sort_keys=True, indent=1).encode()
        directory = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise self._write_failed(f"{self.path}: cannot write state file: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise self._write_failed(f"{self.path}: cannot write state file: {exc.strerror}") from None
            raise
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise self._write_failed(f"{self.path}: cannot sync the state directory: {exc.strerror}") from None

    @staticmethod
    def _write_failed(message: str) -> StateWriteError:
        log.error("%s; the card refuses the command (6581)", message)
        return StateWriteError(message)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- validation against the card ------------------------------------------------------------


def validate_state(doc: Mapping[str, Any], card: Card, source: str) -> None:
    """Refuse (StateError) a state document that is incomplete or wrongly typed for ``card``.

    ``pins`` must name exactly the card's PINs (hex references, ``"01"``), each with an
    integer ``remaining`` in 0..tries and a hex ``value`` of an allowed length; ``files``
    maps paths of the card's EFs to hex content of the file's size (transparent) or a list
    of hex records that fit the file (record). No value is converted or clamped.
    """
    from .cardos.fs import RecordEF, TransparentEF

    def fail(where: str, message: str) -> StateError:
        return StateError(f"{source}: {where}: {message}")

    unknown = sorted(set(map(str, doc)) - STATE_KEYS)
    if unknown:
        raise fail("top level", f"unknown key {unknown[0]!r}")
    for key in ("pins", "files"):
        if key not in doc:
            raise fail("top level", f"missing {key!r}; a state file is complete or refused")
        if not isinstance(doc[key], dict):
            raise fail(key, f"expected an object, found {_json_type(doc[key])}")
    pins: dict[str, Any] = doc["pins"]
    expected = {f"{ref:02X}": pin for ref, pin in card.pins.items()}
    for name in pins:
        if name not in expected:
            raise fail(f"pins.{name}", f"state names PIN {name}, which the profile does not define")
    for name, pin in sorted(expected.items()):
        if name not in pins:
            raise fail("pins", f"PIN {name} is missing; a state file is complete or refused")
        saved = pins[name]
        where = f"pins.{name}"
        if not isinstance(saved, dict):
            raise fail(where, f"expected an object, found {_json_type(saved)}")
        extra = sorted(set(saved) - {"remaining", "value"})
        if extra:
            raise fail(where, f"unknown key {extra[0]!r}")
        for key in ("remaining", "value"):
            if key not in saved:
                raise fail(where, f"missing {key!r}")
        remaining = saved["remaining"]
        if type(remaining) is not int:
            raise fail(f"{where}.remaining", f"expected an integer, found {_json_type(remaining)}")
        if not 0 <= remaining <= pin.max_tries:
            raise fail(f"{where}.remaining", f"must be between 0 and {pin.max_tries}")
        value = _hex(saved["value"], f"{where}.value", fail)
        if not pin.min_length <= len(value) <= pin.max_length:
            raise fail(f"{where}.value", f"length must be within {pin.min_length}..{pin.max_length} bytes")
    for path, saved in doc["files"].items():
        where = f"files.{path}"
        try:
            f = card.mf.find_path(path)
        except (KeyError, ValueError):
            raise fail(where, f"state names file {path}, which the profile does not define") from None
        if isinstance(f, TransparentEF):
            data = _hex(saved, where, fail)
            if len(data) != len(f.data):
                raise fail(where, f"{len(data)} bytes for a file of {len(f.data)}")
        elif isinstance(f, RecordEF):
            if not isinstance(saved, list):
                raise fail(where, f"expected a list of records, found {_json_type(saved)}")
            if len(saved) > f.max_records:
                raise fail(where, f"{len(saved)} records for a file of at most {f.max_records}")
            for i, item in enumerate(saved):
                record = _hex(item, f"{where}[{i}]", fail)
                if len(record) > 255 or (f.record_size and len(record) != f.record_size):
                    raise fail(f"{where}[{i}]", "record length does not fit the file")
        else:
            raise fail(where, f"state names {path}, which is not an EF")


def _hex(value: object, where: str, fail: Callable[[str, str], StateError]) -> bytes:
    if not isinstance(value, str):
        raise fail(where, f"expected a hex string, found {_json_type(value)}")
    if not _HEX.match(value):
        raise fail(where, "not a hex string")
    return bytes.fromhex(value)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
