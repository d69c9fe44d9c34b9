"""The placement optimizer: which site (and so which country) each case goes to, under every capacity.

The model (the published formulations: Annie MOORE, GeoMatch, the multidimensional-knapsack view of
Delacrétaz, Kominers and Teytelboym): cases ``i`` with a priority weight ``w_i``, sites ``j`` with a capacity
of each resource ``r`` (people, medical slots, large-family units, caseworker hours, ...), each case needing
``need[i, r]`` of each; ``score[i, j]`` the predicted outcome of placing the case there; ``allowed[i, j]``
the hard constraints (exclusions such as the country of nationality, a family tie that leaves only the tie
site, capabilities a site lacks). Maximise ``sum w_i * score[i, j] * x[i, j]`` with each case placed at most
once and every site's use of every resource within its capacity; a case may stay unplaced when nothing fits
(or when every place would score nothing).

Country quotas (optional): each site belongs to a country (``site_group``), each country takes at most
``group_quota[g]`` people (the ``quota_resource`` column of the needs) over all its sites, and of that quota
``group_reserve[g]`` is kept for emergency cases: non-emergency cases together take at most
``group_quota[g] - group_reserve[g]``. Internally every limit is one row of the same kind -- a site's
resource, a country's quota, a country's non-emergency share -- so every step below handles them alike.

How (rather than handing a dense model to a MIP solver and waiting):

1. Small problems (up to ``EXACT_PAIRS`` allowed pairs, ``EXACT_PAIRS_WITH_QUOTAS`` with quotas) are solved
   exactly: the whole MIP, to optimality (within ``EXACT_NODES``; a problem that needs more gets the best
   placement found, status "feasible", and HiGHS's bound).
2. Otherwise the LP relaxation is solved by column generation over promising pairs: each case starts with its
   best few sites; the LP's duals (a price per site and resource, per country quota and reserve) price every
   allowed pair, and pairs that would improve the LP join (added to the same model, so each round starts from
   the last basis), until none does. A large first LP is solved by interior point and crossover, the later
   rounds by simplex from its basis. Its optimum is the LP bound over *every* pair. Each pricing pass also
   gives a Lagrangian bound (the prices' value plus each case's best reduced value over every pair, valid
   whatever the prices); when it comes within ``BOUND_TOLERANCE`` of the restricted LP, the generation stops
   and reports it.
3. Cases the LP places whole keep that place; the fractional rest is solved as small MIPs (``REPAIR_CASES``
   cases at a time) over its pairs in the LP and the capacity left, then anyone still unplaced gets the best
   site with room.
4. Large-neighbourhood search. A case's near pairs are those within ``LNS_SLACK`` of its best reduced value at
   the LP's prices, plus its current place; a case with two or more (or unplaced with one) is flexible. Each
   round draws (from a seeded generator) a site, grows a cluster of sites that share flexible cases, draws
   ``LNS_CASES`` of the flexible cases near the cluster, frees them and re-places them by a MIP over their
   near pairs within the capacity left (started from their current places, so never worse; a node limit),
   keeping any improvement. Rounds stop after ``LNS_STALL`` without improvement, a round limit, or a budget of
   simplex iterations; a neighbourhood that took much work (country quotas make them harder) makes the next
   ones smaller.

HiGHS (``highspy``) solves the LPs and MIPs, single-threaded with a fixed seed and node, round and iteration
limits rather than time limits, so the same problem gives the same answer. Dense (cases x sites) passes run over
chunks of cases, so memory stays a small multiple of the problem's own arrays (100,000 x 1,000: under 2 GB).
Pure arithmetic over arrays: ``rdn.matching`` builds the problem from cases and sites and explains the result
(``Solution`` carries the LP's prices).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import highspy
import numpy as np
from numpy.typing import NDArray

EXACT_PAIRS = 20_000  # allowed pairs up to which the whole MIP is solved to optimality
EXACT_PAIRS_WITH_QUOTAS = 2_000  # ... with country quotas (their rows make the MIP much harder to prove)
EXACT_NODES = 5_000  # ... within this many branch-and-bound nodes (else: the best found, HiGHS's bound)
START_CANDIDATES = 8  # sites per case in the first restricted LP
ADD_PER_ROUND = 4  # improving sites added per case per pricing round
MAX_ROUNDS = 50
BOUND_TOLERANCE = 1e-5  # stop column generation when the Lagrangian bound is this close (relative) to the LP
IPM_COLUMNS = 50_000  # a first restricted LP at least this large: interior point and crossover, not simplex
REPAIR_NODES = 200  # branch-and-bound nodes for the fractional rest (a node limit keeps runs identical)
REPAIR_CASES = 50  # ... in groups of this many cases
LNS_SLACK = 0.3  # a pair is near when its reduced value under the LP's prices is above -LNS_SLACK
LNS_CASES = 100  # cases a neighbourhood frees
LNS_POOL = 3  # ... drawn from a cluster of sites with about LNS_POOL times as many near pairs
LNS_NODES = 10  # branch-and-bound nodes per neighbourhood
LNS_MIN_ROUNDS = 150  # neighbourhoods: one per two flexible cases, within these bounds
LNS_MAX_ROUNDS = 2_000
LNS_STALL = 60  # ... and stop after this many in a row without improvement
LNS_WORK = 200  # ... or when they have taken this many simplex iterations per round allowed
CHUNK_PAIRS = 2_000_000  # (cases x sites) pairs per chunk in dense passes
TOLERANCE = 1e-7


@dataclass(frozen=True)
class Problem:
    scores: NDArray[np.floating]  # (cases, sites): predicted outcome of each placement (float64 or float32)
    allowed: NDArray[np.bool_]  # (cases, sites): hard constraints hold
    needs: NDArray[np.float64]  # (cases, resources): what each case uses of each resource
    capacity: NDArray[np.float64]  # (sites, resources): what each site has of each
    weights: NDArray[np.float64]  # (cases,): priority weights, positive
    site_group: NDArray[np.int64] | None = None  # (sites,): the country of each site (-1: under no quota)
    group_quota: NDArray[np.float64] | None = None  # (groups,): people each country takes at most
    group_reserve: NDArray[np.float64] | None = None  # (groups,): part of the quota kept for emergency cases
    emergency: NDArray[np.bool_] | None = None  # (cases,): emergency cases (None: none)
    quota_resource: int = 0  # the needs column counted against quotas (people)

    def __post_init__(self) -> None:
        cases, sites = self.scores.shape
        resources = self.needs.shape[1]
        expected = {"allowed": (self.allowed, (cases, sites)), "needs": (self.needs, (cases, resources)),
                    "capacity": (self.capacity, (sites, resources)), "weights": (self.weights, (cases,))}
        if (self.site_group is None) != (self.group_quota is None):
            raise ValueError("site_group and group_quota come together")
        if self.group_reserve is not None and self.group_quota is None:
            raise ValueError("group_reserve needs group_quota")
        if self.group_quota is not None:
            expected["site_group"] = (self.site_group, (sites,))
            if self.group_reserve is not None:
                expected["group_reserve"] = (self.group_reserve, self.group_quota.shape)
        if self.emergency is not None:
            expected["emergency"] = (self.emergency, (cases,))
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"{name}: shape {array.shape}, expected {shape}")
        if not np.issubdtype(self.scores.dtype, np.floating):
            raise ValueError(f"scores: dtype {self.scores.dtype}, expected floating point")
        if (self.needs < 0).any() or (self.capacity < 0).any():
            raise ValueError("needs and capacities cannot be negative")
        if self.group_quota is not None:
            assert self.site_group is not None
            if self.group_quota.ndim != 1 or (self.group_quota < 0).any():
                raise ValueError("group_quota: one non-negative number per group")
            if ((self.site_group < -1) | (self.site_group >= len(self.group_quota))).any():
                raise ValueError("site_group: a group index (or -1) for each site")
            if not 0 <= self.quota_resource < resources:
                raise ValueError(f"quota_resource: {self.quota_resource} is not a resource")
            if self.group_reserve is not None and (
                    (self.group_reserve < 0).any() or (self.group_reserve > self.group_quota).any()):
                raise ValueError("group_reserve: between 0 and the quota")

    @property
    def groups(self) -> int:
        """How many countries have a quota (0: no quotas)."""
        return 0 if self.group_quota is None else len(self.group_quota)

    @property
    def values(self) -> NDArray[np.float64]:
        """What placing each case at each site is worth (weighted score; not allowed: -inf). Dense: for big
        problems prefer working on chunks of cases."""
        return np.where(self.allowed, self.weights[:, None] * self.scores, -np.inf)


@dataclass(frozen=True)
class Solution:
    """A placement, with the LP relaxation's prices for explaining it (cheap: the last column generation round's
    duals; on the exact path, the relaxation solved once). A pair's reduced value is its value (weight x
    score) less its needs at its site's ``resource_price``, less its people at its country's ``quota_price``
    and, for a non-emergency case, ``reserve_price``. The prices certify the bound: no pair worth placing has a
    reduced value above its case's ``case_price``, and ``sum(case_price) + sum(capacity * resource_price) +
    sum(quota * quota_price) + sum((quota - reserve) * reserve_price) >= bound``. A price is what one more unit
    of that limit would add to the LP's value; None where the problem has no such limit. Older callers that
    build a Solution from the first five fields keep working."""

    assignment: NDArray[np.int64]  # (cases,): the site of each case, -1 unplaced
    objective: float
    bound: float  # an upper bound: the LP relaxation's optimum over every allowed pair (exact path: the optimum,
    # or HiGHS's bound when the node limit stops it first)
    seconds: float
    method: str  # "exact" or "lp-rounding"
    status: str = "feasible"  # "optimal" (proved, exact path) or "feasible" (every constraint holds)
    case_price: NDArray[np.float64] | None = None  # (cases,): the value of placing the case at all
    resource_price: NDArray[np.float64] | None = None  # (sites, resources): per unit of each capacity
    quota_price: NDArray[np.float64] | None = None  # (groups,): per person of each country's quota
    reserve_price: NDArray[np.float64] | None = None  # (groups,): per non-emergency person beyond that

    @property
    def gap(self) -> float:
        """How far below the bound the assignment is, as a share of the bound."""
        return 0.0 if self.bound <= 0 else max(0.0, (self.bound - self.objective) / self.bound)


def objective(problem: Problem, assignment: NDArray[np.int64]) -> float:
    rows = np.nonzero(assignment >= 0)[0]
    return float((problem.weights[rows] * problem.scores[rows, assignment[rows]]).sum())


def violations(problem: Problem, assignment: NDArray[np.int64]) -> list[str]:
    """Every hard constraint the assignment breaks (none for a solution of ``solve``)."""
    rows = np.nonzero(assignment >= 0)[0]
    where = assignment[rows]
    barred = ~problem.allowed[rows, where]
    out = [f"case {i} at site {j}, which it may not go to" for i, j in zip(rows[barred], where[barred], strict=True)]
    used = np.zeros_like(problem.capacity, dtype=np.float64)
    np.add.at(used, where, problem.needs[rows])
    over = np.argwhere(used > problem.capacity + 1e-6)
    out += [f"site {j} over its capacity of resource {r}: {used[j, r]:g} > {problem.capacity[j, r]:g}"
            for j, r in over]
    if problem.group_quota is not None:
        assert problem.site_group is not None
        group = problem.site_group[where]
        people = problem.needs[rows, problem.quota_resource]
        counted = group >= 0
        total = np.bincount(group[counted], people[counted], minlength=problem.groups)
        out += [f"country {g} over its quota: {total[g]:g} people > {problem.group_quota[g]:g}"
                for g in np.nonzero(total > problem.group_quota + 1e-6)[0]]
        if problem.group_reserve is not None:
            normal = counted & ~_emergency(problem)[rows]
            limit = problem.group_quota - problem.group_reserve
            total = np.bincount(group[normal], people[normal], minlength=problem.groups)
            out += [f"country {g}'s emergency reserve used by non-emergency cases: {total[g]:g} people > "
                    f"{limit[g]:g} (quota {problem.group_quota[g]:g}, reserve {problem.group_reserve[g]:g})"
                    for g in np.nonzero(total > limit + 1e-6)[0]]
    return out


def solve(problem: Problem) -> Solution:
    started = time.perf_counter()
    worth = _worth(problem)  # allowed, worth something (never better than staying unplaced otherwise), fits
    if int(worth.sum()) <= (EXACT_PAIRS if problem.group_quota is None else EXACT_PAIRS_WITH_QUOTAS):
        return _exact(problem, worth, started)
    relaxation = _column_generation(problem, worth)
    assignment = _round_and_repair(problem, worth, relaxation)
    assignment = _improve(problem, worth, relaxation, assignment)
    return Solution(assignment, objective(problem, assignment), relaxation.bound, time.perf_counter() - started,
                    "lp-rounding", "feasible", *_prices(problem, relaxation.case_price, relaxation.price))


# --- Rows: every limit is a row; a pair (case, site) uses a few of them ---------------------------------------


def _emergency(problem: Problem) -> NDArray[np.bool_]:
    n = problem.needs.shape[0]
    return np.zeros(n, dtype=bool) if problem.emergency is None else problem.emergency.astype(bool, copy=False)


def _limits(problem: Problem) -> NDArray[np.float64]:
    """The right-hand side of every limit row: each site's resources, then each country's quota, then each
    country's non-emergency share."""
    parts = [problem.capacity.reshape(-1).astype(np.float64)]
    if problem.group_quota is not None:
        parts.append(problem.group_quota.astype(np.float64))
        if problem.group_reserve is not None:
            parts.append((problem.group_quota - problem.group_reserve).astype(np.float64))
    return np.concatenate(parts)


def _split(problem: Problem, rows: NDArray[np.float64]
           ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """A vector over the limit rows as (sites, resources), (groups,) quota part, (groups,) reserve part."""
    sites, resources = problem.capacity.shape
    g = problem.groups
    site_part = rows[:sites * resources].reshape(sites, resources)
    quota = rows[sites * resources:sites * resources + g] if problem.group_quota is not None else None
    reserve = rows[sites * resources + g:] if problem.group_reserve is not None else None
    return site_part, quota, reserve


def _per_site(problem: Problem, per_group: NDArray[np.float64], missing: float) -> NDArray[np.float64]:
    assert problem.site_group is not None
    return np.where(problem.site_group >= 0, per_group[np.maximum(problem.site_group, 0)], missing)


def _usage(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64]
           ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(pairs, slots): the limit rows each pair uses and how much of each (0: not at all)."""
    n_sites, n_res = problem.capacity.shape
    rows = [sites[:, None] * n_res + np.arange(n_res)[None, :]]
    coef = [problem.needs[cases].astype(np.float64)]
    if problem.site_group is not None:
        group = problem.site_group[sites]
        people = np.where(group >= 0, problem.needs[cases, problem.quota_resource], 0.0)
        base = n_sites * n_res + np.maximum(group, 0)
        rows.append(base[:, None])
        coef.append(people[:, None])
        if problem.group_reserve is not None:
            rows.append(base[:, None] + problem.groups)
            coef.append(np.where(_emergency(problem)[cases], 0.0, people)[:, None])
    if len(rows) == 1:
        return rows[0], coef[0]
    return np.hstack(rows), np.hstack(coef)


def _pair_values(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64]) -> NDArray[np.float64]:
    return problem.weights[cases] * problem.scores[cases, sites].astype(np.float64)


def _pair_reduced(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64],
                  price: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each pair's value less its use of the limits at ``price``."""
    rows, coef = _usage(problem, cases, sites)
    return _pair_values(problem, cases, sites) - (coef * price[rows]).sum(axis=1)


def _chunks(problem: Problem) -> Iterator[tuple[int, int]]:
    n, s = problem.scores.shape
    step = max(1, CHUNK_PAIRS // max(1, s))
    for start in range(0, n, step):
        yield start, min(start + step, n)


def _reduced(problem: Problem, start: int, stop: int, price: NDArray[np.float64],
             worth: NDArray[np.bool_]) -> NDArray[np.float64]:
    """(cases start:stop, sites): each pair's value less its use of the limits at ``price`` (-inf: not worth)."""
    out = problem.weights[start:stop, None] * problem.scores[start:stop].astype(np.float64)
    site_price, quota_price, reserve_price = _split(problem, price)
    if site_price.any():
        out -= problem.needs[start:stop] @ site_price.T
    if quota_price is not None and quota_price.any():
        out -= np.outer(problem.needs[start:stop, problem.quota_resource], _per_site(problem, quota_price, 0.0))
    if reserve_price is not None and reserve_price.any():
        people = np.where(_emergency(problem)[start:stop], 0.0, problem.needs[start:stop, problem.quota_resource])
        out -= np.outer(people, _per_site(problem, reserve_price, 0.0))
    out[~worth[start:stop]] = -np.inf
    return out


def _worth(problem: Problem) -> NDArray[np.bool_]:
    """(cases, sites): allowed, worth more than nothing, and within every limit on its own."""
    out = np.empty(problem.scores.shape, dtype=bool)
    site_cap, quota, reserve = _split(problem, _limits(problem))
    for start, stop in _chunks(problem):
        needs = problem.needs[start:stop]
        ok = problem.allowed[start:stop] & (problem.weights[start:stop, None] * problem.scores[start:stop] > TOLERANCE)
        for r in range(needs.shape[1]):
            ok &= needs[:, r, None] <= site_cap[None, :, r] + TOLERANCE
        if quota is not None:
            people = needs[:, problem.quota_resource, None]
            ok &= people <= _per_site(problem, quota, np.inf)[None, :] + TOLERANCE
            if reserve is not None:
                ok &= (_emergency(problem)[start:stop, None]
                       | (people <= _per_site(problem, reserve, np.inf)[None, :] + TOLERANCE))
        out[start:stop] = ok
    return out


def _fits(left: NDArray[np.float64], rows: NDArray[np.int64], coef: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (coef <= left[rows] + TOLERANCE).all(axis=-1)


def _prices(problem: Problem, case_price: NDArray[np.float64], price: NDArray[np.float64]
            ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None,
                       NDArray[np.float64] | None]:
    site_price, quota_price, reserve_price = _split(problem, price)
    return (case_price, site_price.copy(), None if quota_price is None else quota_price.copy(),
            None if reserve_price is None else reserve_price.copy())


# --- HiGHS models ---------------------------------------------------------------------------------------------


_banner_lock = threading.Lock()
_banner_shown = False


def _quiet_highs() -> highspy.Highs:
    """The first ``Highs()`` of a process prints HiGHS's banner on file descriptor 1 before any option can stop
    it (it would land in ``rdn match solve``'s output and the server's log): that one is made with stdout
    pointed at /dev/null."""
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _banner_shown = True
        return h


def _highs() -> highspy.Highs:
    h = _quiet_highs()
    for name, value in (("output_flag", False), ("threads", 1), ("random_seed", 0), ("presolve", "on")):
        h.setOptionValue(name, value)
    return h


def _model(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64], rows_of: NDArray[np.int64],
           limits: NDArray[np.float64], integer: bool) -> highspy.HighsLp:
    """max value.x (as min -value.x) over the pairs (cases[k], sites[k]): one row per case (placed at most
    once; ``rows_of`` maps a case to its row), then one per limit row (within ``limits``)."""
    n_case_rows = int(rows_of.max()) + 1 if len(rows_of) else 0
    pairs = len(cases)
    lp = highspy.HighsLp()
    lp.num_col_ = pairs
    lp.num_row_ = n_case_rows + len(limits)
    lp.col_cost_ = -_pair_values(problem, cases, sites)
    lp.col_lower_ = np.zeros(pairs)
    lp.col_upper_ = np.ones(pairs)
    lp.row_lower_ = np.full(lp.num_row_, -highspy.kHighsInf)
    lp.row_upper_ = np.concatenate([np.ones(n_case_rows), limits])
    rows, coef = _usage(problem, cases, sites)
    nonzero = coef > 0
    starts = np.concatenate([[0], np.cumsum(1 + nonzero.sum(axis=1))])
    index = np.empty(starts[-1], dtype=np.int32)
    value = np.empty(starts[-1])
    index[starts[:-1]] = rows_of[cases]
    value[starts[:-1]] = 1.0
    positions = (starts[:-1, None] + np.cumsum(nonzero, axis=1))[nonzero]
    index[positions] = n_case_rows + rows[nonzero]
    value[positions] = coef[nonzero]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * pairs
    return lp


class _MipResult(NamedTuple):
    x: NDArray[np.float64]  # the solution over the pairs
    optimal: bool  # proved optimal
    bound: float  # an upper bound on the MIP's value (HiGHS's dual bound)
    work: int  # simplex iterations HiGHS spent (deterministic, unlike seconds)


def _mip(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64], rows_of: NDArray[np.int64],
         limits: NDArray[np.float64], node_limit: int, start: NDArray[np.float64] | None = None,
         rel_gap: float = 1e-5) -> _MipResult:
    if len(cases) == 0:
        return _MipResult(np.zeros(0), True, 0.0, 0)
    h = _highs()
    h.setOptionValue("mip_rel_gap", rel_gap)
    h.setOptionValue("mip_max_nodes", node_limit)
    h.passModel(_model(problem, cases, sites, rows_of, limits, integer=True))
    if start is not None:
        h.setOptionValue("mip_heuristic_run_feasibility_jump", False)  # it has a start: saves ~40% of the time
        if problem.group_quota is not None:  # quota rows: restarts cost more than they find (measured, 2.5x)
            h.setOptionValue("mip_allow_restart", False)
        warm = highspy.HighsSolution()
        warm.col_value = start
        warm.value_valid = True
        h.setSolution(warm)
    h.run()
    x = np.asarray(h.getSolution().col_value)
    info = h.getInfo()
    work, bound = int(info.simplex_iteration_count), -float(info.mip_dual_bound)
    if len(x) != len(cases):
        return _MipResult(np.zeros(len(cases)) if start is None else start, False, bound, work)
    return _MipResult(x, h.getModelStatus() == highspy.HighsModelStatus.kOptimal, bound, work)


def _assignment(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64],
                x: NDArray[np.float64]) -> NDArray[np.int64]:
    out = np.full(problem.needs.shape[0], -1, dtype=np.int64)
    chosen = x > 0.5
    out[cases[chosen]] = sites[chosen]
    return out


def _exact(problem: Problem, worth: NDArray[np.bool_], started: float) -> Solution:
    cases, sites = np.nonzero(worth)
    limits = _limits(problem)
    rows_of = np.arange(problem.needs.shape[0])
    x, optimal, bound, _work = _mip(problem, cases, sites, rows_of, limits, node_limit=EXACT_NODES, rel_gap=0.0)
    assignment = _assignment(problem, cases, sites, x)
    value = objective(problem, assignment)
    bound = value if optimal else max(value, bound)  # out of nodes: HiGHS's dual bound
    prices: tuple = (None, None, None, None)
    if len(cases):  # the relaxation once, for its prices (cheap at this size)
        h = _highs()
        h.passModel(_model(problem, cases, sites, rows_of, limits, integer=False))
        h.run()
        price = np.maximum(-np.asarray(h.getSolution().row_dual)[len(rows_of):], 0.0)
        case_price = np.zeros(len(rows_of))
        np.maximum.at(case_price, cases, _pair_reduced(problem, cases, sites, price))
        prices = _prices(problem, case_price, price)
    return Solution(assignment, value, bound, time.perf_counter() - started, "exact",
                    "optimal" if optimal else "feasible", *prices)


# --- Column generation ----------------------------------------------------------------------------------------


class _Relaxation(NamedTuple):
    bound: float  # an upper bound on every assignment's value
    cases: NDArray[np.int64]  # the restricted LP's pairs
    sites: NDArray[np.int64]
    x: NDArray[np.float64]  # its solution
    case_price: NDArray[np.float64]  # (cases,) duals of "at most once"
    price: NDArray[np.float64]  # duals of the limit rows (as ``_limits``)


def _top(problem: Problem, worth: NDArray[np.bool_], k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The (up to) k most valuable pairs worth something of each case."""
    zero = np.zeros(len(_limits(problem)))
    found_cases, found_sites = [], []
    for start, stop in _chunks(problem):
        value = _reduced(problem, start, stop, zero, worth)
        m = min(k, value.shape[1])
        top = np.argpartition(-value, m - 1, axis=1)[:, :m]
        ok = np.take_along_axis(worth[start:stop], top, axis=1)
        found_cases.append(np.repeat(np.arange(start, stop), m)[ok.reshape(-1)])
        found_sites.append(top.reshape(-1)[ok.reshape(-1)])
    return np.concatenate(found_cases), np.concatenate(found_sites)


def _column_generation(problem: Problem, worth: NDArray[np.bool_]) -> _Relaxation:
    """The LP bound over every allowed pair, and the LP solution over the pairs it needed."""
    n_cases = worth.shape[0]
    limits = _limits(problem)
    cases, sites = _top(problem, worth, START_CANDIDATES)
    chosen = np.zeros_like(worth)
    chosen[cases, sites] = True
    rows_of = np.arange(n_cases)
    h = _highs()
    h.passModel(_model(problem, cases, sites, rows_of, limits, integer=False))
    if len(cases) >= IPM_COLUMNS:
        h.setOptionValue("solver", "ipm")  # then crossover: a basis for the later rounds' simplex
    for _round in range(MAX_ROUNDS):
        h.run()  # after the first round, from the previous round's basis (warm start)
        h.setOptionValue("solver", "simplex")
        solution = h.getSolution()
        price = np.maximum(-np.asarray(solution.row_dual)[n_cases:], 0.0)  # the limits' prices
        restricted = -float(h.getInfo().objective_function_value)
        x = np.asarray(solution.col_value)
        # Pricing every pair at the limits' prices. In the model, a case is worth its best pair there (the LP's
        # own case duals may sit partly in the columns' bounds x <= 1); a pair worth more would improve the LP.
        # Over every pair, the case's best (case_price) gives the Lagrangian bound sum(case_price) +
        # limits . price, an upper bound on the LP (so on every placement) whatever the prices.
        case_price = np.zeros(n_cases)
        new_cases, new_sites = [], []
        for start, stop in _chunks(problem):
            reduced = _reduced(problem, start, stop, price, worth)
            case_price[start:stop] = np.maximum(reduced.max(axis=1), 0.0)
            inside = np.maximum(np.where(chosen[start:stop], reduced, -np.inf).max(axis=1), 0.0)
            reduced -= inside[:, None]
            reduced[chosen[start:stop]] = -np.inf
            improving = reduced > 1e-6
            rows = np.nonzero(improving.any(axis=1))[0]
            if not len(rows):
                continue
            m = min(ADD_PER_ROUND, reduced.shape[1])
            top = np.argpartition(-reduced[rows], m - 1, axis=1)[:, :m]
            ok = np.take_along_axis(improving[rows], top, axis=1)
            new_cases.append(np.repeat(rows + start, m)[ok.reshape(-1)])
            new_sites.append(top.reshape(-1)[ok.reshape(-1)])
        lagrangian = float(case_price.sum() + limits @ price)
        if not new_cases:  # converged: the restricted LP's optimum is the LP's over every pair
            return _Relaxation(restricted, cases, sites, x, case_price, price)
        if lagrangian - restricted <= BOUND_TOLERANCE * abs(lagrangian) or _round == MAX_ROUNDS - 1:
            return _Relaxation(lagrangian, cases, sites, x, case_price, price)
        add_cases, add_sites = np.concatenate(new_cases), np.concatenate(new_sites)
        chosen[add_cases, add_sites] = True
        columns = _model(problem, add_cases, add_sites, rows_of, limits, integer=False)
        matrix = columns.a_matrix_
        h.addCols(len(add_cases), columns.col_cost_, columns.col_lower_, columns.col_upper_, len(matrix.value_),
                  np.asarray(matrix.start_[:-1], dtype=np.int32), matrix.index_, matrix.value_)
        cases, sites = np.concatenate([cases, add_cases]), np.concatenate([sites, add_sites])
    raise AssertionError("unreachable: the last round returns")  # pragma: no cover


# --- From the relaxation to a placement -----------------------------------------------------------------------


def _round_and_repair(problem: Problem, worth: NDArray[np.bool_], relaxation: _Relaxation) -> NDArray[np.int64]:
    cases, sites, x = relaxation.cases, relaxation.sites, relaxation.x
    n_cases = problem.needs.shape[0]
    assignment = np.full(n_cases, -1, dtype=np.int64)
    left = _limits(problem)
    whole = x > 1 - 1e-6
    assignment[cases[whole]] = sites[whole]
    rows, coef = _usage(problem, cases[whole], sites[whole])
    np.subtract.at(left, rows, coef)
    left = np.maximum(left, 0)
    # The fractional rest: MIPs over its pairs in the model and the capacity left, a group of cases at a time
    # (grouped by the site the LP gives most of each, so a group shares sites).
    partial = (x > 1e-6) & ~whole
    order = np.lexsort((-x[partial], cases[partial]))
    first = np.concatenate([[True], np.diff(cases[partial][order]) != 0])
    open_cases, open_sites = cases[partial][order][first], sites[partial][order][first]
    keep = assignment[open_cases] < 0
    open_cases = open_cases[keep][np.argsort(open_sites[keep], kind="stable")]
    position = np.full(n_cases, -1, dtype=np.int64)
    position[open_cases] = np.arange(len(open_cases))
    in_open = position[cases] >= 0
    by_group = np.argsort(position[cases[in_open]] // REPAIR_CASES, kind="stable")
    model_cases, model_sites = cases[in_open][by_group], sites[in_open][by_group]
    bounds = np.searchsorted(position[model_cases] // REPAIR_CASES, np.arange(0, len(open_cases) // REPAIR_CASES + 2))
    for a, b in itertools.pairwise(bounds):
        sub_cases, sub_sites = model_cases[a:b], model_sites[a:b]
        fits = _fits(left, *_usage(problem, sub_cases, sub_sites))
        sub_cases, sub_sites = sub_cases[fits], sub_sites[fits]
        if not len(sub_cases):
            continue
        rows_of = np.full(n_cases, -1, dtype=np.int64)
        group = np.unique(sub_cases)
        rows_of[group] = np.arange(len(group))
        chosen = _mip(problem, sub_cases, sub_sites, rows_of, left, node_limit=REPAIR_NODES).x > 0.5
        for i, j in zip(sub_cases[chosen], sub_sites[chosen], strict=True):
            _place_if_fits(problem, assignment, left, int(i), int(j))
    _fill(problem, worth, assignment, left)
    return assignment


def _place_if_fits(problem: Problem, assignment: NDArray[np.int64], left: NDArray[np.float64], i: int,
                   j: int) -> bool:
    rows, coef = _usage(problem, np.array([i]), np.array([j]))
    if not _fits(left, rows, coef)[0]:
        return False
    assignment[i] = j
    np.subtract.at(left, rows, coef)
    return True


def _fill(problem: Problem, worth: NDArray[np.bool_], assignment: NDArray[np.int64],
          left: NDArray[np.float64]) -> None:
    """Anyone still unplaced: the best site with room, in order of what the case is worth at its best."""
    waiting = np.nonzero((assignment < 0) & worth.any(axis=1))[0]
    if not len(waiting):
        return
    value = problem.weights[waiting, None] * problem.scores[waiting].astype(np.float64)
    value[~worth[waiting]] = -np.inf
    for k in np.argsort(-value.max(axis=1), kind="stable"):
        i = waiting[k]
        candidates = np.nonzero(worth[i])[0]
        fits = _fits(left, *_usage(problem, np.full(len(candidates), i), candidates))
        if fits.any():
            j = candidates[fits][np.argmax(value[k, candidates[fits]])]
            _place_if_fits(problem, assignment, left, i, int(j))


# --- Large-neighbourhood search -------------------------------------------------------------------------------


def _improve(problem: Problem, worth: NDArray[np.bool_], relaxation: _Relaxation,
             assignment: NDArray[np.int64]) -> NDArray[np.int64]:
    """Re-place a few flexible cases at a time, by a MIP over their near pairs, keeping what improves."""
    n_cases, n_sites = worth.shape
    # Near pairs: at most LNS_SLACK below the best the LP's prices allow (sorted by case, then site).
    found_cases, found_sites = [], []
    for start, stop in _chunks(problem):
        reduced = _reduced(problem, start, stop, relaxation.price, worth) - relaxation.case_price[start:stop, None]
        c, s = np.nonzero(reduced > -LNS_SLACK)
        found_cases.append(c + start)
        found_sites.append(s)
    placed = np.nonzero(assignment >= 0)[0]
    key = np.unique(np.concatenate([*found_cases, placed]) * n_sites
                    + np.concatenate([*found_sites, assignment[placed]]))
    pair_cases, pair_sites = key // n_sites, key % n_sites  # near pairs and the current places
    count = np.bincount(pair_cases, minlength=n_cases)
    # Flexible: a case with a choice of sites, or an unplaced one with somewhere to go.
    flexible = (count >= 2) | ((assignment < 0) & (count >= 1))
    keep = flexible[pair_cases]
    pair_cases, pair_sites = pair_cases[keep], pair_sites[keep]
    if not len(pair_cases):
        return assignment
    case_starts = np.searchsorted(pair_cases, np.arange(n_cases + 1))
    by_site = np.argsort(pair_sites, kind="stable")
    site_starts = np.searchsorted(pair_sites[by_site], np.arange(n_sites + 1))
    affinity = _affinity(pair_cases, pair_sites, n_sites)
    limits = _limits(problem)
    left = limits.copy()
    rows, coef = _usage(problem, placed, assignment[placed])
    np.subtract.at(left, rows, coef)
    rng = np.random.default_rng(0)  # a fixed seed: the same problem, the same neighbourhoods
    rounds = min(LNS_MAX_ROUNDS, max(LNS_MIN_ROUNDS, int(flexible.sum()) // 2))
    budget = rounds * LNS_WORK  # simplex iterations for every neighbourhood together
    stall, size = 0, LNS_CASES
    for _round in range(rounds):
        cluster = _cluster(affinity, int(rng.integers(n_sites)), site_starts)
        pool = np.unique(pair_cases[by_site[np.concatenate([np.arange(site_starts[j], site_starts[j + 1])
                                                            for j in cluster])]])
        free = np.sort(rng.choice(pool, min(size, len(pool)), replace=False))
        improved, work = _reoptimize(problem, assignment, left, free, pair_cases, pair_sites, case_starts)
        stall = 0 if improved else stall + 1
        budget -= work
        if stall >= LNS_STALL or budget <= 0:
            break
        # Hard neighbourhoods (country quotas make them so) get smaller, easy ones back to LNS_CASES.
        if work > 2 * LNS_WORK:
            size = max(LNS_CASES // 5, int(size * 0.7))
        elif work < LNS_WORK:
            size = min(LNS_CASES, size + 5)
    return assignment


def _affinity(cases: NDArray[np.int64], sites: NDArray[np.int64], n_sites: int) -> NDArray[np.float64]:
    """(sites, sites): how many cases have a pair at both (pairs sorted by case)."""
    out = np.zeros((n_sites, n_sites))
    starts = np.flatnonzero(np.concatenate([[True], cases[1:] != cases[:-1]]))
    counts = np.diff(np.concatenate([starts, [len(cases)]]))
    for k in range(1, min(int(counts.max()), 8)):  # the k-th site of each case with the ones before it
        has = np.nonzero(counts > k)[0]
        for back in range(k):
            a, b = sites[starts[has] + k], sites[starts[has] + back]
            np.add.at(out, (a, b), 1.0)
            np.add.at(out, (b, a), 1.0)
    return out


def _cluster(affinity: NDArray[np.float64], seed: int, site_starts: NDArray[np.int64]) -> list[int]:
    """The seed and the sites with most affinity to the cluster so far, until their pairs number
    ``LNS_POOL`` times ``LNS_CASES`` (a pool to draw the neighbourhood's cases from)."""
    cluster = [seed]
    score = affinity[seed].copy()
    score[seed] = -np.inf
    pairs = int(site_starts[seed + 1] - site_starts[seed])
    while pairs < LNS_POOL * LNS_CASES and len(cluster) < len(score):
        j = int(np.argmax(score))
        cluster.append(j)
        pairs += int(site_starts[j + 1] - site_starts[j])
        score += affinity[j]
        score[cluster] = -np.inf
    return cluster


def _reoptimize(problem: Problem, assignment: NDArray[np.int64], left: NDArray[np.float64],
                free: NDArray[np.int64], pair_cases: NDArray[np.int64], pair_sites: NDArray[np.int64],
                case_starts: NDArray[np.int64]) -> tuple[bool, int]:
    """Re-place the ``free`` cases by a MIP over their pairs within the capacity ``left`` (updated) once they
    are out, started from their current places. Whether the placement improved, and the MIP's work."""
    idx = np.concatenate([np.arange(case_starts[i], case_starts[i + 1]) for i in free])
    cand_cases, cand_sites = pair_cases[idx], pair_sites[idx]
    was = np.nonzero(assignment[free] >= 0)[0]
    rows, coef = _usage(problem, free[was], assignment[free[was]])
    room = left.copy()
    np.add.at(room, rows, coef)
    fits = _fits(room, *_usage(problem, cand_cases, cand_sites))
    cand_cases, cand_sites = cand_cases[fits], cand_sites[fits]
    rows_of = np.full(len(assignment), -1, dtype=np.int64)
    rows_of[free] = np.arange(len(free))
    start = (assignment[cand_cases] == cand_sites).astype(np.float64)
    values = _pair_values(problem, cand_cases, cand_sites)
    x, _optimal, _bound, work = _mip(problem, cand_cases, cand_sites, rows_of, room, node_limit=LNS_NODES,
                                     start=start)
    chosen = x > 0.5
    if float(values[chosen].sum()) <= float(values @ start) + 1e-9:
        return False, work
    rows, coef = _usage(problem, cand_cases[chosen], cand_sites[chosen])
    after = room.copy()
    np.subtract.at(after, rows, coef)
    if (after < -1e-6).any() or len(np.unique(cand_cases[chosen])) != chosen.sum():
        return False, work  # pragma: no cover - HiGHS's solution is within its tolerances; this keeps ours
    assignment[free] = -1
    assignment[cand_cases[chosen]] = cand_sites[chosen]
    left[:] = after
    return True, work
