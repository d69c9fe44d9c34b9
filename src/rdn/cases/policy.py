"""Who may see and do what with cases, referrals and agreements (registered with ``rdn.core.policy``).

Need-to-know, per section (``rdn.cases.models.Section``):

* The **owning organization** (an agency, NGO, Safe Mobility office or government): caseworkers see every
  section, member-confidential notes included; officers and senior officials every section but those
  notes; administrators and analysts the summary only (no personal data).
* A **recipient government** sees a case while a referral to it is live (pending, in progress, accepted or
  done) under a data-sharing agreement in force: its officers, caseworkers and senior officials see the
  summary plus the sections both the referral and the agreement list; its administrators and analysts the
  summary. Never the member-confidential notes. A revoked or rejected referral, or an agreement that ended
  or expired, shows nothing from the very next request.
* A government whose country is a member's nationality never sees the case, even with a referral, unless
  the referral carries the sending administrator's audited override.
* Sensitive sections need a recent step-up (TOTP again) before they are shown or exported, and a browser
  session: API tokens never read them.

Everything else (the secretariat, observers, sponsor groups, other governments) sees nothing: the same 404
as for a case that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from rdn.cases import shares
from rdn.cases.models import (
    LIVE_REFERRAL,
    SENSITIVE,
    Agreement,
    AgreementStatus,
    Case,
    Member,
    Purpose,
    Referral,
    ReferralStatus,
    Section,
    Side,
    Transfer,
)
from rdn.core import clock, policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role

OWNER_KINDS = frozenset({OrgKind.government, OrgKind.agency, OrgKind.ngo, OrgKind.mobility_office})
STAFF = frozenset({Role.admin, Role.senior_official, Role.officer, Role.caseworker, Role.analyst})
HANDLERS = frozenset({Role.caseworker, Role.officer, Role.senior_official})  # see personal data
WRITERS = frozenset({Role.caseworker, Role.officer})  # change cases
LEADERS = frozenset({Role.admin, Role.senior_official})

ALL_BUT_CONFIDENTIAL = frozenset(Section) - {Section.confidential}
SUMMARY = frozenset({Section.summary})


def case_staff(p: Principal) -> bool:
    return p.org_kind in OWNER_KINDS and bool(p.roles & STAFF)


def owner_sections(p: Principal) -> frozenset[Section]:
    """What the owning organization's people see, by role."""
    sections: frozenset[Section] = frozenset()
    if Role.caseworker in p.roles:
        sections = frozenset(Section)
    elif p.roles & {Role.officer, Role.senior_official}:
        sections = ALL_BUT_CONFIDENTIAL
    elif p.roles & STAFF:
        sections = SUMMARY
    return sections


def recipient_sections(p: Principal, referral: Referral, agreement: Agreement) -> frozenset[Section]:
    if not p.roles & HANDLERS:
        return SUMMARY if p.roles & STAFF else frozenset()
    shared = {Section(s) for s in referral.sections} & {Section(s) for s in agreement.sections}
    return SUMMARY | (shared - {Section.confidential})


def agreement_in_force(today: Any = None) -> ColumnElement[bool]:
    today = today or clock.now().date()
    return and_(Agreement.status == AgreementStatus.active,
                or_(Agreement.valid_until.is_(None), Agreement.valid_until >= today))


def live_referrals_to(p: Principal) -> Any:
    """Referrals through which ``p``'s organization sees cases now (a select of Referral rows)."""
    nationality_ok: ColumnElement[bool] = Referral.nationality_override_reason != ""
    if p.org and p.org.country:
        nationality_ok = or_(nationality_ok, ~exists(select(Member.id).where(
            Member.case_id == Referral.case_id, Member.nationality == p.org.country)))
    return (select(Referral).join(Agreement, Agreement.id == Referral.agreement_id)
            .where(Referral.recipient_org_id == p.org_id, Referral.status.in_(LIVE_REFERRAL),
                   agreement_in_force(), nationality_ok))


@policy.scope_filter(Case)
def _cases_visible(p: Principal) -> ColumnElement[bool]:
    if not case_staff(p):
        return false()
    conditions = [Case.owner_org_id == p.org_id]
    if p.org_kind == OrgKind.government:
        # An uncorrelated IN (not EXISTS per case): the database hashes the organization's live referrals once
        # instead of probing them for every case of the network.
        conditions.append(Case.id.in_(live_referrals_to(p).with_only_columns(Referral.case_id)))
    return or_(*conditions)


def listing_scope(p: Principal) -> ColumnElement[bool]:
    """``_cases_visible`` as lists apply it: the cases shared with a government read from ``case_shares``
    (kept in step with the referrals in every flush) instead of working out its live referrals each time."""
    if not case_staff(p):
        return false()
    conditions = [Case.owner_org_id == p.org_id]
    if p.org_kind == OrgKind.government and p.org_id is not None:
        conditions.append(Case.id.in_(shares.visible_ids(p.org_id, clock.now().date())))
    return or_(*conditions)


@dataclass(frozen=True)
class CaseAccess:
    """A case and what the caller may see of it and why."""

    case: Case
    owner: bool
    sections: frozenset[Section]
    referrals: tuple[Referral, ...] = ()  # live referrals of the case to the caller's organization

    def sees(self, section: Section | str) -> bool:
        return Section(section) in self.sections

    @property
    def sensitive(self) -> frozenset[Section]:
        return self.sections & SENSITIVE

    @property
    def accepted_for_resettlement(self) -> bool:
        return any(r.status == ReferralStatus.accepted and r.purpose == Purpose.resettlement
                   for r in self.referrals)


def case_access(session: Session, p: Principal, case: Case) -> CaseAccess:
    """Compute what ``p`` may see of ``case`` (which the caller reached through the scoped query)."""
    if case.owner_org_id == p.org_id:
        return CaseAccess(case, True, owner_sections(p))
    sections: set[Section] = set()
    referrals: list[Referral] = []
    rows = session.execute(
        live_referrals_to(p).add_columns(Agreement).where(Referral.case_id == case.id)
    ).all()
    for referral, agreement in rows:
        referrals.append(referral)
        sections |= recipient_sections(p, referral, agreement)
    return CaseAccess(case, False, frozenset(sections), tuple(referrals))


def case_accesses(session: Session, p: Principal, cases: Sequence[Case]) -> dict[Any, CaseAccess]:
    """``case_access`` for a page of cases at once: one query for all the cases ``p`` does not own."""
    out: dict[Any, CaseAccess] = {}
    others = [c.id for c in cases if c.owner_org_id != p.org_id]
    found: dict[Any, tuple[set[Section], list[Referral]]] = {case_id: (set(), []) for case_id in others}
    if others:
        rows = session.execute(live_referrals_to(p).add_columns(Agreement).where(Referral.case_id.in_(others)))
        for referral, agreement in rows:
            sections, referrals = found[referral.case_id]
            referrals.append(referral)
            sections |= recipient_sections(p, referral, agreement)
    for case in cases:
        if case.owner_org_id == p.org_id:
            out[case.id] = CaseAccess(case, True, owner_sections(p))
        else:
            sections, referrals = found[case.id]
            out[case.id] = CaseAccess(case, False, frozenset(sections), tuple(referrals))
    return out


def identity_visible(session: Session, p: Principal, cases: Sequence[Case]) -> set[Any]:
    """The ids of ``cases`` (all visible to ``p``) whose identity section ``p`` sees: what a list row needs of
    ``case_accesses``, in one light query for the cases ``p`` does not own."""
    out = {c.id for c in cases if c.owner_org_id == p.org_id} if Section.identity in owner_sections(p) else set()
    others = [c.id for c in cases if c.owner_org_id != p.org_id]
    if others and p.roles & HANDLERS:
        rows = session.execute(live_referrals_to(p).with_only_columns(
            Referral.case_id, Referral.sections, Agreement.sections).where(Referral.case_id.in_(others)))
        out |= {case_id for case_id, mine, agreed in rows if Section.identity in set(mine) & set(agreed)}
    return out


def access_case(session: Session, p: Principal | None, case_id: Any, action: str | None = None) -> CaseAccess:
    """The case, if ``p`` may see it (and do ``action``), else the same 404 as a missing one."""
    case = policy.access(session, p, Case, case_id)
    assert p is not None
    access = case_access(session, p, case)
    if not access.sections:
        raise policy.NotFound()
    if action is not None:
        policy.require(p, action, access)
    return access


# Rules --------------------------------------------------------------------------------------------------------


@policy.rule("case.read", scope="read")
def _read(p: Principal, _obj: Any) -> bool:
    """Staff of organizations that hold or receive cases (each case is reached through the scoped query)."""
    return case_staff(p)


@policy.rule("case.create", scope="write")
def _create(p: Principal, _obj: Any) -> bool:
    """Caseworkers and officers open cases for their organization (and import them)."""
    return p.org_kind in OWNER_KINDS and bool(p.roles & WRITERS)


@policy.rule("case.update", scope="write")
def _update(p: Principal, a: CaseAccess) -> bool:
    """The owner's caseworkers and officers change a case: its members, ties, preferences, priorities."""
    return a.owner and bool(p.roles & WRITERS)


@policy.rule("case.stage", scope="write")
def _stage(p: Principal, a: CaseAccess) -> bool:
    """The owner's caseworkers and officers move the pipeline; a government that accepted the case for
    resettlement moves its own (State-side) stages."""
    return (a.owner and bool(p.roles & WRITERS)) or (a.accepted_for_resettlement and bool(p.roles & HANDLERS))


@policy.rule("case.checklist", scope="write")
def _checklist(p: Principal, a: CaseAccess) -> bool:
    """The pre-departure checklist: the owner's caseworkers and officers, or the accepting government."""
    return _stage(p, a)


@policy.rule("case.sensitive.write", scope="write")
def _sensitive_write(p: Principal, a: CaseAccess) -> bool:
    """The owner's caseworkers and officers write the sealed sections (confidential notes: caseworkers)."""
    return a.owner and bool(p.roles & WRITERS)


@policy.rule("case.confidential.write", scope="write")
def _confidential_write(p: Principal, a: CaseAccess) -> bool:
    """Member-confidential notes are written by the owner's caseworkers only."""
    return a.owner and Role.caseworker in p.roles


@policy.rule("case.refer", scope="write")
def _refer(p: Principal, a: CaseAccess) -> bool:
    """The owner's caseworkers, officers and senior officials refer a case and record consent."""
    return a.owner and bool(p.roles & HANDLERS)


@policy.rule("case.consent_override", scope="write")
def _consent_override(p: Principal, a: CaseAccess) -> bool:
    """Referring without recorded consent: the owner's senior officials and administrators, with a reason."""
    return a.owner and bool(p.roles & LEADERS)


@policy.rule("case.nationality_override", scope="admin")
def _nationality_override(p: Principal, a: CaseAccess) -> bool:
    """Referring a case to its members' country of nationality: the owner's administrator, with a reason."""
    return a.owner and Role.admin in p.roles


@policy.rule("case.transfer", scope="write")
def _transfer(p: Principal, a: CaseAccess) -> bool:
    """Handing the case to another organization: the owner's senior officials and administrators."""
    return a.owner and bool(p.roles & LEADERS)


@policy.rule("case.log", scope="read")
def _log(p: Principal, a: CaseAccess) -> bool:
    """The owning organization sees who viewed or changed what (analysts excepted)."""
    return a.owner and bool(p.roles & (HANDLERS | {Role.admin}))


@policy.rule("case.export", scope="read")
def _export(p: Principal, _obj: Any) -> bool:
    """Exports: anyone who may list cases; each holds only what its exporter may see."""
    return case_staff(p)


# Referrals -----------------------------------------------------------------------------------------------------


def referral_side(p: Principal, r: Referral) -> Side | None:
    if not case_staff(p):
        return None
    if r.sender_org_id == p.org_id:
        return Side.sender
    if r.recipient_org_id == p.org_id:
        return Side.recipient
    return None


@policy.scope_filter(Referral)
def _referrals_visible(p: Principal) -> ColumnElement[bool]:
    if not case_staff(p):
        return false()
    return or_(Referral.sender_org_id == p.org_id, Referral.recipient_org_id == p.org_id)


@policy.rule("referral.read", scope="read")
def _referral_read(p: Principal, r: Referral | None) -> bool:
    """Staff of the sending and the receiving organization (the case's data follows the case's rules)."""
    return case_staff(p) if r is None else referral_side(p, r) is not None


@policy.rule("referral.respond", scope="write")
def _referral_respond(p: Principal, r: Referral) -> bool:
    """The receiving government's caseworkers, officers and senior officials take a referral forward."""
    return referral_side(p, r) == Side.recipient and bool(p.roles & HANDLERS)


@policy.rule("referral.revoke", scope="write")
def _referral_revoke(p: Principal, r: Referral) -> bool:
    """The sender's caseworkers, officers and senior officials revoke or close a referral."""
    return referral_side(p, r) == Side.sender and bool(p.roles & HANDLERS)


@policy.rule("referral.message", scope="write")
def _referral_message(p: Principal, r: Referral) -> bool:
    """Either side's caseworkers, officers and senior officials write on a live referral's thread."""
    return referral_side(p, r) is not None and bool(p.roles & HANDLERS) and r.status in LIVE_REFERRAL


# Agreements ----------------------------------------------------------------------------------------------------


def agreement_party(p: Principal, a: Agreement) -> bool:
    return p.org_id in (a.provider_org_id, a.recipient_org_id)


@policy.scope_filter(Agreement)
def _agreements_visible(p: Principal) -> ColumnElement[bool]:
    if not case_staff(p):
        return false()
    return or_(Agreement.provider_org_id == p.org_id, Agreement.recipient_org_id == p.org_id)


@policy.rule("agreement.read", scope="read")
def _agreement_read(p: Principal, a: Agreement | None) -> bool:
    """Staff of either party."""
    return case_staff(p) if a is None else case_staff(p) and agreement_party(p, a)


@policy.rule("agreement.propose", scope="admin")
def _agreement_propose(p: Principal, _obj: Any) -> bool:
    """An administrator proposes an agreement between their organization and another."""
    return p.org_kind in OWNER_KINDS and Role.admin in p.roles


@policy.rule("agreement.decide", scope="admin")
def _agreement_decide(p: Principal, a: Agreement) -> bool:
    """The other party's administrator accepts or declines a proposal; the proposer may withdraw it."""
    return Role.admin in p.roles and agreement_party(p, a)


@policy.rule("agreement.end", scope="admin")
def _agreement_end(p: Principal, a: Agreement) -> bool:
    """Either party's administrator ends an agreement in force."""
    return Role.admin in p.roles and agreement_party(p, a)



# Transfers -----------------------------------------------------------------------------------------------------


@policy.scope_filter(Transfer)
def _transfers_visible(p: Principal) -> ColumnElement[bool]:
    if not case_staff(p):
        return false()
    return or_(Transfer.from_org_id == p.org_id, Transfer.to_org_id == p.org_id)


@policy.rule("transfer.decide", scope="write")
def _transfer_decide(p: Principal, t: Transfer) -> bool:
    """The receiving organization's senior officials and administrators accept or decline a transfer;
    the sending organization's cancel it."""
    return p.org_id in (t.from_org_id, t.to_org_id) and bool(p.roles & LEADERS)
