"""Authorization-matrix rows of the network picture (see tests/authz_matrix.py for the meaning of a row).

Who stands where (see test_authz_matrix._reports): ``short_name`` is "canadian" (canada) or "spanish" (spain), or
a government that does not exist; ``need_id`` is an existing projected need or a missing one.

* The network dashboard, its tables, exports and the quarterly report: every member organization's staff (aggregates
  only); sponsors are refused (403: no object is involved); pages answer to browser sessions only.
* A government's view: its own officials and the secretariat; anyone else gets the 404 of a missing government.
* Projected needs: read by all who read the dashboard, entered by the secretariat (a need anyone else asks to
  change is the 404 of a missing one).
* A refresh on request: the secretariat's and governments' officials (admins, senior officials, officers).
* The public page is public, and off unless the deployment turns it on (then a 404 for everyone, as here).
"""

from __future__ import annotations

from typing import Any

from tests.authz_matrix import HIDE, NOBODY, PUBLIC, SECRETARIAT, STAFF, TOKENS, R, Row

CANADA_OFFICIALS = frozenset({"admin_canada", "officer_canada"})
SPAIN_OFFICIALS = frozenset({"minister_spain"})
REFRESHERS = frozenset({"admin_secretariat", "admin_canada", "officer_canada", "minister_spain", "minister_germany"})


def _member(canadian: frozenset[str], spanish: frozenset[str]) -> dict[str | None, frozenset[str]]:
    return {"canadian": canadian, "spanish": spanish, "missing": NOBODY}


MEMBER_PAGES = _member(CANADA_OFFICIALS | SECRETARIAT, SPAIN_OFFICIALS | SECRETARIAT)
MEMBER_API = _member(CANADA_OFFICIALS | SECRETARIAT | {"token_read_canada", "token_admin_canada",
                                                         "token_read_secretariat"},
                     SPAIN_OFFICIALS | SECRETARIAT | {"token_read_secretariat"})


def _need(w: Any) -> dict[str, Any]:
    return {"year": "2026", "population": w.unique("pop"), "nationality": "", "region": "", "people": "1000",
            "source": "Matrix source"}


def _need_json(w: Any) -> dict[str, Any]:
    return {"year": 2026, "population": w.unique("pop"), "people": 1000, "source": "Matrix source"}


_EXISTING = {"existing": SECRETARIAT, "missing": NOBODY}

ROWS: list[Row] = [
    R("GET", "/reports", STAFF),
    R("GET", "/reports/tables/{table}", STAFF),
    R("GET", "/reports/network.xlsx", STAFF),
    R("POST", "/reports/refresh", REFRESHERS, form={"period": "2026"},
      notes="the secretariat's and governments' officials; analysts, caseworkers and agencies wait for the worker"),
    R("GET", "/reports/members/{short_name}", MEMBER_PAGES, deny=HIDE),
    R("GET", "/reports/members/{short_name}/tables/{table}", MEMBER_PAGES, deny=HIDE),
    R("GET", "/reports/members/{short_name}/all.xlsx", MEMBER_PAGES, deny=HIDE),
    R("GET", "/reports/quarterly", STAFF, query="period=2026Q3"),
    R("GET", "/reports/quarterly.pdf", STAFF, query="period=2026Q3"),
    R("GET", "/reports/needs", STAFF),
    R("POST", "/reports/needs", SECRETARIAT, form=_need),
    R("GET", "/reports/needs/{need_id}", _EXISTING, deny=HIDE),
    R("POST", "/reports/needs/{need_id}", _EXISTING, form=_need, deny=HIDE),
    R("POST", "/reports/needs/{need_id}/delete", _EXISTING, deny=HIDE),
    PUBLIC("GET", "/transparency"),
    PUBLIC("GET", "/transparency/{table}"),
    R("GET", "/api/v1/reports/network", STAFF | TOKENS),
    R("GET", "/api/v1/reports/members/{short_name}", MEMBER_API, deny=HIDE),
    R("GET", "/api/v1/reports/needs", STAFF | TOKENS),
    R("POST", "/api/v1/reports/needs", SECRETARIAT, json=_need_json,
      notes="the secretariat's read-only token may not write"),
    R("PUT", "/api/v1/reports/needs/{need_id}", _EXISTING, json=_need_json, deny=HIDE),
    R("DELETE", "/api/v1/reports/needs/{need_id}", _EXISTING, deny=HIDE),
]
