"""Obstacles: reporting them (errors named, nothing written), blocking and releasing cases (the counts follow),
resolving one (its cases released and their owners told through the outbox), counts for every member but
case links only for those entitled, diplomatic actions and their follow-up reminders (once), evidence files."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.cases import service as cases
from rdn.cases.models import ChecklistEntry, ChecklistStatus
from rdn.core import clock, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.outbox import Job
from rdn.pathways import obstacles as service
from rdn.pathways.models import Block, Evidence, Obstacle, ObstacleStatus
from tests.cases.conftest import CasesWorld, household

FEE = {"country": "PK", "type": "exit_permit", "title": "Exit permit fee for Afghans", "amount": "830",
       "currency": "usd", "nationalities": "AF", "severity": "critical", "links": "https://example.org/notice"}


def emails(w: CasesWorld, before: set[Any]) -> list[Job]:
    return [j for j in w.session.scalars(select(Job).where(Job.kind == "email")) if j.id not in before]


def email_ids(w: CasesWorld) -> set[Any]:
    return set(w.session.scalars(select(Job.id).where(Job.kind == "email")))


@pytest.fixture
def fee(cases_world: CasesWorld) -> Obstacle:
    return service.create_obstacle(cases_world.session, actor=cases_world.p("caseworker_unhcr"), data=FEE)


def test_reporting_an_obstacle_names_each_bad_field_and_writes_nothing(cases_world: CasesWorld) -> None:
    w = cases_world
    with pytest.raises(ValidationFailed) as bad:
        service.create_obstacle(w.session, actor=w.p("caseworker_unhcr"),
                                data={"country": "XX", "type": "bribe", "title": "x", "amount": "-3",
                                      "currency": "dollars", "links": "javascript:alert(1)"})
    assert {e.field for e in bad.value.errors} == {"country", "type", "title", "amount", "currency", "links"}
    assert w.session.scalar(select(func.count()).select_from(Obstacle)) == 0
    made = service.create_obstacle(w.session, actor=w.p("caseworker_unhcr"), data=FEE)
    assert (made.currency, made.amount, made.nationalities, made.status) == ("USD", 830.0, ["AF"],
                                                                             ObstacleStatus.reported)
    assert made.history[0]["status"] == "reported"
    # Sponsor groups see none of it; analysts read but do not report; agencies report but do not act.
    with pytest.raises(policy.Forbidden):
        service.list_obstacles(w.session, w.p("sponsor_group_a"))
    with pytest.raises(policy.Forbidden):
        service.create_obstacle(w.session, actor=w.p("analyst_ec"), data=FEE)
    assert service.list_obstacles(w.session, w.p("analyst_ec")).total == 1
    with pytest.raises(policy.NotFound):
        service.add_action(w.session, actor=w.p("caseworker_unhcr"), obstacle=made, data={"type": "demarche"})


def test_blocking_and_releasing_cases_updates_the_counts(cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    three, two = w.open_case(members=household(size=3)), w.open_case(members=household(size=2))
    for case in (three, two):
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, item="exit_permit",
                           obstacle_id=fee.id)
    counts = service.counts(w.session, fee)
    assert (counts.cases, counts.people) == (2, 5)
    assert counts.by_stage == [("referred", 2, 5)]
    entry = cases.checklist_entry(w.session, three, "exit_permit")
    assert entry.status == ChecklistStatus.blocked and entry.obstacle_id == fee.id
    # Blocking the same item again changes nothing; the case page shows what blocks it.
    service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=three.id, item="exit_permit",
                       obstacle_id=fee.id)
    assert w.session.scalar(select(func.count()).select_from(Block)) == 2
    shown = service.checklist_extra(w.session, w.p("caseworker_unhcr"), w.access("caseworker_unhcr", three))
    assert shown["blocked"]["exit_permit"]["id"] == str(fee.id) and shown["obstacles"] == [(str(fee.id), fee.title)]
    # The family paid: the item is done on the case page, and the block is released.
    cases.set_checklist(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", two),
                        item="exit_permit", status="done")
    counts = service.counts(w.session, fee)
    assert (counts.cases, counts.people) == (1, 3)
    assert cases.checklist_entry(w.session, two, "exit_permit").obstacle_id is None
    # Moving an item to another obstacle releases it from the first.
    other = service.create_obstacle(w.session, actor=w.p("caseworker_unhcr"),
                                    data={**FEE, "title": "Transit visa", "type": "transit_visa"})
    service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=three.id, item="exit_permit",
                       obstacle_id=other.id)
    assert service.counts(w.session, fee).cases == 0 and service.counts(w.session, other).people == 3
    # Someone who may not change the case's checklist cannot block it: the same 404 as a missing case.
    with pytest.raises(policy.NotFound):
        service.block_case(w.session, actor=w.p("minister_spain"), case_id=three.id, item="exit_permit",
                           obstacle_id=fee.id)
    with pytest.raises(ValidationFailed) as bad:
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=three.id, item="visa",
                           obstacle_id=fee.id)
    assert bad.value.errors[0].field == "item"


def test_a_case_blocked_on_two_items_by_one_obstacle_counts_once(cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    four, one = w.open_case(members=household(size=4)), w.open_case(members=household(size=1))
    for item in ("exit_permit", "travel_document"):
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=four.id, item=item, obstacle_id=fee.id)
    service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=one.id, item="exit_permit",
                       obstacle_id=fee.id)
    counts = service.counts(w.session, fee)
    assert (counts.cases, counts.people) == (2, 5)  # not 3 cases and 9 people
    assert counts.by_stage == [("referred", 2, 5)]
    assert dict(counts.by_item) == {"exit_permit": 2, "travel_document": 1}  # the items themselves: three
    assert service.blocks_by_obstacle(w.session, [fee.id]) == {fee.id: (2, 5)}
    assert service.timeline(w.session, [fee.id], weeks=1)[-1] | {"week": None} == {"week": None, "people": 5,
                                                                                   "cases": 2}
    country = next(r for r in service.by_country(w.session, w.p("analyst_ec")) if r["country"] == fee.country)
    assert (country["cases"], country["people"]) == (2, 5)


def test_resolving_an_obstacle_releases_its_cases_and_tells_their_owners(
        cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    agency = [w.open_case(members=household(size=s)) for s in (3, 4)]
    canadian = w.open_case("officer_canada", members=household(size=2))
    for case, persona in ((agency[0], "caseworker_unhcr"), (agency[1], "caseworker_unhcr"),
                          (canadian, "officer_canada")):
        service.block_case(w.session, actor=w.p(persona), case_id=case.id, item="exit_permit", obstacle_id=fee.id)
    before = email_ids(w)
    with pytest.raises(ValidationFailed):
        service.set_status(w.session, actor=w.p("minister_spain"), obstacle=fee, status="gone")
    released = service.set_status(w.session, actor=w.p("minister_spain"), obstacle=fee, status="resolved",
                                  note="Fee waived for resettling families")
    assert released == 3 and fee.status == ObstacleStatus.resolved and fee.resolved_at is not None
    counts = service.counts(w.session, fee)
    assert (counts.cases, counts.people, counts.released) == (0, 0, 3)
    for case in (*agency, canadian):
        entry = cases.checklist_entry(w.session, case, "exit_permit")
        assert entry.status == ChecklistStatus.pending and entry.obstacle_id is None
        assert "Released" in entry.note
    told = {address for job in emails(w, before) for address in job.payload["to"]}
    assert told == {"caseworker_unhcr@rdn.test", "admin_unhcr@rdn.test", "officer_canada@rdn.test"}
    agency_mail = next(j for j in emails(w, before) if j.payload["to"] == ["caseworker_unhcr@rdn.test"])
    assert "2 of your cases" in agency_mail.payload["text"] and str(fee.id) in agency_mail.payload["text"]
    assert agency[0].number not in agency_mail.payload["text"]  # no case data in email
    with pytest.raises(Conflict):
        service.set_status(w.session, actor=w.p("minister_spain"), obstacle=fee, status="resolved")
    with pytest.raises(ValidationFailed) as late:
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=agency[0].id, item="exit_permit",
                           obstacle_id=fee.id)
    assert late.value.errors[0].field == "obstacle_id"
    # Only the reporter, governments and the secretariat move the status.
    other = service.create_obstacle(w.session, actor=w.p("officer_canada"), data={**FEE, "title": "Other fee"})
    with pytest.raises(policy.NotFound):
        service.set_status(w.session, actor=w.p("caseworker_unhcr"), obstacle=other, status="confirmed")


def test_counts_are_for_every_member_and_case_links_only_for_those_entitled(
        cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    referred = w.open_case(members=household(size=3))
    w.refer(referred, "canada")
    private = w.open_case(members=household(size=2))
    for case in (referred, private):
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, item="exit_permit",
                           obstacle_id=fee.id)
    mine, others = service.blocked_cases(w.session, w.p("caseworker_unhcr"), fee)
    assert {c.id for _b, c in mine} == {referred.id, private.id} and others == 0
    canada, others = service.blocked_cases(w.session, w.p("officer_canada"), fee)
    assert [c.id for _b, c in canada] == [referred.id] and others == 1
    spain, others = service.blocked_cases(w.session, w.p("minister_spain"), fee)
    assert spain == [] and others == 2
    assert service.counts(w.session, fee).people == 5  # the same counts for everyone
    rows = service.by_country(w.session, w.p("analyst_ec"))
    assert rows == [{"country": "PK", "obstacles": 1, "cases": 2, "people": 5}]


def test_blocked_people_over_time(cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    case = w.open_case(members=household(size=4))
    with clock.frozen(clock.now() - timedelta(weeks=10)):
        service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, item="exit_permit",
                           obstacle_id=fee.id)
    with clock.frozen(clock.now() - timedelta(weeks=3)):
        cases.set_checklist(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                            item="exit_permit", status="in_progress")
    weekly = service.timeline(w.session, [fee.id], weeks=12)
    assert [p["people"] for p in weekly] == [0] + [4] * 7 + [0] * 4  # weeks ending 11 ago to now


def test_follow_up_reminders_go_out_once(cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    today = clock.now().date()
    action = service.add_action(w.session, actor=w.p("officer_canada"), obstacle=fee,
                                data={"type": "demarche", "on": today.isoformat(),
                                      "cosigners": [str(w.net.orgs["spain"].id)],
                                      "follow_up_on": (today + timedelta(days=2)).isoformat()})
    assert fee.status == ObstacleStatus.being_addressed and action.cosigners == [str(w.net.orgs["spain"].id)]
    before = email_ids(w)
    assert service.remind_follow_ups(w.session, today) == 0
    assert service.remind_follow_ups(w.session, today + timedelta(days=2)) == 1
    sent = emails(w, before)
    assert {a for j in sent for a in j.payload["to"]} == {"officer_canada@rdn.test", "admin_canada@rdn.test"}
    assert service.remind_follow_ups(w.session, today + timedelta(days=3)) == 0  # once, not every hour
    assert len(emails(w, before)) == len(sent)
    # A new follow-up date means a new reminder; only the lead records it.
    with pytest.raises(policy.NotFound):
        service.update_action(w.session, actor=w.p("minister_spain"), action=action, outcome="x")
    service.update_action(w.session, actor=w.p("officer_canada"), action=action, outcome="Waiver studied",
                          follow_up_on=(today + timedelta(days=9)).isoformat())
    assert service.remind_follow_ups(w.session, today + timedelta(days=9)) == 1
    with pytest.raises(ValidationFailed) as bad:
        service.add_action(w.session, actor=w.p("officer_canada"), obstacle=fee,
                           data={"type": "demarche", "on": today.isoformat(),
                                 "follow_up_on": (today - timedelta(days=1)).isoformat()})
    assert bad.value.errors[0].field == "follow_up_on"


def test_evidence_files_are_checked_by_content(cases_world: CasesWorld, fee: Obstacle) -> None:
    w = cases_world
    actor = w.p("caseworker_unhcr")
    with pytest.raises(ValidationFailed) as exe:
        service.add_evidence(w.session, actor=actor, obstacle=fee, filename="notice.pdf", data=b"MZ\x90\x00rest")
    assert exe.value.errors[0].field == "file"
    with pytest.raises(ValidationFailed) as empty:
        service.add_evidence(w.session, actor=actor, obstacle=fee)
    assert empty.value.errors[0].field == "note"
    pdf = service.add_evidence(w.session, actor=actor, obstacle=fee, note="The decree", filename="decree.pdf",
                               data=b"%PDF-1.7 ...")
    assert (pdf.content_type, pdf.filename) == ("application/pdf", "decree.pdf")
    assert w.session.scalar(select(func.count()).select_from(Evidence)) == 1


def test_the_obstacle_page_shows_counts_and_only_the_cases_one_may_see(
        cases_world: CasesWorld, fee: Obstacle, client: Any) -> None:
    w = cases_world
    case = w.open_case(members=household(size=3))
    service.block_case(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, item="exit_permit",
                       obstacle_id=fee.id)
    w.session.commit()
    client.login(w.session, w.net.people["minister_spain"])
    page = client.get(f"/obstacles/{fee.id}")
    assert page.status_code == 200
    assert 'id="blocked-people">3<' in page.text and case.number not in page.text
    assert "1 more blocked cases" in page.text
    client.login(w.session, w.net.people["caseworker_unhcr"])
    page = client.get(f"/obstacles/{fee.id}")
    assert case.number in page.text
    listing = client.get("/obstacles?country=PK")
    assert listing.status_code == 200 and fee.title in listing.text
    evidence = client.post(f"/obstacles/{fee.id}/evidence", data={"note": ""},
                           files={"file": ("x.pdf", b"%PDF-1.4 test", "application/pdf")})
    assert evidence.status_code == 303
    row = w.session.scalars(select(Evidence)).one()
    download = client.get(f"/obstacles/{fee.id}/evidence/{row.id}")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff" and download.content == b"%PDF-1.4 test"
    assert w.session.scalar(select(func.count()).select_from(ChecklistEntry)) >= 1
