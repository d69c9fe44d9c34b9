"""Welcome's pages for the programme's staff and the sponsor groups.

* ``/welcome``: the programmes (the caller's government's first, with their figures); a sponsor goes straight to
  their group's page.
* A programme's page (its government's staff, and the secretariat for the figures): the dashboard with its charts
  and tables, the groups (filtered, searched, paged), the arriving families with no group yet, the open matches
  and their progress, proposing a group for a family by hand or by the algorithm (its proposals and reasons, and
  why the families left out were left out), and the programme's rules.
* A group's page (the programme's staff and the group's own sponsors): what the programme's rules still ask for,
  in words, the members with their checks and training (recorded by the staff), preferences and funds, the welcome
  plan, and a link to the group's family.
* A match's page: for the sponsors, only the family as ``service.sponsor_view`` gives it and the core-services
  checklist; the programme's staff also see the case's number, the algorithm's reasons and the forms for the
  family's answer, the arrival and the end of the sponsorship.
* A programme's donations and their ledger; the group's sponsors claim, give and release items.

Objects are reached through the scoped queries of ``rdn.welcome.policy`` (the same 404 for missing and not
yours); every write goes through ``rdn.welcome.service``, which checks the rule again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from rdn.cases.models import Case
from rdn.core import i18n, policy
from rdn.core.errors import ProblemError, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.pagination import paginate
from rdn.core.tenancy import OrgKind
from rdn.core.web import CurrentPrincipal, DbSession, PostedForm, redirect, render
from rdn.web import charts
from rdn.welcome import service
from rdn.welcome.models import (
    CHECK_STATUS_NAMES,
    DONATION_KIND_NAMES,
    DONATION_STATUS_NAMES,
    GROUP_STATUS_NAMES,
    MATCH_STATUS_NAMES,
    OPEN_MATCHES,
    SPONSOR_FIELD_NAMES,
    SPONSOR_FIELDS,
    STREAM_NAMES,
    Donation,
    DonationKind,
    DonationStatus,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    ServiceTask,
    SponsorGroup,
    SponsorMember,
    Stream,
)

router = page_router()

NOTICES = {
    "created": N_("The programme is created. Share its sign-up page with the citizens who would like to sponsor."),
    "rules": N_("The programme's rules are saved; every group's eligibility follows them."),
    "proposed": N_("The group is proposed for the family. Both must accept: the group is told by email."),
    "saved": N_("Your changes were saved."),
    "plan": N_("The welcome plan is saved."),
    "member": N_("The member is added."),
    "removed": N_("The member is removed."),
    "check": N_("The check and training are recorded."),
    "verified": N_("The funds are recorded as verified."),
    "withdrawn": N_("The group has withdrawn from the programme."),
    "answered": N_("Your answer is recorded."),
    "family": N_("The family's answer is recorded."),
    "arrival": N_("The arrival is recorded: the due dates follow it and the group is told."),
    "cancelled": N_("The match is cancelled."),
    "task": N_("The service is updated."),
    "outcomes": N_("The outcomes are recorded."),
    "completed": N_("The sponsorship is completed."),
    "claimed": N_("The item is claimed for your family."),
    "given": N_("The item is recorded as given to your family."),
    "released": N_("The item is offered again."),
}

#: Languages offered as boxes to tick (others can be typed as ISO 639 codes).
COMMON_LANGUAGES = ("en", "fr", "es", "ar", "fa", "prs", "ps", "uk", "ru", "so", "ti", "sw", "tr", "ku", "ur", "my")
GROUP_TEXT_FIELDS = ("name", "city", "contact_email", "stream", "named_family", "min_size", "max_size", "capacity",
                     "funds_pledged", "funds_cash")
PROGRAMME_TEXT_FIELDS = ("name", "description", "min_adults", "funds_per_person", "currency", "cash_share",
                         "support_days", "staff_after_days")
PROGRAMME_FLAGS = ("checks_required", "training_required", "accepting")
STREAMS = frozenset(s.value for s in Stream)
TASK_FIELDS = ("owner_member_id", "done_on", "evidence", "notes")
NOTICE_FIELDS = ("flight", "airport", "time", "notes")
REASON_WORDS = {
    "language": N_("Speaks a language of the family"),
    "city": N_("Is in the city where the family would like to live"),
    "nationality": N_("Asked to welcome a family of this nationality"),
    "size": N_("The family's size fits the group's places"),
}


# Helpers --------------------------------------------------------------------------------------------------------


def notice_text(key: str | None) -> str | None:
    return _(NOTICES[key]) if key in NOTICES else None


def labels() -> dict[str, dict[str, str]]:
    """Every display name of Welcome's codes, in the reader's language."""
    return {
        "group_status": {k.value: _(v) for k, v in GROUP_STATUS_NAMES.items()},
        "match_status": {k.value: _(v) for k, v in MATCH_STATUS_NAMES.items()},
        "check": {k.value: _(v) for k, v in CHECK_STATUS_NAMES.items()},
        "kind": {k.value: _(v) for k, v in DONATION_KIND_NAMES.items()},
        "donation_status": {k.value: _(v) for k, v in DONATION_STATUS_NAMES.items()},
        "stream": {k.value: _(v) for k, v in STREAM_NAMES.items()},
        "needs": {k: _(v) for k, v in service.NEEDS.items()},
        "outcomes": {k: _(v) for k, v in service.OUTCOMES.items()},
        "sponsor_fields": {k: _(v) for k, v in SPONSOR_FIELD_NAMES.items()},
        "condition": {"new": _("New, unused"), "good": _("Good"), "fair": _("Fair")},
        "reasons": {k: _(v) for k, v in REASON_WORDS.items()},
    }


def error_map(exc: ProblemError) -> dict[str, str]:
    """Field -> message (several messages for one field joined), or {"form": detail}."""
    out: dict[str, str] = {}
    for e in exc.errors:
        out[e.field] = f"{out[e.field]}; {e.message}" if e.field in out else e.message
    return out or {"form": exc.detail}


def text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def values(form: FormData, name: str, limit: int = 60) -> list[str]:
    return [v.strip()[:40] for v in form.getlist(name)[:limit] if isinstance(v, str) and v.strip()]


def group_data(form: FormData) -> dict[str, Any]:
    """A group's preferences as a posted form gives them (ticked boxes and typed codes together)."""
    data: dict[str, Any] = {k: text(form, k, 600) for k in GROUP_TEXT_FIELDS if k in form}
    typed = [c for c in re.split(r"[\s,;]+", text(form, "languages_other", 200)) if c]
    data["languages"] = list(dict.fromkeys([*values(form, "languages"), *typed]))
    data["nationalities"] = values(form, "nationalities", 250)
    data["supports"] = values(form, "supports")
    return data


def language_choices(chosen: Iterable[str] = ()) -> list[tuple[str, str]]:
    codes = list(dict.fromkeys([*COMMON_LANGUAGES, *chosen]))
    return [(c, i18n.language_name(c)) for c in codes]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _sponsor(p: Principal) -> bool:
    return policy.can(p, "welcome.sponsor")


def _programme(db: Session, p: Principal, programme_id: uuid.UUID, action: str | None = None) -> Programme:
    return policy.access(db, p, Programme, programme_id, action)


def _group(db: Session, p: Principal, group_id: uuid.UUID) -> SponsorGroup:
    return policy.access(db, p, SponsorGroup, group_id, "welcome.group.read")


def _match(db: Session, p: Principal, match_id: uuid.UUID) -> Match:
    return policy.access(db, p, Match, match_id)


def _member(db: Session, group: SponsorGroup, member_id: uuid.UUID) -> SponsorMember:
    member = db.get(SponsorMember, member_id)
    if member is None or member.group_id != group.id:
        raise policy.NotFound()
    return member


def rules_of(programme: Programme) -> dict[str, Any]:
    """The programme's rules, ready to show."""
    return {"min_adults": programme.min_adults, "checks": programme.checks_required,
            "training": programme.training_required, "funds_per_person": programme.funds_per_person,
            "currency": programme.currency, "cash_percent": round(programme.cash_share * 100),
            "support_days": programme.support_days, "streams": list(programme.streams or ["matched"]),
            "stream_names": [_(STREAM_NAMES[Stream(s)]) for s in programme.streams or ["matched"] if s in STREAMS],
            "services": [{"label": service.service_label(s), "due_days": s["due_days"],
                          "per_person": bool(s.get("per_person"))} for s in programme.services]}


def checklist(programme: Programme, group: SponsorGroup, missing: list[service.Missing]) -> list[dict[str, Any]]:
    """Each rule of the programme that applies to the group: met or not, in words."""
    need = service.funds_needed(programme, group)
    rules: list[tuple[str, str]] = [("adults", _("At least %(n)s adults in the group", n=programme.min_adults))]
    if programme.checks_required:
        rules.append(("checks", _("Every adult has passed a background check")))
    if programme.training_required:
        rules.append(("training", _("Every adult has completed the training")))
    if need > 0:
        rules.append(("funds", _("%(need)s %(cur)s pledged for %(n)s people", need=i18n.format_number(need),
                                 cur=programme.currency, n=group.capacity)))
        if programme.cash_share > 0:
            rules.append(("cash", _("At least %(share)s%% of the funds in cash", share=round(programme.cash_share
                                                                                            * 100))))
        rules.append(("funds_verified", _("The programme has verified the funds")))
    rules.append(("plan", _("The welcome plan names someone for every core service")))
    if group.stream.value == "named":
        rules.append(("named_family", _("The family the group will welcome is named")))
    by_code = {m.code: m.text for m in missing}
    out = [{"code": code, "text": words, "met": code not in by_code, "missing": by_code.get(code, "")}
           for code, words in rules]
    known = {code for code, _words in rules}
    out += [{"code": m.code, "text": m.text, "met": False, "missing": m.text} for m in missing if m.code not in known]
    return out


# The programmes -------------------------------------------------------------------------------------------------


@router.get("/welcome")
def index(request: Request, db: DbSession, principal: CurrentPrincipal,
          page: Annotated[int, Query(ge=1, le=100_000)] = 1, notice: str | None = None) -> Response:
    if _sponsor(principal) and not policy.can(principal, "welcome.dashboard"):
        group = db.scalars(policy.scoped(principal, SponsorGroup)
                           .order_by((SponsorGroup.status == GroupStatus.withdrawn), SponsorGroup.created_at.desc())
                           ).first()
        if group is not None:
            return redirect(f"/welcome/groups/{group.id}")
    policy.require(principal, "welcome.programme.read")
    own_first = case((Programme.org_id == principal.org_id, 0), else_=1)
    result = paginate(db, policy.scoped(principal, Programme).order_by(own_first, Programme.name, Programme.id),
                      page=page)
    rows = []
    for programme in result.items:
        figures = None
        if policy.can(principal, "welcome.dashboard", programme):
            figures = service.dashboard(db, actor=principal, programme=programme)
        rows.append({"p": programme, "rules": rules_of(programme), "figures": figures,
                     "own": programme.org_id == principal.org_id})
    return render(request, "welcome/index.html", {
        "page": result, "rows": rows, "labels": labels(), "notice": notice_text(notice),
        "can_create": policy.can(principal, "welcome.programme.create"),
        "no_group": _sponsor(principal)})


def _rules_values(programme: Programme | None) -> dict[str, Any]:
    if programme is None:
        return {"name": "", "slug": "", "description": "", "min_adults": 5, "checks_required": True,
                "training_required": True, "accepting": True, "funds_per_person": 0, "currency": "USD",
                "cash_share": 0, "support_days": 90, "staff_after_days": 7, "streams": ["matched"],
                "sponsor_fields": [f for f in SPONSOR_FIELDS if f != "ages"],
                "services": [s["code"] for s in service.CORE_SERVICES]}
    out: dict[str, Any] = {k: getattr(programme, k) for k in (*PROGRAMME_TEXT_FIELDS, *PROGRAMME_FLAGS)}
    out.update(slug=programme.slug, streams=list(programme.streams), sponsor_fields=list(programme.sponsor_fields),
               services=[s["code"] for s in programme.services])
    return out


def _service_choices(programme: Programme | None) -> list[dict[str, Any]]:
    """The programme's services, then the core services it does not list (to tick)."""
    items = list(programme.services) if programme is not None else []
    codes = {s["code"] for s in items}
    items += [s for s in service.CORE_SERVICES if s["code"] not in codes]
    return [{"code": s["code"], "label": service.service_label(s), "due_days": s["due_days"],
             "per_person": bool(s.get("per_person"))} for s in items]


def programme_data(form: FormData, programme: Programme | None) -> dict[str, Any]:
    """The rules form as the service takes it: boxes not ticked are false, services keep their own settings."""
    data: dict[str, Any] = {k: text(form, k, 6000) for k in PROGRAMME_TEXT_FIELDS}
    for flag in PROGRAMME_FLAGS:
        data[flag] = form.get(flag) == "yes"
    data["streams"] = values(form, "streams")
    data["sponsor_fields"] = values(form, "sponsor_fields")
    chosen = set(values(form, "services"))
    known = list(programme.services) if programme is not None else []
    known += [s for s in service.CORE_SERVICES if s["code"] not in {k["code"] for k in known}]
    data["services"] = [dict(s) for s in known if s["code"] in chosen]
    if programme is None:
        data["slug"] = text(form, "slug", 60)
    return data


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    shown = dict(data)
    shown["services"] = [s["code"] for s in data.get("services", [])]
    return shown


@router.get("/welcome/programmes/new")
def new_programme(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "welcome.programme.create")
    return render(request, "welcome/programme_form.html", {
        "values": _rules_values(None), "errors": {}, "services": _service_choices(None), "labels": labels()})


@router.post("/welcome/programmes/new")
def create_programme(request: Request, db: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    policy.require(principal, "welcome.programme.create")
    data = programme_data(form, None)
    try:
        with db.begin_nested():
            programme = service.create_programme(db, actor=principal, data=data)
    except ValidationFailed as exc:
        return render(request, "welcome/programme_form.html", {
            "values": _form_values(data), "errors": error_map(exc), "services": _service_choices(None),
            "labels": labels()}, status=422)
    return redirect(f"/welcome/programmes/{programme.id}?notice=created")


# A programme's page ---------------------------------------------------------------------------------------------


def _progress(db: Session, match_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Per match: services in all, done, and overdue."""
    if not match_ids:
        return {}
    today = service.today_()
    rows = db.execute(
        select(ServiceTask.match_id, func.count(), func.count(ServiceTask.done_on),
               func.sum(case((and_(ServiceTask.done_on.is_(None), ServiceTask.due_on < today), 1), else_=0)))
        .where(ServiceTask.match_id.in_(match_ids)).group_by(ServiceTask.match_id)).all()
    return {m: {"total": int(t), "done": int(d), "overdue": int(o or 0)} for m, t, d, o in rows}


def _figures(figures: dict[str, Any], lab: dict[str, dict[str, str]]) -> dict[str, Any]:
    groups = [(code, lab["group_status"][code], n) for code, n in figures["groups"].items()]
    services = figures["services"]
    share = services["on_time_share"]
    service_rows = [("on_time", _("Done on time"), services["on_time"]), ("late", _("Done late"), services["late"]),
                    ("overdue", _("Overdue, not done"), services["overdue"])]
    return {
        "groups": groups,
        "groups_total": sum(n for _c, _l, n in groups),
        "groups_chart": charts.bars([(n, label, f"{label}: {i18n.format_number(n)}") for _c, label, n in groups]),
        "services": service_rows,
        "services_chart": charts.bars([(n, label, f"{label}: {i18n.format_number(n)}")
                                       for _c, label, n in service_rows]),
        "on_time_percent": None if share is None else round(share * 100),
    }


def _programme_page(request: Request, db: Session, p: Principal, programme: Programme, *,
                    status_filter: str = "", q: str = "", page: int = 1, notice: str | None = None,
                    errors: dict[str, str] | None = None, rules_values: dict[str, Any] | None = None,
                    propose_values: dict[str, Any] | None = None, status: int = 200) -> Response:
    lab = labels()
    figures = service.dashboard(db, actor=p, programme=programme)
    can_handle = policy.can(p, "welcome.match.propose", programme)
    stmt = policy.scoped(p, SponsorGroup).where(SponsorGroup.programme_id == programme.id)
    status_filter = status_filter if status_filter in lab["group_status"] else ""
    if status_filter:
        stmt = stmt.where(SponsorGroup.status == GroupStatus(status_filter))
    q = q.strip()
    if q:
        stmt = stmt.where(or_(SponsorGroup.name.ilike(_like(q), escape="\\"),
                              SponsorGroup.city.ilike(_like(q), escape="\\")))
    groups = paginate(db, stmt.order_by(SponsorGroup.name, SponsorGroup.id), page=page)
    members: dict[uuid.UUID, list[SponsorMember]] = {g.id: [] for g in groups.items}
    if members:
        for m in db.scalars(select(SponsorMember).where(SponsorMember.group_id.in_(list(members)))
                            .order_by(SponsorMember.created_at, SponsorMember.id)):
            members[m.group_id].append(m)
    missing = {g.id: service.eligibility(programme, g, members[g.id]) for g in groups.items}
    arriving: list[Case] = service.arriving_cases(db, p, programme, limit=500) if can_handle else []
    matches = list(db.scalars(policy.scoped(p, Match).where(Match.programme_id == programme.id,
                                                            Match.status.in_(list(OPEN_MATCHES)))
                              .order_by(Match.created_at.desc(), Match.id)))
    group_names = dict(db.execute(select(SponsorGroup.id, SponsorGroup.name).where(
        SponsorGroup.id.in_([m.group_id for m in matches]))).all()) if matches else {}
    case_numbers = dict(db.execute(select(Case.id, Case.number).where(
        Case.id.in_([m.case_id for m in matches]))).all()) if matches and can_handle else {}
    eligible = list(db.scalars(policy.scoped(p, SponsorGroup).where(
        SponsorGroup.programme_id == programme.id, SponsorGroup.status == GroupStatus.eligible)
        .order_by(SponsorGroup.name))) if can_handle else []
    filters = {k: v for k, v in (("status", status_filter), ("q", q)) if v}
    return render(request, "welcome/programme.html", {
        "programme": programme, "rules": rules_of(programme), "figures": figures, "fig": _figures(figures, lab),
        "labels": lab, "groups": groups, "missing": missing, "members": members, "arriving": arriving,
        "matches": matches, "progress": _progress(db, [m.id for m in matches]), "group_names": group_names,
        "case_numbers": case_numbers, "eligible": eligible, "can_handle": can_handle,
        "can_manage": policy.can(p, "welcome.programme.manage", programme),
        "filters": {"status": status_filter, "q": q}, "base_query": urlencode(filters) + ("&" if filters else ""),
        "notice": notice, "errors": errors or {}, "values": rules_values or _rules_values(programme),
        "services": _service_choices(programme), "propose": propose_values or {}}, status=status)


@router.get("/welcome/programmes/{programme_id}")
def programme_page(request: Request, programme_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   status: Annotated[str, Query(max_length=20)] = "", q: Annotated[str, Query(max_length=100)] = "",
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1, notice: str | None = None) -> Response:
    programme = _programme(db, principal, programme_id, "welcome.dashboard")
    return _programme_page(request, db, principal, programme, status_filter=status, q=q, page=page,
                           notice=notice_text(notice))


@router.post("/welcome/programmes/{programme_id}")
def update_rules(request: Request, programme_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                 form: PostedForm) -> Response:
    programme = _programme(db, principal, programme_id, "welcome.dashboard")
    policy.require(principal, "welcome.programme.manage", programme)
    data = programme_data(form, programme)
    try:
        with db.begin_nested():
            service.update_programme(db, actor=principal, programme=programme, changes=data)
    except ValidationFailed as exc:
        db.refresh(programme)
        return _programme_page(request, db, principal, programme, errors=error_map(exc),
                               rules_values={**_form_values(data), "slug": programme.slug}, status=422)
    return redirect(f"/welcome/programmes/{programme.id}?notice=rules#rules")


@router.post("/welcome/programmes/{programme_id}/match")
def run_matching(request: Request, programme_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    programme = _programme(db, principal, programme_id, "welcome.dashboard")
    policy.require(principal, "welcome.match.propose", programme)
    result = service.run_matching(db, actor=principal, programme=programme)
    group_ids = [pr.group_id for pr in result.proposals] + list(result.unmatched_groups)
    groups = dict(db.execute(select(SponsorGroup.id, SponsorGroup.name)
                             .where(SponsorGroup.id.in_(group_ids))).all()) if group_ids else {}
    family_ids = [pr.family_id for pr in result.proposals] + list(result.unmatched_families)
    families = {c.id: c for c in db.scalars(policy.scoped(principal, Case).where(Case.id.in_(family_ids)))} \
        if family_ids else {}
    matches = {m.case_id: m.id for m in db.scalars(select(Match).where(
        Match.programme_id == programme.id, Match.status == MatchStatus.proposed,
        Match.case_id.in_([pr.family_id for pr in result.proposals])))} if result.proposals else {}
    return render(request, "welcome/matching.html", {
        "programme": programme, "result": result, "groups": groups, "families": families, "matches": matches,
        "labels": labels()})


@router.post("/welcome/programmes/{programme_id}/propose")
def propose(request: Request, programme_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
            form: PostedForm) -> Response:
    programme = _programme(db, principal, programme_id, "welcome.dashboard")
    policy.require(principal, "welcome.match.propose", programme)
    chosen = {"group_id": text(form, "group_id", 40), "case_id": text(form, "case_id", 40),
              "needs": values(form, "needs")}
    errors: dict[str, str] = {}
    group_id, case_id = _uuid(chosen["group_id"]), _uuid(chosen["case_id"])
    group = db.scalars(policy.scoped(principal, SponsorGroup).where(
        SponsorGroup.id == group_id, SponsorGroup.programme_id == programme.id)).first() if group_id else None
    if group is None:
        errors["group_id"] = _("choose one of the programme's eligible groups")
    if case_id is None:
        errors["case_id"] = _("choose one of the arriving families")
    if group is not None and case_id is not None:
        try:
            with db.begin_nested():
                match = service.propose(db, actor=principal, group=group, case_id=case_id,
                                        shared_needs=chosen["needs"])
        except policy.NotFound:
            errors["case_id"] = _("choose one of the arriving families")
        except ProblemError as exc:
            errors = error_map(exc)
    if errors:
        return _programme_page(request, db, principal, programme, errors=errors, propose_values=chosen, status=422)
    return redirect(f"/welcome/matches/{match.id}?notice=proposed")


# Donations ------------------------------------------------------------------------------------------------------


def _donation_reader(db: Session, p: Principal, programme: Programme) -> SponsorGroup | None:
    """None for the programme's staff, the caller's group for its sponsors; 404 for anyone else."""
    if _sponsor(p):
        group = db.scalars(policy.scoped(p, SponsorGroup).where(SponsorGroup.programme_id == programme.id)).first()
        if group is None:
            raise policy.NotFound()
        return group
    if p.org_kind == OrgKind.government and p.org_id == programme.org_id and policy.can(p, "welcome.group.read"):
        return None
    raise policy.NotFound()


def _donations_page(request: Request, db: Session, p: Principal, programme: Programme, *, kind: str = "",
                    status_filter: str = "", page: int = 1, notice: str | None = None, error: str | None = None,
                    status: int = 200) -> Response:
    group = _donation_reader(db, p, programme)
    lab = labels()
    stmt = policy.scoped(p, Donation).where(Donation.programme_id == programme.id)
    kind = kind if kind in lab["kind"] else ""
    status_filter = status_filter if status_filter in lab["donation_status"] else ""
    if kind:
        stmt = stmt.where(Donation.kind == DonationKind(kind))
    if status_filter:
        stmt = stmt.where(Donation.status == DonationStatus(status_filter))
    items = paginate(db, stmt.order_by(Donation.created_at.desc(), Donation.id), page=page)
    ledger = list(db.scalars(policy.scoped(p, Donation).where(
        Donation.programme_id == programme.id, Donation.status == DonationStatus.given)
        .order_by(Donation.given_on.desc(), Donation.id).limit(200)))
    group_ids = {d.claimed_by_group_id for d in [*items.items, *ledger] if d.claimed_by_group_id}
    names = dict(db.execute(select(SponsorGroup.id, SponsorGroup.name).where(
        SponsorGroup.id.in_(list(group_ids)))).all()) if group_ids else {}
    if group is not None:  # a sponsor: other groups (often named after their households) stay unnamed
        names = {gid: (name if gid == group.id else _("another group")) for gid, name in names.items()}
    has_family = group is not None and bool(db.scalar(select(func.count()).where(
        Match.group_id == group.id, Match.status == MatchStatus.active)))
    filters = {k: v for k, v in (("kind", kind), ("status", status_filter)) if v}
    return render(request, "welcome/donations.html", {
        "programme": programme, "group": group, "items": items, "ledger": ledger, "names": names, "labels": lab,
        "filters": {"kind": kind, "status": status_filter}, "has_family": has_family,
        "base_query": urlencode(filters) + ("&" if filters else ""), "notice": notice, "error": error,
        "today": service.today_()}, status=status)


@router.get("/welcome/programmes/{programme_id}/donations")
def donations(request: Request, programme_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              kind: Annotated[str, Query(max_length=20)] = "", status: Annotated[str, Query(max_length=20)] = "",
              page: Annotated[int, Query(ge=1, le=100_000)] = 1, notice: str | None = None) -> Response:
    programme = _programme(db, principal, programme_id)
    return _donations_page(request, db, principal, programme, kind=kind, status_filter=status, page=page,
                           notice=notice_text(notice))


def _donation_action(request: Request, db: Session, p: Principal, donation_id: uuid.UUID, what: str,
                     form: FormData) -> Response:
    donation = policy.access(db, p, Donation, donation_id)
    if not _sponsor(p):
        raise policy.NotFound()  # the staff see the ledger; the groups claim and give
    group = db.scalars(policy.scoped(p, SponsorGroup).where(
        SponsorGroup.programme_id == donation.programme_id)).first()
    programme = db.get(Programme, donation.programme_id)
    if group is None or programme is None:
        raise policy.NotFound()
    try:
        with db.begin_nested():
            if what == "claim":
                service.claim_donation(db, actor=p, group=group, donation=donation)
            elif what == "give":
                service.give_donation(db, actor=p, group=group, donation=donation, on=text(form, "given_on", 20))
            else:
                service.release_donation(db, actor=p, group=group, donation=donation)
    except ProblemError as exc:
        message = "; ".join(error_map(exc).values())
        return _donations_page(request, db, p, programme, error=message,
                               status=422 if isinstance(exc, ValidationFailed) else 409)
    done = {"claim": "claimed", "give": "given", "release": "released"}[what]
    return redirect(f"/welcome/programmes/{programme.id}/donations?notice={done}")


@router.post("/welcome/donations/{donation_id}/claim")
def claim_donation(request: Request, donation_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   form: PostedForm) -> Response:
    return _donation_action(request, db, principal, donation_id, "claim", form)


@router.post("/welcome/donations/{donation_id}/give")
def give_donation(request: Request, donation_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  form: PostedForm) -> Response:
    return _donation_action(request, db, principal, donation_id, "give", form)


@router.post("/welcome/donations/{donation_id}/release")
def release_donation(request: Request, donation_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     form: PostedForm) -> Response:
    return _donation_action(request, db, principal, donation_id, "release", form)


# A group's page -------------------------------------------------------------------------------------------------


def _group_values(group: SponsorGroup) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(group, k) for k in GROUP_TEXT_FIELDS}
    out.update(stream=group.stream.value, languages=list(group.languages), nationalities=list(group.nationalities),
               supports=list(group.supports))
    return out


def _group_page(request: Request, db: Session, p: Principal, group: SponsorGroup, *, notice: str | None = None,
                errors: dict[str, str] | None = None, form_values: dict[str, Any] | None = None,
                status: int = 200) -> Response:
    programme = db.get(Programme, group.programme_id)
    assert programme is not None
    members = service.members_of(db, group)
    missing = service.eligibility(programme, group, members)
    plan = {item.get("service"): item.get("member_id") for item in group.plan}
    match = db.scalars(select(Match).where(Match.group_id == group.id)
                       .order_by(Match.status.in_(list(OPEN_MATCHES)).desc(), Match.created_at.desc())).first()
    shown = form_values or _group_values(group)
    ended = group.status in (GroupStatus.completed, GroupStatus.withdrawn)
    lab = labels()
    return render(request, "welcome/group.html", {
        "group": group, "programme": programme, "rules": rules_of(programme), "members": members,
        "missing": missing, "checklist": checklist(programme, group, missing), "labels": lab,
        "support_names": [lab["needs"].get(code, code) for code in group.supports],
        "plan": plan, "plan_services": [{"code": s["code"], "label": service.service_label(s)}
                                        for s in programme.services],
        "match": match, "values": shown, "languages": language_choices(shown.get("languages") or []),
        "need": service.funds_needed(programme, group), "notice": notice, "errors": errors or {},
        "staff": policy.can(p, "welcome.group.verify", group),
        "can_edit": policy.can(p, "welcome.group.edit", group) and not ended,
        "sponsor": policy.can(p, "welcome.match.respond", group),
        "can_read_programme": policy.can(p, "welcome.dashboard", programme)}, status=status)


def _problem_page(request: Request, db: Session, p: Principal, group_id: uuid.UUID, exc: ProblemError,
                  form_values: dict[str, Any] | None = None) -> Response:
    group = _group(db, p, group_id)
    db.refresh(group)
    status = 422 if isinstance(exc, ValidationFailed) else 409
    return _group_page(request, db, p, group, errors=error_map(exc), form_values=form_values, status=status)


@router.get("/welcome/groups/{group_id}")
def group_page(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
               notice: str | None = None) -> Response:
    group = _group(db, principal, group_id)
    return _group_page(request, db, principal, group, notice=notice_text(notice))


@router.post("/welcome/groups/{group_id}")
def update_group(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                 form: PostedForm) -> Response:
    group = _group(db, principal, group_id)
    data = group_data(form)
    try:
        with db.begin_nested():
            service.update_group(db, actor=principal, group=group, changes=data)
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc, {**_group_values(group), **data})
    return redirect(f"/welcome/groups/{group.id}?notice=saved")


@router.post("/welcome/groups/{group_id}/plan")
def update_plan(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                form: PostedForm) -> Response:
    group = _group(db, principal, group_id)
    plan = {key[5:]: value for key, value in form.multi_items()
            if key.startswith("plan.") and isinstance(value, str) and len(key) <= 50 and len(value) <= 40}
    try:
        with db.begin_nested():
            service.update_group(db, actor=principal, group=group, changes={"plan": plan})
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=plan#plan")


@router.post("/welcome/groups/{group_id}/members")
def add_member(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
               form: PostedForm) -> Response:
    group = _group(db, principal, group_id)
    data = {"full_name": text(form, "full_name", 300), "email": text(form, "email", 400),
            "adult": form.get("adult") == "yes"}
    try:
        with db.begin_nested():
            service.add_member(db, actor=principal, group=group, data=data)
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=member#members")


@router.post("/welcome/groups/{group_id}/members/{member_id}/remove")
def remove_member(request: Request, group_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                  principal: CurrentPrincipal) -> Response:
    group = _group(db, principal, group_id)
    member = _member(db, group, member_id)
    try:
        with db.begin_nested():
            service.remove_member(db, actor=principal, group=group, member=member)
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=removed#members")


@router.post("/welcome/groups/{group_id}/members/{member_id}/check")
def record_check(request: Request, group_id: uuid.UUID, member_id: uuid.UUID, db: DbSession,
                 principal: CurrentPrincipal, form: PostedForm) -> Response:
    group = _group(db, principal, group_id)
    member = _member(db, group, member_id)
    check = text(form, "check", 20) or None
    trained = text(form, "trained_on", 20) if "trained_on" in form else None
    try:
        with db.begin_nested():
            service.record_check(db, actor=principal, group=group, member=member, check=check, trained_on=trained)
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=check#members")


@router.post("/welcome/groups/{group_id}/verify-funds")
def verify_funds(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    group = _group(db, principal, group_id)
    try:
        with db.begin_nested():
            service.verify_funds(db, actor=principal, group=group)
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=verified#funds")


@router.post("/welcome/groups/{group_id}/withdraw")
def withdraw(request: Request, group_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
             form: PostedForm) -> Response:
    group = _group(db, principal, group_id)
    policy.require(principal, "welcome.group.edit", group)
    if form.get("confirm") != "yes":
        return _group_page(request, db, principal, group, status=422,
                           errors={"confirm": _("Tick the box to confirm that the group withdraws.")})
    try:
        with db.begin_nested():
            service.withdraw_group(db, actor=principal, group=group, reason=text(form, "reason", 200))
    except ProblemError as exc:
        return _problem_page(request, db, principal, group_id, exc)
    return redirect(f"/welcome/groups/{group.id}?notice=withdrawn")


# A match's page -------------------------------------------------------------------------------------------------


def _match_page(request: Request, db: Session, p: Principal, match: Match, *, notice: str | None = None,
                errors: dict[str, str] | None = None, status: int = 200) -> Response:
    programme = db.get(Programme, match.programme_id)
    group = db.get(SponsorGroup, match.group_id)
    assert programme is not None and group is not None
    staff = policy.can(p, "welcome.match.propose", programme)
    members = service.members_of(db, group)
    tasks = service.tasks_of(db, match)
    today = service.today_()
    rows = [{"task": t, "label": service.service_label({"code": t.code, "label": t.label}),
             "overdue": service.overdue(t, today)} for t in tasks]
    done = sum(1 for t in tasks if t.done_on is not None)
    context: dict[str, Any] = {
        "match": match, "programme": programme, "group": group, "view": service.sponsor_view(programme, match),
        "members": members, "member_names": {m.id: m.full_name for m in members}, "tasks": rows,
        "done": done, "overdue": sum(1 for r in rows if r["overdue"]), "labels": labels(), "staff": staff,
        "sponsor": policy.can(p, "welcome.match.respond", group),
        "can_update": policy.can(p, "welcome.task.update", group), "today": today, "notice": notice,
        "errors": errors or {}, "active": match.status == MatchStatus.active,
        "proposed": match.status == MatchStatus.proposed, "open": match.status in OPEN_MATCHES,
    }
    if staff:  # the case itself: never on a sponsor's page
        context["case"] = db.scalars(policy.scoped(p, Case).where(Case.id == match.case_id)).first()
    return render(request, "welcome/match.html", context, status=status)


def _match_problem(request: Request, db: Session, p: Principal, match_id: uuid.UUID,
                   exc: ProblemError) -> Response:
    match = _match(db, p, match_id)
    db.refresh(match)
    return _match_page(request, db, p, match, errors=error_map(exc),
                       status=422 if isinstance(exc, ValidationFailed) else 409)


@router.get("/welcome/matches/{match_id}")
def match_page(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
               notice: str | None = None) -> Response:
    match = _match(db, principal, match_id)
    return _match_page(request, db, principal, match, notice=notice_text(notice))


@router.post("/welcome/matches/{match_id}/answer")
def answer(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
           form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    try:
        with db.begin_nested():
            service.respond_as_group(db, actor=principal, match=match, accept=form.get("accept") == "yes",
                                     reason=text(form, "reason", 500))
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice=answered")


@router.post("/welcome/matches/{match_id}/family")
def family_answer(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    try:
        with db.begin_nested():
            service.record_family_answer(db, actor=principal, match=match, accept=form.get("accept") == "yes",
                                         reason=text(form, "reason", 500))
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice=family")


@router.post("/welcome/matches/{match_id}/arrival")
def arrival(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
            form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    notice = {k: text(form, k, 600) for k in NOTICE_FIELDS}
    try:
        with db.begin_nested():
            service.set_arrival(db, actor=principal, match=match, arrival_on=text(form, "arrival_on", 20),
                                notice=notice)
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice=arrival")


@router.post("/welcome/matches/{match_id}/cancel")
def cancel(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
           form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    try:
        with db.begin_nested():
            service.cancel_match(db, actor=principal, match=match, reason=text(form, "reason", 500))
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice=cancelled")


@router.post("/welcome/matches/{match_id}/tasks/{task_id}")
def update_task(request: Request, match_id: uuid.UUID, task_id: uuid.UUID, db: DbSession,
                principal: CurrentPrincipal, form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    task = db.get(ServiceTask, task_id)
    if task is None or task.match_id != match.id:
        raise policy.NotFound()
    changes = {k: text(form, k, 2100) for k in TASK_FIELDS if k in form}
    try:
        with db.begin_nested():
            service.update_task(db, actor=principal, match=match, task=task, changes=changes)
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice=task#task-{task.id}")


@router.post("/welcome/matches/{match_id}/outcomes")
def outcomes(request: Request, match_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
             form: PostedForm) -> Response:
    match = _match(db, principal, match_id)
    answers: dict[str, Any] = {k: text(form, k, 10) for k in (*service.OUTCOMES, "notes") if k in form}
    if "notes" in answers:
        answers["notes"] = text(form, "notes", 2000)
    complete = form.get("complete") == "1"
    try:
        with db.begin_nested():
            service.record_outcomes(db, actor=principal, match=match, outcomes=answers, complete=complete)
    except ProblemError as exc:
        return _match_problem(request, db, principal, match_id, exc)
    return redirect(f"/welcome/matches/{match.id}?notice={'completed' if complete else 'outcomes'}#outcomes")
