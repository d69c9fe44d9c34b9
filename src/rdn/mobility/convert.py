"""After the interview, a registration becomes a case referred to a government, in one step.

:func:`convert` opens the case for the office (``rdn.cases.service.create_case``: the household from the sealed
names and the clear profile), records the registrant's consent to share given online
(``rdn.cases.sharing.record_consent``) and refers the case to the chosen government for the purpose the
screening's pathway serves (``rdn.cases.sharing.refer``, with the sections the data-sharing agreement allows),
then marks the registration referred. All of it happens in a savepoint of the caller's transaction: when any
step refuses (no agreement in force, the government of a member's nationality, a member the case rules refuse),
nothing is left behind, not even in the caller's session, and the registration is unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases import service as cases
from rdn.cases import sharing
from rdn.cases.models import (
    Agreement,
    Case,
    Category,
    ConsentMethod,
    Priority,
    Purpose,
    ReferralRound,
    Relationship,
    Sex,
)
from rdn.cases.policy import agreement_in_force, case_access
from rdn.core import audit, clock, policy
from rdn.core.errors import FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization, OrgKind
from rdn.mobility import sealed
from rdn.mobility.models import Office, Registration, RegistrationStatus, ScreeningResult, ScreeningRule
from rdn.mobility.queue import OBJECT_TYPE, add_history
from rdn.pathways.models import Pathway, PathwayType

#: Registrations that may be converted: screened (the interview may happen at the office's desk), with an
#: interview booked (converted at the interview), or interviewed.
CONVERTIBLE = frozenset({RegistrationStatus.screened, RegistrationStatus.interview, RegistrationStatus.interviewed})
RELATIONSHIPS = {"principal": Relationship.principal, "spouse": Relationship.spouse, "partner": Relationship.partner,
                 "child": Relationship.child, "parent": Relationship.parent, "sibling": Relationship.sibling,
                 "other": Relationship.other_relative}
SEXES = {"f": Sex.female, "m": Sex.male, "x": Sex.other, "female": Sex.female, "male": Sex.male, "other": Sex.other}


@dataclass(frozen=True)
class Choice:
    """A qualifying screening result the case may be referred under."""

    result: ScreeningResult
    rule: ScreeningRule
    pathway: Pathway | None

    @property
    def purpose(self) -> Purpose:
        return purpose_of(self.pathway)


def purpose_of(pathway: Pathway | None) -> Purpose:
    """What a referral under the pathway asks of the government: family reunification for a family
    reunification pathway, resettlement consideration for every other (humanitarian parole, relocation, labour)."""
    if pathway is not None and pathway.type == PathwayType.family_reunification:
        return Purpose.family_reunification
    return Purpose.resettlement


def choices(session: Session, registration: Registration) -> list[Choice]:
    """The registration's current qualifying screening results, with their rules and pathways."""
    rows = session.execute(
        select(ScreeningResult, ScreeningRule, Pathway)
        .join(ScreeningRule, ScreeningRule.id == ScreeningResult.rule_id)
        .outerjoin(Pathway, Pathway.id == ScreeningRule.pathway_id)
        .where(ScreeningResult.registration_id == registration.id, ScreeningResult.current.is_(True),
               ScreeningResult.qualifies.is_(True))
        .order_by(ScreeningRule.destination, ScreeningRule.name)).all()
    return [Choice(result, rule, pathway) for result, rule, pathway in rows]


def governments(session: Session, office: Office) -> list[tuple[Organization, bool]]:
    """Member governments, each with whether the office has a data-sharing agreement in force with it (those with
    one first)."""
    bound = set(session.scalars(select(Agreement.recipient_org_id).where(
        Agreement.provider_org_id == office.org_id, agreement_in_force())))
    orgs = session.scalars(select(Organization).where(Organization.kind == OrgKind.government,
                                                      Organization.active.is_(True)).order_by(Organization.name))
    return sorted(((o, o.id in bound) for o in orgs), key=lambda pair: (not pair[1], pair[0].name))


def convertible(registration: Registration) -> bool:
    return registration.status in CONVERTIBLE and registration.case_id is None


def _uuid(value: Any, field: str, message: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed(field, message) from None


def _members(registration: Registration, identity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The case's members: the clear profile (relationship, sex, date of birth, nationality) with the sealed names,
    in the same order."""
    names = list(identity.get("members") or [])
    out = []
    for i, member in enumerate((registration.profile or {}).get("members") or []):
        name = names[i] if i < len(names) and isinstance(names[i], Mapping) else {}
        birth = member.get("birth_date") or member.get("birth_year")
        if i == 0 and not birth and registration.birth_date:
            birth = registration.birth_date.isoformat()
        out.append({
            "relationship": RELATIONSHIPS.get(str(member.get("relationship") or "").lower(),
                                              Relationship.principal if i == 0 else Relationship.other_relative),
            "given_name": name.get("given_name") or "", "family_name": name.get("family_name") or "",
            "sex": SEXES.get(str(member.get("sex") or "").lower(), Sex.unknown),
            "date_of_birth": birth, "nationality": member.get("nationality") or registration.nationality,
        })
    return out


def _ties(registration: Registration) -> list[dict[str, str]]:
    countries = [str(c).upper() for c in (registration.profile or {}).get("ties") or []]
    return [{"country": c, "relationship": "close family"}
            for c in dict.fromkeys(countries) if len(c) == 2 and c.isalpha()][:20]


def _categories(purpose: Purpose) -> tuple[Category, Category]:
    """Safe Mobility's referrals rest on the lack of a durable solution where people are; family reunification on
    restoring family unity."""
    if purpose == Purpose.family_reunification:
        return Category.FAM, Category.LAS
    return Category.LAS, Category.LPN


def _as_field(exc: ValidationFailed) -> ValidationFailed:
    """The cases code names the recipient ``recipients[0]``: here it is the government chosen."""
    errors = [FieldError("government_org_id" if e.field.startswith("recipients") else e.field, e.message)
              for e in exc.errors]
    return ValidationFailed(errors=errors)


def convert(session: Session, *, actor: Principal, registration: Registration, rule_id: Any,
            government_org_id: Any, note: str = "") -> tuple[Case, ReferralRound]:
    """Open a case for the registration's household and refer it to ``government_org_id`` under the pathway of the
    qualifying screening result of ``rule_id``. Everything or nothing."""
    policy.require(actor, "mobility.registration.handle", registration)
    policy.require(actor, "case.create")
    # One conversion at a time per registration: a second (a double submit) waits here, then sees it referred.
    session.refresh(registration, with_for_update=True)
    if registration.status == RegistrationStatus.referred or registration.case_id is not None:
        raise ValidationFailed("status", _("This registration was already referred"))
    if registration.status not in CONVERTIBLE:
        raise ValidationFailed("status", _("Only a screened or interviewed registration can be referred"))
    if registration.consent_share is None:
        raise ValidationFailed("consent_share", _("The registrant did not consent to their file being shared with "
                                                  "governments: it cannot be referred"))
    if len(note or "") > 5000:
        raise ValidationFailed("note", _("must be at most %(high)s characters", high=5000))
    rule_key = _uuid(rule_id, "rule_id", _("choose a pathway the registration qualifies for"))
    chosen = next((c for c in choices(session, registration) if c.rule.id == rule_key), None)
    if chosen is None:
        raise ValidationFailed("rule_id", _("the registration does not qualify for this pathway (no current "
                                            "qualifying screening result)"))
    gov_id = _uuid(government_org_id, "government_org_id", _("choose a member government"))
    government = session.get(Organization, gov_id)
    if government is None or not government.active or government.kind != OrgKind.government:
        raise ValidationFailed("government_org_id", _("choose a member government"))
    if chosen.rule.destination and government.country and government.country != chosen.rule.destination:
        raise ValidationFailed("government_org_id", _("this pathway leads to %(country)s: choose its government",
                                                      country=chosen.rule.destination))
    office = session.get(Office, registration.office_id)
    assert office is not None
    purpose = chosen.purpose
    agreement = sharing.agreement_for(session, office.org_id, government.id, purpose)
    # Without an agreement in force, the cases code says why it cannot refer (after the case was begun).
    sections = list(agreement.sections) if agreement is not None else ["identity"]
    primary, secondary = _categories(purpose)
    now = clock.now()
    try:
        with session.begin_nested():
            identity = sealed.identity_of(session, registration)
            audit.record_read(session, actor=actor, object_type=OBJECT_TYPE, object_id=registration.id,
                              fields=["identity"], purpose="mobility.registration.convert")
            case = cases.create_case(
                session, actor=actor,
                case={"current_country": office.country, "current_location": "", "category_primary": primary,
                      "category_secondary": secondary, "processing_priority": Priority.normal,
                      "submission_priority": Priority.normal},
                members=_members(registration, identity), family_ties=_ties(registration),
                preferences={"countries": [chosen.rule.destination] if chosen.rule.destination else [],
                             "note": _("Safe Mobility: %(rule)s", rule=chosen.rule.name)[:500]},
                note=_("Referred by the Safe Mobility office %(office)s (registration %(reference)s)",
                       office=office.name, reference=registration.reference))
            access = case_access(session, actor, case)
            sharing.record_consent(
                session, actor=actor, access=access, recipient_org_id=government.id, purpose=purpose,
                method=ConsentMethod.digital,
                note=_("Given online when registering with the Safe Mobility office, %(date)s",
                       date=registration.consent_share.date().isoformat()))
            round_ = sharing.refer(session, actor=actor, access=access, recipients=[str(government.id)],
                                   purpose=purpose, sections=sections, note=note)
            registration.status, registration.status_since = RegistrationStatus.referred, now
            registration.case_id, registration.referred_org_id = case.id, government.id
            registration.referred_pathway_id, registration.referred_at = chosen.rule.pathway_id, now
            registration.updated_at = now
            add_history(registration, RegistrationStatus.referred, "staff", case=str(case.id),
                        government=str(government.id))
            audit.record(session, action="mobility.registration.convert", actor=actor, object_type=OBJECT_TYPE,
                         object_id=registration.id,
                         details={"case": str(case.id), "number": case.number, "rule": str(chosen.rule.id),
                                  "pathway": str(chosen.rule.pathway_id or ""), "government": str(government.id),
                                  "purpose": purpose.value, "round": str(round_.id)})
            session.flush()
    except ValidationFailed as exc:
        raise _as_field(exc) from None
    return case, round_
