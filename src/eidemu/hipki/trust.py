"""The trusted-site list (``/addDomain``) and the domain check on each request.

The vendor's service keeps a list of sites the user has agreed to serve and answers other
sites ``0x76000031`` (untrusted) or ``0x7600000F`` (forbidden); its check works on the
``Origin``/``Referer`` a browser sends (``docs/hipki.md``, "Domain check"). eidemu keeps the
list as a JSON array of host names in a file, rewritten atomically on every change.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from .errors import HipkiError, RetCode


def valid_host(host: str) -> bool:
    """A host name or IPv4 literal: letters, digits, dots and dashes, 1-253 characters."""
    return 0 < len(host) <= 253 and all(c.isalnum() or c in ".-" for c in host) and host.isascii()


def origin_host(value: str) -> str | None:
    """The host of an ``Origin`` or ``Referer`` value (``http(s)://host[:port]/...``), lower
    case; None for ``null``, ``file:`` and anything without an http(s) host."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower()


class TrustedSites:
    """Host names the user has trusted, kept in ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None, initial: tuple[str, ...] = ()) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._hosts: set[str] = set()
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: not a JSON list of host names ({exc})") from None
            if not isinstance(loaded, list) or not all(isinstance(h, str) and valid_host(h) for h in loaded):
                raise ValueError(f"{path}: not a JSON list of host names")
            self._hosts.update(h.lower() for h in loaded)
        for host in initial:
            self.add(host)

    def __contains__(self, host: str) -> bool:
        with self._lock:
            return host.lower() in self._hosts

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(self._hosts)

    def add(self, host: str) -> None:
        if not valid_host(host):
            raise HipkiError(RetCode.BAD_PARAMETER, "domain is not a host name")
        with self._lock:
            if host.lower() in self._hosts:
                return
            self._hosts.add(host.lower())
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trusted-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(sorted(self._hosts), out, indent=1)
        os.replace(tmp, self.path)


def default_trust_file() -> Path:
    """``$XDG_CONFIG_HOME/eidemu/hipki-trusted-sites.json`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "eidemu" / "hipki-trusted-sites.json"


__all__ = ["TrustedSites", "default_trust_file", "origin_host", "valid_host"]
