"""Welcome's pages through real HTTP: citizens sign a group up on the public page (every error named, nothing
stored), the programme's staff record checks, training and funds until the group page says it is eligible, a
sponsor's match page shows what the family shared and the services but nothing of the case, services are recorded
done with evidence, donations are claimed and given (the ledger), the programme's figures are the service's, and
who may open what (another group's page and the programme's page are a 404 for a sponsor)."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.cases.models import Case
from rdn.core import outbox
from rdn.core.identity import User
from rdn.core.tenancy import Organization, OrgKind
from rdn.welcome import service
from rdn.welcome.models import (
    Donation,
    DonationStatus,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    SponsorGroup,
    SponsorMember,
)
from tests.factories import Client, csrf_of
from tests.welcome.conftest import WELCOME_CORPS, WelcomeWorld

SIGN_UP = {"your_name": "Ana Souza", "your_email": "ana@example.org", "name": "Elm Street Neighbours",
           "city": "Halifax", "stream": "matched", "languages": ["en", "pt"], "languages_other": "",
           "min_size": "1", "max_size": "5", "capacity": "4", "supports": ["wheelchair"], "website": ""}


def words(page: str) -> str:
    """The text of a page as a person reads it."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def browser(app: Any, ww: WelcomeWorld, persona: str) -> Client:
    net = ww.cw.net
    return Client(app).login(ww.session, net.people[persona], org=net.org_of(persona))


def active_match(ww: WelcomeWorld, size: int = 4) -> tuple[Match, Case]:
    ww.make_eligible()
    case = ww.arriving_case(size=size)
    staff = ww.p("officer_canada")
    match = service.propose(ww.session, actor=staff, group=ww.group, case_id=case.id, shared_needs=["wheelchair"])
    service.respond_as_group(ww.session, actor=ww.p("sponsor_group_a"), match=match, accept=True)
    service.record_family_answer(ww.session, actor=staff, match=match, accept=True)
    return match, case


def count(ww: WelcomeWorld, model: Any) -> int:
    return int(ww.session.scalar(select(func.count()).select_from(model)) or 0)


# The public pages -----------------------------------------------------------------------------------------------


def test_citizens_sign_up_a_group_and_errors_keep_nothing(app: Any, ww: WelcomeWorld) -> None:
    ww.session.commit()
    anonymous = Client(app)
    page = anonymous.get("/welcome/join/ca-welcome")
    assert page.status_code == 200
    text = words(page.text)
    for rule in ("At least 5 adults in the group", "A background check of every adult", "Training for every adult",
                 "Funds of 2,425 CAD for each person the group can house, at least 60% of it in cash",
                 "Support for 90 days after the family arrives"):
        assert rule in text, rule
    assert 'name="csrf_token"' in page.text and 'name="website"' in page.text
    groups, users = count(ww, SponsorGroup), count(ww, User)

    bad = {**SIGN_UP, "your_name": "", "your_email": "not-an-email", "name": "", "city": "", "capacity": "99",
           "languages": ["english!"], "nationalities": ["XX"], "min_size": "5", "max_size": "2",
           "csrf_token": csrf_of(page.text)}
    refused = anonymous.post("/welcome/join/ca-welcome", data=bad)
    assert refused.status_code == 422
    for name in ("your_name", "your_email", "name", "city", "capacity", "languages", "nationalities", "max_size"):
        assert f'href="#f-{name}"' in refused.text, name
    text = words(refused.text)
    assert "is not an email address" in text and "is required" in text and "must be between 1 and 20" in text
    assert "english! is not a known code" in text and "must not be below the smallest family size" in text
    assert 'value="not-an-email"' in refused.text  # what was typed is kept
    assert (count(ww, SponsorGroup), count(ww, User)) == (groups, users)

    robot = anonymous.post("/welcome/join/ca-welcome", data={**SIGN_UP, "website": "http://spam.example",
                                                            "csrf_token": csrf_of(page.text)})
    assert robot.status_code == 400 and count(ww, SponsorGroup) == groups
    forged = Client(app).post("/welcome/join/ca-welcome", data=SIGN_UP)
    assert forged.status_code == 403 and count(ww, SponsorGroup) == groups

    done = anonymous.post("/welcome/join/ca-welcome", data={**SIGN_UP, "csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text[:2000]
    text = words(done.text)
    assert "Elm Street Neighbours is registered with Canada Welcome Circles" in text
    assert "We sent an invitation to ana@example.org" in text
    assert "1 of the 5 adults the programme asks for" in text and "background checks not passed yet" in text
    ww.session.expire_all()
    group = ww.session.scalars(select(SponsorGroup).where(SponsorGroup.name == "Elm Street Neighbours")).one()
    assert (group.status, group.city, group.languages, group.supports) == (GroupStatus.forming, "Halifax",
                                                                           ["en", "pt"], ["wheelchair"])
    invite = ww.session.scalars(select(outbox.Job).where(outbox.Job.kind == "email")).all()
    assert any("ana@example.org" in job.payload["to"] for job in invite)

    assert anonymous.get("/welcome/join/no-such-programme").status_code == 404
    ww.programme.accepting = False
    ww.session.commit()
    assert anonymous.get("/welcome/join/ca-welcome").status_code == 404
    assert anonymous.get("/welcome/give/ca-welcome").status_code == 404


# The group page -------------------------------------------------------------------------------------------------


def test_staff_record_checks_training_and_funds_until_the_group_is_eligible(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    s.commit()
    officer, sponsor = browser(app, ww, "officer_canada"), browser(app, ww, "sponsor_group_a")
    page = sponsor.get(f"/welcome/groups/{ww.group.id}")
    assert page.status_code == 200
    text = words(page.text)
    assert "5 things are still missing" in text and "✗ Missing: At least 5 adults in the group" in text
    assert '/check"' not in page.text  # the staff record checks and training
    # The sponsor adds four adults; nobody but the staff records checks.
    for n in range(4):
        added = sponsor.post(f"/welcome/groups/{ww.group.id}/members",
                             data={"full_name": f"Neighbour {n}", "email": f"n{n}@maple.test", "adult": "yes"})
        assert added.status_code == 303
    bad = sponsor.post(f"/welcome/groups/{ww.group.id}/members", data={"full_name": "", "email": "x"})
    assert bad.status_code == 422 and "is required" in words(bad.text)
    members = service.members_of(s, ww.group)
    assert len(members) == 5
    refused = sponsor.post(f"/welcome/groups/{ww.group.id}/members/{members[0].id}/check",
                           data={"check": "passed", "trained_on": "2026-01-05"})
    assert refused.status_code == 404
    for member in members:
        done = officer.post(f"/welcome/groups/{ww.group.id}/members/{member.id}/check",
                            data={"check": "passed", "trained_on": "2026-01-05"})
        assert done.status_code == 303 and done.headers["location"].endswith("notice=check#members")
    wrong = officer.post(f"/welcome/groups/{ww.group.id}/members/{members[0].id}/check",
                         data={"check": "maybe", "trained_on": "soon"})
    assert wrong.status_code == 422 and "pending, passed or failed" in words(wrong.text)
    s.expire_all()
    assert all(m.check_status == "passed" for m in service.members_of(s, ww.group))
    # Funds and plan by the group; then the staff verify.
    need = service.funds_needed(ww.programme, ww.group)
    form = {"name": ww.group.name, "city": "Ottawa", "contact_email": "circle@maple.test", "stream": "matched",
            "languages": ["en", "ar"], "languages_other": "fa", "min_size": "1", "max_size": "6", "capacity": "5",
            "funds_pledged": str(need), "funds_cash": str(need * 0.5)}
    low = sponsor.post(f"/welcome/groups/{ww.group.id}", data={**form, "funds_cash": str(need * 2)})
    assert low.status_code == 422 and "cannot be more than the funds pledged" in words(low.text)
    assert sponsor.post(f"/welcome/groups/{ww.group.id}", data=form).status_code == 303
    page = words(sponsor.get(f"/welcome/groups/{ww.group.id}").text)
    assert "at least 60% of the funds in cash" in page
    assert sponsor.post(f"/welcome/groups/{ww.group.id}", data={**form, "funds_cash": str(need)}).status_code == 303
    plan = {f"plan.{item['code']}": str(members[n % 5].id) for n, item in enumerate(ww.programme.services)}
    assert sponsor.post(f"/welcome/groups/{ww.group.id}/plan", data=plan).status_code == 303
    assert sponsor.post(f"/welcome/groups/{ww.group.id}/verify-funds").status_code == 404
    page = words(officer.get(f"/welcome/groups/{ww.group.id}").text)
    assert "One thing is still missing" in page and "the programme has not verified the funds yet" in page
    assert officer.post(f"/welcome/groups/{ww.group.id}/verify-funds").status_code == 303
    page = officer.get(f"/welcome/groups/{ww.group.id}")
    text = words(page.text)
    assert "The group is eligible" in text and "✓ Done: The programme has verified the funds" in text
    assert "Missing:" not in text
    s.expire_all()
    assert ww.group.status == GroupStatus.eligible and sorted(ww.group.languages) == ["ar", "en", "fa"]


def test_who_may_open_a_group_page(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    other_org = Organization(name="Birch Lane Circle", short_name="birch", kind=OrgKind.sponsor_group, country="CA")
    s.add(other_org)
    s.flush()
    other = SponsorGroup(programme_id=ww.programme.id, org_id=other_org.id, government_org_id=ww.programme.org_id,
                         name="Birch Lane Circle", country="CA", city="Toronto", contact_email="b@birch.test")
    s.add(other)
    s.commit()
    sponsor = browser(app, ww, "sponsor_group_a")
    assert sponsor.get(f"/welcome/groups/{other.id}").status_code == 404
    assert sponsor.get(f"/welcome/groups/{uuid.uuid4()}").status_code == 404
    assert sponsor.get(f"/welcome/programmes/{ww.programme.id}").status_code == 404
    assert sponsor.post(f"/welcome/programmes/{ww.programme.id}/match").status_code == 404
    home = sponsor.get("/welcome")
    assert home.status_code == 303 and home.headers["location"] == f"/welcome/groups/{ww.group.id}"
    assert browser(app, ww, "minister_germany").get(f"/welcome/groups/{ww.group.id}").status_code == 404
    assert browser(app, ww, "officer_canada").get(f"/welcome/groups/{other.id}").status_code == 200


# The match page -------------------------------------------------------------------------------------------------


def test_a_sponsor_sees_the_family_as_shared_never_the_case(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    match, case = active_match(ww)
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on=service.today_().isoformat(),
                        notice={"flight": "AC 849", "airport": "YOW", "time": "14:05"})
    s.commit()
    sponsor = browser(app, ww, "sponsor_group_a")
    page = sponsor.get(f"/welcome/matches/{match.id}")
    assert page.status_code == 200
    text = words(page.text)
    assert "Mohammad, Fatima, Child0, and Child1" in text and "4 people" in text and "Wheelchair access" in text
    assert "AC 849" in text and "YOW" in text
    assert "Airport reception" in text and "School enrolment" in text and "0 of" in text
    for secret in (case.number, "Rahimi", "Islamabad", str(case.id), "Pakistan", f"/cases/{case.id}"):
        assert secret not in page.text, secret
    for path in (f"/welcome/groups/{ww.group.id}", "/welcome"):
        shown = sponsor.get(path, follow_redirects=True)
        assert case.number not in shown.text and str(case.id) not in shown.text and "Rahimi" not in shown.text
    staff = browser(app, ww, "officer_canada").get(f"/welcome/matches/{match.id}")
    assert staff.status_code == 200 and case.number in staff.text and f'href="/cases/{case.id}"' in staff.text
    assert browser(app, ww, "minister_spain").get(f"/welcome/matches/{match.id}").status_code == 404


def test_a_proposal_is_accepted_by_both_sides_through_the_pages(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    ww.make_eligible()
    case = ww.arriving_case()
    s.commit()
    officer, sponsor = browser(app, ww, "officer_canada"), browser(app, ww, "sponsor_group_a")
    programme_page = officer.get(f"/welcome/programmes/{ww.programme.id}")
    assert case.number in programme_page.text and "Propose the group" in programme_page.text
    missing_family = officer.post(f"/welcome/programmes/{ww.programme.id}/propose",
                                  data={"group_id": str(ww.group.id), "case_id": str(uuid.uuid4())})
    assert missing_family.status_code == 422 and "choose one of the arriving families" in missing_family.text
    proposed = officer.post(f"/welcome/programmes/{ww.programme.id}/propose",
                            data={"group_id": str(ww.group.id), "case_id": str(case.id), "needs": ["infant"]})
    assert proposed.status_code == 303
    match = s.scalars(select(Match).where(Match.case_id == case.id)).one()
    page = sponsor.get(f"/welcome/matches/{match.id}")
    assert "We accept" in page.text and "A baby's needs" in words(page.text)
    assert sponsor.post(f"/welcome/matches/{match.id}/family", data={"accept": "yes"}).status_code == 404
    assert sponsor.post(f"/welcome/matches/{match.id}/answer", data={"accept": "yes"}).status_code == 303
    assert officer.post(f"/welcome/matches/{match.id}/answer", data={"accept": "yes"}).status_code == 404
    assert officer.post(f"/welcome/matches/{match.id}/family", data={"accept": "yes"}).status_code == 303
    twice = officer.post(f"/welcome/matches/{match.id}/family", data={"accept": "yes"})
    assert twice.status_code == 409 and "already been answered" in twice.text
    s.expire_all()
    assert match.status == MatchStatus.active and service.tasks_of(s, match)
    no_date = officer.post(f"/welcome/matches/{match.id}/arrival", data={"arrival_on": "", "flight": "AC 1"})
    assert no_date.status_code == 422 and "is required" in words(no_date.text)
    arrival = officer.post(f"/welcome/matches/{match.id}/arrival",
                           data={"arrival_on": "2030-03-10", "flight": "AC 849", "airport": "YOW", "time": "",
                                 "notes": ""})
    assert arrival.status_code == 303
    s.expire_all()
    school = next(t for t in service.tasks_of(s, match) if t.code == "school")
    assert str(school.due_on) == "2030-04-09"
    assert "Due on Apr 9, 2030" in words(sponsor.get(f"/welcome/matches/{match.id}").text)


def test_services_are_recorded_done_with_evidence(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = active_match(ww)
    today = service.today_().isoformat()
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on=today)
    s.commit()
    sponsor = browser(app, ww, "sponsor_group_a")
    tasks = service.tasks_of(s, match)
    airport = next(t for t in tasks if t.code == "airport")
    owner = service.members_of(s, ww.group)[1]
    future = sponsor.post(f"/welcome/matches/{match.id}/tasks/{airport.id}", data={"done_on": "2999-01-01"})
    assert future.status_code == 422 and "cannot be in the future" in words(future.text)
    done = sponsor.post(f"/welcome/matches/{match.id}/tasks/{airport.id}",
                        data={"owner_member_id": str(owner.id), "done_on": today,
                              "evidence": "Met at the arrivals gate with an interpreter", "notes": "All well"})
    assert done.status_code == 303 and done.headers["location"].endswith(f"#task-{airport.id}")
    s.expire_all()
    assert (airport.done_on.isoformat(), airport.evidence, airport.owner_member_id) == (
        today, "Met at the arrivals gate with an interpreter", owner.id)
    page = words(sponsor.get(f"/welcome/matches/{match.id}").text)
    assert f"1 of {len(tasks)} services done" in page
    assert "Evidence: Met at the arrivals gate with an interpreter" in page and f"Owner: {owner.full_name}" in page
    # A task of another match is not found under this one.
    assert sponsor.post(f"/welcome/matches/{match.id}/tasks/{uuid.uuid4()}", data={"notes": "x"}).status_code == 404
    # The outcomes: the sponsor records them, the staff complete the sponsorship.
    officer = browser(app, ww, "officer_canada")
    assert sponsor.post(f"/welcome/matches/{match.id}/outcomes",
                        data={"housing_stable": "yes", "children_in_school": "yes",
                              "adults_working_or_learning": "", "notes": "Settled"}).status_code == 303
    assert officer.post(f"/welcome/matches/{match.id}/outcomes",
                        data={"adults_working_or_learning": "yes", "complete": "1"}).status_code == 303
    s.expire_all()
    assert match.status == MatchStatus.completed and match.outcomes["housing_stable"] is True
    assert ww.group.status == GroupStatus.completed


# Donations ------------------------------------------------------------------------------------------------------


def test_donations_are_offered_claimed_and_given_in_the_ledger(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = active_match(ww)
    s.commit()
    anonymous = Client(app)
    form = anonymous.get("/welcome/give/ca-welcome")
    assert form.status_code == 200
    bad = anonymous.post("/welcome/give/ca-welcome", data={"csrf_token": csrf_of(form.text), "kind": "car"})
    assert bad.status_code == 422 and count(ww, Donation) == 0
    for name in ("donor_name", "donor_email", "kind", "description", "city"):
        assert f'href="#f-{name}"' in bad.text, name
    offered = anonymous.post("/welcome/give/ca-welcome", data={
        "csrf_token": csrf_of(form.text), "donor_name": "Jo Tremblay", "donor_email": "jo@example.org",
        "kind": "furniture", "description": "A kitchen table and four chairs", "condition": "good",
        "quantity": "1", "city": "Ottawa", "website": ""})
    assert offered.status_code == 303 and offered.headers["location"].endswith("notice=thanks")
    assert "your offer is recorded" in anonymous.get(offered.headers["location"]).text
    donation = s.scalars(select(Donation)).one()

    sponsor, officer = browser(app, ww, "sponsor_group_a"), browser(app, ww, "officer_canada")
    listing = sponsor.get(f"/welcome/programmes/{ww.programme.id}/donations")
    assert listing.status_code == 200 and "A kitchen table and four chairs" in listing.text
    assert "jo@example.org" not in listing.text  # the donor's address is for the staff
    assert officer.post(f"/welcome/donations/{donation.id}/claim").status_code == 404
    assert sponsor.post(f"/welcome/donations/{donation.id}/claim").status_code == 303
    twice = sponsor.post(f"/welcome/donations/{donation.id}/claim")
    assert twice.status_code == 409 and "already been claimed" in twice.text
    given = sponsor.post(f"/welcome/donations/{donation.id}/give", data={"given_on": service.today_().isoformat()})
    assert given.status_code == 303
    s.expire_all()
    assert donation.status == DonationStatus.given and donation.given_to_match_id == match.id
    staff_view = officer.get(f"/welcome/programmes/{ww.programme.id}/donations?status=given")
    ledger = staff_view.text.split('id="ledger-list"')[1]
    assert "A kitchen table and four chairs" in ledger and ww.group.name in ledger
    assert f"/welcome/matches/{match.id}" in ledger and "jo@example.org" in staff_view.text
    assert browser(app, ww, "minister_spain").get(
        f"/welcome/programmes/{ww.programme.id}/donations").status_code == 404


# The programme --------------------------------------------------------------------------------------------------


def _cell(page: str, attribute: str) -> int:
    match = re.search(rf'{attribute}">([\d,]+)<', page)
    assert match, attribute
    return int(match.group(1).replace(",", ""))


def test_the_programme_page_shows_the_service_s_figures(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = active_match(ww)
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on=service.today_().isoformat())
    airport = next(t for t in service.tasks_of(s, match) if t.code == "airport")
    service.update_task(s, actor=ww.p("sponsor_group_a"), match=match, task=airport,
                        changes={"done_on": service.today_().isoformat()})
    s.add(SponsorGroup(programme_id=ww.programme.id, org_id=s.scalars(select(Organization.id).where(
        Organization.short_name == "unhcr")).one(), government_org_id=ww.programme.org_id, name="Second Circle",
        country="CA", city="Montreal", contact_email="second@example.org"))
    s.commit()
    figures = service.dashboard(s, actor=ww.p("officer_canada"), programme=ww.programme)
    page = browser(app, ww, "officer_canada").get(f"/welcome/programmes/{ww.programme.id}")
    assert page.status_code == 200
    assert _cell(page.text, 'id="fig-groups') == sum(figures["groups"].values()) == 2
    assert _cell(page.text, 'id="fig-welcomed') == figures["families_welcomed"] == 1
    for status, n in figures["groups"].items():
        assert _cell(page.text, f'data-status="{status}') == n, status
    for key in ("on_time", "late", "overdue"):
        assert _cell(page.text, f'data-services="{key}') == figures["services"][key], key
    share = figures["services"]["on_time_share"]
    assert f'id="fig-on-time">{round(share * 100)}%' in page.text
    assert "<svg" in page.text and "<title" in page.text and "<desc" in page.text
    text = words(page.text)
    assert f"1 of {len(service.tasks_of(s, match))} services done" in text
    # Filters and search of the groups.
    found = browser(app, ww, "officer_canada").get(f"/welcome/programmes/{ww.programme.id}?q=montr")
    listed = found.text.split('id="group-list"')[1].split("</table>")[0]
    assert "Second Circle" in listed and ww.group.name not in listed
    forming = browser(app, ww, "officer_canada").get(f"/welcome/programmes/{ww.programme.id}?status=welcoming")
    assert "No groups match" in forming.text or ww.group.name in forming.text
    # The secretariat sees the figures but no group; Spain's staff see nothing of Canada's programme.
    secretariat = browser(app, ww, "admin_secretariat").get(f"/welcome/programmes/{ww.programme.id}")
    assert secretariat.status_code == 200 and "Second Circle" not in secretariat.text
    assert browser(app, ww, "minister_spain").get(f"/welcome/programmes/{ww.programme.id}").status_code == 404
    listing = browser(app, ww, "minister_spain").get("/welcome")
    assert listing.status_code == 200 and ww.programme.name in listing.text
    assert f"/welcome/programmes/{ww.programme.id}" not in listing.text


def test_staff_create_a_programme_change_its_rules_and_run_the_algorithm(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    s.commit()
    admin = browser(app, ww, "admin_canada")
    new = admin.get("/welcome/programmes/new")
    assert new.status_code == 200 and "Airport reception" in new.text
    assert browser(app, ww, "caseworker_unhcr").get("/welcome/programmes/new").status_code == 403
    before = count(ww, Programme)
    bad = admin.post("/welcome/programmes/new", data={"name": "", "slug": "Not A Slug", "cash_share": "3",
                                                       "currency": "dollars"})
    assert bad.status_code == 422 and count(ww, Programme) == before
    for name in ("name", "cash_share", "currency"):
        assert f'href="#f-{name}"' in bad.text, name
    taken = admin.post("/welcome/programmes/new", data={"name": "Again", "slug": "ca-welcome"})
    assert taken.status_code == 422 and "is already used by another programme" in taken.text
    created = admin.post("/welcome/programmes/new", data={
        "name": "Canada Summer Circles", "slug": "ca-summer", "min_adults": "3", "funds_per_person": "1000",
        "currency": "CAD", "cash_share": "0.5", "support_days": "365", "staff_after_days": "7",
        "checks_required": "yes", "accepting": "yes", "streams": ["matched", "named"],
        "sponsor_fields": ["given_names", "size"], "services": ["airport", "housing", "school"]})
    assert created.status_code == 303
    programme = s.scalars(select(Programme).where(Programme.slug == "ca-summer")).one()
    assert (programme.min_adults, programme.training_required, programme.cash_share) == (3, False, 0.5)
    assert [x["code"] for x in programme.services] == ["airport", "housing", "school"]
    page = admin.get(created.headers["location"])
    assert page.status_code == 200 and "The programme is created" in page.text
    public = words(Client(app).get("/welcome/join/ca-summer").text)
    assert "At least 3 adults in the group" in public and "No training required" in public
    # The rules change: the groups follow.
    rules = {**WELCOME_CORPS, "min_adults": "1", "checks_required": "", "accepting": "yes",
             "streams": ["matched"], "sponsor_fields": WELCOME_CORPS["sponsor_fields"],
             "services": [x["code"] for x in ww.programme.services]}
    rules = {k: v for k, v in rules.items() if v != ""}
    assert browser(app, ww, "minister_germany").post(f"/welcome/programmes/{ww.programme.id}",
                                                     data=rules).status_code == 404
    bad_rules = admin.post(f"/welcome/programmes/{ww.programme.id}", data={**rules, "support_days": "2"})
    assert bad_rules.status_code == 422 and "must be between 7 and 1100" in words(bad_rules.text)
    saved = admin.post(f"/welcome/programmes/{ww.programme.id}", data=rules)
    assert saved.status_code == 303
    s.expire_all()
    assert ww.programme.min_adults == 1 and ww.programme.checks_required is False
    # The algorithm proposes the group for the family that fits, and says why the other was left out.
    ww.make_eligible()
    fits, too_big = ww.arriving_case("Ahmad", size=3), ww.arriving_case("Karim", size=9)
    s.commit()
    result = admin.post(f"/welcome/programmes/{ww.programme.id}/match")
    assert result.status_code == 200
    text = words(result.text)
    assert "1 group proposed for a family" in text and fits.number in text and too_big.number in text
    assert "can house" in text and ww.group.name in text
    s.expire_all()
    assert s.scalars(select(Match).where(Match.case_id == fits.id)).one().proposed_by == "algorithm"


def test_member_removal_and_withdrawal(app: Any, ww: WelcomeWorld) -> None:
    s = ww.session
    extra = SponsorMember(group_id=ww.group.id, full_name="Leaving Soon", email="leaving@maple.test")
    s.add(extra)
    s.commit()
    sponsor = browser(app, ww, "sponsor_group_a")
    lead = service.members_of(s, ww.group)[0]
    last = sponsor.post(f"/welcome/groups/{ww.group.id}/members/{lead.id}/remove")
    assert last.status_code == 409 and "cannot be removed" in last.text
    assert sponsor.post(f"/welcome/groups/{ww.group.id}/members/{extra.id}/remove").status_code == 303
    assert sponsor.post(f"/welcome/groups/{ww.group.id}/members/{uuid.uuid4()}/remove").status_code == 404
    unconfirmed = sponsor.post(f"/welcome/groups/{ww.group.id}/withdraw", data={"reason": "Moving"})
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    assert sponsor.post(f"/welcome/groups/{ww.group.id}/withdraw",
                        data={"reason": "Moving", "confirm": "yes"}).status_code == 303
    s.expire_all()
    assert ww.group.status == GroupStatus.withdrawn
    page = sponsor.get(f"/welcome/groups/{ww.group.id}")
    assert page.status_code == 200 and "Withdrawn" in page.text and "Add a member" not in page.text


@pytest.mark.parametrize("path", ["/welcome", "/welcome/programmes/new"])
def test_anonymous_callers_are_sent_to_sign_in(app: Any, ww: WelcomeWorld, path: str) -> None:
    response = Client(app).get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
