"""Alembic, driven from code: ``rdn db upgrade``, the tests and ``/readyz`` all use these."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from rdn.db import normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def include_object_for(dialect: str) -> Callable[..., bool]:
    """For comparing a database with the models: leave out what a model creates on other databases only
    (``Index(...).ddl_if(dialect=...)``: a GIN index on PostgreSQL), so SQLite is not asked for it."""

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        wanted = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return wanted is None or dialect in ((wanted,) if isinstance(wanted, str) else wanted)

    return include_object


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    return heads[0] if len(heads) == 1 else ",".join(sorted(heads))


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
