"""The eMRTD application of the eID chip: the ICAO travel-document zone (ICAO Doc 9303-10, -11).

One application object answers both in the MF (EF.CardAccess, EF.CardSecurity, PACE, as
9303-11 §4.2 has the inspection system run PACE before it selects the application) and in
the application DF selected by AID ``A0 00 00 02 47 10 01`` (EF.COM, DG1-DG16, EF.SOD,
9303-10 §4.6-4.7): it makes itself the card's default application, so a secure-messaging
session opened in the MF survives the SELECT of the application.

Commands (beyond the ISO/IEC 7816-4 file commands of :class:`IsoApplication`: SELECT, READ
BINARY with SFI and with odd INS ``B1`` / DO ``54``, extended length):

- GET CHALLENGE (Le 08) and EXTERNAL AUTHENTICATE (40 bytes E_IFD || M_IFD): BAC, then 3DES
  secure messaging (9303-11 §4.3).
- MSE:Set AT ``C1 A4`` and GENERAL AUTHENTICATE (four steps, CLA ``10`` for steps 1-3): PACE
  version 2 with the generic, integrated and chip authentication mappings (§4.4).
- MSE:Set KAT ``41 A6``, or MSE:Set AT ``41 A4`` with GENERAL AUTHENTICATE ``7C {80 PK}``:
  Chip Authentication version 1 (§6.2): the answer goes under the old keys, then secure
  messaging restarts with the new ones (SSC 0).
- INTERNAL AUTHENTICATE (8-byte RND.IFD): Active Authentication (§6.1), ISO/IEC 9796-2
  scheme 1 or plain ECDSA.

Access: the files whose rule is ``auth:<secure_messaging_ref>`` (every file but
EF.CardAccess in the shipped profiles) open while a BAC, PACE or CA session protects the
channel; the grant is dropped as soon as the card OS ends the session (a plain command, an
SM error), so it survives SELECT and nothing else. Status words of the protocols (9303-11
§4.3.4, §4.4.4.2): ``6300`` for a wrong password or cryptogram, ``6A80`` for malformed data
or unsupported parameters, ``6985`` for a step out of sequence, ``6982`` for AA or CA
without secure messaging. The cryptography is the codec :mod:`eidemu.emulator.icao`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum, unique
from pathlib import Path
from typing import ClassVar, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec
from cryptography.hazmat.primitives.asymmetric import rsa

from ..cardos.card import ApplicationState, Card, Channel, OptionError
from ..cardos.commands import IsoApplication
from ..cardos.fs import DF, TransparentEF
from ..icao import aa
from ..icao.bac import CRYPTOGRAM_LENGTH, BacChip, BacKeys
from ..icao.ca import CaChip
from ..icao.ec import Curve
from ..icao.errors import AuthenticationFailed, IcaoError, SequenceError
from ..icao.kdf import PacePassword, PasswordType, bac_key_seed, mrz_information
from ..icao.mse import MseSetAt, MseSetKat
from ..icao.oids import (
    ECDSA_PLAIN_SHA1,
    ECDSA_PLAIN_SHA224,
    ECDSA_PLAIN_SHA256,
    ECDSA_PLAIN_SHA384,
    ECDSA_PLAIN_SHA512,
    ID_CA_DH,
    ID_CA_ECDH,
    ID_PACE,
    PACE_PROTOCOLS,
    PaceProtocol,
    standardized_domain_parameters,
)
from ..icao.pace import DynamicAuthenticationData, PaceChip, domain_parameters
from ..icao.session import SecureMessagingKeys
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import INS, SW, CardError

EMRTD_AID = bytes.fromhex("A0000002471001")
"""The eMRTD application's DF name (ICAO Doc 9303-10 §4.6)."""

CHALLENGE_LENGTH = 8  # RND.IC of BAC, RND.IFD of AA (9303-11 §4.3.4.1, §6.1)

# MANAGE SECURITY ENVIRONMENT P1-P2 (9303-11 §4.4.4.1, §6.2.4)
MSE_SET_AT_PACE = 0xC1A4
MSE_SET_AT_CA = 0x41A4
MSE_SET_KAT = 0x41A6
_WILDCARD_NE = (256, 65536)  # Le 00 and 00 00
CHAINED = 0x10  # the class byte of a GENERAL AUTHENTICATE link with more to come


# -- profile options ---------------------------------------------------------------------


@unique
class PaceMapping(StrEnum):
    """A PACE parameter set's key agreement and mapping, by the name profiles give it."""

    ECDH_GM = "ECDH-GM"
    DH_GM = "DH-GM"
    ECDH_IM = "ECDH-IM"
    DH_IM = "DH-IM"
    ECDH_CAM = "ECDH-CAM"


@unique
class CipherName(StrEnum):
    """Cipher and key length of a protocol, by the name profiles give it (9303-11 §9.2.1)."""

    TDES = "3DES"
    AES_128 = "AES-128"
    AES_192 = "AES-192"
    AES_256 = "AES-256"


@unique
class Agreement(StrEnum):
    ECDH = "ECDH"
    DH = "DH"


@unique
class AaSignature(StrEnum):
    """Active Authentication signature schemes (9303-11 §6.1; ISO/IEC 9796-2 §8; BSI TR-03111 §5.2.1)."""

    ISO9796_2_SHA1 = "iso9796-2-scheme1-sha1"
    ISO9796_2_SHA224 = "iso9796-2-scheme1-sha224"
    ISO9796_2_SHA256 = "iso9796-2-scheme1-sha256"
    ISO9796_2_SHA384 = "iso9796-2-scheme1-sha384"
    ISO9796_2_SHA512 = "iso9796-2-scheme1-sha512"
    ECDSA_PLAIN_SHA1 = "ecdsa-plain-sha1"
    ECDSA_PLAIN_SHA224 = "ecdsa-plain-sha224"
    ECDSA_PLAIN_SHA256 = "ecdsa-plain-sha256"
    ECDSA_PLAIN_SHA384 = "ecdsa-plain-sha384"
    ECDSA_PLAIN_SHA512 = "ecdsa-plain-sha512"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("iso9796-2")

    @property
    def hash_name(self) -> str:
        return self.value.rsplit("-", 1)[1]


_ECDSA_OIDS = {
    "sha1": ECDSA_PLAIN_SHA1,
    "sha224": ECDSA_PLAIN_SHA224,
    "sha256": ECDSA_PLAIN_SHA256,
    "sha384": ECDSA_PLAIN_SHA384,
    "sha512": ECDSA_PLAIN_SHA512,
}
_PACE_ARCS = {
    PaceMapping.DH_GM: "1",
    PaceMapping.ECDH_GM: "2",
    PaceMapping.DH_IM: "3",
    PaceMapping.ECDH_IM: "4",
    PaceMapping.ECDH_CAM: "6",
}
_CIPHER_ARCS = {CipherName.TDES: "1", CipherName.AES_128: "2", CipherName.AES_192: "3", CipherName.AES_256: "4"}


@dataclass(frozen=True)
class PaceOption:
    """One PACE parameter set the chip offers (a PACEInfo of EF.CardAccess, 9303-11 §9.2.1)."""

    mapping: PaceMapping
    cipher: CipherName
    parameter_id: str
    """The standardized domain parameter ID in decimal, as 9303-11 §9.5.1 numbers them
    (profiles spell numbers as strings; :attr:`domain_id` is the number)."""

    def __post_init__(self) -> None:
        if self.protocol_oid not in PACE_PROTOCOLS:
            raise OptionError("cipher", f"{self.mapping} is not defined with {self.cipher} (9303-11 §9.2.1)")
        if not str(self.parameter_id).isdigit():
            raise OptionError("parameter_id", "a decimal standardized domain parameter ID (9303-11 §9.5.1)")
        try:
            row = standardized_domain_parameters(self.domain_id)
        except ValueError as exc:
            raise OptionError("parameter_id", str(exc)) from None
        if row.agreement is not self.protocol.agreement:
            raise OptionError(
                "parameter_id", f"{row.name} is no {self.protocol.agreement.value} group for {self.mapping}"
            )

    @property
    def domain_id(self) -> int:
        return int(self.parameter_id)

    @property
    def protocol_oid(self) -> str:
        return f"{ID_PACE}.{_PACE_ARCS[self.mapping]}.{_CIPHER_ARCS[self.cipher]}"

    @property
    def protocol(self) -> PaceProtocol:
        return PACE_PROTOCOLS[self.protocol_oid]


@dataclass(frozen=True)
class ChipAuthenticationOption:
    """The Chip Authentication key (DG14; also PACE-CAM's static key, EF.CardSecurity).

    ``key``: PKCS#8 PEM, relative to the profile; ``agreement`` and ``cipher`` name the
    protocol OID (9303-11 §9.2.5); ``curve`` documents the key's curve and is checked
    against it; ``key_id``: the keyId of DG14's ChipAuthenticationInfo, if it has one.
    """

    key: Path
    agreement: Agreement = Agreement.ECDH
    cipher: CipherName = CipherName.AES_128
    curve: str = ""
    key_id: int | None = None

    @property
    def protocol_oid(self) -> str:
        prefix = ID_CA_DH if self.agreement is Agreement.DH else ID_CA_ECDH
        return f"{prefix}.{_CIPHER_ARCS[self.cipher]}"


@dataclass(frozen=True)
class ActiveAuthenticationOption:
    """The Active Authentication key (DG15) and signature scheme (9303-11 §6.1).

    ``algorithm`` documents the key (``rsa-2048``, ``ecdsa-brainpoolP256r1``) and is
    checked against it.
    """

    key: Path
    algorithm: str = ""
    signature: AaSignature = AaSignature.ISO9796_2_SHA1


@dataclass(frozen=True)
class EmrtdOptions:
    """The options of :class:`EmrtdApplication` (profile ``applications[].options``; the
    contract is docs/eid.md "Card profiles" and ``eidemu.emulator.pki.eid_profiles``).

    ``can``: PACE password CAN (empty: no CAN). ``mrz``: the three TD1 lines (informative).
    ``mrz_information``: document number, birth and expiry dates with check digits, the
    key seed of BAC and the PACE MRZ password (empty: neither). ``bac``: BAC allowed.
    ``secure_messaging_ref``: the ``auth:<ref>`` a session grants. ``pace``: the parameter
    sets offered. ``chip_authentication``, ``active_authentication``: the keys, if any.
    """

    can: str = ""
    mrz: tuple[str, ...] = ()
    mrz_information: str = ""
    bac: bool = True
    secure_messaging_ref: int = 0x01
    pace: tuple[PaceOption, ...] = ()
    chip_authentication: ChipAuthenticationOption | None = None
    active_authentication: ActiveAuthenticationOption | None = None

    def __post_init__(self) -> None:
        if self.can and (len(self.can) != 6 or not self.can.isdigit()):
            raise OptionError("can", "the CAN is 6 decimal digits")
        if self.mrz and (len(self.mrz) != 3 or any(len(line) != 30 for line in self.mrz)):
            raise OptionError("mrz", "a TD1 MRZ is 3 lines of 30 characters (ICAO 9303-5 §4.2)")
        if self.mrz_information:
            if len(self.mrz_information) < 16:
                raise OptionError("mrz_information", "too short for number, dates and check digits")
            number, birth, expiry = _mrz_fields(self.mrz_information)
            try:
                expected = mrz_information(number, birth, expiry)
            except ValueError as exc:
                raise OptionError("mrz_information", str(exc)) from None
            if expected != self.mrz_information:
                raise OptionError("mrz_information", "a check digit is wrong (ICAO 9303-3 §4.9)")
        if self.bac and not self.mrz_information:
            raise OptionError("bac", "BAC needs mrz_information")
        for i, option in enumerate(self.pace):
            if option.mapping is PaceMapping.ECDH_CAM and self.chip_authentication is None:
                raise OptionError(f"pace[{i}]", "PACE-CAM needs the chip_authentication key")


def _mrz_fields(info: str) -> tuple[str, str, str]:
    """Document number, birth date and expiry date of the MRZ information (number, check
    digit, 6 + 1, 6 + 1 characters; 9303-11 §4.3.2)."""
    return info[:-15], info[-14:-8], info[-7:-1]


# -- per-channel state ---------------------------------------------------------------------


@dataclass
class EmrtdChannelState(ApplicationState):
    """The application's protocol state on one logical channel."""

    bac: BacChip | None = None
    """Set by GET CHALLENGE, used once by EXTERNAL AUTHENTICATE."""
    pace: PaceChip | None = None
    """Set by MSE:Set AT for PACE; GENERAL AUTHENTICATE drives it."""
    chip_authentication_set: bool = False
    """MSE:Set AT for Chip Authentication seen; GENERAL AUTHENTICATE completes it."""


# -- the application -----------------------------------------------------------------------


class EmrtdApplication(IsoApplication):
    """The eMRTD application (see the module docstring); options :class:`EmrtdOptions`."""

    type_name = "emrtd"
    options_type = EmrtdOptions
    options: EmrtdOptions
    chained_by_protocol: ClassVar[frozenset[int]] = frozenset((INS.GENERAL_AUTHENTICATE,))

    def __init__(self, card: Card, df: DF, aid: bytes = b"", options: EmrtdOptions | None = None) -> None:
        super().__init__(card, df, aid, options)
        opts = self.options
        self._bac_keys = BacKeys.from_seed(bac_key_seed(opts.mrz_information)) if opts.bac else None
        self._ca: CaChip | None = None
        self._ca_key: object = None  # an EC or (deprecated in cryptography) DH private key
        if opts.chip_authentication is not None:
            self._ca, self._ca_key = _chip_authentication(opts.chip_authentication)
        self._aa_key: rsa.RSAPrivateKey | crypto_ec.EllipticCurvePrivateKey | None = None
        if opts.active_authentication is not None:
            self._aa_key = _active_authentication_key(opts.active_authentication)
        for i, option in enumerate(opts.pace):
            if option.mapping is PaceMapping.ECDH_CAM:
                domain = domain_parameters(option.domain_id)
                if not isinstance(self._ca_key, crypto_ec.EllipticCurvePrivateKey) or (
                    isinstance(domain, Curve) and domain.name != self._ca_key.curve.name
                ):
                    raise OptionError(f"pace[{i}]", "PACE-CAM needs an ECDH chip key on the mapping's curve")
        self.handlers.update(
            {
                INS.MANAGE_SECURITY_ENVIRONMENT: self.manage_security_environment,
                INS.GENERAL_AUTHENTICATE: self.general_authenticate,
                INS.INTERNAL_AUTHENTICATE: self.internal_authenticate,
            }
        )
        # One object in the MF and in the application DF: see the module docstring.
        if type(card.default_app) is IsoApplication:
            card.set_default_application(self)

    # -- the layer every command passes -----------------------------------------------

    def accepts_class(self, cla: int) -> bool:
        """Class ``00``, and ``10`` for the GENERAL AUTHENTICATE links the OS hands on."""
        return cla in (0x00, CHAINED)

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """The secure-messaging grant lives exactly as long as the session: once the card OS
        has ended it (plain command, SM error, reset), the grant goes too."""
        if channel.sm is None:
            channel.security.authenticated_keys.discard(self.options.secure_messaging_ref)
        if cmd.cla == CHAINED and cmd.ins != INS.GENERAL_AUTHENTICATE:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        return super().process(cmd, channel)

    def granted_authentications(self) -> frozenset[int]:
        """BAC, PACE and Chip Authentication grant ``auth:<secure_messaging_ref>``."""
        return frozenset({self.options.secure_messaging_ref})

    def on_select(self, channel: Channel) -> None:
        channel.app_state = EmrtdChannelState()

    def state(self, channel: Channel) -> EmrtdChannelState:
        return channel.state(EmrtdChannelState)

    def _open_session(self, channel: Channel, keys: SecureMessagingKeys) -> None:
        """Secure messaging with ``keys`` from the next command on, and the grant."""
        channel.start_secure_messaging(keys.chip_session())
        channel.security.authenticated_keys.add(self.options.secure_messaging_ref)

    def _require_session(self, channel: Channel, what: str) -> None:
        if channel.sm is None or self.options.secure_messaging_ref not in channel.security.authenticated_keys:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, f"{what} needs BAC or PACE secure messaging")

    def _read(self, ef: TransparentEF, offset: int, ne: int, channel: Channel) -> bytes:
        """READ BINARY with Le ``00`` / ``00 00`` (Ne 256 or 65 536, "all available bytes
        up to the maximum", ISO/IEC 7816-4:2020 §5.1) answers the rest of the file with
        ``9000``, as inspection systems reading a data group in one command expect; a
        shorter explicit Ne past the end still gets ``6282``."""
        try:
            return super()._read(ef, offset, ne, channel)
        except CardError as exc:
            if exc.sw == SW.END_OF_FILE_REACHED and ne in _WILDCARD_NE and exc.data:
                return exc.data
            raise

    # -- BAC (9303-11 §4.3) ------------------------------------------------------------------

    def get_challenge(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """GET CHALLENGE: with Le 08 and BAC allowed, RND.IC for BAC (9303-11 §4.3.4.1)."""
        if self._bac_keys is None or cmd.ne != CHALLENGE_LENGTH or cmd.p1 or cmd.p2 or cmd.data:
            return super().get_challenge(cmd, channel)
        bac = BacChip(self._bac_keys, rng=self.card.random)
        self.state(channel).bac = bac
        return bac.challenge()

    def external_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """EXTERNAL AUTHENTICATE of BAC: E_IFD || M_IFD -> E_IC || M_IC, then 3DES secure
        messaging (9303-11 §4.3.4.2); ``6300`` if the cryptogram does not verify."""
        if self._bac_keys is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "BAC is not offered")
        if cmd.p1 or cmd.p2:
            raise CardError(SW.INCORRECT_P1_P2)
        if len(cmd.data) != CRYPTOGRAM_LENGTH:
            raise CardError(SW.WRONG_LENGTH, f"EXTERNAL AUTHENTICATE data must be {CRYPTOGRAM_LENGTH} bytes")
        state = self.state(channel)
        bac, state.bac = state.bac, None
        if bac is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "GET CHALLENGE first")
        answer, keys = _run(lambda: bac.external_authenticate(cmd.data))
        self._open_session(channel, keys)
        return answer

    # -- MSE (9303-11 §4.4.4.1, §6.2.4) ---------------------------------------------------------

    def manage_security_environment(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """MSE:Set AT for PACE (``C1 A4``, 9303-11 §4.4.4.1) starts a PACE run; MSE:Set AT for
        Chip Authentication (``41 A4``, §6.2.4.2) prepares GENERAL AUTHENTICATE; MSE:Set KAT
        (``41 A6``, §6.2.4.1) runs Chip Authentication at once. Other P1-P2: ``6A86``."""
        state = self.state(channel)
        if cmd.p1p2 == MSE_SET_AT_PACE:
            state.pace = None
            state.pace = self._pace_chip(_run(lambda: MseSetAt.parse(cmd.data)))
            state.chip_authentication_set = False
            return b""
        if cmd.p1p2 == MSE_SET_AT_CA:
            self._require_session(channel, "Chip Authentication")
            mse = _run(lambda: MseSetAt.parse(cmd.data))
            self._chip(mse.protocol_oid, mse.key_reference)
            state.chip_authentication_set = True
            return b""
        if cmd.p1p2 == MSE_SET_KAT:
            self._require_session(channel, "Chip Authentication")
            kat = _run(lambda: MseSetKat.parse(cmd.data))
            ca = self._chip(None, kat.key_reference)
            keys = _run(lambda: ca.authenticate(kat.ephemeral_public_key))
            self._open_session(channel, keys)  # this answer still goes under the old keys
            return b""
        raise CardError(SW.INCORRECT_P1_P2, f"MSE P1-P2 {cmd.p1p2:04X} not supported")

    def _pace_chip(self, mse: MseSetAt) -> PaceChip:
        """The PACE run MSE:Set AT asks for: one of the profile's parameter sets (DO 84
        names the domain parameters when the OID has several) and the CAN or MRZ password."""
        offered = [o for o in self.options.pace if o.protocol_oid == mse.protocol_oid]
        if mse.key_reference is not None:
            offered = [o for o in offered if o.domain_id == mse.key_reference]
        if not offered:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "PACE parameters not offered")
        option = offered[0]
        if mse.password is PasswordType.CAN and self.options.can:
            password = PacePassword.can(self.options.can)
        elif mse.password is PasswordType.MRZ and self.options.mrz_information:
            password = PacePassword.mrz(*_mrz_fields(self.options.mrz_information))
        else:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "password reference not supported")
        sk_ic = None
        if option.mapping is PaceMapping.ECDH_CAM:
            if self._ca is None:
                raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "PACE-CAM needs a chip key")
            sk_ic = self._ca.private_key
        return PaceChip(
            option.protocol_oid, option.domain_id, password, chip_authentication_key=sk_ic, rng=self.card.random
        )

    def _chip(self, protocol_oid: str | None, key_reference: int | None) -> CaChip:
        """The chip key MSE names: our protocol OID, and our keyId if DO 84 is there."""
        ca = self._ca
        if ca is None or self.options.chip_authentication is None:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "Chip Authentication is not offered")
        if protocol_oid is not None and protocol_oid != ca.protocol_oid:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "Chip Authentication protocol not supported")
        if key_reference is not None and key_reference != self.options.chip_authentication.key_id:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no chip key {key_reference}")
        return ca

    # -- GENERAL AUTHENTICATE (9303-11 §4.4.4.2, §6.2.4.2) --------------------------------------

    def general_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """GENERAL AUTHENTICATE (ISO/IEC 7816-4:2020 §11.5.4): the next PACE step after
        MSE:Set AT for PACE (9303-11 §4.4.4.2; the chaining bit of steps 1-3 is accepted
        but not required), or Chip Authentication ``7C {80 PK_IFD}`` -> ``7C 00`` after MSE:Set
        AT for CA (§6.2.4.2). A failed step ends the run; without a run: ``6985``."""
        if cmd.p1p2:
            raise CardError(SW.INCORRECT_P1_P2)
        state = self.state(channel)
        try:
            data = _run(lambda: DynamicAuthenticationData.parse(cmd.data))
        except CardError:
            state.pace, state.chip_authentication_set = None, False  # a failed step ends the run
            raise
        if state.pace is not None:
            pace = state.pace
            answer = _run(lambda: pace.respond(data))
            if data.get(0x85) is not None:  # step 4 done: PACE established
                state.pace = None
                self._open_session(channel, pace.result.keys)
            return answer.encode()
        if state.chip_authentication_set:
            if cmd.cla == CHAINED:
                raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "Chip Authentication is one command")
            state.chip_authentication_set = False
            self._require_session(channel, "Chip Authentication")
            ca = self._chip(None, None)
            public_key = _run(lambda: data.require(0x80, "ephemeral public key"))
            keys = _run(lambda: ca.authenticate(public_key))
            self._open_session(channel, keys)  # this answer still goes under the old keys
            return DynamicAuthenticationData().encode()
        raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "MSE:Set AT first")

    # -- Active Authentication (9303-11 §6.1) ----------------------------------------------------

    def internal_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """INTERNAL AUTHENTICATE: the DG15 key signs RND.IFD (9303-11 §6.1)."""
        option, key = self.options.active_authentication, self._aa_key
        if option is None or key is None:
            raise CardError(SW.INS_NOT_SUPPORTED, "Active Authentication is not offered")
        if cmd.p1p2:
            raise CardError(SW.INCORRECT_P1_P2)
        if len(cmd.data) != CHALLENGE_LENGTH:
            raise CardError(SW.WRONG_LENGTH, f"RND.IFD must be {CHALLENGE_LENGTH} bytes")
        self._require_session(channel, "Active Authentication")
        if isinstance(key, rsa.RSAPrivateKey):
            return aa.rsa_sign(key, cmd.data, option.signature.hash_name, rng=self.card.random)
        return aa.ecdsa_sign(key, cmd.data, _ECDSA_OIDS[option.signature.hash_name])


T = TypeVar("T")


def _run(step: Callable[[], T]) -> T:
    """Run a codec step; its errors become the status words of 9303-11 (6300, 6985, 6A80)."""
    try:
        return step()
    except AuthenticationFailed as exc:
        raise CardError(SW.WARNING_NVM_CHANGED, str(exc)) from None
    except SequenceError as exc:
        raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, str(exc)) from None
    except IcaoError as exc:  # ProtocolError and any other malformed input
        raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, str(exc)) from None


def _load_key(path: Path, option: str) -> object:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise OptionError(option, f"cannot read {path.name}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise OptionError(option, f"{path.name} is not an unencrypted PEM private key") from None


def _chip_authentication(option: ChipAuthenticationOption) -> tuple[CaChip, object]:
    key = _load_key(option.key, "chip_authentication.key")
    if (option.agreement is Agreement.ECDH) != isinstance(key, crypto_ec.EllipticCurvePrivateKey):
        kind = "an EC" if option.agreement is Agreement.ECDH else "a DH"
        raise OptionError("chip_authentication.key", f"agreement {option.agreement} needs {kind} private key")
    if option.curve and isinstance(key, crypto_ec.EllipticCurvePrivateKey) and key.curve.name != option.curve:
        raise OptionError("chip_authentication.curve", f"the key is on {key.curve.name}")
    try:
        chip = CaChip.from_private_key(option.protocol_oid, key)  # type: ignore[arg-type]
    except (ValueError, AttributeError) as exc:
        raise OptionError("chip_authentication.key", str(exc)) from None
    return chip, key


def _active_authentication_key(
    option: ActiveAuthenticationOption,
) -> rsa.RSAPrivateKey | crypto_ec.EllipticCurvePrivateKey:
    key = _load_key(option.key, "active_authentication.key")
    if isinstance(key, rsa.RSAPrivateKey):
        if not option.signature.is_rsa:
            raise OptionError("active_authentication.signature", "an RSA key signs with ISO/IEC 9796-2")
        if key.key_size % 8:
            raise OptionError("active_authentication.key", "the RSA modulus must be whole bytes")
        if option.algorithm and option.algorithm != f"rsa-{key.key_size}":
            raise OptionError("active_authentication.algorithm", f"the key is rsa-{key.key_size}")
        return key
    if isinstance(key, crypto_ec.EllipticCurvePrivateKey):
        if option.signature.is_rsa:
            raise OptionError("active_authentication.signature", "an EC key signs with ECDSA")
        if option.algorithm and option.algorithm != f"ecdsa-{key.curve.name}":
            raise OptionError("active_authentication.algorithm", f"the key is ecdsa-{key.curve.name}")
        return key
    raise OptionError("active_authentication.key", "an RSA or EC private key is needed")


__all__ = [
    "EMRTD_AID",
    "ActiveAuthenticationOption",
    "ChipAuthenticationOption",
    "EmrtdApplication",
    "EmrtdChannelState",
    "EmrtdOptions",
    "PaceOption",
]
