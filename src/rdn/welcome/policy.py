"""Who may do what in Welcome (registered with ``rdn.core.policy``).

* A programme belongs to its government: that government's administrators and officers run it (rules, checks,
  funds verification, matches, arrivals); its caseworkers handle groups and matches too. Every member's staff
  may read the list of programmes (the network's shared knowledge); the secretariat reads the figures.
* A sponsor group is its own organization: its sponsors read and edit their group (preferences, members, plan,
  funds pledged), answer a proposal, record the services, and claim donations. They see the family only through
  ``service.sponsor_view`` (the match's shared snapshot): no route gives them the case, and the cases' own rules
  already refuse sponsor groups.
* Background checks, training and funds are recorded by the programme's staff, never by the group itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, select, true

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role
from rdn.welcome.models import Donation, Match, MatchStatus, Programme, SponsorGroup

RUNNERS = frozenset({Role.admin, Role.officer})
HANDLERS = frozenset({Role.admin, Role.officer, Role.caseworker})
READERS = frozenset({Role.admin, Role.officer, Role.caseworker, Role.analyst, Role.senior_official})


def _government(p: Principal, roles: frozenset[Role]) -> bool:
    return p.org_kind == OrgKind.government and bool(p.roles & roles)


def sponsor(p: Principal) -> bool:
    return p.org_kind == OrgKind.sponsor_group and Role.sponsor in p.roles


def _member_staff(p: Principal) -> bool:
    return p.org_id is not None and p.org_kind not in (OrgKind.sponsor_group, None) and bool(p.roles & READERS)


def _programme_of(obj: Any) -> Any:
    return obj if isinstance(obj, Programme) else None


def _runs(p: Principal, programme: Programme | None, roles: frozenset[Role]) -> bool:
    return programme is not None and _government(p, roles) and programme.org_id == p.org_id


@policy.scope_filter(Programme)
def _programmes(p: Principal) -> ColumnElement[bool]:
    if _member_staff(p):
        return true()
    if sponsor(p):
        return Programme.id.in_(select(SponsorGroup.programme_id).where(SponsorGroup.org_id == p.org_id))
    return false()


def _programme_ids_run_by(p: Principal) -> Any:
    return select(Programme.id).where(Programme.org_id == p.org_id)


@policy.scope_filter(SponsorGroup)
def _groups(p: Principal) -> ColumnElement[bool]:
    if _government(p, READERS):
        return SponsorGroup.government_org_id == p.org_id
    if sponsor(p):
        return SponsorGroup.org_id == p.org_id
    return false()


@policy.scope_filter(Match)
def _matches(p: Principal) -> ColumnElement[bool]:
    if _government(p, READERS):
        return Match.programme_id.in_(_programme_ids_run_by(p))
    if sponsor(p):
        # Not a declined or cancelled match: a family that said no, or a match staff ended, is no longer theirs.
        return Match.group_id.in_(select(SponsorGroup.id).where(SponsorGroup.org_id == p.org_id)) & \
            Match.status.in_([MatchStatus.proposed, MatchStatus.active, MatchStatus.completed])
    return false()


@policy.scope_filter(Donation)
def _donations(p: Principal) -> ColumnElement[bool]:
    if _government(p, READERS):
        return Donation.programme_id.in_(_programme_ids_run_by(p))
    if sponsor(p):
        return Donation.programme_id.in_(select(SponsorGroup.programme_id).where(SponsorGroup.org_id == p.org_id))
    return false()


@policy.rule("welcome.programme.read", scope="read")
def _programme_read(p: Principal, _obj: Any) -> bool:
    return _member_staff(p) or sponsor(p)


@policy.rule("welcome.programme.create", scope="write")
def _programme_create(p: Principal, _obj: Any) -> bool:
    return _government(p, RUNNERS)


@policy.rule("welcome.programme.manage", scope="write")
def _programme_manage(p: Principal, obj: Any) -> bool:
    return _government(p, RUNNERS) and (obj is None or _runs(p, _programme_of(obj), RUNNERS))


@policy.rule("welcome.dashboard", scope="read")
def _dashboard(p: Principal, obj: Any) -> bool:
    if p.org_kind == OrgKind.secretariat and bool(p.roles):
        return True
    return _government(p, READERS) and (obj is None or _runs(p, _programme_of(obj), READERS))


@policy.rule("welcome.group.read", scope="read")
def _group_read(p: Principal, _obj: Any) -> bool:
    """Groups are reached through the scoped query: their programme's government staff, or their own sponsors."""
    return _government(p, READERS) or sponsor(p)


def _own_group(p: Principal, group: Any) -> bool:
    return isinstance(group, SponsorGroup) and sponsor(p) and group.org_id == p.org_id


def _runs_group(p: Principal, group: Any, roles: frozenset[Role]) -> bool:
    return isinstance(group, SponsorGroup) and _government(p, roles) and \
        group.government_org_id == p.org_id


@policy.rule("welcome.group.edit", scope="write")
def _group_edit(p: Principal, group: Any) -> bool:
    return _own_group(p, group) or _runs_group(p, group, HANDLERS)


@policy.rule("welcome.group.verify", scope="write")
def _group_verify(p: Principal, group: Any) -> bool:
    return _runs_group(p, group, HANDLERS)


@policy.rule("welcome.match.propose", scope="write")
def _match_propose(p: Principal, obj: Any) -> bool:
    return _government(p, HANDLERS) and (obj is None or _runs(p, _programme_of(obj), HANDLERS))


@policy.rule("welcome.match.respond", scope="write")
def _match_respond(p: Principal, group: Any) -> bool:
    return _own_group(p, group)


@policy.rule("welcome.task.update", scope="write")
def _task_update(p: Principal, group: Any) -> bool:
    return _own_group(p, group) or _runs_group(p, group, HANDLERS)


@policy.rule("welcome.sponsor", scope="read")
def _sponsor(p: Principal, _obj: Any) -> bool:
    """The group's own pages (my group, my family, donations to claim)."""
    return sponsor(p)
