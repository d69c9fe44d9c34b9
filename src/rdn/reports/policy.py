"""Who sees which picture (registered with ``rdn.core.policy``).

* The network dashboard (aggregates only, no case is identified): the staff of every member organization, sponsor
  groups excepted (they reach Welcome and nothing else).
* A member government's view: that government's own officials, and the secretariat, which serves every member.
  Anyone else gets the same 404 as for a government that does not exist.
* Projected needs: everyone who reads the dashboard reads them; the secretariat enters them.
* A refresh of the figures on request: the secretariat and governments' officials (the worker refreshes anyway).
* The public transparency page has no rule: a deployment turns it on (RDN_PUBLIC_FIGURES), and it shows only
  suppressed aggregates.
"""

from __future__ import annotations

from typing import Any

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization, OrgKind, Role

READERS = frozenset({Role.admin, Role.senior_official, Role.officer, Role.caseworker, Role.analyst})
OFFICIALS = frozenset({Role.admin, Role.senior_official, Role.officer, Role.analyst})
EDITORS = frozenset({Role.admin, Role.officer, Role.analyst})


def _member_staff(p: Principal) -> bool:
    return p.org_id is not None and p.org_kind not in (OrgKind.sponsor_group, None) and bool(p.roles & READERS)


def _secretariat(p: Principal, roles: frozenset[Role]) -> bool:
    return p.org_kind == OrgKind.secretariat and bool(p.roles & roles)


@policy.rule("report.network.read", scope="read")
def _network(p: Principal, _obj: Any) -> bool:
    return _member_staff(p)


@policy.rule("report.member.read", scope="read")
def _member(p: Principal, obj: Any) -> bool:
    if _secretariat(p, READERS):
        return True
    if not (p.org_kind == OrgKind.government and bool(p.roles & READERS)):
        return False
    return obj is None or (isinstance(obj, Organization) and obj.id == p.org_id)


@policy.rule("report.needs.manage", scope="write")
def _needs(p: Principal, _obj: Any) -> bool:
    return _secretariat(p, EDITORS)


@policy.rule("report.refresh", scope="write")
def _refresh(p: Principal, _obj: Any) -> bool:
    return _secretariat(p, OFFICIALS) or (p.org_kind == OrgKind.government and bool(p.roles & OFFICIALS))
