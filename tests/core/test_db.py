"""The database layer: SQLite pragmas, naming convention, UTC timestamps, after-commit hooks, migrations, readyz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from rdn import db, migrate
from rdn.config import load_settings, set_settings
from rdn.core import audit
from rdn.core.tenancy import Organization
from rdn.db import NAMING_CONVENTION, Base, UTCDateTime
from tests.conftest import rdn_environ
from tests.factories import make_org


def _schema_differences(url: str) -> list:
    engine = db.make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": migrate.include_object_for(conn.dialect.name)})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


# SQLite ------------------------------------------------------------------------------------------------------


def test_sqlite_connections_use_wal_full_sync_and_foreign_keys(tmp_path: Path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    try:
        with engine.connect() as first, engine.connect() as second:  # two distinct new connections
            assert first.connection.dbapi_connection is not second.connection.dbapi_connection
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
                conn.rollback()

        # Foreign keys are enforced, not just declared.
        meta = MetaData()
        parent = Table("parent", meta, Column("id", Integer, primary_key=True))
        child = Table("child", meta, Column("id", Integer, primary_key=True),
                      Column("parent_id", Integer, ForeignKey("parent.id"), nullable=False))
        with engine.begin() as conn:
            meta.create_all(conn)
        with pytest.raises(IntegrityError, match="FOREIGN KEY"), engine.begin() as conn:
            conn.execute(child.insert().values(id=1, parent_id=42))
        with engine.begin() as conn:
            conn.execute(parent.insert().values(id=42))
            conn.execute(child.insert().values(id=1, parent_id=42))
    finally:
        engine.dispose()


def test_sqlite_transactions_begin_immediate(tmp_path: Path):
    """Even a transaction that only reads takes the write lock at BEGIN (no SQLITE_BUSY_SNAPSHOT later)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'immediate.sqlite3'}")
    try:
        with engine.connect() as holder, engine.connect() as other:
            holder.execute(text("SELECT 1"))  # begins a transaction that has read nothing from a table
            other.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")
            with pytest.raises(OperationalError, match="locked"):
                other.execute(text("SELECT 1"))
            other.rollback()
            holder.rollback()
            assert other.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


# The schema --------------------------------------------------------------------------------------------------


def test_the_metadata_uses_the_naming_convention(connection):
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    inspector = inspect(connection)
    uniques = {uc["name"]: uc["column_names"] for uc in inspector.get_unique_constraints("users")}
    assert uniques.get("uq_users_email") == ["email"]
    org_uniques = {uc["name"] for uc in inspector.get_unique_constraints("organizations")}
    assert "uq_organizations_short_name" in org_uniques
    assert inspector.get_pk_constraint("audit_log")["name"] == "pk_audit_log"
    fks = {fk["name"] for fk in inspector.get_foreign_keys("webhook_endpoints")}
    assert "fk_webhook_endpoints_org_id_organizations" in fks
    indexes = {ix["name"] for ix in inspector.get_indexes("audit_log")}
    assert {"ix_audit_log_action", "ix_audit_log_object", "ix_audit_log_org_ts"} <= indexes
    # Every named constraint and index in the models follows a convention prefix.
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            assert str(constraint.name).startswith(("pk_", "uq_", "fk_", "ck_")), (table.name, constraint.name)
        for index in table.indexes:
            assert str(index.name).startswith("ix_"), (table.name, index.name)


def test_the_migrated_schema_matches_the_models(committed_db):
    assert _schema_differences(committed_db) == []
    # The comparison does see a difference when there is one.
    engine = db.make_engine(committed_db, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_audit_log_action"))
    engine.dispose()
    differences = _schema_differences(committed_db)
    assert any(d[0] == "add_index" and d[1].name == "ix_audit_log_action" for d in differences), differences


def test_a_fresh_database_downgrades_to_base_and_upgrades_again(committed_db):
    engine = db.make_engine(committed_db, poolclass=NullPool)
    try:
        command.downgrade(migrate.alembic_config(committed_db), "base")
        with engine.connect() as conn:
            assert migrate.current_revision(conn) is None
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}

        migrate.upgrade(committed_db)
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
            assert conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one() == (0, "0" * 64)
        assert _schema_differences(committed_db) == []

        # The append-only guard is back.
        with Session(engine) as s:
            audit.record(s, action="test.roundtrip", actor=audit.SYSTEM)
            s.commit()
            assert audit.verify(s).ok
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    finally:
        engine.dispose()


# Timestamps --------------------------------------------------------------------------------------------------


def test_utc_datetime_refuses_naive_values():
    column_type = UTCDateTime()
    plus_two = datetime(2026, 11, 28, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    sqlite_dialect, pg_dialect = sqlite.dialect(), postgresql.dialect()
    for dialect in (sqlite_dialect, pg_dialect):
        with pytest.raises(ValueError, match="naive"):
            column_type.process_bind_param(datetime(2026, 11, 28, 12, 0), dialect)
    # SQLite keeps no zone: UTC wall time goes in, an aware UTC datetime comes out.
    stored = column_type.process_bind_param(plus_two, sqlite_dialect)
    assert stored == datetime(2026, 11, 28, 10, 0) and stored.tzinfo is None
    assert column_type.process_result_value(stored, sqlite_dialect) == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    # PostgreSQL keeps the zone; values come back converted to UTC.
    stored = column_type.process_bind_param(plus_two, pg_dialect)
    assert stored.utcoffset() == timedelta(0) and stored == plus_two
    back = column_type.process_result_value(plus_two, pg_dialect)
    assert back.utcoffset() == timedelta(0) and back.hour == 10
    assert column_type.process_result_value(None, sqlite_dialect) is None


def test_utc_datetime_round_trip_through_the_database(session):
    org = make_org(session, "canada", "Canada")
    kolkata = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 11, 28, 15, 30, 12, 345678, tzinfo=kolkata)
    org.created_at = moment
    session.commit()

    with db.new_session() as other:
        stored = other.get(Organization, org.id).created_at
        assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
        assert stored == moment
        assert (stored.hour, stored.minute, stored.microsecond) == (10, 0, 345678)
        # Comparisons in queries use the same instant whatever the zone given.
        found = other.scalar(select(Organization.id).where(Organization.created_at == moment.astimezone(UTC)))
        assert found == org.id
        raw = other.execute(text("SELECT created_at FROM organizations WHERE short_name = 'canada'")).scalar()
        if isinstance(raw, str):  # SQLite keeps text: it must be the UTC wall time
            assert raw.startswith("2026-11-28 10:00:12.345678")
        else:
            assert raw == moment

    org.created_at = datetime(2026, 11, 28, 12, 0)  # naive
    with pytest.raises(StatementError, match="naive"):
        session.flush()
    session.rollback()


# After-commit callbacks --------------------------------------------------------------------------------------


@pytest.fixture
def plain_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'hooks.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


def _count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM things")).scalar())


def test_after_commit_runs_after_commit_and_is_dropped_on_rollback(plain_engine):
    calls: list[tuple[str, int]] = []
    with Session(plain_engine) as s:
        s.execute(text("INSERT INTO things (id) VALUES (1)"))
        db.after_commit(s, lambda: calls.append(("first", _count(plain_engine))))
        db.after_commit(s, lambda: calls.append(("second", _count(plain_engine))))
        s.flush()
        assert calls == []
        s.commit()
        # Both ran, in order, once the row was visible to other connections.
        assert calls == [("first", 1), ("second", 1)]

        s.execute(text("INSERT INTO things (id) VALUES (2)"))
        db.after_commit(s, lambda: calls.append(("rolled back", _count(plain_engine))))
        s.rollback()
        assert len(calls) == 2
        s.execute(text("SELECT 1"))
        s.commit()
        assert len(calls) == 2  # dropped, not deferred to the next commit

        s.execute(text("INSERT INTO things (id) VALUES (3)"))
        db.after_commit(s, lambda: calls.append(("third", _count(plain_engine))))
        s.commit()
        assert calls[-1] == ("third", 2)
        s.commit()
        assert len(calls) == 3  # once only


def test_a_failing_after_commit_callback_does_not_undo_the_commit(plain_engine, caplog):
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("wake-up failed")

    with Session(plain_engine) as s:
        s.execute(text("INSERT INTO things (id) VALUES (1)"))
        db.after_commit(s, broken)
        db.after_commit(s, lambda: calls.append("later"))
        s.commit()
    assert calls == ["later"]
    assert _count(plain_engine) == 1
    assert "after-commit callback failed" in caplog.text


def test_after_commit_waits_for_the_real_commit_not_a_savepoint(plain_engine):
    calls: list[str] = []
    with Session(plain_engine) as s:
        s.execute(text("INSERT INTO things (id) VALUES (1)"))
        db.after_commit(s, lambda: calls.append("outer"))
        with s.begin_nested():  # e.g. outbox.enqueue(dedupe_key=...) or an idempotency claim
            s.execute(text("INSERT INTO things (id) VALUES (2)"))
            db.after_commit(s, lambda: calls.append("inner"))
        assert calls == [], "callbacks ran when a savepoint was released, before the transaction committed"
        s.rollback()
    assert calls == []
    assert _count(plain_engine) == 0


def test_a_rolled_back_savepoint_keeps_the_callbacks_of_the_transaction(plain_engine):
    calls: list[str] = []
    with Session(plain_engine) as s:
        s.execute(text("INSERT INTO things (id) VALUES (1)"))
        db.after_commit(s, lambda: calls.append("outer"))
        savepoint = s.begin_nested()
        s.execute(text("INSERT INTO things (id) VALUES (2)"))
        db.after_commit(s, lambda: calls.append("inside the rolled-back savepoint"))
        savepoint.rollback()
        s.commit()
    assert _count(plain_engine) == 1
    assert calls == ["outer"]


# Readiness ---------------------------------------------------------------------------------------------------


def test_readyz_follows_the_migration_state(committed_db, app):
    client = TestClient(app)
    head = migrate.head_revision()

    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "reachable", "migrations": head}

    command.downgrade(migrate.alembic_config(committed_db), "base")
    db.engine().dispose()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "reachable"
    assert f"at None, code expects {head}" in body["migrations"]
    assert "rdn db upgrade" in body["migrations"]

    migrate.upgrade(committed_db)
    assert client.get("/readyz").status_code == 200


def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path: Path, app, settings, smtp_server):
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'nowhere.sqlite3'}"
    set_settings(load_settings(environ=rdn_environ(url, smtp_server[0])))
    try:
        response = TestClient(app).get("/readyz")
    finally:
        db.engine().dispose()
        set_settings(settings)
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable")
