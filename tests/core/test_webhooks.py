"""Outgoing webhooks: signed per Standard Webhooks, delivered to a real HTTP server in a thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rdn.core import clock, outbox, webhooks
from rdn.core.outbox import Job, JobStatus
from rdn.core.webhooks import WebhookEndpoint, WebhookError
from tests.http_sink import Received, Sink, serve


@dataclass
class Receiver:
    """A local HTTP server taking webhooks; it answers with ``statuses`` in turn, then 200."""

    sink: Sink
    statuses: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.sink.url

    @property
    def port(self) -> int:
        return self.sink.port

    @property
    def requests(self) -> list[Received]:
        return self.sink.requests


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    def reply(n: int) -> tuple[int, None]:
        return (state.statuses.pop(0) if state.statuses else 200), None

    with serve(reply, path="/hooks/rdn") as sink:
        state = Receiver(sink)
        yield state


def fresh(session, job_id) -> Job:  # type: ignore[no-untyped-def]
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def test_emit_delivers_a_signed_request(session, network, receiver):
    org = network.orgs["canada"]
    _, secret = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url, event_types=["*"])
    assert secret.startswith("whsec_")
    jobs = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={"case": 42, "note": "café"})
    assert len(jobs) == 1
    session.commit()
    assert receiver.requests == []  # nothing leaves before the worker runs
    outbox.Worker().run_until_idle()

    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.path == "/hooks/rdn"
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert got.headers.get(name), name
    assert got.headers["webhook-id"] == jobs[0].payload["msg_id"]
    assert got.headers["webhook-signature"].startswith("v1,")
    assert got.headers["content-type"] == "application/json"

    # The reference library and our own receiver code both accept it...
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "case.updated"
    assert payload["data"] == {"case": 42, "note": "café"}
    assert webhooks.verify_signature(secret, got.headers, got.body.decode())

    # ...and refuse it with another secret or a changed body.
    other = webhooks.new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(got.body, got.headers)
    assert not webhooks.verify_signature(other, got.headers, got.body.decode())
    tampered = got.body.replace(b"42", b"43")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, got.headers)
    assert not webhooks.verify_signature(secret, got.headers, tampered.decode())
    assert fresh(session, jobs[0].id).status == JobStatus.done


def test_an_old_timestamp_fails_verification(session, network, receiver):
    org = network.orgs["canada"]
    _, secret = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url)
    webhooks.emit(session, org_id=org.id, event_type="x.y", data={})
    session.commit()
    outbox.Worker().run_until_idle()
    got = receiver.requests[0]
    assert webhooks.verify_signature(secret, got.headers, got.body.decode())
    with clock.frozen(datetime.now(UTC) + timedelta(minutes=10)):
        assert not webhooks.verify_signature(secret, got.headers, got.body.decode())


def test_retry_after_500_keeps_the_same_webhook_id(session, network, receiver):
    org = network.orgs["spain"]
    _, secret = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url)
    receiver.statuses = [500]
    with clock.frozen(datetime.now(UTC).replace(microsecond=0)):
        [job] = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={"n": 1})
        session.commit()
        outbox.Worker().run_until_idle()
        row = fresh(session, job.id)
        assert row.status == JobStatus.pending
        assert row.last_error == "transient: HTTP 500"
        assert len(receiver.requests) == 1

        outbox.Worker().run_until_idle()  # still backing off
        assert len(receiver.requests) == 1

        clock.advance(timedelta(seconds=60))
        outbox.Worker().run_until_idle()
        assert len(receiver.requests) == 2
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == job.payload["msg_id"]
        assert first.body == second.body
        assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 60
        assert webhooks.verify_signature(secret, second.headers, second.body.decode())
    row = fresh(session, job.id)
    assert row.status == JobStatus.done
    assert row.attempts == 2


def test_410_disables_the_endpoint_and_kills_the_job(session, network, receiver):
    org = network.orgs["germany"]
    endpoint, _ = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url)
    receiver.statuses = [410]
    [job] = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={})
    session.commit()
    outbox.Worker().run_until_idle()

    row = fresh(session, job.id)
    assert row.status == JobStatus.dead
    assert row.attempts == 1
    assert "410" in row.last_error
    ep = session.get(WebhookEndpoint, endpoint.id)
    assert ep.active is False
    assert "410" in ep.disabled_reason

    # A disabled endpoint is not sent anything more.
    assert webhooks.emit(session, org_id=org.id, event_type="case.updated", data={}) == []
    session.commit()
    outbox.Worker().run_until_idle()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(("status", "outcome"), [
    (400, JobStatus.dead), (404, JobStatus.dead),
    (429, JobStatus.pending), (503, JobStatus.pending), (408, JobStatus.pending),
])
def test_status_codes_decide_permanent_or_transient(session, network, receiver, status, outcome):
    org = network.orgs["unhcr"]
    endpoint, _ = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url)
    receiver.statuses = [status]
    with clock.frozen(datetime.now(UTC)):
        [job] = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={})
        session.commit()
        outbox.Worker().run_until_idle()
        row = fresh(session, job.id)
        assert row.status == outcome
        assert row.attempts == 1
        prefix = "permanent:" if outcome == JobStatus.dead else "transient:"
        assert row.last_error == f"{prefix} HTTP {status}"
        if outcome == JobStatus.pending:
            assert row.run_at > clock.now()
        clock.advance(timedelta(minutes=2))
        outbox.Worker().run_until_idle()
    assert len(receiver.requests) == (1 if outcome == JobStatus.dead else 2)
    assert session.get(WebhookEndpoint, endpoint.id).active is True  # only a 410 disables the endpoint


def test_unreachable_receiver_is_transient(session, network, receiver):
    org = network.orgs["unhcr"]
    url = receiver.url.replace(str(receiver.port), "1")  # nothing listens on port 1
    webhooks.create_endpoint(session, org_id=org.id, url=url)
    with clock.frozen(datetime.now(UTC)):
        [job] = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={})
        session.commit()
        outbox.Worker().run_until_idle()
    row = fresh(session, job.id)
    assert row.status == JobStatus.pending
    assert row.last_error.startswith("transient: ConnectError")


def test_subscriptions_filter_event_types(session, network, receiver):
    org = network.orgs["canada"]
    webhooks.create_endpoint(session, org_id=org.id, url=receiver.url + "?only=ab", event_types=["a.b"])
    assert webhooks.emit(session, org_id=org.id, event_type="c.d", data={}) == []
    jobs = webhooks.emit(session, org_id=org.id, event_type="a.b", data={"k": 1})
    assert len(jobs) == 1
    # Another organization's event does not reach this organization's endpoint.
    assert webhooks.emit(session, org_id=network.orgs["spain"].id, event_type="a.b", data={}) == []
    session.commit()
    outbox.Worker().run_until_idle()
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["type"] == "a.b"


def test_the_secret_is_not_stored_in_plaintext(session, network, receiver):
    org = network.orgs["canada"]
    endpoint, secret = webhooks.create_endpoint(session, org_id=org.id, url=receiver.url)
    session.commit()
    raw = session.execute(
        select(WebhookEndpoint.__table__.c.secret).where(WebhookEndpoint.__table__.c.id == endpoint.id)
    ).scalar_one()
    raw = bytes(raw)
    assert raw
    key = webhooks._secret_bytes(secret)
    assert secret.encode() not in raw
    assert secret.removeprefix("whsec_").encode() not in raw
    assert key not in raw
    # It opens to the same secret with the organization's key.
    from rdn.core.crypto import Keyring

    session.expire_all()
    assert session.get(WebhookEndpoint, endpoint.id).unseal("secret", keyring=Keyring.of(session)) == secret


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "javascript:alert(1)", "file:///etc/passwd",
                                 "example.org/hook", "http://" + "a" * 500])
def test_check_url_refuses_non_http_urls(url):
    with pytest.raises(WebhookError) as caught:
        webhooks.check_url(url)
    assert str(caught.value).startswith("url:")


def test_check_url_accepts_http_and_https():
    assert webhooks.check_url("  https://example.org/hook ") == "https://example.org/hook"
    assert webhooks.check_url("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080/x"


def test_create_endpoint_refuses_a_bad_url(session, network):
    with pytest.raises(WebhookError, match=r"^url:"):
        webhooks.create_endpoint(session, org_id=network.orgs["canada"].id, url="gopher://x")
