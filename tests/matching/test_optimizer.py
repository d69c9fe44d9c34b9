"""The placement optimizer on generated instances: every capacity, exclusion and tie holds; small instances
reach the optimum that exhaustive search finds; large ones come within a small gap of the LP bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rdn.matching import optimizer
from rdn.matching.optimizer import Problem, solve, violations


def instance(seed: int, cases: int, sites: int, *, tightness: float = 1.05, exclude: float = 0.13,
             tie: float = 0.03) -> Problem:
    """Case sizes 1-12 skewed small; people, medical slots, large-family units and caseworker hours; capacities
    about ``tightness`` times the demand spread over the sites; some cases excluding a country (a block of
    sites), a few tied to one site."""
    rng = np.random.default_rng(seed)
    size = np.minimum(12, 1 + rng.geometric(0.35, cases) - 1 + (rng.random(cases) < 0.8))
    medical = (rng.random(cases) < 0.15).astype(float)
    large = (size >= 6).astype(float)
    hours = 2 + size * 0.5 + medical * 4
    needs = np.column_stack([size, medical, large, hours]).astype(float)
    share = rng.dirichlet(np.full(sites, 2.0))
    capacity = np.ceil(np.outer(share, needs.sum(axis=0)) * tightness)
    scores = rng.gamma(2.0, 0.5, (cases, sites)) * (size[:, None] ** 0.5)
    countries = rng.integers(0, max(1, sites // 5), sites)
    allowed = np.ones((cases, sites), dtype=bool)
    excluded = rng.random(cases) < exclude
    for i in np.nonzero(excluded)[0]:
        allowed[i, countries == rng.integers(0, countries.max() + 1)] = False
    for i in np.nonzero(rng.random(cases) < tie)[0]:
        allowed[i] = False
        allowed[i, rng.integers(0, sites)] = True
    weights = rng.choice([1.0, 1.5, 3.0], cases, p=[0.8, 0.15, 0.05])
    return Problem(scores, allowed, needs, capacity, weights)


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
