"""Authorization-matrix rows of Welcome's pages (see tests/authz_matrix.py for the meaning of a row).

The world (test_authz_matrix.World): Canada's programme ("canadian", run by admin_canada and officer_canada) with
the maple group (sponsor_group_a's organization) welcoming a family in an active match; Spain's programme
("spanish") with a group and a match of its own ("other"), no sponsor persona in it; donations to each programme.

* A programme's page is its figures: its government's staff (and the secretariat, which reads every programme's
  figures); the rest of the network reads the list of programmes only. A government's senior officials and
  analysts also read its groups, matches and donations. Its rules, matching and proposals are for
  its government's administrators and officers (and caseworkers): anyone else gets the same 404 as for a missing
  programme.
* A group, its match and its tasks: the programme's government staff and the group's own sponsors; checks,
  training, funds, the family's answer, the arrival and cancelling are the staff's; answering a proposal is the
  group's. Allowed callers acting on a match already accepted get 409 (answered) or 303.
* Donations: the programme's staff and its groups read them; only a group's sponsors claim, give and release.
* "mismatch": the other group's member or task under the maple group's or match's path: the same 404.
* The public sign-up and donation pages are open to all and never answer with a server error.
"""

from __future__ import annotations

from typing import Any

from tests.authz_matrix import EVERYONE, HIDE, HUMANS, NOBODY, R, Row

CANADA = frozenset({"admin_canada", "officer_canada"})  # Canada's programme's administrators and officers
SPONSOR = frozenset({"sponsor_group_a"})  # the maple group, in Canada's programme
SECRETARIAT = frozenset({"admin_secretariat"})  # reads every programme's figures
# Spain's persona is a senior official: it reads Spain's programme's figures, groups, matches and donations, but
# neither runs the programme nor handles its groups and matches (an officer of Spain with no persona does).
SPAIN_READERS = frozenset({"minister_spain"})
SPAIN_HANDLERS: frozenset[str] = frozenset()


def _programme(canadian: frozenset[str], spanish: frozenset[str] = SPAIN_HANDLERS) -> dict[str | None, Any]:
    return {"canadian": canadian, "spanish": spanish, "missing": NOBODY}


def _group(maple: frozenset[str], other: frozenset[str] = SPAIN_HANDLERS) -> dict[str | None, Any]:
    return {"maple": maple, "other": other, "missing": NOBODY}


def _part(maple: frozenset[str]) -> dict[str | None, Any]:
    """A member or a task: "mismatch" is the other group's, under maple's path."""
    return {**_group(maple), "mismatch": NOBODY}


def _new_programme(w: Any) -> dict[str, Any]:
    return {"name": "Matrix programme", "slug": w.unique("matrix"), "min_adults": "5", "currency": "CAD",
            "support_days": "90", "checks_required": "yes", "training_required": "yes", "accepting": "yes",
            "streams": ["matched"], "services": ["airport", "school"]}


_RULES = {"name": "Matrix programme", "min_adults": "5", "funds_per_person": "2425", "currency": "CAD",
          "cash_share": "0.6", "support_days": "90", "staff_after_days": "7", "checks_required": "yes",
          "training_required": "yes", "accepting": "yes", "streams": ["matched", "named"],
          "sponsor_fields": ["given_names", "size", "arrival", "languages", "needs"],
          "services": ["airport", "housing", "school"]}
_PUBLIC_SLUGS = {"canadian": EVERYONE, "spanish": EVERYONE, "missing": EVERYONE}
_JOIN = {"your_name": "Matrix Citizen", "your_email": "matrix-citizen@example.org", "name": "Matrix Circle",
         "city": "Ottawa", "stream": "matched", "languages": ["en"], "capacity": "4", "website": ""}
_GIVE = {"donor_name": "Matrix Donor", "donor_email": "donor@example.org", "kind": "clothing",
         "description": "Winter coats", "condition": "good", "quantity": "3", "city": "Ottawa", "website": ""}

PAGE_ROWS: list[Row] = [
    # Programmes: the list for every member's staff (a sponsor is sent to their group's page)
    R("GET", "/welcome", HUMANS),
    R("GET", "/welcome/programmes/new", CANADA),
    R("POST", "/welcome/programmes/new", CANADA, form=_new_programme),
    R("GET", "/welcome/programmes/{programme_id}",
      _programme(CANADA | SECRETARIAT, SPAIN_READERS | SECRETARIAT | SPAIN_HANDLERS), deny=HIDE),
    R("POST", "/welcome/programmes/{programme_id}", _programme(CANADA), deny=HIDE, form=_RULES),
    R("POST", "/welcome/programmes/{programme_id}/match", _programme(CANADA), deny=HIDE),
    R("POST", "/welcome/programmes/{programme_id}/propose", _programme(CANADA), deny=HIDE,
      form={"group_id": "not-a-group", "case_id": "not-a-case"}, also_ok=frozenset({422}),
      notes="allowed callers are told to choose an eligible group and an arriving family (422)"),
    # Donations
    R("GET", "/welcome/programmes/{programme_id}/donations", _programme(CANADA | SPONSOR, SPAIN_READERS), deny=HIDE),
    R("POST", "/welcome/donations/{donation_id}/claim", _programme(SPONSOR, NOBODY), deny=HIDE,
      notes="an item already claimed is a 409"),
    R("POST", "/welcome/donations/{donation_id}/give", _programme(SPONSOR, NOBODY), deny=HIDE,
      form={"given_on": "2026-01-05"}, also_ok=frozenset({422}),
      notes="only an item the group claimed, for a family it welcomes: otherwise 409"),
    R("POST", "/welcome/donations/{donation_id}/release", _programme(SPONSOR, NOBODY), deny=HIDE,
      notes="only an item the group claimed: otherwise 409"),
    # A group
    R("GET", "/welcome/groups/{group_id}", _group(CANADA | SPONSOR, SPAIN_READERS), deny=HIDE),
    R("POST", "/welcome/groups/{group_id}", _group(CANADA | SPONSOR), deny=HIDE,
      form={"city": "Ottawa", "capacity": "5"}, also_ok=frozenset({422})),
    R("POST", "/welcome/groups/{group_id}/plan", _group(CANADA | SPONSOR), deny=HIDE, form={},
      also_ok=frozenset({422})),
    R("POST", "/welcome/groups/{group_id}/members", _group(CANADA | SPONSOR), deny=HIDE,
      form={"full_name": "Matrix Member", "email": "member@example.org", "adult": "yes"}),
    R("POST", "/welcome/groups/{group_id}/members/{member_id}/remove", _part(CANADA | SPONSOR), deny=HIDE,
      notes="the group's last member who signs in cannot be removed: 409"),
    R("POST", "/welcome/groups/{group_id}/members/{member_id}/check", _part(CANADA), deny=HIDE,
      form={"check": "passed", "trained_on": "2026-01-05"},
      notes="checks and training are the staff's: the group's own sponsors get the same 404"),
    R("POST", "/welcome/groups/{group_id}/verify-funds", _group(CANADA), deny=HIDE),
    R("POST", "/welcome/groups/{group_id}/withdraw", _group(CANADA | SPONSOR), deny=HIDE,
      form={"confirm": "yes", "reason": "Matrix"}, also_ok=frozenset({422}),
      notes="a group welcoming a family cannot withdraw: 409"),
    # A match (the family as the programme lets sponsors see it) and its core services
    R("GET", "/welcome/matches/{match_id}", _group(CANADA | SPONSOR, SPAIN_READERS), deny=HIDE),
    R("POST", "/welcome/matches/{match_id}/answer", _group(SPONSOR), deny=HIDE, form={"accept": "yes"},
      notes="the match is already accepted: 409"),
    R("POST", "/welcome/matches/{match_id}/family", _group(CANADA), deny=HIDE, form={"accept": "yes"},
      notes="the match is already accepted: 409"),
    R("POST", "/welcome/matches/{match_id}/arrival", _group(CANADA), deny=HIDE,
      form={"arrival_on": "2030-03-10", "flight": "AC 849", "airport": "YOW"}, also_ok=frozenset({422})),
    R("POST", "/welcome/matches/{match_id}/cancel", _group(CANADA), deny=HIDE, form={"reason": "Matrix"}),
    R("POST", "/welcome/matches/{match_id}/tasks/{task_id}", _part(CANADA | SPONSOR), deny=HIDE,
      form={"notes": "Matrix note", "evidence": "Matrix evidence"}, also_ok=frozenset({422})),
    R("POST", "/welcome/matches/{match_id}/outcomes", _group(CANADA | SPONSOR), deny=HIDE,
      form={"housing_stable": "yes", "notes": "Matrix"}, also_ok=frozenset({422})),
    # The public pages
    R("GET", "/welcome/join/{programme_slug}", _PUBLIC_SLUGS, public=True),
    R("POST", "/welcome/join/{programme_slug}", _PUBLIC_SLUGS, public=True, form=_JOIN),
    R("GET", "/welcome/give/{programme_slug}", _PUBLIC_SLUGS, public=True),
    R("POST", "/welcome/give/{programme_slug}", _PUBLIC_SLUGS, public=True, form=_GIVE),
]
