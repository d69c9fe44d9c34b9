"""Pages of obstacles: the list and the picture by host country, one obstacle (what it blocks, over time, the
evidence, the diplomatic actions, its status), and blocking a case's checklist item by an obstacle."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.models import CHECKLIST_NAMES, ChecklistItem
from rdn.cases.pages import CHECKLIST_EXTRAS
from rdn.cases.policy import access_case
from rdn.core import clock, i18n, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.modules import page_router
from rdn.core.tenancy import Organization, OrgKind
from rdn.core.web import CurrentPrincipal, DbSession, redirect, render
from rdn.pathways import obstacles as service
from rdn.pathways.models import (
    ACTION_TYPE_NAMES,
    OBSTACLE_STATUS_NAMES,
    OBSTACLE_TYPE_NAMES,
    SEVERITY_NAMES,
    DiplomaticAction,
    Evidence,
    Obstacle,
)
from rdn.web import charts

router = page_router()
CHECKLIST_EXTRAS.append(service.checklist_extra)  # the case page shows and sets what blocks each item

NOTICES = {
    "created": i18n.N_("The obstacle is recorded."),
    "saved": i18n.N_("Your changes were saved."),
    "status": i18n.N_("The status is changed."),
    "released": i18n.N_("The obstacle is resolved: the cases it blocked are released and their owners told."),
    "evidence": i18n.N_("The evidence is added."),
    "action": i18n.N_("The diplomatic action is recorded."),
}


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _labels() -> dict[str, dict[str, str]]:
    return {"type": {k.value: _(v) for k, v in OBSTACLE_TYPE_NAMES.items()},
            "severity": {k.value: _(v) for k, v in SEVERITY_NAMES.items()},
            "status": {k.value: _(v) for k, v in OBSTACLE_STATUS_NAMES.items()},
            "action": {k.value: _(v) for k, v in ACTION_TYPE_NAMES.items()},
            "item": {k.value: _(v) for k, v in CHECKLIST_NAMES.items()}}


def _errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _bars(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """People blocked week by week, as bars (the page also gives the table)."""
    return charts.bars([(p["people"], i18n.format_date(p["week"], fmt="short") if k % 4 == 0 else "",
                         _("%(people)s people in %(cases)s cases, week of %(date)s", people=p["people"],
                           cases=p["cases"], date=i18n.format_date(p["week"]))) for k, p in enumerate(points)])


@router.get("/obstacles")
def obstacles(request: Request, db: DbSession, principal: CurrentPrincipal,
              country: Annotated[str, Query(max_length=2)] = "", status: Annotated[str, Query(max_length=20)] = "open",
              type: Annotated[str, Query(max_length=30)] = "", severity: Annotated[str, Query(max_length=20)] = "",
              q: Annotated[str, Query(max_length=100)] = "", page: Annotated[int, Query(ge=1)] = 1) -> Response:
    result = service.list_obstacles(db, principal, country=country, status=status, type=type, severity=severity,
                                    q=q, page=page)
    counts = service.blocks_by_obstacle(db, [o.id for o in result.items])
    series = []
    if country:
        ids = list(db.scalars(select(Obstacle.id).where(Obstacle.country == country.upper())))
        series = service.timeline(db, ids)
    return render(request, "pathways/obstacles.html", {
        "page": result, "counts": counts, "labels": _labels(), "by_country": service.by_country(db, principal),
        "filters": {"country": country, "status": status, "type": type, "severity": severity, "q": q},
        "countries": i18n.countries(i18n.locale_var.get()), "series": series, "chart": _bars(series),
        "can_report": policy.can(principal, "obstacle.report")})


def _form(request: Request, obstacle: Obstacle | None, values: dict[str, Any], errors: dict[str, str],
          status: int = 200) -> Response:
    return render(request, "pathways/obstacle_form.html", {
        "obstacle": obstacle, "values": values, "errors": errors, "labels": _labels(),
        "countries": i18n.countries(i18n.locale_var.get())}, status=status)


FIELDS = ("country", "type", "title", "description", "amount", "currency", "nationalities", "since", "severity",
          "links")


@router.get("/obstacles/new")
def new_obstacle(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "obstacle.report")
    return _form(request, None, {"severity": "medium"}, {})


@router.post("/obstacles/new")
async def create_obstacle(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "obstacle.report")
    form = await request.form()
    data = {k: str(form.get(k, ""))[:6000] for k in FIELDS}
    try:
        obstacle = service.create_obstacle(db, actor=principal, data=data)
    except ValidationFailed as exc:
        return _form(request, None, data, _errors(db, exc), 422)
    return redirect(f"/obstacles/{obstacle.id}?notice=created")


@router.get("/obstacles/{obstacle_id}")
def obstacle_page(request: Request, obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  notice: str | None = None) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.read")
    return _obstacle(request, db, principal, obstacle, notice=_notice(notice))


def _obstacle(request: Request, db: Session, principal: Any, obstacle: Obstacle, *, notice: str | None = None,
              errors: dict[str, str] | None = None, status: int = 200) -> Response:
    counts = service.counts(db, obstacle)
    shown, hidden = service.blocked_cases(db, principal, obstacle)
    series = service.timeline(db, [obstacle.id])
    actions = service.actions_of(db, obstacle)
    org_ids = {obstacle.reported_by_org_id, *(a.lead_org_id for a in actions)}
    org_ids |= {uuid.UUID(c) for a in actions for c in a.cosigners}
    org_ids |= {uuid.UUID(h["org"]) for h in obstacle.history if h.get("org")}
    orgs = {o.id: o for o in db.scalars(select(Organization).where(Organization.id.in_(org_ids)))}
    governments = [(str(o.id), o.name) for o in db.scalars(
        select(Organization).where(Organization.kind.in_([OrgKind.government, OrgKind.secretariat,
                                                          OrgKind.observer]), Organization.active.is_(True))
        .order_by(Organization.name)) if o.id != principal.org_id]
    return render(request, "pathways/obstacle.html", {
        "o": obstacle, "counts": counts, "shown": shown, "hidden": hidden, "series": series, "chart": _bars(series),
        "actions": actions, "evidence": service.evidence_of(db, obstacle), "labels": _labels(),
        "org_names": {str(k): o.name for k, o in orgs.items()},
        "cosigners": {a.id: [orgs[uuid.UUID(c)].name for c in a.cosigners if uuid.UUID(c) in orgs] for a in actions},
        "notice": notice, "errors": errors or {}, "governments": governments, "stage_label": service.stage_label,
        "statuses": [(s.value, _(n)) for s, n in OBSTACLE_STATUS_NAMES.items() if s != obstacle.status],
        "can_update": policy.can(principal, "obstacle.update", obstacle),
        "can_report": policy.can(principal, "obstacle.report"),
        "can_act": policy.can(principal, "obstacle.action", obstacle),
        "me": principal.org_id, "today": clock.now().date()}, status=status)


@router.get("/obstacles/{obstacle_id}/edit")
def edit_obstacle(request: Request, obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.update")
    values = {k: getattr(obstacle, k) for k in FIELDS}
    values["nationalities"] = ", ".join(obstacle.nationalities)
    values["links"] = "\n".join(obstacle.links)
    values["type"], values["severity"] = obstacle.type.value, obstacle.severity.value
    values["amount"] = "" if obstacle.amount is None else f"{obstacle.amount:g}"
    return _form(request, obstacle, values, {})


@router.post("/obstacles/{obstacle_id}/edit")
async def update_obstacle(request: Request, obstacle_id: uuid.UUID, db: DbSession,
                          principal: CurrentPrincipal) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.update")
    form = await request.form()
    data = {k: str(form.get(k, ""))[:6000] for k in FIELDS}
    try:
        service.update_obstacle(db, actor=principal, obstacle=obstacle, data=data)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        return _form(request, policy.access(db, principal, Obstacle, obstacle_id), data, errors, 422)
    return redirect(f"/obstacles/{obstacle_id}?notice=saved")


@router.post("/obstacles/{obstacle_id}/status")
def change_status(request: Request, obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  status: Annotated[str, Form(max_length=30)] = "",
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.update")
    try:
        service.set_status(db, actor=principal, obstacle=obstacle, status=status, note=note)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        obstacle = policy.access(db, principal, Obstacle, obstacle_id)
        return _obstacle(request, db, principal, obstacle, errors=errors, status=422)
    return redirect(f"/obstacles/{obstacle_id}?notice=" + ("released" if status == "resolved" else "status"))


@router.post("/obstacles/{obstacle_id}/evidence")
async def add_evidence(request: Request, obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                       note: Annotated[str, Form(max_length=6000)] = "", file: UploadFile | None = None) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.read")
    data = await file.read(service.MAX_FILE + 1) if file is not None and file.filename else None
    try:
        service.add_evidence(db, actor=principal, obstacle=obstacle, note=note,
                             filename=file.filename or "" if file else "", data=data)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        obstacle = policy.access(db, principal, Obstacle, obstacle_id)
        return _obstacle(request, db, principal, obstacle, errors=errors, status=422)
    return redirect(f"/obstacles/{obstacle_id}?notice=evidence#evidence")


@router.get("/obstacles/{obstacle_id}/evidence/{evidence_id}")
def evidence_file(obstacle_id: uuid.UUID, evidence_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.read")
    evidence = db.get(Evidence, evidence_id)
    if evidence is None or evidence.obstacle_id != obstacle.id or not evidence.data:
        raise policy.NotFound()
    name = evidence.filename.replace('"', "").replace("\r", "").replace("\n", "") or "evidence"
    return Response(evidence.data, media_type=evidence.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff"})


@router.post("/obstacles/{obstacle_id}/actions")
async def add_action(request: Request, obstacle_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.action")
    form = await request.form()
    data: dict[str, Any] = {k: str(form.get(k, ""))[:6000] for k in ("type", "on", "description", "outcome",
                                                                     "follow_up_on")}
    data["cosigners"] = [str(v) for v in form.getlist("cosigners")][:30]
    try:
        service.add_action(db, actor=principal, obstacle=obstacle, data=data)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        obstacle = policy.access(db, principal, Obstacle, obstacle_id)
        return _obstacle(request, db, principal, obstacle, errors=errors, status=422)
    return redirect(f"/obstacles/{obstacle_id}?notice=action#actions")


@router.post("/obstacles/{obstacle_id}/actions/{diplomatic_action_id}")
def update_action(request: Request, obstacle_id: uuid.UUID, diplomatic_action_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal, outcome: Annotated[str, Form(max_length=6000)] = "",
                  follow_up_on: Annotated[str, Form(max_length=20)] = "") -> Response:
    obstacle = policy.access(db, principal, Obstacle, obstacle_id, "obstacle.read")
    action = db.get(DiplomaticAction, diplomatic_action_id)
    if action is None or action.obstacle_id != obstacle.id:
        raise policy.NotFound()
    try:
        service.update_action(db, actor=principal, action=action, outcome=outcome, follow_up_on=follow_up_on)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        obstacle = policy.access(db, principal, Obstacle, obstacle_id)
        return _obstacle(request, db, principal, obstacle, errors=errors, status=422)
    return redirect(f"/obstacles/{obstacle_id}?notice=saved#actions")


@router.post("/cases/{case_id}/checklist/{item}/obstacle")
def block_case(request: Request, case_id: uuid.UUID, item: ChecklistItem, db: DbSession,
               principal: CurrentPrincipal, obstacle_id: Annotated[str, Form(max_length=40)] = "",
               note: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        service.block_case(db, actor=principal, case_id=case_id, item=item, obstacle_id=obstacle_id, note=note)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        access = access_case(db, principal, case_id)
        return render(request, "pathways/block_failed.html", {"case": access.case, "errors": errors}, status=422)
    return redirect(f"/cases/{case_id}?saved=1#checklist")
