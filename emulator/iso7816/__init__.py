"""The ISO/IEC 7816 codec shared by the card and the tester: APDUs, status words and
instruction names, BER-TLV, block-cipher helpers, secure-messaging wrapping, APDU traces.

Nothing here knows a card's state; the card OS is :mod:`eidemu.emulator.cardos`.
"""

from .apdu import CommandAPDU, ResponseAPDU
from .sw import INS, SW, CardError

__all__ = ["INS", "SW", "CardError", "CommandAPDU", "ResponseAPDU"]
