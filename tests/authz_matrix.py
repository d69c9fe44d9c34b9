"""The authorization matrix: persona x route x owner-relationship -> outcome.

Every route of the application has a row here; ``test_authz_matrix.py`` fails when one does not. For each
row and each relationship of the caller to the object in the path, the row lists the personas *allowed*;
every other persona gets the row's denial:

* ``LOGIN``: anonymous callers (and API tokens on pages, which answer to browser sessions only) are sent
  to the login page, or get 401 from the API;
* ``HIDE``: a 404, the same as for a missing object (objects never leak their existence);
* ``DENY``: a 403, for capabilities that involve no object.

Relationships (see ``test_authz_matrix.World``):
    case_id:       referred (the agency's case, referred to Canada), revoked (the agency's case whose referral
                   to Spain was revoked), canadian (a case Canada owns), mismatch (a member or link of another
                   case under this case's path), missing
    referral_id:   live (agency to Canada, pending), revoked (agency to Spain), missing
    agreement_id:  party (agency and Canada), missing
    transfer_id:   pending (the agency offers a case to Germany), missing
    org_id:        own (the caller's organization), other, missing
    user_id:       self, colleague (same organization), stranger (another organization), missing
    membership_id: colleague (a colleague's role in the caller's organization), stranger, missing
    session_id, token_id, webhook_id: own, other, missing
    job_id:        existing, missing
Public rows (login, health checks, password links...) are reachable by all; the test checks they never
answer with a server error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OK, LOGIN, HIDE, DENY = "ok", "login", "hide(404)", "deny(403)"

HUMANS = frozenset({
    "admin_secretariat", "admin_canada", "officer_canada", "minister_spain", "minister_germany",
    "caseworker_unhcr", "admin_unhcr", "analyst_ec", "sponsor_group_a", "caseworker_smo", "officer_smo",
})
TOKENS = frozenset({"token_read_canada", "token_admin_canada", "token_read_secretariat"})
EVERYONE = frozenset({"anonymous"}) | HUMANS | TOKENS
NOBODY: frozenset[str] = frozenset()

ORG_ADMINS = frozenset({"admin_secretariat", "admin_canada", "admin_unhcr", "sponsor_group_a"})
SECRETARIAT = frozenset({"admin_secretariat"})
STAFF = HUMANS - {"sponsor_group_a"}
SMO = frozenset({"caseworker_smo", "officer_smo"})  # a Safe Mobility office's caseworker and officer
# The red phone: who stands where in the test world (see test_authz_matrix.World.redphone).
COORDINATING = STAFF - SMO  # staff of governments, the secretariat, observers and agencies
GOV_AND_SECRETARIAT = frozenset({"admin_secretariat", "admin_canada", "officer_canada", "minister_spain",
                                 "minister_germany"})
DECLARERS = frozenset({"admin_secretariat", "minister_spain", "minister_germany"})
CHAIR_OR_RAPPORTEUR = frozenset({"minister_spain", "admin_secretariat"})  # of the shared crisis
IN_A_CHAIN = frozenset({"officer_canada", "minister_spain", "minister_germany"})
PLEDGERS = frozenset({"admin_canada", "officer_canada", "minister_spain", "minister_germany"})
CHAIN_KEEPERS = frozenset({"admin_canada", "minister_spain", "minister_germany"})
READ_TOKENS = TOKENS
CRISIS = {"shared": COORDINATING, "other": SECRETARIAT, "missing": NOBODY}
CRISIS_API = {"shared": COORDINATING | READ_TOKENS, "other": SECRETARIAT | {"token_read_secretariat"},
              "missing": NOBODY}

Body = dict[str, Any] | Callable[[Any], dict[str, Any]] | None


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    allowed: dict[str | None, frozenset[str]]  # relationship (None: no object) -> personas allowed
    deny: str | dict[str, str] = DENY  # per relationship if a dict; "missing" always hides
    form: Body = None  # form fields (pages)
    json: Body = None  # JSON body (API)
    public: bool = False
    sse: bool = False
    also_ok: frozenset[int] = frozenset()  # statuses that mean "allowed, but this input is refused"
    token_deny: dict[str | None, frozenset[str]] = field(default_factory=dict)  # callers refused with a 403
    query: str = ""  # a query string for the call
    files: dict[str, Any] | None = None  # multipart files (with ``form`` as the other fields)
    notes: str = ""

    def denial(self, rel: str | None) -> str:
        if rel == "missing":
            return HIDE
        if isinstance(self.deny, dict):
            return self.deny.get(rel or "", DENY)
        return self.deny

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")


def R(method: str, path: str, allowed: frozenset[str] | dict[str | None, frozenset[str]], **kw: Any) -> Row:
    if not isinstance(allowed, dict):
        allowed = {None: allowed}
    return Row(method, path, allowed, **kw)


def PUBLIC(method: str, path: str, **kw: Any) -> Row:
    return Row(method, path, {None: EVERYONE}, public=True, **kw)


# Bodies that pass validation, so that what is measured is the authorization, not the input.
def _new_org(w: Any) -> dict[str, Any]:
    return {"name": "Matrix Land", "short_name": w.unique("org"), "kind": "government", "country": "FR"}


def _edit_org(w: Any) -> dict[str, Any]:
    org = w.current_org()
    return {"name": org["name"], "country": org["country"] or "", "active": "on"}


def _new_person(w: Any) -> dict[str, Any]:
    return {"email": f"{w.unique('p')}@rdn.test", "full_name": "New Person", "org_id": str(w.persona_org_id()),
            "role": "admin", "locale": "es"}


def _grant(w: Any) -> dict[str, Any]:
    return {"org_id": str(w.persona_org_id()), "role": "admin"}


def _token(w: Any) -> dict[str, Any]:
    return {"name": "matrix token", "scopes": ["read"], "days": "30"}


def _step_up(w: Any) -> dict[str, Any]:
    return {"code": w.totp_now(), "next": "/account"}


def _switch(w: Any) -> dict[str, Any]:
    return {"org_id": str(w.persona_org_id()), "next": "/"}


def _declare(w: Any) -> dict[str, Any]:
    return {"title": "Matrix crisis", "summary": "", "activation_level": "monitoring"}


def _message(w: Any) -> dict[str, Any]:
    return {"client_id": w.unique("msg").replace("-", "_"), "body": "A message to the room"}


def _new_action(w: Any) -> dict[str, Any]:
    return {"title": "A new action", "owner_org_id": str(w.secretariat_id()), "due_on": "2099-01-01"}


def _chain_form(w: Any) -> dict[str, Any]:
    return {"level-0-name": "Minister", "level-0-wait": "5", "level-0-people": str(w.persona_user_id()),
            "repeat_count": "1"}


def _chain_json(w: Any) -> dict[str, Any]:
    return {"repeat_count": 1, "levels": [{"name": "Minister", "wait_minutes": 5,
                                          "user_ids": [str(w.persona_user_id())]}]}


def _seat(w: Any) -> dict[str, Any]:
    return {"org_id": str(w.observer_id()), "role": "observer"}


MATRIX: list[Row] = [
    # The shell and health checks
    R("GET", "/", HUMANS),
    PUBLIC("GET", "/healthz"),
    PUBLIC("GET", "/readyz"),
    PUBLIC("GET", "/api/docs"),
    PUBLIC("GET", "/api/openapi.json"),
    # Signing in and password links (public by nature; their behaviour is tested in tests/accounts)
    PUBLIC("GET", "/login"),
    PUBLIC("POST", "/login", form={"email": "nobody@rdn.test", "password": "wrong password!", "next": "/"}),
    PUBLIC("GET", "/login/mfa"),
    PUBLIC("POST", "/login/mfa", form={"code": "000000", "next": "/"}),
    PUBLIC("GET", "/mfa/enrol"),
    PUBLIC("POST", "/mfa/enrol", form={"code": "000000", "pending": "x", "next": "/"}),
    PUBLIC("POST", "/logout"),
    PUBLIC("GET", "/password/forgot"),
    PUBLIC("POST", "/password/forgot", form={"email": "nobody@rdn.test"}),
    PUBLIC("GET", "/password/set"),
    PUBLIC("POST", "/password/set", form={"token": "nope", "password": "x", "confirm": "x"}),
    PUBLIC("POST", "/locale", form={"locale": "fr", "next": "/"}),
    # One's own account
    R("GET", "/account", HUMANS),
    R("POST", "/account/profile", HUMANS, form={"full_name": "Renamed Person", "locale": "fr"}),
    R("POST", "/account/password", HUMANS,
      form={"current_password": "correct horse battery staple", "new_password": "a brand new passphrase 42"}),
    R("POST", "/account/sessions/{session_id}/revoke",
      {"own": HUMANS, "other": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("POST", "/account/sessions/revoke-all", HUMANS),
    R("POST", "/account/tokens", STAFF, form=_token, notes="sponsors (citizens) get no API tokens"),
    R("POST", "/account/tokens/{token_id}/revoke", {"own": HUMANS, "other": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("GET", "/account/mfa", HUMANS),
    R("POST", "/account/mfa", HUMANS, form={"code": "000000", "pending": "forged"}),
    R("GET", "/account/step-up", HUMANS),
    R("POST", "/account/step-up", HUMANS, form=_step_up),
    R("POST", "/session/org", HUMANS, form=_switch),
    R("GET", "/api/v1/me", HUMANS | TOKENS),
    R("GET", "/api/v1/tokens", HUMANS | TOKENS),
    R("DELETE", "/api/v1/tokens/{token_id}",
      {"own": HUMANS | {"token_admin_canada"}, "other": NOBODY, "missing": NOBODY},
      deny={"own": DENY, "other": HIDE}, notes="a read-only token may not revoke even its user's tokens"),
    # The network directory and its administration
    R("GET", "/organizations", HUMANS),
    R("GET", "/organizations/new", SECRETARIAT),
    R("POST", "/organizations/new", SECRETARIAT, form=_new_org),
    R("GET", "/organizations/{org_id}", {"own": HUMANS, "other": HUMANS, "missing": NOBODY}, deny=HIDE),
    R("GET", "/organizations/{org_id}/edit", {"own": SECRETARIAT, "other": SECRETARIAT, "missing": NOBODY},
      deny=HIDE),
    R("POST", "/organizations/{org_id}/edit", {"own": SECRETARIAT, "other": SECRETARIAT, "missing": NOBODY},
      deny=HIDE, form=_edit_org),
    R("GET", "/people", ORG_ADMINS),
    R("GET", "/people/new", ORG_ADMINS),
    R("POST", "/people/new", ORG_ADMINS, form=_new_person),
    R("GET", "/people/{user_id}",
      {"self": HUMANS, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("POST", "/people/{user_id}/edit",
      {"self": NOBODY, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      form={"full_name": "Edited Name", "active": "on"},
      notes="nobody manages themselves through the admin pages: the account page is for that"),
    R("POST", "/people/{user_id}/roles",
      {"self": NOBODY, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      form=_grant),
    R("POST", "/people/{user_id}/roles/{membership_id}/remove",
      {"colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("POST", "/people/{user_id}/sessions/revoke",
      {"self": NOBODY, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("POST", "/people/{user_id}/mfa/reset",
      {"self": NOBODY, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("POST", "/people/{user_id}/invite",
      {"self": NOBODY, "colleague": ORG_ADMINS, "stranger": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      notes="allowed callers get 409: the colleague has already set a password"),
    R("GET", "/api/v1/organizations", HUMANS | TOKENS),
    R("POST", "/api/v1/organizations", SECRETARIAT, json=_new_org),
    R("GET", "/api/v1/organizations/{org_id}",
      {"own": HUMANS | TOKENS, "other": HUMANS | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/organizations/{org_id}",
      {"own": SECRETARIAT, "other": SECRETARIAT, "missing": NOBODY}, json={"name": "Patched Name"},
      notes="the directory is readable by all, so a refusal here reveals nothing: 403"),
    R("GET", "/api/v1/people", ORG_ADMINS | {"token_admin_canada", "token_read_secretariat"}),
    R("POST", "/api/v1/people", ORG_ADMINS | {"token_admin_canada"}, json=_new_person),
    R("GET", "/api/v1/people/{user_id}",
      {"self": HUMANS | TOKENS,
       "colleague": ORG_ADMINS | {"token_admin_canada", "token_read_secretariat"},
       "stranger": SECRETARIAT | {"token_read_secretariat"}, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/people/{user_id}",
      {"self": NOBODY, "colleague": ORG_ADMINS | {"token_admin_canada"}, "stranger": SECRETARIAT,
       "missing": NOBODY}, deny=HIDE, json={"full_name": "Patched Person"}),
    R("POST", "/api/v1/people/{user_id}/memberships",
      {"self": NOBODY, "colleague": ORG_ADMINS | {"token_admin_canada"}, "stranger": SECRETARIAT,
       "missing": NOBODY}, deny=HIDE, json=_grant),
    R("DELETE", "/api/v1/memberships/{membership_id}",
      {"colleague": ORG_ADMINS | {"token_admin_canada"}, "stranger": SECRETARIAT, "missing": NOBODY},
      deny=HIDE),
    R("GET", "/api/v1/webhooks", {"admin_secretariat", "admin_canada", "admin_unhcr", "token_admin_canada"},
      notes="sponsor groups have no systems to call"),
    R("POST", "/api/v1/webhooks", {"admin_secretariat", "admin_canada", "admin_unhcr", "token_admin_canada"},
      json={"url": "https://example.org/hook", "event_types": ["*"]}),
    R("DELETE", "/api/v1/webhooks/{webhook_id}",
      {"own": frozenset({"admin_secretariat", "admin_canada", "admin_unhcr", "token_admin_canada"}), "other": NOBODY,
       "missing": NOBODY}, deny=HIDE),
    # Operations
    R("GET", "/admin/jobs", SECRETARIAT),
    R("GET", "/admin/jobs/{job_id}", {"existing": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("POST", "/admin/jobs/{job_id}/retry", {"existing": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("GET", "/admin/audit", ORG_ADMINS, notes="each organization's administrators see its part of the log"),
    R("POST", "/admin/audit/verify", SECRETARIAT),
    R("GET", "/events", HUMANS, sse=True),
    R("GET", "/api/v1/jobs", SECRETARIAT),
    R("POST", "/api/v1/jobs/{job_id}/retry", {"existing": SECRETARIAT, "missing": NOBODY}, deny=HIDE),
    R("GET", "/api/v1/audit", ORG_ADMINS | {"token_admin_canada"}),
    R("POST", "/api/v1/audit/verify", SECRETARIAT),
    R("GET", "/api/v1/events", HUMANS | TOKENS, sse=True),
    # The red phone: crises and the crisis room. "shared": a crisis the caller's organization takes part in;
    # "other": a drill it does not take part in. A refusal on an object is always the 404 of a missing one.
    R("GET", "/crises", COORDINATING),
    R("GET", "/crises/new", DECLARERS),
    R("POST", "/crises/new", DECLARERS, form=_declare),
    R("GET", "/crises/{crisis_id}", CRISIS, deny=HIDE),
    R("GET", "/crises/{crisis_id}/sections/{section}", CRISIS, deny=HIDE),
    R("GET", "/crises/{crisis_id}/events", CRISIS, deny=HIDE, sse=True),
    R("GET", "/crises/{crisis_id}/sitrep", CRISIS, deny=HIDE),
    R("GET", "/crises/{crisis_id}/sitrep.md", CRISIS, deny=HIDE),
    R("POST", "/crises/{crisis_id}/messages", CRISIS, deny=HIDE, form=_message,
      notes="observers talk in the room too"),
    R("POST", "/crises/{crisis_id}/decisions",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      form={"text": "We decide this."}),
    R("POST", "/crises/{crisis_id}/pledges", {"shared": PLEDGERS, "other": NOBODY, "missing": NOBODY},
      deny=HIDE, form={"places": "100", "population": "x", "time_frame": "6 months"},
      notes="only member governments pledge: observers, agencies and the secretariat do not"),
    R("POST", "/crises/{crisis_id}/pledges/{pledge_id}/status",
      {"canada": frozenset({"admin_canada", "officer_canada"}), "spain": frozenset({"minister_spain"}),
       "missing": NOBODY}, deny=HIDE, form={"status": "confirmed"},
      notes="a government moves its own pledges only"),
    R("POST", "/crises/{crisis_id}/actions",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE, form=_new_action),
    R("POST", "/crises/{crisis_id}/actions/{action_id}/status",
      {"canada": frozenset({"admin_canada", "officer_canada"}) | CHAIR_OR_RAPPORTEUR, "missing": NOBODY},
      deny=HIDE, form={"status": "in_progress"}),
    R("POST", "/crises/{crisis_id}/status",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      form={"status": "active"}, notes="the chair's leadership or the secretariat's"),
    R("POST", "/crises/{crisis_id}/participants",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE, form=_seat),
    R("POST", "/crises/{crisis_id}/acknowledge", {"shared": IN_A_CHAIN, "other": NOBODY, "missing": NOBODY},
      deny=HIDE, notes="only someone in a government's chain acknowledges, and only for that government"),
    R("GET", "/pages", COORDINATING),
    R("POST", "/pages/{page_id}/acknowledge", {"own": IN_A_CHAIN, "other": NOBODY, "missing": NOBODY},
      deny=HIDE),
    PUBLIC("GET", "/ack/{token}", notes="the signed single-use link of an email or SMS page"),
    PUBLIC("POST", "/ack/{token}"),
    R("GET", "/chains", GOV_AND_SECRETARIAT),
    R("GET", "/chains/{org_id}",
      {"own": frozenset({"admin_canada", "officer_canada", "minister_spain", "minister_germany"}),
       "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      notes="a government's staff see its chain; the secretariat sees every chain"),
    R("POST", "/chains/{org_id}", {"own": CHAIN_KEEPERS, "other": NOBODY, "missing": NOBODY}, deny=HIDE,
      form=_chain_form),
    R("GET", "/contact", HUMANS),
    R("POST", "/contact", HUMANS, form={"kind": "email", "address": "me@example.org", "label": ""}),
    R("POST", "/contact/{method_id}/verify", {"own": HUMANS, "other": NOBODY, "missing": NOBODY}, deny=HIDE,
      form={"code": "000000"}),
    R("POST", "/contact/{method_id}/resend", {"own": HUMANS, "other": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("POST", "/contact/{method_id}/remove", {"own": HUMANS, "other": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("GET", "/drills", GOV_AND_SECRETARIAT),
    R("GET", "/api/v1/crises", COORDINATING | READ_TOKENS),
    R("POST", "/api/v1/crises", DECLARERS, json=_declare),
    R("GET", "/api/v1/crises/{crisis_id}", CRISIS_API, deny=HIDE),
    R("PATCH", "/api/v1/crises/{crisis_id}",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      json={"status": "active"}),
    R("GET", "/api/v1/crises/{crisis_id}/participants", CRISIS_API, deny=HIDE),
    R("PUT", "/api/v1/crises/{crisis_id}/participants",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE, json=_seat),
    R("GET", "/api/v1/crises/{crisis_id}/paging", CRISIS_API, deny=HIDE),
    R("POST", "/api/v1/crises/{crisis_id}/acknowledge",
      {"shared": IN_A_CHAIN, "other": NOBODY, "missing": NOBODY}, deny=HIDE,
      notes="a read-only token of someone in the chain cannot acknowledge (the write scope is needed)"),
    R("GET", "/api/v1/crises/{crisis_id}/messages", CRISIS_API, deny=HIDE),
    R("POST", "/api/v1/crises/{crisis_id}/messages",
      {"shared": COORDINATING | {"token_admin_canada"}, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      json=_message),
    R("GET", "/api/v1/crises/{crisis_id}/decisions", CRISIS_API, deny=HIDE),
    R("POST", "/api/v1/crises/{crisis_id}/decisions",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE,
      json={"text": "We decide this."}),
    R("GET", "/api/v1/crises/{crisis_id}/pledges", CRISIS_API, deny=HIDE),
    R("POST", "/api/v1/crises/{crisis_id}/pledges",
      {"shared": PLEDGERS | {"token_admin_canada"}, "other": NOBODY, "missing": NOBODY}, deny=HIDE,
      json={"places": 100, "population": "x", "time_frame": "6 months"}),
    R("PATCH", "/api/v1/pledges/{pledge_id}",
      {"canada": frozenset({"admin_canada", "officer_canada", "token_admin_canada"}),
       "spain": frozenset({"minister_spain"}), "missing": NOBODY}, deny=HIDE, json={"status": "confirmed"}),
    R("GET", "/api/v1/crises/{crisis_id}/actions", CRISIS_API, deny=HIDE),
    R("POST", "/api/v1/crises/{crisis_id}/actions",
      {"shared": CHAIR_OR_RAPPORTEUR, "other": SECRETARIAT, "missing": NOBODY}, deny=HIDE, json=_new_action),
    R("PATCH", "/api/v1/actions/{action_id}",
      {"canada": frozenset({"admin_canada", "officer_canada", "token_admin_canada"}) | CHAIR_OR_RAPPORTEUR,
       "missing": NOBODY}, deny=HIDE, json={"status": "in_progress"}),
    R("GET", "/api/v1/crises/{crisis_id}/sitrep", CRISIS_API, deny=HIDE),
    R("GET", "/api/v1/crises/{crisis_id}/events", CRISIS_API, deny=HIDE, sse=True),
    R("GET", "/api/v1/pages", COORDINATING | READ_TOKENS),
    R("POST", "/api/v1/pages/{page_id}/acknowledge", {"own": IN_A_CHAIN, "other": NOBODY, "missing": NOBODY},
      deny=HIDE),
    R("GET", "/api/v1/chains/{org_id}",
      {"own": frozenset({"admin_canada", "officer_canada", "minister_spain", "minister_germany",
                         "token_read_canada", "token_admin_canada"}),
       "other": SECRETARIAT | {"token_read_secretariat"}, "missing": NOBODY}, deny=HIDE),
    R("PUT", "/api/v1/chains/{org_id}", {"own": CHAIN_KEEPERS | {"token_admin_canada"}, "other": NOBODY,
                                         "missing": NOBODY}, deny=HIDE, json=_chain_json),
    R("GET", "/api/v1/contact-methods", HUMANS | TOKENS),
    R("POST", "/api/v1/contact-methods", HUMANS | {"token_admin_canada"},
      json={"kind": "email", "address": "me@example.org"}),
    R("POST", "/api/v1/contact-methods/{method_id}/verify",
      {"own": HUMANS | {"token_admin_canada"}, "other": NOBODY, "missing": NOBODY}, deny=HIDE,
      json={"code": "000000"}, also_ok=frozenset({422}), notes="allowed callers get 422: the code is wrong"),
    R("DELETE", "/api/v1/contact-methods/{method_id}",
      {"own": HUMANS | {"token_admin_canada"}, "other": NOBODY, "missing": NOBODY}, deny=HIDE),
    PUBLIC("POST", "/api/v1/sms/inbound", notes="signed by the SMS provider (HMAC), not by a user"),
    R("GET", "/api/v1/drills", GOV_AND_SECRETARIAT | READ_TOKENS),
]

# Cases and referrals ------------------------------------------------------------------------------------------
# Who stands where (see test_authz_matrix.World.cases): the UNHCR-like agency owns "referred" (referred to
# Canada, identity and needs shared), "revoked" (its referral to Spain revoked) and an offered case; Canada owns
# "canadian". Agency caseworkers see everything; the agency's admin (also a senior official) all but
# member-confidential notes; Canada's officer handles what is referred to Canada; Canada's admin sees summaries.

AGENCY = frozenset({"caseworker_unhcr", "admin_unhcr"})
CANADA = frozenset({"officer_canada", "admin_canada"})
CASE_STAFF = AGENCY | CANADA | SMO | {"minister_spain", "minister_germany"}  # offices own cases too
CASE_OPENERS = frozenset({"caseworker_unhcr", "officer_canada"}) | SMO
AGREEMENT_PROPOSERS = frozenset({"admin_unhcr", "admin_canada"})


def _cases(referred: frozenset[str], revoked: frozenset[str], canadian: frozenset[str]
           ) -> dict[str | None, frozenset[str]]:
    return {"referred": referred, "revoked": revoked, "canadian": canadian, "missing": NOBODY}


SEE = _cases(AGENCY | CANADA, AGENCY, CANADA)
WRITE = _cases(frozenset({"caseworker_unhcr"}), frozenset({"caseworker_unhcr"}), frozenset({"officer_canada"}))
HANDLE = _cases(AGENCY, AGENCY, frozenset({"officer_canada"}))  # refer, record consent
LEAD = _cases(frozenset({"admin_unhcr"}), frozenset({"admin_unhcr"}), frozenset({"admin_canada"}))  # transfer
LOG = _cases(AGENCY, AGENCY, CANADA)
PROTECTION = _cases(AGENCY, AGENCY, frozenset({"officer_canada"}))  # Canada was not given "protection"
CONFIDENTIAL = _cases(frozenset({"caseworker_unhcr"}), frozenset({"caseworker_unhcr"}), NOBODY)


#: Sealed sections never go to API tokens: a token that sees the case is refused with a 403 (one that does not, 404).
SEALED_FROM_TOKENS = {"referred": frozenset({"token_read_canada", "token_admin_canada"}),
                      "canadian": frozenset({"token_read_canada", "token_admin_canada"})}


def _tokens(allowed: dict[str | None, frozenset[str]], *, read: bool) -> dict[str | None, frozenset[str]]:
    """The API's view: a token acts as its persona, within its scopes (read-only or everything)."""
    out = {}
    for rel, personas in allowed.items():
        extra = set()
        if read and "officer_canada" in personas:
            extra.add("token_read_canada")
        if "admin_canada" in personas:
            extra.add("token_admin_canada")
        out[rel] = personas | extra
    return out


def _member(i: int = 0, **over: str) -> dict[str, str]:
    base = {"relationship": "principal" if i == 0 else "child", "given_name": "Amina", "family_name": "Yusuf",
            "sex": "female", "date_of_birth": "1990", "nationality": "SO", "languages": "so"}
    base.update(over)
    return {f"m{i}-{k}": v for k, v in base.items()}


HOUSEHOLD_CSV = (b"case_key,current_country,category_primary,category_secondary,processing_priority,"
                 b"submission_priority,relationship,given_name,family_name,sex,date_of_birth,nationality\r\n"
                 b"h1,KE,WGR,LAS,normal,normal,principal,Amina,Yusuf,female,1990,SO\r\n")


def _case_form(w: Any) -> dict[str, str]:
    return {"count": "1", "category_primary": "WGR", "category_secondary": "LAS", "processing_priority": "normal",
            "submission_priority": "normal", "current_country": "KE", "confirm_similar": "1", **_member(0)}


def _case_json(w: Any) -> dict[str, Any]:
    return {"category_primary": "WGR", "category_secondary": "LAS", "processing_priority": "normal",
            "submission_priority": "normal", "current_country": "KE",
            "members": [{"relationship": "principal", "given_name": "Amina", "family_name": "Yusuf", "sex": "female",
                         "date_of_birth": "1990", "nationality": "SO"}]}


def _edit_case(w: Any) -> dict[str, str]:
    return {"category_primary": "LPN", "category_secondary": "LAS", "processing_priority": "urgent",
            "submission_priority": "urgent", "current_country": "PK", "current_location": "Quetta"}


def _principal_of_case(w: Any) -> dict[str, str]:
    return {"member_id": str(w.principal_member(w.path_values.get("case_id", "")))}


def _consent(w: Any) -> dict[str, str]:
    return {"recipient_org_id": str(w.net.orgs["germany"].id), "purpose": "resettlement", "method": "written"}


def _refer(w: Any) -> dict[str, Any]:
    return {"recipients": [str(w.net.orgs["germany"].id)], "purpose": "resettlement", "sections": ["identity"]}


def _referral_move(w: Any) -> dict[str, str]:
    # Each side makes a move of its own: the recipient starts reviewing, the sender revokes.
    if w.org_key(w.persona) == "unhcr":
        return {"status": "revoked", "reason": "The family withdrew"}
    return {"status": "in_progress"}


def _agreement(w: Any) -> dict[str, Any]:
    return {"other_org_id": str(w.net.orgs["germany"].id), "we_provide": True, "title": "Matrix agreement",
            "purposes": ["resettlement"], "sections": ["identity"]}


def _agreement_form(w: Any) -> dict[str, Any]:
    return {**_agreement(w), "we_provide": "yes"}


def _transfer_move(w: Any) -> dict[str, str]:
    return {"decision": "cancelled" if w.org_key(w.persona) == "unhcr" else "declined"}


MATRIX += [
    # Pages
    R("GET", "/cases", CASE_STAFF),
    R("GET", "/cases/new", CASE_OPENERS),
    R("POST", "/cases/new", CASE_OPENERS, form=_case_form),
    R("GET", "/cases/{case_id}", SEE, deny=HIDE),
    R("POST", "/cases/{case_id}/stage", WRITE, deny=HIDE, form={"to": "needs_assessment"}),
    R("POST", "/cases/{case_id}/checklist/{item}", WRITE, deny=HIDE, form={"status": "done"}),
    R("GET", "/cases/{case_id}/edit", WRITE, deny=HIDE),
    R("POST", "/cases/{case_id}/edit", WRITE, deny=HIDE, form=_edit_case),
    R("GET", "/cases/{case_id}/members/new", WRITE, deny=HIDE),
    R("POST", "/cases/{case_id}/members/new", WRITE, deny=HIDE, form=_member(0, relationship="child")),
    R("GET", "/cases/{case_id}/members/{member_id}", {**WRITE, "mismatch": NOBODY}, deny=HIDE),
    R("POST", "/cases/{case_id}/members/{member_id}", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      form=_member(0, occupation="Nurse")),
    R("POST", "/cases/{case_id}/members/{member_id}/remove", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      notes="allowed callers get 409: the principal applicant cannot be removed"),
    R("POST", "/cases/{case_id}/members/{member_id}/principal", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      form={"previous_becomes": "spouse"}),
    R("POST", "/cases/{case_id}/links", WRITE, deny=HIDE, form=lambda w: {"number": w.other_case_number()},
      also_ok=frozenset({422})),
    R("POST", "/cases/{case_id}/links/{link_id}/remove",
      {"referred": frozenset({"caseworker_unhcr"}), "mismatch": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("GET", "/cases/{case_id}/sensitive/{part}", PROTECTION, deny=HIDE),
    R("POST", "/cases/{case_id}/sensitive/{part}", WRITE, deny=HIDE, form={"narrative": "Matrix narrative"}),
    R("POST", "/cases/{case_id}/confidential-notes", CONFIDENTIAL, deny=HIDE, form=_principal_of_case),
    R("GET", "/cases/{case_id}/log", LOG, deny=HIDE),
    R("POST", "/cases/{case_id}/consents", HANDLE, deny=HIDE, form=_consent),
    R("POST", "/cases/{case_id}/consents/{consent_id}/withdraw",
      {"referred": AGENCY, "mismatch": NOBODY, "missing": NOBODY}, deny=HIDE, form={"reason": "Asked to stop"}),
    R("GET", "/cases/{case_id}/refer", HANDLE, deny=HIDE),
    R("POST", "/cases/{case_id}/refer", HANDLE, deny=HIDE, form=_refer, also_ok=frozenset({422}),
      notes="Canada has no agreement to refer its own case under: its officer gets 422"),
    R("POST", "/cases/{case_id}/transfers", LEAD, deny=HIDE,
      form=lambda w: {"to_org_id": str(w.net.orgs["germany"].id), "reason": "Germany processes it"},
      also_ok=frozenset({409}), notes="the offered case already has a transfer waiting"),
    R("GET", "/referrals", CASE_STAFF),
    R("GET", "/referrals/{referral_id}",
      {"live": AGENCY | CANADA, "revoked": AGENCY | {"minister_spain"}, "missing": NOBODY}, deny=HIDE,
      notes="a recipient still sees that a revoked referral existed, and nothing of the case"),
    R("POST", "/referrals/{referral_id}/status",
      {"live": AGENCY | {"officer_canada"}, "revoked": AGENCY | {"minister_spain"}, "missing": NOBODY},
      deny=HIDE, form=_referral_move, notes="on a revoked referral, allowed callers get 409"),
    R("POST", "/referrals/{referral_id}/messages",
      {"live": AGENCY | {"officer_canada"}, "revoked": NOBODY, "missing": NOBODY}, deny=HIDE,
      form={"body": "Could you confirm the children's ages?"}),
    R("GET", "/agreements", CASE_STAFF),
    R("GET", "/agreements/new", AGREEMENT_PROPOSERS),
    R("POST", "/agreements/new", AGREEMENT_PROPOSERS, form=_agreement_form),
    R("GET", "/agreements/{agreement_id}", {"party": AGENCY | CANADA, "missing": NOBODY}, deny=HIDE),
    R("POST", "/agreements/{agreement_id}/decision", {"party": AGREEMENT_PROPOSERS, "missing": NOBODY}, deny=HIDE,
      form={"decision": "ended", "reason": "Replaced by a new agreement"}),
    R("GET", "/transfers", CASE_STAFF),
    R("GET", "/transfers/{transfer_id}", {"pending": AGENCY | {"minister_germany"}, "missing": NOBODY}, deny=HIDE),
    R("POST", "/transfers/{transfer_id}/decision",
      {"pending": frozenset({"admin_unhcr", "minister_germany"}), "missing": NOBODY}, deny=HIDE, form=_transfer_move),
    # The API
    R("GET", "/api/v1/cases", CASE_STAFF | READ_TOKENS - {"token_read_secretariat"}),
    R("POST", "/api/v1/cases", CASE_OPENERS, json=_case_json),
    R("GET", "/api/v1/cases/{case_id}", _tokens(SEE, read=True), deny=HIDE),
    R("PATCH", "/api/v1/cases/{case_id}", WRITE, deny=HIDE, json={"current_location": "Quetta"}),
    R("POST", "/api/v1/cases/{case_id}/members", WRITE, deny=HIDE,
      json={"relationship": "child", "given_name": "Omar", "sex": "male", "date_of_birth": "2019",
            "nationality": "AF"}),
    R("PATCH", "/api/v1/cases/{case_id}/members/{member_id}", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      json={"occupation": "Nurse"}),
    R("DELETE", "/api/v1/cases/{case_id}/members/{member_id}", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      notes="allowed callers get 409: the principal applicant cannot be removed"),
    R("POST", "/api/v1/cases/{case_id}/members/{member_id}/principal", {**WRITE, "mismatch": NOBODY}, deny=HIDE,
      json={"previous_becomes": "spouse"}),
    R("POST", "/api/v1/cases/{case_id}/links", WRITE, deny=HIDE, json=lambda w: {"case_id": w.other_case_id()},
      also_ok=frozenset({422})),
    R("DELETE", "/api/v1/cases/{case_id}/links/{link_id}",
      {"referred": frozenset({"caseworker_unhcr"}), "mismatch": NOBODY, "missing": NOBODY}, deny=HIDE),
    R("POST", "/api/v1/cases/{case_id}/stage", WRITE, deny=HIDE, json={"to": "needs_assessment"}),
    R("PUT", "/api/v1/cases/{case_id}/checklist/{item}", WRITE, deny=HIDE, json={"status": "done"}),
    R("GET", "/api/v1/cases/{case_id}/sensitive", PROTECTION, deny=HIDE, token_deny=SEALED_FROM_TOKENS,
      query="sections=protection", notes="sealed sections never go to API tokens: 403, whatever the persona sees"),
    R("PUT", "/api/v1/cases/{case_id}/sensitive/{part}", WRITE, deny=HIDE, token_deny=SEALED_FROM_TOKENS,
      json={"value": {"narrative": "Matrix narrative"}}),
    R("POST", "/api/v1/cases/{case_id}/confidential-notes", CONFIDENTIAL, deny=HIDE,
      json=lambda w: {"member_id": str(w.principal_member(w.path_values.get("case_id", ""))), "body": "Matrix"}),
    R("GET", "/api/v1/cases/{case_id}/log", _tokens(LOG, read=True), deny=HIDE),
    R("GET", "/api/v1/cases/{case_id}/consents", HANDLE, deny=HIDE),
    R("POST", "/api/v1/cases/{case_id}/consents", HANDLE, deny=HIDE, json=_consent),
    R("POST", "/api/v1/cases/{case_id}/consents/{consent_id}/withdraw",
      {"referred": AGENCY, "mismatch": NOBODY, "missing": NOBODY}, deny=HIDE, json={"reason": "Asked to stop"}),
    R("GET", "/api/v1/cases/{case_id}/referrals", _tokens(SEE, read=True), deny=HIDE),
    R("POST", "/api/v1/cases/{case_id}/referrals", HANDLE, deny=HIDE, json=_refer, also_ok=frozenset({422})),
    R("POST", "/api/v1/cases/{case_id}/transfers", _tokens(LEAD, read=False), deny=HIDE,
      json=lambda w: {"to_org_id": str(w.net.orgs["germany"].id), "reason": "Germany processes it"},
      also_ok=frozenset({409})),
    R("GET", "/api/v1/referrals", CASE_STAFF | {"token_read_canada", "token_admin_canada"}),
    R("GET", "/api/v1/referrals/{referral_id}",
      {"live": AGENCY | CANADA | {"token_read_canada", "token_admin_canada"},
       "revoked": AGENCY | {"minister_spain"}, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/referrals/{referral_id}",
      {"live": AGENCY | {"officer_canada"}, "revoked": AGENCY | {"minister_spain"}, "missing": NOBODY},
      deny=HIDE, json=_referral_move),
    R("GET", "/api/v1/referrals/{referral_id}/messages",
      {"live": AGENCY | CANADA | {"token_read_canada", "token_admin_canada"}, "revoked": AGENCY,
       "missing": NOBODY}, deny=HIDE),
    R("POST", "/api/v1/referrals/{referral_id}/messages",
      {"live": AGENCY | {"officer_canada"}, "revoked": NOBODY, "missing": NOBODY}, deny=HIDE,
      json={"body": "Could you confirm the children's ages?"}),
    R("GET", "/api/v1/agreements", CASE_STAFF | {"token_read_canada", "token_admin_canada"}),
    R("POST", "/api/v1/agreements", AGREEMENT_PROPOSERS | {"token_admin_canada"}, json=_agreement),
    R("GET", "/api/v1/agreements/{agreement_id}",
      {"party": AGENCY | CANADA | {"token_read_canada", "token_admin_canada"}, "missing": NOBODY}, deny=HIDE),
    R("POST", "/api/v1/agreements/{agreement_id}/decision",
      {"party": AGREEMENT_PROPOSERS | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE,
      json={"decision": "ended", "reason": "Replaced by a new agreement"}),
    R("GET", "/api/v1/transfers", CASE_STAFF | {"token_read_canada", "token_admin_canada"}),
    R("GET", "/api/v1/transfers/{transfer_id}", {"pending": AGENCY | {"minister_germany"}, "missing": NOBODY},
      deny=HIDE),
    R("POST", "/api/v1/transfers/{transfer_id}/decision",
      {"pending": frozenset({"admin_unhcr", "minister_germany"}), "missing": NOBODY}, deny=HIDE,
      json=_transfer_move),
    # Import and export
    R("GET", "/cases/import", CASE_OPENERS),
    R("GET", "/cases/import/template.csv", CASE_OPENERS),
    R("POST", "/cases/import", CASE_OPENERS, form={"dry_run": "1"}, files={"file": ("h.csv", HOUSEHOLD_CSV)}),
    R("GET", "/cases/export.{fmt}", CASE_STAFF, notes="each gets only the cases and sections they may see"),
    R("POST", "/api/v1/cases/import", CASE_OPENERS, form={"dry_run": "true"},
      files={"file": ("h.csv", HOUSEHOLD_CSV)}),
    R("GET", "/api/v1/cases/export", CASE_STAFF | {"token_read_canada", "token_admin_canada"}),
]


# Matching (see test_authz_matrix.World.matching): a site of Canada ("canadian"), the agency's solved run
# ("agency") and one of its placements. Sites and quotas are every member's staff's to see and each government's
# administrators' and officers' to keep; a run is its organization's caseworkers', officers' and senior
# officials' alone.
SITE_READERS = STAFF
SITE_KEEPERS = frozenset({"admin_canada", "officer_canada"})
MATCHERS = AGENCY | SMO | {"officer_canada", "minister_spain", "minister_germany"}
AGENCY_RUN = {"agency": AGENCY, "missing": NOBODY}
_SITE_FORM = {"code": "MTX", "name": "Matrix site", "capacity_people": "12", "resource_medical": "2",
              "languages": "en", "active": "on"}

MATRIX += [
    R("GET", "/matching", MATCHERS),
    R("POST", "/matching/runs", MATCHERS, form={"title": "Matrix run"}, also_ok=frozenset({422}),
      notes="a government with no case of its own gets 422: nothing to match"),
    R("GET", "/matching/runs/{run_id}", AGENCY_RUN, deny=HIDE),
    R("GET", "/matching/runs/{run_id}/compare", AGENCY_RUN, deny=HIDE),
    R("GET", "/matching/runs/{run_id}/placements/{placement_id}", AGENCY_RUN, deny=HIDE),
    R("POST", "/matching/runs/{run_id}/placements/{placement_id}", AGENCY_RUN, deny=HIDE, form={"action": "accept"}),
    R("POST", "/matching/runs/{run_id}/accept-remaining", AGENCY_RUN, deny=HIDE),
    R("POST", "/matching/runs/{run_id}/confirm", AGENCY_RUN, deny=HIDE, also_ok=frozenset({422}),
      notes="nothing accepted yet: allowed callers get 422"),
    R("POST", "/matching/needs/{case_id}", HANDLE, deny=HIDE,
      form={"resource": "medical", "amount": "1", "reason": "Matrix", "next": "/matching"}),
    R("GET", "/matching/sites", SITE_READERS),
    R("GET", "/matching/sites/new", SITE_KEEPERS),
    R("POST", "/matching/sites/new", SITE_KEEPERS, form=_SITE_FORM),
    R("GET", "/matching/sites/{site_id}", {"canadian": SITE_READERS, "missing": NOBODY}, deny=HIDE),
    R("POST", "/matching/sites/{site_id}", {"canadian": SITE_KEEPERS, "missing": NOBODY}, deny=HIDE,
      form={**_SITE_FORM, "code": "TOR"}),
    R("GET", "/matching/quotas", SITE_READERS),
    R("POST", "/matching/quotas", SITE_KEEPERS, form={"year": "2027", "places": "100", "emergency_reserve": "10"}),
    R("GET", "/api/v1/matching/sites", SITE_READERS | TOKENS),
    R("POST", "/api/v1/matching/sites", SITE_KEEPERS | {"token_admin_canada"},
      json={"code": "MTX", "name": "Matrix site", "capacity_people": 12, "resources": {"medical": 2}}),
    R("GET", "/api/v1/matching/sites/{site_id}", {"canadian": SITE_READERS | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/matching/sites/{site_id}",
      {"canadian": SITE_KEEPERS | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE, json={"capacity_people": 50}),
    R("GET", "/api/v1/matching/quotas/{year}", SITE_READERS | TOKENS),
    R("PUT", "/api/v1/matching/quotas/{year}", SITE_KEEPERS | {"token_admin_canada"},
      json={"places": 100, "emergency_reserve": 5}),
    R("PUT", "/api/v1/matching/needs/{case_id}/{resource}", HANDLE, deny=HIDE, json={"amount": 1, "reason": "Matrix"}),
    R("GET", "/api/v1/matching/runs", MATCHERS | {"token_read_canada"}),
    R("POST", "/api/v1/matching/runs", MATCHERS, json={"title": "Matrix run"}, also_ok=frozenset({422})),
    R("GET", "/api/v1/matching/runs/{run_id}", AGENCY_RUN, deny=HIDE),
    R("GET", "/api/v1/matching/runs/{run_id}/placements", AGENCY_RUN, deny=HIDE),
    R("POST", "/api/v1/matching/runs/{run_id}/placements/{placement_id}", AGENCY_RUN, deny=HIDE,
      json={"accept": True}),
    R("POST", "/api/v1/matching/runs/{run_id}/accept-remaining", AGENCY_RUN, deny=HIDE),
    R("POST", "/api/v1/matching/runs/{run_id}/confirm", AGENCY_RUN, deny=HIDE, also_ok=frozenset({422})),
]


# Obstacles (see test_authz_matrix.World.pathways): one reported by the agency in Pakistan ("open"), with a
# démarche led by Canada and a piece of evidence. Every member's staff sees them; caseworkers, officers, senior
# officials and administrators report them and add evidence; the reporter, governments and the secretariat
# change them; governments and the secretariat record diplomatic actions, each changed by its lead alone.
REPORTERS = STAFF - {"analyst_ec"}
DIPLOMATS = GOV_AND_SECRETARIAT
OPEN = {"open": STAFF, "missing": NOBODY}
EDITORS = REPORTERS - SMO  # the reporting agency, and governments' and the secretariat's officials
_OBSTACLE_FORM = {"country": "PK", "type": "exit_fee", "title": "Matrix fee", "severity": "high"}

MATRIX += [
    R("GET", "/obstacles", STAFF),
    R("GET", "/obstacles/new", REPORTERS),
    R("POST", "/obstacles/new", REPORTERS, form=_OBSTACLE_FORM),
    R("GET", "/obstacles/{obstacle_id}", OPEN, deny=HIDE),
    R("GET", "/obstacles/{obstacle_id}/edit", {"open": EDITORS, "missing": NOBODY}, deny=HIDE),
    R("POST", "/obstacles/{obstacle_id}/edit", {"open": EDITORS, "missing": NOBODY}, deny=HIDE,
      form=_OBSTACLE_FORM),
    R("POST", "/obstacles/{obstacle_id}/status", {"open": EDITORS, "missing": NOBODY}, deny=HIDE,
      form={"status": "confirmed"}),
    R("POST", "/obstacles/{obstacle_id}/evidence", {"open": REPORTERS, "missing": NOBODY}, deny=HIDE,
      form={"note": "Seen at the border post"}),
    R("GET", "/obstacles/{obstacle_id}/evidence/{evidence_id}", OPEN, deny=HIDE),
    R("POST", "/obstacles/{obstacle_id}/actions", {"open": DIPLOMATS, "missing": NOBODY}, deny=HIDE,
      form={"type": "demarche"}),
    R("POST", "/obstacles/{obstacle_id}/actions/{diplomatic_action_id}", {"open": CANADA, "missing": NOBODY},
      deny=HIDE, form={"outcome": "Waiver under study"}),
    R("POST", "/cases/{case_id}/checklist/{item}/obstacle", WRITE, deny=HIDE,
      form=lambda w: {"obstacle_id": str(w.obstacle["open"])}),
    R("GET", "/api/v1/obstacles", STAFF | TOKENS),
    R("POST", "/api/v1/obstacles", REPORTERS | {"token_admin_canada"},
      json={"country": "PK", "type": "exit_fee", "title": "Matrix fee"}),
    R("GET", "/api/v1/obstacles/{obstacle_id}", {"open": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/obstacles/{obstacle_id}", {"open": EDITORS | {"token_admin_canada"}, "missing": NOBODY},
      deny=HIDE, json={"severity": "high"}),
    R("POST", "/api/v1/obstacles/{obstacle_id}/status",
      {"open": EDITORS | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE, json={"status": "confirmed"}),
    R("GET", "/api/v1/obstacles/{obstacle_id}/blocks", {"open": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("GET", "/api/v1/obstacles/{obstacle_id}/actions", {"open": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("POST", "/api/v1/obstacles/{obstacle_id}/actions",
      {"open": DIPLOMATS | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE, json={"type": "demarche"}),
    R("PATCH", "/api/v1/obstacles/{obstacle_id}/actions/{diplomatic_action_id}",
      {"open": CANADA | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE, json={"outcome": "Under study"}),
    R("PUT", "/api/v1/cases/{case_id}/checklist/{item}/obstacle", WRITE, deny=HIDE,
      json=lambda w: {"obstacle_id": str(w.obstacle["open"])}),
    R("DELETE", "/api/v1/cases/{case_id}/checklist/{item}/obstacle", WRITE, deny=HIDE),
]


# The best-practice library (see test_authz_matrix.World.pathways): a note of Canada's with an attachment
# ("canadian"). Every member's staff reads and shares notes; an organization's notes are changed by its staff.
CANADIAN_NOTE = {"canadian": STAFF, "missing": NOBODY}
CANADA_WRITES = {"canadian": CANADA, "missing": NOBODY}
_NOTE = {"title": "Matrix note", "body": "What *worked*."}

MATRIX += [
    R("GET", "/practices", STAFF),
    R("GET", "/practices/new", STAFF),
    R("POST", "/practices/new", STAFF, form=_NOTE),
    R("GET", "/practices/{practice_id}", CANADIAN_NOTE, deny=HIDE),
    R("GET", "/practices/{practice_id}/file", CANADIAN_NOTE, deny=HIDE),
    R("GET", "/practices/{practice_id}/edit", CANADA_WRITES, deny=HIDE),
    R("POST", "/practices/{practice_id}/edit", CANADA_WRITES, deny=HIDE, form=_NOTE),
    R("POST", "/practices/{practice_id}/delete", CANADA_WRITES, deny=HIDE, form={"confirm": "1"}),
    R("GET", "/api/v1/practices", STAFF | TOKENS),
    R("POST", "/api/v1/practices", STAFF | {"token_admin_canada"}, json=_NOTE),
    R("GET", "/api/v1/practices/{practice_id}", {"canadian": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("GET", "/api/v1/practices/{practice_id}/file", {"canadian": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/practices/{practice_id}", {"canadian": CANADA | {"token_admin_canada"}, "missing": NOBODY},
      deny=HIDE, json={"title": "Matrix note, changed"}),
    R("DELETE", "/api/v1/practices/{practice_id}", {"canadian": CANADA | {"token_admin_canada"}, "missing": NOBODY},
      deny=HIDE),
]


# The pathway catalog (see test_authz_matrix.World.pathways): a pathway of Canada's ("canadian"). Every member's
# staff searches it; a government's administrators and officers keep their own government's pathways.
PATHWAY_KEEPERS = frozenset({"admin_canada", "officer_canada"})
CANADIAN_PATHWAY = {"canadian": STAFF, "missing": NOBODY}
_PATHWAY = {"name": "Matrix pathway", "type": "resettlement", "places": "10"}

MATRIX += [
    R("GET", "/pathways", STAFF),
    R("GET", "/pathways/places.csv", STAFF),
    R("GET", "/pathways/new", PATHWAY_KEEPERS),
    R("POST", "/pathways/new", PATHWAY_KEEPERS, form=_PATHWAY),
    R("GET", "/pathways/{pathway_id}", CANADIAN_PATHWAY, deny=HIDE),
    R("POST", "/pathways/{pathway_id}", {"canadian": PATHWAY_KEEPERS, "missing": NOBODY}, deny=HIDE, form=_PATHWAY),
    R("GET", "/api/v1/pathways", STAFF | TOKENS),
    R("GET", "/api/v1/pathways/places", STAFF | TOKENS),
    R("POST", "/api/v1/pathways", PATHWAY_KEEPERS | {"token_admin_canada"},
      json={"name": "Matrix pathway", "type": "resettlement", "places": 10}),
    R("GET", "/api/v1/pathways/{pathway_id}", {"canadian": STAFF | TOKENS, "missing": NOBODY}, deny=HIDE),
    R("PATCH", "/api/v1/pathways/{pathway_id}",
      {"canadian": PATHWAY_KEEPERS | {"token_admin_canada"}, "missing": NOBODY}, deny=HIDE, json={"places": 20}),
]


# Safe Mobility (see test_authz_matrix.World.mobility): the office "smo" (its caseworker and officer are personas)
# and another office with no persona ("other"), each with a screened registration with a booked interview, a
# screening rule and a free slot. An office's registrations, rules and calendar are its own staff's: the rest of
# the network gets a 404 for its objects (the same as for missing ones) and a 403 for its lists. Registrants have
# no account: the public pages and API are open to all (and never answer with a server error).
SMO_KEEPERS = frozenset({"officer_smo"})  # screening rules
SMO_FIGURES = SMO | SECRETARIAT  # the dashboard: the office's staff, and the secretariat for every office
_OWN = lambda allowed: {"own": allowed, "other": NOBODY, "missing": NOBODY}  # noqa: E731


def _convert(w: Any) -> dict[str, Any]:
    return {"rule_id": str(w.rule["own"]), "government_org_id": str(w.net.orgs["spain"].id)}


def _slots(w: Any) -> dict[str, Any]:
    return {"date": "2030-01-07", "time": "09:00", "minutes": "30", "capacity": "2", "count": "1", "days": "1"}


_RULE = {"name": "Matrix rule", "destination": "ES",
         "conditions": '[{"field": "nationality", "op": "in", "value": ["VE"]}]', "questions": "[]"}

MATRIX += [
    R("GET", "/mobility", SMO | SECRETARIAT),
    R("GET", "/mobility/registrations/{registration_id}", _OWN(SMO), deny=HIDE),
    R("POST", "/mobility/registrations/{registration_id}/merge", _OWN(SMO), deny=HIDE,
      form={"duplicate_id": str(uuid.uuid4())}, also_ok=frozenset({400, 422})),
    R("POST", "/mobility/registrations/{registration_id}/close", _OWN(SMO), deny=HIDE, form={"reason": "Matrix"}),
    R("POST", "/mobility/registrations/{registration_id}/convert", _OWN(SMO), deny=HIDE, form=_convert,
      also_ok=frozenset({400, 422})),
    R("POST", "/mobility/registrations/{registration_id}/book", _OWN(SMO), deny=HIDE,
      form=lambda w: {"slot_id": str(w.slot["own"])}, also_ok=frozenset({400, 422})),
    R("GET", "/mobility/dashboard", SMO_FIGURES),
    R("GET", "/mobility/dashboard.csv", SMO_FIGURES, query="table=weeks"),
    R("GET", "/mobility/rules", SMO),
    R("GET", "/mobility/rules/new", SMO_KEEPERS),
    R("POST", "/mobility/rules/new", SMO_KEEPERS, form=_RULE, also_ok=frozenset({400, 422})),
    # The office's caseworker reads the rule but may not change it: 403; anyone else: 404.
    R("GET", "/mobility/rules/{rule_id}/edit", _OWN(SMO_KEEPERS), deny=HIDE,
      token_deny={"own": frozenset({"caseworker_smo"})}),
    R("POST", "/mobility/rules/{rule_id}/edit", _OWN(SMO_KEEPERS), deny=HIDE, form=_RULE,
      also_ok=frozenset({400, 422}), token_deny={"own": frozenset({"caseworker_smo"})}),
    R("POST", "/mobility/rules/{rule_id}/retire", _OWN(SMO_KEEPERS), deny=HIDE,
      token_deny={"own": frozenset({"caseworker_smo"})}),
    R("GET", "/mobility/rules/{rule_key}/history", _OWN(SMO), deny=HIDE),
    R("GET", "/mobility/calendar", SMO),
    R("POST", "/mobility/calendar/slots", SMO, form=_slots, also_ok=frozenset({400, 422})),
    R("POST", "/mobility/slots/{slot_id}/remove", _OWN(SMO), deny=HIDE),
    # The interview is in two days: marking it is refused (422) to those allowed to mark it.
    R("POST", "/mobility/appointments/{appointment_id}/attended", _OWN(SMO), deny=HIDE, also_ok=frozenset({422})),
    R("POST", "/mobility/appointments/{appointment_id}/no-show", _OWN(SMO), deny=HIDE, also_ok=frozenset({422})),
    R("POST", "/mobility/appointments/{appointment_id}/cancel", _OWN(SMO), deny=HIDE),
    R("GET", "/api/v1/mobility/registrations", SMO),
    R("GET", "/api/v1/mobility/registrations/{registration_id}", _OWN(SMO), deny=HIDE),
    R("POST", "/api/v1/mobility/registrations/{registration_id}/convert", _OWN(SMO), deny=HIDE,
      json=lambda w: {"rule_id": str(w.rule["own"]), "government_org_id": str(w.net.orgs["spain"].id)},
      also_ok=frozenset({400, 422})),
    R("GET", "/api/v1/mobility/dashboard", SMO_FIGURES | {"token_read_secretariat"}),
    PUBLIC("GET", "/safe-mobility"),
    PUBLIC("GET", "/safe-mobility/{office_slug}"),
    PUBLIC("GET", "/safe-mobility/{office_slug}/register"),
    PUBLIC("POST", "/safe-mobility/{office_slug}/register", form={"given_name": "Matrix"}),
    PUBLIC("GET", "/safe-mobility/status"),
    PUBLIC("POST", "/safe-mobility/status", form={"reference": "SM-CR-AAAAAAAA", "pin": "000000"}),
    PUBLIC("GET", "/safe-mobility/status/{reference}", query="token=forged"),
    PUBLIC("POST", "/safe-mobility/status/book", form={"slot_id": str(uuid.uuid4())}),
    PUBLIC("POST", "/safe-mobility/status/contact", form={"email": "x@example.org"}),
    PUBLIC("POST", "/safe-mobility/status/withdraw", form={}),
    PUBLIC("POST", "/safe-mobility/status/leave", form={}),
    PUBLIC("GET", "/api/v1/mobility/offices"),
    PUBLIC("POST", "/api/v1/mobility/offices/{office_slug}/registrations", json={"given_name": "Matrix"}),
]


# Welcome (see test_authz_matrix.World.welcome): rows of its own files, one for the pages and one for the API.
from tests.authz_welcome_api import API_ROWS  # noqa: E402 - they use Row and R above
from tests.authz_welcome_pages import PAGE_ROWS  # noqa: E402

MATRIX += PAGE_ROWS + API_ROWS

# The network picture (see test_authz_matrix.World.need and authz_reports).
from tests.authz_reports import ROWS as REPORT_ROWS  # noqa: E402

MATRIX += REPORT_ROWS
