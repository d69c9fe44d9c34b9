"""The Welcome demo: three programmes with their rules, groups at every stage in each, families in their first
months (the maple persona's group welcoming one, its checklist partly done and one service overdue), due dates that
follow the arrival, donations given to families; every family is a case accepted by the programme's government; a
second run adds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import demo as cases_demo
from rdn.cases.models import Case, Referral, ReferralStatus
from rdn.core import identity
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Organization
from rdn.network import demo as network_demo
from rdn.welcome import demo, service
from rdn.welcome.models import (
    Donation,
    DonationStatus,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    ServiceTask,
    SponsorGroup,
    SponsorMember,
)

SEEDED = (Programme, SponsorGroup, SponsorMember, Match, ServiceTask, Donation, Case, Referral, identity.User)


def counts(session: Session) -> dict[str, int]:
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) or 0 for m in SEEDED}


def test_the_demo(session: Session) -> None:
    said: list[str] = []
    ctx = DemoContext(session=session, say=said.append)
    network_demo.seed(ctx)
    cases_demo.seed(ctx)  # the families: Welcome runs after the cases demo
    demo.seed(ctx)
    first = counts(session)
    today = service.today_()

    programmes = {p.slug: p for p in session.scalars(select(Programme))}
    assert set(programmes) == {"us-welcome-corps", "ca-private-sponsorship", "de-nest"}
    corps = programmes["us-welcome-corps"]
    assert (corps.min_adults, corps.funds_per_person, corps.currency, corps.cash_share, corps.support_days) == \
        (5, 2425, "USD", 0.6, 90)
    assert corps.checks_required and corps.training_required and set(corps.streams) == {"matched", "named"}
    assert programmes["ca-private-sponsorship"].support_days == 365
    assert programmes["de-nest"].currency == "EUR"
    governments = {p.slug: session.get(Organization, p.org_id).short_name for p in programmes.values()}
    assert governments == {"us-welcome-corps": "us", "ca-private-sponsorship": "ca", "de-nest": "de"}

    groups = session.scalars(select(SponsorGroup)).all()
    stages = {GroupStatus.forming, GroupStatus.eligible, GroupStatus.matched, GroupStatus.welcoming,
              GroupStatus.completed}
    for programme in programmes.values():
        assert stages <= {g.status for g in groups if g.programme_id == programme.id}, programme.slug
    for group in groups:
        missing = service.eligibility(programmes_by_id(programmes)[group.programme_id], group,
                                      service.members_of(session, group))
        if group.status in stages - {GroupStatus.forming}:
            assert missing == [], (group.name, missing)
        elif group.status == GroupStatus.forming:
            assert missing, group.name  # told what it lacks

    # The network's sponsor groups are in their country's programme; the maple persona's welcomes a family.
    orgs = {o.id: o.short_name for o in session.scalars(select(Organization))}
    own = {orgs[g.org_id]: g for g in groups if orgs[g.org_id] in
           ("maple-circle", "riverside-welcome", "suedstadt-willkommen")}
    assert {k: programmes_by_id(programmes)[g.programme_id].slug for k, g in own.items()} == {
        "maple-circle": "ca-private-sponsorship", "riverside-welcome": "us-welcome-corps",
        "suedstadt-willkommen": "de-nest"}
    maple = own["maple-circle"]
    assert maple.status == GroupStatus.welcoming
    assert ctx.people["sponsor_group_a"].id in {m.user_id for m in service.members_of(session, maple)}
    (match,) = session.scalars(select(Match).where(Match.group_id == maple.id)).all()
    tasks = service.tasks_of(session, match)
    assert any(service.overdue(t) for t in tasks) and any(t.done_on is not None and t.evidence for t in tasks)

    # Every match: a case accepted by the programme's government; tasks due from the arrival.
    matches = session.scalars(select(Match)).all()
    for m in matches:
        programme = programmes_by_id(programmes)[m.programme_id]
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.case_id == m.case_id, Referral.recipient_org_id == programme.org_id,
            Referral.status == ReferralStatus.accepted))
        for task in service.tasks_of(session, m):
            assert m.arrival_on is not None and task.due_on == m.arrival_on + timedelta(days=task.due_days)
        if m.status == MatchStatus.proposed:
            assert m.group_accepted_at is not None and m.family_accepted_at is None and not service.tasks_of(session, m)
    welcoming = [m for m in matches if m.status == MatchStatus.active and m.arrival_on and m.arrival_on <= today]
    assert welcoming and all(5 <= (today - m.arrival_on).days <= 80 for m in welcoming)
    assert any(service.overdue(t) for m in welcoming if m.group_id != maple.id for t in service.tasks_of(session, m))
    completed = [m for m in matches if m.status == MatchStatus.completed]
    assert completed and all(m.outcomes.get("housing_stable") for m in completed)
    assert any(m.proposed_by == "algorithm" for m in matches)
    arrived = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_([m.case_id for m in welcoming])))}
    assert all(c.stage == "arrived" and c.arrived_at.date() == m.arrival_on
               for m in welcoming for c in [arrived[m.case_id]])

    donations = session.scalars(select(Donation)).all()
    assert len(donations) == len(demo.DONATIONS)
    given = [d for d in donations if d.status == DonationStatus.given]
    assert given and all(d.given_to_match_id is not None and d.given_on is not None for d in given)
    assert all(session.get(Match, d.given_to_match_id).group_id == d.claimed_by_group_id for d in given)
    assert {d.status for d in donations} == {DonationStatus.offered, DonationStatus.claimed, DonationStatus.given}

    # New logins sign in with the demo password and are printed.
    emails = {p["email"] for p in ctx.personas}
    assert {"sponsor@maple.rdn.example", "sponsor@hilltop.rdn.example", "officer@de.rdn.example"} <= emails
    hilltop = session.scalars(select(identity.User).where(identity.User.email == "sponsor@hilltop.rdn.example")).one()
    assert identity.check_password(hilltop, network_demo.DEMO_PASSWORD)
    assert any("Welcome programmes" in line for line in said)

    # Again: nothing added, the personas printed again.
    before = len(ctx.personas)
    demo.seed(ctx)
    assert counts(session) == first
    assert {p["email"] for p in ctx.personas[before:]} >= {"sponsor@hilltop.rdn.example", "officer@de.rdn.example"}


def programmes_by_id(programmes: dict[str, Programme]) -> dict[object, Programme]:
    return {p.id: p for p in programmes.values()}
