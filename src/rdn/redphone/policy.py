"""Who may see and do what on the red phone (registered with ``rdn.core.policy``).

A crisis is visible to the staff of its participant organizations (member governments, the secretariat,
observers, referring agencies). What one may do in its room depends on one's organization's seat:
chair, member, rapporteur or observer. Observers read and talk, but do not pledge or decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, false, select
from sqlalchemy.orm import Session

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role
from rdn.redphone.models import ContactMethod, Crisis, Page, Participant, ParticipantRole

STAFF = frozenset({Role.admin, Role.senior_official, Role.officer, Role.caseworker, Role.analyst})
COORDINATING = frozenset({OrgKind.government, OrgKind.secretariat, OrgKind.observer, OrgKind.agency})
LEADERS = frozenset({Role.admin, Role.senior_official})


def staff(p: Principal) -> bool:
    return p.org_kind in COORDINATING and bool(p.roles & STAFF)


def secretariat_lead(p: Principal) -> bool:
    return p.org_kind == OrgKind.secretariat and bool(p.roles & LEADERS)


@dataclass(frozen=True)
class Seat:
    """A crisis and the caller's organization's place at its table (None: not a participant)."""

    crisis: Crisis
    role: ParticipantRole | None


def seat_of(session: Session, p: Principal, crisis: Crisis) -> Seat:
    role = session.scalar(select(Participant.role).where(Participant.crisis_id == crisis.id,
                                                         Participant.org_id == p.org_id)) if p.org_id else None
    return Seat(crisis, ParticipantRole(role) if role else None)


@policy.scope_filter(Crisis)
def _crises_visible(p: Principal) -> ColumnElement[bool]:
    if not staff(p):
        return false()
    return exists(select(Participant.id).where(Participant.crisis_id == Crisis.id, Participant.org_id == p.org_id))


@policy.rule("crisis.read", scope="read")
def _read(p: Principal, _obj: Any) -> bool:
    """The staff of participant organizations (the crisis itself is reached through the scoped query)."""
    return staff(p)


@policy.rule("crisis.declare", scope="write")
def _declare(p: Principal, _obj: Any) -> bool:
    """A senior official of a member government, or the secretariat's leadership, declares a crisis or a drill."""
    return (p.org_kind == OrgKind.government and Role.senior_official in p.roles) or secretariat_lead(p)


@policy.rule("crisis.manage", scope="write")
def _manage(p: Principal, seat: Seat) -> bool:
    """The chair's leadership, or the secretariat's, moves the crisis through its lifecycle and levels."""
    return secretariat_lead(p) or (seat.role == ParticipantRole.chair and bool(p.roles & LEADERS))


@policy.rule("crisis.participants", scope="write")
def _participants(p: Principal, seat: Seat) -> bool:
    """Seating organizations (chair, rapporteur, members, observers): the chair or the secretariat."""
    return _manage(p, seat)


@policy.rule("crisis.message", scope="write")
def _message(p: Principal, seat: Seat) -> bool:
    """Every participant's staff talks in the room, observers included."""
    return staff(p) and seat.role is not None


@policy.rule("crisis.decide", scope="write")
def _decide(p: Principal, seat: Seat) -> bool:
    """The chair and the rapporteur keep the decision log and assign actions."""
    return staff(p) and seat.role in (ParticipantRole.chair, ParticipantRole.rapporteur)


@policy.rule("crisis.pledge", scope="write")
def _pledge(p: Principal, seat: Seat) -> bool:
    """A member government (or the chair, when a government) pledges places; observers do not."""
    return (p.org_kind == OrgKind.government and seat.role in (ParticipantRole.chair, ParticipantRole.member)
            and bool(p.roles & {Role.admin, Role.senior_official, Role.officer}))


@policy.rule("pledge.update", scope="write")
def _pledge_update(p: Principal, pledge: Any) -> bool:
    """A government confirms, fulfils or withdraws its own pledges."""
    return pledge.org_id == p.org_id and bool(p.roles & {Role.admin, Role.senior_official, Role.officer})


@policy.rule("action.update", scope="write")
def _action_update(p: Principal, target: Any) -> bool:
    """The owner government moves its action; the chair and the rapporteur may too. ``target``: (action, seat)."""
    action, seat = target
    return staff(p) and (action.owner_org_id == p.org_id
                         or seat.role in (ParticipantRole.chair, ParticipantRole.rapporteur))


@policy.rule("page.acknowledge", scope="write")
def _acknowledge(p: Principal, run: Any) -> bool:
    """Anyone in a government's chain acknowledges for that government, and only for it."""
    return run.org_id == p.org_id and any(
        person["user_id"] == str(p.user_id) for level in run.snapshot["levels"] for person in level["people"])


@policy.scope_filter(Page)
def _pages_visible(p: Principal) -> ColumnElement[bool]:
    return Page.user_id == p.user_id


@policy.rule("chain.read", scope="read")
def _chain_read(p: Principal, org: Any) -> bool:
    """A government's staff see its chain; the secretariat sees every chain (it watches for gaps)."""
    if org is None:
        return staff(p) and p.org_kind in (OrgKind.government, OrgKind.secretariat)
    return staff(p) and (org.id == p.org_id or p.org_kind == OrgKind.secretariat)


@policy.rule("chain.manage", scope="admin")
def _chain_manage(p: Principal, org: Any) -> bool:
    """A government's administrators and senior officials keep its chain."""
    return (org is not None and org.id == p.org_id and OrgKind(org.kind) == OrgKind.government
            and bool(p.roles & LEADERS))


@policy.scope_filter(ContactMethod)
def _methods_visible(p: Principal) -> ColumnElement[bool]:
    return (ContactMethod.user_id == p.user_id) & ContactMethod.active.is_(True)


@policy.rule("contact.manage", scope="write")
def _contact_manage(p: Principal, method: Any) -> bool:
    """Everyone manages their own ways of being reached."""
    return method is None or method.user_id == p.user_id


@policy.rule("drill.report", scope="read")
def _drill_report(p: Principal, _obj: Any) -> bool:
    """Drill results are for the member governments' and the secretariat's staff."""
    return staff(p) and p.org_kind in (OrgKind.government, OrgKind.secretariat)



def access_crisis(session: Session, p: Principal | None, crisis_id: Any, action: str | None = None) -> Seat:
    """The crisis (if the caller may see it, and do ``action`` at its seat) with the caller's seat; else 404."""
    crisis = policy.access(session, p, Crisis, crisis_id, "crisis.read")
    assert p is not None
    seat = seat_of(session, p, crisis)
    if action is not None and not policy.can(p, action, seat):
        raise policy.NotFound()
    return seat
