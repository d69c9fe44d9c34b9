"""Alembic, driven from code: ``rdn db upgrade``, the tests and ``/readyz`` all use these."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from rdn.db import normalise_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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
