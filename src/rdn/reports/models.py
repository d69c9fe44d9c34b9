"""The network picture's tables: projected needs as the network enters them, and computed figures kept as
snapshots (the dashboard reads one row; the worker recomputes them every few minutes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.db import Base, new_id


def _default_scope(context: Any) -> str:
    values = context.get_current_parameters()
    return "region" if values.get("region") else "population" if values.get("nationality") else "all"


#: What a need covers: everyone (the year's headline), one population, or one region of asylum.
NEED_SCOPES = ("all", "population", "region")


class Need(Base):
    """Projected resettlement needs for a year: for everyone, for one population (with the nationality its cases
    carry, when there is one: a stateless population has none), or for one region of asylum, with the source."""

    __tablename__ = "report_needs"
    __table_args__ = (UniqueConstraint("year", "population", "region"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    year: Mapped[int] = mapped_column(Integer, index=True)
    population: Mapped[str] = mapped_column(String(120))  # as the source names it ("Afghan", "All populations")
    scope: Mapped[str] = mapped_column(String(12), default=_default_scope)  # one of NEED_SCOPES
    nationality: Mapped[str | None] = mapped_column(String(2))  # ISO 3166 code the cases carry; None: not one
    region: Mapped[str] = mapped_column(String(40), default="")  # a key of rdn.reports.regions.REGIONS, or ""
    people: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(300))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Snapshot(Base):
    """The figures of one view (the network's or one government's) for one period, as computed at a moment."""

    __tablename__ = "report_snapshots"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)  # "network:2026", "member:<org id>:2026Q3"
    computed_at: Mapped[datetime] = mapped_column(default=clock.now)
    millis: Mapped[int] = mapped_column(Integer, default=0)  # how long the computation took
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
