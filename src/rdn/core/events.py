"""Real-time events: publish in a transaction, delivered to subscribers after commit.

* ``publish`` writes the event to ``event_log`` in the caller's transaction (so a rolled-back change
  announces nothing, and a client that reconnects can replay what it missed by ``Last-Event-ID``).
* On SQLite the event is handed to this process's subscribers after commit (SQLite is single-node).
* On PostgreSQL the transaction also issues ``NOTIFY rdn_events``, which PostgreSQL delivers at commit to
  every app server; each server's listener thread fans the event out to its own subscribers. Several app
  servers therefore see each other's events.
* :func:`sse_response` turns a subscription into a Server-Sent Events stream for pages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import BigInteger, Integer, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.requests import Request
from starlette.responses import StreamingResponse

from rdn import db
from rdn.config import get_settings
from rdn.core import clock, outbox
from rdn.db import Base

log = logging.getLogger("rdn.events")
NOTIFY_CHANNEL = "rdn_events"
_NOTIFY_LIMIT = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more


class EventLog(Base):
    __tablename__ = "event_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                                    autoincrement=True)
    channel: Mapped[str] = mapped_column(String(120), index=True)
    type: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


@dataclass(frozen=True)
class Event:
    id: int
    channel: str
    type: str
    data: dict[str, Any]

    @cached_property
    def frame(self) -> str:
        """The Server-Sent Events frame, serialised once however many clients receive it."""
        return f"id: {self.id}\nevent: {self.type}\ndata: {json.dumps(self.data, default=str)}\n\n"

    def sse(self) -> str:
        return self.frame


def publish(session: Session, channel: str, type: str, data: dict[str, Any]) -> EventLog:
    """Announce an event on ``channel``; subscribers receive it once the transaction commits."""
    row = EventLog(channel=channel, type=type, data=json.loads(json.dumps(data, default=str)),
                   created_at=clock.now())
    session.add(row)
    session.flush()
    event = Event(row.id, channel, type, row.data)
    if db.dialect_name(session) == "postgresql":
        payload = json.dumps({"id": row.id, "channel": channel, "type": type, "data": row.data}, default=str)
        if len(payload.encode()) > _NOTIFY_LIMIT:
            payload = json.dumps({"id": row.id, "channel": channel, "ref": True})
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": NOTIFY_CHANNEL, "p": payload})
    else:
        db.after_commit(session, lambda: broker.dispatch(event))
    return row


class Subscription:
    def __init__(self, broker: Broker, channels: frozenset[str], maxsize: int = 1000) -> None:
        self.broker = broker
        self.channels = channels
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def put(self, event: Event) -> None:
        """In the subscriber's event loop."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A subscriber too slow to keep up is cut off; it reconnects and replays from the log.
            self.overflowed = True

    def close(self) -> None:
        self.broker.unsubscribe(self)


class Broker:
    """This process's subscribers, and (on PostgreSQL) the thread listening for other servers' events."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self.listening = threading.Event()

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        self._ensure_listener()
        sub = Subscription(self, frozenset(channels))
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def dispatch(self, event: Event) -> None:
        """Hand ``event`` to its subscribers: one wake-up per event loop, not one per subscriber (a message
        to a crisis room with hundreds of listeners stays one cheap step for the loop serving them)."""
        with self._lock:
            by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
            for s in self._subs:
                if event.channel in s.channels:
                    by_loop.setdefault(s.loop, []).append(s)
        for loop, subs in by_loop.items():
            loop.call_soon_threadsafe(_put_all, subs, event)

    # PostgreSQL LISTEN ------------------------------------------------------------------------------------
    def _ensure_listener(self) -> None:
        if not get_settings().database_url.startswith("postgres"):
            return
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._stop.clear()
            self._listener = threading.Thread(target=self._listen, name="rdn-events", daemon=True)
            self._listener.start()

    def start(self) -> None:
        """Start listening now (app start-up), rather than at the first subscription."""
        self._ensure_listener()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        import psycopg

        url = db.normalise_url(get_settings().database_url).replace("postgresql+psycopg://", "postgresql://")
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_notify(note.payload)
            except Exception:
                self.listening.clear()
                log.exception("event listener lost its connection; reconnecting")
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
        self.listening.clear()

    def _on_notify(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            if msg.get("ref"):
                with db.new_session() as session:
                    row = session.get(EventLog, msg["id"])
                    if row is None:
                        return
                    msg = {"id": row.id, "channel": row.channel, "type": row.type, "data": row.data}
            self.dispatch(Event(int(msg["id"]), msg["channel"], msg["type"], msg["data"]))
        except Exception:
            log.exception("bad event notification")


def _put_all(subs: list[Subscription], event: Event) -> None:
    for sub in subs:
        sub.put(event)


broker = Broker()


REPLAY_OVERLAP = timedelta(seconds=10)


def replay(session: Session, channels: Iterable[str], after_id: int, limit: int = 500) -> list[Event]:
    """Events after ``after_id`` for a reconnecting client.

    On PostgreSQL ids are handed out when a row is inserted, not when its transaction commits, so an event
    with a smaller id can become visible after a larger one was delivered. The replay therefore also
    includes events written shortly before the last one the client saw: a client may see an event twice
    (receivers treat events as idempotent signals) but does not miss one.
    """
    channels = list(channels)
    seen_at = session.scalar(select(EventLog.created_at).where(EventLog.id == after_id))
    recent = EventLog.id > after_id
    if seen_at is not None:
        recent = recent | ((EventLog.created_at >= seen_at - REPLAY_OVERLAP) & (EventLog.id != after_id))
    rows = session.scalars(
        select(EventLog).where(EventLog.channel.in_(channels), recent).order_by(EventLog.id).limit(limit)
    ).all()
    return [Event(r.id, r.channel, r.type, r.data) for r in rows]


async def _stream(request: Request, channels: frozenset[str], last_event_id: int | None,
                  keepalive: float, recheck: Callable[[], bool] | None) -> AsyncIterator[str]:
    # A stream lasts a bounded time: the browser's EventSource reconnects with Last-Event-ID and replays,
    # so nothing is lost, and proxies and load balancers never hold dead connections for long.
    deadline = time.monotonic() + get_settings().sse_max_seconds
    sub = broker.subscribe(channels)
    try:
        yield "retry: 3000\n\n"
        seen: set[int] = set()
        if last_event_id is not None:
            def _replay() -> list[Event]:
                with db.new_session() as session:
                    return replay(session, channels, last_event_id)

            for event in await asyncio.to_thread(_replay):
                seen.add(event.id)
                yield event.sse()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=min(keepalive, remaining))
            except TimeoutError:
                if time.monotonic() >= deadline or await request.is_disconnected():
                    return
                if recheck is not None and not await asyncio.to_thread(recheck):
                    return  # signed out, revoked, or no longer entitled: the stream ends now
                yield ": keep-alive\n\n"
                continue
            if sub.overflowed:  # fell behind: end the stream; the browser reconnects and replays
                return
            if event.id in seen:
                continue
            yield event.sse()
    finally:
        sub.close()


def sse_response(request: Request, channels: Iterable[str], *, keepalive: float = 15.0,
                 recheck: Callable[[], bool] | None = None) -> StreamingResponse:
    """A Server-Sent Events response for ``channels`` (authorize the channels before calling this).

    ``recheck`` runs at every keep-alive (in a thread); when it answers False the stream ends, so a revoked
    session or a withdrawn right stops the events within ``keepalive`` seconds.
    """
    header = request.headers.get("last-event-id", "")
    last_id = int(header[:18]) if header.isdigit() else None
    return StreamingResponse(
        _stream(request, frozenset(channels), last_id, keepalive, recheck),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@outbox.periodic("prune-event-log", timedelta(hours=1))
def _prune_event_log(ctx: outbox.JobContext) -> None:
    cutoff = clock.now() - timedelta(hours=get_settings().event_retention_hours)
    ctx.session.execute(EventLog.__table__.delete().where(EventLog.created_at < cutoff))
