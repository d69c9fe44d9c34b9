"""Paging survives workers killed with SIGKILL at random points: every page is sent exactly once, no level is
paged twice, and every run ends the way its government answered (or did not).

Real ``rdn worker`` processes against a real database and a real SMTP server. Time is moved forward by
making the next steps due in the database (the waits are minutes; the test cannot sit through them).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rdn import db
from rdn.core import clock, identity
from rdn.core.audit import AuditEntry
from rdn.core.outbox import Job, JobStatus
from rdn.core.tenancy import OrgKind, Role
from rdn.redphone import chains, escalation, service
from rdn.redphone.models import ContactKind, ContactMethod, DeliveryAttempt, EscalationRun, Page, RunStatus
from tests.conftest import RDN, free_port, fresh_database_url, subprocess_env
from tests.factories import ACTOR, make_org, make_person

pytestmark = pytest.mark.slow
GOVERNMENTS = 5
PEOPLE_PER_LEVEL = 2
LEVELS = 2
ANSWERING = {0: (0, 0), 1: (1, 1)}  # government index -> (level, person) that acknowledges; others never do


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[str, bytes] = {}
        self.accepted = 0
        self.differing = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message_id = message_from_bytes(raw)["Message-ID"]
        time.sleep(0.02)
        with self.lock:
            self.accepted += 1
            if message_id in self.by_id and self.by_id[message_id] != raw:
                self.differing += 1
            self.by_id.setdefault(message_id, raw)
        return "250 OK"


@pytest.fixture
def database(tmp_path):
    yield from fresh_database_url(tmp_path)


def _world(url: str) -> tuple[uuid.UUID, list[list[list[uuid.UUID]]]]:
    """Governments with two-level chains of reachable people, a secretariat, and a declared crisis."""
    engine = db.make_engine(url)
    people: list[list[list[uuid.UUID]]] = []
    with Session(engine) as session:
        secretariat = make_org(session, "secretariat", "Secretariat", OrgKind.secretariat, None)
        make_person(session, "lead@secretariat.test", secretariat, [Role.admin, Role.senior_official])
        declarer = None
        for g in range(GOVERNMENTS):
            org = make_org(session, f"gov{g}", f"Government {g}", OrgKind.government, "CA")
            levels = []
            for level in range(LEVELS):
                row = []
                for p in range(PEOPLE_PER_LEVEL):
                    role = Role.senior_official if level == 0 else Role.officer
                    user, _ = make_person(session, f"g{g}l{level}p{p}@gov.test", org, [role])
                    method = ContactMethod(id=uuid.uuid4(), user_id=user.id, kind=ContactKind.email,
                                           hint="x", verified_at=clock.now(), active=True)
                    from rdn.core.crypto import Keyring

                    method.seal("address", user.email, keyring=Keyring.of(session))
                    session.add(method)
                    row.append(user.id)
                    declarer = declarer or user
                levels.append(row)
            chains.set_chain(session, actor=ACTOR, org=org, repeat_count=0,
                             levels=[chains.LevelSpec(f"Level {i}", 1, ids) for i, ids in enumerate(levels)])
            people.append(levels)
        session.flush()
        assert declarer is not None
        principal = identity.principal_for(session, declarer, org_id=None, via="session")
        crisis = service.declare(session, actor=principal, title="Crash test crisis")
        session.commit()
        crisis_id = crisis.id
    engine.dispose()
    return crisis_id, people


def _advance(url: str) -> None:
    """Time passes: every live run's wait is over, and its scheduled step is due now."""
    engine = db.make_engine(url)
    past = clock.now().replace(microsecond=0) - __import__("datetime").timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(update(EscalationRun).where(EscalationRun.status == RunStatus.active)
                     .values(next_step_at=past))
        conn.execute(update(Job).where(Job.kind == "redphone.step", Job.status == JobStatus.pending)
                     .values(run_at=past))
    engine.dispose()


def _acknowledge(url: str, crisis_id: uuid.UUID, people: list[list[list[uuid.UUID]]], g: int) -> bool:
    """The answering person of government ``g`` acknowledges, if paging has reached them."""
    level, person = ANSWERING[g]
    user_id = people[g][level][person]
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            page = session.scalars(select(Page).where(Page.crisis_id == crisis_id, Page.user_id == user_id)).first()
            if page is None:
                return False
            run = session.get(EscalationRun, page.run_id)
            user = session.get(identity.User, user_id)
            escalation.acknowledge(session, run=run, user=user, via="app", actor=ACTOR, page=page)
            session.commit()
            return True
    finally:
        engine.dispose()


def test_killed_workers_page_everyone_once_and_escalate_nothing_twice(database):
    store = Store()
    port = free_port()
    controller = Controller(store, hostname="127.0.0.1", port=port)
    controller.start()
    rng = random.Random(1128)
    env = subprocess_env(database, port, RDN_WORKER_LEASE_SECONDS="1", RDN_WORKER_BATCH="4",
                         RDN_WORKER_POLL_SECONDS="0.1")
    try:
        crisis_id, people = _world(database)
        acked: set[int] = set()
        kills = 0
        for round_no in range(10):
            worker = subprocess.Popen([RDN, "worker"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            target = store.accepted + rng.randint(1, 4)
            deadline = time.monotonic() + 30
            while store.accepted < target and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.08))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            kills += 1
            for g in ANSWERING:
                if g not in acked and round_no >= 2 * ANSWERING[g][0] + 1 and _acknowledge(database, crisis_id,
                                                                                           people, g):
                    acked.add(g)
            _advance(database)
        # Then the system runs undisturbed until every run has ended.
        worker = subprocess.Popen([RDN, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = db.make_engine(database)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Session(engine) as session:
                live = session.scalars(select(EscalationRun).where(EscalationRun.status == RunStatus.active)).all()
                pending = session.scalars(select(Job).where(Job.status.in_([JobStatus.pending, JobStatus.running]),
                                                            Job.kind.in_(["redphone.deliver", "email"]))).all()
            if not live and not pending:
                break
            for g in ANSWERING:
                if g not in acked and _acknowledge(database, crisis_id, people, g):
                    acked.add(g)
            _advance(database)
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        controller.stop()

    with Session(engine) as session:
        runs = {r.org_id: r for r in session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == crisis_id))}
        pages = session.scalars(select(Page).where(Page.crisis_id == crisis_id)).all()
        dead = session.scalars(select(Job).where(Job.status == JobStatus.dead)).all()
        jobs = session.scalars(select(Job)).all()
        deliveries = [j for j in jobs if j.kind == "redphone.deliver"]
        attempts = session.scalars(select(DeliveryAttempt)).all()
        exhausted = Counter(session.scalars(select(AuditEntry.object_id)
                                            .where(AuditEntry.action == "paging.exhausted")))
    engine.dispose()

    assert kills == 10
    assert len(runs) == GOVERNMENTS
    # A periodic slot killed on each of its attempts gives up; the next slot does its work, so only a slot
    # with no later slot done would be a loss.
    done_slots = Counter()
    for job in jobs:
        if job.kind.startswith("periodic:") and job.status == JobStatus.done:
            done_slots[job.kind] = max(done_slots[job.kind], job.payload["slot"])
    lost = [j for j in dead if not (j.kind.startswith("periodic:") and done_slots[j.kind] > j.payload["slot"])]
    assert not lost, [(j.kind, j.last_error) for j in lost]
    # Nothing escalated twice: each (run, cycle, level, person) paged at most once, levels in order.
    keys = Counter((p.run_id, p.cycle, p.level, p.user_id) for p in pages)
    assert max(keys.values()) == 1
    statuses = Counter(RunStatus(r.status) for r in runs.values())
    assert statuses == {RunStatus.acknowledged: len(ANSWERING), RunStatus.exhausted: GOVERNMENTS - len(ANSWERING)}
    for run in runs.values():
        levels_paged = sorted({p.level for p in pages if p.run_id == run.id})
        if RunStatus(run.status) == RunStatus.exhausted:
            assert levels_paged == list(range(LEVELS)), "an unanswered chain is paged level after level"
        else:
            assert levels_paged == list(range(run.level + 1)), "paging stops at the level that answered"
    # Every page still due when its turn came was sent exactly once (one verified email each, so one
    # Message-ID per page); a page whose government had already answered is skipped, never sent late.
    skipped = {a.page_id for a in attempts if a.outcome == "skipped"}
    by_id = {p.id: p for p in pages}
    assert all(RunStatus(runs[by_id[pid].org_id].status) == RunStatus.acknowledged for pid in skipped)
    page_ids = {f"page-{p.id.hex}" for p in pages if p.id not in skipped}
    sent = {mid.split("@")[0].strip("<")[: len("page-") + 32] for mid in store.by_id if "page-" in mid}
    assert page_ids <= sent
    # A skipped page can still have reached the mail server once: a worker handed it over while it was due
    # and was killed before recording that; the retry then found the government had answered meanwhile. Only a
    # delivery that was retried can do that.
    tries = {f"page-{uuid.UUID(j.payload['page_id']).hex}": j.attempts for j in deliveries}
    assert all(tries[mid] > 1 for mid in sent - page_ids), {mid: tries[mid] for mid in sent - page_ids}
    assert store.differing == 0, "a repeated delivery is always the identical message"
    # Each run is exhausted at most once (a late answer can still acknowledge it afterwards), and the
    # secretariat is alerted exactly once per exhaustion (its lead has one address).
    assert exhausted and max(exhausted.values()) == 1
    assert len(exhausted) >= GOVERNMENTS - len(ANSWERING)
    alerts = [raw for mid, raw in store.by_id.items() if b"has not answered" in raw]
    assert len(alerts) == len(exhausted)
