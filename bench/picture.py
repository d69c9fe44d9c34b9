"""The network picture at the volumes of the cases benchmark, on PostgreSQL: the dashboard, one member's view and
the API under concurrent clients, and the snapshot computation behind them.

Goal: the dashboard renders in under 300 ms (p95) with the volumes of the cases benchmark on PostgreSQL.

1. The database is the cases benchmark's (bench/cases.py: ~300,000 cases, ~1,000,000 people, a past of stages
   and dates, ~150,000 referrals to six governments), seeded through its functions or reused as it left it.
   The picture needs more than that benchmark writes, so this adds, in bulk (binary COPY): a stage history for
   every case (the moves along ``MAIN_ROAD`` from ``referred`` up to its stage, spread between ``opened_at`` and
   ``stage_since`` by the stages' clocks), each government's quota for the current year with an emergency
   reserve, the public projected needs, crises (one a drill, one closed) with pledges from several governments,
   and obstacles blocking a few thousand cases (with checklist items blocked, and some blocks released). The
   database's comment records it (``picture=``), so later runs skip it.
2. The snapshot computation (``rdn.reports.service.refresh``, which the worker runs every few minutes, never per
   request): the network's view and one government's (``--member``, default Canada) for the current year, three
   times each (min and median), then every government's once, as the worker does each round.
3. ``--servers`` ``rdn serve`` processes (no worker; default 2, one per CPU of a 2-CPU machine, each on a port
   of its own as behind a load balancer), snapshots computed just before, and ``--clients`` concurrent clients,
   each logged in twice with a browser session (a caseworker of the referring agency, for the network
   dashboard; an officer of the member government, for its own view) and holding an API token. After a
   ``--warmup``, each scenario runs for ``--seconds``:
   * dashboard: ``GET /reports`` (the network dashboard). Goal: p95 under 300 ms.
   * member: ``GET /reports/members/<member>`` (that government's view). Goal: p95 under 300 ms.
   * api: ``GET /api/v1/reports/network`` with the token (the same figures as JSON; no goal of its own).
   A response counts only when it is 200 and carries the dashboard's charts (``data-chart=``) or, for the API,
   the figures' headline; anything else is an error.

    .venv/bin/python bench/picture.py [--reuse] [--keep] [--fresh] [--clients 10] [--seconds 20] [--warmup 3]
                                      [--servers 2] [--member ca] [--scenarios dashboard,member,api]
                                      [--repeats 3] [--blocked 4000]
                                      [--cases 300000] [--file-people 25000]

By default the cases benchmark's database is reused when it holds a seeding of ``--cases`` cases at the current
schema (a reused database is always kept), and seeded afresh otherwise (several minutes: the figures of that
import are bench/cases.py's business, not shown here); a database seeded by this run is dropped at the end
unless ``--keep`` or ``--reuse``. ``--fresh`` seeds afresh even when it could reuse.

Environment: RDN_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres, the server and an
administrative database), RDN_BENCH_CASES_DATABASE (the database's name, default ``rdn_bench_cases``). Set
COLUMNS (e.g. COLUMNS=160) for wide tables when the output is not a terminal.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import cases as bench_cases  # noqa: E402
from cases import (  # noqa: E402
    GOVERNMENTS,
    admin_execute,
    cpu_times,
    database_url,
    environ,
    load_network,
    percentile,
    postgres_pids,
    read_meta,
    reusable,
    seed,
    server_settings,
    start_servers,
    stop_servers,
)
from rdn import db, migrate, modules  # noqa: E402
from rdn.cases import pipeline  # noqa: E402
from rdn.cases.models import (  # noqa: E402
    Case,
    ChecklistEntry,
    ChecklistItem,
    ChecklistStatus,
    Member,
    Priority,
    Referral,
    StageEvent,
)
from rdn.cases.pipeline import MAIN_ROAD, Stage  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core import clock, identity, ids  # noqa: E402
from rdn.core.audit import Actor  # noqa: E402
from rdn.core.tenancy import Organization, Role  # noqa: E402
from rdn.core.web import session_cookie_name  # noqa: E402
from rdn.matching.models import Quota  # noqa: E402
from rdn.network import service as network  # noqa: E402
from rdn.pathways.models import Block, Obstacle, ObstacleStatus, ObstacleType, Severity  # noqa: E402
from rdn.redphone.models import (  # noqa: E402
    ActivationLevel,
    Crisis,
    CrisisStatus,
    Participant,
    ParticipantRole,
    Pledge,
    PledgeStatus,
)
from rdn.reports import figures, service  # noqa: E402
from rdn.reports.models import Snapshot  # noqa: E402

DATABASE = bench_cases.DATABASE
console = Console()
ACTOR = Actor("bench")
GOAL_MS = 300.0
#: What the extra seeding is, as the database's comment records it; change it when the seeding changes.
PICTURE_VERSION = "1"
SCENARIOS = {
    "dashboard": ("/reports", "network dashboard", GOAL_MS),
    "member": ("/reports/members/{member}", "member view", GOAL_MS),
    "api": ("/api/v1/reports/network", "API, network figures", None),
}
#: Places a year, per point of a government's weight in bench/cases.py's GOVERNMENTS (Canada 35: 21,000).
PLACES_PER_WEIGHT = 600
CHART_MARK = b"data-chart="


# The picture's seeding -----------------------------------------------------------------------------------------


def picture_meta(url: str) -> dict[str, str]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return read_meta(conn)
    finally:
        engine.dispose()


def _stays(path: list[Stage], priority: Priority, rng: random.Random) -> list[float]:
    """A plausible length (days) of each stay along ``path`` but the last: the stage's clock for the case's
    priority, more or less (some stays overrun it)."""
    out = []
    for stage in path[:-1]:
        days = pipeline._STAGE_DAYS.get(stage)
        target = days[pipeline._PRIORITY_INDEX[priority]] if days else 10
        out.append(max(0.05, target * rng.lognormvariate(-0.35, 0.6)))
    return out


def stage_history(session: Session, progress: Progress) -> tuple[int, int]:
    """Every case's moves along the main road up to its stage (COPY), each case's first event moved to its
    opening, and the few case dates a history needs mended. Returns (events written, cases mended)."""
    rng = random.Random(909)
    road = list(MAIN_ROAD)
    review = road.index(Stage.review)
    now = clock.now()
    owners = dict(session.execute(select(Organization.id, Organization.short_name)).all())
    users = {u.email: u for u in session.scalars(select(identity.User)
                                                 .where(identity.User.email.like("importer@%.bench")))}
    actors = {org_id: users.get(f"importer@{short}.bench") for org_id, short in owners.items()}
    rows = session.execute(
        select(Case.id, Case.owner_org_id, Case.stage, Case.processing_priority, Case.submission_priority,
               Case.opened_at, Case.stage_since, Case.submitted_at, Case.departed_at, Case.stage_due_at)
        .order_by(Case.owner_org_id, Case.number)
    ).all()
    task = progress.add_task("Stage histories", total=len(rows))
    mends: list[tuple[Any, ...]] = []

    def events() -> Any:
        for done, r in enumerate(rows, start=1):
            stage = Stage(r.stage)
            path = road[:road.index(stage) + 1] if stage in road else [*road[:review + 1], stage]
            n = len(path)
            priority = Priority(r.processing_priority)
            stays = _stays(path, priority, rng)
            opened, since, submitted, departed = r.opened_at, r.stage_since, r.submitted_at, r.departed_at
            mended = False
            if n > 1 and since - opened < timedelta(hours=2 * n):
                # Opened when it entered its stage: no room for a history. It was opened earlier.
                opened = since - timedelta(days=min(sum(stays), 500))
                if submitted is not None:
                    submitted = opened + (since - opened) / 2  # as bench/cases.py's past places it
                mended = True
            if stage == Stage.submitted and submitted != since:
                submitted, mended = since, True  # entered "submitted" when it was submitted
            k_sub = path.index(Stage.submitted) if Stage.submitted in path and submitted is not None else None
            if stage == Stage.arrived:
                gap = min(timedelta(days=rng.uniform(1, 3)), (since - (submitted or opened)) / 5)
                departed, mended = since - gap, True  # arrived a day or three after departing
            if mended:
                submit_by, depart_by = pipeline.targets(opened, submitted, priority,
                                                        Priority(r.submission_priority))
                due = pipeline.due_at(stage, r.stage_due_at, submit_by, depart_by)
                mends.append((r.id, opened, submitted, departed, submit_by, depart_by, due))
            if n > 1:
                anchors = [(0, opened)]
                if k_sub is not None and 0 < k_sub < n - 1:
                    anchors.append((k_sub, submitted))
                if stage == Stage.arrived:
                    anchors.append((n - 2, departed))
                anchors.append((n - 1, since))
                at: list[datetime] = [opened] * n
                for (i_a, t_a), (i_b, t_b) in itertools.pairwise(anchors):
                    weights = stays[i_a:i_b]
                    total, cum = sum(weights), 0.0
                    for i in range(i_a, i_b):
                        cum += weights[i - i_a]
                        at[i + 1] = t_a + (t_b - t_a) * (cum / total)
                    at[i_b] = t_b
                actor = actors.get(r.owner_org_id)
                for i in range(1, n):
                    yield (ids.uuid7(), r.id, path[i - 1].value, path[i].value, "",
                           actor.id if actor else None, r.owner_org_id, actor.full_name if actor else "bench",
                           min(at[i], now))
            if done % 5000 == 0:
                progress.update(task, completed=done)

    written = 0

    def counted() -> Any:
        nonlocal written
        for row in events():
            written += 1
            yield row

    # The cases benchmark's import wrote one event a case (to "referred", at the import): those stay, moved to the
    # case's opening below; any later move there may be (none, unless someone moved cases) goes.
    session.execute(text("DELETE FROM case_stage_events WHERE from_stage IS NOT NULL"))
    db.bulk_insert(session, StageEvent.__table__,
                   ("id", "case_id", "from_stage", "to_stage", "note", "actor_user_id", "actor_org_id",
                    "actor_label", "at"), counted())
    progress.update(task, completed=len(rows))
    mend_task = progress.add_task(f"Mending the dates of {len(mends):,} cases, moving first events", total=2)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_mend (id uuid, opened timestamptz, submitted timestamptz, "
                    "departed timestamptz, submit_by date, depart_by date, due timestamptz) ON COMMIT DROP")
        with cur.copy("COPY bench_mend FROM STDIN") as copy:
            for row in mends:
                copy.write_row(row)
        cur.execute("UPDATE cases SET opened_at = m.opened, created_at = m.opened, submitted_at = m.submitted, "
                    "departed_at = m.departed, target_submission_on = m.submit_by, "
                    "target_departure_on = m.depart_by, due_at = m.due FROM bench_mend m WHERE cases.id = m.id")
        progress.update(mend_task, completed=1)
        cur.execute("UPDATE case_stage_events e SET at = c.opened_at FROM cases c "
                    "WHERE e.case_id = c.id AND e.from_stage IS NULL AND e.at <> c.opened_at")
    progress.update(mend_task, completed=2)
    return written, len(mends)


def quotas_and_needs(session: Session, governments: dict[str, uuid.UUID], year: int) -> int:
    """Each government's quota for the year (4 to 12 % kept for emergencies), and the public projected needs."""
    rng = random.Random(17)
    for short, (_name, _country, _sections, weight) in GOVERNMENTS.items():
        places = weight * PLACES_PER_WEIGHT
        session.merge(Quota(org_id=governments[short], year=year, places=places,
                            emergency_reserve=int(places * rng.uniform(0.04, 0.12)), updated_at=clock.now()))
    session.flush()
    return service.seed_reference_needs(session)


CRISES = (
    # reference, title, countries, target places, status, exercise, days ago, pledging governments
    ("CR-{y}-01", "Sudan: displacement from El Fasher into Chad", ["SD", "TD"], 12000, CrisisStatus.active, False,
     200, ("ca", "de", "gb", "es", "br")),
    ("CR-{y}-02", "Afghanistan: people at risk in Pakistan facing deportation", ["AF", "PK"], 8000,
     CrisisStatus.active, False, 140, ("ca", "de", "gb", "au")),
    ("CR-{y}-03", "Myanmar: Rohingya boat arrivals", ["MM", "BD", "MY"], 3000, CrisisStatus.stabilised, False, 90,
     ("ca", "au", "es")),
    ("CR-{y}-04", "Lebanon: Syrian refugees after the escalation", ["LB", "SY"], 5000, CrisisStatus.declared, False,
     20, ("de", "ca", "gb")),
    ("CR-{y}-05", "Venezuela: border closure", ["VE", "CO"], 2000, CrisisStatus.closed, False, 300, ("es", "br")),
    ("EX-{y}-01", "Drill: earthquake in a host country", ["TR"], 1000, CrisisStatus.active, True, 60,
     ("ca", "de")),
)


def crises_and_pledges(session: Session, governments: dict[str, uuid.UUID], chair: identity.User,
                       year: int) -> tuple[int, int]:
    """Crises (one closed, one a drill: both left out of the picture) with pledges from several governments."""
    rng = random.Random(23)
    now = clock.now()
    start = datetime(year, 1, 1, tzinfo=now.tzinfo)
    pledges = 0
    for ref, title, countries, target, status, exercise, days_ago, pledging in CRISES:
        declared = max(start + timedelta(days=1), now - timedelta(days=days_ago))
        crisis = Crisis(reference=ref.format(y=year), title=title, summary="", region="", countries=countries,
                        displaced_population=rng.randint(50_000, 900_000), target_places=target,
                        activation_level=ActivationLevel.full_activation, status=status, exercise=exercise,
                        declared_by_user_id=chair.id, declared_by_org_id=governments[pledging[0]],
                        declared_at=declared, closed_at=now - timedelta(days=30) if status == CrisisStatus.closed
                        else None, updated_at=now)
        session.add(crisis)
        session.flush()
        for n, short in enumerate(pledging):
            session.add(Participant(crisis_id=crisis.id, org_id=governments[short],
                                    role=ParticipantRole.chair if n == 0 else ParticipantRole.member))
            for _ in range(rng.randint(1, 3)):
                at = declared + (now - declared) * rng.random()
                session.add(Pledge(crisis_id=crisis.id, org_id=governments[short],
                                   places=rng.choice((50, 100, 200, 250, 500, 1000)), population=title.split(":")[0],
                                   time_frame="12 months", note="",
                                   status=rng.choices(list(PledgeStatus), (20, 50, 20, 10))[0],
                                   created_by_user_id=chair.id, created_at=at, updated_at=at))
                pledges += 1
    session.flush()
    return len(CRISES), pledges


OBSTACLES = (
    # country, type, title, severity
    ("PK", ObstacleType.exit_fee, "Exit fee for Afghans without a valid visa", Severity.high),
    ("PK", ObstacleType.overstay_fine, "Overstay fines for expired Proof of Registration cards", Severity.high),
    ("PK", ObstacleType.exit_permit, "Exit permits suspended in Balochistan", Severity.critical),
    ("IR", ObstacleType.exit_permit, "Exit permits for Amayesh card holders", Severity.medium),
    ("IR", ObstacleType.missing_document, "Passports not issued to undocumented Afghans", Severity.high),
    ("TR", ObstacleType.exit_permit, "Exit permits for people under temporary protection", Severity.medium),
    ("TR", ObstacleType.transit_visa, "Transit visas refused at Istanbul for some nationalities", Severity.low),
    ("LB", ObstacleType.overstay_fine, "Overstay fines for Syrians without residency", Severity.high),
    ("LB", ObstacleType.exit_permit, "General Security exit stamps delayed", Severity.medium),
    ("JO", ObstacleType.exit_fee, "Exit fees for non-camp refugees", Severity.low),
    ("TD", ObstacleType.missing_document, "No travel documents for new arrivals from Sudan", Severity.critical),
    ("TD", ObstacleType.security_hold, "Security clearances held in eastern Chad", Severity.high),
    ("EG", ObstacleType.no_legal_status, "Registration closed for Sudanese arrivals", Severity.high),
    ("ET", ObstacleType.exit_permit, "Exit permits for refugees in camps", Severity.medium),
    ("BD", ObstacleType.exit_permit, "Exit permissions for Rohingya from the camps", Severity.critical),
    ("BD", ObstacleType.medical_hold, "Medical clearances delayed by a diphtheria outbreak", Severity.medium),
    ("MY", ObstacleType.overstay_fine, "Immigration fines for UNHCR card holders", Severity.medium),
    ("CO", ObstacleType.missing_document, "Venezuelan passports cannot be renewed", Severity.medium),
    ("PE", ObstacleType.overstay_fine, "Irregular-stay fines for Venezuelans", Severity.low),
    ("EC", ObstacleType.proof_of_funds, "Proof of funds asked at departure", Severity.low),
    ("CR", ObstacleType.transit_visa, "Transit visas for flights through the United States", Severity.low),
    ("PK", ObstacleType.other, "Airport closures after floods", Severity.low),
)
#: The checklist item an obstacle of each type blocks.
ITEM_OF = {ObstacleType.exit_permit: ChecklistItem.exit_permit, ObstacleType.exit_fee: ChecklistItem.exit_permit,
           ObstacleType.overstay_fine: ChecklistItem.exit_permit,
           ObstacleType.missing_document: ChecklistItem.travel_document,
           ObstacleType.no_legal_status: ChecklistItem.travel_document,
           ObstacleType.transit_visa: ChecklistItem.travel_document,
           ObstacleType.proof_of_funds: ChecklistItem.exit_permit, ObstacleType.medical_hold: ChecklistItem.medical,
           ObstacleType.security_hold: ChecklistItem.security, ObstacleType.other: ChecklistItem.travel_document}
#: Cases far enough on to have a pre-departure checklist.
CHECKLIST_STAGES = [s.value for s in (Stage.security_checks, Stage.state_interview, Stage.approved, Stage.on_hold,
                                      Stage.medical_exam, Stage.cultural_orientation, Stage.placement,
                                      Stage.travel_booking)]


def obstacles_and_blocks(session: Session, agency_id: uuid.UUID, blocked: int) -> tuple[int, int, int]:
    """Obstacles in the cases' host countries (two resolved), each blocking a checklist item of some cases there
    (``blocked`` in all, open), and some blocks released before. Returns (obstacles, open blocks, released)."""
    rng = random.Random(31)
    now = clock.now()
    made: list[Obstacle] = []
    for n, (country, kind, title, severity) in enumerate(OBSTACLES):
        status = ObstacleStatus.resolved if n in (7, 19) else rng.choice(
            (ObstacleStatus.reported, ObstacleStatus.confirmed, ObstacleStatus.being_addressed))
        since = now - timedelta(days=rng.randint(60, 700))
        obstacle = Obstacle(country=country, type=kind, title=title, description="", amount=None, currency="",
                            nationalities=[], since=since.date(), severity=severity, status=status,
                            history=[{"status": str(status), "at": since.isoformat(), "by": "bench"}], links=[],
                            resolved_at=now - timedelta(days=20) if status == ObstacleStatus.resolved else None,
                            reported_by_org_id=agency_id, created_at=since, updated_at=since)
        session.add(obstacle)
        made.append(obstacle)
    session.flush()
    by_country: dict[str, list[Obstacle]] = {}
    for o in made:
        by_country.setdefault(o.country, []).append(o)
    candidates = session.execute(
        select(Case.id, Case.owner_org_id, Case.size, Case.current_country)
        .where(Case.stage.in_(CHECKLIST_STAGES), Case.current_country.in_(list(by_country)))
        .order_by(Case.owner_org_id, Case.number)
    ).all()
    picked = rng.sample(candidates, min(len(candidates), blocked + blocked // 4))
    blocks, entries, released = [], [], 0
    for n, c in enumerate(picked):
        obstacle = rng.choice(by_country[c.current_country])
        item = ITEM_OF[obstacle.type]
        start = now - timedelta(days=rng.randint(5, 300))
        if n < blocked and obstacle.status != ObstacleStatus.resolved:
            blocks.append((ids.uuid7(), obstacle.id, c.id, item.value, c.owner_org_id, c.size, start, None, ""))
            entries.append((ids.uuid7(), c.id, item.value, ChecklistStatus.blocked.value, "", obstacle.id, None, start))
        else:  # blocked once, released when they paid, got a waiver, or the obstacle was resolved
            end = start + timedelta(days=rng.randint(3, 90))
            blocks.append((ids.uuid7(), obstacle.id, c.id, item.value, c.owner_org_id, c.size, start, min(end, now),
                           "resolved" if obstacle.status == ObstacleStatus.resolved else "unblocked"))
            released += 1
    db.bulk_insert(session, Block.__table__, ("id", "obstacle_id", "case_id", "item", "owner_org_id", "people",
                                              "blocked_at", "released_at", "release_reason"), blocks)
    db.bulk_insert(session, ChecklistEntry.__table__, ("id", "case_id", "item", "status", "note", "obstacle_id",
                                                       "updated_by_user_id", "updated_at"), entries)
    return len(made), len(blocks) - released, released


@dataclass
class PictureSeeding:
    events: int
    mended: int
    quotas: int
    needs: int
    crises: int
    pledges: int
    obstacles: int
    blocks: int
    released: int
    seconds: float


def seed_picture(url: str, blocked: int) -> PictureSeeding:
    started = time.perf_counter()
    year = clock.now().year
    engine = db.make_engine(url)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Session(engine) as session, Progress(*columns, console=console) as progress:
        net = load_network(session)
        events, mended = stage_history(session, progress)
        task = progress.add_task("Quotas, needs, crises, pledges, obstacles, blocks", total=3)
        needs = quotas_and_needs(session, net.governments, year)
        progress.update(task, advance=1)
        org = session.get(Organization, net.governments[next(iter(GOVERNMENTS))])
        assert org is not None
        chair = (session.scalar(select(identity.User).where(identity.User.email == "duty@picture.bench"))
                 or network.create_person(session, actor=ACTOR, email="duty@picture.bench", full_name="Duty officer",
                                          org=org, role=Role.senior_official, invite=False))
        crises, pledges = crises_and_pledges(session, net.governments, chair, year)
        progress.update(task, advance=1)
        obstacles, blocks, released = obstacles_and_blocks(session, net.agency_id, blocked)
        progress.update(task, advance=1)
        seeded = PictureSeeding(events, mended, len(GOVERNMENTS), needs, crises, pledges, obstacles, blocks,
                                released, 0.0)
        seeded.seconds = time.perf_counter() - started
        meta = read_meta(session.connection())
        meta.update({"picture": PICTURE_VERSION, "picture_events": str(events), "picture_seconds":
                     f"{seeded.seconds:.0f}"})
        comment = ";".join(f"{k}={v}" for k, v in meta.items())
        session.execute(text(f"COMMENT ON DATABASE \"{DATABASE}\" IS '{comment}'"))  # with the rest, or not at all
        session.commit()
    with console.status("VACUUM ANALYZE"), engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    seeded.seconds = time.perf_counter() - started
    return seeded


# Volumes and the snapshot computation --------------------------------------------------------------------------


def volumes(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    with Session(engine) as session:
        count = lambda q: int(session.scalar(q) or 0)  # noqa: E731
        out = {
            "cases": count(select(func.count()).select_from(Case)),
            "people": count(select(func.count()).select_from(Member)),
            "referrals": count(select(func.count()).select_from(Referral)),
            "stage events": count(select(func.count()).select_from(StageEvent)),
            "quotas": count(select(func.count()).select_from(Quota)),
            "crises": count(select(func.count()).select_from(Crisis)),
            "pledges": count(select(func.count()).select_from(Pledge)),
            "obstacles": count(select(func.count()).select_from(Obstacle)),
            "open blocks": count(select(func.count()).select_from(Block).where(Block.released_at.is_(None))),
        }
    engine.dispose()
    return out


@dataclass
class Timing:
    label: str
    seconds: list[float]
    size: int  # the snapshot's JSON, bytes


def time_refresh(url: str, member: uuid.UUID, member_label: str, repeats: int) -> tuple[list[Timing], float, int]:
    """service.refresh for the network's view and one government's, ``repeats`` times each; then every
    government's once (the worker's round). Returns the timings, the round's seconds and its views."""
    period = figures.year_period(clock.now().year)
    engine = db.make_engine(url)
    out = []
    with Session(engine) as session, Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                              TimeElapsedColumn(), console=console, transient=True,
                                              disable=not console.is_terminal) as progress:
        govs = [o.id for o in figures.governments(session)]
        task = progress.add_task("Computing the snapshots", total=2 * repeats + 1 + len(govs))
        for label, government in (("network view", None), (member_label, member)):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                service.refresh(session, period=period, government=government)
                session.commit()
                times.append(time.perf_counter() - t0)
                progress.advance(task)
            data = session.scalar(select(Snapshot.data).where(Snapshot.scope == service.scope_key(period, government)))
            size = len(json.dumps(data))
            out.append(Timing(label, times, size))
        t0 = time.perf_counter()
        for government in [None, *govs]:
            service.refresh(session, period=period, government=government)
            session.commit()
            progress.advance(task)
        round_seconds = time.perf_counter() - t0
    engine.dispose()
    return out, round_seconds, 1 + len(govs)


def snapshot_times(url: str) -> dict[str, datetime]:
    engine = db.make_engine(url)
    with Session(engine) as session:
        out = dict(session.execute(select(Snapshot.scope, Snapshot.computed_at)).all())
    engine.dispose()
    return out


# The load ------------------------------------------------------------------------------------------------------


@dataclass
class Client:
    base_url: str
    network_cookie: str  # a caseworker of the referring agency: the network dashboard
    member_cookie: str  # an officer of the member government: its own view
    token: str  # the agency caseworker's API token


def make_clients(url: str, count: int, ports: list[int], member: str) -> list[Client]:
    """Two people per client, each with a browser session (logged in, MFA done), as bench/pathways.py logs them
    in; the agency's caseworker also holds an API token. Clients are spread over the servers' ports."""
    engine = db.make_engine(url)
    clients = []
    run = uuid.uuid4().hex[:6]
    with Session(engine) as session:
        agency = session.scalars(select(Organization).where(Organization.short_name == "agency")).one()
        government = session.scalars(select(Organization).where(Organization.short_name == member)).one()
        for n in range(count):
            cookies = []
            for org, role in ((agency, Role.caseworker), (government, Role.officer)):
                user = network.create_person(session, actor=ACTOR, email=f"picture{n}-{run}@{org.short_name}.bench",
                                             full_name=f"Picture reader {n}", org=org, role=role, invite=False)
                cookie, row = identity.start_session(session, user, ip="127.0.0.1", user_agent="bench")
                identity.activate_session(row, mfa=True)
                row.active_org_id = org.id
                cookies.append(cookie)
                if org is agency:
                    token, _row = identity.create_token(session, user=user, org_id=org.id, name="bench",
                                                        scopes=["read"])
            clients.append(Client(f"http://127.0.0.1:{ports[n % len(ports)]}", cookies[0], cookies[1], token))
        session.commit()
    engine.dispose()
    return clients


@dataclass
class Sample:
    ms: float
    ok: bool
    size: int


def client_loop(client: Client, scenario: str, member: str, until: float, out: list[Sample],
                errors: list[str]) -> None:
    path = SCENARIOS[scenario][0].format(member=member)
    headers = {"Authorization": f"Bearer {client.token}"} if scenario == "api" else {}
    cookie = client.member_cookie if scenario == "member" else client.network_cookie
    cookies = {} if scenario == "api" else {session_cookie_name(): cookie}
    with httpx.Client(base_url=client.base_url, headers=headers, cookies=cookies, timeout=60) as http:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                response = http.get(path)
            except httpx.HTTPError as exc:
                errors.append(f"{scenario}: {exc!r}")
                out.append(Sample((time.perf_counter() - t0) * 1000, False, 0))
                continue
            ms = (time.perf_counter() - t0) * 1000
            body = response.content
            if scenario == "api":
                ok = response.status_code == 200 and b'"headline"' in body
            else:
                ok = response.status_code == 200 and CHART_MARK in body
            if not ok and len(errors) < 20:
                errors.append(f"{scenario} {path}: {response.status_code} {response.text[:200]!r}")
            out.append(Sample(ms, ok, len(body)))


def run_scenario(clients: list[Client], scenario: str, member: str, seconds: float, server_pids: list[int],
                 label: str) -> tuple[list[Sample], list[str], dict[str, float]]:
    samples: list[Sample] = []
    errors: list[str] = []
    pg = postgres_pids()
    before = (cpu_times(server_pids), cpu_times(pg), cpu_times([os.getpid()]), time.perf_counter())
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=client_loop, args=(c, scenario, member, until, samples, errors))
               for c in clients]
    for t in threads:
        t.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=seconds)
        while any(t.is_alive() for t in threads):
            progress.update(task, completed=min(seconds, seconds - (until - time.perf_counter())),
                            description=f"{label}: {len(clients)} clients, {len(samples)} requests")
            time.sleep(0.25)
    for t in threads:
        t.join()
    after = (cpu_times(server_pids), cpu_times(pg), cpu_times([os.getpid()]), time.perf_counter())
    wall = after[3] - before[3]
    cpus = os.cpu_count() or 1
    usage = {"server": (after[0][0] - before[0][0]) / wall * 100, "postgres": (after[1][0] - before[1][0]) / wall * 100,
             "bench": (after[2][0] - before[2][0]) / wall * 100,
             "machine": (after[0][1] - before[0][1]) / wall / cpus * 100}
    usage["others"] = max(0.0, usage["machine"] * cpus - usage["server"] - usage["postgres"] - usage["bench"])
    return samples, errors, usage


# The run -------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300_000, help="the cases benchmark's size (its default)")
    parser.add_argument("--file-people", type=int, default=25_000, help="people per import file when seeding")
    parser.add_argument("--blocked", type=int, default=4_000,
                        help="cases blocked by obstacles now, about (one picked for a resolved obstacle is released)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per scenario")
    parser.add_argument("--servers", type=int, default=2, help="rdn serve processes (one port each)")
    parser.add_argument("--member", default="ca", choices=list(GOVERNMENTS), help="the member government's view")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=3, help="snapshot computations timed per view")
    parser.add_argument("--keep", action="store_true", help="keep a database this run seeds")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the database when it holds this seeding (the default too), and keep a fresh one")
    parser.add_argument("--fresh", action="store_true", help="seed afresh even when the database could be reused")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; the scenarios are {', '.join(SCENARIOS)}")
    if DATABASE in {"postgres", "template0", "template1", "test"} or not DATABASE.startswith("rdn_bench"):
        raise SystemExit(f"refusing to use the database {DATABASE!r}: name one starting rdn_bench")
    admin_url = os.environ.get("RDN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = database_url(admin_url)
    set_settings(load_settings(environ=environ(url)))
    modules.load_job_handlers()

    why = "asked to seed afresh" if args.fresh else reusable(admin_url, url, args.cases)
    created = why is not None
    keep = args.keep or args.reuse or not created
    if why is None:
        console.print(f"Reusing {DATABASE} ({args.cases:,} cases).")
    else:
        console.print(f"Seeding {DATABASE} afresh through bench/cases.py ({why}); this takes several minutes.")
        admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)', f'CREATE DATABASE "{DATABASE}"')
        migrate.upgrade(url)
        t0 = time.perf_counter()
        seed(url, args.cases, args.file_people)
        console.print(f"The cases benchmark's seeding took {time.perf_counter() - t0:.0f} s.")
    meta = picture_meta(url)
    seeding: PictureSeeding | None = None
    if meta.get("picture") == PICTURE_VERSION:
        console.print("The picture's seeding is there (stage histories and the rest, made in "
                      f"{meta.get('picture_seconds')} s).")
    else:
        console.print("Adding what the picture needs: stage histories, quotas, needs, crises, pledges, obstacles.")
        seeding = seed_picture(url, args.blocked)
        console.print(f"Added {seeding.events:,} stage events (mended the dates of {seeding.mended:,} cases), "
                      f"{seeding.quotas} quotas, {seeding.needs} projected needs, {seeding.crises} crises with "
                      f"{seeding.pledges} pledges, {seeding.obstacles} obstacles with {seeding.blocks:,} open blocks "
                      f"({seeding.released:,} released) in {seeding.seconds:.0f} s, VACUUM ANALYZE included.")
    volume = volumes(url)

    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, tuple[list[Sample], dict[str, float]]] = {}
    all_errors: list[str] = []
    try:
        engine = db.make_engine(url)
        with Session(engine) as session:
            member_org = session.scalars(select(Organization).where(Organization.short_name == args.member)).one()
            member_id, member_name = member_org.id, member_org.name
        engine.dispose()
        console.print(f"Timing the snapshot computation ({args.repeats} runs of each view, then the worker's round).")
        timings, round_seconds, round_views = time_refresh(url, member_id, f"{member_name}'s view", args.repeats)
        before = snapshot_times(url)
        load = [os.getloadavg()[0], 0.0]
        procs, ports = start_servers(url, args.servers)
        clients = make_clients(url, args.clients, ports, args.member)
        pids = [p.pid for p in procs]
        for scenario in scenarios:
            label = f"{scenario} ({SCENARIOS[scenario][1]})"
            if not console.is_terminal:
                console.print(f"Running {label}: {args.warmup:.0f} s of warm-up, then {args.seconds:.0f} s.")
            if args.warmup > 0:
                run_scenario(clients, scenario, args.member, args.warmup, pids, f"{label}, warm-up")
            samples, errors, usage = run_scenario(clients, scenario, args.member, args.seconds, pids, label)
            results[scenario] = (samples, usage)
            all_errors += errors
        after = snapshot_times(url)
        load[1] = os.getloadavg()[0]
    finally:
        stop_servers(procs)
        db.engine().dispose()
        set_settings(None)
        settings_seen = server_settings(url)
        if not keep:
            admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')

    # The report ------------------------------------------------------------------------------------------------
    vtable = Table(title=f"Data volumes in {DATABASE}")
    for name in volume:
        vtable.add_column(name, justify="right")
    vtable.add_row(*(f"{v:,}" for v in volume.values()))
    console.print(vtable)

    rtable = Table(title=f"Snapshot computation (rdn.reports.service.refresh, current year): the worker's job every "
                         f"few minutes, not per request; {args.repeats} runs each")
    for column in ("view", "min s", "median s", "max s", "snapshot JSON"):
        rtable.add_column(column, justify="left" if column == "view" else "right")
    for t in timings:
        rtable.add_row(t.label, f"{min(t.seconds):.2f}", f"{statistics.median(t.seconds):.2f}",
                       f"{max(t.seconds):.2f}", f"{t.size / 1024:.0f} KB")
    rtable.add_row(f"the worker's round: {round_views} views (network and each government's), once each",
                   f"{round_seconds:.2f}", "", "", "")
    console.print(rtable)

    table = Table(title=f"The network picture on PostgreSQL: {volume['cases']:,} cases, {volume['people']:,} people, "
                        f"{volume['referrals']:,} referrals, {volume['stage events']:,} stage events; "
                        f"{args.clients} clients, {args.servers} rdn serve process(es), {args.seconds:.0f} s per "
                        f"scenario after {args.warmup:.0f} s of warm-up; {os.cpu_count()} CPUs")
    for column in ("scenario", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "KB/response", "goal",
                   "errors"):
        table.add_column(column, justify="left" if column in ("scenario", "goal") else "right")
    verdicts = []
    for scenario, (samples, _usage) in results.items():
        path, _what, goal = SCENARIOS[scenario]
        ok = [s for s in samples if s.ok]
        failed = len(samples) - len(ok)
        name = f"{scenario} GET {path.format(member=args.member)}"
        if not ok:
            table.add_row(name, "0", "-", "-", "-", "-", "-", "-", "[red]FAIL[/] (no answer)" if goal else "",
                          str(failed))
            verdicts.append(False)
            continue
        ms = [s.ms for s in ok]
        p95 = percentile(ms, 95)
        verdict = ""
        if goal is not None:
            passed = p95 < goal and not failed
            verdicts.append(passed)
            verdict = f"p95 < {goal:.0f} ms " + ("[green]PASS[/]" if passed else "[red]FAIL[/]")
        table.add_row(name, f"{len(samples):,}", f"{len(ok) / args.seconds:.1f}", f"{percentile(ms, 50):.0f}",
                      f"{p95:.0f}", f"{percentile(ms, 99):.0f}", f"{max(ms):.0f}",
                      f"{statistics.mean(s.size for s in ok) / 1024:.0f}", verdict, str(failed))
    console.print(table)
    for scenario, (_samples, usage) in results.items():
        console.print(f"CPU during {scenario}: machine {usage['machine']:.0f}% of {os.cpu_count()} cores; rdn serve "
                      f"{usage['server']:.0f}%, PostgreSQL {usage['postgres']:.0f}%, the bench's clients "
                      f"{usage['bench']:.0f}%, everything else (other work on the machine) {usage['others']:.0f}% "
                      "(100% = one core)")
    recomputed = [scope for scope, at in after.items() if before.get(scope) != at]
    if recomputed:
        console.print(f"The snapshots {', '.join(recomputed)} were recomputed during the load (they had aged): the "
                      "figures above include computations.", style="yellow")
    console.print(f"Load average (1 min) before the load {load[0]:.1f}, after {load[1]:.1f}, on {os.cpu_count()} "
                  "CPUs: the clients run on the same machine as the servers and PostgreSQL.")
    console.print("PostgreSQL settings: " + ", ".join(f"{k} {v}" for k, v in settings_seen.items()))
    if all_errors:
        console.print(f"{len(all_errors)} errors, the first: " + "; ".join(all_errors[:3]), style="red")
    if verdicts:
        console.print("The dashboard's goal (p95 under 300 ms): "
                      + ("[green]PASS[/]" if all(verdicts) else "[red]FAIL[/]"))
    if keep:
        console.print(f"Kept the database {DATABASE}: the next run reuses it.")


if __name__ == "__main__":
    main()
