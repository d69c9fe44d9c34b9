"""Welcome's JSON API over real HTTP with API tokens: programmes and their rules, the figures, groups with what
they lack, checks and funds recorded by staff, arriving families without names, proposals by staff (with an
Idempotency-Key replayed byte for byte) and by the algorithm, the family's answer and the arrival that starts the
core services; fields named in 422 problems, 404 for another government's objects exactly as for missing ones,
tokens held to their scopes, and sponsors kept out of the staff's API."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.cases.models import Case, Referral
from rdn.cases.sharing import change_referral
from rdn.welcome import service
from rdn.welcome.models import Match, MatchStatus, Programme, SponsorGroup
from tests.cases.conftest import household
from tests.factories import Client, api_token
from tests.welcome.conftest import WelcomeWorld

API = "/api/v1/welcome"


def token(ww: WelcomeWorld, persona: str, scopes: list[str]) -> dict[str, str]:
    net = ww.cw.net
    return api_token(ww.session, net.people[persona], net.org_of(persona), scopes)


@pytest.fixture
def staff(ww: WelcomeWorld) -> dict[str, str]:
    """Canada's officer, reading and writing."""
    return token(ww, "officer_canada", ["read", "write"])


@pytest.fixture
def reader(ww: WelcomeWorld) -> dict[str, str]:
    return token(ww, "officer_canada", ["read"])


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


def fields(response: Any) -> set[str]:
    return {e["field"] for e in problem(response, 422)["errors"]}


@dataclasses.dataclass
class Spain:
    programme: Programme
    group: SponsorGroup
    match: Match


def spanish_world(ww: WelcomeWorld) -> Spain:
    """Spain's programme (its minister is an administrator in the cases world), a group signed up in it, made
    eligible by Spain's staff, and proposed for a family Spain accepted."""
    s, minister = ww.session, ww.p("minister_spain")
    programme = service.create_programme(s, actor=minister, data={
        "name": "Programa de patrocinio", "slug": "es-patrocinio", "min_adults": 1, "checks_required": False,
        "training_required": False, "funds_per_person": 0, "currency": "EUR", "sponsor_fields": ["size"]})
    group = service.sign_up(s, programme=programme, data={
        "your_name": "Lucía Pérez", "your_email": "lucia@example.es", "name": "Vecinos de Lavapiés",
        "city": "Madrid", "capacity": "6", "max_size": "6"})
    lead = service.members_of(s, group)[0]
    service.update_group(s, actor=minister, group=group,
                         changes={"plan": {item["code"]: str(lead.id) for item in programme.services}})
    assert group.status == "eligible"
    case = ww.cw.open_case(members=household("Omar", size=3))
    ww.cw.refer(case, "spain", sections=["identity", "needs"])
    for referral in s.scalars(select(Referral).where(Referral.case_id == case.id)):
        change_referral(s, actor=minister, referral=referral, status="accepted")
    case.stage = "approved"
    match = service.propose(s, actor=minister, group=group, case_id=case.id)
    s.commit()
    return Spain(programme, group, match)


# Programmes -----------------------------------------------------------------------------------------------------


def test_programmes_are_listed_read_created_and_changed(ww: WelcomeWorld, client: Client, staff, reader) -> None:
    s = ww.session
    s.commit()
    listed = client.get(f"{API}/programmes", headers=reader)
    assert listed.status_code == 200, listed.text
    assert [p["slug"] for p in listed.json()["items"]] == ["ca-welcome"]
    assert listed.json()["meta"]["total"] == 1
    one = client.get(f"{API}/programmes/{ww.programme.id}", headers=reader).json()
    assert one["min_adults"] == 5 and one["currency"] == "CAD" and one["cash_share"] == 0.6
    assert [sv["code"] for sv in one["services"]][:2] == ["airport", "housing"]
    assert one["sponsor_fields"] == ["given_names", "size", "arrival", "languages", "needs"]

    created = client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-refugee-circles", "name": "Refugee Circles", "min_adults": 3, "funds_per_person": 1000,
        "currency": "CAD", "support_days": 365, "streams": ["matched", "named"],
        "services": [{"code": "airport", "label": "Airport reception", "due_days": 0},
                     {"code": "school", "label": "School enrolment", "due_days": 30, "per_person": False}]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["slug"] == "ca-refugee-circles" and body["country"] == "CA"
    assert body["org_id"] == str(ww.cw.net.orgs["canada"].id) and body["support_days"] == 365
    assert [sv["code"] for sv in body["services"]] == ["airport", "school"]
    assert client.get(f"{API}/programmes?country=ca&q=circles", headers=reader).json()["meta"]["total"] == 2
    assert client.get(f"{API}/programmes?q=refugee", headers=reader).json()["meta"]["total"] == 1

    # Changing a rule: each group's eligibility follows (a new group lacks one adult less with min_adults 1).
    changed = client.patch(f"{API}/programmes/{ww.programme.id}", headers=staff, json={"min_adults": 1})
    assert changed.status_code == 200 and changed.json()["min_adults"] == 1
    group = client.get(f"{API}/groups/{ww.group.id}", headers=reader).json()
    assert "adults" not in [m["code"] for m in group["missing"]]


def test_programme_fields_are_validated_by_name(ww: WelcomeWorld, client: Client, staff) -> None:
    ww.session.commit()
    assert fields(client.post(f"{API}/programmes", headers=staff, json={"slug": "x"})) == {"name"}
    assert "slug" in fields(client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-welcome", "name": "Again"}))  # already used
    assert {"cash_share", "min_adults", "currency"} <= fields(client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-new", "name": "New", "cash_share": 2, "min_adults": 0, "currency": "dollars"}))
    assert "sponsor_fields" in fields(client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-new", "name": "New", "sponsor_fields": ["case_number"]}))
    assert "services.0.code" in fields(client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-new", "name": "New", "services": [{"code": "No spaces!", "due_days": 1}]}))
    assert "surprise" in fields(client.post(f"{API}/programmes", headers=staff, json={
        "slug": "ca-new", "name": "New", "surprise": True}))
    assert fields(client.patch(f"{API}/programmes/{ww.programme.id}", headers=staff,
                               json={"support_days": 3})) == {"support_days"}
    assert fields(client.patch(f"{API}/programmes/{ww.programme.id}", headers=staff,
                               json={"name": None})) == {"name"}
    assert ww.session.scalar(select(func.count()).select_from(Programme)) == 1


def test_tokens_keep_to_their_scopes_and_governments(ww: WelcomeWorld, client: Client, reader) -> None:
    ww.session.commit()
    assert problem(client.post(f"{API}/programmes", headers=reader, json={"slug": "ca-x", "name": "X"}),
                   403)["type"] == "/problems/forbidden"
    assert client.patch(f"{API}/programmes/{ww.programme.id}", headers=reader,
                        json={"min_adults": 2}).status_code == 404
    spain = token(ww, "minister_spain", ["read", "write"])
    assert client.get(f"{API}/programmes/{ww.programme.id}", headers=spain).status_code == 200  # shared knowledge
    assert client.patch(f"{API}/programmes/{ww.programme.id}", headers=spain,
                        json={"min_adults": 2}).status_code == 404
    assert client.get(f"{API}/programmes/{ww.programme.id}/dashboard", headers=spain).status_code == 404
    assert client.get(f"{API}/groups/{ww.group.id}", headers=spain).status_code == 404
    assert client.get(f"{API}/programmes").status_code == 401


def test_sponsors_have_no_api(ww: WelcomeWorld, client: Client, app) -> None:
    """A sponsor's browser session is refused whatever it asks, with a 403 that says nothing of the object."""
    ww.make_eligible()
    ww.session.commit()
    sponsor = Client(app).login(ww.session, ww.cw.net.people["sponsor_group_a"])
    for path in ("/programmes", f"/programmes/{ww.programme.id}", f"/groups/{ww.group.id}",
                 f"/groups/{uuid.uuid4()}", f"/programmes/{ww.programme.id}/donations"):
        assert problem(sponsor.get(API + path), 403)["type"] == "/problems/forbidden"


# The figures ----------------------------------------------------------------------------------------------------


def test_the_dashboard(ww: WelcomeWorld, client: Client, reader) -> None:
    ww.make_eligible()
    ww.session.commit()
    got = client.get(f"{API}/programmes/{ww.programme.id}/dashboard", headers=reader)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["groups"]["eligible"] == 1 and body["groups"]["forming"] == 0
    assert body["funds"] == {"pledged": ww.group.funds_pledged, "cash": ww.group.funds_cash,
                             "verified": ww.group.funds_pledged, "currency": "CAD"}
    assert body["services"]["on_time_share"] is None and body["families_welcomed"] == 0
    secretariat = token(ww, "admin_secretariat", ["read"])
    assert client.get(f"{API}/programmes/{ww.programme.id}/dashboard", headers=secretariat).status_code == 200


# Groups ---------------------------------------------------------------------------------------------------------


def test_groups_list_and_what_a_group_lacks(ww: WelcomeWorld, client: Client, reader) -> None:
    s = ww.session
    other = service.sign_up(s, programme=ww.programme, data={
        "your_name": "Ana Souza", "your_email": "ana@example.org", "name": "Elm Street Neighbours",
        "city": "Halifax"})
    s.commit()
    path = f"{API}/programmes/{ww.programme.id}/groups"
    listed = client.get(path, headers=reader).json()
    assert [g["name"] for g in listed["items"]] == ["Elm Street Neighbours", "Maple Street Welcome Circle"]
    assert [g["name"] for g in client.get(f"{path}?q=halifax", headers=reader).json()["items"]] == [
        "Elm Street Neighbours"]
    assert client.get(f"{path}?status=eligible", headers=reader).json()["meta"]["total"] == 0
    assert client.get(f"{path}?per_page=1&page=2", headers=reader).json()["items"][0]["id"] == str(ww.group.id)
    assert fields(client.get(f"{path}?status=sleeping", headers=reader)) == {"status"}
    assert fields(client.get(f"{path}?per_page=500", headers=reader)) == {"per_page"}

    group = client.get(f"{API}/groups/{other.id}", headers=reader).json()
    assert group["status"] == "forming" and group["eligible"] is False
    assert [m["code"] for m in group["missing"]] == ["adults", "checks", "training", "funds", "plan"]
    assert "Ana Souza" in next(m["text"] for m in group["missing"] if m["code"] == "checks")
    assert group["members"] == [{"id": group["members"][0]["id"], "full_name": "Ana Souza",
                                 "email": "ana@example.org", "adult": True, "check_status": "pending",
                                 "checked_on": None, "trained_on": None, "signs_in": True}]
    # A group of the agency's making or of nobody's: the same 404 as a group that never existed.
    missing = client.get(f"{API}/groups/{uuid.uuid4()}", headers=reader)
    assert problem(missing, 404)["type"] == "/problems/not-found"


def test_staff_record_checks_and_verify_funds(ww: WelcomeWorld, client: Client, staff, reader) -> None:
    s, sponsor = ww.session, ww.p("sponsor_group_a")
    for n in range(1, 5):
        service.add_member(s, actor=sponsor, group=ww.group, data={"full_name": f"Sponsor {n}"})
    need = service.funds_needed(ww.programme, ww.group)
    members = service.members_of(s, ww.group)
    service.update_group(s, actor=sponsor, group=ww.group, changes={
        "funds_pledged": need, "funds_cash": need, "plan": {i["code"]: str(members[0].id)
                                                            for i in ww.programme.services}})
    s.commit()
    base = f"{API}/groups/{ww.group.id}"
    first = members[0]
    assert client.post(f"{base}/members/{first.id}/check", headers=reader,
                       json={"check": "passed"}).status_code == 404  # a read-only token may not record it
    assert fields(client.post(f"{base}/members/{first.id}/check", headers=staff, json={"check": "maybe"})) == {
        "check"}
    assert fields(client.post(f"{base}/members/{first.id}/check", headers=staff,
                              json={"trained_on": "last week"})) == {"trained_on"}
    assert fields(client.post(f"{base}/members/{first.id}/check", headers=staff, json={})) == {"check"}
    assert client.post(f"{base}/members/{uuid.uuid4()}/check", headers=staff,
                       json={"check": "passed"}).status_code == 404
    for member in members:
        got = client.post(f"{base}/members/{member.id}/check", headers=staff,
                          json={"check": "passed", "trained_on": "2025-01-15"})
        assert got.status_code == 200, got.text
    body = got.json()
    assert all(m["check_status"] == "passed" and m["trained_on"] == "2025-01-15" for m in body["members"])
    assert [m["code"] for m in body["missing"]] == ["funds_verified"] and body["status"] == "forming"
    verified = client.post(f"{base}/verify-funds", headers=staff)
    assert verified.status_code == 200, verified.text
    assert verified.json()["missing"] == [] and verified.json()["status"] == "eligible"
    assert verified.json()["funds_verified_at"] is not None
    # Training taken back (null): the group is told again.
    back = client.post(f"{base}/members/{first.id}/check", headers=staff, json={"trained_on": None}).json()
    assert [m["code"] for m in back["missing"]] == ["training"] and back["status"] == "forming"


# Matching -------------------------------------------------------------------------------------------------------


def test_a_proposal_accepted_by_both_sides_starts_the_services(ww: WelcomeWorld, client: Client, staff,
                                                               reader) -> None:
    s = ww.session
    ww.make_eligible()
    case = ww.arriving_case(size=4)
    s.commit()
    programme = f"{API}/programmes/{ww.programme.id}"
    arriving = client.get(f"{programme}/arriving", headers=staff)
    assert arriving.status_code == 200, arriving.text
    assert arriving.json()["items"] == [{"id": str(case.id), "number": case.number, "size": 4,
                                         "nationality": "AF"}]
    assert "Mohammad" not in arriving.text and "Rahimi" not in arriving.text

    body = {"group_id": str(ww.group.id), "case_id": str(case.id), "shared_needs": ["wheelchair"]}
    headers = {**staff, "Idempotency-Key": "propose-maple-1"}
    first = client.post(f"{programme}/matches", headers=headers, json=body)
    assert first.status_code == 201, first.text
    again = client.post(f"{programme}/matches", headers=headers, json=body)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert s.scalar(select(func.count()).select_from(Match)) == 1
    proposed = first.json()
    assert proposed["status"] == "proposed" and proposed["group"]["status"] == "matched"
    assert proposed["shared"] == {"given_names": ["Mohammad", "Fatima", "Child0", "Child1"], "size": 4,
                                  "languages": ["prs", "ps"], "needs": ["wheelchair"]}
    assert proposed["tasks"] == [] and proposed["case_id"] == str(case.id)
    # Without the key, the family already has a group: a conflict.
    assert problem(client.post(f"{programme}/matches", headers=staff, json=body), 409)["type"] == \
        "/problems/conflict"
    assert client.get(f"{programme}/arriving", headers=staff).json()["items"] == []

    # The group accepts on its pages (sponsors have no API), the family through the programme's staff.
    match = s.get(Match, uuid.UUID(proposed["id"]))
    assert match is not None
    service.respond_as_group(s, actor=ww.p("sponsor_group_a"), match=match, accept=True)
    s.commit()
    answered = client.post(f"{API}/matches/{match.id}/family", headers=staff, json={"accept": True})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "active"
    assert problem(client.post(f"{API}/matches/{match.id}/family", headers=staff, json={"accept": False}),
                   409)["detail"] == "This proposal has already been answered."

    got = client.get(f"{API}/matches/{match.id}", headers=reader)
    assert got.status_code == 200, got.text
    tasks = got.json()["tasks"]
    assert len(tasks) == len(ww.programme.services) - 1 + 4  # identity numbers: one per person
    assert all(t["due_on"] is None and t["overdue"] is False for t in tasks)
    owner = service.members_of(s, ww.group)[0]
    assert {t["owner"] for t in tasks} == {owner.full_name} and {t["owner_member_id"] for t in tasks} == {
        str(owner.id)}
    assert [t["person"] for t in tasks if t["code"] == "identity_numbers"] == sorted(
        ["Mohammad", "Fatima", "Child0", "Child1"])

    # The arrival, three days ago: every due date follows, the first days' services are overdue.
    arrived = service.today_() - timedelta(days=3)
    assert fields(client.post(f"{API}/matches/{match.id}/arrival", headers=staff,
                              json={"arrival_on": "soon"})) == {"arrival_on"}
    assert fields(client.post(f"{API}/matches/{match.id}/arrival", headers=staff, json={"flight": "AC 849"})) == {
        "arrival_on"}
    noted = client.post(f"{API}/matches/{match.id}/arrival", headers=staff,
                        json={"arrival_on": arrived.isoformat(), "flight": "AC 849", "airport": "YOW"})
    assert noted.status_code == 200, noted.text
    after = noted.json()
    assert after["arrival_on"] == arrived.isoformat() and after["arrival_notice"]["flight"] == "AC 849"
    due = {t["code"]: t for t in after["tasks"] if not t["person"]}
    assert due["school"]["due_on"] == (arrived + timedelta(days=30)).isoformat()
    assert due["airport"]["overdue"] and due["first_meal"]["overdue"] and not due["school"]["overdue"]
    assert after["group"]["status"] == "welcoming"


def test_proposals_are_validated_by_name(ww: WelcomeWorld, client: Client, staff) -> None:
    ww.make_eligible()
    case = ww.arriving_case()
    stranger = ww.cw.open_case(members=household("Samir"))  # the agency's, never shared with Canada
    ww.session.commit()
    path = f"{API}/programmes/{ww.programme.id}/matches"
    good = {"group_id": str(ww.group.id), "case_id": str(case.id)}
    assert fields(client.post(path, headers=staff, json={**good, "group_id": str(uuid.uuid4())})) == {"group_id"}
    assert fields(client.post(path, headers=staff, json={**good, "case_id": str(stranger.id)})) == {"case_id"}
    assert fields(client.post(path, headers=staff, json={**good, "case_id": "nope"})) == {"case_id"}
    assert fields(client.post(path, headers=staff, json={**good, "shared_needs": ["secrets"]})) == {
        "shared_needs"}
    assert fields(client.post(path, headers=staff, json={**good, "note": "hi"})) == {"note"}
    assert ww.session.scalar(select(func.count()).select_from(Match)) == 0


def test_the_algorithm_proposes_with_reasons(ww: WelcomeWorld, client: Client, staff, reader) -> None:
    ww.make_eligible()
    too_big = ww.arriving_case("Karim", size=7)  # more people than the group can house (5)
    fits = ww.arriving_case("Ahmad", size=3)
    ww.session.commit()
    path = f"{API}/programmes/{ww.programme.id}/matching-runs"
    assert client.post(path, headers=reader).status_code == 404  # proposing needs the write scope
    ran = client.post(path, headers=staff)
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert [(p["case_id"], p["group_id"], p["group_name"]) for p in body["proposals"]] == [
        (str(fits.id), str(ww.group.id), ww.group.name)]
    proposal = body["proposals"][0]
    assert proposal["score"] > 0 and [r["code"] for r in proposal["reasons"]] == ["size"]
    assert proposal["reasons"][0]["text"] and proposal["reasons"][0]["points"] > 0
    match = client.get(f"{API}/matches/{proposal['match_id']}", headers=reader).json()
    assert match["proposed_by"] == "algorithm" and match["status"] == "proposed" and match["reasons"]
    assert [(u["case_id"], u["number"]) for u in body["unmatched_families"]] == [(str(too_big.id), too_big.number)]
    assert "7 people" in body["unmatched_families"][0]["reason"]
    assert body["unmatched_groups"] == []


def test_the_family_may_decline(ww: WelcomeWorld, client: Client, staff) -> None:
    ww.make_eligible()
    case = ww.arriving_case()
    match = service.propose(ww.session, actor=ww.p("officer_canada"), group=ww.group, case_id=case.id)
    ww.session.commit()
    assert fields(client.post(f"{API}/matches/{match.id}/family", headers=staff, json={"reason": "x"})) == {
        "accept"}
    declined = client.post(f"{API}/matches/{match.id}/family", headers=staff,
                           json={"accept": False, "reason": "They have family in Montreal"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == MatchStatus.declined and declined.json()["group"]["status"] == "eligible"
    assert declined.json()["declined_reason"] == "They have family in Montreal"
    # No arrival for a match that is not accepted.
    assert client.post(f"{API}/matches/{match.id}/arrival", headers=staff,
                       json={"arrival_on": "2030-03-10"}).status_code == 409


# Another government's objects -------------------------------------------------------------------------------------


def test_another_government_s_objects_answer_404(ww: WelcomeWorld, client: Client, staff) -> None:
    spain = spanish_world(ww)
    member = service.members_of(ww.session, spain.group)[0]
    for method, path, body in (
            ("GET", f"/groups/{spain.group.id}", None),
            ("POST", f"/groups/{spain.group.id}/verify-funds", None),
            ("POST", f"/groups/{spain.group.id}/members/{member.id}/check", {"check": "failed"}),
            ("GET", f"/matches/{spain.match.id}", None),
            ("POST", f"/matches/{spain.match.id}/family", {"accept": True}),
            ("POST", f"/matches/{spain.match.id}/arrival", {"arrival_on": "2030-03-10"}),
            ("PATCH", f"/programmes/{spain.programme.id}", {"min_adults": 9}),
            ("GET", f"/programmes/{spain.programme.id}/dashboard", None),
            ("GET", f"/programmes/{spain.programme.id}/arriving", None),
            ("POST", f"/programmes/{spain.programme.id}/matching-runs", None),
            ("POST", f"/programmes/{spain.programme.id}/matches",
             {"group_id": str(spain.group.id), "case_id": str(spain.match.case_id)})):
        theirs = client.request(method, API + path, headers=staff, json=body)
        missing = client.request(method, API + path.replace(path.split("/")[2], str(uuid.uuid4())), headers=staff,
                                 json=body)
        assert theirs.status_code == missing.status_code == 404, (path, theirs.text)
        assert theirs.json()["type"] == missing.json()["type"] == "/problems/not-found"
    # Their programme is the network's knowledge; its groups, matches and donations are not Canada's to see.
    assert client.get(f"{API}/programmes/{spain.programme.id}", headers=staff).status_code == 200
    for listing in ("groups", "donations"):
        assert client.get(f"{API}/programmes/{spain.programme.id}/{listing}", headers=staff).status_code == 404
    # Spain's own staff see them.
    minister = token(ww, "minister_spain", ["read"])
    assert client.get(f"{API}/matches/{spain.match.id}", headers=minister).json()["shared"] == {"size": 3}


# Donations ------------------------------------------------------------------------------------------------------


def test_the_donations_ledger(ww: WelcomeWorld, client: Client, reader) -> None:
    s = ww.session
    ww.make_eligible()
    case = ww.arriving_case()
    officer, sponsor = ww.p("officer_canada"), ww.p("sponsor_group_a")
    match = service.propose(s, actor=officer, group=ww.group, case_id=case.id)
    service.respond_as_group(s, actor=sponsor, match=match, accept=True)
    service.record_family_answer(s, actor=officer, match=match, accept=True)
    table = service.offer_donation(s, programme=ww.programme, data={
        "donor_name": "Jo", "donor_email": "jo@example.org", "kind": "furniture", "description": "A table",
        "city": "Ottawa"})
    service.offer_donation(s, programme=ww.programme, data={
        "donor_name": "Sam", "donor_email": "sam@example.org", "kind": "clothing", "description": "Coats",
        "city": "Ottawa", "quantity": 4})
    service.claim_donation(s, actor=sponsor, group=ww.group, donation=table)
    service.give_donation(s, actor=sponsor, group=ww.group, donation=table)
    s.commit()
    path = f"{API}/programmes/{ww.programme.id}/donations"
    ledger = client.get(path, headers=reader)
    assert ledger.status_code == 200, ledger.text
    assert ledger.json()["meta"]["total"] == 2
    given = client.get(f"{path}?status=given", headers=reader).json()["items"]
    assert [(d["description"], d["claimed_by_group_id"], d["given_to_match_id"]) for d in given] == [
        ("A table", str(ww.group.id), str(match.id))]
    assert [d["quantity"] for d in client.get(f"{path}?kind=clothing", headers=reader).json()["items"]] == [4]
    assert fields(client.get(f"{path}?kind=jewels", headers=reader)) == {"kind"}


def test_a_case_of_the_programme_s_own_government_can_be_matched(ww: WelcomeWorld, client: Client, staff) -> None:
    """Canada's own case (not referred to it) is an arriving family too, once approved."""
    ww.make_eligible()
    own = ww.cw.open_case("officer_canada", members=household("Nadia", size=2))
    own.stage = "approved"
    ww.session.commit()
    assert [i["id"] for i in client.get(f"{API}/programmes/{ww.programme.id}/arriving", headers=staff
                                        ).json()["items"]] == [str(own.id)]
    made = client.post(f"{API}/programmes/{ww.programme.id}/matches", headers=staff,
                       json={"group_id": str(ww.group.id), "case_id": str(own.id)})
    assert made.status_code == 201, made.text
    assert ww.session.scalar(select(func.count()).select_from(Case).where(Case.id == own.id)) == 1
