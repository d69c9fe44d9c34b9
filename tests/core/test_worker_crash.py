"""A worker killed with SIGKILL again and again, mid-delivery, still delivers every email exactly once.

The worker runs as a real process (``rdn worker``) against a real database, sending to a real SMTP server
(aiosmtpd) that takes a little time per message, so that kills land while messages are on the wire.

What "exactly once" means over SMTP: a worker can die after the server accepted a message and before the
worker recorded it, and then the message is sent again. It is then the *same* message: the same
Message-ID, fixed when the email was enqueued, byte for byte the same content. Mail stores and clients
file a message once per Message-ID; the test's mail store does the same, and checks that each email is in
it exactly once, that none is lost, that every repeat is an identical copy, and that repeats are bounded
by the number of kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn import db
from rdn.core.mail import send_email
from rdn.core.outbox import Job, JobStatus
from tests.conftest import free_port, fresh_database_url, subprocess_env

pytestmark = pytest.mark.slow
RDN = str(Path(sys.executable).with_name("rdn"))
EMAILS = 80
KILLS = 8


class MailStore:
    """A mailbox that files each message once per Message-ID, and counts every SMTP acceptance."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[str, bytes] = {}
        self.accepted = 0
        self.copies_differing: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message_id = message_from_bytes(raw)["Message-ID"]
        time.sleep(0.04)  # a store that takes its time (fsync): widens the window in which kills land
        with self.lock:
            self.accepted += 1
            if message_id in self.by_id and self.by_id[message_id] != raw:
                self.copies_differing.append(message_id)
            self.by_id.setdefault(message_id, raw)
        return "250 OK: queued"


@pytest.fixture
def database(tmp_path):
    yield from fresh_database_url(tmp_path)


def _enqueue(url: str) -> set[str]:
    engine = db.make_engine(url)
    ids = set()
    with Session(engine) as session:
        for i in range(EMAILS):
            job = send_email(session, to=f"official{i}@gov.example", subject=f"Crisis page {i}",
                             text=f"Please acknowledge page {i}.\n" + "x" * 2000)
            ids.add(job.payload["message_id"])
        session.commit()
    engine.dispose()
    return ids


def _status_counts(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    with Session(engine) as session:
        rows = session.execute(select(Job.status, func.count()).where(Job.kind == "email")
                               .group_by(Job.status)).all()
    engine.dispose()
    return {JobStatus(s).value: n for s, n in rows}


def test_sigkilled_workers_deliver_every_email_exactly_once(database, tmp_path):
    store = MailStore()
    port = free_port()
    controller = Controller(store, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        expected = _enqueue(database)
        env = subprocess_env(database, port, RDN_WORKER_LEASE_SECONDS="1",
                                           RDN_WORKER_BATCH="5", RDN_WORKER_POLL_SECONDS="0.1")
        rng = random.Random(20261128)
        kills_mid_run = 0
        for _ in range(KILLS):
            worker = subprocess.Popen([RDN, "worker"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            # Kill while deliveries are under way, however long start-up takes: once this worker has
            # delivered a few messages, a few milliseconds later (often in the middle of the next one).
            target = store.accepted + rng.randint(2, 6)
            deadline = time.monotonic() + 60
            while store.accepted < target and time.monotonic() < deadline and worker.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
            before = store.accepted
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            if 0 < before < EMAILS:
                kills_mid_run += 1
        # A last worker runs to the end.
        worker = subprocess.Popen([RDN, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _status_counts(database).get("done", 0) < EMAILS:
            time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        controller.stop()

    counts = _status_counts(database)
    assert counts == {"done": EMAILS}, counts
    assert kills_mid_run == KILLS, "every kill lands while deliveries are under way"
    assert set(store.by_id) == expected, "every email is in the mail store, and nothing else"
    assert len(store.by_id) == EMAILS
    assert store.copies_differing == [], "a repeated delivery is always the identical message"
    repeats = store.accepted - EMAILS
    assert 0 <= repeats <= KILLS, f"{repeats} repeats for {KILLS} kills"
    print(f"{KILLS} kills ({kills_mid_run} mid-run), {EMAILS} emails filed once each, {repeats} identical repeats")
