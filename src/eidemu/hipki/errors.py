"""The HiPKI local service's answer codes: ``ret_code`` and ``last_error``.

Values and meanings from the public client scripts of the vendor's service, restated in
``docs/hipki.md`` ("Error codes"). Where the scripts give a range without naming each value
(``0x76000001``-``09``, ``0x763000xx``), the values chosen here are listed in that file as
eidemu's choices. ``last_error`` carries PKCS#11 return values (PKCS#11 v2.40 §11.1:
``CKR_PIN_INCORRECT`` 0xA0, ``CKR_PIN_LEN_RANGE`` 0xA2, ``CKR_PIN_LOCKED`` 0xA4,
``CKR_FUNCTION_FAILED`` 0x06, ``CKR_BUFFER_TOO_SMALL`` 0x150) and the service's own
"tries left" values ``0x80000001``/``0x80000002``.

JSON numbers are signed 32-bit integers (:func:`signed32`): ``0x80000002`` is sent as
``-2147483646``.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class RetCode(IntEnum):
    """``ret_code`` values."""

    OK = 0
    NO_KEY = 0x76000001
    NO_CERTIFICATE = 0x76000002
    NO_TBS = 0x76000003
    NO_CIPHER = 0x76000004
    NO_LIBRARY = 0x76000005
    NO_CARD = 0x76000006
    NOT_LOGGED_IN = 0x76000007
    BAD_JSON = 0x7600000B
    BAD_PARAMETER = 0x7600000C
    EXECUTION_ERROR = 0x7600000D  # execution error or timeout (also: queue wait exceeded)
    UNSUPPORTED = 0x7600000E
    FORBIDDEN_DOMAIN = 0x7600000F
    UNTRUSTED_SITE = 0x76000031
    NO_PIN = 0x76000998
    CANCELLED = 0x76000999
    NO_READER = 0x76100003
    LOGIN_FAILED = 0x76100006
    CERTIFICATE_NOT_FOUND = 0x7610000C
    KEY_NOT_FOUND = 0x7610000D
    SIGN_FAILED = 0x76300001  # the card refused or failed the private-key operation
    DECRYPT_FAILED = 0x76300002  # eidemu's choice inside 0x763000xx: decryption failed
    CERT_NOT_YET_VALID = 0x76500001
    CERT_EXPIRED = 0x76500002


@unique
class LastError(IntEnum):
    """``last_error`` values."""

    NONE = 0
    FUNCTION_FAILED = 0x06
    PIN_INCORRECT = 0xA0
    PIN_LEN_RANGE = 0xA2
    PIN_LOCKED = 0xA4
    BUFFER_TOO_SMALL = 0x150
    ONE_TRY_LEFT = 0x80000001
    TWO_TRIES_LEFT = 0x80000002


def signed32(value: int) -> int:
    """``value`` as a signed 32-bit integer (two's complement), as the service sends numbers."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def wrong_pin_error(tries_left: int) -> LastError:
    """``last_error`` for a wrong PIN: the tries left (1, 2), locked at 0, else PIN_INCORRECT."""
    if tries_left <= 0:
        return LastError.PIN_LOCKED
    if tries_left == 1:
        return LastError.ONE_TRY_LEFT
    if tries_left == 2:
        return LastError.TWO_TRIES_LEFT
    return LastError.PIN_INCORRECT


class HipkiError(Exception):
    """An error answer: ``ret_code``, ``last_error`` and a one-line message for people.

    Messages never carry a PIN or key material: they are built from fixed texts and from
    values that are not secret (reader names, status words, parameter names).
    """

    def __init__(self, ret_code: int, message: str, last_error: int = LastError.NONE) -> None:
        super().__init__(message)
        self.ret_code = int(ret_code)
        self.last_error = int(last_error)
        self.message = message

    def answer(self, func: str) -> dict[str, object]:
        return {
            "func": func,
            "ret_code": signed32(self.ret_code),
            "last_error": signed32(self.last_error),
            "message": self.message,
        }


__all__ = ["HipkiError", "LastError", "RetCode", "signed32", "wrong_pin_error"]
