"""The interindustry commands of ISO/IEC 7816-4:2020 as an application.

``IsoApplication`` implements selection (§11.1), data unit handling (§11.2), record
handling (§11.3), GET DATA (§11.4) and the basic security commands (§11.5): GET CHALLENGE,
EXTERNAL AUTHENTICATE, VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER.
Card-specific applications subclass it and change class rules or handlers.
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar

from ..iso7816.apdu import CommandAPDU
from ..iso7816.crypto import encrypt_block
from ..iso7816.sw import INS, SW, CardError
from ..iso7816.tlv import TLV, TLVError, find
from .card import Application, Card, Channel
from .fs import DF, EF, MF_FID, File, RecordEF, TransparentEF
from .security import AccessOperation, Pin

READ, UPDATE = AccessOperation.READ, AccessOperation.UPDATE


class IsoApplication(Application):
    """ISO/IEC 7816-4:2020 file system and security commands for interindustry class ``00``."""

    type_name = "iso"
    enters_by_path: ClassVar[bool] = False
    """True: selecting the application's DF by FID or path selects the application too."""

    def __init__(
        self,
        card: Card,
        df: DF,
        aid: bytes = b"",
        options: Any = None,
    ) -> None:
        super().__init__(card, df, aid, options)
        self.handlers.update(
            {
                INS.SELECT: self.select_file,
                INS.READ_BINARY: self.read_binary,
                INS.READ_BINARY_ODD: self.read_binary_odd,
                INS.UPDATE_BINARY: self.update_binary,
                INS.READ_RECORD: self.read_record,
                INS.UPDATE_RECORD: self.update_record,
                INS.APPEND_RECORD: self.append_record,
                INS.GET_DATA: self.get_data,
                INS.GET_CHALLENGE: self.get_challenge,
                INS.EXTERNAL_AUTHENTICATE: self.external_authenticate,
                INS.VERIFY: self.verify,
                INS.CHANGE_REFERENCE_DATA: self.change_reference_data,
                INS.RESET_RETRY_COUNTER: self.reset_retry_counter,
            }
        )

    # -- SELECT (§11.1) ----------------------------------------------------------------

    def select_file(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.p1 == 0x04:
            target = self._select_by_name(cmd.data, channel)
        else:
            target = self._locate(cmd.p1, cmd.data, channel)
        self._make_current(target, channel)
        return self.select_response(cmd, target)

    def select_response(self, cmd: CommandAPDU, target: File) -> bytes:
        """The template P2 b4-b3 asks for: FCI (00), FCP (04), FMD (08), none (0C)."""
        what = cmd.p2 & 0x0C
        if what == 0x0C:
            return b""
        if what == 0x04:
            return target.fcp()
        if what == 0x08:
            return target.fmd()
        return target.fci()

    def _make_current(self, target: File, channel: Channel) -> None:
        if isinstance(target, DF):
            self._enter_application_df(target, channel)
            channel.current_df, channel.current_ef = target, None
        else:
            assert target.parent is not None
            channel.current_df, channel.current_ef = target.parent, target  # type: ignore[assignment]

    def _locate(self, p1: int, data: bytes, channel: Channel) -> File:
        mf = self.card.mf
        if p1 == 0x00:
            if not data or data == b"\x3f\x00":
                return mf
            fid = self._fid(data)
            return self._find_fid(fid, channel.current_df)
        if p1 in (0x01, 0x02):
            fid = self._fid(data)
            child = channel.current_df.children.get(fid)
            want_df = p1 == 0x01
            if child is None or isinstance(child, DF) != want_df:
                raise CardError(SW.FILE_NOT_FOUND, f"no {'DF' if want_df else 'EF'} {fid:04X} here")
            return child
        if p1 == 0x03:
            if data:
                raise CardError(SW.WRONG_LENGTH, "select parent takes no data")
            return channel.current_df.parent or mf
        if p1 in (0x08, 0x09):
            if not data or len(data) % 2:
                raise CardError(SW.WRONG_LENGTH, "path must be a non-empty sequence of FIDs")
            node: File = mf if p1 == 0x08 else channel.current_df
            fids = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
            if p1 == 0x08 and fids[0] == MF_FID:
                fids = fids[1:]  # tolerate a path that repeats the MF
            for fid in fids:
                if not isinstance(node, DF) or fid not in node.children:
                    raise CardError(SW.FILE_NOT_FOUND, f"path element {fid:04X} not found")
                node = node.children[fid]
            return node
        raise CardError(SW.INCORRECT_P1_P2, f"SELECT P1={p1:02X} not supported")

    def _enter_application_df(self, target: DF, channel: Channel) -> None:
        """For applications that ask for it (``enters_by_path``): selecting the application's
        DF by FID or path selects the application, as selecting it by its AID does. Generic
        PKCS#15 middleware reaches an application by the path of its EF.DIR entry (PKCS #15
        v1.1 §5.4, ISO/IEC 7816-15:2004 §8.3) and never by the AID."""
        if not target.aid:
            return
        app = self.card.applications.get(target.aid)
        if not isinstance(app, IsoApplication) or not app.enters_by_path or app is channel.app or app.df is not target:
            return
        self._enter_application(app, channel)

    @staticmethod
    def _enter_application(app: Application, channel: Channel) -> None:
        """``app`` becomes current on the channel (§7.1): another application's local
        security status and secure-messaging session end; the application starts afresh."""
        if channel.app is not app:
            channel.security.clear_local()
            channel.end_secure_messaging()
            channel.app = app
        app.on_select(channel)

    @staticmethod
    def _fid(data: bytes) -> int:
        if len(data) != 2:
            raise CardError(SW.WRONG_LENGTH, "a file identifier is 2 bytes")
        return (data[0] << 8) | data[1]

    @staticmethod
    def _find_fid(fid: int, current: DF) -> File:
        """SELECT by FID (§7.3, §11.1; P1 00): children of the current DF, the current DF, its
        parent and the parent's children."""
        found = current.children.get(fid)
        if found is not None:
            return found
        if current.fid == fid:
            return current
        parent = current.parent
        if parent is not None:
            if parent.fid == fid:
                return parent
            sibling = parent.children.get(fid)
            if sibling is not None:
                return sibling
        raise CardError(SW.FILE_NOT_FOUND, f"file {fid:04X} not found")

    def _select_by_name(self, name: bytes, channel: Channel) -> File:
        if not name:
            raise CardError(SW.WRONG_LENGTH, "DF name missing")
        app = self.card.application_for(name)
        if app is not None:
            self._enter_application(app, channel)
            return app.df
        for f in self.card.mf.walk():
            if isinstance(f, DF) and f.aid and f.aid.startswith(name):
                return f
        raise CardError(SW.FILE_NOT_FOUND, f"no DF named {name.hex().upper()}")

    # -- access helpers ---------------------------------------------------------------

    def check_access(self, f: File, operation: AccessOperation, channel: Channel) -> None:
        """6982 unless the channel's security status satisfies the file's rule (§9)."""
        if not f.rule(operation).satisfied_by(channel.security):
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, f"{operation} of {f.path} not allowed")

    def _ef_from_sfi(self, sfi: int, channel: Channel) -> EF:
        ef = channel.current_df.by_sfi(sfi)
        channel.current_ef = ef
        return ef

    def _current_ef(self, channel: Channel) -> EF:
        if channel.current_ef is None:
            raise CardError(SW.COMMAND_NOT_ALLOWED_NO_CURRENT_EF, "no current EF")
        return channel.current_ef

    def _transparent_target(self, cmd: CommandAPDU, channel: Channel) -> tuple[TransparentEF, int]:
        """P1 b8 = 1: SFI in P1 b5-b1 and an 8-bit offset; else a 15-bit offset (§11.2)."""
        p1 = cmd.p1
        ef: EF | None
        if p1 & 0x80:
            if p1 & 0x60:
                raise CardError(SW.INCORRECT_P1_P2)
            ef = self._ef_from_sfi(p1 & 0x1F, channel)
            offset = cmd.p2
        else:
            ef = channel.current_ef
            if ef is None:
                raise CardError(SW.COMMAND_NOT_ALLOWED_NO_CURRENT_EF, "no current EF")
            offset = ((p1 & 0x7F) << 8) | cmd.p2
        if not isinstance(ef, TransparentEF):
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        return ef, offset

    # -- transparent EFs (§11.2) -------------------------------------------------------

    def read_binary(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.data:
            raise CardError(SW.WRONG_LENGTH, "READ BINARY takes no data")
        if cmd.ne is None:
            raise CardError(SW.WRONG_LENGTH, "READ BINARY needs Le")
        ef, offset = self._transparent_target(cmd, channel)
        return self._read(ef, offset, cmd.ne, channel)

    def _read(self, ef: TransparentEF, offset: int, ne: int, channel: Channel) -> bytes:
        if READ in ef.access:  # reads are allowed unless a rule says otherwise (File.rule)
            self.check_access(ef, READ, channel)
        chunk, short = ef.read(offset, ne)
        if short:
            # §11.2: end of file reached before reading Ne bytes; data still returned (6282).
            raise CardError(SW.END_OF_FILE_REACHED, data=chunk)
        return chunk

    def read_binary_odd(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """READ BINARY with odd INS B1: offset in DO 54, data in DO 53 (§11.2)."""
        if cmd.ne is None:
            raise CardError(SW.WRONG_LENGTH, "READ BINARY needs Le")
        try:
            offset_do = find(cmd.data, 0x54)
        except TLVError:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "bad offset data object") from None
        if offset_do is None or not 1 <= len(offset_do.value) <= 3:
            raise CardError(SW.INCORRECT_PARAMETERS_IN_DATA_FIELD, "offset DO 54 missing")
        offset = int.from_bytes(offset_do.value, "big")
        fid = cmd.p1p2
        if fid == 0:
            ef = self._current_ef(channel)
        elif cmd.p1 == 0 and cmd.p2 & 0xE0 == 0 and cmd.p2:
            ef = self._ef_from_sfi(cmd.p2, channel)  # P1-P2 000xxxxx: SFI
        else:
            target = self._find_fid(fid, channel.current_df)
            if not isinstance(target, EF):
                raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE)
            self._make_current(target, channel)
            ef = target
        if not isinstance(ef, TransparentEF):
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        if cmd.ne < 3:
            raise CardError(SW.WRONG_LENGTH, "Ne too small for a DO 53 with data")
        # Leave room for the 53 tag and its length inside Ne.
        room = max(cmd.ne - 4, 1)
        try:
            chunk = self._read(ef, offset, room, channel)
        except CardError as exc:
            if exc.sw != SW.END_OF_FILE_REACHED:
                raise
            raise CardError(SW.END_OF_FILE_REACHED, data=TLV(0x53, exc.data).encode()) from None
        return TLV(0x53, chunk).encode()

    def update_binary(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if not cmd.data:
            raise CardError(SW.WRONG_LENGTH, "UPDATE BINARY needs data")
        ef, offset = self._transparent_target(cmd, channel)
        self.check_access(ef, UPDATE, channel)
        ef.write(offset, cmd.data)
        self.card.mark_dirty(ef)
        self.card.persist()
        return b""

    # -- record EFs (§11.3) ------------------------------------------------------------

    def _record_target(self, cmd: CommandAPDU, channel: Channel) -> RecordEF:
        sfi = cmd.p2 >> 3
        ef = self._ef_from_sfi(sfi, channel) if sfi else self._current_ef(channel)
        if not isinstance(ef, RecordEF):
            raise CardError(SW.COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        return ef

    def read_record(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.ne is None:
            raise CardError(SW.WRONG_LENGTH, "READ RECORD needs Le")
        if cmd.p2 & 0x07 != 0x04:
            raise CardError(SW.INCORRECT_P1_P2, "only 'record number in P1' is supported")
        ef = self._record_target(cmd, channel)
        self.check_access(ef, READ, channel)
        number = cmd.p1 or ef.current
        record = ef.record(number)
        ef.current = number
        if cmd.ne < len(record) and cmd.ne not in (256, 65536):
            raise CardError(0x6C00 | len(record), "Le does not match the record length")
        return record

    def update_record(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.p2 & 0x07 != 0x04:
            raise CardError(SW.INCORRECT_P1_P2, "only 'record number in P1' is supported")
        ef = self._record_target(cmd, channel)
        self.check_access(ef, UPDATE, channel)
        number = cmd.p1 or ef.current
        ef.update(number, cmd.data)
        ef.current = number
        self.card.mark_dirty(ef)
        self.card.persist()
        return b""

    def append_record(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.p1 != 0 or cmd.p2 & 0x07:
            raise CardError(SW.INCORRECT_P1_P2)
        ef = self._record_target(cmd, channel)
        self.check_access(ef, UPDATE, channel)
        ef.append(cmd.data)
        ef.current = len(ef.records)
        self.card.mark_dirty(ef)
        self.card.persist()
        return b""

    # -- data objects and challenges -----------------------------------------------------

    def get_data(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """GET DATA (§11.4): P1-P2 names a data object defined in the profile."""
        value = self.card.data_objects.get(cmd.p1p2)
        if value is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no data object {cmd.p1p2:04X}")
        return value

    def get_challenge(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """GET CHALLENGE (§11.5): Ne random bytes, kept for a following authentication."""
        if cmd.p1 or cmd.p2:
            raise CardError(SW.INCORRECT_P1_P2)
        if cmd.ne is None or cmd.data:
            raise CardError(SW.WRONG_LENGTH, "GET CHALLENGE needs Le and no data")
        length = min(cmd.ne, 256)
        channel.security.challenge = self.card.random(length)
        return channel.security.challenge

    def external_authenticate(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """EXTERNAL AUTHENTICATE (§11.5): data = the last challenge, one block enciphered.

        P2 is the key reference; on success ``auth:<ref>`` access conditions hold on this
        channel. A challenge is usable once.
        """
        key = self.card.keys.get(cmd.p2 & 0x7F) or self.card.keys.get(cmd.p2)
        if key is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no key {cmd.p2:02X}")
        challenge, channel.security.challenge = channel.security.challenge, b""
        if not challenge:
            raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "GET CHALLENGE first")
        block = key.algorithm.block_size
        expected = encrypt_block(key.algorithm, key.value, challenge[:block].ljust(block, b"\x00"))
        if not hmac.compare_digest(expected, cmd.data):
            raise CardError(SW.WARNING_NVM_CHANGED, "authentication failed")
        channel.security.authenticated_keys.add(key.ref)
        return b""

    # -- PINs (§11.5) ---------------------------------------------------------------------

    def pin(self, p2: int) -> Pin:
        pin = self.card.pins.get(p2)
        if pin is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND, f"no PIN with reference {p2:02X}")
        return pin

    def verify(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        if cmd.p1 not in (0x00, 0xFF):
            raise CardError(SW.INCORRECT_P1_P2)
        pin = self.pin(cmd.p2)
        if cmd.p1 == 0xFF:  # ISO/IEC 7816-4:2020 §11.5 (VERIFY P1 FF): reset the verification status
            channel.security.verified_pins.discard(pin.ref)
            return b""
        return self.verify_pin(pin, cmd.data, channel)

    def verify_pin(self, pin: Pin, candidate: bytes, channel: Channel) -> bytes:
        """Shared by every way a card presents a PIN (plain or enciphered)."""
        if not candidate:
            if pin.ref in channel.security.verified_pins and not pin.blocked:
                return b""
            raise pin.status_error()
        channel.security.verified_pins.discard(pin.ref)
        pin.check(candidate, self.card.persist)
        channel.security.verified_pins.add(pin.ref)
        return b""

    def change_reference_data(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """P1 00: old || new; P1 01: new only, after a successful VERIFY or when the PIN's
        ``change`` condition holds (ISO/IEC 7816-4:2020 §11.5; for example a terminal with
        the PIN-management right, BSI TR-03110-3 Table C.4)."""
        pin = self.pin(cmd.p2)
        if cmd.p1 == 0x00:
            n = pin.wire_length
            if len(cmd.data) <= n:
                raise CardError(SW.WRONG_LENGTH, "old and new reference data expected")
            old, new = cmd.data[:n], cmd.data[n:]
            new_value = pin.format_value(new)
            self.verify_pin(pin, old, channel)
        elif cmd.p1 == 0x01:
            if pin.ref not in channel.security.verified_pins and not pin.change.satisfied_by(channel.security):
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            if pin.blocked:
                # RESET RETRY COUNTER unblocks; also blocked by wrong tries on another
                # channel since this one verified.
                raise CardError(SW.AUTHENTICATION_METHOD_BLOCKED)
            new_value = pin.format_value(cmd.data)
        else:
            raise CardError(SW.INCORRECT_P1_P2)
        # The counter is left as it is: P1 00 restored it through the VERIFY of the old
        # value; P1 01 proves nothing new, so wrong tries made since then still count.
        pin.value = new_value
        self.card.persist()
        return b""

    def reset_retry_counter(self, cmd: CommandAPDU, channel: Channel) -> bytes:
        """RESET RETRY COUNTER (§11.5) with a PUK in the data or an unblock condition.

        P1 00: PUK || new PIN; 01: PUK only; 02: new PIN only; 03: no data. For 02 and
        03 the PIN's ``unblock`` condition (a verified PUK or an administrative
        authentication) must already hold.
        """
        pin = self.pin(cmd.p2)
        p1 = cmd.p1
        if p1 > 3:
            raise CardError(SW.INCORRECT_P1_P2)
        new_value: bytes | None = None
        if p1 in (0x00, 0x01):
            if pin.puk_ref is None:
                raise CardError(SW.CONDITIONS_OF_USE_NOT_SATISFIED, "this PIN has no PUK")
            puk = self.pin(pin.puk_ref)
            n = puk.wire_length
            if (p1 == 0x00 and len(cmd.data) <= n) or (p1 == 0x01 and len(cmd.data) != n):
                raise CardError(SW.WRONG_LENGTH)
            if p1 == 0x00:
                new_value = pin.format_value(cmd.data[n:])
            self.verify_pin(puk, cmd.data[:n], channel)
        else:
            if not pin.unblock.satisfied_by(channel.security):
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED, "unblock condition not met")
            if p1 == 0x02:
                new_value = pin.format_value(cmd.data)
            elif cmd.data:
                raise CardError(SW.WRONG_LENGTH)
        if new_value is not None:
            pin.value = new_value
        pin.remaining = pin.max_tries
        self.card.persist()
        return b""
