"""Regression tests for the security review's fixes: each test fails on the code before them.

MFA guesses counted per person, login attempts counted before the check, the client address never taken
from a client-sent header, in-context 500s and log filters, tokens acting in their organization only,
account recovery revoking tokens, MFA-requiring roles ending MFA-less sessions, the password for a first
MFA enrolment, private webhook destinations in production, outbox releases and failure transactions,
constant-time checks of any text, SMTP errors without addresses, password resets through a job, and the
re-check of long-lived responses.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pyotp
import pytest
from aiosmtpd.controller import Controller
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rdn import db
from rdn.accounts.pages import MFA_FAILURES, MFA_WINDOW
from rdn.app import AccessLogFilter, RequestIdFilter, create_app
from rdn.config import load_settings, set_settings
from rdn.core import audit, clock, identity, mail, outbox, webhooks
from rdn.core.audit import AuditEntry
from rdn.core.context import request_id_var
from rdn.core.crypto import same_secret
from rdn.core.events import EventLog
from rdn.core.identity import ApiToken, User, UserSession
from rdn.core.outbox import Job, JobStatus
from rdn.core.ratelimit import RateLimitWindow
from rdn.core.tenancy import Role
from rdn.core.web import resolve_principal, session_cookie_name, still_entitled
from rdn.core.webhooks import WebhookEndpoint, WebhookError
from rdn.network import service
from tests.conftest import free_port, production_environ, rdn_environ
from tests.factories import ACTOR, PASSWORD, Client, api_token, csrf_of, make_org
from tests.http_sink import Sink, serve

T0 = datetime(2026, 11, 28, 9, 1, 7, tzinfo=UTC)
KIND = "test.echo.hardening"
NEW_PASSWORD = "a brand new passphrase for the tests 42"
PROBLEM = "application/problem+json"
SECRET_SHOWN = re.compile(r'class="secret"[^>]*>([A-Z2-7 ]+)</code>')
PENDING = re.compile(r'name="pending" value="([^"]+)"')

RAN: list[str] = []


@outbox.handler(KIND)
def _echo_job(ctx: outbox.JobContext) -> None:
    RAN.append(ctx.payload["tag"])
    if ctx.payload.get("fail") == "permanent":
        raise outbox.PermanentError("refused for the test")
    if ctx.payload.get("fail") == "transient":
        raise outbox.TransientError("busy for the test")


@pytest.fixture(autouse=True)
def _clean_runs() -> Iterator[None]:
    RAN.clear()
    yield
    RAN.clear()


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.frozen(T0):
        yield


@pytest.fixture
def switch_settings(settings):  # type: ignore[no-untyped-def]
    """Switch to the test settings plus overrides (or any environment); the originals come back after."""

    def switch(environ: dict[str, str] | None = None, **extra: str) -> None:
        mail._drop_connection()
        env = environ if environ is not None else rdn_environ(settings.database_url, settings.smtp_port, **extra)
        set_settings(load_settings(environ=env))

    yield switch
    mail._drop_connection()
    set_settings(settings)


# Helpers -----------------------------------------------------------------------------------------------------


def browser(app: Any) -> TestClient:
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def code_for(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def wrong_code(secret: str) -> str:
    """A code that is not valid in any accepted step now."""
    totp = pyotp.TOTP(secret)
    now = clock.now()
    valid = {totp.at(now + timedelta(seconds=d)) for d in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def submit_password(c: TestClient, email: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    page = c.get("/login")
    assert page.status_code == 200
    return c.post("/login", data={"email": email, "password": password, "next": "/",
                                  "csrf_token": csrf_of(page.text)}, **kwargs)


def submit_code(c: TestClient, code: str) -> Any:
    page = c.get("/login/mfa")
    assert page.status_code == 200, page.status_code
    return c.post("/login/mfa", data={"code": code, "next": "/", "csrf_token": csrf_of(page.text)})


def fresh_job(session, job_id) -> Job:  # type: ignore[no-untyped-def]
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def count_rows(session, *where: Any, model: Any = AuditEntry) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(model).where(*where))


# 1. Wrong TOTP codes count per person for an hour -------------------------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_wrong_codes_over_several_password_logins_lock_even_the_right_code(app, network, session):
    officer = network.officer_canada
    secret = network.totp["officer_canada"]
    wrong = wrong_code(secret)
    # Three fresh sign-ins with three wrong codes each: each pending sign-in stays well under the limit...
    for _ in range(3):
        c = browser(app)
        assert submit_password(c, officer.email).status_code == 303
        for _ in range(3):
            assert submit_code(c, wrong).status_code == 400
    # ...but the person has now used MFA_FAILURES - 1 guesses: one more ends the sign-in.
    assert MFA_FAILURES == 10
    c = browser(app)
    assert submit_password(c, officer.email).status_code == 303
    ended = submit_code(c, wrong)
    assert ended.status_code == 303 and ended.headers["location"] == "/login"

    # A new password login buys no new guesses: even the right code is refused for the hour.
    c = browser(app)
    assert submit_password(c, officer.email).status_code == 303
    refused = submit_code(c, code_for(secret))
    assert refused.status_code in (303, 400)
    assert refused.headers.get("location") != "/"
    assert c.get("/").status_code == 303
    assert count_rows(session, AuditEntry.action == "login.success") == 0

    # The count is for an hour: afterwards the right code works again.
    clock.advance(MFA_WINDOW)
    c = browser(app)
    assert submit_password(c, officer.email).status_code == 303
    ok = submit_code(c, code_for(secret))
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert c.get("/").status_code == 200


@pytest.mark.usefixtures("frozen")
def test_wrong_codes_at_login_lock_the_step_up_too(app, client, network, session):
    officer = network.officer_canada
    secret = network.totp["officer_canada"]
    client.login(session, officer)
    row_id = client.session_row_id
    wrong = wrong_code(secret)
    for _ in range(2):
        c = browser(app)
        assert submit_password(c, officer.email).status_code == 303
        for _ in range(MFA_FAILURES // 2):
            submit_code(c, wrong)
    # The signed-in session's step-up shares the person's counter: the right code is refused.
    r = client.post("/account/step-up", data={"code": code_for(secret), "next": "/account"})
    assert not (r.status_code == 303 and r.headers["location"] == "/account"), "the step-up went through"
    session.expire_all()
    row = session.get(UserSession, row_id)
    assert row is not None
    assert row.mfa_at == T0  # the code at sign-in, not a new step-up
    assert count_rows(session, AuditEntry.action == "login.step_up") == 0


@pytest.mark.usefixtures("frozen")
def test_wrong_step_up_codes_count_towards_the_login_lock(app, client, network, session):
    officer = network.officer_canada
    secret = network.totp["officer_canada"]
    client.login(session, officer)
    wrong = wrong_code(secret)
    for _ in range(5):
        r = client.post("/account/step-up", data={"code": wrong, "next": "/account"})
        assert r.status_code == 400  # the session is still alive: five is under the person's limit
    for logins in range(2):
        c = browser(app)
        assert submit_password(c, officer.email).status_code == 303
        for _ in range(3 if logins == 0 else 2):
            submit_code(c, wrong)
    # Ten wrong codes in all (five at the step-up, five at sign-in): the right code is refused now.
    c = browser(app)
    assert submit_password(c, officer.email).status_code == 303
    r = submit_code(c, code_for(secret))
    assert r.headers.get("location") != "/"
    assert c.get("/").status_code == 303
    assert count_rows(session, AuditEntry.action == "login.mfa_failed") >= MFA_FAILURES


# 2. Login attempts are counted before the password check -------------------------------------------------------


def _window_count(connection, key: str) -> int:  # type: ignore[no-untyped-def]
    return int(connection.execute(select(func.coalesce(func.sum(RateLimitWindow.count), 0))
                                  .where(RateLimitWindow.key == key)).scalar_one())


@pytest.mark.usefixtures("frozen")
def test_login_attempts_are_counted_before_the_password_is_checked(app, network, settings, connection,
                                                                  monkeypatch):
    sponsor = network.sponsor_group_a
    email_key, ip_key = ratelimit_keys(sponsor.email, "testclient")
    seen: list[tuple[int, int]] = []
    real_check = identity.check_password

    def observing_check(user: Any, password: str) -> bool:
        # What the counters say while the password is being checked (the real check follows).
        seen.append((_window_count(connection, email_key), _window_count(connection, ip_key)))
        return real_check(user, password)

    monkeypatch.setattr(identity, "check_password", observing_check)
    c = browser(app)
    assert submit_password(c, sponsor.email, "not the password").status_code == 400
    assert seen == [(1, 1)], "the attempt must already be counted when the password is checked"

    for _ in range(settings.login_max_failures - 1):
        assert submit_password(c, sponsor.email, "not the password").status_code == 400
    r = submit_password(c, sponsor.email, PASSWORD)
    assert r.status_code == 429
    assert "Retry-After" in r.headers
    assert len(seen) == settings.login_max_failures  # the throttled attempt was not checked at all


def ratelimit_keys(email: str, ip: str) -> tuple[str, str]:
    import hashlib

    return (f"login:email:{hashlib.sha256(identity.normalise_email(email).encode()).hexdigest()}",
            f"login:ip:{ip}")


@pytest.mark.usefixtures("frozen")
def test_successful_logins_give_back_their_count_on_the_address(app, network, settings, connection):
    sponsor = network.sponsor_group_a
    _, ip_key = ratelimit_keys(sponsor.email, "testclient")
    limit = settings.login_max_failures * 4
    c = browser(app)
    for n in range(limit + 3):
        r = submit_password(c, sponsor.email)
        assert r.status_code == 303, f"successful login {n + 1} was refused ({r.status_code})"
        c.cookies.clear()
    assert _window_count(connection, ip_key) == 0
    # A failure still counts on the address.
    assert submit_password(c, "nobody@rdn.test", "wrong").status_code == 400
    assert _window_count(connection, ip_key) == 1


# 3. The client address is not taken from a client-sent X-Forwarded-For -----------------------------------------


@pytest.mark.parametrize("trust_proxy_headers", ["false", "true"])
def test_a_client_sent_forwarded_for_is_not_recorded(app, network, session, switch_settings, trust_proxy_headers):
    switch_settings(RDN_TRUST_PROXY_HEADERS=trust_proxy_headers)
    sponsor = network.sponsor_group_a
    c = browser(app)
    r = submit_password(c, sponsor.email, headers={"X-Forwarded-For": "1.2.3.4"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    session.expire_all()
    rows = session.scalars(select(UserSession).where(UserSession.user_id == sponsor.id)).all()
    assert len(rows) == 1
    assert rows[0].ip == "testclient"  # the TestClient's own address (what uvicorn would have put there)
    assert "1.2.3.4" not in str(rows[0].ip)


# 4. Unexpected errors are rendered inside the request's context ----------------------------------------------


@pytest.fixture
def broken_listing(monkeypatch):  # type: ignore[no-untyped-def]
    """list_organizations writes an audit entry, then fails unexpectedly."""

    def broken(db: Any, *args: Any, **kwargs: Any) -> Any:
        audit.record(db, action="test.must_vanish", actor=ACTOR)
        db.flush()
        raise RuntimeError("boom for the test")

    monkeypatch.setattr(service, "list_organizations", broken)


@pytest.mark.usefixtures("broken_listing")
def test_an_unexpected_error_on_a_page_is_a_500_in_the_request_s_context(client, network, session, caplog):
    caplog.handler.addFilter(RequestIdFilter())
    client.login(session, network.officer_canada)
    rid = "hardening-500-page"
    with caplog.at_level(logging.ERROR):
        r = client.get("/organizations", headers={"Accept-Language": "fr", "X-Request-ID": rid})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["X-Request-ID"] == rid
    assert "Content-Security-Policy" in r.headers
    assert r.headers["Cache-Control"] == "no-store"
    assert '<html lang="fr"' in r.text
    assert "Référence" in r.text and f"<code>{rid}</code>" in r.text
    assert "Une erreur s" in r.text  # "Something went wrong", in French
    assert "boom for the test" not in r.text
    # The request's work was rolled back.
    assert count_rows(session, AuditEntry.action == "test.must_vanish") == 0
    # The logged error carries the request id.
    logged = [rec for rec in caplog.records if "unhandled error" in rec.getMessage()]
    assert logged and all(getattr(rec, "request_id", None) == rid for rec in logged)


@pytest.mark.usefixtures("broken_listing")
def test_an_unexpected_error_in_the_api_is_a_problem_with_the_request_id(client, network, session):
    headers = api_token(session, network.officer_canada, network.orgs["canada"], ["read"])
    r = client.get("/api/v1/organizations", headers=headers)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == 500
    assert body["request_id"] == r.headers["X-Request-ID"]
    assert "boom" not in r.text
    assert r.headers["Cache-Control"] == "no-store"


def test_request_id_filter_puts_the_request_id_on_log_records():
    record = logging.LogRecord("rdn.test", logging.INFO, __file__, 1, "hello", None, None)
    assert RequestIdFilter().filter(record) is True
    assert record.request_id == "-"  # type: ignore[attr-defined]
    token = request_id_var.set("rid-123")
    try:
        record = logging.LogRecord("rdn.test", logging.INFO, __file__, 1, "hello", None, None)
        assert RequestIdFilter().filter(record) is True
        assert record.request_id == "rid-123"  # type: ignore[attr-defined]
    finally:
        request_id_var.reset(token)


def test_access_log_filter_strips_query_strings():
    fmt = '%s - "%s %s HTTP/%s" %d'
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, fmt,
                               ("127.0.0.1:1", "GET", "/password/set?token=secret", "1.1", 200), None)
    assert AccessLogFilter().filter(record) is True
    message = record.getMessage()
    assert "secret" not in message and "token=" not in message
    assert "/password/set" in message and "127.0.0.1:1" in message and "200" in message
    plain = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, fmt,
                              ("127.0.0.1:1", "GET", "/organizations", "1.1", 200), None)
    AccessLogFilter().filter(plain)
    assert plain.getMessage() == '127.0.0.1:1 - "GET /organizations HTTP/1.1" 200'


# 5. A token acts only in its organization ----------------------------------------------------------------------


def test_a_token_acts_only_in_its_organization(client, network, session):
    officer = network.officer_canada
    canada, spain = network.orgs["canada"], network.orgs["spain"]
    service.grant_role(session, actor=ACTOR, user=officer, org=spain, role=Role.officer)
    session.commit()
    canada_headers = api_token(session, officer, canada, ["read", "write"])
    spain_headers = api_token(session, officer, spain, ["read", "write"])
    tokens = {t.org_id: t for t in session.scalars(select(ApiToken).where(ApiToken.user_id == officer.id))}
    canada_token, spain_token = tokens[canada.id], tokens[spain.id]

    listed = client.get("/api/v1/tokens", headers=canada_headers)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [str(canada_token.id)]

    me = client.get("/api/v1/me", headers=canada_headers)
    assert me.status_code == 200
    assert [o["org_id"] for o in me.json()["organizations"]] == [str(canada.id)]
    assert me.json()["acting_for"]["org_id"] == str(canada.id)

    assert client.delete(f"/api/v1/tokens/{spain_token.id}", headers=canada_headers).status_code == 404
    assert client.get("/api/v1/me", headers=spain_headers).status_code == 200  # still alive
    # The Canada token may revoke itself (the 404 above is not a matter of scope).
    assert client.delete(f"/api/v1/tokens/{canada_token.id}", headers=canada_headers).status_code == 204


# 6. Account recovery revokes API tokens ------------------------------------------------------------------------


def test_setting_a_password_through_a_reset_link_revokes_tokens(client, network, session):
    officer = network.officer_canada
    headers = api_token(session, officer, network.orgs["canada"], ["read"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    link_token = identity.issue_password_token(session, officer, "reset", hours=1)
    service.set_password_with_token(session, token=link_token, password=NEW_PASSWORD)
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_an_mfa_reset_revokes_tokens(client, network, session):
    officer = network.officer_canada
    headers = api_token(session, officer, network.orgs["canada"], ["read"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    service.reset_mfa(session, actor=ACTOR, user=officer)
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert session.scalars(select(ApiToken).where(ApiToken.user_id == officer.id,
                                                  ApiToken.revoked_at.is_(None))).all() == []


# 7. A session without MFA stops once a role needs MFA ----------------------------------------------------------


def test_a_session_without_mfa_stops_when_it_acts_for_an_org_requiring_mfa(client, network, session):
    sponsor = network.sponsor_group_a
    canada = network.orgs["canada"]
    client.login(session, sponsor, mfa=False)
    assert client.get("/").status_code == 200
    service.grant_role(session, actor=ACTOR, user=sponsor, org=canada, role=Role.officer)
    session.commit()
    assert client.get("/").status_code == 200  # still acting for the sponsor group
    r = client.post("/session/org", data={"org_id": str(canada.id), "next": "/"})
    assert r.status_code == 303
    home = client.get("/")
    assert home.status_code == 303 and home.headers["location"].startswith("/login")


# 8. First MFA enrolment asks for the password; password checks are limited ------------------------------------


@pytest.mark.usefixtures("frozen")
def test_first_mfa_enrolment_from_the_account_page_needs_the_password(client, network, session):
    sponsor = network.sponsor_group_a
    client.login(session, sponsor, mfa=False)
    page = client.get("/account/mfa")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    shown, pending = SECRET_SHOWN.search(page.text), PENDING.search(page.text)
    assert shown and pending
    secret = shown.group(1).replace(" ", "")
    code = code_for(secret)

    r = client.post("/account/mfa", data={"code": code, "pending": pending.group(1), "password": "not it"})
    assert r.status_code == 400
    session.expire_all()
    assert not session.get(User, sponsor.id).mfa_enrolled
    r = client.post("/account/mfa", data={"code": code, "pending": pending.group(1)})  # no password at all
    assert r.status_code == 400
    session.expire_all()
    assert not session.get(User, sponsor.id).mfa_enrolled

    r = client.post("/account/mfa", data={"code": code, "pending": pending.group(1), "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account?notice=mfa"
    session.expire_all()
    user = session.get(User, sponsor.id)
    assert user.mfa_enrolled
    assert identity.get_totp_secret(session, user) == secret


@pytest.mark.usefixtures("frozen")
def test_password_change_refuses_after_five_wrong_current_passwords(client, network, session):
    sponsor = network.sponsor_group_a
    client.login(session, sponsor, mfa=False)
    for _ in range(5):
        r = client.post("/account/password", data={"current_password": "wrong", "new_password": NEW_PASSWORD})
        assert r.status_code == 422
    r = client.post("/account/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 422
    session.expire_all()
    user = session.get(User, sponsor.id)
    assert identity.check_password(user, PASSWORD)
    assert not identity.check_password(user, NEW_PASSWORD)
    # After the hour, the right password works again.
    clock.advance(MFA_WINDOW)
    client.login(session, sponsor, mfa=False)
    r = client.post("/account/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 303
    session.expire_all()
    assert identity.check_password(session.get(User, sponsor.id), NEW_PASSWORD)


# 9. Webhook URLs cannot reach private networks in production ---------------------------------------------------


PRIVATE_URLS = ["http://127.0.0.1/hook", "https://10.0.0.1/hook", "https://localhost/hook",
                "https://127.0.0.1:8443/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook",
                "https://192.168.1.20/hook"]


def test_webhook_urls_on_private_networks_are_refused_in_production(settings, switch_settings):
    switch_settings(production_environ(settings.database_url, settings.smtp_port))
    for url in PRIVATE_URLS:
        with pytest.raises(WebhookError) as caught:
            webhooks.check_url(url)
        assert str(caught.value).startswith("url"), (url, str(caught.value))
    assert webhooks.check_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"  # a public address


def test_production_may_allow_private_webhooks_explicitly(settings, switch_settings):
    switch_settings(production_environ(settings.database_url, settings.smtp_port,
                                       RDN_WEBHOOK_ALLOW_PRIVATE="true"))
    assert webhooks.check_url("https://10.0.0.1/hook") == "https://10.0.0.1/hook"


def test_webhook_urls_on_private_networks_are_accepted_in_test_mode(settings):
    assert settings.mode == "test"
    for url in PRIVATE_URLS:
        assert webhooks.check_url(url) == url


# 10. The outbox: released claims, dead-job events, 410 in the failure transaction ------------------------------


def _enqueue_three(session) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    jobs = [outbox.enqueue(session, KIND, {"tag": f"j{n}"}, priority=0) for n in range(3)]
    session.commit()
    return [j.id for j in jobs]



def test_a_stopped_worker_releases_its_unstarted_claims(session):
    ids = _enqueue_three(session)
    worker = outbox.Worker(batch=3)
    worker.stop_event.set()
    assert worker.run_once() == 0
    assert RAN == []
    for job_id in ids:
        job = fresh_job(session, job_id)
        assert job.status == JobStatus.pending
        assert job.attempts == 0
        assert job.lease_token is None and job.lease_until is None
    # They run at once, with their first attempt, on the next worker.
    assert outbox.Worker(batch=3).run_once() == 3
    assert sorted(RAN) == ["j0", "j1", "j2"]
    assert [fresh_job(session, i).attempts for i in ids] == [1, 1, 1]


def test_release_hands_claimed_jobs_back_uncounted(session):
    ids = _enqueue_three(session)
    with db.transaction() as s:
        claimed = outbox.claim(s, limit=3, lease=timedelta(seconds=60))
    assert sorted(c.id for c in claimed) == sorted(ids)
    assert all(fresh_job(session, i).attempts == 1 for i in ids)
    kept, released = claimed[0], claimed[1:]
    outbox.release(released)
    for c in released:
        job = fresh_job(session, c.id)
        assert job.status == JobStatus.pending and job.attempts == 0 and job.lease_token is None
    job = fresh_job(session, kept.id)
    assert job.status == JobStatus.running and job.attempts == 1
    # A stale claim releases nothing (the lease token fences it).
    with db.transaction() as s:
        again = outbox.claim(s, limit=3, lease=timedelta(seconds=60))
    assert sorted(c.id for c in again) == sorted(c.id for c in released)
    outbox.release(released)  # the old tokens
    assert all(fresh_job(session, c.id).status == JobStatus.running for c in released)
    assert all(fresh_job(session, c.id).attempts == 1 for c in released)


def test_a_dead_job_publishes_job_dead_on_ops(session):
    dead = outbox.enqueue(session, KIND, {"tag": "dead", "fail": "permanent"}, priority=0)
    retried = outbox.enqueue(session, KIND, {"tag": "later", "fail": "transient"}, priority=0)
    session.commit()
    outbox.Worker(batch=2).run_once()
    assert fresh_job(session, dead.id).status == JobStatus.dead
    assert fresh_job(session, retried.id).status == JobStatus.pending
    events = session.scalars(select(EventLog).where(EventLog.channel == "ops", EventLog.type == "job.dead")).all()
    assert [e.data for e in events] == [{"id": str(dead.id), "kind": KIND}]


@pytest.fixture
def gone_receiver() -> Iterator[Sink]:
    """A real local HTTP server answering 410 Gone to every POST."""
    with serve(lambda n: (410, None), path="/hooks") as sink:
        yield sink


def test_a_410_disables_the_endpoint_and_writes_an_audit_entry(session, gone_receiver):
    org = make_org(session, "gonehooks")
    endpoint, _ = webhooks.create_endpoint(session, org_id=org.id, url=gone_receiver.url)
    [job] = webhooks.emit(session, org_id=org.id, event_type="case.updated", data={})
    session.commit()
    outbox.Worker().run_until_idle()
    assert len(gone_receiver.requests) == 1
    assert fresh_job(session, job.id).status == JobStatus.dead
    ep = session.get(WebhookEndpoint, endpoint.id)
    assert ep.active is False
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.disabled")).all()
    assert len(entries) == 1
    assert entries[0].object_id == str(endpoint.id)
    assert entries[0].org_id == org.id
    assert audit.verify(session).ok


# 11. Constant-time checks accept any text ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["é".encode("latin-1"), "é".encode()], ids=["latin-1", "utf-8"])
def test_a_non_ascii_csrf_token_is_refused_with_403(client, network, session, raw):
    client.login(session, network.sponsor_group_a, mfa=False)
    r = client.post("/account/profile", data={"full_name": "Renamed", "locale": "en"},
                    headers={"X-CSRF-Token": raw})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    api = client.post("/api/v1/organizations", json={}, headers={"X-CSRF-Token": raw})
    assert api.status_code == 403
    assert api.headers["content-type"].startswith(PROBLEM)
    session.expire_all()
    assert session.get(User, network.sponsor_group_a.id).full_name != "Renamed"


def test_same_secret_compares_any_text():
    assert same_secret("é", "e") is False
    assert same_secret("é", "é") is True
    assert same_secret("\ud800", "x") is False  # a lone surrogate does not raise either
    assert same_secret(None, "x") is False
    assert same_secret("x", None) is False


def test_a_non_ascii_pending_mfa_value_is_refused_not_a_500(client, network, session):
    client.login(session, network.sponsor_group_a, mfa=False)
    r = client.post("/account/mfa", data={"code": "123456", "pending": "ABCDEFGH.é", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa"


# 12. SMTP errors never carry addresses ------------------------------------------------------------------------


class _Refusing:
    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.delivered: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address == self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.delivered.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


REFUSED = "zephyrine.quillfeather@hardening-echo.example"


@pytest.fixture
def refusing_smtp(switch_settings) -> Iterator[_Refusing]:  # type: ignore[no-untyped-def]
    handler = _Refusing(REFUSED)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    switch_settings(RDN_SMTP_PORT=str(port))
    try:
        yield handler
    finally:
        mail._drop_connection()
        controller.stop()


def test_smtp_refusals_are_recorded_without_the_address(session, refusing_smtp, caplog):
    alone = mail.send_email(session, to=REFUSED, subject="Nobody", text="hello")
    mixed = mail.send_email(session, to=["someone.fine@hardening-echo.example", REFUSED], subject="Half",
                            text="hello")
    session.commit()
    with caplog.at_level(logging.INFO):
        outbox.Worker().run_until_idle()
    for job_id in (alone.id, mixed.id):
        row = fresh_job(session, job_id)
        assert row.status == JobStatus.dead
        assert "550" in row.last_error
        for part in ("zephyrine", "quillfeather", "hardening-echo", "someone.fine"):
            assert part not in row.last_error, row.last_error
    ours = [rec.getMessage() for rec in caplog.records if rec.name.startswith("rdn")]  # not the SMTP server's
    assert any("is dead" in m for m in ours)
    assert not any("zephyrine" in m or "quillfeather" in m for m in ours), ours


# 13. Password resets: the same work either way, limited per address -------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_a_reset_request_does_the_same_work_whether_the_address_exists(app, network, session, mailbox):
    known, unknown = network.sponsor_group_a.email, "no-such-person@rdn.test"
    c = browser(app)

    def ask(email: str) -> Any:
        page = c.get("/password/forgot")
        assert page.status_code == 200
        return c.post("/password/forgot", data={"email": email, "csrf_token": csrf_of(page.text)})

    def jobs(kind: str) -> list[Job]:
        session.expire_all()
        return list(session.scalars(select(Job).where(Job.kind == kind)))

    answers = []
    for email in (known, unknown):
        before = len(jobs("password.reset"))
        r = ask(email)
        answers.append((r.status_code, r.headers.get("location")))
        assert len(jobs("password.reset")) == before + 1
        assert jobs("email") == []  # nothing differs inside the request
    assert answers[0] == answers[1] == (303, "/login?notice=reset-sent")
    assert sorted(j.payload["email"] for j in jobs("password.reset")) == sorted([known, unknown])

    outbox.Worker().run_until_idle()
    assert len(mailbox.to(known)) == 1
    assert mailbox.to(unknown) == []

    # Three requests per address and hour; the fourth is refused, another address is not.
    assert ask(unknown).status_code == 303
    assert ask(unknown).status_code == 303
    refused = ask(unknown)
    assert refused.status_code == 429
    assert len([j for j in jobs("password.reset") if j.payload["email"] == unknown]) == 3
    assert ask("someone-else@rdn.test").status_code == 303


# 14. Long-lived responses re-check the credentials ------------------------------------------------------------


def test_still_entitled_follows_the_session(client, network, session):
    officer = network.officer_canada
    client.login(session, officer)
    cookie = client.cookies.get(session_cookie_name())
    principal = identity.authenticate(session, bearer=None, cookie=cookie)
    assert principal is not None
    session.commit()

    def request_for(path: str, cookies: dict[str, str], headers: dict[str, str], who: Any) -> Any:
        return SimpleNamespace(url=SimpleNamespace(path=path), cookies=cookies, headers=headers,
                               state=SimpleNamespace(principal=who))

    request = request_for("/events", {session_cookie_name(): cookie}, {}, principal)
    assert still_entitled(request)() is True
    assert still_entitled(request, lambda fresh: fresh.org_id == network.orgs["canada"].id)() is True
    assert still_entitled(request, lambda fresh: False)() is False
    someone_else = SimpleNamespace(user_id=network.minister_spain.id)
    assert still_entitled(request_for("/events", {session_cookie_name(): cookie}, {}, someone_else))() is False

    recheck = still_entitled(request)  # built at the start of a stream, called later
    row = session.get(UserSession, client.session_row_id)
    identity.revoke_session(row, "test")
    session.commit()
    assert recheck() is False


def test_still_entitled_follows_the_token(client, network, session):
    officer = network.officer_canada
    headers = api_token(session, officer, network.orgs["canada"], ["read"])
    principal = identity.authenticate(session, bearer=headers["Authorization"].split(" ", 1)[1], cookie=None)
    assert principal is not None
    session.commit()
    request = SimpleNamespace(url=SimpleNamespace(path="/api/v1/events"), cookies={},
                              headers={"authorization": headers["Authorization"]},
                              state=SimpleNamespace(principal=principal))
    recheck = still_entitled(request)
    assert recheck() is True
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == officer.id)).one()
    identity.revoke_token(token)
    session.commit()
    assert recheck() is False


def test_still_entitled_uses_the_client_session_in_a_real_route(client, network, session):
    """The same re-check built from a real request (through an app route's Request object)."""

    app = create_app()
    results: list[bool] = []

    @app.get("/__hardening_probe")
    def probe(request: Request) -> dict[str, bool]:
        resolve_principal(request)
        results.append(still_entitled(request)())
        return {"ok": True}

    c = Client(app)
    c.login(session, network.sponsor_group_a, mfa=False)
    assert c.get("/__hardening_probe").status_code == 200
    identity.revoke_session(session.get(UserSession, c.session_row_id), "test")
    session.commit()
    assert c.get("/__hardening_probe").status_code == 200
    assert results == [True, False]
