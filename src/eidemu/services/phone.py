"""The scripted phone of the mobile certificate double: what the holder does in the app.

:class:`Phone` drives a running ``eidemu fido serve`` over its control route ``POST /eidemu/phone``
(``eidemu fido phone approve|cancel|timeout|unbind ...`` is a thin CLI over it). Answers are
those of :meth:`eidemu.services.fido.FidoService.phone_answer`. A policy file (``--config``,
``policy``) makes the phone act on pushes by itself: approve after N seconds, cancel, fail the
biometric check, let the ticket run out, or have no bound device / push token.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from .fido import ticket_from_link

ACTIONS = ("approve", "cancel", "biometric_fail", "wrong_app", "timeout")
DEVICE_ACTIONS = ("unbind", "bind", "no_push_token", "push_token")


class PhoneError(Exception):
    """The service refused what the phone did; ``error_code`` as the service names it."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code


@dataclass
class Phone:
    """The holder's phone for ``id_num`` against the service at ``base_url``."""

    base_url: str
    id_num: str | None = None
    timeout: float = 10.0

    def _send(self, message: dict[str, Any]) -> str:
        if self.id_num is not None:
            message.setdefault("id_num", self.id_num)
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"not an HTTP URL: {self.base_url}")
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            self.base_url.rstrip("/") + "/eidemu/phone",
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - our own URL
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
        if not answer.get("ok"):
            raise PhoneError(str(answer.get("error_code", "?")), str(answer.get("error", "refused")))
        return str(answer["outcome"])

    def answer(self, action: str, ticket: str | None = None, *, link: str | None = None, after: float = 0.0) -> str:
        """Answer a pushed ticket or a scanned deep link / QR payload with ``action``."""
        if action not in ACTIONS:
            raise ValueError(f"phone action: one of {', '.join(ACTIONS)}")
        if link is not None:
            ticket = ticket_from_link(link)
        if ticket is None:
            raise ValueError("a ticket or a link is needed")
        return self._send({"action": action, "sp_ticket": ticket, "after": after})

    def approve(self, ticket: str | None = None, *, link: str | None = None, after: float = 0.0) -> str:
        return self.answer("approve", ticket, link=link, after=after)

    def cancel(self, ticket: str | None = None, *, link: str | None = None) -> str:
        return self.answer("cancel", ticket, link=link)

    def biometric_fail(self, ticket: str | None = None, *, link: str | None = None) -> str:
        return self.answer("biometric_fail", ticket, link=link)

    def timeout_ticket(self, ticket: str | None = None, *, link: str | None = None) -> str:
        return self.answer("timeout", ticket, link=link)

    def device(self, action: str) -> str:
        """``unbind``, ``bind``, ``no_push_token`` or ``push_token`` for this phone's holder."""
        if action not in DEVICE_ACTIONS:
            raise ValueError(f"device action: one of {', '.join(DEVICE_ACTIONS)}")
        if self.id_num is None:
            raise ValueError("device actions need the holder's id_num")
        return self._send({"action": action})
