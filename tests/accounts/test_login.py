"""Signing in through the real forms: password, TOTP, enrolment, throttling, sessions, password links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rdn.core import clock, identity, outbox
from rdn.core.audit import AuditEntry
from rdn.core.identity import User, UserSession
from rdn.core.outbox import Job
from rdn.core.tenancy import Role
from tests.factories import PASSWORD, Client, csrf_of, mail_text, make_person

# Tomorrow at a fixed time of day: after the real time the test network's own rows carry (a fixed date
# would fall behind it once that day had passed).
T0 = datetime.now(UTC).replace(hour=9, minute=1, second=7, microsecond=0) + timedelta(days=1)
ALERT = re.compile(r'<div class="alert" role="alert"><p[^>]*>(.*?)</p></div>', re.S)
LINK = re.compile(r"http://testserver(/password/set\?token=[A-Za-z0-9_\-]+)")


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    with clock.frozen(T0):
        yield


def browser(app: Any) -> TestClient:
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def form_next(html: str, action: str) -> str:
    """The hidden ``next`` of the form posting to ``action`` (the language switcher has one too)."""
    start = html.index(f'action="{action}"')
    match = re.search(r'name="next" value="([^"]*)"', html[start:])
    assert match
    return match.group(1)


def code_for(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def submit_password(c: TestClient, email: str, password: str = PASSWORD, next: str = "/") -> Any:
    page = c.get("/login")
    assert page.status_code == 200
    return c.post("/login", data={"email": email, "password": password, "next": next,
                                  "csrf_token": csrf_of(page.text)})


def submit_code(c: TestClient, code: str, next: str = "/") -> Any:
    page = c.get("/login/mfa", params={"next": next})
    assert page.status_code == 200, page.status_code
    return c.post("/login/mfa", data={"code": code, "next": next, "csrf_token": csrf_of(page.text)})


def sign_in(app: Any, user: User, secret: str | None) -> TestClient:
    """The whole sign-in through the forms; returns a browser on the home page."""
    c = browser(app)
    r = submit_password(c, user.email)
    if secret is not None:
        assert r.status_code == 303 and r.headers["location"].startswith("/login/mfa")
        r = submit_code(c, code_for(secret))
    assert r.status_code == 303 and r.headers["location"] == "/", (r.status_code, r.headers.get("location"))
    assert c.get("/").status_code == 200
    return c


def session_cookie_header(response: Any) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie" and "rdn_session=" in v]
    assert len(cookies) == 1, cookies
    return cookies[0]


def count_audit(session: Any, action: str) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


# Sign in -----------------------------------------------------------------------------------------------------


def test_government_sign_in_goes_through_password_then_totp(app, network, session):
    officer = network.officer_canada
    c = browser(app)
    page = c.get("/login")
    assert page.status_code == 200
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]{20,}">', page.text)

    r = c.post("/login", data={"email": officer.email, "password": PASSWORD, "next": "/",
                               "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login/mfa")
    pending_cookie = c.cookies.get("rdn_session")
    assert pending_cookie
    # Half signed in is not signed in.
    home = c.get("/")
    assert home.status_code == 303 and home.headers["location"].startswith("/login")

    r = submit_code(c, code_for(network.totp["officer_canada"]))
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert c.cookies.get("rdn_session") != pending_cookie, "the session token is renewed after the second step"
    home = c.get("/")
    assert home.status_code == 200
    assert "Officer Canada" in home.text

    # The token seen before the second step is worthless now.
    old = browser(app)
    old.cookies.set("rdn_session", pending_cookie)
    assert old.get("/").status_code == 303
    assert count_audit(session, "login.success") == 1


def test_wrong_password_and_unknown_email_answer_alike(app, network, session):
    c = browser(app)
    wrong = submit_password(c, network.officer_canada.email, "not the password at all")
    unknown = submit_password(c, "nobody-here@rdn.test", "not the password at all")
    assert wrong.status_code == unknown.status_code == 400
    wrong_error, unknown_error = ALERT.search(wrong.text), ALERT.search(unknown.text)
    assert wrong_error and unknown_error
    assert wrong_error.group(1) == unknown_error.group(1)
    assert "rdn_session" not in c.cookies
    assert count_audit(session, "login.failed") == 2


def test_account_is_throttled_after_too_many_wrong_passwords(app, network, settings):
    sponsor = network.sponsor_group_a
    c = browser(app)
    assert settings.login_max_failures == 5
    for attempt in range(settings.login_max_failures):
        email = sponsor.email.upper() if attempt % 2 else f"  {sponsor.email} "  # the same account
        assert submit_password(c, email, "wrong password, again").status_code == 400
    r = submit_password(c, sponsor.email, PASSWORD)
    assert r.status_code == 429
    assert "Retry-After" in r.headers
    assert "rdn_session" not in c.cookies
    # Another account is not affected by this one's throttle.
    assert submit_password(browser(app), network.admin_secretariat.email).status_code == 303
    clock.advance(timedelta(minutes=settings.login_window_minutes))
    assert submit_password(c, sponsor.email, PASSWORD).status_code == 303


def test_a_totp_code_cannot_be_used_twice(app, network):
    officer = network.officer_canada
    secret = network.totp["officer_canada"]
    code = code_for(secret)
    first = browser(app)
    assert submit_password(first, officer.email).status_code == 303
    assert submit_code(first, code).headers["location"] == "/"

    second = browser(app)
    assert submit_password(second, officer.email).status_code == 303
    replay = submit_code(second, code)
    assert replay.status_code == 400
    assert second.get("/").status_code == 303  # not signed in
    clock.advance(timedelta(seconds=30))
    fresh = submit_code(second, code_for(secret))
    assert fresh.status_code == 303 and fresh.headers["location"] == "/"
    assert second.get("/").status_code == 200


def test_sponsor_goes_straight_in_after_the_password(app, network):
    c = browser(app)
    r = submit_password(c, network.sponsor_group_a.email, next="/account")
    assert r.status_code == 303
    assert r.headers["location"] == "/account"
    assert c.get("/account").status_code == 200


def test_government_user_without_totp_enrols_then_is_signed_in(app, network, session):
    user, _ = make_person(session, "new-officer@rdn.test", network.orgs["canada"], [Role.officer], mfa=False)
    session.commit()
    c = browser(app)
    r = submit_password(c, user.email)
    assert r.status_code == 303 and r.headers["location"].startswith("/mfa/enrol")
    assert c.get("/").status_code == 303  # enrolment is due before anything else

    page = c.get(r.headers["location"])
    assert page.status_code == 200
    shown = re.search(r'class="secret"[^>]*>([A-Z2-7 ]+)</code>', page.text)
    pending = re.search(r'name="pending" value="([^"]+)"', page.text)
    assert shown and pending
    secret = shown.group(1).replace(" ", "")

    wrong = c.post("/mfa/enrol", data={"code": "000000" if code_for(secret) != "000000" else "111111",
                                        "pending": pending.group(1), "next": "/", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 400
    r = c.post("/mfa/enrol", data={"code": code_for(secret), "pending": pending.group(1), "next": "/",
                                   "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert c.get("/").status_code == 200
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None and stored.mfa_enrolled
    assert identity.get_totp_secret(session, stored) == secret
    assert count_audit(session, "mfa.enrolled") == 1


# Sessions ----------------------------------------------------------------------------------------------------


def test_idle_session_ends_after_thirty_minutes(app, network):
    c = sign_in(app, network.sponsor_group_a, None)
    clock.advance(timedelta(minutes=29))
    assert c.get("/").status_code == 200
    clock.advance(timedelta(minutes=30, seconds=1))
    r = c.get("/account")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_last_seen_is_written_at_most_every_thirty_seconds(app, network, session):
    c = sign_in(app, network.sponsor_group_a, None)

    def seen() -> datetime:
        session.expire_all()
        return session.scalars(select(UserSession.last_seen_at).where(
            UserSession.user_id == network.sponsor_group_a.id).order_by(UserSession.created_at.desc())).first()

    first = seen()
    clock.advance(timedelta(seconds=20))
    assert c.get("/").status_code == 200
    assert seen() == first  # too soon: nothing written
    clock.advance(timedelta(seconds=20))
    assert c.get("/").status_code == 200
    assert seen() == clock.now() != first


def test_session_ends_after_twelve_hours_even_when_used(app, network, settings):
    assert settings.session_absolute_hours == 12
    c = sign_in(app, network.sponsor_group_a, None)
    elapsed = timedelta()
    while elapsed < timedelta(hours=12) - timedelta(minutes=20):
        clock.advance(timedelta(minutes=20))
        elapsed += timedelta(minutes=20)
        assert c.get("/").status_code == 200, elapsed
    clock.advance(timedelta(minutes=20))  # 12 hours after signing in
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_logout_ends_the_session(app, network, session):
    c = sign_in(app, network.officer_canada, network.totp["officer_canada"])
    cookie = c.cookies.get("rdn_session")
    page = c.get("/")
    r = c.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    replay = browser(app)
    replay.cookies.set("rdn_session", cookie)
    assert replay.get("/").status_code == 303
    assert count_audit(session, "logout") == 1


def test_sign_out_everywhere_else_keeps_this_session(app, network, session):
    officer = network.officer_canada
    secret = network.totp["officer_canada"]
    here = sign_in(app, officer, secret)
    clock.advance(timedelta(seconds=30))
    elsewhere = sign_in(app, officer, secret)
    other_user = Client(app).login(session, network.admin_canada)

    page = here.get("/account")
    r = here.post("/account/sessions/revoke-all", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert here.get("/account").status_code == 200
    gone = elsewhere.get("/account")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert other_user.get("/").status_code == 200
    assert count_audit(session, "session.revoke_all") == 1


def test_session_revoked_by_an_administrator_is_refused_at_once(app, network, session):
    officer = network.officer_canada
    c = sign_in(app, officer, network.totp["officer_canada"])
    admin = Client(app).login(session, network.admin_canada)
    r = admin.post(f"/people/{officer.id}/sessions/revoke")
    assert r.status_code == 303
    refused = c.get("/")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    api = c.get("/api/v1/me")
    assert api.status_code == 401
    rows = session.scalars(select(UserSession).where(UserSession.user_id == officer.id)).all()
    assert rows and all(row.revoked_at is not None for row in rows)


def test_session_cookie_is_httponly_and_samesite_lax(app, network):
    c = browser(app)
    r = submit_password(c, network.officer_canada.email)
    for response in (r, submit_code(c, code_for(network.totp["officer_canada"]))):
        header = session_cookie_header(response).lower()
        assert "httponly" in header
        assert "samesite=lax" in header
        assert "path=/" in header


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example"])
def test_next_never_leaves_the_site(app, network, target):
    form = browser(app).get("/login", params={"next": target})
    assert form_next(form.text, "/login") == "/"
    # Government: through the second step.
    c = browser(app)
    r = submit_password(c, network.officer_canada.email, next=target)
    assert r.status_code == 303
    assert "evil.example" not in r.headers["location"]
    r = submit_code(c, code_for(network.totp["officer_canada"]), next=target)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # Already signed in.
    r = c.get("/login", params={"next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"
    # Sponsor: straight in.
    r = submit_password(browser(app), network.sponsor_group_a.email, next=target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_next_with_a_query_survives_the_second_step(app, network):
    target = "/organizations?kind=government&country=CA"
    c = browser(app)
    form = c.get("/login", params={"next": target})
    r = c.post("/login", data={"email": network.officer_canada.email, "password": PASSWORD,
                               "next": form_next(form.text, "/login").replace("&amp;", "&"),
                               "csrf_token": csrf_of(form.text)})
    assert r.status_code == 303
    # Follow the redirects as a browser would.
    mfa_page = c.get(r.headers["location"])
    assert mfa_page.status_code == 200
    carried = form_next(mfa_page.text, "/login/mfa").replace("&amp;", "&")
    r = c.post("/login/mfa", data={"code": code_for(network.totp["officer_canada"]), "next": carried,
                                   "csrf_token": csrf_of(mfa_page.text)})
    assert r.status_code == 303
    assert r.headers["location"] == target


def test_too_many_wrong_codes_end_the_pending_sign_in(app, network):
    from rdn.accounts.pages import MFA_FAILURES

    c = browser(app)
    assert submit_password(c, network.officer_canada.email).status_code == 303
    wrong = "000000" if code_for(network.totp["officer_canada"]) != "000000" else "111111"
    for _ in range(MFA_FAILURES - 1):
        assert submit_code(c, wrong).status_code == 400
    page = c.get("/login/mfa")
    r = c.post("/login/mfa", data={"code": wrong, "next": "/", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    # The pending sign-in is over: the code form is gone; the password is asked again.
    again = c.get("/login/mfa")
    assert again.status_code == 303 and again.headers["location"] == "/login"
    assert c.get("/").status_code == 303


def test_a_new_password_login_gives_no_new_guesses_at_the_code(app, network):
    """Wrong codes count against the person, not the pending sign-in: logging in with the password again
    does not buy more guesses, and while locked even the right code is refused."""
    from rdn.accounts.pages import MFA_FAILURES

    secret = network.totp["officer_canada"]
    wrong = "000000" if code_for(secret) != "000000" else "111111"
    guesses = 0
    for _ in range(4):
        c = browser(app)
        assert submit_password(c, network.officer_canada.email).status_code == 303
        for _ in range(3):
            r = submit_code(c, wrong)
            guesses += 1
            if r.status_code == 303:
                break
    assert guesses >= MFA_FAILURES
    c = browser(app)
    assert submit_password(c, network.officer_canada.email).status_code == 303
    r = submit_code(c, code_for(secret))
    assert r.status_code in (303, 400) and r.headers.get("location") != "/", "locked: even the right code fails"
    assert c.get("/").status_code == 303



def test_in_production_the_session_cookie_is_secure_and_cleared_securely(network, production_app):
    c = TestClient(production_app, base_url="https://testserver", follow_redirects=False)
    page = c.get("/login")
    r = c.post("/login", data={"email": network.sponsor_group_a.email, "password": PASSWORD, "next": "/",
                               "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    [cookie] = [v for k, v in r.headers.multi_items() if k == "set-cookie" and "rdn_session=" in v]
    assert cookie.startswith("__Host-rdn_session=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
    assert not any(a.startswith("domain=") for a in attributes)

    home = c.get("/")
    assert home.status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_of(home.text)})
    assert r.status_code == 303
    [cleared] = [v for k, v in r.headers.multi_items() if k == "set-cookie" and "rdn_session=" in v]
    assert cleared.startswith("__Host-rdn_session=")
    # Browsers ignore a __Host- cookie set without Secure: the old cookie would stay in the browser.
    assert "secure" in {a.strip().lower() for a in cleared.split(";")[1:]}, cleared


# Password links ----------------------------------------------------------------------------------------------


def test_password_reset_link_sets_a_new_password_once(app, network, session, mailbox):
    sponsor = network.sponsor_group_a
    signed_in = sign_in(app, sponsor, None)
    c = browser(app)
    page = c.get("/password/forgot")
    r = c.post("/password/forgot", data={"email": sponsor.email.upper(), "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    outbox.Worker().run_until_idle()
    messages = mailbox.to(sponsor.email)
    assert len(messages) == 1
    link = LINK.search(mail_text(messages[0]))
    assert link, mail_text(messages[0])

    form = c.get(link.group(1))
    assert form.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token
    new_password = "a brand new passphrase 42"
    r = c.post("/password/set", data={"token": token.group(1), "password": new_password, "confirm": new_password,
                                      "csrf_token": csrf_of(form.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert signed_in.get("/").status_code == 303  # a new password ends the sessions opened with the old one
    assert count_audit(session, "password.set") == 1

    assert submit_password(browser(app), sponsor.email, PASSWORD).status_code == 400
    assert submit_password(browser(app), sponsor.email, new_password).headers["location"] == "/"

    # The link works once.
    assert c.get(link.group(1)).status_code == 404
    again = "yet another passphrase 77"
    r = c.post("/password/set", data={"token": token.group(1), "password": again, "confirm": again,
                                      "csrf_token": csrf_of(form.text)})
    assert r.status_code == 422
    assert submit_password(browser(app), sponsor.email, again).status_code == 400
    assert submit_password(browser(app), sponsor.email, new_password).status_code == 303


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(app, network, session, mailbox):
    c = browser(app)
    page = c.get("/password/forgot")
    jobs_before = session.scalar(select(func.count()).select_from(Job).where(Job.kind == "email"))
    unknown = c.post("/password/forgot", data={"email": "nobody-here@rdn.test", "csrf_token": csrf_of(page.text)})
    assert session.scalar(select(func.count()).select_from(Job).where(Job.kind == "email")) == jobs_before
    known = c.post("/password/forgot", data={"email": network.minister_spain.email,
                                             "csrf_token": csrf_of(page.text)})
    assert unknown.status_code == known.status_code == 303
    assert unknown.headers["location"] == known.headers["location"]
    assert unknown.text == known.text
    outbox.Worker().run_until_idle()
    assert mailbox.to("nobody-here@rdn.test") == []
    assert len(mailbox.to(network.minister_spain.email)) == 1
    assert len(mailbox.messages) == 1
