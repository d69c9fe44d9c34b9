"""Every route of the application, for every persona and owner relationship, against tests/authz_matrix.py.

The table is the specification: a route missing from it fails ``test_every_route_is_in_the_matrix``; a
persona reaching what the table forbids (or refused what it allows) fails ``test_authorization_matrix``.
Each call runs inside a savepoint that is rolled back, so calls cannot affect each other.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyotp
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from rdn.cases.models import Member
from rdn.cases.policy import access_case
from rdn.core import clock, identity, outbox
from rdn.core.audit import Actor
from rdn.core.mail import send_email
from rdn.core.tenancy import Membership, OrgKind, Role
from rdn.core.webhooks import create_endpoint
from rdn.network import service
from tests.authz_matrix import DENY, HIDE, LOGIN, MATRIX, OK, TOKENS, Row
from tests.factories import PERSONAS, Client, build_network

_PARAM = re.compile(r"\{(\w+)\}")


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, whatever the FastAPI version's way of including routers."""
    try:
        from fastapi.routing import iter_route_contexts

        contexts = [(ctx.original_route, ctx.path) for ctx in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI: included routes are flattened into app.routes
        contexts = [(r, getattr(r, "path", "")) for r in app.routes]
    routes = set()
    for route, path in contexts:
        if isinstance(route, APIRoute):
            routes.update((method, path) for method in route.methods)
    return routes


def test_every_route_is_in_the_matrix(app):
    in_app = app_routes(app)
    in_table = {(row.method, row.path) for row in MATRIX}
    missing = sorted(in_app - in_table)
    stale = sorted(in_table - in_app)
    assert not missing, f"routes with no row in tests/authz_matrix.py: {missing}"
    assert not stale, f"rows for routes that do not exist: {stale}"
    assert len(in_table) == len(MATRIX), "a route has two rows"


@dataclass
class World:
    """The objects each relationship points at, per persona."""

    net: Any
    session: Any
    clients: dict[str, Client] = field(default_factory=dict)
    token_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    token_user: dict[str, str] = field(default_factory=dict)
    colleague: dict[str, Any] = field(default_factory=dict)  # org key -> User
    colleague_membership: dict[str, uuid.UUID] = field(default_factory=dict)  # org key -> Membership id
    spare_session: dict[str, uuid.UUID] = field(default_factory=dict)  # persona -> a second session
    spare_token: dict[str, uuid.UUID] = field(default_factory=dict)  # persona -> a token of theirs
    webhook: dict[str, uuid.UUID] = field(default_factory=dict)  # org key -> endpoint id
    dead_job: uuid.UUID | None = None
    crisis: dict[str, uuid.UUID] = field(default_factory=dict)  # shared, drill-canada, drill-spain
    pledge: dict[str, uuid.UUID] = field(default_factory=dict)  # canada, spain
    action: uuid.UUID | None = None  # owned by Canada, in the shared crisis
    page: dict[str, uuid.UUID] = field(default_factory=dict)  # persona -> their page in the shared crisis
    method: dict[str, uuid.UUID] = field(default_factory=dict)  # persona -> a contact method of theirs
    ack_token: str = ""
    case: dict[str, uuid.UUID] = field(default_factory=dict)  # referred, revoked, canadian, offered
    case_number: dict[str, str] = field(default_factory=dict)
    principal: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # case id -> principal member id
    link: uuid.UUID | None = None  # between "referred" and "revoked"
    consent: uuid.UUID | None = None  # on "referred", to Canada
    referral: dict[str, uuid.UUID] = field(default_factory=dict)  # live, revoked
    agreement: uuid.UUID | None = None  # the agency and Canada
    transfer: uuid.UUID | None = None  # the agency offers a case to Germany
    site: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian
    run: dict[str, uuid.UUID] = field(default_factory=dict)  # agency
    placement: dict[str, uuid.UUID] = field(default_factory=dict)  # agency (of its run)
    obstacle: dict[str, uuid.UUID] = field(default_factory=dict)  # open (reported by the agency)
    diplomatic: dict[str, uuid.UUID] = field(default_factory=dict)  # open: its démarche, led by Canada
    evidence: dict[str, uuid.UUID] = field(default_factory=dict)  # open: a file on it
    practice: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian: a note of Canada's, with a file
    pathway: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian: a pathway of Canada's
    registration: dict[str, uuid.UUID] = field(default_factory=dict)  # own (the office "smo"), other (another)
    rule: dict[str, uuid.UUID] = field(default_factory=dict)  # own, other: a screening rule (its id)
    rule_key: dict[str, uuid.UUID] = field(default_factory=dict)  # own, other: the same rules' keys
    slot: dict[str, uuid.UUID] = field(default_factory=dict)  # own, other
    appointment: dict[str, uuid.UUID] = field(default_factory=dict)  # own, other
    reference: str = ""  # of the own registration
    # Welcome (see _welcome): Canada's programme "canadian" (the maple group) and Spain's "spanish" ("other")
    programme: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian, spanish
    programme_slug: dict[str, str] = field(default_factory=dict)  # canadian, spanish
    group: dict[str, uuid.UUID] = field(default_factory=dict)  # maple, other: eligible, now welcoming
    sponsor_member: dict[str, uuid.UUID] = field(default_factory=dict)  # maple (sponsor_group_a's), other
    match: dict[str, uuid.UUID] = field(default_factory=dict)  # maple, other: active, the family arrived
    task: dict[str, uuid.UUID] = field(default_factory=dict)  # maple, other: a core service of that match
    donation: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian, spanish: offered
    arriving: dict[str, uuid.UUID] = field(default_factory=dict)  # canadian, spanish: the matched families
    need: dict[str, uuid.UUID] = field(default_factory=dict)  # existing: a projected need (the network picture)
    persona: str = ""
    path_values: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def user_persona(self, persona: str) -> str:
        # Anonymous callers aim at the same objects as a Canadian officer would.
        return "officer_canada" if persona == "anonymous" else self.token_user.get(persona, persona)

    def org_key(self, persona: str) -> str:
        return PERSONAS[self.user_persona(persona)][0]

    def other_org_key(self, persona: str) -> str:
        return "spain" if self.org_key(persona) != "spain" else "canada"

    def persona_org_id(self) -> uuid.UUID:
        return self.net.orgs[self.org_key(self.persona)].id

    def persona_user_id(self) -> uuid.UUID:
        return self.net.people[self.user_persona(self.persona)].id

    def secretariat_id(self) -> uuid.UUID:
        return self.net.orgs["secretariat"].id

    def observer_id(self) -> uuid.UUID:
        return self.net.orgs["ec"].id

    def current_org(self) -> dict[str, Any]:
        org_id = self.path_values.get("org_id")
        org = next((o for o in self.net.orgs.values() if str(o.id) == org_id), None)
        return {"name": org.name if org else "x", "country": org.country if org else None}

    def principal_member(self, case_id: str) -> uuid.UUID:
        return self.principal.get(uuid.UUID(case_id), uuid.uuid4()) if case_id else uuid.uuid4()

    def _other_case(self) -> str:
        """A second case of the caller's organization, to link to."""
        return "canadian2" if self.org_key(self.persona) == "canada" else "revoked"

    def other_case_number(self) -> str:
        return self.case_number[self._other_case()]

    def other_case_id(self) -> str:
        return str(self.case[self._other_case()])

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{uuid.uuid4().hex[:6]}"

    def totp_now(self) -> str:
        secret = self.net.totp.get(self.user_persona(self.persona))
        return pyotp.TOTP(secret).now() if secret else "000000"

    def values(self, persona: str, rel: str | None, names: list[str]) -> dict[str, str]:
        """The path parameters for ``persona`` standing in relationship ``rel`` to the object."""
        missing = str(uuid.uuid4())
        own_key, other_key = self.org_key(persona), self.other_org_key(persona)
        user = self.net.people[self.user_persona(persona)]
        out: dict[str, str] = {}
        for name in names:
            if name == "item":
                out[name] = "security"
            elif name == "part":
                out[name] = "protection"
            elif name == "programme_slug":  # public addresses: a rel of None (public rows) is Canada's
                out[name] = {"missing": "no-such-programme", "spanish": self.programme_slug.get("spanish", "")
                             }.get(rel or "", self.programme_slug.get("canadian", ""))
            elif rel == "missing":
                out[name] = missing
            elif name == "org_id":
                out[name] = str(self.net.orgs[own_key if rel == "own" else other_key].id)
            elif name == "user_id":
                target = {"self": user, "colleague": self.colleague[own_key],
                          "stranger": self.colleague[other_key]}[rel or ""]
                out[name] = str(target.id)
            elif name == "membership_id":
                out[name] = str(self.colleague_membership[own_key if rel == "colleague" else other_key])
            elif name == "session_id":
                target_persona = self.user_persona(persona) if rel == "own" else (
                    "minister_germany" if self.user_persona(persona) != "minister_germany" else "minister_spain")
                out[name] = str(self.spare_session[target_persona])
            elif name == "token_id":
                target_persona = self.user_persona(persona) if rel == "own" else (
                    "minister_germany" if self.user_persona(persona) != "minister_germany" else "minister_spain")
                out[name] = str(self.spare_token[target_persona])
            elif name == "webhook_id":
                out[name] = str(self.webhook[own_key if rel == "own" else other_key])
            elif name == "job_id":
                out[name] = str(self.dead_job)
            elif name == "crisis_id":
                if rel == "other":  # a drill of a government other than the caller's
                    key = "drill-spain" if own_key != "spain" else "drill-canada"
                    out[name] = str(self.crisis[key])
                else:
                    out[name] = str(self.crisis["shared"])
            elif name == "section":
                out[name] = "messages"
            elif name == "pledge_id":
                out[name] = str(self.pledge[rel or ""])
            elif name == "action_id":
                out[name] = str(self.action)
            elif name == "page_id":
                me = self.user_persona(persona)
                mine = self.page.get(me)
                if rel == "own":
                    out[name] = str(mine or self.page["officer_canada"] if me != "officer_canada" else mine)
                else:
                    out[name] = str(self.page["minister_germany" if me != "minister_germany" else "minister_spain"])
            elif name == "method_id":
                me = self.user_persona(persona)
                other = "minister_germany" if me != "minister_germany" else "minister_spain"
                out[name] = str(self.method[me if rel == "own" else other])
            elif name == "token":
                out[name] = self.ack_token
            elif name == "case_id":
                if rel == "mismatch":  # a member of the Canadian case, or the referred case's link or consent,
                    # under the path of a case the agency also writes to
                    rel = "offered" if {"link_id", "consent_id"} & set(names) else "referred"
                    out[name] = str(self.case[rel])
                    rel = "mismatch"
                else:
                    out[name] = str(self.case[rel or ""])
            elif name in ("programme_id", "donation_id"):
                out[name] = str((self.programme if name == "programme_id" else self.donation)[rel or ""])
            elif name in ("group_id", "match_id"):  # mismatch: maple's, with the other group's member or task
                out[name] = str((self.group if name == "group_id" else self.match)["maple" if rel == "mismatch"
                                                                                    else rel or ""])
            elif name == "task_id":
                out[name] = str(self.task["other" if rel == "mismatch" else rel or ""])
            elif name == "member_id" and ("group_id" in names or rel in ("maple", "other")):
                out[name] = str(self.sponsor_member["other" if rel == "mismatch" else rel or ""])
            elif name == "member_id":
                other = self.case["canadian"] if rel == "mismatch" else self.case[rel or ""]
                out[name] = str(self.principal[other])
            elif name == "link_id":
                out[name] = str(self.link)
            elif name == "consent_id":
                out[name] = str(self.consent)
            elif name == "fmt":
                out[name] = "csv"
            elif name == "referral_id":
                out[name] = str(self.referral[rel or ""])
            elif name == "agreement_id":
                out[name] = str(self.agreement)
            elif name == "transfer_id":
                out[name] = str(self.transfer)
            elif name == "site_id":
                out[name] = str(self.site[rel or ""])
            elif name == "run_id":
                out[name] = str(self.run[rel or ""])
            elif name == "placement_id":
                out[name] = str(self.placement[rel or ""])
            elif name == "obstacle_id":
                out[name] = str(self.obstacle[rel or ""])
            elif name == "diplomatic_action_id":
                out[name] = str(self.diplomatic[rel or ""])
            elif name == "pathway_id":
                out[name] = str(self.pathway[rel or ""])
            elif name == "practice_id":
                out[name] = str(self.practice[rel or ""])
            elif name == "evidence_id":
                out[name] = str(self.evidence[rel or ""])
            elif name == "registration_id":
                out[name] = str(self.registration[rel or ""])
            elif name == "rule_id":
                out[name] = str(self.rule[rel or ""])
            elif name == "rule_key":
                out[name] = str(self.rule_key[rel or ""])
            elif name == "slot_id":
                out[name] = str(self.slot[rel or ""])
            elif name == "appointment_id":
                out[name] = str(self.appointment[rel or ""])
            elif name == "office_slug":
                out[name] = "smo"
            elif name == "reference":
                out[name] = self.reference
            elif name == "year":
                out[name] = "2027"
            elif name == "short_name":
                out[name] = {"canadian": "canada", "spanish": "spain"}.get(rel or "", "nowhere")
            elif name == "table":
                out[name] = "by_population.csv"
            elif name == "need_id":
                out[name] = str(self.need.get(rel or "", uuid.uuid4()))
            elif name == "resource":
                out[name] = "medical"
            else:  # pragma: no cover - a new kind of parameter needs a relationship here
                raise AssertionError(f"no relationship defined for path parameter {name}")
        return out


@pytest.fixture
def world(app, session) -> Iterator[World]:
    net = build_network(session)
    w = World(net, session)
    actor = Actor("matrix")
    for key, org in net.orgs.items():
        role = Role.sponsor if org.kind == OrgKind.sponsor_group else Role.analyst
        user = service.create_person(session, actor=actor, email=f"colleague-{key}@rdn.test",
                                     full_name=f"Colleague {key}", org=org, role=role, password="long enough pw 123",
                                     invite=False)
        w.colleague[key] = user
        w.colleague_membership[key] = session.query(Membership.id).filter_by(user_id=user.id, org_id=org.id).scalar()
        endpoint, _secret = create_endpoint(session, org_id=org.id, url=f"https://example.org/{key}")
        w.webhook[key] = endpoint.id
    for persona, user in net.people.items():
        _, row = identity.start_session(session, user, ip="10.0.0.1", user_agent="spare")
        w.spare_session[persona] = row.id
        _, token = identity.create_token(session, user=user, org_id=net.org_of(persona).id, name="spare",
                                         scopes=["read"])
        w.spare_token[persona] = token.id
        w.clients[persona] = Client(app).login(session, user)
    for name, persona, scopes in (("token_read_canada", "officer_canada", ["read"]),
                                  ("token_admin_canada", "admin_canada", ["read", "write", "admin"]),
                                  ("token_read_secretariat", "admin_secretariat", ["read"])):
        plaintext, _ = identity.create_token(session, user=net.people[persona], org_id=net.org_of(persona).id,
                                             name=name, scopes=scopes)
        w.token_headers[name] = {"Authorization": f"Bearer {plaintext}"}
        w.token_user[name] = persona
    job = send_email(session, to="someone@example.org", subject="dead letter", text="x")
    job.status = outbox.JobStatus.dead
    w.dead_job = job.id
    session.commit()
    _red_phone(w, session)
    _cases(w, session)
    _matching(w, session)
    _pathways(w, session)
    _mobility(w, session)
    _welcome(w, session)
    _reports(w, session)
    anonymous = Client(app)
    page = anonymous.get("/login")
    anonymous.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    w.clients["anonymous"] = anonymous
    w.clients["bearer"] = Client(app)
    yield w


def _red_phone(w: World, session: Any) -> None:
    """Chains for three governments, a crisis they share (chaired by Spain), and a drill each for Canada
    and Spain alone; the first level paged; a pledge each from Canada and Spain, an action owned by Canada."""
    from rdn.redphone import chains, escalation, service
    from rdn.redphone.models import ContactKind, Page

    net = w.net

    def as_principal(persona: str) -> identity.Principal:
        user = net.people[persona]
        return identity.principal_for(session, user, org_id=net.org_of(persona).id, via="session")

    for gov, persona in (("canada", "officer_canada"), ("spain", "minister_spain"), ("germany", "minister_germany")):
        user = net.people[persona]
        chains.set_chain(session, actor=ACTOR_MATRIX, org=net.orgs[gov], repeat_count=0,
                         levels=[chains.LevelSpec("Level 1", 5, [user.id])])
    for persona in net.people:
        method = chains.add_method(session, principal=as_principal(persona), kind=ContactKind.email,
                                   address=f"{persona}@mail.example")
        w.method[persona] = method.id
        if persona in ("officer_canada", "minister_spain", "minister_germany"):
            method.verified_at = clock.now()
    shared = service.declare(session, actor=as_principal("minister_spain"), title="Shared crisis")
    w.crisis["shared"] = shared.id
    for key, gov in (("drill-canada", "canada"), ("drill-spain", "spain")):
        drill = service.declare(session, actor=as_principal("admin_secretariat"), title=key, exercise=True,
                                government_ids=[net.orgs[gov].id])
        w.crisis[key] = drill.id
    session.commit()
    outbox.Worker().run_until_idle()
    for persona in ("officer_canada", "minister_spain", "minister_germany"):
        page = session.scalars(select(Page).where(Page.crisis_id == shared.id,
                                                  Page.user_id == net.people[persona].id)).one()
        w.page[persona] = page.id
    w.ack_token = escalation.ack_token(w.page["minister_germany"])
    w.pledge["canada"] = service.pledge(session, actor=as_principal("officer_canada"), crisis=shared, places=50).id
    w.pledge["spain"] = service.pledge(session, actor=as_principal("minister_spain"), crisis=shared, places=70).id
    w.action = service.add_action(session, actor=as_principal("minister_spain"), crisis=shared, title="Do it",
                                  owner_org_id=net.orgs["canada"].id, due_on=date(2099, 1, 1)).id
    session.commit()


ACTOR_MATRIX = Actor("matrix")


def _cases(w: World, session: Any) -> None:
    """Agreements in force from the agency to Canada, Spain and Germany; the agency's case referred to Canada
    and linked to another whose referral to Spain was revoked; a case Canada owns; a case the agency offers
    to Germany. The "mismatch" relationship points at the Canadian case's member (or the agency's link) under
    the referred case's path."""
    from rdn.cases import service as cases
    from rdn.cases import sharing
    from rdn.cases.models import Agreement, AgreementStatus, Referral

    net = w.net

    def act(persona: str) -> identity.Principal:
        p = identity.principal_for(session, net.people[persona], org_id=net.org_of(persona).id, via="session")
        return dataclasses.replace(p, mfa_at=clock.now())

    for gov in ("canada", "spain", "germany"):
        agreement = Agreement(provider_org_id=net.orgs["unhcr"].id, recipient_org_id=net.orgs[gov].id,
                              title=f"Agency and {gov}", purposes=["resettlement"],
                              sections=["identity", "needs", "background"], status=AgreementStatus.active,
                              proposed_by_org_id=net.orgs["unhcr"].id, decided_at=clock.now())
        session.add(agreement)
        session.flush()
        if gov == "canada":
            w.agreement = agreement.id
    fields = {"current_country": "PK", "category_primary": "LPN", "category_secondary": "LAS",
              "processing_priority": "urgent", "submission_priority": "normal"}

    def household(name: str) -> list[dict[str, Any]]:
        return [{"relationship": "principal", "given_name": name, "family_name": "Matrix", "sex": "female",
                 "date_of_birth": "1991", "nationality": "AF"},
                {"relationship": "child", "given_name": "Child", "family_name": "Matrix", "sex": "male",
                 "date_of_birth": "2015", "nationality": "AF"}]

    for key, persona in (("referred", "caseworker_unhcr"), ("revoked", "caseworker_unhcr"),
                         ("canadian", "officer_canada"), ("canadian2", "officer_canada"),
                         ("offered", "caseworker_unhcr")):
        case = cases.create_case(session, actor=act(persona), case=fields, members=household(key.title()))
        w.case[key] = case.id
        w.case_number[key] = case.number
        w.principal[case.id] = session.scalars(select(Member.id).where(Member.case_id == case.id,
                                                                       Member.relationship == "principal")).one()
    agency = act("caseworker_unhcr")
    access = {k: access_case(session, agency, w.case[k]) for k in ("referred", "revoked", "offered")}
    for key, gov in (("referred", "canada"), ("revoked", "spain")):
        consent = sharing.record_consent(session, actor=agency, access=access[key],
                                         recipient_org_id=net.orgs[gov].id, purpose="resettlement", method="written")
        if key == "referred":
            w.consent = consent.id
        sharing.refer(session, actor=agency, access=access[key], recipients=[net.orgs[gov].id],
                      purpose="resettlement", sections=["identity", "needs"])
    sharing.record_consent(session, actor=agency, access=access["referred"], recipient_org_id=net.orgs["germany"].id,
                           purpose="resettlement", method="written")
    revoked = session.scalars(select(Referral).where(Referral.case_id == w.case["revoked"])).one()
    sharing.change_referral(session, actor=agency, referral=revoked, status="revoked", reason="Family withdrew")
    w.referral["revoked"] = revoked.id
    w.referral["live"] = session.scalars(select(Referral.id).where(Referral.case_id == w.case["referred"])).one()
    w.link = cases.link_cases(session, actor=agency, access=access["referred"], other=access["revoked"],
                              reason="Siblings").id
    w.transfer = sharing.request_transfer(session, actor=act("admin_unhcr"), access=access["offered"],
                                          to_org_id=net.orgs["germany"].id, reason="Germany processes it").id
    session.commit()


def _matching(w: World, session: Any) -> None:
    """A site each for Canada and Spain; the agency's run over its cases, solved by the worker."""
    from rdn.matching import service as matching
    from rdn.matching.models import Placement, Site

    for gov, code in (("canada", "TOR"), ("spain", "MAD")):
        site = Site(org_id=w.net.orgs[gov].id, code=code, name=f"{code} centre", country=w.net.orgs[gov].country,
                    capacity_people=20, resources={"caseworker_hours": 100.0})
        session.add(site)
        session.flush()
        w.site["canadian" if gov == "canada" else gov] = site.id
    agency = identity.principal_for(session, w.net.people["caseworker_unhcr"], org_id=w.net.orgs["unhcr"].id,
                                    via="session")
    run = matching.start_run(session, actor=agency, title="Matrix run", filters={})
    session.commit()
    outbox.Worker().run_until_idle()
    w.run["agency"] = run.id
    w.placement["agency"] = session.scalars(select(Placement.id).where(Placement.run_id == run.id)).first()


def _pathways(w: World, session: Any) -> None:
    """An obstacle the agency reported in Pakistan, with a démarche led by Canada and a piece of evidence."""
    from rdn.pathways import catalog, library, obstacles

    def act(persona: str) -> identity.Principal:
        return identity.principal_for(session, w.net.people[persona], org_id=w.net.org_of(persona).id,
                                      via="session")

    obstacle = obstacles.create_obstacle(session, actor=act("caseworker_unhcr"),
                                         data={"country": "PK", "type": "exit_permit", "title": "Matrix exit fee"})
    w.obstacle["open"] = obstacle.id
    w.diplomatic["open"] = obstacles.add_action(session, actor=act("officer_canada"), obstacle=obstacle,
                                                data={"type": "demarche"}).id
    w.evidence["open"] = obstacles.add_evidence(session, actor=act("caseworker_unhcr"), obstacle=obstacle,
                                                note="Notice", filename="n.pdf", data=b"%PDF-1.4 matrix").id
    w.pathway["canadian"] = catalog.create_pathway(session, actor=act("officer_canada"),
                                                   data={"name": "Matrix pathway", "type": "resettlement"}).id
    w.practice["canadian"] = library.create(session, actor=act("officer_canada"),
                                            data={"title": "Matrix practice", "body": "It worked."},
                                            upload=library.Upload("notes.txt", b"plain notes")).id
    session.commit()


def _mobility(w: World, session: Any) -> None:
    """Two Safe Mobility offices: "smo" (whose caseworker and officer are personas) and another with no persona;
    each with a registration (screened, with a booked interview), a screening rule and a slot. Costa Rica's
    office has an agreement in force with Spain (for conversion)."""
    from datetime import timedelta

    from rdn.cases.models import Agreement, AgreementStatus
    from rdn.mobility import appointments, screening
    from rdn.mobility.models import Office
    from tests.mobility.conftest import make_registration

    other_org = service.create_organization(session, actor=ACTOR_MATRIX, name="Safe Mobility Office Colombia",
                                            short_name="smo-other", kind=OrgKind.mobility_office, country="CO")
    other_officer = service.create_person(session, actor=ACTOR_MATRIX, email="officer-other@smo.rdn.test",
                                          full_name="Other Officer", org=other_org, role=Role.officer,
                                          password="long enough pw 123", invite=False)
    session.add(Agreement(provider_org_id=w.net.orgs["smo"].id, recipient_org_id=w.net.orgs["spain"].id,
                          title="Safe Mobility and Spain", purposes=["resettlement", "family_reunification"],
                          sections=["identity", "needs", "family"], status=AgreementStatus.active,
                          proposed_by_org_id=w.net.orgs["smo"].id))
    offices = {
        "own": Office(org_id=w.net.orgs["smo"].id, slug="smo", country="CR", name="Safe Mobility Office Costa Rica",
                      nationalities=["NI", "VE"], presence_cutoff=date(2023, 6, 12), timezone="America/Costa_Rica"),
        "other": Office(org_id=other_org.id, slug="smo-other", country="CO", name="Safe Mobility Office Colombia",
                        nationalities=["VE"], presence_cutoff=date(2023, 6, 11), timezone="America/Bogota"),
    }
    session.add_all(offices.values())
    session.flush()
    officers = {"own": identity.principal_for(session, w.net.people["officer_smo"], org_id=w.net.orgs["smo"].id,
                                              via="session"),
                "other": identity.principal_for(session, other_officer, org_id=other_org.id, via="session")}
    for rel, office in offices.items():
        rule = screening.save_rule(session, actor=officers[rel], office=office, data={
            "name": "Spain resettlement", "destination": "ES",
            "conditions": [{"field": "nationality", "op": "in", "value": ["VE", "NI"]}]})
        w.rule[rel], w.rule_key[rel] = rule.id, rule.rule_key
        registration = make_registration(session, office)
        screening.screen_registration(session, registration)
        w.registration[rel] = registration.id
        slots = appointments.create_slots(session, actor=officers[rel], office=office,
                                          starts_at=clock.now() + timedelta(days=2), minutes=30, capacity=3, count=2)
        w.slot[rel] = slots[0].id
        w.appointment[rel] = appointments.book(session, registration=registration, slot_id=slots[1].id,
                                               by="staff", actor=officers[rel]).id
        if rel == "own":
            w.reference = registration.reference
    session.commit()


def _reports(w: World, session: Any) -> None:
    """The network picture: one projected need ("existing"); the governments are the network's canada and spain."""
    from rdn.reports.models import Need

    need = Need(year=2026, population="Matrix population", nationality="AF", region="", people=1000,
                source="Matrix source")
    session.add(need)
    session.commit()
    w.need["existing"] = need.id


def _welcome(w: World, session: Any) -> None:
    """Welcome: Canada's programme ("canadian", slug ca-matrix, started by admin_canada) with the maple group (the
    organization of sponsor_group_a, who is one of its members), and Spain's ("spanish", slug es-matrix) with the
    "other" group (a sponsor group of its own that signed up on the public page, no persona). Both groups are
    eligible (their adults passed checks and training, funds pledged and verified, a full welcome plan) and
    welcome a family their government accepted from the agency: an active match (proposed by the staff, accepted
    by the group and the family) whose family arrived five days ago, so its core services are dated. A donation is
    offered in each programme. Spain's minister is a senior official, who does not run programmes: Spain's
    programme is a row made here, and an officer of Spain with no persona acts as its staff."""
    from datetime import timedelta

    from rdn.cases import service as cases
    from rdn.cases import sharing
    from rdn.cases.models import Referral
    from rdn.core.identity import User
    from rdn.welcome import service as welcome
    from rdn.welcome.models import SPONSOR_FIELDS, CheckStatus, GroupStatus, Programme, SponsorGroup, SponsorMember

    net = w.net

    def act(user: Any, org_id: Any) -> identity.Principal:
        p = identity.principal_for(session, user, org_id=org_id, via="session")
        return dataclasses.replace(p, mfa_at=clock.now())

    spain = net.orgs["spain"]
    officer_spain = service.create_person(session, actor=ACTOR_MATRIX, email="officer-spain@matrix.rdn.test",
                                          full_name="Spanish Officer", org=spain, role=Role.officer,
                                          password="long enough pw 123", invite=False)
    staff = {"canadian": act(net.people["officer_canada"], net.orgs["canada"].id),
             "spanish": act(officer_spain, spain.id)}
    rules = {"min_adults": 2, "checks_required": True, "training_required": True, "funds_per_person": 100,
             "cash_share": 0.5, "support_days": 90, "streams": ["matched", "named"],
             "sponsor_fields": list(SPONSOR_FIELDS)}
    programmes = {
        "canadian": welcome.create_programme(session, actor=act(net.people["admin_canada"], net.orgs["canada"].id),
                                             data={**rules, "name": "Canada Matrix Circles", "slug": "ca-matrix",
                                                   "currency": "CAD"}),
        "spanish": Programme(org_id=spain.id, slug="es-matrix", country="ES",
                             **welcome.programme_values({**rules, "name": "Programa Matrix", "currency": "EUR"})),
    }
    session.add(programmes["spanish"])
    session.flush()
    maple = SponsorGroup(programme_id=programmes["canadian"].id, org_id=net.orgs["maple"].id,
                         government_org_id=net.orgs["canada"].id, name="Maple Street Welcome Circle", country="CA",
                         city="Ottawa", contact_email="circle@maple.test", languages=["en", "fa"], capacity=5)
    session.add(maple)
    session.flush()
    session.add(SponsorMember(group_id=maple.id, user_id=net.people["sponsor_group_a"].id,
                              full_name="Sponsor Group A", email="sponsor_group_a@rdn.test",
                              check_status=CheckStatus.pending))
    session.flush()
    other = welcome.sign_up(session, programme=programmes["spanish"], data={
        "your_name": "Lucía Otra", "your_email": "lucia@other.matrix.test", "name": "Vecinos Matrix",
        "city": "Madrid", "capacity": "5"})
    groups = {"canadian": maple, "spanish": other}
    sponsors = {"canadian": act(net.people["sponsor_group_a"], maple.org_id),
                "spanish": act(session.get(User, welcome.members_of(session, other)[0].user_id), other.org_id)}
    agency = act(net.people["caseworker_unhcr"], net.orgs["unhcr"].id)
    arrived = welcome.today_() - timedelta(days=5)
    for rel, key, gov in (("canadian", "maple", "canada"), ("spanish", "other", "spain")):
        group, programme, officer = groups[rel], programmes[rel], staff[rel]
        # Eligible under the programme's rules, recorded by its staff.
        for n in range(len(welcome.members_of(session, group)), programme.min_adults):
            welcome.add_member(session, actor=officer, group=group,
                               data={"full_name": f"Matrix Sponsor {n}", "email": f"s{n}@{key}.matrix.test"})
        for member in welcome.members_of(session, group):
            welcome.record_check(session, actor=officer, group=group, member=member, check="passed",
                                 trained_on=arrived.isoformat())
        need = welcome.funds_needed(programme, group)
        first = welcome.members_of(session, group)[0]
        welcome.update_group(session, actor=officer, group=group, changes={
            "funds_pledged": need, "funds_cash": need, "plan": {s["code"]: str(first.id) for s in programme.services}})
        welcome.verify_funds(session, actor=officer, group=group)
        assert group.status == GroupStatus.eligible, welcome.refresh_status(session, group)
        # A family of the agency's, referred to the government and accepted, on its way.
        case = cases.create_case(session, actor=agency, case={
            "current_country": "PK", "category_primary": "LPN", "category_secondary": "LAS",
            "processing_priority": "normal", "submission_priority": "normal"}, members=[
            {"relationship": "principal", "given_name": "Arriving", "family_name": key.title(), "sex": "female",
             "date_of_birth": "1990", "nationality": "AF", "languages": "fa"},
            {"relationship": "child", "given_name": "Little", "family_name": key.title(), "sex": "male",
             "date_of_birth": "2016", "nationality": "AF"}])
        access = access_case(session, agency, case.id)
        sharing.record_consent(session, actor=agency, access=access, recipient_org_id=net.orgs[gov].id,
                               purpose="resettlement", method="written")
        sharing.refer(session, actor=agency, access=access, recipients=[net.orgs[gov].id], purpose="resettlement",
                      sections=["identity", "needs"])
        referral = session.scalars(select(Referral).where(Referral.case_id == case.id)).one()
        sharing.change_referral(session, actor=officer, referral=referral, status="accepted")
        case.stage = "approved"
        session.flush()
        # Matched, accepted by both sides, arrived five days ago.
        match = welcome.propose(session, actor=officer, group=group, case_id=case.id, shared_needs=["dietary"])
        welcome.respond_as_group(session, actor=sponsors[rel], match=match, accept=True)
        welcome.record_family_answer(session, actor=officer, match=match, accept=True)
        welcome.set_arrival(session, actor=officer, match=match, arrival_on=arrived,
                            notice={"flight": "Matrix 1", "airport": "Matrix airport"})
        donation = welcome.offer_donation(session, programme=programme, data={
            "donor_name": "Matrix Donor", "donor_email": f"donor@{key}.matrix.test", "kind": "furniture",
            "description": "A table and four chairs", "city": group.city})
        w.programme[rel], w.programme_slug[rel], w.donation[rel] = programme.id, programme.slug, donation.id
        w.arriving[rel] = case.id
        w.group[key], w.match[key] = group.id, match.id
        w.sponsor_member[key] = welcome.members_of(session, group)[0].id
        w.task[key] = welcome.tasks_of(session, match)[0].id
    session.commit()


def classify(response: Any) -> str:
    status = response.status_code
    if status == 401:
        return LOGIN
    if status in (302, 303, 307) and response.headers.get("location", "").startswith("/login"):
        return LOGIN
    if status == 403:
        return DENY
    if status == 404:
        return HIDE
    if status < 400 or status == 409:
        return OK
    return f"error({status}: {response.text[:200]})"


def expected(row: Row, persona: str, rel: str | None) -> str:
    if persona == "anonymous":
        return LOGIN
    if persona in TOKENS and not row.api:
        # Pages answer to browser sessions only; a bearer token is ignored there (and, with no session
        # cookie, an unsafe request fails the CSRF check first).
        return LOGIN if row.method == "GET" else DENY
    if persona in row.allowed.get(rel, frozenset()):
        return OK
    if persona in row.token_deny.get(rel, frozenset()):
        return DENY
    return row.denial(rel)


def call(w: World, row: Row, persona: str, rel: str | None) -> Any:
    names = _PARAM.findall(row.path)
    w.persona = persona
    w.path_values = w.values(persona, rel, names) if names else {}
    url = row.path.format(**w.path_values) + (f"?{row.query}" if row.query else "")
    client = w.clients["bearer"] if persona in TOKENS else w.clients[persona]
    kwargs: dict[str, Any] = {}
    if persona in TOKENS:
        kwargs["headers"] = dict(w.token_headers[persona])
    body = row.form(w) if callable(row.form) else row.form
    if body is not None:
        kwargs["data"] = body
    body = row.json(w) if callable(row.json) else row.json
    if body is not None:
        kwargs["json"] = body
    if row.files is not None:
        kwargs["files"] = row.files
    return client.request(row.method, url, **kwargs)


def discard(connection: Any, savepoint: Any) -> None:
    """Undo a call, and take its savepoint off the stack. ROLLBACK TO leaves the savepoint in place, so the next
    call's would nest inside it, and a write there gives every enclosing level a transaction id that PostgreSQL
    holds a lock on until the outer transaction ends: thirteen thousand calls filled its lock table ("out of
    shared memory"). Released right after the rollback, the savepoint holds nothing."""
    name = savepoint._savepoint
    savepoint.rollback()
    connection.exec_driver_sql(f"RELEASE SAVEPOINT {name}")


def test_authorization_matrix(world: World, connection):
    personas = sorted(set(world.clients) - {"bearer"} | TOKENS)
    failures, checked = [], 0
    for row in MATRIX:
        for rel in row.allowed:
            for persona in personas:
                savepoint = connection.begin_nested()
                try:
                    response = call(world, row, persona, rel)
                finally:
                    discard(connection, savepoint)
                checked += 1
                if row.public:
                    if response.status_code >= 500:
                        failures.append(f"{row.method} {row.path} [{persona}]: server error {response.status_code}")
                    continue
                got, want = classify(response), expected(row, persona, rel)
                if got.startswith("error(") and response.status_code in row.also_ok:
                    got = OK
                if got != want:
                    failures.append(f"{row.method} {row.path} rel={rel} persona={persona}: got {got}, want {want}")
    print(f"authorization matrix: {checked} calls checked, {len(failures)} broke it")
    assert checked > 1000
    assert not failures, f"{len(failures)} of {checked} calls broke the matrix:\n" + "\n".join(failures[:60])
