"""Authorization-matrix rows of Welcome's API (see tests/authz_matrix.py for the meaning of a row).

Who stands where (see test_authz_matrix._welcome): Canada's programme ("canadian") with the maple group (whose
member is sponsor_group_a) welcoming a family Canada accepted; Spain's programme ("spanish") with the "other"
group welcoming a family Spain accepted. Programmes are the network's shared knowledge: every member's staff read
them. A programme's groups, matches and donations are read by its government's staff (admin_canada and officer_canada
for Canada; minister_spain, a senior official, for Spain) and handled by its administrators, officers and
caseworkers (Spain has no persona who handles them): the rest of the network gets a 404 for those objects, the
same as for missing ones, and the figures go to the government's staff and the secretariat.

The API is the staff's: sponsors get no tokens, and a sponsor's browser session is refused with a 403 whatever
the object (missing ones too), so no route of it can give a sponsor anything outside the sponsor view.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.authz_matrix import HIDE, NOBODY, STAFF, TOKENS, R, Row  # imported at the end of authz_matrix

CANADA_STAFF = frozenset({"admin_canada", "officer_canada"})
CANADA_READ = CANADA_STAFF | {"token_read_canada", "token_admin_canada"}
CANADA_WRITE = CANADA_STAFF | {"token_admin_canada"}  # the read-only token may not act
FIGURES = frozenset({"admin_secretariat", "token_read_secretariat"})  # the secretariat reads every programme's
SPAIN_READ = frozenset({"minister_spain"})  # Spain's senior official reads its programme's groups and matches
SPONSORS = frozenset({"sponsor_group_a"})
NETWORK = STAFF | TOKENS


def W(method: str, path: str, allowed: frozenset[str] | dict[str | None, frozenset[str]], **kw: Any) -> Row:
    """A row of the staff API: sponsors are refused with a 403 on every relationship (see the docstring)."""
    row = R(method, path, allowed, **kw)
    return dataclasses.replace(row, token_deny={rel: SPONSORS for rel in row.allowed})


def _programme(canadian: frozenset[str], spanish: frozenset[str] = NOBODY) -> dict[str | None, frozenset[str]]:
    return {"canadian": canadian, "spanish": spanish, "missing": NOBODY}


def _group(maple: frozenset[str]) -> dict[str | None, frozenset[str]]:
    return {"maple": maple, "other": NOBODY, "missing": NOBODY}


def _new_programme(w: Any) -> dict[str, Any]:
    return {"slug": w.unique("ca"), "name": "Matrix programme", "min_adults": 3}


def _propose(w: Any) -> dict[str, Any]:
    return {"group_id": str(w.group["maple"]), "case_id": str(w.arriving["canadian"])}


API = "/api/v1/welcome"

API_ROWS: list[Row] = [
    W("GET", f"{API}/programmes", NETWORK),
    W("POST", f"{API}/programmes", CANADA_WRITE, json=_new_programme,
      notes="a government's administrators and officers start its programmes"),
    W("GET", f"{API}/programmes/{{programme_id}}", _programme(NETWORK, NETWORK), deny=HIDE),
    W("PATCH", f"{API}/programmes/{{programme_id}}", _programme(CANADA_WRITE), deny=HIDE,
      json={"description": "Changed by the matrix"}, notes="Spain has no persona who runs its programme"),
    W("GET", f"{API}/programmes/{{programme_id}}/dashboard",
      _programme(CANADA_READ | FIGURES, frozenset({"minister_spain"}) | FIGURES), deny=HIDE,
      notes="the government's staff (senior officials too) and the secretariat"),
    W("GET", f"{API}/programmes/{{programme_id}}/groups", _programme(CANADA_READ, SPAIN_READ), deny=HIDE,
      notes="its government's staff (senior officials and analysts too); a 404 for the rest of the network"),
    W("GET", f"{API}/groups/{{group_id}}", {"maple": CANADA_READ, "other": SPAIN_READ, "missing": NOBODY},
      deny=HIDE),
    W("POST", f"{API}/groups/{{group_id}}/members/{{member_id}}/check",
      {**_group(CANADA_WRITE), "mismatch": NOBODY}, deny=HIDE, json={"check": "passed"},
      notes="mismatch: the other group's member under maple's path"),
    W("POST", f"{API}/groups/{{group_id}}/verify-funds", _group(CANADA_WRITE), deny=HIDE),
    W("GET", f"{API}/programmes/{{programme_id}}/arriving", _programme(CANADA_WRITE), deny=HIDE,
      notes="the service asks for the right to propose (a write) even to list: read-only tokens get 404"),
    W("POST", f"{API}/programmes/{{programme_id}}/matches", _programme(CANADA_WRITE), deny=HIDE, json=_propose,
      notes="maple already welcomes a family: allowed callers get 409"),
    W("POST", f"{API}/programmes/{{programme_id}}/matching-runs", _programme(CANADA_WRITE), deny=HIDE),
    W("GET", f"{API}/matches/{{match_id}}", {"maple": CANADA_READ, "other": SPAIN_READ, "missing": NOBODY},
      deny=HIDE),
    W("POST", f"{API}/matches/{{match_id}}/family", _group(CANADA_WRITE), deny=HIDE, json={"accept": True},
      notes="the family has already answered: allowed callers get 409"),
    W("POST", f"{API}/matches/{{match_id}}/arrival", _group(CANADA_WRITE), deny=HIDE,
      json={"arrival_on": "2030-03-10", "flight": "Matrix 2"}),
    W("GET", f"{API}/programmes/{{programme_id}}/donations", _programme(CANADA_READ, SPAIN_READ), deny=HIDE,
      notes="as the groups: the ledger of its government's programmes"),
]
