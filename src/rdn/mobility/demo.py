"""Demo data of Safe Mobility: the four offices with their real eligibility (``rdn.demo_data/safe-mobility-offices
.csv``: Guatemala for Guatemalans; Costa Rica for Nicaraguans and Venezuelans present by 12 June 2023; Colombia for
Cubans, Haitians and Venezuelans present by 11 June 2023; Ecuador for Cubans, Haitians, Nicaraguans, Venezuelans
and Colombians present by 18 October 2023), an officer at each, a few screening rules per office leading to
pathways of the catalog, interview slots for the next two weeks, and about forty registrations per office at
every stage over the past months. Some of the Costa Rica office's are referred to Spain (the office has a
data-sharing agreement with Spain in the demo: ``rdn.cases.demo``), through the same conversion staff use; two of
those households have arrived.

Runs after the network, cases and pathways (``demo_order`` 35). Once only: a second run adds nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import random
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.pipeline import Stage
from rdn.core import clock, identity
from rdn.core.audit import Actor
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Organization, Role
from rdn.mobility import appointments, screening, sealed
from rdn.mobility.models import (
    Appointment,
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
    Slot,
)
from rdn.pathways.models import Pathway

DEMO_ACTOR = Actor("rdn demo")
REGISTRATIONS = 40  # per office
#: country -> (timezone, address, where else to look)
PLACES = {
    "GT": ("America/Guatemala", "Ciudad de Guatemala (address given with the appointment)",
           "UNHCR Guatemala: https://help.unhcr.org/guatemala/ · IOM Guatemala: https://guatemala.iom.int/"),
    "CR": ("America/Costa_Rica", "San José (address given with the appointment)",
           "UNHCR Costa Rica: https://help.unhcr.org/costarica/ · IOM Costa Rica: https://costarica.iom.int/"),
    "CO": ("America/Bogota", "Bogotá, Cali and Medellín (address given with the appointment)",
           "UNHCR Colombia: https://help.unhcr.org/colombia/ · IOM Colombia: https://colombia.iom.int/"),
    "EC": ("America/Guayaquil", "Quito and Guayaquil (address given with the appointment)",
           "UNHCR Ecuador: https://help.unhcr.org/ecuador/ · IOM Ecuador: https://ecuador.iom.int/"),
}
#: persona, email, name, office country
OFFICERS = [
    ("officer_guatemala", "officer@smo-gt.rdn.example", "Lucía Ajú", "GT"),
    ("officer_costa_rica", "officer@smo-cr.rdn.example", "Marco Rojas", "CR"),
    ("officer_colombia", "officer@smo-co.rdn.example", "Valentina Ospina", "CO"),
    ("officer_ecuador", "officer@smo-ec.rdn.example", "Andrés Cevallos", "EC"),
]
QUESTIONS = {
    "protection_risk": {"key": "protection_risk", "type": "yes_no", "text": {
        "es": "¿Usted o su familia han sufrido amenazas o violencia en el lugar donde viven ahora?",
        "en": "Have you or your family faced threats or violence where you live now?",
        "ht": "Èske oumenm oswa fanmi w te resevwa menas oswa vyolans kote nou rete kounye a?"}},
    "us_supporter": {"key": "us_supporter", "type": "yes_no", "text": {
        "es": "¿Tiene una persona en los Estados Unidos dispuesta a apoyarle económicamente?",
        "en": "Do you have someone in the United States willing to support you financially?",
        "ht": "Èske ou gen yon moun Ozetazini ki vle sipòte w finansyèman?"}},
    "trade_experience": {"key": "trade_experience", "type": "yes_no", "text": {
        "es": "¿Tiene al menos dos años de experiencia en un oficio o profesión?",
        "en": "Do you have at least two years of experience in a trade or profession?",
        "ht": "Èske ou gen omwen dezan eksperyans nan yon metye oswa yon pwofesyon?"}},
}
#: key -> (name, destination, (government, pathway name), questions, conditions beyond the office's eligibility)
RULES: dict[str, tuple[str, str, tuple[str, str], list[str], list[dict[str, Any]]]] = {
    "es_resettlement": ("Resettlement to Spain", "ES", ("es", "Resettlement from Safe Mobility Offices"),
                        ["protection_risk"], [{"field": "answer.protection_risk", "op": "is_true"}]),
    "ca_relocation": ("Relocation to Canada", "CA", ("ca", "Resettlement from Safe Mobility Offices"),
                      ["protection_risk"], [{"field": "answer.protection_risk", "op": "is_true"},
                                            {"field": "household_size", "op": "gte", "value": 2}]),
    "us_parole": ("United States humanitarian parole", "US",
                  ("us", "Parole for Cubans, Haitians, Nicaraguans and Venezuelans (CHNV)"), ["us_supporter"],
                  [{"field": "nationality", "op": "in", "value": ["CU", "HT", "NI", "VE"]},
                   {"field": "answer.us_supporter", "op": "is_true"}]),
    "us_refugee": ("United States refugee processing", "US",
                   ("us", "Safe Mobility Office processing to the United States"), ["protection_risk"],
                   [{"field": "answer.protection_risk", "op": "is_true"}]),
    "es_family": ("Family reunification in Spain", "ES", ("es", "Family reunification of protection holders"), [],
                  [{"field": "ties", "op": "contains", "value": "ES"}]),
    "us_family": ("Family reunification in the United States", "US",
                  ("us", "Follow-to-join refugee relatives (I-730)"), [],
                  [{"field": "ties", "op": "contains", "value": "US"}]),
    "ca_labour": ("Canada labour pathway", "CA", ("ca", "Economic Mobility Pathways Pilot (EMPP)"),
                  ["trade_experience"], [{"field": "answer.trade_experience", "op": "is_true"},
                                         {"field": "age", "op": "gte", "value": 18},
                                         {"field": "age", "op": "lte", "value": 50}]),
}
#: Which rules each office screens (the CSV: relocation to Spain or Canada from Costa Rica and Colombia only).
OFFICE_RULES = {
    "GT": ["us_refugee", "us_family", "ca_labour"],
    "CR": ["es_resettlement", "ca_relocation", "us_parole", "es_family", "us_family", "ca_labour"],
    "CO": ["es_resettlement", "ca_relocation", "us_parole", "es_family", "ca_labour"],
    "EC": ["us_refugee", "us_parole", "us_family", "ca_labour"],
}
GIVEN = {"f": ["María", "Ana", "Yolanda", "Daniela", "Carmen", "Rosa", "Luisa", "Valeria", "Esther", "Marie"],
         "m": ["José", "Luis", "Carlos", "Jean", "Pedro", "Miguel", "Jorge", "Andrés", "Wilson", "Yordanis"]}
FAMILY = {"VE": ["Pérez", "González", "Rodríguez", "Hernández"], "NI": ["López", "Martínez", "Espinoza", "Téllez"],
          "CU": ["Fernández", "Díaz", "Castillo", "Reyes"], "HT": ["Joseph", "Pierre", "Jean-Baptiste", "Louis"],
          "CO": ["Gómez", "Ramírez", "Moreno", "Cárdenas"], "GT": ["Ajú", "Xol", "Pérez", "Coc"]}


def _offices_csv() -> list[dict[str, str]]:
    text = resources.files("rdn.demo_data").joinpath("safe-mobility-offices.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _principal(session: Session, user: identity.User, org: Organization) -> Principal:
    p = identity.principal_for(session, user, org_id=org.id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now())


def _officers(ctx: DemoContext, orgs: dict[str, Organization]) -> dict[str, identity.User]:
    """An officer at each office (the network's demo has the Costa Rica office's caseworker only)."""
    from rdn.network import service
    from rdn.network.demo import DEMO_PASSWORD, demo_totp_secret

    session = ctx.session
    out = {}
    for key, email, name, country in OFFICERS:
        org = orgs[country]
        user = session.scalars(select(identity.User).where(identity.User.email == email)).first()
        if user is None:
            user = service.create_person(session, actor=DEMO_ACTOR, email=email, full_name=name, org=org,
                                         role=Role.officer, password=DEMO_PASSWORD, invite=False)
            if identity.mfa_required(session, user.id):
                identity.confirm_totp(session, user, demo_totp_secret(email))
        ctx.people[key] = user
        out[country] = user
        ctx.personas.append({
            "persona": key, "email": email, "password": DEMO_PASSWORD, "organization": org.name,
            "roles": Role.officer.value,
            "totp_secret": demo_totp_secret(email) if user.mfa_enrolled else "(none: MFA optional)"})
    return out


def _office(session: Session, org: Organization, row: dict[str, str]) -> Office:
    country = row["office_country_iso"]
    tz, address, elsewhere = PLACES.get(country, ("UTC", "", ""))
    cutoff = date.fromisoformat(row["presence_cutoff"]) if row["presence_cutoff"] else None
    year, month = (int(part) for part in row["opened"].split("-"))
    office = Office(org_id=org.id, slug=country.lower(), country=country, name=org.name,
                    nationalities=[c for c in row["eligible_nationalities_iso"].split(";") if c],
                    presence_cutoff=cutoff, opened_on=cutoff or date(year, month, 1), timezone=tz, address=address,
                    elsewhere=elsewhere, accepting=True, created_at=clock.now(), updated_at=clock.now())
    session.add(office)
    session.flush()
    return office


def _rules(session: Session, office: Office) -> dict[str, Any]:
    out = {}
    for key in OFFICE_RULES.get(office.country, []):
        name, destination, (gov, pathway_name), questions, conditions = RULES[key]
        pathway = session.scalars(select(Pathway).join(Organization, Organization.id == Pathway.org_id)
                                  .where(Organization.short_name == gov, Pathway.name == pathway_name)).first()
        eligibility: list[dict[str, Any]] = [{"field": "nationality", "op": "in", "value": office.nationalities}]
        if office.presence_cutoff:
            eligibility.append({"field": "arrived_on", "op": "on_or_before",
                                "value": office.presence_cutoff.isoformat()})
        out[key] = screening.save_rule(session, actor=DEMO_ACTOR, office=office, data={
            "name": name, "destination": destination, "pathway_id": str(pathway.id) if pathway else "",
            "questions": [QUESTIONS[q] for q in questions], "conditions": eligibility + conditions})
    return out


def _slots(session: Session, office: Office, officer: Principal) -> list[Slot]:
    """Interviews on the next fourteen days: eight half-hour slots a day from 08:30, three places each."""
    tomorrow = appointments.today_at(office) + timedelta(days=1)
    return appointments.create_slots(session, actor=officer, office=office, starts_at=datetime.combine(
        tomorrow, time(8, 30)), minutes=30, capacity=3, count=8, every_minutes=45, days=14,
        location=office.address)


def _registration(session: Session, office: Office, rng: random.Random, made: datetime) -> Registration:
    nationality = rng.choice(office.nationalities)
    sex = rng.choice("fm")
    given, family = rng.choice(GIVEN[sex]), rng.choice(FAMILY.get(nationality, FAMILY["VE"]))
    born = date(rng.randint(1962, 2004), rng.randint(1, 12), rng.randint(1, 28))
    latest = office.presence_cutoff or (made.date() - timedelta(days=30))
    arrived = latest - timedelta(days=rng.randint(20, 1500))
    members = [{"relationship": "principal", "sex": sex, "birth_date": born.isoformat(), "nationality": nationality}]
    names = [{"given_name": given, "family_name": family}]
    if rng.random() < 0.5:
        members.append({"relationship": "spouse", "sex": "m" if sex == "f" else "f",
                        "birth_date": date(born.year + rng.randint(-4, 4), rng.randint(1, 12), 15).isoformat(),
                        "nationality": nationality})
        names.append({"given_name": rng.choice(GIVEN["m" if sex == "f" else "f"]), "family_name": family})
    for _child in range(rng.choice((0, 0, 1, 2, 3))):
        child_sex = rng.choice("fm")
        members.append({"relationship": "child", "sex": child_sex,
                        "birth_date": date(rng.randint(max(born.year + 18, 2008), 2023), rng.randint(1, 12),
                                           10).isoformat(), "nationality": nationality})
        names.append({"given_name": rng.choice(GIVEN[child_sex]), "family_name": family})
    ties = [c for c, share in (("ES", 0.2), ("US", 0.25), ("CA", 0.05)) if rng.random() < share]
    answers = {"protection_risk": rng.random() < 0.7, "us_supporter": rng.random() < 0.3,
               "trade_experience": rng.random() < 0.4}
    phone = f"+{rng.randint(500, 599)} {rng.randint(6000, 8999)} {rng.randint(1000, 9999)}"
    email = f"registrant.{rng.randint(10_000, 99_999)}@example.org"
    row = Registration(
        office_id=office.id, org_id=office.org_id, reference=sealed.new_reference(office.country),
        pin_hash=sealed.pin_hash(sealed.new_pin()), status=RegistrationStatus.received, status_since=made,
        language="ht" if nationality == "HT" else "es", nationality=nationality, birth_date=born, arrived_on=arrived,
        household_size=len(members), profile={"members": members, "ties": ties, "categories": []}, answers=answers,
        consent_screening=made, consent_contact=made, consent_share=made if rng.random() < 0.92 else None,
        person_key=sealed.person_key(given, family, born, nationality), phone_key=sealed.phone_key(phone),
        email_key=sealed.email_key(email), source_ip_key=sealed.ip_key(None),
        history=[{"at": made.isoformat(), "status": "received", "by": "registrant"}], created_at=made, updated_at=made)
    session.add(row)
    session.flush()
    sealed.seal_identity(session, row, {"members": names})
    sealed.seal_contact(session, row, {"phone": phone, "email": email, "whatsapp": phone if rng.random() < 0.6 else ""})
    return row


def _past_interview(session: Session, office: Office, reg: Registration, at: datetime, came: bool) -> None:
    """An interview that already took place (or was missed): the slot and the appointment as the calendar keeps
    them (past slots cannot be created through the calendar, which plans ahead)."""
    slot = Slot(office_id=office.id, starts_at=at, ends_at=at + timedelta(minutes=30), capacity=3, booked=1,
                offered=True, location=office.address, created_at=at - timedelta(days=10))
    session.add(slot)
    session.flush()
    status = AppointmentStatus.attended if came else AppointmentStatus.no_show
    session.add(Appointment(registration_id=reg.id, slot_id=slot.id, status=status, booked_by="registrant",
                            created_at=at - timedelta(days=7), updated_at=at))
    if came:
        reg.status, reg.status_since = RegistrationStatus.interviewed, at
        reg.history = [*reg.history, {"at": (at - timedelta(days=7)).isoformat(), "status": "interview",
                                      "by": "registrant"}, {"at": at.isoformat(), "status": "interviewed",
                                                            "by": "staff"}]


def _qualifying(session: Session, reg: Registration, rules: dict[str, Any]) -> list[str]:
    ids = {r.id: key for key, r in rules.items()}
    return [ids[res.rule_id] for res, _rule in screening.results_of(session, reg)
            if res.qualifies and res.rule_id in ids]


def seed(ctx: DemoContext) -> None:
    from rdn.cases.demo import _walk
    from rdn.mobility import convert

    session = ctx.session
    rows = [r for r in _offices_csv() if f"smo-{r['office_country_iso'].lower()}" in ctx.orgs]
    orgs = {r["office_country_iso"]: ctx.orgs[f"smo-{r['office_country_iso'].lower()}"] for r in rows}
    if not orgs:
        return
    officers = _officers(ctx, orgs)
    if session.scalars(select(Office.id).where(Office.org_id.in_([o.id for o in orgs.values()]))).first():
        return  # seeded before: a second run adds nothing
    rng = random.Random(2023)
    now = clock.now()
    spain = ctx.orgs.get("es")
    caseworker = ctx.people.get("caseworker_costa_rica")
    referred = arrived = 0
    total = 0
    for row in rows:
        country = row["office_country_iso"]
        org = orgs[country]
        office = _office(session, org, row)
        officer = _principal(session, officers[country], org)
        rules = _rules(session, office)
        upcoming = _slots(session, office, officer)
        converter = _principal(session, caseworker, org) if country == "CR" and caseworker is not None else officer
        for n in range(REGISTRATIONS):
            fresh = n < 4  # the last days' registrations: screened at once, nobody has opened them yet
            made = now - (timedelta(hours=rng.randint(2, 60)) if fresh else
                          timedelta(days=rng.randint(4, 200), hours=rng.randint(0, 23)))
            reg = _registration(session, office, rng, made)
            total += 1
            screening.screen_registration(session, reg)
            qualifying = _qualifying(session, reg, rules)
            if fresh or not qualifying:
                continue
            age = (now - made).days
            stage = rng.random()
            if stage < 0.2:
                continue  # screened, waiting to be reviewed
            if (stage < 0.45 and age < 60) or age < 10:
                appointments.book(session, registration=reg, slot_id=rng.choice(upcoming[:40]).id, by="staff",
                                  actor=officer)
                continue
            interviewed_at = made + timedelta(days=rng.randint(7, min(30, age - 2)), hours=15)
            _past_interview(session, office, reg, interviewed_at, came=stage >= 0.52)
            if stage < 0.52:
                continue  # missed the interview: may book again
            if (country == "CR" and spain is not None and "es_resettlement" in qualifying and reg.consent_share
                    and stage > 0.6):
                case, _round = convert.convert(session, actor=converter, registration=reg,
                                               rule_id=rules["es_resettlement"].id, government_org_id=spain.id,
                                               note="Interviewed at the Safe Mobility office in San José.")
                reg.referred_at = min(now, interviewed_at + timedelta(days=rng.randint(2, 40)))
                reg.status_since = reg.referred_at
                referred += 1
                if arrived < 2 and (now - reg.referred_at).days > 40:
                    _walk(session, case, Stage.arrived, (now - reg.referred_at).days, converter, rng)
                    arrived += 1
        session.flush()
    ctx.say(f"Created {len(rows)} Safe Mobility offices with {total} registrations ({referred} referred to Spain, "
            f"{arrived} arrived)")

