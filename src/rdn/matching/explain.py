"""Why a case went where it went: pure functions on the optimizer's arrays, for officers' pages and notebooks.

:func:`explain` answers, for one case of a solved :class:`~rdn.matching.optimizer.Problem`:

* where it goes, with its score, its priority weight and the weighted value the plan counts;
* the score's breakdown (when given the scorer's ``breakdown``);
* the constraints that bind: resources the chosen site has run out of (or has less left of than any other
  case that would gain by going there needs), a family tie that leaves one site, excluded countries;
* the best alternative (the allowed site worth most to the case) and why it was not chosen: a lower score, a
  site full of a named resource (so placing the case there would need another case moved), a site too small;
* for an unplaced case, why: nothing allowed, nothing worth anything, every allowed site too small or full of
  a named resource.

Each reason is a plain sentence with the numbers (``message``) and structured data (``kind``, ``site``,
``resource``, ``amounts``) so that pages can translate it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdn.matching.optimizer import Problem, Solution
from rdn.matching.scoring import Term

TOLERANCE = 1e-7
Breakdown = Callable[[int, int], Sequence[Term]]

# Reason kinds: binding constraints, why an alternative lost, why a case is unplaced.
KINDS = {
    "capacity_exhausted": "the chosen site has none of a resource left",
    "capacity_binding": "the chosen site has less of a resource left than any other case that would gain there needs",
    "tie": "a family tie leaves one site",
    "excluded_countries": "the case excludes some countries",
    "not_allowed": "other sites are not allowed for the case",
    "lower_score": "the alternative scores lower (or the same)",
    "full": "the alternative has too little of a resource left",
    "too_small": "the site's whole capacity of a resource is below the case's need",
    "worth_nothing": "the site scores nothing for the case",
    "missed": "the alternative has room and scores higher: the heuristic's rounding missed it",
    "nothing_allowed": "no site is allowed for the case",
}


@dataclass(frozen=True)
class Reason:
    kind: str  # a key of KINDS
    message: str  # a plain sentence with the numbers
    site: int | None = None
    resource: str | None = None
    amounts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "site": self.site, "resource": self.resource,
                "amounts": self.amounts}


@dataclass(frozen=True)
class Alternative:
    site: int
    site_label: str
    score: float
    value: float  # weight x score
    reasons: list[Reason]  # why it was not chosen
    breakdown: list[Term] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "site_label": self.site_label, "score": self.score, "value": self.value,
                "reasons": [r.to_json() for r in self.reasons], "breakdown": _terms_json(self.breakdown)}


@dataclass(frozen=True)
class Explanation:
    case: int
    case_label: str
    site: int | None  # None: unplaced
    site_label: str | None
    score: float | None
    weight: float
    value: float | None
    breakdown: list[Term] | None  # of the score at the chosen site
    binding: list[Reason]  # the constraints that bind for this case
    alternative: Alternative | None  # the best other allowed site
    unplaced: list[Reason]  # why the case is not placed (empty when it is)

    @property
    def placed(self) -> bool:
        return self.site is not None

    def sentences(self) -> list[str]:
        if self.placed:
            out = [f"{self.case_label} goes to {self.site_label}: score {self.score:.2f}, priority weight "
                   f"{self.weight:g}, value {self.value:.2f}."]
        else:
            out = [f"{self.case_label} is not placed."]
        out += [r.message for r in self.unplaced] + [r.message for r in self.binding]
        if self.alternative is not None:
            alt = self.alternative
            out.append(f"Best alternative: {alt.site_label} (score {alt.score:.2f}). "
                       + " ".join(r.message for r in alt.reasons))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "case_label": self.case_label, "placed": self.placed, "site": self.site,
                "site_label": self.site_label, "score": self.score, "weight": self.weight, "value": self.value,
                "breakdown": _terms_json(self.breakdown), "binding": [r.to_json() for r in self.binding],
                "alternative": self.alternative.to_json() if self.alternative else None,
                "unplaced": [r.to_json() for r in self.unplaced], "sentences": self.sentences()}


def as_dict(explanation: Explanation) -> dict[str, Any]:
    """The explanation as JSON-ready data (what a page stores and renders)."""
    return explanation.to_json()


def _terms_json(terms: Sequence[Term] | None) -> list[dict[str, Any]] | None:
    if terms is None:
        return None
    return [{"name": t.name, "label": t.label, "value": None if np.isnan(t.value) else t.value,
             "contribution": t.contribution, "scale": t.scale, "text": t.text()} for t in terms]


def remaining(problem: Problem, assignment: np.ndarray) -> np.ndarray:
    """(sites, resources): what each site has left once the assignment is placed."""
    placed = assignment >= 0
    used = np.zeros_like(problem.capacity)
    np.add.at(used, assignment[placed], problem.needs[placed])
    return problem.capacity - used


@dataclass(frozen=True)
class Context:
    """What every explanation of one solution shares: compute it once with :func:`prepare` when explaining
    many cases (each :func:`explain` then costs O(cases + sites))."""

    left: np.ndarray  # (sites, resources) left after the solution
    current: np.ndarray  # (cases,) each case's weighted value where it is (0 unplaced)


def prepare(problem: Problem, solution: Solution) -> Context:
    a = solution.assignment
    rows = np.arange(len(a))
    current = np.where(a >= 0, problem.weights * problem.scores[rows, np.maximum(a, 0)], 0.0)
    return Context(remaining(problem, a), current)


def explain(problem: Problem, solution: Solution, i: int, *, site_labels: Sequence[str],
            breakdown: Breakdown | None = None, resources: Sequence[str] | None = None,
            site_countries: Sequence[str] | None = None, excluded_countries: Collection[str] = (),
            tie_site: int | None = None, case_label: str | None = None,
            context: Context | None = None) -> Explanation:
    """Explain case ``i``'s place in ``solution``.

    ``breakdown(i, j)``: the scorer's named contributions to score[i, j] (e.g. ``functools.partial(
    scorer.breakdown, cases, sites)``). ``resources``: the names of the needs' columns (default "resource 1",
    ...). ``site_countries``, ``excluded_countries`` and ``tie_site`` say why sites are not allowed (without
    them, only that they are not). ``context``: :func:`prepare`'s result, to share between many calls."""
    n_resources = problem.needs.shape[1]
    names = list(resources) if resources is not None else [f"resource {r + 1}" for r in range(n_resources)]
    label = case_label or f"Case {i + 1}"
    a = solution.assignment
    j = int(a[i])
    context = context or prepare(problem, solution)
    left = context.left
    row = np.where(problem.allowed[i], problem.weights[i] * problem.scores[i], -np.inf)  # what i is worth where
    weight = float(problem.weights[i])
    binding = _constraints(problem, i, site_labels, site_countries, excluded_countries, tie_site)
    if j >= 0:
        binding = _capacity_binding(problem, i, j, context, site_labels, names) + binding
    candidates = np.nonzero(problem.allowed[i])[0]
    candidates = candidates[candidates != j]
    alternative = None
    if len(candidates):
        k = int(candidates[np.argmax(row[candidates])])
        reasons = _why_not(problem, i, j, k, left, site_labels, names, solution)
        alternative = Alternative(k, site_labels[k], float(problem.scores[i, k]), float(row[k]), reasons,
                                  list(breakdown(i, k)) if breakdown else None)
    unplaced = [] if j >= 0 else _why_unplaced(problem, i, left, site_labels, names, binding, solution)
    return Explanation(
        i, label, j if j >= 0 else None, site_labels[j] if j >= 0 else None,
        float(problem.scores[i, j]) if j >= 0 else None, weight, float(row[j]) if j >= 0 else None,
        list(breakdown(i, j)) if breakdown and j >= 0 else None, binding, alternative, unplaced)


def _constraints(problem: Problem, i: int, site_labels: Sequence[str], site_countries: Sequence[str] | None,
                 excluded_countries: Collection[str], tie_site: int | None) -> list[Reason]:
    out = []
    n_sites = problem.scores.shape[1]
    forbidden = ~problem.allowed[i]
    explained = np.zeros(n_sites, dtype=bool)
    if tie_site is not None:
        out.append(Reason("tie", f"Family tie: {site_labels[tie_site]} is the only site allowed.", site=tie_site,
                          amounts={"sites_left_out": float(n_sites - 1)}))
        explained[:] = True
    if excluded_countries and site_countries is not None:
        codes = sorted(excluded_countries)
        in_excluded = np.isin(np.asarray(site_countries), codes)
        count = int(in_excluded.sum())
        out.append(Reason("excluded_countries", f"Excluded countries: {', '.join(codes)} "
                                                f"({_count(count, 'site')} not considered).",
                          amounts={"sites": float(count)}))
        explained |= in_excluded
    other = int((forbidden & ~explained).sum())
    if other:
        out.append(Reason("not_allowed", f"{_count(other, 'other site')} {'is' if other == 1 else 'are'} not "
                                         "allowed for this case.", amounts={"sites": float(other)}))
    return out


def _capacity_binding(problem: Problem, i: int, j: int, context: Context, site_labels: Sequence[str],
                      names: Sequence[str]) -> list[Reason]:
    """The chosen site's resources that bind: none left, or less left than any other case that would gain by
    going there needs."""
    out = []
    left = context.left
    wanting = problem.allowed[:, j] & (problem.weights * problem.scores[:, j] > context.current + TOLERANCE)
    wanting[i] = False
    site = site_labels[j]
    for r in np.nonzero(problem.needs[i] > 0)[0]:
        cap, rest = float(problem.capacity[j, r]), float(left[j, r])
        amounts = {"left": rest, "capacity": cap, "used": cap - rest, "need": float(problem.needs[i, r])}
        others = wanting & (problem.needs[:, r] > 0)
        if rest <= TOLERANCE:
            amounts["others_wanting"] = float(others.sum())
            message = f"{site} has no {names[r]} left after this plan (all {cap:g} used)"
            if others.any():
                message += f"; {_count(int(others.sum()), 'other case')} would gain by going there"
            out.append(Reason("capacity_exhausted", message + ".", site=j, resource=names[r], amounts=amounts))
        elif others.any() and rest < problem.needs[others, r].min() - TOLERANCE:
            smallest = float(problem.needs[others, r].min())
            amounts.update(others_wanting=float(others.sum()), smallest_other_need=smallest)
            out.append(Reason("capacity_binding", f"{site} has {rest:g} of {cap:g} {names[r]} left, less than any of "
                                                  f"the {_count(int(others.sum()), 'other case')} that would gain by "
                                                  f"going there needs (at least {smallest:g}).",
                              site=j, resource=names[r], amounts=amounts))
    return out


def _shortages(problem: Problem, i: int, k: int, amount: np.ndarray) -> list[int]:
    return [int(r) for r in np.nonzero(problem.needs[i] > amount + TOLERANCE)[0]]


def _why_not(problem: Problem, i: int, j: int, k: int, left: np.ndarray, site_labels: Sequence[str],
             names: Sequence[str], solution: Solution) -> list[Reason]:
    """Why case i is not at site k (its best alternative)."""
    site = site_labels[k]
    s_k = float(problem.scores[i, k])
    too_small = _shortages(problem, i, k, problem.capacity[k])
    if too_small:
        return [Reason("too_small", f"{site} is too small: the case needs {problem.needs[i, r]:g} {names[r]}, the "
                                    f"site has {problem.capacity[k, r]:g} in all.", site=k, resource=names[r],
                       amounts={"need": float(problem.needs[i, r]), "capacity": float(problem.capacity[k, r])})
                for r in too_small]
    if problem.weights[i] * s_k <= TOLERANCE:
        return [Reason("worth_nothing", f"{site} scores {s_k:.2f} for this case: nothing to gain there.", site=k,
                       amounts={"score": s_k})]
    if j >= 0:
        s_j = float(problem.scores[i, j])
        if s_k <= s_j + TOLERANCE:
            word = "Lower score" if s_k < s_j - TOLERANCE else "Same score"
            return [Reason("lower_score", f"{word}: {s_k:.2f} at {site} vs {s_j:.2f} at {site_labels[j]}.", site=k,
                           amounts={"score": s_k, "chosen_score": s_j})]
    full = _shortages(problem, i, k, left[k])
    higher = f" (it scores {s_k:.2f} there vs {float(problem.scores[i, j]):.2f} at {site_labels[j]})" if j >= 0 else ""
    if full:
        return [Reason("full", f"Full: {site} has {max(left[k, r], 0):g} {names[r]} left and the case needs "
                               f"{problem.needs[i, r]:g}{higher}; placing it there would need another case moved.",
                       site=k, resource=names[r],
                       amounts={"left": float(max(left[k, r], 0)), "need": float(problem.needs[i, r]),
                                "capacity": float(problem.capacity[k, r]), "score": s_k})
                for r in full]
    return [Reason("missed", f"{site} has room and is worth more to this case{higher}: the optimizer's rounding did "
                             f"not place it there (the plan is within {solution.gap:.2%} of the best possible).",
                   site=k, amounts={"score": s_k, "gap": solution.gap})]


def _why_unplaced(problem: Problem, i: int, left: np.ndarray, site_labels: Sequence[str], names: Sequence[str],
                  constraints: list[Reason], solution: Solution) -> list[Reason]:
    allowed = np.nonzero(problem.allowed[i])[0]
    if not len(allowed):
        because = [r.message.rstrip(".") for r in constraints]
        return [Reason("nothing_allowed", "No site is allowed for this case"
                       + (f" ({'; '.join(because)})." if because else "."))]
    worth = allowed[problem.weights[i] * problem.scores[i, allowed] > TOLERANCE]
    if not len(worth):
        return [Reason("worth_nothing", f"Every allowed site ({_count(len(allowed), 'site')}) scores 0 for this "
                                        "case: nothing to gain by placing it.", amounts={"sites": float(len(allowed))})]
    out = []
    small: dict[int, list[int]] = {}
    full: dict[int, list[int]] = {}
    room = []
    for k in worth:
        short = _shortages(problem, i, int(k), problem.capacity[k])
        if short:
            small.setdefault(short[0], []).append(int(k))
            continue
        short = _shortages(problem, i, int(k), left[k])
        if short:
            full.setdefault(short[0], []).append(int(k))
        else:
            room.append(int(k))
    for r, sites in small.items():
        most = float(problem.capacity[sites, r].max())
        out.append(Reason("too_small", f"{_count(len(sites), 'allowed site')} {'is' if len(sites) == 1 else 'are'} "
                                       f"too small: the case needs {problem.needs[i, r]:g} {names[r]}, the largest "
                                       f"has {most:g} in all.", resource=names[r],
                          amounts={"sites": float(len(sites)), "need": float(problem.needs[i, r]),
                                   "largest_capacity": most}))
    for r, sites in full.items():
        most = float(max(left[sites, r].max(), 0))
        where = f" ({', '.join(site_labels[k] for k in sites[:5])}{', ...' if len(sites) > 5 else ''})"
        out.append(Reason("full", f"{_count(len(sites), 'allowed site')}{where} {'has' if len(sites) == 1 else 'have'}"
                                  f" too little {names[r]} left: the case needs {problem.needs[i, r]:g}, the most "
                                  f"left anywhere is {most:g}.", resource=names[r],
                          amounts={"sites": float(len(sites)), "need": float(problem.needs[i, r]), "most_left": most}))
    if room:
        out.append(Reason("missed", f"{_count(len(room), 'allowed site')} still {'has' if len(room) == 1 else 'have'}"
                                    f" room ({', '.join(site_labels[k] for k in room[:5])}): the optimizer's rounding "
                                    f"did not place the case (the plan is within {solution.gap:.2%} of the best "
                                    "possible).", amounts={"sites": float(len(room)), "gap": solution.gap}))
    return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
