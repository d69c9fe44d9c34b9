"""Pages of the red phone: crises and the live crisis room, pages to acknowledge, chains, contact methods,
drills, and the public acknowledgement link sent in emails and SMS."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rdn import db as database
from rdn.core import clock, i18n, policy
from rdn.core.audit import Actor
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.events import sse_response
from rdn.core.identity import Principal, User
from rdn.core.modules import page_router
from rdn.core.pagination import paginate
from rdn.core.tenancy import Organization, OrgKind
from rdn.core.web import CurrentPrincipal, DbSession, get_db, is_htmx, redirect, render, still_entitled
from rdn.redphone import chains, drills, escalation, service
from rdn.redphone.models import (
    Action,
    ActivationLevel,
    ContactKind,
    ContactMethod,
    Crisis,
    CrisisStatus,
    Decision,
    Page,
    PageStatus,
    ParticipantRole,
    Pledge,
    RunStatus,
)
from rdn.redphone.policy import Seat, access_crisis

router = page_router()

SECTIONS = ("header", "paging", "messages", "decisions", "pledges", "actions")
PAGE_NAMES = {PageStatus.pending: i18n.N_("Waiting to be sent"), PageStatus.sent: i18n.N_("Sent"),
              PageStatus.delivered: i18n.N_("Delivered"), PageStatus.acknowledged: i18n.N_("Acknowledged"),
              PageStatus.timed_out: i18n.N_("No answer in time"), PageStatus.failed: i18n.N_("Failed")}


def _rollback_errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _labels() -> dict[str, Any]:
    return {
        "level": {k.value: i18n.gettext(v) for k, v in escalation.LEVEL_NAMES.items()},
        "status": {k.value: i18n.gettext(v) for k, v in service.STATUS_NAMES.items()},
        "role": {k.value: i18n.gettext(v) for k, v in service.ROLE_NAMES.items()},
        "pledge": {k.value: i18n.gettext(v) for k, v in service.PLEDGE_NAMES.items()},
        "action": {k.value: i18n.gettext(v) for k, v in service.ACTION_NAMES.items()},
        "kind": {k.value: i18n.gettext(v) for k, v in chains.KIND_LABELS.items()},
        "page": {k.value: i18n.gettext(v) for k, v in PAGE_NAMES.items()},
    }


# Crises --------------------------------------------------------------------------------------------------------


@router.get("/crises")
def crises(request: Request, db: DbSession, principal: CurrentPrincipal,
           show: Annotated[str, Query(max_length=10)] = "open", page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "crisis.read")
    stmt = policy.scoped(principal, Crisis)
    if show == "drills":
        stmt = stmt.where(Crisis.exercise.is_(True))
    elif show == "closed":
        stmt = stmt.where(Crisis.exercise.is_(False), Crisis.status == CrisisStatus.closed)
    else:
        show = "open"
        stmt = stmt.where(Crisis.status != CrisisStatus.closed)
    result = paginate(db, stmt.order_by(Crisis.declared_at.desc()), page=page)
    return render(request, "redphone/crises.html", {
        "page": result, "show": show, "labels": _labels(),
        "overview": service.overview(db, [c.id for c in result.items]),
        "can_declare": policy.can(principal, "crisis.declare"),
    })


def _declare_context(db: Session, values: dict[str, Any], errors: dict[str, str], drill: bool) -> dict[str, Any]:
    governments = db.scalars(select(Organization).where(Organization.kind == OrgKind.government,
                                                        Organization.active.is_(True)).order_by(Organization.name))
    return {"values": values, "errors": errors, "drill": drill, "levels": list(ActivationLevel),
            "labels": _labels(), "governments": list(governments),
            "countries": i18n.countries(i18n.locale_var.get())}


@router.get("/crises/new")
def declare_form(request: Request, db: DbSession, principal: CurrentPrincipal,
                 drill: Annotated[bool, Query()] = False) -> Response:
    policy.require(principal, "crisis.declare")
    return render(request, "redphone/declare.html",
                  _declare_context(db, {"activation_level": "information_sharing"}, {}, drill))


@router.post("/crises/new")
def declare(
    request: Request, db: DbSession, principal: CurrentPrincipal,
    title: Annotated[str, Form(max_length=400)] = "", summary: Annotated[str, Form(max_length=10000)] = "",
    region: Annotated[str, Form(max_length=240)] = "", countries: Annotated[list[str] | None, Form()] = None,
    displaced_population: Annotated[str, Form(max_length=12)] = "",
    target_places: Annotated[str, Form(max_length=12)] = "",
    activation_level: Annotated[str, Form(max_length=40)] = "monitoring",
    drill: Annotated[str, Form(max_length=5)] = "", governments: Annotated[list[str] | None, Form()] = None,
) -> Response:
    policy.require(principal, "crisis.declare")
    is_drill = drill == "on"
    values = {"title": title, "summary": summary, "region": region, "countries": countries or [],
              "displaced_population": displaced_population, "target_places": target_places,
              "activation_level": activation_level, "governments": governments or []}
    try:
        numbers = {}
        for name, raw in (("displaced_population", displaced_population), ("target_places", target_places)):
            raw = raw.replace(",", "").replace(" ", "").strip()
            if raw and not raw.isdigit():
                raise ValidationFailed(name, i18n.gettext("a whole number"))
            numbers[name] = int(raw) if raw else None
        government_ids = None
        if is_drill:
            try:
                government_ids = [uuid.UUID(g) for g in governments or []]
            except ValueError:
                raise ValidationFailed("governments", i18n.gettext("choose at least one member government")) \
                    from None
            if not government_ids:
                raise ValidationFailed("governments", i18n.gettext("choose at least one member government"))
        crisis = service.declare(db, actor=principal, title=title, summary=summary, region=region,
                                 countries=countries, activation_level=activation_level, exercise=is_drill,
                                 government_ids=government_ids, **numbers)
    except ValidationFailed as exc:
        return render(request, "redphone/declare.html",
                      _declare_context(db, values, _rollback_errors(db, exc), is_drill), status=422)
    return redirect(f"/crises/{crisis.id}")


def _room_context(db: Session, principal: Principal, seat: Seat) -> dict[str, Any]:
    room = service.room(db, seat.crisis)
    run = escalation.current_run(db, seat.crisis.id, principal.org_id) if principal.org_id else None
    can_ack = (run is not None and RunStatus(run.status) in (RunStatus.active, RunStatus.exhausted)
               and policy.can(principal, "page.acknowledge", run))
    return {
        "crisis": seat.crisis, "room": room, "seat": seat, "labels": _labels(),
        "my_run": run, "can_ack": can_ack, "client_id": uuid.uuid4().hex,
        "can_manage": policy.can(principal, "crisis.manage", seat),
        "can_message": policy.can(principal, "crisis.message", seat),
        "can_decide": policy.can(principal, "crisis.decide", seat),
        "can_pledge": policy.can(principal, "crisis.pledge", seat),
        "can_seat": policy.can(principal, "crisis.participants", seat),
        "can_update_pledge": lambda pledge: policy.can(principal, "pledge.update", pledge),
        "can_update_action": lambda action: policy.can(principal, "action.update", (action, seat)),
        "paging_text": service.paging_text, "today": clock.now().date(),
        "statuses": [s for s in CrisisStatus], "levels": list(ActivationLevel),
        "roles": list(ParticipantRole),
        "next_statuses": sorted(service.CRISIS_TRANSITIONS[CrisisStatus(seat.crisis.status)],
                                key=lambda s: list(CrisisStatus).index(s)),
        "participant_orgs": [o for o in service.participant_orgs(db)],
        "pledge_next": {k.value: sorted(v, key=lambda s: list(type(k)).index(s))
                        for k, v in service.PLEDGE_TRANSITIONS.items()},
        "action_next": {k.value: sorted(v, key=lambda s: list(type(k)).index(s))
                        for k, v in service.ACTION_TRANSITIONS.items()},
        "errors": {},
    }


@router.get("/crises/{crisis_id}")
def crisis_room(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    seat = access_crisis(db, principal, crisis_id)
    return render(request, "redphone/room.html", _room_context(db, principal, seat))


@router.get("/crises/{crisis_id}/sections/{section}")
def room_section(request: Request, crisis_id: uuid.UUID, section: str, db: DbSession,
                 principal: CurrentPrincipal) -> Response:
    """One part of the room, re-drawn when its live event arrives."""
    if section not in SECTIONS:
        raise policy.NotFound()
    seat = access_crisis(db, principal, crisis_id)
    return render(request, f"redphone/room_{section}.html", _room_context(db, principal, seat))


@router.get("/crises/{crisis_id}/events")
async def room_events(request: Request, crisis_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    def check(p: Principal) -> bool:
        with database.new_session() as session:
            try:
                access_crisis(session, p, crisis_id)
            except policy.NotFound:
                return False
            return True

    if not await run_in_threadpool(check, principal):
        raise policy.NotFound()
    return sse_response(request, [f"crisis:{crisis_id}"], recheck=still_entitled(request, check))


def _back(request: Request, crisis_id: uuid.UUID, anchor: str, fragment: str | None = None,
          context: dict[str, Any] | None = None) -> Response:
    """After a form: htmx gets the fresh fragment; a plain form goes back to the room."""
    if is_htmx(request) and fragment and context is not None:
        return render(request, fragment, context)
    return redirect(f"/crises/{crisis_id}#{anchor}")


@router.post("/crises/{crisis_id}/messages")
def post_message(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                 body: Annotated[str, Form(max_length=8000)] = "",
                 client_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id, "crisis.message")
    try:
        service.post_message(db, actor=principal, crisis=seat.crisis, client_id=client_id, body=body)
    except (ValidationFailed, Conflict) as exc:
        ctx = _room_context(db, principal, seat)
        ctx["errors"] = _rollback_errors(db, exc)
        ctx["draft"] = body
        return render(request, "redphone/room_compose.html" if is_htmx(request) else "redphone/room.html", ctx,
                      status=422)
    return _back(request, crisis_id, "messages", "redphone/room_compose.html", _room_context(db, principal, seat))


@router.post("/crises/{crisis_id}/decisions")
def record_decision(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                    text: Annotated[str, Form(max_length=8000)] = "",
                    supersedes: Annotated[str, Form(max_length=40)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id, "crisis.decide")
    old = None
    if supersedes:
        try:
            old = db.get(Decision, uuid.UUID(supersedes))
        except ValueError:
            old = None
        if old is None or old.crisis_id != seat.crisis.id:
            raise policy.NotFound()
    try:
        service.record_decision(db, actor=principal, crisis=seat.crisis, text=text, supersedes=old)
    except (ValidationFailed, Conflict) as exc:
        ctx = _room_context(db, principal, seat)
        ctx["errors"] = _rollback_errors(db, exc)
        return render(request, "redphone/room.html", ctx, status=422)
    return _back(request, crisis_id, "decisions")


@router.post("/crises/{crisis_id}/pledges")
def make_pledge(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                places: Annotated[str, Form(max_length=12)] = "", population: Annotated[str, Form(max_length=240)] = "",
                time_frame: Annotated[str, Form(max_length=240)] = "",
                note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id)
    policy.require(principal, "crisis.pledge", seat)
    try:
        raw = places.replace(",", "").replace(" ", "").strip()
        if not raw.isdigit():
            raise ValidationFailed("places", i18n.gettext("a whole number"))
        service.pledge(db, actor=principal, crisis=seat.crisis, places=int(raw), population=population,
                       time_frame=time_frame, note=note)
    except (ValidationFailed, Conflict) as exc:
        ctx = _room_context(db, principal, seat)
        ctx["errors"] = _rollback_errors(db, exc)
        ctx["pledge_values"] = {"places": places, "population": population, "time_frame": time_frame}
        return render(request, "redphone/room_pledge_form.html" if is_htmx(request) else "redphone/room.html", ctx,
                      status=422)
    return _back(request, crisis_id, "pledges", "redphone/room_pledge_form.html", _room_context(db, principal, seat))


@router.post("/crises/{crisis_id}/pledges/{pledge_id}/status")
def change_pledge(request: Request, crisis_id: uuid.UUID, pledge_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal, status: Annotated[str, Form(max_length=20)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id)
    row = db.get(Pledge, pledge_id)
    if row is None or row.crisis_id != seat.crisis.id or not policy.can(principal, "pledge.update", row):
        raise policy.NotFound()
    service.change_pledge(db, actor=principal, row=row, status=status)
    return _back(request, crisis_id, "pledges")


@router.post("/crises/{crisis_id}/actions")
def add_action(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
               title: Annotated[str, Form(max_length=600)] = "", owner_org_id: Annotated[str, Form(max_length=40)] = "",
               due_on: Annotated[str, Form(max_length=10)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id, "crisis.decide")
    try:
        try:
            owner = uuid.UUID(owner_org_id)
        except ValueError:
            raise ValidationFailed("owner_org_id", i18n.gettext("the owner must take part in the crisis")) from None
        try:
            due = date.fromisoformat(due_on)
        except ValueError:
            raise ValidationFailed("due_on", i18n.gettext("a date such as 2026-12-31")) from None
        service.add_action(db, actor=principal, crisis=seat.crisis, title=title, owner_org_id=owner, due_on=due)
    except (ValidationFailed, Conflict) as exc:
        ctx = _room_context(db, principal, seat)
        ctx["errors"] = _rollback_errors(db, exc)
        return render(request, "redphone/room.html", ctx, status=422)
    return _back(request, crisis_id, "actions")


@router.post("/crises/{crisis_id}/actions/{action_id}/status")
def change_action(request: Request, crisis_id: uuid.UUID, action_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal, status: Annotated[str, Form(max_length=20)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id)
    row = db.get(Action, action_id)
    if row is None or row.crisis_id != seat.crisis.id or not policy.can(principal, "action.update", (row, seat)):
        raise policy.NotFound()
    service.change_action(db, actor=principal, action=row, status=status)
    return _back(request, crisis_id, "actions")


@router.post("/crises/{crisis_id}/status")
def change_crisis(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  status: Annotated[str, Form(max_length=20)] = "",
                  activation_level: Annotated[str, Form(max_length=40)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id, "crisis.manage")
    service.change(db, actor=principal, crisis=seat.crisis, status=status or None,
                   activation_level=activation_level or None)
    return redirect(f"/crises/{crisis_id}")


@router.post("/crises/{crisis_id}/participants")
def seat_participant(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     org_id: Annotated[str, Form(max_length=40)] = "",
                     role: Annotated[str, Form(max_length=20)] = "") -> Response:
    seat = access_crisis(db, principal, crisis_id, "crisis.participants")
    try:
        target = uuid.UUID(org_id)
    except ValueError:
        raise ValidationFailed("org_id", i18n.gettext("is not an organization")) from None
    service.set_participant_role(db, actor=principal, crisis=seat.crisis, org_id=target, role=role)
    return redirect(f"/crises/{crisis_id}#participants")


@router.post("/crises/{crisis_id}/acknowledge")
def acknowledge_crisis(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    seat = access_crisis(db, principal, crisis_id)
    run = escalation.current_run(db, seat.crisis.id, principal.org_id) if principal.org_id else None
    if run is None or not policy.can(principal, "page.acknowledge", run):
        raise policy.NotFound()
    user = db.get(User, principal.user_id)
    assert user is not None
    escalation.acknowledge(db, run=run, user=user, via="app", actor=principal)
    return redirect(f"/crises/{crisis_id}")


@router.get("/crises/{crisis_id}/sitrep")
def sitrep(request: Request, crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    seat = access_crisis(db, principal, crisis_id)
    ctx = _room_context(db, principal, seat)
    ctx["markdown"] = service.situation_report(db, seat.crisis)
    return render(request, "redphone/sitrep.html", ctx)


@router.get("/crises/{crisis_id}/sitrep.md")
def sitrep_markdown(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    seat = access_crisis(db, principal, crisis_id)
    filename = f"sitrep-{seat.crisis.reference}.md"
    return Response(service.situation_report(db, seat.crisis), media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# Pages to acknowledge ------------------------------------------------------------------------------------------


def my_open_pages(db: Session, principal: Principal) -> list[tuple[Page, Crisis, Organization]]:
    rows = db.execute(
        select(Page, Crisis, Organization).join(Crisis, Crisis.id == Page.crisis_id)
        .join(Organization, Organization.id == Page.org_id)
        .where(Page.user_id == principal.user_id, Crisis.status != CrisisStatus.closed)
        .order_by(Page.created_at.desc()).limit(50)
    ).all()
    seen, result = set(), []
    for page, crisis, org in rows:
        run = escalation.current_run(db, crisis.id, org.id)
        if (crisis.id, org.id) in seen or run is None or RunStatus(run.status) not in (RunStatus.active,
                                                                                         RunStatus.exhausted):
            continue
        seen.add((crisis.id, org.id))
        result.append((page, crisis, org))
    return result


@router.get("/pages")
def pages(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "crisis.read")
    recent = db.execute(
        select(Page, Crisis).join(Crisis, Crisis.id == Page.crisis_id).where(Page.user_id == principal.user_id)
        .order_by(Page.created_at.desc()).limit(30)
    ).all()
    return render(request, "redphone/pages.html", {"open": my_open_pages(db, principal), "recent": recent,
                                                   "labels": _labels(), "PageStatus": PageStatus})


@router.post("/pages/{page_id}/acknowledge")
def acknowledge_page(request: Request, page_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     next: Annotated[str, Form(max_length=200)] = "") -> Response:
    page = policy.access(db, principal, Page, page_id)
    run = escalation.current_run(db, page.crisis_id, page.org_id)
    if run is None or not policy.can(principal, "page.acknowledge", run):
        raise policy.NotFound()
    user = db.get(User, principal.user_id)
    assert user is not None
    escalation.acknowledge(db, run=run, user=user, via="app", actor=principal, page=page)
    return redirect(f"/crises/{page.crisis_id}" if next != "pages" else "/pages")


# The signed link of an email or SMS (no sign-in) ---------------------------------------------------------------


def _page_for_token(db: Session, token: str) -> Page:
    page_id = escalation.page_from_token(token)
    page = db.get(Page, page_id) if page_id else None
    if page is None:
        raise policy.NotFound()
    return page


@router.get("/ack/{token}")
def ack_form(request: Request, token: str, db: DbSession) -> Response:
    """Shows the page and a button: opening a link changes nothing (mail scanners open links too)."""
    page = _page_for_token(db, token)
    crisis, org = db.get(Crisis, page.crisis_id), db.get(Organization, page.org_id)
    run = escalation.current_run(db, page.crisis_id, page.org_id)
    by = db.get(User, run.acknowledged_by_user_id) if run and run.acknowledged_by_user_id else None
    return render(request, "redphone/ack.html", {"crisis": crisis, "org": org, "run": run, "by": by,
                                                 "token": token, "labels": _labels(), "done": False})


@router.post("/ack/{token}")
def ack(request: Request, token: str, db: DbSession) -> Response:
    page = _page_for_token(db, token)
    crisis, org = db.get(Crisis, page.crisis_id), db.get(Organization, page.org_id)
    run = escalation.current_run(db, page.crisis_id, page.org_id)
    user = db.get(User, page.user_id)
    if run is None or user is None or crisis is None:
        raise policy.NotFound()
    if CrisisStatus(crisis.status) == CrisisStatus.closed:
        return render(request, "redphone/ack.html", {"crisis": crisis, "org": org, "run": run, "by": None,
                                                     "token": token, "labels": _labels(), "done": False}, status=409)
    run, already = escalation.acknowledge(db, run=run, user=user, via="link", page=page,
                                          actor=Actor(f"{user.email} (signed link)", user.id, page.org_id))
    by = db.get(User, run.acknowledged_by_user_id) if run.acknowledged_by_user_id else None
    return render(request, "redphone/ack.html", {"crisis": crisis, "org": org, "run": run, "by": by,
                                                 "token": token, "labels": _labels(), "done": not already})


# Contact chains and methods ------------------------------------------------------------------------------------


@router.get("/chains")
def chains_index(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "chain.read")
    if principal.org_kind == OrgKind.government:
        return redirect(f"/chains/{principal.org_id}")
    governments = db.scalars(select(Organization).where(Organization.kind == OrgKind.government,
                                                        Organization.active.is_(True)).order_by(Organization.name))
    rows = [(org, chains.chain_warnings(db, org.id)) for org in governments]
    return render(request, "redphone/chains.html", {"rows": rows})


def _chain_context(db: Session, principal: Principal, org: Organization) -> dict[str, Any]:
    chain = chains.chain_of(db, org.id)
    return {"org": org, "chain": chain, "levels": chains.levels_of(db, chain),
            "warnings": chains.chain_warnings(db, org.id), "staff": chains.eligible_people(db, org.id),
            "can_manage": policy.can(principal, "chain.manage", org), "errors": {},
            "blank_levels": max(0, 3 - len(chains.levels_of(db, chain)))}


@router.get("/chains/{org_id}")
def chain_page(request: Request, org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    org = policy.access(db, principal, Organization, org_id, "chain.read")
    if OrgKind(org.kind) != OrgKind.government:
        raise policy.NotFound()
    return render(request, "redphone/chain.html", _chain_context(db, principal, org))


@router.post("/chains/{org_id}")
async def save_chain(request: Request, org_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    """Levels come as level-N-name, level-N-wait and level-N-people (several values)."""
    form = await request.form()

    def save() -> Response:
        session = get_db(request)  # the request's unit of work (committed at its end)
        org = policy.access(session, principal, Organization, org_id, "chain.manage")
        levels = []
        for n in range(chains.MAX_LEVELS):
            name = str(form.get(f"level-{n}-name") or "").strip()
            people = [str(v) for v in form.getlist(f"level-{n}-people")]
            if not name and not people:
                continue
            try:
                wait = int(str(form.get(f"level-{n}-wait") or "5"))
                user_ids = [uuid.UUID(p) for p in people]
            except ValueError:
                user_ids, wait = [], 0
            levels.append(chains.LevelSpec(name, wait, user_ids))
        try:
            repeat = int(str(form.get("repeat_count") or "1"))
            chains.set_chain(session, actor=principal, org=org, levels=levels, repeat_count=repeat)
        except ValueError:
            errors = {"repeat_count": i18n.gettext("a whole number")}
        except ValidationFailed as exc:
            errors = _rollback_errors(session, exc)
        else:
            return redirect(f"/chains/{org_id}?saved=1")
        ctx = _chain_context(session, principal, org)
        ctx["errors"] = errors
        return render(request, "redphone/chain.html", ctx, status=422)

    return await run_in_threadpool(save)


@router.get("/contact")
def contact(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "contact.manage")
    methods = db.scalars(policy.scoped(principal, ContactMethod).order_by(ContactMethod.created_at)).all()
    return render(request, "redphone/contact.html", {"methods": methods, "labels": _labels(), "errors": {},
                                                     "kinds": list(ContactKind), "values": {}})


@router.post("/contact")
def add_contact(request: Request, db: DbSession, principal: CurrentPrincipal,
                kind: Annotated[str, Form(max_length=20)] = "", address: Annotated[str, Form(max_length=320)] = "",
                label: Annotated[str, Form(max_length=160)] = "") -> Response:
    policy.require(principal, "contact.manage")
    try:
        chains.add_method(db, principal=principal, kind=kind, address=address, label=label)
    except ValidationFailed as exc:
        errors = _rollback_errors(db, exc)
        methods = db.scalars(policy.scoped(principal, ContactMethod).order_by(ContactMethod.created_at)).all()
        return render(request, "redphone/contact.html", {
            "methods": methods, "labels": _labels(), "errors": errors, "kinds": list(ContactKind),
            "values": {"kind": kind, "address": address, "label": label}}, status=422)
    return redirect("/contact?sent=1")


@router.post("/contact/{method_id}/verify")
def verify_contact(request: Request, method_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   code: Annotated[str, Form(max_length=12)] = "") -> Response:
    method = policy.access(db, principal, ContactMethod, method_id, "contact.manage")
    try:
        ok = chains.verify_method(db, principal=principal, method=method, code=code)
    except ValidationFailed as exc:
        db.commit()  # the attempt counts
        return redirect(f"/contact?error={exc.errors[0].field if exc.errors else 'code'}&method={method_id}")
    if not ok:
        db.commit()
        return redirect(f"/contact?error=wrong&method={method_id}")
    return redirect("/contact?verified=1")


@router.post("/contact/{method_id}/resend")
def resend_contact(request: Request, method_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    method = policy.access(db, principal, ContactMethod, method_id, "contact.manage")
    if method.verified_at is None:
        chains.send_verification(db, method=method)
    return redirect("/contact?sent=1")


@router.post("/contact/{method_id}/remove")
def remove_contact(request: Request, method_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    method = policy.access(db, principal, ContactMethod, method_id, "contact.manage")
    chains.remove_method(db, principal=principal, method=method)
    return redirect("/contact?removed=1")


# Drills --------------------------------------------------------------------------------------------------------


@router.get("/drills")
def drill_report(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "drill.report")
    results = drills.drill_results(db)
    return render(request, "redphone/drills.html", {
        "results": results, "chart": drills.trend_chart(results),
        "can_start": policy.can(principal, "crisis.declare"),
    })
