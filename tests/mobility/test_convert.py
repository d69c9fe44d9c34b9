"""Turning a registration into a case referred to a government, in one step: the case with the household, the
consent given online, the referral open with the agreement's sections, the registration referred; and every
refusal leaves nothing behind (no case, no consent, no referral, the registration unchanged)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases.models import (
    Case,
    Consent,
    ConsentMethod,
    FamilyTie,
    Member,
    Purpose,
    Referral,
    ReferralStatus,
)
from rdn.cases.policy import access_case
from rdn.core import policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import ValidationFailed
from rdn.mobility import convert as cv
from rdn.mobility.models import RegistrationStatus
from tests.mobility.test_queue import make_rule, result


def counts(session: Session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(m)) or 0 for m in (Case, Member, Consent, Referral))


@pytest.fixture
def ready(mobility_world: Any, session: Session, frozen_now: Any) -> dict[str, Any]:
    w = mobility_world
    office = w.offices["cr"]
    reg = w.registration(given_name="María", family_name="López", nationality="VE", ties=["ES"],
                         members=[{"relationship": "child", "sex": "m", "birth_date": "2015-02-03",
                                   "nationality": "VE", "given_name": "Mateo"},
                                  {"relationship": "spouse", "sex": "m", "birth_date": "1988-07-30",
                                   "nationality": "CO", "given_name": "Luis", "family_name": "Gómez"}])
    rules = {"es": make_rule(session, office, w.pathways["es_resettlement"]),
             "es_family": make_rule(session, office, w.pathways["es_family"], name="Family in Spain"),
             "ca": make_rule(session, office, w.pathways["ca_labour"], name="Canada labour", destination="CA"),
             "de": make_rule(session, office, None, name="Germany humanitarian admission", destination="DE")}
    for key, rule in rules.items():
        result(session, reg, rule, qualifies=key != "es_family", status=RegistrationStatus.interviewed)
    session.commit()
    return {"reg": reg, "rules": rules, "spain": w.net.orgs["spain"], "canada": w.net.orgs["canada"],
            "germany": w.net.orgs["germany"]}


def test_conversion_end_to_end(mobility_world, session, ready):
    w, reg = mobility_world, ready["reg"]
    cw = w.p("caseworker_cr")
    case, round_ = cv.convert(session, actor=cw, registration=reg, rule_id=ready["rules"]["es"].id,
                              government_org_id=str(ready["spain"].id), note="Interviewed on 2 November")
    session.commit()
    assert case.owner_org_id == w.orgs["cr"].id and case.current_country == "CR" and case.size == 3
    assert case.principal_name == "María López" and case.nationality == "VE"
    assert (case.category_primary.value, case.category_secondary.value) == ("LAS", "LPN")
    assert case.preferences["countries"] == ["ES"]
    members = session.scalars(select(Member).where(Member.case_id == case.id).order_by(Member.position)).all()
    assert [(m.relationship.value, m.given_name, m.family_name, m.sex.value, m.birth_date, m.nationality)
            for m in members] == [("principal", "María", "López", "female", date(1990, 5, 17), "VE"),
                                  ("child", "Mateo", "López", "male", date(2015, 2, 3), "VE"),
                                  ("spouse", "Luis", "Gómez", "male", date(1988, 7, 30), "CO")]
    assert [t.country for t in session.scalars(select(FamilyTie).where(FamilyTie.case_id == case.id))] == ["ES"]
    consent = session.scalars(select(Consent).where(Consent.case_id == case.id)).one()
    assert (consent.recipient_org_id, consent.purpose, consent.method) == (ready["spain"].id, Purpose.resettlement,
                                                                           ConsentMethod.digital)
    referral = session.scalars(select(Referral).where(Referral.case_id == case.id)).one()
    assert referral.recipient_org_id == ready["spain"].id and referral.status == ReferralStatus.pending
    assert referral.consent_id == consent.id and round_.purpose == Purpose.resettlement
    assert set(round_.sections) == set(w.agreement.sections)
    assert (reg.status, reg.case_id, reg.referred_org_id) == (RegistrationStatus.referred, case.id, ready["spain"].id)
    assert reg.referred_pathway_id == w.pathways["es_resettlement"].id and reg.referred_at is not None
    assert reg.history[-1]["status"] == "referred"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "mobility.registration.convert")).one()
    assert entry.object_id == str(reg.id) and entry.details["case"] == str(case.id)
    # Spain sees the case, through the referral.
    spain = access_case(session, w.p("minister_spain"), case.id)
    assert spain.sees("identity") and not spain.owner
    # Again: refused.
    with pytest.raises(ValidationFailed) as exc:
        cv.convert(session, actor=cw, registration=reg, rule_id=ready["rules"]["es"].id,
                   government_org_id=ready["spain"].id)
    assert exc.value.errors[0].field == "status"


def test_family_reunification_asks_for_that(mobility_world, session, ready):
    rule = ready["rules"]["es_family"]
    result(session, ready["reg"], rule, status=None).qualifies = True
    session.flush()
    ready["reg"].status = RegistrationStatus.interviewed
    # The earlier non-qualifying result of the same rule is no longer current.
    for row in session.scalars(select(cv.ScreeningResult).where(cv.ScreeningResult.rule_id == rule.id,
                                                                cv.ScreeningResult.qualifies.is_(False))):
        row.current = False
    case, round_ = cv.convert(session, actor=mobility_world.p("caseworker_cr"), registration=ready["reg"],
                              rule_id=rule.id, government_org_id=ready["spain"].id)
    assert round_.purpose == Purpose.family_reunification
    assert (case.category_primary.value, case.category_secondary.value) == ("FAM", "LAS")


@pytest.mark.parametrize(("case", "field"), [
    ("no_agreement", "government_org_id"),  # Germany: no agreement in force with the office
    ("no_consent", "consent_share"),
    ("not_qualified", "rule_id"),
    ("unknown_rule", "rule_id"),
    ("wrong_destination", "government_org_id"),
    ("not_a_government", "government_org_id"),
    ("not_screened", "status"),
    ("bad_member", "members[1].date_of_birth"),  # refused by the cases code, after the case was begun
])
def test_a_refusal_leaves_nothing(mobility_world, session, ready, case, field):
    w, reg = mobility_world, ready["reg"]
    rule, gov = ready["rules"]["es"], ready["spain"]
    if case == "no_agreement":
        rule = ready["rules"]["de"]
        gov = ready["germany"]
    elif case == "no_consent":
        reg.consent_share = None
    elif case == "not_qualified":
        rule = ready["rules"]["es_family"]
    elif case == "unknown_rule":
        rule = ready["rules"]["es"]
        rule.id  # noqa: B018 - loaded
        session.commit()
        rule = type("R", (), {"id": "not-a-rule"})()
    elif case == "wrong_destination":
        gov = ready["canada"]
    elif case == "not_a_government":
        gov = w.orgs["co"]
    elif case == "not_screened":
        reg.status = RegistrationStatus.received
    elif case == "bad_member":
        reg.profile = {**reg.profile, "members": [reg.profile["members"][0],
                                                  {**reg.profile["members"][1], "birth_date": "2999-01-01"},
                                                  reg.profile["members"][2]]}
    session.commit()
    before = counts(session)
    audit_before = session.scalar(select(func.count()).select_from(AuditEntry))
    status, history = reg.status, list(reg.history)
    with pytest.raises(ValidationFailed) as exc:
        cv.convert(session, actor=w.p("caseworker_cr"), registration=reg, rule_id=rule.id, government_org_id=gov.id)
    assert exc.value.errors[0].field == field, exc.value.errors
    session.commit()  # whatever the session still held
    assert counts(session) == before
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audit_before
    session.refresh(reg)
    assert (reg.status, reg.case_id, reg.history) == (status, None, history)


def test_no_agreement_fails_halfway_and_rolls_back(mobility_world, session, ready):
    """The agreement is checked by the cases code after the case was created: the savepoint takes it back."""
    w = mobility_world
    w.agreement.status = w.agreement.status.__class__.ended
    session.commit()
    before = counts(session)
    with pytest.raises(ValidationFailed) as exc:
        cv.convert(session, actor=w.p("caseworker_cr"), registration=ready["reg"], rule_id=ready["rules"]["es"].id,
                   government_org_id=ready["spain"].id)
    assert exc.value.errors[0].field == "government_org_id"
    assert "agreement" in exc.value.errors[0].message
    session.commit()
    assert counts(session) == before and ready["reg"].case_id is None


def test_who_may_convert(mobility_world, session, ready):
    w = mobility_world
    for persona in ("caseworker_co", "analyst_cr", "minister_spain"):
        with pytest.raises(policy.AuthError):
            cv.convert(session, actor=w.p(persona), registration=ready["reg"], rule_id=ready["rules"]["es"].id,
                       government_org_id=ready["spain"].id)
    case, _round = cv.convert(session, actor=w.p("officer_cr"), registration=ready["reg"],
                              rule_id=ready["rules"]["es"].id, government_org_id=ready["spain"].id)
    assert case.created_by_user_id == w.net.people["officer_cr"].id


def test_the_forms_choices(mobility_world, session, ready):
    w = mobility_world
    names = [c.rule.name for c in cv.choices(session, ready["reg"])]
    assert sorted(names) == sorted(["Spain resettlement", "Canada labour", "Germany humanitarian admission"])
    govs = cv.governments(session, w.offices["cr"])
    assert govs[0] == (ready["spain"], True) and (ready["germany"], False) in govs


def test_converting_from_the_page(mobility_world, session, ready, client):
    w, reg = mobility_world, ready["reg"]
    client.login(session, w.net.people["caseworker_cr"])
    page = client.get(f"/mobility/registrations/{reg.id}")
    assert page.status_code == 200 and 'action="/mobility/registrations/' in page.text
    assert "Spain resettlement" in page.text and "agreement in force" in page.text
    refused = client.post(f"/mobility/registrations/{reg.id}/convert",
                          data={"rule_id": str(ready["rules"]["de"].id), "government_org_id": str(ready["germany"].id)})
    assert refused.status_code == 422 and 'id="e-government_org_id"' in refused.text
    assert session.scalar(select(func.count()).select_from(Case)) == 0
    done = client.post(f"/mobility/registrations/{reg.id}/convert",
                       data={"rule_id": str(ready["rules"]["es"].id), "government_org_id": str(ready["spain"].id),
                             "note": "Seen today"})
    assert done.status_code == 303, done.text
    case = session.scalars(select(Case)).one()
    assert done.headers["location"] == f"/cases/{case.id}"
    session.refresh(reg)
    assert reg.status == RegistrationStatus.referred and reg.case_id == case.id
    assert client.get(done.headers["location"]).status_code == 200
    client.login(session, w.net.people["caseworker_co"])
    assert client.post(f"/mobility/registrations/{reg.id}/convert",
                       data={"rule_id": str(ready["rules"]["es"].id),
                             "government_org_id": str(ready["spain"].id)}).status_code == 404
