"""The placement optimizer on generated instances: every capacity, exclusion, tie, country quota and emergency
reserve holds; small instances reach the optimum that exhaustive search finds; large ones come within a small
gap of the LP bound; the prices it returns certify that bound."""

from __future__ import annotations

import dataclasses
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


def with_binding_quotas(problem: Problem, seed: int) -> Problem:
    """Two countries (sites 0-1 and 2) whose quotas the unconstrained optimum breaks, part of each reserved for
    emergency cases, a few of which there are."""
    rng = np.random.default_rng(seed)
    site_group = np.array([0, 0, 1], dtype=np.int64)
    free = solve(problem).assignment
    placed = free >= 0
    people = np.bincount(site_group[free[placed]], problem.needs[placed, 0], minlength=2)
    quota = np.maximum(1.0, np.floor(people * 0.7))
    reserve = np.floor(quota * rng.uniform(0.2, 0.6, 2))
    emergency = rng.random(len(problem.weights)) < 0.4
    return dataclasses.replace(problem, site_group=site_group, group_quota=quota, group_reserve=reserve,
                               emergency=emergency)


def people_by_country(problem: Problem, assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """People placed in each country, all and non-emergency."""
    assert problem.site_group is not None and problem.emergency is not None
    placed = np.nonzero(assignment >= 0)[0]
    group = problem.site_group[assignment[placed]]
    people = problem.needs[placed, problem.quota_resource]
    normal = ~problem.emergency[placed]
    return (np.bincount(group, people, minlength=problem.groups),
            np.bincount(group[normal], people[normal], minlength=problem.groups))


@pytest.mark.parametrize("seed", range(12))
def test_small_instances_reach_the_optimum_of_exhaustive_search(seed: int) -> None:
    problem = instance(seed, cases=6, sites=3, tightness=0.6)  # tight: not everyone fits
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    assert solution.objective == pytest.approx(exhaustive(problem), abs=1e-9)
    assert solution.method == "exact" and solution.status == "optimal" and solution.gap == 0


@pytest.mark.parametrize("seed", range(8))
def test_small_instances_with_quotas_and_reserves_reach_the_optimum_of_exhaustive_search(seed: int) -> None:
    problem = with_binding_quotas(instance(seed, cases=6, sites=3, tightness=0.9), seed)
    unconstrained = solve(dataclasses.replace(problem, site_group=None, group_quota=None, group_reserve=None))
    assert violations(problem, unconstrained.assignment)  # the quotas bind
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    assert solution.objective == pytest.approx(exhaustive(problem), abs=1e-9)
    assert solution.status == "optimal"


@pytest.mark.parametrize("quotas", [False, True])
def test_the_lp_rounding_path_reaches_the_optimum_on_a_small_instance_too(
        monkeypatch: pytest.MonkeyPatch, quotas: bool) -> None:
    problem = instance(3, cases=7, sites=3, tightness=0.7)
    if quotas:
        problem = with_binding_quotas(problem, 3)
    best = exhaustive(problem)
    monkeypatch.setattr(optimizer, "EXACT_PAIRS", 0)
    monkeypatch.setattr(optimizer, "EXACT_PAIRS_WITH_QUOTAS", 0)
    solution = solve(problem)
    assert solution.method == "lp-rounding" and solution.status == "feasible"
    assert violations(problem, solution.assignment) == []
    assert solution.bound >= best - 1e-9  # the LP bound is an upper bound
    assert solution.objective <= best + 1e-9


@pytest.mark.parametrize(("seed", "cases", "sites", "quotas"), [
    (1, 400, 20, False), (2, 1_500, 60, False), (3, 3_000, 120, False), (4, 150, 10, True), (5, 800, 30, True)])
def test_generated_instances_respect_every_capacity_exclusion_tie_and_quota_near_the_bound(
        seed: int, cases: int, sites: int, quotas: bool) -> None:
    problem = instance(seed, cases, sites, quotas=quotas)
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    tied = np.nonzero(problem.allowed.sum(axis=1) == 1)[0]
    assert len(tied) > 0
    for i in tied:  # a tied case is at its tie site or unplaced
        assert solution.assignment[i] in (-1, int(np.nonzero(problem.allowed[i])[0][0]))
    assert solution.objective == pytest.approx(optimizer.objective(problem, solution.assignment))
    assert solution.objective <= solution.bound + 1e-6
    assert solution.gap < 0.01, (solution.method, solution.gap)


def test_emergency_cases_get_the_reserved_places_and_normal_ones_cannot() -> None:
    problem = instance(6, 500, 25, quotas=True)
    assert problem.group_quota is not None and problem.group_reserve is not None and problem.emergency is not None
    # Emergency cases worth less than the others here: only the reserve keeps places for them.
    problem = dataclasses.replace(problem, weights=np.where(problem.emergency, 0.2, problem.weights))
    solution = solve(problem)
    assert violations(problem, solution.assignment) == []
    total, normal = people_by_country(problem, solution.assignment)
    limit = problem.group_quota - problem.group_reserve
    assert (normal <= limit + 1e-9).all() and (total <= problem.group_quota + 1e-9).all()
    assert ((total > limit) & (normal >= limit - 12)).any()  # somewhere the reserve binds and emergencies use it
    # Without the reserve, the other cases take places the emergency cases had.
    open_total, open_normal = people_by_country(problem, solve(dataclasses.replace(problem, group_reserve=None))
                                                .assignment)
    assert open_normal.sum() > normal.sum()
    assert (open_total - open_normal).sum() < (total - normal).sum()


def test_the_prices_certify_the_bound() -> None:
    problem = instance(8, 500, 25, quotas=True)
    solution = solve(problem)
    assert solution.method == "lp-rounding"
    prices = (solution.case_price, solution.resource_price, solution.quota_price, solution.reserve_price)
    case_price, resource_price, quota_price, reserve_price = prices
    assert case_price is not None and resource_price is not None
    assert quota_price is not None and reserve_price is not None
    assert problem.group_quota is not None and problem.group_reserve is not None and problem.site_group is not None
    assert resource_price.shape == problem.capacity.shape and quota_price.shape == problem.group_quota.shape
    people = problem.needs[:, problem.quota_resource]
    normal = np.where(problem.emergency, 0.0, people)
    group = problem.site_group
    reduced = (problem.weights[:, None] * problem.scores - problem.needs @ resource_price.T
               - np.outer(people, quota_price[group]) - np.outer(normal, reserve_price[group]))
    worth = optimizer._worth(problem)
    assert (np.where(worth, reduced, -np.inf) <= case_price[:, None] + 1e-6).all()
    dual = (case_price.sum() + (problem.capacity * resource_price).sum() + problem.group_quota @ quota_price
            + (problem.group_quota - problem.group_reserve) @ reserve_price)
    assert dual >= solution.bound - 1e-6
    assert dual <= solution.bound * (1 + 1e-4)


def test_the_exact_path_reports_prices_too() -> None:
    problem = instance(4, 120, 8)
    solution = solve(problem)
    assert solution.method == "exact" and solution.status == "optimal"
    assert solution.resource_price is not None and solution.resource_price.shape == problem.capacity.shape
    assert solution.quota_price is None and solution.reserve_price is None


def test_the_same_problem_gives_the_same_assignment() -> None:
    problem = instance(7, 1_000, 40, quotas=True)
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
    no_quota = dataclasses.replace(problem, site_group=np.zeros(2, dtype=np.int64), group_quota=np.zeros(1))
    assert (solve(no_quota).assignment == -1).all()


def test_a_malformed_problem_names_the_array() -> None:
    problem = instance(5, cases=5, sites=2)
    with pytest.raises(ValueError, match="capacity"):
        Problem(problem.scores, problem.allowed, problem.needs, problem.capacity[:1], problem.weights)
    with pytest.raises(ValueError, match="negative"):
        Problem(problem.scores, problem.allowed, -problem.needs, problem.capacity, problem.weights)
    groups = {"site_group": np.array([0, 1]), "group_quota": np.array([10.0, 10.0])}
    with pytest.raises(ValueError, match="together"):
        dataclasses.replace(problem, site_group=groups["site_group"])
    with pytest.raises(ValueError, match="site_group"):
        dataclasses.replace(problem, site_group=np.array([0, 2]), group_quota=groups["group_quota"])
    with pytest.raises(ValueError, match="group_reserve"):
        dataclasses.replace(problem, **groups, group_reserve=np.array([11.0, 0.0]))
    with pytest.raises(ValueError, match="emergency"):
        dataclasses.replace(problem, **groups, emergency=np.zeros(4, dtype=bool))


def test_violations_name_a_country_over_its_quota_and_a_reserve_used_by_non_emergency_cases() -> None:
    problem = instance(5, cases=5, sites=2)
    placed = np.zeros(5, dtype=np.int64)  # everyone at site 0 (capacities aside)
    people = problem.needs[:, 0].sum()
    quota = dataclasses.replace(problem, site_group=np.array([0, 1]), group_quota=np.array([people - 1, 99.0]))
    assert any(v.startswith("country 0 over its quota") for v in violations(quota, placed))
    reserve = dataclasses.replace(quota, group_quota=np.array([people, 99.0]), group_reserve=np.array([1.0, 0.0]),
                                  emergency=np.zeros(5, dtype=bool))
    found = violations(reserve, placed)
    assert any(v.startswith("country 0's emergency reserve used by non-emergency cases") for v in found)
    assert not any("over its quota" in v for v in found)
    everyone_urgent = dataclasses.replace(reserve, emergency=np.ones(5, dtype=bool))
    assert not any("country" in v for v in violations(everyone_urgent, placed))
