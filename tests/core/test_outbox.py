"""The durable outbox: enqueue in the caller's transaction, run after commit, retries, leases, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rdn import db
from rdn.core import clock, outbox
from rdn.core.events import EventLog
from rdn.core.outbox import Job, JobStatus

# Tomorrow at a fixed time of day: after the real time the test network's own rows carry (a fixed date
# would fall behind it once that day had passed).
T0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
KIND = "test.bravo.scripted"

# What the handler did, and what it should do next, per tag.
CALLS: list[tuple[str, int]] = []
SCRIPT: dict[str, list[str]] = {}


@outbox.handler(KIND)
def _scripted(ctx: outbox.JobContext) -> None:
    tag = ctx.payload["tag"]
    CALLS.append((tag, ctx.attempt))
    if ctx.payload.get("write"):
        ctx.session.add(EventLog(channel=f"test:bravo:{tag}", type="written", data={"attempt": ctx.attempt},
                                 created_at=clock.now()))
        ctx.session.flush()
    steps = SCRIPT.get(tag) or []
    step = steps.pop(0) if steps else "ok"
    if step == "transient":
        raise outbox.TransientError(f"{tag} busy")
    if step == "permanent":
        raise outbox.PermanentError(f"{tag} refused")
    if step == "crash":
        raise RuntimeError(f"{tag} crashed")


@pytest.fixture(autouse=True)
def _reset_script():
    CALLS.clear()
    SCRIPT.clear()
    yield
    CALLS.clear()
    SCRIPT.clear()


def calls_of(tag: str) -> list[int]:
    return [attempt for t, attempt in CALLS if t == tag]


def fresh(session, job_id) -> Job:  # type: ignore[no-untyped-def]
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def written(session, tag: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(EventLog).where(EventLog.channel == f"test:bravo:{tag}"))


def drain() -> None:
    """Run due jobs without scheduling the periodic ones (keeps counts exact)."""
    worker = outbox.Worker()
    while worker.run_once():
        pass


# Transactions --------------------------------------------------------------------------------------------


def test_rolled_back_enqueue_never_runs_and_committed_one_does(session):
    other = db.new_session()
    lost = outbox.enqueue(other, KIND, {"tag": "lost"})
    lost_id = lost.id
    other.rollback()
    other.close()

    kept = outbox.enqueue(session, KIND, {"tag": "kept"})
    session.commit()
    assert calls_of("kept") == []  # enqueuing only records the job

    outbox.Worker().run_until_idle()

    assert calls_of("kept") == [1]
    assert calls_of("lost") == []
    assert session.get(Job, lost_id) is None
    job = fresh(session, kept.id)
    assert job.status == JobStatus.done
    assert job.attempts == 1
    assert job.finished_at is not None
    assert job.lease_token is None


def test_handler_writes_commit_with_completion(session):
    job = outbox.enqueue(session, KIND, {"tag": "writer", "write": True})
    session.commit()
    drain()
    assert fresh(session, job.id).status == JobStatus.done
    assert written(session, "writer") == 1


@pytest.mark.parametrize("failure", ["permanent", "crash", "transient"])
def test_handler_writes_are_rolled_back_when_it_fails(session, failure):
    SCRIPT["failing"] = [failure]
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "failing", "write": True})
        session.commit()
        drain()
    assert calls_of("failing") == [1]
    assert written(session, "failing") == 0
    row = fresh(session, job.id)
    # An unexpected exception is retried like a transient error; only a PermanentError is final.
    assert row.status == (JobStatus.dead if failure == "permanent" else JobStatus.pending)
    assert row.last_error
    assert row.last_error.startswith({"permanent": "permanent:", "crash": "unexpected:",
                                      "transient": "transient:"}[failure])


# Retries and dead letters -----------------------------------------------------------------------------------


def test_transient_error_backs_off_then_retries_then_dies(session):
    SCRIPT["flaky"] = ["transient", "transient", "transient"]
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "flaky"}, max_attempts=3)
        session.commit()

        drain()
        row = fresh(session, job.id)
        assert row.status == JobStatus.pending
        assert row.attempts == 1
        assert row.last_error == "transient: flaky busy"
        assert row.lease_token is None and row.lease_until is None
        # The first backoff is the base (10 s) with +/-25% jitter.
        assert T0 + timedelta(seconds=7) <= row.run_at <= T0 + timedelta(seconds=13)
        first_run_at = row.run_at

        drain()  # not due yet
        assert calls_of("flaky") == [1]

        clock.advance(first_run_at - clock.now() - timedelta(seconds=1))
        drain()  # one second early: still not due
        assert calls_of("flaky") == [1]

        clock.advance(timedelta(seconds=1))
        drain()
        assert calls_of("flaky") == [1, 2]
        row = fresh(session, job.id)
        assert row.status == JobStatus.pending
        assert row.attempts == 2
        # The second backoff doubles (20 s +/- 25%).
        assert clock.now() + timedelta(seconds=14) <= row.run_at <= clock.now() + timedelta(seconds=26)

        clock.advance(timedelta(seconds=30))
        drain()
        assert calls_of("flaky") == [1, 2, 3]
        row = fresh(session, job.id)
        assert row.status == JobStatus.dead
        assert row.attempts == 3
        assert row.finished_at == clock.now()
        assert row.last_error == "transient: flaky busy"

        clock.advance(timedelta(hours=2))
        drain()
        assert calls_of("flaky") == [1, 2, 3]  # dead jobs stay dead


def test_permanent_error_goes_straight_to_dead(session):
    SCRIPT["refused"] = ["permanent"]
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "refused"})
        session.commit()
        drain()
        row = fresh(session, job.id)
        assert row.status == JobStatus.dead
        assert row.attempts == 1
        assert row.max_attempts > 1
        assert row.last_error == "permanent: refused refused"
        clock.advance(timedelta(days=1))
        drain()
    assert calls_of("refused") == [1]


def test_retry_sends_a_dead_job_round_again(session):
    SCRIPT["again"] = ["permanent"]
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "again"})
        session.commit()
        drain()
        row = fresh(session, job.id)
        assert row.status == JobStatus.dead

        clock.advance(timedelta(minutes=5))
        outbox.retry(session, row)
        session.commit()
        row = fresh(session, job.id)
        assert row.status == JobStatus.pending
        assert row.attempts == 0
        assert row.run_at == clock.now()

        drain()
    assert calls_of("again") == [1, 1]
    row = fresh(session, job.id)
    assert row.status == JobStatus.done
    assert row.last_error is None


# Leases ------------------------------------------------------------------------------------------------------


def test_lease_fencing_refuses_the_completion_of_a_worker_that_overran(session):
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "slow", "write": True})
        session.commit()

        with db.transaction() as s:
            first = outbox.claim(s, limit=10, lease=timedelta(seconds=5))
        assert [c.id for c in first] == [job.id]

        with db.transaction() as s:  # the lease still holds: nobody else may take it
            assert outbox.claim(s, limit=10, lease=timedelta(seconds=60)) == []

        clock.advance(timedelta(seconds=6))
        with db.transaction() as s:
            second = outbox.claim(s, limit=10, lease=timedelta(seconds=60))
        assert [c.id for c in second] == [job.id]
        assert second[0].lease_token != first[0].lease_token
        assert second[0].attempts == 2

        # The first worker finally finishes: its completion (and its work) is refused.
        assert outbox.run_claimed(first[0]) is None
        assert calls_of("slow") == [1]
        row = fresh(session, job.id)
        assert row.status == JobStatus.running
        assert row.lease_token == second[0].lease_token
        assert row.finished_at is None
        assert written(session, "slow") == 0

        # The worker holding the lease completes it.
        assert outbox.run_claimed(second[0]) == JobStatus.done
        row = fresh(session, job.id)
        assert row.status == JobStatus.done
        assert row.lease_token is None
        assert written(session, "slow") == 1


def test_a_stale_claimant_cannot_record_a_failure_either(session):
    SCRIPT["stale"] = ["permanent"]
    with clock.frozen(T0):
        job = outbox.enqueue(session, KIND, {"tag": "stale"})
        session.commit()
        with db.transaction() as s:
            first = outbox.claim(s, limit=1, lease=timedelta(seconds=5))
        clock.advance(timedelta(seconds=10))
        with db.transaction() as s:
            second = outbox.claim(s, limit=1, lease=timedelta(seconds=60))
        assert outbox.run_claimed(first[0]) is None
        row = fresh(session, job.id)
        assert row.status == JobStatus.running
        assert row.last_error is None
        assert outbox.run_claimed(second[0]) == JobStatus.done


# Enqueuing ---------------------------------------------------------------------------------------------------


def test_dedupe_key_returns_the_first_job(session):
    first = outbox.enqueue(session, KIND, {"tag": "once", "n": 1}, dedupe_key="bravo:once")
    session.commit()
    second = outbox.enqueue(session, KIND, {"tag": "once", "n": 2}, dedupe_key="bravo:once")
    session.commit()
    assert second.id == first.id
    assert second.payload == {"tag": "once", "n": 1}
    assert session.scalar(select(func.count()).select_from(Job).where(Job.dedupe_key == "bravo:once")) == 1
    drain()
    assert calls_of("once") == [1]


def test_periodic_jobs_are_enqueued_once_per_slot_whatever_the_number_of_workers(session):
    kind = "periodic:prune-done-jobs"
    assert kind in outbox.registered_kinds()

    def enqueued() -> list[Job]:
        session.expire_all()
        return list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.created_at)))

    with clock.frozen(T0 + timedelta(minutes=10)):
        a, b = outbox.Worker(name="a"), outbox.Worker(name="b")
        a.schedule_periodic(force=True)
        b.schedule_periodic(force=True)
        a.schedule_periodic(force=True)
        jobs = enqueued()
        assert len(jobs) == 1
        slot = int(clock.now().timestamp() // 3600)
        assert jobs[0].payload == {"slot": slot}
        assert jobs[0].dedupe_key == f"periodic:prune-done-jobs:{slot}"

        clock.advance(timedelta(minutes=30))  # same hour: same slot
        b.schedule_periodic(force=True)
        assert len(enqueued()) == 1

        clock.advance(timedelta(hours=1))  # the next slot
        a.schedule_periodic(force=True)
        b.schedule_periodic(force=True)
        jobs = enqueued()
        assert len(jobs) == 2
        assert jobs[1].payload == {"slot": slot + 1}


def test_a_lower_priority_number_runs_first(session):
    with clock.frozen(T0):
        outbox.enqueue(session, KIND, {"tag": "late"}, priority=200)
        outbox.enqueue(session, KIND, {"tag": "middle"})
        clock.advance(timedelta(seconds=1))  # enqueued last, but the most urgent
        outbox.enqueue(session, KIND, {"tag": "urgent"}, priority=5)
        session.commit()
        worker = outbox.Worker(batch=1)
        while worker.run_once():
            pass
    assert [tag for tag, _ in CALLS] == ["urgent", "middle", "late"]


def test_the_registered_priority_is_the_default(session):
    outbox.handler("test.bravo.urgent-kind", priority=7)(lambda ctx: None)
    job = outbox.enqueue(session, "test.bravo.urgent-kind", {})
    assert job.priority == 7
    assert outbox.enqueue(session, KIND, {"tag": "x"}).priority == 100


def test_enqueuing_an_unknown_kind_raises(session):
    with pytest.raises(ValueError, match=r"test\.bravo\.no-such-kind"):
        outbox.enqueue(session, "test.bravo.no-such-kind", {})
    session.commit()
    assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_counts(session):
    assert outbox.counts(session) == {"pending": 0, "running": 0, "done": 0, "dead": 0}
    SCRIPT["c-dead"] = ["permanent"]
    with clock.frozen(T0):
        for tag in ("c-done-1", "c-done-2", "c-dead"):
            outbox.enqueue(session, KIND, {"tag": tag})
        outbox.enqueue(session, KIND, {"tag": "c-later"}, run_at=T0 + timedelta(hours=1))
        session.commit()
        assert outbox.counts(session) == {"pending": 4, "running": 0, "done": 0, "dead": 0}
        drain()
        assert outbox.counts(session) == {"pending": 1, "running": 0, "done": 2, "dead": 1}
        clock.advance(timedelta(hours=1))
        with db.transaction() as s:
            claimed = outbox.claim(s, limit=10, lease=timedelta(minutes=1))
        assert len(claimed) == 1
        assert outbox.counts(session) == {"pending": 0, "running": 1, "done": 2, "dead": 1}


def test_a_commit_after_a_rollback_still_wakes_the_workers(session):
    """Enqueuing wakes idle workers at commit; a rolled-back attempt in the same session must not stop it."""
    outbox._wake.clear()
    outbox.enqueue(session, KIND, {"tag": "plain"})
    session.commit()
    assert outbox._wake.is_set()

    outbox.enqueue(session, KIND, {"tag": "first-try"})
    session.rollback()
    outbox._wake.clear()
    outbox.enqueue(session, KIND, {"tag": "second-try"})
    session.commit()
    assert outbox._wake.is_set()
