"""Operations pages: the outbox's dead letters and their retry, the audit log, its filters and its chain."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from rdn.config import get_settings, set_settings
from rdn.core import audit, clock, mail, outbox
from rdn.core.audit import AuditEntry, AuditHead
from rdn.core.mail import send_email
from rdn.core.outbox import JobStatus
from tests.conftest import free_port
from tests.factories import Client

SECRET_LINK = "https://rdn.test/password/set?token=s3cr3t-Tok3n-9f8e7d6c5b4a"
ROW = re.compile(r"<tr>\s*<td>(\d+)</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td><code>([^<]+)</code></td>")


class _Refuse:
    """An SMTP server that refuses every sender: a misconfigured relay."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        return "550 5.7.1 relaying denied"


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def run_worker_against(port: int) -> None:
    """Run due jobs with the SMTP settings pointing at ``port``, then put the settings back."""
    original = get_settings()
    mail._drop_connection()  # this thread's kept connection belongs to the other server
    set_settings(original.model_copy(update={"smtp_port": port}))
    try:
        outbox.Worker().run_until_idle()
    finally:
        mail._drop_connection()
        set_settings(original)


def audit_rows(html: str) -> list[tuple[int, str, str]]:
    return [(int(seq), who, action) for seq, who, action in ROW.findall(html)]


def test_a_dead_email_is_listed_retried_and_then_delivered(app, network, session, mailbox, refusing_smtp):
    job = send_email(session, to="refugee-desk@rdn.test", subject="Your travel documents",
                     text=f"Hello,\n\nOpen {SECRET_LINK} to see your documents.\n")
    session.commit()
    run_worker_against(refusing_smtp)
    session.refresh(job)
    assert job.status == JobStatus.dead
    assert "550" in (job.last_error or "")
    assert mailbox.to("refugee-desk@rdn.test") == []

    admin = Client(app).login(session, network.admin_secretariat)
    listing = admin.get("/admin/jobs")
    assert listing.status_code == 200
    assert f'href="/admin/jobs/{job.id}"' in listing.text
    assert "Your travel documents" in listing.text
    assert f'action="/admin/jobs/{job.id}/retry"' in listing.text
    detail = admin.get(f"/admin/jobs/{job.id}")
    assert detail.status_code == 200
    api = admin.get("/api/v1/jobs")
    assert api.status_code == 200 and str(job.id) in api.text
    for page in (listing, detail, api):
        assert "s3cr3t-Tok3n" not in page.text
        assert "/password/set" not in page.text
        assert "to see your documents" not in page.text

    r = admin.post(f"/admin/jobs/{job.id}/retry")
    assert r.status_code == 303
    session.refresh(job)
    assert job.status == JobStatus.pending and job.attempts == 0
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "job.retry")).all()
    assert entry.object_id == str(job.id)
    assert entry.actor_user_id == network.admin_secretariat.id
    assert entry.actor_label == network.admin_secretariat.email

    outbox.Worker().run_until_idle()
    [delivered] = mailbox.to("refugee-desk@rdn.test")
    assert delivered["Subject"] == "Your travel documents"
    body = delivered.get_payload(decode=True)
    assert isinstance(body, bytes) and SECRET_LINK.encode() in body
    session.refresh(job)
    assert job.status == JobStatus.done

    # A delivered job is not sent again.
    again = admin.post(f"/admin/jobs/{job.id}/retry")
    assert again.status_code == 409
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "job.retry")) == 1


def test_only_the_secretariat_runs_the_outbox(app, network, session):
    job = send_email(session, to="someone@rdn.test", subject="Dead", text="x")
    job.status = JobStatus.dead
    session.commit()
    canada = Client(app).login(session, network.admin_canada)
    assert canada.get("/admin/jobs").status_code == 403
    assert canada.get(f"/admin/jobs/{job.id}").status_code == 404
    assert canada.post(f"/admin/jobs/{job.id}/retry").status_code == 404
    session.refresh(job)
    assert job.status == JobStatus.dead


def test_audit_log_lists_entries_and_filters_by_action(app, network, session):
    admin = Client(app).login(session, network.admin_secretariat)
    everything = audit_rows(admin.get("/admin/audit").text)
    actions = {action for _, _, action in everything}
    assert {"org.create", "person.create", "membership.grant"} <= actions
    assert [seq for seq, _, _ in everything] == sorted((seq for seq, _, _ in everything), reverse=True)

    orgs = audit_rows(admin.get("/admin/audit", params={"action": "org.create"}).text)
    assert len(orgs) == len(network.orgs)
    assert {action for _, _, action in orgs} == {"org.create"}
    memberships = audit_rows(admin.get("/admin/audit", params={"action": "membership."}).text)
    assert memberships and {action for _, _, action in memberships} == {"membership.grant"}
    assert audit_rows(admin.get("/admin/audit", params={"action": "no.such.action"}).text) == []


def test_audit_verify_reports_the_chain_intact_and_then_broken(app, network, session):
    admin = Client(app).login(session, network.admin_secretariat)
    r = admin.post("/admin/audit/verify")
    assert r.status_code == 200
    assert "The chain is intact" in r.text
    total = session.scalar(select(func.count()).select_from(AuditEntry))
    assert f"{total:,} entries checked" in r.text

    # An entry slipped in without the head knowing is reported.
    head = session.get(AuditHead, 1)
    assert head is not None
    forged = AuditEntry(seq=head.seq + 1, ts=clock.now(), actor_user_id=None, actor_label="intruder",
                        org_id=None, action="org.create", object_type=None, object_id=None, purpose=None,
                        request_id=None, details={}, prev_hash=head.hash, hash="0" * 64)
    session.add(forged)
    session.commit()
    r = admin.post("/admin/audit/verify")
    assert r.status_code == 200
    assert "The chain is intact" not in r.text
    assert f"The chain is broken at entry {head.seq + 1}" in r.text
    assert not audit.verify(session).ok

    canada = Client(app).login(session, network.admin_canada)
    assert canada.post("/admin/audit/verify").status_code == 403


def test_an_organization_admin_sees_only_its_organizations_entries(app, network, session):
    canada = network.orgs["canada"]
    c = Client(app).login(session, network.admin_canada)
    r = c.get("/admin/audit")
    assert r.status_code == 200
    rows = audit_rows(r.text)
    assert rows
    seen = {seq for seq, _, _ in rows}
    for seq in seen:
        entry = session.get(AuditEntry, seq)
        assert entry is not None and entry.org_id == canada.id, (seq, entry.action if entry else None)
    ours = set(session.scalars(select(AuditEntry.seq).where(AuditEntry.org_id == canada.id)))
    assert seen == ours
    spain_create = session.scalars(select(AuditEntry.seq).where(AuditEntry.action == "org.create",
                                                                AuditEntry.org_id == network.orgs["spain"].id)).one()
    assert spain_create not in seen
    filtered = audit_rows(c.get("/admin/audit", params={"action": "org.create"}).text)
    assert len(filtered) == 1
    api = c.get("/api/v1/audit", params={"per_page": 100}).json()
    assert {item["org_id"] for item in api["items"]} == {str(canada.id)}
    assert {item["seq"] for item in api["items"]} == ours

    # People without an administrator role see none of it.
    officer = Client(app).login(session, network.officer_canada)
    assert officer.get("/admin/audit").status_code == 403

