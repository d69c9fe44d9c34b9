"""API tokens: created after a fresh TOTP code, shown once, stored hashed, scoped, revocable, API-only."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from rdn import db
from rdn.config import get_settings, load_settings, set_settings
from rdn.core import clock, identity
from rdn.core.identity import ApiToken
from rdn.core.tenancy import OrgKind, Role
from tests.conftest import ROOT, fresh_database_url, rdn_environ, subprocess_env
from tests.factories import Client, api_token, make_org, make_person

# Tomorrow at a fixed time of day: after the real time the test network's own rows carry (a fixed date
# would fall behind it once that day had passed).
T0 = datetime.now(UTC).replace(hour=10, minute=0, second=3, microsecond=0) + timedelta(days=1)
TOKEN = re.compile(r"rdn_[0-9a-f]{8}_[A-Za-z0-9_\-]{20,}")
PROBLEM = "application/problem+json"


@pytest.fixture
def frozen_clock() -> Iterator[None]:
    with clock.frozen(T0):
        yield


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_on_page(c: Client, name: str = "sync", scopes: tuple[str, ...] = ("read",)) -> Any:
    return c.post("/account/tokens", data={"name": name, "scopes": list(scopes), "days": "30"})


def step_up(c: Client, secret: str, next: str) -> Any:
    page = c.get("/account/step-up", params={"next": next})
    assert page.status_code == 200
    return c.post("/account/step-up", data={"code": pyotp.TOTP(secret).at(clock.now()), "next": next})


@pytest.mark.usefixtures("frozen_clock")
def test_creating_a_token_needs_a_fresh_totp_code(client, network, session):
    officer = network.officer_canada
    client.login(session, officer)
    clock.advance(timedelta(minutes=11))  # signed in with a code, but not within the last ten minutes
    r = create_on_page(client)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/account/step-up")
    assert session.scalars(select(ApiToken).where(ApiToken.user_id == officer.id)).all() == []

    wrong = client.post("/account/step-up", data={"code": "12345", "next": "/account"})
    assert wrong.status_code == 400
    r = step_up(client, network.totp["officer_canada"], "/account")
    assert r.status_code == 303 and r.headers["location"] == "/account"

    r = create_on_page(client, "case sync")
    assert r.status_code == 200
    shown = TOKEN.findall(r.text)
    assert len(set(shown)) == 1
    plaintext = shown[0]

    # Shown once: the account page afterwards lists the token without its secret.
    later = client.get("/account")
    assert later.status_code == 200
    assert plaintext not in later.text
    assert "case sync" in later.text

    # Only the SHA-256 is stored.
    rows = session.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert len(rows) == 1
    assert all(plaintext not in str(value) for value in rows[0].values())
    # The secret is everything after "rdn_<prefix>_"; it may itself hold "_" (URL-safe base64), so split from
    # the left: a split from the right could leave a few characters that occur in the hash by chance.
    secret_part = plaintext.split("_", 2)[2]
    assert len(secret_part) >= 40
    assert all(secret_part not in str(value) for value in rows[0].values())
    assert rows[0]["token_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()

    me = TestClient(client.app).get("/api/v1/me", headers=bearer(plaintext))
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == officer.email
    assert body["via"] == "token"
    assert body["scopes"] == ["read"]
    assert body["acting_for"]["short_name"] == "canada"


@pytest.mark.usefixtures("frozen_clock")
def test_after_the_step_up_the_browser_lands_on_a_page(client, network, session):
    """Followed as a browser does: the refused POST sends to the step-up form, whose answer sends on."""
    client.login(session, network.officer_canada)
    clock.advance(timedelta(minutes=11))  # the code at sign-in is no longer fresh
    r = create_on_page(client)
    assert r.status_code == 303
    form = client.get(r.headers["location"])
    assert form.status_code == 200
    start = form.text.index('action="/account/step-up"')
    carried = re.search(r'name="next" value="([^"]*)"', form.text[start:])
    assert carried
    r = client.post("/account/step-up", data={"code": pyotp.TOTP(network.totp["officer_canada"]).at(clock.now()),
                                              "next": carried.group(1)})
    assert r.status_code == 303
    landing = client.get(r.headers["location"])
    assert landing.status_code == 200, (r.headers["location"], landing.status_code)
    # And the token can be created from there.
    assert TOKEN.search(create_on_page(client).text)


@pytest.mark.usefixtures("frozen_clock")
def test_step_up_is_needed_again_after_ten_minutes(client, network, session):
    client.login(session, network.officer_canada, mfa=True)
    assert create_on_page(client).status_code == 200
    clock.advance(timedelta(minutes=11))
    r = create_on_page(client, "second")
    assert r.status_code == 303 and r.headers["location"].startswith("/account/step-up")


@pytest.mark.usefixtures("frozen_clock")
def test_last_used_is_written_at_most_once_a_minute(app, network, session):
    admin = network.admin_secretariat
    read = api_token(session, admin, network.orgs["secretariat"], ["read"])

    def last_used() -> datetime | None:
        session.expire_all()
        return session.scalars(select(ApiToken.last_used_at).where(ApiToken.user_id == admin.id)).one()

    c = TestClient(app)
    assert last_used() is None
    assert c.get("/api/v1/me", headers=read).status_code == 200
    first = last_used()
    assert first == clock.now()
    clock.advance(timedelta(seconds=50))
    assert c.get("/api/v1/me", headers=read).status_code == 200
    assert last_used() == first  # within the minute: not written again
    clock.advance(timedelta(seconds=20))
    assert c.get("/api/v1/me", headers=read).status_code == 200
    assert last_used() == clock.now() != first


@pytest.mark.usefixtures("frozen_clock")
def test_scopes_limit_what_a_token_can_do(app, network, session):
    admin = network.admin_secretariat
    secretariat = network.orgs["secretariat"]
    read = api_token(session, admin, secretariat, ["read"])
    full = api_token(session, admin, secretariat, ["admin"])
    c = TestClient(app)
    body = {"name": "Ireland", "short_name": "ireland", "kind": "government", "country": "IE"}
    refused = c.post("/api/v1/organizations", json=body, headers=read)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert c.get("/api/v1/organizations", headers=read).status_code == 200
    created = c.post("/api/v1/organizations", json=body, headers=full)
    assert created.status_code == 201, created.text
    assert created.json()["short_name"] == "ireland"


@pytest.mark.usefixtures("frozen_clock")
def test_revoked_and_expired_tokens_get_401_problems(app, client, network, session):
    officer = network.officer_canada
    canada = network.orgs["canada"]
    revoked_plain, revoked = identity.create_token(session, user=officer, org_id=canada.id, name="old",
                                                   scopes=["read"])
    expiring_plain, _ = identity.create_token(session, user=officer, org_id=canada.id, name="short",
                                              scopes=["read"], expires_at=clock.now() + timedelta(days=1))
    session.commit()
    api = TestClient(app)
    assert api.get("/api/v1/me", headers=bearer(revoked_plain)).status_code == 200
    assert api.get("/api/v1/me", headers=bearer(expiring_plain)).status_code == 200

    client.login(session, officer)
    page = client.post(f"/account/tokens/{revoked.id}/revoke")
    assert page.status_code == 303
    clock.advance(timedelta(days=1))
    for token in (revoked_plain, expiring_plain, "rdn_00000000_not-a-real-token-at-all-xxxxxxxx"):
        r = api.get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 401
        assert r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert problem["status"] == 401
        assert {"type", "title", "detail", "instance"} <= set(problem)
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.usefixtures("frozen_clock")
def test_a_bearer_token_does_not_sign_anyone_in_on_pages(app, network, session):
    headers = api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["read", "write", "admin"])
    c = TestClient(app, follow_redirects=False)
    for path in ("/account", "/", "/admin/jobs"):
        r = c.get(path, headers=headers)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login"), path
    assert c.get("/api/v1/me", headers=headers).status_code == 200


# The command line --------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(tmp_path)


def test_cli_token_create_prints_a_working_token_once(fresh_url, smtp_server):
    original = get_settings()
    fresh = load_settings(environ=rdn_environ(fresh_url, smtp_server[0]))
    set_settings(fresh)
    try:
        with db.transaction() as s:
            org = make_org(s, "norway", "Norway", OrgKind.government, "NO")
            make_person(s, "cli-officer@rdn.test", org, [Role.officer], mfa=False)
        env = subprocess_env(fresh_url, smtp_server[0])
        result = subprocess.run(
            [str(Path(sys.executable).parent / "rdn"), "token", "create", "--user", "cli-officer@rdn.test",
             "--scope", "read"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        found = TOKEN.findall(result.stdout)
        assert len(found) == 1, result.stdout
        plaintext = found[0]
        assert result.stdout.strip() == plaintext
        assert plaintext not in result.stderr

        with db.transaction() as s:
            row = s.scalars(select(ApiToken)).one()
            assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
            assert row.scopes == ["read"]
            assert all(plaintext not in str(v) for v in s.execute(text("SELECT * FROM api_tokens")).one())

        from rdn.app import create_app

        with TestClient(create_app(fresh)) as api:
            me = api.get("/api/v1/me", headers=bearer(plaintext))
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "cli-officer@rdn.test"
            assert me.json()["scopes"] == ["read"]
            assert api.post("/api/v1/organizations", headers=bearer(plaintext),
                            json={"name": "X Y", "short_name": "xy", "kind": "ngo"}).status_code == 403
    finally:
        db.engine().dispose()
        set_settings(original)
