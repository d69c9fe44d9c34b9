"""SMS through a configurable HTTP provider.

Outbound: ``POST RDN_SMS_URL`` with ``Authorization: Bearer RDN_SMS_TOKEN`` and a JSON body
``{"to": "+4477...", "from": RDN_SMS_FROM, "text": "...", "reference": "..."}``; any 2xx means accepted (the
answer's ``id``, if any, is kept for delivery receipts). 4xx other than 408/429 is final; the rest is retried.

Inbound (replies and delivery receipts): the provider POSTs JSON to ``/api/v1/sms/inbound`` with header
``X-RDN-Signature: <hex HMAC-SHA256 of the raw body keyed by RDN_SMS_INBOUND_SECRET>``:
``{"from": "+4477...", "text": "482913"}`` for a reply, ``{"reference": "...", "status": "delivered"}`` for a
receipt. Most providers can be pointed at this shape with their own webhook templates or a small relay.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import httpx

from rdn.config import get_settings
from rdn.core import outbox

E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class SmsError(ValueError):
    pass


def normalise_phone(value: str) -> str:
    """E.164: a plus sign and 8 to 15 digits (spaces, dots, dashes and brackets are dropped)."""
    compact = re.sub(r"[\s().-]", "", value or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not E164.match(compact):
        raise SmsError("address: a phone number in international form, such as +44 7700 900123")
    return compact


def enabled() -> bool:
    return bool(get_settings().sms_url)


def send_rollback_unsafe(to: str, text: str, reference: str) -> str:
    """Hand one SMS to the provider; returns the provider's id (or our reference). Talks to the outside world."""
    settings = get_settings()
    if not settings.sms_url:
        raise outbox.PermanentError("SMS is not configured (RDN_SMS_URL)")
    try:
        response = httpx.post(settings.sms_url, json={"to": to, "from": settings.sms_from, "text": text,
                                                      "reference": reference},
                              headers={"Authorization": f"Bearer {settings.sms_token}"},
                              timeout=settings.sms_timeout_seconds)
    except httpx.HTTPError as exc:
        raise outbox.TransientError(f"SMS provider unreachable: {type(exc).__name__}") from exc
    if 200 <= response.status_code < 300:
        try:
            return str(response.json().get("id") or reference)
        except ValueError:
            return reference
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise outbox.PermanentError(f"SMS provider refused: HTTP {response.status_code}")
    raise outbox.TransientError(f"SMS provider: HTTP {response.status_code}")


def signature(body: bytes) -> str:
    return hmac.new(get_settings().sms_inbound_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_inbound(body: bytes, header: str | None) -> bool:
    secret = get_settings().sms_inbound_secret
    return bool(secret and header) and hmac.compare_digest(signature(body), header or "")
