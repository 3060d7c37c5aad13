"""Errors of the ICAO protocol codec, one per kind of failure the APDU layer reports.

The card applet turns :class:`AuthenticationFailed` into the status word 9303-11 names for
the command (``6300`` for EXTERNAL AUTHENTICATE and for a PACE token that does not
verify, 9303-11 §4.3.4, §4.4.4.2), :class:`ProtocolError` into a format or state error
(``6A80``) and :class:`SequenceError` into ``6985`` (conditions of use not satisfied);
the terminal reports any of them as a failed step.
"""

from __future__ import annotations


class IcaoError(ValueError):
    """Base class of the codec's errors; the message names what was wrong, never a key."""


class AuthenticationFailed(IcaoError):
    """A cryptogram, MAC, token or signature from the other side does not verify."""


class ProtocolError(IcaoError):
    """Malformed data, a missing data object, an invalid public key or a step out of order."""


class SequenceError(ProtocolError):
    """A step out of order: after a failure, before its predecessor, or once more."""
