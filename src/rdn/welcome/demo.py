"""Welcome's demo data: three sponsorship programmes with their real rules, sponsor groups at every stage, families
in their first months, and donations.

* The United States' Welcome Corps (groups of five adults, background checks and training, $2,425 per refugee
  with at least 60% in cash, 90 days of core services), Canada's Private Sponsorship of Refugees (Groups of Five,
  a year of support, settlement funds of 8,500 CAD per person of which up to half may be in kind) and Germany's
  Neustart im Team (mentoring groups of four, a year of mentoring, the net rent for two years).
* In each: a group welcoming families in their first weeks (the network's own sponsor groups among them: the
  persona sponsor@maple.rdn.example sees her group's checklist, partly done, one service overdue), a group whose
  sponsorship ended with outcomes, a group matched and waiting (proposed by the matching, accepted by the group,
  not yet by the family; in Canada also one whose family lands in ten days), an eligible group and a forming one
  that is told what it lacks; in the United States a group that withdrew.
* Families are demo cases accepted for resettlement by the programme's government. The cases demo refers none to
  the United States (it has no agreement with it): the UNHCR-like agency gets one here and refers a few of its
  cases, which the United States accepts. Cases are moved along the pipeline where the story needs it (approved
  before a match, arrived when the family arrived), with a believable past, as the cases demo builds its own.
* Everything goes through the service (rules, audit entries and emails are real), acting as the governments'
  officers, the groups' sponsors and the public; dates are then set relative to today so the demo looks current.

Runs after the network, cases, matching, pathways and mobility (``demo_order`` 45). Once only: a second run adds
nothing (its personas are printed again).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import pipeline, sharing
from rdn.cases import service as cases_service
from rdn.cases.models import (
    Agreement,
    AgreementStatus,
    Case,
    ChecklistEntry,
    ChecklistItem,
    ChecklistStatus,
    Consent,
    Member,
    Referral,
    ReferralRound,
    ReferralStatus,
    StageEvent,
)
from rdn.cases.pipeline import MAIN_ROAD, Stage
from rdn.cases.policy import CaseAccess, case_access, owner_sections
from rdn.core import audit, clock, identity
from rdn.core.audit import Actor
from rdn.core.identity import Principal, User
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Organization, Role
from rdn.welcome import matching, service
from rdn.welcome.models import (
    OPEN_MATCHES,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    ServiceTask,
    SponsorGroup,
    SponsorMember,
)

DEMO_ACTOR = Actor("rdn demo")
SPONSOR_FIELDS = ["given_names", "size", "arrival", "languages", "needs"]

#: slug -> (government, persona who sets the programme up, persona who runs it day to day, the programme's rules)
PROGRAMMES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "us-welcome-corps": ("us", "officer_us", "officer_us", {
        "name": "Welcome Corps",
        "description": "Groups of at least five adults in the United States welcome a refugee family in its first "
                       "90 days. Every adult passes a background check and the Welcome Corps training; the group "
                       "raises $2,425 for each refugee it will welcome, at least 60% of it in cash, writes a "
                       "welcome plan that names who does what, and delivers the core services. Groups may be "
                       "matched with a family or name someone they know.",
        "min_adults": 5, "checks_required": True, "training_required": True, "funds_per_person": 2425,
        "currency": "USD", "cash_share": 0.6, "support_days": 90, "staff_after_days": 7,
        "streams": ["matched", "named"], "sponsor_fields": SPONSOR_FIELDS}),
    "ca-private-sponsorship": ("ca", "admin_canada", "officer_canada", {
        "name": "Private Sponsorship of Refugees",
        "description": "Groups of Five and community sponsors support a refugee family for its first year in "
                       "Canada: income support and settlement help under a settlement plan. Each member's "
                       "eligibility is checked; the group shows the settlement funds of the sponsorship cost "
                       "table (8,500 CAD per person here), up to half of them in kind, such as furnished housing. "
                       "The arrival notice comes about ten days before the family lands.",
        "min_adults": 5, "checks_required": True, "training_required": False, "funds_per_person": 8500,
        "currency": "CAD", "cash_share": 0.5, "support_days": 365, "staff_after_days": 10,
        "streams": ["named", "matched"], "sponsor_fields": [*SPONSOR_FIELDS, "ages"],
        "services": [*service.CORE_SERVICES,
                     {"code": "settlement_review", "label": "Six-month review of the settlement plan",
                      "due_days": 180, "per_person": False},
                     {"code": "transition", "label": "Plan for the end of the sponsorship year", "due_days": 330,
                      "per_person": False}]}),
    "de-nest": ("de", "officer_germany", "officer_germany", {
        "name": "Neustart im Team (NesT)",
        "description": "Mentoring groups of at least four people accompany a family admitted through resettlement "
                       "in its first year in Germany, and pay the net rent of suitable housing for two years. "
                       "Every mentor presents a certificate of good conduct and attends the training of the "
                       "civil-society contact point. Families spend about two weeks at the Friedland reception "
                       "centre before they travel to their town.",
        "min_adults": 4, "checks_required": True, "training_required": True, "funds_per_person": 3300,
        "currency": "EUR", "cash_share": 1.0, "support_days": 365, "staff_after_days": 14,
        "streams": ["matched"], "sponsor_fields": [*SPONSOR_FIELDS, "ages"]}),
}

#: key, email, name, organization, role: the logins this demo adds (the network's demo has no officer in Germany,
#: and the network's sponsor groups of the United States and Germany have nobody who signs in).
PERSONAS = [
    ("officer_germany", "officer@de.rdn.example", "Katharina Vogel", "de", Role.officer),
    ("sponsor_riverside", "sponsor@riverside.rdn.example", "Rachel Goldberg", "riverside-welcome", Role.sponsor),
    ("sponsor_suedstadt", "sponsor@suedstadt.rdn.example", "Miriam Hoffmann", "suedstadt-willkommen", Role.sponsor),
]
#: Who signs in for each of the network's sponsor groups (the maple persona comes from the network's demo).
ORG_CONTACTS = {"maple-circle": "sponsor_group_a", "riverside-welcome": "sponsor_riverside",
                "suedstadt-willkommen": "sponsor_suedstadt"}
#: The lead of a group who signed up on the Welcome Corps' public page, given a password so the demo signs in.
SIGNED_UP_PERSONA = ("sponsor_hilltop", "sponsor@hilltop.rdn.example")


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """One demo group. ``stage``: forming | eligible | proposed (waiting for the family) | arriving (accepted, the
    family lands in ``days`` days) | welcoming (arrived ``days`` ago) | completed (arrived ``days`` ago, the
    support period over) | withdrawn. Others: ``days`` ago the group signed up."""

    key: str
    programme: str
    name: str
    city: str
    stage: str
    members: tuple[str, ...]  # the first is the contact person (the persona of an organization of the network)
    domain: str  # of the members' email addresses
    days: int = 0
    org: str = ""  # an organization of the demo network (else the group signs up on the public page)
    stream: str = "matched"
    languages: tuple[str, ...] = ("en",)
    nationalities: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    capacity: int = 5
    max_size: int = 7
    overdue: tuple[str, ...] = ()  # services still open after their due date
    missing: tuple[str, ...] = ()  # forming: what the group has not done yet


GROUPS = [
    # The United States' Welcome Corps.
    GroupSpec("riverside", "us-welcome-corps", "", "Columbus", "welcoming",
              ("Rachel Goldberg", "Marcus Johnson", "Linda Alvarez", "Tom Becker", "Aisha Rahman", "Greg Novak"),
              "riversidewelcome.example", days=34, org="riverside-welcome", languages=("en", "prs", "ps"),
              supports=("large_housing", "infant"), capacity=6, overdue=("bank",)),
    GroupSpec("hilltop", "us-welcome-corps", "Hilltop Neighbors for Refugees", "Pittsburgh", "welcoming",
              ("Michael Brennan", "Sarah Kowalski", "David Chen", "Patricia O'Neill", "Hassan Ali"),
              "hilltopneighbors.example", days=12, languages=("en", "ar"), supports=("medical",),
              overdue=("identity_numbers",)),
    GroupSpec("boise", "us-welcome-corps", "Treasure Valley Welcome Team", "Boise", "completed",
              ("Karen Mitchell", "Brian Larsen", "Nadia Haddad", "Steve Pratt", "Julie Anderson"),
              "treasurevalleywelcome.example", days=130, languages=("en", "ar", "ps")),
    GroupSpec("lakeside", "us-welcome-corps", "Lake Harriet Book Club Circle", "Minneapolis", "proposed",
              ("Ingrid Solberg", "Kevin Nguyen", "Amy Schultz", "Omar Farah", "Beth Lindqvist"),
              "lakeharrietcircle.example", languages=("en", "ar", "prs"), capacity=6),
    GroupSpec("midtown", "us-welcome-corps", "Midtown Teachers Welcome Group", "Sacramento", "eligible",
              ("Maria Lopez", "James Carter", "Emily Tran", "Robert Diaz", "Hannah Weiss"),
              "midtownteachers.example", days=70, languages=("en", "es", "fa")),
    GroupSpec("churchhill", "us-welcome-corps", "Church Hill Neighbors", "Richmond", "forming",
              ("Anne Whitfield", "Calvin Brooks", "Denise Powell"), "churchhill.example", days=18,
              missing=("adults", "checks", "training", "funds", "plan")),
    GroupSpec("oakpark", "us-welcome-corps", "Oak Park Welcome Circle", "Oak Park", "withdrawn",
              ("Laura Kim", "Mark Feldman", "Jessica Reyes", "Paul Schneider", "Tanya Morris"),
              "oakparkwelcome.example", days=95, missing=("checks", "training", "funds", "plan")),
    # Canada's Private Sponsorship of Refugees.
    GroupSpec("maple", "ca-private-sponsorship", "", "Ottawa", "welcoming",
              ("Emma Wilson", "Liam Tremblay", "Sophie Gagnon", "Arjun Patel", "Olivia Chen", "Noah Roy"),
              "maplecircle.example", days=47, org="maple-circle", languages=("en", "fr", "ar", "fa"),
              supports=("infant", "dietary"), capacity=6, overdue=("doctor",)),
    GroupSpec("kitsilano", "ca-private-sponsorship", "Kitsilano Neighbours Group of Five", "Vancouver", "welcoming",
              ("Grace Lee", "Ethan MacDonald", "Farah Siddiqui", "Ben Wong", "Claire Dubois"),
              "kitsgroupoffive.example", days=8, stream="named", languages=("en", "es")),
    GroupSpec("halifax", "ca-private-sponsorship", "North End Halifax Sponsors", "Halifax", "completed",
              ("Mary MacLeod", "Ahmed Saleh", "Jennifer Murphy", "Ryan Doucette", "Leila Haddad"),
              "northendsponsors.example", days=400, languages=("en", "ar", "es")),
    GroupSpec("saskatoon", "ca-private-sponsorship", "Broadway Saskatoon Welcome Group", "Saskatoon", "arriving",
              ("Kyle Anderson", "Priya Sharma", "Dawn Bird", "Mike Kowalchuk", "Samira Yusuf"),
              "broadwaywelcome.example", days=10, languages=("en", "es")),
    GroupSpec("guelph", "ca-private-sponsorship", "Guelph Friends of Refugees", "Guelph", "proposed",
              ("Heather Scott", "Paul Janssen", "Mona Karimi", "Derek Walsh", "Julie Bouchard"),
              "guelphfriends.example", languages=("en", "es", "fa"), capacity=6),
    GroupSpec("plateau", "ca-private-sponsorship", "Accueil Plateau Mont-Royal", "Montréal", "eligible",
              ("Isabelle Côté", "Marc-André Lévesque", "Yasmine Benali", "Julien Pelletier", "Nathalie Roy"),
              "accueilplateau.example", days=64, languages=("fr", "en", "ar", "es")),
    GroupSpec("westend", "ca-private-sponsorship", "West End Winnipeg Five", "Winnipeg", "forming",
              ("Tyler Friesen", "Amanda Klassen", "Jasdeep Gill", "Carol Penner", "Luke Reimer"),
              "westendfive.example", days=26, missing=("checks", "funds_verified")),
    # Germany's Neustart im Team.
    GroupSpec("suedstadt", "de-nest", "", "Köln", "welcoming",
              ("Miriam Hoffmann", "Jan Becker", "Aylin Öztürk", "Thomas Schmitz", "Sabine Krüger"),
              "suedstadt-willkommen.example", days=62, org="suedstadt-willkommen", languages=("de", "en", "ar", "ku"),
              capacity=6, overdue=("employment",)),
    GroupSpec("connewitz", "de-nest", "Mentoringgruppe Connewitz", "Leipzig", "welcoming",
              ("Lena Fischer", "Paul Neumann", "Dilara Aksoy", "Matthias Wolf"), "mentoring-connewitz.example",
              days=19, languages=("de", "en", "prs"), overdue=("benefits",)),
    GroupSpec("wiehre", "de-nest", "NesT-Gruppe Freiburg-Wiehre", "Freiburg im Breisgau", "completed",
              ("Ursula Keller", "Stefan Braun", "Hanna Zimmermann", "Tobias Maier"), "nest-wiehre.example",
              days=420, languages=("de", "en", "ar")),
    GroupSpec("westen", "de-nest", "Willkommensteam Vorderer Westen", "Kassel", "proposed",
              ("Julia Schäfer", "Markus Lange", "Samir Haddad", "Petra Vogt"), "willkommen-westen.example",
              languages=("de", "ar", "ps"), capacity=6),
    GroupSpec("kreuzviertel", "de-nest", "Mentoring Kreuzviertel", "Münster", "eligible",
              ("Anna Schulte", "Felix Brandt", "Fatma Demir", "Christoph Wagner"), "mentoring-kreuzviertel.example",
              days=52, languages=("de", "tr", "en")),
    GroupSpec("ottensen", "de-nest", "Ottensen hilft", "Hamburg", "forming",
              ("Kerstin Lorenz", "Nils Petersen", "Mehmet Kaya", "Birgit Hansen"), "ottensen-hilft.example",
              days=33, missing=("cash", "plan")),
]
NEEDS_A_FAMILY = ("welcoming", "completed", "arriving")

#: The last leg of the journey: city -> (airport, flight)
ARRIVALS = {
    "Columbus": ("John Glenn Columbus International (CMH)", "AA 4432 from Chicago O'Hare"),
    "Pittsburgh": ("Pittsburgh International (PIT)", "UA 2115 from Newark"),
    "Boise": ("Boise Airport (BOI)", "DL 2873 from Salt Lake City"),
    "Ottawa": ("Ottawa Macdonald-Cartier International (YOW)", "AC 456 from Toronto"),
    "Vancouver": ("Vancouver International (YVR)", "AC 115 from Toronto"),
    "Halifax": ("Halifax Stanfield International (YHZ)", "AC 614 from Toronto"),
    "Saskatoon": ("Saskatoon John G. Diefenbaker International (YXE)", "WS 3173 from Calgary"),
}
GERMAN_ARRIVAL = ("Hannover (HAJ), then the Friedland reception centre", "Charter flight from Beirut")
LANGUAGE_NAMES = {"prs": "Dari", "ps": "Pashto", "haz": "Hazaragi", "ar": "Arabic", "ku": "Kurdish", "fvr": "Fur",
                  "mls": "Masalit", "rhg": "Rohingya", "my": "Burmese", "es": "Spanish"}

#: What a group writes when it records a service as done.
EVIDENCE = {
    "airport": "Met at arrivals by three members and an interpreter; driven to the apartment.",
    "housing": "Apartment leased for twelve months, furnished with donated furniture; keys handed over.",
    "first_meal": "Welcome dinner at the apartment; groceries for a week; seasonal coats and shoes bought.",
    "contacts": "Prepaid phone with a local number; emergency numbers and the group's numbers on the fridge.",
    "interpretation": "Telephone interpretation service set up; a member who speaks the family's language on call.",
    "identity_numbers": "Application submitted at the office; the receipt is kept in the family's folder.",
    "benefits": "Health insurance and benefits applications filed; the first appointment attended together.",
    "doctor": "Registered with a family doctor at the community health centre; dentist appointments booked.",
    "school": "Children enrolled at the neighbourhood school, with language support in class.",
    "language": "Adults enrolled in morning language classes; childcare arranged during classes.",
    "bank": "Accounts opened at a credit union; debit cards received and the first budget written together.",
    "orientation": "Transit passes bought; walked the routes to school, the clinic, the mosque and the market.",
    "employment": "CV written with a volunteer mentor; two interviews arranged through a member's employer.",
    "settlement_review": "Six-month review held with the family and the programme's officer; plan updated.",
    "transition": "Budget for month thirteen agreed; the family takes over the lease in its own name.",
}
OVERDUE_NOTES = {
    "doctor": "Two clinics near the apartment have waiting lists; the family uses a walk-in clinic meanwhile.",
    "bank": "The bank asked for a proof of address; the lease is on its way from the landlord.",
    "identity_numbers": "The office cancelled the appointment for the youngest; a new date is being sought.",
    "benefits": "The Jobcenter asked for the residence permit, which the Ausländerbehörde has not issued yet.",
    "employment": "The first job fair was postponed; a member is asking the companies she works with.",
}

#: programme, group that claims it (or None), claimed / given days ago, kind, description, condition, quantity,
#: city, donor, donor's email, offered days ago
DONATIONS: list[tuple[str, str | None, int | None, int | None, str, str, str, int, str, str, str, int]] = [
    ("us-welcome-corps", "riverside", 33, 30, "furniture", "Queen bed frame with a new mattress", "good", 1,
     "Columbus", "Linda Marsh", "linda.marsh@example.com", 40),
    ("us-welcome-corps", "hilltop", 12, 10, "clothing", "Children's winter coats, sizes 6 to 10", "new", 3,
     "Pittsburgh", "St. Brigid's Parish", "office@stbrigid.example.org", 20),
    ("us-welcome-corps", "hilltop", 4, None, "household", "Kitchen starter set: pots, pans, plates and cutlery",
     "good", 1, "Pittsburgh", "Tom Nakamura", "tom.nakamura@example.com", 9),
    ("us-welcome-corps", None, None, None, "food", "Halal grocery gift cards, $50 each", "new", 4, "Minneapolis",
     "Midwest Halal Market", "hello@midwesthalal.example.com", 3),
    ("ca-private-sponsorship", "maple", 50, 46, "furniture", "Dining table with six chairs", "good", 1, "Ottawa",
     "Jean-François Roy", "jf.roy@example.ca", 58),
    ("ca-private-sponsorship", "maple", 44, 42, "clothing", "Winter boots and snow pants, adult and child sizes",
     "new", 5, "Ottawa", "Glebe Community Association", "info@glebeca.example.ca", 49),
    ("ca-private-sponsorship", "kitsilano", 6, None, "household", "Bedding for four beds: duvets, pillows, sheets",
     "new", 4, "Vancouver", "Karen Ostrowski", "karen.o@example.ca", 11),
    ("ca-private-sponsorship", None, None, None, "furniture", "Sofa bed, grey fabric", "fair", 1, "Montréal",
     "Luc Bergeron", "luc.bergeron@example.ca", 7),
    ("de-nest", "suedstadt", 58, 55, "household", "Washing machine, three years old, with delivery", "good", 1,
     "Köln", "Elektro Schäfer GmbH", "info@elektro-schaefer.example.de", 70),
    ("de-nest", "connewitz", 15, None, "furniture", "Cot with mattress and bed linen", "good", 1, "Leipzig",
     "Familie Richter", "richter.leipzig@example.de", 21),
    ("de-nest", None, None, None, "food", "Supermarket vouchers, 25 euros each", "new", 8, "Münster",
     "Kirchengemeinde St. Mauritz", "pfarrbuero@st-mauritz.example.de", 5),
    ("de-nest", None, None, None, "clothing", "Winter jackets for adults, sizes M and L", "good", 4, "Köln",
     "Kleiderkammer Südstadt", "kleiderkammer@example.de", 2),
]


# Helpers --------------------------------------------------------------------------------------------------------


def _principal(session: Session, user: User, org_id: Any) -> Principal:
    p = identity.principal_for(session, user, org_id=org_id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now())


def _ago(days: float, at: time = time(15, 0)) -> datetime:
    """A moment ``days`` days before today (negative: after), at a believable time of day."""
    today = service.today_()
    return datetime.combine(today - timedelta(days=int(days)), at, tzinfo=clock.now().tzinfo)


def _moment(day: date, at: time = time(15, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=clock.now().tzinfo)


def _email(name: str, domain: str) -> str:
    first, *rest = service.i18n_ascii(name).lower().replace("'", "").split()
    return f"{first}.{rest[-1] if rest else 'sponsor'}@{domain}"


def _round_up(value: float, step: int = 100) -> float:
    return float(math.ceil(value / step) * step)


def _personas(ctx: DemoContext) -> dict[str, User]:
    """The logins this demo adds (made once; printed on every run, as the other demos do)."""
    from rdn.network import service as network
    from rdn.network.demo import DEMO_PASSWORD, demo_totp_secret

    session = ctx.session
    out = {}
    for key, email, name, org_short, role in PERSONAS:
        org = ctx.orgs[org_short]
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            user = network.create_person(session, actor=DEMO_ACTOR, email=email, full_name=name, org=org, role=role,
                                         password=DEMO_PASSWORD, invite=False)
            if identity.mfa_required(session, user.id):
                identity.confirm_totp(session, user, demo_totp_secret(email))
        ctx.people[key] = out[key] = user
        ctx.personas.append({
            "persona": key, "email": email, "password": DEMO_PASSWORD, "organization": org.name,
            "roles": role.value,
            "totp_secret": demo_totp_secret(email) if user.mfa_enrolled else "(none: MFA optional)"})
    return out


def _signed_up_persona(ctx: DemoContext) -> None:
    from rdn.network.demo import DEMO_PASSWORD

    key, email = SIGNED_UP_PERSONA
    user = ctx.session.scalars(select(User).where(User.email == email)).first()
    if user is None:
        return
    group = ctx.session.scalars(select(SponsorGroup).join(SponsorMember, SponsorMember.group_id == SponsorGroup.id)
                                .where(SponsorMember.user_id == user.id)).first()
    ctx.people[key] = user
    ctx.personas.append({"persona": key, "email": email, "password": DEMO_PASSWORD,
                         "organization": group.name if group else "", "roles": Role.sponsor.value,
                         "totp_secret": "(none: MFA optional)"})


# Cases: families on their way ----------------------------------------------------------------------------------


class Families:
    """The demo cases a programme's government accepted for resettlement, on their way (approved to departed),
    with enough of them for the demo's matches: topped up from the accepted cases still in the State's checks,
    then (where the government has none, as the United States) from the UNHCR-like agency's cases referred here."""

    STEP_DAYS = 12  # a move along the pipeline every twelve days or so, when a case's past is made

    def __init__(self, ctx: DemoContext, gov: Organization, staff: Principal, rng: random.Random) -> None:
        self.ctx, self.session, self.gov, self.staff, self.rng = ctx, ctx.session, gov, staff, rng
        self.taken: set[Any] = set()
        self._languages: dict[Any, set[str]] = {}

    def _accepted(self, stages: Iterable[Stage]) -> list[Case]:
        accepted = select(Referral.case_id).where(Referral.recipient_org_id == self.gov.id,
                                                  Referral.status == ReferralStatus.accepted,
                                                  Referral.purpose == "resettlement")
        blocked = select(ChecklistEntry.case_id).where(ChecklistEntry.status == ChecklistStatus.blocked)
        open_match = select(Match.case_id).where(Match.status.in_(OPEN_MATCHES))
        cases = self.session.scalars(
            select(Case).where(Case.id.in_(accepted), Case.stage.in_([s.value for s in stages]),
                               Case.id.not_in(blocked), Case.id.not_in(open_match))
            .order_by(Case.number))
        # As the government's officer sees them (a referral is not shown to the country of a member's nationality).
        return [c for c in cases if c.id not in self.taken and case_access(
            self.session, self.staff, c).accepted_for_resettlement]

    def pool(self) -> list[Case]:
        return self._accepted(service.ARRIVING_STAGES)

    def ensure(self, count: int) -> None:
        """At least ``count`` families on their way."""
        short = count - len(self.pool())
        if short <= 0:
            return
        for case in self._accepted((Stage.state_interview, Stage.security_checks, Stage.prescreening,
                                    Stage.submitted))[:short]:
            # The State's checks finished in the past weeks: approved.
            self.advance(case, Stage.approved, _ago(self.rng.randint(6, 30)))
            short -= 1
        if short > 0:
            self._refer_more(short)

    def _refer_more(self, count: int) -> None:
        """The UNHCR-like agency refers some of its cases under review to this government, which accepts them."""
        session, ctx = self.session, self.ctx
        agency_org, caseworker = ctx.orgs.get("unhcr-like"), ctx.people.get("caseworker_unhcr")
        if agency_org is None or caseworker is None:
            return
        agency = _principal(session, caseworker, agency_org.id)
        agreement = sharing.agreement_for(session, agency_org.id, self.gov.id, "resettlement")
        if agreement is None:
            now = clock.now()
            agreement = Agreement(
                provider_org_id=agency_org.id, recipient_org_id=self.gov.id,
                title=f"{agency_org.name} and {self.gov.name}: resettlement referrals",
                reference=f"DSA-{agency_org.short_name.upper()}-{self.gov.short_name.upper()}-2026",
                purposes=["resettlement", "family_reunification"],
                sections=["identity", "background", "needs", "family", "pipeline", "protection"],
                status=AgreementStatus.active, proposed_by_org_id=agency_org.id,
                proposed_at=now - timedelta(days=420), decided_at=now - timedelta(days=410))
            session.add(agreement)
            session.flush()
            audit.record(session, action="agreement.active", actor=DEMO_ACTOR, object_type="agreement",
                         object_id=agreement.id, details={"demo": True})
        referred = select(Referral.case_id)
        candidates = session.scalars(
            select(Case).where(Case.owner_org_id == agency_org.id, Case.id.not_in(referred),
                               Case.stage.in_([Stage.review.value, Stage.recommendation.value]))
            .order_by(Case.number)).all()
        done = 0
        for case in candidates:
            if done >= count:
                break
            if self.gov.country and self.gov.country in {m.nationality for m in _household(session, case)}:
                continue
            access = CaseAccess(case, True, owner_sections(agency))
            sharing.record_consent(session, actor=agency, access=access, recipient_org_id=self.gov.id,
                                   purpose="resettlement", method="written")
            round_ = sharing.refer(session, actor=agency, access=access, recipients=[self.gov.id],
                                   purpose="resettlement", sections=["identity", "background", "needs", "family",
                                                                     "pipeline"],
                                   note=f"Referred for resettlement to {self.gov.name}.", notify=False)
            referral = session.scalars(select(Referral).where(Referral.round_id == round_.id)).one()
            sharing.change_referral(session, actor=self.staff, referral=referral, status="in_progress")
            sharing.change_referral(session, actor=self.staff, referral=referral, status="accepted")
            self.advance(case, Stage.approved, _ago(self.rng.randint(8, 30)), owner=agency)
            # Back-dated to when the case was submitted, as the cases demo does with its referrals.
            when = case.submitted_at or case.stage_since
            round_.created_at = referral.created_at = when
            referral.updated_at = when + (case.stage_since - when) / 2
            for consent in sharing.consents_of(session, case):
                consent.recorded_at = when - timedelta(days=2)
            done += 1

    def take(self, size_at_most: int, languages: Iterable[str] = (), prefer: Sequence[Stage] = ()) -> Case | None:
        """The first family on its way that the group can house (else the smallest), preferring the stages given,
        then a family that speaks one of the group's languages."""
        pool = self.pool()
        if not pool:
            return None
        rank = {s.value: n for n, s in enumerate(prefer)}
        spoken = set(languages) - {"en", "fr", "de"}

        def speaks(case: Case) -> bool:
            if case.id not in self._languages:
                self._languages[case.id] = {lang for m in _household(self.session, case) for lang in m.languages}
            return bool(spoken & self._languages[case.id])

        pool.sort(key=lambda c: (rank.get(c.stage, len(rank)), c.size > size_at_most, not speaks(c), c.number))
        case = pool[0] if pool[0].size <= size_at_most else min(pool, key=lambda c: (c.size, c.number))
        self.taken.add(case.id)
        return case

    def advance(self, case: Case, target: Stage, end: datetime, owner: Principal | None = None) -> None:
        """Move the case along the main road to ``target``, the last move at ``end``, the others spread before it
        (its whole past moved back first when it would not fit): as the pipeline's own moves would have left it."""
        road = list(MAIN_ROAD)
        current = Stage(case.stage)
        if current not in road or road.index(target) <= road.index(current):
            return
        path = road[road.index(current):road.index(target) + 1]
        moves = len(path) - 1
        earliest = end - timedelta(days=self.STEP_DAYS * moves)
        if case.stage_since > earliest:
            _shift_case(self.session, case, case.stage_since - earliest)
        start, before_last = case.stage_since, end - timedelta(days=1)
        for i, (before, after) in enumerate(itertools.pairwise(path), start=1):
            at = end if i == moves else start + (before_last - start) * (i / moves)
            who = self.staff if (before, after) in pipeline.STATE_MOVES or owner is None else owner
            self.session.add(StageEvent(case_id=case.id, from_stage=before, to_stage=after, at=at,
                                        note="Arrived; welcomed by a community sponsor group."
                                        if after == Stage.arrived else "",
                                        actor_user_id=who.user_id, actor_org_id=who.org_id,
                                        actor_label=who.full_name))
            if after == Stage.submitted:
                case.submitted_at = at
            elif after == Stage.departed:
                case.departed_at = at
            elif after == Stage.arrived:
                case.arrived_at = at
        case.stage, case.stage_since = target.value, end
        if road.index(target) >= road.index(Stage.travel_booking):
            for item in ChecklistItem:
                entry = cases_service.checklist_entry(self.session, case, item)
                if entry.status != ChecklistStatus.not_needed:
                    entry.status, entry.updated_at = ChecklistStatus.done, start
        cases_service.recompute_clocks(case)
        self.session.flush()


def _shift_case(session: Session, case: Case, delta: timedelta) -> None:
    """Move a case's whole past back by ``delta``: its moves, referrals and consents keep their order."""
    for name in ("opened_at", "created_at", "stage_since", "submitted_at", "departed_at", "arrived_at"):
        if getattr(case, name) is not None:
            setattr(case, name, getattr(case, name) - delta)
    for event in session.scalars(select(StageEvent).where(StageEvent.case_id == case.id)):
        event.at -= delta
    for referral in session.scalars(select(Referral).where(Referral.case_id == case.id)):
        referral.created_at -= delta
        referral.updated_at -= delta
        if referral.closed_at is not None:
            referral.closed_at -= delta
    for round_ in session.scalars(select(ReferralRound).where(ReferralRound.case_id == case.id)):
        round_.created_at -= delta
    for consent in session.scalars(select(Consent).where(Consent.case_id == case.id)):
        consent.recorded_at -= delta


def _household(session: Session, case: Case) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.case_id == case.id).order_by(Member.position)))


def _needs(session: Session, case: Case) -> list[str]:
    """What the family agreed to share with its sponsors (from its household, as staff would put it)."""
    people = _household(session, case)
    year = service.today_().year
    needs = []
    if (case.size or len(people)) >= 6:
        needs.append("large_housing")
    if any(year - m.birth_year <= 1 for m in people if m.birth_year):
        needs.append("infant")
    if str(case.category_primary) == "MED":
        needs.append("medical")
    return needs


# Groups -----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Built:
    spec: GroupSpec
    group: SponsorGroup
    sponsor: Principal  # who acts for the group (its contact person)


class Seeder:
    def __init__(self, ctx: DemoContext, programme: Programme, staff: Principal, families: Families,
                 rng: random.Random) -> None:
        self.ctx, self.session, self.programme, self.staff = ctx, ctx.session, programme, staff
        self.families, self.rng = families, rng
        self.today = service.today_()

    # A group, from sign-up to eligibility -----------------------------------------------------------------------

    def group(self, spec: GroupSpec, family: Case | None, signed_up: datetime) -> Built:
        session, programme = self.session, self.programme
        capacity = max(spec.capacity, family.size if family else 0)
        prefs = {"name": spec.name, "city": spec.city, "stream": spec.stream, "languages": list(spec.languages),
                 "nationalities": list(spec.nationalities), "supports": list(spec.supports), "min_size": 1,
                 "max_size": max(spec.max_size, capacity), "capacity": capacity}
        if spec.stream == "named" and family is not None:
            prefs["named_family"] = (f"{family.principal_name or 'A family'} and family, {family.size} people: "
                                     f"relatives of one of our members, who asked us to sponsor them")
        if spec.org:
            org = self.ctx.orgs[spec.org]
            contact = self.ctx.people[ORG_CONTACTS[spec.org]]
            values = service.group_values({**prefs, "name": org.name, "contact_email": contact.email})
            group = SponsorGroup(programme_id=programme.id, org_id=org.id, government_org_id=programme.org_id,
                                 country=programme.country, **values)
            session.add(group)
            session.flush()
            session.add(SponsorMember(group_id=group.id, user_id=contact.id, full_name=contact.full_name,
                                      email=contact.email, adult=True))
            session.flush()
            # The network's own groups joined the programme on paper, before RDN: recorded as the demo.
            audit.record(session, action="welcome.group.sign_up", actor=DEMO_ACTOR, object_type="welcome_group",
                         object_id=group.id, details={"programme": programme.slug, "demo": True}, org_id=org.id)
            service.refresh_status(session, group, programme=programme)
            lead = contact
        else:
            email = SIGNED_UP_PERSONA[1] if spec.key == "hilltop" else _email(spec.members[0], spec.domain)
            group = service.sign_up(session, programme=programme,
                                    data={**prefs, "your_name": spec.members[0], "your_email": email})
            lead = session.scalars(select(User).where(User.email == email)).one()
            if spec.key == "hilltop":
                from rdn.network.demo import DEMO_PASSWORD

                identity.set_password(lead, DEMO_PASSWORD)
        sponsor = _principal(session, lead, group.org_id)
        built = Built(spec, group, sponsor)
        self._prepare(built, signed_up)
        return built

    def _prepare(self, built: Built, signed_up: datetime) -> None:
        """Members, checks and training (recorded by staff), funds (pledged, verified) and the welcome plan: all of
        it, or all but what the spec says is missing. Dates follow from the sign-up."""
        session, programme, spec, group = self.session, self.programme, built.spec, built.group
        missing = set(spec.missing)
        names = spec.members[:max(1, programme.min_adults - 2)] if "adults" in missing else spec.members
        for name in names[1:]:
            service.add_member(session, actor=built.sponsor, group=group,
                               data={"full_name": name, "email": _email(name, spec.domain)})
        members = service.members_of(session, group)
        first = signed_up.date()

        def day(offset: int) -> date:  # so many days after the sign-up, never later than yesterday
            return min(first + timedelta(days=offset), self.today - timedelta(days=1))

        for n, member in enumerate(members):
            member.created_at = signed_up + timedelta(hours=n)
            last = n == len(members) - 1
            check = "pending" if ("checks" in missing and (n > 0 if "adults" in missing else last)) else "passed"
            trained = None
            if not ("training" in missing and n > 0) and not (not programme.training_required and last):
                trained = day(10 + n % 3)
            service.record_check(session, actor=self.staff, group=group, member=member, check=check,
                                 trained_on=trained)
            member.checked_on = day(6 + n) if check != "pending" else None
        need = service.funds_needed(programme, group)
        if "funds" in missing:
            pledged = _round_up(need * 0.4)
            cash = _round_up(pledged * 0.7)
        elif "cash" in missing:
            pledged, cash = _round_up(need), _round_up(need * max(0.0, programme.cash_share - 0.4))
        else:
            pledged = _round_up(need * 1.04)
            cash = min(pledged, _round_up(pledged * max(programme.cash_share, 0.65)))
        service.update_group(session, actor=built.sponsor, group=group,
                             changes={"funds_pledged": pledged, "funds_cash": cash})
        services = programme.services if "plan" not in missing else programme.services[:len(programme.services) // 2]
        service.update_group(session, actor=built.sponsor, group=group, changes={"plan": {
            item["code"]: str(members[n % len(members)].id) for n, item in enumerate(services)}})
        settled = _moment(day(16), time(10, 30))
        if not missing.intersection({"funds", "funds_verified"}):
            service.verify_funds(session, actor=self.staff, group=group)
            group.funds_verified_at = settled
        group.created_at, group.updated_at = signed_up, settled
        if group.status == GroupStatus.eligible:
            group.eligible_since = settled

    # A family's journey with its group ---------------------------------------------------------------------------

    def welcome(self, built: Built, family: Case, arrival: date) -> Match:
        """Proposed by staff, accepted by both, the arrival notice; the services recorded as the group did them;
        the case moved to arrived when the family has."""
        session, group, spec = self.session, built.group, built.spec
        reasons = ["The group named this family."] if spec.stream == "named" else []
        match = service.propose(session, actor=self.staff, group=group, case_id=family.id,
                                shared_needs=_needs(session, family), reasons=reasons)
        service.respond_as_group(session, actor=built.sponsor, match=match, accept=True)
        service.record_family_answer(session, actor=self.staff, match=match, accept=True)
        airport, flight = ARRIVALS.get(spec.city, GERMAN_ARRIVAL if self.programme.country == "DE" else ("", ""))
        languages = [LANGUAGE_NAMES[c] for c in match.shared.get("languages", []) if c in LANGUAGE_NAMES]
        notes = f"{languages[0]} interpreter requested at the airport." if languages else ""
        if self.programme.country == "DE":
            notes = f"About two weeks at the Friedland reception centre, then by train to {spec.city}. {notes}"
        service.set_arrival(session, actor=self.staff, match=match, arrival_on=arrival.isoformat(),
                            notice={"flight": flight, "airport": airport, "time": f"{13 + len(spec.key) % 8}:35",
                                    "notes": notes.strip()})
        match.created_at = _moment(arrival - timedelta(days=48), time(11, 0))
        match.group_accepted_at = _moment(arrival - timedelta(days=45), time(19, 30))
        match.family_accepted_at = _moment(arrival - timedelta(days=41), time(9, 45))
        match.notice_sent_at = min(clock.now(), _moment(arrival - timedelta(days=10), time(16, 0)))
        match.updated_at = match.notice_sent_at
        if arrival <= self.today:
            self.families.advance(family, Stage.arrived, _moment(arrival, time(21, 0)))
        elif family.stage != Stage.travel_booking.value:
            self.families.advance(family, Stage.travel_booking, _ago(3))
        return match

    def services(self, built: Built, match: Match, finished: bool = False) -> None:
        """Done on or near their due dates, with evidence, but the spec's overdue ones (for a per-person service,
        the last person's): a few due in the coming days are done early."""
        session, today = self.session, self.today
        tasks = service.tasks_of(session, match)
        assert match.arrival_on is not None
        last_person = {t.code: t.person for t in tasks if t.person}
        for task in tasks:
            due = task.due_on
            assert due is not None
            if task.code in built.spec.overdue and task.person == last_person.get(task.code, "") and not finished:
                if due < today:
                    service.update_task(session, actor=built.sponsor, match=match, task=task,
                                        changes={"notes": OVERDUE_NOTES.get(task.code, "")})
                continue
            if due > today and (finished or due > today + timedelta(days=4) or self.rng.random() < 0.5):
                continue
            # The first days' services on the day; the later ones a little early or late.
            late = self.rng.choice((-3, -2, -1, -1, 0, 0, 0, 0, 1, 2, 5)) if task.due_days >= 7 else 0
            done = due + timedelta(days=late)
            done = max(match.arrival_on, min(done, today))
            service.update_task(session, actor=built.sponsor, match=match, task=task,
                                changes={"done_on": done.isoformat(), "evidence": EVIDENCE.get(task.code, "Done.")})
            task.updated_at = _moment(done, time(20, 15))

    def complete(self, match: Match, family: Case) -> None:
        year = self.today.year
        children = any(year - m.birth_year < 18 for m in _household(self.session, family) if m.birth_year)
        service.record_outcomes(self.session, actor=self.staff, match=match, complete=True, outcomes={
            "housing_stable": True, "children_in_school": True if children else None,
            "adults_working_or_learning": True,
            "notes": "The family has taken over the lease; the adults attend language classes and one works part "
                     "time. The group stays in touch as friends."})
        assert match.arrival_on is not None
        ended = match.arrival_on + timedelta(days=self.programme.support_days + 4)
        match.completed_at = match.updated_at = _moment(min(ended, self.today), time(10, 0))

    def propose_by_matching(self, built: Built) -> Match | None:
        """The matching proposes a family for the group (the only eligible group of the programme at this point) and
        the group accepts; the family's answer is awaited. When the matching finds none (the families it would
        take are spoken for by the demo's other groups), staff propose a family themselves, with the matching's own
        words for why."""
        session, programme, group = self.session, self.programme, built.group
        cases = service.arriving_cases(session, self.staff, programme)
        families = [dataclasses.replace(service.family_needs(c, _household(session, c)), country=programme.country)
                    for c in cases]
        prefs = service.group_prefs(group)
        chosen = next((p.family_id for p in matching.match([prefs], families).proposals
                       if p.group_id == group.id), None)
        by_id = {c.id: c for c in cases}
        if chosen is not None:
            service.run_matching(session, actor=self.staff, programme=programme)
            match = session.scalars(select(Match).where(Match.group_id == group.id,
                                                        Match.status == MatchStatus.proposed)).first()
        else:
            usable = [f for f in families if f.id not in self.families.taken and matching.compatible(prefs, f) is None]
            if not usable:
                return None
            best = max(usable, key=lambda f: (matching.score(prefs, f)[0], str(f.id)))
            points, reasons = matching.score(prefs, best)
            match = service.propose(session, actor=self.staff, group=group, case_id=best.id,
                                    shared_needs=_needs(session, by_id[best.id]), score=points,
                                    reasons=[r.text for r in reasons])
        if match is None:
            return None
        self.families.taken.add(match.case_id)
        service.respond_as_group(session, actor=built.sponsor, match=match, accept=True)
        match.created_at = _ago(6, time(9, 0))
        match.group_accepted_at = match.updated_at = _ago(3, time(20, 40))
        return match


# Donations ------------------------------------------------------------------------------------------------------


def _donations(session: Session, programmes: dict[str, Programme], built: dict[str, Built]) -> tuple[int, int]:
    given = 0
    for (slug, claimer, claimed_ago, given_ago, kind, description, condition, quantity, city, donor, email,
         offered_ago) in DONATIONS:
        donation = service.offer_donation(session, programme=programmes[slug], data={
            "donor_name": donor, "donor_email": email, "kind": kind, "description": description,
            "condition": condition, "quantity": quantity, "city": city})
        donation.created_at = _ago(offered_ago, time(12, 10))
        b = built.get(claimer or "")
        if b is None or claimed_ago is None:
            continue
        service.claim_donation(session, actor=b.sponsor, group=b.group, donation=donation)
        donation.claimed_at = _ago(claimed_ago, time(18, 5))
        if given_ago is not None:
            service.give_donation(session, actor=b.sponsor, group=b.group, donation=donation,
                                  on=(service.today_() - timedelta(days=given_ago)).isoformat())
            given += 1
    return len(DONATIONS), given


# The seeder -------------------------------------------------------------------------------------------------------


def seed(ctx: DemoContext) -> None:
    session = ctx.session
    needed = {"us", "ca", "de", "maple-circle", "riverside-welcome", "suedstadt-willkommen"}
    if not needed <= set(ctx.orgs) or not {"officer_us", "admin_canada", "officer_canada",
                                           "sponsor_group_a"} <= set(ctx.people):
        return  # not the demo network
    _personas(ctx)
    if session.scalars(select(Programme.id).where(Programme.slug.in_(list(PROGRAMMES)))).first():
        _signed_up_persona(ctx)
        return  # seeded before: a second run adds nothing
    rng = random.Random(8)
    programmes: dict[str, Programme] = {}
    built: dict[str, Built] = {}
    for slug, (gov_short, creator, runner, rules) in PROGRAMMES.items():
        gov = ctx.orgs[gov_short]
        programme = service.create_programme(session, actor=_principal(session, ctx.people[creator], gov.id),
                                             data={**rules, "slug": slug})
        programme.created_at = programme.updated_at = _ago(540, time(9, 0))
        programmes[slug] = programme
        staff = _principal(session, ctx.people[runner], gov.id)
        families = Families(ctx, gov, staff, rng)
        specs = [s for s in GROUPS if s.programme == slug]
        families.ensure(sum(1 for s in specs if s.stage in (*NEEDS_A_FAMILY, "proposed")) + 2)
        seeder = Seeder(ctx, programme, staff, families, rng)
        # Families first: groups that welcome, welcomed or wait for one.
        for spec in (s for s in specs if s.stage in NEEDS_A_FAMILY):
            family = families.take(spec.capacity, spec.languages, prefer=(Stage.travel_booking, Stage.placement)
                                   if spec.stage == "arriving" else ())
            arrival = service.today_() + timedelta(days=spec.days if spec.stage == "arriving" else -spec.days)
            b = built[spec.key] = seeder.group(spec, family, _ago((service.today_() - arrival).days + 150))
            if family is None:
                continue  # too few families in this database: the group stays eligible
            match = seeder.welcome(b, family, arrival)
            seeder.services(b, match, finished=spec.stage == "completed")
            if spec.stage == "completed":
                seeder.complete(match, family)
        # The matching proposes a family for the group waiting for one (before the other groups are eligible).
        for spec in (s for s in specs if s.stage == "proposed"):
            b = built[spec.key] = seeder.group(spec, None, _ago(75))
            seeder.propose_by_matching(b)
        for spec in (s for s in specs if s.stage in ("eligible", "forming", "withdrawn")):
            b = built[spec.key] = seeder.group(spec, None, _ago(spec.days))
            if spec.stage == "withdrawn":
                service.withdraw_group(session, actor=b.sponsor, group=b.group,
                                       reason="Two of our members are moving away; we hope to sign up again.")
                b.group.updated_at = _ago(spec.days - 40)
    _signed_up_persona(ctx)
    offered, given = _donations(session, programmes, built)
    session.flush()
    _report(ctx, programmes, offered, given)


def _report(ctx: DemoContext, programmes: dict[str, Programme], offered: int, given: int) -> None:
    session = ctx.session
    ids = [p.id for p in programmes.values()]
    by_status = dict(session.execute(select(SponsorGroup.status, func.count())
                                     .where(SponsorGroup.programme_id.in_(ids))
                                     .group_by(SponsorGroup.status)).all())
    groups = ", ".join(f"{by_status[s]} {s.value}" for s in GroupStatus if by_status.get(s))
    matches = dict(session.execute(select(Match.status, func.count()).where(Match.programme_id.in_(ids))
                                   .group_by(Match.status)).all())
    today = service.today_()
    overdue = session.scalar(select(func.count()).select_from(ServiceTask).join(Match, Match.id == ServiceTask.match_id)
                             .where(Match.status == MatchStatus.active, ServiceTask.done_on.is_(None),
                                    ServiceTask.due_on < today))
    ctx.say(f"Created {len(programmes)} Welcome programmes ({', '.join(p.name for p in programmes.values())}) "
            f"with {sum(by_status.values())} sponsor groups ({groups})")
    ctx.say(f"Matched {sum(matches.values())} families with sponsor groups "
            f"({matches.get(MatchStatus.active, 0)} accepted, {matches.get(MatchStatus.proposed, 0)} waiting for "
            f"the family, {matches.get(MatchStatus.completed, 0)} completed with outcomes); {overdue} services "
            f"overdue; {offered} donations offered, {given} given")


