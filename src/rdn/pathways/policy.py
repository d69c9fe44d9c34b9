"""Who may see and change pathways, obstacles, diplomatic actions and the best-practice library (registered with
``rdn.core.policy``).

* Everything here is the network's shared knowledge: every member's staff sees it (sponsor groups do not).
* A government's administrators and officers keep its own pathways.
* Any member's caseworkers, officers, senior officials and administrators report obstacles and add evidence;
  the reporting organization and the governments and the secretariat move an obstacle's status (resolving it
  releases the cases it blocks); diplomatic actions are recorded by governments and the secretariat.
* Which cases an obstacle blocks is counted for everyone; the cases themselves are linked only for those who
  may see them (``rdn.cases.policy``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from rdn.cases.policy import STAFF
from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role
from rdn.pathways.models import DiplomaticAction, Obstacle, Pathway, Practice

ACTORS = frozenset({Role.admin, Role.senior_official, Role.officer, Role.caseworker})
OFFICIALS = frozenset({Role.admin, Role.senior_official, Role.officer})
DIPLOMATIC = frozenset({OrgKind.government, OrgKind.secretariat})


def _staff(p: Principal) -> bool:
    return p.org_id is not None and p.org_kind != OrgKind.sponsor_group and bool(p.roles & STAFF)


def _everyone(p: Principal) -> ColumnElement[bool]:
    return true() if _staff(p) else false()


for _model in (Pathway, Obstacle, DiplomaticAction, Practice):
    policy.scope_filter(_model)(_everyone)


@policy.rule("pathway.read", scope="read")
def _pathway_read(p: Principal, obj: Any) -> bool:
    """Every member's staff sees the pathway catalog."""
    return _staff(p)


@policy.rule("pathway.manage", scope="write")
def _pathway_manage(p: Principal, pathway: Any) -> bool:
    """A government's administrators and officers keep its own pathways."""
    return (p.org_kind == OrgKind.government and bool(p.roles & {Role.admin, Role.officer})
            and (pathway is None or pathway.org_id == p.org_id))


@policy.rule("obstacle.read", scope="read")
def _obstacle_read(p: Principal, obj: Any) -> bool:
    """Every member's staff sees obstacles, their evidence, actions and the counts of what they block."""
    return _staff(p)


@policy.rule("obstacle.report", scope="write")
def _obstacle_report(p: Principal, obj: Any) -> bool:
    """Any member's caseworkers, officers, senior officials and administrators report obstacles and add
    evidence to them."""
    return _staff(p) and bool(p.roles & ACTORS)


@policy.rule("obstacle.update", scope="write")
def _obstacle_update(p: Principal, obstacle: Any) -> bool:
    """An obstacle's description and status are changed by the organization that reported it, and by the
    officers, senior officials and administrators of governments and the secretariat."""
    if not (_staff(p) and p.roles & ACTORS):
        return False
    if p.org_kind in DIPLOMATIC and p.roles & OFFICIALS:
        return True
    return obstacle is not None and obstacle.reported_by_org_id == p.org_id


@policy.rule("obstacle.action", scope="write")
def _obstacle_action(p: Principal, obj: Any) -> bool:
    """Governments' and the secretariat's officers, senior officials and administrators record diplomatic
    actions (and their outcomes)."""
    return _staff(p) and p.org_kind in DIPLOMATIC and bool(p.roles & OFFICIALS)


@policy.rule("practice.read", scope="read")
def _practice_read(p: Principal, obj: Any) -> bool:
    """Every member's staff reads the best-practice library."""
    return _staff(p)


@policy.rule("practice.write", scope="write")
def _practice_write(p: Principal, note: Any) -> bool:
    """Any member's staff shares notes; an organization's own notes are changed by its staff."""
    return _staff(p) and (note is None or note.org_id == p.org_id)
