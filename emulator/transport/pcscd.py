"""A private pcscd with a vpcd reader, started without touching the system's pcscd.

pcscd 1.9 hard-codes its socket at ``/run/pcscd/pcscd.comm`` and refuses to run twice, so
the private instance runs in its own mount namespace (``unshare -m``) with a private run
directory bind-mounted over ``/run/pcscd``, and reads its reader configuration from its
own ``-c`` directory. Clients find it through ``PCSCLITE_CSOCK_NAME`` (honoured by
libpcsclite, hence pyscard, ``pcsc_scan`` and ``opensc-tool``); it must be set before the
client library is first used in a process, because libpcsclite caches the socket name.

The reader configuration is one vpcd reader (``FRIENDLYNAME "Virtual PCD"``) with two
slots on consecutive TCP ports: ``Virtual PCD 00 00`` on *port*, ``Virtual PCD 00 01`` on
*port + 1*; with ``readers=N``, N such readers (reader.conf(5) entries with distinct
``DEVICENAME`` ports and ``CHANNELID``), reader *k* on *port + 2k* and *port + 2k + 1*, so
slot *s* (counted across readers) is always on *port + s*. pcscd 1.9 numbers every vpcd
reader ``00`` whatever other readers share its FRIENDLYNAME, so reader *k* > 0 is named
``Virtual PCD k``: slot 3 is ``Virtual PCD 1 00 01``. vpcd binds every interface, so ports
are chosen free and below Linux's ephemeral range (where outgoing connections would otherwise collide with them).

Everything about a running instance (pid, socket, ports, log) lives in one run directory
with a ``state.json``, so ``stop`` and ``status`` from another process find it.

Reverse mode (``DEVICENAME host:port``) is not configured here: Debian's vpcd 0.8 makes
pcscd abort (``bit out of range 0 - FD_SETSIZE on fd_set``) as soon as a reverse-mode card
is absent at a poll. See docs/virtual-reader.md.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FRIENDLY_NAME = "Virtual PCD"
VPCD_SLOTS = 2  # Debian's vpcd is built with two slots per reader
DRIVER_GLOBS = (
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/lib/*/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
)
PCSCD_CANDIDATES = ("/usr/sbin/pcscd", "/usr/local/sbin/pcscd")
MAX_READERS = 8  # pcsc-lite: PCSCLITE_MAX_READERS_CONTEXTS = 16 slots in all
PORT_RANGE = (20000, 32000)  # below the default ephemeral range 32768-60999
STATE_FILE = "state.json"

# $1: private socket directory, $2: reader configuration directory. pcscd keeps the pid.
_NAMESPACE_SCRIPT = 'mkdir -p /run/pcscd && mount --bind "$1" /run/pcscd && exec "$3" -f -c "$2"'


def reader_name(slot: int, friendly_name: str = FRIENDLY_NAME) -> str:
    """The name pcscd gives a vpcd slot: ``FRIENDLYNAME <reader index> <slot>``, both as two
    hex digits (``Virtual PCD 00 00`` for slot 0 with the usual reader.conf). Slots are
    counted across readers of :data:`VPCD_SLOTS` slots each, reader *k* > 0 named
    ``FRIENDLYNAME k`` (:func:`reader_config`): slot 3 is ``Virtual PCD 1 00 01``."""
    return f"{friendly(slot // VPCD_SLOTS, friendly_name)} 00 {slot % VPCD_SLOTS:02X}"


def friendly(reader: int, friendly_name: str = FRIENDLY_NAME) -> str:
    """FRIENDLYNAME of vpcd reader ``reader``: the usual name for the first, numbered after."""
    return friendly_name if reader == 0 else f"{friendly_name} {reader}"


class PcscdError(RuntimeError):
    """The private pcscd cannot be started or reached; the message is one line for users."""


@dataclass
class PcscdInstance:
    """A running private pcscd and the vpcd reader it offers."""

    run_dir: str
    pid: int
    port: int
    slots: int = VPCD_SLOTS  # across all readers: readers * VPCD_SLOTS
    friendly_name: str = FRIENDLY_NAME
    started: float = field(default_factory=time.time)

    @property
    def readers(self) -> int:
        return self.slots // VPCD_SLOTS

    @property
    def socket_path(self) -> str:
        return str(Path(self.run_dir) / "sock" / "pcscd.comm")

    @property
    def log_path(self) -> str:
        return str(Path(self.run_dir) / "pcscd.log")

    @property
    def config_dir(self) -> str:
        return str(Path(self.run_dir) / "reader.conf.d")

    def reader_name(self, slot: int) -> str:
        return reader_name(slot, self.friendly_name)

    def slot_port(self, slot: int) -> int:
        return self.port + slot

    @property
    def environment(self) -> dict[str, str]:
        """What clients and ``eidemu serve`` need to find this instance."""
        return {"PCSCLITE_CSOCK_NAME": self.socket_path, "EIDEMU_VPCD": f"localhost:{self.port}"}

    def alive(self) -> bool:
        return _is_our_pcscd(self.pid, self.config_dir)

    def save(self) -> None:
        path = Path(self.run_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> PcscdInstance | None:
        try:
            data = json.loads((Path(run_dir) / STATE_FILE).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def default_run_dir() -> Path:
    """``$XDG_RUNTIME_DIR/eidemu-pcscd`` or ``<tmp>/eidemu-pcscd-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "eidemu-pcscd"
    return Path(tempfile.gettempdir()) / f"eidemu-pcscd-{os.getuid()}"


def find_driver() -> str | None:
    for pattern in DRIVER_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def find_pcscd() -> str | None:
    return shutil.which("pcscd") or next((p for p in PCSCD_CANDIDATES if os.access(p, os.X_OK)), None)


def missing_requirements() -> list[str]:
    """What is missing to run the stack, each as one instruction naming the package."""
    missing = []
    if find_pcscd() is None:
        missing.append("pcscd (apt-get install pcscd)")
    if find_driver() is None:
        missing.append("the vpcd driver (apt-get install vsmartcard-vpcd)")
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        missing.append("unshare and mount (apt-get install util-linux mount)")
    return missing


def pyscard_hint() -> str | None:
    """Why pyscard cannot be imported, with what to install; None when it can."""
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        return (
            "pyscard is not installed: pip install pyscard (building it needs Debian's libpcsclite-dev and swig: "
            "apt-get install libpcsclite-dev swig)"
        )
    return None


def port_free(port: int) -> bool:
    """True when nothing listens on ``port`` on any interface (vpcd binds INADDR_ANY).

    SO_REUSEADDR as vpcd sets it: connections of a stopped pcscd lingering in TIME_WAIT do
    not make a port busy, a listening socket does."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("0.0.0.0", port))  # noqa: S104 - probing exactly what vpcd will bind
        return True
    except OSError:
        return False
    finally:
        probe.close()


def pick_ports(slots: int = VPCD_SLOTS, attempts: int = 200) -> int:
    """A base port with ``slots`` consecutive free ports."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(PORT_RANGE[0], PORT_RANGE[1] - slots)
        if all(port_free(base + i) for i in range(slots)):
            return base
    raise PcscdError(f"no {slots} consecutive free TCP ports found in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def reader_config(port: int, drivers: list[str]) -> str:
    """reader.conf(5) text for one vpcd reader per driver path, reader *k* listening for cards
    on ``port + 2k`` and ``port + 2k + 1``, each with a FRIENDLYNAME of its own (pcscd would
    give readers sharing one the same name)."""
    entries = []
    for k, driver in enumerate(drivers):
        base = port + k * VPCD_SLOTS
        entries.append(
            f'FRIENDLYNAME "{friendly(k)}"\nDEVICENAME   /dev/null:{base}\nLIBPATH      {driver}\nCHANNELID    {base}\n'
        )
    return "\n".join(entries)


def driver_copies(driver: str, readers: int, directory: Path) -> list[str]:
    """The driver path for each of ``readers`` vpcd readers.

    Debian's vpcd 0.8 keeps its slots in a static array indexed by the slot number alone, so
    two readers loaded from one library share (and overwrite) each other's slots. pcscd
    loads each distinct LIBPATH as a library of its own (dlopen), so reader *k* > 0 gets a
    copy of the driver in the run directory, with state of its own."""
    paths = [driver]
    if readers > 1:
        directory.mkdir(parents=True, exist_ok=True)
    for k in range(1, readers):
        copy = directory / f"libifdvpcd-{k}.so"
        shutil.copyfile(driver, copy)
        paths.append(str(copy))
    return paths


def write_reader_config(config_dir: Path, port: int, driver: str, readers: int = 1) -> None:
    """The vpcd readers listening for cards on ``port`` (slot 0) and up (pcsc-lite reader.conf(5))."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for old in config_dir.iterdir():
        old.unlink()
    drivers: list[str] = driver_copies(driver, readers, config_dir.parent / "drivers") if driver else [""] * readers
    (config_dir / "vpcd").write_text(reader_config(port, drivers), encoding="utf-8")


def _namespace_command() -> list[str]:
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--propagation", "private"]
    # Without root, a user namespace may still allow the private mount (Debian 12 allows
    # unprivileged user namespaces by default); /run/pcscd must then exist already.
    return ["unshare", "--map-root-user", "--mount", "--propagation", "private"]


def start(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    readers: int = 1,
    timeout: float = 10.0,
) -> PcscdInstance:
    """Start a private pcscd and wait until its vpcd readers (``readers`` of two slots) listen for cards.

    Raises PcscdError (one line: what is missing, or why pcscd did not start).
    """
    missing = missing_requirements()
    if missing:
        raise PcscdError("cannot start pcscd; missing: " + "; ".join(missing))
    run_path = Path(run_dir) if run_dir is not None else default_run_dir()
    existing = PcscdInstance.load(run_path)
    if existing is not None and existing.alive():
        raise PcscdError(f"a private pcscd already runs from {run_path} (pid {existing.pid}); stop it first")
    sock_dir = run_path / "sock"
    sock_dir.mkdir(parents=True, exist_ok=True)
    for stale in sock_dir.iterdir():
        stale.unlink()
    if len(str(sock_dir / "pcscd.comm")) >= 100:
        raise PcscdError(f"run directory path too long for a UNIX socket: {run_path}")
    if not 1 <= readers <= MAX_READERS:
        raise PcscdError(f"readers must be from 1 to {MAX_READERS}")
    base = port if port is not None else pick_ports(readers * VPCD_SLOTS)
    instance = PcscdInstance(run_dir=str(run_path), pid=0, port=base, slots=readers * VPCD_SLOTS)
    write_reader_config(Path(instance.config_dir), base, find_driver() or "", readers)
    pcscd = find_pcscd() or "pcscd"
    argv = ["sh", "-c", _NAMESPACE_SCRIPT, "eidemu-pcscd", str(sock_dir), instance.config_dir, pcscd]
    with open(instance.log_path, "ab") as log_file:
        process = subprocess.Popen(
            [*_namespace_command(), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C in the starting shell does not reach pcscd
        )
    instance.pid = process.pid
    _PROCESSES[process.pid] = process
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            _PROCESSES.pop(process.pid, None)
            raise PcscdError(_start_failure(instance, code))
        if os.path.exists(instance.socket_path) and not any(port_free(base + i) for i in range(instance.slots)):
            break
        if time.monotonic() > deadline:
            _terminate(process.pid)
            raise PcscdError(f"pcscd did not offer its vpcd reader within {timeout:.0f} s; log: {instance.log_path}")
        time.sleep(0.01)
    instance.save()
    return instance


def _start_failure(instance: PcscdInstance, code: int) -> str:
    try:
        lines = Path(instance.log_path).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    last = lines[-1].strip() if lines else f"exit status {code}"
    if "unshare" in last or "mount" in last or "Operation not permitted" in last:
        return (
            f"cannot start a private pcscd: {last}; it needs root (or user namespaces) for 'unshare -m'. "
            "Run as root, or start the system pcscd with the vsmartcard-vpcd reader and use 'eidemu serve' alone"
        )
    return f"pcscd exited at start ({last}); log: {instance.log_path}"


def stop(run_dir: str | os.PathLike[str] | None = None, timeout: float = 5.0) -> PcscdInstance | None:
    """Stop the private pcscd of ``run_dir`` by its pid; None when none was running."""
    run_path = Path(run_dir) if run_dir is not None else default_run_dir()
    instance = PcscdInstance.load(run_path)
    if instance is None:
        return None
    running = instance.alive()
    if running:
        _terminate(instance.pid, timeout)
    with contextlib.suppress(OSError):
        (run_path / STATE_FILE).unlink()
    return instance if running else None


def restart(instance: PcscdInstance, timeout: float = 10.0) -> PcscdInstance:
    """Stop and start again with the same run directory, socket and ports."""
    stop(instance.run_dir)
    deadline = time.monotonic() + timeout
    while not all(port_free(instance.port + i) for i in range(instance.slots)):
        if time.monotonic() > deadline:
            raise PcscdError(f"vpcd ports {instance.port}+ still busy after pcscd stopped")
        time.sleep(0.01)
    return start(instance.run_dir, port=instance.port, readers=instance.readers, timeout=timeout)


def status(run_dir: str | os.PathLike[str] | None = None) -> PcscdInstance | None:
    """The running instance of ``run_dir``, or None."""
    instance = PcscdInstance.load(run_dir if run_dir is not None else default_run_dir())
    return instance if instance is not None and instance.alive() else None


# Popen objects of instances started by this process, so their exit status is collected.
_PROCESSES: dict[int, subprocess.Popen[bytes]] = {}


def _is_our_pcscd(pid: int, config_dir: str) -> bool:
    """The pid is alive and is a pcscd reading our configuration (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        return False
    return any(arg.endswith(b"pcscd") for arg in cmdline) and config_dir.encode() in cmdline


def _terminate(pid: int, timeout: float = 5.0) -> None:
    process = _PROCESSES.pop(pid, None)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None:
                if process.poll() is not None:
                    return
            elif not _pid_running(pid):
                return
            time.sleep(0.01)


def _pid_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
