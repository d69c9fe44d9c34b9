"""The hash-chained audit log: written in the caller's transaction, tamper-evident, append-only."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from rdn import db
from rdn.core import audit
from rdn.core.audit import GENESIS, Actor, AuditEntry, AuditHead
from rdn.core.tenancy import Organization
from tests.conftest import rdn_environ, run_rdn
from tests.factories import make_org

ACTOR = Actor("tests:audit")
LOG = AuditEntry.__table__


# Helpers -----------------------------------------------------------------------------------------------------



def _append(session: Session, n: int, prefix: str = "test.step") -> list[AuditEntry]:
    entries = [
        audit.record(session, action=f"{prefix}{i}", actor=ACTOR, object_type="thing", object_id=i,
                     purpose="testing the chain", details={"i": i, "fields": ["a", "b"], "nested": {"k": "v"}})
        for i in range(n)
    ]
    session.commit()
    return entries


def _remove_guards(conn_or_session) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with database access would do first."""
    bind = conn_or_session.get_bind() if isinstance(conn_or_session, Session) else conn_or_session
    if bind.dialect.name == "postgresql":
        conn_or_session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    else:
        conn_or_session.execute(text("DROP TRIGGER audit_log_no_update"))
        conn_or_session.execute(text("DROP TRIGGER audit_log_no_delete"))


def _verify() -> audit.VerifyResult:
    """Verify from a new session (no identity map hiding what the database now holds)."""
    with db.new_session() as s:
        return audit.verify(s)


def _row(session: Session, seq: int) -> dict:
    return dict(session.execute(select(LOG).where(LOG.c.seq == seq)).mappings().one())



def _squash(s: str) -> str:
    return " ".join(s.split())


# Writing -----------------------------------------------------------------------------------------------------


def test_entries_chain_and_the_head_follows(session):
    head_before = session.get(AuditHead, 1)
    start_seq, start_hash = head_before.seq, head_before.hash
    entries = _append(session, 4)

    assert [e.seq for e in entries] == list(range(start_seq + 1, start_seq + 5))
    assert entries[0].prev_hash == start_hash
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    for entry in entries:
        assert len(entry.hash) == 64 and entry.hash != GENESIS
        assert entry.hash == audit.compute_hash(entry)
    assert len({e.hash for e in entries}) == 4

    with db.new_session() as other:
        head = other.get(AuditHead, 1)
        assert (head.seq, head.hash) == (entries[-1].seq, entries[-1].hash)
        stored = other.get(AuditEntry, entries[2].seq)
        assert stored.actor_label == "tests:audit"
        assert stored.details == {"i": 2, "fields": ["a", "b"], "nested": {"k": "v"}}
        assert stored.object_id == "2"
        assert stored.ts.tzinfo is not None

    result = _verify()
    assert result.ok, result.problem
    assert result.checked == entries[-1].seq


def test_record_many_chains_like_record_and_verifies(session):
    before = _append(session, 1)[-1]
    actor = Actor("tests:bulk")
    count = audit.record_many(session, actor=actor, entries=[
        audit.Pending("case.import", "case", uuid.uuid4(), {"n": n}) for n in range(50)])
    after = _append(session, 1)[-1]
    assert count == 50
    assert after.seq == before.seq + 51
    bulk = session.scalars(select(AuditEntry).where(AuditEntry.seq > before.seq, AuditEntry.seq < after.seq)
                           .order_by(AuditEntry.seq)).all()
    assert [e.seq for e in bulk] == list(range(before.seq + 1, after.seq))
    assert bulk[0].prev_hash == before.hash and after.prev_hash == bulk[-1].hash
    assert all(e.hash == audit.compute_hash(e) and e.actor_label == "tests:bulk" for e in bulk)
    assert [e.details["n"] for e in bulk] == list(range(50))
    session.commit()
    result = _verify()
    assert result.ok, result.problem


def test_an_entry_is_part_of_the_callers_transaction(session):
    before = session.get(AuditHead, 1).seq
    with pytest.raises(RuntimeError, match="change abandoned"), session.begin_nested():
        org = make_org(session, "ghost", "Ghost Ministry")
        # Inside the transaction, the change and its entry are both there.
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "org.create", AuditEntry.object_id == str(org.id))) == 1
        raise RuntimeError("change abandoned")

    with db.new_session() as other:
        assert other.scalar(select(func.count()).select_from(Organization)
                            .where(Organization.short_name == "ghost")) == 0
        assert other.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.action == "org.create")) == 0
        assert other.get(AuditHead, 1).seq == before

    # The chain goes on from where it was.
    entry = _append(session, 1)[0]
    assert entry.seq == before + 1
    assert _verify().ok


def test_a_rolled_back_commit_leaves_no_entry_in_a_real_database(committed_db):
    with pytest.raises(RuntimeError), db.transaction() as s:
        make_org(s, "ghost", "Ghost Ministry")
        raise RuntimeError("boom")
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0
        assert s.scalar(select(func.count()).select_from(Organization)) == 0
        assert s.get(AuditHead, 1).seq == 0
    with db.transaction() as s:
        make_org(s, "real", "Real Ministry")
    with db.transaction() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.seq, e.action) for e in entries] == [(1, "org.create")]
        assert entries[0].prev_hash == GENESIS
        assert audit.verify(s).ok


@pytest.mark.parametrize("details", [{"score": 1.5}, {"nested": {"list": [1, 2, 0.1]}}])
def test_details_refuse_floats(session, details):
    before = session.get(AuditHead, 1).seq
    with pytest.raises(ValueError, match="float"):
        audit.record(session, action="test.float", actor=ACTOR, details=details)
    session.flush()
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "test.float")) == 0
    assert session.get(AuditHead, 1).seq == before
    # Integers, strings, booleans and None are fine.
    entry = audit.record(session, action="test.ints", actor=ACTOR, details={"n": 3, "s": "x", "b": True, "z": None})
    assert entry.seq == before + 1


def test_the_database_refuses_update_and_delete(session):
    entries = _append(session, 3)
    seq = entries[1].seq
    statements = [
        (text("UPDATE audit_log SET actor_label = 'mallory' WHERE seq = :seq"), {"seq": seq}),
        (text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": seq}),
        (text("DELETE FROM audit_log"), {}),
    ]
    if session.get_bind().dialect.name == "postgresql":
        statements.append((text("TRUNCATE audit_log"), {}))
    for statement, params in statements:
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(statement, params)
    with db.new_session() as other:
        assert other.get(AuditEntry, seq).actor_label == "tests:audit"
        assert other.scalar(select(func.count()).select_from(AuditEntry)) == entries[-1].seq
    assert _verify().ok


# Tampering ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "value"), [
    ("details", {"i": 99, "fields": ["a", "b"], "nested": {"k": "v"}}),
    ("actor_label", "someone-else"),
    ("actor_user_id", None),  # set below to a real UUID
    ("ts", datetime(2020, 1, 1, tzinfo=UTC)),
])
def test_an_edited_entry_is_named(session, column, value):
    entries = _append(session, 6)
    if column == "actor_user_id":
        value = uuid.uuid4()
    _remove_guards(session)
    # Two entries are edited: the first one is named.
    for victim in (entries[4], entries[2]):
        session.execute(update(LOG).where(LOG.c.seq == victim.seq).values({column: value}))
    result = _verify()
    assert not result.ok
    assert result.broken_seq == entries[2].seq
    assert result.checked == entries[1].seq
    assert "altered" in result.problem and str(entries[2].seq) in result.problem


def test_a_deleted_middle_entry_is_named(session):
    entries = _append(session, 5)
    _remove_guards(session)
    session.execute(delete(LOG).where(LOG.c.seq == entries[2].seq))
    result = _verify()
    assert not result.ok
    assert result.broken_seq == entries[2].seq
    assert f"entry {entries[2].seq} is missing" in result.problem


def test_swapped_contents_are_named(session):
    entries = _append(session, 5)
    a, b = entries[1].seq, entries[2].seq
    row_a, row_b = _row(session, a), _row(session, b)
    _remove_guards(session)
    session.execute(update(LOG).where(LOG.c.seq == a).values({k: v for k, v in row_b.items() if k != "seq"}))
    session.execute(update(LOG).where(LOG.c.seq == b).values({k: v for k, v in row_a.items() if k != "seq"}))
    result = _verify()
    assert not result.ok
    assert result.broken_seq == a
    assert f"entry {a}" in result.problem


def test_swapped_sequence_numbers_are_named(session):
    entries = _append(session, 5)
    a, b = entries[1].seq, entries[2].seq
    _remove_guards(session)
    session.execute(update(LOG).where(LOG.c.seq == a).values(seq=-1))
    session.execute(update(LOG).where(LOG.c.seq == b).values(seq=a))
    session.execute(update(LOG).where(LOG.c.seq == -1).values(seq=b))
    with db.new_session() as other:
        assert other.get(AuditEntry, a).action == entries[2].action  # the swap did happen
    result = _verify()
    assert not result.ok
    assert result.broken_seq == a
    assert f"entry {a}" in result.problem


def test_entries_deleted_at_the_end_are_detected_through_the_head(session):
    entries = _append(session, 5)
    _remove_guards(session)
    session.execute(delete(LOG).where(LOG.c.seq >= entries[3].seq))
    result = _verify()
    assert not result.ok
    assert result.broken_seq == entries[3].seq
    assert result.checked == entries[2].seq
    assert f"entries {entries[3].seq} to {entries[4].seq} were removed" in result.problem


# The command -------------------------------------------------------------------------------------------------


def test_rdn_audit_verify_command(committed_db, smtp_server):
    with db.transaction() as s:
        _append(s, 3)
    env = rdn_environ(committed_db, smtp_server[0])

    ok = run_rdn(["audit", "verify"], env)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 3 entries, chain intact" in _squash(ok.stdout)

    engine = create_engine(db.normalise_url(committed_db))
    try:
        with engine.begin() as conn:
            _remove_guards(conn)
            conn.execute(update(LOG).where(LOG.c.seq == 2).values(actor_label="mallory"))
    finally:
        engine.dispose()

    broken = run_rdn(["audit", "verify"], env)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    out = _squash(broken.stdout)
    assert "BROKEN at entry 2" in out
    assert "entry 2 was altered" in out
    assert "OK:" not in out and "chain intact" not in out


# Concurrency -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("long_lived_sessions", [False, True])
def test_concurrent_appenders_keep_a_valid_chain(committed_db, long_lived_sessions):
    threads_n, per_thread = 4, 8
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            if long_lived_sessions:
                with db.new_session() as s:
                    for i in range(per_thread):
                        audit.record(s, action="test.concurrent", actor=Actor(f"thread-{n}"), details={"i": i})
                        s.commit()
            else:
                for i in range(per_thread):
                    with db.transaction() as s:
                        audit.record(s, action="test.concurrent", actor=Actor(f"thread-{n}"), details={"i": i})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    total = threads_n * per_thread
    with db.transaction() as s:
        seqs = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
        assert seqs == list(range(1, total + 1))
        labels = s.execute(select(AuditEntry.actor_label, func.count()).group_by(AuditEntry.actor_label)).all()
        assert sorted(labels) == [(f"thread-{n}", per_thread) for n in range(threads_n)]
        result = audit.verify(s)
        assert result.ok, result.problem
        assert result.checked == total
        assert s.get(AuditHead, 1).seq == total
