"""The office calendar's pages, through a signed-in browser: the day and week, adding a series of slots,
booking a registration, attendance, cancelling, removing a slot; another office's objects are not found."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rdn.core import clock
from rdn.mobility import appointments
from rdn.mobility.models import Appointment, AppointmentStatus, RegistrationStatus, Slot
from tests.factories import Client
from tests.mobility.conftest import NOW


@pytest.fixture
def w(mobility_world, frozen_now):
    return mobility_world


def browser(app, w, persona: str, office: str | None = None) -> Client:
    org = w.orgs[office or persona.rsplit("_", 1)[1]]
    return Client(app).login(w.session, w.net.people[persona], org=org)


def slot_at(w, hours: float, *, capacity: int = 1, office: str = "cr", persona: str = "officer_cr") -> Slot:
    [slot] = appointments.create_slots(w.session, actor=w.p(persona), office=w.offices[office],
                                       starts_at=NOW + timedelta(hours=hours), minutes=30, capacity=capacity)
    w.session.commit()
    return slot


def slot_count(w) -> int:
    return w.session.scalar(select(func.count()).select_from(Slot))


def test_the_calendar_shows_the_day_the_week_and_the_add_form(app, w):
    slot = slot_at(w, 26, capacity=3)  # 3 November, 11:00 in Costa Rica
    registration = w.registration(status=RegistrationStatus.screened)
    appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    w.session.commit()
    c = browser(app, w, "caseworker_cr")
    page = c.get("/mobility/calendar?day=2026-11-03")
    assert page.status_code == 200
    html = page.text
    assert "11:00\u201311:30" in html and registration.reference in html
    assert 'action="/mobility/appointments/' in html and 'action="/mobility/calendar/slots"' in html
    assert "Add slots" in html
    week = re.search(r'<table id="week">.*?</table>', html, re.S).group(0)
    assert week.count("<tr") == 8  # a header and seven days
    assert ' style="' not in html and "onclick" not in html and "<script>" not in html
    # Today's page, and an unreadable day, fall back to the office's today.
    assert c.get("/mobility/calendar").status_code == 200
    assert c.get("/mobility/calendar?day=not-a-day").status_code == 200


def test_staff_add_a_series_of_slots(app, w):
    c = browser(app, w, "officer_cr")
    r = c.post("/mobility/calendar/slots", data={"date": "2026-11-04", "time": "09:00", "minutes": "30",
                                                  "capacity": "2", "count": "3", "every_minutes": "",
                                                  "days": "2", "offered": "1", "location": "Desk 1"})
    assert r.status_code == 303 and r.headers["location"] == "/mobility/calendar?day=2026-11-04&notice=created"
    slots = list(w.session.scalars(select(Slot).order_by(Slot.starts_at)))
    assert len(slots) == 6
    assert slots[0].starts_at == datetime(2026, 11, 4, 15, 0, tzinfo=UTC)  # 09:00 in Costa Rica
    assert slots[2].starts_at == datetime(2026, 11, 4, 16, 0, tzinfo=UTC)
    assert slots[3].starts_at == datetime(2026, 11, 5, 15, 0, tzinfo=UTC)
    assert all(s.capacity == 2 and s.offered and s.location == "Desk 1" for s in slots)
    page = c.get(r.headers["location"])
    assert "The slots are added to the calendar." in page.text and "09:00\u201309:30" in page.text

    unoffered = c.post("/mobility/calendar/slots", data={"date": "2026-11-06", "time": "10:00", "minutes": "45",
                                                          "capacity": "1"})
    assert unoffered.status_code == 303  # the box unticked: only staff book these
    last = w.session.scalars(select(Slot).order_by(Slot.starts_at.desc())).first()
    assert last.offered is False and last.ends_at - last.starts_at == timedelta(minutes=45)


@pytest.mark.parametrize(("data", "message"), [
    ({"date": "2026-11-01", "time": "09:00", "minutes": "30", "capacity": "1"}, "choose a time in the future"),
    ({"date": "2026-11-04", "time": "09:00", "minutes": "3", "capacity": "1"}, "between 5 and 480 minutes"),
    ({"date": "2026-11-04", "time": "09:00", "minutes": "30", "capacity": "many"}, "enter a whole number"),
    ({"date": "2026-11-04", "time": "", "minutes": "30", "capacity": "1"}, "enter a date and a time"),
    ({"date": "2026-11-04", "time": "09:00", "minutes": "30", "capacity": "1", "count": "300", "days": "2"},
     "at most 500 slots"),
])
def test_a_wrong_series_is_shown_again_with_its_errors_and_nothing_saved(app, w, data, message):
    c = browser(app, w, "caseworker_cr")
    r = c.post("/mobility/calendar/slots", data=data)
    assert r.status_code == 422
    assert message in r.text and 'role="alert"' in r.text and 'aria-invalid="true"' in r.text
    assert slot_count(w) == 0


def test_booking_attendance_cancelling_and_removing_through_the_pages(app, w):
    today_slot = slot_at(w, 2, capacity=2)  # 11:00 today in Costa Rica
    later = slot_at(w, 30)
    came, missed, moved = (w.registration(status=RegistrationStatus.screened, given_name=n)
                           for n in ("Ana", "Luis", "Rosa"))
    w.session.commit()
    c = browser(app, w, "caseworker_cr")

    for registration in (came, missed):
        r = c.post(f"/mobility/registrations/{registration.id}/book", data={"slot_id": str(today_slot.id)})
        assert r.status_code == 303 and r.headers["location"] == "/mobility/calendar?day=2026-11-02&notice=booked"
    r = c.post(f"/mobility/registrations/{moved.id}/book",
               data={"slot_id": str(later.id), "next": f"/mobility/registrations/{moved.id}"})
    assert r.headers["location"] == f"/mobility/registrations/{moved.id}"
    full = c.post(f"/mobility/registrations/{moved.id}/book", data={"slot_id": str(today_slot.id)})
    assert full.status_code == 422 and "this slot is full" in full.text
    w.session.expire_all()
    assert today_slot.booked == 2 and later.booked == 1
    assert came.status == missed.status == moved.status == RegistrationStatus.interview

    def appointment_of(registration):
        return w.session.scalars(select(Appointment).where(Appointment.registration_id == registration.id,
                                                           Appointment.status != AppointmentStatus.cancelled)).one()

    page = c.get("/mobility/calendar?day=2026-11-02")
    assert came.reference in page.text and "Came" in page.text
    assert c.post(f"/mobility/appointments/{appointment_of(came).id}/attended").status_code == 303
    r = c.post(f"/mobility/appointments/{appointment_of(missed).id}/no-show")
    assert r.status_code == 303 and r.headers["location"].endswith("notice=no_show")
    cancelled = appointment_of(moved)
    r = c.post(f"/mobility/appointments/{cancelled.id}/cancel", data={"reason": "asked by phone"})
    assert r.status_code == 303 and r.headers["location"] == "/mobility/calendar?day=2026-11-03&notice=cancelled"
    w.session.expire_all()
    assert came.status == RegistrationStatus.interviewed
    assert missed.status == RegistrationStatus.screened
    assert moved.status == RegistrationStatus.screened and later.booked == 0
    assert c.post(f"/mobility/appointments/{cancelled.id}/cancel").status_code == 409

    # A slot with someone booked stays; an empty one goes.
    assert c.post(f"/mobility/slots/{today_slot.id}/remove").status_code == 422
    empty = slot_at(w, 50)
    r = c.post(f"/mobility/slots/{empty.id}/remove")
    assert r.status_code == 303 and r.headers["location"].endswith("notice=removed")
    assert w.session.scalar(select(func.count()).select_from(Slot).where(Slot.id == empty.id)) == 0


def test_another_office_gets_404_and_analysts_are_refused_the_calendar(app, w):
    slot = slot_at(w, 26)
    registration = w.registration(status=RegistrationStatus.screened)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    w.session.commit()
    colombia = browser(app, w, "caseworker_co")
    page = colombia.get("/mobility/calendar?day=2026-11-03")
    assert page.status_code == 200 and registration.reference not in page.text
    assert colombia.post(f"/mobility/slots/{slot.id}/remove").status_code == 404
    for action in ("attended", "no-show", "cancel"):
        assert colombia.post(f"/mobility/appointments/{appointment.id}/{action}").status_code == 404
    colombian_slot = slot_at(w, 27, office="co", persona="officer_co")
    assert colombia.post(f"/mobility/registrations/{registration.id}/book",
                         data={"slot_id": str(colombian_slot.id)}).status_code == 404
    # Costa Rica's staff cannot book their registration into Colombia's slot either.
    cr = browser(app, w, "caseworker_cr")
    r = cr.post(f"/mobility/registrations/{registration.id}/book", data={"slot_id": str(colombian_slot.id)})
    assert r.status_code == 422
    w.session.expire_all()
    assert slot.booked == 1 and colombian_slot.booked == 0 and appointment.status == AppointmentStatus.booked

    analyst = browser(app, w, "analyst_cr")  # keeps no calendar: refused the calendar's pages (about no object)
    assert analyst.get("/mobility/calendar").status_code == 403
    assert analyst.post("/mobility/calendar/slots", data={"date": "2026-11-04", "time": "09:00", "minutes": "30",
                                                          "capacity": "1"}).status_code == 403
    assert slot_count(w) == 2

    anonymous = Client(app)
    assert anonymous.get("/mobility/calendar").status_code in (302, 303, 401)


def test_marking_a_later_day_is_refused_on_the_page(app, w):
    slot = slot_at(w, 48)
    registration = w.registration(status=RegistrationStatus.screened)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    w.session.commit()
    c = browser(app, w, "caseworker_cr")
    page = c.get("/mobility/calendar?day=2026-11-04")
    assert registration.reference in page.text and f"/mobility/appointments/{appointment.id}/attended" not in page.text
    assert c.post(f"/mobility/appointments/{appointment.id}/attended").status_code == 422
    clock.advance(timedelta(days=2))
    c = browser(app, w, "caseworker_cr")
    assert c.post(f"/mobility/appointments/{appointment.id}/attended").status_code == 303
