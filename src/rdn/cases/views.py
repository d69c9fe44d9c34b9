"""What a caller is shown of a case: one builder for pages, the API and exports, section by section.

A field appears only if its section is in the caller's ``CaseAccess.sections``; sealed sections are never
built here (they are opened by ``service.read_sensitive`` after a step-up, and audited).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from rdn.cases import service, sharing
from rdn.cases.models import SENSITIVE, Case, Member, Section
from rdn.cases.policy import CaseAccess, identity_visible
from rdn.cases.search import overdue
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization


def summary(case: Case, *, owner_name: str | None = None) -> dict[str, Any]:
    return {
        "id": case.id, "number": case.number, "owner_org_id": case.owner_org_id, "owner_name": owner_name,
        "stage": case.stage, "stage_since": case.stage_since, "category_primary": case.category_primary,
        "category_secondary": case.category_secondary, "processing_priority": case.processing_priority,
        "submission_priority": case.submission_priority, "size": case.size,
        "current_country": case.current_country, "opened_at": case.opened_at, "submitted_at": case.submitted_at,
        "departed_at": case.departed_at, "arrived_at": case.arrived_at,
        "target_submission_on": case.target_submission_on, "target_departure_on": case.target_departure_on,
        "due_at": case.due_at, "overdue": overdue(case), "version": case.version, "updated_at": case.updated_at,
    }


def member_view(member: Member, sections: frozenset[Section]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": member.id, "position": member.position}
    if Section.identity in sections:
        out.update(relationship=member.relationship, given_name=member.given_name, family_name=member.family_name,
                   other_names=list(member.other_names), sex=member.sex, birth_year=member.birth_year,
                   birth_date=member.birth_date, nationality=member.nationality, stateless=member.stateless)
    if Section.background in sections:
        out.update(languages=list(member.languages), education=member.education, occupation=member.occupation)
    if Section.needs in sections:
        out["specific_needs"] = list(member.specific_needs)
    return out


def case_view(session: Session, actor: Principal, access: CaseAccess) -> dict[str, Any]:
    """The case as ``actor`` may see it."""
    case, sections = access.case, access.sections
    owner = session.get(Organization, case.owner_org_id)
    out = summary(case, owner_name=owner.name if owner else None)
    if Section.identity in sections:
        out["principal_name"] = case.principal_name
        out["previous_numbers"] = list(case.previous_numbers)
    out["sections"] = sorted(s.value for s in sections)
    out["sensitive_sections"] = sorted(s.value for s in sections & SENSITIVE)
    if sections & {Section.identity, Section.background, Section.needs}:
        out["members"] = [member_view(m, sections) for m in service.members_of(session, case)]
    if Section.location in sections:
        out["current_location"] = case.current_location
    if Section.family in sections:
        out["family_ties"] = [{"id": t.id, "country": t.country, "city": t.city, "relationship": t.relationship,
                               "note": t.note} for t in service.ties_of(session, case)]
        out["links"] = [{"id": link.id, "case_id": other.id if other else None,
                         "number": other.number if other else None, "reason": link.reason}
                        for link, other in service.linked_cases(session, actor, case)]
    if Section.preferences in sections:
        out["preferences"] = dict(case.preferences or {})
    if Section.pipeline in sections:
        out["history"] = [{"from": e.from_stage, "to": e.to_stage, "note": e.note, "at": e.at, "by": e.actor_label}
                          for e in service.history(session, case)]
        out["checklist"] = [{"item": e.item, "status": e.status, "note": e.note, "updated_at": e.updated_at}
                            for e in service.checklist(session, case)]
    out["referrals"] = [referral_view(r) for r in sharing.referrals_of(session, actor, access)]
    return out


def referral_view(r: Any) -> dict[str, Any]:
    return {"id": r.id, "case_id": r.case_id, "sender_org_id": r.sender_org_id,
            "recipient_org_id": r.recipient_org_id, "agreement_id": r.agreement_id, "purpose": r.purpose,
            "sections": list(r.sections), "status": r.status, "reason": r.reason, "outcome": r.outcome,
            "outcome_reason": r.outcome_reason, "consent_recorded": r.consent_id is not None,
            "consent_overridden": bool(r.consent_override_reason),
            "nationality_overridden": bool(r.nationality_override_reason), "note": r.note,
            "created_at": r.created_at, "updated_at": r.updated_at, "closed_at": r.closed_at}


def list_items(session: Session, actor: Principal, cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Rows of a list: the summary, and the principal applicant's name where the caller sees identities
    (access for the whole page is worked out in one query)."""
    identity = identity_visible(session, actor, cases)
    rows = []
    for case in cases:
        out = summary(case)
        out["principal_name"] = case.principal_name if case.id in identity else None
        out["owned"] = case.owner_org_id == actor.org_id
        rows.append(out)
    return rows
