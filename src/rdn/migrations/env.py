"""Alembic environment: the metadata of every installed module; batch mode on SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from rdn import migrate, modules
from rdn.db import Base, UTCDateTime, make_engine

config = context.config
modules.load_job_handlers()  # imports every module, so every model is in the metadata
target_metadata = Base.metadata


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write migrations in plain SQLAlchemy types, so they never depend on application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


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
                          render_item=render_item, include_object=migrate.include_object_for(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
