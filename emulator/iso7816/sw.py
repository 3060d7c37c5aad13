"""Status words and instruction bytes, named after the ISO/IEC 7816-4 tables.

ISO/IEC 7816-4:2013 §5.1.3 (Tables 5 and 6) lists the status words; §5.4 (Table 4 and the
instruction index) lists the interindustry instructions.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class SW(IntEnum):
    """Status words SW1-SW2 (ISO/IEC 7816-4 §5.1.3, Tables 5 and 6)."""

    NO_ERROR = 0x9000
    # 62xx warning, non-volatile memory unchanged
    WARNING_NO_INFO = 0x6200
    END_OF_FILE_REACHED = 0x6282
    SELECTED_FILE_DEACTIVATED = 0x6283
    # 63xx warning, non-volatile memory changed
    WARNING_NVM_CHANGED = 0x6300
    # 64xx/65xx execution errors
    EXECUTION_ERROR = 0x6400
    MEMORY_FAILURE = 0x6581
    # 67xx checking error
    WRONG_LENGTH = 0x6700
    # 68xx functions in CLA not supported
    CLA_FUNCTION_NOT_SUPPORTED = 0x6800
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883
    COMMAND_CHAINING_NOT_SUPPORTED = 0x6884
    # 69xx command not allowed
    COMMAND_NOT_ALLOWED = 0x6900
    COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_OF_USE_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED_NO_CURRENT_EF = 0x6986
    EXPECTED_SM_DATA_OBJECTS_MISSING = 0x6987
    INCORRECT_SM_DATA_OBJECTS = 0x6988
    # 6Axx wrong parameters P1-P2
    INCORRECT_PARAMETERS_IN_DATA_FIELD = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    NC_INCONSISTENT_WITH_TLV = 0x6A85
    INCORRECT_P1_P2 = 0x6A86
    NC_INCONSISTENT_WITH_P1_P2 = 0x6A87
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    FILE_ALREADY_EXISTS = 0x6A89
    DF_NAME_ALREADY_EXISTS = 0x6A8A
    # single-byte errors
    WRONG_P1_P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00

    @property
    def hex(self) -> str:
        return f"{self.value:04X}"


def describe_sw(sw: int) -> str:
    """A readable name for any status word, including the parameterised families.

    ``61xx`` (ISO 7816-4 §5.1.3: xx more bytes available), ``63Cx`` (counter x) and
    ``6Cxx`` (wrong Le, xx exact) carry a value in SW2 and are described with it.
    """
    try:
        return SW(sw).name
    except ValueError:
        pass
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"BYTES_AVAILABLE({sw2 or 256})"
    if sw1 == 0x6C:
        return f"WRONG_LE(exact={sw2 or 256})"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"PIN_TRIES_LEFT({sw2 & 0x0F})"
    return "UNKNOWN"


def is_success(sw: int) -> bool:
    """9000 and 61xx are normal processing (ISO 7816-4 §5.1.3)."""
    return sw == 0x9000 or (sw >> 8) == 0x61


@unique
class INS(IntEnum):
    """Interindustry instruction bytes (ISO/IEC 7816-4 §5.4 and §7-§11, ISO 7816-8/-9)."""

    DEACTIVATE_FILE = 0x04
    ERASE_RECORD = 0x0C
    ERASE_BINARY = 0x0E
    VERIFY = 0x20
    MANAGE_SECURITY_ENVIRONMENT = 0x22
    CHANGE_REFERENCE_DATA = 0x24
    DISABLE_VERIFICATION_REQUIREMENT = 0x26
    ENABLE_VERIFICATION_REQUIREMENT = 0x28
    PERFORM_SECURITY_OPERATION = 0x2A
    RESET_RETRY_COUNTER = 0x2C
    ACTIVATE_FILE = 0x44
    GENERATE_ASYMMETRIC_KEY_PAIR = 0x46
    MANAGE_CHANNEL = 0x70
    EXTERNAL_AUTHENTICATE = 0x82
    GET_CHALLENGE = 0x84
    GENERAL_AUTHENTICATE = 0x86
    INTERNAL_AUTHENTICATE = 0x88
    SEARCH_BINARY = 0xA0
    SEARCH_RECORD = 0xA2
    SELECT = 0xA4
    READ_BINARY = 0xB0
    READ_BINARY_ODD = 0xB1
    READ_RECORD = 0xB2
    GET_RESPONSE = 0xC0
    ENVELOPE = 0xC2
    GET_DATA = 0xCA
    GET_DATA_ODD = 0xCB
    WRITE_BINARY = 0xD0
    WRITE_RECORD = 0xD2
    UPDATE_BINARY = 0xD6
    PUT_DATA = 0xDA
    UPDATE_RECORD = 0xDC
    CREATE_FILE = 0xE0
    APPEND_RECORD = 0xE2
    DELETE_FILE = 0xE4
    TERMINATE_DF = 0xE6
    TERMINATE_EF = 0xE8
    TERMINATE_CARD_USAGE = 0xFE


def describe_ins(ins: int) -> str:
    try:
        return INS(ins).name
    except ValueError:
        return f"INS_{ins:02X}"


class CardError(Exception):
    """The one failure path on the card side: an error carrying the status word to answer.

    Handlers raise it; the card OS turns it into the response APDU (STYLE habit 2).
    ``data`` is returned with the status word where ISO allows it (e.g. 6282 with the
    bytes that could be read).
    """

    def __init__(self, sw: int, message: str = "", data: bytes = b"") -> None:
        super().__init__(message or describe_sw(sw))
        self.sw = int(sw)
        self.data = data


def verify_failed(tries_left: int) -> CardError:
    """63Cx: verification failed, x further tries allowed (ISO 7816-4 §5.1.3)."""
    return CardError(0x63C0 | min(tries_left, 15), f"wrong PIN, {tries_left} tries left")
