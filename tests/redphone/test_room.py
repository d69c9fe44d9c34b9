"""The red phone's crisis room: the lifecycle, who declares and sits where, messages, pledges, decisions,
actions and their reminders, participants, the situation report, drills, live events, the home card and
the lists of crises."""

from __future__ import annotations

import json
import re
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.core import clock, identity, outbox
from rdn.core.events import EventLog
from rdn.core.tenancy import OrgKind, Role
from rdn.redphone import chains, drills, escalation, service
from rdn.redphone.models import (
    ACTION_TRANSITIONS,
    CRISIS_TRANSITIONS,
    PLEDGE_TRANSITIONS,
    Action,
    ActionStatus,
    ContactKind,
    Crisis,
    CrisisStatus,
    Decision,
    DecisionStatus,
    EscalationRun,
    Message,
    Page,
    Participant,
    ParticipantRole,
    Pledge,
    PledgeStatus,
    RunStatus,
)
from tests.factories import Client, make_org, make_person

# Tomorrow at a fixed time of day: after the real time the test network's own rows carry (a fixed date
# would fall behind it once that day had passed).
T0 = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
NEXT_WEEK = (T0 + timedelta(days=7)).date().isoformat()  # a due date that stays in the future


# Helpers -------------------------------------------------------------------------------------------------------


def principal(session: Any, net: Any, persona: str) -> identity.Principal:
    return identity.principal_for(session, net.people[persona], org_id=net.org_of(persona).id, via="session")


def declare(session: Any, net: Any, persona: str = "minister_spain", title: str = "Flooding in the delta",
            **kw: Any) -> Crisis:
    crisis = service.declare(session, actor=principal(session, net, persona), title=title, **kw)
    session.commit()
    return crisis


def as_(app: Any, session: Any, net: Any, persona: str) -> Client:
    return Client(app).login(session, net.people[persona])


def set_chain(session: Any, net: Any, gov: str, *levels: list[str], verified: bool = False) -> None:
    specs = [chains.LevelSpec(f"Level {i}", 5, [net.people[p].id for p in people])
             for i, people in enumerate(levels, 1)]
    chains.set_chain(session, actor=principal(session, net, "admin_secretariat"), org=net.orgs[gov],
                     levels=specs, repeat_count=0)
    if verified:
        for people in levels:
            for persona in people:
                method = chains.add_method(session, principal=principal(session, net, persona),
                                           kind=ContactKind.email, address=f"{persona}@mail.example")
                method.verified_at = clock.now()
    session.commit()


def count(session: Any, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def roles_of(session: Any, crisis: Crisis) -> dict[uuid.UUID, str]:
    return {p.org_id: ParticipantRole(p.role).value
            for p in session.scalars(select(Participant).where(Participant.crisis_id == crisis.id))}


def row_of(html: str, needle: str) -> str:
    """The table row of a page that contains ``needle``."""
    rows = [r for r in re.findall(r"<tr>.*?</tr>", html, re.S) if needle in r]
    assert len(rows) == 1, f"{needle!r} is in {len(rows)} rows"
    return rows[0]


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.frozen(T0):
        yield


# 1. The lifecycle, who declares, who sits where ---------------------------------------------------------------


def test_every_crisis_transition_is_allowed_or_a_conflict_that_changes_nothing(client, network, session):
    set_chain(session, network, "canada", ["officer_canada"])  # a live run, for closing to cancel
    crisis = declare(session, network)
    client.login(session, network.minister_spain)
    url = f"/api/v1/crises/{crisis.id}"
    conflicts = moves = 0
    for old in CrisisStatus:
        for new in CrisisStatus:
            if new == old:
                continue
            crisis.status = old
            crisis.closed_at = clock.now() if old == CrisisStatus.closed else None
            session.commit()
            messages = count(session, Message, Message.crisis_id == crisis.id)
            rounds = session.scalar(select(func.max(EscalationRun.round)).where(EscalationRun.crisis_id == crisis.id))
            closed_at = crisis.closed_at
            response = client.patch(url, json={"status": new.value})
            session.expire_all()
            if new in CRISIS_TRANSITIONS[old]:
                moves += 1
                assert response.status_code == 200, (old, new, response.text)
                assert response.json()["status"] == new.value
                assert crisis.status == new
                assert (crisis.closed_at is not None) == (new == CrisisStatus.closed)
                assert count(session, Message, Message.crisis_id == crisis.id) == messages + 1
                if new == CrisisStatus.closed:
                    assert count(session, EscalationRun, EscalationRun.crisis_id == crisis.id,
                                 EscalationRun.status == RunStatus.active) == 0
                if old == CrisisStatus.closed:  # reopening pages again
                    assert session.scalar(select(func.max(EscalationRun.round))
                                          .where(EscalationRun.crisis_id == crisis.id)) == rounds + 1
            else:
                conflicts += 1
                assert response.status_code == 409, (old, new, response.text)
                assert response.json()["status"] == 409
                assert crisis.status == old
                assert crisis.closed_at == closed_at
                assert count(session, Message, Message.crisis_id == crisis.id) == messages
                assert session.scalar(select(func.max(EscalationRun.round))
                                      .where(EscalationRun.crisis_id == crisis.id)) == rounds
    assert moves == sum(len(v) for v in CRISIS_TRANSITIONS.values())
    assert conflicts == len(CrisisStatus) * (len(CrisisStatus) - 1) - moves > 0

    # Only the chair's leadership (or the secretariat's) moves the crisis.
    status = crisis.status
    for persona in ("officer_canada", "minister_germany", "analyst_ec"):
        response = as_(client.app, session, network, persona).patch(url, json={"status": "closed"})
        assert response.status_code == 404, persona
    session.expire_all()
    assert crisis.status == status

    # The same status again changes nothing and is no conflict.
    response = client.patch(url, json={"status": CrisisStatus(crisis.status).value})
    assert response.status_code == 200


def test_senior_officials_and_the_secretariat_lead_declare_others_cannot(app, session, network):
    before = count(session, Crisis)
    for n, persona in enumerate(("minister_spain", "admin_secretariat")):
        c = as_(app, session, network, persona)
        response = c.post("/api/v1/crises", json={"title": f"API crisis {n}", "target_places": 100})
        assert response.status_code == 201, response.text
        crisis = session.get(Crisis, uuid.UUID(response.json()["id"]))
        assert crisis is not None and crisis.declared_by_org_id == network.org_of(persona).id
        assert c.get("/crises/new").status_code == 200
        response = c.post("/crises/new", data={"title": f"Page crisis {n}", "activation_level": "monitoring"})
        assert response.status_code == 303, response.text
        crisis_id = uuid.UUID(response.headers["location"].rsplit("/", 1)[1])
        crisis = session.get(Crisis, crisis_id)
        assert crisis is not None and crisis.title == f"Page crisis {n}" and not crisis.exercise
        assert roles_of(session, crisis)[network.org_of(persona).id] == "chair"
    assert count(session, Crisis) == before + 4

    for persona in ("officer_canada", "analyst_ec", "sponsor_group_a"):
        c = as_(app, session, network, persona)
        assert c.post("/api/v1/crises", json={"title": "Not mine to declare"}).status_code == 403, persona
        assert c.post("/crises/new", data={"title": "Not mine to declare"}).status_code == 403, persona
        assert c.get("/crises/new").status_code == 403, persona
    session.expire_all()
    assert count(session, Crisis) == before + 4
    assert count(session, Crisis, Crisis.title == "Not mine to declare") == 0


def test_the_declaring_government_chairs_and_every_seat_is_as_the_rules_say(app, client, session, network):
    crisis = declare(session, network)
    o = network.orgs
    assert roles_of(session, crisis) == {
        o["spain"].id: "chair", o["canada"].id: "member", o["germany"].id: "member",
        o["secretariat"].id: "rapporteur", o["ec"].id: "observer", o["unhcr"].id: "observer",
    }
    client.login(session, network.officer_canada)
    listed = {row["name"]: row["role"] for row in client.get(f"/api/v1/crises/{crisis.id}/participants").json()}
    assert listed == {"Spain": "chair", "Canada": "member", "Germany": "member", "RDN Secretariat": "rapporteur",
                      "European Commission": "observer", "UNHCR-like Agency": "observer"}
    room = client.get(f"/crises/{crisis.id}").text
    assert "Spain — Chair" in room and "European Commission — Observer" in room
    assert "Maple Street" not in room

    # The sponsor group takes no part: its people find nothing.
    sponsor = as_(app, session, network, "sponsor_group_a")
    assert sponsor.get(f"/crises/{crisis.id}").status_code == 404
    assert sponsor.get(f"/api/v1/crises/{crisis.id}").status_code == 404
    assert sponsor.get(f"/crises/{crisis.id}/sections/messages").status_code == 404
    for persona in ("caseworker_unhcr", "analyst_ec", "minister_germany", "admin_secretariat"):
        assert as_(app, session, network, persona).get(f"/crises/{crisis.id}").status_code == 200, persona

    # The secretariat declaring chairs itself; the governments are members.
    other = declare(session, network, "admin_secretariat", title="Earthquake in the hills")
    roles = roles_of(session, other)
    assert roles[o["secretariat"].id] == "chair"
    assert {roles[o[g].id] for g in ("canada", "spain", "germany")} == {"member"}


# 2. Messages ---------------------------------------------------------------------------------------------------


def test_messages_are_idempotent_by_client_id_and_the_form_works_with_and_without_htmx(app, client, session,
                                                                                        network):
    crisis = declare(session, network)
    client.login(session, network.minister_spain)
    url = f"/api/v1/crises/{crisis.id}/messages"
    client_id = uuid.uuid4().hex
    first = client.post(url, json={"client_id": client_id, "body": "Reception centres are full"})
    again = client.post(url, json={"client_id": client_id, "body": "Reception centres are full"})
    assert first.status_code == 201, first.text
    assert again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["author"] == "Minister Spain" and first.json()["organization"] == "Spain"
    assert count(session, Message, Message.crisis_id == crisis.id, Message.client_id == client_id) == 1

    officer = as_(app, session, network, "officer_canada")
    taken = officer.post(url, json={"client_id": client_id, "body": "Someone else's identifier"})
    assert taken.status_code == 409
    assert count(session, Message, Message.client_id == client_id) == 1
    assert count(session, Message, Message.body == "Someone else's identifier") == 0

    for bad in ("short", "has spaces in it", "x" * 65, "semi;colon-123"):
        response = client.post(url, json={"client_id": bad, "body": "hello"})
        assert response.status_code == 422, bad
        assert [e["field"] for e in response.json()["errors"]] == ["client_id"], bad
    assert count(session, Message, Message.body == "hello") == 0
    page_form = client.post(f"/crises/{crisis.id}/messages", data={"client_id": "bad id", "body": "hello"})
    assert page_form.status_code == 422 and "8 to 64 letters" in page_form.text
    assert count(session, Message, Message.body == "hello") == 0

    # The page form without JavaScript: back to the room, at the messages.
    page_id = uuid.uuid4().hex
    response = officer.post(f"/crises/{crisis.id}/messages", data={"client_id": page_id, "body": "Plain form"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/crises/{crisis.id}#messages"
    # With htmx: the fresh compose form, with a new client_id.
    htmx_id = uuid.uuid4().hex
    response = officer.post(f"/crises/{crisis.id}/messages", data={"client_id": htmx_id, "body": "Through htmx"},
                            headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'id="room-compose"' in response.text and "<html" not in response.text
    fresh = re.search(r'name="client_id" value="([^"]+)"', response.text)
    assert fresh and fresh.group(1) not in (htmx_id, page_id, client_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", fresh.group(1))
    assert "Through htmx" not in response.text  # the textarea is empty again
    # A resend of the same form (a double click) adds nothing.
    officer.post(f"/crises/{crisis.id}/messages", data={"client_id": htmx_id, "body": "Through htmx"},
                 headers={"HX-Request": "true"})
    assert count(session, Message, Message.crisis_id == crisis.id, Message.kind == "message") == 3

    section = officer.get(f"/crises/{crisis.id}/sections/messages")
    assert section.status_code == 200
    for text in ("Reception centres are full", "Plain form", "Through htmx"):
        assert section.text.count(text) == 1, text
    assert "<strong>Officer Canada</strong>, Canada" in section.text


# 3. Observers, pledges -----------------------------------------------------------------------------------------


def test_observers_read_and_talk_but_neither_pledge_nor_decide(app, session, network):
    crisis = declare(session, network)
    analyst = as_(app, session, network, "analyst_ec")
    assert analyst.get(f"/crises/{crisis.id}").status_code == 200
    assert analyst.get(f"/api/v1/crises/{crisis.id}").status_code == 200
    said = analyst.post(f"/api/v1/crises/{crisis.id}/messages",
                        json={"client_id": uuid.uuid4().hex, "body": "The Commission can fund transport"})
    assert said.status_code == 201
    for path, body in (("pledges", {"places": 10}), ("decisions", {"text": "Observers decide nothing"}),
                       ("actions", {"title": "Observers assign nothing", "owner_org_id": str(network.orgs["ec"].id),
                                    "due_on": NEXT_WEEK})):
        response = analyst.post(f"/api/v1/crises/{crisis.id}/{path}", json=body)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404
    assert analyst.post(f"/crises/{crisis.id}/pledges", data={"places": "10"}).status_code == 404
    assert analyst.post(f"/crises/{crisis.id}/decisions", data={"text": "Nope nope"}).status_code == 404
    # The same answer as a crisis that does not exist.
    missing = analyst.post(f"/api/v1/crises/{uuid.uuid4()}/pledges", json={"places": 10})
    assert missing.status_code == 404
    assert count(session, Pledge, Pledge.crisis_id == crisis.id) == 0
    assert count(session, Decision, Decision.crisis_id == crisis.id) == 0
    room = analyst.get(f"/crises/{crisis.id}").text
    assert f'action="/crises/{crisis.id}/pledges"' not in room
    assert 'id="room-compose"' in room


def test_pledge_transitions_owners_and_totals(app, session, network):
    crisis = declare(session, network, target_places=300)
    officer = as_(app, session, network, "officer_canada")
    response = officer.post(f"/api/v1/crises/{crisis.id}/pledges",
                            json={"places": 40, "population": "Families", "time_frame": "Q1 2027"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "proposed" and response.json()["org_id"] == str(network.orgs["canada"].id)
    pledge = session.get(Pledge, uuid.UUID(response.json()["id"]))
    assert pledge is not None

    url = f"/api/v1/pledges/{pledge.id}"
    for old in PledgeStatus:
        for new in PledgeStatus:
            pledge.status = old
            session.commit()
            response = officer.patch(url, json={"status": new.value})
            session.expire_all()
            if new == old or new in PLEDGE_TRANSITIONS[old]:
                assert response.status_code == 200, (old, new, response.text)
                assert pledge.status == new
            else:
                assert response.status_code == 409, (old, new, response.text)
                assert pledge.status == old

    # Only the pledging government moves its pledge.
    pledge.status = PledgeStatus.proposed
    session.commit()
    minister = as_(app, session, network, "minister_spain")
    for persona, c in (("minister_spain", minister), ("admin_secretariat", as_(app, session, network,
                                                                                "admin_secretariat"))):
        response = c.patch(url, json={"status": "confirmed"})
        assert response.status_code == 404, persona
    session.expire_all()
    assert pledge.status == PledgeStatus.proposed
    assert officer.patch(url, json={"status": "confirmed"}).status_code == 200

    # Totals: proposed + confirmed + fulfilled; withdrawn pledges do not count.
    spain = minister.post(f"/api/v1/crises/{crisis.id}/pledges", json={"places": 60}).json()
    germany_c = as_(app, session, network, "minister_germany")
    germany = germany_c.post(f"/api/v1/crises/{crisis.id}/pledges", json={"places": 25}).json()
    assert germany_c.patch(f"/api/v1/pledges/{germany['id']}", json={"status": "withdrawn"}).status_code == 200
    more = officer.post(f"/api/v1/crises/{crisis.id}/pledges", json={"places": 15}).json()
    for status in ("confirmed", "fulfilled"):
        assert officer.patch(f"/api/v1/pledges/{more['id']}", json={"status": status}).status_code == 200
    assert spain["status"] == "proposed"

    listed = officer.get(f"/api/v1/crises/{crisis.id}/pledges").json()
    assert sorted((p["places"], p["status"]) for p in listed) == [
        (15, "fulfilled"), (25, "withdrawn"), (40, "confirmed"), (60, "proposed")]
    active = sum(p["places"] for p in listed if p["status"] != "withdrawn")
    session.expire_all()
    totals = service.room(session, crisis).totals
    assert totals["active"] == active == 115
    assert (totals["proposed"], totals["confirmed"], totals["fulfilled"], totals["withdrawn"]) == (60, 40, 15, 25)
    header = officer.get(f"/crises/{crisis.id}/sections/header").text
    assert re.search(r"Places pledged: <strong>115</strong> / 300", header)
    assert re.search(r'<progress[^>]*max="300" value="115"', header)
    assert "Places pledged: <strong>115</strong>" in officer.get(f"/crises/{crisis.id}").text


# 4. Decisions --------------------------------------------------------------------------------------------------


def test_decisions_are_recorded_and_superseded_by_the_chair_and_the_rapporteur_only(app, session, network):
    crisis = declare(session, network)
    chair = as_(app, session, network, "minister_spain")
    rapporteur = as_(app, session, network, "admin_secretariat")
    url = f"/api/v1/crises/{crisis.id}/decisions"
    first = chair.post(url, json={"text": "Open one humanitarian corridor"})
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "recorded" and first.json()["superseded_by_id"] is None
    second = rapporteur.post(url, json={"text": "Open two humanitarian corridors", "supersedes": first.json()["id"]})
    assert second.status_code == 201, second.text
    old = session.get(Decision, uuid.UUID(first.json()["id"]))
    session.refresh(old)
    assert old.status == DecisionStatus.superseded
    assert str(old.superseded_by_id) == second.json()["id"]
    assert old.superseded_at is not None
    log = {d["id"]: d for d in chair.get(url).json()}
    assert log[first.json()["id"]]["status"] == "superseded"
    assert log[first.json()["id"]]["superseded_by_id"] == second.json()["id"]
    assert log[second.json()["id"]]["status"] == "recorded"

    # Superseding a superseded decision is a conflict, and records nothing.
    again = chair.post(url, json={"text": "Open three corridors", "supersedes": first.json()["id"]})
    assert again.status_code == 409
    session.expire_all()
    assert count(session, Decision, Decision.crisis_id == crisis.id) == 2
    assert old.superseded_by_id == uuid.UUID(second.json()["id"])
    # A decision of another crisis cannot be superseded from here.
    elsewhere = declare(session, network, title="Another crisis entirely")
    foreign = chair.post(f"/api/v1/crises/{elsewhere.id}/decisions", json={"text": "A foreign decision"}).json()
    response = chair.post(url, json={"text": "Supersede a stranger", "supersedes": foreign["id"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "supersedes"

    # Members and observers do not decide.
    for persona in ("officer_canada", "minister_germany", "analyst_ec", "caseworker_unhcr"):
        c = as_(app, session, network, persona)
        assert c.post(url, json={"text": "A member's decision"}).status_code == 404, persona
    assert count(session, Decision, Decision.text == "A member's decision") == 0


# 5. Actions ----------------------------------------------------------------------------------------------------


def test_actions_are_assigned_by_the_chair_and_moved_by_their_owner_or_the_chair(app, session, network, frozen):
    crisis = declare(session, network)
    chair = as_(app, session, network, "minister_spain")
    url = f"/api/v1/crises/{crisis.id}/actions"
    canada = network.orgs["canada"]
    response = chair.post(url, json={"title": "Send liaison officers", "owner_org_id": str(canada.id),
                                     "due_on": NEXT_WEEK})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "open"
    action = session.get(Action, uuid.UUID(response.json()["id"]))
    assert action is not None

    # The owner must take part; a member does not assign.
    for owner in (network.orgs["maple"].id, uuid.uuid4()):
        bad = chair.post(url, json={"title": "Owned by a stranger", "owner_org_id": str(owner),
                                    "due_on": NEXT_WEEK})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "owner_org_id"
    officer = as_(app, session, network, "officer_canada")
    assert officer.post(url, json={"title": "A member's action", "owner_org_id": str(canada.id),
                                   "due_on": NEXT_WEEK}).status_code == 404
    assert count(session, Action, Action.crisis_id == crisis.id) == 1

    patch = f"/api/v1/actions/{action.id}"
    for old in ActionStatus:
        for new in ActionStatus:
            if new == old:
                continue
            action.status = old
            action.completed_at = None
            session.commit()
            response = officer.patch(patch, json={"status": new.value})
            session.expire_all()
            if new in ACTION_TRANSITIONS[old]:
                assert response.status_code == 200, (old, new, response.text)
                assert action.status == new
                assert (action.completed_at is not None) == (new == ActionStatus.done)
            else:
                assert response.status_code == 409, (old, new, response.text)
                assert action.status == old and action.completed_at is None

    action.status = ActionStatus.open
    session.commit()
    assert chair.patch(patch, json={"status": "in_progress"}).status_code == 200
    for persona in ("minister_germany", "analyst_ec"):
        c = as_(app, session, network, persona)
        assert c.patch(patch, json={"status": "done"}).status_code == 404, persona
    session.expire_all()
    assert action.status == ActionStatus.in_progress
    assert officer.patch(patch, json={"status": "done"}).status_code == 200


def test_an_overdue_action_reminds_the_owner_government_once_a_day(app, session, network, mailbox, frozen):
    canada = network.orgs["canada"]
    make_person(session, "deputy_canada@rdn.test", canada, [Role.senior_official])
    session.commit()
    crisis = declare(session, network)
    chair = as_(app, session, network, "minister_spain")
    yesterday = (T0 - timedelta(days=1)).date()
    response = chair.post(f"/api/v1/crises/{crisis.id}/actions",
                          json={"title": "Send liaison officers", "owner_org_id": str(canada.id),
                                "due_on": yesterday.isoformat()})
    assert response.status_code == 201, response.text
    not_due = chair.post(f"/api/v1/crises/{crisis.id}/actions",
                         json={"title": "Draft a joint statement", "owner_org_id": str(canada.id),
                               "due_on": (T0 + timedelta(days=3)).date().isoformat()})
    assert not_due.status_code == 201
    worker = outbox.Worker()

    def remind() -> None:
        worker.schedule_periodic(force=True)
        worker.run_until_idle()

    def reminders(address: str) -> list[str]:
        return [m["Subject"] for m in mailbox.to(address) if (m["Subject"] or "").startswith("Overdue action")]

    remind()
    clock.advance(timedelta(hours=5))  # another run of the hourly job, the same day
    remind()
    runs = outbox.Job.kind == "periodic:redphone-action-reminders"
    assert count(session, outbox.Job, runs, outbox.Job.status == outbox.JobStatus.done) == 2
    people = ("officer_canada@rdn.test", "deputy_canada@rdn.test")
    for address in people:
        assert reminders(address) == ["Overdue action: Send liaison officers"], address
    for address in ("admin_canada@rdn.test", "minister_spain@rdn.test", "minister_germany@rdn.test"):
        assert reminders(address) == [], address

    clock.advance(timedelta(days=1))
    remind()
    for address in people:
        assert reminders(address) == ["Overdue action: Send liaison officers"] * 2, address
    body = next(m for m in mailbox.to("deputy_canada@rdn.test") if m["Subject"].startswith("Overdue"))
    assert "Send liaison officers" in str(body) and f"/crises/{crisis.id}" in str(body)

    # Done: no more reminders.
    officer = as_(app, session, network, "officer_canada")
    assert officer.patch(f"/api/v1/actions/{response.json()['id']}", json={"status": "done"}).status_code == 200
    clock.advance(timedelta(days=1))
    remind()
    for address in people:
        assert len(reminders(address)) == 2, address


# 6. Participants -----------------------------------------------------------------------------------------------


def test_the_chair_seats_organizations_and_changes_roles_a_member_cannot(app, session, network):
    crisis = declare(session, network)
    coe = make_org(session, "coe", "Council of Europe", OrgKind.observer, None)
    analyst, _ = make_person(session, "analyst_coe@rdn.test", coe, [Role.analyst])
    session.commit()
    newcomer = Client(app).login(session, analyst)
    assert newcomer.get(f"/crises/{crisis.id}").status_code == 404
    url = f"/api/v1/crises/{crisis.id}/participants"

    # Neither a member government nor an observer seats anyone.
    germany = network.orgs["germany"]
    for persona in ("minister_germany", "officer_canada", "analyst_ec"):
        c = as_(app, session, network, persona)
        assert c.put(url, json={"org_id": str(coe.id), "role": "observer"}).status_code == 404, persona
        assert c.put(url, json={"org_id": str(germany.id), "role": "rapporteur"}).status_code == 404, persona
    session.expire_all()
    roles = roles_of(session, crisis)
    assert coe.id not in roles and roles[germany.id] == "member"

    chair = as_(app, session, network, "minister_spain")
    response = chair.put(url, json={"org_id": str(coe.id), "role": "observer"})
    assert response.status_code == 200, response.text
    assert response.json() == {"org_id": str(coe.id), "name": "Council of Europe", "role": "observer"}
    assert newcomer.get(f"/crises/{crisis.id}").status_code == 200
    assert newcomer.post(f"/api/v1/crises/{crisis.id}/pledges", json={"places": 5}).status_code == 404

    minister = as_(app, session, network, "minister_germany")
    decisions = f"/api/v1/crises/{crisis.id}/decisions"
    assert minister.post(decisions, json={"text": "Germany decides"}).status_code == 404
    response = chair.put(url, json={"org_id": str(germany.id), "role": "rapporteur"})
    assert response.status_code == 200 and response.json()["role"] == "rapporteur"
    assert minister.post(decisions, json={"text": "Germany decides"}).status_code == 201
    session.expire_all()
    assert roles_of(session, crisis)[germany.id] == "rapporteur"

    # Organizations outside coordination, and observers as members, are refused.
    response = chair.put(url, json={"org_id": str(network.orgs["maple"].id), "role": "observer"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "org_id"
    response = chair.put(url, json={"org_id": str(coe.id), "role": "member"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "role"
    session.expire_all()
    assert network.orgs["maple"].id not in roles_of(session, crisis)
    assert roles_of(session, crisis)[coe.id] == "observer"


# 7. The situation report ---------------------------------------------------------------------------------------


def test_the_situation_report_gives_the_same_figures_in_markdown_and_html(app, session, network, frozen):
    set_chain(session, network, "canada", ["officer_canada"])
    set_chain(session, network, "spain", ["minister_spain"])
    crisis = declare(session, network, target_places=500, region="Delta")
    outbox.Worker().run_until_idle()  # the first level of each chain is paged
    s = lambda persona: principal(session, network, persona)  # noqa: E731
    officer = as_(app, session, network, "officer_canada")
    assert officer.post(f"/api/v1/crises/{crisis.id}/acknowledge").status_code == 200
    service.change(session, actor=s("minister_spain"), crisis=crisis, status="active")
    for persona, places, status in (("officer_canada", 120, "confirmed"), ("minister_spain", 80, None),
                                    ("minister_germany", 30, "withdrawn")):
        row = service.pledge(session, actor=s(persona), crisis=crisis, places=places, population="Families")
        if status:
            service.change_pledge(session, actor=s(persona), row=row, status=status)
    old = service.record_decision(session, actor=s("minister_spain"), crisis=crisis,
                                  text="Open one humanitarian corridor")
    service.record_decision(session, actor=s("admin_secretariat"), crisis=crisis,
                            text="Open two humanitarian corridors", supersedes=old)
    today = T0.date()
    o = network.orgs
    service.add_action(session, actor=s("minister_spain"), crisis=crisis, title="Send liaison officers",
                       owner_org_id=o["canada"].id, due_on=today - timedelta(days=1))
    service.add_action(session, actor=s("minister_spain"), crisis=crisis, title="Draft a joint statement",
                       owner_org_id=o["spain"].id, due_on=today + timedelta(days=7))
    done = service.add_action(session, actor=s("minister_spain"), crisis=crisis, title="Book the venue",
                              owner_org_id=o["germany"].id, due_on=today + timedelta(days=2))
    service.change_action(session, actor=s("minister_spain"), action=done, status="done")
    session.commit()

    response = officer.get(f"/api/v1/crises/{crisis.id}/sitrep")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    md = response.text
    lines = md.splitlines()
    assert lines[0] == f"# Situation report: Flooding in the delta ({crisis.reference})"
    for line in ("- **Status:** Active", "- **Places pledged:** 200 / 500", "- **Region:** Delta",
                 "## Acknowledgements (1/3)", "| Canada | Acknowledged by Officer Canada |",
                 "| Germany | No answer: every level was paged |", "| Spain | Paging: Level 1 |",
                 "| Canada | 120 | Families |  | Confirmed |", "| Spain | 80 | Families |  | Proposed |",
                 "| Germany | 30 | Families |  | Withdrawn |",
                 f"- Send liaison officers — Canada, due {T0.date() - timedelta(days=1)} **(overdue)**",
                 f"- Draft a joint statement — Spain, due {T0.date() + timedelta(days=7)}"):
        assert line in lines, line
    decisions = [line for line in lines if re.match(r"\d+\. ", line)]
    assert len(decisions) == 1 and decisions[0].startswith("1. Open two humanitarian corridors (")
    assert "Open one humanitarian corridor" not in md
    assert "Book the venue" not in md

    download = officer.get(f"/crises/{crisis.id}/sitrep.md")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/markdown")
    assert download.headers["content-disposition"] == f'attachment; filename="sitrep-{crisis.reference}.md"'
    assert download.text == md

    html = officer.get(f"/crises/{crisis.id}/sitrep")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    page = html.text
    assert "<dd>Active</dd>" in page
    assert "<dd>200 / 500</dd>" in page
    assert "Acknowledgements (1/3)" in page
    assert "<td>Canada</td><td>Acknowledged by Officer Canada</td>" in page
    assert "<td>Germany</td><td>No answer: every level was paged</td>" in page
    assert "<li>Open two humanitarian corridors " in page and "Open one humanitarian corridor" not in page
    due = T0.date() - timedelta(days=1)
    assert re.search(rf"<li>Send liaison officers — Canada, due {due} <strong>\(overdue\)</strong></li>", page)
    assert re.search(rf"<li>Draft a joint statement — Spain, due {T0.date() + timedelta(days=7)}</li>", page)
    assert "Book the venue" not in page


# 8. Drills -----------------------------------------------------------------------------------------------------


def test_drill_results_the_trend_chart_and_the_report(app, session, network):
    o = network.orgs
    set_chain(session, network, "canada", ["officer_canada"], ["admin_canada"])
    set_chain(session, network, "spain", ["minister_spain"])
    worker = outbox.Worker()
    with clock.frozen(T0 - timedelta(days=2)):
        d1 = declare(session, network, "admin_secretariat", title="First drill", exercise=True,
                     government_ids=[o["canada"].id, o["spain"].id, o["germany"].id])
        real = declare(session, network, title="A real crisis")
        worker.run_until_idle()  # level 1 of each chain is paged
        minister = as_(app, session, network, "minister_spain")
        clock.advance(timedelta(minutes=2))
        assert minister.post(f"/api/v1/crises/{d1.id}/acknowledge").status_code == 200
        assert as_(app, session, network, "officer_canada").post(
            f"/api/v1/crises/{real.id}/acknowledge").status_code == 200  # a real crisis: not a drill result
        clock.advance(timedelta(minutes=3))
        worker.run_until_idle()  # Canada's level 2 is paged
        clock.advance(timedelta(minutes=2))
        assert as_(app, session, network, "admin_canada").post(
            f"/api/v1/crises/{d1.id}/acknowledge").status_code == 200
    with clock.frozen(T0 - timedelta(days=1)):
        d2 = declare(session, network, "admin_secretariat", title="Second drill", exercise=True,
                     government_ids=[o["canada"].id, o["spain"].id])
        worker.run_until_idle()
        clock.advance(timedelta(seconds=75))
        assert as_(app, session, network, "officer_canada").post(
            f"/api/v1/crises/{d2.id}/acknowledge").status_code == 200

    session.expire_all()
    results = drills.drill_results(session)
    assert [r.crisis_id for r in results] == [d2.id, d1.id]  # newest first; the real crisis is left out
    first, second = results[1], results[0]
    got = {g.org: (g.acknowledged, g.seconds, g.level, g.level_name, g.status) for g in first.governments}
    assert got == {"Canada": (True, 420.0, 1, "Level 2", "acknowledged"),
                   "Germany": (False, None, None, None, "exhausted"),
                   "Spain": (True, 120.0, 0, "Level 1", "acknowledged")}
    runs = {r.org_id: r for r in session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == d1.id))}
    for g in first.governments:
        run = runs[g.org_id]
        if g.acknowledged:
            assert g.seconds == (run.acknowledged_at - run.started_at).total_seconds()
    assert first.acknowledged == 2 and first.share_acknowledged == pytest.approx(2 / 3)
    assert first.median_seconds == statistics.median([420.0, 120.0]) == 270.0
    got = {g.org: (g.acknowledged, g.seconds, g.level) for g in second.governments}
    assert got == {"Canada": (True, 75.0, 0), "Spain": (False, None, None)}
    assert second.share_acknowledged == 0.5 and second.median_seconds == 75.0

    chart = drills.trend_chart(results)
    bars, dots = chart["bars"], chart["dots"]
    assert [b["label"] for b in bars] == [d1.reference, d2.reference]  # oldest on the left
    assert [b["h"] for b in bars] == [120.0, 90.0]
    for bar, result in zip(bars, [first, second], strict=True):
        assert bar["h"] == pytest.approx(chart["inner_h"] * result.share_acknowledged, abs=0.05)
        assert bar["y"] + bar["h"] == pytest.approx(chart["baseline"], abs=0.1)
    assert chart["top"] == 5.0
    for (_x, y), result in zip(dots, [first, second], strict=True):
        minutes = (chart["baseline"] - y) / chart["inner_h"] * chart["top"]
        assert minutes == pytest.approx(result.median_seconds / 60, abs=0.01)
    assert [x for x, _y in dots] == [b["cx"] for b in bars]
    assert chart["line"] == " ".join(f"{x},{y}" for x, y in dots)

    viewer = as_(app, session, network, "officer_canada")
    page = viewer.get("/drills")
    assert page.status_code == 200
    html = page.text
    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S)
    assert svg and 'role="img"' in svg.group(0)
    assert re.search(r"<title[^>]*>[^<]+</title>", svg.group(0))
    assert svg.group(0).count('class="bar"') == 2
    for bar in bars:
        assert f'height="{bar["h"]}"' in svg.group(0)
    assert f'points="{chart["line"]}"' in svg.group(0)
    assert "2 / 3" in row_of(html, "First drill") and "4 min 30 s" in row_of(html, "First drill")
    assert "1 / 2" in row_of(html, "Second drill") and "1 min 15 s" in row_of(html, "Second drill")
    assert "A real crisis" not in html

    api = viewer.get("/api/v1/drills")
    assert api.status_code == 200
    body = api.json()
    assert [d["crisis_id"] for d in body] == [str(d2.id), str(d1.id)]
    assert [(d["acknowledged"], d["governments"], d["median_seconds"]) for d in body] == [(1, 2, 75.0),
                                                                                          (2, 3, 270.0)]
    assert {r["org"]: (r["seconds"], r["level"]) for r in body[1]["results"]} == {
        "Canada": (420.0, 1), "Germany": (None, None), "Spain": (120.0, 0)}
    assert as_(app, session, network, "analyst_ec").get("/api/v1/drills").status_code == 403


# 9. Live events ------------------------------------------------------------------------------------------------


def frames(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    result = []
    for frame in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n") if ": " in line)
        if "event" in lines:
            result.append((int(lines["id"]), lines["event"], json.loads(lines["data"])))
    return result


def test_the_room_events_replay_this_crisis_s_messages_and_pledges_only(app, session, network):
    with clock.frozen(T0):
        crisis = declare(session, network)
        other = declare(session, network, title="Another crisis")
        s = lambda persona: principal(session, network, persona)  # noqa: E731
        clock.advance(timedelta(seconds=30))
        seen = service.post_message(session, actor=s("minister_spain"), crisis=crisis, client_id="seen-message-1",
                                    body="Already seen")
        session.commit()
        marker = session.scalar(select(func.max(EventLog.id)).where(EventLog.channel == f"crisis:{crisis.id}"))
        clock.advance(timedelta(seconds=30))
        message = service.post_message(session, actor=s("officer_canada"), crisis=crisis,
                                       client_id="new-message-1", body="New")
        service.post_message(session, actor=s("minister_germany"), crisis=other, client_id="elsewhere-1",
                             body="Elsewhere")
        pledge = service.pledge(session, actor=s("officer_canada"), crisis=crisis, places=12)
        service.pledge(session, actor=s("minister_germany"), crisis=other, places=99)
        session.commit()
        client = as_(app, session, network, "analyst_ec")
        response = client.get(f"/api/v1/crises/{crisis.id}/events", headers={"Last-Event-ID": str(marker)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = [(kind, data) for _id, kind, data in frames(response.text)]
    assert got == [("room.message", {"crisis_id": str(crisis.id), "reference": crisis.reference,
                                     "message_id": str(message.id)}),
                   ("room.pledge", {"crisis_id": str(crisis.id), "reference": crisis.reference,
                                    "pledge_id": str(pledge.id)})]
    assert str(seen.id) not in response.text and str(other.id) not in response.text
    ids = [i for i, _k, _d in frames(response.text)]
    assert ids == sorted(ids) and ids[0] > marker

    # The other crisis's stream has its own events, not this one's.
    with clock.frozen(T0 + timedelta(minutes=1)):
        theirs = as_(app, session, network, "minister_germany").get(
            f"/api/v1/crises/{other.id}/events", headers={"Last-Event-ID": str(marker)})
    assert [k for _i, k, _d in frames(theirs.text)] == ["room.message", "room.pledge"]
    assert str(crisis.id) not in theirs.text
    # The sponsor group takes no part: no stream.
    sponsor = as_(app, session, network, "sponsor_group_a")
    assert sponsor.get(f"/api/v1/crises/{crisis.id}/events", headers={"Last-Event-ID": "0"}).status_code == 404


# 10. The home card and the lists --------------------------------------------------------------------------------


def test_the_home_card_offers_the_open_page_and_the_lists_count_acknowledgements(app, session, network):
    o = network.orgs
    set_chain(session, network, "canada", ["officer_canada"], verified=True)
    officer = as_(app, session, network, "officer_canada")
    home = officer.get("/")
    assert home.status_code == 200 and "No page waiting for you." in home.text

    crisis = declare(session, network, title="Cyclone on the coast")
    outbox.Worker().run_until_idle()
    page = session.scalars(select(Page).where(Page.crisis_id == crisis.id,
                                              Page.user_id == network.officer_canada.id)).one()
    home = officer.get("/").text
    card = re.search(r'<section class="card card-redphone".*?</section>', home, re.S)
    assert card
    assert f'action="/pages/{page.id}/acknowledge"' in card.group(0)
    assert "Acknowledge for Canada" in card.group(0)
    assert "Cyclone on the coast" in card.group(0)
    # Someone outside Canada's chain has nothing to acknowledge.
    other = as_(app, session, network, "minister_germany").get("/").text
    assert "Acknowledge for" not in other and "No page waiting for you." in other

    response = officer.post(f"/pages/{page.id}/acknowledge")
    assert response.status_code == 303 and response.headers["location"] == f"/crises/{crisis.id}"
    run = escalation.current_run(session, crisis.id, o["canada"].id)
    session.refresh(run)
    assert run.status == RunStatus.acknowledged and run.acknowledged_by_user_id == network.officer_canada.id
    home = officer.get("/").text
    assert f"/pages/{page.id}/acknowledge" not in home and "No page waiting for you." in home

    # The lists.
    closed = declare(session, network, title="Drought in the plains")
    service.change(session, actor=principal(session, network, "minister_spain"), crisis=closed, status="closed")
    drill = declare(session, network, "admin_secretariat", title="Autumn drill", exercise=True,
                    government_ids=[o["canada"].id])
    session.commit()

    open_list = officer.get("/crises?show=open").text
    assert "1 / 3" in row_of(open_list, "Cyclone on the coast")
    assert "Drought in the plains" not in open_list
    closed_list = officer.get("/crises?show=closed").text
    assert "0 / 3" in row_of(closed_list, "Drought in the plains")
    assert "Cyclone on the coast" not in closed_list and "Autumn drill" not in closed_list
    drills_list = officer.get("/crises?show=drills").text
    assert "0 / 1" in row_of(drills_list, "Autumn drill")
    assert "Cyclone on the coast" not in drills_list and "Drought in the plains" not in drills_list
    assert service.overview(session, [crisis.id, closed.id, drill.id]) == {
        crisis.id: {"acked": 1, "paged": 3, "places": 0}, closed.id: {"acked": 0, "paged": 3, "places": 0},
        drill.id: {"acked": 0, "paged": 1, "places": 0}}
    # A sponsor group is not at the table: no list of crises.
    assert as_(app, session, network, "sponsor_group_a").get("/crises").status_code in (403, 404)
