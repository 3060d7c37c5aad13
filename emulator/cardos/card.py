"""The card operating system: the layers an APDU passes through, PersoSim-style.

:meth:`Card.transmit` takes the raw command APDU through named steps, each a method that
can be called and tested on its own:

1. **Parse** (:meth:`CommandAPDU.parse <eidemu.emulator.iso7816.apdu.CommandAPDU.parse>`):
   ``6700`` for bytes that are no command APDU (ISO/IEC 7816-4:2020 §5.2).
2. **Class byte** (:meth:`ClassByte.decode <eidemu.emulator.iso7816.apdu.ClassByte.decode>`):
   logical channel, secure-messaging indication and command-chaining bit (§5.4.1); the
   channel must be open (``6881``), ``FF`` is no class (``6E00``).
3. **Secure messaging** (:meth:`Card.unwrap_command`): a protected command is checked and
   deciphered by the channel's session (§10; ICAO Doc 9303-11 §9.8); any secure-messaging
   error ends the session and is answered unprotected (9303-11 §9.8.4); a plain command
   ends the session. Applications only ever see plain commands with the interindustry
   class normalised to ``00``.
4. **Card-level commands** (:meth:`Card.card_level_command`): GET RESPONSE (§5.3.4,
   §11.6), MANAGE CHANNEL (§5.4.2, §11.1) and command chaining (§5.3.3) are the OS's; a
   whole command goes on.
5. **Application** (:meth:`Application.process`): the application current on the
   channel answers. Applications are registered by AID; the default application answers
   where no AID was selected.
6. **Response** (:meth:`Card.chain_response` then :meth:`Card.wrap_response`): long data
   is held back behind ``61xx`` (§5.3.4), and the answer to a protected command is
   protected by the session that unwrapped it.

The OS never lets an exception escape: a handler raises :class:`CardError` to answer a
status word; anything else is logged and answered ``6F00`` (and ends secure messaging,
whose counters can no longer be trusted).

Secure messaging from a protocol
--------------------------------
A protocol that establishes session keys (BAC or PACE, ICAO Doc 9303-11 §4.3, §4.4; a
secure channel of a later card) finishes with one call inside its command handler::

    channel.start_secure_messaging(CardSession(SessionKeys(BlockAlgorithm.AES, k_enc, k_mac, ssc)))

(:class:`~eidemu.emulator.iso7816.sm.CardSession`, or any object with the
:class:`SecureMessagingSession` methods). The session protects the channel from the next
command on; the command that installs it is answered as it came (a plain MUTUAL
AUTHENTICATE gets a plain answer; a protected command that replaces the keys gets an answer
under the old ones, as 9303-11 §6.2 asks of Chip Authentication).
:meth:`Channel.end_secure_messaging` drops it. The session ends by itself on a plain
command, an SM error, an unexpected error, on selecting another application and at reset.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ..iso7816.apdu import ClassByte, CommandAPDU, ResponseAPDU
from ..iso7816.crypto import BlockAlgorithm
from ..iso7816.sw import INS, SW, CardError
from .fs import DF, EF, File
from .security import Pin, SecurityState

if TYPE_CHECKING:
    from ..state import StateStore

log = logging.getLogger("eidemu.card")


class SecureMessagingSession(Protocol):
    """What the secure-messaging step needs from a session (ISO/IEC 7816-4:2020 §10):
    :class:`eidemu.emulator.iso7816.sm.CardSession` is one."""

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU:
        """The plain command inside a protected one; CardError (69xx) if it is not one."""
        ...

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        """The protected response data and the status word to send with it."""
        ...


@dataclass(repr=False)
class SymmetricKey:
    """A secret key object for EXTERNAL AUTHENTICATE or secure channels. Test keys only."""

    ref: int
    algorithm: BlockAlgorithm
    value: bytes = field(repr=False)

    def __repr__(self) -> str:  # keys never appear in logs
        return f"SymmetricKey(ref={self.ref:#04x}, algorithm={self.algorithm.value!r}, value=<redacted>)"


class ApplicationState:
    """Base of the typed state an application keeps per logical channel (for example a
    security environment set by MSE); applications subclass it."""


StateT = TypeVar("StateT", bound=ApplicationState)


@dataclass
class CommandChain:
    """The command chain being received on a channel (ISO/IEC 7816-4:2020 §5.3.3): the
    header every link must repeat and the data so far."""

    ins: int
    p1: int
    p2: int
    data: bytearray = field(default_factory=bytearray)

    def continues_with(self, cmd: CommandAPDU) -> bool:
        return (cmd.ins, cmd.p1, cmd.p2) == (self.ins, self.p1, self.p2)


@dataclass(eq=False)
class Channel:
    """A logical channel's volatile context (ISO/IEC 7816-4:2020 §5.4.2)."""

    number: int
    app: Application
    current_df: DF
    current_ef: EF | None = None
    security: SecurityState = field(default_factory=SecurityState)
    sm: SecureMessagingSession | None = None
    pending: bytes = b""
    """Response data held back behind 61xx for GET RESPONSE (§5.3.4)."""
    chain: CommandChain | None = None
    app_state: ApplicationState | None = None
    """The current application's own state on this channel (see :class:`ApplicationState`)."""

    def state(self, kind: type[StateT]) -> StateT:
        """The current application's state on this channel as a ``kind``: the one the
        channel holds, or a fresh one where it holds none (or another application's)."""
        if not isinstance(self.app_state, kind):
            self.app_state = kind()
        return self.app_state

    def start_secure_messaging(self, session: SecureMessagingSession) -> None:
        """Protect this channel with ``session`` from the next command on (see the module
        docstring): the one call a key-establishing protocol makes."""
        self.sm = session

    def end_secure_messaging(self) -> None:
        """Drop the channel's secure-messaging session, if any."""
        self.sm = None


Handler = Callable[[CommandAPDU, Channel], bytes]


@dataclass(frozen=True)
class NoOptions:
    """The options of an application that takes none."""


class OptionError(ValueError):
    """An application option that does not fit; ``path`` names it inside the options
    (``transport_key``, ``keys[1].usage``) so the profile loader can say where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Application:
    """Base of card applications: a table of instruction handlers and a class-byte rule.

    Subclasses add handlers in ``__init__`` (``self.handlers[INS.X] = self.method``).
    ``process`` receives commands with the interindustry class normalised to ``00``
    (channel, chaining and secure-messaging bits already consumed by the lower layers);
    proprietary class bytes (b8 = 1) arrive unchanged.

    ``options_type`` is the frozen dataclass of the application's profile options; the
    profile loader validates a profile's ``options`` against its fields and passes an
    instance to the constructor.
    """

    type_name: ClassVar[str] = "base"
    options_type: ClassVar[type[Any]] = NoOptions
    chained_by_protocol: ClassVar[frozenset[int]] = frozenset()
    """Instructions whose command chains the application answers link by link (the four
    GENERAL AUTHENTICATE steps of PACE, ICAO Doc 9303-11 §4.4.4.2): the OS does not
    collect them; each link reaches :meth:`process` with the chaining bit kept (class ``10``)."""

    def __init__(self, card: Card, df: DF, aid: bytes = b"", options: Any = None) -> None:
        self.card = card
        self.df = df
        self.aid = aid
        self.options: Any = options if options is not None else self.options_type()
        self.handlers: dict[int, Handler] = {}

    def accepts_class(self, cla: int) -> bool:
        """Interindustry class only, by default (ISO/IEC 7816-4:2020 §5.4.1)."""
        return cla == 0

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """The response data for ``cmd``; raises CardError for any other status word."""
        if not self.accepts_class(cmd.cla):
            raise CardError(SW.CLA_NOT_SUPPORTED)
        handler = self.handlers.get(cmd.ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(cmd, channel)

    def on_select(self, channel: Channel) -> None:
        """Called when the application becomes current on a channel: fresh channel state."""
        channel.app_state = None

    def reset(self) -> None:
        """Called on power-off and reset: drop any volatile state kept on the object."""

    def granted_authentications(self) -> frozenset[int]:
        """The ``auth:<ref>`` references this application grants by a protocol of its own
        rather than through a key object of the profile (a secure-messaging session, for
        example); ``profile check`` accepts access rules that name them."""
        return frozenset()


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
        self.tracer: Callable[[bytes, bytes, float], None] | None = None
        """Called with (command, response, start time) after each APDU; ``None`` for none."""
        self.random: Callable[[int], bytes] = os.urandom
        self.powered = False

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
        for app in (self.default_app, *self.applications.values()):
            app.reset()
        self.channels = {0: self._new_channel(0)}
        self.powered = True
        return self.atr

    def power_off(self) -> None:
        self.channels = {}
        for app in (self.default_app, *self.applications.values()):
            app.reset()
        self.powered = False

    def reset(self) -> bytes:
        """Warm reset: volatile state cleared exactly as after a power cycle."""
        self.power_off()
        return self.power_on()

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

    # -- transmission: the layers -----------------------------------------------------

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response APDU. Never raises."""
        if self.tracer is None:
            return self.process_apdu(raw)
        start = time.time()
        response = self.process_apdu(raw)
        self.tracer(raw, response, start)
        return response

    def process_apdu(self, raw: bytes) -> bytes:
        """The layers of the module docstring, in order. A step that has nothing to do for
        a command is not entered: secure messaging only for a protected command or on a
        channel with a session (a plain command just has its class normalised); card-level
        handling only for GET RESPONSE, MANAGE CHANNEL, chains and pending data; response
        chaining only for data beyond Ne."""
        if not self.powered:
            self.power_on()
        try:
            cmd = CommandAPDU.parse(raw)
            cla = ClassByte.decode(cmd.cla)
        except CardError as exc:
            return _status_bytes(exc.sw)
        channel = self.channels.get(cla.channel)
        if channel is None:
            return _status_bytes(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        session = channel.sm if cla.secure_messaging else None
        try:
            if cla.secure_messaging or channel.sm is not None:
                command = self.unwrap_command(cmd, cla, channel)
            elif cmd.cla != cla.application_class:
                command = cmd._replace(cla=cla.application_class)
            else:
                command = cmd
            if command.ins in _CARD_LEVEL_INS or cla.chained or channel.pending or channel.chain is not None:
                outcome = self.card_level_command(command, cla, channel)
            else:
                outcome = command
            if isinstance(outcome, ResponseAPDU):
                data, sw = outcome.data, outcome.sw
            else:
                data, sw = channel.app.process(outcome, channel), _NO_ERROR
                ne = outcome.ne
                if data and (ne is None or len(data) > ne or self.always_get_response):
                    chained = self.chain_response(data, ne, channel)
                    data, sw = chained.data, chained.sw
        except _SecureMessagingFailure as exc:
            return _status_bytes(exc.sw)  # unprotected: the session has ended
        except CardError as exc:
            data, sw = exc.data, exc.sw
        except Exception:
            log.exception("unexpected error handling %s; answering 6F00", _header(cmd))
            channel.end_secure_messaging()
            return _status_bytes(SW.NO_PRECISE_DIAGNOSIS)
        if session is not None:
            wrapped = self.wrap_response(ResponseAPDU(data, sw), session, channel)
            data, sw = wrapped.data, wrapped.sw
        return data + (_OK if sw == _NO_ERROR else sw.to_bytes(2, "big"))

    def unwrap_command(self, cmd: CommandAPDU, cla: ClassByte, channel: Channel) -> CommandAPDU:
        """The secure-messaging step: the plain command, class ``00`` for interindustry
        classes. A protected command without a session, or one the session refuses, ends
        the session and is answered unprotected (ICAO Doc 9303-11 §9.8.4); a plain command
        ends the session (ISO/IEC 7816-4:2020 §10)."""
        if not cla.secure_messaging:
            if channel.sm is not None:
                channel.end_secure_messaging()
            if cmd.cla != cla.application_class:
                cmd = cmd._replace(cla=cla.application_class)
            return cmd
        session = channel.sm
        if session is None:
            raise _SecureMessagingFailure(SW.SECURE_MESSAGING_NOT_SUPPORTED, "no secure messaging session")
        try:
            plain = session.unwrap(cmd)  # the session sees the class byte as sent: the MAC covers it
        except CardError as exc:
            channel.end_secure_messaging()
            raise _SecureMessagingFailure(exc.sw, str(exc)) from None
        return plain._replace(cla=cla.application_class)

    def card_level_command(self, cmd: CommandAPDU, cla: ClassByte, channel: Channel) -> ResponseAPDU | CommandAPDU:
        """What the OS answers itself, or the (whole) command for the application.

        GET RESPONSE with data pending (or with class ``00``) and MANAGE CHANNEL with class
        ``00`` are answered here whatever the application's handlers say; any other command
        drops pending response data (§5.3.4). A link of a command chain is collected and
        answered ``9000``; the last link hands the whole chain on (§5.3.3), except for the
        instructions the application chains itself (``Application.chained_by_protocol``).
        """
        if cmd.ins == INS.GET_RESPONSE and (channel.pending or cmd.cla == 0):
            return self.get_response(cmd, channel)
        channel.pending = b""
        if cmd.ins == INS.MANAGE_CHANNEL and cmd.cla == 0:
            return ResponseAPDU(self.manage_channel(cmd, channel), SW.NO_ERROR)
        if cla.chained and channel.chain is None and cmd.ins in channel.app.chained_by_protocol:
            return cmd._replace(cla=cmd.cla | _CHAINING_BIT)
        if cla.chained or channel.chain is not None:
            whole = self.collect_chain(cmd, channel, more=cla.chained)
            if whole is None:
                return ResponseAPDU(b"", SW.NO_ERROR)
            return whole
        return cmd

    def chain_response(self, data: bytes, ne: int | None, channel: Channel) -> ResponseAPDU:
        """Response chaining (ISO/IEC 7816-4:2020 §5.3.4): data beyond Ne (all of it in
        ``always_get_response`` mode) waits for GET RESPONSE behind ``61xx``, where xx is
        the number of bytes left (00 for 256 or more)."""
        if not data or (ne is not None and len(data) <= ne and not self.always_get_response):
            return ResponseAPDU(data, SW.NO_ERROR)
        now = 0 if self.always_get_response else (ne or 0)
        head, channel.pending = data[:now], data[now:]
        return ResponseAPDU(head, _more_data(len(channel.pending)))

    def wrap_response(self, response: ResponseAPDU, session: SecureMessagingSession, channel: Channel) -> ResponseAPDU:
        """The secure-messaging step on the way out: the response protected by the session
        that unwrapped the command (ISO/IEC 7816-4:2020 §10; ICAO Doc 9303-11 §9.8.5)."""
        try:
            data, sw = session.wrap(response.data, response.sw)
        except Exception:
            log.exception("secure messaging wrap failed; answering 6F00")
            channel.end_secure_messaging()
            return ResponseAPDU(b"", SW.NO_PRECISE_DIAGNOSIS)
        return ResponseAPDU(data, sw)

    # -- card-level commands ------------------------------------------------------------

    def get_response(self, cmd: CommandAPDU, channel: Channel) -> ResponseAPDU:
        """GET RESPONSE (ISO/IEC 7816-4:2020 §11.6; ISO/IEC 7816-3:2006 §12.2.3 for T=0)."""
        if cmd.p1p2 != 0:
            channel.pending = b""
            raise CardError(SW.INCORRECT_P1_P2)
        if not channel.pending:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "no response data pending")
        ne = cmd.ne or 256
        head, channel.pending = channel.pending[:ne], channel.pending[ne:]
        if channel.pending:
            return ResponseAPDU(head, _more_data(len(channel.pending)))
        return ResponseAPDU(head, SW.NO_ERROR)

    def collect_chain(self, cmd: CommandAPDU, channel: Channel, more: bool) -> CommandAPDU | None:
        """Command chaining (ISO/IEC 7816-4:2020 §5.3.3): collect data until the last link;
        then the whole command, else ``None``."""
        chain = channel.chain
        if chain is not None and not chain.continues_with(cmd):
            channel.chain = None
            raise CardError(SW.LAST_COMMAND_OF_CHAIN_EXPECTED, "chain interrupted by another command")
        if chain is None:
            chain = CommandChain(cmd.ins, cmd.p1, cmd.p2)
        if len(chain.data) + len(cmd.data) > 65535:
            channel.chain = None
            raise CardError(SW.WRONG_LENGTH, "chained data longer than 65535 bytes")
        chain.data += cmd.data
        if more:
            channel.chain = chain
            return None
        channel.chain = None
        return cmd._replace(data=bytes(chain.data))

    def manage_channel(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """MANAGE CHANNEL open (P1 00) and close (P1 80) (ISO/IEC 7816-4:2020 §11.1, §5.4.2)."""
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
                # §5.4.2: opened from a non-basic channel, the new one inherits its selection.
                new.app, new.current_df, new.current_ef = channel.app, channel.current_df, channel.current_ef
                channel.app.on_select(new)
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


_BYTES_REMAINING = 0x6100
# Bound once: an attribute look-up on an Enum class costs a few hundred nanoseconds in
# Python 3.11, on every APDU.
_NO_ERROR = SW.NO_ERROR
_OK = b"\x90\x00"
_CARD_LEVEL_INS = frozenset((INS.GET_RESPONSE, INS.MANAGE_CHANNEL))
_CHAINING_BIT = 0x10  # class byte b5 (ISO/IEC 7816-4:2020 §5.4.1)


def _status_bytes(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class _SecureMessagingFailure(CardError):
    """A secure-messaging error: answered without protection, the session ended."""


def _more_data(remaining: int) -> int:
    """61xx: xx response bytes still available, 00 for 256 or more (§5.3.4)."""
    return _BYTES_REMAINING | (remaining if remaining < 256 else 0)


def _header(cmd: CommandAPDU) -> str:
    return f"{cmd.cla:02X} {cmd.ins:02X} {cmd.p1:02X} {cmd.p2:02X}"
