"""The test harness.

* The database is real and built by Alembic: a SQLite file by default, or PostgreSQL when
  ``RDN_TEST_DATABASE_URL`` names one (the same suite runs on both; CI runs both).
* Each test runs in one transaction on one connection that is rolled back afterwards; every session the
  application opens (requests, the worker, idempotency claims) joins it through savepoints.
* Tests that need real commits across processes (a worker killed with SIGKILL, two app servers) get a
  fresh database of their own from :func:`fresh_database_url`.
* Email goes to a real SMTP server (aiosmtpd) running in the test process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rdn import db, migrate
from rdn.config import load_settings, set_settings

ROOT = Path(__file__).resolve().parent.parent
TEST_DB_URL = os.environ.get("RDN_TEST_DATABASE_URL", "").strip()
ON_POSTGRES = TEST_DB_URL.startswith("postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Mail --------------------------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received: every delivery, raw, in order."""

    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, data: bytes) -> None:
        with self.lock:
            self.messages.append(message_from_bytes(data))

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in (m["To"] or "")]


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        self.mailbox.handle(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[int, Mailbox]) -> Mailbox:
    smtp_server[1].clear()
    return smtp_server[1]


# Databases ---------------------------------------------------------------------------------------------------


def _reset_postgres(url: str) -> None:
    engine = create_engine(db.normalise_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A new, migrated database for tests whose processes must really commit."""
    if ON_POSTGRES:
        base = make_url(db.normalise_url(TEST_DB_URL))
        name = f"rdn_t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False).replace(
            "postgresql+psycopg://", "postgresql://")
        try:
            migrate.upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        migrate.upgrade(url)
        yield url


RDN = str(Path(sys.executable).with_name("rdn"))


def clean_env(settings: dict[str, str]) -> dict[str, str]:
    """The environment of an ``rdn`` subprocess: this process's, minus any RDN_* setting inherited from the
    caller's shell (make, CI), plus exactly the test's settings."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RDN_")}, **settings}


def subprocess_env(database_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    return clean_env(rdn_environ(database_url, smtp_port, **extra))


def run_rdn(args: list[str], settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the ``rdn`` command with exactly these settings."""
    return subprocess.run([RDN, *args], env=clean_env(settings), cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def rdn_environ(database_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    """The RDN_* settings a test process runs with (also handed to subprocesses)."""
    env = {
        "RDN_MODE": "test",
        "RDN_DATABASE_URL": database_url,
        "RDN_SMTP_HOST": "127.0.0.1",
        "RDN_SMTP_PORT": str(smtp_port),
        "RDN_BASE_URL": "http://testserver",
        "RDN_INPROCESS_WORKER": "false",
        "RDN_PASSWORD_HASH_MEMORY_KIB": "64",
        "RDN_PASSWORD_HASH_TIME_COST": "1",
        "RDN_WORKER_POLL_SECONDS": "0.2",
        "RDN_SSE_MAX_SECONDS": "0.3",
        "RDN_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@pytest.fixture
def committed_db(tmp_path: Path, settings, smtp_server):  # type: ignore[no-untyped-def]
    """A committed, migrated database of this test's own; the process settings point at it meanwhile."""
    gen = fresh_database_url(tmp_path)
    url = next(gen)
    set_settings(load_settings(environ=rdn_environ(url, smtp_server[0])))
    try:
        yield url
    finally:
        db.engine().dispose()
        set_settings(settings)
        gen.close()


def production_environ(database_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    """Settings of production mode, with real secrets."""
    import base64
    import secrets

    return rdn_environ(database_url, smtp_port, RDN_MODE="production", RDN_BASE_URL="https://rdn.example",
                       RDN_SECRET_KEY=secrets.token_urlsafe(48),
                       RDN_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(), **extra)


@pytest.fixture
def production_app(database_url, smtp_server):  # type: ignore[no-untyped-def]
    """The application in production mode on the test database (settings restored afterwards)."""
    from rdn.app import create_app
    from rdn.config import get_settings

    original = get_settings()
    try:
        yield create_app(load_settings(environ=production_environ(database_url, smtp_server[0])))
    finally:
        set_settings(original)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if ON_POSTGRES:
        _reset_postgres(TEST_DB_URL)
        migrate.upgrade(TEST_DB_URL)
        return TEST_DB_URL
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def settings(database_url: str, smtp_server: tuple[int, Mailbox]):  # type: ignore[no-untyped-def]
    settings = load_settings(environ=rdn_environ(database_url, smtp_server[0]))
    set_settings(settings)
    from rdn import modules

    modules.load_job_handlers()
    yield settings
    db.engine().dispose()
    set_settings(None)


@pytest.fixture
def connection(settings):  # type: ignore[no-untyped-def]
    """One connection, one transaction, rolled back after the test; every session joins it."""
    conn = db.engine().connect()
    outer = conn.begin()

    def factory() -> Session:
        return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)

    db.set_session_factory(factory)
    try:
        yield conn
    finally:
        db.set_session_factory(None)
        if outer.is_active:
            outer.rollback()
        conn.close()


@pytest.fixture
def session(connection) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """A session for the test's own reads and set-up (commits are savepoint releases)."""
    s = db.new_session()
    try:
        yield s
    finally:
        s.close()


# The application ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app(settings):  # type: ignore[no-untyped-def]
    from rdn.app import create_app

    return create_app()


@pytest.fixture
def client(app, connection):  # type: ignore[no-untyped-def]
    from tests.factories import Client

    return Client(app)


@pytest.fixture
def network(session):  # type: ignore[no-untyped-def]
    """A small network with named personas (see tests/factories.py)."""
    from tests.factories import build_network

    return build_network(session)
