"""SCIM requests to an app, through the IdP's one SSRF-safe sender (oauth_clients/outbound.py).

scim2-client is not used: its HTTP engines are httpx clients, and the requests must go through
`outbound.send_pinned` (the address checked once and pinned, no redirects, bounded time and
size) — and every status needs our own meaning (409 on create: link; 5xx and unreadable
answers: retry; a redirect: refused). The messages themselves are scim2-models'
(provisioning/resources.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from oauth_clients import outbound, uri_rules

# An app's answer to one SCIM request is read up to this size (a User or a one-item search).
MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = "company-idp SCIM provisioning"
SCIM_MEDIA_TYPE = "application/scim+json"


@dataclass(frozen=True)
class ScimAnswer:
    """One exchange: the status and the JSON body, or why there is none.

    `retryable`: worth trying again later (network failure, 5xx, 429, an unreadable body).
    """

    status_code: int | None = None
    body: Any = None
    error: str = ""
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


def base_url_problem(url: str, *, allow_private_network: bool) -> str | None:
    """Why the IdP may not call `url` as an app's SCIM base URL, or None: the back-channel logout
    URI rules (https, http only on loopback, no private network unless the app may)."""
    return uri_rules.logout_uri_problem(
        url, backchannel=True, allow_private_network=allow_private_network
    )


def endpoint(base_url: str, *parts: str, query: dict[str, str] | None = None) -> str:
    """`base_url` + `/Users/<id>`-style path segments (each escaped) + query."""
    url = base_url.rstrip("/") + "".join("/" + quote(part, safe="") for part in parts)
    return f"{url}?{urlencode(query)}" if query else url


def send(
    *,
    method: str,
    base_url: str,
    path: tuple[str, ...],
    token: str,
    allow_private_network: bool,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
) -> ScimAnswer:
    """One SCIM request (RFC 7644 §3), safely. Never raises for a misbehaving app."""
    # The URL rules again at send time (the target may predate them), then the address check.
    problem = base_url_problem(base_url, allow_private_network=True)
    if problem:
        return ScimAnswer(error=outbound.clean_text(f"{base_url}: {problem}"))
    url = endpoint(base_url, *path, query=query)
    address, refusal, retryable = outbound.check_destination(
        url, allow_private_network=allow_private_network
    )
    if address is None:
        return ScimAnswer(error=refusal, retryable=retryable)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": f"{SCIM_MEDIA_TYPE}, application/json",
        "Authorization": f"Bearer {token}",
        "Cache-Control": "no-store",
    }
    data = None
    if body is not None:
        headers["Content-Type"] = SCIM_MEDIA_TYPE
        data = json.dumps(body).encode()
    answer = outbound.send_pinned(
        method=method,
        uri=url,
        address=address,
        timeout=float(settings.IDP_PROVISIONING_TIMEOUT_SECONDS),
        max_bytes=MAX_RESPONSE_BYTES,
        headers=headers,
        data=data,
    )
    status = answer.status_code
    if status is None:
        return ScimAnswer(error=answer.error, retryable=True)
    if 300 <= status < 400:
        return ScimAnswer(
            status_code=status, error="answered with a redirect, which is never followed"
        )
    parsed: Any = None
    if answer.body.strip():
        try:
            parsed = json.loads(answer.body)
        except ValueError:
            parsed = None
            if 200 <= status < 300:
                return ScimAnswer(
                    status_code=status, error="the answer is not JSON", retryable=True
                )
    if answer.truncated:
        return ScimAnswer(status_code=status, error="the answer is too large", retryable=True)
    if 200 <= status < 300:
        return ScimAnswer(status_code=status, body=parsed)
    return ScimAnswer(
        status_code=status,
        body=parsed,
        error=_error_text(status, parsed, answer.body),
        retryable=status >= 500 or status == 429,
    )


def _error_text(status: int, parsed: Any, raw: bytes) -> str:
    """RFC 7644 §3.12: an error's `detail` (and `scimType`) when the app sent a SCIM error."""
    if isinstance(parsed, dict) and (parsed.get("detail") or parsed.get("scimType")):
        detail = " ".join(str(parsed.get(key) or "") for key in ("scimType", "detail")).strip()
        return outbound.clean_text(f"HTTP {status}: {detail}")
    snippet = outbound.clean_text(raw[:300].decode("utf-8", "replace"))
    return outbound.clean_text(f"HTTP {status}: {snippet}") if snippet else f"HTTP {status}"
