"""One small interface to a card, whatever is behind it.

``CardConnection`` is all the tester side needs: ``transmit`` (command bytes in, response
bytes with status word out), ``reset`` and ``atr``. Implementations: the in-process emulator
(here); the virtual-reader and PC/SC connections plug in behind the same interface and are
chosen by one URI string (:func:`open_card`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.iso7816.apdu import ResponseAPDU


class CardConnectionError(Exception):
    """A card or reader that cannot be reached; the message is one line for users."""


@runtime_checkable
class CardConnection(Protocol):
    """Transmit, reset, ATR: what every card connection offers."""

    description: str

    @property
    def atr(self) -> bytes: ...

    def transmit(self, command: bytes) -> bytes: ...

    def reset(self) -> bytes: ...

    def close(self) -> None: ...


def exchange(connection: CardConnection, command: bytes) -> ResponseAPDU:
    """Transmit and split the response into data and status word."""
    return ResponseAPDU.parse(connection.transmit(command))


class InProcessConnection:
    """The emulator in this process: no reader, no sockets."""

    def __init__(self, card: Card, description: str = "emulator") -> None:
        self.card = card
        self.description = description
        if not card.powered:
            card.power_on()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, command: bytes) -> bytes:
        return self.card.transmit(command)

    def reset(self) -> bytes:
        return self.card.reset()

    def close(self) -> None:
        self.card.power_off()


# Scheme -> opener. Other modules register theirs (pcsc:, vpcd:) with register_scheme.
_SCHEMES: dict[str, Callable[[str], CardConnection]] = {}


def register_scheme(scheme: str, opener: Callable[[str], CardConnection]) -> None:
    _SCHEMES[scheme] = opener


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


def _open_emulator(target: str) -> CardConnection:
    from eidemu.emulator.profile import load_profile

    profile_name, options = split_target("emulator", target, ("state",))
    card = load_profile(profile_name).build(options.get("state") or None)
    return InProcessConnection(card, f"emulator:{profile_name}")


register_scheme("emulator", _open_emulator)


def open_card(uri: str) -> CardConnection:
    """Open ``emulator:<profile>[?state=FILE]``, ``pcsc:<reader>``, ``vpcd:<host:port>`` or
    ``served:<profile>`` (an emulated card served into vpcd, used over PC/SC)."""
    scheme, sep, target = uri.partition(":")
    if not sep:
        raise CardConnectionError(f"card URI {uri!r} needs a scheme: emulator:, pcsc: or vpcd:")
    if scheme not in _SCHEMES:
        _load_optional_schemes()
    opener = _SCHEMES.get(scheme)
    if opener is None:
        raise CardConnectionError(f"unknown card URI scheme {scheme!r} (known: {', '.join(sorted(_SCHEMES))})")
    return opener(target)


def _load_optional_schemes() -> None:
    """Transports that need optional packages register themselves on import."""
    import importlib

    for module in ("eidemu.conformance.pcsc", "eidemu.conformance.vpcd", "eidemu.conformance.served"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
