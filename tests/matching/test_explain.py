"""Explanations on crafted instances: the resource that binds at a full site is named with its numbers, the
best alternative's reason (full, lower score, too small) is right, and an unplaced case says why."""

from __future__ import annotations

import json

import numpy as np

from rdn.matching.explain import as_dict, explain
from rdn.matching.optimizer import Problem, solve

SITES = ["Toronto", "Halifax"]


def two_cases_one_small_site() -> Problem:
    """Toronto takes 2 people, Halifax 10. Both cases (2 people each) score higher in Toronto, case 0 by more:
    the optimum puts case 0 in Toronto and case 1 in Halifax."""
    return Problem(scores=np.array([[2.0, 1.0], [1.5, 1.4]]), allowed=np.ones((2, 2), dtype=bool),
                   needs=np.array([[2.0], [2.0]]), capacity=np.array([[2.0], [10.0]]), weights=np.array([1.0, 1.0]))


def test_the_full_site_is_named_as_binding_and_as_the_alternatives_reason() -> None:
    problem = two_cases_one_small_site()
    solution = solve(problem)
    assert solution.assignment.tolist() == [0, 1]
    winner = explain(problem, solution, 0, site_labels=SITES, resources=["people"], case_label="C-1")
    assert (winner.site_label, winner.score, winner.value) == ("Toronto", 2.0, 2.0)
    [binding] = winner.binding
    assert (binding.kind, binding.resource, binding.site) == ("capacity_exhausted", "people", 0)
    assert binding.amounts == {"left": 0.0, "capacity": 2.0, "used": 2.0, "need": 2.0, "others_wanting": 1.0}
    assert binding.message == "Toronto has no people left after this plan (all 2 used); 1 other case would gain by " \
                              "going there."
    [reason] = winner.alternative.reasons
    assert (winner.alternative.site_label, reason.kind) == ("Halifax", "lower_score")
    assert reason.message == "Lower score: 1.00 at Halifax vs 2.00 at Toronto."

    moved = explain(problem, solution, 1, site_labels=SITES, resources=["people"])
    assert moved.site_label == "Halifax" and moved.binding == []  # Halifax has room to spare
    [reason] = moved.alternative.reasons
    assert (moved.alternative.site_label, reason.kind, reason.resource) == ("Toronto", "full", "people")
    assert reason.amounts["left"] == 0 and reason.amounts["need"] == 2
    assert "would need another case moved" in reason.message and "1.50 there vs 1.40 at Halifax" in reason.message
    sentences = moved.sentences()
    assert sentences[0] == "Case 2 goes to Halifax: score 1.40, priority weight 1, value 1.40."
    assert sentences[-1].startswith("Best alternative: Toronto (score 1.50). Full: Toronto has 0 people left")
    json.dumps(as_dict(moved))


def test_capacity_left_below_every_other_need_binds() -> None:
    """Toronto has 5 places: case 0 (3 people) takes 3; case 1 (4 people) would gain there but 2 are left."""
    problem = Problem(scores=np.array([[3.0, 1.0], [2.0, 1.0]]), allowed=np.ones((2, 2), dtype=bool),
                      needs=np.array([[3.0], [4.0]]), capacity=np.array([[5.0], [10.0]]), weights=np.ones(2))
    solution = solve(problem)
    assert solution.assignment.tolist() == [0, 1]
    [binding] = explain(problem, solution, 0, site_labels=SITES, resources=["people"]).binding
    assert binding.kind == "capacity_binding"
    assert binding.amounts["left"] == 2 and binding.amounts["smallest_other_need"] == 4
    assert "2 of 5 people left" in binding.message


def test_an_unplaced_case_names_the_resource_every_allowed_site_lacks() -> None:
    """Two medical cases, one medical slot in Toronto and none in Halifax: case 1 stays unplaced."""
    problem = Problem(scores=np.array([[2.0, 1.0], [1.0, 1.0]]), allowed=np.ones((2, 2), dtype=bool),
                      needs=np.array([[2.0, 1.0], [3.0, 1.0]]), capacity=np.array([[10.0, 1.0], [10.0, 0.0]]),
                      weights=np.array([3.0, 1.0]))
    solution = solve(problem)
    assert solution.assignment.tolist() == [0, -1]
    found = explain(problem, solution, 1, site_labels=SITES, resources=["people", "medical"])
    assert not found.placed and found.site is None
    kinds = {r.kind: r for r in found.unplaced}
    assert set(kinds) == {"full", "too_small"}
    assert kinds["full"].resource == kinds["too_small"].resource == "medical"
    assert kinds["full"].message == "1 allowed site (Toronto) has too little medical left: the case needs 1, the " \
                                    "most left anywhere is 0."
    assert kinds["too_small"].message == "1 allowed site is too small: the case needs 1 medical, the largest has " \
                                         "0 in all."
    assert found.alternative.site_label == "Toronto" and found.alternative.reasons[0].kind == "full"
    assert found.sentences()[0] == "Case 2 is not placed."


def test_exclusions_and_ties_are_named() -> None:
    problem = Problem(scores=np.ones((2, 3)), allowed=np.array([[False, False, True], [False, True, False]]),
                      needs=np.ones((2, 1)), capacity=np.full((3, 1), 5.0), weights=np.ones(2))
    solution = solve(problem)
    labels = ["Toronto", "Berlin", "Madrid"]
    excluded = explain(problem, solution, 0, site_labels=labels, site_countries=["CA", "DE", "DE"],
                       excluded_countries={"CA"})
    assert [r.kind for r in excluded.binding] == ["excluded_countries", "not_allowed"]
    assert excluded.binding[0].message == "Excluded countries: CA (1 site not considered)."
    tied = explain(problem, solution, 1, site_labels=labels, tie_site=1)
    assert tied.site_label == "Berlin" and [r.kind for r in tied.binding] == ["tie"]
    assert tied.binding[0].message == "Family tie: Berlin is the only site allowed."
    assert tied.alternative is None


def test_a_case_with_nothing_allowed_says_so() -> None:
    problem = Problem(scores=np.ones((1, 2)), allowed=np.zeros((1, 2), dtype=bool), needs=np.ones((1, 1)),
                      capacity=np.ones((2, 1)), weights=np.ones(1))
    found = explain(problem, solve(problem), 0, site_labels=SITES, site_countries=["CA", "CA"],
                    excluded_countries={"CA"})
    [reason] = found.unplaced
    assert reason.kind == "nothing_allowed"
    assert reason.message == "No site is allowed for this case (Excluded countries: CA (2 sites not considered))."
