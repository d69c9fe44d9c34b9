"""The screening rules' pages through a signed-in browser: the list in words, a change previewed (the counts shown
before anything is saved) and then saved, errors naming the rows of the JSON, versions, switching a rule off, and
who may see and change what (another office's rule is a 404, as a missing one; a caseworker reads but does not
change)."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.mobility import screening
from rdn.mobility.models import RuleStatus, ScreeningResult, ScreeningRule
from tests.factories import Client, csrf_of
from tests.mobility.conftest import MobilityWorld
from tests.mobility.test_screening import TRADE

PAROLE = [{"field": "nationality", "op": "in", "value": ["VE", "NI"]},
          {"field": "arrived_on", "op": "on_or_before", "value": "2023-06-12"}]


def browser(app: Any, world: MobilityWorld, persona: str) -> Client:
    office = "co" if persona.endswith("_co") else "cr"
    return Client(app).login(world.session, world.net.people[persona], org=world.orgs[office])


def previewed(page: str) -> str:
    match = re.search(r'name="previewed" value="([^"]*)"', page)
    assert match
    return match.group(1)


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def form(data: dict[str, Any], action: str, page: str, fingerprint: str = "") -> dict[str, str]:
    return {"csrf_token": csrf_of(page), "action": action, "previewed": fingerprint, "name": data["name"],
            "destination": data["destination"], "pathway_id": data.get("pathway_id", ""),
            "questions": json.dumps(data.get("questions", [])), "conditions": json.dumps(data["conditions"])}


def test_preview_then_save_then_change(app: Any, mobility_world: MobilityWorld, session: Session,
                                       frozen_now: Any) -> None:
    world = mobility_world
    for nationality, arrived in (("VE", date(2023, 1, 1)), ("NI", date(2023, 6, 12)), ("NI", date(2023, 6, 13)),
                                 ("CO", date(2022, 1, 1))):
        world.registration(nationality=nationality, arrived_on=arrived)
    session.commit()
    officer = browser(app, world, "officer_cr")
    page = officer.get("/mobility/rules")
    assert page.status_code == 200 and "No screening rules yet" in page.text

    new = officer.get("/mobility/rules/new")
    assert new.status_code == 200 and 'name="conditions"' in new.text and "on_or_before" in new.text
    data = {"name": "US parole", "destination": "US", "conditions": PAROLE}
    # Save without a preview: the preview is shown instead, nothing is saved.
    shown = officer.post("/mobility/rules/new", data=form(data, "save", new.text))
    assert shown.status_code == 200 and "changed since its preview" in shown.text
    assert session.scalar(select(func.count()).select_from(ScreeningRule)) == 0
    preview = officer.post("/mobility/rules/new", data=form(data, "preview", new.text))
    assert preview.status_code == 200
    assert "This change would move 2 of 4 current registrations: 2 would newly qualify, 0 would no longer." \
        in text_of(preview.text)
    assert session.scalar(select(func.count()).select_from(ScreeningRule)) == 0
    saved = officer.post("/mobility/rules/new", data=form(data, "save", preview.text, previewed(preview.text)))
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/mobility/rules?notice=saved&gained=2&lost=0")
    rule = session.scalars(select(ScreeningRule)).one()
    assert (rule.name, rule.version, rule.created_by_user_id) == ("US parole", 1, world.net.people["officer_cr"].id)
    listing = officer.get(saved.headers["location"])
    words = text_of(listing.text)
    assert "Nationality is one of Venezuela, Nicaragua" in words and "Date of arrival is on or before Jun 12, 2023" \
        in words and "2 newly qualify, 0 no longer" in words
    assert f"/mobility/rules/{rule.rule_key}/history" in listing.text

    # A change: preview 1 gained 1 lost, the fields changed after the preview are previewed again, then saved.
    edit = officer.get(f"/mobility/rules/{rule.id}/edit")
    assert edit.status_code == 200 and "US parole" in edit.text
    changed = {"name": "US parole (NI)", "destination": "US", "questions": [TRADE],
               "conditions": [{"field": "nationality", "op": "eq", "value": "NI"}]}
    preview = officer.post(f"/mobility/rules/{rule.id}/edit", data=form(changed, "preview", edit.text))
    assert "move 2 of 4 current registrations: 1 would newly qualify, 1 would no longer" in text_of(preview.text)
    stale = officer.post(f"/mobility/rules/{rule.id}/edit",
                         data=form({**changed, "name": "Other"}, "save", preview.text, previewed(preview.text)))
    assert stale.status_code == 200 and "changed since its preview" in stale.text
    saved = officer.post(f"/mobility/rules/{rule.id}/edit",
                         data=form(changed, "save", preview.text, previewed(preview.text)))
    assert saved.status_code == 303 and "gained=1&lost=1" in saved.headers["location"]
    session.expire_all()
    v2 = session.scalars(select(ScreeningRule).where(ScreeningRule.status == RuleStatus.active)).one()
    assert (v2.rule_key, v2.version) == (rule.rule_key, 2)
    assert session.scalar(select(func.count()).select_from(ScreeningResult).where(
        ScreeningResult.rule_id == v2.id, ScreeningResult.qualifies.is_(True))) == 2
    history = officer.get(f"/mobility/rules/{rule.rule_key}/history")
    assert history.status_code == 200 and "Version 2" in history.text and "Version 1" in history.text
    assert "Do you have experience in a trade?" in history.text
    # Editing the replaced version is refused (a newer one exists).
    old = officer.post(f"/mobility/rules/{rule.id}/edit", data=form(changed, "preview", edit.text))
    assert old.status_code == 409 and "newer version" in old.text

    retired = officer.post(f"/mobility/rules/{v2.id}/retire", data={"csrf_token": csrf_of(history.text)})
    assert retired.status_code == 303 and "notice=retired&lost=2" in retired.headers["location"]
    session.expire_all()
    assert screening.active_rules(session, world.offices["cr"].id) == []


def test_errors_name_the_rows(app: Any, mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    officer = browser(app, mobility_world, "officer_cr")
    new = officer.get("/mobility/rules/new")
    bad = {"name": "", "destination": "US", "conditions": [PAROLE[0], {"field": "age", "op": "before", "value": 3}]}
    page = officer.post("/mobility/rules/new", data=form(bad, "preview", new.text))
    assert page.status_code == 422
    words = text_of(page.text)
    assert "conditions[1].op: “before” does not apply to age" in words and "is required" in words
    assert 'aria-invalid="true"' in page.text and 'href="#f-conditions"' in page.text
    data = form(bad, "preview", new.text)
    data["conditions"] = '[{"field": "ties"'
    page = officer.post("/mobility/rules/new", data=data)
    assert page.status_code == 422 and "is not valid JSON" in page.text
    assert '[{&#34;field&#34;: &#34;ties&#34;' in page.text  # what was typed is kept (escaped)
    assert session.scalar(select(func.count()).select_from(ScreeningRule)) == 0


def test_who_may_see_and_change(app: Any, mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    world = mobility_world
    rule = screening.save_rule(session, actor=world.p("officer_cr"), office=world.offices["cr"],
                               data={"name": "US parole", "destination": "US", "conditions": PAROLE})
    session.commit()
    caseworker = browser(app, world, "caseworker_cr")
    page = caseworker.get("/mobility/rules")
    assert page.status_code == 200 and "US parole" in page.text
    assert "/mobility/rules/new" not in page.text and f"/mobility/rules/{rule.id}/edit" not in page.text
    assert caseworker.get(f"/mobility/rules/{rule.rule_key}/history").status_code == 200
    assert caseworker.get("/mobility/rules/new").status_code == 403
    assert caseworker.get(f"/mobility/rules/{rule.id}/edit").status_code == 403
    token = csrf_of(page.text)
    assert caseworker.post(f"/mobility/rules/{rule.id}/edit", data={"csrf_token": token, "action": "preview"}
                           ).status_code == 403
    assert caseworker.post(f"/mobility/rules/{rule.id}/retire", data={"csrf_token": token}).status_code == 403

    other = browser(app, world, "officer_co")
    listing = other.get("/mobility/rules")
    assert listing.status_code == 200 and "US parole" not in listing.text
    token = csrf_of(listing.text)
    missing = uuid.uuid4()
    for url in (f"/mobility/rules/{rule.id}/edit", f"/mobility/rules/{rule.rule_key}/history"):
        assert other.get(url).status_code == 404
    assert other.get(f"/mobility/rules/{missing}/edit").status_code == 404
    assert other.get(f"/mobility/rules/{missing}/history").status_code == 404
    assert other.post(f"/mobility/rules/{rule.id}/retire", data={"csrf_token": token}).status_code == 404
    assert other.post(f"/mobility/rules/{rule.id}/edit", data={"csrf_token": token, "action": "save"}
                      ).status_code == 404

    analyst = browser(app, world, "analyst_cr")
    assert analyst.get("/mobility/rules").status_code == 403
    assert analyst.get(f"/mobility/rules/{rule.id}/edit").status_code == 404
    outsider = Client(app).login(session, world.net.people["officer_canada"], org=world.net.orgs["canada"])
    assert outsider.get("/mobility/rules").status_code == 403
    assert Client(app).get("/mobility/rules").status_code in (302, 303, 307)
    session.expire_all()
    assert session.get(ScreeningRule, rule.id).status == RuleStatus.active
