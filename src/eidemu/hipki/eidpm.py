"""The eID middleware calls ``/eIDPM/...`` over the next-generation eID chip.

What the vendor's scripts show (``hipki-local-service.md`` of the reference): the call names,
their parameters (``can | mrz | cardNumber``, ``queryDG``; ``pin1, dvCert, atCert``;
``queryDG, signedData, handle``) and that the answers carry ``result: "API_OK"`` instead
of ``ret_code``. The rest is our choice, documented in docs/hipki.md ("The eID calls"):

- parameters in the ``tbsPackage`` form field, as for the other calls; the chip is opened
  with PACE (the strongest set of its EF.CardAccess) and ``can`` (6 digits), ``mrz`` (the MRZ
  information with its check digits, or ``DOCNO,YYMMDD,YYMMDD``) or ``cardNumber`` (the
  number printed on the card: eidemu's chips take its last six digits as the CAN);
- data groups answered as base64 in ``dg<N>`` fields, EF.SOD in ``sod``; ``queryDG`` a list
  of numbers or a comma-separated string;
- the private data in two steps, because the terminal's private key stays with the relying
  party (BSI TR-03110-2 §3.3): Step1 runs PACE, sends the relying party's DV and terminal
  certificates, MSE:Set AT and GET CHALLENGE, and answers ``challenge`` (the message the
  terminal signs: ID_PICC || r_PICC || Comp(PK_PCD)) and a ``handle``; Step2 sends the
  signature (``signedData``), runs Chip Authentication v2, VERIFY of ``pin1`` and reads
  ``queryDG`` (default DG3-DG9). ``GetEIDHouseHoldData`` is the same second step for DG13,
  without the PIN. A handle serves one second step, within :data:`HANDLE_SECONDS`, on the
  same card; the chip keeps the secure-messaging session meanwhile, so any other use of the
  card ends it;
- ``ChangePinEID`` (``oldPin``, ``newPin``) and ``UnblockCardEID`` (``puk``, optional
  ``newPin``) after PACE, with VERIFY + CHANGE REFERENCE DATA and RESET RETRY COUNTER under
  secure messaging (docs/eid.md);
- failures: ``result`` names them (:class:`Result`) with a ``message``; PIN and PUK
  failures add ``triesLeft``.

PINs, PUKs and access keys are handed to the chip and dropped; they never reach a log or a
message. The chip is driven by the tester's eID terminal (:mod:`eidemu.conformance.eid`).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from eidemu.conformance.connection import CardConnection
from eidemu.conformance.eid.channel import ChipChannel, ChipError
from eidemu.conformance.eid.eac import (
    HOLDER_PIN_REF,
    HOLDER_PUK_REF,
    HOUSEHOLD_ZONE,
    PRIVATE_ZONE,
    ca_terminal_from_dg14,
    chip_authentication,
    external_authenticate,
    request_ta_challenge,
)
from eidemu.conformance.eid.reader import AccessDenied, AccessKey, InspectionSystem, choose_pace, pace_choices
from eidemu.emulator.icao import lds
from eidemu.emulator.icao.ca import CaTerminal
from eidemu.emulator.icao.cvc import CvcError, CvCertificate
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sw import SW

from .cards import SlotState
from .errors import HipkiError, RetCode
from .service import HipkiService, SlotSession, field_value

ChipWork = Callable[[CardConnection, SlotSession], dict[str, Any]]
"""Work on the chip in one slot, alone (:meth:`HipkiService.with_connection`): the answer's fields."""

HANDLE_SECONDS = 60.0
MAX_HANDLES = 64
PUBLIC_DATA_GROUPS = (1, 2, 11, 12)
PIN_LENGTHS = range(6, 9)
PUK_LENGTH = 8


class Result(Enum):
    """``result`` of an eID call."""

    OK = "API_OK"
    NOT_SUPPORTED = "API_NOT_SUPPORTED"  # no such eID call
    BAD_PARAMETER = "API_BAD_PARAMETER"  # missing or malformed parameter, bad JSON
    NO_READER = "API_NO_READER"
    NO_CARD = "API_NO_CARD"  # no eID chip in the reader(s)
    CARD_REMOVED = "API_CARD_REMOVED"  # the chip left during the call, or since Step1
    ACCESS_KEY_INCORRECT = "API_ACCESS_KEY_INCORRECT"  # PACE failed: wrong CAN or MRZ
    CERTIFICATE_REJECTED = "API_CERTIFICATE_REJECTED"  # the chip refused the DV or terminal certificate
    TERMINAL_AUTHENTICATION_FAILED = "API_TA_FAILED"  # the signature of the challenge does not verify
    CHIP_AUTHENTICATION_FAILED = "API_CA_FAILED"
    PIN_INCORRECT = "API_PIN_INCORRECT"  # with triesLeft
    PIN_BLOCKED = "API_PIN_BLOCKED"
    PUK_INCORRECT = "API_PUK_INCORRECT"  # with triesLeft
    PUK_BLOCKED = "API_PUK_BLOCKED"
    ACCESS_DENIED = "API_ACCESS_DENIED"  # the chip refused a data group (rights, PIN)
    HANDLE_INVALID = "API_HANDLE_INVALID"  # unknown, used or expired handle
    UNTRUSTED_SITE = "API_UNTRUSTED_SITE"
    FORBIDDEN_DOMAIN = "API_FORBIDDEN_DOMAIN"
    EXECUTION_ERROR = "API_EXECUTION_ERROR"  # the card stayed busy, or answered unexpectedly


_FROM_RET_CODE = {
    RetCode.NO_READER: Result.NO_READER,
    RetCode.NO_CARD: Result.CARD_REMOVED,
    RetCode.UNTRUSTED_SITE: Result.UNTRUSTED_SITE,
    RetCode.FORBIDDEN_DOMAIN: Result.FORBIDDEN_DOMAIN,
    RetCode.BAD_JSON: Result.BAD_PARAMETER,
    RetCode.BAD_PARAMETER: Result.BAD_PARAMETER,
}


class EidCallError(Exception):
    """A failed eID call: its ``result``, a message, and extra answer fields."""

    def __init__(self, result: Result, message: str, **extra: object) -> None:
        super().__init__(message)
        self.result, self.message, self.extra = result, message, extra

    @classmethod
    def from_hipki(cls, exc: HipkiError) -> EidCallError:
        return cls(_FROM_RET_CODE.get(RetCode(exc.ret_code), Result.EXECUTION_ERROR), exc.message)

    def answer(self, func: str) -> dict[str, Any]:
        return {"func": func, "result": self.result.value, "message": self.message, **self.extra}


@dataclass
class PendingSecondStep:
    """What Step1 leaves for the second step: the chip's secure channel, mid-TA."""

    slot: SlotState
    connection: CardConnection  # the session's connection, which the chip's SM session lives on
    channel: ChipChannel
    ca: CaTerminal
    pin: str | None = field(repr=False)
    expires: float


# -- parameters -------------------------------------------------------------------------------


def _access_key(package: dict[str, Any]) -> AccessKey:
    can, mrz, number = (field_value(package, name) for name in ("can", "mrz", "cardNumber"))
    try:
        if can is not None:
            return AccessKey(can=can)
        if mrz is not None:
            return AccessKey.parse_mrz(mrz)
        if number is not None:
            return AccessKey(can=number.strip()[-6:])
    except ValueError as exc:
        raise EidCallError(Result.BAD_PARAMETER, f"access key: {exc}") from None
    raise EidCallError(Result.BAD_PARAMETER, "give can, mrz or cardNumber")


def _query(package: dict[str, Any], default: tuple[int, ...]) -> tuple[int, ...]:
    raw = package.get("queryDG")
    if raw is None or raw == "" or raw == "__NotExistedTag__":
        return default
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else None
    try:
        numbers = tuple(int(str(item).strip().upper().removeprefix("DG")) for item in items or ())
    except ValueError:
        numbers = ()
    if not numbers or any(not 1 <= n <= 16 for n in numbers):
        raise EidCallError(Result.BAD_PARAMETER, "queryDG lists data group numbers 1 to 16")
    return numbers


def _digits(package: dict[str, Any], name: str, lengths: range, required: bool = True) -> str | None:
    value = field_value(package, name)
    if value is None and not required:
        return None
    if value is None or not value.isdigit() or len(value) not in lengths:
        raise EidCallError(Result.BAD_PARAMETER, f"{name} must be {lengths.start} to {lengths.stop - 1} digits")
    return value


def _certificate(package: dict[str, Any], name: str) -> CvCertificate:
    value = field_value(package, name)
    if value is None:
        raise EidCallError(Result.BAD_PARAMETER, f"{name} is missing (a CV certificate in base64)")
    try:
        return CvCertificate.parse(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, CvcError) as exc:
        raise EidCallError(Result.BAD_PARAMETER, f"{name} is not a CV certificate: {exc}") from None


def _base64(package: dict[str, Any], name: str) -> bytes:
    value = field_value(package, name)
    try:
        return base64.b64decode(value or "", validate=True) if value else b""
    except binascii.Error:
        raise EidCallError(Result.BAD_PARAMETER, f"{name} is not base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the calls ----------------------------------------------------------------------------------


class EidCalls:
    """The ``/eIDPM/...`` calls over the service's card source (one card operation at a time
    per slot, as for the other calls)."""

    def __init__(self, service: HipkiService, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.clock = clock
        self.pending: dict[str, PendingSecondStep] = {}
        self._pending_lock = threading.Lock()
        self.calls: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ListEID": self.list_eid,
            "GetEIDPublicData": self.public_data,
            "GetEIDPrivateDataStep1": self.private_data_step1,
            "GetEIDPrivateDataStep2": lambda package: self.second_step(package, PRIVATE_ZONE, with_pin=True),
            "GetEIDHouseHoldData": lambda package: self.second_step(package, HOUSEHOLD_ZONE, with_pin=False),
            "ChangePinEID": self.change_pin,
            "UnblockCardEID": self.unblock,
        }

    async def call(self, name: str, package: dict[str, Any]) -> dict[str, Any]:
        """The answer of ``/eIDPM/<name>``: ``result`` ``API_OK`` and the call's fields, or the failure."""
        handler = self.calls.get(name)
        try:
            if handler is None:
                raise EidCallError(Result.NOT_SUPPORTED, f"/eIDPM/{name} is not an eID call")
            try:
                fields = await self.service.in_worker(lambda: handler(package))
            except HipkiError as exc:
                raise EidCallError.from_hipki(exc) from None
        except EidCallError as exc:
            return exc.answer(name)
        return {"func": name, "result": Result.OK.value, **fields}

    # -- slots ------------------------------------------------------------------------------

    def _is_eid(self, connection: CardConnection, session: SlotSession) -> bool:
        """SELECT of the eMRTD application (9303-10 §3.6.1), once per card."""
        if session.is_eid is None:
            answer = connection.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, lds.EMRTD_AID).encode())
            session.is_eid = answer[-2:] == b"\x90\x00"
        return session.is_eid

    def _eid_slots(self, slots: list[SlotState]) -> list[SlotState]:
        """Those of ``slots`` holding an eID chip."""
        found = []
        for slot in slots:
            if slot.present:
                try:
                    if self.service.with_connection(slot, self._is_eid):
                        found.append(slot)
                except HipkiError:
                    continue  # removed while we looked
        return found

    def _slot(self, package: dict[str, Any]) -> SlotState:
        wanted = field_value(package, "slotDescription") or field_value(package, "readername")
        slots = self.service.list_slots(fresh=True)
        if not slots:
            raise EidCallError(Result.NO_READER, "no card reader")
        if wanted is not None:
            slots = [s for s in slots if s.description == wanted]
            if not slots:
                raise EidCallError(Result.NO_READER, f"no reader named {wanted!r}")
        found = self._eid_slots(slots)
        if found:
            return found[0]
        raise EidCallError(Result.NO_CARD, "no eID chip in the reader" + ("" if wanted is None else f" {wanted!r}"))

    def list_eid(self, package: dict[str, Any]) -> dict[str, Any]:
        eids = self._eid_slots(self.service.list_slots(fresh=True))
        return {"eIDs": [{"slotDescription": s.description, "slotID": s.slot_id} for s in eids]}

    # -- PACE and the public data -------------------------------------------------------------

    @staticmethod
    def _open(connection: CardConnection, key: AccessKey) -> tuple[InspectionSystem, bytes]:
        """From the MF, PACE with the strongest set of EF.CardAccess, then the eMRTD
        application; the terminal and ID_PICC."""
        reader = InspectionSystem(connection)
        try:
            reader.channel.select_master_file()  # an earlier call may have left the eMRTD application current
            card_access = reader.read_card_access()
            choice = choose_pace(pace_choices(card_access)) if card_access is not None else None
            if choice is None:
                raise EidCallError(Result.EXECUTION_ERROR, "the chip offers no PACE (EF.CardAccess)")
            pace = reader.run_pace(choice, key)
            reader.channel.select_application(lds.EMRTD_AID)
        except AccessDenied as exc:
            raise EidCallError(Result.ACCESS_KEY_INCORRECT, str(exc)) from None
        except (ChipError, lds.LdsError) as exc:
            raise EidCallError(Result.EXECUTION_ERROR, str(exc)) from None
        return reader, pace.id_ic

    @staticmethod
    def _read(channel: ChipChannel, numbers: tuple[int, ...]) -> dict[str, str]:
        fields = {}
        for number in numbers:
            try:
                fields[f"dg{number}"] = _b64(channel.read_file(number, f"DG{number}"))
            except ChipError as exc:
                if exc.sw == SW.FILE_NOT_FOUND:
                    raise EidCallError(Result.BAD_PARAMETER, f"the chip has no DG{number}") from None
                if exc.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
                    raise EidCallError(Result.ACCESS_DENIED, f"the chip refused DG{number} (6982)") from None
                raise EidCallError(Result.EXECUTION_ERROR, str(exc)) from None
        return fields

    def public_data(self, package: dict[str, Any]) -> dict[str, Any]:
        key, numbers = _access_key(package), _query(package, PUBLIC_DATA_GROUPS)
        slot = self._slot(package)

        def work(connection: CardConnection, session: SlotSession) -> dict[str, Any]:
            reader, _ = self._open(connection, key)
            fields = self._read(reader.channel, numbers)
            fields["sod"] = _b64(reader.channel.read_file(lds.LdsFile.SOD.sfi, "EF.SOD"))
            return {"slotDescription": slot.description, **fields}

        return self._chip_call(slot, work)

    def _chip_call(self, slot: SlotState, work: ChipWork) -> dict[str, Any]:
        """``work`` alone on the slot's chip; a chip error no step named is an execution error."""
        try:
            return self.service.with_connection(slot, work)
        except ChipError as exc:
            raise EidCallError(Result.EXECUTION_ERROR, str(exc)) from None

    # -- the private and household data: two steps ---------------------------------------------

    def private_data_step1(self, package: dict[str, Any]) -> dict[str, Any]:
        key = _access_key(package)
        pin = _digits(package, "pin1", PIN_LENGTHS, required=False)
        chain = (_certificate(package, "dvCert"), _certificate(package, "atCert"))
        slot = self._slot(package)

        def work(connection: CardConnection, session: SlotSession) -> dict[str, Any]:
            reader, id_picc = self._open(connection, key)
            try:
                found = ca_terminal_from_dg14(reader.channel.read_file(14, "DG14"))
            except (lds.LdsError, ValueError, KeyError) as exc:
                raise EidCallError(Result.EXECUTION_ERROR, f"DG14: {exc}") from None
            if isinstance(found, str):
                raise EidCallError(Result.EXECUTION_ERROR, found)
            try:
                message = request_ta_challenge(reader.channel, chain, found[0], id_picc)
            except ChipError as exc:
                raise EidCallError(Result.CERTIFICATE_REJECTED, str(exc)) from None
            handle = secrets.token_urlsafe(18)
            pending = PendingSecondStep(
                slot, session.connection, reader.channel, found[0], pin, self.clock() + HANDLE_SECONDS
            )
            with self._pending_lock:
                now = self.clock()
                for old in [h for h, p in self.pending.items() if p.expires < now]:
                    del self.pending[old]
                if len(self.pending) >= MAX_HANDLES:
                    del self.pending[next(iter(self.pending))]  # the oldest
                self.pending[handle] = pending
            return {"slotDescription": slot.description, "challenge": _b64(message), "handle": handle}

        return self._chip_call(slot, work)

    def second_step(self, package: dict[str, Any], default: tuple[int, ...], with_pin: bool) -> dict[str, Any]:
        handle = field_value(package, "handle") or ""
        signature = _base64(package, "signedData")
        if not signature:
            raise EidCallError(Result.BAD_PARAMETER, "signedData is missing (the signed challenge, base64)")
        numbers = _query(package, default)
        with self._pending_lock:
            pending = self.pending.pop(handle, None)
        if pending is None or pending.expires < self.clock():
            raise EidCallError(Result.HANDLE_INVALID, "unknown, used or expired handle: start again with Step1")

        now = [s for s in self.service.list_slots(fresh=True) if s.description == pending.slot.description]
        if not now or not now[0].present or now[0].generation != pending.slot.generation:
            raise EidCallError(Result.CARD_REMOVED, "the card was removed since Step1: start again with Step1")

        def work(connection: CardConnection, session: SlotSession) -> dict[str, Any]:
            if session.connection is not pending.connection:
                raise EidCallError(Result.CARD_REMOVED, "the card changed since Step1: start again with Step1")
            channel = pending.channel
            channel.connection = connection  # the chip's session continues on this request's view
            try:
                external_authenticate(channel, signature)
            except ChipError as exc:
                if exc.sw in (None, SW.EXPECTED_SM_DATA_OBJECTS_MISSING, SW.INCORRECT_SM_DATA_OBJECTS):
                    # the chip ended the session: the card was used otherwise since Step1
                    raise EidCallError(Result.HANDLE_INVALID, f"{exc}: start again with Step1") from None
                raise EidCallError(Result.TERMINAL_AUTHENTICATION_FAILED, str(exc)) from None
            try:
                chip_authentication(channel, pending.ca)
            except (ChipError, ValueError) as exc:
                raise EidCallError(Result.CHIP_AUTHENTICATION_FAILED, str(exc)) from None
            if with_pin and pending.pin is not None:
                self._verify(channel, pending.pin, HOLDER_PIN_REF)
            return {"slotDescription": pending.slot.description, **self._read(channel, numbers)}

        return self._chip_call(pending.slot, work)

    # -- the holder PIN -------------------------------------------------------------------------

    @staticmethod
    def _verify(channel: ChipChannel, secret: str, reference: int) -> None:
        """VERIFY under secure messaging; wrong or blocked PIN/PUK as their results."""
        puk = reference == HOLDER_PUK_REF
        answer = channel.send(
            CommandAPDU(0x00, 0x20, 0x00, reference, secret.encode("ascii")),
            "VERIFY",
            accept=(SW.NO_ERROR, SW.AUTHENTICATION_METHOD_BLOCKED, *range(0x63C0, 0x63D0)),
        )
        _pin_result(answer.sw, puk)

    def change_pin(self, package: dict[str, Any]) -> dict[str, Any]:
        key = _access_key(package)
        old = _digits(package, "oldPin", PIN_LENGTHS)
        new = _digits(package, "newPin", PIN_LENGTHS)
        assert old is not None and new is not None
        slot = self._slot(package)

        def work(connection: CardConnection, session: SlotSession) -> dict[str, Any]:
            reader, _ = self._open(connection, key)
            self._verify(reader.channel, old, HOLDER_PIN_REF)
            reader.channel.send(
                CommandAPDU(0x00, 0x24, 0x01, HOLDER_PIN_REF, new.encode("ascii")), "CHANGE REFERENCE DATA"
            )
            return {"slotDescription": slot.description}

        return self._chip_call(slot, work)

    def unblock(self, package: dict[str, Any]) -> dict[str, Any]:
        key = _access_key(package)
        puk = _digits(package, "puk", range(PUK_LENGTH, PUK_LENGTH + 1))
        new = _digits(package, "newPin", PIN_LENGTHS, required=False)
        assert puk is not None
        slot = self._slot(package)

        def work(connection: CardConnection, session: SlotSession) -> dict[str, Any]:
            reader, _ = self._open(connection, key)
            data, p1 = (puk + new, 0x00) if new is not None else (puk, 0x01)
            answer = reader.channel.send(
                CommandAPDU(0x00, 0x2C, p1, HOLDER_PIN_REF, data.encode("ascii")),
                "RESET RETRY COUNTER",
                accept=(SW.NO_ERROR, SW.AUTHENTICATION_METHOD_BLOCKED, *range(0x63C0, 0x63D0)),
            )
            _pin_result(answer.sw, puk=True)
            return {"slotDescription": slot.description}

        return self._chip_call(slot, work)


def _pin_result(sw: int, puk: bool) -> None:
    what = "PUK" if puk else "PIN"
    if sw == SW.AUTHENTICATION_METHOD_BLOCKED:
        raise EidCallError(Result.PUK_BLOCKED if puk else Result.PIN_BLOCKED, f"the {what} is blocked", triesLeft=0)
    if sw & 0xFFF0 == 0x63C0:
        left = sw & 0x0F
        result = Result.PUK_INCORRECT if puk else Result.PIN_INCORRECT
        raise EidCallError(result, f"wrong {what}, {left} tries left", triesLeft=left)


__all__ = ["HANDLE_SECONDS", "EidCallError", "EidCalls", "Result"]
