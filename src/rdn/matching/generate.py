"""Realistic generated placement problems, for tests and ``bench/matching.py``."""

from __future__ import annotations

import numpy as np

from rdn.matching.optimizer import Problem


def instance(seed: int, cases: int, sites: int, *, tightness: float = 1.05, exclude: float = 0.13,
             tie: float = 0.03, quotas: bool = False, quota_share: float = 0.9, reserve_share: float = 0.1,
             emergency_share: float = 0.08) -> Problem:
    """Case sizes 1-12 skewed small; people, medical slots, large-family units and caseworker hours; capacities
    about ``tightness`` times the demand spread over the sites; some cases excluding a country (a block of
    sites), a few tied to one site.

    With ``quotas``: each country takes at most ``quota_share`` of the people its sites would take at the
    demand's level (their people capacity over ``tightness``), ``reserve_share`` of that kept for emergency
    cases (about ``emergency_share`` of the cases). Without, the problem is the same as before quotas existed
    (the quota draws come last)."""
    rng = np.random.default_rng(seed)
    size = np.minimum(12, rng.geometric(0.35, cases) + (rng.random(cases) < 0.8))  # 1-12, mostly 1-4
    medical = (rng.random(cases) < 0.15).astype(float)
    large = (size >= 6).astype(float)
    hours = 2 + size * 0.5 + medical * 4
    needs = np.column_stack([size, medical, large, hours]).astype(float)
    share = rng.dirichlet(np.full(sites, 2.0))
    capacity = np.ceil(np.outer(share, needs.sum(axis=0)) * tightness)
    scores = rng.gamma(2.0, 0.5, (cases, sites))
    scores *= np.sqrt(size)[:, None]  # in place: one (cases, sites) array, not two
    countries = rng.integers(0, max(1, sites // 5), sites)
    allowed = np.ones((cases, sites), dtype=bool)
    excluded = rng.random(cases) < exclude
    for i in np.nonzero(excluded)[0]:
        allowed[i, countries == rng.integers(0, countries.max() + 1)] = False
    for i in np.nonzero(rng.random(cases) < tie)[0]:
        allowed[i] = False
        allowed[i, rng.integers(0, sites)] = True
    weights = rng.choice([1.0, 1.5, 3.0], cases, p=[0.8, 0.15, 0.05])
    if not quotas:
        return Problem(scores, allowed, needs, capacity, weights)
    groups = int(countries.max()) + 1
    people = np.bincount(countries, capacity[:, 0], minlength=groups) / tightness
    quota = np.floor(people * quota_share)
    reserve = np.floor(quota * reserve_share)
    emergency = rng.random(cases) < emergency_share
    return Problem(scores, allowed, needs, capacity, weights, site_group=countries.astype(np.int64),
                   group_quota=quota, group_reserve=reserve, emergency=emergency, quota_resource=0)
