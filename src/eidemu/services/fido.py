"""A local test double of the mobile citizen certificate (行動自然人憑證, "TW FidO") SP API.

Routes (POST JSON under ``/moise/sp/``, ``docs/moica-services.md`` for what is modelled and
what is invented): ``getSpTicket`` (SP-API-ATH-01), ``getAthOrSignResult`` (-02),
``requestAthOrSignPush`` (-03), ``doBatchSigning`` (-04), ``checkDeviceStatus`` (SP-API-LF-01),
and the web redirect (SP-API-WEB-01): ``POST /moise/web/verifySign`` then
``GET /moise/web/wait`` which redirects to the SP's ``rtn_url`` once the holder has answered.
``POST /eidemu/phone`` is the scripted phone's control route (:mod:`.phone`).

Every SP request carries ``sp_checksum`` (:func:`.crypto.checksum` over :data:`REQUEST_FIELDS`
of that call), checked against the SP's key from the configuration; answers carry
``idp_checksum`` over :data:`RESPONSE_FIELDS`. Tickets live ``time_limit`` seconds (30-600),
answer one push and one final result: a second push or a poll after the result was delivered
gets ``SPTKTID_SPTKT_RDM``. ID numbers appear in logs only as ``hashed_id_num``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs7

from eidemu.emulator.pki.http_service import HttpAnswer, HttpRequest
from eidemu.emulator.pki.mobile import load_holder_key, mobile_holders
from eidemu.emulator.pki.store import TestPki

from . import crypto

log = logging.getLogger(__name__)

API_PREFIX = "/moise/sp/"
DEEP_LINK_HOST = "mobilemoica://moica.moi.gov.tw"
TIME_LIMIT_RANGE = (30, 600)
MAX_BATCH, MAX_BATCH_DOCUMENT = 20, 1024
MAX_SIGN_DATA = 64 * 1024
MAX_TRANSACTIONS = 10_000  # live tickets kept; beyond, the oldest is forgotten (bounded memory)

DEFAULT_SP_ID = "EIDEMU-TEST-SP"
DEFAULT_SP_KEY = hashlib.sha256(b"eidemu TEST SP key, published on purpose").digest()


@enum.unique
class ErrorCode(enum.StrEnum):
    """``error_code`` values. The first group is named in public client code; the second is
    eidemu's invention where the public sources name no code (``docs/moica-services.md``)."""

    OK = "0"
    PENDING = "SPTKTID_TXNLOG_NF"
    TICKET_EXPIRED = "SPTKT_OVD"
    TICKET_REDEEMED = "SPTKTID_SPTKT_RDM"
    USER_CANCEL = "APP_USER_CANCEL"
    PUSH_TOKEN_MISSING = "PS_FCM_NOT_FOUND"  # noqa: S105 - an error code, not a secret
    WRONG_APP = "OTP_NF"
    # invented
    CHECKSUM_MISMATCH = "SP_CHECKSUM_ERR"
    UNKNOWN_SP = "SP_SERVICE_ID_NF"
    BAD_PARAMETER = "PARAM_INVALID"
    BAD_TICKET = "SPTKT_INVALID"
    UNKNOWN_HOLDER = "ID_NUM_NF"
    DEVICE_NOT_BOUND = "DEV_NOT_BOUND"
    BIOMETRIC_FAILED = "APP_BIO_AUTH_FAIL"


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.OK: "success",
    ErrorCode.PENDING: "the holder has not answered yet",
    ErrorCode.TICKET_EXPIRED: "ticket expired",
    ErrorCode.TICKET_REDEEMED: "ticket already used",
    ErrorCode.USER_CANCEL: "the holder cancelled",
    ErrorCode.PUSH_TOKEN_MISSING: "no push token for the holder's device",
    ErrorCode.WRONG_APP: "the ticket belongs to the other app (test vs production)",
    ErrorCode.CHECKSUM_MISMATCH: "sp_checksum does not verify",
    ErrorCode.UNKNOWN_SP: "unknown sp_service_id",
    ErrorCode.BAD_PARAMETER: "bad or missing parameter",
    ErrorCode.BAD_TICKET: "malformed or unknown sp_ticket",
    ErrorCode.UNKNOWN_HOLDER: "no mobile certificate for this ID",
    ErrorCode.DEVICE_NOT_BOUND: "the holder has no bound device",
    ErrorCode.BIOMETRIC_FAILED: "biometric verification failed on the device",
}

OP_CODES = ("ATH", "SIGN", "NFCSIGN", "BATSIGN")
OP_MODES = ("I-SCAN", "APP2APP", "MWEB2APP", "PUSH")
SIGN_TYPES = ("PKCS#1", "PKCS#7", "RAW")
TBS_ENCODINGS = ("NONE", "base64")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}

# The order of the concatenated fields under each checksum (eidemu's order: see the docs).
REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    "getSpTicket": ("transaction_id", "sp_service_id", "id_num", "op_code", "op_mode", "hint", "sign_data",
                    "time_limit"),
    "doBatchSigning": ("transaction_id", "sp_service_id", "id_num", "op_mode", "hint", "sign_data", "time_limit"),
    "requestAthOrSignPush": ("transaction_id", "sp_service_id", "sp_ticket"),
    "getAthOrSignResult": ("transaction_id", "sp_service_id", "sp_ticket"),
    "checkDeviceStatus": ("transaction_id", "sp_service_id", "id_num"),
}  # fmt: skip
RESPONSE_FIELDS: dict[str, tuple[str, ...]] = {
    "getSpTicket": ("transaction_id", "sp_ticket"),
    "doBatchSigning": ("transaction_id", "sp_ticket"),
    "requestAthOrSignPush": ("transaction_id", "sp_ticket"),
    "getAthOrSignResult": ("transaction_id", "hashed_id_num", "signed_response", "cert"),
    "checkDeviceStatus": ("transaction_id", "is_fido", "is_mcert_sign"),
}


def field_text(value: object) -> str:
    """A field as it enters a checksum: strings as they are, lists joined, numbers and
    booleans as JSON writes them, absent fields as ""."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(field_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checksum_fields(names: tuple[str, ...], message: dict[str, Any]) -> list[str]:
    return [field_text(message.get(name)) for name in names]


class FidoError(Exception):
    """A request that gets an error answer: the code and (optionally) a more precise message."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(detail or MESSAGES[code])
        self.code = code


@dataclass(frozen=True)
class Quirks:
    """Field behaviours integrators report, off by default: ``error_code`` as a bare integer
    where it is numeric (success), and results that stay pending for more polls."""

    error_code_as_int: bool = False
    slow_pending_polls: int = 0


@dataclass(frozen=True)
class ServiceProvider:
    service_id: str
    key: bytes  # AES-256

    def __repr__(self) -> str:  # the key never in a repr
        return f"ServiceProvider({self.service_id!r}, key=<{len(self.key)} bytes>)"


@dataclass(frozen=True)
class PolicyRule:
    """What the scripted phone of one holder does when a request reaches it (:mod:`.phone`)."""

    action: str = "wait"  # wait | approve | cancel | biometric_fail | timeout | wrong_app
    after: float = 0.0


@dataclass(eq=False)
class Holder:
    """A holder of a mobile certificate: a synthetic identity of the TEST PKI."""

    slug: str
    id_num: str
    cert_der: bytes
    key_loader: Callable[[], rsa.RSAPrivateKey]
    chain_der: tuple[bytes, ...]
    bound: bool = True
    push_token: bool = True
    sign_enabled: bool = True

    @functools.cached_property
    def key(self) -> rsa.RSAPrivateKey:
        """Loaded at the first signature: RSA-4096 keys take a while to load and check."""
        return self.key_loader()

    def __repr__(self) -> str:
        return f"Holder({self.slug!r}, hashed_id_num={crypto.hash_id(self.id_num)[:12]}...)"


@dataclass
class Transaction:
    """One ticket's life: created, maybe pushed, answered by the phone, result delivered once."""

    ticket: str
    sp: ServiceProvider
    transaction_id: str
    op_code: str
    op_mode: str
    id_num: str
    hint: str
    sign_type: str
    tbs_encoding: str
    hash_algorithm: str
    documents: list[str]
    expires: float
    rtn_url: str = ""
    rtn_val: str = ""
    pushed: bool = False
    answer: ErrorCode | None = None
    answer_at: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    delivered: bool = False
    polls_after_answer: int = 0


@dataclass(frozen=True)
class FidoConfig:
    """Service providers, phone policy and quirks (``--config FILE``, JSON)."""

    providers: tuple[ServiceProvider, ...] = (ServiceProvider(DEFAULT_SP_ID, DEFAULT_SP_KEY),)
    policy: dict[str, PolicyRule] = field(default_factory=dict)  # holder slug or ID -> rule
    default_policy: PolicyRule = PolicyRule()
    quirks: Quirks = Quirks()

    @classmethod
    def load(cls, path: Path) -> FidoConfig:
        """Read a configuration file; ValueError naming the file and the place on bad content."""
        try:
            data = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: object, where: str = "config") -> FidoConfig:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object")
        providers = []
        for i, entry in enumerate(data.get("service_providers", [])):
            try:
                key = bytes.fromhex(entry["aes_key"])
                service_id = str(entry["sp_service_id"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{where}: service_providers[{i}]: needs sp_service_id and aes_key (hex)") from None
            if len(key) != 32:
                raise ValueError(f"{where}: service_providers[{i}].aes_key: 32 bytes (64 hex digits) for AES-256")
            providers.append(ServiceProvider(service_id, key))
        policy = {str(k): _rule(v, f"{where}: policy.{k}") for k, v in dict(data.get("policy", {})).items()}
        default = _rule(data.get("default_policy", {}), f"{where}: default_policy")
        quirks_data = data.get("quirks", {})
        if not isinstance(quirks_data, dict):
            raise ValueError(f"{where}: quirks: expected an object")
        try:
            quirks = Quirks(**quirks_data)
        except TypeError:
            raise ValueError(f"{where}: quirks: only error_code_as_int and slow_pending_polls") from None
        return cls(tuple(providers) or cls.providers, policy, default, quirks)


POLICY_ACTIONS = ("wait", "approve", "cancel", "biometric_fail", "timeout", "wrong_app", "not_bound", "no_push_token")


def _rule(value: object, where: str) -> PolicyRule:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object with action (and after)")
    action, after = value.get("action", "wait"), value.get("after", 0)
    if action not in POLICY_ACTIONS:
        raise ValueError(f"{where}.action: one of {', '.join(POLICY_ACTIONS)}, not {action!r}")
    if not isinstance(after, int | float) or isinstance(after, bool) or not 0 <= after <= 600:
        raise ValueError(f"{where}.after: seconds between 0 and 600")
    return PolicyRule(str(action), float(after))


def load_holders(pki: TestPki) -> dict[str, Holder]:
    """The holders of mobile certificates, by national ID number."""
    holders = {}
    for slug, mobile in mobile_holders(pki).items():
        record = pki.identities[slug]
        issuer = pki.cas["moica-g3"]
        chain = (issuer.cert, pki.cas[issuer.issuer].cert)
        holders[record.identity.national_id] = Holder(
            slug,
            record.identity.national_id,
            mobile.cert.public_bytes(serialization.Encoding.DER),
            functools.partial(load_holder_key, mobile),
            tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
        )
    return holders


def sign_document(holder: Holder, tbs: bytes, sign_type: str, hash_name: str) -> bytes:
    """The holder's signature over one to-be-signed document: PKCS#1 v1.5 (RFC 8017 §8.2),
    attached CMS SignedData with the certificate (RFC 5652 §5), or RAW: ``tbs`` is already the
    digest, signed with PKCS#1 v1.5 over its DigestInfo."""
    algorithm = HASHES[hash_name]()
    if sign_type == "PKCS#1":
        return holder.key.sign(tbs, padding.PKCS1v15(), algorithm)
    if sign_type == "RAW":
        return holder.key.sign(tbs, padding.PKCS1v15(), utils.Prehashed(algorithm))
    from cryptography import x509

    cert = x509.load_der_x509_certificate(holder.cert_der)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(tbs).add_signer(cert, holder.key, algorithm)  # type: ignore[arg-type]
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.NoCapabilities])


class FidoService:
    """The SP API without HTTP (testable directly); :meth:`handle` is the HTTP handler."""

    def __init__(self, pki: TestPki, config: FidoConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or FidoConfig()
        self.providers = {sp.service_id: sp for sp in self.config.providers}
        self.holders = load_holders(pki)
        self.clock = clock
        self._lock = threading.Lock()
        self._transactions: dict[str, Transaction] = {}
        self._apply_holder_policies()

    def _apply_holder_policies(self) -> None:
        for holder in self.holders.values():
            rule = self.rule_for(holder.id_num)
            holder.bound = rule.action != "not_bound"
            holder.push_token = rule.action != "no_push_token"

    def rule_for(self, id_num: str) -> PolicyRule:
        holder = self.holders.get(id_num)
        for key in (id_num, holder.slug if holder else None):
            if key is not None and key in self.config.policy:
                return self.config.policy[key]
        return self.config.default_policy

    # -- the SP API ---------------------------------------------------------------------------

    def call(self, name: str, message: dict[str, Any]) -> dict[str, Any]:
        """One SP API call: its answer, with error_code, error_message and idp_checksum."""
        handlers: dict[str, Callable[[ServiceProvider, dict[str, Any]], dict[str, Any]]] = {
            "getSpTicket": self._get_sp_ticket,
            "doBatchSigning": self._do_batch_signing,
            "requestAthOrSignPush": self._request_push,
            "getAthOrSignResult": self._get_result,
            "checkDeviceStatus": self._check_device_status,
        }
        transaction_id = message.get("transaction_id")
        answer: dict[str, Any] = {"transaction_id": transaction_id if isinstance(transaction_id, str) else ""}
        sp = None
        try:
            if name not in handlers:
                raise FidoError(ErrorCode.BAD_PARAMETER, f"no such call: {name}")
            sp = self._authenticate(name, message)
            answer.update(handlers[name](sp, message))
            code = ErrorCode.OK
            detail = MESSAGES[code]
        except FidoError as error:
            code, detail = error.code, str(error)
        answer["error_code"] = 0 if (code is ErrorCode.OK and self.config.quirks.error_code_as_int) else code.value
        answer["error_message"] = detail
        if sp is not None and code is ErrorCode.OK:
            answer["idp_checksum"] = crypto.checksum(sp.key, checksum_fields(RESPONSE_FIELDS[name], answer))
        return answer

    def _authenticate(self, name: str, message: dict[str, Any]) -> ServiceProvider:
        for required in ("transaction_id", "sp_service_id", "sp_checksum"):
            if not isinstance(message.get(required), str) or not message[required]:
                raise FidoError(ErrorCode.BAD_PARAMETER, f"{required}: a non-empty string is required")
        sp = self.providers.get(message["sp_service_id"])
        if sp is None:
            raise FidoError(ErrorCode.UNKNOWN_SP)
        if not crypto.checksum_matches(sp.key, checksum_fields(REQUEST_FIELDS[name], message), message["sp_checksum"]):
            raise FidoError(ErrorCode.CHECKSUM_MISMATCH)
        return sp

    def _new_ticket(self, sp: ServiceProvider, message: dict[str, Any], op_code: str, documents: list[str]) -> str:
        op_mode = message.get("op_mode") or "PUSH"
        if op_mode not in OP_MODES:
            raise FidoError(ErrorCode.BAD_PARAMETER, f"op_mode: one of {', '.join(OP_MODES)}")
        time_limit = message.get("time_limit", 600)
        if isinstance(time_limit, str) and time_limit.isdigit():
            time_limit = int(time_limit)
        if not isinstance(time_limit, int) or isinstance(time_limit, bool):
            raise FidoError(ErrorCode.BAD_PARAMETER, "time_limit: seconds, 30 to 600")
        if not TIME_LIMIT_RANGE[0] <= time_limit <= TIME_LIMIT_RANGE[1]:
            raise FidoError(ErrorCode.BAD_PARAMETER, "time_limit: seconds, 30 to 600")
        id_num = message.get("id_num") or ""
        if not isinstance(id_num, str):
            raise FidoError(ErrorCode.BAD_PARAMETER, "id_num: a string")
        if op_mode == "PUSH" and not id_num:
            raise FidoError(ErrorCode.BAD_PARAMETER, "id_num: required for a push request")
        if id_num and id_num not in self.holders:
            raise FidoError(ErrorCode.UNKNOWN_HOLDER)
        info = message.get("sign_info") or {}
        if not isinstance(info, dict):
            raise FidoError(ErrorCode.BAD_PARAMETER, "sign_info: an object")
        sign_type = info.get("sign_type", "PKCS#1")
        tbs_encoding = info.get("tbs_encoding", "NONE")
        hash_algorithm = info.get("hash_algorithm", "SHA256")
        if sign_type not in SIGN_TYPES:
            raise FidoError(ErrorCode.BAD_PARAMETER, f"sign_info.sign_type: one of {', '.join(SIGN_TYPES)}")
        if tbs_encoding not in TBS_ENCODINGS:
            raise FidoError(ErrorCode.BAD_PARAMETER, "sign_info.tbs_encoding: NONE or base64")
        if not isinstance(hash_algorithm, str) or hash_algorithm not in HASHES:
            raise FidoError(ErrorCode.BAD_PARAMETER, f"sign_info.hash_algorithm: one of {', '.join(HASHES)}")
        for document in documents:
            self._tbs(document, tbs_encoding, sign_type, hash_algorithm)  # refuses bad documents now
        now = self.clock()
        ticket = crypto.make_ticket(
            {"tid": secrets.token_hex(16), "sp": sp.service_id, "op": op_code, "exp": int(now + time_limit)}
        )
        hint = message.get("hint") or ""
        transaction = Transaction(
            ticket, sp, message["transaction_id"], op_code, op_mode, id_num, str(hint)[:256],
            sign_type, tbs_encoding, hash_algorithm, documents, now + time_limit,
            str(message.get("rtn_url") or ""), str(message.get("rtn_val") or ""),
        )  # fmt: skip
        with self._lock:
            self._expire_old(now)
            while len(self._transactions) >= MAX_TRANSACTIONS:
                del self._transactions[next(iter(self._transactions))]
            self._transactions[ticket] = transaction
        log.info("ticket %s for %s op %s/%s holder %s", ticket[-8:], sp.service_id, op_code, op_mode,
                 crypto.hash_id(id_num)[:16] if id_num else "-")  # fmt: skip
        return ticket

    def _tbs(self, document: str, encoding: str, sign_type: str, hash_name: str) -> bytes:
        if encoding == "base64":
            try:
                tbs = base64.b64decode(document, validate=True)
            except (binascii.Error, ValueError):
                raise FidoError(ErrorCode.BAD_PARAMETER, "sign_data: not base64") from None
        else:
            tbs = document.encode("utf-8")
        if sign_type == "RAW" and len(tbs) != HASHES[hash_name]().digest_size:
            raise FidoError(ErrorCode.BAD_PARAMETER, f"sign_data: RAW needs a {hash_name} digest")
        return tbs

    def _expire_old(self, now: float) -> None:
        stale = [t for t, x in self._transactions.items() if x.expires + 600 < now]
        for ticket in stale:
            del self._transactions[ticket]

    def _get_sp_ticket(self, sp: ServiceProvider, message: dict[str, Any]) -> dict[str, Any]:
        op_code = message.get("op_code")
        if op_code not in ("ATH", "SIGN", "NFCSIGN"):
            raise FidoError(ErrorCode.BAD_PARAMETER, "op_code: ATH, SIGN or NFCSIGN (BATSIGN: doBatchSigning)")
        sign_data = message.get("sign_data")
        if op_code == "ATH":
            documents = [sign_data] if isinstance(sign_data, str) and sign_data else []
        elif not isinstance(sign_data, str) or not sign_data or len(sign_data) > MAX_SIGN_DATA:
            raise FidoError(ErrorCode.BAD_PARAMETER, "sign_data: the to-be-signed text is required")
        else:
            documents = [sign_data]
        return {"sp_ticket": self._new_ticket(sp, message, op_code, documents)}

    def _do_batch_signing(self, sp: ServiceProvider, message: dict[str, Any]) -> dict[str, Any]:
        documents = message.get("sign_data")
        if (
            not isinstance(documents, list)
            or not 1 <= len(documents) <= MAX_BATCH
            or not all(isinstance(d, str) and 0 < len(d) <= MAX_BATCH_DOCUMENT for d in documents)
        ):
            raise FidoError(ErrorCode.BAD_PARAMETER, "sign_data: 1 to 20 documents of at most 1024 characters")
        return {"sp_ticket": self._new_ticket(sp, message, "BATSIGN", list(documents))}

    def _transaction(self, sp: ServiceProvider, ticket: object) -> Transaction:
        try:
            payload = crypto.parse_ticket(ticket)
        except ValueError:
            raise FidoError(ErrorCode.BAD_TICKET) from None
        transaction = self._transactions.get(str(ticket))
        if transaction is None or payload.get("sp") != sp.service_id:
            raise FidoError(ErrorCode.BAD_TICKET)
        return transaction

    def _request_push(self, sp: ServiceProvider, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            transaction = self._transaction(sp, message.get("sp_ticket"))
            now = self.clock()
            if now >= transaction.expires:
                raise FidoError(ErrorCode.TICKET_EXPIRED)
            if transaction.pushed or transaction.delivered:
                raise FidoError(ErrorCode.TICKET_REDEEMED)
            holder = self.holders.get(transaction.id_num)
            if holder is None:
                raise FidoError(ErrorCode.BAD_PARAMETER, "the ticket names no holder (id_num) to push to")
            if not holder.bound:
                raise FidoError(ErrorCode.DEVICE_NOT_BOUND)
            if not holder.push_token:
                raise FidoError(ErrorCode.PUSH_TOKEN_MISSING)
            transaction.pushed = True
            rule = self.rule_for(holder.id_num)
        if rule.action in ("approve", "cancel", "biometric_fail", "wrong_app", "timeout"):
            self.phone_answer(transaction.ticket, rule.action, holder.id_num, delay=rule.after)
        return {"sp_ticket": transaction.ticket}

    def _get_result(self, sp: ServiceProvider, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            transaction = self._transaction(sp, message.get("sp_ticket"))
            now = self.clock()
            if transaction.delivered:
                raise FidoError(ErrorCode.TICKET_REDEEMED)
            answered = transaction.answer is not None and now >= transaction.answer_at
            if not answered:
                if now >= transaction.expires:
                    transaction.delivered = True
                    raise FidoError(ErrorCode.TICKET_EXPIRED)
                raise FidoError(ErrorCode.PENDING)
            if transaction.polls_after_answer < self.config.quirks.slow_pending_polls:
                transaction.polls_after_answer += 1
                raise FidoError(ErrorCode.PENDING)
            transaction.delivered = True
            assert transaction.answer is not None
            if transaction.answer is not ErrorCode.OK:
                raise FidoError(transaction.answer)
            return dict(transaction.result)

    def _check_device_status(self, sp: ServiceProvider, message: dict[str, Any]) -> dict[str, Any]:
        id_num = message.get("id_num")
        if not isinstance(id_num, str) or not id_num:
            raise FidoError(ErrorCode.BAD_PARAMETER, "id_num: required")
        holder = self.holders.get(id_num)
        return {
            "hashed_id_num": crypto.hash_id(id_num),
            "is_fido": bool(holder and holder.bound),
            "is_mcert_sign": bool(holder and holder.bound and holder.sign_enabled),
        }

    # -- the phone's side ---------------------------------------------------------------------

    def phone_answer(self, ticket: str, action: str, id_num: str | None = None, delay: float = 0.0) -> ErrorCode:
        """The holder answers ``ticket`` on the phone (:mod:`.phone`): approve, cancel,
        biometric_fail, wrong_app or timeout. Returns the outcome the SP will poll."""
        with self._lock:
            transaction = self._transactions.get(ticket)
            if transaction is None:
                raise FidoError(ErrorCode.BAD_TICKET)
            now = self.clock()
            if transaction.answer is not None or transaction.delivered:
                raise FidoError(ErrorCode.TICKET_REDEEMED)
            if now >= transaction.expires:
                raise FidoError(ErrorCode.TICKET_EXPIRED)
            holder_id = transaction.id_num or id_num or ""
            if id_num and transaction.id_num and id_num != transaction.id_num:
                raise FidoError(ErrorCode.UNKNOWN_HOLDER, "the ticket is for another holder")
            holder = self.holders.get(holder_id)
            if holder is None:
                raise FidoError(ErrorCode.UNKNOWN_HOLDER)
            if not holder.bound:
                raise FidoError(ErrorCode.DEVICE_NOT_BOUND)
            outcomes = {
                "approve": ErrorCode.OK,
                "cancel": ErrorCode.USER_CANCEL,
                "biometric_fail": ErrorCode.BIOMETRIC_FAILED,
                "wrong_app": ErrorCode.WRONG_APP,
            }
            if action == "timeout":  # the holder never answers: the ticket runs out now
                transaction.expires = now
                return ErrorCode.TICKET_EXPIRED
            if action not in outcomes:
                raise FidoError(ErrorCode.BAD_PARAMETER, f"phone action: approve, cancel, biometric_fail, "
                                f"wrong_app or timeout, not {action!r}")  # fmt: skip
            transaction.id_num = holder.id_num
            transaction.answer = outcomes[action]
            transaction.answer_at = now + delay
            if transaction.answer is ErrorCode.OK:
                transaction.result = self._signed_result(transaction, holder)
            log.info("phone of %s: %s ticket %s", crypto.hash_id(holder.id_num)[:16], action, ticket[-8:])
            return transaction.answer

    def _signed_result(self, transaction: Transaction, holder: Holder) -> dict[str, Any]:
        documents = transaction.documents or [transaction.ticket]
        encoding = transaction.tbs_encoding if transaction.documents else "NONE"
        sign_type = transaction.sign_type if transaction.documents else "PKCS#1"
        signatures = [
            base64.b64encode(
                sign_document(
                    holder, self._tbs(d, encoding, sign_type, transaction.hash_algorithm), sign_type,
                    transaction.hash_algorithm,
                )
            ).decode("ascii")
            for d in documents
        ]  # fmt: skip
        return {
            "hashed_id_num": crypto.hash_id(holder.id_num),
            "signed_response": signatures if transaction.op_code == "BATSIGN" else signatures[0],
            "cert": base64.b64encode(holder.cert_der).decode("ascii"),
        }

    def set_device(self, id_num: str, *, bound: bool | None = None, push_token: bool | None = None) -> None:
        """Bind or unbind the holder's device, give or take its push token."""
        holder = self.holders.get(id_num)
        if holder is None:
            raise FidoError(ErrorCode.UNKNOWN_HOLDER)
        with self._lock:
            if bound is not None:
                holder.bound = bound
            if push_token is not None:
                holder.push_token = push_token

    def ticket_for(self, ticket: str) -> Transaction | None:
        return self._transactions.get(ticket)

    # -- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpAnswer:
        path = urlsplit(request.target).path
        if path.startswith(API_PREFIX) and request.method == "POST":
            message = _json_body(request.body)
            if message is None:
                answer = {"error_code": ErrorCode.BAD_PARAMETER.value, "error_message": "body: a JSON object"}
            else:
                answer = self.call(path[len(API_PREFIX) :], message)
            return _json(answer)
        if path == "/moise/web/verifySign" and request.method == "POST":
            return self._web_verify(request)
        if path == "/moise/web/wait" and request.method == "GET":
            return self._web_wait(request)
        if path == "/eidemu/phone" and request.method == "POST":
            return self._phone_control(request)
        if path in ("/", "/healthz") and request.method in ("GET", "HEAD"):
            return HttpAnswer(HTTPStatus.OK, "text/plain", b"eidemu fido (TEST ONLY)\n")
        return HttpAnswer(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _web_verify(self, request: HttpRequest) -> HttpAnswer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        ticket = form.get("sp_ticket", "")
        transaction = self._transactions.get(ticket)
        if transaction is None:
            return HttpAnswer(HTTPStatus.BAD_REQUEST, "text/plain", b"unknown sp_ticket\n")
        transaction.rtn_url = form.get("rtn_url", transaction.rtn_url)
        transaction.rtn_val = form.get("rtn_val", transaction.rtn_val)
        link = deep_link(ticket, "w2a", transaction.rtn_url, transaction.rtn_val)
        wait = "/moise/web/wait?" + urlencode({"sp_ticket": ticket})
        page = (
            f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="4;url={_html(wait)}">'
            f"<title>eidemu TEST mobile certificate</title><p>Approve in the app: "
            f'<a id="deep-link" href="{_html(link)}">{_html(link)}</a>'
        )
        return HttpAnswer(HTTPStatus.OK, "text/html; charset=utf-8", page.encode())

    def _web_wait(self, request: HttpRequest) -> HttpAnswer:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.target).query).items()}
        ticket = query.get("sp_ticket", "")
        transaction = self._transactions.get(ticket)
        if transaction is None:
            return HttpAnswer(HTTPStatus.BAD_REQUEST, "text/plain", b"unknown sp_ticket\n")
        now = self.clock()
        if (transaction.answer is None or now < transaction.answer_at) and now < transaction.expires:
            wait = "/moise/web/wait?" + urlencode({"sp_ticket": ticket})
            page = f'<!doctype html><meta http-equiv="refresh" content="4;url={_html(wait)}"><p>waiting'
            return HttpAnswer(HTTPStatus.OK, "text/html; charset=utf-8", page.encode())
        separator = "&" if "?" in transaction.rtn_url else "?"
        location = transaction.rtn_url + separator + urlencode({"sp_ticket": ticket, "rtn_val": transaction.rtn_val})
        return HttpAnswer(HTTPStatus.SEE_OTHER, "text/plain", b"", (("Location", location),))

    def _phone_control(self, request: HttpRequest) -> HttpAnswer:
        message = _json_body(request.body)
        if message is None:
            return _json({"ok": False, "error": "body: a JSON object"}, HTTPStatus.BAD_REQUEST)
        action = message.get("action")
        id_num = message.get("id_num") if isinstance(message.get("id_num"), str) else None
        try:
            if action in ("unbind", "bind", "no_push_token", "push_token"):
                if id_num is None:
                    raise FidoError(ErrorCode.BAD_PARAMETER, "id_num: required")
                if action in ("unbind", "bind"):
                    self.set_device(id_num, bound=action == "bind")
                else:
                    self.set_device(id_num, push_token=action == "push_token")
                return _json({"ok": True, "outcome": action})
            ticket = message.get("sp_ticket")
            if isinstance(message.get("link"), str):
                ticket = ticket_from_link(message["link"])
            if not isinstance(ticket, str):
                raise FidoError(ErrorCode.BAD_PARAMETER, "sp_ticket or link: required")
            delay = message.get("after", 0)
            if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= 600:
                raise FidoError(ErrorCode.BAD_PARAMETER, "after: seconds between 0 and 600")
            outcome = self.phone_answer(ticket, str(action), id_num, float(delay))
        except (FidoError, ValueError) as error:
            code = error.code.value if isinstance(error, FidoError) else ErrorCode.BAD_TICKET.value
            return _json({"ok": False, "error_code": code, "error": str(error)}, HTTPStatus.CONFLICT)
        return _json({"ok": True, "outcome": outcome.value})


def deep_link(ticket: str, kind: str, rtn_url: str = "", rtn_val: str = "") -> str:
    """``mobilemoica://moica.moi.gov.tw/{a2a|w2a}/verifySign?sp_ticket=…&rtn_url=…&rtn_val=…``
    with base64url values (``docs/moica-services.md``)."""
    if kind not in ("a2a", "w2a"):
        raise ValueError("deep link kind: a2a or w2a")
    query = {
        "sp_ticket": crypto.b64url(ticket.encode()),
        "rtn_url": crypto.b64url(rtn_url.encode()),
        "rtn_val": crypto.b64url(rtn_val.encode()),
    }
    return f"{DEEP_LINK_HOST}/{kind}/verifySign?{urlencode(query)}"


def qr_payload(ticket: str) -> str:
    """What the I-SCAN QR code carries: the a2a deep link without a return URL (eidemu's choice)."""
    return deep_link(ticket, "a2a")


def ticket_from_link(link: str) -> str:
    """The ticket in a deep link or QR payload (what the phone does when it scans one)."""
    parts = urlsplit(link)
    if f"{parts.scheme}://{parts.netloc}" != DEEP_LINK_HOST or parts.path not in ("/a2a/verifySign", "/w2a/verifySign"):
        raise ValueError(f"not a mobile certificate deep link: {link[:80]!r}")
    values = parse_qs(parts.query).get("sp_ticket")
    if not values:
        raise ValueError("deep link without sp_ticket")
    return crypto.b64url_decode(values[0]).decode("utf-8")


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def _json(answer: dict[str, Any], status: int = HTTPStatus.OK) -> HttpAnswer:
    return HttpAnswer(status, "application/json", json.dumps(answer, ensure_ascii=False).encode("utf-8"))


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def sp_request(sp_id: str, key: bytes, call: str, **fields: Any) -> dict[str, Any]:
    """A request body for ``call`` with its ``sp_checksum`` (what a relying party sends)."""
    message = {"sp_service_id": sp_id, **fields}
    message["sp_checksum"] = crypto.checksum(key, checksum_fields(REQUEST_FIELDS[call], message))
    return message


def verify_idp_checksum(key: bytes, call: str, answer: dict[str, Any]) -> bool:
    """Whether the answer's ``idp_checksum`` verifies under the SP's key."""
    return crypto.checksum_matches(key, checksum_fields(RESPONSE_FIELDS[call], answer), answer.get("idp_checksum"))
