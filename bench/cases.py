"""Cases at scale, on PostgreSQL: the filtered case list and name search under concurrent clients, and import
throughput.

1. Import: ~300,000 households (~1,000,000 people; Afghan, Syrian, Sudanese, Rohingya and Venezuelan names with
   other spellings and Arabic-script forms in ``other_names``) are written as CSV files of about 25,000 people
   and loaded through ``rdn.cases.imports.import_file``, the path ``rdn cases import`` and the API take, one
   commit per file. Reported: people per second over all files (import and commit only, not writing the CSV)
   and the median file. Goal: at least 5,000 people per second.
   The cases are then given a believable past (stages across the pipeline, dates, SLA clocks as
   ``service.recompute_clocks`` computes them) and about half are referred to governments under agreements
   (one ended, so its referrals show nothing), so the recipient side's scope is exercised too.
2. A real ``rdn serve`` (one process: the command runs one uvicorn process; ``--servers`` starts more, each on
   its own port, as a load balancer would spread them) and ``--clients`` concurrent clients, each with its own
   API token: four in five are the owning agency's caseworkers, the rest officers of recipient governments.
   After a warm-up, each scenario runs for ``--seconds``:
   * list: ``GET /api/v1/cases`` with realistic combinations of stage, priority, category, nationality,
     current country, overdue and sort, pages 1 to 3 of 25. Goal: p95 under 100 ms.
   * search: ``GET /api/v1/cases?q=`` common names in other spellings and scripts, and case numbers.
     Goal: p95 under 200 ms.

    .venv/bin/python bench/cases.py [--cases 300000] [--clients 10] [--seconds 30] [--warmup 5]
                                    [--file-people 25000] [--servers 1] [--keep] [--reuse]

The database is ``rdn_bench_cases`` (or RDN_BENCH_CASES_DATABASE) at RDN_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres): by default created afresh and dropped at the end. ``--keep``
keeps it; ``--reuse`` skips seeding when it already holds a seeding of the same size at the current schema
(and keeps it), for fast iterations: the import figures are then those of the run that seeded it.
Set COLUMNS (e.g. COLUMNS=140) for wide tables when the output is not a terminal.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rdn import db, migrate, modules  # noqa: E402
from rdn.cases import imports, pipeline, shares  # noqa: E402
from rdn.cases.demo import COMMUNITIES  # noqa: E402
from rdn.cases.models import (  # noqa: E402
    Agreement,
    AgreementStatus,
    Case,
    Priority,
    Referral,
    ReferralRound,
    ReferralStatus,
)
from rdn.cases.pipeline import MAIN_ROAD, Stage  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core import clock, identity  # noqa: E402
from rdn.core.audit import Actor  # noqa: E402
from rdn.core.tenancy import Organization, OrgKind, Role  # noqa: E402
from rdn.network import service as network  # noqa: E402

RDN = str(Path(sys.executable).with_name("rdn"))
DATABASE = os.environ.get("RDN_BENCH_CASES_DATABASE", "rdn_bench_cases")  # CI runs a small one elsewhere
console = Console()
ACTOR = Actor("bench")
GOALS = {"list": 100.0, "search": 200.0}
IMPORT_GOAL = 5000.0

# Names ---------------------------------------------------------------------------------------------------------
# Each name: its usual Latin spelling, other spellings met on documents, and its Arabic-script form.
Name = tuple[str, tuple[str, ...], str]

NAMES: dict[str, dict[str, tuple[Name, ...]]] = {
    "afghan": {
        "male": (
            ("Mohammad", ("Muhammad", "Mohammed", "Mohamad"), "محمد"),
            ("Ahmad", ("Ahmed",), "احمد"),
            ("Abdul Rahman", ("Abdurrahman", "Abdulrahman"), "عبدالرحمن"),
            ("Hamid", ("Hameed",), "حمید"),
            ("Farid", ("Fareed",), "فرید"),
            ("Jawad", ("Javad",), "جواد"),
            ("Naveed", ("Navid",), "نوید"),
            ("Sayed", ("Said", "Syed"), "سید"),
            ("Rahim", ("Raheem",), "رحیم"),
            ("Zabihullah", ("Zabiullah",), "ذبیح الله"),
            ("Mustafa", ("Mostafa",), "مصطفی"),
            ("Habib", ("Habeeb",), "حبیب"),
            ("Abdullah", ("Abdulla",), "عبدالله"),
            ("Hussain", ("Hussein", "Husain"), "حسین"),
            ("Ali", ("Aly",), "علی"),
        ),
        "female": (
            ("Fatima", ("Fatemeh", "Fatimah"), "فاطمه"),
            ("Zahra", ("Zahraa",), "زهرا"),
            ("Maryam", ("Mariam",), "مریم"),
            ("Shabnam", (), "شبنم"),
            ("Parwana", ("Parvaneh",), "پروانه"),
            ("Nargis", ("Narges",), "نرگس"),
            ("Soraya", ("Suraya",), "ثریا"),
            ("Laila", ("Leila",), "لیلا"),
            ("Hafiza", ("Hafeeza",), "حفیظه"),
            ("Zainab", ("Zaynab", "Zeinab"), "زینب"),
        ),
        "family": (
            ("Rahimi", ("Raheemi",), "رحیمی"),
            ("Ahmadzai", ("Ahmadzay",), "احمدزی"),
            ("Hakimi", ("Hakeemi",), "حکیمی"),
            ("Sadat", ("Saadat",), "سادات"),
            ("Karimi", ("Kareemi",), "کریمی"),
            ("Noori", ("Nuri", "Noori"), "نوری"),
            ("Haidari", ("Heydari", "Haydari"), "حیدری"),
            ("Yousufzai", ("Yusufzai",), "یوسفزی"),
            ("Wardak", (), "وردک"),
            ("Hashimi", ("Hashemi",), "هاشمی"),
            ("Mohammadi", ("Muhammadi",), "محمدی"),
            ("Stanekzai", ("Stanikzai",), "ستانکزی"),
            ("Popal", (), "پوپل"),
            ("Amiri", ("Ameeri",), "امیری"),
        ),
    },
    "syrian": {
        "male": (
            ("Mohammed", ("Muhammad", "Mohamad", "Mohammad"), "محمد"),
            ("Ahmad", ("Ahmed",), "أحمد"),
            ("Khaled", ("Khalid",), "خالد"),
            ("Omar", ("Umar",), "عمر"),
            ("Yusuf", ("Youssef", "Yousef"), "يوسف"),
            ("Ibrahim", ("Ebrahim",), "إبراهيم"),
            ("Hassan", ("Hasan",), "حسن"),
            ("Hussein", ("Hussain", "Husein"), "حسين"),
            ("Bilal", ("Belal",), "بلال"),
            ("Samer", ("Samir",), "سامر"),
            ("Tarek", ("Tariq", "Tarik"), "طارق"),
            ("Abdul Rahman", ("Abdulrahman", "Abdelrahman", "Abd al-Rahman"), "عبد الرحمن"),
        ),
        "female": (
            ("Fatima", ("Fatma", "Fatimah"), "فاطمة"),
            ("Aisha", ("Aysha", "Aicha"), "عائشة"),
            ("Rania", ("Ranya",), "رانيا"),
            ("Lina", ("Leena",), "لينا"),
            ("Hala", (), "هالة"),
            ("Nour", ("Noor", "Nur"), "نور"),
            ("Rasha", (), "رشا"),
            ("Dima", ("Deema",), "ديما"),
            ("Huda", ("Houda", "Hoda"), "هدى"),
            ("Salma", ("Selma",), "سلمى"),
        ),
        "family": (
            ("Al-Hassan", ("Alhassan", "El Hassan"), "الحسن"),
            ("Haddad", ("Hadad",), "حداد"),
            ("Khalil", ("Khaleel",), "خليل"),
            ("Al-Ahmad", ("Alahmad",), "الأحمد"),
            ("Darwish", ("Darwich", "Derwish"), "درويش"),
            ("Saleh", ("Salih",), "صالح"),
            ("Al-Khatib", ("Alkhatib", "El Khatib"), "الخطيب"),
            ("Hamdan", (), "حمدان"),
            ("Nasser", ("Nasir", "Naser"), "ناصر"),
            ("Mansour", ("Mansur",), "منصور"),
            ("Al-Ali", ("Alali",), "العلي"),
            ("Hamoud", ("Hammoud",), "حمود"),
        ),
    },
    "sudanese": {
        "male": (
            ("Mohamed", ("Mohammed", "Muhammad"), "محمد"),
            ("Abdelrahman", ("Abdul Rahman", "Abdalrahman"), "عبد الرحمن"),
            ("Osman", ("Othman", "Usman"), "عثمان"),
            ("Ahmed", ("Ahmad",), "أحمد"),
            ("Ibrahim", ("Ibraheem",), "إبراهيم"),
            ("Mustafa", ("Mostafa",), "مصطفى"),
            ("Hamza", ("Hamzah",), "حمزة"),
            ("Adam", ("Adum",), "آدم"),
            ("Yahya", ("Yehia",), "يحيى"),
            ("Idris", ("Idriss",), "إدريس"),
            ("Abdalla", ("Abdullah", "Abdallah"), "عبد الله"),
        ),
        "female": (
            ("Amna", ("Amina",), "آمنة"),
            ("Fatima", ("Fatma",), "فاطمة"),
            ("Hawa", ("Hawaa",), "حواء"),
            ("Mariam", ("Maryam",), "مريم"),
            ("Khadija", ("Khadiga",), "خديجة"),
            ("Samira", ("Sameera",), "سميرة"),
            ("Zeinab", ("Zainab",), "زينب"),
            ("Asha", ("Aisha",), "عائشة"),
            ("Halima", ("Haleema",), "حليمة"),
            ("Sara", ("Sarah",), "سارة"),
        ),
        "family": (
            ("Osman", ("Othman",), "عثمان"),
            ("Abdalla", ("Abdallah", "Abdullah"), "عبد الله"),
            ("Ibrahim", (), "إبراهيم"),
            ("Hassan", ("Hasan",), "حسن"),
            ("Adam", (), "آدم"),
            ("Musa", ("Mousa",), "موسى"),
            ("Yagoub", ("Yacoub", "Yaqub"), "يعقوب"),
            ("Haroun", ("Harun",), "هارون"),
            ("Bakhit", ("Bakheet",), "بخيت"),
            ("Eltayeb", ("Al-Tayeb", "Altayeb"), "الطيب"),
        ),
    },
    "rohingya": {
        "male": (
            ("Mohammad", ("Mohammed", "Muhammad", "Md"), ""),
            ("Nur", ("Noor",), ""),
            ("Abdul", ("Abdool",), ""),
            ("Rashid", ("Rasheed",), ""),
            ("Hashim", ("Hashem",), ""),
            ("Jamal", (), ""),
            ("Kabir", ("Kobir",), ""),
            ("Anwar", ("Anowar",), ""),
            ("Sayed", ("Syed",), ""),
            ("Hamid", ("Hamed",), ""),
        ),
        "female": (
            ("Rashida", ("Rasheda",), ""),
            ("Hasina", ("Haseena",), ""),
            ("Jannat", (), ""),
            ("Rabia", ("Rabeya",), ""),
            ("Setara", ("Sitara",), ""),
            ("Sufia", ("Sofia",), ""),
            ("Rahima", ("Raheema",), ""),
            ("Tasmin", ("Tasmeen",), ""),
            ("Mabia", (), ""),
            ("Nur Begum", ("Noor Begum",), ""),
        ),
        "family": (
            ("Alam", ("Alom",), ""),
            ("Hossain", ("Hussain", "Hussein"), ""),
            ("Ullah", ("Ulla",), ""),
            ("Islam", (), ""),
            ("Rahman", ("Rohman",), ""),
            ("Kabir", (), ""),
            ("Amin", ("Ameen",), ""),
            ("Karim", ("Kareem",), ""),
            ("Haque", ("Hoque", "Huq"), ""),
            ("Sultan", (), ""),
        ),
    },
    "venezuelan": {
        "male": (
            ("José", ("Jose",), ""),
            ("Luis", (), ""),
            ("Carlos", (), ""),
            ("Juan", (), ""),
            ("Miguel", (), ""),
            ("Andrés", ("Andres",), ""),
            ("Jesús", ("Jesus",), ""),
            ("Rafael", (), ""),
            ("Daniel", (), ""),
            ("Alejandro", (), ""),
        ),
        "female": (
            ("María", ("Maria",), ""),
            ("Ana", (), ""),
            ("Carmen", (), ""),
            ("Yuleisy", ("Yuleisi",), ""),
            ("Daniela", (), ""),
            ("Gabriela", (), ""),
            ("Andreína", ("Andreina",), ""),
            ("Rosa", (), ""),
            ("Luisa", (), ""),
            ("Valentina", (), ""),
        ),
        "family": (
            ("González", ("Gonzalez",), ""),
            ("Rodríguez", ("Rodriguez",), ""),
            ("Pérez", ("Perez",), ""),
            ("Hernández", ("Hernandez",), ""),
            ("García", ("Garcia",), ""),
            ("Martínez", ("Martinez",), ""),
            ("López", ("Lopez",), ""),
            ("Ramírez", ("Ramirez",), ""),
            ("Torres", (), ""),
            ("Rojas", (), ""),
        ),
    },
}
OCCUPATIONS = (
    "Teacher",
    "Farmer",
    "Tailor",
    "Driver",
    "Nurse",
    "Engineer",
    "Trader",
    "Student",
    "Mechanic",
    "Carpenter",
    "Cook",
    "",
)
HEADER = (
    "case_key",
    "current_country",
    "current_location",
    "category_primary",
    "category_secondary",
    "processing_priority",
    "submission_priority",
    "relationship",
    "given_name",
    "family_name",
    "other_names",
    "sex",
    "date_of_birth",
    "nationality",
    "stateless",
    "languages",
    "education",
    "occupation",
    "specific_needs",
)

# What each government may see of the agency's cases, and how often cases are referred to it. Australia's
# agreement has ended: its referrals show nothing (the scope must still look at them). Spain's referrals carry
# no identity: its officers list those cases but find none of them by name.
GOVERNMENTS = {
    "ca": ("Canada", "CA", ("identity", "background", "needs", "location", "family", "pipeline"), 35),
    "de": ("Germany", "DE", ("identity", "background", "needs", "family", "pipeline"), 20),
    "es": ("Spain", "ES", ("needs", "pipeline"), 15),
    "gb": ("United Kingdom", "GB", ("identity", "needs", "family", "pipeline"), 15),
    "au": ("Australia", "AU", ("identity", "background", "needs", "pipeline"), 10),
    "br": ("Brazil", "BR", ("identity", "background", "needs"), 5),
}
GOVERNMENT_CLIENTS = ("ca", "de")  # whose officers take part in the load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def environ(url: str) -> dict[str, str]:
    return {
        "RDN_MODE": "test",
        "RDN_DATABASE_URL": url,
        "RDN_LOG_LEVEL": "WARNING",
        "RDN_INPROCESS_WORKER": "false",
        "RDN_SMTP_HOST": "127.0.0.1",
        "RDN_SMTP_PORT": "9",
    }


# The database --------------------------------------------------------------------------------------------------


def database_url(admin_url: str) -> str:
    base = make_url(db.normalise_url(admin_url))
    return base.set(database=DATABASE).render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")


def admin_execute(admin_url: str, *statements: str) -> None:
    admin = create_engine(make_url(db.normalise_url(admin_url)), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def reusable(admin_url: str, url: str, cases: int) -> str | None:
    """Why the existing database cannot be reused (None: it can)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    admin = create_engine(make_url(db.normalise_url(admin_url)))
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DATABASE}):
                return "no database yet"
    finally:
        admin.dispose()
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            if migrate.current_revision(conn) != migrate.head_revision():
                return "its schema is at an older revision"
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.Base.metadata)
            if diffs:
                return f"its schema differs from the models ({len(diffs)} differences, e.g. {diffs[0]!r:.80})"
            seeded = read_meta(conn).get("cases")
            if seeded is None or int(seeded) != cases:
                return f"it holds another seeding ({seeded or 'no'} cases, not {cases})"
    finally:
        engine.dispose()
    return None


# The network ---------------------------------------------------------------------------------------------------


@dataclass
class Network:
    agency_id: uuid.UUID
    ngo_id: uuid.UUID
    caseworker_id: uuid.UUID
    ngo_caseworker_id: uuid.UUID
    governments: dict[str, uuid.UUID]  # short name -> organization id
    agreements: dict[str, uuid.UUID] = field(default_factory=dict)  # government -> agreement id


def build_network(session: Session) -> Network:
    agency = network.create_organization(
        session, actor=ACTOR, name="Resettlement Agency", short_name="agency", kind=OrgKind.agency
    )
    ngo = network.create_organization(session, actor=ACTOR, name="Harbour NGO", short_name="harbour", kind=OrgKind.ngo)
    caseworker = network.create_person(
        session,
        actor=ACTOR,
        email="importer@agency.bench",
        full_name="Importer",
        org=agency,
        role=Role.caseworker,
        invite=False,
    )
    ngo_caseworker = network.create_person(
        session,
        actor=ACTOR,
        email="importer@harbour.bench",
        full_name="NGO importer",
        org=ngo,
        role=Role.caseworker,
        invite=False,
    )
    govs = {}
    agreements = {}
    now = clock.now()
    for short, (name, country, sections, _weight) in GOVERNMENTS.items():
        org = network.create_organization(
            session, actor=ACTOR, name=name, short_name=short, kind=OrgKind.government, country=country
        )
        govs[short] = org.id
        ended = short == "au"
        agreement = Agreement(
            provider_org_id=agency.id,
            recipient_org_id=org.id,
            title=f"Agency and {name}",
            reference=f"DSA-{short.upper()}",
            purposes=["resettlement"],
            sections=list(sections),
            status=AgreementStatus.ended if ended else AgreementStatus.active,
            proposed_by_org_id=agency.id,
            proposed_at=now - timedelta(days=400),
            decided_at=now - timedelta(days=390),
            ended_at=now - timedelta(days=30) if ended else None,
            end_reason="Programme closed" if ended else "",
        )
        session.add(agreement)
        session.flush()
        agreements[short] = agreement.id
    return Network(agency.id, ngo.id, caseworker.id, ngo_caseworker.id, govs, agreements)


def load_network(session: Session) -> Network:
    orgs = {o.short_name: o.id for o in session.scalars(select(Organization))}
    users = {u.email: u.id for u in session.scalars(select(identity.User))}
    return Network(
        orgs["agency"],
        orgs["harbour"],
        users["importer@agency.bench"],
        users["importer@harbour.bench"],
        {short: orgs[short] for short in GOVERNMENTS},
    )


def principal(session: Session, user_id: uuid.UUID, org_id: uuid.UUID) -> identity.Principal:
    user = session.get(identity.User, user_id)
    assert user is not None
    return identity.principal_for(session, user, org_id=org_id, via="cli")


# Households ----------------------------------------------------------------------------------------------------


def spelling(rng: random.Random, name: Name) -> str:
    usual, others, _arabic = name
    return usual if not others or rng.random() < 0.65 else rng.choice(others)


def other_names(rng: random.Random, given: Name, family: Name, shown: tuple[str, str]) -> str:
    """Other spellings of the person's name: the Arabic-script form, a Latin variant, sometimes both."""
    out = []
    if given[2] and family[2] and rng.random() < 0.55:
        out.append(f"{given[2]} {family[2]}")
    if rng.random() < 0.3:
        g = rng.choice((given[0], *given[1]))
        f = rng.choice((family[0], *family[1]))
        if (g, f) != shown:
            out.append(f"{g} {f}")
    return "; ".join(out)


def household(rng: random.Random, key: str, community: str, year: int) -> list[list[str]]:
    c = COMMUNITIES[community]
    names = NAMES[community]
    country, place = rng.choice(c.hosts)
    primary, secondary = rng.choice(c.categories)
    processing = rng.choices(("normal", "urgent", "emergency"), (80, 16, 4))[0]
    submission = processing if rng.random() < 0.8 else "normal"
    nationality, stateless = (c.nationality, "") if c.nationality else ("", "yes")
    langs = "; ".join(rng.sample(c.languages, k=min(len(c.languages), rng.randint(1, 2))))
    case_cells = [key, country, place, primary, secondary, processing, submission]
    blank_case = [key, "", "", "", "", "", ""]
    family = rng.choice(names["family"])
    rows: list[list[str]] = []

    def person(
        relationship: str,
        female: bool,
        born: str,
        fam: Name,
        education: str = "",
        occupation: str = "",
        needs: str = "",
    ) -> None:
        given = rng.choice(names["female" if female else "male"])
        if community == "afghan" and not female and rng.random() < 0.25 and given[0] != "Mohammad":
            given = (
                f"Mohammad {given[0]}",
                tuple(f"Muhammad {o}" for o in given[1][:1]),
                f"محمد {given[2]}" if given[2] else "",
            )
        if community == "venezuelan":
            second = rng.choice(names["family"])
            fam = (f"{fam[0]} {second[0]}", tuple(f"{o} {second[0]}" for o in fam[1]), "")
        shown = (spelling(rng, given), spelling(rng, fam))
        cells = case_cells if not rows else blank_case
        rows.append(
            [
                *cells,
                relationship,
                shown[0],
                shown[1],
                other_names(rng, given, fam, shown),
                "female" if female else "male",
                born,
                nationality,
                stateless,
                langs,
                education,
                occupation,
                needs,
            ]
        )

    pa_female = rng.random() < 0.3
    pa_year = rng.randint(year - 62, year - 20)
    person(
        "principal",
        pa_female,
        str(pa_year),
        family,
        rng.choice(("none", "primary", "secondary", "university")),
        rng.choice(OCCUPATIONS),
        "single_parent; woman_at_risk" if pa_female and rng.random() < 0.4 else "",
    )
    if not pa_female or rng.random() < 0.4:
        born = pa_year + rng.randint(-3, 8)
        dob = f"{born}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if rng.random() < 0.4 else str(born)
        person("spouse", not pa_female, dob, family if rng.random() < 0.6 else rng.choice(names["family"]))
    for _ in range(rng.choice((0, 0, 1, 1, 2, 2, 3, 4))):
        born = rng.randint(max(pa_year + 18, year - 17), year)
        person(
            "child",
            rng.random() < 0.5,
            str(born),
            family,
            "primary" if year - born > 6 else "unknown",
            needs="child_at_risk" if rng.random() < 0.08 else "",
        )
    if rng.random() < 0.1:
        person(
            "parent",
            True,
            str(pa_year - rng.randint(20, 30)),
            family,
            needs=rng.choice(("older_person_at_risk", "disability")),
        )
    return rows


def write_file(index: int, cases: int) -> tuple[bytes, int]:
    """One import file of ``cases`` households (deterministic per index): CSV bytes and the number of people."""
    rng = random.Random(7919 * (index + 1))
    weights = [c.share for c in COMMUNITIES.values()]
    communities = list(COMMUNITIES)
    year = clock.now().year
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    people = 0
    for n in range(cases):
        community = rng.choices(communities, weights)[0]
        rows = household(rng, f"f{index}-{n}", community, year)
        writer.writerows(rows)
        people += len(rows)
    return out.getvalue().encode("utf-8"), people


# A believable past ---------------------------------------------------------------------------------------------

_OPEN_EARLY = (Stage.referred, Stage.needs_assessment, Stage.initial_review, Stage.interview)
_MIDDLE = (Stage.recommendation, Stage.review, Stage.recommended)
_STATE = (Stage.submitted, Stage.prescreening, Stage.security_checks, Stage.state_interview, Stage.approved)
_LATE = (Stage.medical_exam, Stage.cultural_orientation, Stage.placement, Stage.travel_booking)
_ENDS = (
    Stage.departed,
    Stage.arrived,
    Stage.withdrawn,
    Stage.closed,
    Stage.on_hold,
    Stage.not_recommended,
    Stage.denied,
)


def stage_for(rng: random.Random) -> Stage:
    roll = rng.random()
    group = (
        _OPEN_EARLY
        if roll < 0.40
        else _MIDDLE
        if roll < 0.60
        else _STATE
        if roll < 0.85
        else _LATE
        if roll < 0.95
        else _ENDS
    )
    return rng.choice(group)


def give_past(session: Session, net: Network, progress: Progress) -> int:
    """Stages, dates and clocks for every case, and referrals for those recommended or further on. Returns the
    number of referrals."""
    rng = random.Random(2026)
    now = clock.now()
    road = list(MAIN_ROAD)
    rows = session.execute(
        select(Case.id, Case.owner_org_id, Case.processing_priority, Case.submission_priority).order_by(
            Case.owner_org_id, Case.number
        )
    ).all()
    task = progress.add_task("Giving the cases a past", total=len(rows))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE bench_past (id uuid, stage text, opened timestamptz, since timestamptz, "
            "submitted timestamptz, departed timestamptz, arrived timestamptz, closed timestamptz, "
            "stage_due timestamptz, submit_by date, depart_by date, due timestamptz) ON COMMIT DROP"
        )
        referrals: list[tuple[Any, ...]] = []
        rounds: list[tuple[Any, ...]] = []
        weights = [g[3] for g in GOVERNMENTS.values()]
        shorts = list(GOVERNMENTS)
        with cur.copy("COPY bench_past FROM STDIN") as copy:
            for done, (case_id, owner, processing, submission) in enumerate(rows, start=1):
                stage = stage_for(rng)
                position = road.index(stage) if stage in road else road.index(Stage.review)
                opened = now - timedelta(days=10 + position * 12 + rng.randint(0, 90), hours=rng.randint(0, 23))
                since = max(opened, now - timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23)))
                after_submission = stage in road and position > road.index(Stage.recommended)
                submitted = opened + (since - opened) / 2 if after_submission else None
                departed = since if stage in (Stage.departed, Stage.arrived) else None
                arrived = since if stage == Stage.arrived else None
                closed = since if stage == Stage.closed else None
                stage_due = pipeline.stage_due(stage, since, Priority(processing))
                submit_by, depart_by = pipeline.targets(opened, submitted, Priority(processing), Priority(submission))
                due = pipeline.due_at(stage, stage_due, submit_by, depart_by)
                copy.write_row(
                    (
                        case_id,
                        stage.value,
                        opened,
                        since,
                        submitted,
                        departed,
                        arrived,
                        closed,
                        stage_due,
                        submit_by,
                        depart_by,
                        due,
                    )
                )
                if owner == net.agency_id and stage in road and position >= road.index(Stage.recommended):
                    short = rng.choices(shorts, weights)[0]
                    status = (
                        rng.choice((ReferralStatus.pending, ReferralStatus.in_progress))
                        if stage == Stage.recommended
                        else ReferralStatus.done
                        if stage == Stage.arrived
                        else ReferralStatus.accepted
                    )
                    if rng.random() < 0.05:
                        status = rng.choice((ReferralStatus.revoked, ReferralStatus.rejected))
                    round_id, sections = uuid.uuid4(), list(GOVERNMENTS[short][2])
                    rounds.append(
                        (
                            round_id,
                            case_id,
                            owner,
                            "parallel",
                            "resettlement",
                            sections,
                            [str(net.governments[short])],
                            1,
                            "",
                            "",
                            "",
                            None,
                            since,
                        )
                    )
                    referrals.append(
                        (
                            uuid.uuid4(),
                            round_id,
                            case_id,
                            owner,
                            net.governments[short],
                            net.agreements[short],
                            "resettlement",
                            sections,
                            "identity" in sections,
                            status.value,
                            None,
                            "",
                            None,
                            "",
                            None,
                            "",
                            "",
                            None,
                            "",
                            None,
                            since,
                            since,
                            since
                            if status in (ReferralStatus.revoked, ReferralStatus.rejected, ReferralStatus.done)
                            else None,
                        )
                    )
                if done % 5000 == 0:
                    progress.update(task, completed=done)
        cur.execute(
            "UPDATE cases SET stage = p.stage, stage_since = p.since, opened_at = p.opened, "
            "created_at = p.opened, submitted_at = p.submitted, departed_at = p.departed, "
            "arrived_at = p.arrived, closed_at = p.closed, stage_due_at = p.stage_due, "
            "target_submission_on = p.submit_by, target_departure_on = p.depart_by, due_at = p.due, "
            "updated_at = p.since FROM bench_past p WHERE cases.id = p.id"
        )
    progress.update(task, completed=len(rows))
    task = progress.add_task("Referring cases to governments", total=None)
    db.bulk_insert(
        session,
        ReferralRound.__table__,
        (
            "id",
            "case_id",
            "sender_org_id",
            "mode",
            "purpose",
            "sections",
            "recipients",
            "next_index",
            "note",
            "consent_override_reason",
            "nationality_override_reason",
            "created_by_user_id",
            "created_at",
        ),
        rounds,
    )
    db.bulk_insert(
        session,
        Referral.__table__,
        (
            "id",
            "round_id",
            "case_id",
            "sender_org_id",
            "recipient_org_id",
            "agreement_id",
            "purpose",
            "sections",
            "shares_identity",
            "status",
            "consent_id",
            "consent_override_reason",
            "consent_override_by_user_id",
            "nationality_override_reason",
            "nationality_override_by_user_id",
            "note",
            "reason",
            "outcome",
            "outcome_reason",
            "created_by_user_id",
            "created_at",
            "updated_at",
            "closed_at",
        ),
        referrals,
    )
    shares.rebuild(session)  # the referrals were written in bulk, past the ORM's flush that keeps shares in step
    progress.update(task, total=1, completed=1)
    return len(referrals)


# Seeding -------------------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    people: int = 0
    cases: int = 0
    seconds: float = 0.0  # import_file and commit, summed over the files
    rates: list[float] = field(default_factory=list)  # people/s per file
    wall: float = 0.0  # everything, writing the CSV files and giving the cases a past included
    files: int = 0
    referrals: int = 0


def seed(url: str, cases: int, file_people: int) -> ImportResult:
    engine = db.make_engine(url)
    result = ImportResult()
    started = time.perf_counter()
    with Session(engine) as session:
        net = build_network(session)
        session.commit()
    # About 3.3 people a household: files of ~file_people people. The NGO imports one file in twenty.
    per_file = max(1, round(file_people / 3.3))
    counts = [min(per_file, cases - start) for start in range(0, cases, per_file)]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("Importing households", total=cases)
        for index, count in enumerate(counts):
            data, people = write_file(index, count)
            ngo = index % 20 == 19
            with Session(engine) as session:
                actor = principal(
                    session, net.ngo_caseworker_id if ngo else net.caseworker_id, net.ngo_id if ngo else net.agency_id
                )
                t0 = time.perf_counter()
                report = imports.import_file(session, actor=actor, data=data, filename=f"households-{index:03d}.csv")
                if not report.ok:
                    raise SystemExit(f"households-{index:03d}.csv: {list(imports.iter_errors(report))[:5]}")
                session.commit()
                elapsed = time.perf_counter() - t0
            result.seconds += elapsed
            result.people += people
            result.cases += count
            result.rates.append(people / elapsed)
            result.files += 1
            progress.update(
                task,
                advance=count,
                description=(
                    f"Importing households: {result.people:,} people, last file {people / elapsed:,.0f} people/s"
                ),
            )
        with Session(engine) as session:
            result.referrals = give_past(session, net, progress)
            session.commit()
    with console.status("VACUUM ANALYZE"), engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    result.wall = time.perf_counter() - started
    # What the seeding was and how the import went, for --reuse (a comment on the database: no extra table).
    meta = {
        "cases": cases,
        "people": result.people,
        "seconds": f"{result.seconds:.3f}",
        "files": result.files,
        "referrals": result.referrals,
        "wall": f"{result.wall:.1f}",
        "rates": "/".join(f"{r:.1f}" for r in result.rates),
    }
    with engine.connect() as conn:
        comment = ";".join(f"{k}={v}" for k, v in meta.items())
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f"COMMENT ON DATABASE \"{DATABASE}\" IS '{comment}'")
        )
    engine.dispose()
    return result


def read_meta(conn: Any) -> dict[str, str]:
    comment = (
        conn.scalar(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": DATABASE}
        )
        or ""
    )
    return dict(item.split("=", 1) for item in comment.split(";") if "=" in item)


def stored_import(url: str) -> ImportResult:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        meta = read_meta(conn)
    engine.dispose()
    return ImportResult(
        people=int(meta["people"]),
        cases=int(meta["cases"]),
        seconds=float(meta["seconds"]),
        rates=[float(r) for r in meta["rates"].split("/")],
        files=int(meta["files"]),
        referrals=int(meta["referrals"]),
        wall=float(meta["wall"]),
    )


# The load ------------------------------------------------------------------------------------------------------


@dataclass
class Client:
    side: str  # "agency" or a government's short name
    token: str
    base_url: str


def make_clients(url: str, count: int, ports: list[int]) -> list[Client]:
    """One person and one API token per client: caseworkers of the agency, officers of governments."""
    engine = db.make_engine(url)
    clients = []
    government_clients = max(1, count // 5) if count > 1 else 0
    with Session(engine) as session:
        net = load_network(session)
        orgs = {o.id: o for o in session.scalars(select(Organization))}
        run = uuid.uuid4().hex[:6]
        for n in range(count):
            side = GOVERNMENT_CLIENTS[n % len(GOVERNMENT_CLIENTS)] if n >= count - government_clients else "agency"
            org = orgs[net.agency_id if side == "agency" else net.governments[side]]
            email = f"client{n}-{run}@{org.short_name}.bench"
            user = network.create_person(
                session,
                actor=ACTOR,
                email=email,
                full_name=f"Client {n}",
                org=org,
                role=Role.caseworker if side == "agency" else Role.officer,
                invite=False,
            )
            token, _row = identity.create_token(session, user=user, org_id=org.id, name="bench", scopes=["read"])
            clients.append(Client(side, token, f"http://127.0.0.1:{ports[n % len(ports)]}"))
        session.commit()
    engine.dispose()
    return clients


def case_numbers(url: str, owner_short: str, n: int) -> list[str]:
    engine = db.make_engine(url)
    with Session(engine) as session:
        org_id = session.scalar(select(Organization.id).where(Organization.short_name == owner_short))
        total = session.scalar(select(func.count()).select_from(Case).where(Case.owner_org_id == org_id)) or 0
        rng = random.Random(5)
        numbers = (
            [
                session.scalar(
                    select(Case.number)
                    .where(Case.owner_org_id == org_id)
                    .order_by(Case.number)
                    .offset(rng.randrange(total))
                    .limit(1)
                )
                for _ in range(n)
            ]
            if total
            else []
        )
    engine.dispose()
    return [x for x in numbers if x]


AGENCY_STAGES = [s.value for s in (*_OPEN_EARLY, *_MIDDLE, *_STATE, *_LATE, Stage.on_hold)]
STATE_STAGES = [s.value for s in (Stage.recommended, *_STATE, *_LATE, Stage.on_hold)]
NATIONAL_HOSTS = {
    "AF": ("PK", "IR", "TR"),
    "SY": ("LB", "JO", "TR"),
    "SD": ("TD", "EG", "ET"),
    "VE": ("CO", "PE", "EC", "CR"),
}
SEARCHES_BOTH = (
    "Mohammad Rahimi",
    "muhammed",
    "محمد",
    "Abdul Rahman",
    "Hussein",
    "Fatima",
    "Ahmad Karimi",
    "عبد الرحمن",
    "Zainab",
    "Khaled Haddad",
    "Osman Adam",
    "Hashimi",
    "Mohamed Abdalla",
    "فاطمة الحسن",
    "Nour Darwish",
    "Yusuf Al-Hassan",
    "Rashida Begum",
    "Nur Alam",
    "Hamid Noori",
    "José González",
    "maria rodriguez",
    "Zabiullah",
    "Heydari",
    "Abdelrahman Osman",
    "حسين",
)


def list_params(rng: random.Random, side: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if rng.random() >= 0.15:  # else the landing page: no filter
        stages = AGENCY_STAGES if side == "agency" else STATE_STAGES
        choices = ["stage", "priority", "category", "nationality", "current_country", "overdue"]
        for name in rng.sample(choices, k=rng.choice((1, 1, 2, 2, 3))):
            if name == "stage":
                params["stage"] = rng.sample(stages, k=rng.choice((1, 1, 2)))
            elif name == "priority":
                params["priority"] = rng.choices(("emergency", "urgent", "normal"), (3, 5, 2))[0]
            elif name == "category":
                params["category"] = rng.choice(("LPN", "WGR", "CAR", "SVT", "MED", "FAM", "LAS"))
            elif name == "nationality":
                params["nationality"] = rng.choice(list(NATIONAL_HOSTS))
                if rng.random() < 0.5:
                    params["current_country"] = rng.choice(NATIONAL_HOSTS[params["nationality"]])
            elif name == "current_country":
                params["current_country"] = rng.choice(
                    ("PK", "IR", "TR", "LB", "JO", "TD", "EG", "BD", "MY", "CO", "PE")
                )
            elif name == "overdue":
                params["overdue"] = "true" if rng.random() < 0.8 else "false"
    roll = rng.random()
    if roll < 0.1:
        params["sort"] = "updated"
    elif roll < 0.2:
        params["sort"] = "priority"
    params["page"] = rng.choices((1, 2, 3), (60, 25, 15))[0]
    params["per_page"] = 25
    return params


def search_params(rng: random.Random, side: str, numbers: list[str]) -> dict[str, Any]:
    q = rng.choice(numbers) if numbers and rng.random() < 0.12 else rng.choice(SEARCHES_BOTH)
    params: dict[str, Any] = {"q": q, "page": 1 if rng.random() < 0.85 else 2, "per_page": 25}
    if rng.random() < 0.1:
        params["stage"] = rng.sample(AGENCY_STAGES if side == "agency" else STATE_STAGES, k=1)
    return params


@dataclass
class Sample:
    scenario: str
    side: str
    ms: float
    status: int
    total: int | None


def client_loop(
    client: Client,
    scenario: str,
    until: float,
    seed_: int,
    numbers: dict[str, list[str]],
    out: list[Sample],
    errors: list[str],
) -> None:
    rng = random.Random(seed_)
    headers = {"Authorization": f"Bearer {client.token}"}
    with httpx.Client(base_url=client.base_url, headers=headers, timeout=30) as http:
        while time.perf_counter() < until:
            if scenario == "list":
                params = list_params(rng, client.side)
            else:
                params = search_params(rng, client.side, numbers.get(client.side, []))
            t0 = time.perf_counter()
            try:
                response = http.get("/api/v1/cases", params=params)
            except httpx.HTTPError as exc:
                errors.append(f"{scenario} {params}: {exc!r}")
                continue
            ms = (time.perf_counter() - t0) * 1000
            total = None
            if response.status_code == 200:
                total = response.json()["meta"]["total"]
            elif len(errors) < 20:
                errors.append(f"{scenario} {params}: {response.status_code} {response.text[:200]}")
            out.append(Sample(scenario, client.side, ms, response.status_code, total))


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """(seconds of CPU used by ``pids``, seconds of CPU used by the whole machine) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    mine = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            mine += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return mine, busy / tick


def server_settings(url: str) -> dict[str, str]:
    """The PostgreSQL settings the figures depend on most (shown with them, so a run can be reproduced)."""
    engine = create_engine(make_url(db.normalise_url(url)))
    try:
        with engine.connect() as conn:
            return {name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
                    for name in ("server_version", "shared_buffers", "max_wal_size", "effective_cache_size")}
    finally:
        engine.dispose()


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def run_scenario(
    clients: list[Client],
    scenario: str,
    seconds: float,
    numbers: dict[str, list[str]],
    seed_: int,
    server_pids: list[int],
) -> tuple[list[Sample], list[str], dict[str, float]]:
    samples: list[Sample] = []
    errors: list[str] = []
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(c, scenario, until, seed_ * 1000 + i, numbers, samples, errors))
        for i, c in enumerate(clients)
    ]
    pg = postgres_pids()
    before = (cpu_times(server_pids), cpu_times(pg), cpu_times([os.getpid()]), time.perf_counter())
    for t in threads:
        t.start()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task(f"{scenario}: {len(clients)} clients", total=seconds)
        while any(t.is_alive() for t in threads):
            progress.update(
                task,
                completed=min(seconds, seconds - (until - time.perf_counter())),
                description=f"{scenario}: {len(clients)} clients, {len(samples)} requests",
            )
            time.sleep(0.25)
    for t in threads:
        t.join()
    after = (cpu_times(server_pids), cpu_times(pg), cpu_times([os.getpid()]), time.perf_counter())
    wall = after[3] - before[3]
    machine = (after[0][1] - before[0][1]) / wall / (os.cpu_count() or 1) * 100
    usage = {
        "server": (after[0][0] - before[0][0]) / wall * 100,
        "postgres": (after[1][0] - before[1][0]) / wall * 100,
        "bench": (after[2][0] - before[2][0]) / wall * 100,
        "machine": machine,
    }
    usage["others"] = max(0.0, machine * (os.cpu_count() or 1) - usage["server"] - usage["postgres"] - usage["bench"])
    return samples, errors, usage


def start_servers(url: str, count: int) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RDN_")}, **environ(url)}
    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [RDN, "serve", "--port", str(port), "--no-worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"rdn serve on port {port} did not become ready")
            time.sleep(0.2)
    return procs, ports


def stop_servers(procs: list[subprocess.Popen[bytes]]) -> None:
    """Ask every server to stop, then wait for each (killing one that does not stop within 30 s)."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def latency_row(table: Table, label: str, samples: list[Sample], seconds: float, goal: float | None) -> None:
    ok = [s.ms for s in samples if s.status == 200]
    failed = len(samples) - len(ok)
    if not ok:
        table.add_row(label, "0", "-", "-", "-", "-", "-", "-", str(failed))
        return
    p95 = percentile(ok, 95)
    met = "" if goal is None else ("[green]met[/]" if p95 < goal else "[red]missed[/]")
    table.add_row(
        label,
        f"{len(ok):,}",
        f"{len(ok) / seconds:.0f}",
        f"{statistics.median(ok):.0f}",
        f"{p95:.0f}",
        f"{percentile(ok, 99):.0f}",
        f"{max(ok):.0f}",
        f"p95 < {goal:.0f} ms {met}" if goal is not None else "",
        str(failed),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per scenario")
    parser.add_argument("--file-people", type=int, default=25_000, help="people per import file (one commit each)")
    parser.add_argument("--servers", type=int, default=1, help="rdn serve processes (one port each)")
    parser.add_argument("--scenarios", default="list,search")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the database if it holds this seeding at the current schema (implies --keep)",
    )
    args = parser.parse_args()
    admin_url = os.environ.get("RDN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = database_url(admin_url)
    keep = args.keep or args.reuse
    set_settings(load_settings(environ=environ(url)))
    modules.load_job_handlers()

    why = reusable(admin_url, url, args.cases) if args.reuse else "not asked to reuse"
    if why is None:
        console.print(f"Reusing {DATABASE} ({args.cases:,} cases): the import figures are those of its seeding.")
        imported = stored_import(url)
        reused = True
    else:
        if args.reuse:
            console.print(f"Seeding afresh: {why}.")
        admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)', f'CREATE DATABASE "{DATABASE}"')
        migrate.upgrade(url)
        imported = seed(url, args.cases, args.file_people)
        reused = False

    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, tuple[list[Sample], dict[str, float]]] = {}
    all_errors: list[str] = []
    try:
        procs, ports = start_servers(url, args.servers)
        clients = make_clients(url, args.clients, ports)
        numbers = {"agency": case_numbers(url, "agency", 40)}
        scenarios = [s for s in args.scenarios.split(",") if s]
        for n, scenario in enumerate(scenarios):
            if args.warmup > 0:
                run_scenario(clients, scenario, args.warmup, numbers, 100 + n, [p.pid for p in procs])
            samples, errors, usage = run_scenario(clients, scenario, args.seconds, numbers, n, [p.pid for p in procs])
            results[scenario] = (samples, usage)
            all_errors += errors
    finally:
        stop_servers(procs)
        db.engine().dispose()
        set_settings(None)
        settings_seen = server_settings(url)  # before the database goes
        if not keep:
            admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')

    sides = sorted({c.side for c in clients})
    agency_clients = sum(1 for c in clients if c.side == "agency")
    title = (
        f"Cases on PostgreSQL: {imported.cases:,} cases, {imported.people:,} people, "
        f"{imported.referrals:,} referrals; {args.clients} clients ({agency_clients} agency caseworkers, "
        f"{args.clients - agency_clients} government officers); {args.servers} rdn serve process(es); "
        f"{args.seconds:.0f} s per scenario; {os.cpu_count()} CPUs"
    )
    table = Table(title=title)
    for column in ("scenario", "requests", "req/s", "median ms", "p95 ms", "p99 ms", "max ms", "goal", "errors"):
        table.add_column(column, justify="right" if column not in ("scenario", "goal") else "left")
    for scenario, (samples, _usage) in results.items():
        latency_row(table, scenario, samples, args.seconds, GOALS.get(scenario))
        for side in sides:
            mine = [s for s in samples if s.side == side]
            if mine and len(sides) > 1:
                label = "agency caseworkers" if side == "agency" else f"{GOVERNMENTS[side][0]} officers"
                latency_row(table, f"  {scenario}: {label}", mine, args.seconds, None)
    console.print(table)

    rate = imported.people / imported.seconds if imported.seconds else 0.0
    itable = Table(
        title=f"Import through rdn.cases.imports.import_file: {imported.files} CSV files, one commit each"
        + (" (from the run that seeded the reused database)" if reused else "")
    )
    for column in (
        "cases",
        "people",
        "import seconds",
        "people/s overall",
        "people/s median file",
        "slowest file",
        "goal",
        "seeding wall s",
    ):
        itable.add_column(column, justify="right" if column != "goal" else "left")
    met = "[green]met[/]" if rate >= IMPORT_GOAL else "[red]missed[/]"
    itable.add_row(
        f"{imported.cases:,}",
        f"{imported.people:,}",
        f"{imported.seconds:.1f}",
        f"{rate:,.0f}",
        f"{statistics.median(imported.rates):,.0f}",
        f"{min(imported.rates):,.0f}",
        f"≥ {IMPORT_GOAL:,.0f} people/s {met}",
        f"{imported.wall:.0f}" if imported.wall else "-",
    )
    console.print(itable)
    for scenario, (_samples, usage) in results.items():
        console.print(
            f"CPU during {scenario}: machine {usage['machine']:.0f}% of {os.cpu_count()} cores; "
            f"rdn serve {usage['server']:.0f}%, PostgreSQL (all databases) {usage['postgres']:.0f}%, "
            f"bench clients {usage['bench']:.0f}%, everything else {usage['others']:.0f}% "
            "(100% = one core)"
        )
    console.print("PostgreSQL settings: " + ", ".join(f"{k} {v}" for k, v in settings_seen.items())
                  + " (docs/operations.md: production settings)")
    if all_errors:
        console.print(f"{len(all_errors)} errors, the first: " + "; ".join(all_errors[:3]), style="red")
    if keep:
        console.print(f"Kept the database {DATABASE}: run again with --reuse to skip seeding.")


if __name__ == "__main__":
    main()
