"""The Safe Mobility test world: the personas' network plus two Safe Mobility offices (Costa Rica and Colombia,
with their real eligibility: Nicaraguans and Venezuelans present by 12 June 2023; Cubans, Haitians and
Venezuelans present by 11 June 2023), each with staff; an agreement in force from the Costa Rica office to Spain;
pathways of Spain and Canada in the catalog; and a maker of registrations that skips the public form."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rdn.cases.models import Agreement, AgreementStatus
from rdn.core import clock, identity
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization, OrgKind, Role
from rdn.mobility import sealed
from rdn.mobility.models import Office, Registration, RegistrationStatus
from rdn.pathways.catalog import key_rows
from rdn.pathways.models import Pathway, PathwayStatus, PathwayType
from tests.factories import Network, make_org, make_person

#: A fixed "now" for the world (tests that need time to pass use clock.advance).
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)

#: persona -> (office key, roles)
STAFF = {
    "caseworker_cr": ("cr", [Role.caseworker]),
    "officer_cr": ("cr", [Role.officer]),
    "admin_cr": ("cr", [Role.admin]),
    "analyst_cr": ("cr", [Role.analyst]),
    "caseworker_co": ("co", [Role.caseworker]),
    "officer_co": ("co", [Role.officer]),
}


@dataclasses.dataclass
class MobilityWorld:
    session: Session
    net: Network
    offices: dict[str, Office]
    orgs: dict[str, Organization]
    pathways: dict[str, Pathway]
    agreement: Agreement

    def p(self, persona: str, *, fresh: bool = True) -> Principal:
        """``persona`` (of the network or of an office) acting through a browser session."""
        user = self.net.people[persona]
        org = self.orgs[STAFF[persona][0]] if persona in STAFF else self.net.org_of(persona)
        p = identity.principal_for(self.session, user, org_id=org.id, via="session")
        return dataclasses.replace(p, mfa_at=clock.now() if fresh else None)

    def registration(self, office: str = "cr", **kw: Any) -> Registration:
        return make_registration(self.session, self.offices[office], **kw)


def make_registration(session: Session, office: Office, *, given_name: str = "María", family_name: str = "López",
                      nationality: str = "VE", birth_date: date | None = date(1990, 5, 17),
                      arrived_on: date = date(2023, 3, 1), members: list[dict[str, Any]] | None = None,
                      ties: list[str] | None = None, answers: dict[str, Any] | None = None,
                      email: str = "maria@example.org", phone: str = "+506 8888 1234", language: str = "es",
                      status: RegistrationStatus = RegistrationStatus.received, pin: str = "123456",
                      created_at: datetime | None = None) -> Registration:
    """A registration straight into the database (names and contact sealed, keys computed), for tests that are
    not about the public form. ``members``: the others in the household, as profile entries with optional
    ``given_name``/``family_name``."""
    now = created_at or clock.now()
    others = members or []
    profile_members = [{"relationship": "principal", "sex": "f", "birth_date": birth_date.isoformat()
                        if birth_date else None, "nationality": nationality}]
    names = [{"given_name": given_name, "family_name": family_name}]
    for m in others:
        profile_members.append({k: v for k, v in m.items() if k not in ("given_name", "family_name")})
        names.append({"given_name": m.get("given_name", "Ana"), "family_name": m.get("family_name", family_name)})
    row = Registration(
        office_id=office.id, org_id=office.org_id, reference=sealed.new_reference(office.country),
        pin_hash=sealed.pin_hash(pin), status=status, status_since=now, language=language, nationality=nationality,
        birth_date=birth_date, arrived_on=arrived_on, household_size=len(profile_members),
        profile={"members": profile_members, "ties": ties or [], "categories": []}, answers=answers or {},
        consent_screening=now, consent_contact=now, consent_share=now,
        person_key=sealed.person_key(given_name, family_name, birth_date, nationality),
        phone_key=sealed.phone_key(phone), email_key=sealed.email_key(email), history=[],
        created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    sealed.seal_identity(session, row, {"members": names})
    sealed.seal_contact(session, row, {"phone": phone, "email": email, "whatsapp": ""})
    session.flush()
    return row


def _pathway(session: Session, org: Organization, name: str, kind: PathwayType, nationalities: list[str],
             locations: list[str]) -> Pathway:
    now = clock.now()
    row = Pathway(org_id=org.id, country=org.country, name=name, type=kind, description="", nationalities=nationalities,
                  locations=locations, categories=[], conditions="", year=now.year, places=500, places_used=100,
                  processing_days=180, fee_amount=None, fee_currency="", documents=[], responsible="",
                  status=PathwayStatus.open, status_since=now.date(), created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    session.add_all(key_rows(row.id, nationalities, locations))
    return row


@pytest.fixture
def mobility_world(session: Session, network: Network) -> MobilityWorld:
    with clock.frozen(NOW):
        orgs = {"cr": make_org(session, "smo-cr", "Safe Mobility Office Costa Rica", OrgKind.mobility_office, "CR"),
                "co": make_org(session, "smo-co", "Safe Mobility Office Colombia", OrgKind.mobility_office, "CO")}
        for persona, (key, roles) in STAFF.items():
            user, secret = make_person(session, f"{persona}@smo.rdn.test", orgs[key], roles,
                                       name=persona.replace("_", " ").title())
            network.people[persona] = user
            network.totp[persona] = secret
        offices = {
            "cr": Office(org_id=orgs["cr"].id, slug="cr", country="CR", name="Safe Mobility Office Costa Rica",
                         nationalities=["NI", "VE"], presence_cutoff=date(2023, 6, 12), opened_on=date(2023, 6, 12),
                         timezone="America/Costa_Rica", address="San José",
                         elsewhere="UNHCR Costa Rica: https://help.unhcr.org/costarica/"),
            "co": Office(org_id=orgs["co"].id, slug="co", country="CO", name="Safe Mobility Office Colombia",
                         nationalities=["CU", "HT", "VE"], presence_cutoff=date(2023, 6, 11),
                         opened_on=date(2023, 6, 11), timezone="America/Bogota", address="Bogotá"),
        }
        session.add_all(offices.values())
        agreement = Agreement(provider_org_id=orgs["cr"].id, recipient_org_id=network.orgs["spain"].id,
                              title="Safe Mobility Costa Rica and Spain",
                              purposes=["resettlement", "family_reunification"],
                              sections=["identity", "background", "needs", "family"],
                              status=AgreementStatus.active, proposed_by_org_id=orgs["cr"].id)
        session.add(agreement)
        session.flush()
        pathways = {
            "es_resettlement": _pathway(session, network.orgs["spain"], "Spain resettlement programme",
                                        PathwayType.resettlement, [], ["CR", "CO"]),
            "es_family": _pathway(session, network.orgs["spain"], "Spain family reunification",
                                  PathwayType.family_reunification, [], []),
            "ca_labour": _pathway(session, network.orgs["canada"], "Canada labour mobility",
                                  PathwayType.labour_mobility, ["VE", "NI"], []),
        }
        session.commit()
    return MobilityWorld(session, network, offices, orgs, pathways, agreement)


@pytest.fixture
def frozen_now():
    """The world's clock, frozen at NOW for the test."""
    with clock.frozen(NOW):
        yield NOW
