"""Appointments at a Safe Mobility office: the calendar of interview slots, booking (by the registrant from the
slots the office offers, or by staff from any), rescheduling, cancelling, attendance and no-shows, invitations
with an iCalendar attachment, and reminders the day before.

* Capacity holds under concurrency: a place is taken with one conditional ``UPDATE ... SET booked = booked + 1
  WHERE booked < capacity``; whoever's update touches no row finds the slot full. Giving a place back is the
  same, the other way, and only by whoever moved the appointment out of "booked" (a conditional update of the
  appointment's status), so a place is never given back twice.
* A registration has at most one booked appointment: booking again moves it (the old one cancelled, its place
  given back). The new appointment carries the calendar event on: the same iCalendar UID (that of the first
  appointment of the chain) with a higher SEQUENCE, so the registrant's calendar moves the event rather than
  showing two.
* Everything sent to a registrant is in their language (``public_i18n``), goes through the outbox after commit,
  and only with their consent to be contacted. Emails and calendar files carry the reference and the office's
  address, never the PIN, the person's name or anything about their case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parseaddr
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rdn import db
from rdn.config import get_settings
from rdn.core import audit, clock, outbox, policy
from rdn.core.audit import Actor
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.db import new_id
from rdn.mobility import messages, public_i18n
from rdn.mobility.models import (
    Appointment,
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
    Slot,
)
from rdn.mobility.public_i18n import t
from rdn.mobility.sealed import contact_of

MIN_MINUTES, MAX_MINUTES = 5, 480
MAX_CAPACITY = 200
MAX_SLOTS = 500
MAX_DAYS = 366
#: Reminders go out for booked appointments starting within this long.
REMIND_AHEAD = timedelta(hours=24)
#: A registration in one of these cannot have an appointment booked or moved.
FINISHED = frozenset({RegistrationStatus.referred, RegistrationStatus.closed, RegistrationStatus.withdrawn,
                      RegistrationStatus.merged})
BY = ("registrant", "staff")


class Booking(NamedTuple):
    """One appointment with its slot and registration (for the "interviews today" list and the calendar)."""

    appointment: Appointment
    slot: Slot
    registration: Registration


def zone(office: Office) -> ZoneInfo:
    try:
        return ZoneInfo(office.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day_bounds(office: Office, day: date, days: int = 1) -> tuple[datetime, datetime]:
    """The instants (UTC) at which ``day`` begins and ``days`` later ends, in the office's time zone."""
    tz = zone(office)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=days), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def local(office: Office, at: datetime) -> datetime:
    return at.astimezone(zone(office))


def today_at(office: Office) -> date:
    return local(office, clock.now()).date()


# The calendar ------------------------------------------------------------------------------------------------


def create_slots(session: Session, *, actor: Principal, office: Office, starts_at: datetime, minutes: int,
                 capacity: int, count: int = 1, every_minutes: int | None = None, days: int = 1,
                 offered: bool = True, location: str = "") -> list[Slot]:
    """A series of slots: ``count`` a day from ``starts_at`` (back to back, or one every ``every_minutes``), on
    ``days`` consecutive days (every day: none is skipped), each ``minutes`` long with ``capacity`` places.
    A naive ``starts_at`` is read in the office's time zone, and each day's series starts at the same local
    time."""
    policy.require(actor, "mobility.slots.manage", office)
    tz = zone(office)
    start = starts_at.replace(tzinfo=tz) if starts_at.tzinfo is None else starts_at.astimezone(tz)
    step = minutes if every_minutes is None else every_minutes
    location = (location or "").strip()
    errors: list[FieldError] = []
    if start <= clock.now():
        errors.append(FieldError("starts_at", _("choose a time in the future")))
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        errors.append(FieldError("minutes", _("between %(low)s and %(high)s minutes", low=MIN_MINUTES,
                                              high=MAX_MINUTES)))
    if not 1 <= capacity <= MAX_CAPACITY:
        errors.append(FieldError("capacity", _("between 1 and %(high)s people", high=MAX_CAPACITY)))
    if count < 1:
        errors.append(FieldError("count", _("at least one slot a day")))
    if not 1 <= days <= MAX_DAYS:
        errors.append(FieldError("days", _("between 1 and %(high)s days", high=MAX_DAYS)))
    if every_minutes is not None and not minutes <= every_minutes <= 24 * 60:
        errors.append(FieldError("every_minutes", _("at least the length of a slot, and at most a day")))
    if len(location) > 300:
        errors.append(FieldError("location", _("at most 300 characters")))
    if not errors:
        if count * days > MAX_SLOTS:
            errors.append(FieldError("count", _("at most %(high)s slots at once (%(asked)s asked)", high=MAX_SLOTS,
                                                asked=count * days)))
        elif (count - 1) * step + minutes > 24 * 60:
            errors.append(FieldError("count", _("a day's slots must fit within 24 hours")))
    if errors:
        raise ValidationFailed(errors=errors)
    now = clock.now()
    slots = []
    for d in range(days):
        first = datetime.combine(start.date() + timedelta(days=d), start.timetz().replace(tzinfo=None), tzinfo=tz)
        for i in range(count):
            begins = (first + timedelta(minutes=i * step)).astimezone(UTC)
            slots.append(Slot(id=new_id(), office_id=office.id, starts_at=begins,
                              ends_at=begins + timedelta(minutes=minutes), capacity=capacity, booked=0,
                              offered=offered, location=location, created_at=now))
    session.add_all(slots)
    session.flush()
    audit.record(session, action="mobility.slots.create", actor=actor, object_type="mobility_office",
                 object_id=office.id, org_id=office.org_id,
                 details={"slots": len(slots), "first": slots[0].starts_at.isoformat(),
                          "last": slots[-1].starts_at.isoformat(), "minutes": minutes, "capacity": capacity,
                          "offered": offered})
    return slots


def remove_slot(session: Session, *, actor: Principal, slot: Slot) -> None:
    """Take a slot off the calendar, only while no one is booked in it. A slot that never had an appointment is
    deleted; one whose appointments were all cancelled (kept as history) is closed instead: no places left,
    not offered."""
    office = session.get(Office, slot.office_id)
    policy.require(actor, "mobility.slots.manage", office)
    booked = session.scalar(select(func.count()).select_from(Appointment)
                            .where(Appointment.slot_id == slot.id, Appointment.status != AppointmentStatus.cancelled))
    if booked or slot.booked:
        raise ValidationFailed("slot", _("someone is booked in this slot: cancel or move the appointment first"))
    if slot.starts_at <= clock.now():
        raise ValidationFailed("slot", _("this slot has already begun"))
    # Nobody may take the place while it goes: capacity drops to what is booked (none) in one conditional step.
    closed = session.execute(update(Slot).where(Slot.id == slot.id, Slot.booked == 0)
                             .values(capacity=0, offered=False).execution_options(synchronize_session=False))
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationFailed("slot", _("someone is booked in this slot: cancel or move the appointment first"))
    history = session.scalar(select(func.count()).select_from(Appointment).where(Appointment.slot_id == slot.id))
    details = {"starts_at": slot.starts_at.isoformat(), "deleted": not history}
    if history:
        session.refresh(slot)
    else:
        session.delete(slot)
        session.flush()
    audit.record(session, action="mobility.slot.remove", actor=actor, object_type="mobility_slot",
                 object_id=slot.id, org_id=office.org_id if office else None, details=details)


def open_slots(session: Session, office: Office, *, after: datetime | None = None, limit: int = 20,
               offered_only: bool = True) -> list[Slot]:
    """Slots with a free place starting after now (or ``after``), soonest first: those offered to registrants,
    or (``offered_only=False``, for staff booking) all of them."""
    stmt = (select(Slot).where(Slot.office_id == office.id, Slot.starts_at > max(after or clock.now(), clock.now()),
                               Slot.booked < Slot.capacity)
            .order_by(Slot.starts_at, Slot.id).limit(max(1, min(limit, 500))))
    if offered_only:
        stmt = stmt.where(Slot.offered.is_(True))
    return list(session.scalars(stmt))


def slots_between(session: Session, office: Office, start: datetime, end: datetime) -> list[Slot]:
    """The office's slots starting in [start, end), closed ones (no place, nobody booked) left out."""
    return list(session.scalars(
        select(Slot).where(Slot.office_id == office.id, Slot.starts_at >= start, Slot.starts_at < end,
                           (Slot.capacity > 0) | (Slot.booked > 0))
        .order_by(Slot.starts_at, Slot.id)))


# Booking -----------------------------------------------------------------------------------------------------


def _actor(by: str, actor: Principal | None, registration: Registration) -> Principal | Actor:
    if by == "staff" and actor is not None:
        return actor
    return Actor("registrant", org_id=registration.org_id)


def _say(by: str, staff: str, registrant: str) -> str:
    """The message for whoever asked: staff read the interface's language, registrants their own."""
    return registrant if by == "registrant" else staff


def _check_by(by: str, actor: Principal | None, registration: Registration) -> None:
    if by not in BY:
        raise ValidationFailed("by", "must be 'registrant' or 'staff'")
    if by == "staff":
        policy.require(actor, "mobility.registration.handle", registration)


def _history(registration: Registration, status: RegistrationStatus, by: str, **extra: Any) -> None:
    now = clock.now()
    registration.status = status
    registration.status_since = now
    registration.updated_at = now
    registration.history = [*(registration.history or []),
                            {"at": now.isoformat(), "status": status.value, "by": by, **extra}]


def _status_before_interview(registration: Registration) -> RegistrationStatus:
    """Where a registration goes back to when its interview is off (cancelled, or missed): the status it had
    before the interview was booked (screened, usually; interviewed, if it had been interviewed before)."""
    for entry in reversed(registration.history or []):
        try:
            status = RegistrationStatus(entry.get("status"))
        except (ValueError, AttributeError):
            continue
        if status != RegistrationStatus.interview and status not in FINISHED:
            return status  # screened, usually; interviewed if an earlier interview took place
    return RegistrationStatus.screened


def _parse_id(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _leave(session: Session, appointment: Appointment, to: AppointmentStatus) -> bool:
    """Move a booked appointment to ``to`` (raising its SEQUENCE), in one conditional step: False if it was not
    booked any more (someone else moved it first). Giving its place back is for the caller, on True only."""
    moved = session.execute(
        update(Appointment).where(Appointment.id == appointment.id, Appointment.status == AppointmentStatus.booked)
        .values(status=to, sequence=Appointment.sequence + (1 if to == AppointmentStatus.cancelled else 0),
                updated_at=clock.now())
        .execution_options(synchronize_session=False))
    session.refresh(appointment)
    return moved.rowcount == 1  # type: ignore[attr-defined]


def _give_back(session: Session, slot_id: uuid.UUID) -> None:
    session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1)
                    .execution_options(synchronize_session=False))


def current_appointment(session: Session, registration: Registration) -> tuple[Appointment, Slot] | None:
    """The registration's booked appointment and its slot, if any."""
    row = session.execute(
        select(Appointment, Slot).join(Slot, Slot.id == Appointment.slot_id)
        .where(Appointment.registration_id == registration.id, Appointment.status == AppointmentStatus.booked)
        .order_by(Slot.starts_at.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def no_shows(session: Session, registration: Registration) -> int:
    """How many interviews the registration missed."""
    return session.scalar(select(func.count()).select_from(Appointment).where(
        Appointment.registration_id == registration.id, Appointment.status == AppointmentStatus.no_show)) or 0


def book(session: Session, *, registration: Registration, slot_id: Any, by: str,
         actor: Principal | None = None) -> Appointment:
    """Book ``slot_id`` for the registration (by the registrant: only a slot the office offers; by staff: any of
    the office's). A registration that already has a booked appointment is moved to the new slot."""
    _check_by(by, actor, registration)
    # One booking at a time for a registration (a double click, two tabs): the row is locked on PostgreSQL, and
    # SQLite has a single writer anyway.
    session.flush()
    session.refresh(registration, with_for_update=True)
    if registration.status in FINISHED:
        raise Conflict(_say(by, _("this registration is %(status)s: no appointment can be booked",
                                  status=registration.status.value),
                            t("Your registration is no longer open, so no appointment can be booked.")))
    if by == "registrant":
        # What the status page offers, held here too: a registrant books one interview once screened (moving
        # or cancelling it is the office's to do).
        held = current_appointment(session, registration)
        if held is None or str(held[1].id) != str(slot_id):  # the same slot again is a double submit (below)
            if held is not None:
                raise Conflict(t("Your interview is booked. You will find the date, time and address below."))
            if registration.status not in (RegistrationStatus.received, RegistrationStatus.screened):
                raise Conflict(t("Your registration is no longer open, so no appointment can be booked."))
    sid = _parse_id(slot_id)
    slot = session.get(Slot, sid) if sid is not None else None
    if slot is None or slot.office_id != registration.office_id:
        raise ValidationFailed("slot", _say(by, _("choose one of this office's slots"),
                                            t("Choose one of the times offered.")))
    if by == "registrant" and not slot.offered:
        raise ValidationFailed("slot", t("Choose one of the times offered."))
    if slot.starts_at <= clock.now():
        raise ValidationFailed("slot", _say(by, _("this slot has already begun"),
                                            t("This time has passed. Choose another.")))
    current = current_appointment(session, registration)
    if current is not None and current[1].id == slot.id:
        return current[0]  # booked already: nothing changes, nothing is sent again
    taken = session.execute(update(Slot).where(Slot.id == slot.id, Slot.booked < Slot.capacity)
                            .values(booked=Slot.booked + 1).execution_options(synchronize_session=False))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationFailed("slot", _say(by, _("this slot is full"), t("This time is full. Choose another.")))
    session.refresh(slot)
    now = clock.now()
    previous: Appointment | None = None
    if current is not None:
        previous = current[0]
        if not _leave(session, previous, AppointmentStatus.cancelled):
            raise Conflict(_say(by, _("the appointment was changed meanwhile: reload and try again"),
                                t("Your appointment was changed meanwhile. Please try again.")))
        _give_back(session, current[1].id)
        session.refresh(current[1])
    appointment = Appointment(
        id=new_id(), registration_id=registration.id, slot_id=slot.id, status=AppointmentStatus.booked,
        booked_by=by, sequence=previous.sequence if previous is not None else 0,
        rescheduled_from_id=previous.id if previous is not None else None, created_at=now, updated_at=now)
    session.add(appointment)
    session.flush()
    if registration.status != RegistrationStatus.interview:
        _history(registration, RegistrationStatus.interview, by)
    else:
        registration.updated_at = now
    audit.record(session, action="mobility.appointment.reschedule" if previous else "mobility.appointment.book",
                 actor=_actor(by, actor, registration), object_type="mobility_appointment",
                 object_id=appointment.id, org_id=registration.org_id,
                 details={"registration": str(registration.id), "slot": str(slot.id), "by": by,
                          "starts_at": slot.starts_at.isoformat(), "sequence": appointment.sequence,
                          **({"from": str(previous.id)} if previous else {})})
    send_invitation(session, appointment=appointment, slot=slot, registration=registration,
                    kind="update" if previous else "new")
    return appointment


def cancel(session: Session, *, appointment: Appointment, by: str, actor: Principal | None = None,
           reason: str = "") -> Appointment:
    """Cancel a booked appointment (by the registrant, or by staff): its place is given back and the registrant
    told (a calendar cancellation)."""
    registration = session.get(Registration, appointment.registration_id)
    assert registration is not None
    _check_by(by, actor, registration)
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValidationFailed("reason", _("at most 500 characters"))
    if not _leave(session, appointment, AppointmentStatus.cancelled):
        raise Conflict(_say(by, _("only a booked appointment can be cancelled"),
                            t("This appointment is no longer booked.")))
    _give_back(session, appointment.slot_id)
    slot = session.get(Slot, appointment.slot_id)
    assert slot is not None
    session.refresh(slot)
    if registration.status == RegistrationStatus.interview:
        _history(registration, _status_before_interview(registration), by, note="appointment cancelled")
    details: dict[str, Any] = {"registration": str(registration.id), "slot": str(slot.id), "by": by,
                               "sequence": appointment.sequence}
    if by == "staff" and reason:
        details["reason"] = reason[:200]
    audit.record(session, action="mobility.appointment.cancel", actor=_actor(by, actor, registration),
                 object_type="mobility_appointment", object_id=appointment.id, org_id=registration.org_id,
                 details=details)
    send_invitation(session, appointment=appointment, slot=slot, registration=registration, kind="cancel")
    return appointment


MARKS = {"attended": AppointmentStatus.attended, "no_show": AppointmentStatus.no_show}


def mark(session: Session, *, actor: Principal, appointment: Appointment, status: str) -> Appointment:
    """Record whether the registrant came: "attended" (the registration is then interviewed) or "no_show" (it
    goes back to where it was before the interview was booked, so that they can book again; missed
    interviews are counted)."""
    registration = session.get(Registration, appointment.registration_id)
    assert registration is not None
    policy.require(actor, "mobility.registration.handle", registration)
    to = MARKS.get(status)
    if to is None:
        raise ValidationFailed("status", _("choose attended or did not come"))
    slot = session.get(Slot, appointment.slot_id)
    assert slot is not None
    office = session.get(Office, slot.office_id)
    assert office is not None
    if local(office, slot.starts_at).date() > today_at(office):
        raise ValidationFailed("status", _("the interview has not taken place yet"))
    if not _leave(session, appointment, to):
        raise Conflict(_("only a booked appointment can be marked"))
    if to == AppointmentStatus.attended:
        if registration.status not in FINISHED:
            _history(registration, RegistrationStatus.interviewed, "staff")
    elif registration.status == RegistrationStatus.interview:
        _history(registration, _status_before_interview(registration), "staff", note="no_show")
    audit.record(session, action=f"mobility.appointment.{status}", actor=actor, object_type="mobility_appointment",
                 object_id=appointment.id, org_id=registration.org_id,
                 details={"registration": str(registration.id), "slot": str(slot.id),
                          "no_shows": no_shows(session, registration)})
    return appointment


def appointments_on(session: Session, actor: Principal, office: Office, day: date) -> list[Booking]:
    """The office's appointments on ``day`` (its local day), cancelled ones left out, by time: the interviews of
    the day."""
    policy.require(actor, "mobility.slots.manage", office)
    start, end = local_day_bounds(office, day)
    rows = session.execute(
        policy.scoped(actor, Appointment).add_columns(Slot, Registration)
        .join(Slot, Slot.id == Appointment.slot_id)
        .join(Registration, Registration.id == Appointment.registration_id)
        .where(Slot.office_id == office.id, Slot.starts_at >= start, Slot.starts_at < end,
               Appointment.status != AppointmentStatus.cancelled)
        .order_by(Slot.starts_at, Registration.reference))
    return [Booking(a, s, r) for a, s, r in rows]


def bookings_in(session: Session, actor: Principal, slot_ids: list[uuid.UUID],
                *, cancelled: bool = False) -> list[Booking]:
    """The appointments in these slots (for the calendar), cancelled ones only if asked."""
    if not slot_ids:
        return []
    stmt = (policy.scoped(actor, Appointment).add_columns(Slot, Registration)
            .join(Slot, Slot.id == Appointment.slot_id)
            .join(Registration, Registration.id == Appointment.registration_id)
            .where(Appointment.slot_id.in_(slot_ids)).order_by(Slot.starts_at, Registration.reference))
    if not cancelled:
        stmt = stmt.where(Appointment.status != AppointmentStatus.cancelled)
    return [Booking(a, s, r) for a, s, r in session.execute(stmt)]


# iCalendar (RFC 5545) ----------------------------------------------------------------------------------------


def _ical_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and line breaks escaped (RFC 5545, 3.3.11)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n"))


def _fold(line: str) -> bytes:
    """One content line, folded at 75 octets (continuations begin with a space), never inside a UTF-8
    character, ending in CRLF (RFC 5545, 3.1)."""
    out = bytearray()
    width = 0
    limit = 75
    for char in line:
        encoded = char.encode("utf-8")
        if width + len(encoded) > limit:
            out += b"\r\n "
            width = 1
        out += encoded
        width += len(encoded)
    return bytes(out) + b"\r\n"


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _organizer() -> str:
    return parseaddr(get_settings().mail_from)[1] or "noreply@rdn.example"


def ics(appointment: Appointment, slot: Slot, office: Office, *, language: str, reference: str = "",
        uid: str | None = None, attendee: str | None = None, cancelled: bool | None = None) -> bytes:
    """The appointment as an iCalendar object (RFC 5545), in the registrant's ``language``: a request, or a
    cancellation when the appointment is cancelled. ``uid`` (default ``<appointment id>@rdn``) is the event's
    identity, kept across a reschedule; ``reference`` is the registration's, the one thing about the person it
    names (never their name)."""
    is_cancel = appointment.status == AppointmentStatus.cancelled if cancelled is None else cancelled
    where = slot.location or office.address or office.name
    with public_i18n.using(language):
        summary = t("Safe Mobility appointment: %(office)s", office=office.name)
        lines = []
        if is_cancel:
            lines.append(t("This appointment is cancelled."))
        lines.append(t("Your appointment at the Safe Mobility office. Your reference: %(reference)s",
                       reference=reference) if reference else t("Your appointment at the Safe Mobility office."))
        lines.append(t("Address: %(address)s", address=office.address or where))
        if not is_cancel:
            lines.append(t("Bring your identity documents."))
            lines.append(t("The appointment is free of charge."))
        description = "\n".join(lines)
        alarm = t("Safe Mobility appointment tomorrow")
    props = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//RDN//Safe Mobility appointments//EN",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if is_cancel else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"UID:{uid or f'{appointment.id}@rdn'}",
        f"DTSTAMP:{_utc(clock.now())}",
        f"DTSTART:{_utc(slot.starts_at)}",
        f"DTEND:{_utc(slot.ends_at)}",
        f"SEQUENCE:{int(appointment.sequence)}",
        f"STATUS:{'CANCELLED' if is_cancel else 'CONFIRMED'}",
        f"SUMMARY:{_ical_text(summary)}",
        f"DESCRIPTION:{_ical_text(description)}",
        f"LOCATION:{_ical_text(where)}",
        f"ORGANIZER;CN={_param(office.name)}:mailto:{_organizer()}",
    ]
    if attendee:
        props.append(f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{attendee}")
    props += ["TRANSP:OPAQUE", "CLASS:PRIVATE"]
    if not is_cancel:
        props += ["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT24H", f"DESCRIPTION:{_ical_text(alarm)}",
                  "END:VALARM"]
    props += ["END:VEVENT", "END:VCALENDAR"]
    return b"".join(_fold(p) for p in props)


def _param(value: str) -> str:
    """A parameter value: quoted, with the characters a quoted value cannot hold dropped (RFC 5545, 3.2)."""
    return '"' + "".join(c for c in value if c not in '"\r\n' and (c >= " " or c == "\t")) + '"'


def chain_uid(session: Session, appointment: Appointment) -> str:
    """The calendar identity of an appointment: that of the first appointment it was moved from."""
    root = appointment
    seen = {root.id}
    while root.rescheduled_from_id is not None:
        earlier = session.get(Appointment, root.rescheduled_from_id)
        if earlier is None or earlier.id in seen:
            break
        seen.add(earlier.id)
        root = earlier
    return f"{root.id}@rdn"


# Messages to registrants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """How a registration may be reached: only with consent to be contacted."""

    email: str
    phone: str


def reach(session: Session, registration: Registration) -> Reach:
    if registration.consent_contact is None or registration.status in (RegistrationStatus.withdrawn,
                                                                       RegistrationStatus.merged):
        return Reach("", "")
    contact = contact_of(session, registration)
    email = str(contact.get("email") or "").strip()
    phone = str(contact.get("phone") or "").strip()
    return Reach(email if "@" in email else "", phone)


def when_text(slot: Slot, office: Office, language: str) -> str:
    """The slot's day and time at the office, in the registrant's language (call inside ``public_i18n.using``)."""
    tz = zone(office)
    at = slot.starts_at.astimezone(tz)
    code = public_i18n.babel_code(language)
    try:
        day = babel_date(at.date(), "full", locale=code)
        hour = babel_time(at, "short", tzinfo=tz, locale=code)
    except Exception:  # a language Babel does not know: English forms
        day = babel_date(at.date(), "full", locale="en")
        hour = babel_time(at, "short", tzinfo=tz, locale="en")
    return t("%(day)s at %(time)s", day=day, time=hour)


def status_link(registration: Registration) -> str:
    """The status page (reference and PIN), in the registrant's language."""
    return f"{get_settings().base_url.rstrip('/')}/safe-mobility/status?lang={registration.language}"


def _message(kind: str, slot: Slot, office: Office, registration: Registration) -> tuple[str, str, str]:
    """(subject, email text, SMS text) for ``kind``: "new", "update", "cancel" or "reminder"."""
    when = when_text(slot, office, registration.language)
    where = slot.location or office.address or office.name
    ref = registration.reference
    if kind == "cancel":
        subject = t("Your Safe Mobility appointment is cancelled")
        opening = t("Your appointment on %(when)s is cancelled. You can book another one.", when=when)
        sms = t("Safe Mobility: your appointment on %(when)s is cancelled. Reference %(reference)s.",
                when=when, reference=ref)
    elif kind == "reminder":
        subject = t("Reminder: your Safe Mobility appointment on %(when)s", when=when)
        opening = t("This is a reminder of your appointment on %(when)s.", when=when)
        sms = t("Safe Mobility: reminder of your appointment on %(when)s at %(place)s. Bring your identity "
                "documents. Reference %(reference)s.", when=when, place=where, reference=ref)
    elif kind == "update":
        subject = t("Your Safe Mobility appointment has moved to %(when)s", when=when)
        opening = t("Your appointment has moved. The new time is %(when)s.", when=when)
        sms = t("Safe Mobility: your appointment has moved to %(when)s at %(place)s. Reference %(reference)s.",
                when=when, place=where, reference=ref)
    else:
        subject = t("Your Safe Mobility appointment on %(when)s", when=when)
        opening = t("Your appointment is booked for %(when)s.", when=when)
        sms = t("Safe Mobility: your appointment is on %(when)s at %(place)s. Reference %(reference)s.",
                when=when, place=where, reference=ref)
    parts = [t("Hello,"), "", opening, ""]
    if kind != "cancel":
        parts += [t("Place: %(place)s", place=where), t("Bring your identity documents."), ""]
    parts += [t("Your reference: %(reference)s", reference=ref),
              t("The appointment is free of charge. Nobody may ask you for money for it."), "",
              t("To see where you stand, use your reference and your PIN at %(link)s. To change the appointment, "
                "contact the office.", link=status_link(registration))]
    if kind != "cancel":
        parts += ["", t("The attached file adds the appointment to your calendar.")]
    parts += ["", t("Safe Mobility office: %(office)s", office=office.name), ""]
    return subject, "\n".join(parts), sms


def send_invitation(session: Session, *, appointment: Appointment, slot: Slot, registration: Registration,
                    kind: str) -> None:
    """Tell the registrant (if they agreed to be contacted) of a booking, a move ("update") or a cancellation:
    an email with the calendar file, or an SMS when they gave only a phone and SMS is configured."""
    who = reach(session, registration)
    if not who.email and not (who.phone and sms_enabled()):
        return
    office = session.get(Office, slot.office_id)
    assert office is not None
    with public_i18n.using(registration.language):
        subject, text, sms_text = _message(kind, slot, office, registration)
        if who.email:
            data = ics(appointment, slot, office, language=registration.language, reference=registration.reference,
                       uid=chain_uid(session, appointment), cancelled=kind == "cancel")
            # No ATTENDEE: the file waits in the outbox, which never holds a registrant's address in clear.
            method = "CANCEL" if kind == "cancel" else "REQUEST"
            messages.email_registrant(
                session, registration, subject=subject, text=text,
                attachments=[{"filename": "cancellation.ics" if kind == "cancel" else "appointment.ics",
                              "content_type": f"text/calendar; method={method}; charset=UTF-8", "data": data}])
        else:
            queue_sms(session, registration=registration, text=sms_text,
                      reference=f"sm-{appointment.id.hex[:16]}-{kind[:1]}{appointment.sequence}")


# SMS ---------------------------------------------------------------------------------------------------------


def sms_enabled() -> bool:
    return bool(get_settings().sms_url)


def queue_sms(session: Session, *, registration: Registration, text: str, reference: str) -> outbox.Job:
    """An SMS to the registration's phone, through the outbox. The job carries the registration, not the number:
    the number is unsealed when the message is sent (and nothing goes if consent was withdrawn meanwhile)."""
    return outbox.enqueue(session, "mobility.sms", {"registration_id": str(registration.id), "text": text,
                                                    "reference": reference},
                          org_id=registration.org_id, dedupe_key=f"mobility.sms:{reference}")


@outbox.handler("mobility.sms", max_attempts=8, priority=50)
def _sms_job(ctx: outbox.JobContext) -> None:
    from rdn.redphone import sms  # the platform's SMS provider client

    with ctx.read() as session:
        registration = session.get(Registration, uuid.UUID(ctx.payload["registration_id"]))
        if registration is None:
            return
        phone = reach(session, registration).phone
    if not phone:
        return  # consent withdrawn, or the number removed, since the message was queued
    try:
        to = sms.normalise_phone(phone)
    except sms.SmsError as exc:
        raise outbox.PermanentError("the registration's phone number is not in international form") from exc
    sms.send_rollback_unsafe(to, ctx.payload["text"], reference=ctx.payload["reference"])


# Reminders ---------------------------------------------------------------------------------------------------


def send_due_reminders(session: Session, *, now: datetime | None = None) -> int:
    """Queue one reminder for each booked appointment starting within the next 24 hours that has not had one
    (email, and SMS when a phone was given and SMS is configured); returns how many appointments were
    reminded. Each appointment is reminded once: ``reminded_at`` is set in the same transaction, and the
    messages' dedupe keys stop a second queueing even by a concurrent run."""
    now = now or clock.now()
    stmt = (select(Appointment, Slot, Registration)
            .join(Slot, Slot.id == Appointment.slot_id)
            .join(Registration, Registration.id == Appointment.registration_id)
            .where(Appointment.status == AppointmentStatus.booked, Appointment.reminded_at.is_(None),
                   Slot.starts_at > now, Slot.starts_at <= now + REMIND_AHEAD)
            .order_by(Slot.starts_at).limit(5000))
    if db.dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(of=Appointment, skip_locked=True)
    offices: dict[uuid.UUID, Office] = {}
    done = 0
    for appointment, slot, registration in session.execute(stmt).all():
        office = offices.get(slot.office_id) or session.get(Office, slot.office_id)
        assert office is not None
        offices[office.id] = office
        who = reach(session, registration)
        with public_i18n.using(registration.language):
            subject, text, sms_text = _message("reminder", slot, office, registration)
        if who.email:
            messages.email_registrant(session, registration, subject=subject, text=text,
                                      dedupe_key=f"mobility.reminder:{appointment.id}:{appointment.sequence}")
        if who.phone and sms_enabled():
            queue_sms(session, registration=registration, text=sms_text,
                      reference=f"sm-{appointment.id.hex[:16]}-r{appointment.sequence}")
        appointment.reminded_at = now
        done += 1
    session.flush()
    return done


@outbox.periodic("mobility.reminders", timedelta(minutes=15))
def _reminders_job(ctx: outbox.JobContext) -> None:
    send_due_reminders(ctx.session)
