"""Alembic environment: the metadata of every installed module; batch mode on SQLite."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import pool

from rdn import modules
from rdn.db import Base, UTCDateTime, make_engine

config = context.config
modules.load_job_handlers()  # imports every module, so every model is in the metadata
target_metadata = Base.metadata


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write migrations in plain SQLAlchemy types, so they never depend on application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object_for(dialect: str) -> Any:
    """Leave out what a model creates on other databases only (``Index(...).ddl_if(dialect=...)``: a GIN index
    on PostgreSQL), so that comparing a SQLite database with the models does not ask for it."""

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        wanted = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return wanted is None or dialect in ((wanted,) if isinstance(wanted, str) else wanted)

    return include_object


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True, compare_type=True,
                      render_item=render_item)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:  # the alembic command line: the same database as the platform
        from rdn.config import get_settings

        url = get_settings().database_url
    return url


def run_migrations_online() -> None:
    url = _url()
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          render_item=render_item, include_object=include_object_for(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
