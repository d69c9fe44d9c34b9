"""The network picture's pages.

* ``/reports``: the network dashboard (every member's staff): headline cards, and for each table its chart, its
  table view and its CSV; the whole as XLSX; links to the member views the caller may open and to the quarterly
  report.
* ``/reports/members/{short name}``: one government's view, for its own officials and the secretariat (the same
  404 for anyone else as for a government that does not exist).
* ``/reports/quarterly``: the quarterly report as a printable page, and ``/reports/quarterly.pdf`` the same as a
  PDF made here (no online service).
* ``/reports/needs``: the projected needs (read by all who read the dashboard, entered by the secretariat).
* ``/transparency``: the public page (when the deployment turns it on), with small counts suppressed, and its CSVs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import clock, i18n, policy
from rdn.core.errors import ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.tenancy import Organization
from rdn.core.web import CurrentPrincipal, DbSession, OptionalPrincipal, PostedForm, redirect, render
from rdn.reports import figures, pdf, present, service, tables
from rdn.reports.figures import Period
from rdn.reports.models import Need
from rdn.reports.regions import REGIONS

router = page_router()

SCOPE_NAMES = {"all": N_("Everyone"), "population": N_("A population"), "region": N_("A region of asylum")}


def _period(value: str | None, *, quarter: bool = False) -> Period:
    return service.period_asked(value, quarter=quarter)


def _years() -> list[int]:
    year = clock.now().year
    return [year, year - 1, year - 2]


def _government(session: Session, principal: Principal, short_name: str) -> Organization:
    """The government whose view the caller may open; the same 404 for a missing one and for another's."""
    org = service.government_by_short_name(session, short_name)
    if org is None:
        raise policy.NotFound()
    policy.require(principal, "report.member.read", org)
    return org


def _seen(session: Session, principal: Principal, period: Period, government: uuid.UUID | None = None
          ) -> dict[str, Any]:
    """A view's figures as the caller may see them (rdn.reports.service.for_viewer)."""
    return service.for_viewer(session, service.picture(session, period=period, government=government),
                              principal=principal)


def _member_links(session: Session, principal: Principal) -> list[Organization]:
    return [o for o in figures.governments(session) if policy.can(principal, "report.member.read", o)]


def _context(data: dict[str, Any], view: str, csv_base: str, *, threshold: int | None = None,
             period: str | None = None) -> dict[str, Any]:
    public = present.suppressed_view(data, threshold) if threshold else None
    summary = public["summary"] if public is not None else None  # type: ignore[index]
    return {
        "data": data, "cards": present.cards(summary, data),  # type: ignore[arg-type]
        "sections": present.sections(data, view, csv_base, public=public, period=period),
        "as_of": i18n.format_datetime(datetime.fromisoformat(data["computed_at"])),
        "sources": data.get("sources") or [],
    }


def _csv(spec_id: str, rows: list[dict[str, Any]], name: str) -> Response:
    spec = tables.BY_ID[spec_id]
    return Response(tables.to_csv(spec, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _spec(spec_id: str, view: str) -> tables.Spec:
    spec = tables.BY_ID.get(spec_id.removesuffix(".csv"))
    if spec is None or spec not in tables.specs_for(view):
        raise policy.NotFound()
    return spec


def _xlsx(view_tables: list[tuple[tables.Spec, list[dict[str, Any]]]], name: str) -> Response:
    return Response(tables.to_xlsx(view_tables),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


# The network dashboard ----------------------------------------------------------------------------------------


@router.get("/reports")
def dashboard(request: Request, session: DbSession, principal: CurrentPrincipal, period: str = "",
              queued: str = "") -> Response:
    policy.require(principal, "report.network.read")
    p = _period(period)
    data = _seen(session, principal, p)
    return render(request, "reports/dashboard.html", {
        **_context(data, "network", "/reports/tables/"), "period": p, "years": _years(), "view": "network",
        "members": _member_links(session, principal), "government": None,
        "xlsx": f"/reports/network.xlsx?period={p.key}", "can_refresh": policy.can(principal, "report.refresh"),
        "queued": bool(queued),
    })


@router.get("/reports/tables/{table}")
def network_csv(session: DbSession, principal: CurrentPrincipal, table: str, period: str = "") -> Response:
    policy.require(principal, "report.network.read")
    spec = _spec(table, "network")
    p = _period(period)
    data = _seen(session, principal, p)
    return _csv(spec.id, tables.rows_of(spec, data), f"rdn-network-{spec.id}-{p.key}")


@router.get("/reports/network.xlsx")
def network_xlsx(session: DbSession, principal: CurrentPrincipal, period: str = "") -> Response:
    policy.require(principal, "report.network.read")
    p = _period(period)
    data = _seen(session, principal, p)
    return _xlsx([(s, tables.rows_of(s, data)) for s in tables.specs_for("network")], f"rdn-network-{p.key}")


@router.post("/reports/refresh")
def refresh(session: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    p = _period(str(form.get("period") or ""))
    member = str(form.get("member") or "")
    government: uuid.UUID | None = None
    if member:
        government = _government(session, principal, member).id
    else:
        policy.require(principal, "report.network.read")
    service.refresh_on_request(session, actor=principal, period=p, government=government)
    target = f"/reports/members/{member}" if member else "/reports"
    return redirect(f"{target}?period={p.key}&queued=1")


# A member government's view -----------------------------------------------------------------------------------


@router.get("/reports/members/{short_name}")
def member(request: Request, session: DbSession, principal: CurrentPrincipal, short_name: str,
           period: str = "", queued: str = "") -> Response:
    org = _government(session, principal, short_name)
    p = _period(period)
    data = _seen(session, principal, p, org.id)
    return render(request, "reports/dashboard.html", {
        **_context(data, "member", f"/reports/members/{org.short_name}/tables/"), "period": p, "years": _years(),
        "view": "member", "members": [], "government": org,
        "xlsx": f"/reports/members/{org.short_name}/all.xlsx?period={p.key}",
        "can_refresh": policy.can(principal, "report.refresh"), "queued": bool(queued),
    })


@router.get("/reports/members/{short_name}/tables/{table}")
def member_csv(session: DbSession, principal: CurrentPrincipal, short_name: str, table: str,
               period: str = "") -> Response:
    org = _government(session, principal, short_name)
    spec = _spec(table, "member")
    p = _period(period)
    data = _seen(session, principal, p, org.id)
    return _csv(spec.id, tables.rows_of(spec, data), f"rdn-{org.short_name}-{spec.id}-{p.key}")


@router.get("/reports/members/{short_name}/all.xlsx")
def member_xlsx(session: DbSession, principal: CurrentPrincipal, short_name: str, period: str = "") -> Response:
    org = _government(session, principal, short_name)
    p = _period(period)
    data = _seen(session, principal, p, org.id)
    return _xlsx([(s, tables.rows_of(s, data)) for s in tables.specs_for("member")], f"rdn-{org.short_name}-{p.key}")


# The quarterly report -----------------------------------------------------------------------------------------


def _quarterly(session: Session, principal: Principal, period: str, member_short: str
               ) -> tuple[Period, Organization | None, dict[str, Any]]:
    org = _government(session, principal, member_short) if member_short else None
    if org is None:
        policy.require(principal, "report.network.read")
    p = _period(period, quarter=True)
    if p.quarter is None:
        raise ValidationFailed("period", _("Give a quarter, such as 2026Q3."))
    data = service.picture(session, period=p, government=org.id if org else None)
    return p, org, service.for_viewer(session, data, principal=principal)


@router.get("/reports/quarterly")
def quarterly(request: Request, session: DbSession, principal: CurrentPrincipal, period: str = "",
              member: str = "") -> Response:
    p, org, data = _quarterly(session, principal, period, member)
    view = "member" if org else "network"
    base = f"/reports/members/{org.short_name}/tables/" if org else "/reports/tables/"
    suffix = f"&member={org.short_name}" if org else ""
    year = clock.now().year
    quarters = [figures.quarter_period(y, q) for y in (year, year - 1) for q in (4, 3, 2, 1)
                if figures.quarter_period(y, q).start <= clock.now().date()]
    return render(request, "reports/quarterly.html", {
        **_context(data, view, base), "period": p, "government": org, "view": view,
        "pdf": f"/reports/quarterly.pdf?period={p.key}{suffix}", "quarters": quarters, "suffix": suffix,
    })


@router.get("/reports/quarterly.pdf")
def quarterly_pdf(session: DbSession, principal: CurrentPrincipal, period: str = "", member: str = "") -> Response:
    p, org, data = _quarterly(session, principal, period, member)
    view = "member" if org else "network"
    body = pdf.quarterly(data, view=view, government=org.name if org else None)
    name = f"rdn-{org.short_name if org else 'network'}-{p.key}"
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})


# Projected needs ----------------------------------------------------------------------------------------------


def _needs_page(request: Request, session: Session, principal: Principal, *, year: int | None,
                values: dict[str, Any] | None = None, errors: Any = None, editing: Need | None = None,
                status: int = 200) -> Response:
    needs = service.list_needs(session, year=year)
    years = sorted({n.year for n in service.list_needs(session)}, reverse=True)
    return render(request, "reports/needs.html", {
        "needs": needs, "year": year, "years": years, "regions": [(k, _(v)) for k, v in REGIONS.items()],
        "can_manage": policy.can(principal, "report.needs.manage"), "values": values or {}, "errors": errors,
        "editing": editing, "region_names": {k: _(v) for k, v in REGIONS.items()},
        "country_options_list": i18n.countries(i18n.locale_var.get()),
        "scopes": [(k, _(v)) for k, v in SCOPE_NAMES.items()], "scope_names": {k: _(v) for k, v in SCOPE_NAMES.items()},
    }, status=status)


def _field_errors(exc: ValidationFailed) -> dict[str, str]:
    return {e.field: e.message for e in exc.errors}


@router.get("/reports/needs")
def needs(request: Request, session: DbSession, principal: CurrentPrincipal, year: str = "") -> Response:
    policy.require(principal, "report.network.read")
    chosen = int(year) if year.isdecimal() and len(year) == 4 else None
    return _needs_page(request, session, principal, year=chosen)


@router.post("/reports/needs")
def add_need(request: Request, session: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    values = {k: str(form.get(k) or "") for k in service.NEED_FIELDS}
    try:
        need = service.create_need(session, actor=principal, data=values)
    except ValidationFailed as exc:
        session.rollback()
        return _needs_page(request, session, principal, year=None, values=values, errors=_field_errors(exc),
                           status=422)
    return redirect(f"/reports/needs?year={need.year}")


def _need(session: Session, principal: Principal, need_id: str) -> Need:
    """A need the caller may change; the same 404 for a missing one and for anyone who may not."""
    try:
        need = session.get(Need, uuid.UUID(need_id))
    except ValueError:
        need = None
    if need is None:
        raise policy.NotFound()
    policy.require(principal, "report.needs.manage", need)
    return need


@router.get("/reports/needs/{need_id}")
def edit_need(request: Request, session: DbSession, principal: CurrentPrincipal, need_id: str) -> Response:
    need = _need(session, principal, need_id)
    values = {k: ("" if getattr(need, k) is None else str(getattr(need, k))) for k in service.NEED_FIELDS}
    return _needs_page(request, session, principal, year=need.year, values=values, editing=need)


@router.post("/reports/needs/{need_id}")
def save_need(request: Request, session: DbSession, principal: CurrentPrincipal, need_id: str,
              form: PostedForm) -> Response:
    need = _need(session, principal, need_id)
    values = {k: str(form.get(k) or "") for k in service.NEED_FIELDS}
    try:
        service.update_need(session, actor=principal, need=need, data=values)
    except ValidationFailed as exc:
        session.rollback()
        need = _need(session, principal, need_id)
        return _needs_page(request, session, principal, year=need.year, values=values, errors=_field_errors(exc),
                           editing=need, status=422)
    return redirect(f"/reports/needs?year={need.year}")


@router.post("/reports/needs/{need_id}/delete")
def remove_need(session: DbSession, principal: CurrentPrincipal, need_id: str) -> Response:
    need = _need(session, principal, need_id)
    year = need.year
    service.delete_need(session, actor=principal, need=need)
    return redirect(f"/reports/needs?year={year}")


# The public transparency page ---------------------------------------------------------------------------------


def _public_on() -> int:
    settings = get_settings()
    if not settings.public_figures:
        raise policy.NotFound()
    return settings.public_figures_threshold


def _public_period(period: str) -> Period:
    """A year the public page offers, counted to the end of the last full month: figures that changed every few
    minutes would show one family's arrival as it happens."""
    year = clock.now().year
    if not period:
        chosen = year
    elif period.isdecimal() and int(period) in _years():
        chosen = int(period)
    else:
        raise policy.NotFound()
    return figures.public_period(chosen, clock.now())


def _public(session: Session, period: str) -> tuple[Period, int, dict[str, Any]]:
    threshold = _public_on()
    p = _public_period(period)
    return p, threshold, service.picture(session, period=p)


@router.get("/transparency")
def transparency(request: Request, session: DbSession, principal: OptionalPrincipal, period: str = "") -> Response:
    p, threshold, data = _public(session, period)
    shown = _context(data, "public", "/transparency/", threshold=threshold, period=str(p.year))
    return render(request, "reports/public.html", {
        "cards": shown["cards"], "sections": shown["sections"], "sources": shown["sources"],
        "period": p, "years": _years(), "threshold": threshold, "suppressed": tables.suppressed_label(threshold),
        "through": i18n.format_date(p.end - timedelta(days=1)) if p.end > p.start else None,
    })


@router.get("/transparency/{table}")
def transparency_csv(session: DbSession, principal: OptionalPrincipal, table: str, period: str = "") -> Response:
    spec = _spec(table, "public")
    p, threshold, data = _public(session, period)
    rows = present.suppressed_view(data, threshold)[spec.id]
    return _csv(spec.id, rows, f"rdn-public-{spec.id}-{p.year}")  # type: ignore[arg-type]
