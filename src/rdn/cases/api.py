"""JSON API of cases and referrals.

Fields of sections you may not see are absent. Sealed sections are opened by ``GET /cases/{id}/sensitive``
only from a browser session that confirmed its TOTP code in the last ten minutes: API tokens never read
them. Every case opened through ``GET /cases/{id}`` is recorded in the case's access log.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from rdn.cases import exports, imports, search, service, sharing, views
from rdn.cases.models import (
    LIVE_REFERRAL,
    Agreement,
    AgreementStatus,
    ChecklistItem,
    Consent,
    Referral,
    ReferralStatus,
    Section,
    Transfer,
)
from rdn.cases.pages import MAX_UPLOAD, streamed
from rdn.cases.policy import access_case
from rdn.cases.schemas import (
    AgreementDecision,
    AgreementIn,
    AgreementOut,
    CaseChange,
    CaseCreated,
    CaseIn,
    CaseOut,
    CaseSummaryOut,
    ChecklistIn,
    ChecklistOut,
    ConfidentialIn,
    ConsentIn,
    ConsentOut,
    LinkIn,
    LinkOut,
    LogEntryOut,
    MemberChange,
    MemberIn,
    MemberOut,
    MoveIn,
    PrincipalIn,
    ReferIn,
    ReferralChange,
    ReferralMessageIn,
    ReferralMessageOut,
    ReferralOut,
    RoundOut,
    SensitiveIn,
    TransferDecision,
    TransferIn,
    TransferOut,
    WithdrawIn,
)
from rdn.core import policy
from rdn.core.errors import ValidationFailed
from rdn.core.modules import api_router
from rdn.core.pagination import paginate
from rdn.core.schemas import PageMeta, PageOut
from rdn.core.web import CurrentPrincipal, DbSession, get_db

router = api_router(prefix="/api/v1", tags=["cases"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_OMIT = {"response_model_exclude_unset": True}


def _filters(q: str, stage: list[str] | None, priority: str, category: str, nationality: str,
             current_country: str, overdue: bool | None, referred_to: uuid.UUID | None, relation: str,
             sort: str) -> search.CaseFilters:
    return search.CaseFilters(q=q, stage=stage or [], priority=priority, category=category, nationality=nationality,
                              current_country=current_country, overdue=overdue, referred_to=referred_to,
                              relation=relation, sort=sort)


def _case_out(db: DbSession, principal: CurrentPrincipal, case_id: uuid.UUID) -> dict[str, Any]:
    return views.case_view(db, principal, access_case(db, principal, case_id))


# Cases ---------------------------------------------------------------------------------------------------------


@router.get("/cases", response_model=PageOut[CaseSummaryOut], summary="Cases you may see, filtered and searched",
            response_model_exclude_none=False)
def list_cases(db: DbSession, principal: CurrentPrincipal,
               q: str = Query("", max_length=200, description="Names (any spelling) or a case number"),
               stage: list[str] | None = Query(None), priority: str = "", category: str = "", nationality: str = "",
               current_country: str = "", overdue: bool | None = None, referred_to: uuid.UUID | None = None,
               relation: str = Query("", pattern="^(|owned|referred)$"),
               sort: str = Query("", pattern="^(|" + "|".join(search.SORTS) + ")$"),
               page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)) -> Response:
    filters = _filters(q, stage, priority, category, nationality, current_country, overdue, referred_to, relation,
                       sort)
    result = search.list_cases(db, principal, filters, page=page, per_page=per_page)
    out = _CASE_PAGE.validate_python({"items": views.list_items(db, principal, result.items), "meta": result.meta()})
    # Validated once here and written as it is (the busiest read of the API: no second pass by the framework).
    return Response(_CASE_PAGE.dump_json(out), media_type="application/json")


_CASE_PAGE = TypeAdapter(PageOut[CaseSummaryOut])


@router.post("/cases", response_model=CaseCreated, status_code=201,
             summary="Open a case (warns about people who look like someone on a case you can see)")
def create_case(body: CaseIn, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    data = body.model_dump()
    members = data.pop("members")
    ties = data.pop("family_ties")
    prefs = data.pop("preferences")
    note = data.pop("note")
    similar = service.similar_people(db, principal, [
        {**m, "birth_year": int(m["date_of_birth"][:4])} for m in members])
    case = service.create_case(db, actor=principal, case=data, members=members, family_ties=ties,
                               preferences=prefs, note=note)
    access = access_case(db, principal, case.id)
    return {"case": views.case_view(db, principal, access), "similar": [s.__dict__ for s in similar]}


@router.get("/cases/export", summary="Export the cases you may see (JSON, CSV with HXL hashtags, or XLSX)",
            responses={200: {"content": {"application/json": {}, "text/csv": {}, XLSX: {}}}})
def export_cases(db: DbSession, principal: CurrentPrincipal,
                 format: str = Query("json", pattern="^(json|csv|xlsx)$"),
                 q: str = Query("", max_length=200), stage: list[str] | None = Query(None), priority: str = "",
                 category: str = "", nationality: str = "", current_country: str = "", overdue: bool | None = None,
                 referred_to: uuid.UUID | None = None, relation: str = Query("", pattern="^(|owned|referred)$"),
                 sort: str = Query("", pattern="^(|" + "|".join(search.SORTS) + ")$")) -> Response:
    """Only what you may see of each case; sealed sections never (they need a browser session and a step-up).
    Every exported case gets an entry in its access log."""
    filters = _filters(q, stage, priority, category, nationality, current_country, overdue, referred_to, relation,
                       sort)
    policy.require(principal, "case.export")
    return streamed(format, lambda out: exports.export(db, actor=principal, filters=filters, fmt=format, out=out))


@router.post("/cases/import", summary="Import households from a CSV or XLSX file: all or nothing",
             responses={422: {"description": "The file has errors (each names its row and column): nothing imported"}})
async def import_cases(request: Request, principal: CurrentPrincipal, file: UploadFile,
                       dry_run: bool = Form(False)) -> Response:
    data = await file.read(MAX_UPLOAD + 1)
    filename = file.filename or "upload"

    def run() -> Response:
        db = get_db(request)  # the request's unit of work (committed at its end)
        if len(data) > MAX_UPLOAD:
            raise ValidationFailed("file", f"larger than {MAX_UPLOAD // 1024 // 1024} MB: split it")
        report = imports.import_file(db, actor=principal, data=data, filename=filename, dry_run=dry_run)
        body = {"ok": report.ok, "imported": report.imported, "dry_run": report.dry_run, "cases": report.cases,
                "people": report.people, "import_id": str(report.import_id) if report.import_id else None,
                "numbers": list(report.numbers) if report.numbers else None,
                "errors": [{"field": e.field, "detail": e.message} for e in report.errors],
                "more_errors": report.more_errors,
                "warnings": [{"field": w.field, "detail": w.message} for w in report.warnings],
                "more_warnings": report.more_warnings}
        if not report.ok:
            db.rollback()
        return JSONResponse(body, status_code=200 if report.ok else 422)

    return await run_in_threadpool(run)


@router.get("/cases/{case_id}", response_model=CaseOut, summary="One case, as far as you may see it", **_OMIT)
def get_case(case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id)
    service.record_view(db, actor=principal, access=access, via="api")
    return views.case_view(db, principal, access)


@router.patch("/cases/{case_id}", response_model=CaseOut, summary="Change location, categories, priorities, "
              "family ties or preferences", **_OMIT)
def change_case(case_id: uuid.UUID, body: CaseChange, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.update")
    changes = body.model_dump(exclude_unset=True)
    version = changes.pop("version", None)
    service.update_case(db, actor=principal, access=access, changes=changes, version=version)
    return _case_out(db, principal, case_id)


@router.post("/cases/{case_id}/members", response_model=MemberOut, status_code=201, summary="Add a person",
             **_OMIT)
def add_member(case_id: uuid.UUID, body: MemberIn, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.update")
    member = service.add_member(db, actor=principal, access=access, data=body.model_dump())
    return views.member_view(member, access.sections)


@router.patch("/cases/{case_id}/members/{member_id}", response_model=MemberOut, summary="Change a person",
              **_OMIT)
def change_member(case_id: uuid.UUID, member_id: uuid.UUID, body: MemberChange, db: DbSession,
                  principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.update")
    member = service.get_member(db, access, member_id)
    changes = body.model_dump(exclude_unset=True)
    version = changes.pop("version", None)
    service.update_member(db, actor=principal, access=access, member=member, changes=changes, version=version)
    return views.member_view(member, access.sections)


@router.delete("/cases/{case_id}/members/{member_id}", status_code=204, summary="Remove a person (not the principal)")
def remove_member(case_id: uuid.UUID, member_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> None:
    access = access_case(db, principal, case_id, "case.update")
    service.remove_member(db, actor=principal, access=access, member=service.get_member(db, access, member_id))


@router.post("/cases/{case_id}/members/{member_id}/principal", response_model=MemberOut,
             summary="Make this person the principal applicant", **_OMIT)
def make_principal(case_id: uuid.UUID, member_id: uuid.UUID, body: PrincipalIn, db: DbSession,
                   principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.update")
    member = service.make_principal(db, actor=principal, access=access,
                                    member=service.get_member(db, access, member_id),
                                    previous_becomes=body.previous_becomes, version=body.version)
    return views.member_view(member, access.sections)


@router.post("/cases/{case_id}/links", response_model=LinkOut, status_code=201, summary="Link another case")
def link_case(case_id: uuid.UUID, body: LinkIn, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.update")
    other = access_case(db, principal, body.case_id)
    link = service.link_cases(db, actor=principal, access=access, other=other, reason=body.reason)
    return {"id": link.id, "case_id": other.case.id, "number": other.case.number, "reason": link.reason}


@router.delete("/cases/{case_id}/links/{link_id}", status_code=204, summary="Remove a link")
def unlink_case(case_id: uuid.UUID, link_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> None:
    access = access_case(db, principal, case_id, "case.update")
    service.unlink_cases(db, actor=principal, access=access, link_id=link_id)


@router.post("/cases/{case_id}/stage", response_model=CaseOut, summary="Move the case along the pipeline",
             **_OMIT)
def move(case_id: uuid.UUID, body: MoveIn, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id)
    service.move(db, actor=principal, access=access, to=body.to, note=body.note, version=body.version)
    return _case_out(db, principal, case_id)


@router.put("/cases/{case_id}/checklist/{item}", response_model=ChecklistOut,
            summary="Set a pre-departure checklist item")
def set_checklist(case_id: uuid.UUID, item: ChecklistItem, body: ChecklistIn, db: DbSession,
                  principal: CurrentPrincipal) -> Any:
    access = access_case(db, principal, case_id)
    return service.set_checklist(db, actor=principal, access=access, item=item, status=body.status, note=body.note)


@router.get("/cases/{case_id}/sensitive", summary="Open sealed sections (browser session, fresh step-up; audited)")
def read_sensitive(case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   sections: list[Section] = Query(...)) -> dict[str, Any]:
    access = access_case(db, principal, case_id)
    opened = service.read_sensitive(db, actor=principal, access=access, sections=sections)
    return {s.value: v for s, v in opened.items()}


@router.put("/cases/{case_id}/sensitive/{part}", status_code=204,
            summary="Set or clear a sealed section (browser session, fresh step-up)")
def write_sensitive(case_id: uuid.UUID, part: Section, body: SensitiveIn, db: DbSession,
                    principal: CurrentPrincipal) -> None:
    access = access_case(db, principal, case_id)
    service.write_sensitive(db, actor=principal, access=access, section=part, value=body.value,
                            version=body.version)


@router.post("/cases/{case_id}/confidential-notes", status_code=201,
             summary="Record what one member asked to keep from the others (the owner's caseworkers)")
def add_confidential(case_id: uuid.UUID, body: ConfidentialIn, db: DbSession,
                     principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.confidential.write")
    note = service.add_confidential_note(db, actor=principal, access=access,
                                         member=service.get_member(db, access, body.member_id), body=body.body)
    return {"id": note.id, "member_id": note.member_id, "created_at": note.created_at}


@router.get("/cases/{case_id}/log", response_model=PageOut[LogEntryOut],
            summary="Who viewed or changed what, when (the owning organization)")
def case_log(case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal, page: int = Query(1, ge=1),
             per_page: int = Query(50, ge=1, le=100)) -> PageOut[LogEntryOut]:
    access = access_case(db, principal, case_id, "case.log")
    result = service.access_log(db, actor=principal, access=access, page=page, per_page=per_page)
    return PageOut(items=[LogEntryOut.model_validate(e) for e in result.items], meta=PageMeta(**result.meta()))


# Consent, referrals, transfers of one case -----------------------------------------------------------------------


@router.get("/cases/{case_id}/consents", response_model=list[ConsentOut], summary="Consent recorded for sharing")
def consents(case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[Consent]:
    access = access_case(db, principal, case_id, "case.refer")
    return sharing.consents_of(db, access.case)


@router.post("/cases/{case_id}/consents", response_model=ConsentOut, status_code=201,
             summary="Record the family's consent to share with one government for one purpose")
def record_consent(case_id: uuid.UUID, body: ConsentIn, db: DbSession, principal: CurrentPrincipal) -> Consent:
    access = access_case(db, principal, case_id, "case.refer")
    return sharing.record_consent(db, actor=principal, access=access, **body.model_dump())


@router.post("/cases/{case_id}/consents/{consent_id}/withdraw", response_model=ConsentOut,
             summary="Consent withdrawn: the referrals relying on it are revoked")
def withdraw_consent(case_id: uuid.UUID, consent_id: uuid.UUID, body: WithdrawIn, db: DbSession,
                     principal: CurrentPrincipal) -> Consent:
    access = access_case(db, principal, case_id, "case.refer")
    return sharing.withdraw_consent(db, actor=principal, access=access, consent_id=consent_id, reason=body.reason)


@router.get("/cases/{case_id}/referrals", response_model=list[ReferralOut],
            summary="The case's referrals (a recipient sees its own)")
def case_referrals(case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    access = access_case(db, principal, case_id)
    return [views.referral_view(r) for r in sharing.referrals_of(db, principal, access)]


@router.post("/cases/{case_id}/referrals", response_model=RoundOut, status_code=201,
             summary="Refer the case to one or several governments, in parallel or in turn")
def refer(case_id: uuid.UUID, body: ReferIn, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    access = access_case(db, principal, case_id, "case.refer")
    round_ = sharing.refer(db, actor=principal, access=access, **body.model_dump())
    opened = db.query(Referral).filter(Referral.round_id == round_.id).order_by(Referral.created_at).all()
    return {"id": round_.id, "case_id": round_.case_id, "mode": round_.mode, "purpose": round_.purpose,
            "sections": round_.sections, "recipients": round_.recipients,
            "referrals": [views.referral_view(r) for r in opened]}


@router.post("/cases/{case_id}/transfers", response_model=TransferOut, status_code=201,
             summary="Offer the case's ownership to another organization")
def request_transfer(case_id: uuid.UUID, body: TransferIn, db: DbSession, principal: CurrentPrincipal) -> Transfer:
    access = access_case(db, principal, case_id, "case.transfer")
    return sharing.request_transfer(db, actor=principal, access=access, to_org_id=body.to_org_id, reason=body.reason)


# Referrals --------------------------------------------------------------------------------------------------------


@router.get("/referrals", response_model=PageOut[ReferralOut], summary="Referrals you sent or received")
def list_referrals(db: DbSession, principal: CurrentPrincipal,
                   direction: str = Query("", pattern="^(|incoming|outgoing)$"), status: ReferralStatus | None = None,
                   page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)) -> PageOut[ReferralOut]:
    policy.require(principal, "referral.read")
    stmt = policy.scoped(principal, Referral)
    if direction == "incoming":
        stmt = stmt.where(Referral.recipient_org_id == principal.org_id)
    elif direction == "outgoing":
        stmt = stmt.where(Referral.sender_org_id == principal.org_id)
    if status is not None:
        stmt = stmt.where(Referral.status == status)
    result = paginate(db, stmt.order_by(Referral.updated_at.desc(), Referral.id), page=page, per_page=per_page)
    return PageOut(items=[ReferralOut.model_validate(views.referral_view(r)) for r in result.items],
                   meta=PageMeta(**result.meta()))


def _referral(db: DbSession, principal: CurrentPrincipal, referral_id: uuid.UUID) -> Referral:
    return policy.access(db, principal, Referral, referral_id, "referral.read")


@router.get("/referrals/{referral_id}", response_model=ReferralOut, summary="One referral")
def get_referral(referral_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return views.referral_view(_referral(db, principal, referral_id))


@router.patch("/referrals/{referral_id}", response_model=ReferralOut,
              summary="Take a referral forward (recipient), revoke it (sender), or record its outcome")
def change_referral(referral_id: uuid.UUID, body: ReferralChange, db: DbSession,
                    principal: CurrentPrincipal) -> dict[str, Any]:
    referral = _referral(db, principal, referral_id)
    sharing.change_referral(db, actor=principal, referral=referral, **body.model_dump())
    return views.referral_view(referral)


@router.get("/referrals/{referral_id}/messages", response_model=list[ReferralMessageOut],
            summary="The referral's thread (while it is live)")
def referral_messages(referral_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> list[Any]:
    referral = _referral(db, principal, referral_id)
    if referral.sender_org_id != principal.org_id:
        # The recipient reads the thread only while the referral still shows it the case.
        if referral.status not in LIVE_REFERRAL:
            raise policy.NotFound()
        access_case(db, principal, referral.case_id)
    return sharing.messages_of(db, referral)


@router.post("/referrals/{referral_id}/messages", response_model=ReferralMessageOut, status_code=201,
             summary="Ask for more information, or answer")
def post_referral_message(referral_id: uuid.UUID, body: ReferralMessageIn, db: DbSession,
                          principal: CurrentPrincipal) -> Any:
    referral = _referral(db, principal, referral_id)
    return sharing.post_message(db, actor=principal, referral=referral, body=body.body)


# Agreements ---------------------------------------------------------------------------------------------------------


@router.get("/agreements", response_model=PageOut[AgreementOut], summary="Your organization's agreements")
def list_agreements(db: DbSession, principal: CurrentPrincipal, status: AgreementStatus | None = None,
                    page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)) -> PageOut[AgreementOut]:
    policy.require(principal, "agreement.read")
    stmt = policy.scoped(principal, Agreement)
    if status is not None:
        stmt = stmt.where(Agreement.status == status)
    result = paginate(db, stmt.order_by(Agreement.proposed_at.desc(), Agreement.id), page=page, per_page=per_page)
    return PageOut(items=[AgreementOut.model_validate(a) for a in result.items], meta=PageMeta(**result.meta()))


@router.post("/agreements", response_model=AgreementOut, status_code=201,
             summary="Propose a data-sharing agreement (administrators)")
def propose_agreement(body: AgreementIn, db: DbSession, principal: CurrentPrincipal) -> Agreement:
    return sharing.propose_agreement(db, actor=principal, **body.model_dump())


@router.get("/agreements/{agreement_id}", response_model=AgreementOut, summary="One agreement")
def get_agreement(agreement_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Agreement:
    return policy.access(db, principal, Agreement, agreement_id, "agreement.read")


@router.post("/agreements/{agreement_id}/decision", response_model=AgreementOut,
             summary="Accept, decline, withdraw or end an agreement (administrators)")
def decide_agreement(agreement_id: uuid.UUID, body: AgreementDecision, db: DbSession,
                     principal: CurrentPrincipal) -> Agreement:
    agreement = policy.access(db, principal, Agreement, agreement_id, "agreement.read")
    return sharing.decide_agreement(db, actor=principal, agreement=agreement, decision=body.decision,
                                    reason=body.reason)


# Transfers ----------------------------------------------------------------------------------------------------------


@router.get("/transfers", response_model=PageOut[TransferOut], summary="Transfers of cases to or from you")
def list_transfers(db: DbSession, principal: CurrentPrincipal, page: int = Query(1, ge=1),
                   per_page: int = Query(25, ge=1, le=100)) -> PageOut[TransferOut]:
    policy.require(principal, "case.read")
    stmt = policy.scoped(principal, Transfer).order_by(Transfer.requested_at.desc(), Transfer.id)
    result = paginate(db, stmt, page=page, per_page=per_page)
    return PageOut(items=[TransferOut.model_validate(t) for t in result.items], meta=PageMeta(**result.meta()))


@router.get("/transfers/{transfer_id}", response_model=TransferOut, summary="One transfer")
def get_transfer(transfer_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Transfer:
    return policy.access(db, principal, Transfer, transfer_id)


@router.post("/transfers/{transfer_id}/decision", response_model=TransferOut,
             summary="Accept or decline (receiver), or cancel (sender)")
def decide_transfer(transfer_id: uuid.UUID, body: TransferDecision, db: DbSession,
                    principal: CurrentPrincipal) -> Transfer:
    transfer = policy.access(db, principal, Transfer, transfer_id)
    return sharing.decide_transfer(db, actor=principal, transfer=transfer, decision=body.decision, note=body.note)

