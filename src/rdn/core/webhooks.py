"""Outgoing webhooks, signed per the Standard Webhooks specification.

Each delivery carries ``webhook-id`` (stable across retries: receivers de-duplicate on it),
``webhook-timestamp`` (seconds since the epoch, of this attempt) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's ``whsec_`` secret).
Endpoints belong to an organization; their secrets are sealed with that organization's data key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn.config import Mode, get_settings
from rdn.core import clock, outbox
from rdn.core.crypto import Keyring, SensitiveFields, same_secret, sealed
from rdn.db import Base, new_id

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


class WebhookEndpoint(SensitiveFields, Base):
    __tablename__ = "webhook_endpoints"
    __sensitive_owner__ = "org_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[bytes | None] = sealed()
    event_types: Mapped[list[str]]  # ["*"] for every event
    active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookError(ValueError):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    mac = hmac.new(_secret_bytes(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_signature(secret: str, headers: dict[str, str], body: str, tolerance: int = 300) -> bool:
    """What a receiver does (used by tests and by RDN when it receives Standard Webhooks itself)."""
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs and ts.isdigit()):
        return False
    if abs(int(clock.now().timestamp()) - int(ts)) > tolerance:
        return False
    expected = sign(secret, msg_id, int(ts), body)
    return any(same_secret(expected, s) for s in sigs.split(" "))


def _public_only(url: str) -> None:
    """Refuse a destination on a private, loopback, link-local or reserved network (no requests into the
    platform's own network on a member's behalf), unless RDN_WEBHOOK_ALLOW_PRIVATE allows it."""
    if get_settings().webhooks_may_reach_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookError(f"url: the host {host!r} cannot be resolved") from exc
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise WebhookError("url: the address is on a private or reserved network")


def check_url(url: str) -> str:
    url = url.strip()
    if not (url.startswith("https://") or url.startswith("http://")) or len(url) > 500:
        raise WebhookError("url: must be an http(s) address of at most 500 characters")
    if get_settings().mode == Mode.production and not url.startswith("https://"):
        raise WebhookError("url: must use https in production")
    _public_only(url)
    return url


def create_endpoint(session: Session, *, org_id: uuid.UUID, url: str, event_types: list[str] | None = None,
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (shown once)."""
    endpoint = WebhookEndpoint(id=new_id(), org_id=org_id, url=check_url(url), description=description[:200],
                               event_types=sorted(set(event_types or ["*"])), active=True)
    secret = new_secret()
    endpoint.seal("secret", secret, keyring=Keyring.of(session))
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def emit(session: Session, *, org_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> list[outbox.Job]:
    """Queue ``event_type`` for every active endpoint of ``org_id`` that subscribes to it."""
    jobs = []
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True))
    ).all()
    for endpoint in endpoints:
        if "*" not in endpoint.event_types and event_type not in endpoint.event_types:
            continue
        job_id = new_id()
        body = json.dumps({"type": event_type, "timestamp": clock.now().isoformat(), "data": data},
                          separators=(",", ":"), default=str)
        jobs.append(outbox.enqueue(
            session, "webhook", {"endpoint_id": str(endpoint.id), "msg_id": f"msg_{job_id.hex}", "body": body},
            job_id=job_id, org_id=org_id,
        ))
    return jobs


def post_rollback_unsafe(url: str, secret: str, msg_id: str, body: str) -> httpx.Response:
    """POST one signed delivery. Talks to the outside world: never inside a transaction."""
    try:
        _public_only(url)  # again at delivery: the name may resolve elsewhere now
    except WebhookError as exc:
        raise outbox.PermanentError(str(exc)) from exc
    ts = int(clock.now().timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "RDN-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }
    with httpx.Client(timeout=get_settings().webhook_timeout_seconds, follow_redirects=False) as client:
        return client.post(url, content=body.encode(), headers=headers)


@outbox.handler("webhook", max_attempts=12)
def _webhook_job(ctx: outbox.JobContext) -> None:
    with ctx.read() as session:
        endpoint = session.get(WebhookEndpoint, uuid.UUID(ctx.payload["endpoint_id"]))
        if endpoint is None or not endpoint.active:
            raise outbox.PermanentError("endpoint removed or disabled")
        url = endpoint.url
        secret = endpoint.unseal("secret", keyring=Keyring.of(session))
    try:
        response = post_rollback_unsafe(url, secret, ctx.payload["msg_id"], ctx.payload["body"])
    except httpx.HTTPError as exc:
        raise outbox.TransientError(f"{type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 410:
        # The receiver says the endpoint is gone for good: stop sending to it (written with the failure).
        endpoint_id = uuid.UUID(ctx.payload["endpoint_id"])

        def disable(session: Session) -> None:
            ep = session.get(WebhookEndpoint, endpoint_id)
            if ep is not None and ep.active:
                ep.active = False
                ep.disabled_reason = "the receiver answered 410 Gone"
                from rdn.core import audit

                audit.record(session, action="webhook.disabled", actor=audit.SYSTEM, object_type="webhook",
                             object_id=ep.id, org_id=ep.org_id, details={"reason": "410 Gone"})

        ctx.on_failure(disable)
        raise outbox.PermanentError("410 Gone: endpoint disabled")
    if 400 <= status < 500 and status not in (408, 409, 425, 429):
        raise outbox.PermanentError(f"HTTP {status}")
    raise outbox.TransientError(f"HTTP {status}")
