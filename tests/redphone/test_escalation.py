"""The red phone's paging: escalation timing on a frozen clock, fencing and the watchdog, chain snapshots,
acknowledgement by signed link, in the app and by SMS, deliveries (email, SMS, governments' systems),
contact method verification, chain warnings, paging rounds and drills, and crisis webhooks.

Everything real: the database, the outbox worker, the SMTP server (``mailbox``), and local HTTP servers in
threads standing in for the SMS provider and the governments' own systems.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from rdn.config import get_settings, load_settings, set_settings
from rdn.core import clock, identity, outbox, webhooks
from rdn.core.errors import ValidationFailed
from rdn.core.events import EventLog
from rdn.core.identity import Principal, User
from rdn.core.mail import message_id_for
from rdn.core.outbox import Job, JobStatus
from rdn.core.tenancy import Organization, Role
from rdn.redphone import chains, escalation, service, sms
from rdn.redphone.chains import LevelSpec
from rdn.redphone.models import (
    ActivationLevel,
    ContactKind,
    ContactMethod,
    Crisis,
    CrisisStatus,
    DeliveryAttempt,
    EscalationRun,
    Page,
    PageStatus,
    RunStatus,
)
from tests.conftest import rdn_environ
from tests.factories import ACTOR, csrf_of, mail_text, make_person
from tests.http_sink import Sink, serve

CODE = re.compile(r"\b(\d{6})\b")


# Local HTTP servers ------------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Sink]:
    """A government's own system, taking webhooks."""
    with serve(lambda n: (200, {"ok": True})) as state:
        yield state


SMS_SECRET = "inbound-secret-for-tests-0123456789"
SMS_TOKEN = "provider-token-abc"


@pytest.fixture
def sms_provider(database_url, smtp_server) -> Iterator[Sink]:  # type: ignore[no-untyped-def]
    """An SMS provider (a local HTTP server) and the settings pointing at it, restored afterwards."""
    original = get_settings()
    with serve(lambda n: (200, {"id": f"prov-{n}"})) as state:
        set_settings(load_settings(environ=rdn_environ(
            database_url, smtp_server[0], RDN_SMS_URL=state.url, RDN_SMS_TOKEN=SMS_TOKEN,
            RDN_SMS_INBOUND_SECRET=SMS_SECRET)))
        try:
            yield state
        finally:
            set_settings(original)


@pytest.fixture
def now() -> Iterator[datetime]:
    """A frozen clock, at the real time (the standardwebhooks library checks timestamps against it)."""
    start = datetime.now(UTC).replace(microsecond=0)
    with clock.frozen(start):
        yield start


# Helpers -----------------------------------------------------------------------------------------------------


def principal(session: Session, user: User, org: Organization) -> Principal:
    return identity.principal_for(session, user, org_id=org.id, via="session")


def run_jobs() -> int:
    return outbox.Worker().run_until_idle()


def person(session: Session, network: Any, org_key: str, name: str, role: Role = Role.officer) -> User:
    user, _secret = make_person(session, f"{name}@rdn.test", network.orgs[org_key], [role],
                                name=name.replace("_", " ").title())
    return user


def pending_code(session: Session, method: ContactMethod) -> str:
    """The code of the verification job queued for ``method`` (for methods whose channel is not under test)."""
    session.flush()
    jobs = [j for j in session.scalars(select(Job).where(Job.kind == "redphone.verify"))
            if j.payload["method_id"] == str(method.id)]
    assert jobs
    return str(jobs[-1].payload["code"])


def reachable(session: Session, user: User, org: Organization, *, kind: str = "email",
              address: str | None = None) -> ContactMethod:
    """Give ``user`` a verified contact method."""
    p = principal(session, user, org)
    method = chains.add_method(session, principal=p, kind=kind, address=address or user.email)
    assert chains.verify_method(session, principal=p, method=method, code=pending_code(session, method))
    return method


def set_chain(session: Session, network: Any, org: Organization, levels: list[tuple[str, int, list[User]]],
              repeat_count: int = 0) -> None:
    chains.set_chain(session, actor=ACTOR, org=org,
                     levels=[LevelSpec(name, wait, [u.id for u in people]) for name, wait, people in levels],
                     repeat_count=repeat_count)


def declare(session: Session, network: Any, **kwargs: Any) -> Crisis:
    actor = principal(session, network.admin_secretariat, network.orgs["secretariat"])
    kwargs.setdefault("title", "Floods in the northern provinces")
    kwargs.setdefault("summary", "Tens of thousands displaced across the border.")
    crisis = service.declare(session, actor=actor, **kwargs)
    session.commit()
    return crisis


def pages(session: Session, crisis: Crisis, user: User | None = None, org: Organization | None = None) -> list[Page]:
    session.expire_all()
    stmt = select(Page).where(Page.crisis_id == crisis.id)
    if user is not None:
        stmt = stmt.where(Page.user_id == user.id)
    if org is not None:
        stmt = stmt.where(Page.org_id == org.id)
    return list(session.scalars(stmt.order_by(Page.created_at, Page.cycle, Page.level)))


def run_of(session: Session, crisis: Crisis, org: Organization) -> EscalationRun:
    session.expire_all()
    run = escalation.current_run(session, crisis.id, org.id)
    assert run is not None
    return run


def runs(session: Session, crisis: Crisis, org: Organization | None = None) -> list[EscalationRun]:
    session.expire_all()
    stmt = select(EscalationRun).where(EscalationRun.crisis_id == crisis.id)
    if org is not None:
        stmt = stmt.where(EscalationRun.org_id == org.id)
    return list(session.scalars(stmt.order_by(EscalationRun.round)))


def subject(message: Message) -> str:
    """The Subject header, unfolded."""
    return re.sub(r"\r?\n", "", str(message["Subject"])).strip()


def subjects(mailbox: Any, address: str) -> list[str]:
    return [subject(m) for m in mailbox.to(address)]


def ack_mails(mailbox: Any, address: str) -> list[Message]:
    return [m for m in mailbox.to(address) if "acknowledged for" in subject(m)]


def attempts(session: Session, page: Page) -> list[DeliveryAttempt]:
    session.expire_all()
    return list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.page_id == page.id)
                                .order_by(DeliveryAttempt.created_at)))


def deliver_jobs(session: Session, page: Page) -> list[Job]:
    session.expire_all()
    return [j for j in session.scalars(select(Job).where(Job.kind == "redphone.deliver"))
            if j.payload["page_id"] == str(page.id)]


# 1. Timing ---------------------------------------------------------------------------------------------------


def test_levels_escalate_on_time_an_ack_ends_one_government_and_exhaustion_alerts_the_secretariat(
        session, network, mailbox, now):
    canada, germany = network.orgs["canada"], network.orgs["germany"]
    officer, head = network.officer_canada, network.admin_canada
    minister, deputy = network.minister_germany, person(session, network, "germany", "deputy_germany")
    chief = person(session, network, "secretariat", "chief_secretariat", Role.senior_official)
    clerk = person(session, network, "secretariat", "clerk_secretariat", Role.officer)
    for user, org in ((officer, canada), (head, canada), (minister, germany), (deputy, germany)):
        reachable(session, user, org)
    set_chain(session, network, canada, [("Duty officer", 5, [officer]), ("Head", 5, [head])], repeat_count=1)
    set_chain(session, network, germany, [("Minister", 5, [minister]), ("Deputy", 5, [deputy])], repeat_count=1)
    session.commit()

    crisis = declare(session, network)
    run_jobs()
    assert [p.user_id for p in pages(session, crisis, org=canada)] == [officer.id]
    assert [p.user_id for p in pages(session, crisis, org=germany)] == [minister.id]
    assert all(p.status == PageStatus.sent for p in pages(session, crisis))
    assert len(mailbox.to(officer.email)) == 1 and len(mailbox.to(minister.email)) == 1
    assert mailbox.to(head.email) == [] and mailbox.to(deputy.email) == []
    mailbox.clear()

    clock.advance(timedelta(minutes=4, seconds=59))
    run_jobs()
    assert pages(session, crisis, head) == [] and pages(session, crisis, deputy) == []
    assert all(p.status == PageStatus.sent for p in pages(session, crisis))

    # Canada's level-1 person answers: Canada's escalation ends, Germany's goes on.
    officer_page = pages(session, crisis, officer)[0]
    canada_run = run_of(session, crisis, canada)
    ran, already = escalation.acknowledge(session, run=canada_run, user=officer, via="app",
                                          actor=principal(session, officer, canada), page=officer_page)
    session.commit()
    assert not already and ran.status == RunStatus.acknowledged

    at_five = clock.advance(timedelta(seconds=2))  # 5 min 1 s after the declaration
    run_jobs()
    [deputy_page] = pages(session, crisis, deputy)
    assert (deputy_page.cycle, deputy_page.level, deputy_page.status) == (0, 1, PageStatus.sent)
    [minister_page] = pages(session, crisis, minister)
    assert minister_page.status == PageStatus.timed_out and minister_page.timed_out_at == at_five
    assert pages(session, crisis, head) == []
    assert pages(session, crisis, officer)[0].status == PageStatus.acknowledged
    canada_run = run_of(session, crisis, canada)
    assert (canada_run.status, canada_run.acknowledged_by_user_id, canada_run.acknowledged_via) == (
        RunStatus.acknowledged, officer.id, "app")
    # The rest of Canada's chain is told who answered.
    assert [subject(m) for m in ack_mails(mailbox, head.email)] == [
        f"Red phone: Officer Canada acknowledged for Canada ({crisis.title})"]
    assert "Officer Canada acknowledged" in mail_text(ack_mails(mailbox, head.email)[0])
    assert ack_mails(mailbox, officer.email) == []

    # Germany's chain runs again (repeat_count=1), then is exhausted.
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        run_jobs()
    germany_pages = pages(session, crisis, org=germany)
    assert [(p.cycle, p.level, p.user_id) for p in germany_pages] == [
        (0, 0, minister.id), (0, 1, deputy.id), (1, 0, minister.id), (1, 1, deputy.id)]
    assert [p.status for p in germany_pages] == [PageStatus.timed_out] * 4
    germany_run = run_of(session, crisis, germany)
    assert germany_run.status == RunStatus.exhausted and germany_run.ended_at == clock.now()
    assert germany_run.next_step_at is None
    # Canada: still acknowledged, never paged again.
    assert run_of(session, crisis, canada).status == RunStatus.acknowledged
    assert [p.user_id for p in pages(session, crisis, org=canada)] == [officer.id]

    for lead in (network.admin_secretariat, chief):
        assert f"Red phone: Germany has not answered ({crisis.title})" in subjects(mailbox, lead.email)
        assert not any("Canada has not answered" in s for s in subjects(mailbox, lead.email))
    assert mailbox.to(clerk.email) == []
    events = session.scalars(select(EventLog).where(EventLog.type == "paging.exhausted")).all()
    assert {(e.channel, e.data.get("org_id")) for e in events} >= {
        (f"crisis:{crisis.id}", str(germany.id)), ("ops", str(germany.id))}
    assert not any(e.data.get("org_id") == str(canada.id) for e in events)


# 2. Fencing and restarts -------------------------------------------------------------------------------------


def test_a_fence_allows_one_step_and_the_watchdog_redrives_an_overdue_run_once(session, network, now):
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    reachable(session, officer, canada)
    reachable(session, head, canada)
    set_chain(session, network, canada, [("Duty officer", 5, [officer]), ("Head", 5, [head])], repeat_count=0)
    session.commit()
    crisis = declare(session, network)
    run = run_of(session, crisis, canada)
    assert (run.fence, run.level) == (0, -1)

    assert escalation.step(session, run.id, 0) is True
    assert escalation.step(session, run.id, 0) is False
    session.commit()
    assert [p.user_id for p in pages(session, crisis, org=canada)] == [officer.id]
    run = run_of(session, crisis, canada)
    assert (run.fence, run.level) == (1, 0)

    # The step job scheduled at the declaration carries fence 0, now stale: it runs and does nothing.
    stale = session.scalars(select(Job).where(Job.dedupe_key == f"step:{run.id}:0")).one()
    run_jobs()
    session.expire_all()
    assert session.get(Job, stale.id).status == JobStatus.done
    assert [p.user_id for p in pages(session, crisis, org=canada)] == [officer.id]
    assert len(deliver_jobs(session, pages(session, crisis, officer)[0])) == 1
    run = run_of(session, crisis, canada)
    assert (run.fence, run.level) == (1, 0)

    # The next step's job loses its way (stuck far in the future): the watchdog re-drives the run.
    lost = session.scalars(select(Job).where(Job.dedupe_key == f"step:{run.id}:1")).one()
    lost.run_at = clock.now() + timedelta(days=1)
    session.commit()
    clock.advance(timedelta(minutes=6))
    run_jobs()
    assert pages(session, crisis, head) == []  # nothing due but the lost job
    worker = outbox.Worker()
    worker.schedule_periodic(force=True)
    worker.run_until_idle()
    assert [p.level for p in pages(session, crisis, head)] == [1]
    run = run_of(session, crisis, canada)
    assert (run.fence, run.level) == (2, 1)
    assert pages(session, crisis, officer)[0].status == PageStatus.timed_out

    # Again in the same minute, and later when the lost job turns up: still one step.
    worker = outbox.Worker()
    worker.schedule_periodic(force=True)
    worker.run_until_idle()
    session.expire_all()
    lost = session.get(Job, lost.id)
    lost.run_at = clock.now()
    session.commit()
    clock.advance(timedelta(minutes=1))
    worker = outbox.Worker()
    worker.schedule_periodic(force=True)
    worker.run_until_idle()
    session.expire_all()
    assert session.get(Job, lost.id).status == JobStatus.done
    assert len(pages(session, crisis, head)) == 1
    run = run_of(session, crisis, canada)
    assert (run.fence, run.level, run.status) == (2, 1, RunStatus.active)
    redrives = [j for j in session.scalars(select(Job).where(Job.kind == "redphone.step"))
                if j.payload["run_id"] == str(run.id) and "watchdog" in (j.dedupe_key or "")]
    assert len(redrives) == 1


# 3. The snapshot ---------------------------------------------------------------------------------------------


def test_editing_the_chain_does_not_change_a_live_run(session, network, now):
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    third = person(session, network, "canada", "third_canada")
    for user in (officer, head, third):
        reachable(session, user, canada)
    set_chain(session, network, canada, [("Duty officer", 5, [officer]), ("Head", 5, [head])])
    session.commit()
    crisis = declare(session, network)
    before = run_of(session, crisis, canada).snapshot

    set_chain(session, network, canada, [("New first", 5, [head]), ("New second", 5, [third])])
    session.commit()
    run = run_of(session, crisis, canada)
    assert run.snapshot == before
    assert [[p["user_id"] for p in level["people"]] for level in run.snapshot["levels"]] == [
        [str(officer.id)], [str(head.id)]]

    run_jobs()
    clock.advance(timedelta(minutes=5, seconds=1))
    run_jobs()
    assert [(p.level, p.user_id) for p in pages(session, crisis, org=canada)] == [(0, officer.id), (1, head.id)]
    assert pages(session, crisis, third) == []

    # A new crisis takes the chain as it stands now.
    second = declare(session, network, title="Earthquake in the east")
    assert [[p["user_id"] for p in level["people"]] for level in run_of(session, second, canada).snapshot["levels"]] \
        == [[str(head.id)], [str(third.id)]]


# 4. Acknowledgement channels ---------------------------------------------------------------------------------


def test_the_signed_link_acknowledges_only_on_post_and_says_who_answered(session, network, client, mailbox, now):
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    third = person(session, network, "canada", "third_canada")
    for user in (officer, head, third):
        reachable(session, user, canada)
    set_chain(session, network, canada, [("Duty", 5, [officer, head]), ("Back-up", 5, [third])])
    session.commit()
    crisis = declare(session, network)
    run_jobs()
    [officer_page] = pages(session, crisis, officer)
    [head_page] = pages(session, crisis, head)
    token = escalation.ack_token(officer_page.id)
    mailbox.clear()

    # Opening the link (as a mail scanner does) changes nothing; it shows a button.
    response = client.get(f"/ack/{token}")
    assert response.status_code == 200
    assert f'action="/ack/{token}"' in response.text and "Acknowledge for Canada" in response.text
    assert client.get(f"/ack/{token}").status_code == 200
    assert run_of(session, crisis, canada).status == RunStatus.active
    assert pages(session, crisis, officer)[0].status == PageStatus.sent

    # A POST without the page's CSRF token is refused.
    assert client.post(f"/ack/{token}", data={}).status_code == 403
    assert run_of(session, crisis, canada).status == RunStatus.active

    csrf = csrf_of(response.text)  # this browser's token (it has no session: no sign-in needed)
    response = client.post(f"/ack/{token}", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert "you acknowledged for Canada" in response.text
    run = run_of(session, crisis, canada)
    assert (run.status, run.acknowledged_by_user_id, run.acknowledged_via) == (
        RunStatus.acknowledged, officer.id, "link")
    assert pages(session, crisis, officer)[0].status == PageStatus.acknowledged

    # A second use (another person's link, opened or pressed) says who acknowledged and changes nothing.
    head_token = escalation.ack_token(head_page.id)
    response = client.get(f"/ack/{head_token}")
    assert response.status_code == 200
    assert "Officer Canada already acknowledged for Canada" in response.text
    assert f'action="/ack/{head_token}"' not in response.text

    # A tampered or made-up token is not found.
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert client.get(f"/ack/{tampered}").status_code == 404
    other_page = uuid.uuid4().hex + "." + token.partition(".")[2]
    assert client.get(f"/ack/{other_page}").status_code == 404
    assert client.get("/ack/nonsense").status_code == 404
    assert client.post(f"/ack/{tampered}", data={"csrf_token": csrf}).status_code == 404

    run_jobs()
    for other in (head, third):
        assert [subject(m) for m in ack_mails(mailbox, other.email)] == [
            f"Red phone: Officer Canada acknowledged for Canada ({crisis.title})"]
    assert ack_mails(mailbox, officer.email) == []

    # Pressing the button of a second link (the other person on duty, a moment too late): the answer names
    # who acknowledged, and thanks nobody who did not.
    response = client.post(f"/ack/{head_token}", data={"csrf_token": csrf})
    assert response.status_code == 200
    run = run_of(session, crisis, canada)
    assert (run.acknowledged_by_user_id, run.acknowledged_via) == (officer.id, "link")
    assert pages(session, crisis, head)[0].status != PageStatus.acknowledged
    assert "Officer Canada already acknowledged for Canada" in response.text


def test_acknowledging_in_the_app_only_for_ones_own_government(session, network, client, mailbox, now):
    canada, germany = network.orgs["canada"], network.orgs["germany"]
    officer, head = network.officer_canada, network.admin_canada
    minister, deputy = network.minister_germany, person(session, network, "germany", "deputy_germany")
    outsider = person(session, network, "canada", "clerk_canada")  # Canada's staff, not in its chain
    for user, org in ((officer, canada), (head, canada), (minister, germany), (deputy, germany)):
        reachable(session, user, org)
    set_chain(session, network, canada, [("Duty", 5, [officer]), ("Head", 5, [head])])
    set_chain(session, network, germany, [("Minister", 5, [minister]), ("Deputy", 5, [deputy])])
    session.commit()
    crisis = declare(session, network)
    run_jobs()
    [officer_page] = pages(session, crisis, officer)
    mailbox.clear()

    # Another government's person cannot acknowledge Canada's run, nor can Canada's staff outside the chain.
    client.login(session, minister)
    assert client.post(f"/pages/{officer_page.id}/acknowledge").status_code == 404
    assert client.post(f"/api/v1/pages/{officer_page.id}/acknowledge").status_code == 404
    client.login(session, outsider)
    assert client.post(f"/crises/{crisis.id}/acknowledge").status_code == 404
    assert client.post(f"/pages/{officer_page.id}/acknowledge").status_code == 404
    client.login(session, network.minister_spain)
    assert client.post(f"/crises/{crisis.id}/acknowledge").status_code == 404
    assert run_of(session, crisis, canada).status == RunStatus.active

    client.login(session, officer)
    response = client.post(f"/pages/{officer_page.id}/acknowledge")
    assert response.status_code == 303 and response.headers["location"] == f"/crises/{crisis.id}"
    run = run_of(session, crisis, canada)
    assert (run.status, run.acknowledged_by_user_id, run.acknowledged_via) == (
        RunStatus.acknowledged, officer.id, "app")
    assert pages(session, crisis, officer)[0].status == PageStatus.acknowledged
    assert run_of(session, crisis, germany).status == RunStatus.active

    client.login(session, minister)
    assert client.post(f"/crises/{crisis.id}/acknowledge").status_code == 303
    run = run_of(session, crisis, germany)
    assert (run.status, run.acknowledged_by_user_id, run.acknowledged_via) == (
        RunStatus.acknowledged, minister.id, "app")
    assert run_of(session, crisis, canada).acknowledged_by_user_id == officer.id

    run_jobs()
    assert [subject(m) for m in ack_mails(mailbox, head.email)] == [
        f"Red phone: Officer Canada acknowledged for Canada ({crisis.title})"]
    assert [subject(m) for m in ack_mails(mailbox, deputy.email)] == [
        f"Red phone: Minister Germany acknowledged for Germany ({crisis.title})"]
    assert ack_mails(mailbox, officer.email) == [] and ack_mails(mailbox, minister.email) == []


PHONE = "+44 7700 900123"
E164 = "+447700900123"


def _sms_chain(session: Session, network: Any, sms_provider: Sink) -> tuple[Crisis, Page, ContactMethod]:
    """Officer Canada reachable by SMS (verified with the code the provider carried) and email; the admin by email."""
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    p = principal(session, officer, canada)
    method = chains.add_method(session, principal=p, kind="sms", address=PHONE)
    session.commit()
    run_jobs()
    [verification] = sms_provider.bodies()
    assert verification["to"] == E164
    code = CODE.search(verification["text"]).group(1)  # type: ignore[union-attr]
    assert chains.verify_method(session, principal=p, method=method, code=code)
    reachable(session, officer, canada)
    reachable(session, head, canada)
    set_chain(session, network, canada, [("Duty", 5, [officer]), ("Head", 5, [head])])
    session.commit()
    crisis = declare(session, network)
    run_jobs()
    [page] = pages(session, crisis, officer)
    return crisis, page, method


def test_an_sms_page_goes_to_the_provider_with_its_code(session, network, sms_provider, mailbox, now):
    _crisis, page, method = _sms_chain(session, network, sms_provider)
    # One delivery job per verified method: the SMS and the email.
    assert len(deliver_jobs(session, page)) == 2
    assert len(mailbox.to(network.officer_canada.email)) == 1
    sent = [(r, r.json()) for r in sms_provider.requests[1:]]
    assert len(sent) == 1
    request, body = sent[0]
    assert body["to"] == E164 and page.short_code in body["text"]
    assert escalation.ack_link(page.id) in body["text"]
    assert body["reference"] == f"page-{page.id.hex[:16]}"
    assert request.headers["authorization"] == f"Bearer {SMS_TOKEN}"
    sms_attempt = [a for a in attempts(session, page) if a.kind == ContactKind.sms]
    assert [(a.outcome, a.reference, a.method_id) for a in sms_attempt] == [("sent", "prov-2", method.id)]


def _inbound(client: Any, data: dict[str, Any], signature: str | None = None) -> Any:
    body = json.dumps(data).encode()
    return client.post("/api/v1/sms/inbound", content=body,
                       headers={"content-type": "application/json",
                                "X-RDN-Signature": signature if signature is not None else sms.signature(body)})


def test_sms_replies_and_receipts_are_matched_to_pages(session, network, sms_provider, mailbox, now):
    """What the inbound endpoint does with a verified body, called directly (the endpoint is tested below)."""
    canada = network.orgs["canada"]
    crisis, page, _method = _sms_chain(session, network, sms_provider)
    mailbox.clear()
    body = json.dumps({"from": E164, "text": page.short_code}).encode()
    assert sms.verify_inbound(body, sms.signature(body))
    assert not sms.verify_inbound(body, "0" * 64) and not sms.verify_inbound(body, None)
    assert not sms.verify_inbound(body.replace(b"+44", b"+45"), sms.signature(body))

    assert escalation.sms_receipt(session, reference="prov-2", status="delivered") is True
    assert escalation.sms_receipt(session, reference="prov-404", status="delivered") is False
    session.commit()
    assert pages(session, crisis, network.officer_canada)[0].status == PageStatus.delivered

    assert escalation.acknowledge_by_sms(session, sender="+447700900999", text=page.short_code) is None
    assert escalation.acknowledge_by_sms(session, sender=E164, text="yes") is None
    session.commit()
    assert run_of(session, crisis, canada).status == RunStatus.active

    run = escalation.acknowledge_by_sms(session, sender="+44 (7700) 900-123", text=f"OK {page.short_code}, on it")
    session.commit()
    assert run is not None
    run = run_of(session, crisis, canada)
    assert (run.status, run.acknowledged_by_user_id, run.acknowledged_via) == (
        RunStatus.acknowledged, network.officer_canada.id, "sms")
    assert pages(session, crisis, network.officer_canada)[0].status == PageStatus.acknowledged
    run_jobs()
    assert [subject(m) for m in ack_mails(mailbox, network.admin_canada.email)] == [
        f"Red phone: Officer Canada acknowledged for Canada ({crisis.title})"]


def test_the_sms_provider_posts_replies_and_receipts_to_the_inbound_endpoint(
        session, network, client, sms_provider, mailbox, now):
    """The provider signs its body and sends no cookie, no CSRF token and no bearer token."""
    canada = network.orgs["canada"]
    crisis, page, _method = _sms_chain(session, network, sms_provider)
    mailbox.clear()

    # A delivery receipt moves the page to delivered.
    response = _inbound(client, {"reference": "prov-2", "status": "delivered"})
    assert response.status_code == 200, response.text
    assert response.json() == {"receipt": True}
    assert pages(session, crisis, network.officer_canada)[0].status == PageStatus.delivered

    # A bad signature is refused; a reply from another number does nothing.
    assert _inbound(client, {"from": E164, "text": page.short_code}, signature="0" * 64).status_code == 401
    assert _inbound(client, {"from": E164, "text": page.short_code}, signature="").status_code == 401
    response = _inbound(client, {"from": "+447700900999", "text": page.short_code})
    assert response.status_code == 200 and response.json() == {"acknowledged": False}
    assert run_of(session, crisis, canada).status == RunStatus.active

    response = _inbound(client, {"from": "+44 (7700) 900-123", "text": f"OK {page.short_code}, on it"})
    assert response.status_code == 200 and response.json() == {"acknowledged": True}
    run = run_of(session, crisis, canada)
    assert (run.status, run.acknowledged_by_user_id, run.acknowledged_via) == (
        RunStatus.acknowledged, network.officer_canada.id, "sms")
    assert pages(session, crisis, network.officer_canada)[0].status == PageStatus.acknowledged

    run_jobs()
    assert [subject(m) for m in ack_mails(mailbox, network.admin_canada.email)] == [
        f"Red phone: Officer Canada acknowledged for Canada ({crisis.title})"]


# 5. Deliveries -----------------------------------------------------------------------------------------------


def test_deliveries_per_method_email_identity_webhook_and_unreachable_people(
        session, network, mailbox, receiver, now):
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    assert not sms.enabled()
    _endpoint, secret = webhooks.create_endpoint(session, org_id=canada.id, url=receiver.url,
                                                event_types=["page.created", "contact.verification"])
    p = principal(session, officer, canada)
    email_method = reachable(session, officer, canada)
    sms_method = reachable(session, officer, canada, kind="sms", address=PHONE)
    system = chains.add_method(session, principal=p, kind="webhook", address="duty-officer-7")
    session.commit()
    run_jobs()
    [verification] = [r for r in receiver.requests if r.json()["type"] == "contact.verification"]
    assert verification.json()["data"]["recipient"] == "duty-officer-7"
    assert chains.verify_method(session, principal=p, method=system, code=verification.json()["data"]["code"])
    # The admin's email is never verified: the admin cannot be reached.
    chains.add_method(session, principal=principal(session, head, canada), kind="email", address=head.email)
    set_chain(session, network, canada, [("Duty", 5, [officer, head])])
    session.commit()
    mailbox.clear()

    crisis = declare(session, network)
    run = run_of(session, crisis, canada)
    assert escalation.step(session, run.id, run.fence)  # what the step job does, here before any delivery
    session.commit()
    [page] = pages(session, crisis, officer)
    jobs = deliver_jobs(session, page)
    assert sorted(j.payload["method_id"] for j in jobs) == sorted([str(email_method.id), str(system.id)])
    [skipped] = attempts(session, page)
    assert (skipped.kind, skipped.outcome, skipped.method_id) == (ContactKind.sms, "skipped", sms_method.id)

    [head_page] = pages(session, crisis, head)
    assert head_page.status == PageStatus.failed and head_page.failed_at == now
    assert deliver_jobs(session, head_page) == []
    assert [(a.outcome, a.detail) for a in attempts(session, head_page)] == [
        ("failed", "no verified contact method")]

    run_jobs()
    # The email: a Message-ID fixed by the page and the method, the ack link and the SMS code.
    [mail] = mailbox.to(officer.email)
    expected_id = message_id_for(f"page-{page.id.hex}-{email_method.id.hex[:12]}")
    assert mail["Message-ID"] == expected_id
    text = mail_text(mail)
    assert escalation.ack_link(page.id) in text and page.short_code in text
    assert "please acknowledge" in subject(mail)
    # Sent again (a retry after a crash), it is the same message.
    session.expire_all()
    email_job = next(j for j in jobs if j.payload["method_id"] == str(email_method.id))
    outbox.retry(session, session.get(Job, email_job.id))
    session.commit()
    run_jobs()
    assert [m["Message-ID"] for m in mailbox.to(officer.email)] == [expected_id, expected_id]

    # The government's system got page.created, signed per Standard Webhooks.
    [delivery] = [r for r in receiver.requests if r.json()["type"] == "page.created"]
    payload = Webhook(secret).verify(delivery.body, delivery.headers)
    assert payload["data"]["recipient"] == "duty-officer-7"
    assert payload["data"]["page_id"] == str(page.id) and payload["data"]["short_code"] == page.short_code
    assert payload["data"]["ack_url"] == escalation.ack_link(page.id)
    assert delivery.headers["webhook-id"] == f"msg_page_{page.id.hex}_{system.id.hex[:12]}"

    outcomes = {(a.kind, a.outcome) for a in attempts(session, page)}
    assert outcomes == {(ContactKind.sms, "skipped"), (ContactKind.email, "sent"), (ContactKind.webhook, "delivered")}
    assert pages(session, crisis, officer)[0].status == PageStatus.delivered


# 6. Contact method verification ------------------------------------------------------------------------------


def _mailed_code(mailbox: Any, address: str) -> str:
    [mail] = mailbox.to(address)
    match = CODE.search(mail_text(mail))
    assert match
    return match.group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_contact_methods_are_verified_with_the_code_sent_to_them(session, network, mailbox, now):
    canada = network.orgs["canada"]
    p = principal(session, network.officer_canada, canada)

    method = chains.add_method(session, principal=p, kind="email", address="duty.desk@rdn.test")
    session.commit()
    assert mailbox.to("duty.desk@rdn.test") == []
    run_jobs()
    code = _mailed_code(mailbox, "duty.desk@rdn.test")
    assert chains.verify_method(session, principal=p, method=method, code=_wrong(code)) is False
    assert method.verified_at is None
    assert chains.verified_methods(session, network.officer_canada.id) == []
    assert chains.verify_method(session, principal=p, method=method, code=f"{code[:3]} {code[3:]}") is True
    assert method.verified_at == now
    assert [m.id for m in chains.verified_methods(session, network.officer_canada.id)] == [method.id]

    # Five wrong attempts, and even the right code is refused.
    second = chains.add_method(session, principal=p, kind="email", address="night.desk@rdn.test")
    session.commit()
    run_jobs()
    code = _mailed_code(mailbox, "night.desk@rdn.test")
    for _ in range(chains.VERIFY_ATTEMPTS):
        assert chains.verify_method(session, principal=p, method=second, code=_wrong(code)) is False
    with pytest.raises(ValidationFailed):
        chains.verify_method(session, principal=p, method=second, code=code)
    assert second.verified_at is None

    # An expired code is refused.
    third = chains.add_method(session, principal=p, kind="email", address="weekend.desk@rdn.test")
    session.commit()
    run_jobs()
    code = _mailed_code(mailbox, "weekend.desk@rdn.test")
    clock.advance(timedelta(minutes=chains.VERIFY_MINUTES, seconds=1))
    with pytest.raises(ValidationFailed):
        chains.verify_method(session, principal=p, method=third, code=code)
    assert third.verified_at is None


# 7. Chain warnings and the daily check -----------------------------------------------------------------------


def test_chain_warnings_and_the_daily_check_once_per_day(session, network, mailbox):
    with clock.frozen(datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)):  # mid-slot
        _chain_warnings_and_daily_check(session, network, mailbox)


def _chain_warnings_and_daily_check(session: Session, network: Any, mailbox: Any) -> None:
    canada = network.orgs["canada"]
    officer, head = network.officer_canada, network.admin_canada
    reachable(session, head, canada)
    set_chain(session, network, canada, [("Duty", 5, [officer, head]), ("Back-up", 5, [])])
    session.commit()

    warnings = chains.chain_warnings(session, canada.id)
    assert {(w.kind, w.level, w.user_id) for w in warnings} == {("unreachable", 0, officer.id),
                                                                  ("empty_level", 1, None)}
    texts = " ".join(w.text for w in warnings)
    assert "Officer Canada" in texts and "Back-up" in texts and "Admin Canada" not in texts
    assert [w.kind for w in chains.chain_warnings(session, network.orgs["spain"].id)] == ["no_chain"]

    title = "Red phone: the contact chain needs attention"
    for _ in range(2):  # a second run in the same daily slot sends nothing new
        worker = outbox.Worker()
        worker.schedule_periodic(force=True)
        worker.run_until_idle()
        clock.advance(timedelta(minutes=1))
    [mail] = [m for m in mailbox.to(head.email) if subject(m) == title]
    text = mail_text(mail)
    assert "Officer Canada" in text and "Back-up" in text and f"/chains/{canada.id}" in text
    assert [m for m in mailbox.to(officer.email) if subject(m) == title] == []  # an officer is not an admin
    assert len([m for m in mailbox.to(network.minister_spain.email) if subject(m) == title]) == 1

    # Fixed: no more mail about Canada the next day; Spain still has no chain.
    reachable(session, officer, canada)
    set_chain(session, network, canada, [("Duty", 5, [officer, head])])
    session.commit()
    assert chains.chain_warnings(session, canada.id) == []
    clock.advance(timedelta(days=1))
    worker = outbox.Worker()
    worker.schedule_periodic(force=True)
    worker.run_until_idle()
    assert len([m for m in mailbox.to(head.email) if subject(m) == title]) == 1
    assert len([m for m in mailbox.to(network.minister_spain.email) if subject(m) == title]) == 2


# 8. Rounds ---------------------------------------------------------------------------------------------------


def test_raising_the_level_closing_reopening_and_drills(session, network, mailbox, now):
    canada, germany = network.orgs["canada"], network.orgs["germany"]
    officer, head, minister = network.officer_canada, network.admin_canada, network.minister_germany
    for user, org in ((officer, canada), (head, canada), (minister, germany)):
        reachable(session, user, org)
    set_chain(session, network, canada, [("Duty", 5, [officer]), ("Head", 5, [head])])
    set_chain(session, network, germany, [("Minister", 60, [minister])])
    session.commit()
    actor = principal(session, network.admin_secretariat, network.orgs["secretariat"])
    crisis = declare(session, network, activation_level=ActivationLevel.monitoring)
    run_jobs()
    assert len(pages(session, crisis, officer)) == 1 and len(pages(session, crisis, minister)) == 1

    # Raising the level: a new round for every government, the previous runs cancelled.
    service.change(session, actor=actor, crisis=crisis, activation_level=ActivationLevel.information_sharing)
    session.commit()
    run_jobs()
    for org in (canada, germany):
        assert [(r.round, r.status, r.trigger) for r in runs(session, crisis, org)] == [
            (1, RunStatus.cancelled, "declared"), (2, RunStatus.active, "level_raised")]
    assert [p.cycle for p in pages(session, crisis, officer)] == [0, 0]
    assert len(pages(session, crisis, minister)) == 2
    # The cancelled round's scheduled steps fall away: only the live round escalates.
    clock.advance(timedelta(minutes=5, seconds=1))
    run_jobs()
    assert len(pages(session, crisis, head)) == 1
    assert pages(session, crisis, head)[0].run_id == runs(session, crisis, canada)[-1].id

    # Lowering it does not page.
    before = len(pages(session, crisis))
    service.change(session, actor=actor, crisis=crisis, activation_level=ActivationLevel.monitoring)
    session.commit()
    run_jobs()
    assert len(pages(session, crisis)) == before
    assert max(r.round for r in runs(session, crisis)) == 2

    # Closing cancels the live runs; nothing is paged afterwards.
    service.change(session, actor=actor, crisis=crisis, status=CrisisStatus.closed)
    session.commit()
    assert [r.status for org in (canada, germany) for r in runs(session, crisis, org)] == [RunStatus.cancelled] * 4
    clock.advance(timedelta(minutes=30))
    run_jobs()
    assert len(pages(session, crisis)) == before

    # Reopening pages again.
    service.change(session, actor=actor, crisis=crisis, status=CrisisStatus.active)
    session.commit()
    run_jobs()
    for org in (canada, germany):
        assert [(r.round, r.status) for r in runs(session, crisis, org)][-1] == (3, RunStatus.active)
        assert runs(session, crisis, org)[-1].trigger == "reopened"
    assert len(pages(session, crisis, officer)) == 3 and len(pages(session, crisis, minister)) == 3

    # A drill pages only the chosen governments, and its emails say so.
    mailbox.clear()
    drill = declare(session, network, title="Winter drill", exercise=True, government_ids=[canada.id])
    run_jobs()
    assert [r.org_id for r in runs(session, drill)] == [canada.id]
    assert [p.user_id for p in pages(session, drill)] == [officer.id]
    [mail] = mailbox.to(officer.email)
    assert subject(mail).startswith("[EXERCISE]") and mail_text(mail).startswith("[EXERCISE]")
    assert mailbox.to(minister.email) == []
    # Raising a drill's level pages its governments again, still only them.
    service.change(session, actor=actor, crisis=drill, activation_level=ActivationLevel.full_activation)
    session.commit()
    run_jobs()
    assert {r.org_id for r in runs(session, drill)} == {canada.id}
    assert len(pages(session, drill, officer)) == 2


# 9. Webhooks for governments' systems ------------------------------------------------------------------------


def test_declaring_sends_crisis_declared_to_each_governments_endpoints(session, network, receiver, now):
    secrets = {}
    for key in ("canada", "germany", "spain"):
        _endpoint, secrets[key] = webhooks.create_endpoint(session, org_id=network.orgs[key].id,
                                                           url=f"{receiver.url}/{key}", event_types=["crisis.declared"])
    session.commit()
    crisis = declare(session, network, activation_level=ActivationLevel.full_activation)
    session.expire_all()
    queued = [j for j in session.scalars(select(Job).where(Job.kind == "webhook"))
              if json.loads(j.payload["body"])["type"] == "crisis.declared"]
    assert sorted(j.org_id for j in queued) == sorted(network.orgs[k].id for k in ("canada", "germany", "spain"))
    run_jobs()
    got = {r.path.rsplit("/", 1)[1]: r for r in receiver.requests if r.json()["type"] == "crisis.declared"}
    assert sorted(got) == ["canada", "germany", "spain"]
    for key, request in got.items():
        payload = Webhook(secrets[key]).verify(request.body, request.headers)
        assert payload["data"] == {"crisis_id": str(crisis.id), "reference": crisis.reference,
                                   "title": crisis.title, "activation_level": "full_activation", "exercise": False}

    # A drill tells only the governments it pages.
    before = len(receiver.requests)
    declare(session, network, title="Spring drill", exercise=True, government_ids=[network.orgs["germany"].id])
    run_jobs()
    drill_calls = [r for r in receiver.requests[before:] if r.json()["type"] == "crisis.declared"]
    assert [r.path.rsplit("/", 1)[1] for r in drill_calls] == ["germany"]
    assert drill_calls[0].json()["data"]["exercise"] is True
