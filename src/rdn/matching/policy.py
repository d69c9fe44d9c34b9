"""Who may see and manage reception sites, quotas and matching runs (registered with ``rdn.core.policy``).

* Sites and quotas are the network's planning data: every member's staff sees them; a government's
  administrators and officers keep its own.
* A run belongs to the organization that owns the cases in it; its caseworkers, officers and senior officials
  start runs, review and decide placements and confirm them (confirming refers each case, which checks
  ``case.refer`` case by case). A run holds case numbers, needs and scores: nobody outside that
  organization sees it, and it answers 404 to them as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from rdn.cases.policy import HANDLERS, OWNER_KINDS, STAFF
from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role
from rdn.matching.models import Quota, Run, Site

KEEPERS = frozenset({Role.admin, Role.officer})


def _staff(p: Principal) -> bool:
    return p.org_id is not None and p.org_kind != OrgKind.sponsor_group and bool(p.roles & STAFF)


def _keeper(p: Principal) -> bool:
    return p.org_kind == OrgKind.government and bool(p.roles & KEEPERS)


def _matcher(p: Principal) -> bool:
    return p.org_kind in OWNER_KINDS and bool(p.roles & HANDLERS)


@policy.scope_filter(Site)
def _sites_visible(p: Principal) -> ColumnElement[bool]:
    return true() if _staff(p) else false()


@policy.scope_filter(Quota)
def _quotas_visible(p: Principal) -> ColumnElement[bool]:
    return true() if _staff(p) else false()


@policy.rule("match.site.read", scope="read")
def _site_read(p: Principal, site: Any) -> bool:
    """Every member's staff sees the network's reception sites and quotas."""
    return _staff(p)


@policy.rule("match.site.manage", scope="write")
def _site_manage(p: Principal, site: Any) -> bool:
    """A government's administrators and officers keep its own sites and quotas."""
    return _keeper(p) and (site is None or site.org_id == p.org_id)


@policy.scope_filter(Run)
def _runs_visible(p: Principal) -> ColumnElement[bool]:
    return Run.org_id == p.org_id if _matcher(p) else false()


@policy.rule("match.run.read", scope="read")
def _run_read(p: Principal, run: Any) -> bool:
    """The owning organization's caseworkers, officers and senior officials see its runs."""
    return _matcher(p) and (run is None or run.org_id == p.org_id)


@policy.rule("match.run.write", scope="write")
def _run_write(p: Principal, run: Any) -> bool:
    """The same people start runs, decide placements and confirm them (each referral checks ``case.refer``)."""
    return _matcher(p) and (run is None or run.org_id == p.org_id)


@policy.rule("match.needs.override", scope="write")
def _needs_override(p: Principal, access: Any) -> bool:
    """A case's needs for matching are corrected by the owner's caseworkers, officers and senior officials."""
    return _matcher(p) and access is not None and access.owner
