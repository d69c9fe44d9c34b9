"""The caseworkers' queue at a Safe Mobility office: what needs someone's hands, in four tabs.

* **new**: registrations received or screened that nobody at the office has opened yet (opening a file reads
  the sealed names, an audited ``sensitive.read`` of the registration: that read is what "opened" means);
* **review**: screened registrations with at least one qualifying screening result and no interview booked;
* **today**: the office's interviews today (today in the office's timezone), in time order;
* **all**: every registration of the office.

Each tab filters by nationality and status and searches by reference; possible duplicates are flagged (the
registration names one it may duplicate, or another registration at the office has the same keyed person
hash). Reads only: the queue changes nothing. Closing a registration (with a reason) lives here too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from rdn.core import audit, clock, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.pagination import Page
from rdn.mobility import sealed
from rdn.mobility.models import (
    OPEN_STATUSES,
    Appointment,
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
    ScreeningResult,
    Slot,
)

TABS = ("new", "review", "today", "all")
OBJECT_TYPE = "mobility_registration"  # how the audit log names a registration
PER_PAGE = 25


@dataclass(frozen=True)
class QueueItem:
    registration: Registration
    possible_duplicate: bool
    qualifying: int  # current qualifying screening results
    appointment: Appointment | None = None  # today's (the "today" tab)
    slot: Slot | None = None


# Expressions ------------------------------------------------------------------------------------------------------


def id_text(session: Session, column: Any) -> ColumnElement[str]:
    """``column`` (a UUID) as the text the audit log keeps in ``object_id`` (``str(uuid)``, with dashes): PostgreSQL
    casts its native uuid; SQLite keeps 32 hex digits, to which the dashes are added."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(column, String)
    h = cast(column, String)
    parts = [func.substr(h, 1, 8), func.substr(h, 9, 4), func.substr(h, 13, 4), func.substr(h, 17, 4),
             func.substr(h, 21, 12)]
    out: Any = parts[0]
    for part in parts[1:]:
        out = out.op("||")("-").op("||")(part)
    return func.lower(out, type_=String)


def opened(session: Session) -> ColumnElement[bool]:
    """The registration's file was opened (its names read) by someone, as the audit log records."""
    return exists(select(AuditEntry.seq).where(AuditEntry.object_type == OBJECT_TYPE,
                                               AuditEntry.object_id == id_text(session, Registration.id),
                                               AuditEntry.action == "sensitive.read"))


def qualifying_count() -> Any:
    return (select(func.count(ScreeningResult.id))
            .where(ScreeningResult.registration_id == Registration.id, ScreeningResult.current.is_(True),
                   ScreeningResult.qualifies.is_(True))
            .correlate(Registration).scalar_subquery())


def has_qualifying() -> ColumnElement[bool]:
    return exists(select(ScreeningResult.id).where(
        ScreeningResult.registration_id == Registration.id, ScreeningResult.current.is_(True),
        ScreeningResult.qualifies.is_(True)))


def has_booking() -> ColumnElement[bool]:
    return exists(select(Appointment.id).where(Appointment.registration_id == Registration.id,
                                               Appointment.status == AppointmentStatus.booked))


def possible_duplicate() -> ColumnElement[bool]:
    """Names another registration it may duplicate, or shares the keyed person hash with another registration of
    the same office (merged ones aside)."""
    other = aliased(Registration)
    same_person = exists(select(other.id).where(
        other.office_id == Registration.office_id, other.person_key == Registration.person_key,
        other.id != Registration.id, other.status != RegistrationStatus.merged))
    return and_(Registration.status != RegistrationStatus.merged,
                or_(Registration.duplicate_of_id.is_not(None), same_person))


def office_of(session: Session, actor: Principal) -> Office | None:
    """The office the actor works at (None for anyone else)."""
    return session.scalars(policy.scoped(actor, Office).where(Office.org_id == actor.org_id)).first()


def zone(office: Office | None) -> ZoneInfo:
    try:
        return ZoneInfo(office.timezone if office and office.timezone else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(office: Office | None, day: Any = None) -> tuple[datetime, datetime]:
    """The start and end (UTC) of ``day`` (a date; today by default) in the office's timezone."""
    tz = zone(office)
    day = day or clock.now().astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


# The queue --------------------------------------------------------------------------------------------------------


def _tab_filter(session: Session, tab: str) -> list[ColumnElement[bool]]:
    if tab == "new":
        return [Registration.status.in_([RegistrationStatus.received, RegistrationStatus.screened]),
                ~opened(session)]
    if tab == "review":
        return [Registration.status == RegistrationStatus.screened, has_qualifying(), ~has_booking()]
    return []


def _filters(tab: str, q: str, nationality: str, status: str) -> list[ColumnElement[bool]]:
    if tab not in TABS:
        raise ValidationFailed("tab", _("must be one of %(values)s", values=", ".join(TABS)))
    out: list[ColumnElement[bool]] = []
    reference = sealed.normal_reference(q)
    if reference:
        out.append(Registration.reference.contains(reference, autoescape=True))
    code = (nationality or "").strip().upper()
    if code:
        if len(code) != 2 or not code.isalpha():
            raise ValidationFailed("nationality", _("is not an ISO 3166 country code (two letters, such as VE)"))
        out.append(Registration.nationality == code)
    if status:
        try:
            out.append(Registration.status == RegistrationStatus(status))
        except ValueError:
            raise ValidationFailed("status", _("must be one of %(values)s",
                                               values=", ".join(s.value for s in RegistrationStatus))) from None
    return out


def _base(session: Session, actor: Principal) -> Select[Any]:
    return select(Registration, possible_duplicate().label("dup"), qualifying_count().label("qualifying")).where(
        Registration.id.in_(policy.scoped(actor, Registration).with_only_columns(Registration.id)))


def queue(session: Session, actor: Principal, *, tab: str = "new", q: str = "", nationality: str = "",
          status: str = "", page: int = 1, per_page: int = PER_PAGE) -> Page[QueueItem]:
    """One tab of the office's queue, filtered and paged (the oldest first where work waits, today's interviews in
    time order, the newest first under "all")."""
    policy.require(actor, "mobility.registration.read")
    conditions = _filters(tab, q, nationality, status)
    page, per_page = max(1, page), max(1, min(100, per_page))
    scope = policy.scoped(actor, Registration).with_only_columns(Registration.id)
    if tab == "today":
        start, end = local_day(office_of(session, actor))
        stmt = (select(Registration, possible_duplicate().label("dup"), qualifying_count().label("qualifying"),
                       Appointment, Slot)
                .join(Appointment, Appointment.registration_id == Registration.id)
                .join(Slot, Slot.id == Appointment.slot_id)
                .where(Registration.id.in_(scope), Slot.starts_at >= start, Slot.starts_at < end,
                       Appointment.status != AppointmentStatus.cancelled, *conditions)
                .order_by(Slot.starts_at, Registration.reference))
    else:
        order = (Registration.created_at.desc(),) if tab == "all" else (Registration.created_at,)
        stmt = (_base(session, actor).where(*_tab_filter(session, tab), *conditions)
                .order_by(*order, Registration.reference))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    items = [QueueItem(row[0], bool(row[1]), int(row[2] or 0), *(tuple(row[3:5]) if tab == "today" else ()))
             for row in rows]
    return Page(items, total, page, per_page)


def tab_counts(session: Session, actor: Principal, *, q: str = "", nationality: str = "",
               status: str = "") -> dict[str, int]:
    """How many registrations each tab holds (with the same filters)."""
    return {tab: queue(session, actor, tab=tab, q=q, nationality=nationality, status=status, per_page=1).total
            for tab in TABS}


def nationalities(session: Session, actor: Principal) -> list[str]:
    """The principal applicants' nationalities among the office's registrations (for the filter)."""
    scope = policy.scoped(actor, Registration).with_only_columns(Registration.id)
    return list(session.scalars(select(Registration.nationality).where(Registration.id.in_(scope))
                                .group_by(Registration.nationality).order_by(Registration.nationality)))


# One registration -------------------------------------------------------------------------------------------------


def access_registration(session: Session, actor: Principal, registration_id: Any,
                        action: str = "mobility.registration.read") -> Registration:
    """One registration of the actor's office, or NotFound (the same whether it is missing or another's)."""
    try:
        key = registration_id if isinstance(registration_id, uuid.UUID) else uuid.UUID(str(registration_id))
    except ValueError:
        raise policy.NotFound() from None
    return policy.access(session, actor, Registration, key, action)


def open_file(session: Session, *, actor: Principal, registration: Registration, via: str = "page"
              ) -> dict[str, Any]:
    """The sealed names and contact of a registration, read for a member of its office's staff: an audited
    sensitive read (the fields' names, never their values)."""
    policy.require(actor, "mobility.registration.read", registration)
    identity = sealed.identity_of(session, registration)
    contact = sealed.contact_of(session, registration)
    audit.record_read(session, actor=actor, object_type=OBJECT_TYPE, object_id=registration.id,
                      fields=["identity", "contact"], purpose=f"mobility.registration.{via}")
    return {"identity": identity, "contact": contact}


def duplicates_of(session: Session, actor: Principal, registration: Registration) -> list[Registration]:
    """Registrations of the same office that may be the same person (named as its duplicate, naming it, or with
    the same keyed person, phone or email hash), merged ones aside."""
    keys = [Registration.person_key == registration.person_key]
    if registration.phone_key:
        keys.append(Registration.phone_key == registration.phone_key)
    if registration.email_key:
        keys.append(Registration.email_key == registration.email_key)
    if registration.duplicate_of_id:
        keys.append(Registration.id == registration.duplicate_of_id)
    keys.append(Registration.duplicate_of_id == registration.id)
    stmt = (policy.scoped(actor, Registration)
            .where(Registration.office_id == registration.office_id, Registration.id != registration.id,
                   Registration.status != RegistrationStatus.merged, or_(*keys))
            .order_by(Registration.created_at).limit(20))
    return list(session.scalars(stmt))


def add_history(registration: Registration, status: RegistrationStatus | str, by: str, **extra: Any) -> None:
    entry = {"at": clock.now().isoformat(), "status": str(RegistrationStatus(status).value), "by": by, **extra}
    registration.history = [*(registration.history or []), entry]


def close(session: Session, *, actor: Principal, registration: Registration, reason: str) -> Registration:
    """Close a registration still in the office's hands, with a reason (told to no one but the staff)."""
    policy.require(actor, "mobility.registration.handle", registration)
    text = (reason or "").strip()
    if len(text) < 3:
        raise ValidationFailed("reason", _("give a reason (at least %(low)s characters)", low=3))
    if len(text) > 500:
        raise ValidationFailed("reason", _("must be at most %(high)s characters", high=500))
    if registration.status not in OPEN_STATUSES:
        raise Conflict(_("This registration is no longer open: it cannot be closed"))
    from rdn.mobility import appointments

    current = appointments.current_appointment(session, registration)
    if current is not None:  # the interview goes too (the registrant is told, and gets no reminder)
        appointments.cancel(session, appointment=current[0], by="staff", actor=actor, reason=text)
    now = clock.now()
    before = registration.status
    registration.status, registration.status_since, registration.updated_at = RegistrationStatus.closed, now, now
    registration.closed_reason = text
    add_history(registration, RegistrationStatus.closed, "staff", user=str(actor.user_id) if actor.user_id else "")
    audit.record(session, action="mobility.registration.close", actor=actor, object_type=OBJECT_TYPE,
                 object_id=registration.id, details={"from": str(before.value if hasattr(before, "value") else before)})
    return registration

