"""The placement optimizer: which site (and so which country) each case goes to, under every capacity.

The model (the published formulations: Annie MOORE, GeoMatch, the multidimensional-knapsack view of
Delacrétaz, Kominers and Teytelboym): cases ``i`` with a priority weight ``w_i``, sites ``j`` with a capacity
of each resource ``r`` (people, medical slots, large-family units, caseworker hours, ...), each case needing
``need[i, r]`` of each; ``score[i, j]`` the predicted outcome of placing the case there; ``allowed[i, j]``
the hard constraints (exclusions such as the country of nationality, a family tie that leaves only the tie
site, capabilities a site lacks). Maximise ``sum w_i * score[i, j] * x[i, j]`` with each case placed at most
once and every site's use of every resource within its capacity; a case may stay unplaced when nothing fits
(or when every place would score nothing).

How (rather than handing a dense model to a MIP solver and waiting):

1. Small problems (up to ``EXACT_PAIRS`` allowed pairs) are solved exactly: the whole MIP, to optimality.
2. Otherwise the LP relaxation is solved by column generation over promising pairs: each case starts with its
   best few sites; the LP's duals (a price per case and per site and resource) price every allowed pair, and
   pairs that would improve the LP join (added to the same model, so each round starts from the last
   basis), until none does. Its optimum is the LP bound over *every* pair.
3. Cases the LP places whole keep that place; the fractional rest is solved as a small MIP over its
   candidate pairs and the capacity left, then anyone still unplaced gets the best site with room.

HiGHS (``highspy``) solves the LPs and MIPs, single-threaded with a fixed seed and a node limit rather than a
time limit, so the same problem gives the same answer. Pure arithmetic over arrays: ``rdn.matching`` builds
the problem from cases and sites and explains the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray

EXACT_PAIRS = 20_000  # allowed pairs up to which the whole MIP is solved to optimality
START_CANDIDATES = 8  # sites per case in the first restricted LP
ADD_PER_ROUND = 4  # improving sites added per case per pricing round
MAX_ROUNDS = 50
REPAIR_NODES = 200  # branch-and-bound nodes for the fractional rest (a node limit keeps runs identical)
TOLERANCE = 1e-7


@dataclass(frozen=True)
class Problem:
    scores: NDArray[np.float64]  # (cases, sites): predicted outcome of each placement
    allowed: NDArray[np.bool_]  # (cases, sites): hard constraints hold
    needs: NDArray[np.float64]  # (cases, resources): what each case uses of each resource
    capacity: NDArray[np.float64]  # (sites, resources): what each site has of each
    weights: NDArray[np.float64]  # (cases,): priority weights, positive

    def __post_init__(self) -> None:
        cases, sites = self.scores.shape
        resources = self.needs.shape[1]
        expected = {"allowed": (self.allowed, (cases, sites)), "needs": (self.needs, (cases, resources)),
                    "capacity": (self.capacity, (sites, resources)), "weights": (self.weights, (cases,))}
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"{name}: shape {array.shape}, expected {shape}")
        if (self.needs < 0).any() or (self.capacity < 0).any():
            raise ValueError("needs and capacities cannot be negative")

    @property
    def values(self) -> NDArray[np.float64]:
        """What placing each case at each site is worth (weighted score; not allowed: -inf)."""
        return np.where(self.allowed, self.weights[:, None] * self.scores, -np.inf)


@dataclass(frozen=True)
class Solution:
    assignment: NDArray[np.int64]  # (cases,): the site of each case, -1 unplaced
    objective: float
    bound: float  # the LP relaxation's optimum over every allowed pair (exact path: the optimum itself)
    seconds: float
    method: str  # "exact" or "lp-rounding"

    @property
    def gap(self) -> float:
        """How far below the bound the assignment is, as a share of the bound."""
        return 0.0 if self.bound <= 0 else max(0.0, (self.bound - self.objective) / self.bound)


def objective(problem: Problem, assignment: NDArray[np.int64]) -> float:
    placed = assignment >= 0
    rows = np.nonzero(placed)[0]
    return float((problem.weights[rows] * problem.scores[rows, assignment[rows]]).sum())


def violations(problem: Problem, assignment: NDArray[np.int64]) -> list[str]:
    """Every hard constraint the assignment breaks (none for a solution of ``solve``)."""
    out = []
    for i in np.nonzero(assignment >= 0)[0]:
        if not problem.allowed[i, assignment[i]]:
            out.append(f"case {i} at site {assignment[i]}, which it may not go to")
    used = np.zeros_like(problem.capacity)
    np.add.at(used, assignment[assignment >= 0], problem.needs[assignment >= 0])
    over = np.argwhere(used > problem.capacity + 1e-6)
    out += [f"site {j} over its capacity of resource {r}: {used[j, r]:g} > {problem.capacity[j, r]:g}"
            for j, r in over]
    return out


def solve(problem: Problem) -> Solution:
    started = time.perf_counter()
    values = problem.values
    worth = values > TOLERANCE  # a pair worth nothing is never better than staying unplaced
    worth &= _fits(problem)  # a case bigger than a site's capacity never goes there
    cases, sites = np.nonzero(worth)
    if len(cases) <= EXACT_PAIRS:
        x = _mip(problem, values, cases, sites, np.arange(problem.needs.shape[0]), problem.capacity, node_limit=None)
        assignment = _assignment(problem, cases, sites, x)
        value = objective(problem, assignment)
        return Solution(assignment, value, value, time.perf_counter() - started, "exact")
    bound, pair_cases, pair_sites, x = _column_generation(problem, values, worth)
    assignment = _round_and_repair(problem, values, worth, pair_cases, pair_sites, x)
    return Solution(assignment, objective(problem, assignment), bound, time.perf_counter() - started,
                    "lp-rounding")


def _fits(problem: Problem) -> NDArray[np.bool_]:
    """(cases, sites): the case's needs are within the site's whole capacity (in chunks of cases: bounded memory)."""
    out = np.empty((problem.needs.shape[0], problem.capacity.shape[0]), dtype=bool)
    for start in range(0, problem.needs.shape[0], 2_000):
        chunk = problem.needs[start:start + 2_000]
        out[start:start + 2_000] = (chunk[:, None, :] <= problem.capacity[None, :, :] + TOLERANCE).all(axis=2)
    return out


def _highs() -> highspy.Highs:
    h = highspy.Highs()
    for name, value in (("output_flag", False), ("threads", 1), ("random_seed", 0), ("presolve", "on")):
        h.setOptionValue(name, value)
    return h


def _model(problem: Problem, values: NDArray[np.float64], cases: NDArray[np.int64], sites: NDArray[np.int64],
           rows_of: NDArray[np.int64], capacity: NDArray[np.float64], integer: bool) -> highspy.HighsLp:
    """min -value.x over the pairs (cases[k], sites[k]): one row per case (placed at most once), then one per
    site and resource (within ``capacity``). ``rows_of`` maps a case to its row."""
    n_case_rows = int(rows_of.max()) + 1 if len(rows_of) else 0
    n_sites, n_res = capacity.shape
    pairs = len(cases)
    lp = highspy.HighsLp()
    lp.num_col_ = pairs
    lp.num_row_ = n_case_rows + n_sites * n_res
    lp.col_cost_ = -values[cases, sites]
    lp.col_lower_ = np.zeros(pairs)
    lp.col_upper_ = np.ones(pairs)
    lp.row_lower_ = np.full(lp.num_row_, -highspy.kHighsInf)
    lp.row_upper_ = np.concatenate([np.ones(n_case_rows), capacity.reshape(-1)])
    needs = problem.needs[cases]  # (pairs, resources)
    nonzero = needs > 0
    per_col = 1 + nonzero.sum(axis=1)
    starts = np.concatenate([[0], np.cumsum(per_col)])
    index = np.empty(starts[-1], dtype=np.int32)
    value = np.empty(starts[-1])
    index[starts[:-1]] = rows_of[cases]
    value[starts[:-1]] = 1.0
    res_rows = n_case_rows + sites[:, None] * n_res + np.arange(n_res)[None, :]
    fill = np.zeros_like(nonzero, dtype=np.int64)
    fill[nonzero] = np.concatenate([np.arange(k) for k in nonzero.sum(axis=1)]) if nonzero.any() else []
    positions = (starts[:-1, None] + 1 + fill)[nonzero]
    index[positions] = res_rows[nonzero]
    value[positions] = needs[nonzero]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * pairs
    return lp


def _mip(problem: Problem, values: NDArray[np.float64], cases: NDArray[np.int64], sites: NDArray[np.int64],
         rows_of: NDArray[np.int64], capacity: NDArray[np.float64], node_limit: int | None) -> NDArray[np.float64]:
    if len(cases) == 0:
        return np.zeros(0)
    h = _highs()
    h.setOptionValue("mip_rel_gap", 0.0 if node_limit is None else 1e-5)
    if node_limit is not None:
        h.setOptionValue("mip_max_nodes", node_limit)
    h.passModel(_model(problem, values, cases, sites, rows_of, capacity, integer=True))
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return x if len(x) == len(cases) else np.zeros(len(cases))


def _assignment(problem: Problem, cases: NDArray[np.int64], sites: NDArray[np.int64],
                x: NDArray[np.float64]) -> NDArray[np.int64]:
    out = np.full(problem.needs.shape[0], -1, dtype=np.int64)
    chosen = x > 0.5
    out[cases[chosen]] = sites[chosen]
    return out


def _column_generation(problem: Problem, values: NDArray[np.float64], worth: NDArray[np.bool_]
                       ) -> tuple[float, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """The LP bound over every allowed pair, and the LP solution over the pairs it needed."""
    n_cases, n_sites = worth.shape
    ranked = np.where(worth, values, -np.inf)
    k = min(START_CANDIDATES, n_sites)
    top = np.argpartition(-ranked, k - 1, axis=1)[:, :k]
    keep = np.take_along_axis(worth, top, axis=1)
    chosen = np.zeros_like(worth)
    chosen[np.repeat(np.arange(n_cases), k)[keep.reshape(-1)], top.reshape(-1)[keep.reshape(-1)]] = True
    rows_of = np.arange(n_cases)
    cases, sites = np.nonzero(chosen)
    h = _highs()
    h.passModel(_model(problem, values, cases, sites, rows_of, problem.capacity, integer=False))
    for _round in range(MAX_ROUNDS):
        h.run()  # after the first round, from the previous round's basis (warm start)
        solution = h.getSolution()
        duals = -np.asarray(solution.row_dual)  # prices of "at most once" and of each site's resources, >= 0
        case_price = duals[:n_cases]
        resource_price = duals[n_cases:].reshape(problem.capacity.shape)
        new_cases, new_sites = [], []
        for start in range(0, n_cases, 2_000):
            stop = min(start + 2_000, n_cases)
            reduced = (values[start:stop] - case_price[start:stop, None]
                       - problem.needs[start:stop] @ resource_price.T)
            improving = worth[start:stop] & ~chosen[start:stop] & (reduced > 1e-6)
            if not improving.any():
                continue
            best = np.where(improving, reduced, -np.inf)
            m = min(ADD_PER_ROUND, n_sites)
            top = np.argpartition(-best, m - 1, axis=1)[:, :m]
            ok = np.take_along_axis(improving, top, axis=1)
            new_cases.append(np.repeat(np.arange(start, stop), m)[ok.reshape(-1)])
            new_sites.append(top.reshape(-1)[ok.reshape(-1)])
        if not new_cases:
            x = np.asarray(solution.col_value)
            return -float(h.getInfo().objective_function_value), cases, sites, x
        add_cases, add_sites = np.concatenate(new_cases), np.concatenate(new_sites)
        chosen[add_cases, add_sites] = True
        columns = _model(problem, values, add_cases, add_sites, rows_of, problem.capacity, integer=False)
        matrix = columns.a_matrix_
        h.addCols(len(add_cases), columns.col_cost_, columns.col_lower_, columns.col_upper_, len(matrix.value_),
                  np.asarray(matrix.start_[:-1], dtype=np.int32), matrix.index_, matrix.value_)
        cases, sites = np.concatenate([cases, add_cases]), np.concatenate([sites, add_sites])
    raise RuntimeError("column generation did not converge")  # pragma: no cover - a bound on rounds


def _round_and_repair(problem: Problem, values: NDArray[np.float64], worth: NDArray[np.bool_],
                      cases: NDArray[np.int64], sites: NDArray[np.int64], x: NDArray[np.float64]
                      ) -> NDArray[np.int64]:
    n_cases = problem.needs.shape[0]
    assignment = np.full(n_cases, -1, dtype=np.int64)
    whole = x > 1 - 1e-6
    assignment[cases[whole]] = sites[whole]
    left = problem.capacity.copy()
    np.subtract.at(left, sites[whole], problem.needs[cases[whole]])
    left = np.maximum(left, 0)
    # The fractional rest: a MIP over its candidate pairs and the capacity left.
    partial = (x > 1e-6) & ~whole
    open_cases = np.unique(cases[partial])
    open_cases = open_cases[assignment[open_cases] < 0]
    if len(open_cases):
        in_open = np.isin(cases, open_cases)
        sub_cases, sub_sites = cases[in_open], sites[in_open]
        rows_of = np.full(n_cases, -1, dtype=np.int64)
        rows_of[open_cases] = np.arange(len(open_cases))
        fits = (problem.needs[sub_cases] <= left[sub_sites] + TOLERANCE).all(axis=1)
        sub_cases, sub_sites = sub_cases[fits], sub_sites[fits]
        chosen = _mip(problem, values, sub_cases, sub_sites, rows_of, left, node_limit=REPAIR_NODES) > 0.5
        for i, j in zip(sub_cases[chosen], sub_sites[chosen], strict=True):
            if (problem.needs[i] <= left[j] + TOLERANCE).all():
                assignment[i] = j
                left[j] -= problem.needs[i]
    # Anyone still unplaced: the best site with room, in order of what the case is worth there.
    order = np.argsort(-np.where(worth, values, -np.inf).max(axis=1), kind="stable")
    for i in order:
        if assignment[i] >= 0 or not worth[i].any():
            continue
        candidates = np.nonzero(worth[i] & (problem.needs[i] <= left + TOLERANCE).all(axis=1))[0]
        if len(candidates):
            j = candidates[np.argmax(values[i, candidates])]
            assignment[i] = j
            left[j] -= problem.needs[i]
    return assignment
