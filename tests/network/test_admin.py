"""Administration of organizations, people and roles, through the API and the pages; all of it audited."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rdn.core import clock, identity, outbox
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict
from rdn.core.identity import ApiToken, User, UserSession
from rdn.core.tenancy import Membership, Organization, Role
from rdn.network import service
from tests.factories import ACTOR, PASSWORD, Client, api_token, csrf_of, mail_text, make_person

PROBLEM = "application/problem+json"
LINK = re.compile(r"http://testserver(/password/set\?token=[A-Za-z0-9_\-]+)")


def count(session: Any, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def audited(session: Any, action: str, actor: User | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == action)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == actor.id, AuditEntry.actor_label == actor.email)
    return list(session.scalars(stmt.order_by(AuditEntry.seq)))


def membership(session: Any, user: User, org: Organization, role: Role) -> Membership | None:
    return session.scalars(select(Membership).where(Membership.user_id == user.id, Membership.org_id == org.id,
                                                    Membership.role == role)).first()


# The API refuses bad organizations, naming the field, and keeps nothing ---------------------------------------

BAD_ORGS = {
    "bad country": ({"name": "Atlantis", "short_name": "atlantis", "kind": "government", "country": "XX"},
                    "country"),
    "duplicate short name": ({"name": "Canada Again", "short_name": "canada", "kind": "ngo", "country": "CA"},
                             "short_name"),
    "government without country": ({"name": "Nowhere", "short_name": "nowhere", "kind": "government"},
                                    "country"),
    "unknown field": ({"name": "Colourful", "short_name": "colourful", "kind": "ngo", "colour": "blue"},
                      "colour"),
}


@pytest.mark.parametrize("case", list(BAD_ORGS))
def test_api_refuses_a_bad_organization_naming_the_field(app, network, session, case):
    body, field = BAD_ORGS[case]
    headers = api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["admin"])
    orgs, entries = count(session, Organization), count(session, AuditEntry)
    r = TestClient(app).post("/api/v1/organizations", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    session.expire_all()
    assert count(session, Organization) == orgs
    assert count(session, AuditEntry) == entries


# Organizations through the pages -----------------------------------------------------------------------------


def test_secretariat_admin_creates_an_organization(app, network, session):
    admin = Client(app).login(session, network.admin_secretariat)
    form = admin.get("/organizations/new")
    assert form.status_code == 200
    r = admin.post("/organizations/new", data={"name": "Republic of Ireland", "short_name": "ireland",
                                               "kind": "government", "country": "IE"})
    assert r.status_code == 303
    org = session.scalars(select(Organization).where(Organization.short_name == "ireland")).one()
    assert r.headers["location"].startswith(f"/organizations/{org.id}")
    assert org.kind == "government" and org.country == "IE"
    assert "Republic of Ireland" in admin.get(f"/organizations/{org.id}").text
    entries = audited(session, "org.create", network.admin_secretariat)
    assert [e.object_id for e in entries] == [str(org.id)]

    # A refused form keeps nothing.
    before = count(session, AuditEntry)
    bad = admin.post("/organizations/new", data={"name": "Atlantis", "short_name": "atlantis",
                                                 "kind": "government", "country": ""})
    assert bad.status_code == 422
    assert session.scalars(select(Organization).where(Organization.short_name == "atlantis")).first() is None
    assert count(session, AuditEntry) == before

    # Other organizations' administrators cannot create organizations.
    canada = Client(app).login(session, network.admin_canada)
    assert canada.post("/organizations/new", data={"name": "Rogue State", "short_name": "rogue",
                                                   "kind": "ngo"}).status_code == 403
    assert session.scalars(select(Organization).where(Organization.short_name == "rogue")).first() is None


# People ------------------------------------------------------------------------------------------------------


def test_org_admin_adds_a_person_who_accepts_the_invitation(app, network, session, mailbox):
    canada = network.orgs["canada"]
    admin = Client(app).login(session, network.admin_canada)
    assert admin.get("/people/new").status_code == 200
    r = admin.post("/people/new", data={"email": "New.Officer@RDN.test", "full_name": "New Officer",
                                        "org_id": str(canada.id), "role": "officer", "locale": ""})
    assert r.status_code == 303, r.text
    person = session.scalars(select(User).where(User.email == "new.officer@rdn.test")).one()
    assert r.headers["location"].startswith(f"/people/{person.id}")
    assert person.password_hash is None
    assert membership(session, person, canada, Role.officer) is not None
    assert [e.object_id for e in audited(session, "person.create", network.admin_canada)] == [str(person.id)]

    # Not into another organization.
    other = admin.post("/people/new", data={"email": "spy@rdn.test", "full_name": "Spy", "role": "officer",
                                            "org_id": str(network.orgs["spain"].id)})
    assert other.status_code == 422
    assert session.scalars(select(User).where(User.email == "spy@rdn.test")).first() is None

    outbox.Worker().run_until_idle()
    [invitation] = mailbox.to("new.officer@rdn.test")
    link = LINK.search(mail_text(invitation))
    assert link

    browser = TestClient(app, follow_redirects=False)
    form = browser.get(link.group(1))
    assert form.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token
    password = "the invited officer's passphrase"
    r = browser.post("/password/set", data={"token": token.group(1), "password": password, "confirm": password,
                                            "csrf_token": csrf_of(form.text)})
    assert r.status_code == 303
    assert browser.get(link.group(1)).status_code == 404  # used up

    # Now they sign in: password, then (a government) enrolment of the second factor.
    login = browser.get("/login")
    r = browser.post("/login", data={"email": "new.officer@rdn.test", "password": password, "next": "/",
                                     "csrf_token": csrf_of(login.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/mfa/enrol")
    enrol = browser.get(r.headers["location"])
    secret = re.search(r'class="secret"[^>]*>([A-Z2-7 ]+)</code>', enrol.text)
    pending = re.search(r'name="pending" value="([^"]+)"', enrol.text)
    assert secret and pending
    r = browser.post("/mfa/enrol", data={"code": pyotp.TOTP(secret.group(1).replace(" ", "")).at(clock.now()),
                                         "pending": pending.group(1), "next": "/",
                                         "csrf_token": csrf_of(enrol.text)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    home = browser.get("/")
    assert home.status_code == 200 and "New Officer" in home.text


def test_give_and_take_a_role(app, network, session):
    canada = network.orgs["canada"]
    officer = network.officer_canada
    admin = Client(app).login(session, network.admin_canada)
    r = admin.post(f"/people/{officer.id}/roles", data={"org_id": str(canada.id), "role": "analyst"})
    assert r.status_code == 303
    given = membership(session, officer, canada, Role.analyst)
    assert given is not None
    [grant] = audited(session, "membership.grant", network.admin_canada)
    assert grant.object_id == str(officer.id) and grant.details["role"] == "analyst"
    assert "Analyst" in admin.get(f"/people/{officer.id}").text

    r = admin.post(f"/people/{officer.id}/roles/{given.id}/remove")
    assert r.status_code == 303
    session.expire_all()
    assert membership(session, officer, canada, Role.analyst) is None
    assert membership(session, officer, canada, Role.officer) is not None
    [revoke] = audited(session, "membership.revoke", network.admin_canada)
    assert revoke.object_id == str(officer.id) and revoke.details["role"] == "analyst"

    # Canada's administrator gives no roles in Spain.
    r = admin.post(f"/people/{officer.id}/roles", data={"org_id": str(network.orgs["spain"].id),
                                                        "role": "analyst"})
    assert r.status_code == 404
    assert membership(session, officer, network.orgs["spain"], Role.analyst) is None


def test_a_role_the_organization_kind_does_not_have_is_refused(app, network, session):
    canada = network.orgs["canada"]
    maple = network.orgs["maple"]
    officer = network.officer_canada
    before = count(session, AuditEntry), count(session, Membership)
    admin = Client(app).login(session, network.admin_canada)
    r = admin.post(f"/people/{officer.id}/roles", data={"org_id": str(canada.id), "role": "sponsor"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")

    headers = api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["admin"])
    api = TestClient(app)
    r = api.post(f"/api/v1/people/{officer.id}/memberships", json={"org_id": str(canada.id), "role": "sponsor"},
                 headers=headers)
    assert r.status_code == 422
    assert "role" in [e["field"] for e in r.json()["errors"]]
    r = api.post(f"/api/v1/people/{network.sponsor_group_a.id}/memberships",
                 json={"org_id": str(maple.id), "role": "officer"}, headers=headers)
    assert r.status_code == 422
    session.expire_all()
    assert (count(session, AuditEntry), count(session, Membership)) == before
    assert membership(session, officer, canada, Role.sponsor) is None


def test_nobody_takes_away_their_own_roles_and_the_last_secretariat_admin_keeps_the_role(app, network, session):
    secretariat = network.orgs["secretariat"]
    admin = network.admin_secretariat
    own = membership(session, admin, secretariat, Role.admin)
    assert own is not None
    c = Client(app).login(session, admin)
    r = c.delete(f"/api/v1/memberships/{own.id}")
    assert r.status_code == 404  # one's own roles are changed by another administrator
    assert r.headers["content-type"].startswith(PROBLEM)
    session.expire_all()
    assert membership(session, admin, secretariat, Role.admin) is not None
    assert audited(session, "membership.revoke") == []

    # With a second administrator, the first can lose the role.
    second, _ = make_person(session, "second-admin@rdn.test", secretariat, [Role.admin])
    session.commit()
    other = Client(app).login(session, second)
    r = other.post(f"/people/{admin.id}/roles/{own.id}/remove")
    assert r.status_code == 303
    assert membership(session, admin, secretariat, Role.admin) is None
    assert len(audited(session, "membership.revoke", second)) == 1

    # The second is now the last one: the rule holds whoever asks (here the service, as the CLI would).
    last = membership(session, second, secretariat, Role.admin)
    assert last is not None
    with pytest.raises(Conflict):
        service.revoke_role(session, actor=ACTOR, membership=last)  # type: ignore[arg-type]
    session.rollback()
    assert membership(session, second, secretariat, Role.admin) is not None


def test_a_person_of_several_organizations_is_managed_by_the_secretariat(app, network, session):
    admin = network.admin_secretariat
    # Seconded to Canada as well: Canada's administrator manages the Canada role, not the whole account.
    service.grant_role(session, actor=ACTOR, user=admin, org=network.orgs["canada"], role=Role.officer)
    session.commit()
    theirs = Client(app).login(session, admin)
    canada = Client(app).login(session, network.admin_canada)
    for path in (f"/people/{admin.id}/edit", f"/people/{admin.id}/sessions/revoke", f"/people/{admin.id}/mfa/reset"):
        r = canada.post(path, data={"full_name": admin.full_name})  # "active" unticked on the edit form
        assert r.status_code == 404, path
    session.expire_all()
    assert session.get(User, admin.id).active  # type: ignore[union-attr]
    assert theirs.get("/").status_code == 200

    seconded = membership(session, admin, network.orgs["canada"], Role.officer)
    assert seconded is not None
    r = canada.post(f"/people/{admin.id}/roles/{seconded.id}/remove")
    assert r.status_code == 303
    assert membership(session, admin, network.orgs["canada"], Role.officer) is None


def test_the_last_secretariat_admin_cannot_be_deactivated(app, network, session):
    admin = network.admin_secretariat
    theirs = Client(app).login(session, admin)
    r = theirs.patch(f"/api/v1/people/{admin.id}", json={"active": False})
    assert r.status_code == 404  # nobody deactivates themselves through the admin API
    with pytest.raises(Conflict):
        service.update_person(session, actor=ACTOR, user=admin, active=False)  # type: ignore[arg-type]
    session.rollback()
    session.expire_all()
    assert session.get(User, admin.id).active  # type: ignore[union-attr]
    assert theirs.get("/").status_code == 200
    assert audited(session, "person.update") == []


def test_deactivating_a_person_ends_their_sessions_and_tokens(app, network, session):
    officer = network.officer_canada
    canada = network.orgs["canada"]
    theirs = Client(app).login(session, officer)
    headers = api_token(session, officer, canada, ["read"])
    api = TestClient(app)
    assert api.get("/api/v1/me", headers=headers).status_code == 200
    assert theirs.get("/").status_code == 200

    admin = Client(app).login(session, network.admin_canada)
    r = admin.post(f"/people/{officer.id}/edit", data={"full_name": officer.full_name})  # "active" unticked
    assert r.status_code == 303
    session.expire_all()
    assert not session.get(User, officer.id).active  # type: ignore[union-attr]
    r = theirs.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert api.get("/api/v1/me", headers=headers).status_code == 401
    assert all(s.revoked_at is not None
               for s in session.scalars(select(UserSession).where(UserSession.user_id == officer.id)))
    assert all(t.revoked_at is not None
               for t in session.scalars(select(ApiToken).where(ApiToken.user_id == officer.id)))
    [entry] = audited(session, "person.update", network.admin_canada)
    assert entry.object_id == str(officer.id) and "active" in entry.details["fields"]

    # And they cannot sign in again.
    browser = TestClient(app, follow_redirects=False)
    login = browser.get("/login")
    r = browser.post("/login", data={"email": officer.email, "password": PASSWORD,
                                     "csrf_token": csrf_of(login.text)})
    assert r.status_code == 400


def test_a_removed_role_is_refused_on_the_next_request(app, network, session):
    canada_admin = network.admin_canada
    theirs = Client(app).login(session, canada_admin)
    assert theirs.get("/people").status_code == 200
    headers = api_token(session, canada_admin, network.orgs["canada"], ["read", "admin"])
    api = TestClient(app)
    assert api.get("/api/v1/people", headers=headers).status_code == 200
    admin_role = membership(session, canada_admin, network.orgs["canada"], Role.admin)
    assert admin_role is not None

    secretariat = Client(app).login(session, network.admin_secretariat)
    r = secretariat.post(f"/people/{canada_admin.id}/roles/{admin_role.id}/remove")
    assert r.status_code == 303
    assert len(audited(session, "membership.revoke", network.admin_secretariat)) == 1

    assert theirs.get("/people").status_code == 403
    assert theirs.get(f"/people/{network.officer_canada.id}").status_code == 404
    assert theirs.get("/api/v1/people").status_code == 403
    assert api.get("/api/v1/people", headers=headers).status_code == 401  # no role left in Canada


def test_the_organization_switcher_changes_the_acting_organization(app, network, session):
    officer = network.officer_canada
    ec = network.orgs["ec"]
    service.grant_role(session, actor=ACTOR, user=officer, org=ec, role=Role.analyst)
    session.commit()
    c = Client(app).login(session, officer)
    home = c.get("/")
    assert 'id="org-switch"' in home.text
    assert str(ec.id) in home.text
    me = c.get("/api/v1/me").json()
    assert me["acting_for"]["short_name"] == "canada"
    assert me["acting_for"]["roles"] == ["officer"]

    r = c.post("/session/org", data={"org_id": str(ec.id), "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    me = c.get("/api/v1/me").json()
    assert me["acting_for"]["short_name"] == "ec"
    assert me["acting_for"]["roles"] == ["analyst"]
    [entry] = audited(session, "session.switch_org", officer)
    assert entry.object_id == str(ec.id)

    # Not into an organization where they have no role.
    r = c.post("/session/org", data={"org_id": str(network.orgs["spain"].id), "next": "/"})
    assert r.status_code == 404
    assert c.get("/api/v1/me").json()["acting_for"]["short_name"] == "ec"
    row = session.get(UserSession, c.session_row_id)
    session.refresh(row)
    assert row is not None and row.active_org_id == ec.id
    assert identity.default_org_id(session, officer.id) == network.orgs["canada"].id
