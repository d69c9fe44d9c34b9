"""The office's calendar, for its staff: a day with its slots (capacity, places booked) and appointments, the
week around it, adding a series of slots, removing a slot nobody is booked in, recording attendance, cancelling,
and booking a registration into a slot (from the registration's page).

Every page works on the signed-in person's own office; another office's slots and appointments answer 404.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rdn.core import clock, i18n, policy
from rdn.core.errors import ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.web import CurrentPrincipal, DbSession, redirect, render, safe_next
from rdn.mobility import appointments as service
from rdn.mobility.models import (
    APPOINTMENT_STATUS_NAMES,
    REGISTRATION_STATUS_NAMES,
    Appointment,
    Office,
    Registration,
    Slot,
)

router = page_router()

NOTICES = {
    "created": N_("The slots are added to the calendar."),
    "removed": N_("The slot is removed."),
    "attended": N_("Recorded: the registrant came to the interview."),
    "no_show": N_("Recorded: the registrant did not come. They can book another interview."),
    "cancelled": N_("The appointment is cancelled and its place given back."),
    "booked": N_("The appointment is booked; the registrant is sent an invitation if they agreed to be contacted."),
}
SLOT_FIELDS = ("date", "time", "minutes", "capacity", "count", "every_minutes", "days", "location")


def own_office(db: Session, principal: Principal, *, listing: bool = False) -> Office:
    """The signed-in person's office, if they keep its calendar: else 404, or 403 on the calendar's own pages
    (``listing``), which are about no object."""
    if listing:
        policy.require(principal, "mobility.slots.manage")
    office = db.scalars(policy.scoped(principal, Office).where(Office.org_id == principal.org_id)).first()
    if office is None:
        raise policy.NotFound()
    policy.require(principal, "mobility.slots.manage", office)
    return office


def _day(value: str, office: Office) -> date:
    """The day asked for; today (at the office) when none, or not a date, or outside 2000-2100."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        day = None
    return day if day is not None and 2000 <= day.year <= 2100 else service.today_at(office)


def _hhmm(office: Office, at: datetime) -> str:
    return service.local(office, at).strftime("%H:%M")


def _calendar(request: Request, db: Session, principal: Principal, office: Office, day: date, *,
              notice: str | None = None, values: dict[str, Any] | None = None,
              errors: dict[str, str] | None = None, status: int = 200) -> Response:
    monday = day - timedelta(days=day.weekday())
    week_start, week_end = service.local_day_bounds(office, monday, 7)
    week_slots = service.slots_between(db, office, week_start, week_end)
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: {"slots": 0, "places": 0, "booked": 0})
    for s in week_slots:
        d = service.local(office, s.starts_at).date()
        per_day[d]["slots"] += 1
        per_day[d]["places"] += s.capacity
        per_day[d]["booked"] += s.booked
    week = [{"day": monday + timedelta(days=i), **per_day[monday + timedelta(days=i)]} for i in range(7)]
    day_start, day_end = service.local_day_bounds(office, day)
    slots = [s for s in week_slots if day_start <= s.starts_at < day_end]
    bookings = service.bookings_in(db, principal, [s.id for s in slots])
    by_slot: dict[uuid.UUID, list[service.Booking]] = defaultdict(list)
    for b in bookings:
        by_slot[b.slot.id].append(b)
    today = service.today_at(office)
    rows = [{"slot": s, "start": _hhmm(office, s.starts_at), "end": _hhmm(office, s.ends_at),
             "bookings": by_slot.get(s.id, []), "removable": s.booked == 0 and s.starts_at > clock.now(),
             "markable": service.local(office, s.starts_at).date() <= today} for s in slots]
    defaults = {"date": (day if day > today else today + timedelta(days=1)).isoformat(), "time": "08:00",
                "minutes": "30", "capacity": "1", "count": "8", "every_minutes": "", "days": "1", "location": "",
                "offered": True}
    return render(request, "mobility/calendar.html", {
        "office": office, "day": day, "today": today, "week": week, "rows": rows,
        "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
        "prev_week": day - timedelta(days=7), "next_week": day + timedelta(days=7),
        "appointment_labels": {k.value: _(v) for k, v in APPOINTMENT_STATUS_NAMES.items()},
        "registration_labels": {k.value: _(v) for k, v in REGISTRATION_STATUS_NAMES.items()},
        "notice": i18n.gettext(NOTICES[notice]) if notice in NOTICES else None,
        "values": values or defaults, "errors": errors or {}, "limits": {
            "min": service.MIN_MINUTES, "max": service.MAX_MINUTES, "capacity": service.MAX_CAPACITY,
            "slots": service.MAX_SLOTS, "days": service.MAX_DAYS},
    }, status=status)


@router.get("/mobility/calendar")
def calendar(request: Request, db: DbSession, principal: CurrentPrincipal,
             day: Annotated[str, Query(max_length=10)] = "",
             notice: Annotated[str, Query(max_length=20)] = "") -> Response:
    office = own_office(db, principal, listing=True)
    return _calendar(request, db, principal, office, _day(day, office), notice=notice or None)


def _int(errors: dict[str, str], name: str, value: str, *, blank: int | None = None) -> int | None:
    text = (value or "").strip()
    if not text:
        if blank is None:
            errors[name] = _("enter a whole number")
        return blank
    try:
        return int(text)
    except ValueError:
        errors[name] = _("enter a whole number")
        return None


@router.post("/mobility/calendar/slots")
def add_slots(request: Request, db: DbSession, principal: CurrentPrincipal,
              date_: Annotated[str, Form(alias="date", max_length=10)] = "",
              time_: Annotated[str, Form(alias="time", max_length=8)] = "",
              minutes: Annotated[str, Form(max_length=6)] = "",
              capacity: Annotated[str, Form(max_length=6)] = "",
              count: Annotated[str, Form(max_length=6)] = "1",
              every_minutes: Annotated[str, Form(max_length=6)] = "",
              days: Annotated[str, Form(max_length=6)] = "1",
              offered: Annotated[str, Form(max_length=5)] = "",
              location: Annotated[str, Form(max_length=300)] = "") -> Response:
    office = own_office(db, principal, listing=True)
    values = {"date": date_, "time": time_, "minutes": minutes, "capacity": capacity, "count": count,
              "every_minutes": every_minutes, "days": days, "location": location, "offered": bool(offered)}
    errors: dict[str, str] = {}
    starts_at: datetime | None = None
    try:
        starts_at = datetime.combine(date.fromisoformat(date_), time.fromisoformat(time_))
    except ValueError:
        errors["starts_at"] = _("enter a date and a time (hours and minutes)")
    numbers = {"minutes": _int(errors, "minutes", minutes), "capacity": _int(errors, "capacity", capacity),
               "count": _int(errors, "count", count, blank=1), "days": _int(errors, "days", days, blank=1),
               "every_minutes": _int(errors, "every_minutes", every_minutes, blank=0)}
    shown = _day(date_, office)
    if errors or starts_at is None:
        return _calendar(request, db, principal, office, shown, values=values, errors=errors, status=422)
    try:
        slots = service.create_slots(db, actor=principal, office=office, starts_at=starts_at,
                                     minutes=numbers["minutes"] or 0, capacity=numbers["capacity"] or 0,
                                     count=numbers["count"] or 0, every_minutes=numbers["every_minutes"] or None,
                                     days=numbers["days"] or 0, offered=bool(offered), location=location)
    except ValidationFailed as exc:
        db.rollback()
        errors = {e.field: e.message for e in exc.errors}
        return _calendar(request, db, principal, office, shown, values=values, errors=errors, status=422)
    first = service.local(office, slots[0].starts_at).date()
    return redirect(f"/mobility/calendar?day={first.isoformat()}&notice=created")


def _back(office: Office, slot: Slot, notice: str) -> Response:
    return redirect(f"/mobility/calendar?day={service.local(office, slot.starts_at).date().isoformat()}"
                    f"&notice={notice}")


@router.post("/mobility/slots/{slot_id}/remove")
def remove_slot(slot_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    office = own_office(db, principal)
    slot = policy.access(db, principal, Slot, slot_id)
    if slot.office_id != office.id:
        raise policy.NotFound()
    day = service.local(office, slot.starts_at).date()
    service.remove_slot(db, actor=principal, slot=slot)
    return redirect(f"/mobility/calendar?day={day.isoformat()}&notice=removed")


def _appointment(db: Session, principal: Principal, appointment_id: uuid.UUID) -> tuple[Office, Appointment, Slot]:
    office = own_office(db, principal)
    appointment = policy.access(db, principal, Appointment, appointment_id)
    slot = db.get(Slot, appointment.slot_id)
    if slot is None or slot.office_id != office.id:
        raise policy.NotFound()
    registration = db.get(Registration, appointment.registration_id)
    policy.require(principal, "mobility.registration.handle", registration)
    return office, appointment, slot


@router.post("/mobility/appointments/{appointment_id}/attended")
def attended(appointment_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    office, appointment, slot = _appointment(db, principal, appointment_id)
    service.mark(db, actor=principal, appointment=appointment, status="attended")
    return _back(office, slot, "attended")


@router.post("/mobility/appointments/{appointment_id}/no-show")
def no_show(appointment_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    office, appointment, slot = _appointment(db, principal, appointment_id)
    service.mark(db, actor=principal, appointment=appointment, status="no_show")
    return _back(office, slot, "no_show")


@router.post("/mobility/appointments/{appointment_id}/cancel")
def cancel(appointment_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    office, appointment, slot = _appointment(db, principal, appointment_id)
    service.cancel(db, appointment=appointment, by="staff", actor=principal, reason=reason)
    return _back(office, slot, "cancelled")


@router.post("/mobility/registrations/{registration_id}/book")
def book(registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
         slot_id: Annotated[str, Form(max_length=40)] = "",
         next: Annotated[str, Form(max_length=500)] = "") -> Response:
    registration = policy.access(db, principal, Registration, registration_id, "mobility.registration.handle")
    office = db.get(Office, registration.office_id)
    assert office is not None
    # A full or past slot is refused (422) and the request's transaction rolled back with everything it began.
    appointment = service.book(db, registration=registration, slot_id=slot_id, by="staff", actor=principal)
    slot = db.get(Slot, appointment.slot_id)
    assert slot is not None
    target = safe_next(next, "")
    if target:
        return redirect(target)
    return _back(office, slot, "booked")


def booking_options(db: Session, office: Office, *, limit: int = 60) -> list[tuple[str, str]]:
    """(slot id, label) of the slots staff may book a registration into (offered or not, with a free place),
    for a booking form elsewhere (the registration's page: ``mobility/calendar_book.html``)."""
    options = []
    for s in service.open_slots(db, office, limit=limit, offered_only=False):
        at = service.local(office, s.starts_at)
        label = _("%(date)s, %(start)s to %(end)s: %(free)s of %(capacity)s free",
                  date=i18n.format_date(at.date(), fmt="medium"), start=_hhmm(office, s.starts_at),
                  end=_hhmm(office, s.ends_at), free=s.capacity - s.booked, capacity=s.capacity)
        if not s.offered:
            label += " " + _("(not offered to registrants)")
        options.append((str(s.id), label))
    return options
