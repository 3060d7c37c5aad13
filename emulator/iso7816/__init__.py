"""ISO/IEC 7816-4 building blocks: APDUs, status words, BER-TLV, files, security, card OS."""

from .apdu import CommandAPDU, ResponseAPDU
from .card import Application, Card, Channel
from .sw import INS, SW, CardError

__all__ = ["INS", "SW", "Application", "Card", "CardError", "Channel", "CommandAPDU", "ResponseAPDU"]
