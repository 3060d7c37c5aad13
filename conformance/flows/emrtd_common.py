"""Helpers shared by the eMRTD Python tests: the test decorator, opening BAC or PACE with
the inspection system of :mod:`eidemu.conformance.eid`, and reading the LDS files.

The tests judge the chip with the terminal's own code (:mod:`eidemu.conformance.eid`, the
codec :mod:`eidemu.emulator.icao`), never with the emulator's card code. The card
declaration supplies the passwords: ``CAN`` (the digits, ISO 8859-1) and
``MRZ_INFORMATION`` (document number, birth and expiry dates with their check digits,
ICAO Doc 9303-11 §9.7.2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from eidemu.emulator.icao import lds
from eidemu.emulator.icao.oids import pace_protocol
from eidemu.emulator.icao.pace import PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sm import TerminalSession
from eidemu.emulator.iso7816.sw import SW

from ..connection import CardConnection
from ..eid.channel import ChipChannel, ChipError
from ..eid.passive import TrustStore
from ..eid.reader import (
    AccessDenied,
    AccessKey,
    InspectionSystem,
    PaceChoice,
    choose_pace,
    default_trust_store,
    pace_choices,
)
from ..pythontests import CheckFailed, FlowContext, TestFunction, conformance_test

EMRTD_TOKENS = ("EMRTD",)
EMRTD_AID = lds.EMRTD_AID
_DG_BY_TAG = {tag: number for number, tag in lds.DG_TAGS.items()}


def emrtd_test(
    test_id: str, title: str, *, spec: str, purpose: str, tokens: tuple[str, ...] = ()
) -> Callable[[TestFunction], TestFunction]:
    """:func:`~eidemu.conformance.pythontests.conformance_test` for the eMRTD application:
    token ``EMRTD`` implied; an unexpected status word, a response that does not verify,
    a refused BAC or PACE and an undecodable file FAIL the test with the reason."""

    def wrap(function: TestFunction) -> TestFunction:
        @functools.wraps(function)
        def run(context: FlowContext) -> None:
            try:
                function(context)
            except ChipError as exc:
                received = f"{exc.sw >> 8:02X} {exc.sw & 0xFF:02X}" if exc.sw is not None else "no valid answer"
                raise CheckFailed(str(exc), "a verified answer", received) from None
            except AccessDenied as exc:
                raise CheckFailed(str(exc), "access granted", "refused") from None
            except lds.LdsError as exc:
                raise CheckFailed(str(exc), "a well-formed LDS file", "not decodable") from None

        return conformance_test(test_id, title, spec=spec, purpose=purpose, tokens=EMRTD_TOKENS + tokens)(run)

    return wrap


@functools.cache
def trust_store() -> TrustStore:
    """The shipped TEST master list and CSCA CRL (read once per process)."""
    return default_trust_store()


def can_key(context: FlowContext) -> AccessKey:
    return AccessKey(can=context.variable("CAN").decode("latin-1"))


def mrz_key(context: FlowContext) -> AccessKey:
    return AccessKey.parse_mrz(context.variable("MRZ_INFORMATION").decode("latin-1"))


def password_key(context: FlowContext, kind: str) -> AccessKey:
    """The CAN or the MRZ (``kind``) the card declaration gives."""
    return can_key(context) if kind == "CAN" else mrz_key(context)


@dataclass
class Session:
    """An open BAC or PACE session on the chip, the eMRTD application selected."""

    system: InspectionSystem
    access: str
    pace: PaceResult | None = None
    card_access: bytes | None = None

    @property
    def channel(self) -> ChipChannel:
        return self.system.channel

    @property
    def sm(self) -> TerminalSession:
        session = self.system.channel.session
        FlowContext.check(session is not None, "secure messaging is on", "a session", "none")
        assert session is not None
        return session

    def send(self, command: CommandAPDU, what: str, accept: tuple[int, ...] = (0x9000,)) -> bytes:
        return self.channel.send(command, what, accept=accept).data

    def read(self, sfi: int, what: str) -> bytes:
        return self.channel.read_file(sfi, what)


def system_for(context: FlowContext, *, bac: bool = False) -> InspectionSystem:
    return InspectionSystem(cast(CardConnection, context.connection), trust=trust_store(), bac=bac)


def card_access(system: InspectionSystem) -> bytes:
    data = system.read_card_access()
    FlowContext.check(data is not None, "EF.CardAccess (SFI 1C) is readable in plain", "SecurityInfos", "6A82")
    assert data is not None
    return data


def pace_choice(oid: str, parameter_id: int) -> PaceChoice:
    return PaceChoice(pace_protocol(oid), parameter_id)


def open_pace(context: FlowContext, kind: str, choice: PaceChoice | None = None, *, select: bool = True) -> Session:
    """PACE with the password ``kind`` ("CAN" or "MRZ") and ``choice`` (default: the strongest of
    EF.CardAccess), then SELECT of the eMRTD application under the new session."""
    system = system_for(context)
    access = card_access(system)
    if choice is None:
        choice = choose_pace(pace_choices(access))
        FlowContext.check(choice is not None, "EF.CardAccess offers a usable PACEInfo", "PACEInfo v2", "none")
        assert choice is not None
    result = system.run_pace(choice, password_key(context, kind))
    if select:
        system.channel.select_application(EMRTD_AID)
    return Session(system, f"PACE {choice.describe()}, {kind}", result, access)


def open_bac(context: FlowContext) -> Session:
    """SELECT the eMRTD application, BAC with the MRZ (ICAO Doc 9303-11 §4.3)."""
    system = system_for(context, bac=True)
    system.channel.select_application(EMRTD_AID)
    system.run_bac(mrz_key(context))
    return Session(system, "BAC")


def open_session(context: FlowContext) -> Session:
    """PACE with the CAN when the chip has EF.CardAccess and the card declares a CAN, else
    PACE with the MRZ, else BAC: what an inspection system does (9303-11 §4.2)."""
    system = system_for(context)
    if system.read_card_access() is None:
        return open_bac(context)
    return open_pace(context, "CAN" if "CAN" in context.variables else "MRZ")


@dataclass(frozen=True)
class Lds:
    """The files of the eMRTD application as read: EF.COM, the data groups it lists, EF.SOD.

    ``protected``: the data groups EF.COM lists that answered ``69 82`` (behind Extended
    Access Control, such as an eMRTD's DG3 or the eID chip's zones): listed, not read.
    """

    com: bytes
    data_groups: dict[int, bytes]
    sod: bytes
    protected: frozenset[int] = frozenset()

    @property
    def listed(self) -> list[int]:
        """Every data group EF.COM lists, read or protected."""
        return sorted(set(self.data_groups) | self.protected)

    def dg(self, number: int) -> bytes:
        FlowContext.check(
            number in self.data_groups, f"EF.COM lists DG{number}", f"DG{number}", sorted(self.data_groups)
        )
        return self.data_groups[number]


def read_lds(session: Session) -> Lds:
    """EF.COM, every data group it lists (recording those behind EAC, ``69 82``), EF.SOD."""
    com = session.read(lds.LdsFile.COM.sfi, "EF.COM")
    numbers = [_DG_BY_TAG[t] for t in lds.EfCom.parse(com).data_group_tags if t in _DG_BY_TAG]
    groups: dict[int, bytes] = {}
    protected: set[int] = set()
    for number in numbers:
        try:
            groups[number] = session.read(number, f"DG{number}")
        except ChipError as exc:
            if exc.sw != SW.SECURITY_STATUS_NOT_SATISFIED:
                raise
            protected.add(number)
    return Lds(com, groups, session.read(lds.LdsFile.SOD.sfi, "EF.SOD"), frozenset(protected))


def hexs(data: bytes) -> str:
    return data.hex(" ").upper()
