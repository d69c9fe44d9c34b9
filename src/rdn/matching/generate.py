"""Realistic generated placement problems, for tests and ``bench/matching.py``."""

from __future__ import annotations

import numpy as np

from rdn.matching.optimizer import Problem


def instance(seed: int, cases: int, sites: int, *, tightness: float = 1.05, exclude: float = 0.13,
             tie: float = 0.03) -> Problem:
    """Case sizes 1-12 skewed small; people, medical slots, large-family units and caseworker hours; capacities
    about ``tightness`` times the demand spread over the sites; some cases excluding a country (a block of
    sites), a few tied to one site."""
    rng = np.random.default_rng(seed)
    size = np.minimum(12, rng.geometric(0.35, cases) + (rng.random(cases) < 0.8))  # 1-12, mostly 1-4
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
