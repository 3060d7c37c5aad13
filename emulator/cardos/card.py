"""The card operating system: the layers an APDU passes through.

1. **Transmission** (this module): APDU parsing (6700 on malformed input), class byte
   decoding (ISO/IEC 7816-4 §5.4.1), logical channels and MANAGE CHANNEL (§5.4.1, §11.1.2),
   command chaining (CLA b5, §5.4.1), response chaining with ``61xx`` and GET RESPONSE
   (§5.1.3, §11.1.3 ... ISO 7816-3 §12.2.3 for T=0).
2. **Secure messaging** (:mod:`eidemu.emulator.iso7816.sm`): a per-channel session object unwraps
   protected commands and wraps responses, so applications only ever see plain commands.
3. **Applications**: the one current on the channel handles the command. Applications are
   registered by AID; the default application answers when no AID was selected.
4. **File system and security objects** shared by all applications.

The OS never lets an exception escape: a handler raises :class:`CardError` to answer a
status word, and anything else is logged and answered ``6F00``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import INS, SW, CardError
from .fs import DF, EF, File
from .security import Pin, SecurityState

if TYPE_CHECKING:
    from ..state import StateStore

log = logging.getLogger("eidemu.card")

OK = b"\x90\x00"
_GET_RESPONSE = int(INS.GET_RESPONSE)
_MANAGE_CHANNEL = int(INS.MANAGE_CHANNEL)
_new_tuple = tuple.__new__
_NO_TABLES: dict[int, Any] = {}
_CARD_LEVEL_INS = frozenset((_GET_RESPONSE, _MANAGE_CHANNEL))  # the OS answers these, not applications


class SecureMessagingSession(Protocol):
    """What the transmission layer needs from a secure-messaging session (§10)."""

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU: ...

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]: ...


@dataclass
class SymmetricKey:
    """A secret key object for EXTERNAL AUTHENTICATE or secure channels. Test keys only."""

    ref: int
    algorithm: str  # "3des" or "aes"
    value: bytes = field(repr=False)

    def __repr__(self) -> str:  # keys never appear in logs
        return f"SymmetricKey(ref={self.ref:#04x}, algorithm={self.algorithm!r})"


@dataclass(eq=False, slots=True)
class Channel:
    """A logical channel's volatile context (ISO 7816-4 §5.4.1)."""

    number: int
    app: Application
    current_df: DF
    current_ef: EF | None = None
    security: SecurityState = field(default_factory=SecurityState)
    sm: SecureMessagingSession | None = None
    pending: bytes = b""
    chain_header: tuple[int, int, int] | None = None
    chain_data: bytearray = field(default_factory=bytearray)
    app_state: dict[str, Any] = field(default_factory=dict)

    @property
    def current_file(self) -> File:
        return self.current_ef or self.current_df


Handler = Callable[[CommandAPDU, Channel], bytes]
FastHandler = Callable[[bytes, Channel], "bytes | None"]
"""A raw-bytes variant of a handler for its commonest case: the whole response APDU, or
``None`` (having changed nothing) to let the normal path answer."""


class Application:
    """Base of card applications: a table of instruction handlers and a class-byte rule.

    Subclasses add handlers in ``__init__`` (``self.handlers[INS.X] = self.method``).
    ``process`` receives commands with the interindustry class normalised to ``00``
    (channel, chaining and secure-messaging bits already consumed by the lower layers);
    proprietary class bytes (b8 = 1) arrive unchanged.
    """

    type_name = "base"

    def __init__(
        self,
        card: Card,
        df: DF,
        aid: bytes = b"",
        options: dict[str, Any] | None = None,
        base_dir: Path | None = None,
    ):
        self.card = card
        self.base_dir = base_dir
        self.df = df
        self.aid = aid
        self.options = dict(options or {})
        self.handlers: dict[int, Handler] = {}

    def accepts_class(self, cla: int) -> bool:
        """Interindustry class only, by default (ISO 7816-4 §5.4.1)."""
        return cla == 0

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if not self.accepts_class(cmd.cla):
            raise CardError(SW.CLA_NOT_SUPPORTED)
        handler = self.handlers.get(cmd.ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(cmd, channel)

    def handler_tables(self) -> dict[int, dict[int, Handler]]:
        """The handler table (by INS) for each class byte this application takes: the card's
        dispatch path, built at power-on. The tables are the live dictionaries, so handlers
        added later are seen; a command they do not name goes through :meth:`process`, which
        answers the error. An application that overrides ``process`` overrides this too, or
        gets no tables and keeps full control."""
        if type(self).process is not Application.process:
            return {}
        return {cla: self.handlers for cla in range(0x100) if self.accepts_class(cla)}

    def fast_handlers(self) -> dict[int, tuple[Callable[..., bytes], FastHandler]]:
        """Raw-byte stand-ins for handlers, by INS: ``(the handler function it stands in
        for, fast handler)``. The card uses one only for a command of at most 261 bytes on
        the basic channel without secure messaging, chaining or pending response data,
        and only while the dispatch table still holds that function bound to this
        application; the fast handler must answer exactly as the handler would."""
        return {}

    def on_select(self, channel: Channel) -> None:
        """Called when the application becomes current on a channel."""

    def reset(self) -> None:
        """Called on power-off and reset: drop any volatile state kept on the object."""


class Card:
    """An emulated card: ATR, file system, security objects, applications, channels.

    ``transmit`` takes a command APDU and always returns a response APDU. Power and reset
    clear every volatile state (channels, verified PINs, secure messaging, pending data);
    PIN counters and file contents survive them and, with a ``store``, process restarts.
    """

    def __init__(
        self,
        atr: bytes,
        mf: DF,
        *,
        pins: dict[int, Pin] | None = None,
        keys: dict[int, SymmetricKey] | None = None,
        data_objects: dict[int, bytes] | None = None,
        max_channels: int = 4,
        always_get_response: bool = False,
        name: str = "card",
        store: StateStore | None = None,
    ) -> None:
        self.atr = atr
        self.mf = mf
        self.pins = pins or {}
        self.keys = keys or {}
        self.data_objects = data_objects or {}
        self.max_channels = max_channels
        self.always_get_response = always_get_response
        self.name = name
        self.store = store
        self.applications: dict[bytes, Application] = {}
        self.default_app: Application = Application(self, mf)
        self.channels: dict[int, Channel] = {}
        self.dirty_files: set[str] = set()
        self._tracer: Callable[[bytes, bytes, float], None] | None = None
        self.random: Callable[[int], bytes] = os.urandom
        self.powered = False
        self._tables: dict[Application, dict[int, dict[int, Handler]]] = {}
        self._fast: dict[Application, dict[int, tuple[dict[int, Handler], Handler, FastHandler]]] = {}
        self.fast_path = True
        """Use applications' fast handlers (from the next power-on); off only to compare."""

    # -- configuration ---------------------------------------------------------------

    def set_default_application(self, app: Application) -> None:
        self.default_app = app

    def add_application(self, app: Application) -> None:
        if app.aid in self.applications:
            raise ValueError(f"duplicate application AID {app.aid.hex().upper()}")
        self.applications[app.aid] = app

    def application_for(self, aid: bytes, partial: bool = True) -> Application | None:
        app = self.applications.get(aid)
        if app is None and partial and aid:
            app = next((a for k, a in self.applications.items() if k.startswith(aid)), None)
        return app

    # -- power ------------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Cold start: fresh channel 0 on the default application; returns the ATR."""
        self.channels = {0: self._new_channel(0)}
        apps = (self.default_app, *self.applications.values())
        for app in apps:
            app.reset()
        self._tables = {app: app.handler_tables() for app in apps}
        self._fast = {app: self._fast_table(app) for app in apps} if self.fast_path else {}
        self.powered = True
        return self.atr

    def power_off(self) -> None:
        self.channels = {}
        self._fast = {}
        for app in (self.default_app, *self.applications.values()):
            app.reset()
        self.powered = False

    def reset(self) -> bytes:
        """Warm reset: volatile state cleared exactly as after a power cycle."""
        self.power_off()
        return self.power_on()

    def _fast_table(self, app: Application) -> dict[int, tuple[dict[int, Handler], Handler, FastHandler]]:
        """``CLA << 8 | INS`` -> (live table, handler, fast handler) for the fast handlers
        whose handler is in the application's table now (see Application.fast_handlers)."""
        fast: dict[int, tuple[dict[int, Handler], Handler, FastHandler]] = {}
        for cla, table in self._tables[app].items():
            for ins, (function, stand_in) in app.fast_handlers().items():
                handler = table.get(ins)
                if getattr(handler, "__func__", None) is function and getattr(handler, "__self__", None) is app:
                    fast[cla << 8 | ins] = (table, handler, stand_in)  # type: ignore[assignment]
        return fast

    def _new_channel(self, number: int) -> Channel:
        channel = Channel(number, self.default_app, self.mf)
        self.default_app.on_select(channel)
        return channel

    # -- persistence ------------------------------------------------------------------

    def mark_dirty(self, f: File) -> None:
        self.dirty_files.add(f.path)

    def persist(self) -> None:
        """Write PIN counters, PIN values and changed files to the state file, atomically."""
        if self.store is None:
            return
        self.store.save(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        files: dict[str, object] = {}
        for path in sorted(self.dirty_files):
            f = self.mf.find_path(path)
            if isinstance(f, EF):
                files[path] = f.snapshot()
        pins = {f"{p.ref:02X}": {"remaining": p.remaining, "value": p.value.hex()} for p in self.pins.values()}
        return {"pins": pins, "files": files}

    def restore(self, state: dict[str, Any]) -> None:
        """Apply a saved snapshot over the personalised card (see :mod:`eidemu.emulator.state`)."""
        for ref_hex, saved in state.get("pins", {}).items():
            pin = self.pins.get(int(ref_hex, 16))
            if pin is None:
                raise ValueError(f"state names PIN {ref_hex}, which the profile does not define")
            pin.remaining = max(0, min(int(saved["remaining"]), pin.max_tries))
            pin.value = bytes.fromhex(saved["value"])
        for path, saved in state.get("files", {}).items():
            try:
                f = self.mf.find_path(path)
            except KeyError:
                raise ValueError(f"state names file {path}, which the profile does not define") from None
            if not isinstance(f, EF):
                raise ValueError(f"state names {path}, which is not an EF")
            f.restore(saved)
            self.dirty_files.add(path)

    # -- transmission -----------------------------------------------------------------

    @property
    def tracer(self) -> Callable[[bytes, bytes, float], None] | None:
        """Called with (command, response, start time) after each APDU; ``None`` for none."""
        return self._tracer

    @tracer.setter
    def tracer(self, tracer: Callable[[bytes, bytes, float], None] | None) -> None:
        self._tracer = tracer
        if tracer is None:
            self.__dict__.pop("transmit", None)
        else:
            self.transmit = self._traced_transmit  # type: ignore[method-assign]

    def _traced_transmit(self, raw: bytes) -> bytes:
        start = time.time()
        response = Card.transmit(self, raw)
        if self._tracer is not None:
            self._tracer(raw, response, start)
        return response

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU. Never raises."""
        # The per-APDU hot path: plain ints and tuple indexing rather than enum members
        # and NamedTuple._replace, which cost microseconds each on every command.
        if self._fast and 4 < len(raw) <= 261:
            # A fast handler (Application.fast_handlers): the commonest commands without a
            # CommandAPDU or a frame per layer. Basic channel, no SM or chaining bits.
            cla = raw[0]
            if cla == 0 or 0x80 <= cla < 0xFF:
                channel = self.channels.get(0)
                if (
                    channel is not None
                    and channel.sm is None
                    and not channel.pending
                    and channel.chain_header is None
                    and not self.always_get_response
                ):
                    entry = self._fast.get(channel.app, _NO_TABLES).get(cla << 8 | raw[1])
                    if entry is not None and entry[0].get(raw[1]) is entry[1]:
                        try:
                            response = entry[2](raw, channel)
                        except Exception:
                            log.exception("unexpected error handling %s; answering 6F00", raw[:4].hex(" ").upper())
                            return b"\x6f\x00"
                        if response is not None:
                            return response
        if not self.powered:
            self.power_on()
        try:
            cmd = CommandAPDU.parse(raw)
        except CardError as exc:
            return exc.sw.to_bytes(2, "big")
        cla = cmd[0]
        if cla < 0x80:
            if cla < 0x40:  # first interindustry class: b2-b1 channel, b4-b3 SM
                number = cla & 0x03
                sm_bits = cla & 0x0C
            else:  # further interindustry class: b4-b1 channel 4..19, b6 SM
                number = 4 + (cla & 0x0F)
                sm_bits = cla & 0x20
            chained = cla & 0x10
            if cla and not sm_bits:
                cmd = _new_tuple(CommandAPDU, (0, *cmd[1:]))
        elif cla == 0xFF:
            return b"\x6e\x00"  # ISO 7816-3 reserves FF for PPS
        else:
            number = sm_bits = chained = 0
        channel = self.channels.get(number)
        if channel is None:
            return b"\x68\x81"
        session = channel.sm
        try:
            if sm_bits:
                if session is None:
                    raise CardError(SW.SECURE_MESSAGING_NOT_SUPPORTED, "no secure messaging session")
                try:
                    # The session sees the class byte as sent: the checksum covers it.
                    cmd = session.unwrap(cmd)._replace(cla=0)
                except CardError:
                    channel.sm = None  # ICAO 9303-11 §9.8.4: an SM error ends the session
                    raise
            elif session is not None:
                channel.sm = session = None  # a plain command ends secure messaging
            answer = None
            if chained or channel.pending or channel.chain_header is not None or cmd[1] in _CARD_LEVEL_INS:
                answer, cmd = self._card_level(cmd, channel, chained)
            if answer is not None:
                data, sw = answer
            else:
                # The application's dispatch table, or its process() for anything the table
                # does not name (errors included): one frame between the card and a handler.
                table = self._tables.get(channel.app, _NO_TABLES).get(cmd[0])
                handler = table.get(cmd[1]) if table is not None else None
                data = handler(cmd, channel) if handler is not None else channel.app.process(cmd, channel)
                sw = 0x9000
                if data:
                    ne = cmd[5]
                    if ne is None or len(data) > ne or self.always_get_response:
                        data, sw = self._chain_response(data, ne or 0, channel)
        except CardError as exc:
            data, sw, session = exc.data, exc.sw, channel.sm if sm_bits else None
        except Exception:
            log.exception("unexpected error handling %s; answering 6F00", _header(cmd))
            data, sw, session = b"", 0x6F00, None
        if sm_bits and session is not None:
            try:
                data, sw = session.wrap(data, sw)
            except Exception:
                log.exception("secure messaging wrap failed; answering 6F00")
                data, sw = b"", 0x6F00
        if sw == 0x9000:
            return data + b"\x90\x00"
        return data + sw.to_bytes(2, "big")

    def _card_level(
        self, cmd: CommandAPDU, channel: Channel, chained: int
    ) -> tuple[tuple[bytes, int] | None, CommandAPDU]:
        """What the OS answers itself (GET RESPONSE, MANAGE CHANNEL, a chain's links), as
        ``(answer, cmd)``; ``(None, cmd)`` hands ``cmd`` (a whole chain, once reassembled)
        to the application."""
        ins = cmd[1]
        if ins == _GET_RESPONSE and (channel.pending or cmd[0] == 0):
            return self._get_response(cmd, channel), cmd
        if channel.pending:
            channel.pending = b""
        if ins == _MANAGE_CHANNEL and cmd[0] == 0:
            return (self._manage_channel(cmd, channel), 0x9000), cmd
        if chained or channel.chain_header is not None:
            whole = self._chain(cmd, channel, chained)
            if whole is None:
                return (b"", 0x9000), cmd
            cmd = whole
        return None, cmd

    # ISO 7816-4 §5.1.3: 61xx tells the remaining bytes (00 for 256 or more).
    def _chain_response(self, data: bytes, ne: int, channel: Channel) -> tuple[bytes, int]:
        if self.always_get_response:
            ne = 0
        head, channel.pending = data[:ne], data[ne:]
        return head, 0x6100 | (len(channel.pending) & 0xFF if len(channel.pending) < 256 else 0)

    def _get_response(self, cmd: CommandAPDU, channel: Channel) -> tuple[bytes, int]:
        if cmd.p1p2 != 0:
            channel.pending = b""
            raise CardError(SW.INCORRECT_P1_P2)
        if not channel.pending:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "no response data pending")
        ne = cmd.ne or 256
        head, channel.pending = channel.pending[:ne], channel.pending[ne:]
        remaining = len(channel.pending)
        if remaining:
            return head, 0x6100 | (remaining if remaining < 256 else 0)
        return head, SW.NO_ERROR

    def _chain(self, cmd: CommandAPDU, channel: Channel, more: int) -> CommandAPDU | None:
        """Command chaining (ISO 7816-4 §5.3.3): collect data until the last command."""
        header = (cmd.ins, cmd.p1, cmd.p2)
        if channel.chain_header is not None and channel.chain_header != header:
            channel.chain_header, channel.chain_data = None, bytearray()
            raise CardError(SW.LAST_COMMAND_OF_CHAIN_EXPECTED, "chain interrupted by another command")
        if len(channel.chain_data) + len(cmd.data) > 65535:
            channel.chain_header, channel.chain_data = None, bytearray()
            raise CardError(SW.WRONG_LENGTH, "chained data longer than 65535 bytes")
        channel.chain_data += cmd.data
        if more:
            channel.chain_header = header
            return None
        data = bytes(channel.chain_data)
        channel.chain_header, channel.chain_data = None, bytearray()
        return cmd._replace(data=data)

    def _manage_channel(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """MANAGE CHANNEL open (P1 00) and close (P1 80), ISO 7816-4 §11.1.2."""
        if cmd.p1 == 0x00:
            if cmd.data:
                raise CardError(SW.WRONG_LENGTH)
            if cmd.p2 == 0:
                if cmd.ne is None:
                    raise CardError(SW.WRONG_LENGTH, "open with card-assigned number needs Le=01")
                free = [n for n in range(1, self.max_channels) if n not in self.channels]
                if not free:
                    raise CardError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED, "no free logical channel")
                number = free[0]
            else:
                number = cmd.p2
                if number >= self.max_channels:
                    raise CardError(SW.INCORRECT_P1_P2, f"channel {number} not supported")
                if number in self.channels:
                    raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, f"channel {number} already open")
            new = self._new_channel(number)
            if channel.number != 0:
                # §5.4.1: opened from a non-basic channel, the new one inherits its selection.
                new.app, new.current_df, new.current_ef = channel.app, channel.current_df, channel.current_ef
            self.channels[number] = new
            return bytes((number,)) if cmd.p2 == 0 else b""
        if cmd.p1 == 0x80:
            if cmd.data or cmd.ne is not None:
                raise CardError(SW.WRONG_LENGTH)
            number = cmd.p2 or channel.number
            if number == 0:
                raise CardError(SW.INCORRECT_P1_P2, "the basic channel cannot be closed")
            if number not in self.channels:
                raise CardError(SW.INCORRECT_P1_P2, f"channel {number} is not open")
            del self.channels[number]
            return b""
        raise CardError(SW.INCORRECT_P1_P2)


def _header(cmd: CommandAPDU) -> str:
    return f"{cmd.cla:02X} {cmd.ins:02X} {cmd.p1:02X} {cmd.p2:02X}"
