"""The Safe Mobility demo: four offices with their real eligibility, rules leading to catalog pathways, slots for
the next two weeks, registrations at every stage, some of Costa Rica's referred to Spain; a second run adds
nothing."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases.models import Agreement, AgreementStatus, Case, Referral
from rdn.core import clock
from rdn.core.modules import DemoContext
from rdn.mobility import dashboard, demo
from rdn.mobility.models import (
    Appointment,
    Office,
    Registration,
    RegistrationStatus,
    RuleStatus,
    ScreeningResult,
    ScreeningRule,
    Slot,
)
from rdn.network import demo as network_demo
from rdn.pathways import catalog


def counts(session: Session) -> dict[str, int]:
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Office, Registration, ScreeningRule, ScreeningResult, Slot, Appointment, Case, Referral)}


def test_the_demo(session: Session):
    said: list[str] = []
    ctx = DemoContext(session=session, say=said.append)
    network_demo.seed(ctx)
    catalog.seed(ctx)
    # The cases demo's agreement between the Costa Rica office and Spain (its cases themselves are not needed).
    session.add(Agreement(provider_org_id=ctx.orgs["smo-cr"].id, recipient_org_id=ctx.orgs["es"].id,
                          title="Safe Mobility Costa Rica and Spain", purposes=["resettlement", "family_reunification"],
                          sections=["identity", "background", "needs", "pipeline"], status=AgreementStatus.active,
                          proposed_by_org_id=ctx.orgs["smo-cr"].id))
    session.flush()
    demo.seed(ctx)
    first = counts(session)
    offices = {o.slug: o for o in session.scalars(select(Office))}
    assert set(offices) == {"gt", "cr", "co", "ec"}
    assert offices["cr"].nationalities == ["NI", "VE"] and offices["cr"].presence_cutoff == date(2023, 6, 12)
    assert offices["co"].nationalities == ["CU", "HT", "VE"] and offices["co"].presence_cutoff == date(2023, 6, 11)
    assert offices["ec"].nationalities == ["CU", "HT", "NI", "VE", "CO"]
    assert offices["ec"].presence_cutoff == date(2023, 10, 18)
    assert offices["gt"].nationalities == ["GT"] and offices["gt"].presence_cutoff is None
    assert offices["cr"].timezone == "America/Costa_Rica" and all(o.elsewhere for o in offices.values())
    assert first["Registration"] == 4 * demo.REGISTRATIONS
    # Everyone registered is eligible where they registered.
    for reg in session.scalars(select(Registration)):
        office = next(o for o in offices.values() if o.id == reg.office_id)
        assert reg.nationality in office.nationalities
        assert office.presence_cutoff is None or reg.arrived_on <= office.presence_cutoff
    rules = session.scalars(select(ScreeningRule).where(ScreeningRule.status == RuleStatus.active)).all()
    assert len(rules) == sum(len(v) for v in demo.OFFICE_RULES.values())
    assert all(r.pathway_id is not None for r in rules)  # each leads to a pathway of the demo catalog
    # Slots on the next fourteen days.
    now = clock.now()
    future = session.scalars(select(Slot).where(Slot.starts_at > now)).all()
    assert len(future) == 4 * 14 * 8 and max(s.starts_at for s in future) < now + timedelta(days=16)
    # Every stage.
    statuses = {s for (s,) in session.execute(select(Registration.status).distinct())}
    assert {RegistrationStatus.not_qualified, RegistrationStatus.screened, RegistrationStatus.interview,
            RegistrationStatus.interviewed, RegistrationStatus.referred} <= statuses
    referred = session.scalars(select(Registration).where(Registration.status == RegistrationStatus.referred)).all()
    assert referred and all(r.office_id == offices["cr"].id and r.referred_org_id == ctx.orgs["es"].id
                            for r in referred)
    assert first["Case"] == len(referred) and first["Referral"] == len(referred)
    assert "caseworker@smo-cr.rdn.example" in {p["email"] for p in ctx.personas}
    assert "officer@smo-cr.rdn.example" in {p["email"] for p in ctx.personas}
    figures = dashboard.figures(session, network_demo_principal(session, ctx), offices["cr"])
    assert figures.totals["referred"] == len(referred) and figures.median_days is not None
    assert figures.totals["arrived"] >= 1
    assert any("Safe Mobility" in text for text in said)
    # Again: nothing added.
    demo.seed(ctx)
    assert counts(session) == first


def network_demo_principal(session: Session, ctx: DemoContext):  # type: ignore[no-untyped-def]
    return demo._principal(session, ctx.people["officer_costa_rica"], ctx.orgs["smo-cr"])
