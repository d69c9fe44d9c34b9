"""The append-only, hash-chained audit log.

Every write, and every read of sensitive data, appends an entry **in the caller's transaction**: if the
change rolls back, so does its entry; if the entry cannot be written, neither is the change.

Entries carry who (user, organization, label), what (action, object type and id), why (purpose), which
request, when, and a small ``details`` dict that must never hold sensitive values (field *names* yes,
values no). Each entry's hash covers its content and the previous entry's hash; the single-row
``audit_head`` holds the last sequence number and hash, so removing entries at the end is detected too.
Writers serialise on the head row (``FOR UPDATE`` on PostgreSQL; SQLite transactions already hold the write
lock). The database refuses UPDATE and DELETE on the log through triggers; ``rdn audit verify`` recomputes
the chain and names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn.core import clock
from rdn.core.context import request_id_var
from rdn.db import Base, bulk_insert

if TYPE_CHECKING:
    from rdn.core.identity import Principal

GENESIS = "0" * 64
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_object", "object_type", "object_id"),
        Index("ix_audit_log_org_ts", "org_id", "ts"),
    )

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str | None] = mapped_column(String(60))
    object_id: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(_SEQ)
    hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class Actor:
    """Who did it, for entries written outside a request (CLI, worker, system jobs)."""

    label: str
    user_id: uuid.UUID | None = None
    org_id: uuid.UUID | None = None


SYSTEM = Actor(label="system")


def _canonical(entry: AuditEntry | SimpleNamespace) -> bytes:
    body = {
        "seq": entry.seq,
        "ts": entry.ts.isoformat(timespec="microseconds"),
        "actor_user_id": str(entry.actor_user_id) if entry.actor_user_id else None,
        "actor_label": entry.actor_label,
        "org_id": str(entry.org_id) if entry.org_id else None,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "purpose": entry.purpose,
        "request_id": entry.request_id,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(entry: AuditEntry | SimpleNamespace) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    if not details:
        return {}
    # Round-trip through JSON so what is hashed is exactly what the database gives back.
    cleaned = json.loads(json.dumps(details, default=str, sort_keys=True))
    for value in _walk(cleaned):
        if isinstance(value, float):
            raise ValueError("audit details must not hold floats (their text form is not stable)")
    return cleaned


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def record(
    session: Session,
    *,
    action: str,
    actor: Principal | Actor,
    object_type: str | None = None,
    object_id: Any = None,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
    org_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction. ``details`` must hold no sensitive values."""
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    entry = AuditEntry(
        seq=head.seq + 1,
        ts=clock.now(),
        actor_user_id=getattr(actor, "user_id", None),
        actor_label=_label(actor),
        org_id=org_id if org_id is not None else getattr(actor, "org_id", None),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        purpose=purpose,
        request_id=request_id_var.get(),
        details=_clean_details(details),
        prev_hash=head.hash,
    )
    entry.hash = compute_hash(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


@dataclass(frozen=True)
class Pending:
    """One entry for :func:`record_many`."""

    action: str
    object_type: str | None = None
    object_id: Any = None
    details: dict[str, Any] | None = None
    purpose: str | None = None


def record_many(session: Session, *, actor: Principal | Actor, entries: list[Pending],
                org_id: uuid.UUID | None = None) -> int:
    """Append many entries at once (a bulk import), chained exactly as :func:`record` would, in one insert."""
    if not entries:
        return 0
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    seq, prev = head.seq, head.hash
    now, request_id, label = clock.now(), request_id_var.get(), _label(actor)
    user_id = getattr(actor, "user_id", None)
    org = org_id if org_id is not None else getattr(actor, "org_id", None)
    rows = []
    for pending in entries:
        seq += 1
        # The same fields an AuditEntry holds (hashed the same way), without making thousands of ORM objects.
        entry = SimpleNamespace(seq=seq, ts=now, actor_user_id=user_id, actor_label=label, org_id=org,
                                action=pending.action, object_type=pending.object_type,
                                object_id=None if pending.object_id is None else str(pending.object_id),
                                purpose=pending.purpose, request_id=request_id,
                                details=_clean_details(pending.details), prev_hash=prev)
        entry.hash = prev = compute_hash(entry)
        rows.append(tuple(getattr(entry, c) for c in _COLUMNS))
    bulk_insert(session, AuditEntry.__table__, _COLUMNS, rows)
    head.seq, head.hash = seq, prev
    session.flush()
    return len(rows)


_COLUMNS = ("seq", "ts", "actor_user_id", "actor_label", "org_id", "action", "object_type", "object_id", "purpose",
            "request_id", "details", "prev_hash", "hash")


def record_read(
    session: Session,
    *,
    actor: Principal | Actor,
    object_type: str,
    object_id: Any,
    fields: list[str],
    purpose: str | None = None,
    org_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Audit a read of sensitive fields (their names, never their values)."""
    return record(session, action="sensitive.read", actor=actor, object_type=object_type,
                  object_id=object_id, purpose=purpose, details={"fields": sorted(fields)}, org_id=org_id)


def _label(actor: Principal | Actor) -> str:
    label = getattr(actor, "audit_label", None) or getattr(actor, "label", None)
    return str(label or "unknown")


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None  # in English, for logs and the command line
    kind: str | None = None  # missing | out_of_order | unlinked | altered | truncated | no_head | head_mismatch
    head_seq: int | None = None


def verify(session: Session, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Recompute the chain from the start; report the first entry that does not hold."""
    head = session.get(AuditHead, 1)
    total = head.seq if head else 0
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)
    for entry in session.scalars(stmt):
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                return VerifyResult(False, checked, expected_seq,
                                    f"entry {expected_seq} is missing (the next entry is {entry.seq})", "missing")
            return VerifyResult(False, checked, entry.seq, f"entry {entry.seq} appears out of order", "out_of_order")
        if entry.prev_hash != prev_hash:
            return VerifyResult(False, checked, entry.seq,
                                f"entry {entry.seq} does not link to entry {entry.seq - 1} "
                                "(an entry was removed, replaced or reordered)", "unlinked")
        if compute_hash(entry) != entry.hash:
            return VerifyResult(False, checked, entry.seq,
                                f"entry {entry.seq} was altered (its content does not match its hash)", "altered")
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
        if progress and checked % 2000 == 0:
            progress(checked, total)
    if progress:
        progress(checked, total)
    last_seq = expected_seq - 1
    if head is None:
        return VerifyResult(False, checked, None, "the audit head row is missing", "no_head")
    if head.seq != last_seq or head.hash != prev_hash:
        if head.seq > last_seq:
            return VerifyResult(False, checked, last_seq + 1,
                                f"entries {last_seq + 1} to {head.seq} were removed from the end of the log",
                                "truncated", head.seq)
        return VerifyResult(False, checked, head.seq + 1 if head.seq < last_seq else last_seq,
                            "the audit head does not match the last entry", "head_mismatch", head.seq)
    return VerifyResult(True, checked)
