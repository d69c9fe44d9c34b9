"""Pages of cases and referrals: the case list and search, opening a case, the case page (family at a glance,
the pipeline as a timeline, referrals, sensitive sections behind a reveal), referrals and their threads,
data-sharing agreements, transfers, the access log. Every form works without JavaScript."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from rdn.cases import columns, exports, imports, pipeline, search, service, sharing, views
from rdn.cases.models import (
    AGREEMENT_STATUS_NAMES,
    CASE_SEALED,
    CATEGORY_NAMES,
    CHECKLIST_NAMES,
    CHECKLIST_STATUS_NAMES,
    EDUCATION_NAMES,
    LIVE_REFERRAL,
    NEED_NAMES,
    PRIORITY_NAMES,
    PURPOSE_NAMES,
    REFERRAL_STATUS_NAMES,
    REFERRAL_TRANSITIONS,
    RELATIONSHIP_NAMES,
    SECTION_NAMES,
    SENSITIVE,
    SEX_NAMES,
    SHAREABLE,
    TRANSFER_STATUS_NAMES,
    Agreement,
    AgreementStatus,
    Case,
    ChecklistItem,
    ConsentMethod,
    Referral,
    ReferralStatus,
    Relationship,
    RoundMode,
    Section,
    Side,
    Transfer,
    TransferStatus,
)
from rdn.cases.pipeline import STAGE_NAMES, Stage
from rdn.cases.policy import OWNER_KINDS, CaseAccess, access_case, referral_side
from rdn.core import clock, i18n, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.pagination import paginate
from rdn.core.tenancy import Organization, OrgKind
from rdn.core.web import CurrentPrincipal, DbSession, PostedForm, get_db, redirect, render

router = page_router()

MEMBER_INPUTS = ("relationship", "given_name", "family_name", "other_names", "sex", "date_of_birth", "nationality",
                 "stateless", "languages", "education", "occupation", "specific_needs")
MAX_FORM_MEMBERS = 30
CONSENT_METHODS = {ConsentMethod.verbal: i18n.N_("Verbal"), ConsentMethod.written: i18n.N_("Written"),
                   ConsentMethod.digital: i18n.N_("Digital")}


def labels() -> dict[str, Any]:
    def tr(names: dict[Any, str]) -> dict[str, str]:
        return {str(k.value): _(v) for k, v in names.items()}

    return {
        "stage": tr(STAGE_NAMES), "category": tr(CATEGORY_NAMES), "priority": tr(PRIORITY_NAMES),
        "sex": tr(SEX_NAMES), "relationship": tr(RELATIONSHIP_NAMES), "education": tr(EDUCATION_NAMES),
        "need": tr(NEED_NAMES), "section": tr(SECTION_NAMES), "purpose": tr(PURPOSE_NAMES),
        "referral": tr(REFERRAL_STATUS_NAMES), "agreement": tr(AGREEMENT_STATUS_NAMES),
        "transfer": tr(TRANSFER_STATUS_NAMES), "item": tr(CHECKLIST_NAMES), "item_status": tr(CHECKLIST_STATUS_NAMES),
        "method": tr(CONSENT_METHODS), "mode": {"parallel": _("All at once"), "sequential": _("One after another")},
    }


_FIELD_LABELS = {
    "given_name": i18n.N_("Given name"), "family_name": i18n.N_("Family name"),
    "other_names": i18n.N_("Other spellings"), "relationship": i18n.N_("Relationship"), "sex": i18n.N_("Sex"),
    "date_of_birth": i18n.N_("Year or date of birth"), "birth_year": i18n.N_("Year or date of birth"),
    "nationality": i18n.N_("Nationality"), "languages": i18n.N_("Languages"), "education": i18n.N_("Education"),
    "occupation": i18n.N_("Occupation"), "specific_needs": i18n.N_("Specific needs"),
    "current_country": i18n.N_("Country where the family is now"),
    "current_location": i18n.N_("Town, camp or settlement"), "category_primary": i18n.N_("Primary category"),
    "category_secondary": i18n.N_("Secondary category"), "processing_priority": i18n.N_("Processing priority"),
    "submission_priority": i18n.N_("Submission priority"), "members": i18n.N_("The family"),
    "country": i18n.N_("Country"), "city": i18n.N_("City"), "note": i18n.N_("Note"), "reason": i18n.N_("Reason"),
    "sections": i18n.N_("Sections"), "purpose": i18n.N_("Purpose"), "purposes": i18n.N_("Purposes"),
    "recipients": i18n.N_("Governments"), "title": i18n.N_("Title"), "body": i18n.N_("Message"),
    "valid_until": i18n.N_("Valid until"), "other_org_id": i18n.N_("With"), "number": i18n.N_("Case number"),
}
_ROW = re.compile(r"^(members|family_ties|recipients)\[(\d+)\]\.?(.*)$")


def _label(field: str) -> str:
    """A field key as people read it: "members[2].sex" -> "Person 3 · Sex"."""
    match = _ROW.match(field)
    if match:
        kind, index, rest = match.group(1), int(match.group(2)), match.group(3)
        if kind == "recipients":
            return ""  # the message already names the government
        row = _("Person %(n)s", n=index + 1) if kind == "members" else _("Family tie %(n)s", n=index + 1)
        return f"{row} · {_(_FIELD_LABELS[rest])}" if rest in _FIELD_LABELS else row
    last = field.rsplit(".", 1)[-1]
    return _(_FIELD_LABELS[last]) if last in _FIELD_LABELS else ""


def _errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    """Roll back, and give each error keyed by its field with the field's name in the message."""
    db.rollback()
    out = {}
    for e in exc.errors:
        label = _label(e.field)
        out[e.field] = f"{label}: {e.message}" if label else e.message
    return out or {"form": exc.detail}


def _org_names(db: Session) -> dict[uuid.UUID, str]:
    return {o.id: o.name for o in db.scalars(select(Organization))}


def _governments(db: Session, exclude: uuid.UUID | None = None) -> list[Organization]:
    stmt = select(Organization).where(Organization.kind == OrgKind.government, Organization.active.is_(True))
    if exclude is not None:
        stmt = stmt.where(Organization.id != exclude)
    return list(db.scalars(stmt.order_by(Organization.name)))


def _case_orgs(db: Session, exclude: uuid.UUID | None = None) -> list[Organization]:
    stmt = select(Organization).where(Organization.kind.in_(list(OWNER_KINDS)), Organization.active.is_(True))
    if exclude is not None:
        stmt = stmt.where(Organization.id != exclude)
    return list(db.scalars(stmt.order_by(Organization.name)))


def _choices() -> dict[str, Any]:
    """Options for the case and member forms."""
    locale = i18n.locale_var.get()
    return {
        "countries": i18n.countries(locale),
        "languages": sorted(((code, i18n.language_name(code, locale)) for code in _COMMON_LANGUAGES),
                            key=lambda x: x[1]),
        "stages": list(Stage), "relationships": list(Relationship), "sections_shareable": [
            s for s in Section if s in SHAREABLE],
    }


# Languages offered first in forms (any ISO 639 code is accepted).
_COMMON_LANGUAGES = ("ar", "prs", "ps", "fa", "ur", "so", "ti", "am", "sw", "fr", "en", "es", "rhg", "my", "bn",
                     "ku", "ckb", "tr", "uk", "ru", "din", "nus", "ln", "rw", "haz", "uz", "tg")


# The list ---------------------------------------------------------------------------------------------------------


def _filters_from(q: str, stage: list[str], priority: str, category: str, nationality: str, current_country: str,
                  overdue: str, relation: str, referred_to: str, sort: str) -> search.CaseFilters:
    try:
        to = uuid.UUID(referred_to) if referred_to else None
    except ValueError:
        to = None
    return search.CaseFilters(
        q=q, stage=[s for s in stage if s], priority=priority, category=category, nationality=nationality,
        current_country=current_country, overdue={"yes": True, "no": False}.get(overdue),
        relation=relation if relation in ("owned", "referred") else "", referred_to=to,
        sort=sort if sort in search.SORTS else "")


@router.get("/cases")
def case_list(request: Request, db: DbSession, principal: CurrentPrincipal,
              q: Annotated[str, Query(max_length=200)] = "", stage: Annotated[list[str] | None, Query()] = None,
              priority: Annotated[str, Query(max_length=20)] = "", category: Annotated[str, Query(max_length=5)] = "",
              nationality: Annotated[str, Query(max_length=2)] = "",
              current_country: Annotated[str, Query(max_length=2)] = "",
              overdue: Annotated[str, Query(max_length=3)] = "", relation: Annotated[str, Query(max_length=10)] = "",
              referred_to: Annotated[str, Query(max_length=40)] = "", sort: Annotated[str, Query(max_length=12)] = "",
              page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "case.read")
    f = _filters_from(q, stage or [], priority, category, nationality, current_country, overdue, relation,
                      referred_to, sort)
    result = search.list_cases(db, principal, f, page=page)
    rows = views.list_items(db, principal, result.items)
    counts = search.counts_by_stage(db, principal)
    total = sum(counts.values())
    keep = {"q": f.q, "priority": f.priority, "category": f.category, "nationality": f.nationality,
            "current_country": f.current_country, "overdue": overdue, "relation": f.relation,
            "referred_to": referred_to, "sort": f.sort}
    query = "&".join(f"{k}={i18n_quote(v)}" for k, v in keep.items() if v)
    query += "".join(f"&stage={i18n_quote(s)}" for s in f.stage)
    return render(request, "cases/list.html", {
        "page": result, "rows": rows, "f": f, "overdue": overdue, "referred_to": referred_to, "labels": labels(),
        "choices": _choices(), "governments": _governments(db),
        "stage_bar": [(s, counts.get(s.value, 0)) for s in (*pipeline.MAIN_ROAD, Stage.withdrawn, Stage.closed)
                      if counts.get(s.value)],
        "total": total, "overdue_count": search.overdue_count(db, principal), "base_query": query,
        "can_create": policy.can(principal, "case.create"), "sorts": search.SORTS,
    })


def i18n_quote(value: Any) -> str:
    return quote(str(value), safe="")


# Import and export ------------------------------------------------------------------------------------------------

MAX_UPLOAD = 50 * 1024 * 1024


def streamed(fmt: str, write: Any) -> Response:
    """Write an export to a spooled temporary file inside the request's transaction (its audit entries commit
    with it), then stream it out."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by the response
    write(out)
    out.seek(0)
    stamp = clock.now().strftime("%Y%m%d-%H%M")
    media = {"csv": "text/csv; charset=utf-8", "json": "application/json",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[fmt]

    def chunks() -> Any:
        try:
            while block := out.read(65536):
                yield block
        finally:
            out.close()

    return StreamingResponse(chunks(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="rdn-cases-{stamp}.{fmt}"', "Cache-Control": "no-store"})


@router.get("/cases/export.{fmt}")
def export_cases(request: Request, fmt: str, db: DbSession, principal: CurrentPrincipal,
                 q: Annotated[str, Query(max_length=200)] = "", stage: Annotated[list[str] | None, Query()] = None,
                 priority: Annotated[str, Query(max_length=20)] = "",
                 category: Annotated[str, Query(max_length=5)] = "",
                 nationality: Annotated[str, Query(max_length=2)] = "",
                 current_country: Annotated[str, Query(max_length=2)] = "",
                 overdue: Annotated[str, Query(max_length=3)] = "",
                 relation: Annotated[str, Query(max_length=10)] = "",
                 referred_to: Annotated[str, Query(max_length=40)] = "",
                 sort: Annotated[str, Query(max_length=12)] = "",
                 sensitive: Annotated[bool, Query()] = False) -> Response:
    """The list as a file (CSV with HXL hashtags, or a workbook with cases and members sheets): only what the
    exporter may see; sealed sections only when asked, after a step-up. Every exported case is audited."""
    if fmt not in ("csv", "xlsx"):
        raise policy.NotFound()
    policy.require(principal, "case.export")
    f = _filters_from(q, stage or [], priority, category, nationality, current_country, overdue, relation,
                      referred_to, sort)
    return streamed(fmt, lambda out: exports.export(db, actor=principal, filters=f, fmt=fmt, out=out,
                                                    include_sensitive=sensitive))


@router.get("/cases/import")
def import_form(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "case.create")
    return render(request, "cases/import.html", {"report": None, "columns": _import_columns()})


@router.get("/cases/import/template.csv")
def import_template(principal: CurrentPrincipal) -> Response:
    policy.require(principal, "case.create")
    return Response(imports.template_csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="rdn-households-template.csv"'})


def _import_columns() -> list[tuple[str, bool]]:
    required = {columns.KEY, *columns.REQUIRED_CASE, *columns.REQUIRED_MEMBER}
    return [(name, name in required) for name in (columns.KEY, *columns.IMPORT_CASE, *columns.IMPORT_MEMBER)]


@router.post("/cases/import")
async def import_upload(request: Request, principal: CurrentPrincipal) -> Response:
    """Check (and unless it is a dry run, import) a spreadsheet of households: all or nothing."""
    form = await request.form()  # files spool to disk; the size is checked below
    upload = form.get("file")
    dry_run = bool(form.get("dry_run"))
    data = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, StarletteUploadFile) else b""
    filename = (upload.filename or "upload") if isinstance(upload, StarletteUploadFile) else ""

    def run() -> Response:
        db = get_db(request)  # the request's unit of work (committed at its end)
        policy.require(principal, "case.create")
        if not data:
            report_error = _("Choose a CSV or Excel file to import")
            return render(request, "cases/import.html", {"report": None, "columns": _import_columns(),
                                                         "file_error": report_error}, status=422)
        if len(data) > MAX_UPLOAD:
            return render(request, "cases/import.html", {
                "report": None, "columns": _import_columns(),
                "file_error": _("The file is larger than %(mb)s MB: split it", mb=MAX_UPLOAD // 1024 // 1024)},
                status=422)
        try:
            report = imports.import_file(db, actor=principal, data=data, filename=filename, dry_run=dry_run)
        except ValidationFailed as exc:
            db.rollback()
            return render(request, "cases/import.html", {"report": None, "columns": _import_columns(),
                                                         "file_error": exc.errors[0].message if exc.errors
                                                         else exc.detail}, status=422)
        if not report.ok:
            db.rollback()
        return render(request, "cases/import.html", {"report": report, "filename": filename,
                                                     "columns": _import_columns()},
                      status=200 if report.ok else 422)

    return await run_in_threadpool(run)


# Opening a case ---------------------------------------------------------------------------------------------------


def _members_from(form: Any, count: int) -> list[dict[str, Any]]:
    members = []
    for i in range(min(count, MAX_FORM_MEMBERS)):
        raw: dict[str, Any] = {name: str(form.get(f"m{i}-{name}") or "") for name in MEMBER_INPUTS}
        raw["specific_needs"] = [str(v) for v in form.getlist(f"m{i}-specific_needs")]
        raw["languages"] = [str(v) for v in form.getlist(f"m{i}-languages") if v] or raw["languages"]
        typed = [v for k, v in raw.items() if k not in ("relationship", "sex", "stateless", "education")]
        if not any(v.strip() if isinstance(v, str) else v for v in typed):
            continue  # an untouched row
        members.append(raw)
    return members


def _new_case_context(values: dict[str, Any], members: list[dict[str, Any]], errors: dict[str, str],
                      similar: list[Any] | None = None) -> dict[str, Any]:
    return {"values": values, "members": members, "errors": errors, "similar": similar or [], "labels": labels(),
            "choices": _choices()}


@router.get("/cases/new")
def new_case(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "case.create")
    members = [{"relationship": "principal"}, {"relationship": "spouse"}, {"relationship": "child"}]
    return render(request, "cases/new.html", _new_case_context({"processing_priority": "normal",
                                                                 "submission_priority": "normal"}, members, {}))


@router.post("/cases/new")
def create_case(request: Request, db: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    policy.require(principal, "case.create")
    values = {k: str(form.get(k) or "") for k in (*service.CASE_FIELDS, "note")}
    count = min(int(str(form.get("count") or "1")) if str(form.get("count") or "1").isdigit() else 1,
                MAX_FORM_MEMBERS)
    members = _members_from(form, count)
    if form.get("add"):
        members.append({"relationship": "child"})
        return render(request, "cases/new.html", _new_case_context(values, members, {}))
    similar = []
    if not form.get("confirm_similar"):
        people = []
        for m in members:
            year = str(m.get("date_of_birth") or "")[:4]
            people.append({**m, "birth_year": int(year) if year.isdigit() else None})
        similar = service.similar_people(db, principal, people)
    if similar:
        ctx = _new_case_context(values, members, {}, similar)
        return render(request, "cases/new.html", ctx, status=200)
    try:
        case = service.create_case(db, actor=principal, case=values, members=members, note=values["note"])
    except ValidationFailed as exc:
        return render(request, "cases/new.html", _new_case_context(values, members or [{}], _errors(db, exc)),
                      status=422)
    return redirect(f"/cases/{case.id}?created=1")


# The case page ----------------------------------------------------------------------------------------------------


def _timeline(case: Case, history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The main road with each stage marked done, current or to come (and the current one if off the road)."""
    current = Stage(case.stage)
    reached = {h["to"] for h in history or []}
    road = list(pipeline.MAIN_ROAD)
    if current not in road:
        road.append(current)
    index = road.index(current) if current in pipeline.MAIN_ROAD else len(road) - 1
    out = []
    for i, stage in enumerate(road):
        state = "current" if stage == current else ("done" if (i < index or stage.value in reached) else "todo")
        out.append({"stage": stage.value, "state": state})
    return out


#: Other domains add to the case page's checklist: each provider returns, for the case, what its rows show
#: (pathways: the obstacle blocking an item, and the obstacles one may choose). Cases import no other domain.
CHECKLIST_EXTRAS: list[Callable[[Session, Principal, CaseAccess], dict[str, Any]]] = []


def _case_context(db: Session, principal: Principal, access: CaseAccess, **extra: Any) -> dict[str, Any]:
    case = access.case
    view = views.case_view(db, principal, access)
    moves = []
    if policy.can(principal, "case.stage", access):
        for target in sorted(pipeline.TRANSITIONS[Stage(case.stage)], key=lambda s: list(Stage).index(s)):
            if access.owner or (Stage(case.stage), target) in pipeline.STATE_MOVES:
                moves.append(target.value)
    org_names = _org_names(db)
    referrals = sharing.referrals_of(db, principal, access)
    ctx = {
        "case": case, "view": view, "access": access, "labels": labels(), "org_names": org_names,
        "timeline": _timeline(case, view.get("history")), "moves": moves, "referrals": referrals,
        "can": {
            "update": policy.can(principal, "case.update", access),
            "checklist": policy.can(principal, "case.checklist", access),
            "refer": policy.can(principal, "case.refer", access),
            "transfer": policy.can(principal, "case.transfer", access),
            "log": policy.can(principal, "case.log", access),
            "sensitive_write": policy.can(principal, "case.sensitive.write", access),
            "confidential_write": policy.can(principal, "case.confidential.write", access),
        },
        "sensitive": [s.value for s in (*CASE_SEALED, Section.confidential) if access.sees(s)],
        "present": {s.value for s in service.sealed_sections_present(case)} if access.sensitive else set(),
        "consents": sharing.consents_of(db, case) if policy.can(principal, "case.refer", access) else [],
        "governments": _governments(db, case.owner_org_id), "case_orgs": _case_orgs(db, case.owner_org_id),
        "transfers": db.scalars(select(Transfer).where(Transfer.case_id == case.id)
                                .order_by(Transfer.requested_at.desc())).all() if access.owner else [],
        "errors": {}, "choices": _choices(),
        "checklist_extra": {k: v for provider in CHECKLIST_EXTRAS for k, v in provider(db, principal, access).items()},
    }
    ctx.update(extra)
    return ctx


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              created: Annotated[bool, Query()] = False, saved: Annotated[bool, Query()] = False) -> Response:
    access = access_case(db, principal, case_id)
    service.record_view(db, actor=principal, access=access)
    notice = _("The case is open.") if created else (_("Saved.") if saved else "")
    return render(request, "cases/case.html", _case_context(db, principal, access, notice=notice))


def _back_to_case(request: Request, db: Session, principal: Principal, case_id: uuid.UUID,
                  exc: ValidationFailed | Conflict, anchor: str) -> Response:
    errors = _errors(db, exc)
    access = access_case(db, principal, case_id)
    return render(request, "cases/case.html", _case_context(db, principal, access, errors=errors, focus=anchor),
                  status=422 if isinstance(exc, ValidationFailed) else 409)


@router.post("/cases/{case_id}/stage")
def move_case(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              to: Annotated[str, Form(max_length=40)] = "", note: Annotated[str, Form(max_length=4000)] = "",
              version: Annotated[int | None, Form()] = None) -> Response:
    access = access_case(db, principal, case_id)
    try:
        service.move(db, actor=principal, access=access, to=to, note=note, version=version)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "pipeline")
    return redirect(f"/cases/{case_id}?saved=1#pipeline")


@router.post("/cases/{case_id}/checklist/{item}")
def set_checklist(request: Request, case_id: uuid.UUID, item: ChecklistItem, db: DbSession,
                  principal: CurrentPrincipal, status: Annotated[str, Form(max_length=20)] = "",
                  note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    access = access_case(db, principal, case_id)
    try:
        service.set_checklist(db, actor=principal, access=access, item=item, status=status, note=note)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "checklist")
    return redirect(f"/cases/{case_id}?saved=1#checklist")


# Editing ----------------------------------------------------------------------------------------------------------


def _edit_context(access: CaseAccess, values: dict[str, Any], ties: list[dict[str, Any]],
                  errors: dict[str, str]) -> dict[str, Any]:
    return {"case": access.case, "values": values, "ties": ties, "errors": errors, "labels": labels(),
            "choices": _choices()}


@router.get("/cases/{case_id}/edit")
def edit_case(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    case = access.case
    values: dict[str, Any] = {k: getattr(case, k) for k in service.CASE_FIELDS}
    prefs = case.preferences or {}
    values.update({"pref_countries": "; ".join(prefs.get("countries", [])), "pref_avoid": "; ".join(
        prefs.get("avoid", [])), "pref_setting": prefs.get("setting", "any"), "pref_note": prefs.get("note", ""),
        "version": case.version})
    ties = [{"country": t.country, "city": t.city, "relationship": t.relationship, "note": t.note}
            for t in service.ties_of(db, case)]
    return render(request, "cases/edit.html", _edit_context(access, values, [*ties, {}], {}))


@router.post("/cases/{case_id}/edit")
def save_case(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              form: PostedForm) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    values = {k: str(form.get(k) or "") for k in (*service.CASE_FIELDS, "pref_countries", "pref_avoid",
                                                   "pref_setting", "pref_note", "version")}
    ties = []
    for i in range(20):
        tie = {k: str(form.get(f"t{i}-{k}") or "").strip() for k in ("country", "city", "relationship", "note")}
        if any(tie.values()):
            ties.append(tie)
    changes: dict[str, Any] = {k: values[k] for k in service.CASE_FIELDS}
    changes["family_ties"] = ties
    changes["preferences"] = {"countries": values["pref_countries"], "avoid": values["pref_avoid"],
                              "setting": values["pref_setting"], "note": values["pref_note"]}
    version = int(values["version"]) if values["version"].isdigit() else None
    try:
        service.update_case(db, actor=principal, access=access, changes=changes, version=version)
    except (ValidationFailed, Conflict) as exc:
        return render(request, "cases/edit.html", _edit_context(access, values, [*ties, {}], _errors(db, exc)),
                      status=422 if isinstance(exc, ValidationFailed) else 409)
    return redirect(f"/cases/{case_id}?saved=1")


def _member_values(member: Any) -> dict[str, Any]:
    return {"relationship": member.relationship, "given_name": member.given_name,
            "family_name": member.family_name, "other_names": "; ".join(member.other_names), "sex": member.sex,
            "date_of_birth": (member.birth_date.isoformat() if member.birth_date else str(member.birth_year)),
            "nationality": member.nationality or "", "stateless": "yes" if member.stateless else "",
            "languages": list(member.languages), "education": member.education, "occupation": member.occupation,
            "specific_needs": list(member.specific_needs)}


def _member_from_form(form: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {name: str(form.get(f"m0-{name}") or "") for name in MEMBER_INPUTS}
    raw["specific_needs"] = [str(v) for v in form.getlist("m0-specific_needs")]
    raw["languages"] = [str(v) for v in form.getlist("m0-languages") if v] or raw["languages"]
    return raw


@router.get("/cases/{case_id}/members/new")
def new_member(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    return render(request, "cases/member.html", {"case": access.case, "member": None, "m": {"relationship": "child"},
                                                 "errors": {}, "labels": labels(), "choices": _choices()})


@router.post("/cases/{case_id}/members/new")
def add_member(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
               form: PostedForm) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    raw = _member_from_form(form)
    try:
        service.add_member(db, actor=principal, access=access, data=raw)
    except (ValidationFailed, Conflict) as exc:
        return render(request, "cases/member.html", {"case": access.case, "member": None, "m": raw,
                                                     "errors": _errors(db, exc),
                                                     "labels": labels(), "choices": _choices()}, status=422)
    return redirect(f"/cases/{case_id}?saved=1#family")


@router.get("/cases/{case_id}/members/{member_id}")
def edit_member(request: Request, case_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    member = service.get_member(db, access, member_id)
    return render(request, "cases/member.html", {"case": access.case, "member": member, "m": _member_values(member),
                                                 "errors": {}, "labels": labels(), "choices": _choices()})


@router.post("/cases/{case_id}/members/{member_id}")
def save_member(request: Request, case_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                principal: CurrentPrincipal, form: PostedForm) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    member = service.get_member(db, access, member_id)
    raw = _member_from_form(form)
    try:
        service.update_member(db, actor=principal, access=access, member=member, changes=raw)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        access = access_case(db, principal, case_id)
        member = service.get_member(db, access, member_id)
        return render(request, "cases/member.html", {"case": access.case, "member": member, "m": raw,
                                                     "errors": errors,
                                                     "labels": labels(), "choices": _choices()}, status=422)
    return redirect(f"/cases/{case_id}?saved=1#family")


@router.post("/cases/{case_id}/members/{member_id}/remove")
def remove_member(request: Request, case_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    try:
        service.remove_member(db, actor=principal, access=access, member=service.get_member(db, access, member_id))
    except Conflict as exc:
        return _back_to_case(request, db, principal, case_id, exc, "family")
    return redirect(f"/cases/{case_id}?saved=1#family")


@router.post("/cases/{case_id}/members/{member_id}/principal")
def make_principal(request: Request, case_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                   principal: CurrentPrincipal, previous_becomes: Annotated[str, Form(max_length=30)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.update")
    try:
        service.make_principal(db, actor=principal, access=access, member=service.get_member(db, access, member_id),
                               previous_becomes=previous_becomes)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "family")
    return redirect(f"/cases/{case_id}?saved=1#family")


@router.post("/cases/{case_id}/links")
def link_case(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              number: Annotated[str, Form(max_length=40)] = "",
              reason: Annotated[str, Form(max_length=400)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.update")
    other = db.scalars(policy.scoped(principal, Case).where(Case.number == number.strip().upper())).first()
    try:
        if other is None:
            raise ValidationFailed("number", _("no case you can see has this number"))
        service.link_cases(db, actor=principal, access=access, other=access_case(db, principal, other.id),
                           reason=reason)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "family")
    except policy.NotFound:
        return _back_to_case(request, db, principal, case_id,
                             ValidationFailed("number", _("no case you can see has this number")), "family")
    return redirect(f"/cases/{case_id}?saved=1#family")


@router.post("/cases/{case_id}/links/{link_id}/remove")
def unlink_case(request: Request, case_id: uuid.UUID, link_id: uuid.UUID, db: DbSession,
                principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.update")
    service.unlink_cases(db, actor=principal, access=access, link_id=link_id)
    return redirect(f"/cases/{case_id}?saved=1#family")


# Sensitive sections -----------------------------------------------------------------------------------------------


@router.get("/cases/{case_id}/sensitive/{part}")
def reveal(request: Request, case_id: uuid.UUID, part: Section, db: DbSession,
           principal: CurrentPrincipal, error: Annotated[str, Query(max_length=10)] = "") -> Response:
    """Open one sealed section: a step-up first, then the read is audited."""
    section = part
    access = access_case(db, principal, case_id)
    if section not in SENSITIVE or not access.sees(section):
        raise policy.NotFound()
    opened = service.read_sensitive(db, actor=principal, access=access, sections=[section])[section]
    members = {m.id: m for m in service.members_of(db, access.case)} if access.sees(Section.identity) else {}
    return render(request, "cases/sensitive.html", {
        "case": access.case, "section": section.value, "value": opened, "members": members, "labels": labels(),
        "can_write": (section != Section.confidential and policy.can(principal, "case.sensitive.write", access)),
        "can_note": section == Section.confidential and policy.can(principal, "case.confidential.write", access),
        "errors": {"body": _("Note: must be %(low)s to %(high)s characters", low=1, high=5000)}
        if error == "body" else {}, "shape": service.SENSITIVE_SHAPES.get(section, {}),
    }, headers={"Cache-Control": "no-store"})


@router.post("/cases/{case_id}/sensitive/{part}")
def write_sensitive(request: Request, case_id: uuid.UUID, part: Section, db: DbSession,
                    principal: CurrentPrincipal, form: PostedForm) -> Response:
    section = part
    access = access_case(db, principal, case_id)
    if section not in CASE_SEALED:
        raise policy.NotFound()
    policy.require(principal, "case.sensitive.write", access)
    value = {k: str(form.get(k) or "") for k in service.SENSITIVE_SHAPES[section]}
    version = str(form.get("version") or "")
    try:
        service.write_sensitive(db, actor=principal, access=access, section=section, value=value,
                                version=int(version) if version.isdigit() else None)
    except (ValidationFailed, Conflict) as exc:
        return render(request, "cases/sensitive.html", {
            "case": access.case, "section": section.value, "value": value, "members": {}, "labels": labels(),
            "can_write": True, "can_note": False, "errors": _errors(db, exc),
            "shape": service.SENSITIVE_SHAPES[section]}, status=422, headers={"Cache-Control": "no-store"})
    return redirect(f"/cases/{case_id}/sensitive/{section.value}")


@router.post("/cases/{case_id}/confidential-notes")
def add_confidential(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     member_id: Annotated[str, Form(max_length=40)] = "",
                     body: Annotated[str, Form(max_length=6000)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.confidential.write")
    try:
        member = service.get_member(db, access, uuid.UUID(member_id))
    except ValueError:
        raise policy.NotFound() from None
    try:
        service.add_confidential_note(db, actor=principal, access=access, member=member, body=body)
    except ValidationFailed:
        db.rollback()
        return redirect(f"/cases/{case_id}/sensitive/confidential?error=body")
    return redirect(f"/cases/{case_id}/sensitive/confidential")


@router.get("/cases/{case_id}/log")
def case_log(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
             page: Annotated[int, Query(ge=1)] = 1) -> Response:
    access = access_case(db, principal, case_id, "case.log")
    result = service.access_log(db, actor=principal, access=access, page=page)
    return render(request, "cases/log.html", {"case": access.case, "page": result, "org_names": _org_names(db),
                                              "labels": labels()})


# Consent, referring, transfers ------------------------------------------------------------------------------------


@router.post("/cases/{case_id}/consents")
def record_consent(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   recipient_org_id: Annotated[str, Form(max_length=40)] = "",
                   purpose: Annotated[str, Form(max_length=40)] = "", method: Annotated[str, Form(max_length=20)] = "",
                   given_by_member_id: Annotated[str, Form(max_length=40)] = "",
                   note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.refer")
    try:
        sharing.record_consent(db, actor=principal, access=access, recipient_org_id=recipient_org_id, purpose=purpose,
                               method=method, given_by_member_id=given_by_member_id or None, note=note)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "sharing")
    return redirect(f"/cases/{case_id}?saved=1#sharing")


@router.post("/cases/{case_id}/consents/{consent_id}/withdraw")
def withdraw_consent(request: Request, case_id: uuid.UUID, consent_id: uuid.UUID, db: DbSession,
                     principal: CurrentPrincipal, reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.refer")
    try:
        sharing.withdraw_consent(db, actor=principal, access=access, consent_id=consent_id, reason=reason)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "sharing")
    return redirect(f"/cases/{case_id}?saved=1#sharing")


def _refer_context(db: Session, principal: Principal, access: CaseAccess, values: dict[str, Any],
                   errors: dict[str, str]) -> dict[str, Any]:
    case = access.case
    rows = []
    nationalities = {m.nationality for m in service.members_of(db, case) if m.nationality}
    for gov in _governments(db, case.owner_org_id):
        agreements = {p: sharing.agreement_for(db, case.owner_org_id, gov.id, p) for p in PURPOSE_NAMES}
        rows.append({"org": gov, "agreements": {p.value: a for p, a in agreements.items() if a},
                     "consent": {p.value: sharing.active_consent(db, case.id, gov.id, p) is not None
                                 for p in PURPOSE_NAMES},
                     "nationality": gov.country in nationalities})
    return {"case": case, "rows": rows, "values": values, "errors": errors, "labels": labels(),
            "shareable": [s.value for s in Section if s in SHAREABLE],
            "can_override_consent": policy.can(principal, "case.consent_override", access),
            "can_override_nationality": policy.can(principal, "case.nationality_override", access)}


@router.get("/cases/{case_id}/refer")
def refer_form(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    access = access_case(db, principal, case_id, "case.refer")
    return render(request, "cases/refer.html", _refer_context(
        db, principal, access, {"purpose": "resettlement", "mode": "parallel", "sections": ["identity", "needs"],
                                "recipients": []}, {}))


@router.post("/cases/{case_id}/refer")
def refer(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
          form: PostedForm) -> Response:
    access = access_case(db, principal, case_id, "case.refer")
    values = {"purpose": str(form.get("purpose") or ""), "mode": str(form.get("mode") or "parallel"),
              "sections": [str(v) for v in form.getlist("sections")],
              "recipients": [str(v) for v in form.getlist("recipients")], "note": str(form.get("note") or ""),
              "consent_override_reason": str(form.get("consent_override_reason") or ""),
              "nationality_override_reason": str(form.get("nationality_override_reason") or "")}
    order = {str(v): i for i, v in enumerate(values["recipients"])}
    # "In turn": the order comes from each government's position field (1, 2, 3...).
    def position(org_id: str) -> tuple[int, int]:
        raw = str(form.get(f"order-{org_id}") or "")
        return (int(raw) if raw.isdigit() else 99, order[org_id])

    recipients = sorted(values["recipients"], key=position)
    try:
        if len(values["note"]) > 5000:
            raise ValidationFailed("note", _("must be at most %(high)s characters", high=5000))
        round_ = sharing.refer(db, actor=principal, access=access, recipients=recipients, purpose=values["purpose"],
                               sections=values["sections"], mode=values["mode"] or RoundMode.parallel,
                               note=values["note"], consent_override_reason=values["consent_override_reason"],
                               nationality_override_reason=values["nationality_override_reason"])
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        names = {str(g.id): g.name for g in _governments(db)}
        for key in list(errors):
            if key.startswith("recipients["):
                index = int(key[len("recipients["):-1])
                who = names.get(recipients[index], "") if index < len(recipients) else ""
                errors[key] = f"{who}: {errors[key]}" if who else errors[key]
        return render(request, "cases/refer.html", _refer_context(db, principal, access, values, errors), status=422)
    return redirect(f"/cases/{case_id}?saved=1&round={round_.id}#sharing")


@router.post("/cases/{case_id}/transfers")
def request_transfer(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     to_org_id: Annotated[str, Form(max_length=40)] = "",
                     reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    access = access_case(db, principal, case_id, "case.transfer")
    try:
        transfer = sharing.request_transfer(db, actor=principal, access=access, to_org_id=to_org_id, reason=reason)
    except (ValidationFailed, Conflict) as exc:
        return _back_to_case(request, db, principal, case_id, exc, "transfer")
    return redirect(f"/transfers/{transfer.id}")


# Referrals ----------------------------------------------------------------------------------------------------------


@router.get("/referrals")
def referral_list(request: Request, db: DbSession, principal: CurrentPrincipal,
                  direction: Annotated[str, Query(max_length=10)] = "incoming",
                  status: Annotated[str, Query(max_length=20)] = "", page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "referral.read")
    stmt = policy.scoped(principal, Referral)
    if direction == "outgoing":
        stmt = stmt.where(Referral.sender_org_id == principal.org_id)
    else:
        direction = "incoming"
        stmt = stmt.where(Referral.recipient_org_id == principal.org_id)
    if status in ReferralStatus.__members__:
        stmt = stmt.where(Referral.status == status)
    result = paginate(db, stmt.order_by(Referral.updated_at.desc(), Referral.id), page=page)
    numbers = dict(db.execute(select(Case.id, Case.number).where(Case.id.in_([r.case_id for r in result.items]))).all())
    return render(request, "cases/referrals.html", {
        "page": result, "direction": direction, "status": status, "labels": labels(), "org_names": _org_names(db),
        "numbers": numbers, "statuses": list(ReferralStatus)})


def _referral_context(db: Session, principal: Principal, referral: Referral, **extra: Any) -> dict[str, Any]:
    side = referral_side(principal, referral)
    case = db.get(Case, referral.case_id)
    assert case is not None
    access = None
    try:
        access = access_case(db, principal, case.id)
    except policy.NotFound:
        access = None
    view = views.case_view(db, principal, access) if access else None
    if access is not None:
        service.record_view(db, actor=principal, access=access, via="referral")
    moves = []
    for (old, new), sides in REFERRAL_TRANSITIONS.items():
        if old == referral.status and side in sides:
            action = "referral.respond" if side == Side.recipient else "referral.revoke"
            if policy.can(principal, action, referral):
                moves.append(new.value)
    # The recipient reads the thread only while the referral still shows it the case.
    show_thread = side == Side.sender or (referral.status in LIVE_REFERRAL and access is not None)
    ctx = {"referral": referral, "case": case, "view": view, "access": access, "side": side, "moves": moves,
           "labels": labels(), "org_names": _org_names(db),
           "messages": sharing.messages_of(db, referral) if show_thread else [],
           "can_message": policy.can(principal, "referral.message", referral),
           "agreement": db.get(Agreement, referral.agreement_id), "errors": {}}
    ctx.update(extra)
    return ctx


@router.get("/referrals/{referral_id}")
def referral_page(request: Request, referral_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    referral = policy.access(db, principal, Referral, referral_id, "referral.read")
    return render(request, "cases/referral.html", _referral_context(db, principal, referral))


@router.post("/referrals/{referral_id}/status")
def change_referral(request: Request, referral_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                    status: Annotated[str, Form(max_length=20)] = "",
                    reason: Annotated[str, Form(max_length=2000)] = "",
                    outcome: Annotated[str, Form(max_length=20)] = "",
                    outcome_reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    referral = policy.access(db, principal, Referral, referral_id, "referral.read")
    try:
        sharing.change_referral(db, actor=principal, referral=referral, status=status, reason=reason,
                                outcome=outcome or None, outcome_reason=outcome_reason)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        referral = policy.access(db, principal, Referral, referral_id, "referral.read")
        return render(request, "cases/referral.html", _referral_context(db, principal, referral, errors=errors),
                      status=422 if isinstance(exc, ValidationFailed) else 409)
    return redirect(f"/referrals/{referral_id}")


@router.post("/referrals/{referral_id}/messages")
def post_referral_message(request: Request, referral_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                          body: Annotated[str, Form(max_length=6000)] = "") -> Response:
    referral = policy.access(db, principal, Referral, referral_id, "referral.read")
    try:
        sharing.post_message(db, actor=principal, referral=referral, body=body)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        referral = policy.access(db, principal, Referral, referral_id, "referral.read")
        return render(request, "cases/referral.html",
                      _referral_context(db, principal, referral, errors=errors, draft=body), status=422)
    return redirect(f"/referrals/{referral_id}#thread")


# Agreements ---------------------------------------------------------------------------------------------------------


@router.get("/agreements")
def agreement_list(request: Request, db: DbSession, principal: CurrentPrincipal,
                   status: Annotated[str, Query(max_length=20)] = "",
                   page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "agreement.read")
    stmt = policy.scoped(principal, Agreement)
    if status in AgreementStatus.__members__:
        stmt = stmt.where(Agreement.status == status)
    result = paginate(db, stmt.order_by(Agreement.proposed_at.desc(), Agreement.id), page=page)
    return render(request, "cases/agreements.html", {
        "page": result, "status": status, "labels": labels(), "org_names": _org_names(db),
        "statuses": list(AgreementStatus), "can_propose": policy.can(principal, "agreement.propose")})


def _agreement_form_context(db: Session, principal: Principal, values: dict[str, Any],
                            errors: dict[str, str]) -> dict[str, Any]:
    return {"values": values, "errors": errors, "labels": labels(), "orgs": _case_orgs(db, principal.org_id),
            "shareable": [s.value for s in Section if s in SHAREABLE], "purposes": list(PURPOSE_NAMES)}


@router.get("/agreements/new")
def new_agreement(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "agreement.propose")
    values = {"we_provide": "yes", "purposes": ["resettlement"], "sections": ["identity", "needs"]}
    return render(request, "cases/agreement_form.html", _agreement_form_context(db, principal, values, {}))


@router.post("/agreements/new")
def propose_agreement(request: Request, db: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    policy.require(principal, "agreement.propose")
    values = {"other_org_id": str(form.get("other_org_id") or ""), "we_provide": str(form.get("we_provide") or ""),
              "title": str(form.get("title") or ""), "reference": str(form.get("reference") or ""),
              "purposes": [str(v) for v in form.getlist("purposes")],
              "sections": [str(v) for v in form.getlist("sections")],
              "valid_until": str(form.get("valid_until") or "")}
    try:
        until = None
        if values["valid_until"]:
            try:
                until = date.fromisoformat(values["valid_until"])
            except ValueError:
                raise ValidationFailed("valid_until", _("must be a date such as 2027-12-31")) from None
        agreement = sharing.propose_agreement(
            db, actor=principal, other_org_id=values["other_org_id"], we_provide=values["we_provide"] == "yes",
            title=values["title"], purposes=values["purposes"], sections=values["sections"],
            reference=values["reference"], valid_until=until)
    except (ValidationFailed, Conflict) as exc:
        return render(request, "cases/agreement_form.html",
                      _agreement_form_context(db, principal, values, _errors(db, exc)), status=422)
    return redirect(f"/agreements/{agreement.id}")


@router.get("/agreements/{agreement_id}")
def agreement_page(request: Request, agreement_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    agreement = policy.access(db, principal, Agreement, agreement_id, "agreement.read")
    return render(request, "cases/agreement.html", _agreement_context(db, principal, agreement, {}))


def _agreement_context(db: Session, principal: Principal, agreement: Agreement,
                       errors: dict[str, str]) -> dict[str, Any]:
    proposer = agreement.proposed_by_org_id == principal.org_id
    decide = policy.can(principal, "agreement.decide", agreement) and agreement.status == AgreementStatus.proposed
    return {"agreement": agreement, "labels": labels(), "org_names": _org_names(db), "errors": errors,
            "can_accept": decide and not proposer, "can_withdraw": decide and proposer,
            "can_end": policy.can(principal, "agreement.end", agreement) and agreement.status == AgreementStatus.active,
            "referrals": db.scalars(policy.scoped(principal, Referral)
                                    .where(Referral.agreement_id == agreement.id)
                                    .order_by(Referral.created_at.desc()).limit(100)).all()}


@router.post("/agreements/{agreement_id}/decision")
def decide_agreement(request: Request, agreement_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     decision: Annotated[str, Form(max_length=20)] = "",
                     reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    agreement = policy.access(db, principal, Agreement, agreement_id, "agreement.read")
    try:
        sharing.decide_agreement(db, actor=principal, agreement=agreement, decision=decision, reason=reason)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        agreement = policy.access(db, principal, Agreement, agreement_id, "agreement.read")
        return render(request, "cases/agreement.html", _agreement_context(db, principal, agreement, errors),
                      status=422 if isinstance(exc, ValidationFailed) else 409)
    return redirect(f"/agreements/{agreement_id}")


# Transfers ----------------------------------------------------------------------------------------------------------


@router.get("/transfers")
def transfer_list(request: Request, db: DbSession, principal: CurrentPrincipal,
                  page: Annotated[int, Query(ge=1)] = 1) -> Response:
    policy.require(principal, "case.read")
    result = paginate(db, policy.scoped(principal, Transfer).order_by(Transfer.requested_at.desc(), Transfer.id),
                      page=page)
    numbers = dict(db.execute(select(Case.id, Case.number).where(Case.id.in_([t.case_id for t in result.items]))).all())
    return render(request, "cases/transfers.html", {"page": result, "labels": labels(), "org_names": _org_names(db),
                                                    "numbers": numbers})


@router.get("/transfers/{transfer_id}")
def transfer_page(request: Request, transfer_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    transfer = policy.access(db, principal, Transfer, transfer_id)
    return render(request, "cases/transfer.html", _transfer_context(db, principal, transfer, {}))


def _transfer_context(db: Session, principal: Principal, transfer: Transfer, errors: dict[str, str]) -> dict[str, Any]:
    case = db.get(Case, transfer.case_id)
    pending = transfer.status == TransferStatus.pending and policy.can(principal, "transfer.decide", transfer)
    return {"transfer": transfer, "case": case, "labels": labels(), "org_names": _org_names(db), "errors": errors,
            "can_accept": pending and principal.org_id == transfer.to_org_id,
            "can_cancel": pending and principal.org_id == transfer.from_org_id,
            "case_visible": db.scalars(policy.scoped(principal, Case).where(Case.id == transfer.case_id)).first()
            is not None}


@router.post("/transfers/{transfer_id}/decision")
def decide_transfer(request: Request, transfer_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                    decision: Annotated[str, Form(max_length=20)] = "",
                    note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    transfer = policy.access(db, principal, Transfer, transfer_id)
    try:
        sharing.decide_transfer(db, actor=principal, transfer=transfer, decision=decision, note=note)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        transfer = policy.access(db, principal, Transfer, transfer_id)
        return render(request, "cases/transfer.html", _transfer_context(db, principal, transfer, errors),
                      status=422 if isinstance(exc, ValidationFailed) else 409)
    if decision == TransferStatus.accepted:
        return redirect(f"/cases/{transfer.case_id}")
    return redirect(f"/transfers/{transfer_id}")
