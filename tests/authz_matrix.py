"""The authorization matrix: persona x route x owner-relationship -> outcome.

Every route of the application has a row here; ``test_authz_matrix.py`` fails when one does not. For each
row and each relationship of the caller to the object in the path, the row lists the personas *allowed*;
every other persona gets the row's denial:

* ``LOGIN``: anonymous callers (and API tokens on pages, which answer to browser sessions only) are sent
  to the login page, or get 401 from the API;
* ``HIDE``: a 404, the same as for a missing object (objects never leak their existence);
* ``DENY``: a 403, for capabilities that involve no object.

Relationships (see ``test_authz_matrix.World``):
    org_id:        own (the caller's organization), other, missing
    user_id:       self, colleague (same organization), stranger (another organization), missing
    membership_id: colleague (a colleague's role in the caller's organization), stranger, missing
    session_id, token_id, webhook_id: own, other, missing
    job_id:        existing, missing
Public rows (login, health checks, password links...) are reachable by all; the test checks they never
answer with a server error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OK, LOGIN, HIDE, DENY = "ok", "login", "hide(404)", "deny(403)"

HUMANS = frozenset({
    "admin_secretariat", "admin_canada", "officer_canada", "minister_spain", "minister_germany",
    "caseworker_unhcr", "analyst_ec", "sponsor_group_a",
})
TOKENS = frozenset({"token_read_canada", "token_admin_canada", "token_read_secretariat"})
EVERYONE = frozenset({"anonymous"}) | HUMANS | TOKENS
NOBODY: frozenset[str] = frozenset()

ORG_ADMINS = frozenset({"admin_secretariat", "admin_canada", "sponsor_group_a"})
SECRETARIAT = frozenset({"admin_secretariat"})
STAFF = HUMANS - {"sponsor_group_a"}

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
    R("GET", "/api/v1/webhooks", {"admin_secretariat", "admin_canada", "token_admin_canada"},
      notes="sponsor groups have no systems to call"),
    R("POST", "/api/v1/webhooks", {"admin_secretariat", "admin_canada", "token_admin_canada"},
      json={"url": "https://example.org/hook", "event_types": ["*"]}),
    R("DELETE", "/api/v1/webhooks/{webhook_id}",
      {"own": frozenset({"admin_secretariat", "admin_canada", "token_admin_canada"}), "other": NOBODY,
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
]
