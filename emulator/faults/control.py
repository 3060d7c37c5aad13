"""The fault control channel: arm, clear and inspect fault plans of a running card server.

A UNIX stream socket that only the same user can open: its directory is ``0700`` and the
socket ``0600`` (under ``$XDG_RUNTIME_DIR/eidemu``, else ``<tmp>/eidemu-<uid>``), and the
server also checks the peer's user id (``SO_PEERCRED``, unix(7)) before reading a byte.
``eidemu serve`` prints the path and exports nothing; ``eidemu fault`` finds it through
``--control``, ``$EIDEMU_FAULTS`` or the default path.

Protocol: one JSON object per line each way. Requests ``{"op": "arm", "slot": N, "plan":
{plan document}}``, ``{"op": "clear", "slot": N}``, ``{"op": "reinsert", "slot": N}``,
``{"op": "status", "slot": N or null}``; answers ``{"ok": true, ...}`` or ``{"ok": false,
"error": "one line"}``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .card import FaultyCard
from .plan import FaultPlan, PlanError

log = logging.getLogger("eidemu.faults")

SOCKET_NAME = "faults.sock"
MAX_REQUEST = 1 << 20


class ControlError(OSError):
    """The control channel cannot be opened or answered an error; one line for users."""


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/eidemu`` or ``<tmp>/eidemu-<uid>``, created ``0700``; refused
    when it exists with another owner or wider permissions."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    directory = Path(base) / "eidemu" if base else Path(tempfile.gettempdir()) / f"eidemu-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        raise ControlError(f"{directory}: cannot create the control directory: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ControlError(f"{directory}: not a private directory of this user (mode 0700 expected)")
    return directory


def default_path() -> Path:
    env = os.environ.get("EIDEMU_FAULTS")
    return Path(env) if env else runtime_dir() / SOCKET_NAME


Resolver = Callable[[int], FaultyCard | None]


class ControlServer:
    """Serves the control protocol for the cards ``resolve(slot)`` returns.

    ``reinsert(slot)`` brings back a card a fault withdrew (the transport's business);
    ``clear`` calls it too, so clearing a plan ends a removal it caused.
    """

    def __init__(
        self,
        resolve: Resolver,
        reinsert: Callable[[int], None],
        path: str | os.PathLike[str] | None = None,
        slots: Callable[[], list[int]] = list,
    ) -> None:
        self.resolve = resolve
        self.reinsert = reinsert
        self.slots = slots
        self.path = Path(path) if path is not None else self._free_default()
        try:
            self._server = _bind(self.path)
        except OSError as exc:
            if path is not None or exc.errno != errno.EADDRINUSE:
                raise ControlError(f"{self.path}: cannot create the control socket: {exc.strerror}") from None
            # Another server took the default name a moment ago: use this process's own.
            self.path = self.path.with_name(f"faults-{os.getpid()}.sock")
            self._server = _bind(self.path)
        os.chmod(self.path, 0o600)
        self._server.listen(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-control", daemon=True)

    @staticmethod
    def _free_default() -> Path:
        path = runtime_dir() / SOCKET_NAME
        if path.exists():
            if _alive(path):
                return path.with_name(f"faults-{os.getpid()}.sock")
            path.unlink()
        return path

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._server.close()
        self._thread.join(2.0)
        try:
            self.path.unlink()
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                try:
                    self._serve(conn)
                except Exception:
                    log.exception("fault control request failed")

    def _serve(self, conn: socket.socket) -> None:
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        del pid, gid
        if uid != os.getuid():
            conn.sendall(_line({"ok": False, "error": "permission denied"}))
            return
        conn.settimeout(5.0)
        reader = conn.makefile("rb")
        raw = reader.readline(MAX_REQUEST)
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            answer = self.handle(request)
        except (ValueError, PlanError) as exc:
            answer = {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        conn.sendall(_line(answer))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request as a dictionary; the answer as a dictionary (also for in-process use)."""
        op = request.get("op")
        slot = request.get("slot")
        if op == "status" and slot is None:
            return {"ok": True, "slots": {str(s): self._card(s).status() for s in self.slots()}}
        if not isinstance(slot, int) or isinstance(slot, bool):
            raise ValueError("'slot' must be a slot number")
        card = self._card(slot)
        if op == "arm":
            plan = FaultPlan.parse(request.get("plan"), f"slot {slot} plan")
            card.arm(plan)
            return {"ok": True, "slot": slot, "status": card.status()}
        if op == "clear":
            card.clear()
            self.reinsert(slot)
            return {"ok": True, "slot": slot, "status": card.status()}
        if op == "reinsert":
            self.reinsert(slot)
            return {"ok": True, "slot": slot}
        if op == "status":
            return {"ok": True, "slot": slot, "status": card.status()}
        raise ValueError(f"unknown op {op!r} (arm, clear, reinsert, status)")

    def _card(self, slot: int) -> FaultyCard:
        card = self.resolve(slot)
        if card is None:
            raise ValueError(f"slot {slot} holds no card")
        return card


def _bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, created with mode 0600 (umask 177 while binding)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        server.bind(str(path))
    except OSError:
        server.close()
        raise
    finally:
        os.umask(old_umask)
    return server


def _line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc) + "\n").encode()


def _alive(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def request(doc: dict[str, Any], path: str | os.PathLike[str] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send one request to a control server; its answer, or ControlError (one line)."""
    target = Path(path) if path is not None else default_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(target))
        except OSError as exc:
            raise ControlError(
                f"{target}: no fault control channel ({exc.strerror or exc}); is 'eidemu serve' running? "
                "(it prints the path; pass --control PATH or set EIDEMU_FAULTS)"
            ) from None
        sock.sendall(_line(doc))
        raw = sock.makefile("rb").readline(MAX_REQUEST)
    finally:
        sock.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        raise ControlError(f"{target}: the control channel answered no valid JSON") from None
    if not isinstance(answer, dict):
        raise ControlError(f"{target}: the control channel answered no JSON object")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "request refused")))
    return answer
