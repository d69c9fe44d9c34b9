"""Sharing at the service level: referral states for each side, consent and its override, the country of
nationality, agreements and their sections, sequential and parallel rounds, access that ends at once,
the question thread and its notifications, agreement states and who moves them, and transfers."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import search, service, sharing
from rdn.cases.models import (
    REFERRAL_TRANSITIONS,
    Agreement,
    AgreementStatus,
    Case,
    ConfidentialNote,
    Referral,
    ReferralRound,
    ReferralStatus,
    Section,
    Side,
    Transfer,
    TransferStatus,
)
from rdn.cases.policy import access_case
from rdn.cases.sharing import AGREEMENT_TRANSITIONS
from rdn.core import audit, clock, identity, policy
from rdn.core.audit import AuditEntry
from rdn.core.crypto import DataKey, Keyring
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.identity import Principal
from rdn.core.outbox import Job
from rdn.core.tenancy import Role
from tests.cases.conftest import AGREED, CasesWorld, agree, household
from tests.factories import make_person

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAMES = ("Mohammad", "Rahimi", "Fatima", "Child0", "Child1")


@pytest.fixture
def world(session: Session, network: Any, make_gov_admins: Any) -> Iterator[CasesWorld]:
    """The cases world built and used with the clock frozen at T0."""
    with clock.frozen(T0):
        make_gov_admins()
        agreements = {gov: agree(session, network, gov, sections) for gov, sections in AGREED.items()}
        session.flush()
        yield CasesWorld(session, network, agreements)


def extra(w: CasesWorld, key: str, org: str, roles: list[Role], *, fresh: bool = True) -> Principal:
    """Someone who is not among the personas (an analyst of Canada, an officer of the agency)."""
    user, _secret = make_person(w.session, f"{key}@rdn.test", w.net.orgs[org], roles)
    p = identity.principal_for(w.session, user, org_id=w.net.orgs[org].id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now() if fresh else None)


def referral_to(w: CasesWorld, case: Case, gov: str) -> Referral:
    return w.session.scalars(select(Referral).where(Referral.case_id == case.id,
                                                    Referral.recipient_org_id == w.net.orgs[gov].id)
                             .order_by(Referral.created_at.desc(), Referral.id)).first()


def referrals_to(w: CasesWorld, case: Case, gov: str) -> list[Referral]:
    return list(w.session.scalars(select(Referral).where(Referral.case_id == case.id,
                                                         Referral.recipient_org_id == w.net.orgs[gov].id)))


def audits(s: Session, case_id: Any, action: str) -> list[dict[str, Any]]:
    # Columns, not entities: entries loaded inside a savepoint would outlive its rollback in the session.
    return list(s.scalars(select(AuditEntry.details).where(
        AuditEntry.object_id == str(case_id), AuditEntry.action == action).order_by(AuditEntry.seq)))


def sees(w: CasesWorld, persona: str | Principal, case: Case) -> frozenset[Section] | None:
    """What ``persona`` sees of the case now, or None for the 404."""
    p = w.p(persona) if isinstance(persona, str) else persona
    try:
        return access_case(w.session, p, case.id).sections
    except policy.NotFound:
        return None


def case_with_referral(w: CasesWorld, gov: str = "canada", **kw: Any) -> tuple[Case, Referral]:
    case = w.open_case()
    w.refer(case, gov, **kw)
    return case, referral_to(w, case, gov)


# Referral states, every pair and side -----------------------------------------------------------------------


def test_every_pair_of_referral_statuses_for_each_side(world: CasesWorld) -> None:
    w, s = world, world.session
    case, referral = case_with_referral(w)
    actors = {Side.sender: w.p("caseworker_unhcr"), Side.recipient: w.p("officer_canada")}
    done = {Side.sender: 0, Side.recipient: 0}
    for (a, b), side in product(product(ReferralStatus, repeat=2), Side):
        savepoint = s.begin_nested()
        try:
            referral.status = a
            s.flush()
            before = (referral.status, referral.updated_at, referral.reason, referral.outcome, referral.closed_at)
            n_audits, n_jobs = len(audits(s, case.id, "referral.status")), s.scalar(select(func.count(Job.id)))
            clock.advance(timedelta(seconds=1))
            sides = REFERRAL_TRANSITIONS.get((a, b))

            def change(side: Side = side, b: ReferralStatus = b) -> Referral:
                return sharing.change_referral(s, actor=actors[side], referral=referral, status=b,
                                               reason="Reason enough", outcome="successful")

            if sides is not None and side in sides:
                change()
                assert referral.status == b and referral.updated_at == clock.now()
                assert audits(s, case.id, "referral.status")[-1] == {"referral": str(referral.id),
                                                                     "from": a.value, "to": b.value}
                closing = b in (ReferralStatus.rejected, ReferralStatus.revoked, ReferralStatus.done)
                assert referral.closed_at == (clock.now() if closing else before[4])
                if b in (ReferralStatus.rejected, ReferralStatus.revoked):
                    assert referral.reason == "Reason enough"
                if b == ReferralStatus.done:
                    assert referral.outcome == "successful"
                assert s.scalar(select(func.count(Job.id))) > n_jobs  # the other side is told
                done[side] += 1
            else:
                with pytest.raises(Conflict if sides is None else policy.Forbidden):
                    change()
                assert (referral.status, referral.updated_at, referral.reason, referral.outcome,
                        referral.closed_at) == before, (a, b, side)
                assert len(audits(s, case.id, "referral.status")) == n_audits
                assert s.scalar(select(func.count(Job.id))) == n_jobs
        finally:
            savepoint.rollback()
    assert done == {side: sum(side in v for v in REFERRAL_TRANSITIONS.values()) for side in Side}
    assert audit.verify(s).ok  # the rolled-back attempts left the chain whole


def test_someone_of_neither_side_cannot_touch_a_referral(world: CasesWorld) -> None:
    w = world
    _case, referral = case_with_referral(w)
    for persona in ("minister_spain", "analyst_ec", "sponsor_group_a", "admin_secretariat"):
        with pytest.raises(policy.NotFound):
            sharing.change_referral(w.session, actor=w.p(persona), referral=referral, status="accepted")
    with pytest.raises(policy.AuthError):  # Canada's administrator sees the summary but does not decide
        sharing.change_referral(w.session, actor=w.p("admin_canada"), referral=referral, status="accepted")
    assert referral.status == ReferralStatus.pending


def test_rejecting_and_revoking_need_a_reason_and_done_an_outcome(world: CasesWorld) -> None:
    w = world
    officer, caseworker = w.p("officer_canada"), w.p("caseworker_unhcr")
    _case, referral = case_with_referral(w)
    with pytest.raises(ValidationFailed) as exc:
        sharing.change_referral(w.session, actor=officer, referral=referral, status="rejected", reason="  ")
    assert exc.value.errors[0].field == "reason"
    with pytest.raises(ValidationFailed):
        sharing.change_referral(w.session, actor=caseworker, referral=referral, status="revoked")
    assert referral.status == ReferralStatus.pending and referral.reason == ""

    sharing.change_referral(w.session, actor=officer, referral=referral, status="accepted")
    with pytest.raises(ValidationFailed) as exc:
        sharing.change_referral(w.session, actor=officer, referral=referral, status="done")
    assert exc.value.errors[0].field == "outcome"
    with pytest.raises(ValidationFailed) as exc:
        sharing.change_referral(w.session, actor=caseworker, referral=referral, status="done",
                                outcome="not_successful")
    assert exc.value.errors[0].field == "outcome_reason"
    assert referral.status == ReferralStatus.accepted and referral.outcome is None
    sharing.change_referral(w.session, actor=caseworker, referral=referral, status="done",
                            outcome="not_successful", outcome_reason="The family chose another country")
    assert (referral.status, referral.outcome, referral.outcome_reason) == (
        ReferralStatus.done, "not_successful", "The family chose another country")

    _case2, other = case_with_referral(w)
    sharing.change_referral(w.session, actor=officer, referral=other, status="accepted")
    sharing.change_referral(w.session, actor=officer, referral=other, status="done", outcome="successful")
    assert other.outcome == "successful" and other.outcome_reason == ""


# Consent ----------------------------------------------------------------------------------------------------


def test_a_referral_needs_consent_or_a_leaders_override_with_a_reason(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada", consent=False)
    assert exc.value.errors[0].field == "recipients[0]"
    assert "Canada" in exc.value.errors[0].message and "consent" in exc.value.errors[0].message
    with pytest.raises(policy.AuthError):  # a caseworker cannot override
        w.refer(case, "canada", consent=False, consent_override_reason="Life-threatening, no time to ask")
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada", consent=False, persona="admin_unhcr", consent_override_reason="no")
    assert exc.value.errors[0].field == "consent_override_reason"
    assert referrals_to(w, case, "canada") == []
    assert s.scalar(select(func.count(ReferralRound.id)).where(ReferralRound.case_id == case.id)) == 0

    admin = w.p("admin_unhcr")
    w.refer(case, "canada", consent=False, persona="admin_unhcr",
            consent_override_reason="Life-threatening, no time to ask")
    referral = referral_to(w, case, "canada")
    assert referral.consent_id is None
    assert referral.consent_override_reason == "Life-threatening, no time to ask"
    assert referral.consent_override_by_user_id == admin.user_id
    assert audits(s, case.id, "case.refer")[-1]["overrides"] == ["consent"]
    assert audits(s, case.id, "referral.open")[-1]["consent_override"] is True
    assert sees(w, "officer_canada", case)

    # With consent recorded, the referral rests on it and carries no override.
    other = w.open_case()
    w.refer(other, "canada")
    ref = referral_to(w, other, "canada")
    assert ref.consent_id is not None and ref.consent_override_reason == ""
    assert audits(s, other.id, "case.refer")[-1]["overrides"] == []


def test_consent_is_per_recipient_and_purpose(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    stranger = service.members_of(w.session, w.open_case())[0]
    for member_id in (stranger.id, "not-an-id"):
        with pytest.raises(ValidationFailed) as exc:
            sharing.record_consent(w.session, actor=w.p("caseworker_unhcr"),
                                   access=w.access("caseworker_unhcr", case), recipient_org_id=w.net.orgs["canada"].id,
                                   purpose="resettlement", method="written", given_by_member_id=member_id)
        assert exc.value.errors[0].field == "given_by_member_id"
    assert sharing.consents_of(w.session, case) == []
    overridden = w.open_case()
    w.refer(overridden, "canada", consent=False, persona="admin_unhcr", consent_override_reason="Urgent case")
    with pytest.raises(policy.AuthError):  # the recipient does not record the family's consent
        sharing.record_consent(w.session, actor=w.p("officer_canada"),
                               access=w.access("officer_canada", overridden),
                               recipient_org_id=w.net.orgs["canada"].id, purpose="resettlement", method="written")
    assert sharing.consents_of(w.session, overridden) == []
    w.consent(case, "canada", purpose="family_reunification")
    w.consent(case, "spain")
    with pytest.raises(ValidationFailed) as exc:  # consent for another purpose, or another government
        w.refer(case, "canada", consent=False)
    assert "Canada" in exc.value.errors[0].message
    w.refer(case, "canada", consent=False, purpose="family_reunification")
    assert referral_to(w, case, "canada").purpose == "family_reunification"


def test_withdrawing_consent_revokes_the_live_referrals_relying_on_it(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    w.refer(case, "canada", "spain")
    canada, spain = referral_to(w, case, "canada"), referral_to(w, case, "spain")
    sharing.change_referral(s, actor=w.p("officer_canada"), referral=canada, status="accepted")
    overridden = w.open_case()
    w.refer(overridden, "canada", consent=False, persona="admin_unhcr", consent_override_reason="Urgent case")
    assert sees(w, "officer_canada", case) and sees(w, "minister_spain", case)

    consent = next(c for c in sharing.consents_of(s, case) if c.recipient_org_id == w.net.orgs["canada"].id)
    caseworker, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    with pytest.raises(ValidationFailed):
        sharing.withdraw_consent(s, actor=caseworker, access=access, consent_id=consent.id, reason="")
    assert canada.status == ReferralStatus.accepted
    sharing.withdraw_consent(s, actor=caseworker, access=access, consent_id=consent.id,
                             reason="The family changed their mind")
    assert canada.status == ReferralStatus.revoked and canada.reason == "Consent was withdrawn"
    assert audits(s, case.id, "referral.status")[-1]["to"] == "revoked"
    assert spain.status == ReferralStatus.pending
    assert sees(w, "officer_canada", case) is None
    assert sees(w, "minister_spain", case)
    assert sees(w, "officer_canada", overridden)  # relied on no consent: untouched
    with pytest.raises(Conflict):
        sharing.withdraw_consent(s, actor=caseworker, access=access, consent_id=consent.id, reason="Again, no")
    # A consent of another case is not this case's to withdraw.
    other_consent = sharing.consents_of(s, case)[0]
    with pytest.raises(policy.NotFound):
        sharing.withdraw_consent(s, actor=caseworker, access=w.access("caseworker_unhcr", overridden),
                                 consent_id=other_consent.id, reason="Not mine")


# The country of nationality ---------------------------------------------------------------------------------


def test_a_case_is_not_referred_to_a_members_country_of_nationality_without_an_admins_override(
        world: CasesWorld) -> None:
    w, s = world, world.session
    members = household()
    members[1]["nationality"] = "CA"  # the spouse is Canadian
    case = w.open_case(members=members)
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada")
    assert "Canada" in exc.value.errors[0].message and exc.value.errors[0].field == "recipients[0]"
    with pytest.raises(policy.AuthError):
        w.refer(case, "canada", consent=False, nationality_override_reason="She asked to join her family")
    with pytest.raises(policy.AuthError):  # a senior official is not enough: an administrator
        officer = extra(w, "senior_unhcr", "unhcr", [Role.senior_official])
        sharing.refer(s, actor=officer, access=w.access("caseworker_unhcr", case),
                      recipients=[w.net.orgs["canada"].id], purpose="resettlement", sections=["identity"],
                      nationality_override_reason="She asked to join her family")
    assert referrals_to(w, case, "canada") == []
    w.refer(case, "spain")  # another government is fine
    assert sees(w, "minister_spain", case)

    admin = w.p("admin_unhcr")
    w.refer(case, "canada", consent=False, persona="admin_unhcr",
            nationality_override_reason="She asked to join her family")
    referral = referral_to(w, case, "canada")
    assert referral.nationality_override_reason == "She asked to join her family"
    assert referral.nationality_override_by_user_id == admin.user_id
    assert "nationality" in audits(s, case.id, "case.refer")[-1]["overrides"]
    assert sees(w, "officer_canada", case)


def test_a_member_who_becomes_a_national_hides_the_case_from_that_government(world: CasesWorld) -> None:
    w = world
    case, _referral = case_with_referral(w)
    assert sees(w, "officer_canada", case)
    access = w.access("caseworker_unhcr", case)
    spouse = service.members_of(w.session, case)[1]
    service.update_member(w.session, actor=w.p("caseworker_unhcr"), access=access, member=spouse,
                          changes={"nationality": "CA"})
    assert sees(w, "officer_canada", case) is None
    assert search.list_cases(w.session, w.p("officer_canada"), search.CaseFilters()).total == 0


# Agreements and sections ------------------------------------------------------------------------------------


def test_sections_beyond_the_agreement_and_unshareable_sections_are_refused(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "spain", sections=["identity", "background"])  # Spain agreed identity and needs
    assert "Languages, education and occupation" in exc.value.errors[0].message
    for section in ("confidential", "summary", "nonsense"):
        with pytest.raises(ValidationFailed) as exc:
            w.refer(case, "canada", sections=["identity", section])
        assert exc.value.errors[0].field == "sections"
    assert referrals_to(w, case, "spain") == referrals_to(w, case, "canada") == []


def test_no_agreement_in_force_no_referral(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada", purpose="services")  # the agreement covers resettlement and reunification
    assert "no data-sharing agreement" in exc.value.errors[0].message
    sharing.end_agreement(w.session, actor=w.p("admin_canada"), agreement=w.agreements["canada"],
                          reason="Programme paused")
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada")
    assert "no data-sharing agreement" in exc.value.errors[0].message and "Canada" in exc.value.errors[0].message
    for org in ("unhcr", "maple", "ec"):  # not a member government
        with pytest.raises(ValidationFailed):
            sharing.refer(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                          recipients=[w.net.orgs[org].id], purpose="resettlement", sections=["identity"])
    assert referrals_to(w, case, "canada") == []


def test_the_recipient_sees_the_referral_sections_within_the_agreement_and_never_confidential(
        world: CasesWorld) -> None:
    w, s = world, world.session
    case, referral = case_with_referral(w, sections=["identity", "needs", "protection"])
    summary = {Section.summary}
    assert sees(w, "officer_canada", case) == summary | {Section.identity, Section.needs, Section.protection}
    assert sees(w, "admin_canada", case) == summary
    assert sees(w, extra(w, "analyst_canada", "canada", [Role.analyst]), case) == summary
    assert sees(w, extra(w, "caseworker_canada", "canada", [Role.caseworker]), case) == sees(
        w, "officer_canada", case)
    # A government that was not asked, an observer, a sponsor group, the secretariat: nothing.
    for persona in ("minister_germany", "minister_spain", "analyst_ec", "sponsor_group_a", "admin_secretariat"):
        assert sees(w, persona, case) is None, persona

    # What the agreement no longer lists is not shown, whatever the referral says; confidential never is.
    agreement = s.get(Agreement, referral.agreement_id)
    agreement.sections = ["identity", "confidential"]
    referral.sections = ["identity", "needs", "protection", "confidential"]
    s.flush()
    assert sees(w, "officer_canada", case) == summary | {Section.identity}
    with pytest.raises(policy.NotFound):
        service.read_sensitive(s, actor=w.p("officer_canada"), access=w.access("officer_canada", case),
                               sections=["confidential"])


def test_the_recipient_reads_a_shared_sealed_section_and_no_other(world: CasesWorld) -> None:
    w, s = world, world.session
    case, _referral = case_with_referral(w, sections=["identity", "protection"])
    service.write_sensitive(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                            section="protection", value={"narrative": "Threatened after testifying"})
    service.write_sensitive(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                            section="medical", value={"diagnosis": "Diabetes"})
    access = w.access("officer_canada", case)
    opened = service.read_sensitive(s, actor=w.p("officer_canada"), access=access, sections=["protection"])
    assert opened[Section.protection]["narrative"] == "Threatened after testifying"
    with pytest.raises(policy.NotFound):
        service.read_sensitive(s, actor=w.p("officer_canada"), access=access, sections=["medical"])
    reads = audits(s, case.id, "sensitive.read")
    assert reads == [{"fields": ["protection"]}]


@pytest.mark.parametrize("how", ["revoked", "rejected", "ended", "expired"])
def test_access_ends_on_the_very_next_call(world: CasesWorld, how: str) -> None:
    w, s = world, world.session
    if how == "expired":
        sharing.end_agreement(s, actor=w.p("admin_unhcr"), agreement=w.agreements["canada"], reason="Replaced")
        short = sharing.propose_agreement(s, actor=w.p("admin_unhcr"), other_org_id=w.net.orgs["canada"].id,
                                          we_provide=True, title="Thirty days", purposes=["resettlement"],
                                          sections=["identity"], valid_until=T0.date() + timedelta(days=30))
        sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=short, decision="active")
    case, referral = case_with_referral(w, sections=["identity"])
    if how in ("revoked", "ended"):  # even an accepted case goes at once
        sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral, status="accepted")
    assert sees(w, "officer_canada", case)
    assert search.list_cases(s, w.p("officer_canada"), search.CaseFilters(q="Rahimi")).total == 1
    if how == "revoked":
        sharing.change_referral(s, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                                reason="Submitted elsewhere")
    elif how == "rejected":
        sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral, status="rejected",
                                reason="Outside our quota")
    elif how == "ended":
        sharing.end_agreement(s, actor=w.p("admin_unhcr"), agreement=w.agreements["canada"],
                              reason="The agreement lapsed")
    else:
        clock.advance(timedelta(days=30))
        assert sees(w, "officer_canada", case)  # valid through its last day
        clock.advance(timedelta(days=1))
    with pytest.raises(policy.NotFound):
        w.access("officer_canada", case)
    assert sees(w, "admin_canada", case) is None
    assert search.list_cases(s, w.p("officer_canada"), search.CaseFilters()).total == 0
    assert search.list_cases(s, w.p("officer_canada"), search.CaseFilters(q="Rahimi")).total == 0
    assert search.list_cases(s, w.p("officer_canada"), search.CaseFilters(q=case.number)).total == 0
    assert sees(w, "caseworker_unhcr", case)  # the owner keeps it, of course


@pytest.mark.parametrize("status", ["accepted", "done"])
def test_accepted_and_done_keep_access(world: CasesWorld, status: str) -> None:
    w = world
    case, referral = case_with_referral(w, sections=["identity", "needs"])
    sharing.change_referral(w.session, actor=w.p("officer_canada"), referral=referral, status="accepted")
    if status == "done":
        sharing.change_referral(w.session, actor=w.p("officer_canada"), referral=referral, status="done",
                                outcome="successful")
    assert sees(w, "officer_canada", case) == {Section.summary, Section.identity, Section.needs}


# Rounds -----------------------------------------------------------------------------------------------------


def test_a_parallel_round_asks_every_government_at_once(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    round_ = w.refer(case, "canada", "spain", "germany", sections=["identity", "needs"])
    assert round_.next_index == 3
    for gov, persona in (("canada", "officer_canada"), ("spain", "minister_spain"),
                         ("germany", "minister_germany")):
        assert referral_to(w, case, gov).status == ReferralStatus.pending
        assert sees(w, persona, case) == {Section.summary, Section.identity, Section.needs}
    # Rejection by one does not touch the others, and asks no one new.
    sharing.change_referral(w.session, actor=w.p("minister_spain"), referral=referral_to(w, case, "spain"),
                            status="rejected", reason="No places left")
    assert referral_to(w, case, "canada").status == referral_to(w, case, "germany").status == "pending"
    assert len(referrals_to(w, case, "spain")) == 1


def test_a_sequential_round_asks_the_next_when_one_rejects_skipping_who_can_no_longer_be_asked(
        world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    round_ = w.refer(case, "canada", "spain", "germany", mode="sequential", sections=["identity", "needs"])
    assert round_.next_index == 1
    assert referral_to(w, case, "canada").status == ReferralStatus.pending
    assert referral_to(w, case, "spain") is None and sees(w, "minister_spain", case) is None

    sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral_to(w, case, "canada"),
                            status="rejected", reason="Outside our quota")
    assert referral_to(w, case, "spain").status == ReferralStatus.pending
    assert sees(w, "minister_spain", case) and sees(w, "officer_canada", case) is None
    assert referral_to(w, case, "germany") is None

    # Germany can no longer be asked: the family withdrew its consent to Germany.
    consent = next(c for c in sharing.consents_of(s, case) if c.recipient_org_id == w.net.orgs["germany"].id)
    sharing.withdraw_consent(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                             consent_id=consent.id, reason="They do not want Germany")
    sharing.change_referral(s, actor=w.p("minister_spain"), referral=referral_to(w, case, "spain"),
                            status="rejected", reason="No places left")
    assert referral_to(w, case, "germany") is None and sees(w, "minister_germany", case) is None
    assert audits(s, case.id, "referral.skipped") == [{"round": str(round_.id),
                                                       "recipient": str(w.net.orgs["germany"].id)}]
    assert round_.next_index == 3


def test_the_next_government_in_turn_rests_on_the_senders_override_not_on_whoever_rejected(
        world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    admin = w.p("admin_unhcr")
    w.refer(case, "canada", "spain", mode="sequential", consent=False, persona="admin_unhcr",
            consent_override_reason="The family cannot be reached safely")
    sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral_to(w, case, "canada"),
                            status="rejected", reason="Outside our quota")
    spain = referral_to(w, case, "spain")
    assert spain.status == ReferralStatus.pending and spain.consent_id is None
    assert spain.consent_override_reason == "The family cannot be reached safely"
    assert spain.consent_override_by_user_id == admin.user_id  # not Canada's officer
    assert spain.created_by_user_id == admin.user_id
    assert sees(w, "minister_spain", case)


def test_a_sequential_round_keeps_the_consent_override_for_the_next_government(world: CasesWorld) -> None:
    w = world
    case = w.open_case()
    w.consent(case, "canada")  # Spain has no consent: the administrator overrides for the round
    w.refer(case, "canada", "spain", mode="sequential", consent=False, persona="admin_unhcr",
            consent_override_reason="Resettlement is urgent and the family is unreachable")
    sharing.change_referral(w.session, actor=w.p("officer_canada"), referral=referral_to(w, case, "canada"),
                            status="rejected", reason="Outside our quota")
    assert referral_to(w, case, "spain") is not None


# The question thread ----------------------------------------------------------------------------------------


def test_a_question_on_a_pending_referral_takes_it_in_progress_and_tells_the_sender(world: CasesWorld) -> None:
    w, s = world, world.session
    case, referral = case_with_referral(w)
    before = set(s.scalars(select(Job.id)))
    body = "Is Fatima Rahimi's medical file available?"
    sharing.post_message(s, actor=w.p("officer_canada"), referral=referral, body=body)
    assert referral.status == ReferralStatus.in_progress
    assert audits(s, case.id, "referral.status")[-1]["to"] == "in_progress"
    assert [m.body for m in sharing.messages_of(s, referral)] == [body]
    jobs = [j for j in s.scalars(select(Job).where(Job.kind == "email")) if j.id not in before]
    told = {address for j in jobs for address in j.payload["to"]}
    assert told == {"caseworker_unhcr@rdn.test", "admin_unhcr@rdn.test"}  # the sender's case handlers
    for job in jobs:
        text = json.dumps(job.payload, ensure_ascii=False)
        assert case.number in text
        for name in NAMES:
            assert name not in text
        assert "medical file" not in text

    # Every email of the test (the referral to Canada's handlers included) is free of personal data.
    every = list(s.scalars(select(Job).where(Job.kind == "email")))
    referred = [j for j in every if j.id in before and case.number in j.payload["subject"]]
    assert {a for j in referred for a in j.payload["to"]} == {"officer_canada@rdn.test"}  # handlers only
    for job in every:
        text = json.dumps(job.payload, ensure_ascii=False)
        assert not any(name in text for name in NAMES)

    # The sender answering leaves the status alone; a second question does too.
    sharing.post_message(s, actor=w.p("caseworker_unhcr"), referral=referral, body="Yes, under protection.")
    sharing.post_message(s, actor=w.p("officer_canada"), referral=referral, body="Thank you.")
    assert referral.status == ReferralStatus.in_progress
    assert len(sharing.messages_of(s, referral)) == 3


def test_only_case_handlers_of_either_side_write_on_a_live_referral(world: CasesWorld) -> None:
    w, s = world, world.session
    _case, referral = case_with_referral(w)
    for persona in ("admin_canada", "minister_spain", "analyst_ec"):
        with pytest.raises(policy.AuthError):
            sharing.post_message(s, actor=w.p(persona), referral=referral, body="Hello")
    sharing.post_message(s, actor=w.p("caseworker_unhcr"), referral=referral, body="Added the interview notes.")
    assert referral.status == ReferralStatus.pending  # only the recipient's question moves it
    with pytest.raises(ValidationFailed):
        sharing.post_message(s, actor=w.p("officer_canada"), referral=referral, body="   ")
    sharing.change_referral(s, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                            reason="Submitted elsewhere")
    with pytest.raises(policy.AuthError):
        sharing.post_message(s, actor=w.p("officer_canada"), referral=referral, body="Why?")
    assert len(sharing.messages_of(s, referral)) == 1


@pytest.mark.parametrize("how", ["agreement ended", "member became a national"])
def test_a_recipient_that_lost_the_case_neither_writes_on_nor_moves_its_referral(world: CasesWorld,
                                                                                how: str) -> None:
    w, s = world, world.session
    case, referral = case_with_referral(w)
    sharing.post_message(s, actor=w.p("caseworker_unhcr"), referral=referral, body="The family is in Quetta.")
    if how == "agreement ended":
        sharing.end_agreement(s, actor=w.p("admin_unhcr"), agreement=w.agreements["canada"], reason="Lapsed")
    else:
        spouse = service.members_of(s, case)[1]
        service.update_member(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", case),
                              member=spouse, changes={"nationality": "CA"})
    assert sees(w, "officer_canada", case) is None
    with pytest.raises(policy.NotFound):
        sharing.post_message(s, actor=w.p("officer_canada"), referral=referral, body="Where exactly?")
    with pytest.raises(policy.NotFound):
        sharing.change_referral(s, actor=w.p("officer_canada"), referral=referral, status="accepted")
    assert referral.status == ReferralStatus.pending and len(sharing.messages_of(s, referral)) == 1
    # The sender still closes it.
    sharing.change_referral(s, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                            reason="No agreement any more")
    assert referral.status == ReferralStatus.revoked


# Agreements -------------------------------------------------------------------------------------------------


def test_every_pair_of_agreement_statuses(world: CasesWorld) -> None:
    w, s = world, world.session
    agreement = sharing.propose_agreement(s, actor=w.p("admin_unhcr"), other_org_id=w.net.orgs["canada"].id,
                                          we_provide=True, title="Complementary pathways",
                                          purposes=["complementary_pathway"], sections=["identity"])
    proposer, other = w.p("admin_unhcr"), w.p("admin_canada")
    moved = 0
    for a, b in product(AgreementStatus, repeat=2):
        savepoint = s.begin_nested()
        try:
            agreement.status = a
            s.flush()
            n = s.scalar(select(func.count(AuditEntry.seq)).where(AuditEntry.object_id == str(agreement.id)))

            def act(b: AgreementStatus = b) -> Agreement:
                if b == AgreementStatus.ended:
                    return sharing.end_agreement(s, actor=other, agreement=agreement, reason="Programme closed")
                if b == AgreementStatus.withdrawn:
                    return sharing.decide_agreement(s, actor=proposer, agreement=agreement, decision=b)
                return sharing.decide_agreement(s, actor=other, agreement=agreement, decision=b)

            if b in AGREEMENT_TRANSITIONS[a]:
                act()
                assert agreement.status == b
                last = s.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(agreement.id))
                                 .order_by(AuditEntry.seq.desc())).first()
                assert last == ("agreement.end" if b == AgreementStatus.ended else f"agreement.{b.value}")
                moved += 1
            else:
                with pytest.raises(Conflict):
                    act()
                assert agreement.status == a
                assert s.scalar(select(func.count(AuditEntry.seq)).where(
                    AuditEntry.object_id == str(agreement.id))) == n
        finally:
            savepoint.rollback()
    assert moved == sum(len(v) for v in AGREEMENT_TRANSITIONS.values())


def test_who_may_propose_accept_decline_withdraw_and_end_an_agreement(world: CasesWorld) -> None:
    w, s = world, world.session

    def propose() -> Agreement:
        return sharing.propose_agreement(s, actor=w.p("admin_unhcr"), other_org_id=w.net.orgs["canada"].id,
                                         we_provide=True, title="Family reunification",
                                         purposes=["family_reunification"], sections=["identity", "family"])

    with pytest.raises(policy.Forbidden):
        sharing.propose_agreement(s, actor=w.p("caseworker_unhcr"), other_org_id=w.net.orgs["canada"].id,
                                  we_provide=True, title="Mine", purposes=["resettlement"], sections=["identity"])
    before = {j.id for j in s.scalars(select(Job))}
    agreement = propose()
    assert agreement.status == AgreementStatus.proposed
    told = {a for j in s.scalars(select(Job).where(Job.kind == "email")) if j.id not in before
            for a in j.payload["to"]}
    assert told == {"admin_canada@rdn.test"}

    # The proposer neither accepts nor declines its own proposal; the other party does not withdraw it.
    for decision in ("active", "declined"):
        with pytest.raises(Conflict):
            sharing.decide_agreement(s, actor=w.p("admin_unhcr"), agreement=agreement, decision=decision)
    with pytest.raises(policy.Forbidden):
        sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=agreement, decision="withdrawn")
    # Not an administrator of a party, or an administrator of a third party.
    for p in (w.p("officer_canada"), w.p("minister_spain"), w.p("caseworker_unhcr")):
        with pytest.raises(policy.AuthError):
            sharing.decide_agreement(s, actor=p, agreement=agreement, decision="active")
    assert agreement.status == AgreementStatus.proposed

    sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=agreement, decision="active")
    assert agreement.status == AgreementStatus.active and agreement.decided_by_user_id == w.net.admin_canada.id
    for p in (w.p("officer_canada"), w.p("caseworker_unhcr"), w.p("minister_spain")):
        with pytest.raises(policy.AuthError):
            sharing.end_agreement(s, actor=p, agreement=agreement, reason="Not mine to end")
    with pytest.raises(ValidationFailed):
        sharing.end_agreement(s, actor=w.p("admin_unhcr"), agreement=agreement, reason="")
    sharing.end_agreement(s, actor=w.p("admin_unhcr"), agreement=agreement, reason="Replaced by a new one")
    assert agreement.status == AgreementStatus.ended and agreement.end_reason == "Replaced by a new one"

    # The other party may end one too; the proposer may withdraw a proposal; the other party declines.
    second = propose()
    sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=second, decision="active")
    sharing.end_agreement(s, actor=w.p("admin_canada"), agreement=second, reason="Our programme closed")
    assert second.status == AgreementStatus.ended
    third = propose()
    sharing.decide_agreement(s, actor=w.p("admin_unhcr"), agreement=third, decision="withdrawn")
    assert third.status == AgreementStatus.withdrawn
    fourth = propose()
    with pytest.raises(ValidationFailed):  # a refused decision changes nothing
        sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=fourth, decision="declined",
                                 reason="x" * 501)
    assert fourth.status == AgreementStatus.proposed and fourth.decided_at is None
    sharing.decide_agreement(s, actor=w.p("admin_canada"), agreement=fourth, decision="declined",
                             reason="Not this year")
    assert fourth.status == AgreementStatus.declined and fourth.end_reason == "Not this year"


def test_a_proposal_is_checked(world: CasesWorld) -> None:
    w, s = world, world.session
    admin = w.p("admin_unhcr")

    def propose(**kw: Any) -> Agreement:
        args: dict[str, Any] = {"other_org_id": w.net.orgs["canada"].id, "we_provide": True, "title": "Pathways",
                                "purposes": ["resettlement"], "sections": ["identity"]}
        args.update(kw)
        return sharing.propose_agreement(s, actor=admin, **args)

    cases = [
        ({"sections": ["confidential"]}, "sections"),
        ({"sections": []}, "sections"),
        ({"purposes": []}, "purposes"),
        ({"purposes": ["tourism"]}, "purposes"),
        ({"valid_until": T0.date() - timedelta(days=1)}, "valid_until"),
        ({"other_org_id": w.net.orgs["ec"].id}, "other_org_id"),  # an observer handles no cases
        ({"other_org_id": w.net.orgs["unhcr"].id}, "other_org_id"),  # ourselves
        ({"we_provide": False}, "we_provide"),  # the agency would receive: only governments receive
        ({"other_org_id": uuid.uuid4()}, "other_org_id"),
        ({"title": ""}, "title"),
    ]
    for kw, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            propose(**kw)
        assert exc.value.errors[0].field == field, kw
    assert propose(sections=["needs", "identity", "needs"]).sections == ["identity", "needs"]


# Transfers --------------------------------------------------------------------------------------------------


def key_owner(s: Session, blob: bytes) -> str:
    return s.get(DataKey, uuid.UUID(bytes=bytes(blob[1:17]))).owner


def test_a_transfer_hands_the_case_over_with_a_new_number_and_its_sealed_sections(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case(members=household("Yusuf", "Al-Hashimi"))
    caseworker, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    service.write_sensitive(s, actor=caseworker, access=access, section="protection",
                            value={"narrative": "Targeted for his reporting"})
    member = service.members_of(s, case)[1]
    note = service.add_confidential_note(s, actor=caseworker, access=access, member=member,
                                         body="She does not want her husband to know")
    old_number, unhcr, canada = case.number, w.net.orgs["unhcr"], w.net.orgs["canada"]
    assert key_owner(s, case.protection) == str(unhcr.id)

    with pytest.raises(policy.AuthError):  # a caseworker does not give cases away
        sharing.request_transfer(s, actor=caseworker, access=access, to_org_id=canada.id, reason="Moving it")
    with pytest.raises(ValidationFailed):
        sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access, to_org_id=w.net.orgs["ec"].id,
                                 reason="Observers hold no cases")
    transfer = sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access, to_org_id=canada.id,
                                        reason="Canada processes the family directly")
    with pytest.raises(Conflict):
        sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access, to_org_id=w.net.orgs["spain"].id,
                                 reason="A second one")
    assert sees(w, "officer_canada", case) is None  # a transfer request shows nothing yet
    with pytest.raises(policy.Forbidden):  # the sender cannot accept for the receiver
        sharing.decide_transfer(s, actor=w.p("admin_unhcr"), transfer=transfer, decision="accepted")
    with pytest.raises(policy.AuthError):  # the receiver's officer is not a leader
        sharing.decide_transfer(s, actor=w.p("officer_canada"), transfer=transfer, decision="accepted")
    with pytest.raises(policy.Forbidden):  # the receiver declines, it does not cancel
        sharing.decide_transfer(s, actor=w.p("admin_canada"), transfer=transfer, decision="cancelled")
    assert case.owner_org_id == unhcr.id and transfer.status == TransferStatus.pending

    sharing.decide_transfer(s, actor=w.p("admin_canada"), transfer=transfer, decision="accepted")
    assert transfer.status == TransferStatus.accepted
    assert case.owner_org_id == canada.id
    assert case.number.startswith("CANADA-26-") and case.previous_numbers == [old_number]
    with pytest.raises(Conflict):
        sharing.decide_transfer(s, actor=w.p("admin_canada"), transfer=transfer, decision="declined")

    # The sealed sections were sealed again with the new owner's key, and still open.
    s.flush()
    s.expire_all()
    assert key_owner(s, case.protection) == str(canada.id)
    note = s.get(ConfidentialNote, note.id)
    assert key_owner(s, note.body) == str(canada.id)
    assert note.unseal("body", keyring=Keyring.of(s)) == "She does not want her husband to know"
    officer = w.p("officer_canada")
    new_access = w.access("officer_canada", case)
    assert new_access.owner
    opened = service.read_sensitive(s, actor=officer, access=new_access, sections=["protection"])
    assert opened[Section.protection]["narrative"] == "Targeted for his reporting"

    # The old owner lost the case; the name index and the numbers follow it.
    with pytest.raises(policy.NotFound):
        w.access("caseworker_unhcr", case)
    assert search.list_cases(s, caseworker, search.CaseFilters(q="Yousef Hashimi")).total == 0
    assert search.list_cases(s, caseworker, search.CaseFilters(q=old_number)).total == 0
    assert [c.id for c in search.list_cases(s, officer, search.CaseFilters(q="Yousef Hashimi")).items] == [case.id]
    assert [c.id for c in search.list_cases(s, officer, search.CaseFilters(q=old_number)).items] == [case.id]
    assert [c.id for c in search.list_cases(s, officer, search.CaseFilters(q=case.number)).items] == [case.id]
    assert audits(s, case.id, "case.transfer.accepted") == [{"transfer": str(transfer.id)}]


def test_a_case_is_not_handed_to_the_government_of_a_members_nationality(world: CasesWorld) -> None:
    w, s = world, world.session
    members = household()
    members[2]["nationality"] = "CA"  # a child is Canadian
    case = w.open_case(members=members)
    access = w.access("admin_unhcr", case)
    with pytest.raises(ValidationFailed) as exc:
        sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access, to_org_id=w.net.orgs["canada"].id,
                                 reason="Canada processes the family")
    assert exc.value.errors[0].field == "to_org_id" and "Canada" in exc.value.errors[0].message
    assert s.scalar(select(func.count(Transfer.id)).where(Transfer.case_id == case.id)) == 0

    # A member who becomes a national while the transfer waits: it can no longer be accepted.
    other = w.open_case()
    transfer = sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=w.access("admin_unhcr", other),
                                        to_org_id=w.net.orgs["canada"].id, reason="Canada processes the family")
    child = service.members_of(s, other)[2]
    service.update_member(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", other),
                          member=child, changes={"nationality": "CA"})
    with pytest.raises(Conflict):
        sharing.decide_transfer(s, actor=w.p("admin_canada"), transfer=transfer, decision="accepted")
    assert transfer.status == TransferStatus.pending and other.owner_org_id == w.net.orgs["unhcr"].id
    sharing.decide_transfer(s, actor=w.p("admin_canada"), transfer=transfer, decision="declined")
    assert sees(w, "officer_canada", other) is None


def test_a_case_is_referred_once_at_a_time_to_a_government(world: CasesWorld) -> None:
    w = world
    case, referral = case_with_referral(w)
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "canada")
    assert "already referred" in exc.value.errors[0].message
    with pytest.raises(ValidationFailed) as exc:
        w.refer(case, "spain", "spain")
    assert exc.value.errors[0].field == "recipients[1]"
    sharing.change_referral(w.session, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                            reason="Wrong sections chosen")
    clock.advance(timedelta(minutes=1))
    w.refer(case, "canada", sections=["identity"])
    assert len(referrals_to(w, case, "canada")) == 2 and referral_to(w, case, "canada").sections == ["identity"]


def test_a_transfer_declined_or_cancelled_changes_no_owner(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    number = case.number
    access = w.access("admin_unhcr", case)
    first = sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access,
                                     to_org_id=w.net.orgs["germany"].id, reason="Germany offered to take it")
    with pytest.raises(ValidationFailed):  # a refused decision changes nothing
        sharing.decide_transfer(s, actor=w.p("minister_germany"), transfer=first, decision="declined",
                                note="x" * 1001)
    assert first.status == TransferStatus.pending and first.decided_at is None
    sharing.decide_transfer(s, actor=w.p("minister_germany"), transfer=first, decision="declined",
                            note="Not now")
    second = sharing.request_transfer(s, actor=w.p("admin_unhcr"), access=access,
                                      to_org_id=w.net.orgs["germany"].id, reason="Asking again")
    with pytest.raises(policy.Forbidden):
        sharing.decide_transfer(s, actor=w.p("admin_unhcr"), transfer=second, decision="pending")
    sharing.decide_transfer(s, actor=w.p("admin_unhcr"), transfer=second, decision="cancelled")
    assert (first.status, second.status) == (TransferStatus.declined, TransferStatus.cancelled)
    assert case.owner_org_id == w.net.orgs["unhcr"].id and case.number == number and case.previous_numbers == []
    assert sees(w, "minister_germany", case) is None
    assert s.scalar(select(func.count(Transfer.id)).where(Transfer.case_id == case.id)) == 2
