"""Small factories and named personas for tests (Zulip's hamlet/othello, Healthchecks' Alice/Bob).

Personas, each in one organization:
    admin_secretariat  secretariat admin (+ senior official): runs the platform
    admin_canada       admin of Canada (a member government)
    officer_canada     officer of Canada
    minister_spain     senior official of Spain
    minister_germany   senior official of Germany
    caseworker_unhcr   caseworker of a UNHCR-like agency
    analyst_ec         analyst of the European Commission (an observer)
    sponsor_group_a    sponsor (and admin) of a sponsor group: a citizen, MFA optional
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rdn.core import identity
from rdn.core.audit import Actor
from rdn.core.identity import User
from rdn.core.tenancy import Organization, OrgKind, Role
from rdn.core.web import session_cookie_name
from rdn.network import service

PASSWORD = "correct horse battery staple"
ACTOR = Actor("tests")

ORGS = {
    "secretariat": ("RDN Secretariat", OrgKind.secretariat, None),
    "canada": ("Canada", OrgKind.government, "CA"),
    "spain": ("Spain", OrgKind.government, "ES"),
    "germany": ("Germany", OrgKind.government, "DE"),
    "unhcr": ("UNHCR-like Agency", OrgKind.agency, "CH"),
    "ec": ("European Commission", OrgKind.observer, "EU"),
    "maple": ("Maple Street Welcome Circle", OrgKind.sponsor_group, "CA"),
    "smo": ("Safe Mobility Office Costa Rica", OrgKind.mobility_office, "CR"),
}

PERSONAS = {
    "admin_secretariat": ("secretariat", [Role.admin, Role.senior_official]),
    "admin_canada": ("canada", [Role.admin]),
    "officer_canada": ("canada", [Role.officer]),
    "minister_spain": ("spain", [Role.senior_official]),
    "minister_germany": ("germany", [Role.senior_official]),
    "caseworker_unhcr": ("unhcr", [Role.caseworker]),
    "admin_unhcr": ("unhcr", [Role.admin, Role.senior_official]),
    "analyst_ec": ("ec", [Role.analyst]),
    "sponsor_group_a": ("maple", [Role.admin, Role.sponsor]),
    "caseworker_smo": ("smo", [Role.caseworker]),
    "officer_smo": ("smo", [Role.officer]),
}


@dataclass
class Network:
    session: Session
    orgs: dict[str, Organization] = field(default_factory=dict)
    people: dict[str, User] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        people = self.__dict__.get("people", {})
        if name in people:
            return people[name]
        raise AttributeError(name)

    def org_of(self, persona: str) -> Organization:
        return self.orgs[PERSONAS[persona][0]]


def make_org(session: Session, key: str, name: str | None = None, kind: OrgKind = OrgKind.government,
             country: str | None = "CA") -> Organization:
    return service.create_organization(session, actor=ACTOR, name=name or key.title(), short_name=key,
                                       kind=kind, country=country)


def make_person(session: Session, email: str, org: Organization, roles: list[Role], *, mfa: bool = True,
                name: str | None = None) -> tuple[User, str | None]:
    user = service.create_person(session, actor=ACTOR, email=email, full_name=name or email.split("@")[0].title(),
                                 org=org, role=roles[0], password=PASSWORD, invite=False)
    for role in roles[1:]:
        service.grant_role(session, actor=ACTOR, user=user, org=org, role=role)
    secret = None
    if mfa:
        secret = identity.new_totp_secret()
        identity.confirm_totp(session, user, secret)
    session.flush()
    return user, secret


def build_network(session: Session) -> Network:
    net = Network(session)
    for key, (name, kind, country) in ORGS.items():
        net.orgs[key] = make_org(session, key, name, kind, country)
    for persona, (org_key, roles) in PERSONAS.items():
        user, secret = make_person(session, f"{persona}@rdn.test", net.orgs[org_key], roles,
                                   mfa=org_key != "maple", name=persona.replace("_", " ").title())
        net.people[persona] = user
        if secret:
            net.totp[persona] = secret
    session.commit()
    return net


class Client(TestClient):
    """A test client that signs in as a persona (a real session row) and sends the CSRF token."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, base_url="http://testserver", follow_redirects=False)
        self.csrf: str | None = None
        self.session_row_id: uuid.UUID | None = None

    def login(self, session: Session, user: User, *, org: Organization | None = None, mfa: bool = True) -> Client:
        token, row = identity.start_session(session, user, ip="127.0.0.1", user_agent="pytest")
        identity.activate_session(row, mfa=mfa)
        if org is not None:
            row.active_org_id = org.id
        session.commit()
        self.cookies.set(session_cookie_name(), token)
        self.csrf = row.csrf_token
        self.session_row_id = row.id
        return self

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.csrf and method.upper() in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRF-Token", self.csrf)
            kwargs["headers"] = headers
        return super().request(method, url, *args, **kwargs)


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def mail_text(msg: Message) -> str:
    """The text/plain part of a received email."""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def api_token(session: Session, user: User, org: Organization, scopes: list[str]) -> dict[str, str]:
    plaintext, _ = identity.create_token(session, user=user, org_id=org.id, name="test", scopes=scopes)
    session.commit()
    return {"Authorization": f"Bearer {plaintext}"}
