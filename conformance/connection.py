"""One small interface to a card, whatever is behind it: the tester's contract.

:class:`CardConnection` is all the tester side needs: ``transmit`` (command bytes in,
response bytes with status word out), ``atr``, ``reset(cold)`` and ``close``. Every
connection implements it: in-process (:class:`InProcessConnection`), ``vpcd:``
(:mod:`eidemu.conformance.vpcd`), ``pcsc:`` (:mod:`eidemu.conformance.pcsc`) and ``served:``
(:mod:`eidemu.cards`). What only some connections can do is declared as a protocol of its
own and checked with ``isinstance``, never looked up by name: :class:`Rebuildable` (the
harness owns the card and can put it back in its initial state between tests).

:func:`open_card` turns a card URI into a connection. The schemes are entry points of the
group ``eidemu.card_schemes`` (name = scheme, value = an opener taking the text after the
colon); the ``emulator:`` and ``served:`` openers live in :mod:`eidemu.cards`, outside this
package, so the tester never imports the card it judges.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from eidemu.emulator.iso7816.apdu import ResponseAPDU

SCHEME_GROUP = "eidemu.card_schemes"


class CardConnectionError(Exception):
    """A card or reader that cannot be reached; the message is one line for users."""


@runtime_checkable
class CardConnection(Protocol):
    """What every card connection offers (in-process, ``vpcd:``, ``pcsc:``, ``served:``)."""

    description: str

    @property
    def atr(self) -> bytes:
        """The answer to reset of the last power-up or reset (ISO/IEC 7816-3:2006 §8)."""
        ...

    def transmit(self, command: bytes) -> bytes:
        """One command APDU out, the response with its status word back."""
        ...

    def reset(self, cold: bool = False) -> bytes:
        """Warm reset, or with ``cold`` a power cycle (deactivation, then cold reset,
        ISO/IEC 7816-3:2006 §6.2); returns the new ATR. Both clear the card's volatile
        security state (a verified PIN)."""
        ...

    def close(self) -> None:
        """Release the card (idempotent)."""
        ...


@runtime_checkable
class Rebuildable(Protocol):
    """An optional capability: the harness owns the card and can make it new.

    ``rebuild`` puts a freshly built card (initial file contents, PIN counters, keys)
    behind the connection and powers it up; returns the ATR. The runner rebuilds such
    cards before every test, so destructive tests run on them without
    ``--allow-destructive``."""

    def rebuild(self) -> bytes: ...


class SimulatedCard(Protocol):
    """What :class:`InProcessConnection` needs from a card object in this process: the same
    interface the vpcd transport drives (:class:`eidemu.emulator.transport.vpcd.PoweredCard`)."""

    atr: bytes

    def transmit(self, raw: bytes) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...


def exchange(connection: CardConnection, command: bytes) -> ResponseAPDU:
    """Transmit and split the response into data and status word."""
    return ResponseAPDU.parse(connection.transmit(command))


@runtime_checkable
class FaultControl(Protocol):
    """A connection whose card takes fault plans: what the scripts' ``fault arm RULES`` and
    ``fault clear`` steps need (docs/faults.md). Emulated cards opened in this process have
    it; a real card never does."""

    def arm(self, plan: str) -> None: ...

    def clear(self) -> None: ...


class ConnectionWrapper:
    """A :class:`CardConnection` that forwards everything to ``inner``; a subclass watches or
    changes what it needs (usually ``transmit``) and inherits the rest."""

    def __init__(self, inner: CardConnection) -> None:
        self.inner = inner
        self.description = inner.description

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, command: bytes) -> bytes:
        return self.inner.transmit(command)

    def reset(self, cold: bool = False) -> bytes:
        return self.inner.reset(cold)

    def close(self) -> None:
        self.inner.close()


class InProcessConnection:
    """A card object in this process (an emulated card): no reader, no sockets."""

    def __init__(self, card: SimulatedCard, description: str = "emulator") -> None:
        self.card = card
        self.description = description
        self._atr = card.power_on()

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        return self.card.transmit(command)

    def reset(self, cold: bool = False) -> bytes:
        if cold:
            self.card.power_off()
            self._atr = self.card.power_on()
        else:
            self._atr = self.card.reset()
        return self._atr

    def close(self) -> None:
        self.card.power_off()


Opener = Callable[[str], CardConnection]

# Openers registered in this process (tests, embedding applications); they take precedence
# over the installed entry points of the same scheme.
_REGISTERED: dict[str, Opener] = {}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Make ``scheme:`` open with ``opener`` in this process (installed schemes are entry points)."""
    _REGISTERED[scheme] = opener


def known_schemes() -> list[str]:
    """Every scheme :func:`open_card` accepts, sorted."""
    return sorted({*_REGISTERED, *(ep.name for ep in entry_points(group=SCHEME_GROUP))})


def _opener(scheme: str) -> Opener | None:
    if scheme in _REGISTERED:
        return _REGISTERED[scheme]
    for ep in entry_points(group=SCHEME_GROUP, name=scheme):
        try:
            opener: Opener = ep.load()
        except ImportError as exc:
            # The transports behind pcsc: and served: need pyscard (the pcsc extra).
            raise CardConnectionError(
                f"card URI scheme {scheme}: needs {exc.name or 'a package that is not installed'} "
                "(pip install 'eidemu[pcsc]' for pyscard)"
            ) from None
        return opener
    return None


def split_target(scheme: str, target: str, known: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``NAME?key=value&flag`` -> (NAME, options); an unknown or repeated option is a
    CardConnectionError.

    The name and the values are percent-decoded (RFC 3986 §2.1): a profile name or a state
    path holding ``?``, ``&``, ``=``, ``#`` or ``%`` is written with ``%3F``, ``%26``,
    ``%3D``, ``%23``, ``%25`` (:func:`quote_target_part`), so no option can be smuggled in
    through a name. ``eidemu apdu --profile NAME --state FILE`` quotes both itself.
    """
    from urllib.parse import unquote

    name, _, query = target.partition("?")
    options: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        key = unquote(key)
        if key not in known:
            raise CardConnectionError(f"unknown {scheme}: option {key!r} (known: {', '.join(known)})")
        if key in options:
            raise CardConnectionError(f"{scheme}: option {key!r} given twice")
        options[key] = unquote(value)
    return unquote(name), options


def quote_target_part(text: str) -> str:
    """``text`` percent-encoded for a card URI's name or option value (see :func:`split_target`)."""
    from urllib.parse import quote

    return quote(text, safe="/:@+,~")


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; empty host: localhost) into its parts.

    The one parser of socket addresses for card URIs and the command line; a ValueError
    names ``what`` (``--vpcd``, ``vpcd:``) and the text."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{what} expects HOST:PORT, not {text!r}")
    return host.strip("[]") or "localhost", int(port)


def open_card(uri: str) -> CardConnection:
    """Open ``emulator:<profile>[?state=FILE]``, ``pcsc:<reader>``, ``vpcd:<host:port>`` or
    ``served:<profile>`` (an emulated card served into vpcd, used over PC/SC)."""
    scheme, sep, target = uri.partition(":")
    if not sep:
        raise CardConnectionError(f"card URI {uri!r} needs a scheme: {', '.join(f'{s}:' for s in known_schemes())}")
    opener = _opener(scheme)
    if opener is None:
        raise CardConnectionError(f"unknown card URI scheme {scheme!r} (known: {', '.join(known_schemes())})")
    return opener(target)
