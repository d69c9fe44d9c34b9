"""The office staff's pages: the caseworkers' queue, a registration's file (names and contact opened as an
audited sensitive read; household, answers, screening results with each check in words, the interview, possible
duplicates with a merge form, closing, and the form that turns it into a case referred to a government), and the
office dashboard with its charts, tables and CSV files (HXL hashtags)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.models import PURPOSE_NAMES
from rdn.core import i18n, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.web import CurrentPrincipal, DbSession, redirect, render
from rdn.mobility import appointments, convert, dashboard, registration, screening
from rdn.mobility import queue as work
from rdn.mobility.models import (
    APPOINTMENT_STATUS_NAMES,
    OPEN_STATUSES,
    REGISTRATION_STATUS_NAMES,
    Appointment,
    Office,
    Registration,
    RegistrationStatus,
    Slot,
)
from rdn.mobility.pages_calendar import booking_options
from rdn.pathways.models import PATHWAY_TYPE_NAMES
from rdn.web import charts

router = page_router()

NOTICES = {
    "merged": i18n.N_("The registrations are merged."),
    "closed": i18n.N_("The registration is closed."),
}
TAB_NAMES = {"new": i18n.N_("New"), "review": i18n.N_("To review"), "today": i18n.N_("Interviews today"),
             "all": i18n.N_("All")}
RELATIONSHIP_NAMES = {"principal": i18n.N_("Principal applicant"), "spouse": i18n.N_("Spouse"),
                      "child": i18n.N_("Child"), "parent": i18n.N_("Parent"), "sibling": i18n.N_("Sibling"),
                      "other": i18n.N_("Other")}
SEX_NAMES = {"f": i18n.N_("Female"), "m": i18n.N_("Male"), "x": i18n.N_("Other")}
#: The dashboard's files, each: (column, HXL hashtag).
CSV_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "weeks": (("offices", "#org+code"), ("week_start", "#date+week_start"),
              ("registrations", "#affected+registered+num"), ("screened", "#affected+screened+num"),
              ("referred", "#affected+referred+num"), ("arrived", "#affected+arrived+num")),
    "nationalities": (("offices", "#org+code"), ("nationality", "#country+code+nationality"),
                      ("nationality_name", "#country+name+nationality"),
                      ("registrations", "#affected+registered+num"), ("screened", "#affected+screened+num"),
                      ("referred", "#affected+referred+num"), ("arrived", "#affected+arrived+num")),
    "pathways": (("offices", "#org+code"), ("pathway_id", "#activity+code+pathway"),
                 ("pathway", "#activity+name+pathway"), ("qualifying", "#affected+qualifying+num"),
                 ("referred", "#affected+referred+num"), ("arrived", "#affected+arrived+num")),
    "statuses": (("offices", "#org+code"), ("status", "#status+code"), ("status_name", "#status+name"),
                 ("registrations", "#affected+num")),
}


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _labels() -> dict[str, Any]:
    return {"status": {k.value: _(v) for k, v in REGISTRATION_STATUS_NAMES.items()},
            "appointment": {k.value: _(v) for k, v in APPOINTMENT_STATUS_NAMES.items()},
            "tab": {k: _(v) for k, v in TAB_NAMES.items()},
            "relationship": {k: _(v) for k, v in RELATIONSHIP_NAMES.items()},
            "sex": {k: _(v) for k, v in SEX_NAMES.items()},
            "purpose": {k.value: _(v) for k, v in PURPOSE_NAMES.items()},
            "pathway_type": {k.value: _(v) for k, v in PATHWAY_TYPE_NAMES.items()}}


def _errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _cell(text: str) -> str:
    """Text a spreadsheet would read as a formula gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# The queue --------------------------------------------------------------------------------------------------------


@router.get("/mobility")
def queue_page(request: Request, db: DbSession, principal: CurrentPrincipal,
               tab: Annotated[str, Query(max_length=10)] = "new", q: Annotated[str, Query(max_length=40)] = "",
               nationality: Annotated[str, Query(max_length=2)] = "",
               status: Annotated[str, Query(max_length=20)] = "", page: Annotated[int, Query(ge=1, le=100_000)] = 1,
               notice: str | None = None) -> Response:
    if not policy.can(principal, "mobility.registration.read") and policy.can(principal, "mobility.figures"):
        return redirect("/mobility/dashboard")  # analysts and the secretariat see figures, never people
    policy.require(principal, "mobility.registration.read")
    tab = tab if tab in work.TABS else "new"
    filters = {"q": q.strip(), "nationality": nationality.strip().upper(), "status": status}
    errors: dict[str, str] = {}
    try:
        result = work.queue(db, principal, tab=tab, page=page, **filters)
        counts = work.tab_counts(db, principal, **filters)
    except ValidationFailed as exc:
        errors = {e.field: e.message for e in exc.errors}
        filters = {"q": "", "nationality": "", "status": ""}
        result = work.queue(db, principal, tab=tab, page=1)
        counts = work.tab_counts(db, principal)
    office = work.office_of(db, principal)
    return render(request, "mobility/queue.html", {
        "page": result, "tab": tab, "counts": counts, "filters": filters, "errors": errors, "office": office,
        "labels": _labels(), "nationalities": work.nationalities(db, principal), "notice": _notice(notice),
        "filter_query": urlencode({"tab": tab, **{k: v for k, v in filters.items() if v}}),
        "tab_query": urlencode({k: v for k, v in filters.items() if v}),
        "local": (lambda at: appointments.local(office, at)) if office else (lambda at: at),
        "can_figures": policy.can(principal, "mobility.figures", office) if office else False})


# One registration -------------------------------------------------------------------------------------------------


def _history_rows(reg: Registration) -> list[dict[str, Any]]:
    return [h for h in reversed(reg.history or []) if isinstance(h, dict)]


def _file(request: Request, db: Session, principal: Principal, reg: Registration, *,
          errors: dict[str, str] | None = None, values: dict[str, Any] | None = None, notice: str | None = None,
          status: int = 200) -> Response:
    office = db.get(Office, reg.office_id)
    assert office is not None
    opened = work.open_file(db, actor=principal, registration=reg)
    names = opened["identity"].get("members") or []
    people = []
    for i, member in enumerate((reg.profile or {}).get("members") or []):
        name = names[i] if i < len(names) and isinstance(names[i], dict) else {}
        people.append({**member, "given_name": name.get("given_name", ""), "family_name": name.get("family_name", "")})
    questions = {str(qn.get("key")): qn for qn in screening.questions_for(db, office.id) if isinstance(qn, dict)}
    language = i18n.locale_var.get()
    answers = [(screening.question_text(questions[key], language) if key in questions else key, value)
               for key, value in (reg.answers or {}).items()]
    results = [{"result": res, "rule": rule,
                "checks": [(screening.describe(check, questions=rule.questions), bool(check.get("held")))
                           for check in res.checks or [] if isinstance(check, dict)]}
               for res, rule in screening.results_of(db, reg)]
    current = appointments.current_appointment(db, reg)
    past = db.execute(select(Appointment, Slot).join(Slot, Slot.id == Appointment.slot_id)
                      .where(Appointment.registration_id == reg.id).order_by(Slot.starts_at.desc())).all()
    can_handle = policy.can(principal, "mobility.registration.handle", reg)
    open_ = reg.status in OPEN_STATUSES
    options = convert.choices(db, reg) if can_handle and convert.convertible(reg) else []
    return render(request, "mobility/registration.html", {
        "reg": reg, "office": office, "people": people, "contact": opened["contact"], "answers": answers,
        "results": results, "current": current, "appointments": past, "labels": _labels(),
        "local": lambda at: appointments.local(office, at), "today": appointments.today_at(office),
        "duplicates": work.duplicates_of(db, principal, reg) if reg.status != RegistrationStatus.merged else [],
        "merged_into": db.get(Registration, reg.merged_into_id) if reg.merged_into_id else None,
        "history": _history_rows(reg), "can_handle": can_handle, "is_open": open_,
        "slot_options": booking_options(db, office) if can_handle and open_ else [],
        "choices": options, "governments": convert.governments(db, office) if options else [],
        "no_shows": appointments.no_shows(db, reg),
        "errors": errors or {}, "values": values or {}, "notice": notice}, status=status)


@router.get("/mobility/registrations/{registration_id}")
def registration_page(request: Request, registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                      notice: str | None = None) -> Response:
    reg = work.access_registration(db, principal, registration_id)
    return _file(request, db, principal, reg, notice=_notice(notice))


@router.post("/mobility/registrations/{registration_id}/merge")
def merge(request: Request, registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
          other_id: Annotated[str, Form(max_length=40)] = "",
          keep: Annotated[str, Form(max_length=10)] = "this") -> Response:
    """Merge this registration and one of its possible duplicates: ``keep`` says which stays ("this" or
    "other"); the other is closed as merged into it."""
    reg = work.access_registration(db, principal, registration_id, "mobility.registration.handle")
    try:
        other = work.access_registration(db, principal, other_id, "mobility.registration.handle")
    except policy.NotFound:
        other = None
    if other is None or other.id not in {d.id for d in work.duplicates_of(db, principal, reg)}:
        return _file(request, db, principal, reg, errors={"other_id": _("choose one of the possible duplicates")},
                     status=422)
    kept, duplicate = (other, reg) if keep == "other" else (reg, other)
    try:
        registration.merge(db, actor=principal, keep=kept, duplicate=duplicate)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        reg = work.access_registration(db, principal, registration_id)
        return _file(request, db, principal, reg, errors=errors, status=422)
    return redirect(f"/mobility/registrations/{kept.id}?notice=merged")


@router.post("/mobility/registrations/{registration_id}/close")
def close(request: Request, registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
          reason: Annotated[str, Form(max_length=600)] = "") -> Response:
    reg = work.access_registration(db, principal, registration_id, "mobility.registration.handle")
    try:
        work.close(db, actor=principal, registration=reg, reason=reason)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        reg = work.access_registration(db, principal, registration_id)
        return _file(request, db, principal, reg, errors=errors, values={"reason": reason}, status=422)
    return redirect(f"/mobility/registrations/{registration_id}?notice=closed")


@router.post("/mobility/registrations/{registration_id}/convert")
def convert_registration(request: Request, registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                         rule_id: Annotated[str, Form(max_length=40)] = "",
                         government_org_id: Annotated[str, Form(max_length=40)] = "",
                         note: Annotated[str, Form(max_length=5000)] = "") -> Response:
    reg = work.access_registration(db, principal, registration_id, "mobility.registration.handle")
    try:
        case, _round = convert.convert(db, actor=principal, registration=reg, rule_id=rule_id,
                                       government_org_id=government_org_id, note=note)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        reg = work.access_registration(db, principal, registration_id)
        return _file(request, db, principal, reg, errors=errors, status=422,
                     values={"rule_id": rule_id, "government_org_id": government_org_id, "note": note})
    return redirect(f"/cases/{case.id}")


# The dashboard ----------------------------------------------------------------------------------------------------


def _dashboard_office(db: Session, principal: Principal, slug: str) -> Office | None:
    """The office asked for (by its slug), the actor's own office, or None (every office the actor may see)."""
    if slug:
        office = db.scalars(policy.scoped(principal, Office).where(Office.slug == slug)).first()
        if office is None or not policy.can(principal, "mobility.figures", office):
            raise policy.NotFound()
        return office
    return work.office_of(db, principal)


def _week_bars(fig: dashboard.Figures, measure: str, words: str) -> dict[str, Any] | None:
    return charts.bars([(getattr(w, measure), i18n.format_date(w.week, fmt="short") if k % 4 == 0 else "",
                         _("%(words)s in the week of %(date)s: %(n)s", words=words, date=i18n.format_date(w.week),
                           n=i18n.format_number(getattr(w, measure))))
                        for k, w in enumerate(fig.weeks)])


def _group_bars(groups: list[dashboard.Group], measure: str, label: Any, limit: int = 15) -> dict[str, Any] | None:
    shown = [g for g in groups if getattr(g, measure)][:limit]
    return charts.bars([(getattr(g, measure), g.key if len(g.key) == 2 else str(k + 1),
                         f"{label(g)}: {i18n.format_number(getattr(g, measure))}") for k, g in enumerate(shown)])


@router.get("/mobility/dashboard")
def dashboard_page(request: Request, db: DbSession, principal: CurrentPrincipal,
                   office: Annotated[str, Query(max_length=40)] = "",
                   weeks: Annotated[int, Query(ge=4, le=104)] = 26) -> Response:
    chosen = _dashboard_office(db, principal, office)
    fig = dashboard.figures(db, principal, chosen, weeks=weeks)
    choices = dashboard.visible_offices(db, principal) if chosen is None or office else []

    def pathway_label(g: dashboard.Group) -> str:
        return g.label or _("Rules without a catalog pathway")

    return render(request, "mobility/dashboard.html", {
        "fig": fig, "office": chosen, "offices": choices, "weeks": weeks, "labels": _labels(),
        "dash_query": urlencode({k: v for k, v in (("office", office), ("weeks", weeks if weeks != 26 else ""))
                                 if v}),
        "charts": {
            "registrations": _week_bars(fig, "registrations", _("Registrations")),
            "referred": _week_bars(fig, "referred", _("Referred")),
            "arrived": _week_bars(fig, "arrived", _("Arrived")),
            "nationalities": _group_bars(fig.nationalities, "registrations", lambda g: i18n.country_name(g.key)),
            "pathways": _group_bars(fig.pathways, "referred", pathway_label),
        },
        "pathway_label": pathway_label,
        "no_show_percent": None if fig.no_show_rate is None else round(fig.no_show_rate * 100)})


@router.get("/mobility/dashboard.csv")
def dashboard_csv(db: DbSession, principal: CurrentPrincipal, office: Annotated[str, Query(max_length=40)] = "",
                  table: Annotated[str, Query(max_length=20)] = "weeks",
                  weeks: Annotated[int, Query(ge=4, le=104)] = 26) -> Response:
    """One of the dashboard's tables: a header row, a row of HXL hashtags, then the figures."""
    if table not in CSV_TABLES:
        raise ValidationFailed("table", _("must be one of %(values)s", values=", ".join(CSV_TABLES)))
    chosen = _dashboard_office(db, principal, office)
    fig = dashboard.figures(db, principal, chosen, weeks=weeks)
    slugs = ";".join(o.slug for o in fig.offices)
    columns = CSV_TABLES[table]
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _tag in columns])
    writer.writerow([tag for _name, tag in columns])
    with i18n.using("en"):
        if table == "weeks":
            for w in fig.weeks:
                writer.writerow([slugs, w.week.isoformat(), w.registrations, w.screened, w.referred, w.arrived])
        elif table == "nationalities":
            for g in fig.nationalities:
                writer.writerow([slugs, g.key, i18n.country_name(g.key), g.registrations, g.screened, g.referred,
                                 g.arrived])
        elif table == "pathways":
            for g in fig.pathways:
                writer.writerow([slugs, g.key, _cell(g.label), g.qualifying, g.referred, g.arrived])
        else:
            for status, n in fig.statuses.items():
                writer.writerow([slugs, status, REGISTRATION_STATUS_NAMES[RegistrationStatus(status)], n])
    name = f"rdn-safe-mobility-{chosen.slug if chosen else 'all'}-{table}.csv"
    return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

