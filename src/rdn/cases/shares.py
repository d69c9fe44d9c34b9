"""Keeping ``case_shares`` in step: which cases each recipient organization sees through live referrals.

A government's case list would otherwise work out, on every request, every live referral to it under an
agreement in force whose case no member shares the government's nationality, and then look up each of those
cases to filter and sort them: tens of thousands of rows for a large resettlement State. ``case_shares``
holds the answer per (organization, case) with the columns lists filter and sort on, indexed like the
owner's own list, so both sides of the network walk an index to their page.

The rows are derived, never edited: every flush that changes a case, a member, a referral, an agreement or an
organization's country recomputes the rows of the cases concerned from the rules
(``policy.live_referrals_to``), in the same transaction, and with them each member's ``shared_with`` (the
organizations its case is shared with, identity included: what a recipient's name search finds people by).
Bulk writers that bypass the ORM (imports write cases without referrals; the benchmark's seeding) call ``sync``
or ``rebuild`` themselves.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Date, and_, case, delete, event, exists, func, insert, inspect, literal, or_, select, text
from sqlalchemy.orm import Session, UOWTransaction

from rdn.cases.models import LIVE_REFERRAL, Agreement, AgreementStatus, Case, CaseShare, Member, Referral
from rdn.core.tenancy import Organization

FOREVER = date(9999, 12, 31)  # "until" of an agreement without an end date
CHUNK = 2_000
COPIED = ("number", "principal_name", "nationality", "current_country", "category_primary", "category_secondary",
          "priority_rank", "stage", "due_at", "updated_at")


def _rows(case_ids: list[uuid.UUID] | None) -> Any:
    """(org_id, case_id, until, identity_until, copied columns...) for ``case_ids`` (None: every case)."""
    end = func.coalesce(Agreement.valid_until, literal(FOREVER, Date))
    # The nationality rule of policy.live_referrals_to, for the recipient's own country.
    nationality_ok = or_(
        Referral.nationality_override_reason != "",
        Organization.country.is_(None),
        Organization.country == "",
        ~exists(select(Member.id).where(Member.case_id == Referral.case_id,
                                        Member.nationality == Organization.country)),
    )
    copied = [getattr(Case, name) for name in COPIED]
    stmt = (
        select(Referral.recipient_org_id, Case.id, func.max(end),
               func.max(case((Referral.shares_identity.is_(True), end), else_=None)), *copied)
        .join(Case, Case.id == Referral.case_id)
        .join(Agreement, Agreement.id == Referral.agreement_id)
        .join(Organization, Organization.id == Referral.recipient_org_id)
        .where(Referral.status.in_(LIVE_REFERRAL), Agreement.status == AgreementStatus.active,
               Referral.recipient_org_id != Case.owner_org_id, nationality_ok)
        .group_by(Referral.recipient_org_id, Case.id, *copied)
    )
    return stmt if case_ids is None else stmt.where(Referral.case_id.in_(case_ids))


_TARGET = ["org_id", "case_id", "until", "identity_until", *COPIED]


def sync(session: Session, case_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the share rows of these cases (in the session's transaction)."""
    ids = sorted({i for i in case_ids if i is not None})
    conn = session.connection()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        conn.execute(delete(CaseShare).where(CaseShare.case_id.in_(chunk)))
        conn.execute(insert(CaseShare).from_select(_TARGET, _rows(chunk)))
        _mark_members(session, chunk)


def rebuild(session: Session, *, members: bool = True) -> int:
    """Recompute every share row (after a bulk write that bypassed the ORM), and with ``members`` every member's
    ``shared_with``; returns how many share rows there are."""
    conn = session.connection()
    conn.execute(delete(CaseShare))
    conn.execute(insert(CaseShare).from_select(_TARGET, _rows(None)))
    if members:
        _mark_members(session, None)
    return session.scalar(select(func.count()).select_from(CaseShare)) or 0


def _mark_members(session: Session, case_ids: list[uuid.UUID] | None) -> None:
    """Write ``Member.shared_with`` of the members of ``case_ids`` (None: every case) from the share rows with
    the identity section: the recipients' ids as ``uuid.hex``, in order (rows that already say so are left)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {} if case_ids is None else {"ids": list(case_ids)}
        within = "" if case_ids is None else "AND m2.case_id = ANY(:ids)"
        conn.execute(text(
            "UPDATE case_members AS m SET shared_with = s.orgs FROM ("
            " SELECT m2.id, COALESCE(jsonb_agg(replace(cs.org_id::text, '-', '') ORDER BY cs.org_id)"
            "   FILTER (WHERE cs.org_id IS NOT NULL), '[]'::jsonb) AS orgs"
            " FROM case_members AS m2 LEFT JOIN case_shares AS cs"
            "   ON cs.case_id = m2.case_id AND cs.identity_until IS NOT NULL"
            f" WHERE (m2.shared_with <> '[]'::jsonb OR cs.org_id IS NOT NULL) {within}"
            " GROUP BY m2.id) AS s"
            " WHERE m.id = s.id AND m.shared_with IS DISTINCT FROM s.orgs"), params)
        return
    # SQLite keeps uuids as 32 hexadecimal digits: the same text as uuid.hex.
    scope = "" if case_ids is None else f"WHERE case_id IN ({', '.join(f':c{i}' for i in range(len(case_ids)))})"
    conn.execute(text(
        "UPDATE case_members SET shared_with = (SELECT json_group_array(org_id) FROM (SELECT cs.org_id FROM"
        " case_shares AS cs WHERE cs.case_id = case_members.case_id AND cs.identity_until IS NOT NULL"
        f" ORDER BY cs.org_id)) {scope}"),
        {} if case_ids is None else {f"c{i}": case_id.hex for i, case_id in enumerate(case_ids)})


def _changed(obj: Any, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # In after_flush, new/dirty/deleted still show what this flush wrote, and attribute histories are intact.
    cases: set[uuid.UUID] = set()
    agreements: set[uuid.UUID] = set()
    orgs: set[uuid.UUID] = set()
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Case):
            if obj not in session.deleted:
                cases.add(obj.id)
        elif isinstance(obj, Referral):
            cases.add(obj.case_id)
        elif isinstance(obj, Member):
            if obj in session.new or obj in session.deleted or _changed(obj, "nationality", "case_id"):
                cases.add(obj.case_id)
        elif isinstance(obj, Agreement) and obj not in session.new and _changed(obj, "status", "valid_until"):
            agreements.add(obj.id)
        elif isinstance(obj, Organization) and obj not in session.new and _changed(obj, "country"):
            orgs.add(obj.id)
    if agreements or orgs:
        conn = session.connection()
        conditions = []
        if agreements:
            conditions.append(Referral.agreement_id.in_(agreements))
        if orgs:
            conditions.append(Referral.recipient_org_id.in_(orgs))
        cases.update(conn.scalars(select(Referral.case_id).where(or_(*conditions)).distinct()))
    if cases:
        sync(session, cases)


def visible_ids(org_id: uuid.UUID, today: date, *, identity: bool = False) -> Any:
    """A select of the ids of cases shared with ``org_id`` today (with their identity section, if asked)."""
    column = CaseShare.identity_until if identity else CaseShare.until
    return select(CaseShare.case_id).where(and_(CaseShare.org_id == org_id, column >= today))
