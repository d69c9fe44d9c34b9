"""Operations on the outbox and the audit log (no HTTP, no commits)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from rdn.core import audit, events, i18n, outbox, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict
from rdn.core.identity import Principal
from rdn.core.outbox import Job, JobStatus
from rdn.core.pagination import Page, paginate


def list_jobs(session: Session, principal: Principal, *, status: str | None = None, kind: str | None = None,
              page: int = 1, per_page: int = 25) -> Page[Job]:
    stmt = policy.scoped(principal, Job)
    if status in {s.value for s in JobStatus}:
        stmt = stmt.where(Job.status == JobStatus(status))
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return paginate(session, stmt.order_by(Job.updated_at.desc()), page=page, per_page=per_page)


def summary(job: Job) -> dict[str, Any]:
    """What an operator may see of a job: never message bodies or links (they can hold secrets)."""
    p = job.payload or {}
    if job.kind == "email":
        return {"recipients": len(p.get("to", [])), "subject": p.get("subject", ""),
                "message_id": p.get("message_id", "")}
    if job.kind == "webhook":
        return {"endpoint": p.get("endpoint_id", ""), "webhook_id": p.get("msg_id", "")}
    return {"fields": sorted(p)}


def retry_job(session: Session, *, actor: Principal, job_id: uuid.UUID) -> Job:
    job = policy.access(session, actor, Job, job_id, "jobs.manage")
    if job.status not in (JobStatus.dead, JobStatus.pending):
        raise Conflict(i18n.gettext("Only failed or waiting jobs can be retried"))
    outbox.retry(session, job)
    audit.record(session, action="job.retry", actor=actor, object_type="job", object_id=job.id,
                 details={"kind": job.kind})
    events.publish(session, "ops", "job.retried", {"id": str(job.id)})
    return job


def list_audit(session: Session, principal: Principal, *, action: str | None = None,
               object_type: str | None = None, object_id: str | None = None, actor: str | None = None,
               page: int = 1, per_page: int = 50) -> Page[AuditEntry]:
    stmt = policy.scoped(principal, AuditEntry)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if actor:
        stmt = stmt.where(AuditEntry.actor_label.contains(actor))
    return paginate(session, stmt.order_by(AuditEntry.seq.desc()), page=page, per_page=per_page)
