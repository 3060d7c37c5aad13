"""The HiPKI-compatible HTTP API (``http://localhost:61161``) on aiohttp.

Routes, as the vendor's public client scripts use them (``docs/hipki.md``):

* ``/pkcs11info[?withcert=true]`` (GET, or POST with an empty body), ``POST /sign``,
  ``POST /decrypt`` (form field ``tbsPackage``): JSON, errors as HTTP 200 with ``ret_code``;
* ``/p11Image.bmp``: the ``/pkcs11info`` JSON in a BMP, with ``Access-Control-Allow-Origin``;
* ``/popupForm`` and ``/ChtPopupForm``: the popup page of the ``getTbs`` exchange;
* ``/addDomain?domain=HOST``: trust a site (the user, the scripted user or ``--auto-approve``);
* ``/selfTest.htm``: a self-test page; ``/eIDPM/<call>``: the eID middleware calls over an eID
  chip (:mod:`eidemu.hipki.eidpm`), answered with ``result`` instead of ``ret_code``;
* ``/eidemu/control`` (only with ``test_control``): test extras (fail the next request, script
  the user, remove/insert the emulated card, trust a site).

Domain check: a request whose ``Origin`` (else ``Referer``) is another site is served only if
that site's host is in the trusted list (``0x76000031`` otherwise; ``0x7600000F`` when the
origin is opaque, such as ``null`` or ``file:``). The popup page carries a one-time ticket
bound to the site that opened it, checked when the popup calls the API. A request naming no
origin at all comes from a local program, not a web page, and is served. The ``Host`` header
must name the loopback (DNS-rebinding protection).
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from eidemu.emulator.pki.http_service import HttpLimits, application

from .bmp import text_bmp
from .cards import EmulatorSource
from .eidpm import EidCallError, EidCalls, Result
from .errors import HipkiError, RetCode
from .service import SERVER_VERSION, Fault, HipkiService, error_answer, parse_package
from .trust import TrustedSites, origin_host, valid_host
from .user import Step

log = logging.getLogger("eidemu.hipki")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
TICKET_LIFETIME = 300.0  # seconds a popup may take (PIN entry included)
UNSUPPORTED_PATHS = (
    "/getChallenge",
    "/makeCsr",
    "/writecert",
    "/umakeSig",
    "/CardManagement/sendCardCommand",
)
POPUP_FUNCS = {
    "MakeSignature": "sign",
    "GetUserCert": "pkcs11info",
    "CheckEnvir": "pkcs11info",
    "DecryptData": "decrypt",
}

SERVICE_KEY = web.AppKey("service", HipkiService)
EID_KEY = web.AppKey("eid", EidCalls)
STATE_KEY: web.AppKey[AppState] = web.AppKey("state")


@dataclass
class AppState:
    """What the routes share besides the service: trust, tickets, options."""

    trust: TrustedSites
    test_control: bool = False
    tickets: dict[str, tuple[str, float]] = field(default_factory=dict)  # ticket -> (host, expiry)

    def issue_ticket(self, host: str) -> str:
        now = time.monotonic()
        for key in [k for k, (_, expiry) in self.tickets.items() if expiry < now]:
            del self.tickets[key]
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = (host, now + TICKET_LIFETIME)
        return ticket


def _page(name: str) -> str:
    return resources.files("eidemu.hipki").joinpath("pages", name).read_text("utf-8")


def json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(payload, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _own_origins(request: web.Request) -> set[str]:
    return {f"http://{request.host}"}


def caller(request: web.Request, state: AppState) -> str | None:
    """The web site behind a request (its host), None for a local program or our own pages;
    raises 0x76000031 / 0x7600000F for sites the user has not trusted."""
    ticket = request.headers.get("X-HiPKI-Ticket")
    if ticket is not None:
        entry = state.tickets.get(ticket)
        if entry is None or entry[1] < time.monotonic():
            raise HipkiError(RetCode.FORBIDDEN_DOMAIN, "the popup's ticket is unknown or expired")
        host = entry[0]
    else:
        claimed = request.headers.get("Origin") or request.headers.get("Referer")
        if claimed is None:
            return None  # not a browser page: a local program
        if claimed.rstrip("/") in _own_origins(request) or any(
            claimed.startswith(o + "/") for o in _own_origins(request)
        ):
            return None  # our own pages (selfTest.htm)
        found = origin_host(claimed)
        if found is None:
            raise HipkiError(RetCode.FORBIDDEN_DOMAIN, "the request's origin is not a web site")
        host = found
    if host not in state.trust:
        raise HipkiError(RetCode.UNTRUSTED_SITE, f"the site {host} is not trusted: open /addDomain?domain={host}")
    return host


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Loopback Host only; a request body larger than the bound is a JSON error with 413 (the
    HTTP base reads every body before the routes, within its limits)."""
    host = (
        (request.host or "").rsplit(":", 1)[0] if not request.host.startswith("[") else request.host.split("]")[0] + "]"
    )
    if host not in LOOPBACK_HOSTS:
        return web.Response(status=403, text="this service answers only on the loopback\n")
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        err = HipkiError(RetCode.BAD_PARAMETER, "the request body is too large")
        response = json_response(error_answer(request.path.strip("/") or "unknown", err), status=413)
        response.force_close()  # the rest of the body is not read
        return response


# -- JSON endpoints -------------------------------------------------------------------------------


async def _package(request: web.Request) -> dict[str, Any]:
    if request.method != "POST":
        raise HipkiError(RetCode.BAD_PARAMETER, "send the tbsPackage in a POST body")
    form = await request.post()
    value = form.get("tbsPackage")
    return parse_package(value if isinstance(value, str) else None)


async def _call(request: web.Request, func: str) -> web.Response:
    """One JSON call; a popup's ticket is spent by any answer but "no PIN" (the popup then
    asks the person and calls again)."""
    state = request.app[STATE_KEY]
    answer = await _answer(request, func)
    ticket = request.headers.get("X-HiPKI-Ticket")
    if ticket is not None and answer["ret_code"] != RetCode.NO_PIN:
        state.tickets.pop(ticket, None)
    return json_response(answer)


async def _answer(request: web.Request, func: str) -> dict[str, Any]:
    service, state = request.app[SERVICE_KEY], request.app[STATE_KEY]
    try:
        fault = service.take_fault(request.path)
        if fault is not None:
            raise HipkiError(fault.ret_code, "failure chosen by the test control", fault.last_error)
        caller(request, state)
        if func == "pkcs11info":
            with_cert = request.query.get("withcert", "").lower() == "true"
            if request.method == "POST":
                form = await request.post()
                with_cert = with_cert or str(form.get("withcert", "")).lower() == "true"
            return await service.pkcs11info(with_cert)
        package = await _package(request)
        return await (service.sign(package) if func == "sign" else service.decrypt(package))
    except web.HTTPException:
        raise  # body too large: answered by the guard
    except Exception as caught:  # every failure is a JSON answer; a bug is logged, without locals
        if isinstance(caught, HipkiError):
            exc = caught
            log.info("%s: ret_code %08X: %s", request.path, exc.ret_code, exc.message)
        else:
            log.error("%s: internal error: %s", request.path, type(caught).__name__)
            exc = HipkiError(RetCode.EXECUTION_ERROR, "internal error in the service")
        answer = error_answer(func, exc)
        if func == "pkcs11info":
            answer["serverVersion"] = SERVER_VERSION
        return answer


async def pkcs11info(request: web.Request) -> web.Response:
    return await _call(request, "pkcs11info")


async def sign(request: web.Request) -> web.Response:
    return await _call(request, "sign")


async def decrypt(request: web.Request) -> web.Response:
    return await _call(request, "decrypt")


async def p11image(request: web.Request) -> web.Response:
    """The ``/pkcs11info`` JSON (no certificates) in a BMP; readable cross-origin."""
    response = await _call(request, "pkcs11info")
    assert response.text is not None
    return web.Response(
        body=text_bmp(response.text),
        content_type="image/bmp",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"},
    )


async def unsupported(request: web.Request) -> web.Response:
    func = request.path.rsplit("/", 1)[-1] or "unknown"
    err = HipkiError(RetCode.UNSUPPORTED, f"{request.path} is not supported by this service")
    return json_response(error_answer(func, err))


async def eid_call(request: web.Request) -> web.Response:
    """``/eIDPM/<name>``: the eID middleware calls (:mod:`eidemu.hipki.eidpm`), answered with
    ``result`` instead of ``ret_code``; the same site check and ``tbsPackage`` as the others."""
    name = request.match_info["name"]
    state = request.app[STATE_KEY]
    try:
        fault = request.app[SERVICE_KEY].take_fault(request.path)
        if fault is not None:
            raise HipkiError(fault.ret_code, "failure chosen by the test control", fault.last_error)
        caller(request, state)
        package = await _package(request)
    except HipkiError as exc:
        log.info("%s: %s", request.path, exc.message)
        return json_response(EidCallError.from_hipki(exc).answer(name))
    answer = await request.app[EID_KEY].call(name, package)
    if answer["result"] != Result.OK.value:
        log.info("%s: %s: %s", request.path, answer["result"], answer["message"])
    return json_response(answer)


# -- pages --------------------------------------------------------------------------------------


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def _script_json(value: object) -> str:
    """JSON safe inside a <script type="application/json"> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


async def popup(request: web.Request) -> web.Response:
    """The popup page: tells its opener ``getTbs``, calls the API with the answer, posts the result."""
    state = request.app[STATE_KEY]
    config: dict[str, Any] = {"funcs": POPUP_FUNCS, "version": SERVER_VERSION}
    referer = request.headers.get("Referer")
    host = origin_host(referer) if referer else None
    if host is None:
        err = HipkiError(RetCode.FORBIDDEN_DOMAIN, "the popup was not opened by a web site (no Referer)")
        config.update(origin="*", error=err.answer("popup"))
    else:
        from urllib.parse import urlsplit

        parts = urlsplit(referer or "")
        config["origin"] = f"{parts.scheme}://{parts.netloc}"
        if host in state.trust:
            config["ticket"] = state.issue_ticket(host)
        else:
            err = HipkiError(RetCode.UNTRUSTED_SITE, f"the site {host} is not trusted: open /addDomain?domain={host}")
            config["error"] = err.answer("popup")
    page = _fill(_page("popup.html"), CONFIG=_script_json(config), SCRIPT=_page("popup.js"))
    return web.Response(text=page, content_type="text/html", headers=_page_headers())


def _page_headers() -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # our own form posts keep their Origin
    }


async def add_domain(request: web.Request) -> web.Response:
    """GET: ask (or let the scripted user answer); POST from our own page: the person's yes."""
    state, service = request.app[STATE_KEY], request.app[SERVICE_KEY]
    result: dict[str, Any] | None
    if request.method == "POST":
        form = await request.post()
        domain = str(form.get("domain", ""))
        origin = request.headers.get("Origin")
        if origin is not None and origin not in _own_origins(request):
            result = HipkiError(RetCode.FORBIDDEN_DOMAIN, "only the service's own page can trust a site").answer(
                "addDomain"
            )
        else:
            decision: bool | None = str(form.get("answer", "")) == "approve"
            result = _decide(state, domain, decision)
    else:
        domain = request.query.get("domain", "")
        if valid_host(domain):
            result = _decide(state, domain, service.user.decide_site())
        else:
            result = HipkiError(RetCode.BAD_PARAMETER, "domain is not a host name").answer("addDomain")
    config = {"domain": domain, "result": result}
    page = _fill(_page("adddomain.html"), CONFIG=_script_json(config), DOMAIN=html.escape(domain))
    return web.Response(text=page, content_type="text/html", headers=_page_headers())


def _decide(state: AppState, domain: str, decision: bool | None) -> dict[str, Any] | None:
    if decision is None:
        return None  # the page asks the person
    if not decision:
        return HipkiError(RetCode.CANCELLED, "the user did not trust the site").answer("addDomain")
    try:
        state.trust.add(domain)
    except HipkiError as exc:
        return exc.answer("addDomain")
    return {"func": "addDomain", "ret_code": 0, "last_error": 0, "domain": domain.lower()}


async def self_test(request: web.Request) -> web.Response:
    page = _fill(_page("selftest.html"), VERSION=SERVER_VERSION)
    return web.Response(text=page, content_type="text/html", headers=_page_headers())


# -- test control ----------------------------------------------------------------------------------


async def control(request: web.Request) -> web.Response:
    """Test extras. Only local programs: a custom header (a page cannot send it cross-origin
    without a preflight this service never grants) and no Origin."""
    state, service = request.app[STATE_KEY], request.app[SERVICE_KEY]
    if not state.test_control or request.headers.get("X-Eidemu-Control") != "1" or "Origin" in request.headers:
        return web.Response(status=403, text="test control is off or not allowed from a page\n")
    try:
        body = await request.json()
    except ValueError:
        return json_response({"ok": False, "error": "the body is not JSON"}, status=400)
    done: list[str] = []
    try:
        if not isinstance(body, dict):
            raise ValueError("the body is a JSON object")
        if "fail_next" in body:
            spec = body["fail_next"]
            spec = {"ret_code": spec} if isinstance(spec, int) else spec
            service.faults.append(
                Fault(int(spec["ret_code"]) & 0xFFFFFFFF, int(spec.get("last_error", 0)) & 0xFFFFFFFF, spec.get("path"))
            )
            done.append("fail_next")
        if "user" in body:
            service.user.push([Step.parse(s) for s in body["user"]])
            done.append("user")
        if "card" in body:
            source = service.source
            if not isinstance(source, EmulatorSource):
                raise ValueError("card remove/insert works on emulator: cards (use vpcd for pcsc:)")
            if body["card"] == "remove":
                source.remove()
            elif body["card"] == "insert":
                source.insert()
            else:
                raise ValueError("card is remove or insert")
            done.append("card")
        if "trust" in body:
            state.trust.add(str(body["trust"]))
            done.append("trust")
    except (KeyError, TypeError, ValueError, HipkiError) as exc:
        return json_response({"ok": False, "error": str(exc)}, status=400)
    return json_response({"ok": True, "done": done, "pending_user_steps": service.user.pending()})


# -- the application -------------------------------------------------------------------------------


def build_app(
    service: HipkiService, trust: TrustedSites, limits: HttpLimits, test_control: bool = False
) -> web.Application:
    """The routes, for :class:`~eidemu.emulator.pki.http_service.LocalHttpService` with ``limits``."""
    app = application(limits, middlewares=[guard])
    app[SERVICE_KEY] = service
    app[EID_KEY] = EidCalls(service)
    app[STATE_KEY] = AppState(trust, test_control)
    app.router.add_route("GET", "/pkcs11info", pkcs11info)
    app.router.add_route("POST", "/pkcs11info", pkcs11info)
    app.router.add_route("*", "/sign", sign)
    app.router.add_route("*", "/decrypt", decrypt)
    app.router.add_get("/p11Image.bmp", p11image)
    app.router.add_get("/popupForm", popup)
    app.router.add_get("/ChtPopupForm", popup)
    app.router.add_route("*", "/addDomain", add_domain)
    app.router.add_get("/selfTest.htm", self_test)
    app.router.add_post("/eidemu/control", control)
    app.router.add_route("*", "/eIDPM/{name}", eid_call)
    app.router.add_route("*", "/{tail:.*}", unsupported)
    return app


__all__ = ["AppState", "build_app", "caller"]
