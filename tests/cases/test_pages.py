"""The cases pages through HTTP: opening a case with its family, the case page by persona, revealing a sealed
section after a step-up, referring under an agreement, the recipient's view and thread, revocation on the next
request, agreements and transfers, the access log. Forms are posted as a browser without JavaScript would."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from rdn.cases.models import Case, Referral, ReferralStatus
from rdn.core.audit import AuditEntry
from rdn.core.identity import UserSession
from tests.cases.conftest import CasesWorld
from tests.factories import Client


@pytest.fixture
def browsers(app: Any, cases_world: CasesWorld) -> dict[str, Client]:
    w = cases_world
    out = {}
    for persona in ("caseworker_unhcr", "admin_unhcr", "officer_canada", "admin_canada", "minister_spain",
                    "minister_germany", "sponsor_group_a", "analyst_ec"):
        out[persona] = Client(app).login(w.session, w.net.people[persona], org=w.net.org_of(persona))
    return out


def _new_case_form(**over: str) -> dict[str, str]:
    form = {"count": "3", "category_primary": "LPN", "category_secondary": "LAS", "processing_priority": "urgent",
            "submission_priority": "normal", "current_country": "PK", "current_location": "Peshawar",
            "note": "Opened after the assessment interview",
            "m0-relationship": "principal", "m0-given_name": "Abdul Rahman", "m0-family_name": "Karimi",
            "m0-sex": "male", "m0-date_of_birth": "1979", "m0-nationality": "AF", "m0-languages": "prs",
            "m0-education": "university", "m0-occupation": "Engineer",
            "m1-relationship": "spouse", "m1-given_name": "Zainab", "m1-family_name": "Karimi", "m1-sex": "female",
            "m1-date_of_birth": "1985-06-01", "m1-nationality": "AF",
            "m2-relationship": "child", "m2-given_name": "", "m2-family_name": "", "m2-sex": "",
            "m2-date_of_birth": ""}
    form.update(over)
    return form


def _case_id(response: Any) -> uuid.UUID:
    alert = re.search(r'<div class="alert".*?</div>', response.text, re.S)
    assert response.status_code == 303, alert.group(0) if alert else response.text[-3000:]
    match = re.match(r"/cases/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return uuid.UUID(match.group(1))


def test_opening_a_case_with_its_family_and_the_case_page(browsers, cases_world):
    cw = browsers["caseworker_unhcr"]
    assert cw.get("/cases/new").status_code == 200
    case_id = _case_id(cw.post("/cases/new", data=_new_case_form()))
    case = cases_world.session.get(Case, case_id)
    assert case.size == 2 and case.principal_name == "Abdul Rahman Karimi"  # the empty third row is ignored
    page = cw.get(f"/cases/{case_id}?created=1")
    assert page.status_code == 200
    html = page.text
    assert "Abdul Rahman Karimi" in html and "Zainab" in html and "Engineer" in html
    assert 'aria-current="step"' in html  # the timeline marks the current stage
    assert "Reveal" in html  # sensitive sections behind a reveal
    # The list finds the case by another spelling.
    listing = cw.get("/cases", params={"q": "abdulrahman"})
    assert case.number in listing.text
    assert case.number not in cw.get("/cases", params={"q": "Hashimi"}).text


def test_a_refused_form_names_the_fields_and_changes_nothing(browsers, cases_world):
    cw = browsers["caseworker_unhcr"]
    before = cases_world.session.scalar(select(Case.id).limit(1))
    response = cw.post("/cases/new", data=_new_case_form(**{"m1-date_of_birth": "85", "category_secondary": "LPN"}))
    assert response.status_code == 422
    assert "must be a year such as 1987" in response.text
    assert "must differ from the primary category" in response.text
    assert 'value="Abdul Rahman"' in response.text  # what was typed is kept
    assert cases_world.session.scalar(select(Case.id).limit(1)) == before


def test_a_look_alike_is_warned_before_opening(browsers, cases_world):
    cases_world.open_case(members=[{"relationship": "principal", "given_name": "Abdulrahman", "family_name": "Karimy",
                                    "sex": "male", "date_of_birth": "1980", "nationality": "AF"}])
    cases_world.session.commit()
    cw = browsers["caseworker_unhcr"]
    response = cw.post("/cases/new", data=_new_case_form())
    assert response.status_code == 200
    assert "Someone like this is already on a case you can see" in response.text
    confirmed = cw.post("/cases/new", data={**_new_case_form(), "confirm_similar": "1"})
    _case_id(confirmed)


def test_who_sees_the_case_page(browsers, cases_world):
    w = cases_world
    case = w.open_case()
    w.refer(case, "canada")
    w.session.commit()
    owner = browsers["caseworker_unhcr"].get(f"/cases/{case.id}")
    assert owner.status_code == 200 and "Mohammad Rahimi" in owner.text and "Teacher" in owner.text
    assert f"/cases/{case.id}/members/" in owner.text  # the owner's caseworker edits the family
    assert "Member-confidential notes" in owner.text  # caseworkers of the owner
    leader = browsers["admin_unhcr"].get(f"/cases/{case.id}")  # an administrator and senior official
    assert leader.status_code == 200 and "Mohammad Rahimi" in leader.text
    assert "Member-confidential notes" not in leader.text
    officer = browsers["officer_canada"].get(f"/cases/{case.id}")
    assert officer.status_code == 200 and "Mohammad Rahimi" in officer.text and "Teacher" not in officer.text
    summary_only = browsers["admin_canada"].get(f"/cases/{case.id}")  # the recipient's administrator
    assert summary_only.status_code == 200 and "Mohammad" not in summary_only.text
    assert case.number in summary_only.text
    for persona in ("minister_spain", "minister_germany", "sponsor_group_a", "analyst_ec"):
        assert browsers[persona].get(f"/cases/{case.id}").status_code == 404, persona


def test_reveal_needs_a_step_up_and_is_audited(app, browsers, cases_world):
    w = cases_world
    cw = browsers["caseworker_unhcr"]
    case = w.open_case()
    w.session.commit()
    saved = cw.post(f"/cases/{case.id}/sensitive/protection", data={"narrative": "Threatened at the checkpoint"})
    assert saved.status_code == 303
    shown = cw.get(f"/cases/{case.id}/sensitive/protection")
    assert shown.status_code == 200 and "Threatened at the checkpoint" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    reads = w.session.scalars(select(AuditEntry).where(AuditEntry.action == "sensitive.read",
                                                       AuditEntry.object_id == str(case.id))).all()
    assert [r.details for r in reads] == [{"fields": ["protection"]}]
    # Without a recent step-up, the reveal sends to the step-up page and shows nothing.
    row = w.session.get(UserSession, cw.session_row_id)
    row.mfa_at = row.mfa_at.replace(year=row.mfa_at.year - 1)
    w.session.commit()
    stale = cw.get(f"/cases/{case.id}/sensitive/protection")
    assert stale.status_code == 303 and stale.headers["location"].startswith("/account/step-up")
    assert "Threatened" not in stale.text


def test_refer_the_recipient_sees_agreed_sections_asks_and_accepts(browsers, cases_world):
    w = cases_world
    case = w.open_case()
    w.consent(case, "canada")
    w.session.commit()
    cw = browsers["caseworker_unhcr"]
    assert cw.get(f"/cases/{case.id}/refer").status_code == 200
    refused = cw.post(f"/cases/{case.id}/refer", data={
        "purpose": "resettlement", "mode": "parallel", "recipients": [str(w.net.orgs["spain"].id)],
        "sections": ["identity"]})
    assert refused.status_code == 422 and "Spain" in refused.text and "consent" in refused.text
    sent = cw.post(f"/cases/{case.id}/refer", data={
        "purpose": "resettlement", "mode": "parallel", "recipients": [str(w.net.orgs["canada"].id)],
        "sections": ["identity", "needs"], "note": "Urgent protection case"})
    assert sent.status_code == 303, sent.text[:3000]
    referral = w.session.scalars(select(Referral).where(Referral.case_id == case.id)).one()

    officer = browsers["officer_canada"]
    inbox = officer.get("/referrals")
    assert case.number in inbox.text
    page = officer.get(f"/referrals/{referral.id}")
    assert page.status_code == 200
    assert "Mohammad" in page.text and "Urgent protection case" in page.text
    assert "Teacher" not in page.text  # background was not shared
    assert f"/cases/{case.id}/members/" not in page.text  # no editing for the recipient
    case_page = officer.get(f"/cases/{case.id}")
    assert "Teacher" not in case_page.text and "Islamabad" not in case_page.text  # location not shared
    assert "Reveal" not in case_page.text  # no sealed section shared
    assert officer.post(f"/referrals/{referral.id}/messages", data={"body": "Is the eldest child in school?"}
                        ).status_code == 303
    w.session.refresh(referral)
    assert referral.status == ReferralStatus.in_progress
    assert "Is the eldest child in school?" in cw.get(f"/referrals/{referral.id}").text
    assert officer.post(f"/referrals/{referral.id}/status", data={"status": "accepted"}).status_code == 303
    w.session.refresh(referral)
    assert referral.status == ReferralStatus.accepted
    # The sender cannot accept for the recipient.
    assert cw.post(f"/referrals/{referral.id}/status", data={"status": "done"}).status_code in (303, 422)


def test_revoking_denies_the_very_next_request(browsers, cases_world):
    w = cases_world
    case = w.open_case()
    w.refer(case, "canada")
    w.session.commit()
    referral = w.session.scalars(select(Referral).where(Referral.case_id == case.id)).one()
    officer = browsers["officer_canada"]
    assert officer.get(f"/cases/{case.id}").status_code == 200
    assert browsers["caseworker_unhcr"].post(f"/referrals/{referral.id}/status",
                                             data={"status": "revoked", "reason": "Family withdrew"}).status_code == 303
    assert officer.get(f"/cases/{case.id}").status_code == 404
    assert officer.get(f"/api/v1/cases/{case.id}").status_code == 404
    page = officer.get(f"/referrals/{referral.id}")
    assert page.status_code == 200 and "Mohammad" not in page.text and "no longer shows the case" in page.text


def test_agreement_pages_propose_accept_end(browsers, cases_world):
    w = cases_world
    admin = browsers["admin_unhcr"]
    assert admin.get("/agreements/new").status_code == 200
    made = admin.post("/agreements/new", data={
        "other_org_id": str(w.net.orgs["canada"].id), "we_provide": "yes", "title": "Family reunion pilot",
        "purposes": ["family_reunification"], "sections": ["identity", "family"]})
    assert made.status_code == 303
    path = made.headers["location"]
    assert "Family reunion pilot" in browsers["admin_canada"].get("/agreements").text
    assert browsers["officer_canada"].post(f"{path}/decision", data={"decision": "active"}).status_code == 404
    assert admin.post(f"{path}/decision", data={"decision": "active"}).status_code == 409  # the proposer cannot
    assert browsers["admin_canada"].post(f"{path}/decision", data={"decision": "active"}).status_code == 303
    assert "In force" in admin.get(path).text
    assert browsers["admin_canada"].post(f"{path}/decision", data={"decision": "ended", "reason": "x"}
                                         ).status_code == 422
    assert browsers["admin_canada"].post(f"{path}/decision", data={"decision": "ended", "reason": "Pilot over"}
                                         ).status_code == 303
    assert browsers["minister_spain"].get(path).status_code == 404


def test_transfer_pages_and_the_access_log(browsers, cases_world):
    w = cases_world
    case = w.open_case()
    w.session.commit()
    admin = browsers["admin_unhcr"]
    offered = admin.post(f"/cases/{case.id}/transfers", data={"to_org_id": str(w.net.orgs["germany"].id),
                                                              "reason": "Germany takes over processing"})
    assert offered.status_code == 303
    transfer_path = offered.headers["location"]
    germany = browsers["minister_germany"]
    assert germany.get(f"/cases/{case.id}").status_code == 404
    assert "Accept" in germany.get(transfer_path).text
    assert germany.post(f"{transfer_path}/decision", data={"decision": "accepted"}).status_code == 303
    assert germany.get(f"/cases/{case.id}").status_code == 200
    assert browsers["caseworker_unhcr"].get(f"/cases/{case.id}").status_code == 404
    w.session.refresh(case)
    assert case.number.startswith("GERMANY-") and case.previous_numbers
    log = germany.get(f"/cases/{case.id}/log")
    assert log.status_code == 200 and "case.transfer.accepted" in log.text and "case.view" in log.text
    assert browsers["officer_canada"].get(f"/cases/{case.id}/log").status_code == 404


HEADER = (b"case_key,current_country,category_primary,category_secondary,processing_priority,submission_priority,"
          b"relationship,given_name,family_name,sex,date_of_birth,nationality\r\n")


def test_import_page_reports_rows_and_imports_all_or_nothing(browsers, cases_world):
    cw = browsers["caseworker_unhcr"]
    assert "case_key" in cw.get("/cases/import").text
    assert cw.get("/cases/import/template.csv").content.startswith("\ufeffcase_key".encode())
    bad = HEADER + (b"h1,PK,LPN,LAS,normal,normal,principal,Bibi,Sultani,female,1980,AF\r\n"
                    b"h1,PK,LPN,LAS,normal,normal,child,Nazia,Sultani,girl,2012,AF\r\n")
    refused = cw.post("/cases/import", files={"file": ("households.csv", bad)})
    assert refused.status_code == 422
    assert "row 3, column sex" in refused.text and "Nothing was imported" in refused.text
    assert not cases_world.session.scalars(select(Case).where(Case.principal_name == "Bibi Sultani")).first()
    dry = cw.post("/cases/import", files={"file": ("households.csv", bad.replace(b"girl", b"female"))},
                  data={"dry_run": "1"})
    assert dry.status_code == 200 and "a dry run" in dry.text
    assert not cases_world.session.scalars(select(Case).where(Case.principal_name == "Bibi Sultani")).first()
    done = cw.post("/cases/import", files={"file": ("households.csv", bad.replace(b"girl", b"female"))})
    assert done.status_code == 200 and "Imported 1 cases (2 people)" in done.text
    case = cases_world.session.scalars(select(Case).where(Case.principal_name == "Bibi Sultani")).one()
    assert case.size == 2
    assert browsers["admin_canada"].post("/cases/import", files={"file": ("h.csv", bad)}).status_code == 403


def test_exports_hold_only_what_the_exporter_may_see(browsers, cases_world):
    w = cases_world
    shared = w.open_case()
    w.refer(shared, "canada")
    private = w.open_case(members=[{"relationship": "principal", "given_name": "Private", "family_name": "Person",
                                    "sex": "male", "date_of_birth": "1970", "nationality": "SY"}])
    w.session.commit()
    owner = browsers["caseworker_unhcr"].get("/cases/export.csv")
    assert owner.status_code == 200 and owner.headers["content-type"].startswith("text/csv")
    assert shared.number in owner.text and private.number in owner.text and "#meta+id+case" in owner.text
    officer = browsers["officer_canada"].get("/cases/export.csv").text
    assert shared.number in officer and private.number not in officer
    assert "Mohammad" in officer and "Teacher" not in officer  # identity shared, background not
    admin = browsers["admin_canada"].get("/cases/export.csv").text
    assert shared.number in admin and "Mohammad" not in admin
    workbook = browsers["officer_canada"].get("/cases/export.xlsx")
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    assert browsers["sponsor_group_a"].get("/cases/export.csv").status_code == 403
    entries = w.session.scalars(select(AuditEntry).where(AuditEntry.action == "case.export",
                                                         AuditEntry.object_id == str(shared.id))).all()
    assert len(entries) >= 4
