"""The mobile certificate service's integrity primitives (``docs/moica-services.md``, "Integrity").

* ``sp_checksum`` / ``idp_checksum``: AES-256-GCM (NIST SP 800-38D) with a 12-byte zero IV under
  the SP's key, over the lower-case SHA-256 hex digest of the concatenated fields; the
  ciphertext and 16-byte tag are sent base64 (the encoding is eidemu's reading, documented).
* ``sp_ticket``: ``base64url(json) "." base64url(sha256(first segment))`` (RFC 4648 §5, no padding).
* ``hashed_id_num``: SHA-256 hex of the national ID number: the only form an ID takes in logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ZERO_IV = bytes(12)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (RFC 4648 §5); ValueError on anything else."""
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def checksum(key: bytes, fields: Sequence[str]) -> str:
    """``base64(AES-256-GCM(key, IV=0^12, sha256_hex(concat(fields))))``."""
    digest_hex = hashlib.sha256("".join(fields).encode("utf-8")).hexdigest()
    return base64.b64encode(AESGCM(key).encrypt(ZERO_IV, digest_hex.encode("ascii"), None)).decode("ascii")


def checksum_matches(key: bytes, fields: Sequence[str], presented: object) -> bool:
    """Constant-time comparison of a presented checksum with the expected one."""
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(checksum(key, fields).encode("ascii"), presented.encode("utf-8", "replace"))


def make_ticket(payload: dict[str, Any]) -> str:
    first = b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{first}.{b64url(hashlib.sha256(first.encode('ascii')).digest())}"


def parse_ticket(ticket: object) -> dict[str, Any]:
    """The payload of a well-formed ticket whose second segment matches; ValueError otherwise."""
    if not isinstance(ticket, str) or ticket.count(".") != 1 or len(ticket) > 2048:
        raise ValueError("malformed ticket")
    first, second = ticket.split(".")
    expected = b64url(hashlib.sha256(first.encode("ascii", "replace")).digest())
    if not hmac.compare_digest(expected.encode("ascii"), second.encode("ascii", "replace")):
        raise ValueError("ticket hash mismatch")
    try:
        payload = json.loads(b64url_decode(first))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("malformed ticket") from exc
    if not isinstance(payload, dict):
        raise ValueError("malformed ticket")
    return payload


def hash_id(id_num: str) -> str:
    """``hashed_id_num``: SHA-256 hex of the ID number (how IDs appear in answers and logs)."""
    return hashlib.sha256(id_num.encode("utf-8")).hexdigest()
