"""Sharing cases between organizations: data-sharing agreements, consent, referrals and ownership transfers.

* An **agreement** is proposed by one party's administrator and accepted by the other's; it names the
  provider and the recipient (a member government), the purposes and the sections that may flow. Once in
  force it does not change: to change it, end it and agree a new one. Ending it cuts access at once.
* **Consent** is recorded per recipient and purpose; a referral needs one in force, or an override with a
  reason by a senior official or administrator of the sender. Withdrawing consent revokes the referrals
  that relied on it.
* A **referral** asks one government to consider a case for a purpose, showing the sections the sender
  chose among those the agreement allows. Several governments may be asked in parallel, or in turn (the
  next when the one before rejects). Its states and who moves them are ``REFERRAL_TRANSITIONS``.
* A **transfer** hands the case's ownership to another organization; it is asked by the owner and accepted
  by the receiver, and is never implied by a referral.

Notifications (email to the other side's case handlers, and webhooks) go through the outbox and carry no
personal data: a case number and a link.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.models import (
    AGREEMENT_STATUS_NAMES,
    LIVE_REFERRAL,
    PURPOSE_NAMES,
    REFERRAL_STATUS_NAMES,
    REFERRAL_TRANSITIONS,
    SECTION_NAMES,
    SHAREABLE,
    TRANSFER_STATUS_NAMES,
    Agreement,
    AgreementStatus,
    Case,
    Consent,
    ConsentMethod,
    Member,
    Outcome,
    Purpose,
    Referral,
    ReferralMessage,
    ReferralRound,
    ReferralStatus,
    RoundMode,
    Section,
    Side,
    Transfer,
    TransferStatus,
)
from rdn.cases.policy import HANDLERS, LEADERS, OWNER_KINDS, CaseAccess, access_case, referral_side
from rdn.cases.service import reassign_owner
from rdn.config import get_settings
from rdn.core import audit, clock, events, i18n, policy, webhooks
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import send_email
from rdn.core.tenancy import Membership, Organization, OrgKind, Role

MAX_RECIPIENTS = 10
_STATUS_WORDS: dict[str, str] = {
    **{k.value: v for k, v in TRANSFER_STATUS_NAMES.items()},
    **{k.value: v for k, v in AGREEMENT_STATUS_NAMES.items()},
    **{k.value: v for k, v in REFERRAL_STATUS_NAMES.items()},
}

AGREEMENT_TRANSITIONS: dict[AgreementStatus, frozenset[AgreementStatus]] = {
    AgreementStatus.proposed: frozenset({AgreementStatus.active, AgreementStatus.declined,
                                         AgreementStatus.withdrawn}),
    AgreementStatus.active: frozenset({AgreementStatus.ended}),
    AgreementStatus.declined: frozenset(),
    AgreementStatus.withdrawn: frozenset(),
    AgreementStatus.ended: frozenset(),
}


def _enum(kind: type[Any], value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValidationFailed(field, _("must be one of %(values)s", values=", ".join(m.value for m in kind))) \
            from None


def _reason(value: str | None, field: str = "reason", *, required: bool = True, high: int = 1000) -> str:
    text = (value or "").strip()
    if required and len(text) < 3:
        raise ValidationFailed(field, _("give a reason (at least %(low)s characters)", low=3))
    if len(text) > high:
        raise ValidationFailed(field, _("must be at most %(high)s characters", high=high))
    return text


def _org(session: Session, org_id: Any, field: str) -> Organization:
    try:
        key = org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
    except ValueError:
        raise ValidationFailed(field, _("is not an organization")) from None
    org = session.get(Organization, key)
    if org is None or not org.active:
        raise ValidationFailed(field, _("is not an active organization"))
    return org


def _notify(session: Session, *, org_id: uuid.UUID, roles: frozenset[Role], subject: str, text: str,
            path: str, event_type: str, data: dict[str, Any]) -> None:
    """Email the organization's people in ``roles`` (each in their language), emit a webhook, and announce it
    on the organization's live channel (its lists and home card refresh)."""
    people = session.execute(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role.in_(list(roles)), User.active.is_(True)).distinct()
    ).scalars().all()
    link = f"{get_settings().base_url}{path}"
    for person in people:
        with i18n.using(person.locale):
            words = {**data, "status": _(_STATUS_WORDS[data["status"]]) if "status" in data else ""}
            send_email(session, to=person.email, org_id=org_id, subject=_(subject, **words),
                       text=_(text, **words) + "\n\n" + link + "\n")
    webhooks.emit(session, org_id=org_id, event_type=event_type, data={**data, "url": link})
    events.publish(session, f"org:{org_id}", event_type, data)


# Agreements ---------------------------------------------------------------------------------------------------


def _sections(values: Sequence[str], field: str = "sections") -> list[str]:
    chosen = []
    for value in values:
        section = _enum(Section, value, field)
        if section not in SHAREABLE:
            raise ValidationFailed(field, _("%(section)s cannot be shared", section=_(SECTION_NAMES[section])))
        if section.value not in chosen:
            chosen.append(section.value)
    if not chosen:
        raise ValidationFailed(field, _("choose at least one section"))
    return sorted(chosen, key=lambda s: list(Section).index(Section(s)))


def propose_agreement(session: Session, *, actor: Principal, other_org_id: Any, we_provide: bool, title: str,
                      purposes: Sequence[str], sections: Sequence[str], reference: str = "",
                      valid_until: date | None = None) -> Agreement:
    """Propose an agreement between the actor's organization and another; the other's administrator accepts."""
    policy.require(actor, "agreement.propose")
    assert actor.org_id is not None
    other = _org(session, other_org_id, "other_org_id")
    if other.id == actor.org_id or other.kind not in OWNER_KINDS:
        raise ValidationFailed("other_org_id", _("must be another organization that handles cases"))
    provider_id, recipient_id = (actor.org_id, other.id) if we_provide else (other.id, actor.org_id)
    recipient = session.get(Organization, recipient_id)
    assert recipient is not None
    if recipient.kind != OrgKind.government:
        raise ValidationFailed("other_org_id" if we_provide else "we_provide",
                               _("the recipient of cases must be a member government"))
    title = _reason(title, "title", high=200)
    chosen_purposes = sorted({_enum(Purpose, p, "purposes").value for p in purposes})
    if not chosen_purposes:
        raise ValidationFailed("purposes", _("choose at least one purpose"))
    if valid_until is not None and valid_until < clock.now().date():
        raise ValidationFailed("valid_until", _("is in the past"))
    agreement = Agreement(provider_org_id=provider_id, recipient_org_id=recipient_id, title=title,
                          reference=_reason(reference, "reference", required=False, high=100),
                          purposes=chosen_purposes, sections=_sections(sections), valid_until=valid_until,
                          status=AgreementStatus.proposed, proposed_by_org_id=actor.org_id,
                          proposed_by_user_id=actor.user_id, proposed_at=clock.now())
    session.add(agreement)
    session.flush()
    audit.record(session, action="agreement.propose", actor=actor, object_type="agreement", object_id=agreement.id,
                 details={"provider": str(provider_id), "recipient": str(recipient_id),
                          "sections": agreement.sections, "purposes": agreement.purposes})
    _notify(session, org_id=other.id, roles=frozenset({Role.admin}),
            subject=N_("RDN: a data-sharing agreement is proposed to you"),
            text=N_("A data-sharing agreement is waiting for your decision."), path=f"/agreements/{agreement.id}",
            event_type="agreement.proposed", data={"agreement_id": str(agreement.id)})
    return agreement


def _move_agreement(agreement: Agreement, new: AgreementStatus) -> AgreementStatus:
    old = AgreementStatus(agreement.status)
    if new not in AGREEMENT_TRANSITIONS[old]:
        raise Conflict(_("An agreement that is %(old)s cannot become %(new)s",
                         old=_(AGREEMENT_STATUS_NAMES[old]), new=_(AGREEMENT_STATUS_NAMES[new])))
    agreement.status = new
    return old


def decide_agreement(session: Session, *, actor: Principal, agreement: Agreement,
                     decision: AgreementStatus | str, reason: str = "") -> Agreement:
    """Accept (``active``) or decline a proposal (the other party), or withdraw it (the proposer)."""
    new = _enum(AgreementStatus, decision, "decision")
    policy.require(actor, "agreement.decide", agreement)
    proposer = agreement.proposed_by_org_id == actor.org_id
    if new == AgreementStatus.withdrawn and not proposer:
        raise policy.Forbidden()
    if new in (AgreementStatus.active, AgreementStatus.declined) and proposer:
        raise Conflict(_("The other party decides on a proposal"))
    if new == AgreementStatus.ended:
        return end_agreement(session, actor=actor, agreement=agreement, reason=reason)
    reason = _reason(reason, required=False, high=500)  # before anything changes
    _move_agreement(agreement, new)
    agreement.decided_by_user_id, agreement.decided_at = actor.user_id, clock.now()
    if new != AgreementStatus.active:
        agreement.end_reason = reason
    audit.record(session, action=f"agreement.{new.value}", actor=actor, object_type="agreement",
                 object_id=agreement.id)
    _tell_other_party(session, actor, agreement)
    return agreement


def _tell_other_party(session: Session, actor: Principal, agreement: Agreement) -> None:
    other = agreement.recipient_org_id if agreement.provider_org_id == actor.org_id else agreement.provider_org_id
    _notify(session, org_id=other, roles=frozenset({Role.admin}),
            subject=N_("RDN: a data-sharing agreement changed"),
            text=N_("A data-sharing agreement is now: %(status)s."), path=f"/agreements/{agreement.id}",
            event_type="agreement.updated", data={"agreement_id": str(agreement.id), "status": agreement.status})


def end_agreement(session: Session, *, actor: Principal, agreement: Agreement, reason: str) -> Agreement:
    """End an agreement in force: the referrals made under it stop showing anything from the next request."""
    policy.require(actor, "agreement.end", agreement)
    reason = _reason(reason, high=500)
    _move_agreement(agreement, AgreementStatus.ended)
    agreement.ended_by_user_id, agreement.ended_at, agreement.end_reason = actor.user_id, clock.now(), reason
    audit.record(session, action="agreement.end", actor=actor, object_type="agreement", object_id=agreement.id)
    _tell_other_party(session, actor, agreement)
    return agreement


def agreement_for(session: Session, provider_id: uuid.UUID, recipient_id: uuid.UUID,
                  purpose: Purpose) -> Agreement | None:
    """The agreement in force from provider to recipient covering ``purpose`` (the latest accepted)."""
    today = clock.now().date()
    rows = session.scalars(select(Agreement).where(
        Agreement.provider_org_id == provider_id, Agreement.recipient_org_id == recipient_id,
        Agreement.status == AgreementStatus.active).order_by(Agreement.decided_at.desc())).all()
    for row in rows:
        if purpose.value in row.purposes and (row.valid_until is None or row.valid_until >= today):
            return row
    return None


# Consent ------------------------------------------------------------------------------------------------------


def record_consent(session: Session, *, actor: Principal, access: CaseAccess, recipient_org_id: Any,
                   purpose: Purpose | str, method: ConsentMethod | str, given_by_member_id: Any = None,
                   note: str = "") -> Consent:
    policy.require(actor, "case.refer", access)
    recipient = _org(session, recipient_org_id, "recipient_org_id")
    purpose = _enum(Purpose, purpose, "purpose")
    method = _enum(ConsentMethod, method, "method")
    member_id = None
    if given_by_member_id:
        try:
            member_id = uuid.UUID(str(given_by_member_id))
        except ValueError:
            raise ValidationFailed("given_by_member_id", _("is not a member of this case")) from None
        member = session.get(Member, member_id)
        if member is None or member.case_id != access.case.id:
            raise ValidationFailed("given_by_member_id", _("is not a member of this case"))
    consent = Consent(case_id=access.case.id, recipient_org_id=recipient.id, purpose=purpose, method=method,
                      given_by_member_id=member_id, note=_reason(note, "note", required=False, high=500),
                      recorded_by_user_id=actor.user_id, recorded_at=clock.now())
    session.add(consent)
    session.flush()
    audit.record(session, action="case.consent", actor=actor, object_type="case", object_id=access.case.id,
                 details={"consent": str(consent.id), "recipient": str(recipient.id), "purpose": purpose.value})
    return consent


def active_consent(session: Session, case_id: uuid.UUID, recipient_id: uuid.UUID, purpose: Purpose) -> Consent | None:
    return session.scalars(select(Consent).where(
        Consent.case_id == case_id, Consent.recipient_org_id == recipient_id, Consent.purpose == purpose,
        Consent.withdrawn_at.is_(None)).order_by(Consent.recorded_at.desc())).first()


def consents_of(session: Session, case: Case) -> list[Consent]:
    return list(session.scalars(select(Consent).where(Consent.case_id == case.id).order_by(Consent.recorded_at)))


def withdraw_consent(session: Session, *, actor: Principal, access: CaseAccess, consent_id: Any,
                     reason: str) -> Consent:
    """The family withdrew consent: it ends, and the live referrals that relied on it are revoked."""
    policy.require(actor, "case.refer", access)
    consent = session.get(Consent, consent_id)
    if consent is None or consent.case_id != access.case.id:
        raise policy.NotFound()
    if consent.withdrawn_at is not None:
        raise Conflict(_("This consent was already withdrawn"))
    reason = _reason(reason, high=500)  # before anything changes
    consent.withdrawn_at, consent.withdrawn_by_user_id = clock.now(), actor.user_id
    consent.withdrawn_reason = reason
    audit.record(session, action="case.consent.withdraw", actor=actor, object_type="case",
                 object_id=access.case.id, details={"consent": str(consent.id)})
    for referral in session.scalars(select(Referral).where(Referral.consent_id == consent.id,
                                                           Referral.status.in_(LIVE_REFERRAL))):
        _set_status(session, actor, referral, ReferralStatus.revoked,
                    reason=_("Consent was withdrawn"), side=Side.sender)
    return consent


# Referrals ----------------------------------------------------------------------------------------------------


def _nationalities(session: Session, case_id: uuid.UUID) -> set[str]:
    return {n for n in session.scalars(select(Member.nationality).where(Member.case_id == case_id)) if n}


def _check_recipient(session: Session, access: CaseAccess, recipient: Organization, purpose: Purpose,
                     sections: list[str], *, consent_override: bool, nationality_override: bool
                     ) -> tuple[Agreement | None, Consent | None, str | None]:
    """(agreement, consent, problem): what a referral to ``recipient`` would rest on, or why it cannot be."""
    case = access.case
    if recipient.kind != OrgKind.government or recipient.id == case.owner_org_id:
        return None, None, _("must be a member government other than the case's owner")
    if recipient.country and recipient.country in _nationalities(session, case.id) and not nationality_override:
        return None, None, _("%(org)s is the government of a member's country of nationality: only an "
                             "administrator can override this, with a reason", org=recipient.name)
    agreement = agreement_for(session, case.owner_org_id, recipient.id, purpose)
    if agreement is None:
        return None, None, _("there is no data-sharing agreement in force with %(org)s for this purpose",
                             org=recipient.name)
    missing = [s for s in sections if s not in agreement.sections]
    if missing:
        return None, None, _("the agreement with %(org)s does not allow: %(sections)s", org=recipient.name,
                             sections=", ".join(_(SECTION_NAMES[Section(s)]) for s in missing))
    consent = active_consent(session, case.id, recipient.id, purpose)
    if consent is None and not consent_override:
        return None, None, _("the family's consent to share with %(org)s for this purpose is not recorded",
                             org=recipient.name)
    live = session.scalars(select(Referral.id).where(Referral.case_id == case.id,
                                                     Referral.recipient_org_id == recipient.id,
                                                     Referral.purpose == purpose,
                                                     Referral.status.in_(LIVE_REFERRAL))).first()
    if live is not None:
        return None, None, _("the case is already referred to %(org)s for this purpose", org=recipient.name)
    return agreement, consent, None


def refer(session: Session, *, actor: Principal, access: CaseAccess, recipients: Sequence[Any],
          purpose: Purpose | str, sections: Sequence[str], mode: RoundMode | str = RoundMode.parallel,
          note: str = "", consent_override_reason: str = "", nationality_override_reason: str = "",
          notify: bool = True) -> ReferralRound:
    """Refer the case to one or several governments, in parallel or in turn."""
    policy.require(actor, "case.refer", access)
    purpose = _enum(Purpose, purpose, "purpose")
    mode = _enum(RoundMode, mode, "mode")
    chosen = _sections(sections)
    consent_override = bool(consent_override_reason.strip())
    nationality_override = bool(nationality_override_reason.strip())
    if consent_override:
        policy.require(actor, "case.consent_override", access)
        consent_override_reason = _reason(consent_override_reason, "consent_override_reason", high=500)
    if nationality_override:
        policy.require(actor, "case.nationality_override", access)
        nationality_override_reason = _reason(nationality_override_reason, "nationality_override_reason", high=500)
    if not recipients:
        raise ValidationFailed("recipients", _("choose at least one government"))
    if len(recipients) > MAX_RECIPIENTS:
        raise ValidationFailed("recipients", _("at most %(high)s governments at once", high=MAX_RECIPIENTS))
    orgs: list[Organization] = []
    errors: list[FieldError] = []
    for i, value in enumerate(recipients):
        try:
            org = _org(session, value, f"recipients[{i}]")
        except ValidationFailed as exc:
            errors += exc.errors
            continue
        if any(o.id == org.id for o in orgs):
            errors.append(FieldError(f"recipients[{i}]", _("is listed twice")))
            continue
        orgs.append(org)
        _agreement, _consent, problem = _check_recipient(
            session, access, org, purpose, chosen, consent_override=consent_override,
            nationality_override=nationality_override)
        if problem:
            errors.append(FieldError(f"recipients[{i}]", problem))
    if errors:
        raise ValidationFailed(errors=errors)
    note = _reason(note, "note", required=False, high=5000)
    round_ = ReferralRound(case_id=access.case.id, sender_org_id=access.case.owner_org_id, mode=mode,
                           purpose=purpose, sections=chosen, recipients=[str(o.id) for o in orgs], next_index=0,
                           note=note, consent_override_reason=consent_override_reason,
                           nationality_override_reason=nationality_override_reason,
                           created_by_user_id=actor.user_id, created_at=clock.now())
    session.add(round_)
    session.flush()
    overrides = {"consent": consent_override_reason, "nationality": nationality_override_reason}
    audit.record(session, action="case.refer", actor=actor, object_type="case", object_id=access.case.id,
                 details={"round": str(round_.id), "mode": mode.value, "purpose": purpose.value, "sections": chosen,
                          "recipients": round_.recipients,
                          "overrides": sorted(k for k, v in overrides.items() if v)})
    first = orgs if mode == RoundMode.parallel else orgs[:1]
    for org in first:
        _open(session, actor, round_, org, overrides, notify=notify)
    round_.next_index = len(first)
    return round_


def _open(session: Session, actor: Principal | audit.Actor, round_: ReferralRound, org: Organization,
          overrides: dict[str, str], *, notify: bool = True,
          override_by: dict[str, uuid.UUID | None] | None = None) -> Referral:
    """Ask ``org``. ``override_by``: who made the overrides, when not the actor (the next in a sequential
    round is opened by the rejection of the one before, but rests on the sender's overrides)."""
    case = session.get(Case, round_.case_id)
    assert case is not None
    purpose = Purpose(round_.purpose)
    agreement = agreement_for(session, case.owner_org_id, org.id, purpose)
    assert agreement is not None
    consent = active_consent(session, case.id, org.id, purpose)
    now = clock.now()
    user_id = getattr(actor, "user_id", None)
    by = override_by or {"consent": user_id, "nationality": user_id}
    referral = Referral(
        round_id=round_.id, case_id=case.id, sender_org_id=round_.sender_org_id, recipient_org_id=org.id,
        agreement_id=agreement.id, purpose=purpose, sections=list(round_.sections),
        shares_identity=Section.identity.value in round_.sections, status=ReferralStatus.pending,
        consent_id=consent.id if consent else None,
        consent_override_reason="" if consent else overrides.get("consent", ""),
        consent_override_by_user_id=by["consent"] if overrides.get("consent") and not consent else None,
        nationality_override_reason=overrides.get("nationality", ""),
        nationality_override_by_user_id=by["nationality"] if overrides.get("nationality") else None,
        note=round_.note, created_by_user_id=round_.created_by_user_id, created_at=now, updated_at=now)
    session.add(referral)
    session.flush()
    audit.record(session, action="referral.open", actor=actor, object_type="case", object_id=case.id,
                 details={"referral": str(referral.id), "recipient": str(org.id), "purpose": purpose.value,
                          "sections": referral.sections, "consent_override": bool(referral.consent_override_reason),
                          "nationality_override": bool(referral.nationality_override_reason)})
    if notify:
        _notify(session, org_id=org.id, roles=HANDLERS, subject=N_("RDN: case %(number)s is referred to you"),
                text=N_("A case is referred to your government for consideration: %(number)s."),
                path=f"/referrals/{referral.id}", event_type="referral.created",
                data={"referral_id": str(referral.id), "number": case.number})
    return referral


def _next_in_turn(session: Session, actor: Principal | audit.Actor, referral: Referral) -> Referral | None:
    """A sequential round: ask the next government that can still be asked."""
    round_ = session.get(ReferralRound, referral.round_id)
    if round_ is None or round_.mode != RoundMode.sequential:
        return None
    case = session.get(Case, round_.case_id)
    assert case is not None
    while round_.next_index < len(round_.recipients):
        org = session.get(Organization, uuid.UUID(round_.recipients[round_.next_index]))
        round_.next_index += 1
        if org is None or not org.active:
            continue
        overrides = {"consent": round_.consent_override_reason,
                     "nationality": round_.nationality_override_reason}
        access = CaseAccess(case, True, frozenset())
        _a, _c, problem = _check_recipient(session, access, org, Purpose(round_.purpose), list(round_.sections),
                                           consent_override=bool(overrides["consent"]),
                                           nationality_override=bool(overrides["nationality"]))
        if problem is None:
            return _open(session, actor, round_, org, overrides,
                         override_by={"consent": round_.created_by_user_id,
                                      "nationality": round_.created_by_user_id})
        audit.record(session, action="referral.skipped", actor=actor, object_type="case", object_id=case.id,
                     details={"round": str(round_.id), "recipient": str(org.id)})
    return None


def _set_status(session: Session, actor: Principal | audit.Actor, referral: Referral, new: ReferralStatus, *,
                side: Side, reason: str = "", outcome: Outcome | None = None, outcome_reason: str = "") -> None:
    old = ReferralStatus(referral.status)
    referral.status = new
    referral.updated_at = clock.now()
    if new in (ReferralStatus.rejected, ReferralStatus.revoked):
        referral.reason = reason
    if new in (ReferralStatus.rejected, ReferralStatus.revoked, ReferralStatus.done):
        referral.closed_at = clock.now()
    if new == ReferralStatus.done:
        referral.outcome, referral.outcome_reason = outcome, outcome_reason
    case = session.get(Case, referral.case_id)
    assert case is not None
    audit.record(session, action="referral.status", actor=actor, object_type="case", object_id=case.id,
                 details={"referral": str(referral.id), "from": old.value, "to": new.value})
    other = referral.sender_org_id if side == Side.recipient else referral.recipient_org_id
    _notify(session, org_id=other, roles=HANDLERS, subject=N_("RDN: referral of case %(number)s is %(status)s"),
            text=N_("The referral of case %(number)s is now: %(status)s."), path=f"/referrals/{referral.id}",
            event_type="referral.updated",
            data={"referral_id": str(referral.id), "number": case.number, "status": new.value})
    if new == ReferralStatus.rejected:
        _next_in_turn(session, actor, referral)


def change_referral(session: Session, *, actor: Principal, referral: Referral, status: ReferralStatus | str,
                    reason: str = "", outcome: Outcome | str | None = None, outcome_reason: str = "") -> Referral:
    """Move a referral along ``REFERRAL_TRANSITIONS``: the recipient takes it forward, the sender revokes."""
    new = _enum(ReferralStatus, status, "status")
    side = referral_side(actor, referral)
    if side is None:
        raise policy.NotFound()
    old = ReferralStatus(referral.status)
    sides = REFERRAL_TRANSITIONS.get((old, new))
    if sides is None:
        raise Conflict(_("A referral that is %(old)s cannot become %(new)s",
                         old=_(REFERRAL_STATUS_NAMES[old]), new=_(REFERRAL_STATUS_NAMES[new])))
    policy.require(actor, "referral.respond" if side == Side.recipient else "referral.revoke", referral)
    if side not in sides:
        raise policy.Forbidden()
    if side == Side.recipient:
        access_case(session, actor, referral.case_id)  # still shown to it (agreement in force, nationality)
    text = ""
    if new in (ReferralStatus.rejected, ReferralStatus.revoked):
        text = _reason(reason)
    chosen_outcome = None
    if new == ReferralStatus.done:
        chosen_outcome = _enum(Outcome, outcome or "", "outcome")
        outcome_reason = _reason(outcome_reason, "outcome_reason",
                                 required=chosen_outcome == Outcome.not_successful)
    _set_status(session, actor, referral, new, side=side, reason=text, outcome=chosen_outcome,
                outcome_reason=outcome_reason)
    return referral


def post_message(session: Session, *, actor: Principal, referral: Referral, body: str) -> ReferralMessage:
    """A message on the referral's thread. The recipient asking on a pending referral takes it in progress."""
    policy.require(actor, "referral.message", referral)
    side = referral_side(actor, referral)
    if side == Side.recipient:
        access_case(session, actor, referral.case_id)  # still shown to it (agreement in force, nationality)
    text = (body or "").strip()
    if not 1 <= len(text) <= 5000:
        raise ValidationFailed("body", _("must be %(low)s to %(high)s characters", low=1, high=5000))
    assert actor.org_id is not None
    message = ReferralMessage(referral_id=referral.id, org_id=actor.org_id, user_id=actor.user_id,
                              author_label=actor.full_name, body=text, created_at=clock.now())
    session.add(message)
    session.flush()
    audit.record(session, action="referral.message", actor=actor, object_type="case", object_id=referral.case_id,
                 details={"referral": str(referral.id), "message": str(message.id)})
    if side == Side.recipient and referral.status == ReferralStatus.pending:
        _set_status(session, actor, referral, ReferralStatus.in_progress, side=side)
    case = session.get(Case, referral.case_id)
    assert case is not None
    other = referral.sender_org_id if side == Side.recipient else referral.recipient_org_id
    _notify(session, org_id=other, roles=HANDLERS, subject=N_("RDN: a message on the referral of case %(number)s"),
            text=N_("There is a new message on the referral of case %(number)s."), path=f"/referrals/{referral.id}",
            event_type="referral.message", data={"referral_id": str(referral.id), "number": case.number})
    return message


def messages_of(session: Session, referral: Referral) -> list[ReferralMessage]:
    return list(session.scalars(select(ReferralMessage).where(ReferralMessage.referral_id == referral.id)
                                .order_by(ReferralMessage.created_at)))


def referrals_of(session: Session, actor: Principal, access: CaseAccess) -> list[Referral]:
    """The owner sees every referral of the case; a recipient only its own."""
    stmt = select(Referral).where(Referral.case_id == access.case.id)
    if not access.owner:
        stmt = stmt.where(Referral.recipient_org_id == actor.org_id)
    return list(session.scalars(stmt.order_by(Referral.created_at)))


def purpose_label(purpose: Purpose | str) -> str:
    return _(PURPOSE_NAMES[Purpose(purpose)])


# Transfers ----------------------------------------------------------------------------------------------------


def _nationality_problem(session: Session, case_id: uuid.UUID, org: Organization) -> str | None:
    """Why a case cannot be handed to ``org``: it is the government of a member's country of nationality."""
    if org.kind == OrgKind.government and org.country and org.country in _nationalities(session, case_id):
        return _("%(org)s is the government of a member's country of nationality: a case is not handed to it",
                 org=org.name)
    return None


def request_transfer(session: Session, *, actor: Principal, access: CaseAccess, to_org_id: Any,
                     reason: str) -> Transfer:
    policy.require(actor, "case.transfer", access)
    target = _org(session, to_org_id, "to_org_id")
    if target.id == access.case.owner_org_id or target.kind not in OWNER_KINDS:
        raise ValidationFailed("to_org_id", _("must be another organization that handles cases"))
    problem = _nationality_problem(session, access.case.id, target)
    if problem:
        raise ValidationFailed("to_org_id", problem)
    pending = session.scalars(select(Transfer.id).where(Transfer.case_id == access.case.id,
                                                        Transfer.status == TransferStatus.pending)).first()
    if pending is not None:
        raise Conflict(_("A transfer of this case is already waiting for a decision"))
    transfer = Transfer(case_id=access.case.id, from_org_id=access.case.owner_org_id, to_org_id=target.id,
                        reason=_reason(reason), status=TransferStatus.pending, requested_by_user_id=actor.user_id,
                        requested_at=clock.now())
    session.add(transfer)
    session.flush()
    audit.record(session, action="case.transfer.request", actor=actor, object_type="case",
                 object_id=access.case.id, details={"transfer": str(transfer.id), "to": str(target.id)})
    _notify(session, org_id=target.id, roles=LEADERS, subject=N_("RDN: a case is offered to your organization"),
            text=N_("Another organization asks you to take over case %(number)s."), path=f"/transfers/{transfer.id}",
            event_type="transfer.requested", data={"transfer_id": str(transfer.id), "number": access.case.number})
    return transfer


def decide_transfer(session: Session, *, actor: Principal, transfer: Transfer, decision: TransferStatus | str,
                    note: str = "") -> Transfer:
    """The receiver accepts or declines; the sender cancels. Accepting makes the receiver the owner."""
    new = _enum(TransferStatus, decision, "decision")
    policy.require(actor, "transfer.decide", transfer)
    if transfer.status != TransferStatus.pending:
        raise Conflict(_("This transfer was already decided"))
    receiver = actor.org_id == transfer.to_org_id
    if (new in (TransferStatus.accepted, TransferStatus.declined) and not receiver) or \
            (new == TransferStatus.cancelled and receiver) or new == TransferStatus.pending:
        raise policy.Forbidden()
    note = _reason(note, "note", required=False)  # before anything changes
    if new == TransferStatus.accepted:
        to_org = session.get(Organization, transfer.to_org_id)
        assert to_org is not None
        problem = _nationality_problem(session, transfer.case_id, to_org)
        if problem:
            raise Conflict(problem)  # a member became a national since the request
    transfer.status, transfer.decided_by_user_id, transfer.decided_at = new, actor.user_id, clock.now()
    transfer.decision_note = note
    case = session.get(Case, transfer.case_id)
    assert case is not None
    if new == TransferStatus.accepted:
        org = session.get(Organization, transfer.to_org_id)
        assert org is not None
        reassign_owner(session, case, org)
    audit.record(session, action=f"case.transfer.{new.value}", actor=actor, object_type="case", object_id=case.id,
                 details={"transfer": str(transfer.id)})
    other = transfer.from_org_id if receiver else transfer.to_org_id
    _notify(session, org_id=other, roles=LEADERS, subject=N_("RDN: a case transfer was %(status)s"),
            text=N_("The transfer of case %(number)s was %(status)s."), path=f"/transfers/{transfer.id}",
            event_type="transfer.updated",
            data={"transfer_id": str(transfer.id), "number": case.number, "status": new.value})
    return transfer

