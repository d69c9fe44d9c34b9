"""Who may do what in Safe Mobility (registered with ``rdn.core.policy``).

* Registrants have no account: they reach their own registration with its reference and PIN (or a signed
  link), through ``rdn.mobility.registration``, never through these rules.
* An office's registrations, results and appointments are its own: the office's caseworkers, officers and
  administrators handle them (analysts see the office's figures only, never a person).
* The office's officers and administrators edit its screening rules and its calendar; caseworkers book,
  reschedule, record attendance and turn a registration into a case referred to a government.
* The secretariat's staff read every office's figures (the dashboard), not the people.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, select

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role
from rdn.mobility.models import Appointment, Office, Registration, ScreeningRule, Slot

HANDLERS = frozenset({Role.admin, Role.officer, Role.caseworker})
KEEPERS = frozenset({Role.admin, Role.officer})
FIGURES = frozenset({Role.admin, Role.officer, Role.caseworker, Role.analyst})


def _office_staff(p: Principal, roles: frozenset[Role]) -> bool:
    return p.org_kind == OrgKind.mobility_office and bool(p.roles & roles)


def _own(p: Principal, obj: Any) -> bool:
    """``obj`` (an office, or anything with an ``org_id`` or an ``office``) belongs to the principal's office."""
    if obj is None:
        return True
    org_id = getattr(obj, "org_id", None)
    return org_id is not None and org_id == p.org_id


@policy.scope_filter(Registration)
def _registrations(p: Principal) -> ColumnElement[bool]:
    if _office_staff(p, HANDLERS):
        return Registration.org_id == p.org_id
    return false()


@policy.scope_filter(Office)
def _offices(p: Principal) -> ColumnElement[bool]:
    if _office_staff(p, FIGURES):
        return Office.org_id == p.org_id
    if p.org_kind == OrgKind.secretariat and p.roles:
        return Office.id.is_not(None)
    return false()


def _office_ids_of(p: Principal) -> Select[Any]:
    return select(Office.id).where(Office.org_id == p.org_id)


@policy.scope_filter(ScreeningRule)
def _rules(p: Principal) -> ColumnElement[bool]:
    if _office_staff(p, HANDLERS):
        return ScreeningRule.office_id.in_(_office_ids_of(p))
    return false()


@policy.scope_filter(Slot)
def _slots(p: Principal) -> ColumnElement[bool]:
    if _office_staff(p, HANDLERS):
        return Slot.office_id.in_(_office_ids_of(p))
    return false()


@policy.scope_filter(Appointment)
def _appointments(p: Principal) -> ColumnElement[bool]:
    if _office_staff(p, HANDLERS):
        return Appointment.registration_id.in_(select(Registration.id).where(Registration.org_id == p.org_id))
    return false()


@policy.rule("mobility.registration.read", scope="read")
def _registration_read(p: Principal, registration: Any) -> bool:
    """The office's caseworkers, officers and administrators see its registrations (the queue, a file)."""
    return _office_staff(p, HANDLERS) and _own(p, registration)


@policy.rule("mobility.registration.handle", scope="write")
def _registration_handle(p: Principal, registration: Any) -> bool:
    """The office's caseworkers, officers and administrators review, merge duplicates, book interviews, record
    attendance, close, and turn a registration into a case referred to a government."""
    return _office_staff(p, HANDLERS) and _own(p, registration)


@policy.rule("mobility.rules.read", scope="read")
def _rules_read(p: Principal, office: Any) -> bool:
    """The office's staff who handle registrations read its screening rules."""
    return _office_staff(p, HANDLERS) and _own(p, office)


@policy.rule("mobility.rules.manage", scope="write")
def _rules_manage(p: Principal, office: Any) -> bool:
    """The office's officers and administrators change its screening rules and its eligibility."""
    return _office_staff(p, KEEPERS) and _own(p, office)


@policy.rule("mobility.slots.manage", scope="write")
def _slots_manage(p: Principal, office: Any) -> bool:
    """The office's caseworkers, officers and administrators keep its calendar of interview slots."""
    return _office_staff(p, HANDLERS) and _own(p, office)


@policy.rule("mobility.figures", scope="read")
def _figures(p: Principal, office: Any) -> bool:
    """An office's staff (analysts included) see its dashboard; the secretariat's staff see every office's."""
    if p.org_kind == OrgKind.secretariat:
        return bool(p.roles)
    return _office_staff(p, FIGURES) and _own(p, office)
