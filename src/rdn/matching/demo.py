"""Demo data of matching: reception sites of each demo government (real localities, illustrative capacities),
quotas for this year with an emergency reserve, and one solved run of the UNHCR-like agency's cases waiting
for review."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from rdn.cases import sharing
from rdn.cases.models import Case, Purpose
from rdn.cases.pipeline import Stage
from rdn.cases.policy import CaseAccess, owner_sections
from rdn.core import clock, identity
from rdn.core.modules import DemoContext
from rdn.matching import service
from rdn.matching.models import Quota, Site

#: government -> (code, name, locality, languages served, communities, unemployment %, demand 0-3, setting)
SITES: dict[str, list[tuple[str, str, str, str, str, float, int, str]]] = {
    "ca": [("TOR", "Toronto reception centre", "Toronto", "en;fr;ar;fa;ps", "AF;SY;SO;ER", 7.1, 2, "urban"),
           ("MTL", "Montréal welcome house", "Montréal", "fr;en;ar;es", "SY;HT;VE;CD", 5.6, 2, "urban"),
           ("WPG", "Winnipeg newcomer services", "Winnipeg", "en;ar;ti;so", "ER;SO;SY", 5.2, 1, "urban"),
           ("HFX", "Halifax immigrant services", "Halifax", "en;ar", "SY", 6.0, 1, "urban"),
           ("LTH", "Lethbridge family centre", "Lethbridge", "en;es", "VE;CO", 4.8, 1, "rural")],
    "de": [("BER", "Berlin reception", "Berlin", "de;en;ar;fa;ps", "SY;AF;ER", 9.4, 2, "urban"),
           ("HAM", "Hamburg welcome office", "Hamburg", "de;en;fa;ps", "AF;SY", 7.3, 2, "urban"),
           ("LEJ", "Leipzig integration centre", "Leipzig", "de;ar;ru;uk", "SY;UA", 7.0, 1, "urban"),
           ("FRG", "Freiburg family services", "Freiburg", "de;ar", "SY", 4.5, 2, "urban")],
    "es": [("MAD", "Madrid reception centre", "Madrid", "es;en;ar", "VE;CO;SY", 10.8, 1, "urban"),
           ("BCN", "Barcelona welcome point", "Barcelona", "es;ca;en;ar;fr", "VE;SY;MA", 9.9, 2, "urban"),
           ("VLC", "Valencia family services", "Valencia", "es;en", "VE;CO", 12.1, 1, "urban"),
           ("SEV", "Seville reception", "Sevilla", "es;ar", "MA", 17.4, 1, "rural")],
    "gb": [("MAN", "Manchester resettlement", "Manchester", "en;ar;ur;fa", "SY;AF", 4.6, 1, "urban"),
           ("GLA", "Glasgow welcome partnership", "Glasgow", "en;ar;fa", "SY;AF;ER", 4.2, 1, "urban"),
           ("BHM", "Birmingham reception", "Birmingham", "en;ar;so;ps", "SO;AF", 6.1, 1, "urban")],
    "au": [("SYD", "Sydney settlement services", "Sydney", "en;ar;fa;ps;my", "AF;SY;MM", 3.9, 2, "urban"),
           ("MEL", "Melbourne settlement hub", "Melbourne", "en;ar;ti;so", "SO;ER;SY", 4.1, 2, "urban"),
           ("ADL", "Adelaide newcomer centre", "Adelaide", "en;fa;my", "AF;MM", 4.3, 1, "urban"),
           ("TWB", "Toowoomba regional settlement", "Toowoomba", "en;sw;fr", "CD;SS", 3.6, 0, "rural")],
    "nz": [("AKL", "Auckland reception", "Auckland", "en;ar;my", "MM;SY", 4.0, 1, "urban"),
           ("WLG", "Wellington settlement", "Wellington", "en;fa", "AF", 3.8, 2, "urban")],
    "br": [("SPO", "São Paulo reception", "São Paulo", "pt;es;ar;fr", "VE;SY;HT", 7.8, 1, "urban"),
           ("BSB", "Brasília welcome centre", "Brasília", "pt;es", "VE", 7.5, 1, "urban"),
           ("BVB", "Boa Vista shelter network", "Boa Vista", "pt;es", "VE", 8.6, 0, "rural")],
}
QUOTA_SHARE = 0.85  # a quota below the sites' sum, so that it binds somewhere
RESERVE = 0.1


def seed(ctx: DemoContext) -> None:
    session = ctx.session
    if session.scalar(select(func.count()).select_from(Site)):
        return
    rng = random.Random(7)
    year = clock.now().year
    created = 0
    for gov, rows in SITES.items():
        org = ctx.orgs[gov]
        total = 0
        for code, name, locality, languages, communities, unemployment, demand, setting in rows:
            people = rng.choice((40, 60, 80, 120, 160))
            resources = {"medical": rng.choice((0, 2, 4, 8)), "large_family": rng.choice((1, 2, 4)),
                         "accessible": rng.choice((0, 1, 2)), "single_parent": rng.choice((2, 4, 6)),
                         "caseworker_hours": people * 2}
            session.add(Site(org_id=org.id, code=code, name=name, country=org.country, locality=locality,
                             period=str(year), capacity_people=people,
                             resources={k: float(v) for k, v in resources.items() if v},
                             languages=languages.split(";"), nationalities=communities.split(";"),
                             unemployment_rate=unemployment, labour_demand=demand, setting=setting))
            total += people
            created += 1
        session.add(Quota(org_id=org.id, year=year, places=int(total * QUOTA_SHARE),
                          emergency_reserve=int(total * QUOTA_SHARE * RESERVE)))
    session.flush()
    ctx.say(f"Created {created} reception sites of {len(SITES)} governments, with quotas for {year}")
    _run(ctx)


def _run(ctx: DemoContext) -> None:
    """A solved run of the agency's cases before submission, waiting for an officer's review. The families
    consented to sharing with the governments the agency has agreements with (as resettlement registration
    forms ask), so confirming can refer them."""
    session = ctx.session
    user = ctx.people.get("caseworker_unhcr")
    if user is None:
        return
    principal = identity.principal_for(session, user, org_id=identity.default_org_id(session, user.id),
                                       via="session")
    stages = [Stage.recommendation.value, Stage.review.value, Stage.recommended.value]
    run = service.start_run(session, actor=principal, title="Recommended cases, this month",
                            filters={"stage": stages})
    recipients = {s.org_id for s in service.sites_for(session, run)}
    for case in session.scalars(select(Case).where(Case.owner_org_id == principal.org_id, Case.stage.in_(stages))):
        access = CaseAccess(case, True, owner_sections(principal))
        for org_id in recipients:
            if sharing.active_consent(session, case.id, org_id, Purpose.resettlement) is None:
                sharing.record_consent(session, actor=principal, access=access, recipient_org_id=org_id,
                                       purpose="resettlement", method="written",
                                       note="Resettlement registration form")
    run = service.solve_run(session, run.id)
    ctx.say(f"Solved a demo matching run: {run.placed} of {run.cases} cases placed, "
            f"{(run.gap or 0) * 100:.2f}% from the bound")
