"""Idempotency keys for writes from other systems (``Idempotency-Key`` on POSTs of the JSON API).

* Keys belong to one credential: a token's key is that token's; a browser session's is that person's in
  the organization they act for. Another credential of the same person cannot replay the response.
* The same key with the same request returns the first response, byte for byte, without running again.
  Stored responses are sealed (they can carry secrets shown once).
* The same key with a different request is refused with 422.
* A request still running under the key is answered 409; retry after it finishes.

The claim is committed on its own before the request runs (so concurrent duplicates see it); the stored
response is written in the request's own transaction, so a response is stored exactly when its work
committed. A request that fails with an error releases the key, so the client can correct and retry.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn import db
from rdn.config import get_settings
from rdn.core import clock, outbox
from rdn.core.crypto import Keyring, SensitiveFields, sealed
from rdn.db import Base, new_id

LOCK_SECONDS = 60
HEADER = "Idempotency-Key"


class IdempotencyKey(SensitiveFields, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # in_progress | done
    response_status: Mapped[int | None]
    response_body: Mapped[bytes | None] = sealed()  # responses can carry secrets (a webhook's signing secret)
    response_content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    locked_until: Mapped[datetime]


class InvalidKey(ValueError):
    """The header's value is not a usable key."""


@dataclass(frozen=True)
class Outcome:
    action: str  # proceed | replay | mismatch | in_progress
    row_id: uuid.UUID | None = None
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None


def check_key(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 200 or not value.isprintable() or not value.isascii():
        raise InvalidKey("Idempotency-Key must be 1 to 200 printable ASCII characters")
    return value


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(scope: str, key: str, req_hash: str) -> Outcome:
    """Claim ``key`` for this request (own transaction), or say why not."""
    now = clock.now()
    with db.transaction() as session:
        row = session.scalars(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        ).first()
        if row is not None:
            if row.request_hash != req_hash:
                return Outcome("mismatch")
            if row.status == "done":
                sealed_body = row.unseal("response_body", keyring=Keyring.of(session))
                return Outcome("replay", row.id, row.response_status,
                               base64.b64decode(sealed_body) if sealed_body else b"", row.response_content_type)
            if row.locked_until > now:
                return Outcome("in_progress")
            row.locked_until = now + timedelta(seconds=LOCK_SECONDS)  # the earlier attempt died: take over
            return Outcome("proceed", row.id)
        row = IdempotencyKey(id=new_id(), scope=scope, key=key, request_hash=req_hash, status="in_progress",
                             created_at=now, locked_until=now + timedelta(seconds=LOCK_SECONDS))
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            return Outcome("in_progress")
        return Outcome("proceed", row.id)


def complete(session: Session, row_id: uuid.UUID, status: int, body: bytes, content_type: str | None) -> None:
    """Store the response in the request's own transaction."""
    row = session.get(IdempotencyKey, row_id)
    if row is not None:
        row.status = "done"
        row.response_status = status
        row.seal("response_body", base64.b64encode(body).decode(), keyring=Keyring.of(session))
        row.response_content_type = content_type


def release(row_id: uuid.UUID) -> None:
    with db.transaction() as session:
        row = session.get(IdempotencyKey, row_id)
        if row is not None and row.status != "done":
            session.delete(row)


@outbox.periodic("prune-idempotency-keys", timedelta(hours=1))
def _prune(ctx: outbox.JobContext) -> None:
    cutoff = clock.now() - timedelta(hours=get_settings().idempotency_retention_hours)
    ctx.session.execute(IdempotencyKey.__table__.delete().where(IdempotencyKey.created_at < cutoff))
