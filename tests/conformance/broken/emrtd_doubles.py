"""TEST DOUBLES: eID chips (eMRTD application) with one deliberate defect.

Built at test time from the shipped profile ``eid-g2-valid-1`` (``eid-g3-valid-1`` for the
zone defect) so that they follow the fixtures when the test PKI is regenerated: the profile
is copied with its file references made absolute, and one thing is changed.

Defects:

- ``dg-hash``: DG12 is changed after signing (one digit of the date of issue), so EF.SOD's
  hash for DG12 is wrong;
- ``ds-expired``: EF.SOD is the one signed by the expired Document Signer
  (``EF.SOD.ds-expired.bin``);
- ``ds-revoked``: EF.SOD is the one signed by the Document Signer the CSCA's CRL revokes
  (``EF.SOD.ds-revoked.bin``);
- ``bad-mac``: every secure-messaging response carries a wrong DO 8E (application type
  ``test-broken-emrtd``, option ``bad_response_mac``);
- ``ssc-step``: after each response the chip steps its send sequence counter once more than
  ICAO Doc 9303-11 §9.8.3 says (option ``extra_ssc_step``), so its first answer in a session
  verifies and the next command's MAC no longer does.
- ``zone-altered``: the G3 chip's DG5 (mother's name, private zone behind EAC) is changed
  after signing (one UTF-8 continuation byte: another character), so EF.SOD's hash for DG5
  is wrong; only a terminal that reads the zone after EAC can see it.

The application type registers itself when this module is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eidemu.emulator.applets import APPLICATION_TYPES
from eidemu.emulator.applets.emrtd import EmrtdApplication, EmrtdOptions
from eidemu.emulator.cardos.card import Channel
from eidemu.emulator.icao.session import SecureMessagingKeys
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sm import CardSession
from eidemu.emulator.profile import PROFILE_DIR

BASE = "eid-g2-valid-1"
ZONE_BASE = "eid-g3-valid-1"
DEFECTS = ("dg-hash", "ds-expired", "ds-revoked", "bad-mac", "ssc-step", "zone-altered")


@dataclass(frozen=True)
class BrokenEmrtdOptions(EmrtdOptions):
    bad_response_mac: bool = False
    extra_ssc_step: bool = False


class _BrokenSession:
    """A chip session whose responses are spoiled as the options say."""

    def __init__(self, inner: CardSession, options: BrokenEmrtdOptions) -> None:
        self.inner = inner
        self.options = options
        self.keys = inner.keys

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU:
        return self.inner.unwrap(cmd)

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        body, sw = self.inner.wrap(data, sw)
        if self.options.bad_response_mac:
            body = body[:-1] + bytes((body[-1] ^ 0x01,))
        if self.options.extra_ssc_step:
            self.inner.keys.next_ssc()
        return body, sw


class BrokenEmrtdApplication(EmrtdApplication):
    """:class:`EmrtdApplication` with the secure-messaging defects its options switch on."""

    type_name = "test-broken-emrtd"
    options_type = BrokenEmrtdOptions
    options: BrokenEmrtdOptions

    def _open_session(self, channel: Channel, keys: SecureMessagingKeys) -> None:
        super()._open_session(channel, keys)
        assert isinstance(channel.sm, CardSession)
        channel.start_secure_messaging(_BrokenSession(channel.sm, self.options))


APPLICATION_TYPES.setdefault(BrokenEmrtdApplication.type_name, BrokenEmrtdApplication)


def build_emrtd_double(defect: str, workdir: Path) -> Path:
    """Write the profile of an ``eid-g2-valid-1`` (or ``eid-g3-valid-1``) copy with ``defect``;
    return its path."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r} (known: {', '.join(DEFECTS)})")
    base = ZONE_BASE if defect == "zone-altered" else BASE
    # text edits, not a YAML round trip: the profile spells hex values (SFIs, FIDs) as plain scalars
    chip = (PROFILE_DIR.parent / "pki" / "eid" / "chips" / base.removeprefix("eid-")).resolve()
    text = (PROFILE_DIR / f"{base}.yaml").read_text(encoding="utf-8")
    text = text.replace(f"name: {base}", f"name: broken-emrtd-{defect}", 1)
    if defect == "zone-altered":
        dg5 = bytearray((chip / "DG5.bin").read_bytes())
        dg5[-1] = 0x80 + (dg5[-1] - 0x80 + 1) % 0x40
        (workdir / "DG5.bin").write_bytes(bytes(dg5))
        text = _replace_once(text, "../pki/eid/chips/g3-valid-1/DG5.bin", str(workdir / "DG5.bin"))
    elif defect == "dg-hash":
        dg12 = bytearray((chip / "DG12.bin").read_bytes())
        dg12[-1] = ord("0") + (dg12[-1] - ord("0") + 1) % 10  # last digit of the date of issue
        (workdir / "DG12.bin").write_bytes(bytes(dg12))
        text = _replace_once(text, "../pki/eid/chips/g2-valid-1/DG12.bin", str(workdir / "DG12.bin"))
    elif defect in ("ds-expired", "ds-revoked"):
        text = _replace_once(text, "g2-valid-1/EF.SOD.bin", f"g2-valid-1/EF.SOD.{defect}.bin")
    else:
        option = "bad_response_mac" if defect == "bad-mac" else "extra_ssc_step"
        text = _replace_once(text, "    type: emrtd\n", f"    type: {BrokenEmrtdApplication.type_name}\n")
        text = _replace_once(text, "      bac: true\n", f"      bac: true\n      {option}: true\n")
    text = text.replace("../pki/", f"{PROFILE_DIR.parent.resolve() / 'pki'}/")
    path = workdir / f"broken-emrtd-{defect}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"the base profile: expected one {old!r}")
    return text.replace(old, new)
