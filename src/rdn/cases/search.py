"""Case lists: filters, sorting, pagination, and name search across transliterations.

Every list starts from ``policy.scoped(principal, Case)``. Name search only looks at people whose identity
the caller may see: the owner's case handlers on their own cases, a recipient government's handlers on
cases referred to it with the identity section. A search that looks like a case number finds the case by
its number (or a number it had under an earlier owner).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, case, cast, distinct, exists, false, func, or_, select
from sqlalchemy.orm import Session

from rdn.cases import names
from rdn.cases.models import LIVE_REFERRAL, Case, Category, NameKey, Priority, Referral, Section
from rdn.cases.pipeline import Stage, is_open
from rdn.cases.policy import HANDLERS, live_referrals_to, owner_sections
from rdn.core import clock, policy
from rdn.core.identity import Principal
from rdn.core.pagination import Page, paginate

CASE_NUMBER = re.compile(r"^[A-Za-z0-9]+-\d{2}-\d{1,9}$")
SORTS = ("relevance", "due", "updated", "number", "priority", "name")
_PRIORITY_ORDER = case({Priority.emergency.value: 0, Priority.urgent.value: 1}, value=Case.processing_priority,
                       else_=2)


@dataclass
class CaseFilters:
    q: str = ""
    stage: list[str] = field(default_factory=list)
    priority: str = ""
    category: str = ""
    nationality: str = ""
    current_country: str = ""
    overdue: bool | None = None
    referred_to: uuid.UUID | None = None
    relation: str = ""  # "" (all), "owned", "referred" (to my organization)
    sort: str = ""

    def active(self) -> bool:
        return any((self.q, self.stage, self.priority, self.category, self.nationality, self.current_country,
                    self.overdue is not None, self.referred_to, self.relation))


def _identity_scope(p: Principal) -> ColumnElement[bool]:
    """The name keys of people whose identity ``p`` may see."""
    conditions = []
    if Section.identity in owner_sections(p):
        conditions.append(NameKey.owner_org_id == p.org_id)
    if p.roles & HANDLERS:
        referred = (live_referrals_to(p).with_only_columns(Referral.case_id)
                    .where(Referral.shares_identity.is_(True)))
        conditions.append(NameKey.case_id.in_(referred))
    return or_(*conditions) if conditions else false()


def name_matches(p: Principal, text: str) -> Any | None:
    """A subquery of (case_id, rank) for cases with a person matching every token of ``text``."""
    tokens = names.query(text)
    seen: set[tuple[str, ...]] = set()
    unique = []
    for token in tokens:
        if token.alternatives not in seen:
            seen.add(token.alternatives)
            unique.append(token)
    if not unique:
        return None
    which = case(*[(NameKey.key.in_(t.alternatives), i) for i, t in enumerate(unique)], else_=None)
    exact = case((NameKey.key.in_([t.exact for t in unique]), 1), else_=0)
    keys = sorted({k for t in unique for k in (*t.alternatives, t.exact)})
    people = (select(NameKey.case_id.label("case_id"), func.sum(exact).label("rank"))
              .where(NameKey.key.in_(keys), _identity_scope(p))
              .group_by(NameKey.member_id, NameKey.case_id)
              .having(func.count(distinct(which)) == len(unique))
              .subquery())
    return (select(people.c.case_id, func.max(people.c.rank).label("rank"))
            .group_by(people.c.case_id).subquery())


def filtered(p: Principal, f: CaseFilters) -> Select[Any]:
    stmt = policy.scoped(p, Case)
    now = clock.now()
    if f.stage:
        stmt = stmt.where(Case.stage.in_([Stage(s).value for s in f.stage if s in Stage.__members__]))
    if f.priority in Priority.__members__:
        stmt = stmt.where(Case.processing_priority == f.priority)
    if f.category.upper() in Category.__members__:
        cat = f.category.upper()
        stmt = stmt.where(or_(Case.category_primary == cat, Case.category_secondary == cat))
    if f.nationality:
        stmt = stmt.where(Case.nationality == f.nationality.upper())
    if f.current_country:
        stmt = stmt.where(Case.current_country == f.current_country.upper())
    if f.overdue is True:
        stmt = stmt.where(Case.due_at < now)
    elif f.overdue is False:
        stmt = stmt.where(or_(Case.due_at.is_(None), Case.due_at >= now))
    if f.relation == "owned":
        stmt = stmt.where(Case.owner_org_id == p.org_id)
    elif f.relation == "referred":
        stmt = stmt.where(Case.owner_org_id != p.org_id)
    if f.referred_to is not None:
        stmt = stmt.where(exists(select(Referral.id).where(
            Referral.case_id == Case.id, Referral.recipient_org_id == f.referred_to,
            Referral.status.in_(LIVE_REFERRAL))))
        if f.referred_to != p.org_id:
            # Where else a case was referred is its owner's to know (a recipient sees its own referrals only).
            stmt = stmt.where(Case.owner_org_id == p.org_id)
    rank = None
    q = f.q.strip()
    if q and CASE_NUMBER.match(q):
        number = q.upper()
        # The pattern holds only letters, digits and dashes: nothing LIKE would read as a wildcard.
        stmt = stmt.where(or_(Case.number == number, cast(Case.previous_numbers, Text).like(f'%"{number}"%')))
    elif q:
        matches = name_matches(p, q)
        if matches is None:
            return stmt.where(false())
        stmt = stmt.join(matches, matches.c.case_id == Case.id)
        rank = matches.c.rank
    return _order(stmt, f.sort, rank)


def _order(stmt: Select[Any], sort: str, rank: Any) -> Select[Any]:
    if sort in ("", "relevance") and rank is not None:
        return stmt.order_by(rank.desc(), Case.principal_name, Case.id)
    if sort == "due" or sort in ("", "relevance"):
        return stmt.order_by(Case.due_at.is_(None), Case.due_at, Case.id)
    if sort == "updated":
        return stmt.order_by(Case.updated_at.desc(), Case.id)
    if sort == "number":
        return stmt.order_by(Case.number)
    if sort == "priority":
        return stmt.order_by(_PRIORITY_ORDER, Case.due_at.is_(None), Case.due_at, Case.id)
    if sort == "name":
        return stmt.order_by(Case.principal_name, Case.id)
    return stmt.order_by(Case.due_at.is_(None), Case.due_at, Case.id)


def list_cases(session: Session, p: Principal, f: CaseFilters, *, page: int = 1, per_page: int = 25) -> Page[Case]:
    policy.require(p, "case.read")
    return paginate(session, filtered(p, f), page=page, per_page=per_page)


def overdue(case_row: Case) -> bool:
    return case_row.due_at is not None and case_row.due_at < clock.now() and is_open(Stage(case_row.stage))


def counts_by_stage(session: Session, p: Principal) -> dict[str, int]:
    """How many visible cases are at each stage (for the list's summary bar)."""
    scoped = policy.scoped(p, Case).with_only_columns(Case.stage, func.count()).group_by(Case.stage)
    return {stage: n for stage, n in session.execute(scoped)}


def overdue_count(session: Session, p: Principal) -> int:
    stmt = policy.scoped(p, Case).with_only_columns(func.count()).where(and_(Case.due_at < clock.now()))
    return session.scalar(stmt) or 0
