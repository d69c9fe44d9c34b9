"""Edges found in review: merging or closing a registration with an interview booked, converting twice, what a
registrant may book, odd digits in public inputs, the invitation's link, extreme calendar days, and a second
interview cancelled after a first one took place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rdn.cases.models import Case
from rdn.core import clock, outbox
from rdn.core.errors import Conflict
from rdn.mobility import appointments, convert, queue, registration, screening
from rdn.mobility.models import AppointmentStatus, RegistrationStatus
from tests.factories import Client, mail_text


@pytest.fixture
def w(mobility_world, frozen_now):
    return mobility_world


def slot(w, hours: float = 30, office: str = "cr", persona: str = "officer_cr", capacity: int = 3):
    [made] = appointments.create_slots(w.session, actor=w.p(persona), office=w.offices[office],
                                       starts_at=clock.now() + timedelta(hours=hours), minutes=30, capacity=capacity)
    return made


def spain_rule(w):
    return screening.save_rule(w.session, actor=w.p("officer_cr"), office=w.offices["cr"], data={
        "name": "Spain resettlement", "destination": "ES", "pathway_id": str(w.pathways["es_resettlement"].id),
        "conditions": [{"field": "nationality", "op": "in", "value": ["VE", "NI"]}]})


def test_merging_a_duplicate_with_an_interview_cancels_the_interview(w):
    keep, duplicate = w.registration(), w.registration(status=RegistrationStatus.screened)
    booked = appointments.book(w.session, registration=duplicate, slot_id=slot(w).id, by="staff",
                               actor=w.p("caseworker_cr"))
    registration.merge(w.session, actor=w.p("caseworker_cr"), keep=keep, duplicate=duplicate)
    assert duplicate.status == RegistrationStatus.merged and booked.status == AppointmentStatus.cancelled


def test_only_open_registrations_are_merged_away(w):
    keep, referred = w.registration(), w.registration(status=RegistrationStatus.referred)
    with pytest.raises(Conflict):
        registration.merge(w.session, actor=w.p("caseworker_cr"), keep=keep, duplicate=referred)
    assert referred.status == RegistrationStatus.referred


def test_the_merge_page_takes_only_a_possible_duplicate(app, w):
    reg = w.registration(given_name="Rosa", family_name="Díaz", email="rosa@example.org")
    stranger = w.registration(given_name="Pedro", family_name="Suárez", email="pedro@example.org",
                              phone="+506 7000 0000")
    w.session.commit()
    c = Client(app).login(w.session, w.net.people["caseworker_cr"], org=w.orgs["cr"])
    r = c.post(f"/mobility/registrations/{reg.id}/merge", data={"other_id": str(stranger.id), "keep": "this"})
    assert r.status_code == 422
    w.session.expire_all()
    assert stranger.status == RegistrationStatus.received


def test_closing_cancels_the_interview_and_no_reminder_goes(w):
    reg = w.registration(status=RegistrationStatus.screened)
    booked = appointments.book(w.session, registration=reg, slot_id=slot(w, hours=20).id, by="staff",
                               actor=w.p("caseworker_cr"))
    queue.close(w.session, actor=w.p("caseworker_cr"), registration=reg, reason="Moved to another country")
    assert booked.status == AppointmentStatus.cancelled and reg.status == RegistrationStatus.closed
    assert appointments.send_due_reminders(w.session) == 0


def test_a_registration_is_converted_once(w):
    rule = spain_rule(w)
    reg = w.registration(status=RegistrationStatus.screened, nationality="VE")
    screening.screen_registration(w.session, reg)
    convert.convert(w.session, actor=w.p("caseworker_cr"), registration=reg, rule_id=rule.id,
                    government_org_id=w.net.orgs["spain"].id)
    cases = w.session.scalar(select(func.count()).select_from(Case))
    with pytest.raises(Exception) as refused:
        convert.convert(w.session, actor=w.p("caseworker_cr"), registration=reg, rule_id=rule.id,
                        government_org_id=w.net.orgs["spain"].id)
    assert "already referred" in str(refused.value.errors[0].message)  # type: ignore[attr-defined]
    assert w.session.scalar(select(func.count()).select_from(Case)) == cases


def test_a_registrant_books_only_what_the_status_page_offers(w):
    not_qualified = w.registration(status=RegistrationStatus.not_qualified)
    with pytest.raises(Conflict):
        appointments.book(w.session, registration=not_qualified, slot_id=slot(w).id, by="registrant")
    screened = w.registration(status=RegistrationStatus.screened)
    appointments.book(w.session, registration=screened, slot_id=slot(w).id, by="registrant")
    with pytest.raises(Conflict):  # booked already: moving it is the office's to do
        appointments.book(w.session, registration=screened, slot_id=slot(w, hours=50).id, by="registrant")


def test_superscript_digits_in_public_inputs_are_refused_not_a_server_error(app, w):
    reg = w.registration()
    w.session.commit()
    client = Client(app)
    assert client.get(f"/safe-mobility/status/{reg.reference}?token=\u00b2.x").status_code < 500
    page = client.get("/safe-mobility/cr/register?lang=es")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    for fields in ({"issued": "\u00b2.x"}, {"rows": "\u00b2", "more": "1"}):
        r = client.post("/safe-mobility/cr/register", data={"csrf_token": token, **fields})
        assert r.status_code < 500, fields


def test_the_invitation_points_to_the_status_page(w, mailbox):
    reg = w.registration(status=RegistrationStatus.screened, language="en")
    appointments.book(w.session, registration=reg, slot_id=slot(w).id, by="staff", actor=w.p("caseworker_cr"))
    w.session.commit()
    outbox.Worker().run_until_idle()
    [msg] = mailbox.to("maria@example.org")
    text = mail_text(msg)
    assert "/safe-mobility/status?lang=en" in text and "contact the office" in text


def test_the_calendar_takes_any_day_asked_for(app, w):
    c = Client(app).login(w.session, w.net.people["caseworker_cr"], org=w.orgs["cr"])
    for day in ("0001-01-01", "9999-12-31", "2026-02-30", "x"):
        assert c.get(f"/mobility/calendar?day={day}").status_code == 200, day


def test_a_second_interview_called_off_goes_back_to_interviewed(w):
    reg = w.registration(status=RegistrationStatus.screened)
    first = appointments.book(w.session, registration=reg, slot_id=slot(w, hours=1).id, by="staff",
                              actor=w.p("caseworker_cr"))
    clock.advance(timedelta(hours=2))
    appointments.mark(w.session, actor=w.p("caseworker_cr"), appointment=first, status="attended")
    assert reg.status == RegistrationStatus.interviewed
    second = appointments.book(w.session, registration=reg, slot_id=slot(w, hours=30).id, by="staff",
                               actor=w.p("caseworker_cr"))
    appointments.cancel(w.session, appointment=second, by="staff", actor=w.p("caseworker_cr"))
    assert reg.status == RegistrationStatus.interviewed
