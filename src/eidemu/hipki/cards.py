"""The cards behind the service: slots (readers) that come and go, and what each token holds.

The service talks to cards only through the tester's connection layer
(:func:`eidemu.conformance.connection.open_card`, :class:`~eidemu.conformance.pcsc.PcscContext`)
and the middleware-style MOICA client (:class:`eidemu.conformance.moica.MoicaCard`); this module
is the one place that imports them, so a change there is mended here.

PC/SC slots come from a :class:`~eidemu.conformance.pcsc.ReaderWatcher`, a thread that
pcscd wakes on every reader or card event (``SCardGetStatusChange``, PC/SC Workgroup
specification part 5 §3.1.4), so a request costs no round trip to learn them; ``fresh=True``
asks pcscd directly (``SCardListReaders`` and ``SCardGetStatusChange``), which
``/pkcs11info`` does and a request does whenever the remembered view leads nowhere (see
:meth:`eidemu.hipki.service.HipkiService.with_card`). The high 16 bits of pcsc-lite's event
state count the card events of a reader, so a card removed and another inserted is seen as a
new card. ``emulator:`` URIs have one fixed slot whose card the test-control endpoint can
remove and insert.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import x509

from eidemu.conformance.connection import (
    CardConnection,
    CardConnectionError,
    ConnectionWrapper,
    InProcessConnection,
    split_target,
)
from eidemu.conformance.moica import InvalidPinError, MoicaCard, MoicaError, PinBlockedError, strip_type2_padding
from eidemu.emulator.formats.moica_asn1 import OID_SUBJECT_DIRECTORY_ATTRIBUTES, decode_moica_sda

__all__ = [
    "CardConnection",
    "CardConnectionError",
    "CardSource",
    "ConnectionWrapper",
    "EmulatorSource",
    "InvalidPinError",
    "MoicaCard",
    "MoicaError",
    "PcscSource",
    "PinBlockedError",
    "SlotState",
    "Token",
    "TokenCertificate",
    "open_source",
    "read_token",
    "strip_type2_padding",
]


@dataclass(frozen=True)
class SlotState:
    """One reader as seen now: PKCS#11's slot (PKCS#11 v2.40 §4.2 CK_SLOT_INFO)."""

    slot_id: int
    description: str
    present: bool
    generation: int  # changes whenever a card is inserted or removed


class CardSource(Protocol):
    """Where the cards are: the slots now, and a connection to the card in one of them."""

    description: str

    def slots(self, fresh: bool = False) -> list[SlotState]:
        """The slots now; ``fresh`` asks the readers themselves rather than a remembered view."""
        ...

    def connect(self, slot: SlotState) -> CardConnection: ...

    def release(self, slot: SlotState, connection: CardConnection) -> None: ...

    def close(self) -> None: ...


# -- emulator: one fixed slot ------------------------------------------------------------------


class EmulatorSource:
    """``emulator:<profile>[?state=FILE]``: one slot holding the emulated card, in process."""

    SLOT_NAME = "eidemu emulated reader 00"

    def __init__(self, target: str) -> None:
        from eidemu.emulator.profile import load_profile

        self.profile_name, options = split_target("emulator", target, ("state",))
        self.description = f"emulator:{self.profile_name}"
        self._build = lambda: load_profile(self.profile_name).build(options.get("state") or None)
        self.card = self._build()
        self.present = True
        self.generation = 1
        self._lock = threading.Lock()

    def slots(self, fresh: bool = False) -> list[SlotState]:
        with self._lock:
            return [SlotState(0, self.SLOT_NAME, self.present, self.generation)]

    def close(self) -> None:
        """Nothing runs in the background."""

    def connect(self, slot: SlotState) -> CardConnection:
        with self._lock:
            if not self.present or slot.generation != self.generation:
                raise CardConnectionError(f"no card in reader {self.SLOT_NAME!r}")
            return InProcessConnection(self.card, self.description)

    def release(self, slot: SlotState, connection: CardConnection) -> None:
        """The in-process card stays powered; nothing to release."""

    def remove(self) -> None:
        """Take the card out of the slot (test control)."""
        with self._lock:
            if self.present:
                self.present = False
                self.generation += 1

    def insert(self) -> None:
        """Put the card (the same one, state kept) back into the slot (test control)."""
        with self._lock:
            if not self.present:
                self.present = True
                self.generation += 1
                self.card.power_on()


# -- PC/SC: every reader pcscd offers ------------------------------------------------------------


class PcscSource:
    """``pcsc:[PREFIX]``: every PC/SC reader whose name starts with PREFIX (all when empty),
    followed live. Slot IDs are given in the order readers are first seen and kept."""

    def __init__(self, target: str) -> None:
        from eidemu.conformance import pcsc

        self._pcsc = pcsc
        self.prefix, _ = split_target("pcsc", target, ())
        self.description = f"pcsc:{self.prefix}"
        self._ids: dict[str, int] = {}
        self._context: pcsc.PcscContext | None = None
        self._lock = threading.Lock()
        self._watcher = pcsc.ReaderWatcher()

    def slots(self, fresh: bool = False) -> list[SlotState]:
        from smartcard import scard

        states = None if fresh else self._watcher.states()
        with self._lock:
            if states is None:
                states = self._ask_pcscd()
            found = []
            for name, (bits, _atr) in states.items():
                if self.prefix and not name.startswith(self.prefix):
                    continue
                slot_id = self._ids.setdefault(name, len(self._ids))
                present = bool(bits & scard.SCARD_STATE_PRESENT) and not bits & scard.SCARD_STATE_MUTE
                found.append(SlotState(slot_id, name, present, (bits >> 16) & 0xFFFF))
            return sorted(found, key=lambda s: s.slot_id)

    def _ask_pcscd(self) -> dict[str, tuple[int, bytes]]:
        try:
            if self._context is None:
                self._context = self._pcsc.PcscContext()
            return self._context.reader_states()
        except CardConnectionError:
            if self._context is not None:
                self._context.close()
            self._context = None  # pcscd restarted: a new context next time
            raise

    def connect(self, slot: SlotState) -> CardConnection:
        return self._pcsc.PcscConnection(slot.description)

    def release(self, slot: SlotState, connection: CardConnection) -> None:
        connection.close()

    def close(self) -> None:
        self._watcher.close()
        with self._lock:
            if self._context is not None:
                self._context.close()
                self._context = None


def open_source(uri: str) -> CardSource:
    """The card source a ``--card`` URI names: ``emulator:`` or ``pcsc:``."""
    scheme, sep, target = uri.partition(":")
    if scheme == "emulator" and sep:
        return EmulatorSource(target)
    if scheme == "pcsc" and sep:
        try:
            return PcscSource(target)
        except ImportError:
            raise CardConnectionError("pcsc: needs pyscard (pip install 'eidemu[pcsc]')") from None
    raise CardConnectionError(f"--card {uri!r}: the service serves emulator:<profile> or pcsc:[reader prefix]")


# -- what a token holds --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCertificate:
    """A user certificate on the card and the private key that goes with it."""

    id: bytes  # PKCS#15 iD, e.g. b"SIGN"
    label: str
    der: bytes
    cert: x509.Certificate
    key_reference: int | None
    usage: str  # "digitalSignature" or "keyEncipherment|dataEncipherment"

    @property
    def not_before(self) -> dt.datetime:
        value: dt.datetime = self.cert["tbs_certificate"]["validity"]["not_before"].native
        return value

    @property
    def not_after(self) -> dt.datetime:
        value: dt.datetime = self.cert["tbs_certificate"]["validity"]["not_after"].native
        return value

    @property
    def subject_id(self) -> str:
        """The last 4 digits of the national ID (Subject Directory Attributes, ``docs/moica-card.md``)."""
        for extension in self.cert["tbs_certificate"]["extensions"]:
            if extension["extn_id"].dotted == OID_SUBJECT_DIRECTORY_ATTRIBUTES:
                return decode_moica_sda(extension["extn_value"].parsed.dump()) or ""
        return ""

    @property
    def email(self) -> str:
        emails = self.cert.subject_alt_name_value.native if self.cert.subject_alt_name_value else []
        return next((str(e) for e in emails or [] if "@" in str(e)), "")

    @property
    def public_key_der(self) -> bytes:
        info: asn1_keys.PublicKeyInfo = self.cert["tbs_certificate"]["subject_public_key_info"]
        return info.dump()

    def describe(self) -> dict[str, object]:
        """The ``certs[]`` entry of ``/pkcs11info?withcert=true``."""
        return {
            "certb64": base64.b64encode(self.der).decode("ascii"),
            "usage": self.usage,
            "label": self.label,
            "id": base64.b64encode(self.id).decode("ascii"),
            "sn": format(self.cert.serial_number, "x"),
            "subjectDN": self.cert.subject.human_friendly,
            "issuerDN": self.cert.issuer.human_friendly,
            "notBeforeT": int(self.not_before.timestamp()),
            "notAfterT": int(self.not_after.timestamp()),
            "subjectID": self.subject_id,
            "email": self.email,
        }


@dataclass(frozen=True)
class Token:
    """A recognised MOICA token: its card number and user certificates (None: unknown token)."""

    card_number: str
    certificates: tuple[TokenCertificate, ...] = field(default_factory=tuple)


def _usage(key_usage: frozenset[str]) -> str:
    if key_usage & {"decrypt", "unwrap"}:
        return "keyEncipherment|dataEncipherment"
    return "digitalSignature"


def read_token(client: MoicaCard) -> Token | None:
    """Read what ``/pkcs11info`` reports: the card number and the user certificates with
    their key references (PKCS#15 v1.1 §6.2, §6.5 through PrKDF and CDF); None for a card
    that is not a MOICA generation-1 card."""
    try:
        if not client.is_moica():
            return None
        number = client.card_number()
        keys = {k.id: k for k in client.private_keys()}
        found = []
        for info in client.certificates():
            if info.authority:
                continue
            key = keys.get(info.id)
            der = client.read_certificate(info).dump()
            found.append(
                TokenCertificate(
                    id=info.id,
                    label=info.label,
                    der=der,
                    cert=x509.Certificate.load(der),
                    key_reference=key.key_reference if key else None,
                    usage=_usage(key.usage) if key else "digitalSignature",
                )
            )
    except (MoicaError, ValueError):
        return None
    # The signature certificate first: pages that take certs[0] get the one they sign with.
    found.sort(key=lambda c: c.usage != "digitalSignature")
    return Token(number, tuple(found))
