"""The pipeline at the service level: every ordered pair of stages for the owner and for an accepting
government, the pre-departure checklist, the SLA clocks, the milestone dates and optimistic concurrency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import pipeline, search, service, sharing
from rdn.cases.models import Case, ChecklistItem, StageEvent
from rdn.cases.pipeline import STATE_MOVES, TRANSITIONS, Stage
from rdn.core import audit, clock, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict
from tests.cases.conftest import CasesWorld

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAIRS = [(a, b) for a in Stage for b in Stage]


@pytest.fixture
def world(session: Session, network: Any, make_gov_admins: Any) -> Iterator[CasesWorld]:
    """The cases world built and used with the clock frozen at T0."""
    from tests.cases.conftest import AGREED, agree

    with clock.frozen(T0):
        make_gov_admins()
        agreements = {gov: agree(session, network, gov, sections) for gov, sections in AGREED.items()}
        session.flush()
        yield CasesWorld(session, network, agreements)


def put_at(session: Session, case: Case, stage: Stage) -> None:
    """Put the case at ``stage`` directly (as an import or a data fix would), with its clocks."""
    case.stage, case.stage_since = stage, clock.now()
    service.recompute_clocks(case)
    session.flush()


def events(session: Session, case: Case) -> int:
    return session.scalar(select(func.count()).select_from(StageEvent).where(StageEvent.case_id == case.id)) or 0


def stage_audits(session: Session, case: Case) -> list[dict[str, Any]]:
    # Columns, not entities: entries loaded inside a savepoint would outlive its rollback in the session.
    return list(session.scalars(
        select(AuditEntry.details).where(AuditEntry.object_type == "case", AuditEntry.object_id == str(case.id),
                                         AuditEntry.action == "case.stage").order_by(AuditEntry.seq)))


def all_checklist_done(w: CasesWorld, case: Case) -> None:
    access = w.access("caseworker_unhcr", case)
    for item in ChecklistItem:
        service.set_checklist(w.session, actor=w.p("caseworker_unhcr"), access=access, item=item, status="done")
    w.session.flush()


def snapshot(case: Case) -> dict[str, Any]:
    return {k: getattr(case, k) for k in ("stage", "stage_since", "version", "submitted_at", "departed_at",
                                          "arrived_at", "closed_at", "stage_due_at", "due_at")}


def accepted_by_canada(w: CasesWorld, case: Case, purpose: str = "resettlement") -> None:
    w.refer(case, "canada", purpose=purpose)
    referral = sharing.referrals_of(w.session, w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case))[-1]
    sharing.change_referral(w.session, actor=w.p("officer_canada"), referral=referral, status="accepted")
    w.session.flush()


# Every pair, as the owner's caseworker ----------------------------------------------------------------------


def test_every_ordered_pair_of_stages_is_allowed_or_a_conflict_that_changes_nothing(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    all_checklist_done(w, case)  # departure is tested on its own below
    actor = w.p("caseworker_unhcr")
    access = w.access("caseworker_unhcr", case)
    moved = refused = 0
    for a, b in PAIRS:
        savepoint = s.begin_nested()
        try:
            clock.advance(timedelta(seconds=1))
            put_at(s, case, a)
            before, n_events, audits = snapshot(case), events(s, case), len(stage_audits(s, case))
            if b in TRANSITIONS[a]:
                event = service.move(s, actor=actor, access=access, to=b, note=f"{a} to {b}")
                now = clock.now()
                assert (case.stage, case.stage_since, case.version) == (b, now, before["version"] + 1), (a, b)
                assert (event.from_stage, event.to_stage, event.actor_user_id) == (a, b, actor.user_id)
                assert events(s, case) == n_events + 1
                assert stage_audits(s, case)[-1] == {"from": a.value, "to": b.value}
                assert len(stage_audits(s, case)) == audits + 1
                # The milestone dates are set by the moves that reach them, and only by those.
                assert case.submitted_at == (now if b == Stage.submitted else before["submitted_at"])
                assert case.departed_at == (now if b == Stage.departed else before["departed_at"])
                assert case.arrived_at == (now if b == Stage.arrived else before["arrived_at"])
                assert case.closed_at == (now if b == Stage.closed else None)
                # The stage's clock restarts.
                assert case.stage_due_at == pipeline.stage_due(b, now, case.processing_priority)
                moved += 1
            else:
                with pytest.raises(Conflict):
                    service.move(s, actor=actor, access=access, to=b)
                assert snapshot(case) == before, (a, b)
                assert events(s, case) == n_events
                assert len(stage_audits(s, case)) == audits
                refused += 1
        finally:
            savepoint.rollback()
    assert moved == sum(len(t) for t in TRANSITIONS.values()) and moved + refused == len(Stage) ** 2
    assert Stage.closed not in {a for a, b in PAIRS if b in TRANSITIONS[a]}  # closed is the end
    assert audit.verify(s).ok  # the rolled-back attempts left the chain whole


def test_an_unknown_stage_is_a_validation_error(world: CasesWorld) -> None:
    from rdn.core.errors import ValidationFailed

    case = world.open_case()
    with pytest.raises(ValidationFailed) as exc:
        service.move(world.session, actor=world.p("caseworker_unhcr"), access=world.access("caseworker_unhcr", case),
                     to="teleported")
    assert exc.value.errors[0].field == "to"
    assert case.stage == Stage.referred


def test_only_the_owners_writers_move_the_pipeline(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    with pytest.raises(policy.AuthError):  # the owner's administrator sees everything but does not write
        service.move(w.session, actor=w.p("admin_unhcr"), access=w.access("admin_unhcr", case),
                     to=Stage.needs_assessment)
    for persona in ("officer_canada", "minister_spain", "analyst_ec", "sponsor_group_a", "admin_secretariat"):
        with pytest.raises(policy.NotFound):
            w.access(persona, case, "case.stage")
    assert case.stage == Stage.referred and events(w.session, case) == 1


# The pre-departure checklist --------------------------------------------------------------------------------


def test_departure_needs_every_checklist_item_done_or_not_needed(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    put_at(s, case, Stage.travel_booking)
    version = case.version

    with pytest.raises(Conflict) as exc:
        service.move(s, actor=actor, access=access, to=Stage.departed)
    for label in ("Security clearance", "Medical clearance", "Exit permit", "Travel document",
                  "Cultural orientation"):
        assert label in exc.value.detail
    assert (case.stage, case.version, case.departed_at) == (Stage.travel_booking, version, None)

    statuses = {"security": "done", "medical": "not_needed", "exit_permit": "done", "travel_document": "blocked",
                "orientation": "in_progress"}
    for item, status in statuses.items():
        service.set_checklist(s, actor=actor, access=access, item=item, status=status)
    with pytest.raises(Conflict) as exc:
        service.move(s, actor=actor, access=access, to=Stage.departed)
    assert "Travel document" in exc.value.detail and "Cultural orientation" in exc.value.detail
    assert "Security clearance" not in exc.value.detail and "Medical clearance" not in exc.value.detail
    assert "Exit permit" not in exc.value.detail
    assert case.stage == Stage.travel_booking

    service.set_checklist(s, actor=actor, access=access, item="travel_document", status="done")
    service.set_checklist(s, actor=actor, access=access, item="orientation", status="not_needed")
    service.move(s, actor=actor, access=access, to=Stage.departed)
    assert case.stage == Stage.departed and case.departed_at == clock.now()


def test_the_checklist_refuses_unknown_items_and_statuses(world: CasesWorld) -> None:
    from rdn.core.errors import ValidationFailed

    case = world.open_case()
    actor, access = world.p("caseworker_unhcr"), world.access("caseworker_unhcr", case)
    for item, status, field in (("security", "sort_of", "status"), ("visa", "done", "item")):
        with pytest.raises(ValidationFailed) as exc:
            service.set_checklist(world.session, actor=actor, access=access, item=item, status=status)
        assert exc.value.errors[0].field == field
    assert all(e.status == "pending" for e in service.checklist(world.session, case))


# A receiving government -------------------------------------------------------------------------------------


def test_an_accepting_government_makes_exactly_the_state_moves(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    all_checklist_done(w, case)
    accepted_by_canada(w, case)
    officer = w.p("officer_canada")
    access = w.access("officer_canada", case)
    assert not access.owner and access.accepted_for_resettlement
    moved = 0
    for a, b in PAIRS:
        savepoint = s.begin_nested()
        try:
            put_at(s, case, a)
            before, n_events = snapshot(case), events(s, case)
            if (a, b) in STATE_MOVES:
                service.move(s, actor=officer, access=access, to=b)
                assert case.stage == b and case.version == before["version"] + 1
                assert stage_audits(s, case)[-1] == {"from": a.value, "to": b.value}
                moved += 1
            else:
                # An agency-side move the table allows is not the State's to make; the rest are conflicts.
                expected = policy.Forbidden if b in TRANSITIONS[a] else Conflict
                with pytest.raises(expected):
                    service.move(s, actor=officer, access=access, to=b)
                assert snapshot(case) == before, (a, b)
                assert events(s, case) == n_events
        finally:
            savepoint.rollback()
    assert moved == len(STATE_MOVES) > 0
    # Agency-side stages are never the State's: nothing it may do starts or ends there (but submission).
    assert all((a in pipeline.STATE_SIDE or a == Stage.submitted) and b in pipeline.STATE_SIDE for a, b in STATE_MOVES)


def test_the_accepting_government_keeps_the_checklist_and_flies_the_family(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    w.refer(case, "canada")
    with pytest.raises(policy.NotFound):  # not before it accepts
        service.set_checklist(s, actor=w.p("officer_canada"), access=w.access("officer_canada", case),
                              item="security", status="done")
    referral = sharing.referrals_of(s, w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case))[-1]
    sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral, status="accepted")
    officer, access = w.p("officer_canada"), w.access("officer_canada", case)
    put_at(s, case, Stage.travel_booking)
    for item in ChecklistItem:
        service.set_checklist(s, actor=officer, access=access, item=item, status="done")
    assert {e.updated_by_user_id for e in service.checklist(s, case)} == {officer.user_id}
    service.move(s, actor=officer, access=access, to=Stage.departed)
    service.move(s, actor=officer, access=access, to=Stage.arrived)
    assert (case.departed_at, case.arrived_at) == (clock.now(), clock.now())
    with pytest.raises(policy.Forbidden):  # closing the case is the owner's
        service.move(s, actor=officer, access=access, to=Stage.closed)
    service.move(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case), to=Stage.closed)
    assert case.closed_at == clock.now() and case.due_at is None


def test_a_government_without_an_accepted_resettlement_referral_moves_nothing(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    w.refer(case, "canada")  # pending: Canada sees the case but has not accepted it
    officer = w.p("officer_canada")
    access = w.access("officer_canada", case)
    assert access.sections and not access.accepted_for_resettlement
    for a, b in sorted(STATE_MOVES):
        put_at(s, case, a)
        version = case.version
        with pytest.raises(policy.NotFound):
            service.move(s, actor=officer, access=w.access("officer_canada", case), to=b)
        assert (case.stage, case.version) == (a, version)

    # Accepted, but for family reunification: still not the State's pipeline to move.
    other = w.open_case(members=None)
    accepted_by_canada(w, other, purpose="family_reunification")
    put_at(s, other, Stage.submitted)
    with pytest.raises(policy.NotFound):
        service.move(s, actor=officer, access=w.access("officer_canada", other), to=Stage.prescreening)
    # Canada's administrator sees the summary of an accepted case but moves nothing.
    third = w.open_case()
    accepted_by_canada(w, third)
    put_at(s, third, Stage.submitted)
    with pytest.raises(policy.NotFound):
        service.move(s, actor=w.p("admin_canada"), access=w.access("admin_canada", third), to=Stage.prescreening)
    assert third.stage == Stage.submitted
    service.move(s, actor=officer, access=w.access("officer_canada", third), to=Stage.prescreening)
    assert third.stage == Stage.prescreening


def test_a_revoked_acceptance_takes_the_pipeline_back_at_once(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    accepted_by_canada(w, case)
    put_at(s, case, Stage.submitted)
    access = w.access("officer_canada", case)
    service.move(s, actor=w.p("officer_canada"), access=access, to=Stage.prescreening)
    referral = sharing.referrals_of(s, w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case))[-1]
    sharing.change_referral(s, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                            reason="Family asked to stop")
    with pytest.raises(policy.NotFound):
        w.access("officer_canada", case)


# SLA clocks -------------------------------------------------------------------------------------------------


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59, tzinfo=UTC))


@pytest.mark.parametrize(("priority", "stage_days", "submit_days", "depart_days"), [
    ("emergency", 1, 3, 7), ("urgent", 3, 21, 42), ("normal", 14, 120, 365),
])
def test_a_new_case_runs_its_clocks_by_priority(world: CasesWorld, priority: str, stage_days: int,
                                                submit_days: int, depart_days: int) -> None:
    case = world.open_case(processing_priority=priority, submission_priority=priority)
    assert case.stage == Stage.referred and case.opened_at == T0
    assert case.stage_due_at == T0 + timedelta(days=stage_days)
    assert case.target_submission_on == T0.date() + timedelta(days=submit_days)
    assert case.target_departure_on == T0.date() + timedelta(days=submit_days + depart_days)
    assert case.due_at == T0 + timedelta(days=stage_days)  # the stage's clock is the earliest


def test_due_at_is_the_earliest_clock_that_applies(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case(processing_priority="emergency", submission_priority="emergency")
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)

    # An emergency case reaching its interview after two and a half days: the submission target (day 3,
    # end of day) comes before the interview's own two days.
    clock.advance(timedelta(days=2, hours=12))
    put_at(s, case, Stage.initial_review)
    service.move(s, actor=actor, access=access, to=Stage.interview)
    assert case.stage_due_at == clock.now() + timedelta(days=2)
    assert case.due_at == end_of(T0.date() + timedelta(days=3))

    # Submitted: the departure target now runs from the actual submission (7 days for an emergency).
    put_at(s, case, Stage.recommended)
    service.move(s, actor=actor, access=access, to=Stage.submitted)
    submitted = clock.now()
    assert case.submitted_at == submitted
    assert case.target_departure_on == submitted.date() + timedelta(days=7)
    assert case.due_at == submitted + timedelta(days=2)  # the stage's two days come first

    # On hold five days later: seven days on hold would pass the departure target, which wins.
    service.move(s, actor=actor, access=access, to=Stage.security_checks)
    clock.advance(timedelta(days=5))
    service.move(s, actor=actor, access=access, to=Stage.on_hold)
    assert case.stage_due_at == clock.now() + timedelta(days=7)
    assert case.due_at == end_of(submitted.date() + timedelta(days=7))

    # Denied: only the decision clock runs (three days for an emergency), whatever the targets say.
    service.move(s, actor=actor, access=access, to=Stage.denied)
    assert case.due_at == case.stage_due_at == clock.now() + timedelta(days=3)

    # Closed: nothing runs.
    service.move(s, actor=actor, access=access, to=Stage.closed)
    assert case.due_at is None and case.stage_due_at is None and case.closed_at == clock.now()


def test_changing_the_priority_reruns_the_clocks(world: CasesWorld) -> None:
    w = world
    case = w.open_case(processing_priority="normal", submission_priority="normal")
    assert case.due_at == T0 + timedelta(days=14)
    service.update_case(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                        changes={"processing_priority": "emergency"})
    assert case.stage_due_at == case.due_at == T0 + timedelta(days=1)
    assert case.target_submission_on == T0.date() + timedelta(days=3)
    assert case.target_departure_on == T0.date() + timedelta(days=3 + 365)  # submission priority unchanged


def test_overdue_cases_are_found_by_the_filter(world: CasesWorld) -> None:
    w, s = world, world.session
    urgent = w.open_case(processing_priority="urgent")  # 3 days at "referred"
    normal = w.open_case(processing_priority="normal", submission_priority="normal")  # 14 days
    closed = w.open_case(processing_priority="emergency")
    put_at(s, closed, Stage.withdrawn)
    service.move(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", closed), to=Stage.closed)
    p = w.p("caseworker_unhcr")

    def listed(overdue: bool | None) -> set[str]:
        return {c.number for c in search.list_cases(s, p, search.CaseFilters(overdue=overdue)).items}

    assert listed(True) == set()
    # "On time" is a clock that has not run out: a closed case has no clock, so it is neither.
    assert listed(False) == {urgent.number, normal.number}
    clock.advance(timedelta(days=3, seconds=1))
    assert listed(True) == {urgent.number}
    assert listed(False) == {normal.number}
    assert service.is_overdue(urgent) and not service.is_overdue(normal) and not service.is_overdue(closed)
    assert search.overdue(urgent) and not search.overdue(closed)
    assert search.overdue_count(s, p) == 1
    clock.advance(timedelta(days=11))
    assert listed(True) == {urgent.number, normal.number}
    # Another organization's view of overdue work holds none of these.
    assert {c.number for c in search.list_cases(s, w.p("officer_canada"),
                                                search.CaseFilters(overdue=True)).items} == set()


# Optimistic concurrency -------------------------------------------------------------------------------------


def test_a_stale_version_is_a_conflict_that_changes_nothing(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    seen = case.version
    service.move(s, actor=actor, access=access, to=Stage.needs_assessment, version=seen)
    assert case.version == seen + 1
    clock.advance(timedelta(hours=1))
    before, n_events = snapshot(case), events(s, case)
    with pytest.raises(Conflict):
        service.move(s, actor=actor, access=access, to=Stage.initial_review, version=seen)  # what I saw before
    assert snapshot(case) == before
    assert events(s, case) == n_events
    s.flush()
    s.expire(case)
    assert case.stage == Stage.needs_assessment and case.version == seen + 1
    service.move(s, actor=actor, access=access, to=Stage.initial_review, version=seen + 1)
    assert case.stage == Stage.initial_review


def test_the_history_lists_every_move_in_order(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    road = [Stage.needs_assessment, Stage.initial_review, Stage.interview]
    for stage in road:
        clock.advance(timedelta(minutes=1))
        service.move(s, actor=actor, access=access, to=stage, note=f"now {stage}")
    history = service.history(s, case)
    assert [(e.from_stage, e.to_stage) for e in history] == [
        (None, Stage.referred), (Stage.referred, Stage.needs_assessment),
        (Stage.needs_assessment, Stage.initial_review), (Stage.initial_review, Stage.interview)]
    assert history[-1].note == "now interview" and history[-1].actor_label == actor.full_name
