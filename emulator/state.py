"""Persistent card state: what a real card keeps in EEPROM across power cycles.

The state file holds PIN retry counters and reference data, and the content of every file
changed since personalisation. It is JSON (never pickle: a state file is data a user may
inspect and must not be able to execute code). Every write is atomic: a temporary file in
the same directory, ``fsync``, ``rename`` over the old file, ``fsync`` of the directory;
a kill at any instant leaves either the old or the new state on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

STATE_VERSION = 1


class StateError(ValueError):
    """A state file that cannot be used (unreadable, foreign, or from another profile)."""


class StateStore:
    """Atomic load and save of one JSON state file."""

    def __init__(self, path: str | os.PathLike[str], profile_id: str) -> None:
        self.path = Path(path)
        self.profile_id = profile_id

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when the card has never been used.

        Temporary files left by a process killed mid-write are removed here: the rename
        never happened, so they hold nothing the state file lacks.
        """
        self._remove_stale_temporaries()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state file: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise StateError(f"{self.path}: state file is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("eidemu_state") != STATE_VERSION:
            raise StateError(f"{self.path}: not an eidemu state file (version {STATE_VERSION})")
        if doc.get("profile") != self.profile_id:
            raise StateError(
                f"{self.path}: state belongs to profile {doc.get('profile')!r}, "
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
        doc = {"eidemu_state": STATE_VERSION, "profile": self.profile_id, **state}
        payload = json.dumps(doc, sort_keys=True, indent=1).encode()
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
