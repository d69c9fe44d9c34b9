"""JSON API: the outbox, the audit log, live events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Query, Request
from fastapi.responses import Response

from rdn.core import audit, policy
from rdn.core.events import sse_response
from rdn.core.modules import api_router
from rdn.core.outbox import JobStatus
from rdn.core.schemas import Out, PageMeta, PageOut
from rdn.core.web import CurrentPrincipal, DbSession, still_entitled
from rdn.ops import service
from rdn.ops.policy import channels_for

router = api_router(prefix="/api/v1", tags=["operations"])


class JobOut(Out):
    id: uuid.UUID
    kind: str
    status: JobStatus
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_error: str | None
    summary: dict[str, Any]


class AuditOut(Out):
    seq: int
    ts: datetime
    actor_user_id: uuid.UUID | None
    actor_label: str
    org_id: uuid.UUID | None
    action: str
    object_type: str | None
    object_id: str | None
    purpose: str | None
    request_id: str | None
    details: dict[str, Any]
    hash: str


class VerifyOut(Out):
    ok: bool
    checked: int
    broken_seq: int | None
    problem: str | None


def _job_out(job: Any) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, status=job.status, attempts=job.attempts,
                  max_attempts=job.max_attempts, run_at=job.run_at, created_at=job.created_at,
                  updated_at=job.updated_at, finished_at=job.finished_at, last_error=job.last_error,
                  summary=service.summary(job))


@router.get("/jobs", response_model=PageOut[JobOut], summary="Outbox jobs (dead letters by default)")
def list_jobs(db: DbSession, principal: CurrentPrincipal, status: str | None = Query("dead", max_length=16),
              kind: str | None = Query(None, max_length=60), page: int = Query(1, ge=1),
              per_page: int = Query(25, ge=1, le=100)) -> PageOut[JobOut]:
    policy.require(principal, "jobs.manage")
    result = service.list_jobs(db, principal, status=status, kind=kind, page=page, per_page=per_page)
    return PageOut(items=[_job_out(j) for j in result.items], meta=PageMeta(**result.meta()))


@router.post("/jobs/{job_id}/retry", response_model=JobOut, summary="Send a dead job round again")
def retry_job(job_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> JobOut:
    return _job_out(service.retry_job(db, actor=principal, job_id=job_id))


@router.get("/audit", response_model=PageOut[AuditOut], summary="Audit log entries you may read")
def list_audit(db: DbSession, principal: CurrentPrincipal, action: str | None = Query(None, max_length=80),
               object_type: str | None = Query(None, max_length=60),
               object_id: str | None = Query(None, max_length=64),
               page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=100)) -> PageOut[AuditOut]:
    policy.require(principal, "audit.read")
    result = service.list_audit(db, principal, action=action, object_type=object_type, object_id=object_id,
                                page=page, per_page=per_page)
    return PageOut(items=[AuditOut.model_validate(e) for e in result.items], meta=PageMeta(**result.meta()))


@router.post("/audit/verify", response_model=VerifyOut, summary="Recompute the audit chain")
def verify_audit(db: DbSession, principal: CurrentPrincipal) -> VerifyOut:
    policy.require(principal, "audit.verify")
    return VerifyOut.model_validate(audit.verify(db))


@router.get("/events", summary="Live events (Server-Sent Events) on the caller's channels",
            response_class=Response, responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "events.subscribe")
    channels = channels_for(principal)
    return sse_response(request, channels, recheck=still_entitled(
        request, lambda fresh: set(channels) <= set(channels_for(fresh))))
