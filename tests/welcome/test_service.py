"""Welcome's rules: eligibility follows the programme, due dates follow the arrival, overdue services remind the
group once and the programme's staff once, sponsors learn only what the programme lets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rdn.core import clock, outbox, policy
from rdn.core.errors import ProblemError, ValidationFailed
from rdn.welcome import service
from rdn.welcome.models import GroupStatus, Match, MatchStatus, ServiceTask, SponsorGroup
from tests.welcome.conftest import WelcomeWorld, day


def codes(missing: list[service.Missing]) -> list[str]:
    return [m.code for m in missing]


def _status(ww: WelcomeWorld) -> list[str]:
    return codes(service.eligibility(ww.programme, ww.group, service.members_of(ww.session, ww.group)))


def test_a_new_group_is_told_everything_it_lacks(ww: WelcomeWorld) -> None:
    assert _status(ww) == ["adults", "checks", "training", "funds", "plan"]
    assert ww.group.status == GroupStatus.forming


def test_eligibility_follows_each_rule_of_the_programme(ww: WelcomeWorld) -> None:
    s = ww.session
    ww.make_eligible()
    assert _status(ww) == [] and ww.group.status == GroupStatus.eligible
    staff, sponsor = ww.p("officer_canada"), ww.p("sponsor_group_a")
    member = service.members_of(s, ww.group)[-1]
    # One adult's check fails: not eligible, and the group is told whose.
    service.record_check(s, actor=staff, group=ww.group, member=member, check="failed")
    assert _status(ww) == ["checks"] and ww.group.status == GroupStatus.forming
    assert member.full_name in service.eligibility(ww.programme, ww.group, service.members_of(s, ww.group))[0].text
    service.record_check(s, actor=staff, group=ww.group, member=member, check="passed")
    assert ww.group.status == GroupStatus.eligible
    # Less cash than the programme's share: missing "cash"; changed pledges need verifying again.
    need = service.funds_needed(ww.programme, ww.group)
    service.update_group(s, actor=sponsor, group=ww.group, changes={"funds_cash": round(need * 0.5, 2)})
    assert _status(ww) == ["cash", "funds_verified"]
    service.update_group(s, actor=sponsor, group=ww.group, changes={"funds_cash": round(need * 0.6, 2)})
    assert _status(ww) == ["funds_verified"]
    service.verify_funds(s, actor=staff, group=ww.group)
    assert _status(ww) == []
    # Housing more people needs more funds ($2,425 a person).
    service.update_group(s, actor=sponsor, group=ww.group, changes={"capacity": ww.group.capacity + 1})
    assert "funds" in _status(ww)
    service.update_group(s, actor=sponsor, group=ww.group, changes={"capacity": ww.group.capacity - 1})
    # The programme's rules change: the groups follow at once.
    service.update_programme(s, actor=ww.p("admin_canada"), programme=ww.programme, changes={"min_adults": 6})
    assert _status(ww) == ["adults"] and ww.group.status == GroupStatus.forming
    service.update_programme(s, actor=ww.p("admin_canada"), programme=ww.programme,
                             changes={"min_adults": 5, "training_required": False})
    assert ww.group.status == GroupStatus.eligible


@pytest.mark.parametrize(("rule", "value", "missing"), [
    ("min_adults", 1, []), ("checks_required", False, ["checks"]), ("training_required", False, ["training"]),
    ("funds_per_person", 0, ["funds"]), ("cash_share", 0, ["funds"]),
])
def test_each_rule_can_be_relaxed(ww: WelcomeWorld, rule: str, value: object, missing: list[str]) -> None:
    """With one rule relaxed, a fresh group lacks one thing less (the lists above are what disappears)."""
    before = _status(ww)
    service.update_programme(ww.session, actor=ww.p("admin_canada"), programme=ww.programme,
                             changes={rule: value})
    after = _status(ww)
    gone = [c for c in before if c not in after]
    assert gone == (["adults"] if rule == "min_adults" else missing if rule != "cash_share" else [])


def test_staff_not_sponsors_record_checks_and_funds(ww: WelcomeWorld) -> None:
    member = service.members_of(ww.session, ww.group)[0]
    with pytest.raises((policy.Forbidden, policy.NotFound)):
        service.record_check(ww.session, actor=ww.p("sponsor_group_a"), group=ww.group, member=member,
                             check="passed")
    with pytest.raises((policy.Forbidden, policy.NotFound)):
        service.verify_funds(ww.session, actor=ww.p("sponsor_group_a"), group=ww.group)
    with pytest.raises((policy.Forbidden, policy.NotFound)):  # another government's staff
        service.verify_funds(ww.session, actor=ww.p("minister_spain"), group=ww.group)


def _active_match(ww: WelcomeWorld, size: int = 4):  # type: ignore[no-untyped-def]
    match, case = ww.active_match(size=size)
    assert match.status == MatchStatus.active
    return match, case


def test_due_dates_follow_the_arrival_date(ww: WelcomeWorld) -> None:
    match, _case = _active_match(ww)
    tasks = service.tasks_of(ww.session, match)
    assert tasks and all(t.due_on is None for t in tasks)  # no arrival yet, no due dates
    # Per-person services: one task for each of the four people, named as the family shared them.
    assert len([t for t in tasks if t.code == "identity_numbers"]) == 4
    service.set_arrival(ww.session, actor=ww.p("officer_canada"), match=match, arrival_on="2030-03-10",
                        notice={"flight": "AC 849", "airport": "YOW"})
    for task in service.tasks_of(ww.session, match):
        assert task.due_on == day("2030-03-10") + timedelta(days=task.due_days)
    assert {t.code: t.due_on for t in service.tasks_of(ww.session, match)}["school"] == day("2030-04-09")
    # A later arrival moves every date.
    service.set_arrival(ww.session, actor=ww.p("officer_canada"), match=match, arrival_on="2030-03-20")
    assert {t.code: t.due_on for t in service.tasks_of(ww.session, match)}["airport"] == day("2030-03-20")
    # Owners come from the welcome plan.
    assert all(t.owner_member_id is not None for t in service.tasks_of(ww.session, match))


def _queued(ww: WelcomeWorld, prefix: str) -> list[outbox.Job]:
    return list(ww.session.scalars(select(outbox.Job).where(outbox.Job.dedupe_key.like(f"{prefix}%"))))


def test_overdue_services_remind_the_group_once_then_the_staff_once(ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = _active_match(ww)
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on="2030-03-10")
    airport = next(t for t in service.tasks_of(s, match) if t.code == "airport")
    with clock.frozen(datetime(2030, 3, 12, 9, tzinfo=UTC)):
        service.update_task(s, actor=ww.p("sponsor_group_a"), match=match, task=airport,
                            changes={"done_on": "2030-03-10", "evidence": "Met at the gate"})
        reminded, escalated = service.send_due_reminders(s)
        # Due on the 10th or 11th and not done: housing (day 0) and the first meal (day 1); the airport is done.
        assert (reminded, escalated) == (2, 0)
        assert len(_queued(ww, "welcome.overdue:")) == 2
        assert service.send_due_reminders(s) == (0, 0)  # not twice
    with clock.frozen(datetime(2030, 3, 18, 9, tzinfo=UTC)):  # 8 days past housing's due date: the staff hear
        reminded, escalated = service.send_due_reminders(s)
        assert escalated == 1  # housing (due the 10th, 7 days' grace) ; the first meal is due the 11th
        assert service.send_due_reminders(s) == (0, 0)
    staff_mail = _queued(ww, "welcome.escalated:")
    assert len(staff_mail) == 1
    assert "officer_canada@rdn.test" in staff_mail[0].payload["to"] or \
        "admin_canada@rdn.test" in staff_mail[0].payload["to"]
    assert len(_queued(ww, "welcome.overdue:")) == reminded + 2


def test_sponsors_see_only_the_programme_s_fields(ww: WelcomeWorld) -> None:
    match, case = _active_match(ww)
    view = service.sponsor_view(ww.programme, match)
    assert set(view) <= {"given_names", "size", "arrival_on", "arrival_notice", "languages", "needs", "status",
                         "stream"}
    assert view["given_names"][0] == "Mohammad" and view["size"] == 4 and view["needs"] == ["wheelchair"]
    flat = repr(view)
    for secret in (case.number, "Rahimi", "Islamabad", case.current_country, str(case.id)):
        assert secret not in flat
    # A programme that shares less: the snapshot of the next match holds less.
    service.update_programme(ww.session, actor=ww.p("admin_canada"), programme=ww.programme,
                             changes={"sponsor_fields": ["size", "arrival"]})
    assert set(service.sponsor_view(ww.programme, match)) == {"size", "arrival_on", "arrival_notice", "status",
                                                              "stream"}


def test_a_family_gets_one_group_and_only_eligible_groups_are_matched(ww: WelcomeWorld) -> None:
    case = ww.arriving_case()
    staff = ww.p("officer_canada")
    with pytest.raises(ProblemError):
        service.propose(ww.session, actor=staff, group=ww.group, case_id=case.id)  # still forming
    ww.make_eligible()
    service.propose(ww.session, actor=staff, group=ww.group, case_id=case.id)
    assert ww.group.status == GroupStatus.matched
    with pytest.raises(ProblemError):
        service.propose(ww.session, actor=staff, group=ww.group, case_id=case.id)
    # Spain's staff cannot propose in Canada's programme.
    with pytest.raises((policy.Forbidden, policy.NotFound)):
        service.propose(ww.session, actor=ww.p("minister_spain"), group=ww.group, case_id=case.id)


def test_the_algorithm_proposes_by_preference(ww: WelcomeWorld) -> None:
    ww.make_eligible()
    too_big = ww.arriving_case("Karim", size=7)  # more people than the group can house (5)
    fits = ww.arriving_case("Ahmad", size=3)
    result = service.run_matching(ww.session, actor=ww.p("officer_canada"), programme=ww.programme)
    assert [p.family_id for p in result.proposals] == [fits.id]
    assert too_big.id in result.unmatched_families
    assert ww.group.status == GroupStatus.matched


def test_sign_up_validates_every_field_and_keeps_nothing_on_error(ww: WelcomeWorld) -> None:
    s = ww.session
    bad = {"your_name": "", "your_email": "not-an-email", "name": "", "city": "", "capacity": "99",
           "languages": ["english!"], "nationalities": ["XX"], "min_size": "5", "max_size": "2"}
    with pytest.raises(ValidationFailed) as caught:
        service.sign_up(s, programme=ww.programme, data=bad)
    fields = {e.field for e in caught.value.errors}
    assert {"your_name", "your_email", "name", "city", "capacity", "languages", "nationalities",
            "max_size"} <= fields
    group = service.sign_up(s, programme=ww.programme, data={
        "your_name": "Ana Souza", "your_email": "ana@example.org", "name": "Elm Street Neighbours",
        "city": "Halifax", "languages": "en, pt", "capacity": "4", "max_size": "5", "stream": "matched"})
    assert group.status == GroupStatus.forming and group.government_org_id == ww.programme.org_id
    assert [m.full_name for m in service.members_of(s, group)] == ["Ana Souza"]
    # The same address again (or anyone's who has an account): nothing is created, the owner is told by email,
    # and the answer looks like any other sign-up's, so the form reveals no one's account.
    groups_before = s.scalar(select(func.count()).select_from(SponsorGroup))
    again = service.sign_up(s, programme=ww.programme, data={
        "your_name": "Ana Souza", "your_email": "ana@example.org", "name": "Elm Street Neighbours",
        "city": "Halifax", "languages": "en, pt", "capacity": "4", "max_size": "5", "stream": "matched"})
    assert s.scalar(select(func.count()).select_from(SponsorGroup)) == groups_before
    assert again.id is None and [m.full_name for m in service.members_of(s, again)] == ["Ana Souza"]
    assert [x.code for x in service.eligibility(ww.programme, again, service.members_of(s, again))] == \
        [x.code for x in service.eligibility(ww.programme, group, service.members_of(s, group))]
    told = list(s.scalars(select(outbox.Job).where(outbox.Job.kind == "email")))
    assert any("ana@example.org" in job.payload["to"] and "already has an account" in job.payload["text"]
               for job in told)
    # The network's stricter checks come back under this form's field names.
    with pytest.raises(ValidationFailed) as caught:
        service.sign_up(s, programme=ww.programme, data={
            "your_name": "Al", "your_email": "x" * 70 + "@example.org", "name": "Long", "city": "Halifax"})
    assert {e.field for e in caught.value.errors} <= {"your_email", "your_name"}


def test_donations_are_claimed_then_given_to_the_group_s_family(ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = _active_match(ww)
    donation = service.offer_donation(s, programme=ww.programme, data={
        "donor_name": "Jo", "donor_email": "jo@example.org", "kind": "furniture", "description": "A table",
        "condition": "good", "city": "Ottawa"})
    sponsor = ww.p("sponsor_group_a")
    service.claim_donation(s, actor=sponsor, group=ww.group, donation=donation)
    with pytest.raises(ProblemError):
        service.claim_donation(s, actor=sponsor, group=ww.group, donation=donation)
    service.give_donation(s, actor=sponsor, group=ww.group, donation=donation, on="2030-03-12")
    assert donation.given_to_match_id == match.id and donation.given_on == day("2030-03-12")


def test_dashboard_counts_what_the_records_say(ww: WelcomeWorld) -> None:
    s = ww.session
    match, _case = _active_match(ww)
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on="2030-03-10")
    tasks = service.tasks_of(s, match)
    with clock.frozen(datetime(2030, 3, 12, 9, tzinfo=UTC)):
        service.update_task(s, actor=ww.p("sponsor_group_a"), match=match, task=tasks[0],
                            changes={"done_on": "2030-03-10"})
        figures = service.dashboard(s, actor=ww.p("officer_canada"), programme=ww.programme)
    # Due so far: past their date, or done (those due today and still open are neither late nor on time yet).
    due = [t for t in s.scalars(select(ServiceTask)) if t.due_on and (t.due_on < day("2030-03-12") or t.done_on)]
    assert figures["services"]["due"] == len(due)
    assert figures["services"]["on_time"] == 1
    assert figures["families_welcomed"] == 1
    assert figures["groups"]["matched"] + figures["groups"]["welcoming"] == 1
    assert figures["funds"]["pledged"] == ww.group.funds_pledged


def test_a_wrong_field_changes_nothing_of_a_member(ww: WelcomeWorld) -> None:
    member = service.members_of(ww.session, ww.group)[0]
    with pytest.raises(ValidationFailed):
        service.record_check(ww.session, actor=ww.p("officer_canada"), group=ww.group, member=member,
                             check="passed", trained_on="not a date")
    assert member.check_status.value == "pending" and member.trained_on is None


def test_only_a_family_on_its_way_is_matched(ww: WelcomeWorld) -> None:
    ww.make_eligible()
    case = ww.arriving_case()
    case.stage = "arrived"
    with pytest.raises(ProblemError):
        service.propose(ww.session, actor=ww.p("officer_canada"), group=ww.group, case_id=case.id)


def test_a_declined_group_is_eligible_again_only_if_the_rules_still_hold(ww: WelcomeWorld) -> None:
    s = ww.session
    ww.make_eligible()
    match = service.propose(s, actor=ww.p("officer_canada"), group=ww.group, case_id=ww.arriving_case().id)
    # Meanwhile the programme asks for more adults than the group has.
    ww.programme.min_adults = 9
    service.respond_as_group(s, actor=ww.p("sponsor_group_a"), match=match, accept=False, reason="Not now")
    assert match.status == MatchStatus.declined and ww.group.status == GroupStatus.forming


def test_a_household_where_first_names_repeat_gets_a_task_for_each_person(ww: WelcomeWorld) -> None:
    from tests.cases.conftest import household

    ww.make_eligible()
    people = household("Mohammad", size=3)
    people[2]["given_name"] = "Mohammad"  # the father and his son
    case = ww.cw.open_case(members=people)
    ww.cw.refer(case, "canada", sections=["identity", "needs"])
    from rdn.cases.models import Referral
    from rdn.cases.sharing import change_referral

    for referral in ww.session.scalars(select(Referral).where(Referral.case_id == case.id)):
        change_referral(ww.session, actor=ww.p("officer_canada"), referral=referral, status="accepted")
    case.stage = "approved"
    staff = ww.p("officer_canada")
    match = service.propose(ww.session, actor=staff, group=ww.group, case_id=case.id)
    service.respond_as_group(ww.session, actor=ww.p("sponsor_group_a"), match=match, accept=True)
    service.record_family_answer(ww.session, actor=staff, match=match, accept=True)
    people_tasks = [t.person for t in service.tasks_of(ww.session, match) if t.code == "identity_numbers"]
    assert sorted(people_tasks) == ["Fatima", "Mohammad", "Mohammad (2)"]


def test_a_cancelled_match_is_out_of_the_sponsors_reach(ww: WelcomeWorld) -> None:
    match, _case = ww.active_match()
    sponsor = ww.p("sponsor_group_a")
    assert policy.access(ww.session, sponsor, Match, match.id) is match
    service.cancel_match(ww.session, actor=ww.p("officer_canada"), match=match, reason="safeguarding concern")
    with pytest.raises(policy.NotFound):
        policy.access(ww.session, sponsor, Match, match.id)


def test_the_itinerary_reaches_the_group_only_where_the_programme_shares_it(ww: WelcomeWorld) -> None:
    s = ww.session
    service.update_programme(s, actor=ww.p("admin_canada"), programme=ww.programme,
                             changes={"sponsor_fields": ["size"]})
    match, _case = ww.active_match()
    service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on="2030-03-10",
                        notice={"flight": "SECRETFLIGHT"})
    view = service.sponsor_view(ww.programme, match)
    assert view["arrival_on"] == "2030-03-10" and "arrival_notice" not in view
    notices = list(s.scalars(select(outbox.Job).where(outbox.Job.dedupe_key.like("welcome.arrival:%"))))
    assert notices and all("SECRETFLIGHT" not in repr(job.payload) for job in notices)


def test_removed_or_failed_members_lose_their_access(ww: WelcomeWorld) -> None:
    from rdn.core.tenancy import Membership

    s = ww.session
    user = ww.cw.net.people["sponsor_group_a"]
    emma = next(m for m in service.members_of(s, ww.group) if m.user_id == user.id)
    service.record_check(s, actor=ww.p("officer_canada"), group=ww.group, member=emma, check="failed")
    assert emma.user_id is None
    assert not list(s.scalars(select(Membership).where(Membership.user_id == user.id,
                                                       Membership.org_id == ww.group.org_id)))


def test_a_group_that_no_longer_meets_the_rules_cannot_start_welcoming(ww: WelcomeWorld) -> None:
    s = ww.session
    ww.make_eligible()
    case = ww.arriving_case()
    staff = ww.p("officer_canada")
    match = service.propose(s, actor=staff, group=ww.group, case_id=case.id)
    service.update_group(s, actor=ww.p("sponsor_group_a"), group=ww.group,
                         changes={"funds_pledged": 0, "funds_cash": 0})
    service.respond_as_group(s, actor=ww.p("sponsor_group_a"), match=match, accept=True)
    with pytest.raises(ProblemError) as caught:
        service.record_family_answer(s, actor=staff, match=match, accept=True)
    assert caught.value.status == 409


def test_arrival_dates_far_away_are_refused_by_field(ww: WelcomeWorld) -> None:
    match, _case = ww.active_match()
    for bad in ("9999-12-31", "0001-01-01"):
        with pytest.raises(ValidationFailed) as caught:
            service.set_arrival(ww.session, actor=ww.p("officer_canada"), match=match, arrival_on=bad)
        assert [e.field for e in caught.value.errors] == ["arrival_on"]


def test_finished_groups_do_not_act_and_only_a_group_with_a_family_claims(ww: WelcomeWorld) -> None:
    s = ww.session
    donation = service.offer_donation(s, programme=ww.programme, data={
        "donor_name": "Jo", "donor_email": "jo@example.org", "kind": "food", "description": "Rice",
        "city": "Ottawa"})
    with pytest.raises(ProblemError):
        service.claim_donation(s, actor=ww.p("sponsor_group_a"), group=ww.group, donation=donation)
    service.withdraw_group(s, actor=ww.p("sponsor_group_a"), group=ww.group)
    with pytest.raises(ProblemError):
        service.add_member(s, actor=ww.p("sponsor_group_a"), group=ww.group, data={"full_name": "Late Joiner"})
    with pytest.raises(ProblemError):
        service.withdraw_group(s, actor=ww.p("sponsor_group_a"), group=ww.group)


def test_the_database_holds_one_open_match_per_family_and_per_group(ww: WelcomeWorld) -> None:
    """What two officers proposing at the same moment would otherwise both get past the service's checks."""
    from sqlalchemy.exc import IntegrityError

    match, case = ww.active_match()
    s = ww.session
    for twin in (Match(programme_id=match.programme_id, group_id=match.group_id, case_id=ww.arriving_case().id,
                       stream=match.stream),
                 Match(programme_id=match.programme_id, group_id=service.sign_up(s, programme=ww.programme, data={
                     "your_name": "Bo Li", "your_email": "bo@example.org", "name": "Other", "city": "Ottawa"}).id,
                       case_id=case.id, stream=match.stream)):
        with pytest.raises(IntegrityError), s.begin_nested():
            s.add(twin)
            s.flush()
    service.cancel_match(s, actor=ww.p("officer_canada"), match=match, reason="Ended")
    s.add(Match(programme_id=match.programme_id, group_id=match.group_id, case_id=case.id, stream=match.stream))
    s.flush()  # once the match is closed, the family and the group may be matched again
