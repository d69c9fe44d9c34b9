"""Pooled PostgreSQL connections are checked before use only after lying idle (not on every checkout)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from rdn import db
from tests.conftest import ON_POSTGRES, TEST_DB_URL

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="a PostgreSQL pool (RDN_TEST_DATABASE_URL)")


def _backend(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    killer = db.make_engine(TEST_DB_URL, poolclass=__import__("sqlalchemy").pool.NullPool)
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    killer.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    engine = db.make_engine(TEST_DB_URL, pool_size=1)
    try:
        first = _backend(engine)
        _terminate(first)
        second = _backend(engine)  # the check found it dead and opened another
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_check(monkeypatch):
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    engine = db.make_engine(TEST_DB_URL, pool_size=1)
    pings = []
    original = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or original(c))
    try:
        first = _backend(engine)
        assert _backend(engine) == first
        assert pings == []
        # Not checked, so a connection dropped meanwhile fails its statement, and the pool starts afresh.
        _terminate(first)
        with pytest.raises(OperationalError):
            _backend(engine)
        assert _backend(engine) != first
    finally:
        engine.dispose()
