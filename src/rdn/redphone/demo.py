"""Demo data of the red phone: contact chains for every government, two past crises, a drill history.

The past is written as history (runs already acknowledged, pledges already confirmed), not replayed
through the paging engine: seeding the demo must not send a single page.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from rdn.core import clock, identity
from rdn.core.crypto import Keyring
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.network import service as network
from rdn.network.demo import DEMO_ACTOR, DEMO_PASSWORD, demo_totp_secret
from rdn.redphone import chains, service
from rdn.redphone.models import (
    Action,
    ActionStatus,
    ActivationLevel,
    ContactKind,
    ContactMethod,
    Crisis,
    CrisisStatus,
    Decision,
    DecisionStatus,
    EscalationRun,
    Message,
    Page,
    PageStatus,
    Participant,
    ParticipantRole,
    Pledge,
    PledgeStatus,
    RunStatus,
)

#: Levels of each demo chain; a persona of the foundation's demo stands at their level where there is one.
LEVELS = [("Minister", 5, Role.senior_official), ("Deputy minister", 5, Role.senior_official),
          ("Duty officer", 10, Role.officer)]
FIRST_NAMES = ["Alex", "Sam", "Noor", "Ana", "Kai", "Lea", "Omar", "Ines", "Tom", "Mei", "Ravi", "Zoe"]
LAST_NAMES = ["Morgan", "Silva", "Haddad", "Novak", "Okafor", "Rossi", "Berg", "Costa", "Ito", "Keller"]


def _person(ctx: DemoContext, org: Organization, role: Role, slot: int) -> identity.User:
    """A government's demo official for a chain level: an existing persona, or a new one."""
    session = ctx.session
    existing = session.scalars(select(identity.User).join(Membership, Membership.user_id == identity.User.id)
                               .where(Membership.org_id == org.id, Membership.role == role)
                               .order_by(identity.User.email)).all()
    if len(existing) > slot:
        return existing[slot]
    rng = random.Random(f"{org.short_name}-{role.value}-{slot}")
    email = f"{role.value.replace('_', '-')}{slot + 1}@{org.short_name}.rdn.example"
    user = session.scalars(select(identity.User).where(identity.User.email == email)).first()
    if user is None:
        user = network.create_person(session, actor=DEMO_ACTOR, email=email, org=org, role=role,
                                     full_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                                     password=DEMO_PASSWORD, invite=False)
        identity.confirm_totp(session, user, demo_totp_secret(email))
    return user


def _reachable(ctx: DemoContext, user: identity.User, n: int) -> None:
    session = ctx.session
    if session.scalar(select(func.count()).select_from(ContactMethod).where(ContactMethod.user_id == user.id)):
        return
    ring = Keyring.of(session)
    methods = [(ContactKind.email, user.email)]
    if n % 3 == 0:  # some also by SMS (numbers from the range reserved for drama)
        methods.append((ContactKind.sms, f"+447700900{n % 1000:03d}"))
    for kind, address in methods:
        method = ContactMethod(id=uuid.uuid4(), user_id=user.id, kind=kind, hint=chains.mask(kind, address),
                               label="", verified_at=clock.now(), active=True)
        method.seal("address", address, keyring=ring)
        session.add(method)


def _chains(ctx: DemoContext) -> None:
    session = ctx.session
    governments = session.scalars(select(Organization).where(Organization.kind == OrgKind.government)
                                  .order_by(Organization.name)).all()
    n = 0
    for org in governments:
        if chains.chain_of(session, org.id) is not None:
            continue
        specs = []
        for position, (name, wait, role) in enumerate(LEVELS):
            people = [_person(ctx, org, role, 0 if position != 1 else 1)]
            for person in people:
                _reachable(ctx, person, n)
                n += 1
            specs.append(chains.LevelSpec(name, wait, [p.id for p in people]))
        chains.set_chain(session, actor=DEMO_ACTOR, org=org, levels=specs, repeat_count=1)
    session.flush()


def _history(ctx: DemoContext, *, title: str, summary: str, region: str, countries: list[str], displaced: int,
             target: int, level: ActivationLevel, status: CrisisStatus, declared: datetime, exercise: bool,
             chair: str, reference: str, seed: int) -> Crisis:
    """A crisis as it happened: paging answered, pledges, decisions, actions, a few messages."""
    session = ctx.session
    rng = random.Random(seed)
    chair_org = ctx.orgs[chair]
    declarer = session.scalars(select(identity.User).join(Membership, Membership.user_id == identity.User.id)
                               .where(Membership.org_id == chair_org.id,
                                      Membership.role.in_([Role.senior_official, Role.admin]))).first()
    crisis = Crisis(reference=reference, title=title, summary=summary, region=region, countries=countries,
                    displaced_population=displaced, target_places=target, activation_level=level, status=status,
                    exercise=exercise, declared_by_user_id=declarer.id, declared_by_org_id=chair_org.id,
                    declared_at=declared, closed_at=declared + timedelta(days=90) if status == CrisisStatus.closed
                    else None)
    session.add(crisis)
    session.flush()
    for org in service.participant_orgs(session):
        role = ParticipantRole.chair if org.id == chair_org.id else service.DEFAULT_ROLES[OrgKind(org.kind)]
        session.add(Participant(crisis_id=crisis.id, org_id=org.id, role=role))
    governments = [o for o in service.participant_orgs(session) if OrgKind(o.kind) == OrgKind.government]
    for org in governments:
        snap, repeats = chains.snapshot(session, org.id)
        answered = rng.random() > (0.15 if exercise else 0.05)
        level_index = 0 if rng.random() < 0.7 else min(1, len(snap["levels"]) - 1)
        seconds = rng.randint(40, 280) + level_index * 300
        ack_at = declared + timedelta(seconds=seconds)
        person = snap["levels"][level_index]["people"][0]
        last_level = len(snap["levels"]) - 1
        run = EscalationRun(crisis_id=crisis.id, org_id=org.id, round=1, trigger="declared", snapshot=snap,
                            repeat_count=repeats, status=RunStatus.acknowledged if answered else RunStatus.exhausted,
                            cycle=0 if answered else repeats, level=level_index if answered else last_level,
                            fence=3, started_at=declared,
                            ended_at=ack_at if answered else declared + timedelta(hours=1),
                            acknowledged_at=ack_at if answered else None,
                            acknowledged_by_user_id=uuid.UUID(person["user_id"]) if answered else None,
                            acknowledged_via=rng.choice(["link", "app", "sms"]) if answered else None)
        session.add(run)
        session.flush()
        for lvl in range(level_index + 1):
            for p in snap["levels"][lvl]["people"]:
                last = lvl == level_index and answered and p["user_id"] == person["user_id"]
                session.add(Page(run_id=run.id, crisis_id=crisis.id, org_id=org.id, user_id=uuid.UUID(p["user_id"]),
                                 cycle=0, level=lvl, short_code=f"{rng.randrange(10**6):06d}",
                                 status=PageStatus.acknowledged if last else PageStatus.timed_out,
                                 created_at=declared + timedelta(minutes=5 * lvl), sent_at=declared,
                                 acknowledged_at=ack_at if last else None,
                                 timed_out_at=None if last else declared + timedelta(minutes=5 * (lvl + 1))))
    return crisis


def seed(ctx: DemoContext) -> None:
    session = ctx.session
    _chains(ctx)
    if session.scalar(select(func.count()).select_from(Crisis)):
        return
    now = clock.now()
    sudan = _history(ctx, title="Sudan: displacement into Chad", region="Sahel and Horn of Africa",
                     summary="Refugees from Darfur arriving in eastern Chad; urgent and emergency resettlement of "
                             "survivors of violence and medical cases.",
                     countries=["SD", "TD"], displaced=600_000, target=5_000, level=ActivationLevel.full_activation,
                     status=CrisisStatus.closed, declared=datetime(2026, 5, 12, 8, 30, tzinfo=UTC), exercise=False,
                     chair="secretariat", reference="RP-2026-001", seed=1)
    for org_key, places, state in (("ca", 1200, PledgeStatus.fulfilled), ("de", 900, PledgeStatus.fulfilled),
                                   ("es", 600, PledgeStatus.confirmed), ("gb", 800, PledgeStatus.confirmed),
                                   ("au", 500, PledgeStatus.fulfilled), ("us", 700, PledgeStatus.withdrawn)):
        session.add(Pledge(crisis_id=sudan.id, org_id=ctx.orgs[org_key].id, places=places,
                           population="Sudanese refugees in Chad", time_frame="12 months", status=state,
                           created_at=sudan.declared_at + timedelta(days=2)))
    first = Decision(crisis_id=sudan.id, text="Prioritise survivors of violence and medical cases for emergency "
                                               "processing within 7 days.", status=DecisionStatus.recorded,
                     recorded_at=sudan.declared_at + timedelta(hours=3), recorded_by_org_id=ctx.orgs["secretariat"].id)
    session.add(first)
    session.add(Decision(crisis_id=sudan.id, text="Open a joint processing hub in Abéché with UNHCR and IOM.",
                         status=DecisionStatus.recorded, recorded_at=sudan.declared_at + timedelta(days=1),
                         recorded_by_org_id=ctx.orgs["secretariat"].id))
    session.add(Action(crisis_id=sudan.id, title="Circulate the joint situation report to capitals",
                       owner_org_id=ctx.orgs["secretariat"].id, due_on=date(2026, 5, 14), status=ActionStatus.done,
                       created_at=sudan.declared_at, completed_at=sudan.declared_at + timedelta(days=1)))
    for offset, org_key, text in ((10, "secretariat", "Room open. Please confirm who is on point for each government."),
                                  (25, "ca", "Canada can take 1,200 places in the coming year, medical cases first."),
                                  (40, "de", "Germany confirms 900 places and a selection mission in June.")):
        session.add(Message(crisis_id=sudan.id, client_id=f"demo-{uuid.uuid4().hex}", kind="message",
                            author_org_id=ctx.orgs[org_key].id, body=text,
                            created_at=sudan.declared_at + timedelta(minutes=offset)))

    afghan = _history(ctx, title="Afghans in Pakistan facing deportation", region="Asia and the Pacific",
                      summary="Afghans awaiting resettlement face exit-permit fees and deportation orders.",
                      countries=["AF", "PK"], displaced=215_000, target=10_000,
                      level=ActivationLevel.information_sharing, status=CrisisStatus.stabilised,
                      declared=now - timedelta(days=21), exercise=False, chair="us", reference="RP-2026-002", seed=2)
    for org_key, places, state in (("gb", 1500, PledgeStatus.confirmed), ("nz", 300, PledgeStatus.proposed),
                                   ("it", 400, PledgeStatus.confirmed)):
        session.add(Pledge(crisis_id=afghan.id, org_id=ctx.orgs[org_key].id, places=places,
                           population="Afghans in Pakistan", time_frame="6 months", status=state,
                           created_at=afghan.declared_at + timedelta(days=1)))
    session.add(Action(crisis_id=afghan.id, title="Raise exit-permit fees with Islamabad (joint démarche)",
                       owner_org_id=ctx.orgs["gb"].id, due_on=(now - timedelta(days=2)).date(),
                       status=ActionStatus.in_progress, created_at=afghan.declared_at))

    for n in range(6):  # a drill roughly every month
        _history(ctx, title=f"Red phone drill {n + 1}", summary="A quarterly test of every contact chain.",
                 region="", countries=[], displaced=0, target=0, level=ActivationLevel.monitoring,
                 status=CrisisStatus.closed, declared=now - timedelta(days=30 * (6 - n)), exercise=True,
                 chair="secretariat", reference=f"EX-2026-{n + 1:03d}", seed=100 + n)
    ctx.say("Red phone: chains for every government, 2 past crises, 6 drills")
