"""The inspection procedure (ICAO 9303-11 §4.2-§6; 9303-10 §4.6) over any card connection.

:class:`InspectionSystem` runs, in order:

1. EF.CardAccess (MF, SFI ``1C``, plain); PACE v2 with the best parameter set offered
   (:func:`choose_pace`: chip authentication mapping before generic before integrated,
   ECDH before DH, AES before 3DES, longer keys first) and the CAN or the MRZ password
   (§4.4); BAC with the MRZ when there is no EF.CardAccess or no usable PACEInfo (§4.3);
2. for PACE-CAM, EF.CardSecurity (MF, SFI ``1D``) under the new secure messaging;
3. SELECT the eMRTD application (AID ``A0 00 00 02 47 10 01``), EF.COM, every data group
   its tag list names, and EF.SOD (9303-10 §4.6); a data group that answers ``6982`` is
   behind Extended Access Control: listed, protected, not read (the zones, read by
   :mod:`.eac` after Terminal Authentication);
4. passive authentication (:mod:`.passive`);
5. Chip Authentication v1 with DG14, restarting secure messaging with the new keys
   (§6.2), or, after PACE-CAM, the check of the chip authentication data against the key
   of EF.CardSecurity (§4.4.3.5.2);
6. Active Authentication with DG15 and a random challenge (§6.1).

Cryptography of the protocols is the codec's terminal roles (:mod:`eidemu.emulator.icao`);
every verification decision of passive authentication is :mod:`.passive`'s own.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa

from eidemu.emulator.icao import aa, lds
from eidemu.emulator.icao import asn1 as icao_asn1
from eidemu.emulator.icao.bac import BacKeys, BacTerminal
from eidemu.emulator.icao.errors import AuthenticationFailed, ProtocolError, SequenceError
from eidemu.emulator.icao.kdf import PacePassword, check_digit
from eidemu.emulator.icao.mse import MseSetAt
from eidemu.emulator.icao.oids import (
    ECDSA_HASH,
    KeyAgreement,
    Mapping,
    PaceProtocol,
    pace_protocol,
    standardized_domain_parameters,
)
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceResult, PaceTerminal
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sw import SW
from eidemu.fixtures import fixture_path

from ..connection import CardConnection
from .channel import EXTENDED_CHUNK, ChipChannel, ChipError
from .eac import ca_terminal_from_dg14, run_eac
from .passive import TrustStore, issued_by, passive_authentication, verify_signed_data
from .report import Check, FaceImage, Holder, InspectionReport

if TYPE_CHECKING:
    from eidemu.emulator.pki.eac import Terminal

RandomSource = Callable[[int], bytes]

#: eContentType of EF.CardSecurity (BSI TR-03110-3 Appendix A)
ID_SECURITY_OBJECT = "0.4.0.127.0.7.3.2.1"
_DG_BY_TAG = {tag: number for number, tag in lds.DG_TAGS.items()}


@dataclass(frozen=True)
class AccessKey:
    """What the terminal knows to open the chip: the CAN, or the MRZ's three fields.

    Never in a repr. :meth:`parse_mrz` accepts ``DOCNO,YYMMDD,YYMMDD`` or the MRZ
    information (document number, birth date, expiry date, each with its check digit).
    """

    can: str | None = field(default=None, repr=False)
    document_number: str | None = field(default=None, repr=False)
    date_of_birth: str | None = field(default=None, repr=False)
    date_of_expiry: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.can is not None:
            if not self.can.isdigit() or len(self.can) != 6:
                raise ValueError("the CAN must be 6 digits")
        elif self.document_number is None:
            raise ValueError("an access key needs the CAN or the MRZ fields")
        else:
            for name, date in (("date of birth", self.date_of_birth), ("date of expiry", self.date_of_expiry)):
                if date is None or len(date) != 6 or not date.isdigit():
                    raise ValueError(f"MRZ {name} must be YYMMDD")
            number = self.document_number
            if not number or any(not (c.isdigit() or "A" <= c <= "Z" or c == "<") for c in number):
                raise ValueError("MRZ document number must be digits, capital letters or <")

    @classmethod
    def parse_mrz(cls, text: str) -> AccessKey:
        """``DOCNO,YYMMDD,YYMMDD`` or the MRZ information with its check digits (9303-11 §9.7.2)."""
        text = text.strip().upper()
        if "," in text:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) != 3:
                raise ValueError("--mrz takes DOCNO,YYMMDD,YYMMDD (birth, expiry)")
            return cls(document_number=parts[0], date_of_birth=parts[1], date_of_expiry=parts[2])
        if len(text) < 16:
            raise ValueError("MRZ information is the document number, birth and expiry dates with check digits")
        number, number_check = text[:-15], text[-15]
        birth, birth_check, expiry, expiry_check = text[-14:-8], text[-8], text[-7:-1], text[-1]
        for value, digit, what in (
            (number.ljust(9, "<"), number_check, "document number"),
            (birth, birth_check, "date of birth"),
            (expiry, expiry_check, "date of expiry"),
        ):
            try:
                correct = check_digit(value) == digit
            except ValueError:
                correct = False
            if not correct:
                raise ValueError(f"MRZ information: the {what} check digit is wrong")
        return cls(document_number=number.rstrip("<"), date_of_birth=birth, date_of_expiry=expiry)

    @property
    def kind(self) -> str:
        return "CAN" if self.can is not None else "MRZ"

    def pace_password(self) -> PacePassword:
        if self.can is not None:
            return PacePassword.can(self.can)
        assert self.document_number and self.date_of_birth and self.date_of_expiry
        return PacePassword.mrz(self.document_number, self.date_of_birth, self.date_of_expiry)

    def bac_keys(self) -> BacKeys:
        if self.can is not None:
            raise ValueError("BAC needs the MRZ: the chip offers no PACE, so the CAN cannot open it")
        assert self.document_number and self.date_of_birth and self.date_of_expiry
        return BacKeys.from_mrz(self.document_number, self.date_of_birth, self.date_of_expiry)


@dataclass(frozen=True)
class PaceChoice:
    """One PACEInfo the terminal can run: its protocol and standardized parameter ID."""

    protocol: PaceProtocol
    parameter_id: int

    def describe(self) -> str:
        """``ECDH-CAM AES-128 brainpoolP256r1 (ID 13)``: what the PACEInfo selects."""
        p = self.protocol
        cipher = "3DES" if p.cipher.algorithm == "3des" else f"AES-{8 * p.cipher.key_length}"
        try:
            domain = standardized_domain_parameters(self.parameter_id).name
        except ValueError:
            domain = "unknown domain"
        return f"{p.agreement.value}-{p.mapping.value} {cipher} {domain} (ID {self.parameter_id})"


def pace_choices(card_access: bytes) -> list[PaceChoice]:
    """The PACEInfos of EF.CardAccess with a standardized parameter set (9303-11 §9.2.1)."""
    infos = lds.SecurityInfoSet.parse(card_access)
    choices = []
    for info in infos.of_type(icao_asn1.PACEInfo):
        if info["version"].native != 2 or info["parameter_id"].native is None:
            continue
        try:
            protocol = pace_protocol(info["protocol"].dotted)
        except ValueError:
            continue
        choices.append(PaceChoice(protocol, info["parameter_id"].native))
    return choices


def choose_pace(choices: list[PaceChoice]) -> PaceChoice | None:
    """The strongest choice: CAM, then generic, then integrated mapping; ECDH before DH;
    AES before 3DES; then the longer key; the chip's order breaks ties."""
    mapping_rank = {Mapping.CHIP_AUTHENTICATION: 3, Mapping.GENERIC: 2, Mapping.INTEGRATED: 1}

    def rank(choice: PaceChoice) -> tuple[int, int, int, int]:
        p = choice.protocol
        return (
            mapping_rank[p.mapping],
            p.agreement is KeyAgreement.ECDH,
            p.cipher.algorithm == "aes",
            p.cipher.key_length,
        )

    return max(choices, key=rank, default=None)


class AccessDenied(Exception):
    """PACE or BAC failed: the password is wrong or the chip refused the protocol."""


@dataclass
class InspectionSystem:
    """Reads one chip and verifies it; :meth:`inspect` returns the report.

    ``trust`` is the CSCA trust store (default: the shipped TEST master list and CRL);
    ``pace`` forces a PACE protocol OID (and ``parameter_id``) instead of :func:`choose_pace`;
    ``bac`` skips EF.CardAccess and uses BAC; ``chunk`` the READ BINARY size; ``rng`` the
    random source (challenges, keys); ``now`` the time certificates are checked at.
    """

    connection: CardConnection
    trust: TrustStore | None = None
    pace: str | None = None
    parameter_id: int | None = None
    bac: bool = False
    chunk: int = EXTENDED_CHUNK
    rng: RandomSource = os.urandom
    now: dt.datetime | None = None
    terminal: Terminal | None = None
    """A terminal of the TEST EAC PKI: TA v2 and CA v2 after PACE, then the zones (:mod:`.eac`)."""
    pin: str | None = field(default=None, repr=False)
    """The holder PIN for the private zone (only with ``terminal``)."""
    channel: ChipChannel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = ChipChannel(self.connection, chunk=self.chunk)
        if self.trust is None:
            self.trust = default_trust_store()

    # --- access control ------------------------------------------------------------------

    def read_card_access(self) -> bytes | None:
        """EF.CardAccess by SFI ``1C`` in the MF, plain; ``None`` if the chip has none (6A82)."""
        try:
            return self.channel.read_file(lds.LdsFile.CARD_ACCESS.sfi, "EF.CardAccess")
        except ChipError as exc:
            if exc.sw in (SW.FILE_NOT_FOUND, SW.SECURITY_STATUS_NOT_SATISFIED, SW.WRONG_P1_P2, SW.INCORRECT_P1_P2):
                return None
            raise

    def run_pace(self, choice: PaceChoice, key: AccessKey) -> PaceResult:
        """MSE:Set AT then four chained GENERAL AUTHENTICATE (9303-11 §4.4.4); secure
        messaging starts with the new keys. :class:`AccessDenied` on a refusal."""
        password = key.pace_password()
        terminal = PaceTerminal(choice.protocol.oid, choice.parameter_id, password, rng=self.rng)
        mse = MseSetAt(choice.protocol.oid, password.kind, choice.parameter_id).encode()
        try:
            self.channel.send(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, mse), "MSE:Set AT (PACE)")
            data = terminal.start()
            steps: list[Callable[[DynamicAuthenticationData], DynamicAuthenticationData]] = [
                terminal.map_nonce,
                terminal.key_agreement,
                terminal.mutual_authentication,
            ]
            for number in range(4):
                cla = 0x10 if number < 3 else 0x00  # command chaining (ISO/IEC 7816-4:2020 §5.3.3)
                response = self.channel.send(
                    CommandAPDU(cla, 0x86, 0x00, 0x00, data.encode(), 256), f"GENERAL AUTHENTICATE step {number + 1}"
                )
                answer = DynamicAuthenticationData.parse(response.data)
                if number < 3:
                    data = steps[number](answer)
                else:
                    result = terminal.finish(answer)
        except ChipError as exc:
            hint = " (wrong password?)" if exc.sw is not None and exc.sw & 0xFFF0 in (0x6300, 0x63C0) else ""
            raise AccessDenied(f"PACE with the {key.kind}: {exc}{hint}") from None
        except (AuthenticationFailed, ProtocolError, SequenceError, ValueError) as exc:
            raise AccessDenied(f"PACE with the {key.kind}: {exc}") from None
        self.channel.start_secure_messaging(result.keys.terminal_session())
        return result

    def run_bac(self, key: AccessKey) -> None:
        """GET CHALLENGE, EXTERNAL AUTHENTICATE, 3DES secure messaging (9303-11 §4.3)."""
        try:
            terminal = BacTerminal(key.bac_keys(), rng=self.rng)
            challenge = self.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8), "GET CHALLENGE").data
            data = terminal.external_authenticate_data(challenge)
            answer = self.channel.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, data, 40), "EXTERNAL AUTHENTICATE").data
            keys = terminal.finish(answer)
        except ChipError as exc:
            hint = " (wrong MRZ?)" if exc.sw == SW.WARNING_NVM_CHANGED else ""
            raise AccessDenied(f"BAC: {exc}{hint}") from None
        except (AuthenticationFailed, ProtocolError, SequenceError, ValueError) as exc:
            raise AccessDenied(f"BAC: {exc}") from None
        self.channel.start_secure_messaging(keys.terminal_session())

    # --- the whole read ------------------------------------------------------------------

    def inspect(self, key: AccessKey) -> InspectionReport:
        """Access, read, verify: the report of this chip (see the module docstring)."""
        checks: list[Check] = []
        files: dict[str, bytes] = {}
        description = getattr(self.connection, "description", "card")
        try:
            card_access = None if self.bac else self.read_card_access()
        except ChipError as exc:
            checks.append(Check.failed("access", str(exc)))
            return InspectionReport(description, "none", files, None, None, tuple(checks))
        choice: PaceChoice | None = None
        if card_access is not None:
            files["EF.CardAccess"] = card_access
            try:
                choices = pace_choices(card_access)
            except lds.LdsError as exc:
                checks.append(Check.failed("access", f"EF.CardAccess: {exc}"))
                return InspectionReport(description, "none", files, None, None, tuple(checks))
            if self.pace is not None:
                forced = [
                    c for c in choices if c.protocol.oid == self.pace and self.parameter_id in (None, c.parameter_id)
                ]
                if not forced:
                    raise ValueError(f"the chip offers no PACEInfo for {self.pace}")
                choice = forced[0]
            else:
                choice = choose_pace(choices)
        pace_result: PaceResult | None = None
        try:
            if choice is not None:
                access = f"PACE {choice.describe()}, {key.kind}"
                pace_result = self.run_pace(choice, key)
            else:
                access = "BAC, MRZ"
                self.channel.select_application(lds.EMRTD_AID)
                self.run_bac(key)
        except (AccessDenied, ChipError) as exc:
            checks.append(Check.failed("access", str(exc)))
            return InspectionReport(description, access, files, None, None, tuple(checks))
        checks.append(Check.passed("access", access))

        try:
            if pace_result is not None and pace_result.ca_ic is not None:
                files["EF.CardSecurity"] = self.channel.read_file(0x1D, "EF.CardSecurity")
            if pace_result is not None:
                self.channel.select_application(lds.EMRTD_AID)
            files["EF.COM"] = self.channel.read_file(lds.LdsFile.COM.sfi, "EF.COM")
            numbers = [_DG_BY_TAG[t] for t in lds.EfCom.parse(files["EF.COM"]).data_group_tags if t in _DG_BY_TAG]
            data_groups: dict[int, bytes] = {}
            protected: list[int] = []
            for number in numbers:
                try:
                    data_groups[number] = self.channel.read_file(number, f"DG{number}")
                except ChipError as exc:
                    # Listed, behind Extended Access Control (9303-10 §4.6.1; an eMRTD's DG3
                    # and DG4 answer 6982 without EAC): not read, not a failure.
                    if exc.sw != SW.SECURITY_STATUS_NOT_SATISFIED:
                        raise
                    protected.append(number)
                    continue
                files[f"DG{number}"] = data_groups[number]
            files["EF.SOD"] = self.channel.read_file(lds.LdsFile.SOD.sfi, "EF.SOD")
        except (ChipError, lds.LdsError) as exc:
            checks.append(Check.failed("read", str(exc)))
            return InspectionReport(description, access, files, None, None, tuple(checks))
        read = ", ".join(f"DG{n}" for n in data_groups)
        behind = f"; behind EAC, not read: {', '.join(f'DG{n}' for n in protected)}" if protected else ""
        checks.append(Check.passed("read", f"EF.COM, {read}, EF.SOD{behind}"))

        holder, face, decode_checks = decode_holder(data_groups)
        checks.extend(decode_checks)
        assert self.trust is not None
        checks.extend(passive_authentication(files["EF.SOD"], data_groups, self.trust, self.now, protected))
        zones: list[tuple[str, str]] = []
        if self.terminal is not None and pace_result is not None:
            checks.extend(run_eac(self, pace_result, data_groups.get(14), files, zones))
        elif pace_result is not None and pace_result.ca_ic is not None:
            checks.append(self.check_pace_cam(pace_result, files["EF.CardSecurity"]))
        else:
            checks.append(self.chip_authentication(data_groups.get(14)))
        checks.append(self.active_authentication(data_groups.get(15), data_groups.get(14)))
        return InspectionReport(description, access, files, holder, face, tuple(checks), tuple(zones))

    # --- chip and active authentication ----------------------------------------------------

    def check_pace_cam(self, result: PaceResult, card_security: bytes) -> Check:
        """PACE-CAM: EF.CardSecurity signed by a Document Signer of a trusted CSCA, and
        CA_IC * PK_IC = PK_map,IC with its ChipAuthenticationPublicKeyInfo (9303-11 §4.4.3.5.2)."""
        name = "chip-authentication"
        try:
            signed = verify_signed_data(card_security, ID_SECURITY_OBJECT, "EF.CardSecurity")
        except ValueError as exc:
            return Check.failed(name, str(exc))
        assert self.trust is not None
        if not any(issued_by(signed.signer, c) for c in self.trust.cscas):
            return Check.failed(name, "EF.CardSecurity's signer is not issued by a trusted CSCA")
        try:
            infos = lds.SecurityInfoSet.parse(signed.content)
            keys = infos.of_type(icao_asn1.ChipAuthenticationPublicKeyInfo)
            if not keys:
                return Check.failed(name, "EF.CardSecurity has no ChipAuthenticationPublicKeyInfo")
            public = keys[0]["chip_authentication_public_key"]["public_key"].native
            result.verify_chip_authentication(bytes(public) if not isinstance(public, bytes) else public)
        except (AuthenticationFailed, ProtocolError, lds.LdsError, ValueError) as exc:
            return Check.failed(name, str(exc))
        return Check.passed(name, "PACE-CAM: the chip authentication data matches EF.CardSecurity's key")

    def chip_authentication(self, dg14: bytes | None) -> Check:
        """Chip Authentication v1 with DG14's key (9303-11 §6.2): MSE:Set AT + GENERAL
        AUTHENTICATE (AES) or MSE:Set KAT (3DES), over ECDH or DH; then secure messaging with the new keys,
        proved by a READ BINARY the chip must answer under them."""
        name = "chip-authentication"
        if dg14 is None:
            return Check.skipped(name, "no DG14")
        try:
            found = ca_terminal_from_dg14(dg14, self.rng)
            if isinstance(found, str):
                return Check.skipped(name, found) if found.startswith("DG14 has no") else Check.failed(name, found)
            terminal, key_id = found
        except (lds.LdsError, ValueError, KeyError) as exc:
            return Check.failed(name, f"DG14: {exc}")
        try:
            if terminal.protocol.cipher.algorithm == "3des":
                self.channel.send(CommandAPDU(0x00, 0x22, 0x41, 0xA6, terminal.mse_set_kat_data(key_id)), "MSE:Set KAT")
            else:
                mse = terminal.mse_set_at_data(key_id)
                self.channel.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, mse), "MSE:Set AT (CA)")
                self.channel.send(
                    CommandAPDU(0x00, 0x86, 0x00, 0x00, terminal.general_authenticate_data().encode(), 256),
                    "GENERAL AUTHENTICATE (CA)",
                )
            self.channel.start_secure_messaging(terminal.session_keys().terminal_session())
            self.channel.send(CommandAPDU(0x00, 0xB0, 0x80 | lds.LdsFile.COM.sfi, 0, b"", 1), "READ BINARY after CA")
        except ChipError as exc:
            return Check.failed(name, str(exc))
        cipher = terminal.protocol.cipher
        suite = "3DES" if cipher.algorithm == "3des" else f"AES-{8 * cipher.key_length}"
        return Check.passed(name, f"CA {terminal.protocol.agreement.value} {suite}, secure messaging restarted")

    def active_authentication(self, dg15: bytes | None, dg14: bytes | None) -> Check:
        """INTERNAL AUTHENTICATE with an 8-byte random challenge, the answer verified with
        DG15's key: ISO/IEC 9796-2 scheme 1 (RSA) or plain ECDSA with the algorithm of DG14's
        ActiveAuthenticationInfo (9303-11 §6.1)."""
        name = "active-authentication"
        if dg15 is None:
            return Check.skipped(name, "no DG15")
        try:
            public_key = lds.Dg15.parse(dg15).public_key()
        except lds.LdsError as exc:
            return Check.failed(name, str(exc))
        if self.channel.session is None:
            return Check.skipped(name, "secure messaging has ended (see chip-authentication)")
        challenge = self.rng(8)
        try:
            signature = self.channel.send(
                CommandAPDU(0x00, 0x88, 0x00, 0x00, challenge, 65536, True), "INTERNAL AUTHENTICATE"
            ).data
        except ChipError as exc:
            return Check.failed(name, str(exc))
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                recovered = aa.rsa_verify(public_key, challenge, signature)
                return Check.passed(name, f"RSA-{public_key.key_size}, ISO/IEC 9796-2 scheme 1, {recovered.hash_name}")
            algorithm = _aa_signature_algorithm(dg14)
            if algorithm is None:
                return Check.failed(name, "ECDSA key in DG15 but no ActiveAuthenticationInfo in DG14")
            aa.ecdsa_verify(public_key, challenge, signature, algorithm)
            return Check.passed(name, f"ECDSA {public_key.curve.name}, {ECDSA_HASH[algorithm]}")
        except (AuthenticationFailed, ProtocolError, ValueError) as exc:
            return Check.failed(name, str(exc))


def _aa_signature_algorithm(dg14: bytes | None) -> str | None:
    if dg14 is None:
        return None
    try:
        infos = lds.SecurityInfoSet.parse(dg14, lds.DG_TAGS[14]).of_type(icao_asn1.ActiveAuthenticationInfo)
    except lds.LdsError:
        return None
    return infos[0]["signature_algorithm"].dotted if infos else None


def decode_holder(data_groups: dict[int, bytes]) -> tuple[Holder | None, FaceImage | None, list[Check]]:
    """Holder data from DG1, DG11, DG12 and the face from DG2 (9303-10 §4.7); a data group
    that does not decode fails ``decode:DGn``."""
    checks: list[Check] = []
    holder: Holder | None = None
    face: FaceImage | None = None

    def decode(number: int, parse: Callable[[bytes], object]) -> object | None:
        if number not in data_groups:
            return None
        try:
            value = parse(data_groups[number])
        except lds.LdsError as exc:
            checks.append(Check.failed(f"decode:DG{number}", str(exc)))
            return None
        return value

    dg1 = decode(1, lds.Dg1.parse)
    dg11 = decode(11, lds.Dg11.parse)
    dg12 = decode(12, lds.Dg12.parse)
    dg2 = decode(2, lds.Dg2.parse)
    if isinstance(dg1, lds.Dg1):
        mrz = dg1.mrz
        extra: dict[str, str] = {}
        if isinstance(dg11, lds.Dg11):
            extra.update(
                full_name=dg11.full_name,
                personal_number=dg11.personal_number,
                place_of_birth=dg11.place_of_birth,
                full_date_of_birth=dg11.full_date_of_birth,
            )
        if isinstance(dg12, lds.Dg12):
            extra.update(issuing_authority=dg12.issuing_authority, date_of_issue=dg12.date_of_issue)
        holder = Holder(
            document_code=mrz.document_code,
            issuing_state=mrz.issuing_state,
            document_number=mrz.document_number,
            primary_identifier=mrz.primary_identifier,
            secondary_identifier=mrz.secondary_identifier,
            nationality=mrz.nationality,
            date_of_birth=mrz.date_of_birth,
            sex=mrz.sex,
            date_of_expiry=mrz.date_of_expiry,
            optional_data=mrz.optional_data_2 or mrz.optional_data_1,
            **extra,
        )
    if isinstance(dg2, lds.Dg2) and dg2.faces:
        first = dg2.faces[0]
        kind = "jpeg" if first.data_type == lds.ImageDataType.JPEG else "jpeg2000"
        face = FaceImage(first.image, kind, first.width, first.height)
    return holder, face, checks


def default_trust_store() -> TrustStore:
    """The shipped TEST master list and CSCA CRL (fixtures/pki/eid/csca; docs/eid.md)."""
    csca = fixture_path("pki", "eid", "csca")
    return TrustStore.from_master_list(csca / "masterlist.der", [csca / "csca-tw.crl"])


def read_chip(connection: CardConnection, key: AccessKey, **options: object) -> InspectionReport:
    """One inspection of the chip behind ``connection`` (see :class:`InspectionSystem`)."""
    return InspectionSystem(connection, **options).inspect(key)  # type: ignore[arg-type]
