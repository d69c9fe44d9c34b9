"""The demo network: member governments, agencies, Safe Mobility offices, NGOs, sponsor groups, personas.

Membership is data, not code: this is one realistic configuration (the members named at the network's
launch in 2022 and those who joined in 2024), not a fixed list anything depends on.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from importlib import resources

from sqlalchemy import select

from rdn.core import identity
from rdn.core.audit import Actor
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Organization, OrgKind, Role
from rdn.network import service

DEMO_PASSWORD = "Resettle-Demo-2026!"  # noqa: S105 - printed on screen on purpose: demo only
DEMO_ACTOR = Actor("rdn demo")

GOVERNMENTS = [
    ("Australia", "au", "AU"), ("Brazil", "br", "BR"), ("Canada", "ca", "CA"), ("Germany", "de", "DE"),
    ("Italy", "it", "IT"), ("New Zealand", "nz", "NZ"), ("Spain", "es", "ES"),
    ("United Kingdom", "gb", "GB"), ("United States", "us", "US"),
]
OTHERS = [
    ("RDN Secretariat", "secretariat", OrgKind.secretariat, None),
    ("European Commission", "ec", OrgKind.observer, "EU"),
    ("UNHCR-like Refugee Agency (demo)", "unhcr-like", OrgKind.agency, "CH"),
    ("IOM-like Migration Agency (demo)", "iom-like", OrgKind.agency, "CH"),
    ("Harbour Resettlement Services", "harbour-ngo", OrgKind.ngo, "CA"),
    ("Puentes Refugee Support", "puentes-ngo", OrgKind.ngo, "ES"),
    ("Maple Street Welcome Circle", "maple-circle", OrgKind.sponsor_group, "CA"),
    ("Riverside Welcome Group", "riverside-welcome", OrgKind.sponsor_group, "US"),
    ("Südstadt Willkommen", "suedstadt-willkommen", OrgKind.sponsor_group, "DE"),
]

#: key, email, name, organization, roles
PERSONAS = [
    ("admin_secretariat", "admin@secretariat.rdn.example", "Amina Diallo", "secretariat",
     [Role.admin, Role.senior_official]),
    ("minister_spain", "minister@es.rdn.example", "Lucía Fernández", "es", [Role.senior_official]),
    ("officer_canada", "officer@ca.rdn.example", "Daniel Tremblay", "ca", [Role.officer]),
    ("admin_canada", "admin@ca.rdn.example", "Priya Nair", "ca", [Role.admin]),
    ("minister_germany", "minister@de.rdn.example", "Jonas Weber", "de", [Role.senior_official]),
    ("officer_us", "officer@us.rdn.example", "Grace Kim", "us", [Role.officer]),
    ("caseworker_unhcr", "caseworker@unhcr-like.rdn.example", "Fatima Rahimi", "unhcr-like", [Role.caseworker]),
    ("admin_unhcr", "admin@unhcr-like.rdn.example", "Samuel Okafor", "unhcr-like", [Role.admin, Role.senior_official]),
    ("officer_iom", "officer@iom-like.rdn.example", "Carlos Mendoza", "iom-like", [Role.officer]),
    ("caseworker_costa_rica", "caseworker@smo-cr.rdn.example", "Ana Jiménez", "smo-cr", [Role.caseworker]),
    ("analyst_ec", "analyst@ec.rdn.example", "Sophie Laurent", "ec", [Role.analyst]),
    ("caseworker_ngo", "caseworker@harbour.rdn.example", "Omar Haddad", "harbour-ngo", [Role.caseworker]),
    ("sponsor_group_a", "sponsor@maple.rdn.example", "Emma Wilson", "maple-circle", [Role.admin, Role.sponsor]),
]


def demo_totp_secret(email: str) -> str:
    """A fixed TOTP secret per persona, printed on screen so the demo can be signed into."""
    return base64.b32encode(hashlib.sha256(b"rdn-demo-totp:" + email.encode()).digest()[:20]).decode()


def _mobility_offices() -> list[tuple[str, str, str]]:
    text = resources.files("rdn.demo_data").joinpath("safe-mobility-offices.csv").read_text(encoding="utf-8")
    return [(f"Safe Mobility Office {row['office_country']}", f"smo-{row['office_country_iso'].lower()}",
             row["office_country_iso"]) for row in csv.DictReader(text.splitlines())]


def seed(ctx: DemoContext) -> None:
    session = ctx.session
    existing = {o.short_name: o for o in session.scalars(select(Organization))}
    if "secretariat" in existing:
        ctx.orgs.update(existing)
    else:
        for name, short, country in GOVERNMENTS:
            ctx.orgs[short] = service.create_organization(session, actor=DEMO_ACTOR, name=name, short_name=short,
                                                          kind=OrgKind.government, country=country)
        for name, short, kind, country in OTHERS:
            ctx.orgs[short] = service.create_organization(session, actor=DEMO_ACTOR, name=name, short_name=short,
                                                          kind=kind, country=country)
        for name, short, country in _mobility_offices():
            ctx.orgs[short] = service.create_organization(session, actor=DEMO_ACTOR, name=name, short_name=short,
                                                          kind=OrgKind.mobility_office, country=country)
        ctx.say(f"Created {len(ctx.orgs)} organizations")
    for key, email, name, org_short, roles in PERSONAS:
        user = session.scalars(select(identity.User).where(identity.User.email == email)).first()
        org = ctx.orgs[org_short]
        if user is None:
            user = service.create_person(session, actor=DEMO_ACTOR, email=email, full_name=name, org=org,
                                         role=roles[0], password=DEMO_PASSWORD, invite=False)
            for role in roles[1:]:
                service.grant_role(session, actor=DEMO_ACTOR, user=user, org=org, role=role)
            if identity.mfa_required(session, user.id):
                identity.confirm_totp(session, user, demo_totp_secret(email))
        ctx.people[key] = user
        ctx.personas.append({
            "persona": key, "email": email, "password": DEMO_PASSWORD, "organization": org.name,
            "roles": ", ".join(r.value for r in roles),
            "totp_secret": demo_totp_secret(email) if user.mfa_enrolled else "(none: MFA optional)",
        })
