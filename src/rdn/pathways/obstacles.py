"""Obstacles: what they are, the evidence, the cases they block, the diplomatic actions against them.

Blocking a case ties one of its pre-departure checklist items to an obstacle (a ``Block`` from now until it is
released, and the item shows "blocked"). Resolving an obstacle releases every case it blocks in the same
transaction and queues a note to each owning organization. Counts of what an obstacle blocks are for every
member; the cases themselves are listed only to those who may see them.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import search as case_search
from rdn.cases import service as cases
from rdn.cases.models import Case, ChecklistEntry, ChecklistItem, ChecklistStatus
from rdn.cases.pipeline import STAGE_NAMES, Stage
from rdn.cases.policy import HANDLERS, access_case
from rdn.config import get_settings
from rdn.core import audit, clock, i18n, outbox, policy
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import send_email
from rdn.core.pagination import Page, paginate
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.pathways.models import (
    ActionType,
    Block,
    DiplomaticAction,
    Evidence,
    Obstacle,
    ObstacleStatus,
    ObstacleType,
    Severity,
)

MAX_FILE = 5 * 1024 * 1024
#: What evidence may be: checked by the file's first bytes, not its name.
SIGNATURES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
SEVERITY_ORDER = {Severity.critical: 0, Severity.high: 1, Severity.medium: 2, Severity.low: 3}
RELEASED_STATUS = ChecklistStatus.pending  # what a released item goes back to
OFFICIALS = frozenset({Role.admin, Role.senior_official, Role.officer})


# Obstacles ------------------------------------------------------------------------------------------------------


def _text(value: Any, name: str, errors: list[FieldError], *, high: int, low: int = 0) -> str:
    text = str(value or "").strip()
    if len(text) < low:
        errors.append(FieldError(name, _("is required") if low <= 1 else _("at least %(low)s characters", low=low)))
    elif len(text) > high:
        errors.append(FieldError(name, _("at most %(high)s characters", high=high)))
    return text


def _enum(kind: Any, value: Any, name: str, errors: list[FieldError]) -> Any:
    try:
        return kind(str(value or "").strip())
    except ValueError:
        errors.append(FieldError(name, _("must be one of %(values)s", values=", ".join(k.value for k in kind))))
        return None


def _country(value: Any, name: str, errors: list[FieldError], *, required: bool = True) -> str:
    code = str(value or "").strip().upper()
    if not code and not required:
        return ""
    if not i18n.is_country(code):
        errors.append(FieldError(name, _("not an ISO 3166 country code")))
    return code


def _countries(value: Any, name: str, errors: list[FieldError]) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    codes = [str(c).strip().upper() for c in items if str(c).strip()]
    bad = [c for c in codes if not i18n.is_country(c)]
    if bad:
        errors.append(FieldError(name, _("not ISO 3166 country codes: %(codes)s", codes=", ".join(bad))))
    return list(dict.fromkeys(codes))[:50]


def _date(value: Any, name: str, errors: list[FieldError]) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        errors.append(FieldError(name, _("must be a date (YYYY-MM-DD)")))
        return None


def _links(value: Any, errors: list[FieldError]) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").split()
    links = [str(x).strip() for x in items if str(x).strip()]
    bad = [x for x in links if not (x.startswith("https://") or x.startswith("http://")) or len(x) > 500]
    if bad:
        errors.append(FieldError("links", _("links must start with https:// or http://")))
    return links[:20]


def clean_obstacle(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {
        "country": _country(data.get("country"), "country", errors),
        "type": _enum(ObstacleType, data.get("type"), "type", errors),
        "title": _text(data.get("title"), "title", errors, high=200, low=3),
        "description": _text(data.get("description"), "description", errors, high=5000),
        "nationalities": _countries(data.get("nationalities"), "nationalities", errors),
        "since": _date(data.get("since"), "since", errors),
        "severity": _enum(Severity, data.get("severity") or "medium", "severity", errors),
        "links": _links(data.get("links"), errors),
    }
    amount = data.get("amount")
    out["amount"], out["currency"] = None, ""
    if amount not in (None, ""):
        try:
            out["amount"] = float(str(amount).strip())
            if not 0 <= out["amount"] <= 1e9:
                raise ValueError
        except ValueError:
            errors.append(FieldError("amount", _("must be a number of 0 or more")))
        currency = str(data.get("currency") or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            errors.append(FieldError("currency", _("an ISO 4217 code such as USD, with the amount")))
        out["currency"] = currency
    if out["since"] and out["since"] > clock.now().date():
        errors.append(FieldError("since", _("cannot be in the future")))
    if errors:
        raise ValidationFailed(errors=errors)
    return out


def _history(obstacle: Obstacle, actor: Principal, status: ObstacleStatus, note: str = "") -> None:
    obstacle.history = [*obstacle.history, {"status": status.value, "at": clock.now().isoformat(),
                                            "org": str(actor.org_id), "note": note}]


def create_obstacle(session: Session, *, actor: Principal, data: Mapping[str, Any]) -> Obstacle:
    policy.require(actor, "obstacle.report")
    values = clean_obstacle(data)
    assert actor.org_id is not None
    now = clock.now()
    obstacle = Obstacle(**values, status=ObstacleStatus.reported, reported_by_org_id=actor.org_id, history=[],
                        created_at=now, updated_at=now)
    _history(obstacle, actor, ObstacleStatus.reported)
    session.add(obstacle)
    session.flush()
    audit.record(session, action="obstacle.report", actor=actor, object_type="obstacle", object_id=obstacle.id,
                 details={"country": obstacle.country, "type": obstacle.type.value})
    return obstacle


def update_obstacle(session: Session, *, actor: Principal, obstacle: Obstacle, data: Mapping[str, Any]) -> Obstacle:
    policy.require(actor, "obstacle.update", obstacle)
    current = {"country": obstacle.country, "type": obstacle.type.value, "title": obstacle.title,
               "description": obstacle.description, "nationalities": obstacle.nationalities,
               "since": obstacle.since, "severity": obstacle.severity.value, "links": obstacle.links,
               "amount": obstacle.amount, "currency": obstacle.currency}
    values = clean_obstacle({**current, **data})
    changed = sorted(k for k, v in values.items() if getattr(obstacle, k) != v)
    for key in changed:
        setattr(obstacle, key, values[key])
    obstacle.updated_at = clock.now()
    audit.record(session, action="obstacle.update", actor=actor, object_type="obstacle", object_id=obstacle.id,
                 details={"changed": changed})
    return obstacle


def set_status(session: Session, *, actor: Principal, obstacle: Obstacle, status: Any, note: str = "") -> int:
    """Move the obstacle to ``status``; resolving it releases every case it blocks (returns how many)."""
    policy.require(actor, "obstacle.update", obstacle)
    errors: list[FieldError] = []
    new = _enum(ObstacleStatus, status, "status", errors)
    note = _text(note, "note", errors, high=1000)
    if errors:
        raise ValidationFailed(errors=errors)
    if new == obstacle.status:
        raise Conflict(_("the obstacle already has this status"))
    obstacle.status, obstacle.updated_at = new, clock.now()
    obstacle.resolved_at = clock.now() if new == ObstacleStatus.resolved else None
    _history(obstacle, actor, new, note)
    released = release_all(session, actor=actor, obstacle=obstacle) if new == ObstacleStatus.resolved else 0
    audit.record(session, action="obstacle.status", actor=actor, object_type="obstacle", object_id=obstacle.id,
                 details={"status": new.value, "released": released})
    return released


def _sniff(data: bytes, filename: str) -> str | None:
    for magic, kind in SIGNATURES.items():
        if data.startswith(magic):
            return kind
    if filename.lower().endswith((".txt", ".csv")):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/plain; charset=utf-8"
    return None


def add_evidence(session: Session, *, actor: Principal, obstacle: Obstacle, note: str = "", filename: str = "",
                 data: bytes | None = None) -> Evidence:
    policy.require(actor, "obstacle.report", obstacle)
    errors: list[FieldError] = []
    note = _text(note, "note", errors, high=5000)
    kind = ""
    if data:
        if len(data) > MAX_FILE:
            errors.append(FieldError("file", _("at most 5 MB")))
        else:
            kind = _sniff(data, filename) or ""
            if not kind:
                errors.append(FieldError("file", _("a PDF, PNG, JPEG or plain text file")))
    if not note and not data:
        errors.append(FieldError("note", _("write a note or attach a file")))
    if errors:
        raise ValidationFailed(errors=errors)
    assert actor.org_id is not None
    evidence = Evidence(obstacle_id=obstacle.id, org_id=actor.org_id, user_id=actor.user_id, note=note,
                        filename=(filename or "evidence").rsplit("/", 1)[-1][:200] if data else "",
                        content_type=kind, data=data or None)
    session.add(evidence)
    session.flush()
    audit.record(session, action="obstacle.evidence", actor=actor, object_type="obstacle", object_id=obstacle.id,
                 details={"evidence": str(evidence.id), "file": bool(data)})
    return evidence


def evidence_of(session: Session, obstacle: Obstacle) -> list[Evidence]:
    return list(session.scalars(select(Evidence).where(Evidence.obstacle_id == obstacle.id)
                                .order_by(Evidence.created_at.desc())))


def list_obstacles(session: Session, actor: Principal, *, country: str = "", status: str = "", type: str = "",
                   severity: str = "", q: str = "", page: int = 1, per_page: int = 25) -> Page[Obstacle]:
    policy.require(actor, "obstacle.read")
    stmt = policy.scoped(actor, Obstacle)
    if country:
        stmt = stmt.where(Obstacle.country == country.upper())
    if status == "open":
        stmt = stmt.where(Obstacle.status != ObstacleStatus.resolved)
    elif status in {s.value for s in ObstacleStatus}:
        stmt = stmt.where(Obstacle.status == status)
    if type in {t.value for t in ObstacleType}:
        stmt = stmt.where(Obstacle.type == type)
    if severity in {s.value for s in Severity}:
        stmt = stmt.where(Obstacle.severity == severity)
    if q.strip():
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(func.lower(Obstacle.title).like(like) | func.lower(Obstacle.description).like(like))
    return paginate(session, stmt.order_by(Obstacle.country, Obstacle.title, Obstacle.id), page=page,
                    per_page=per_page)


# Blocking cases -------------------------------------------------------------------------------------------------


def _open_block(session: Session, case_id: uuid.UUID, item: str) -> Block | None:
    return session.scalars(select(Block).where(Block.case_id == case_id, Block.item == item,
                                               Block.released_at.is_(None))).first()


def block_case(session: Session, *, actor: Principal, case_id: Any, item: Any, obstacle_id: Any,
               note: str = "") -> Block:
    """Mark one checklist item of a case blocked by an obstacle (moving it from another obstacle if need be)."""
    access = access_case(session, actor, case_id)
    policy.require(actor, "case.checklist", access)
    errors: list[FieldError] = []
    item = _enum(ChecklistItem, item, "item", errors)
    if errors:
        raise ValidationFailed(errors=errors)
    try:
        obstacle = policy.access(session, actor, Obstacle, uuid.UUID(str(obstacle_id)), "obstacle.read")
    except (ValueError, policy.NotFound):
        raise ValidationFailed("obstacle_id", _("choose one of the obstacles listed")) from None
    if obstacle.status == ObstacleStatus.resolved:
        raise ValidationFailed("obstacle_id", _("this obstacle is resolved: it blocks nothing any more"))
    entry = cases.set_checklist(session, actor=actor, access=access, item=item, status=ChecklistStatus.blocked,
                                note=note or obstacle.title[:500])
    case = access.case
    current = _open_block(session, case.id, item.value)
    if current is not None and current.obstacle_id == obstacle.id:
        return current
    if current is not None:
        _release(current, "moved")
    entry.obstacle_id = obstacle.id
    block = Block(obstacle_id=obstacle.id, case_id=case.id, item=item.value, owner_org_id=case.owner_org_id,
                  people=case.size, blocked_at=clock.now())
    session.add(block)
    session.flush()
    audit.record(session, action="obstacle.block", actor=actor, object_type="case", object_id=case.id,
                 details={"obstacle": str(obstacle.id), "item": item.value})
    return block


def _release(block: Block, reason: str) -> None:
    block.released_at, block.release_reason = clock.now(), reason


def on_checklist_change(session: Session, entry: ChecklistEntry) -> None:
    """A checklist item that stops being blocked (changed on the case) releases its block."""
    if entry.status == ChecklistStatus.blocked:
        return
    block = _open_block(session, entry.case_id, entry.item.value)
    if block is not None:
        _release(block, "unblocked")
    entry.obstacle_id = None


cases.CHECKLIST_HOOKS.append(on_checklist_change)


def release_all(session: Session, *, actor: Principal, obstacle: Obstacle) -> int:
    """Release every case the obstacle blocks: each item goes back to pending, and each owning organization
    is told (one email per person, through the outbox, with the count and the obstacle's link: no case data)."""
    blocks = list(session.scalars(select(Block).where(Block.obstacle_id == obstacle.id,
                                                      Block.released_at.is_(None))))
    by_owner: dict[uuid.UUID, list[Block]] = defaultdict(list)
    for block in blocks:
        _release(block, "resolved")
        entry = session.scalars(select(ChecklistEntry).where(ChecklistEntry.case_id == block.case_id,
                                                             ChecklistEntry.item == block.item)).first()
        if entry is not None and entry.status == ChecklistStatus.blocked:
            entry.status, entry.obstacle_id = RELEASED_STATUS, None
            entry.note = _("Released: %(title)s is resolved", title=obstacle.title)[:500]
            entry.updated_by_user_id, entry.updated_at = actor.user_id, clock.now()
        by_owner[block.owner_org_id].append(block)
        audit.record(session, action="obstacle.release", actor=actor, object_type="case", object_id=block.case_id,
                     details={"obstacle": str(obstacle.id), "item": block.item})
    for org_id, released in by_owner.items():
        _tell_owner(session, org_id, obstacle, len(released))
    return len(blocks)


def _tell_owner(session: Session, org_id: uuid.UUID, obstacle: Obstacle, count: int) -> None:
    people = session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role.in_(list(HANDLERS)), User.active.is_(True)).distinct())
    link = f"{get_settings().base_url}/obstacles/{obstacle.id}"
    for person in people:
        with i18n.using(person.locale):
            send_email(session, to=person.email, org_id=org_id,
                       subject=_("RDN: %(title)s is resolved", title=obstacle.title),
                       text=_("%(count)s of your cases were blocked by this obstacle and are released: their "
                              "checklist items are pending again.", count=count) + "\n\n" + link + "\n")


def unblock_case(session: Session, *, actor: Principal, case_id: Any, item: Any,
                 status: Any = ChecklistStatus.pending) -> ChecklistEntry:
    access = access_case(session, actor, case_id)
    if status == ChecklistStatus.blocked.value or status == ChecklistStatus.blocked:
        raise ValidationFailed("status", _("choose the status the item has now"))
    return cases.set_checklist(session, actor=actor, access=access, item=item, status=status)


# What an obstacle blocks ----------------------------------------------------------------------------------------


@dataclass
class Counts:
    cases: int
    people: int
    longest_days: int
    median_days: int
    by_stage: list[tuple[str, int, int]]  # (stage, cases, people)
    by_item: list[tuple[str, int]]
    released: int  # cases released so far


def counts(session: Session, obstacle: Obstacle) -> Counts:
    """What the obstacle blocks now: for every member to see (no case is identified). A case blocked on several
    checklist items by the obstacle is one case (its items are counted by item)."""
    rows = session.execute(select(Block.case_id, Block.people, Block.blocked_at, Block.item, Case.stage)
                           .join(Case, Case.id == Block.case_id)
                           .where(Block.obstacle_id == obstacle.id, Block.released_at.is_(None))).all()
    now = clock.now()
    per_case: dict[uuid.UUID, Any] = {}
    items: dict[str, int] = defaultdict(int)
    for r in rows:
        items[r.item] += 1
        seen = per_case.get(r.case_id)
        if seen is None or r.blocked_at < seen.blocked_at:  # blocked since its first item was
            per_case[r.case_id] = r
    blocked = list(per_case.values())
    days = [max(0, (now - r.blocked_at).days) for r in blocked]
    stages: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in blocked:
        stages[r.stage][0] += 1
        stages[r.stage][1] += r.people
    order = {s.value: k for k, s in enumerate(Stage)}
    released = session.scalar(select(func.count(func.distinct(Block.case_id))).where(
        Block.obstacle_id == obstacle.id, Block.released_at.is_not(None), Block.release_reason == "resolved")) or 0
    return Counts(len(blocked), sum(r.people for r in blocked), max(days, default=0),
                  int(statistics.median(days)) if days else 0,
                  sorted(((s, c, p) for s, (c, p) in stages.items()), key=lambda x: order.get(x[0], 99)),
                  sorted(items.items()), released)


def blocked_cases(session: Session, actor: Principal, obstacle: Obstacle, *, limit: int = 200
                  ) -> tuple[list[tuple[Block, Case]], int]:
    """The blocked cases ``actor`` may see (with their blocks), and how many others there are."""
    blocks = list(session.scalars(select(Block).where(Block.obstacle_id == obstacle.id, Block.released_at.is_(None))
                                  .order_by(Block.blocked_at)))
    ids = [b.case_id for b in blocks]
    visible: dict[uuid.UUID, Case] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        visible.update({c.id: c for c in session.scalars(case_search.scoped_cases(actor).where(Case.id.in_(chunk)))})
    shown = [(b, visible[b.case_id]) for b in blocks if b.case_id in visible]
    return shown[:limit], len(blocks) - len(shown)


def timeline(session: Session, obstacles: Sequence[uuid.UUID], *, weeks: int = 26) -> list[dict[str, Any]]:
    """People blocked at the end of each of the last ``weeks`` weeks (by these obstacles, together: a case blocked
    by two of them, or on two items, counts once)."""
    if not obstacles:
        return []
    now = clock.now()
    rows = session.execute(select(Block.case_id, Block.people, Block.blocked_at, Block.released_at)
                           .where(Block.obstacle_id.in_(list(obstacles)))).all()
    out = []
    for k in range(weeks - 1, -1, -1):
        t = now - timedelta(weeks=k)
        blocked = {r.case_id: r.people for r in rows
                   if r.blocked_at <= t and (r.released_at is None or r.released_at > t)}
        out.append({"week": t.date(), "people": sum(blocked.values()), "cases": len(blocked)})
    return out


def by_country(session: Session, actor: Principal) -> list[dict[str, Any]]:
    """Unresolved obstacles by host country, with the cases and people they block (each case once a country)."""
    policy.require(actor, "obstacle.read")
    open_ = policy.scoped(actor, Obstacle).where(Obstacle.status != ObstacleStatus.resolved).subquery()
    per_case = (select(open_.c.country, Block.case_id, func.max(Block.people).label("people"))
                .select_from(open_).join(Block, (Block.obstacle_id == open_.c.id) & Block.released_at.is_(None))
                .group_by(open_.c.country, Block.case_id).subquery())
    blocked = {c: (int(k), int(p)) for c, k, p in session.execute(
        select(per_case.c.country, func.count(per_case.c.case_id), func.coalesce(func.sum(per_case.c.people), 0))
        .group_by(per_case.c.country))}
    rows = session.execute(select(open_.c.country, func.count(func.distinct(open_.c.id)))
                           .group_by(open_.c.country)).all()
    return sorted(({"country": c, "obstacles": n, "cases": blocked.get(c, (0, 0))[0],
                    "people": blocked.get(c, (0, 0))[1]} for c, n in rows),
                  key=lambda r: (-r["people"], r["country"]))


def blocks_by_obstacle(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(cases, people) blocked now, per obstacle (a case blocked on several items counts once)."""
    wanted = list(ids)
    if not wanted:
        return {}
    per_case = (select(Block.obstacle_id, Block.case_id, func.max(Block.people).label("people"))
                .where(Block.obstacle_id.in_(wanted), Block.released_at.is_(None))
                .group_by(Block.obstacle_id, Block.case_id).subquery())
    rows = session.execute(select(per_case.c.obstacle_id, func.count(per_case.c.case_id),
                                  func.coalesce(func.sum(per_case.c.people), 0))
                           .group_by(per_case.c.obstacle_id)).all()
    return {o: (n, int(p)) for o, n, p in rows}


def open_obstacles_for_case(session: Session, actor: Principal, case: Case) -> list[Obstacle]:
    """The unresolved obstacles in the case's current country (what its checklist may be blocked by)."""
    return list(session.scalars(policy.scoped(actor, Obstacle).where(
        Obstacle.country == case.current_country, Obstacle.status != ObstacleStatus.resolved)
        .order_by(Obstacle.title)))


# Diplomatic actions ---------------------------------------------------------------------------------------------


def _orgs(session: Session, ids: Any, name: str, errors: list[FieldError]) -> list[Organization]:
    items = ids if isinstance(ids, list | tuple) else [x for x in str(ids or "").split(",") if x.strip()]
    out: list[Organization] = []
    for value in items:
        try:
            org = session.get(Organization, uuid.UUID(str(value).strip()))
        except ValueError:
            org = None
        if org is None or org.kind not in (OrgKind.government, OrgKind.secretariat, OrgKind.observer):
            errors.append(FieldError(name, _("must be governments, observers or the secretariat")))
            return []
        out.append(org)
    return out


def add_action(session: Session, *, actor: Principal, obstacle: Obstacle, data: Mapping[str, Any]
               ) -> DiplomaticAction:
    policy.require(actor, "obstacle.action", obstacle)
    errors: list[FieldError] = []
    kind = _enum(ActionType, data.get("type"), "type", errors)
    on = _date(data.get("on") or clock.now().date().isoformat(), "on", errors)
    follow = _date(data.get("follow_up_on"), "follow_up_on", errors)
    description = _text(data.get("description"), "description", errors, high=5000)
    outcome = _text(data.get("outcome"), "outcome", errors, high=5000)
    cosigners = _orgs(session, data.get("cosigners") or [], "cosigners", errors)
    if follow and on and follow < on:
        errors.append(FieldError("follow_up_on", _("must be on or after the action's date")))
    if errors:
        raise ValidationFailed(errors=errors)
    assert actor.org_id is not None and on is not None
    action = DiplomaticAction(obstacle_id=obstacle.id, type=kind, lead_org_id=actor.org_id,
                              cosigners=[str(o.id) for o in cosigners if o.id != actor.org_id], on=on,
                              description=description, outcome=outcome, follow_up_on=follow,
                              created_by_user_id=actor.user_id, created_at=clock.now())
    session.add(action)
    session.flush()
    if obstacle.status in (ObstacleStatus.reported, ObstacleStatus.confirmed):
        obstacle.status = ObstacleStatus.being_addressed
        _history(obstacle, actor, ObstacleStatus.being_addressed, _("A diplomatic action was recorded"))
    audit.record(session, action="obstacle.action", actor=actor, object_type="obstacle", object_id=obstacle.id,
                 details={"action": str(action.id), "type": kind.value, "cosigners": action.cosigners})
    return action


def update_action(session: Session, *, actor: Principal, action: DiplomaticAction, outcome: Any = None,
                  follow_up_on: Any = "") -> DiplomaticAction:
    """The lead government records the outcome and the next follow-up (a new date means a new reminder)."""
    policy.require(actor, "obstacle.action", action)
    if action.lead_org_id != actor.org_id:
        raise policy.NotFound()
    errors: list[FieldError] = []
    if outcome is not None:
        action.outcome = _text(outcome, "outcome", errors, high=5000)
    follow = _date(follow_up_on, "follow_up_on", errors)
    if errors:
        raise ValidationFailed(errors=errors)
    if follow != action.follow_up_on:
        action.follow_up_on, action.reminded_at = follow, None
    audit.record(session, action="obstacle.action.update", actor=actor, object_type="obstacle",
                 object_id=action.obstacle_id, details={"action": str(action.id)})
    return action


def actions_of(session: Session, obstacle: Obstacle) -> list[DiplomaticAction]:
    return list(session.scalars(select(DiplomaticAction).where(DiplomaticAction.obstacle_id == obstacle.id)
                                .order_by(DiplomaticAction.on.desc(), DiplomaticAction.created_at.desc())))


def remind_follow_ups(session: Session, today: date | None = None) -> int:
    """Email the lead government's officials of every action whose follow-up is due, once per date."""
    today = today or clock.now().date()
    due = list(session.scalars(select(DiplomaticAction).where(DiplomaticAction.follow_up_on <= today,
                                                              DiplomaticAction.reminded_at.is_(None))
                               .with_for_update(skip_locked=True)))
    for action in due:
        obstacle = session.get(Obstacle, action.obstacle_id)
        assert obstacle is not None
        if obstacle.status != ObstacleStatus.resolved:
            _remind(session, action, obstacle)
        action.reminded_at = clock.now()
    return len(due)


def _remind(session: Session, action: DiplomaticAction, obstacle: Obstacle) -> None:
    people = session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == action.lead_org_id, Membership.role.in_(list(OFFICIALS)),
               User.active.is_(True)).distinct())
    link = f"{get_settings().base_url}/obstacles/{obstacle.id}"
    for person in people:
        with i18n.using(person.locale):
            send_email(session, to=person.email, org_id=action.lead_org_id,
                       subject=_("RDN: follow up on %(title)s", title=obstacle.title),
                       text=_("The follow-up of your %(action)s on this obstacle is due (%(date)s): record its "
                              "outcome, or the next date.", action=_(ACTION_NAMES[action.type]),
                              date=i18n.format_date(action.follow_up_on)) + "\n\n" + link + "\n")


ACTION_NAMES = {ActionType.demarche: N_("démarche"), ActionType.joint_statement: N_("joint statement"),
                ActionType.bilateral_request: N_("bilateral request"), ActionType.funding_offer: N_("funding offer"),
                ActionType.technical_assistance: N_("technical assistance")}


@outbox.periodic("obstacles.follow-ups", timedelta(hours=1))
def _follow_ups_job(ctx: outbox.JobContext) -> None:
    remind_follow_ups(ctx.session)


def stage_label(stage: str) -> str:
    try:
        return _(STAGE_NAMES[Stage(stage)])
    except ValueError:
        return stage


def checklist_extra(session: Session, actor: Principal, access: Any) -> dict[str, Any]:
    """For the case page: the obstacle blocking each item, and the open obstacles of the case's country."""
    case = access.case
    blocked = {}
    for block, obstacle in session.execute(select(Block, Obstacle).join(Obstacle, Obstacle.id == Block.obstacle_id)
                                           .where(Block.case_id == case.id, Block.released_at.is_(None))):
        blocked[block.item] = {"id": str(obstacle.id), "title": obstacle.title}
    options = []
    if policy.can(actor, "case.checklist", access) and policy.can(actor, "obstacle.read"):
        options = [(str(o.id), o.title) for o in open_obstacles_for_case(session, actor, case)]
    return {"blocked": blocked, "obstacles": options}

