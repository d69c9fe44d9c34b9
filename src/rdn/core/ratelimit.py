"""Fixed-window rate limits kept in the database, so every app server counts the same hits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn import db
from rdn.core import clock, outbox
from rdn.db import Base


class RateLimitWindow(Base):
    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


def _window_start(window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    epoch = int(clock.now().timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def hit(session: Session, key: str, *, limit: int, window: timedelta) -> bool:
    """Count one hit on ``key``; True while the window's count stays within ``limit``."""
    start = _window_start(window)
    insert = pg_insert if db.dialect_name(session) == "postgresql" else sqlite_insert
    stmt = insert(RateLimitWindow).values(key=key[:200], window_start=start, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key", "window_start"], set_={"count": RateLimitWindow.count + 1}
    ).returning(RateLimitWindow.count)
    count = session.execute(stmt).scalar_one()
    return count <= limit


def unhit(session: Session, key: str, *, window: timedelta) -> None:
    """Take back one hit of the current window (an attempt counted up front that turned out fine)."""
    session.execute(
        RateLimitWindow.__table__.update()
        .where(RateLimitWindow.key == key[:200], RateLimitWindow.window_start == _window_start(window),
               RateLimitWindow.count > 0)
        .values(count=RateLimitWindow.count - 1)
    )


def exceeded(session: Session, key: str, *, limit: int, window: timedelta) -> bool:
    """True if ``key`` has already used up ``limit`` in the current window (counts nothing)."""
    count = session.scalar(
        select(RateLimitWindow.count).where(RateLimitWindow.key == key[:200],
                                            RateLimitWindow.window_start == _window_start(window))
    )
    return (count or 0) >= limit


def reset(session: Session, key: str) -> None:
    session.execute(RateLimitWindow.__table__.delete().where(RateLimitWindow.key == key[:200]))


@outbox.periodic("prune-rate-limits", timedelta(hours=1))
def _prune(ctx: outbox.JobContext) -> None:
    cutoff = clock.now() - timedelta(days=1)
    ctx.session.execute(RateLimitWindow.__table__.delete().where(RateLimitWindow.window_start < cutoff))
