"""Test doubles: an ISO application with one deliberate defect, chosen by profile options.

Only the conformance suite's own tests use these (STYLE: doubles stay inside tests/). The
type registers itself as ``test-broken-iso`` when this module is imported.

Options (each off by default):

- ``wrong_sw_ins`` + ``wrong_sw``: answer every command with that INS with that status word
  (e.g. INS FC answered 6E00 instead of 6D00);
- ``pin_no_decrement``: a wrong PIN is refused but the retry counter stays where it was;
- ``truncate_read_binary``: successful READ BINARY (B0) responses lose their last byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from eidemu.emulator.applets import APPLICATION_TYPES
from eidemu.emulator.cardos.card import Channel
from eidemu.emulator.cardos.commands import IsoApplication
from eidemu.emulator.cardos.security import Pin
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sw import CardError, verify_failed


@dataclass(frozen=True)
class BrokenOptions:
    wrong_sw_ins: int | None = None
    wrong_sw: str = "6F00"
    pin_no_decrement: bool = False
    truncate_read_binary: bool = False


class BrokenIsoApplication(IsoApplication):
    """:class:`IsoApplication` with the defects its options switch on."""

    type_name = "test-broken-iso"
    options_type = BrokenOptions
    options: BrokenOptions

    def process(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if self.options.wrong_sw_ins is not None and cmd.ins == self.options.wrong_sw_ins:
            raise CardError(int(self.options.wrong_sw, 16))
        return super().process(cmd, channel)

    def read_binary(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        data = super().read_binary(cmd, channel)
        return data[:-1] if self.options.truncate_read_binary else data

    def verify_pin(self, pin: Pin, candidate: bytes, channel: Channel) -> bytes:
        before = pin.remaining
        try:
            return super().verify_pin(pin, candidate, channel)
        except CardError as exc:
            if self.options.pin_no_decrement and candidate and exc.sw & 0xFFF0 == 0x63C0:
                pin.remaining = before
                raise verify_failed(before) from None
            raise


APPLICATION_TYPES.setdefault(BrokenIsoApplication.type_name, BrokenIsoApplication)
