"""The network picture's business rules: the figures of a view (kept as snapshots, recomputed by the worker),
the projected needs the network enters, and the weekly digest to each member's senior officials.

Snapshots: computing the picture reads every case, referral and stage change of the period; at the volumes of
a national programme that takes seconds, so the dashboard reads the last snapshot (one row) and the worker
recomputes the current year's every ``RDN_REPORT_REFRESH_MINUTES``. A view with no snapshot, or one older than
twice that (no worker running), is computed when asked. A snapshot is derived data: refreshing it is not
audited (the records it counts were, when they were written); a refresh someone asks for is.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn import db
from rdn.config import get_settings
from rdn.core import audit, clock, i18n, mail, outbox, policy
from rdn.core.audit import SYSTEM
from rdn.core.errors import FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.redphone.models import Crisis, Participant
from rdn.reports import figures
from rdn.reports.figures import Period
from rdn.reports.models import NEED_SCOPES, Need, Snapshot
from rdn.reports.regions import REGIONS


def period_asked(value: str | None, *, quarter: bool = False) -> Period:
    """The period a page or the API asks for ("2026", "2026Q3"), or by default the current year (for a quarterly
    report, the last finished quarter); anything else is refused naming ``period``."""
    now = clock.now()
    if value:
        period = figures.parse_period(value)
        if period is None:
            raise ValidationFailed("period", _("Give a year (2026) or a quarter (2026Q3)."))
        return period
    if quarter:
        q = (now.month - 1) // 3
        return figures.quarter_period(now.year, q) if q else figures.quarter_period(now.year - 1, 4)
    return figures.year_period(now.year)


def scope_key(period: Period, government: uuid.UUID | None) -> str:
    return f"member:{government}:{period.key}" if government else f"network:{period.key}"


def _max_age(period: Period) -> timedelta:
    """How old a snapshot may be: twice the worker's interval for a running period; a day for one that is over
    (only records written for past dates change it)."""
    if period.closed:
        return timedelta(days=1)
    return timedelta(minutes=2 * get_settings().report_refresh_minutes)


def refresh(session: Session, *, period: Period, government: uuid.UUID | None = None) -> dict[str, Any]:
    """Compute a view's figures now and keep them as its snapshot."""
    began = time.perf_counter()
    data = figures.compute(session, period=period, government=government)
    millis = int((time.perf_counter() - began) * 1000)
    values = {"scope": scope_key(period, government), "computed_at": clock.now(), "millis": millis, "data": data}
    db.upsert(session, Snapshot, values, keys=("scope",))
    return data


def picture(session: Session, *, period: Period, government: uuid.UUID | None = None) -> dict[str, Any]:
    """A view's figures: its snapshot. A view never computed is computed now (and kept); a snapshot older than it
    should be is still answered at once, with its time, and its recomputation queued for the worker: at a national
    programme's volume it takes seconds, which no page request should wait for (nor several at once)."""
    scope = scope_key(period, government)
    row = session.execute(select(Snapshot.computed_at, Snapshot.data).where(Snapshot.scope == scope)).first()
    if row is None:
        return refresh(session, period=period, government=government)
    computed_at = row.computed_at if row.computed_at.tzinfo else row.computed_at.replace(tzinfo=UTC)
    age = _max_age(period)
    if clock.now() - computed_at > age:
        queue_refresh(session, period=period, government=government, every=age)
    return row.data  # type: ignore[no-any-return]


def queue_refresh(session: Session, *, period: Period, government: uuid.UUID | None, every: timedelta) -> None:
    """Queue the view's recomputation for the worker, at most once per ``every``."""
    slot = int(clock.now().timestamp() // every.total_seconds())
    outbox.enqueue(session, "reports.refresh_view",
                   {"key": period.key, "start": period.start.isoformat(), "end": period.end.isoformat(),
                    "government": str(government) if government else None},
                   dedupe_key=f"reports.refresh:{scope_key(period, government)}:{slot}:{every.total_seconds():.0f}")


@outbox.handler("reports.refresh_view", max_attempts=3)
def _refresh_view_job(ctx: outbox.JobContext) -> None:
    p = ctx.payload
    period = Period(p["key"], date.fromisoformat(p["start"]), date.fromisoformat(p["end"]))
    refresh(ctx.session, period=period, government=uuid.UUID(p["government"]) if p["government"] else None)


def for_viewer(session: Session, data: dict[str, Any], *, principal: Principal | None = None,
               org_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The figures as a viewer may see them: the open crises listed are only those the viewer's organization takes
    part in (the red phone's own rule); everything else is aggregates every reader of the view may see."""
    if principal is not None:
        ids = set(session.scalars(policy.scoped(principal, Crisis).with_only_columns(Crisis.id)))
    else:
        ids = set(session.scalars(select(Participant.crisis_id).where(Participant.org_id == org_id)))
    shown = {str(i) for i in ids}
    return {**data, "crises": [c for c in data.get("crises") or [] if c.get("id") in shown]}


def refresh_on_request(session: Session, *, actor: Principal, period: Period,
                       government: uuid.UUID | None = None) -> None:
    """An official asks for the figures to be recomputed: queued for the worker (at most once a minute), which
    takes seconds at a national programme's volume; the page says so."""
    policy.require(actor, "report.refresh")
    queue_refresh(session, period=period, government=government, every=timedelta(minutes=1))
    audit.record(session, action="report.refresh", actor=actor, object_type="report",
                 object_id=scope_key(period, government), org_id=government)


def refresh_current(session: Session) -> int:
    """The worker's job: recompute the current year's network view and every government's view when their
    snapshots are older than the refresh interval. Returns how many were recomputed."""
    period = figures.year_period(clock.now().year)
    interval = timedelta(minutes=get_settings().report_refresh_minutes)
    ages = dict(session.execute(select(Snapshot.scope, Snapshot.computed_at)).all())
    done = 0
    for government in [None, *(o.id for o in figures.governments(session))]:
        at = ages.get(scope_key(period, government))
        if at is not None and clock.now() - (at if at.tzinfo else at.replace(tzinfo=UTC)) < interval:
            continue
        refresh(session, period=period, government=government)
        done += 1
    return done


@outbox.periodic("reports.refresh", timedelta(minutes=5))
def _refresh_job(ctx: outbox.JobContext) -> None:
    refresh_current(ctx.session)


# Projected needs ----------------------------------------------------------------------------------------------

NEED_FIELDS = ("year", "scope", "population", "nationality", "region", "people", "source")


def clean_need(data: Mapping[str, Any]) -> dict[str, Any]:
    """The need's fields, or ValidationFailed naming each bad one. ``scope`` (what the need covers: everyone, a
    population or a region) follows from the nationality and region when it is not given."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    year = str(data.get("year", "")).strip()
    if not (year.isdecimal() and 2000 <= int(year) <= 2100):
        errors.append(FieldError("year", _("Give a year between 2000 and 2100.")))
    else:
        out["year"] = int(year)
    population = str(data.get("population", "")).strip()
    if not population or len(population) > 120:
        errors.append(FieldError("population", _("Name the population (up to 120 characters), as the source does.")))
    out["population"] = population
    nationality = str(data.get("nationality") or "").strip().upper()
    if nationality and not (len(nationality) == 2 and i18n.country_name(nationality) != nationality):
        errors.append(FieldError("nationality", _("Choose a country from the list, or leave it empty.")))
    out["nationality"] = nationality or None
    region = str(data.get("region") or "").strip()
    if region and region not in REGIONS:
        errors.append(FieldError("region", _("Choose a region from the list, or leave it empty.")))
    out["region"] = region
    scope = str(data.get("scope") or "").strip() or ("region" if region else "population" if nationality else "all")
    if scope not in NEED_SCOPES:
        errors.append(FieldError("scope", _("Choose everyone, a population or a region.")))
    elif scope == "all" and (nationality or region):
        errors.append(FieldError("scope", _("A need for everyone has no nationality and no region.")))
    elif scope == "population" and region:
        errors.append(FieldError("region", _("A need for a population has no region.")))
    elif scope == "region" and (not region or nationality):
        errors.append(FieldError("region", _("A need for a region names the region, and no nationality.")))
    out["scope"] = scope
    people = str(data.get("people", "")).strip().replace(",", "").replace(" ", "")
    if not (people.isdecimal() and 0 < int(people) <= 200_000_000):
        errors.append(FieldError("people", _("Give the number of people, a whole number above zero.")))
    else:
        out["people"] = int(people)
    source = str(data.get("source", "")).strip()
    if not source or len(source) > 300:
        errors.append(FieldError("source", _("Name the source of the figure (up to 300 characters).")))
    out["source"] = source
    if errors:
        raise ValidationFailed(errors=errors)
    return out


def _unique(session: Session, values: dict[str, Any], own: uuid.UUID | None = None) -> None:
    clash = session.scalar(select(Need.id).where(Need.year == values["year"], Need.population == values["population"],
                                                 Need.region == values["region"]))
    if clash is not None and clash != own:
        raise ValidationFailed("population", _("This year already has a need for this population and region."))


def create_need(session: Session, *, actor: Principal, data: Mapping[str, Any]) -> Need:
    policy.require(actor, "report.needs.manage")
    values = clean_need(data)
    _unique(session, values)
    need = Need(**values, created_by_user_id=actor.user_id)
    session.add(need)
    session.flush()
    audit.record(session, action="report.need.create", actor=actor, object_type="report_need", object_id=need.id,
                 details={"year": need.year, "population": need.population, "people": need.people})
    return need


def update_need(session: Session, *, actor: Principal, need: Need, data: Mapping[str, Any]) -> Need:
    policy.require(actor, "report.needs.manage")
    values = clean_need(data)
    _unique(session, values, need.id)
    changed = sorted(k for k, v in values.items() if getattr(need, k) != v)
    for key, value in values.items():
        setattr(need, key, value)
    need.updated_at = clock.now()
    audit.record(session, action="report.need.update", actor=actor, object_type="report_need", object_id=need.id,
                 details={"fields": changed})
    return need


def delete_need(session: Session, *, actor: Principal, need: Need) -> None:
    policy.require(actor, "report.needs.manage")
    audit.record(session, action="report.need.delete", actor=actor, object_type="report_need", object_id=need.id,
                 details={"year": need.year, "population": need.population, "people": need.people})
    session.delete(need)


def list_needs(session: Session, *, year: int | None = None) -> list[Need]:
    q = select(Need).order_by(Need.year.desc(), Need.people.desc(), Need.population)
    if year is not None:
        q = q.where(Need.year == year)
    return list(session.scalars(q))


#: The reference file's population names and the nationality the cases carry.
POPULATION_NATIONALITY = {
    "afghan": "AF", "syrian": "SY", "south sudanese": "SS", "sudanese": "SD", "rohingya": "MM",
    "rohingya (myanmar)": "MM", "congolese (drc)": "CD", "venezuelan": "VE",
}


def seed_reference_needs(session: Session) -> int:
    """The public projected needs (demo_data/projected-needs.csv) as the network's needs; returns how many."""
    text = resources.files("rdn.demo_data").joinpath("projected-needs.csv").read_text(encoding="utf-8")
    added = 0
    for row in csv.DictReader(text.splitlines()):
        population = row["population"].strip()
        year = int(row["year"])
        if session.scalar(select(Need.id).where(Need.year == year, Need.population == population,
                                                Need.region == "")) is not None:
            continue
        nationality = POPULATION_NATIONALITY.get(population.lower())
        scope = "all" if population.lower() == "all populations" else "population"
        session.add(Need(year=year, population=population, scope=scope, nationality=nationality, region="",
                         people=int(row["projected_resettlement_needs"]), source=row["source"].strip()))
        added += 1
    session.flush()
    return added


# The weekly digest --------------------------------------------------------------------------------------------


def senior_officials(session: Session, org_id: uuid.UUID) -> list[User]:
    return list(session.scalars(select(User).join(Membership, Membership.user_id == User.id)
                                .where(Membership.org_id == org_id, Membership.role == Role.senior_official,
                                       User.active.is_(True)).order_by(User.email).distinct()))


def digest_text(org: Organization, mine: dict[str, Any], network: dict[str, Any], week: str) -> tuple[str, str]:
    """(subject, body) of a government's weekly digest, in the current language."""
    h, n = mine["headline"], network["headline"]
    num = i18n.format_number
    subject = _("RDN weekly picture for %(government)s, week %(week)s", government=org.name, week=week)
    lines = [
        _("The network picture for %(government)s, %(year)s so far (figures as of %(when)s):",
          government=org.name, year=mine["year"], when=i18n.format_datetime(datetime.fromisoformat(mine["as_of"]))),
        "",
        _("Your government: %(places)s annual places, %(pledged)s places pledged in crises; %(referred)s people "
          "referred to you, %(accepted)s accepted, %(departed)s departed, %(arrived)s arrived.",
          places=num(h["places"]), pledged=num(h["pledged"]), referred=num(h["referred"]),
          accepted=num(h["accepted"]), departed=num(h["departed"]), arrived=num(h["arrived"])),
        _("The network: a projected need of %(need)s people; %(referred)s referred, %(departed)s departed, "
          "%(arrived)s arrived.",
          need=num(n["need"]) if n["need"] else "\u2013", referred=num(n["referred"]), departed=num(n["departed"]),
          arrived=num(n["arrived"])),
    ]
    late = sum(r["late_now"] for r in mine["stages"])
    if late:
        lines.append(i18n.ngettext("%(num)s of your cases is past its stage's target now.",
                                   "%(num)s of your cases are past their stage's target now.", late, num=num(late)))
    blocked = (mine.get("blocked") or {}).get("people", 0)
    if blocked:
        lines.append(i18n.ngettext("Obstacles block %(num)s person in your cases now.",
                                   "Obstacles block %(num)s people in your cases now.", blocked, num=num(blocked)))
    open_crises = [c for c in mine["crises"]]
    if open_crises:
        lines.append(_("Open crises: %(titles)s.", titles=i18n.format_list([c["title"] for c in open_crises])))
    short = org.short_name
    lines += ["", _("The whole picture: %(url)s", url=f"{get_settings().base_url}/reports/members/{short}")]
    return subject, "\n".join(lines) + "\n"


def send_digests(session: Session) -> int:
    """One email per senior official of each member government, at most once per ISO week; returns how many
    were queued now."""
    now = clock.now()
    iso = now.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    period = figures.year_period(now.year)
    network = picture(session, period=period)
    queued = 0
    for org in figures.governments(session):
        officials = senior_officials(session, org.id)
        if not officials:
            continue
        mine = for_viewer(session, picture(session, period=period, government=org.id), org_id=org.id)
        for user in officials:
            key = f"reports.digest:{org.id}:{user.id}:{week}"
            if session.scalar(select(outbox.Job.id).where(outbox.Job.dedupe_key == key)) is not None:
                continue
            with i18n.using(user.locale):
                subject, body = digest_text(org, mine, network, week)
            mail.send_email(session, to=user.email, subject=subject, text=body, org_id=org.id, dedupe_key=key)
            queued += 1
    if queued:
        audit.record(session, action="report.digest.sent", actor=SYSTEM, object_type="report",
                     object_id=f"digest:{week}", details={"emails": queued})
    return queued


@outbox.periodic("reports.digest", timedelta(days=1))
def _digest_job(ctx: outbox.JobContext) -> None:
    # Daily: the week's digest goes out on the first run of each ISO week (the dedupe key holds the week).
    send_digests(ctx.session)


def government_by_short_name(session: Session, short_name: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.short_name == short_name,
                                                     Organization.kind == OrgKind.government))

