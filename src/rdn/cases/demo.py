"""Demo cases: a few hundred households (Afghan, Syrian, Sudanese, Rohingya, Venezuelan) across the pipeline,
with data-sharing agreements in force between the agencies and the governments, consent, and referrals in
every state. Names are common names of each community, combined at random: no real family is described.
Seeded once; deterministic (a fixed random seed) so screenshots and tests see the same network."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import service, sharing
from rdn.cases.models import (
    Agreement,
    AgreementStatus,
    Case,
    ChecklistItem,
    ChecklistStatus,
    Referral,
    ReferralStatus,
    StageEvent,
)
from rdn.cases.pipeline import MAIN_ROAD, Stage
from rdn.cases.policy import CaseAccess, owner_sections
from rdn.core import audit, clock, identity
from rdn.core.audit import Actor
from rdn.core.crypto import Keyring
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext

DEMO_ACTOR = Actor("rdn demo")
CASES = 320


@dataclasses.dataclass(frozen=True)
class Community:
    nationality: str | None  # None: stateless
    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]
    languages: tuple[str, ...]
    hosts: tuple[tuple[str, str], ...]  # (country, place)
    categories: tuple[tuple[str, str], ...]
    share: int
    owners: tuple[str, ...]


COMMUNITIES = {
    "afghan": Community(
        "AF", ("Ahmad", "Mohammad", "Abdul Rahman", "Hamid", "Farid", "Jawad", "Naveed", "Sayed", "Rahim",
               "Zabihullah", "Mustafa", "Habib"),
        ("Fatima", "Zahra", "Maryam", "Shabnam", "Parwana", "Nargis", "Soraya", "Laila", "Hafiza", "Zainab"),
        ("Rahimi", "Ahmadzai", "Hakimi", "Sadat", "Karimi", "Noori", "Haidari", "Yousufzai", "Stanekzai",
         "Wardak", "Hashimi", "Mohammadi"),
        ("prs", "ps", "haz"), (("PK", "Islamabad"), ("PK", "Peshawar"), ("IR", "Mashhad"), ("TR", "Van")),
        (("LPN", "LAS"), ("WGR", "LPN"), ("SVT", "LPN"), ("LPN", "FAM")), 30, ("unhcr-like",)),
    "syrian": Community(
        "SY", ("Mohammed", "Ahmad", "Khaled", "Omar", "Yusuf", "Ibrahim", "Hassan", "Bilal", "Samer", "Tarek"),
        ("Fatima", "Aisha", "Rania", "Lina", "Hala", "Nour", "Rasha", "Dima", "Huda", "Salma"),
        ("Al-Hassan", "Haddad", "Khalil", "Al-Ahmad", "Darwish", "Saleh", "Al-Khatib", "Hamdan", "Nasser",
         "Mansour"),
        ("ar", "ku"), (("LB", "Beirut"), ("LB", "Bekaa"), ("JO", "Zaatari"), ("TR", "Gaziantep")),
        (("MED", "LAS"), ("SVT", "LAS"), ("LPN", "LAS"), ("CAR", "LAS")), 25, ("unhcr-like", "harbour-ngo")),
    "sudanese": Community(
        "SD", ("Mohamed", "Abdelrahman", "Osman", "Ahmed", "Ibrahim", "Mustafa", "Hamza", "Adam", "Yahya", "Idris"),
        ("Amna", "Fatima", "Hawa", "Mariam", "Khadija", "Samira", "Zeinab", "Asha", "Halima", "Sara"),
        ("Osman", "Abdalla", "Ibrahim", "Hassan", "Adam", "Musa", "Yagoub", "Haroun", "Bakhit", "Eltayeb"),
        ("ar", "fvr", "mls"), (("TD", "Adré"), ("TD", "Farchana"), ("EG", "Cairo"), ("ET", "Gambella")),
        (("SVT", "LPN"), ("WGR", "SVT"), ("CAR", "LAS"), ("MED", "LAS")), 20, ("unhcr-like",)),
    "rohingya": Community(
        None, ("Mohammad", "Nur", "Abdul", "Rashid", "Hashim", "Jamal", "Kabir", "Anwar", "Sayed", "Hamid"),
        ("Rashida", "Hasina", "Jannat", "Rabia", "Setara", "Sufia", "Rahima", "Tasmin", "Mabia", "Nur Begum"),
        ("Alam", "Hossain", "Ullah", "Islam", "Rahman", "Kabir", "Amin", "Karim", "Haque", "Sultan"),
        ("rhg", "my"), (("BD", "Cox's Bazar"), ("BD", "Bhasan Char"), ("MY", "Kuala Lumpur")),
        (("LPN", "LAS"), ("WGR", "LAS"), ("CAR", "LAS")), 12, ("unhcr-like",)),
    "venezuelan": Community(
        "VE", ("José", "Luis", "Carlos", "Juan", "Miguel", "Andrés", "Jesús", "Rafael", "Daniel", "Alejandro"),
        ("María", "Ana", "Carmen", "Yuleisy", "Daniela", "Gabriela", "Andreína", "Rosa", "Luisa", "Valentina"),
        ("González", "Rodríguez", "Pérez", "Hernández", "García", "Martínez", "López", "Ramírez", "Torres",
         "Rojas"),
        ("es",), (("CO", "Bogotá"), ("CO", "Cúcuta"), ("PE", "Lima"), ("EC", "Quito"), ("CR", "San José")),
        (("LPN", "LAS"), ("FAM", "LAS"), ("WGR", "LAS")), 13, ("iom-like", "smo-cr")),
}

#: What each government may see of the agencies' cases (agreements in force).
AGREEMENTS = {
    "ca": ("identity", "background", "needs", "location", "family", "preferences", "pipeline", "protection",
           "medical"),
    "de": ("identity", "background", "needs", "family", "pipeline", "protection"),
    "es": ("identity", "background", "needs", "pipeline"),
    "gb": ("identity", "needs", "family", "pipeline"),
    "au": ("identity", "background", "needs", "pipeline", "medical"),
    "nz": ("identity", "needs"),
    "br": ("identity", "background", "needs"),
}
PROVIDERS = ("unhcr-like", "iom-like", "smo-cr", "harbour-ngo")
NEEDS_BY_AGE = {"child": ("child_at_risk",), "adult_f": ("woman_at_risk", "single_parent", "pregnant_or_lactating"),
                "old": ("older_person_at_risk", "disability"), "any": ("serious_medical_condition", "disability")}
PROTECTION_TEXT = ("Threats from an armed group after the principal applicant's work became known; the family "
                   "moved three times in the past year and cannot stay safely where they are.")
MEDICAL = {"diagnosis": "Chronic kidney disease, stage 4", "treatment_unavailable": True,
           "prognosis": "Dialysis needed within a year", "informed_consent": True, "narrative": ""}


def _principal(session: Session, ctx: DemoContext, persona: str) -> Principal:
    user = ctx.people[persona]
    org_id = identity.default_org_id(session, user.id)
    p = identity.principal_for(session, user, org_id=org_id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now())


def _agreements(ctx: DemoContext) -> dict[tuple[str, str], Agreement]:
    session = ctx.session
    out = {}
    now = clock.now()
    for provider in PROVIDERS:
        for gov, sections in AGREEMENTS.items():
            if provider != "unhcr-like" and gov not in ("ca", "es", "br"):
                continue
            agreement = Agreement(
                provider_org_id=ctx.orgs[provider].id, recipient_org_id=ctx.orgs[gov].id,
                title=f"{ctx.orgs[provider].name} and {ctx.orgs[gov].name}: resettlement referrals",
                reference=f"DSA-{provider.upper()}-{gov.upper()}-2026",
                purposes=["resettlement", "family_reunification"],
                sections=list(sections), status=AgreementStatus.active, proposed_by_org_id=ctx.orgs[provider].id,
                proposed_at=now - timedelta(days=400), decided_at=now - timedelta(days=390))
            session.add(agreement)
            session.flush()
            audit.record(session, action="agreement.active", actor=DEMO_ACTOR, object_type="agreement",
                         object_id=agreement.id, details={"demo": True})
            out[(provider, gov)] = agreement
    pending = Agreement(provider_org_id=ctx.orgs["unhcr-like"].id, recipient_org_id=ctx.orgs["it"].id,
                        title="UNHCR-like agency and Italy: humanitarian corridors", purposes=["resettlement"],
                        sections=["identity", "needs"], status=AgreementStatus.proposed,
                        proposed_by_org_id=ctx.orgs["unhcr-like"].id, proposed_at=now - timedelta(days=3))
    session.add(pending)
    return out


def _household(rng: random.Random, c: Community) -> list[dict[str, Any]]:
    family = rng.choice(c.family)
    this_year = clock.now().year
    pa_female = rng.random() < 0.3
    pa_year = rng.randint(this_year - 62, this_year - 20)
    nationality = c.nationality or ""
    common = {"nationality": nationality, "stateless": "yes" if c.nationality is None else ""}
    langs = "; ".join(rng.sample(c.languages, k=min(len(c.languages), rng.randint(1, 2))))
    people = [{"relationship": "principal", "given_name": rng.choice(c.female if pa_female else c.male),
               "family_name": family, "sex": "female" if pa_female else "male", "date_of_birth": str(pa_year),
               "languages": langs, "education": rng.choice(("none", "primary", "secondary", "university")),
               "occupation": rng.choice(("Teacher", "Farmer", "Tailor", "Driver", "Nurse", "Engineer", "Trader",
                                         "Student", "Mechanic", "")), **common}]
    if pa_female and rng.random() < 0.5:
        people[0]["specific_needs"] = "single_parent; woman_at_risk"
    elif not pa_female or rng.random() < 0.5:
        spouse_female = not pa_female
        people.append({"relationship": "spouse", "given_name": rng.choice(c.female if spouse_female else c.male),
                       "family_name": family if rng.random() < 0.6 else rng.choice(c.family),
                       "sex": "female" if spouse_female else "male",
                       "date_of_birth": f"{pa_year + rng.randint(-3, 8)}-{rng.randint(1, 12):02d}-"
                                        f"{rng.randint(1, 28):02d}" if rng.random() < 0.4 else
                       str(pa_year + rng.randint(-3, 8)), "languages": langs, **common})
    for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4, 5))):
        year = rng.randint(max(pa_year + 18, this_year - 17), this_year)
        female = rng.random() < 0.5
        people.append({"relationship": "child", "given_name": rng.choice(c.female if female else c.male),
                       "family_name": family, "sex": "female" if female else "male", "date_of_birth": str(year),
                       "languages": langs, "education": "primary" if this_year - year > 6 else "unknown",
                       "specific_needs": "child_at_risk" if rng.random() < 0.1 else "", **common})
    if rng.random() < 0.12:
        people.append({"relationship": "parent", "given_name": rng.choice(c.female), "family_name": family,
                       "sex": "female", "date_of_birth": str(pa_year - rng.randint(20, 30)), "languages": langs,
                       "specific_needs": rng.choice(NEEDS_BY_AGE["old"]), **common})
    return people


def _walk(session: Session, case: Case, target: Stage, opened_days_ago: int, actor: Principal,
          rng: random.Random) -> None:
    """Give the case a believable past: the moves of the main road up to ``target``, spread over time."""
    now = clock.now()
    opened = now - timedelta(days=opened_days_ago)
    case.opened_at = case.created_at = opened
    road = list(MAIN_ROAD)
    path = road[:road.index(target) + 1] if target in road else [*road[:road.index(Stage.review) + 1], target]
    events = session.scalars(select(StageEvent).where(StageEvent.case_id == case.id)).all()
    for e in events:
        e.at = opened
    # The moves spread over the case's life; the last one a few days or weeks ago.
    last = now - timedelta(days=rng.randint(1, 24), hours=rng.randint(0, 23))
    span = max(last - opened, timedelta(days=1))
    at = opened
    for i, (before, after) in enumerate(itertools.pairwise(path), start=1):
        at = opened + span * (i / max(1, len(path) - 1)) - timedelta(hours=rng.randint(0, 12))
        session.add(StageEvent(case_id=case.id, from_stage=before, to_stage=after, note="", at=at,
                               actor_user_id=actor.user_id, actor_org_id=case.owner_org_id,
                               actor_label=actor.full_name))
        if after == Stage.submitted:
            case.submitted_at = at
        elif after == Stage.departed:
            case.departed_at = at
        elif after == Stage.arrived:
            case.arrived_at = at
    case.stage, case.stage_since = target, at
    service.recompute_clocks(case)


def _stage_for(rng: random.Random) -> Stage:
    roll = rng.random()
    if roll < 0.40:
        return rng.choice((Stage.referred, Stage.needs_assessment, Stage.initial_review, Stage.interview))
    if roll < 0.60:
        return rng.choice((Stage.recommendation, Stage.review, Stage.recommended))
    if roll < 0.85:
        return rng.choice((Stage.submitted, Stage.prescreening, Stage.security_checks, Stage.state_interview,
                           Stage.approved))
    if roll < 0.95:
        return rng.choice((Stage.medical_exam, Stage.cultural_orientation, Stage.placement, Stage.travel_booking))
    return rng.choice((Stage.departed, Stage.arrived, Stage.withdrawn))


def seed(ctx: DemoContext) -> None:
    session = ctx.session
    if session.scalar(select(func.count()).select_from(Case)):
        return
    rng = random.Random(2026)
    agreements = _agreements(ctx)
    caseworkers = {"unhcr-like": "caseworker_unhcr", "iom-like": "officer_iom", "smo-cr": "caseworker_costa_rica",
                   "harbour-ngo": "caseworker_ngo"}
    actors = {org: _principal(session, ctx, persona) for org, persona in caseworkers.items()}
    weights = [c.share for c in COMMUNITIES.values()]
    communities = list(COMMUNITIES.values())
    ring = Keyring.of(session)
    referred = 0
    for n in range(CASES):
        c = rng.choices(communities, weights)[0]
        owner = rng.choice(c.owners)
        actor = actors[owner]
        country, place = rng.choice(c.hosts)
        primary, secondary = rng.choice(c.categories)
        priority = rng.choices(("normal", "urgent", "emergency"), (80, 16, 4))[0]
        case = service.create_case(session, actor=actor, case={
            "current_country": country, "current_location": place, "category_primary": primary,
            "category_secondary": secondary, "processing_priority": priority,
            "submission_priority": priority if rng.random() < 0.8 else "normal"},
            members=_household(rng, c), preferences={"countries": rng.sample(list(AGREEMENTS), k=rng.randint(0, 2)),
                                                      "setting": rng.choice(("any", "any", "urban", "rural"))})
        target = _stage_for(rng)
        progress = list(MAIN_ROAD).index(target) / len(MAIN_ROAD) if target in MAIN_ROAD else 0.4
        _walk(session, case, target, int(10 + progress * 300 + rng.randint(0, 60)), actor, rng)
        if n % 9 == 0:
            case.seal("protection", {"narrative": PROTECTION_TEXT}, keyring=ring)
        if primary == "MED":
            case.seal("medical", MEDICAL, keyring=ring)
        if target in (Stage.travel_booking, Stage.departed, Stage.arrived):
            for item in ChecklistItem:
                entry = service.checklist_entry(session, case, item)
                entry.status = ChecklistStatus.done if item != ChecklistItem.exit_permit or country != "PK" else \
                    ChecklistStatus.not_needed
        elif target in (Stage.medical_exam, Stage.cultural_orientation, Stage.placement):
            service.checklist_entry(session, case, ChecklistItem.security).status = ChecklistStatus.done
            if country == "PK":
                entry = service.checklist_entry(session, case, ChecklistItem.exit_permit)
                entry.status, entry.note = ChecklistStatus.blocked, "Exit permit fee of USD 830 per person"
        referred += _refer_demo(session, ctx, case, target, actor, agreements, rng, owner)
    session.flush()
    ctx.say(f"Created {CASES} demo cases, {referred} of them referred to governments")


def _refer_demo(session: Session, ctx: DemoContext, case: Case, target: Stage, actor: Principal,
                agreements: dict[tuple[str, str], Agreement], rng: random.Random, owner: str) -> int:
    """Cases recommended or further on are referred: on the State's side, the referral was accepted."""
    road = list(MAIN_ROAD)
    if target not in road or road.index(target) < road.index(Stage.recommended):
        return 0
    govs = [g for (p, g) in agreements if p == owner and g != "nz"]
    if not govs:
        return 0
    gov = rng.choice(govs)
    access = CaseAccess(case, True, owner_sections(actor))
    sharing.record_consent(session, actor=actor, access=access, recipient_org_id=ctx.orgs[gov].id,
                           purpose="resettlement", method=rng.choice(("written", "verbal")))
    sections = [s for s in ("identity", "background", "needs", "family", "pipeline", "protection")
                if s in agreements[(owner, gov)].sections]
    round_ = sharing.refer(session, actor=actor, access=access, recipients=[ctx.orgs[gov].id], purpose="resettlement",
                           sections=sections, note="Referred for resettlement consideration.", notify=False)
    referral = session.scalars(select(Referral).where(Referral.round_id == round_.id)).one()
    # Back-date them to when the case was recommended or submitted.
    when = case.submitted_at or case.stage_since
    round_.created_at = referral.created_at = referral.updated_at = when
    for consent in sharing.consents_of(session, case):
        consent.recorded_at = when - timedelta(days=2)
    if target == Stage.recommended:
        referral.status = rng.choice((ReferralStatus.pending, ReferralStatus.in_progress))
    elif target == Stage.arrived:
        referral.status, referral.outcome = ReferralStatus.done, "successful"
    else:
        referral.status = ReferralStatus.accepted
    if referral.status != ReferralStatus.pending:
        audit.record(session, action="referral.status", actor=DEMO_ACTOR, object_type="case", object_id=case.id,
                     details={"referral": str(referral.id), "to": referral.status.value, "demo": True})
    return 1
