"""The durable outbox: jobs enqueued in the caller's transaction, run after commit by workers.

Life of a job::

    pending --claim--> running --handler ok--> done
       ^                  |  \\--transient error--> pending (run_at = now + backoff)
       |                  |   \\--permanent error or attempts used up--> dead --admin retry--> pending
       \\--lease expired---/  (a worker died: another worker takes the job over)

* ``enqueue`` adds a row in the caller's transaction: if the caller rolls back, nothing is sent.
* Claiming is safe with any number of workers: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite an
  ``UPDATE ... WHERE status = 'pending'`` compare-and-set under the database write lock.
* A claim takes a *lease* with a fencing token. Completion is written only if the token still matches, so
  a worker that overran its lease cannot mark a job another worker has taken over.
* A handler's database work and the job's completion commit together. Handlers that talk to the outside
  world must be idempotent (a stable Message-ID, a stable webhook-id): the worker can die after the outside
  world accepted a message and before the completion committed, and then the job runs again.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn import db
from rdn.config import get_settings
from rdn.core import clock
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id

log = logging.getLogger("rdn.worker")
NOTIFY_CHANNEL = "rdn_jobs"


class JobStatus(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    dead = "dead"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "priority", "run_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(60), index=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "job_status"), default=JobStatus.pending)
    priority: Mapped[int] = mapped_column(default=100)  # lower runs first
    run_at: Mapped[datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=10)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]


class PermanentError(Exception):
    """The job can never succeed as it is (a refused recipient, a 4xx): it goes to the dead letters."""


class TransientError(Exception):
    """Try again later (a timeout, a 5xx, a busy server)."""


class LeaseLost(Exception):
    """Another worker took the job over; this run's work is rolled back."""


@dataclass
class JobContext:
    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    _session: Session | None = field(default=None, repr=False)
    _on_failure: list[Callable[[Session], None]] = field(default_factory=list, repr=False)
    #: Set by a handler whose own writes are only a record of what it did outside (delivery attempts):
    #: losing them in a crash just runs the job again, so the commit need not wait for the disk.
    relaxed: bool = False

    def on_failure(self, callback: Callable[[Session], None]) -> None:
        """Run ``callback(session)`` in the transaction that records this run's failure (the handler's own
        session is rolled back then): what must be written precisely because the job failed."""
        self._on_failure.append(callback)

    @property
    def session(self) -> Session:
        """A session whose work commits together with the job's completion."""
        if self._session is None:
            self._session = db.new_session()
        return self._session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short session for reads before talking to the outside world (holds no lock meanwhile)."""
        with db.read_only() as session:
            yield session


Handler = Callable[[JobContext], None]


@dataclass(frozen=True)
class _Kind:
    handler: Handler
    max_attempts: int | None
    priority: int


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta


_kinds: dict[str, _Kind] = {}
_periodic: dict[str, Periodic] = {}


def handler(kind: str, *, max_attempts: int | None = None, priority: int = 100) -> Callable[[Handler], Handler]:
    """Register the handler for a job kind."""

    def decorate(fn: Handler) -> Handler:
        _kinds[kind] = _Kind(fn, max_attempts, priority)
        return fn

    return decorate


def periodic(name: str, every: timedelta) -> Callable[[Handler], Handler]:
    """Register a job the workers enqueue once per ``every`` (whatever the number of workers)."""

    def decorate(fn: Handler) -> Handler:
        _periodic[name] = Periodic(name, every)
        handler(f"periodic:{name}", max_attempts=3)(fn)
        return fn

    return decorate


def registered_kinds() -> list[str]:
    return sorted(_kinds)


# Waking workers ----------------------------------------------------------------------------------------------

_wake = threading.Event()


def _notify_after_commit(session: Session) -> None:
    """Wake workers once this transaction commits (once per transaction, savepoints considered)."""
    notified = session.info.get("rdn_jobs_notified")
    if notified is not None and db.in_open_chain(session, notified):
        return
    session.info["rdn_jobs_notified"] = db.current_transaction(session)
    if db.dialect_name(session) == "postgresql":
        # Delivered by PostgreSQL at commit (and discarded on rollback), to every listening worker.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    db.after_commit(session, _wake.set)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int | None = None,
    priority: int | None = None,
    org_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
) -> Job:
    """Add a job in the caller's transaction. With ``dedupe_key``, enqueuing twice returns the first job."""
    registered = _kinds.get(kind)
    if registered is None:
        raise ValueError(f"no handler for job kind {kind!r}")
    if dedupe_key is not None:
        existing = session.scalars(select(Job).where(Job.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    now = clock.now()
    job = Job(
        id=job_id or new_id(), kind=kind, payload=payload, status=JobStatus.pending,
        run_at=run_at or now, attempts=0,
        max_attempts=max_attempts or registered.max_attempts or get_settings().job_max_attempts,
        priority=registered.priority if priority is None else priority,
        dedupe_key=dedupe_key, org_id=org_id, created_at=now, updated_at=now,
    )
    if dedupe_key is None:
        session.add(job)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(job)
        except IntegrityError:
            # Another transaction enqueued it first.
            return session.scalars(select(Job).where(Job.dedupe_key == dedupe_key)).one()
    _notify_after_commit(session)
    return job


def retry(session: Session, job: Job) -> None:
    """Send a dead (or failed) job round again, now."""
    job.status = JobStatus.pending
    job.attempts = 0
    job.run_at = clock.now()
    job.lease_token = None
    job.lease_until = None
    job.updated_at = clock.now()
    _notify_after_commit(session)


def backoff(attempt: int) -> timedelta:
    settings = get_settings()
    base = min(settings.job_backoff_max_seconds, settings.job_backoff_base_seconds * 2 ** max(0, attempt - 1))
    return timedelta(seconds=base * (0.75 + random.random() / 2))


# Claiming and running ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: str


def claim(session: Session, *, limit: int, lease: timedelta) -> list[Claimed]:
    """Take up to ``limit`` due jobs (or jobs whose lease expired); the caller commits."""
    now = clock.now()
    due = or_(
        and_(Job.status == JobStatus.pending, Job.run_at <= now),
        and_(Job.status == JobStatus.running, Job.lease_until < now),
    )
    candidates = select(Job.id).where(due).order_by(Job.priority, Job.run_at).limit(limit)
    if db.dialect_name(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    token = secrets.token_hex(16)
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(candidates.scalar_subquery()), due)
        .values(status=JobStatus.running, lease_token=token, lease_until=now + lease,
                attempts=Job.attempts + 1, updated_at=now)
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.priority, Job.run_at)
        .execution_options(synchronize_session=False)
    ).all()
    rows = sorted(rows, key=lambda r: (r.priority, r.run_at))
    return [Claimed(r.id, r.kind, r.payload, r.attempts, r.max_attempts, token) for r in rows]


def release(jobs: list[Claimed]) -> None:
    """Hand claimed jobs back unrun (their attempt is not counted)."""
    if not jobs:
        return
    with db.transaction() as session:
        for job in jobs:
            session.execute(
                update(Job).where(Job.id == job.id, Job.lease_token == job.lease_token,
                                  Job.status == JobStatus.running)
                .values(status=JobStatus.pending, lease_token=None, lease_until=None,
                        attempts=Job.attempts - 1, updated_at=clock.now())
                .execution_options(synchronize_session=False)
            )


def _finish(session: Session, job: Claimed, **values: Any) -> None:
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_token == job.lease_token, Job.status == JobStatus.running)
        .values(lease_token=None, lease_until=None, updated_at=clock.now(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"job {job.id} was taken over by another worker")


def run_claimed(job: Claimed) -> JobStatus | None:
    """Run one claimed job to its next state. Returns the state written (None if the lease was lost)."""
    registered = _kinds.get(job.kind)
    ctx = JobContext(job.id, job.kind, job.payload, job.attempts, job.max_attempts)
    error: str | None = None
    permanent = False
    try:
        if registered is None:
            raise PermanentError(f"no handler registered for job kind {job.kind!r}")
        if job.attempts > job.max_attempts:
            raise PermanentError(f"gave up after {job.max_attempts} attempts (a worker may have crashed)")
        registered.handler(ctx)
        touched_database = ctx._session is not None
        session = ctx.session
        if (ctx.relaxed or not touched_database) and db.dialect_name(session) == "postgresql":
            # Only the "done" mark is at stake: if a crash loses it, the job runs again and the outside
            # world sees the identical message again (idempotent handlers). No need to wait for the fsync.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        _finish(session, job, status=JobStatus.done, finished_at=clock.now(), last_error=None)
        session.commit()
        return JobStatus.done
    except LeaseLost:
        log.warning("job %s: lease lost, work rolled back", job.id)
        return None
    except PermanentError as exc:
        error, permanent = f"permanent: {exc}", True
    except TransientError as exc:
        error = f"transient: {exc}"
    except Exception as exc:
        error = "unexpected: " + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.exception("job %s (%s) failed", job.id, job.kind)
    finally:
        if ctx._session is not None:
            ctx._session.rollback()
            ctx._session.close()
    # Failure: record it in a transaction of its own.
    dead = permanent or job.attempts >= job.max_attempts
    status = JobStatus.dead if dead else JobStatus.pending
    try:
        with db.transaction() as session:
            values: dict[str, Any] = {"status": status, "last_error": (error or "")[:4000]}
            if dead:
                values["finished_at"] = clock.now()
            else:
                values["run_at"] = clock.now() + backoff(job.attempts)
            _finish(session, job, **values)
            for callback in ctx._on_failure:
                callback(session)
            if dead:
                from rdn.core import events  # events imports this module for its periodic job

                events.publish(session, "ops", "job.dead", {"id": str(job.id), "kind": job.kind})
    except LeaseLost:
        return None
    if dead:
        log.error("job %s (%s) is dead: %s", job.id, job.kind, error)
    return status


# The worker --------------------------------------------------------------------------------------------------


class Worker:
    """Claims and runs due jobs until stopped. Any number may run, in any number of processes."""

    def __init__(self, *, name: str | None = None, batch: int | None = None, poll: float | None = None,
                 lease: float | None = None) -> None:
        settings = get_settings()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch or settings.worker_batch
        self.poll = poll or settings.worker_poll_seconds
        self.lease = timedelta(seconds=lease or settings.worker_lease_seconds)
        self.stop_event = threading.Event()
        self._last_schedule = 0.0
        self._listener: Any = None

    def stop(self) -> None:
        self.stop_event.set()
        _wake.set()

    def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs were run.

        The batch shares one lease: a job is started only while most of the lease remains, and jobs left
        unstarted (the lease running low, or a stop) are handed back at once rather than left to expire.
        """
        started = time.monotonic()
        with db.transaction() as session:
            claimed = claim(session, limit=self.batch, lease=self.lease)
        for index, job in enumerate(claimed):
            if self.stop_event.is_set() or time.monotonic() - started > self.lease.total_seconds() * 0.5:
                release(claimed[index:])
                return index
            run_claimed(job)
        return len(claimed)

    def run_until_idle(self, *, max_seconds: float = 60.0, periodic: bool = False) -> int:
        """Run due jobs until none is due (tests, benchmarks, ``rdn worker --drain``); periodic tasks are
        scheduled only if asked (draining is about the work already queued)."""
        deadline = time.monotonic() + max_seconds
        total = 0
        while time.monotonic() < deadline:
            if periodic:
                self.schedule_periodic()
            done = self.run_once()
            total += done
            if done == 0:
                break
        return total

    def schedule_periodic(self, force: bool = False) -> None:
        if not _periodic or (not force and time.monotonic() - self._last_schedule < 5):
            return
        self._last_schedule = time.monotonic()
        now = clock.now()
        with db.transaction() as session:
            for p in _periodic.values():
                slot = int(now.timestamp() // p.every.total_seconds())
                enqueue(session, f"periodic:{p.name}", {"slot": slot}, dedupe_key=f"periodic:{p.name}:{slot}")

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        self._open_listener()
        try:
            while not self.stop_event.is_set():
                try:
                    self.schedule_periodic()
                    if self.run_once() == 0:
                        self._wait()
                except Exception:
                    log.exception("worker loop error; retrying shortly")
                    self.stop_event.wait(min(5.0, self.poll * 5))
        finally:
            self._close_listener()
            log.info("worker %s stopped", self.name)

    # Waiting for work: the in-process wake event, and LISTEN on PostgreSQL.
    def _open_listener(self) -> None:
        url = get_settings().database_url
        if not url.startswith("postgres"):
            return
        try:
            import psycopg

            self._listener = psycopg.connect(_libpq_url(url), autocommit=True)
            self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception:
            log.exception("cannot LISTEN for jobs; falling back to polling")
            self._listener = None

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _wait(self) -> None:
        if self._listener is not None:
            try:
                for _ in self._listener.notifies(timeout=self.poll, stop_after=1):
                    break
            except Exception:
                log.exception("LISTEN connection lost; reconnecting")
                self._close_listener()
                self._open_listener()
            return
        _wake.wait(self.poll)
        _wake.clear()


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def start_inprocess_worker() -> Worker:
    """The worker thread ``rdn serve`` runs next to the web server (the single-command set-up)."""
    worker = Worker(name=f"{socket.gethostname()}:{os.getpid()}:inprocess")
    thread = threading.Thread(target=worker.run_forever, name="rdn-worker", daemon=True)
    thread.start()
    worker._thread = thread  # type: ignore[attr-defined]
    return worker


def install_signal_handlers(worker: Worker) -> None:
    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: finishing the current job, then stopping", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


# Housekeeping ------------------------------------------------------------------------------------------------


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    result = {s.value: 0 for s in JobStatus}
    result.update({str(JobStatus(status).value): n for status, n in rows})
    return result


@periodic("prune-done-jobs", timedelta(hours=1))
def _prune_done_jobs(ctx: JobContext) -> None:
    cutoff = clock.now() - timedelta(days=7)
    ctx.session.execute(
        Job.__table__.delete().where(Job.status == JobStatus.done, Job.finished_at < cutoff)
    )
