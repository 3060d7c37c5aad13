"""The card file system: MF, DFs, transparent and linear-record EFs (ISO/IEC 7816-4:2020 §7.1).

Files know their place in the tree and their access conditions; the commands that act on
them live in :mod:`eidemu.emulator.cardos.commands`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..iso7816.sw import SW, CardError
from ..iso7816.tlv import TLV
from .security import ALWAYS, NEVER, AccessCondition, AccessOperation

MF_FID = 0x3F00
_READ = AccessOperation.READ  # bound once: Enum class attribute look-ups are slow in Python 3.11


@dataclass(eq=False)
class File:
    """Common part of every file: identifier, optional SFI, access rules, parent."""

    fid: int
    name: str = ""
    access: dict[AccessOperation, AccessCondition] = field(default_factory=dict)
    sfi: int | None = None
    parent: DF | None = field(default=None, repr=False)

    def rule(self, operation: AccessOperation) -> AccessCondition:
        """The condition for an operation; reads default to always, updates to never."""
        default = ALWAYS if operation is _READ else NEVER
        return self.access.get(operation, default)

    @property
    def path(self) -> str:
        """Slash-separated FIDs from the MF, for example ``3F00/5030/4100``."""
        parts = []
        node: File | None = self
        while node is not None:
            parts.append(f"{node.fid:04X}")
            node = node.parent
        return "/".join(reversed(parts))

    def descriptor(self) -> int:
        """File descriptor byte (ISO/IEC 7816-4:2020 §7.4.5)."""
        raise NotImplementedError

    def fcp_objects(self) -> list[TLV]:
        objs = [TLV(0x82, bytes((self.descriptor(),))), TLV(0x83, self.fid.to_bytes(2, "big"))]
        if self.sfi is not None:
            objs.append(TLV(0x88, bytes((self.sfi << 3,))))
        objs.append(TLV(0x8A, b"\x05"))  # life cycle: operational, activated
        return objs

    def fcp(self) -> bytes:
        """File control parameters template '62' (ISO/IEC 7816-4:2020 §7.4.3)."""
        return TLV.build(0x62, *self.fcp_objects()).encode()

    def fci(self) -> bytes:
        """File control information template '6F' (ISO/IEC 7816-4:2020 §7.4.1)."""
        return TLV.build(0x6F, *self.fcp_objects()).encode()

    def fmd(self) -> bytes:
        """File management data template '64' (ISO/IEC 7816-4:2020 §7.4.1); empty here."""
        return TLV(0x64).encode()


@dataclass(eq=False)
class DF(File):
    """A dedicated file; the MF is the DF with FID 3F00. ``aid`` is its DF name."""

    aid: bytes = b""
    children: dict[int, File] = field(default_factory=dict)
    by_short_id: dict[int, EF] = field(default_factory=dict, repr=False)

    def descriptor(self) -> int:
        return 0x38

    def fcp_objects(self) -> list[TLV]:
        objs = super().fcp_objects()
        if self.aid:
            objs.insert(2, TLV(0x84, self.aid))
        return objs

    def add(self, child: File) -> File:
        if child.fid in self.children or child.fid in (MF_FID, self.fid):
            raise ValueError(f"duplicate file identifier {child.fid:04X} in {self.path}")
        if child.sfi is not None and any(c.sfi == child.sfi for c in self.children.values()):
            raise ValueError(f"duplicate short EF identifier {child.sfi:02X} in {self.path}")
        child.parent = self
        self.children[child.fid] = child
        if child.sfi is not None and isinstance(child, EF):
            self.by_short_id[child.sfi] = child
        return child

    def walk(self) -> Iterator[File]:
        yield self
        for child in self.children.values():
            if isinstance(child, DF):
                yield from child.walk()
            else:
                yield child

    def by_sfi(self, sfi: int) -> EF:
        ef = self.by_short_id.get(sfi)
        if ef is None:
            raise CardError(SW.FILE_NOT_FOUND, f"no EF with SFI {sfi:02X}")
        return ef

    def find_path(self, path: str) -> File:
        """Resolve ``3F00/5030/4100`` style paths (from the MF) for profiles and state."""
        parts = [int(p, 16) for p in path.split("/") if p]
        if not parts or parts[0] != self.fid:
            raise KeyError(path)
        node: File = self
        for fid in parts[1:]:
            if not isinstance(node, DF) or fid not in node.children:
                raise KeyError(path)
            node = node.children[fid]
        return node


@dataclass(eq=False)
class EF(File):
    """Base of elementary files."""

    def snapshot(self) -> object:
        raise NotImplementedError

    def restore(self, saved: object) -> None:
        raise NotImplementedError


@dataclass(eq=False)
class TransparentEF(EF):
    """A transparent EF: a byte string addressed by offset (ISO/IEC 7816-4:2020 §7.1)."""

    data: bytearray = field(default_factory=bytearray)

    def descriptor(self) -> int:
        return 0x01

    def fcp_objects(self) -> list[TLV]:
        return [TLV(0x80, len(self.data).to_bytes(2, "big")), *super().fcp_objects()]

    def read(self, offset: int, length: int) -> tuple[bytes, bool]:
        """Bytes from ``offset``; the flag is True when the end of file cut the read short."""
        size = len(self.data)
        if offset > size:
            raise CardError(SW.WRONG_P1_P2, f"offset {offset} beyond end of file ({size} bytes)")
        chunk = bytes(self.data[offset : offset + length])
        return chunk, len(chunk) < length

    def write(self, offset: int, chunk: bytes) -> None:
        size = len(self.data)
        if offset > size:
            raise CardError(SW.WRONG_P1_P2, f"offset {offset} beyond end of file ({size} bytes)")
        if offset + len(chunk) > size:
            raise CardError(SW.NOT_ENOUGH_MEMORY, "write past the end of the file")
        self.data[offset : offset + len(chunk)] = chunk

    def snapshot(self) -> object:
        return bytes(self.data).hex()

    def restore(self, saved: object) -> None:
        self.data = bytearray(bytes.fromhex(str(saved)))


@dataclass(eq=False)
class RecordEF(EF):
    """A linear EF of variable-size records, numbered from 1 (ISO/IEC 7816-4:2020 §7.1)."""

    records: list[bytes] = field(default_factory=list)
    max_records: int = 254
    record_size: int = 0  # 0: variable size; otherwise linear fixed
    current: int = 0

    def descriptor(self) -> int:
        return 0x02 if self.record_size else 0x04

    def fcp_objects(self) -> list[TLV]:
        objs = super().fcp_objects()
        if self.record_size:
            objs[0] = TLV(0x82, bytes((self.descriptor(), 0x21, 0x00, self.record_size, len(self.records))))
        return objs

    def record(self, number: int) -> bytes:
        if not 1 <= number <= len(self.records):
            raise CardError(SW.RECORD_NOT_FOUND, f"record {number} not found")
        return self.records[number - 1]

    def check_size(self, data: bytes) -> None:
        if self.record_size and len(data) != self.record_size:
            raise CardError(SW.WRONG_LENGTH, f"records of this EF are {self.record_size} bytes")
        if len(data) > 255:
            raise CardError(SW.WRONG_LENGTH, "a record holds at most 255 bytes")

    def update(self, number: int, data: bytes) -> None:
        self.record(number)
        self.check_size(data)
        self.records[number - 1] = data

    def append(self, data: bytes) -> None:
        if len(self.records) >= self.max_records:
            raise CardError(SW.NOT_ENOUGH_MEMORY, "no room for another record")
        self.check_size(data)
        self.records.append(data)

    def snapshot(self) -> object:
        return [r.hex() for r in self.records]

    def restore(self, saved: object) -> None:
        if not isinstance(saved, list):
            raise ValueError("record file state must be a list")
        self.records = [bytes.fromhex(str(r)) for r in saved]
