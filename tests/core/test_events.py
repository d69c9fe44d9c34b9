"""Real-time events: published in a transaction, delivered after commit; replay; the SSE endpoint;
LISTEN/NOTIFY between servers on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from rdn import db
from rdn.core import clock, events, mail
from rdn.core.events import Event, EventLog
from tests.conftest import ON_POSTGRES
from tests.factories import Client

sqlite_only = pytest.mark.skipif(
    ON_POSTGRES, reason="in-process delivery after commit is the SQLite path; on PostgreSQL events travel by "
                        "NOTIFY at a real commit, covered by the test_postgres_* tests on a fresh database")
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="LISTEN/NOTIFY exists only on PostgreSQL: run the suite with RDN_TEST_DATABASE_URL")


async def next_event(sub: events.Subscription, timeout: float = 5.0) -> Event:
    return await asyncio.wait_for(sub.queue.get(), timeout)


async def settle() -> None:
    await asyncio.sleep(0.05)


# In-process delivery (SQLite) --------------------------------------------------------------------------------


@sqlite_only
def test_committed_publish_reaches_subscribers_of_its_channel_only(session):
    async def scenario() -> None:
        sub = events.broker.subscribe(["user:alpha"])
        both = events.broker.subscribe(["user:alpha", "network"])
        other = events.broker.subscribe(["user:beta"])
        try:
            row = events.publish(session, "user:alpha", "case.assigned", {"case": 7})
            await settle()
            assert sub.queue.empty()  # not before the commit
            session.commit()
            got = await next_event(sub)
            assert got == Event(row.id, "user:alpha", "case.assigned", {"case": 7})
            assert await next_event(both) == got
            await settle()
            assert other.queue.empty()
            assert sub.queue.empty()
        finally:
            for s in (sub, both, other):
                s.close()

    asyncio.run(scenario())


@sqlite_only
def test_rolled_back_publish_reaches_nobody(session):
    async def scenario() -> None:
        sub = events.broker.subscribe(["user:alpha"])
        try:
            events.publish(session, "user:alpha", "never.happened", {})
            session.rollback()
            kept = events.publish(session, "user:alpha", "did.happen", {"n": 2})
            session.commit()
            got = await next_event(sub)
            assert (got.id, got.type, got.data) == (kept.id, "did.happen", {"n": 2})
            await settle()
            assert sub.queue.empty()
        finally:
            sub.close()

    asyncio.run(scenario())
    assert [e.type for e in events.replay(session, ["user:alpha"], 0)] == ["did.happen"]


@sqlite_only
def test_a_closed_subscription_receives_nothing_more(session):
    async def scenario() -> None:
        sub = events.broker.subscribe(["user:alpha"])
        count = events.broker.subscriber_count()
        sub.close()
        assert events.broker.subscriber_count() == count - 1
        events.publish(session, "user:alpha", "after.close", {})
        session.commit()
        await settle()
        assert sub.queue.empty()

    asyncio.run(scenario())


@sqlite_only
def test_a_released_savepoint_does_not_announce_events_before_the_commit(session):
    """A savepoint inside the transaction (here the one ``enqueue`` takes for an email's ``dedupe_key``) is not the
    commit: an event published before it must not go out until the whole transaction commits."""

    async def scenario() -> None:
        sub = events.broker.subscribe(["user:alpha"])
        try:
            events.publish(session, "user:alpha", "too.early", {})
            mail.send_email(session, to="ada@rdn.test", subject="Welcome", text="hi",
                            dedupe_key="bravo:events:savepoint")
            await settle()
            assert sub.queue.empty(), "delivered before the transaction committed"
            session.rollback()
            await settle()
            assert sub.queue.empty(), "a rolled-back event was delivered"
        finally:
            sub.close()

    asyncio.run(scenario())
    assert events.replay(session, ["user:alpha"], 0) == []


@sqlite_only
def test_a_rolled_back_savepoint_does_not_cancel_events_published_before_it(session):
    async def scenario() -> None:
        sub = events.broker.subscribe(["user:alpha"])
        try:
            kept = events.publish(session, "user:alpha", "kept", {})
            with pytest.raises(RuntimeError), session.begin_nested():
                events.publish(session, "user:alpha", "inside.failed.savepoint", {})
                raise RuntimeError("the savepoint fails")
            session.commit()
            assert [e.type for e in events.replay(session, ["user:alpha"], 0)] == ["kept"]
            await settle()
            delivered = []
            while not sub.queue.empty():
                delivered.append(sub.queue.get_nowait())
            assert [(e.id, e.type) for e in delivered] == [(kept.id, "kept")]
        finally:
            sub.close()

    asyncio.run(scenario())


def test_subscribe_needs_a_running_event_loop():
    with pytest.raises(RuntimeError):
        events.broker.subscribe(["user:alpha"])


# A day ahead of the real clock: the test network's own events (its organizations being created) carry the
# real time, and must stay well before these (a fixed date here broke the replay test once it had passed).
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def test_replay_returns_later_events_of_the_channels_in_order(session):
    with clock.frozen(T0):
        a1 = events.publish(session, "user:alpha", "one", {"n": 1})
        events.publish(session, "user:beta", "elsewhere", {"n": 0})
        clock.advance(timedelta(seconds=20))
        a2 = events.publish(session, "user:alpha", "two", {"n": 2})
        n3 = events.publish(session, "network", "three", {"n": 3})
        clock.advance(timedelta(seconds=20))
        a4 = events.publish(session, "user:alpha", "four", {"n": 4, "when": "x"})
    session.commit()
    assert a1.id < a2.id < n3.id < a4.id

    replayed = events.replay(session, ["user:alpha", "network"], a1.id)
    assert replayed == [Event(a2.id, "user:alpha", "two", {"n": 2}), Event(n3.id, "network", "three", {"n": 3}),
                        Event(a4.id, "user:alpha", "four", {"n": 4, "when": "x"})]
    assert [e.id for e in events.replay(session, ["user:alpha"], 0)] == [a1.id, a2.id, a4.id]
    assert events.replay(session, ["user:alpha"], a4.id) == []
    assert [e.id for e in events.replay(session, ["user:alpha"], a1.id, limit=1)] == [a2.id]


def test_replay_reaches_back_for_events_that_became_visible_late(session):
    """Ids are handed out at insert, not commit: an event with a smaller id written shortly before the last
    one a client saw may have become visible after it. The replay includes it (a repeat is harmless)."""
    with clock.frozen(T0):
        old = events.publish(session, "user:alpha", "old", {})
        clock.advance(timedelta(seconds=30))
        late = events.publish(session, "user:alpha", "late", {})
        clock.advance(timedelta(seconds=2))
        seen = events.publish(session, "user:alpha", "seen", {})
    session.commit()
    assert [e.id for e in events.replay(session, ["user:alpha"], seen.id)] == [late.id]
    assert old.id not in [e.id for e in events.replay(session, ["user:alpha"], seen.id)]


def test_event_sse_format():
    event = Event(12, "user:x", "case.note", {"text": "hi"})
    assert event.sse() == 'id: 12\nevent: case.note\ndata: {"text": "hi"}\n\n'


# The SSE endpoint -------------------------------------------------------------------------------------------


def frames(text: str) -> list[tuple[int, str, dict]]:  # type: ignore[type-arg]
    """The events of an SSE body, each checked to be exactly ``id: N\\nevent: type\\ndata: {json}``."""
    assert text.startswith("retry: 3000\n\n")
    assert text.endswith("\n\n")
    result = []
    for frame in text[len("retry: 3000\n\n"):].split("\n\n")[:-1]:
        id_line, event_line, data_line = frame.split("\n")
        assert id_line.startswith("id: ") and event_line.startswith("event: ") and data_line.startswith("data: ")
        result.append((int(id_line[4:]), event_line[7:], json.loads(data_line[6:])))
    return result


def expected(*rows: EventLog) -> list[tuple[int, str, dict]]:  # type: ignore[type-arg]
    return [(r.id, r.type, r.data) for r in rows]


def test_sse_replays_the_persona_s_events_after_last_event_id(app, client, network, session):
    officer, minister = network.officer_canada, network.minister_spain
    with clock.frozen(T0):
        marker = events.publish(session, f"user:{officer.id}", "marker", {})
        clock.advance(timedelta(seconds=20))
        mine_1 = events.publish(session, f"user:{officer.id}", "case.note", {"text": "first"})
        theirs = events.publish(session, f"user:{minister.id}", "case.note", {"text": "not yours"})
        clock.advance(timedelta(seconds=20))
        mine_2 = events.publish(session, f"user:{officer.id}", "case.closed", {"case": 3, "ok": True})
    session.commit()

    client.login(session, officer)
    response = client.get("/api/v1/events", headers={"Last-Event-ID": str(marker.id)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    assert frames(response.text) == expected(mine_1, mine_2)
    assert f'retry: 3000\n\nid: {mine_1.id}\nevent: case.note\ndata: {{"text": "first"}}\n\nid: {mine_2.id}\n' \
        in response.text
    assert "not yours" not in response.text

    # Replay starts after the id given.
    response = client.get("/api/v1/events", headers={"Last-Event-ID": str(mine_1.id)})
    assert frames(response.text) == expected(mine_2)

    # Without Last-Event-ID nothing is replayed (the stream ends after RDN_SSE_MAX_SECONDS).
    response = client.get("/api/v1/events")
    assert response.text == "retry: 3000\n\n"

    # The other persona sees their own event and not the officer's.
    other = Client(app).login(session, minister)
    response = other.get("/api/v1/events", headers={"Last-Event-ID": str(marker.id)})
    assert frames(response.text) == expected(theirs)


def test_sse_needs_a_signed_in_person(client):
    response = client.get("/api/v1/events", headers={"Last-Event-ID": "0"})
    assert response.status_code == 401
    assert "event-stream" not in response.headers.get("content-type", "")


# PostgreSQL: LISTEN/NOTIFY across servers --------------------------------------------------------------------



def publish_committed(channel: str, type: str, data: dict) -> int:  # type: ignore[type-arg]
    with db.transaction() as session:
        row = events.publish(session, channel, type, data)
        return row.id


@postgres_only
def test_postgres_committed_publish_is_delivered_through_notify(committed_db):
    async def scenario() -> None:
        broker = events.Broker()
        broker.start()
        try:
            assert await asyncio.to_thread(broker.listening.wait, 15), "the broker never started listening"
            sub = broker.subscribe(["org:pg"])
            other = broker.subscribe(["org:other"])

            session = db.new_session()
            events.publish(session, "org:pg", "rolled.back", {})
            session.rollback()
            session.close()

            small_id = await asyncio.to_thread(publish_committed, "org:pg", "small", {"n": 1, "text": "héllo"})
            got = await next_event(sub, 10)
            assert got == Event(small_id, "org:pg", "small", {"n": 1, "text": "héllo"})

            blob = {"blob": "x" * 9000, "list": list(range(50))}
            assert len(json.dumps(blob).encode()) > 8000  # PostgreSQL refuses a NOTIFY this large
            big_id = await asyncio.to_thread(publish_committed, "org:pg", "large", blob)
            got = await next_event(sub, 10)
            assert got == Event(big_id, "org:pg", "large", blob)

            await asyncio.sleep(0.3)
            assert sub.queue.empty()  # the rolled-back event never came
            assert other.queue.empty()
        finally:
            broker.stop()
            if broker._listener is not None:
                await asyncio.to_thread(broker._listener.join, 5)

    asyncio.run(scenario())


@postgres_only
def test_postgres_two_brokers_both_receive_one_commit(committed_db):
    """Two app servers (two brokers, two LISTEN connections) each fan a commit out to their subscribers."""

    async def scenario() -> None:
        brokers = [events.Broker(), events.Broker()]
        for b in brokers:
            b.start()
        try:
            for b in brokers:
                assert await asyncio.to_thread(b.listening.wait, 15)
            subs = [b.subscribe(["network"]) for b in brokers]
            event_id = await asyncio.to_thread(publish_committed, "network", "org.created", {"id": "x"})
            for sub in subs:
                got = await next_event(sub, 10)
                assert (got.id, got.type, got.data) == (event_id, "org.created", {"id": "x"})
        finally:
            for b in brokers:
                b.stop()
            for b in brokers:
                if b._listener is not None:
                    await asyncio.to_thread(b._listener.join, 5)

    asyncio.run(scenario())
