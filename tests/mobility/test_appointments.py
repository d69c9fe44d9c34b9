"""Appointments: the calendar's slots, booking by registrants and staff within capacity, rescheduling and
cancelling, attendance, and what registrants receive: invitations whose .ics attachment (as the SMTP server
received it) is read back by the ``icalendar`` package, and one reminder by email (and SMS) the day before."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from rdn import db
from rdn.config import get_settings, load_settings, set_settings
from rdn.core import clock, identity, outbox, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.outbox import Job
from rdn.core.tenancy import OrgKind, Role
from rdn.mobility import appointments
from rdn.mobility.models import Appointment, AppointmentStatus, Office, Registration, RegistrationStatus, Slot
from tests.conftest import rdn_environ
from tests.factories import mail_text, make_org, make_person
from tests.http_sink import serve
from tests.mobility.conftest import NOW, make_registration


def run_jobs(periodic: bool = False) -> int:
    return outbox.Worker().run_until_idle(periodic=periodic)


def make_slot(w, *, hours: float = 26, capacity: int = 1, offered: bool = True, office: str = "cr",
              persona: str = "officer_cr", minutes: int = 30) -> Slot:
    [slot] = appointments.create_slots(w.session, actor=w.p(persona), office=w.offices[office],
                                       starts_at=clock.now() + timedelta(hours=hours), minutes=minutes,
                                       capacity=capacity, offered=offered)
    return slot


def screened(w, **kw):
    return w.registration(status=RegistrationStatus.screened, **kw)


def calendar_part(msg: Message) -> tuple[str, Calendar]:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return part.get_param("method") or "", Calendar.from_ical(data)
    raise AssertionError("no calendar attachment")


def subject(msg: Message) -> str:
    return " ".join(str(make_header(decode_header(msg["Subject"]))).split())


def event_of(cal: Calendar):
    [event] = cal.walk("VEVENT")
    return event


def audit_count(session, action: str) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


# Slots -------------------------------------------------------------------------------------------------------


def test_a_series_of_slots_over_several_days_in_the_office_time(mobility_world, frozen_now):
    w = mobility_world
    start = datetime(2026, 11, 3, 8, 0)  # naive: 08:00 in Costa Rica (UTC-6)
    slots = appointments.create_slots(w.session, actor=w.p("caseworker_cr"), office=w.offices["cr"],
                                      starts_at=start, minutes=30, capacity=3, count=4, every_minutes=45, days=3,
                                      location="Desk 2")
    assert len(slots) == 12
    assert slots[0].starts_at == datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    assert slots[1].starts_at == datetime(2026, 11, 3, 14, 45, tzinfo=UTC)
    assert slots[3].ends_at == datetime(2026, 11, 3, 16, 45, tzinfo=UTC)
    assert slots[4].starts_at == datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # the next day: no day is skipped
    assert slots[-1].starts_at == datetime(2026, 11, 5, 16, 15, tzinfo=UTC)
    assert all(s.capacity == 3 and s.booked == 0 and s.offered and s.location == "Desk 2" for s in slots)
    back_to_back = appointments.create_slots(w.session, actor=w.p("caseworker_cr"), office=w.offices["cr"],
                                             starts_at=start, minutes=20, capacity=1, count=3)
    assert [s.starts_at.minute for s in back_to_back] == [0, 20, 40]
    assert audit_count(w.session, "mobility.slots.create") == 2


@pytest.mark.parametrize(("kw", "field"), [
    ({"starts_at": NOW - timedelta(minutes=1)}, "starts_at"),
    ({"minutes": 4}, "minutes"),
    ({"minutes": 481}, "minutes"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 201}, "capacity"),
    ({"count": 0}, "count"),
    ({"count": 101, "days": 5}, "count"),  # 505 slots at once
    ({"count": 49, "minutes": 30}, "count"),  # a day's series longer than a day
    ({"every_minutes": 10, "minutes": 30}, "every_minutes"),
    ({"days": 0}, "days"),
    ({"location": "x" * 301}, "location"),
])
def test_slot_series_are_checked(mobility_world, frozen_now, kw, field):
    w = mobility_world
    args = {"starts_at": NOW + timedelta(days=1), "minutes": 30, "capacity": 2} | kw
    with pytest.raises(ValidationFailed) as caught:
        appointments.create_slots(w.session, actor=w.p("officer_cr"), office=w.offices["cr"], **args)
    assert field in {e.field for e in caught.value.errors}
    assert w.session.scalar(select(func.count()).select_from(Slot)) == 0


def test_open_slots_are_offered_future_and_not_full_soonest_first(mobility_world, frozen_now):
    w = mobility_world
    later = make_slot(w, hours=50)
    soon = make_slot(w, hours=3)
    make_slot(w, hours=4, offered=False)
    full = make_slot(w, hours=5)
    make_slot(w, hours=6, office="co", persona="officer_co")
    appointments.book(w.session, registration=screened(w), slot_id=full.id, by="registrant")
    assert [s.id for s in appointments.open_slots(w.session, w.offices["cr"])] == [soon.id, later.id]
    assert [s.id for s in appointments.open_slots(w.session, w.offices["cr"], after=NOW + timedelta(hours=10))] \
        == [later.id]
    assert len(appointments.open_slots(w.session, w.offices["cr"], offered_only=False)) == 3
    clock.advance(timedelta(hours=3, minutes=1))
    assert [s.id for s in appointments.open_slots(w.session, w.offices["cr"])] == [later.id]


def test_a_slot_is_removed_only_when_nobody_is_booked(mobility_world, frozen_now):
    w = mobility_world
    empty, used = make_slot(w), make_slot(w, hours=30)
    appointments.remove_slot(w.session, actor=w.p("caseworker_cr"), slot=empty)
    assert w.session.get(Slot, empty.id) is None
    appointment = appointments.book(w.session, registration=screened(w), slot_id=used.id, by="registrant")
    with pytest.raises(ValidationFailed) as caught:
        appointments.remove_slot(w.session, actor=w.p("caseworker_cr"), slot=used)
    assert caught.value.errors[0].field == "slot"
    appointments.cancel(w.session, appointment=appointment, by="registrant")
    appointments.remove_slot(w.session, actor=w.p("caseworker_cr"), slot=used)  # closed, its history kept
    assert used.capacity == 0 and not used.offered
    assert appointments.open_slots(w.session, w.offices["cr"], offered_only=False) == []
    with pytest.raises(ValidationFailed):
        appointments.book(w.session, registration=screened(w), slot_id=used.id, by="staff", actor=w.p("admin_cr"))
    assert audit_count(w.session, "mobility.slot.remove") == 2


# Booking -----------------------------------------------------------------------------------------------------


def test_capacity_holds(mobility_world, frozen_now):
    w = mobility_world
    slot = make_slot(w, capacity=2)
    first, second, third = screened(w), screened(w, given_name="Ana"), screened(w, given_name="Luis")
    appointments.book(w.session, registration=first, slot_id=slot.id, by="registrant")
    appointments.book(w.session, registration=second, slot_id=str(slot.id), by="staff", actor=w.p("caseworker_cr"))
    assert slot.booked == 2
    with pytest.raises(ValidationFailed) as caught:
        appointments.book(w.session, registration=third, slot_id=slot.id, by="staff", actor=w.p("caseworker_cr"))
    assert caught.value.errors[0].field == "slot"
    assert third.status == RegistrationStatus.screened
    assert w.session.scalar(select(func.count()).select_from(Appointment)
                            .where(Appointment.slot_id == slot.id)) == 2


def test_capacity_holds_against_a_stale_read(mobility_world, frozen_now):
    """What a concurrent booking looks like to the loser: the slot it read had a free place, but the database's
    count says full by the time it books. The conditional UPDATE decides, not what was read."""
    w = mobility_world
    slot = make_slot(w, capacity=1)
    registration = screened(w)
    w.session.connection().execute(Slot.__table__.update().where(Slot.__table__.c.id == slot.id).values(booked=1))
    assert slot.booked == 0  # the ORM's copy is stale, as another transaction's would be
    with pytest.raises(ValidationFailed) as caught:
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    assert caught.value.errors[0].field == "slot"
    w.session.refresh(slot)
    assert slot.booked == 1


def test_registrants_book_only_offered_slots_staff_any(mobility_world, frozen_now):
    w = mobility_world
    slot = make_slot(w, offered=False)
    registration = screened(w)
    with pytest.raises(ValidationFailed) as caught:
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    assert caught.value.errors[0].field == "slot" and slot.booked == 0
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="staff",
                                    actor=w.p("caseworker_cr"))
    assert appointment.booked_by == "staff" and slot.booked == 1


def test_past_and_foreign_and_unknown_slots_are_refused(mobility_world, frozen_now):
    w = mobility_world
    slot = make_slot(w, hours=1)
    colombian = make_slot(w, office="co", persona="officer_co")
    registration = screened(w)
    clock.advance(timedelta(hours=1))  # the slot begins now
    for slot_id in (slot.id, colombian.id, "not-an-id", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(ValidationFailed) as caught:
            appointments.book(w.session, registration=registration, slot_id=slot_id, by="staff",
                              actor=w.p("caseworker_cr"))
        assert caught.value.errors[0].field == "slot"
    assert registration.status == RegistrationStatus.screened
    with pytest.raises(ValidationFailed) as caught:
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="nobody")
    assert caught.value.errors[0].field == "by"


def test_booking_moves_the_registration_to_interview_with_history_and_audit(mobility_world, frozen_now):
    w = mobility_world
    registration = screened(w)
    appointment = appointments.book(w.session, registration=registration, slot_id=make_slot(w).id, by="registrant")
    assert registration.status == RegistrationStatus.interview and registration.status_since == NOW
    assert registration.history[-1] == {"at": NOW.isoformat(), "status": "interview", "by": "registrant"}
    assert appointment.status == AppointmentStatus.booked and appointment.sequence == 0
    found = appointments.current_appointment(w.session, registration)
    assert found is not None and found[0].id == appointment.id
    assert audit_count(w.session, "mobility.appointment.book") == 1
    # Booking the same slot again changes nothing (a double submission).
    again = appointments.book(w.session, registration=registration, slot_id=found[1].id, by="registrant")
    assert again.id == appointment.id and found[1].booked == 1


@pytest.mark.parametrize("status", ["referred", "closed", "withdrawn", "merged"])
def test_finished_registrations_cannot_book(mobility_world, frozen_now, status):
    w = mobility_world
    registration = w.registration(status=RegistrationStatus(status))
    slot = make_slot(w)
    with pytest.raises(Conflict):
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="staff",
                          actor=w.p("caseworker_cr"))
    assert slot.booked == 0


def test_another_office_staff_are_refused(mobility_world, frozen_now):
    w = mobility_world
    registration = screened(w)
    slot = make_slot(w)
    with pytest.raises(policy.NotFound):
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="staff",
                          actor=w.p("caseworker_co"))
    with pytest.raises(policy.NotAuthenticated):
        appointments.book(w.session, registration=registration, slot_id=slot.id, by="staff", actor=None)
    with pytest.raises(policy.NotFound):
        appointments.create_slots(w.session, actor=w.p("caseworker_co"), office=w.offices["cr"],
                                  starts_at=NOW + timedelta(days=1), minutes=30, capacity=1)
    with pytest.raises(policy.NotFound):  # analysts see figures, not the calendar
        appointments.create_slots(w.session, actor=w.p("analyst_cr"), office=w.offices["cr"],
                                  starts_at=NOW + timedelta(days=1), minutes=30, capacity=1)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    for call in (lambda: appointments.cancel(w.session, appointment=appointment, by="staff",
                                             actor=w.p("caseworker_co")),
                 lambda: appointments.mark(w.session, actor=w.p("caseworker_co"), appointment=appointment,
                                           status="attended"),
                 lambda: appointments.remove_slot(w.session, actor=w.p("officer_co"), slot=slot),
                 lambda: appointments.appointments_on(w.session, w.p("caseworker_co"), w.offices["cr"],
                                                      date(2026, 11, 3))):
        with pytest.raises(policy.NotFound):
            call()
    assert appointment.status == AppointmentStatus.booked and slot.booked == 1


def test_reschedule_frees_the_old_place_and_raises_the_sequence(mobility_world, frozen_now, mailbox):
    w = mobility_world
    registration = screened(w)
    first_slot, second_slot = make_slot(w), make_slot(w, hours=50)
    first = appointments.book(w.session, registration=registration, slot_id=first_slot.id, by="registrant")
    second = appointments.book(w.session, registration=registration, slot_id=second_slot.id, by="staff",
                               actor=w.p("caseworker_cr"))
    assert first.status == AppointmentStatus.cancelled and first_slot.booked == 0
    assert second_slot.booked == 1 and second.rescheduled_from_id == first.id and second.sequence == 1
    assert registration.status == RegistrationStatus.interview
    assert [h["status"] for h in registration.history] == ["interview"]  # still the one interview
    assert appointments.current_appointment(w.session, registration)[0].id == second.id
    assert audit_count(w.session, "mobility.appointment.reschedule") == 1
    # The freed place can be taken by someone else.
    appointments.book(w.session, registration=screened(w, given_name="Ana"), slot_id=first_slot.id, by="registrant")
    w.session.commit()
    run_jobs()

    invitations = mailbox.to("maria@example.org")  # Ana's too: the test households share an address
    assert len(invitations) == 3
    # The worker sends in no promised order: each message is known by its calendar event.
    events = [event_of(calendar_part(msg)[1]) for msg in invitations]
    [moved] = [e for e in events if int(e["SEQUENCE"]) == 1]
    originals = [e for e in events if str(e["UID"]) == str(moved["UID"]) and int(e["SEQUENCE"]) == 0]
    # The same calendar event, moved: its UID is kept, its SEQUENCE raised, its time the new one.
    assert len(originals) == 1 and str(moved["UID"]) == f"{first.id}@rdn"
    assert moved.decoded("DTSTART") == second_slot.starts_at


def test_cancel_frees_the_place_and_sends_a_cancellation(mobility_world, frozen_now, mailbox):
    w = mobility_world
    registration = screened(w)
    slot = make_slot(w)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    appointments.cancel(w.session, appointment=appointment, by="staff", actor=w.p("caseworker_cr"),
                        reason="Office closed")
    assert appointment.status == AppointmentStatus.cancelled and appointment.sequence == 1
    assert slot.booked == 0
    assert registration.status == RegistrationStatus.screened  # back where it was: they can book again
    assert appointments.current_appointment(w.session, registration) is None
    with pytest.raises(Conflict):
        appointments.cancel(w.session, appointment=appointment, by="registrant")
    assert slot.booked == 0  # never given back twice
    w.session.commit()
    run_jobs()
    sent = mailbox.to("maria@example.org")
    assert len(sent) == 2
    # The worker sends in no promised order: the cancellation is the message whose calendar cancels.
    [cancellation] = [msg for msg in sent if calendar_part(msg)[0] == "CANCEL"]
    method, cal = calendar_part(cancellation)
    event = event_of(cal)
    assert method == "CANCEL" and str(cal["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    assert str(event["UID"]) == f"{appointment.id}@rdn"
    assert "Office closed" not in mail_text(cancellation)


# Invitations and reminders -----------------------------------------------------------------------------------


def test_the_invitation_reaches_the_smtp_server_with_an_ics_icalendar_reads(mobility_world, frozen_now, mailbox):
    """In the registrant's language, from the registrants' catalog (Spanish here)."""
    w = mobility_world
    registration = screened(w, language="es", pin="482913")
    slot = make_slot(w, hours=26)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    w.session.commit()
    assert run_jobs() >= 1

    [msg] = mailbox.to("maria@example.org")
    assert subject(msg).startswith("Su cita de Movilidad Segura el ")
    method, cal = calendar_part(msg)
    assert method == "REQUEST" and str(cal["METHOD"]) == "REQUEST" and str(cal["VERSION"]) == "2.0"
    event = event_of(cal)
    start = event.decoded("DTSTART")
    assert start == datetime(2026, 11, 3, 17, 0, tzinfo=UTC) == slot.starts_at
    assert start.utcoffset() == timedelta(0)
    assert event.decoded("DTEND") == slot.ends_at
    assert str(event["SUMMARY"]) == "Cita de Movilidad Segura: Safe Mobility Office Costa Rica"
    assert str(event["UID"]) == f"{appointment.id}@rdn"
    assert int(event["SEQUENCE"]) == 0
    assert str(event["STATUS"]) == "CONFIRMED"
    description = str(event["DESCRIPTION"])
    assert "San José" in description and "Traiga sus documentos de identidad." in description
    assert registration.reference in description
    text = mail_text(msg)
    assert registration.reference in text and "11:00" in text  # 17:00 UTC is 11:00 in Costa Rica
    raw = msg.as_string()
    for secret in ("482913", "María", "López"):  # never the PIN, never the name
        assert secret not in raw and secret not in description


def test_nothing_is_sent_without_consent_to_contact(mobility_world, frozen_now, mailbox):
    w = mobility_world
    registration = screened(w)
    registration.consent_contact = None
    slot = make_slot(w, hours=5)
    appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    assert appointments.send_due_reminders(w.session) == 1  # reminded (nobody to tell): not looked at again
    w.session.commit()
    run_jobs()
    assert mailbox.messages == []


def test_the_ics_is_escaped_folded_and_read_back(mobility_world, frozen_now):
    w = mobility_world
    office = w.offices["cr"]
    office.address = "Calle 5, Avenida 3; Edificio \"A\" \\ piso 2\nSan José, Costa Rica " + "ñ" * 60
    slot = make_slot(w)
    slot.location = "Sala 1, escritorio; 2"
    appointment = appointments.book(w.session, registration=screened(w), slot_id=slot.id, by="registrant")
    data = appointments.ics(appointment, slot, office, language="en", reference="SM-CR-TEST2345")
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # folding never splits a character
    assert b"LOCATION:Sala 1\\, escritorio\\; 2\r\n" in data
    event = event_of(Calendar.from_ical(data))
    assert str(event["LOCATION"]) == "Sala 1, escritorio; 2"
    assert office.address in str(event["DESCRIPTION"])
    assert "Bring your identity documents." in str(event["DESCRIPTION"])
    assert "SM-CR-TEST2345" in str(event["DESCRIPTION"])


def test_reminders_reach_the_smtp_server_once(mobility_world, frozen_now, mailbox):
    w = mobility_world
    registration = screened(w, language="en")
    slot = make_slot(w, hours=30)
    appointment = appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    w.session.commit()
    run_jobs(periodic=True)
    assert len(mailbox.to("maria@example.org")) == 1  # the invitation; 30 hours ahead: no reminder yet
    assert appointment.reminded_at is None

    clock.advance(timedelta(hours=7))  # 23 hours before
    run_jobs(periodic=True)
    clock.advance(timedelta(minutes=16))  # the next run of the periodic job
    run_jobs(periodic=True)
    reminders = mailbox.to("maria@example.org")[1:]
    assert len(reminders) == 1
    assert subject(reminders[0]).startswith("Reminder: your Safe Mobility appointment on ")
    assert registration.reference in mail_text(reminders[0]) and "123456" not in reminders[0].as_string()
    w.session.refresh(appointment)
    assert appointment.reminded_at == NOW + timedelta(hours=7)
    assert appointments.send_due_reminders(w.session) == 0


@pytest.fixture
def sms_provider(database_url, smtp_server):
    original = get_settings()
    with serve(lambda n: (200, {"id": f"prov-{n}"})) as state:
        set_settings(load_settings(environ=rdn_environ(database_url, smtp_server[0], RDN_SMS_URL=state.url,
                                                       RDN_SMS_TOKEN="token-for-tests")))
        try:
            yield state
        finally:
            set_settings(original)


def test_reminders_go_by_sms_too_when_a_phone_was_given(mobility_world, frozen_now, mailbox, sms_provider):
    w = mobility_world
    registration = screened(w, language="en")
    no_email = screened(w, given_name="Luis", email="", phone="+506 7777 0000", language="en")
    slot = make_slot(w, hours=10, capacity=2)
    appointments.book(w.session, registration=registration, slot_id=slot.id, by="registrant")
    appointments.book(w.session, registration=no_email, slot_id=slot.id, by="registrant")
    w.session.commit()
    run_jobs(periodic=True)
    clock.advance(timedelta(minutes=16))
    run_jobs(periodic=True)
    bodies = sms_provider.bodies()
    # Luis: an SMS for the booking (no email to send the invitation to) and one reminder; María: one reminder.
    assert sorted(b["to"] for b in bodies) == ["+50677770000", "+50677770000", "+50688881234"]
    assert all(registration.reference in b["text"] or no_email.reference in b["text"] for b in bodies)
    assert sum("reminder" in b["text"] for b in bodies) == 2
    assert len(mailbox.to("maria@example.org")) == 2  # invitation and reminder
    assert w.session.scalar(select(func.count()).select_from(Job).where(Job.kind == "mobility.sms")) == 3


# Attendance --------------------------------------------------------------------------------------------------


def test_attended_and_no_show_move_the_registration(mobility_world, frozen_now):
    w = mobility_world
    slot = make_slot(w, hours=2, capacity=2)  # later today in Costa Rica
    came, missed = screened(w), screened(w, given_name="Ana")
    a = appointments.book(w.session, registration=came, slot_id=slot.id, by="registrant")
    b = appointments.book(w.session, registration=missed, slot_id=slot.id, by="registrant")
    [today] = {x.slot.id for x in appointments.appointments_on(w.session, w.p("caseworker_cr"), w.offices["cr"],
                                                               date(2026, 11, 2))}
    assert today == slot.id
    clock.advance(timedelta(hours=2, minutes=30))
    appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=a, status="attended")
    appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=b, status="no_show")
    assert a.status == AppointmentStatus.attended and came.status == RegistrationStatus.interviewed
    assert b.status == AppointmentStatus.no_show and missed.status == RegistrationStatus.screened
    assert missed.history[-1]["note"] == "no_show"
    assert appointments.no_shows(w.session, missed) == 1
    assert appointments.current_appointment(w.session, missed) is None
    with pytest.raises(Conflict):
        appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=b, status="attended")
    with pytest.raises(ValidationFailed):
        appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=a, status="maybe")
    # Who missed their interview books another.
    again = appointments.book(w.session, registration=missed, slot_id=make_slot(w, hours=30).id, by="registrant")
    assert again.rescheduled_from_id is None and missed.status == RegistrationStatus.interview
    assert audit_count(w.session, "mobility.appointment.no_show") == 1


def test_a_future_day_interview_cannot_be_marked(mobility_world, frozen_now):
    w = mobility_world
    registration = screened(w)
    appointment = appointments.book(w.session, registration=registration, slot_id=make_slot(w, hours=48).id,
                                    by="registrant")
    with pytest.raises(ValidationFailed):
        appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=appointment, status="attended")
    assert registration.status == RegistrationStatus.interview


# Concurrency -------------------------------------------------------------------------------------------------


def test_concurrent_bookings_never_exceed_capacity(committed_db):
    """Twelve registrants press "book" at the same moment for a slot with three places, each in a transaction
    of their own on a really committed database: three get a place, nine are told it is full."""
    with db.transaction() as s:
        org = make_org(s, "smo-race", "Safe Mobility Office Race", OrgKind.mobility_office, "CR")
        keeper, _secret = make_person(s, "keeper@smo.rdn.test", org, [Role.officer])
        office = Office(org_id=org.id, slug="race", country="CR", name="Race office", nationalities=["VE"],
                        timezone="America/Costa_Rica", address="San José")
        s.add(office)
        s.flush()
        ids = [make_registration(s, office, given_name=f"Persona {i}", email=f"p{i}@example.org",
                                 status=RegistrationStatus.screened).id for i in range(12)]
        actor = identity.principal_for(s, keeper, org_id=org.id, via="session")
        [slot] = appointments.create_slots(s, actor=actor, office=office, starts_at=clock.now() + timedelta(days=2),
                                           minutes=30, capacity=3)
        slot_id = slot.id
    barrier = threading.Barrier(len(ids))

    def attempt(registration_id) -> str:
        barrier.wait()
        try:
            with db.transaction() as s:
                registration = s.get(Registration, registration_id)
                appointments.book(s, registration=registration, slot_id=slot_id, by="registrant")
            return "booked"
        except ValidationFailed as exc:
            assert exc.errors[0].field == "slot"
            return "full"

    with ThreadPoolExecutor(len(ids)) as pool:
        outcomes = list(pool.map(attempt, ids))
    assert outcomes.count("booked") == 3 and outcomes.count("full") == 9
    with db.read_only() as s:
        assert s.get(Slot, slot_id).booked == 3
        assert s.scalar(select(func.count()).select_from(Appointment)
                        .where(Appointment.slot_id == slot_id, Appointment.status == AppointmentStatus.booked)) == 3
