"""Demo obstacles: the Pakistan exit-permit fee for Afghans (the cases the demo blocked on it, back-dated over
the past months), others in host and transit countries, and the diplomatic actions against them."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from rdn.cases.models import Case, ChecklistEntry, ChecklistStatus
from rdn.core import clock
from rdn.core.audit import Actor
from rdn.pathways.models import ActionType, Block, DiplomaticAction, Obstacle, ObstacleStatus, ObstacleType, Severity

DEMO = Actor("rdn demo")

#: host country, type, title, description, amount, currency, nationalities, months ago, severity, status, links
OBSTACLES: list[tuple[Any, ...]] = [
    ("PK", ObstacleType.exit_permit, "Exit permit fee for Afghans without valid visas",
     "Afghans in Pakistan without a valid visa must obtain an exit permit before departure; a fee of about USD 830 "
     "per person applies, which most resettling families cannot pay. Cases wait at the last step before travel.",
     830.0, "USD", ["AF"], 14, Severity.critical, ObstacleStatus.being_addressed,
     ["https://www.unhcr.org/countries/pakistan"]),
    ("LB", ObstacleType.overstay_fine, "Overstay fines for Syrians before departure",
     "Syrians who overstayed their residency must settle accumulated fines or obtain a waiver from General "
     "Security before they may leave.", 200.0, "USD", ["SY"], 30, Severity.high, ObstacleStatus.confirmed, []),
    ("CO", ObstacleType.missing_document, "Passports unobtainable for Venezuelans",
     "Many Venezuelans cannot obtain or renew a passport; destination countries must accept alternative travel "
     "documents.", None, "", ["VE"], 40, Severity.high, ObstacleStatus.being_addressed, []),
    ("TR", ObstacleType.exit_permit, "Exit permission for registered Syrians",
     "Departure requires an exit permission from the migration authority, issued case by case.", None, "", ["SY"],
     20, Severity.medium, ObstacleStatus.confirmed, []),
    ("AE", ObstacleType.transit_visa, "Transit visas for Afghans flying through the Gulf",
     "Airlines refuse boarding to Afghans without a transit visa on some routes.", None, "", ["AF"], 8,
     Severity.medium, ObstacleStatus.reported, []),
    ("ET", ObstacleType.exit_fee, "Exit visa fees for Eritreans", "An exit fee applies per person.", 90.0, "USD",
     ["ER"], 12, Severity.medium, ObstacleStatus.reported, []),
    ("KE", ObstacleType.security_hold, "Security clearance backlog", "Clearances take months longer than planned.",
     None, "", [], 6, Severity.low, ObstacleStatus.resolved, []),
]


def seed(ctx: Any) -> None:
    session = ctx.session
    if session.scalar(select(func.count()).select_from(Obstacle)):
        return
    rng = random.Random(11)
    now = clock.now()
    reporter = ctx.orgs["unhcr-like"]
    made: dict[str, Obstacle] = {}
    for (country, kind, title, text, amount, currency, nationalities, months, severity, status,
         links) in OBSTACLES:
        since = (now - timedelta(days=30 * months)).date()
        history = [{"status": "reported", "at": (now - timedelta(days=30 * months - 5)).isoformat(),
                    "org": str(reporter.id), "note": ""}]
        if status != ObstacleStatus.reported:
            history.append({"status": status.value, "at": (now - timedelta(days=20)).isoformat(),
                            "org": str(ctx.orgs["secretariat"].id), "note": ""})
        obstacle = Obstacle(country=country, type=kind, title=title, description=text, amount=amount,
                            currency=currency, nationalities=nationalities, since=since, severity=severity,
                            status=status, history=history, links=links, reported_by_org_id=reporter.id,
                            resolved_at=now - timedelta(days=20) if status == ObstacleStatus.resolved else None,
                            created_at=now - timedelta(days=30 * months - 5), updated_at=now)
        session.add(obstacle)
        made[country] = obstacle
    session.flush()
    pakistan = made["PK"]
    blocked = session.execute(select(ChecklistEntry, Case).join(Case, Case.id == ChecklistEntry.case_id).where(
        ChecklistEntry.item == "exit_permit", ChecklistEntry.status == ChecklistStatus.blocked,
        Case.current_country == "PK")).all()
    for entry, case in blocked:
        entry.obstacle_id = pakistan.id
        session.add(Block(obstacle_id=pakistan.id, case_id=case.id, item="exit_permit", owner_org_id=case.owner_org_id,
                          people=case.size, blocked_at=now - timedelta(days=rng.randint(10, 300))))
    # Some were blocked before and released when they paid or got a waiver: the picture over time has a past.
    for case in session.scalars(select(Case).where(Case.current_country == "PK").limit(12)):
        start = now - timedelta(days=rng.randint(150, 400))
        session.add(Block(obstacle_id=pakistan.id, case_id=case.id, item="exit_permit", owner_org_id=case.owner_org_id,
                          people=case.size, blocked_at=start, released_at=start + timedelta(days=rng.randint(20, 120)),
                          release_reason="unblocked"))
    today = now.date()
    for obstacle, kind, lead, cosigners, days_ago, follow, outcome in (
            (pakistan, ActionType.demarche, "ca", ["de", "es"], 60, today + timedelta(days=5),
             "The ministry agreed to study a fee waiver for resettling families."),
            (pakistan, ActionType.joint_statement, "secretariat", ["ca", "de", "gb", "au"], 30, None, ""),
            (made["LB"], ActionType.funding_offer, "de", [], 45, today + timedelta(days=14), ""),
            (made["CO"], ActionType.technical_assistance, "es", ["ca"], 90, today - timedelta(days=1),
             "Laissez-passer accepted by three destination countries.")):
        session.add(DiplomaticAction(obstacle_id=obstacle.id, type=kind, lead_org_id=ctx.orgs[lead].id,
                                     cosigners=[str(ctx.orgs[c].id) for c in cosigners],
                                     on=today - timedelta(days=days_ago), description="", outcome=outcome,
                                     follow_up_on=follow))
    session.flush()
    ctx.say(f"Created {len(OBSTACLES)} obstacles; the Pakistan exit-permit fee blocks {len(blocked)} cases")
