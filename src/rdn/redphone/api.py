"""JSON API of the red phone: crises, paging, the room, chains, contact methods, inbound SMS."""

from __future__ import annotations

import json
import uuid

from fastapi import Query, Request, Response

from rdn.core import audit, policy
from rdn.core.errors import ValidationFailed
from rdn.core.events import sse_response
from rdn.core.identity import User
from rdn.core.modules import api_router
from rdn.core.pagination import paginate
from rdn.core.schemas import PageMeta, PageOut
from rdn.core.tenancy import Organization, OrgKind
from rdn.core.web import CurrentPrincipal, DbSession, problem
from rdn.redphone import chains, escalation, service
from rdn.redphone.models import Action, ContactMethod, Crisis, CrisisStatus, Decision, Page, Pledge, RunStatus
from rdn.redphone.policy import access_crisis
from rdn.redphone.schemas import (
    AckOut,
    ActionChange,
    ActionIn,
    ActionOut,
    ChainIn,
    ChainOut,
    ContactIn,
    ContactOut,
    CrisisChange,
    CrisisDeclare,
    CrisisOut,
    DecisionIn,
    DecisionOut,
    LevelOut,
    MessageIn,
    MessageOut,
    PagingOut,
    ParticipantIn,
    ParticipantOut,
    PledgeChange,
    PledgeIn,
    PledgeOut,
    VerifyIn,
)
from rdn.redphone.schemas import (
    PageOut as PageRowOut,
)

router = api_router(prefix="/api/v1", tags=["red phone"])


# Crises --------------------------------------------------------------------------------------------------------


@router.get("/crises", response_model=PageOut[CrisisOut], summary="Crises you take part in")
def list_crises(db: DbSession, principal: CurrentPrincipal, status: CrisisStatus | None = None,
                exercise: bool | None = None, page: int = Query(1, ge=1),
                per_page: int = Query(25, ge=1, le=100)) -> PageOut[CrisisOut]:
    policy.require(principal, "crisis.read")
    stmt = policy.scoped(principal, Crisis)
    if status is not None:
        stmt = stmt.where(Crisis.status == status)
    if exercise is not None:
        stmt = stmt.where(Crisis.exercise.is_(exercise))
    result = paginate(db, stmt.order_by(Crisis.declared_at.desc()), page=page, per_page=per_page)
    return PageOut(items=[CrisisOut.model_validate(c) for c in result.items], meta=PageMeta(**result.meta()))


@router.post("/crises", response_model=CrisisOut, status_code=201,
             summary="Declare a crisis (or start a drill): every member government is paged")
def declare(body: CrisisDeclare, db: DbSession, principal: CurrentPrincipal) -> Crisis:
    policy.require(principal, "crisis.declare")
    return service.declare(db, actor=principal, **body.model_dump())


@router.get("/crises/{crisis_id}", response_model=CrisisOut, summary="One crisis")
def get_crisis(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Crisis:
    return access_crisis(db, principal, crisis_id).crisis


@router.patch("/crises/{crisis_id}", response_model=CrisisOut,
              summary="Change status or activation level (raising the level pages again)")
def change_crisis(crisis_id: uuid.UUID, body: CrisisChange, db: DbSession, principal: CurrentPrincipal) -> Crisis:
    seat = access_crisis(db, principal, crisis_id, "crisis.manage")
    fields = body.model_dump(exclude_unset=True)
    return service.change(db, actor=principal, crisis=seat.crisis, status=fields.get("status"),
                          activation_level=fields.get("activation_level"), summary=fields.get("summary"),
                          target_places=fields.get("target_places", ...),
                          displaced_population=fields.get("displaced_population", ...))


@router.get("/crises/{crisis_id}/participants", response_model=list[ParticipantOut], summary="Who takes part")
def participants(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[ParticipantOut]:
    seat = access_crisis(db, principal, crisis_id)
    room = service.room(db, seat.crisis, messages=0)
    return [ParticipantOut(org_id=o.id, name=o.name, role=p.role) for p, o in room.participants]


@router.put("/crises/{crisis_id}/participants", response_model=ParticipantOut, summary="Seat an organization")
def seat_participant(crisis_id: uuid.UUID, body: ParticipantIn, db: DbSession,
                     principal: CurrentPrincipal) -> ParticipantOut:
    seat = access_crisis(db, principal, crisis_id, "crisis.participants")
    row = service.set_participant_role(db, actor=principal, crisis=seat.crisis, org_id=body.org_id, role=body.role)
    org = db.get(Organization, row.org_id)
    return ParticipantOut(org_id=row.org_id, name=org.name if org else "", role=row.role)


@router.get("/crises/{crisis_id}/paging", response_model=list[PagingOut],
            summary="Each government's paging: who acknowledged, or which level is being paged")
def paging(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[PagingOut]:
    seat = access_crisis(db, principal, crisis_id)
    room = service.room(db, seat.crisis, messages=0)
    return [PagingOut(org_id=g.org.id, org=g.org.name, status=g.run.status if g.run else None,
                      round=g.run.round if g.run else None, level=g.run.level if g.run else None,
                      level_name=g.level_name, acknowledged_by=g.acknowledged_by,
                      acknowledged_at=g.run.acknowledged_at if g.run else None,
                      acknowledged_via=g.run.acknowledged_via if g.run else None) for g in room.paging]


@router.post("/crises/{crisis_id}/acknowledge", response_model=AckOut,
             summary="Acknowledge for your government (you must be in its chain)")
def acknowledge_crisis(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> AckOut:
    seat = access_crisis(db, principal, crisis_id)
    run = escalation.current_run(db, seat.crisis.id, principal.org_id) if principal.org_id else None
    if run is None or not policy.can(principal, "page.acknowledge", run):
        raise policy.NotFound()
    return _ack(db, principal, run, None)


def _ack(db: DbSession, principal: CurrentPrincipal, run: object, page: Page | None) -> AckOut:
    user = db.get(User, principal.user_id)
    assert user is not None
    result, already = escalation.acknowledge(db, run=run, user=user, via="app", actor=principal,  # type: ignore[arg-type]
                                             page=page)
    by = db.get(User, result.acknowledged_by_user_id) if result.acknowledged_by_user_id else None
    return AckOut(org_id=result.org_id, acknowledged_by=by.full_name if by else "", already=already,
                  acknowledged_at=result.acknowledged_at)


@router.get("/crises/{crisis_id}/messages", response_model=list[MessageOut], summary="The room's messages")
def messages(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
             limit: int = Query(200, ge=1, le=1000)) -> list[MessageOut]:
    seat = access_crisis(db, principal, crisis_id)
    room = service.room(db, seat.crisis, messages=limit)
    return [MessageOut(id=m.id, client_id=m.client_id, kind=m.kind, author=name, organization=org, body=m.body,
                       created_at=m.created_at) for m, name, org in room.messages]


@router.post("/crises/{crisis_id}/messages", response_model=MessageOut, status_code=201,
             summary="Post to the room (the same client_id again returns the first message)")
def post_message(crisis_id: uuid.UUID, body: MessageIn, db: DbSession, principal: CurrentPrincipal) -> MessageOut:
    seat = access_crisis(db, principal, crisis_id, "crisis.message")
    m = service.post_message(db, actor=principal, crisis=seat.crisis, client_id=body.client_id, body=body.body)
    return MessageOut(id=m.id, client_id=m.client_id, kind=m.kind, author=principal.full_name,
                      organization=principal.org.name if principal.org else "", body=m.body, created_at=m.created_at)


@router.get("/crises/{crisis_id}/decisions", response_model=list[DecisionOut], summary="The decision log")
def decisions(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[Decision]:
    seat = access_crisis(db, principal, crisis_id)
    return service.room(db, seat.crisis, messages=0).decisions


@router.post("/crises/{crisis_id}/decisions", response_model=DecisionOut, status_code=201,
             summary="Record a decision (optionally superseding one)")
def record_decision(crisis_id: uuid.UUID, body: DecisionIn, db: DbSession, principal: CurrentPrincipal) -> Decision:
    seat = access_crisis(db, principal, crisis_id, "crisis.decide")
    old = None
    if body.supersedes is not None:
        old = db.get(Decision, body.supersedes)
        if old is None or old.crisis_id != seat.crisis.id:
            raise ValidationFailed("supersedes", "no such decision in this crisis")
    return service.record_decision(db, actor=principal, crisis=seat.crisis, text=body.text, supersedes=old)


@router.get("/crises/{crisis_id}/pledges", response_model=list[PledgeOut], summary="Pledges of places")
def pledges(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[Pledge]:
    seat = access_crisis(db, principal, crisis_id)
    return [p for p, _o in service.room(db, seat.crisis, messages=0).pledges]


@router.post("/crises/{crisis_id}/pledges", response_model=PledgeOut, status_code=201,
             summary="Pledge places (member governments)")
def make_pledge(crisis_id: uuid.UUID, body: PledgeIn, db: DbSession, principal: CurrentPrincipal) -> Pledge:
    seat = access_crisis(db, principal, crisis_id)
    policy.require(principal, "crisis.pledge", seat)
    return service.pledge(db, actor=principal, crisis=seat.crisis, **body.model_dump())


@router.patch("/pledges/{pledge_id}", response_model=PledgeOut, summary="Confirm, fulfil or withdraw your pledge")
def change_pledge(pledge_id: uuid.UUID, body: PledgeChange, db: DbSession, principal: CurrentPrincipal) -> Pledge:
    row = db.get(Pledge, pledge_id)
    if row is None:
        raise policy.NotFound()
    access_crisis(db, principal, row.crisis_id)
    policy.require(principal, "pledge.update", row)
    return service.change_pledge(db, actor=principal, row=row, status=body.status)


@router.get("/crises/{crisis_id}/actions", response_model=list[ActionOut], summary="Actions")
def actions(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[Action]:
    seat = access_crisis(db, principal, crisis_id)
    return [a for a, _o in service.room(db, seat.crisis, messages=0).actions]


@router.post("/crises/{crisis_id}/actions", response_model=ActionOut, status_code=201, summary="Assign an action")
def add_action(crisis_id: uuid.UUID, body: ActionIn, db: DbSession, principal: CurrentPrincipal) -> Action:
    seat = access_crisis(db, principal, crisis_id, "crisis.decide")
    return service.add_action(db, actor=principal, crisis=seat.crisis, title=body.title,
                              owner_org_id=body.owner_org_id, due_on=body.due_on)


@router.patch("/actions/{action_id}", response_model=ActionOut, summary="Move an action")
def change_action(action_id: uuid.UUID, body: ActionChange, db: DbSession, principal: CurrentPrincipal) -> Action:
    row = db.get(Action, action_id)
    if row is None:
        raise policy.NotFound()
    seat = access_crisis(db, principal, row.crisis_id)
    if not policy.can(principal, "action.update", (row, seat)):
        raise policy.NotFound()
    return service.change_action(db, actor=principal, action=row, status=body.status)


@router.get("/crises/{crisis_id}/sitrep", summary="The situation report, as Markdown",
            response_class=Response, responses={200: {"content": {"text/markdown": {}}}})
def sitrep(crisis_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    seat = access_crisis(db, principal, crisis_id)
    return Response(service.situation_report(db, seat.crisis), media_type="text/markdown; charset=utf-8")


@router.get("/crises/{crisis_id}/events", summary="The room's live events (Server-Sent Events)",
            response_class=Response, responses={200: {"content": {"text/event-stream": {}}}})
async def room_events(crisis_id: uuid.UUID, request: Request, principal: CurrentPrincipal) -> Response:
    from starlette.concurrency import run_in_threadpool

    from rdn import db as database

    def check() -> None:
        with database.new_session() as session:
            access_crisis(session, principal, crisis_id)

    await run_in_threadpool(check)
    return sse_response(request, [f"crisis:{crisis_id}"])


# Pages ---------------------------------------------------------------------------------------------------------


@router.get("/pages", response_model=list[PageRowOut], summary="Your pages, newest first")
def my_pages(db: DbSession, principal: CurrentPrincipal, limit: int = Query(50, ge=1, le=200)) -> list[Page]:
    policy.require(principal, "crisis.read")
    return list(db.scalars(policy.scoped(principal, Page).order_by(Page.created_at.desc()).limit(limit)))


@router.post("/pages/{page_id}/acknowledge", response_model=AckOut, summary="Acknowledge one of your pages")
def acknowledge_page(page_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> AckOut:
    page = policy.access(db, principal, Page, page_id)
    run = escalation.current_run(db, page.crisis_id, page.org_id)
    if run is None or not policy.can(principal, "page.acknowledge", run):
        raise policy.NotFound()
    return _ack(db, principal, run, page)


# Chains and contact methods ------------------------------------------------------------------------------------


def _chain_out(db: DbSession, org: Organization) -> ChainOut:
    chain = chains.chain_of(db, org.id)
    return ChainOut(org_id=org.id, repeat_count=chain.repeat_count if chain else 0,
                    levels=[LevelOut(name=level.name, wait_minutes=level.wait_minutes,
                                     people=[{"user_id": str(p.id), "name": p.full_name} for p in people])
                            for level, people in chains.levels_of(db, chain)],
                    warnings=[w.text for w in chains.chain_warnings(db, org.id)])


@router.get("/chains/{org_id}", response_model=ChainOut, summary="A government's contact chain, with its warnings")
def get_chain(org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> ChainOut:
    org = policy.access(db, principal, Organization, org_id, "chain.read")
    if OrgKind(org.kind) != OrgKind.government:
        raise policy.NotFound()
    return _chain_out(db, org)


@router.put("/chains/{org_id}", response_model=ChainOut, summary="Replace your government's contact chain")
def put_chain(org_id: uuid.UUID, body: ChainIn, db: DbSession, principal: CurrentPrincipal) -> ChainOut:
    org = policy.access(db, principal, Organization, org_id, "chain.manage")
    chains.set_chain(db, actor=principal, org=org, repeat_count=body.repeat_count,
                     levels=[chains.LevelSpec(lv.name, lv.wait_minutes, lv.user_ids) for lv in body.levels])
    return _chain_out(db, org)


@router.get("/contact-methods", response_model=list[ContactOut], summary="Your contact methods")
def list_methods(db: DbSession, principal: CurrentPrincipal) -> list[ContactMethod]:
    policy.require(principal, "account.read")
    return list(db.scalars(policy.scoped(principal, ContactMethod).order_by(ContactMethod.created_at)))


@router.post("/contact-methods", response_model=ContactOut, status_code=201,
             summary="Add a contact method (a verification code is sent through it)")
def add_method(body: ContactIn, db: DbSession, principal: CurrentPrincipal) -> ContactMethod:
    policy.require(principal, "contact.manage")
    return chains.add_method(db, principal=principal, kind=body.kind, address=body.address, label=body.label)


@router.post("/contact-methods/{method_id}/verify", response_model=ContactOut, summary="Verify with the code")
def verify_method(method_id: uuid.UUID, body: VerifyIn, db: DbSession, principal: CurrentPrincipal) -> ContactMethod:
    method = policy.access(db, principal, ContactMethod, method_id, "contact.manage")
    if not chains.verify_method(db, principal=principal, method=method, code=body.code):
        raise ValidationFailed("code", "this code is not right")
    return method


@router.delete("/contact-methods/{method_id}", status_code=204, summary="Remove a contact method")
def remove_method(method_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    method = policy.access(db, principal, ContactMethod, method_id, "contact.manage")
    chains.remove_method(db, principal=principal, method=method)
    return Response(status_code=204)


# Inbound SMS (from the provider; signed, no user) --------------------------------------------------------------


@router.post("/sms/inbound", summary="SMS replies and delivery receipts from the provider (signed)",
             status_code=200)
async def sms_inbound(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from rdn import db as database
    from rdn.redphone import sms

    body = await request.body()
    if not sms.verify_inbound(body, request.headers.get("x-rdn-signature")):
        return problem(request, 401, "unauthenticated", "Bad signature",
                       "X-RDN-Signature: missing or not the HMAC of the body")
    try:
        data = json.loads(body)
        assert isinstance(data, dict)
    except (ValueError, AssertionError):
        return problem(request, 422, "validation", "The request has invalid fields", "body: not a JSON object",
                       errors=[{"field": "body", "detail": "not a JSON object"}])

    def handle() -> dict[str, object]:
        with database.transaction() as session:
            if "reference" in data and "status" in data:
                return {"receipt": escalation.sms_receipt(session, reference=str(data["reference"])[:120],
                                                          status=str(data["status"]))}
            run = escalation.acknowledge_by_sms(session, sender=str(data.get("from", ""))[:40],
                                                text=str(data.get("text", ""))[:500])
            audit.record(session, action="sms.inbound", actor=audit.Actor("sms provider"),
                         details={"acknowledged": bool(run)})
            return {"acknowledged": run is not None and run.status == RunStatus.acknowledged}

    return Response(json.dumps(await run_in_threadpool(handle)), media_type="application/json")


@router.get("/drills", summary="Drill results: time to acknowledge per government", response_model=list[dict])
def drills(db: DbSession, principal: CurrentPrincipal) -> list[dict[str, object]]:
    from rdn.redphone.drills import drill_results

    policy.require(principal, "drill.report")
    return [r.as_dict() for r in drill_results(db)]

