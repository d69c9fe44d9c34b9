"""Engine, sessions and the declarative base.

* SQLite runs in WAL mode with ``synchronous=FULL`` and foreign keys on. Every SQLite transaction starts with
  ``BEGIN IMMEDIATE`` so that a transaction that reads and then writes (an audit entry after a read, a job
  claim) can never fail half-way with SQLITE_BUSY_SNAPSHOT: writers queue on the busy timeout instead.
  SQLite is the embedded, single-node mode; PostgreSQL is the production database.
* PostgreSQL is reached through psycopg 3 (``postgresql://`` URLs are mapped to ``postgresql+psycopg://``).
* Services never commit: the request or the job commits once, at its boundary. Work that must happen only
  after a commit (waking the worker, fanning out an event) is registered with :func:`after_commit`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from rdn.config import get_settings, settings_cache

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use rdn.core.clock.now() or an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class is_empty_list(FunctionElement[bool]):
    """``is_empty_list(Model.codes)``: the JSON list column holds no item. On PostgreSQL a comparison of jsonb
    values (writing every row's list out as text to compare it, as the portable form does, was most of a
    catalog search's time there)."""

    type = Boolean()
    inherit_cache = True


@compiles(is_empty_list, "postgresql")
def _is_empty_list_pg(element: is_empty_list, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(next(iter(element.clauses)), **kw)} = '[]'::jsonb)"


@compiles(is_empty_list)
def _is_empty_list(element: is_empty_list, compiler: Any, **kw: Any) -> str:
    return f"(CAST({compiler.process(next(iter(element.clauses)), **kw)} AS TEXT) = '[]')"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        list[str]: JSONType,
    }


def new_id() -> uuid.UUID:
    return uuid.uuid4()


# Engines ---------------------------------------------------------------------------------------------------


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        if ":memory:" not in url and "mode=memory" not in url and "poolclass" not in kwargs:
            # As many pooled connections as requests run at once: connections beyond the pool are closed when
            # returned and opened again (with their PRAGMAs) by the next request, a cost on every busy request.
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 20)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    ping_when_idle = "poolclass" not in kwargs and "pool_pre_ping" not in kwargs
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    # No JIT: RDN's queries are short and many; PostgreSQL's JIT compiles for hundreds of milliseconds whenever
    # a plan's estimated cost is high (a count over a large list), which costs far more than it saves here.
    # No server-side prepared statements from psycopg (it prepares a statement after five runs): PostgreSQL may
    # then switch to a generic plan that ignores the values (an organization with 300,000 cases or with none)
    # and scans a whole table. Planning each run costs well under a millisecond. (Not plan_cache_mode: that
    # would also re-plan the foreign-key checks of every row an import writes.)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("prepare_threshold", None)
    connect_args["options"] = (connect_args.get("options", "")
                               + " -c jit=off -c max_parallel_workers_per_gather=0").strip()
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if ping_when_idle:
        _ping_when_idle(engine)
    return engine


#: A pooled connection unused for this long is checked (a round trip) before it is handed out again.
IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it lay idle for IDLE_PING_SECONDS (SQLAlchemy's
    ``pool_pre_ping`` checks on every checkout: a round trip per request, a tenth of a short API call).
    A connection that fails the check is replaced. One in steady use that the server dropped (PostgreSQL
    restarted) fails the statement it was given, and SQLAlchemy then discards every connection of the pool
    opened before, so one request, not one per connection, sees the error."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["rdn_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("rdn_idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # new, or used a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection failed its check") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


@settings_cache
def engine() -> Engine:
    return make_engine(get_settings().database_url)


# Sessions --------------------------------------------------------------------------------------------------

_factory_override: Callable[[], Session] | None = None
_lock = threading.Lock()


@settings_cache
def _default_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=engine(), expire_on_commit=False)


def new_session() -> Session:
    """A new session on the configured database (or the test harness's connection)."""
    if _factory_override is not None:
        return _factory_override()
    return _default_factory()()


def set_session_factory(factory: Callable[[], Session] | None) -> None:
    """Tests route every session through one connection and roll it back afterwards."""
    global _factory_override
    with _lock:
        _factory_override = factory


@contextmanager
def read_only() -> Iterator[Session]:
    """A session that only reads: on SQLite it begins DEFERRED, so it never holds the write lock (it cannot
    hit SQLITE_BUSY_SNAPSHOT, having nothing to write); always rolled back."""
    session = new_session()
    try:
        if dialect_name(session) == "sqlite" and _factory_override is None:
            session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def transaction() -> Iterator[Session]:
    """A unit of work outside a request (CLI, worker, scripts): commits on success, rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def current_transaction(session: Session) -> SessionTransaction:
    """The innermost transaction (a savepoint if one is open), beginning one if none has begun."""
    trans = session.get_nested_transaction() or session.get_transaction()
    if trans is None:
        session.connection()  # autobegin
        trans = session.get_transaction()
    assert trans is not None
    return trans


def in_open_chain(session: Session, trans: SessionTransaction) -> bool:
    """True while ``trans`` is the current transaction or one of its parents (it has not ended)."""
    current: SessionTransaction | None = session.get_nested_transaction() or session.get_transaction()
    while current is not None:
        if current is trans:
            return True
        current = current.parent
    return False


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's outermost transaction commits.

    Registered inside a savepoint, it moves to the parent when the savepoint is released and is dropped if
    the savepoint rolls back; it is dropped if the transaction rolls back.
    """
    session.info.setdefault("rdn_callbacks", []).append((current_transaction(session), callback))


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    # Dispatched for the outermost transaction and for savepoints alike: remember which one committed.
    trans = session.get_nested_transaction() or session.get_transaction()
    if trans is not None:
        session.info.setdefault("rdn_committed", set()).add(id(trans))


@event.listens_for(Session, "after_transaction_end")
def _settle_callbacks(session: Session, trans: SessionTransaction) -> None:
    committed = id(trans) in session.info.get("rdn_committed", set())
    session.info.get("rdn_committed", set()).discard(id(trans))
    callbacks = session.info.get("rdn_callbacks")
    if not callbacks:
        return
    mine = [cb for owner, cb in callbacks if owner is trans]
    if not mine:
        return
    rest = [(owner, cb) for owner, cb in callbacks if owner is not trans]
    if trans.parent is not None:
        # A savepoint (or inner transaction): its callbacks now belong to the parent, or die with it.
        session.info["rdn_callbacks"] = rest + ([(trans.parent, cb) for cb in mine] if committed else [])
        return
    session.info["rdn_callbacks"] = rest
    if not committed:
        return
    for callback in mine:
        try:
            callback()
        except Exception:  # pragma: no cover - a failed wake-up must not fail the committed work
            import logging

            logging.getLogger("rdn.db").exception("after-commit callback failed")


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


# Bulk writes ----------------------------------------------------------------------------------------------------


def copy_type(column: Any) -> str:
    """The PostgreSQL type a binary COPY sends for ``column`` (binary formats must match exactly)."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    for sa_type, name in ((JSON, "jsonb"), (Uuid, "uuid"), (Boolean, "bool"), (SmallInteger, "int2"),
                          (BigInteger, "int8"), (Integer, "int4"), (Date, "date"), (LargeBinary, "bytea"),
                          (String, "text")):
        if isinstance(kind, sa_type):
            return name
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    raise TypeError(f"no COPY type for {column}")  # pragma: no cover - a column type RDN never bulk-writes


def bulk_insert(session: Session, table: Table, names_: tuple[str, ...], rows: Iterable[tuple[Any, ...]], *,
                chunk: int = 5000) -> None:
    """Insert ``rows`` (tuples in the order of ``names_``) in the session's transaction.

    PostgreSQL: one binary ``COPY`` stream, fed by ``rows`` as it is consumed, so that building rows overlaps
    with the server's index maintenance instead of alternating with it. SQLite: the driver's ``executemany``
    over the same stream, each value converted by its column type's own bind processor (so it is stored
    exactly as SQLAlchemy stores it). Other databases: INSERTs of ``chunk`` rows.
    """
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names_]
        quoted = ", ".join(f'"{name}"' for name in names_)
        sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({", ".join("?" for _ in names_)})'
        driver = session.connection().connection.driver_connection
        assert driver is not None
        driver.executemany(sql, ([v if p is None or v is None else p(v) for p, v in zip(processors, row, strict=True)]
                                 for row in rows))
        return
    if dialect.name != "postgresql":
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(dict(zip(names_, row, strict=True)))
            if len(batch) == chunk:
                session.execute(table.insert(), batch)
                batch = []
        if batch:
            session.execute(table.insert(), batch)
        return
    raw = session.connection().connection.driver_connection
    assert raw is not None
    quoted = ", ".join(f'"{name}"' for name in names_)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types([copy_type(table.c[name]) for name in names_])
        for row in rows:
            copy.write_row(row)


def upsert(session: Session, model: type, values: dict[str, Any], *, keys: tuple[str, ...]) -> None:
    """Insert a row, or update it when one with the same ``keys`` exists, in one statement (two sessions doing it
    at once both succeed; the last one's values stand)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - RDN runs on PostgreSQL and SQLite
        raise NotImplementedError(dialect)
    stmt = dialect_insert(model).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={k: stmt.excluded[k] for k in values if k not in keys})
    session.execute(stmt)
