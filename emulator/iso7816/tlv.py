"""BER-TLV data objects (ISO/IEC 7816-4 §6.3, ISO/IEC 8825-1 §8.1.2-8.1.3).

Tags are kept as integers of their encoded bytes (``0x5F1F`` for the two-byte tag
``5F 1F``), the convention of ISO 7816-4's tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class TLVError(ValueError):
    """Malformed BER-TLV encoding."""


def _tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(n: int) -> bytes:
    """Definite length: short form below 128, else 81/82/83/84 long form (8825-1 §8.1.3)."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > 4:
        raise TLVError("length too large")
    return bytes((0x80 | len(body),)) + body


def read_tag(data: bytes, offset: int) -> tuple[int, int]:
    """Read a tag at ``offset``; return (tag, offset after it)."""
    if offset >= len(data):
        raise TLVError("truncated tag")
    first = data[offset]
    tag = first
    offset += 1
    if first & 0x1F == 0x1F:
        while True:
            if offset >= len(data):
                raise TLVError("truncated multi-byte tag")
            b = data[offset]
            tag = (tag << 8) | b
            offset += 1
            if not b & 0x80:
                break
            if tag > 0xFFFFFFFF:
                raise TLVError("tag longer than 4 bytes")
    return tag, offset


def read_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read a definite length at ``offset``; return (length, offset after it)."""
    if offset >= len(data):
        raise TLVError("truncated length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0 or count > 4:
        raise TLVError(f"unsupported length byte {first:02X}")
    if offset + count > len(data):
        raise TLVError("truncated long-form length")
    return int.from_bytes(data[offset : offset + count], "big"), offset + count


@dataclass(frozen=True)
class TLV:
    """One data object: tag and value. Constructed objects parse their value on demand."""

    tag: int
    value: bytes = b""

    @property
    def constructed(self) -> bool:
        """Bit b6 of the first tag byte (ISO 8825-1 §8.1.2.5)."""
        return bool(_tag_bytes(self.tag)[0] & 0x20)

    @property
    def children(self) -> list[TLV]:
        if not self.constructed:
            raise TLVError(f"tag {self.tag:X} is primitive")
        return parse_all(self.value)

    @classmethod
    def build(cls, tag: int, *children: TLV | bytes) -> TLV:
        """A constructed object from children (TLVs or already-encoded bytes)."""
        return cls(tag, b"".join(bytes(c) for c in children))

    @classmethod
    def parse(cls, data: bytes) -> TLV:
        """Parse exactly one data object filling ``data``."""
        tlv, end = parse_one(data, 0)
        if end != len(data):
            raise TLVError(f"{len(data) - end} trailing bytes after TLV")
        return tlv

    def encode(self) -> bytes:
        return _tag_bytes(self.tag) + encode_length(len(self.value)) + self.value

    __bytes__ = encode

    def find(self, *path: int) -> TLV | None:
        """The first descendant along a path of tags, or None."""
        return find(self.value, *path) if path else self


def parse_one(data: bytes, offset: int = 0) -> tuple[TLV, int]:
    tag, offset = read_tag(data, offset)
    length, offset = read_length(data, offset)
    end = offset + length
    if end > len(data):
        raise TLVError(f"value of tag {tag:X} truncated: {length} announced, {len(data) - offset} present")
    return TLV(tag, bytes(data[offset:end])), end


def iter_tlv(data: bytes, skip_padding: bool = False) -> Iterator[TLV]:
    """Data objects in sequence. With ``skip_padding`` stop at 00/FF filler (7816-4 §6.3)."""
    offset = 0
    while offset < len(data):
        if skip_padding and data[offset] in (0x00, 0xFF):
            return
        tlv, offset = parse_one(data, offset)
        yield tlv


def parse_all(data: bytes) -> list[TLV]:
    return list(iter_tlv(data))


def find(data: bytes, *path: int) -> TLV | None:
    """Follow a path of tags through nested constructed objects."""
    current: Iterable[TLV] = iter_tlv(data)
    found: TLV | None = None
    for i, tag in enumerate(path):
        found = next((t for t in current if t.tag == tag), None)
        if found is None:
            return None
        if i < len(path) - 1:
            current = found.children
    return found
