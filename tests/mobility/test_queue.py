"""The caseworkers' queue: its tabs (new, to review, today's interviews, all), filters, search by reference,
counts, the possible duplicates it flags, and that it shows one office's registrations only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rdn.core import clock, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.mobility import queue as q
from rdn.mobility.models import (
    Appointment,
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
    RuleStatus,
    ScreeningResult,
    ScreeningRule,
    Slot,
)
from rdn.pathways.models import Pathway


def make_rule(session: Session, office: Office, pathway: Pathway | None, *, name: str = "Spain resettlement",
              destination: str = "ES") -> ScreeningRule:
    rule = ScreeningRule(office_id=office.id, name=name, destination=destination,
                         pathway_id=pathway.id if pathway else None, questions=[],
                         conditions=[{"field": "nationality", "op": "in", "value": ["VE", "NI"]}],
                         status=RuleStatus.active)
    session.add(rule)
    session.flush()
    return rule


def result(session: Session, registration: Registration, rule: ScreeningRule, qualifies: bool = True,
           *, status: RegistrationStatus | None = RegistrationStatus.screened) -> ScreeningResult:
    """A screening result as screening would store it (the registration moved to ``status``)."""
    row = ScreeningResult(registration_id=registration.id, rule_id=rule.id, qualifies=qualifies,
                          checks=[{"label": "Nationality is one of VE, NI", "held": qualifies}], current=True)
    session.add(row)
    if status is not None:
        registration.status = status
    session.flush()
    return row


def book(session: Session, office: Office, registration: Registration, starts_at: datetime,
         status: AppointmentStatus = AppointmentStatus.booked) -> Appointment:
    slot = Slot(office_id=office.id, starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), capacity=2,
                booked=1)
    session.add(slot)
    session.flush()
    row = Appointment(registration_id=registration.id, slot_id=slot.id, status=status, booked_by="staff")
    session.add(row)
    registration.status = RegistrationStatus.interview
    session.flush()
    return row


@pytest.fixture
def office_queue(mobility_world: Any, session: Session, frozen_now: datetime) -> dict[str, Any]:
    w = mobility_world
    rule = make_rule(session, w.offices["cr"], w.pathways["es_resettlement"])
    fresh = w.registration(given_name="Ana", nationality="VE", status=RegistrationStatus.received)
    screened = w.registration(given_name="Beto", nationality="NI", phone="+506 7000 0001", email="b@example.org")
    result(session, screened, rule)
    unqualified = w.registration(given_name="Carla", nationality="VE", phone="+506 7000 0002", email="c@x.org")
    result(session, unqualified, rule, qualifies=False, status=RegistrationStatus.not_qualified)
    # Booked for this afternoon in Costa Rica (UTC-6): NOW is 15:00 UTC, 09:00 in San José.
    booked = w.registration(given_name="Dora", nationality="VE", phone="+506 7000 0003", email="d@x.org")
    result(session, booked, rule)
    appointment = book(session, w.offices["cr"], booked, frozen_now + timedelta(hours=4))
    # Tomorrow in San José (07:00 UTC tomorrow is 01:00 there): not today.
    later = w.registration(given_name="Eva", nationality="VE", phone="+506 7000 0004", email="e@x.org")
    result(session, later, rule)
    book(session, w.offices["cr"], later, datetime(2026, 11, 3, 7, 0, tzinfo=frozen_now.tzinfo))
    # Late last night UTC is still yesterday evening... 05:30 UTC today is 23:30 yesterday in San José.
    yesterday = w.registration(given_name="Fede", nationality="VE", phone="+506 7000 0005", email="f@x.org")
    result(session, yesterday, rule)
    book(session, w.offices["cr"], yesterday, frozen_now.replace(hour=5, minute=30), AppointmentStatus.no_show)
    other_office = w.registration("co", given_name="Gil", nationality="CU", phone="+57 300 000 0006",
                                  email="g@x.org")
    session.commit()
    return {"fresh": fresh, "screened": screened, "unqualified": unqualified, "booked": booked, "later": later,
            "yesterday": yesterday, "other_office": other_office, "appointment": appointment, "rule": rule}


def refs(page: Any) -> set[str]:
    return {item.registration.reference for item in page.items}


def test_the_tabs(mobility_world, session, office_queue):
    w, r = mobility_world, office_queue
    cw = w.p("caseworker_cr")
    assert refs(q.queue(session, cw, tab="new")) == {r["fresh"].reference, r["screened"].reference}
    assert refs(q.queue(session, cw, tab="review")) == {r["screened"].reference}
    today = q.queue(session, cw, tab="today")
    assert refs(today) == {r["booked"].reference}
    assert today.items[0].appointment.id == r["appointment"].id and today.items[0].slot is not None
    everything = q.queue(session, cw, tab="all")
    assert everything.total == 6 and r["other_office"].reference not in refs(everything)
    assert q.tab_counts(session, cw) == {"new": 2, "review": 1, "today": 1, "all": 6}
    # The other office sees only its own.
    assert refs(q.queue(session, w.p("caseworker_co"), tab="all")) == {r["other_office"].reference}


def test_opening_a_file_takes_it_off_the_new_tab(mobility_world, session, office_queue):
    cw = mobility_world.p("caseworker_cr")
    files = q.open_file(session, actor=cw, registration=office_queue["screened"])
    assert files["identity"]["members"][0]["given_name"] == "Beto"
    assert refs(q.queue(session, cw, tab="new")) == {office_queue["fresh"].reference}
    # Still to review: opened is not decided.
    assert refs(q.queue(session, cw, tab="review")) == {office_queue["screened"].reference}


def test_filters_and_search(mobility_world, session, office_queue):
    cw = mobility_world.p("caseworker_cr")
    screened = office_queue["screened"]
    assert refs(q.queue(session, cw, tab="all", nationality="ni")) == {screened.reference}
    assert refs(q.queue(session, cw, tab="all", q=screened.reference[-5:].lower())) == {screened.reference}
    assert refs(q.queue(session, cw, tab="all", q=" " + screened.reference + " ")) == {screened.reference}
    assert refs(q.queue(session, cw, tab="all", status="not_qualified")) == {office_queue["unqualified"].reference}
    assert q.queue(session, cw, tab="all", q="SM-XX-%").total == 0
    assert q.tab_counts(session, cw, nationality="NI") == {"new": 1, "review": 1, "today": 0, "all": 1}
    for bad in ({"tab": "later"}, {"nationality": "Venezuela"}, {"status": "lost"}):
        with pytest.raises(ValidationFailed) as exc:
            q.queue(session, cw, **{"tab": "all", **bad})
        assert exc.value.errors[0].field == next(iter(bad))


def test_paging(mobility_world, session, office_queue):
    cw = mobility_world.p("caseworker_cr")
    first = q.queue(session, cw, tab="all", per_page=4)
    second = q.queue(session, cw, tab="all", per_page=4, page=2)
    assert (first.total, len(first.items), len(second.items), first.pages) == (6, 4, 2, 2)
    assert not refs(first) & refs(second)


def test_possible_duplicates_are_flagged(mobility_world, session, frozen_now):
    w = mobility_world
    one = w.registration(given_name="José", family_name="Pérez", phone="+506 6000 1111", email="j@x.org")
    again = w.registration(given_name="jose", family_name="perez", phone="+506 6000 2222", email="k@x.org")
    named = w.registration(given_name="Luz", phone="+506 6000 3333", email="l@x.org")
    alone = w.registration(given_name="Mar", phone="+506 6000 4444", email="m@x.org")
    named.duplicate_of_id = alone.id
    # The same person at the other office is not this office's duplicate.
    w.registration("co", given_name="Mar", phone="+57 6000 4444", email="m2@x.org", nationality="VE")
    session.flush()
    flags = {i.registration.id: i.possible_duplicate for i in q.queue(session, w.p("caseworker_cr"), tab="all").items}
    assert flags == {one.id: True, again.id: True, named.id: True, alone.id: False}
    found = q.duplicates_of(session, w.p("caseworker_cr"), alone)
    assert [r.id for r in found] == [named.id]
    assert [r.id for r in q.duplicates_of(session, w.p("caseworker_cr"), one)] == [again.id]


def test_who_sees_the_queue(mobility_world, session, office_queue):
    w = mobility_world
    for persona in ("officer_cr", "admin_cr"):
        assert q.queue(session, w.p(persona), tab="all").total == 6
    for persona in ("analyst_cr", "officer_canada", "minister_spain", "admin_secretariat"):
        with pytest.raises(policy.AuthError):
            q.queue(session, w.p(persona), tab="all")
    with pytest.raises(policy.NotFound):
        q.access_registration(session, w.p("caseworker_co"), office_queue["fresh"].id)
    with pytest.raises(policy.NotFound):
        q.access_registration(session, w.p("caseworker_cr"), "not-an-id")


def test_closing(mobility_world, session, office_queue):
    cw = mobility_world.p("caseworker_cr")
    fresh = office_queue["fresh"]
    with pytest.raises(ValidationFailed):
        q.close(session, actor=cw, registration=fresh, reason="")
    q.close(session, actor=cw, registration=fresh, reason="Moved to another country")
    assert fresh.status == RegistrationStatus.closed and fresh.closed_reason == "Moved to another country"
    assert fresh.history[-1]["status"] == "closed"
    with pytest.raises(Conflict):
        q.close(session, actor=cw, registration=fresh, reason="Again")
    with pytest.raises(policy.NotFound):
        q.close(session, actor=mobility_world.p("caseworker_co"), registration=office_queue["screened"],
                reason="Not ours")


def test_today_is_the_offices_day(mobility_world, session, frozen_now):
    start, end = q.local_day(mobility_world.offices["cr"])
    assert start.utcoffset() == timedelta(hours=-6) and start.date() == date(2026, 11, 2)
    assert (end - start) == timedelta(days=1)
    assert clock.now() == frozen_now


# The pages ------------------------------------------------------------------------------------------------------


def test_the_queue_page(mobility_world, session, office_queue, client):
    w, r = mobility_world, office_queue
    client.login(session, w.net.people["caseworker_cr"])
    page = client.get("/mobility")
    assert page.status_code == 200, page.text
    assert r["fresh"].reference in page.text and r["screened"].reference in page.text
    assert r["booked"].reference not in page.text and "María" not in page.text  # no names in the queue
    assert 'aria-current="page"' in page.text and " style=" not in page.text and "<script>" not in page.text
    today = client.get("/mobility?tab=today")
    assert r["booked"].reference in today.text and "13:00" in today.text  # 19:00 UTC is 13:00 in San José
    empty = client.get("/mobility?tab=all&q=SM-ZZ-NOTHERE")
    assert empty.status_code == 200 and "No registration matches" in empty.text
    bad = client.get("/mobility?tab=all&nationality=1x")
    assert bad.status_code == 200 and r["fresh"].reference in bad.text  # the filter is dropped and said so
    client.login(session, w.net.people["analyst_cr"])
    assert client.get("/mobility").headers["location"] == "/mobility/dashboard"
    client.login(session, w.net.people["minister_spain"])
    assert client.get("/mobility").status_code == 403


def test_the_registration_page_is_an_audited_sensitive_read(mobility_world, session, office_queue, client):
    from sqlalchemy import select

    from rdn.core.audit import AuditEntry

    w, reg = mobility_world, office_queue["screened"]
    client.login(session, w.net.people["caseworker_cr"])
    page = client.get(f"/mobility/registrations/{reg.id}")
    assert page.status_code == 200, page.text
    assert "Beto López" in page.text and "b@example.org" in page.text
    assert "Nationality is one of" in page.text or "Nicaragua" in page.text  # each check in words
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "sensitive.read",
                                                       AuditEntry.object_id == str(reg.id))).all()
    assert len(entries) == 1 and entries[0].object_type == "mobility_registration"
    assert entries[0].details == {"fields": ["contact", "identity"]}
    assert entries[0].actor_user_id == w.net.people["caseworker_cr"].id
    assert "b@example.org" not in str(entries[0].details)
    # Another office's registration, and one that does not exist: the same 404, and nothing read.
    client.login(session, w.net.people["caseworker_co"])
    assert client.get(f"/mobility/registrations/{reg.id}").status_code == 404
    assert client.get(f"/mobility/registrations/{office_queue['rule'].id}").status_code == 404
    client.login(session, w.net.people["officer_canada"])
    assert client.get(f"/mobility/registrations/{reg.id}").status_code == 404
    assert len(session.scalars(select(AuditEntry).where(AuditEntry.action == "sensitive.read",
                                                        AuditEntry.object_id == str(reg.id))).all()) == 1


def test_closing_and_merging_from_the_page(mobility_world, session, office_queue, client):
    w, r = mobility_world, office_queue
    client.login(session, w.net.people["caseworker_cr"])
    bad = client.post(f"/mobility/registrations/{r['fresh'].id}/close", data={"reason": ""})
    assert bad.status_code == 422 and 'id="e-reason"' in bad.text
    done = client.post(f"/mobility/registrations/{r['fresh'].id}/close", data={"reason": "Left the country"})
    assert done.status_code == 303
    session.refresh(r["fresh"])
    assert r["fresh"].status == RegistrationStatus.closed
    again = w.registration(given_name="Beto", nationality="NI", phone="+506 7000 0001", email="b@example.org")
    session.commit()
    page = client.get(f"/mobility/registrations/{again.id}")
    assert "Possible duplicate" in page.text and r["screened"].reference in page.text
    merged = client.post(f"/mobility/registrations/{again.id}/merge",
                         data={"other_id": str(r["screened"].id), "keep": "other"})
    assert merged.status_code == 303 and merged.headers["location"].startswith(
        f"/mobility/registrations/{r['screened'].id}")
    session.refresh(again)
    assert again.status == RegistrationStatus.merged and again.merged_into_id == r["screened"].id
    other = client.post(f"/mobility/registrations/{r['screened'].id}/merge",
                        data={"other_id": str(r["other_office"].id)})
    assert other.status_code == 422
    client.login(session, w.net.people["caseworker_co"])
    assert client.post(f"/mobility/registrations/{r['screened'].id}/close",
                       data={"reason": "Not ours"}).status_code == 404
