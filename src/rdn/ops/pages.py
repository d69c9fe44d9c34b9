"""Pages: the outbox (with the dead letters and their retry button), the audit log, live events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from rdn.core import audit, i18n, policy
from rdn.core.events import sse_response
from rdn.core.modules import page_router
from rdn.core.outbox import Job, JobStatus, counts
from rdn.core.web import CurrentPrincipal, DbSession, allowed, redirect, render, still_entitled
from rdn.ops import service
from rdn.ops.policy import channels_for

router = page_router()

KIND_LABELS = {"email": i18n.N_("Email"), "webhook": i18n.N_("Webhook"), "password.reset": i18n.N_("Password reset")}
SUMMARY_LABELS = {"recipients": i18n.N_("Recipients"), "subject": i18n.N_("Subject"),
                  "message_id": i18n.N_("Message-ID"), "endpoint": i18n.N_("Endpoint"),
                  "webhook_id": i18n.N_("Webhook id"), "fields": i18n.N_("Fields")}


def kind_label(kind: str) -> str:
    if kind.startswith("periodic:"):
        return i18n.gettext("Scheduled task: %(name)s", name=kind.removeprefix("periodic:"))
    return i18n.gettext(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


STATUS_LABELS = {
    JobStatus.pending: i18n.N_("Waiting"),
    JobStatus.running: i18n.N_("Running"),
    JobStatus.done: i18n.N_("Done"),
    JobStatus.dead: i18n.N_("Failed for good"),
}


@router.get("/admin/jobs")
def jobs(request: Request, db: DbSession, principal: CurrentPrincipal,
         status: Annotated[str | None, Query(max_length=16)] = "dead",
         kind: Annotated[str | None, Query(max_length=60)] = None,
         page: Annotated[int, Query(ge=1)] = 1, notice: str | None = None) -> Response:
    policy.require(principal, "jobs.manage")
    result = service.list_jobs(db, principal, status=status or None, kind=kind or None, page=page)
    return render(request, "ops/jobs.html", {
        "page": result, "status": status or "", "kind": kind or "", "counts": counts(db),
        "labels": {s.value: i18n.gettext(label) for s, label in STATUS_LABELS.items()},
        "summary": service.summary, "kind_label": kind_label,
        "notice": i18n.gettext("The job will be tried again now.") if notice == "retried" else None,
    })


@router.get("/admin/jobs/{job_id}")
def job(request: Request, job_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    item = policy.access(db, principal, Job, job_id, "jobs.manage")
    return render(request, "ops/job.html", {
        "job": item, "summary": service.summary(item), "kind_label": kind_label,
        "summary_labels": {k: i18n.gettext(v) for k, v in SUMMARY_LABELS.items()},
        "labels": {s.value: i18n.gettext(label) for s, label in STATUS_LABELS.items()},
    })


@router.post("/admin/jobs/{job_id}/retry")
def retry(request: Request, job_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.retry_job(db, actor=principal, job_id=job_id)
    return redirect("/admin/jobs?status=dead&notice=retried")


@router.get("/admin/audit")
def audit_log(request: Request, db: DbSession, principal: CurrentPrincipal,
              action: Annotated[str | None, Query(max_length=80)] = None,
              object_type: Annotated[str | None, Query(max_length=60)] = None,
              object_id: Annotated[str | None, Query(max_length=64)] = None,
              actor: Annotated[str | None, Query(max_length=200)] = None,
              page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "audit.read")
    result = service.list_audit(db, principal, action=action, object_type=object_type, object_id=object_id,
                                actor=actor, page=page)
    return render(request, "ops/audit.html", {
        "page": result, "filters": {"action": action or "", "object_type": object_type or "",
                                    "object_id": object_id or "", "actor": actor or ""},
        "can_verify": policy.can(principal, "audit.verify"), "result": None,
    })


@router.post("/admin/audit/verify")
def audit_verify(request: Request, db: DbSession, principal: Annotated[object, allowed("audit.verify")]) -> Response:
    result = audit.verify(db)
    return render(request, "ops/audit_verify.html", {"result": result})


@router.get("/events")
async def events_stream(request: Request, principal: CurrentPrincipal) -> Response:
    """Live events for pages: the person's own, their organization's and the network's channels."""
    policy.require(principal, "events.subscribe")
    channels = channels_for(principal)
    return sse_response(request, channels, recheck=still_entitled(
        request, lambda fresh: set(channels) <= set(channels_for(fresh))))
