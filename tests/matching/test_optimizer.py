"""The placement optimizer on generated instances: every capacity, exclusion and tie holds; small instances
reach the optimum that exhaustive search finds; large ones come within a small gap of the LP bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rdn.matching import optimizer
from rdn.matching.generate import instance
from rdn.matching.optimizer import Problem, solve, violations


def exhaustive(problem: Problem) -> float:
    cases, sites = problem.scores.shape
    best = 0.0
    for choice in itertools.product(range(-1, sites), repeat=cases):
        assignment = np.array(choice)
        if not violations(problem, assignment):
            best = max(best, optimizer.objective(problem, assignment))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_small_instances_reach_the_optimum_of_exhaustive_search(seed: int) -> None:
    problem = instance(seed, cases=6, sites=3, tightness=0.6)  # tight: not everyone fits
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    assert solution.objective == pytest.approx(exhaustive(problem), abs=1e-9)
    assert solution.method == "exact" and solution.gap == 0


def test_the_lp_rounding_path_reaches_the_optimum_on_a_small_instance_too(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = instance(3, cases=7, sites=3, tightness=0.7)
    best = exhaustive(problem)
    monkeypatch.setattr(optimizer, "EXACT_PAIRS", 0)
    solution = solve(problem)
    assert solution.method == "lp-rounding"
    assert violations(problem, solution.assignment) == []
    assert solution.bound >= best - 1e-9  # the LP bound is an upper bound
    assert solution.objective <= best + 1e-9


@pytest.mark.parametrize(("seed", "cases", "sites"), [(1, 400, 20), (2, 1_500, 60), (3, 3_000, 120)])
def test_generated_instances_respect_every_capacity_exclusion_and_tie_near_the_bound(
        seed: int, cases: int, sites: int) -> None:
    problem = instance(seed, cases, sites)
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    tied = np.nonzero(problem.allowed.sum(axis=1) == 1)[0]
    assert len(tied) > 0
    for i in tied:  # a tied case is at its tie site or unplaced
        assert solution.assignment[i] in (-1, int(np.nonzero(problem.allowed[i])[0][0]))
    assert solution.objective == pytest.approx(optimizer.objective(problem, solution.assignment))
    assert solution.objective <= solution.bound + 1e-6
    assert solution.gap < 0.01, (solution.method, solution.gap)


def test_the_same_problem_gives_the_same_assignment() -> None:
    problem = instance(7, 2_000, 80)
    first, second = solve(problem), solve(problem)
    assert first.method == "lp-rounding"
    assert np.array_equal(first.assignment, second.assignment) and first.bound == second.bound


def test_nothing_worth_anything_or_nothing_that_fits_leaves_cases_unplaced() -> None:
    problem = instance(5, cases=5, sites=2)
    zero = Problem(np.zeros_like(problem.scores), problem.allowed, problem.needs, problem.capacity,
                   problem.weights)
    assert (solve(zero).assignment == -1).all()
    none_fit = Problem(problem.scores, problem.allowed, problem.needs, np.zeros_like(problem.capacity),
                       problem.weights)
    assert (solve(none_fit).assignment == -1).all()


def test_a_malformed_problem_names_the_array() -> None:
    problem = instance(5, cases=5, sites=2)
    with pytest.raises(ValueError, match="capacity"):
        Problem(problem.scores, problem.allowed, problem.needs, problem.capacity[:1], problem.weights)
    with pytest.raises(ValueError, match="negative"):
        Problem(problem.scores, problem.allowed, -problem.needs, problem.capacity, problem.weights)
