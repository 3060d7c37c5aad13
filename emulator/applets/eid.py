"""The eID chip's eMRTD application with Extended Access Control and the PIN-protected zones.

:class:`EidApplication` (profile type ``eid``) is the eMRTD application of
:mod:`eidemu.emulator.applets.emrtd` plus, after PACE (docs/eid.md, "Extended access
control and the zones"):

- Terminal Authentication version 2 (BSI TR-03110-3 §B.11.4-§B.11.6; codec
  :mod:`eidemu.emulator.icao.cvc` and :mod:`eidemu.emulator.icao.ta`):
  MSE:Set DST ``00 22 81 B6 {83 CAR}``; PSO:Verify Certificate ``00 2A 00 BE {7F4E body,
  5F37 signature}`` along the chain from a trust point (a CVCA link certificate adds a trust
  point; CVCA, DV and domestic terminal certificates move the chip's current date forward);
  MSE:Set AT ``00 22 81 A4 {80 OID, 83 CHR, 91 Comp(PK_PCD), [67 aux]}``; GET CHALLENGE (8);
  EXTERNAL AUTHENTICATE ``00 82 00 00 {signature}``. On success the terminal's effective
  rights (the CHATs intersected) hold for ``ta:`` access conditions until secure messaging ends.
- Chip Authentication version 2 after TA (TR-03110-2 §3.4): MSE:Set AT ``41 A4`` and GENERAL
  AUTHENTICATE ``7C {80 PK_PCD}`` -> ``7C {81 r_PICC, 82 T_PICC}``, the key being the one
  TA announced; secure messaging restarts with keys from K and r_PICC (SSC 0).
- The holder PIN (profile ``pins``, reference ``eac.pin_ref``) only under secure messaging:
  VERIFY; CHANGE REFERENCE DATA with the old PIN (P1 00) or after VERIFY (P1 01); RESET
  RETRY COUNTER with the PUK (P1 00, 01). A terminal whose effective CHAT has the
  PIN-management right (TR-03110-3 Table C.4, bit 5) may also set a new PIN without the old
  one (CHANGE REFERENCE DATA P1 01 without VERIFY) and reset or unblock without the PUK
  (RESET RETRY COUNTER P1 02 with a new PIN, P1 03 without data): the PIN's ``change`` and
  ``unblock`` conditions, ``auth:01&ta:05`` in the shipped profiles; without the right,
  ``6982``. Counters are persisted before comparison
  (:class:`eidemu.emulator.cardos.security.Pin`). Outside secure messaging: ``6982``.

Status words: ``6A88`` for an unknown CAR or terminal CHR, ``6300`` for a certificate or
signature that does not verify (also an expired certificate or one out of the chain order),
``6A80`` for malformed data, ``6985`` for a step out of sequence, ``6982`` before PACE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from ..cardos.card import Card, Channel, OptionError
from ..cardos.fs import DF
from ..icao import ca as ca_codec
from ..icao import cvc
from ..icao.cvc import ID_IS, ChainError, ChainFailure, CvcError, CvCertificate, Role, TrustPoint, VerifiedKey
from ..icao.errors import AuthenticationFailed, IcaoError
from ..icao.pace import DynamicAuthenticationData
from ..icao.ta import CHALLENGE_LENGTH, MSE_SET_AT_TA, MSE_SET_DST, MseSetAtTa, MseSetDst, TaChip
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import INS, SW, CardError
from ..iso7816.tlv import TLVError, parse_all
from .emrtd import CHAINED, EmrtdApplication, EmrtdChannelState, EmrtdOptions

PSO_VERIFY_CERTIFICATE = 0x00BE
HOLDER_PIN_REF = 0x03  # the PIN's password reference of TR-03110-3 §B.11.1 (MRZ 1, CAN 2, PIN 3, PUK 4)
HOLDER_PUK_REF = 0x04


@dataclass(frozen=True)
class EacOptions:
    """Extended Access Control of the chip (profile ``options.eac``).

    ``trust_points``: the CVCA certificates the chip trusts (files, relative to the profile);
    ``current_date``: the chip's date at personalization (ISO 8601), moved forward by
    accurate certificates; ``pin_ref``: the holder PIN in the profile's ``pins``.
    """

    trust_points: tuple[Path, ...] = ()
    current_date: str = ""
    pin_ref: int = HOLDER_PIN_REF

    def __post_init__(self) -> None:
        if not self.trust_points:
            raise OptionError("eac.trust_points", "at least one CVCA certificate")
        try:
            dt.date.fromisoformat(self.current_date)
        except ValueError:
            raise OptionError("eac.current_date", "an ISO 8601 date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class EidOptions(EmrtdOptions):
    """:class:`EmrtdOptions` plus ``eac`` (:class:`EacOptions`)."""

    eac: EacOptions | None = None


@dataclass
class EidChannelState(EmrtdChannelState):
    """TA and CA v2 state on one logical channel (volatile, TR-03110-3 §B.11)."""

    id_picc: bytes = b""
    """Comp(PK_PICC) of the PACE run that opened the session."""
    issuer: TrustPoint | VerifiedKey | None = None
    """The key MSE:Set DST selected for the next PSO:Verify Certificate."""
    imported: dict[str, VerifiedKey] = field(default_factory=dict)
    ta: TaChip | None = None
    ta_key: VerifiedKey | None = None
    terminal_key: bytes | None = None
    """Comp(PK_PCD) announced by TA, once TA succeeded: CA v2 must use that key."""


class EidApplication(EmrtdApplication):
    """The eID chip's eMRTD application with EAC and the zones (see the module docstring)."""

    type_name = "eid"
    options_type = EidOptions
    options: EidOptions
    chained_by_protocol: ClassVar[frozenset[int]] = frozenset((INS.GENERAL_AUTHENTICATE,))

    def __init__(self, card: Card, df: DF, aid: bytes = b"", options: EidOptions | None = None) -> None:
        super().__init__(card, df, aid, options)
        eac = self.options.eac
        self.trust_points: list[TrustPoint] = []
        self.current_date = dt.date.min
        if eac is not None:
            for i, path in enumerate(eac.trust_points):
                try:
                    cert = CvCertificate.parse(path.read_bytes())
                except OSError as exc:
                    raise OptionError(f"eac.trust_points[{i}]", f"cannot read {path.name}: {exc.strerror}") from None
                except CvcError as exc:
                    raise OptionError(f"eac.trust_points[{i}]", f"{path.name}: {exc}") from None
                if cert.role is not Role.CVCA:
                    raise OptionError(f"eac.trust_points[{i}]", f"{path.name} is no CVCA certificate")
                self.trust_points.append(TrustPoint.of(cert))
            self.current_date = dt.date.fromisoformat(eac.current_date)
        self.handlers[INS.PERFORM_SECURITY_OPERATION] = self.perform_security_operation

    # -- state ----------------------------------------------------------------------------

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """TA's rights and the PIN's verification end with the session, like the SM grant."""
        if channel.sm is None:
            channel.security.terminal_rights = 0
            if self.options.eac is not None:
                channel.security.verified_pins.discard(self.options.eac.pin_ref)
        return super().process(cmd, channel)

    def on_select(self, channel: Channel) -> None:
        old = channel.app_state
        channel.app_state = EidChannelState()
        if isinstance(old, EidChannelState):  # SELECT keeps the session and what it proved
            channel.app_state.id_picc, channel.app_state.terminal_key = old.id_picc, old.terminal_key
            channel.app_state.imported = old.imported

    def state(self, channel: Channel) -> EidChannelState:
        return channel.state(EidChannelState)

    def _require_eac(self, channel: Channel) -> EidChannelState:
        if self.options.eac is None:
            raise CardError(SW.INS_NOT_SUPPORTED, "Terminal Authentication is not offered")
        state = self.state(channel)
        if channel.sm is None or not state.id_picc:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "Terminal Authentication needs PACE first")
        return state

    # -- PACE: remember ID_PICC -----------------------------------------------------------

    def general_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """PACE and CA v1 as the eMRTD application; after TA, Chip Authentication v2."""
        state = self.state(channel)
        pace = state.pace
        if pace is None and state.chip_authentication_set and state.terminal_key is not None:
            return self._chip_authentication_v2(cmd, channel, state)
        answer = super().general_authenticate(cmd, channel)
        if pace is not None and state.pace is None:
            state.id_picc = pace.result.id_ic
            state.imported, state.terminal_key, state.ta_key = {}, None, None
            channel.security.terminal_rights = 0
        return answer

    def _chip_authentication_v2(self, cmd: CommandAPDU, channel: Channel, state: EidChannelState) -> bytes:
        state.chip_authentication_set = False
        if cmd.p1p2:
            raise CardError(SW.INCORRECT_P1_P2)
        if cmd.cla == CHAINED:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "Chip Authentication is one command")
        chip = self._chip(None, None)
        try:
            data = DynamicAuthenticationData.parse(cmd.data)
            public_key = data.require(0x80, "ephemeral public key")
        except IcaoError as exc:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None
        expected = state.terminal_key
        size = len(expected or b"")
        if expected is None or public_key[1 : 1 + size] != expected:
            raise CardError(
                SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "not the ephemeral key Terminal Authentication named"
            )
        try:
            keys, nonce, token = ca_codec.ca2_chip(chip, public_key, rng=self.card.random)
        except IcaoError as exc:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None
        rights = channel.security.terminal_rights
        pin_verified = self.options.eac is not None and self.options.eac.pin_ref in channel.security.verified_pins
        self._open_session(channel, keys)  # this answer still goes under the old keys
        channel.security.terminal_rights = rights  # the new session carries on what TA proved
        if pin_verified and self.options.eac is not None:
            channel.security.verified_pins.add(self.options.eac.pin_ref)
        return DynamicAuthenticationData.of((0x81, nonce), (0x82, token)).encode()

    # -- MSE --------------------------------------------------------------------------------

    def manage_security_environment(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """MSE:Set DST and MSE:Set AT for TA (TR-03110-3 §B.11.1); the others as eMRTD."""
        if cmd.p1p2 == MSE_SET_DST:
            state = self._require_eac(channel)
            state.issuer = None
            reference = _parse(lambda: MseSetDst.parse(cmd.data)).reference
            issuer = state.imported.get(reference) or next((p for p in self.trust_points if p.chr == reference), None)
            if issuer is None:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no public key {reference}")
            state.issuer = issuer
            return b""
        if cmd.p1p2 == MSE_SET_AT_TA:
            state = self._require_eac(channel)
            state.ta = None
            mse = _parse(lambda: MseSetAtTa.parse(cmd.data))
            key = state.imported.get(mse.terminal_reference)
            if key is None or key.chat.role is not Role.TERMINAL:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no terminal key {mse.terminal_reference}")
            if mse.protocol_oid != key.public_key.oid:
                raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "TA algorithm is not the terminal key's")
            state.ta = TaChip(mse, state.id_picc, rng=self.card.random)
            state.ta_key = key
            return b""
        return super().manage_security_environment(cmd, channel)

    # -- PSO:Verify Certificate -----------------------------------------------------------

    def perform_security_operation(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """PSO:Verify Certificate (TR-03110-3 §B.11.2): the body and signature of one CV
        certificate, checked with the key MSE:Set DST selected."""
        if cmd.p1p2 != PSO_VERIFY_CERTIFICATE:
            raise CardError(SW.INCORRECT_P1_P2, f"PSO P1-P2 {cmd.p1p2:04X} not supported")
        state = self._require_eac(channel)
        issuer, state.issuer = state.issuer, None
        if issuer is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "MSE:Set DST first")
        try:
            objects = parse_all(cmd.data)
        except TLVError as exc:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, f"certificate: {exc}") from None
        if len(objects) != 2 or objects[1].tag != cvc.CvcTag.SIGNATURE:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "7F4E body and 5F37 signature expected")
        cert = _parse(lambda: CvCertificate.from_body(objects[0].encode(), objects[1].value))
        try:
            verified, date = cvc.verify_certificate(cert, issuer, self.current_date)
        except ChainError as exc:
            if exc.failure is ChainFailure.MALFORMED:
                raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None
            raise CardError(SW.WARNING_NVM_CHANGED, str(exc)) from None
        self.current_date = date
        if cert.role is Role.CVCA:  # a link certificate: a new trust point (TR-03110-3 §2.5.2)
            if all(p.chr != cert.chr for p in self.trust_points):
                self.trust_points.append(
                    TrustPoint(verified.chr, verified.public_key, verified.chat, verified.expiration, verified.curve)
                )
        else:
            state.imported[cert.chr] = verified
        return b""

    # -- TA: GET CHALLENGE and EXTERNAL AUTHENTICATE ----------------------------------------

    def get_challenge(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """r_PICC for Terminal Authentication once MSE:Set AT for TA was sent (TR-03110-3 §B.11.5)."""
        state = self.state(channel)
        if state.ta is not None and cmd.ne == CHALLENGE_LENGTH and not cmd.p1p2 and not cmd.data:
            return state.ta.get_challenge()
        return super().get_challenge(cmd, channel)

    def external_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """The terminal's signature (TR-03110-3 §B.11.6): ``9000`` and the effective rights, or ``6300``."""
        state = self.state(channel)
        ta, key = state.ta, state.ta_key
        if ta is None or key is None:
            return super().external_authenticate(cmd, channel)
        if cmd.p1p2:
            raise CardError(SW.INCORRECT_P1_P2)
        if ta.challenge is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "GET CHALLENGE first")
        state.ta, state.ta_key = None, None
        try:
            ta.external_authenticate(key.public_key.to_key(key.curve), key.public_key.oid, cmd.data)
        except AuthenticationFailed as exc:
            raise CardError(SW.WARNING_NVM_CHANGED, str(exc)) from None
        except IcaoError as exc:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None
        channel.security.terminal_rights = _at_rights(key)
        state.terminal_key = ta.mse.compressed_key
        state.imported = {}
        return b""

    # -- the holder PIN (ISO/IEC 7816-4:2020 §11.5, under secure messaging) -------------------

    def _require_sm_for_pin(self, cmd: CommandAPDU, channel: Channel) -> None:
        eac = self.options.eac
        if eac is not None and cmd.p2 in (eac.pin_ref, HOLDER_PUK_REF) and channel.sm is None:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "the holder PIN needs secure messaging")

    def verify(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        self._require_sm_for_pin(cmd, channel)
        return super().verify(cmd, channel)

    def change_reference_data(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        self._require_sm_for_pin(cmd, channel)
        return super().change_reference_data(cmd, channel)

    def reset_retry_counter(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        self._require_sm_for_pin(cmd, channel)
        return super().reset_retry_counter(cmd, channel)


def _at_rights(key: VerifiedKey) -> int:
    """The effective rights as id-AT bits; an inspection system's DG3/DG4 rights map onto
    the read DG3/DG4 bits (TR-03110-3 Tables C.2 and C.4)."""
    if key.chat.role_oid == ID_IS:
        rights = 0
        if key.chat.has(cvc.IsRight.READ_DG3):
            rights |= 1 << cvc.read_dg(3)
        if key.chat.has(cvc.IsRight.READ_DG4):
            rights |= 1 << cvc.read_dg(4)
        return rights
    return key.chat.rights


T = TypeVar("T")


def _parse(step: Callable[[], T]) -> T:
    try:
        return step()
    except IcaoError as exc:
        raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None


__all__ = ["EacOptions", "EidApplication", "EidChannelState", "EidOptions"]
