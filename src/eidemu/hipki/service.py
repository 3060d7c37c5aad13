"""What the HiPKI-compatible service does for each call, apart from HTTP.

``/pkcs11info``, ``/sign`` and ``/decrypt`` as the vendor's public client scripts use them
(``docs/hipki.md``): the answer is a JSON object with ``func``, ``ret_code`` and
``last_error``; an error is :class:`~eidemu.hipki.errors.HipkiError`. One card operation at a
time per slot: the others wait for the slot's lock at most ``queue_timeout`` seconds, then
get ``0x7600000D``. Card I/O runs in worker threads (one hop per request: slot listing, lock
and card operation in the same thread), so the event loop keeps serving meanwhile.

PINs: taken from the request (or the scripted user), checked for length, handed to the
card client and dropped; they never reach a log, a trace or a message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .cards import (
    CardConnection,
    CardConnectionError,
    CardSource,
    ConnectionWrapper,
    InvalidPinError,
    MoicaCard,
    MoicaError,
    PinBlockedError,
    SlotState,
    Token,
    TokenCertificate,
    read_token,
    strip_type2_padding,
)
from .cms import SignedAttributeRequest, hash_name, sign_cms, sign_pkcs1
from .errors import HipkiError, LastError, RetCode, wrong_pin_error
from .user import ScriptedUser

log = logging.getLogger("eidemu.hipki")

SERVER_VERSION = "1.3.4.9"  # passes the lexical gates ">= 1.3.4.3 / 1.3.4.13 / 1.3.4.103328"
LIBRARY_DESCRIPTION = "eidemu HiPKI-compatible service (TEST, emulated cards)"
CRYPTOKI_VERSION = "2.40"
TOKEN_LABEL = "HiCOS PKI Smart Card"  # noqa: S105 - a token label, not a password
PIN_MIN, PIN_MAX = 6, 8
CKF_TOKEN_PRESENT, CKF_REMOVABLE_DEVICE, CKF_HW_SLOT = 0x1, 0x2, 0x4  # PKCS#11 v2.40 §3.2 CK_SLOT_INFO
ABSENT = "__NotExistedTag__"  # what ChtICToken sends for a field it does not have

T = TypeVar("T")


def field_value(package: dict[str, Any], name: str) -> str | None:
    """A tbsPackage field as a string; None when absent, empty or ChtICToken's placeholder."""
    value = package.get(name)
    if value is None or value == ABSENT or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str | int):
        raise HipkiError(RetCode.BAD_PARAMETER, f"{name} is not a string")
    return str(value)


def flag(package: dict[str, Any], name: str, default: bool = False) -> bool:
    """A boolean field: the strings "true"/"false" (or JSON booleans)."""
    value = field_value(package, name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise HipkiError(RetCode.BAD_PARAMETER, f'{name} is neither "true" nor "false"')
    return value.lower() == "true"


def parse_package(text: str | None) -> dict[str, Any]:
    """The ``tbsPackage`` form field: a JSON object (``0x7600000B`` otherwise)."""
    if text is None:
        raise HipkiError(RetCode.BAD_PARAMETER, "the request has no tbsPackage")
    try:
        package = json.loads(text)
    except ValueError:
        raise HipkiError(RetCode.BAD_JSON, "tbsPackage is not valid JSON") from None
    if not isinstance(package, dict):
        raise HipkiError(RetCode.BAD_JSON, "tbsPackage is not a JSON object")
    return package


def decode_b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        raise HipkiError(RetCode.BAD_PARAMETER, f"{name} is not base64") from None


def check_pin(pin: str) -> str:
    """6-8 digits (the card's PIN rules, ``docs/moica-card.md``), else login failed + CKR_PIN_LEN_RANGE."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise HipkiError(RetCode.LOGIN_FAILED, "the PIN is 6 to 8 digits", LastError.PIN_LEN_RANGE)
    return pin


@dataclass
class SlotSession:
    """One slot's open connection, its token (read once per card) and its operation lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = -1
    connection: Any = None
    token: Token | None = None
    known: bool = False  # token read for this generation (token None: unknown token)
    is_eid: bool | None = None  # the card holds the eID chip's eMRTD application (None: not asked yet)


class _Counted(ConnectionWrapper):
    """A card connection as one request uses it, counting the commands the card answered."""

    def __init__(self, inner: CardConnection) -> None:
        super().__init__(inner)
        self.answered = 0

    def transmit(self, command: bytes) -> bytes:
        response = self.inner.transmit(command)
        self.answered += 1
        return response


@dataclass
class Fault:
    """A chosen error for the next request (test control)."""

    ret_code: int
    last_error: int = 0
    path: str | None = None  # only for this endpoint ("/sign"), None: any


class HipkiService:
    """The service's calls over a card source."""

    def __init__(
        self,
        source: CardSource,
        user: ScriptedUser | None = None,
        queue_timeout: float = 30.0,
        max_workers: int = 64,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.source = source
        self.user = user or ScriptedUser()
        self.queue_timeout = queue_timeout
        self.clock = clock
        self.sessions: dict[str, SlotSession] = {}
        self._sessions_lock = threading.Lock()
        # Threads for card work; a request waiting for a busy card holds one while it waits.
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="hipki-card")
        self.faults: list[Fault] = []

    def close(self) -> None:
        """Stop the worker threads (requests still waiting for a card are dropped) and the source."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.source.close()

    # -- test control ------------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.path is None or fault.path == path:
                return self.faults.pop(i)
        return None

    # -- slots and sessions --------------------------------------------------------------------
    # Card work runs in the service's worker threads, one hop per request: the slot listing,
    # the wait for the slot's lock and the card operation happen in the same thread.

    async def in_worker(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    def list_slots(self, fresh: bool = False) -> list[SlotState]:
        try:
            return self.source.slots(fresh)
        except CardConnectionError as exc:
            raise HipkiError(RetCode.NO_READER, f"cannot list readers: {exc}") from None

    def _session(self, slot: SlotState) -> SlotSession:
        with self._sessions_lock:
            return self.sessions.setdefault(slot.description, SlotSession())

    def _drop(self, slot: SlotState, session: SlotSession) -> None:
        if session.connection is not None:
            try:
                self.source.release(slot, session.connection)
            except CardConnectionError:
                pass
        session.connection, session.token, session.known, session.is_eid = None, None, False, None

    def _connect(self, slot: SlotState, session: SlotSession) -> _Counted:
        """This request's counting view of the session's connection to the card in ``slot``
        (a new connection when the slot holds another card than the session's)."""
        if session.generation != slot.generation:
            self._drop(slot, session)
            session.generation = slot.generation
        if session.connection is None:
            session.connection = self.source.connect(slot)
        return _Counted(session.connection)

    def with_connection(self, slot: SlotState, work: Callable[[CardConnection, SlotSession], T]) -> T:
        """Run ``work(connection, session)`` alone on this slot (worker thread), after waiting
        for the slot at most ``queue_timeout`` seconds; a card gone midway is ``0x76000006``.

        ``slot`` may come from the source's remembered view, a moment behind the readers: if
        the card answered no command of this request, the request never reached the card it
        was meant for (removed or replaced before the request began), so the readers are
        asked afresh and the work runs once more on the card there now. Once the card has
        answered, a failure means it left during the request."""
        session = self._session(slot)
        if not session.lock.acquire(timeout=self.queue_timeout):
            raise HipkiError(RetCode.EXECUTION_ERROR, f"the card in {slot.description!r} stayed busy")
        try:
            for attempt in (1, 2):
                counted: _Counted | None = None
                try:
                    counted = self._connect(slot, session)
                    return work(counted, session)
                except CardConnectionError:
                    self._drop(slot, session)
                    if attempt == 2 or (counted is not None and counted.answered):
                        break
                    now = [s for s in self.list_slots(fresh=True) if s.description == slot.description and s.present]
                    if not now:
                        break
                    slot = now[0]
            raise HipkiError(RetCode.NO_CARD, f"the card in {slot.description!r} was removed")
        finally:
            session.lock.release()

    def with_card(self, slot: SlotState, work: Callable[[MoicaCard, Token | None], T]) -> T:
        """:meth:`with_connection` with a citizen-card client and the card's token (read once
        per card)."""

        def on_card(connection: CardConnection, session: SlotSession) -> T:
            client = MoicaCard(connection)
            if not session.known:
                session.token, session.known = read_token(client), True
            return work(client, session.token)

        return self.with_connection(slot, on_card)

    def pick_slot(self, package: dict[str, Any], fresh: bool = False) -> SlotState:
        """The slot named by ``slotDescription``/``readername``, else the first with a card;
        when the remembered view offers none, the readers are asked afresh before saying so."""
        slots = self.list_slots(fresh)
        wanted = field_value(package, "slotDescription") or field_value(package, "readername")
        named = slots if wanted is None else [s for s in slots if s.description == wanted]
        for slot in named:
            if slot.present:
                return slot
        if not fresh:
            return self.pick_slot(package, fresh=True)
        if not slots:
            raise HipkiError(RetCode.NO_READER, "no card reader")
        if not named:
            raise HipkiError(RetCode.NO_READER, f"no reader named {wanted!r}")
        raise HipkiError(RetCode.NO_CARD, "no card in the reader")

    def on_card(self, package: dict[str, Any], work: Callable[[MoicaCard, Token | None], T]) -> T:
        return self.with_card(self.pick_slot(package), work)

    # -- /pkcs11info ---------------------------------------------------------------------------

    async def pkcs11info(self, with_cert: bool) -> dict[str, Any]:
        return await self.in_worker(lambda: self._pkcs11info(with_cert))

    def _pkcs11info(self, with_cert: bool) -> dict[str, Any]:
        described = []
        for slot in self.list_slots(fresh=True):
            token: object = None
            if slot.present:
                try:
                    token = self.with_card(slot, lambda _c, t: self._describe_token(t, with_cert))
                except HipkiError:
                    token = None  # removed while we looked: no token now
            described.append(
                {
                    "slotDescription": slot.description,
                    "slotID": slot.slot_id,
                    "flags": CKF_REMOVABLE_DEVICE | CKF_HW_SLOT | (CKF_TOKEN_PRESENT if slot.present else 0),
                    "token": token,
                }
            )
        return {
            "func": "pkcs11info",
            "ret_code": 0,
            "last_error": 0,
            "serverVersion": SERVER_VERSION,
            "libraryDescription": LIBRARY_DESCRIPTION,
            "cryptokiVersion": CRYPTOKI_VERSION,
            "slots": described,
        }

    @staticmethod
    def _describe_token(token: Token | None, with_cert: bool) -> object:
        if token is None:
            return "unknown token"
        described: dict[str, Any] = {
            "serialNumber": token.card_number,
            "label": TOKEN_LABEL,
            "ulMinPinLen": PIN_MIN,
            "ulMaxPinLen": PIN_MAX,
            "keys": [
                {"id": base64.b64encode(c.id).decode("ascii"), "keyb64": base64.b64encode(c.public_key_der).decode()}
                for c in token.certificates
                if c.key_reference is not None
            ],
        }
        if with_cert:
            described["certs"] = [c.describe() for c in token.certificates]
        return described

    # -- PIN, certificate choice -------------------------------------------------------------

    async def pin_for(self, package: dict[str, Any]) -> str:
        """The request's PIN; without one, the card is looked for first (no card is reported
        before no PIN), then the user is asked."""
        pin = field_value(package, "pin")
        if pin is None:
            await self.in_worker(lambda: self.pick_slot(package))
            pin = await self.user.ask_pin()
        return check_pin(pin)

    @staticmethod
    def _certificate(token: Token | None, package: dict[str, Any], usage: str) -> TokenCertificate:
        if token is None:
            raise HipkiError(RetCode.CERTIFICATE_NOT_FOUND, "the card is not a citizen certificate card")
        key_id = field_value(package, "keyidb64")
        if key_id is not None:
            wanted = decode_b64(key_id, "keyidb64")
            for cert in token.certificates:
                if cert.id == wanted:
                    if cert.key_reference is None:
                        break
                    return cert
            raise HipkiError(RetCode.KEY_NOT_FOUND, "no private key with that keyidb64 on the card")
        for cert in token.certificates:
            if cert.usage == usage and cert.key_reference is not None:
                return cert
        raise HipkiError(RetCode.CERTIFICATE_NOT_FOUND, f"no {usage} certificate on the card")

    def _check_validity(self, cert: TokenCertificate) -> None:
        now = self.clock()
        if now < cert.not_before:
            raise HipkiError(RetCode.CERT_NOT_YET_VALID, "the certificate is not valid yet")
        if now > cert.not_after:
            raise HipkiError(RetCode.CERT_EXPIRED, "the certificate has expired")

    @staticmethod
    def _login(client: MoicaCard, pin: str) -> None:
        """The protected VERIFY; wrong PIN -> login failed with the tries left, blocked -> locked."""
        try:
            client.verify_pin(pin)
        except InvalidPinError as exc:
            left = exc.attempts_remaining
            raise HipkiError(
                RetCode.LOGIN_FAILED,
                f"wrong PIN, {left} tries left" if left else "wrong PIN, now locked",
                wrong_pin_error(left),
            ) from None
        except PinBlockedError:
            raise HipkiError(RetCode.LOGIN_FAILED, "the PIN is locked", LastError.PIN_LOCKED) from None
        except MoicaError as exc:
            raise HipkiError(
                RetCode.LOGIN_FAILED, f"the card refused the login ({exc.sw:04X})", LastError.FUNCTION_FAILED
            ) from None

    @staticmethod
    def _private_operation(client: MoicaCard, key_reference: int, failure: RetCode) -> Callable[[bytes], bytes]:
        def run(block: bytes) -> bytes:
            try:
                return client.private_operation(key_reference, block)
            except MoicaError as exc:
                if exc.sw == 0x6982:
                    raise HipkiError(RetCode.NOT_LOGGED_IN, "the card is not logged in") from None
                raise HipkiError(
                    failure, f"the card refused the operation ({exc.sw:04X})", LastError.FUNCTION_FAILED
                ) from None

        return run

    # -- /sign ----------------------------------------------------------------------------------

    async def sign(self, package: dict[str, Any]) -> dict[str, Any]:
        func = field_value(package, "func")
        if func is not None and func not in ("MakeSignature", "sign"):
            raise HipkiError(RetCode.UNSUPPORTED, f"/sign does not do {func!r}")
        tbs_text = field_value(package, "tbs")
        if tbs_text is None:
            raise HipkiError(RetCode.NO_TBS, "nothing to sign: tbs is empty")
        encoding = (field_value(package, "tbsEncoding") or "NONE").upper()
        if encoding not in ("NONE", "BASE64"):
            raise HipkiError(RetCode.BAD_PARAMETER, "tbsEncoding is NONE or base64")
        tbs = decode_b64(tbs_text, "tbs") if encoding == "BASE64" else tbs_text.encode("utf-8")
        try:
            hash_alg = hash_name(field_value(package, "hashAlgorithm") or "SHA256")
        except ValueError as exc:
            raise HipkiError(RetCode.BAD_PARAMETER, str(exc)) from None
        kind = (field_value(package, "signatureType") or "PKCS1").upper()
        if kind not in ("PKCS1", "PKCS7"):
            raise HipkiError(RetCode.BAD_PARAMETER, "signatureType is PKCS1 or PKCS7")
        nonce_text = field_value(package, "nonce")
        with_time, with_sn = flag(package, "withSigningTime"), flag(package, "withCardSN")
        check_validity = flag(package, "checkValidity")
        pin = await self.pin_for(package)

        def work(client: MoicaCard, token: Token | None) -> dict[str, Any]:
            cert = self._certificate(token, package, "digitalSignature")
            assert token is not None and cert.key_reference is not None
            if check_validity:
                self._check_validity(cert)
            self._login(client, pin)
            raw = self._private_operation(client, cert.key_reference, RetCode.SIGN_FAILED)
            if kind == "PKCS1":
                signature = sign_pkcs1(tbs, hash_alg, raw)
            else:
                request = SignedAttributeRequest(
                    signing_time=self.clock().replace(microsecond=0) if with_time else None,
                    nonce=nonce_text.encode("utf-8") if nonce_text is not None else None,
                    card_number=token.card_number if with_sn else None,
                )
                signature = sign_cms(tbs, cert.der, hash_alg, raw, request)
            return {
                "func": "sign",
                "ret_code": 0,
                "last_error": 0,
                "signature": base64.b64encode(signature).decode("ascii"),
                "certb64": base64.b64encode(cert.der).decode("ascii"),
                "cardSN": token.card_number,
            }

        return await self.in_worker(lambda: self.on_card(package, work))

    # -- /decrypt -------------------------------------------------------------------------------

    async def decrypt(self, package: dict[str, Any]) -> dict[str, Any]:
        cipher_text = field_value(package, "cipher")
        if cipher_text is None:
            raise HipkiError(RetCode.NO_CIPHER, "nothing to decrypt: cipher is empty")
        cipher = decode_b64(cipher_text, "cipher")
        cipher_type = (field_value(package, "cipherType") or "RSA").upper()
        if cipher_type not in ("RSA", "PKCS1"):
            raise HipkiError(RetCode.BAD_PARAMETER, "cipherType is RSA (RSAES-PKCS1-v1_5)")
        plain_encoding = (field_value(package, "plainEncoding") or "NONE").upper()
        if plain_encoding not in ("NONE", "BASE64"):
            raise HipkiError(RetCode.BAD_PARAMETER, "plainEncoding is NONE or base64")
        if len(cipher) != 256:
            raise HipkiError(RetCode.BAD_PARAMETER, "cipher is one 2048-bit RSA block (256 bytes)")
        pin = await self.pin_for(package)

        def work(client: MoicaCard, token: Token | None) -> dict[str, Any]:
            cert = self._certificate(token, package, "keyEncipherment|dataEncipherment")
            assert token is not None and cert.key_reference is not None
            self._login(client, pin)
            block = self._private_operation(client, cert.key_reference, RetCode.DECRYPT_FAILED)(cipher)
            try:
                plain = strip_type2_padding(block)
            except ValueError:
                raise HipkiError(RetCode.DECRYPT_FAILED, "decryption error", LastError.FUNCTION_FAILED) from None
            if plain_encoding == "BASE64":
                text = base64.b64encode(plain).decode("ascii")
            else:
                try:
                    text = plain.decode("utf-8")
                except UnicodeDecodeError:
                    raise HipkiError(
                        RetCode.BAD_PARAMETER, "the plain data is not UTF-8 text: ask for base64"
                    ) from None
            return {"func": "decrypt", "ret_code": 0, "last_error": 0, "plain": text, "cardSN": token.card_number}

        return await self.in_worker(lambda: self.on_card(package, work))


def error_answer(func: str, exc: HipkiError) -> dict[str, Any]:
    """The JSON of an error: the call's fields, empty, and ret_code / last_error / message."""
    answer: dict[str, Any] = exc.answer(func)
    if func == "sign":
        answer.update(signature="", certb64="", cardSN="")
    return answer


__all__ = ["SERVER_VERSION", "Fault", "HipkiService", "error_answer", "parse_package"]
