"""Matching at scale: greedy filling, HiGHS on the full MIP with a time limit, and RDN's optimizer, on generated
placement problems (``rdn.matching.generate``: case sizes 1-12 skewed small; people, medical slots,
large-family units and caseworker hours; capacities about 1.05x demand; about 13% of cases excluding a
country; 3% tied to a site; with ``--quotas``, country quotas at 0.9x the people demand with 10% kept for
emergency cases).

    .venv/bin/python bench/matching.py [--sizes 1000x50,10000x200] [--mip-seconds 60] [--seed 1] [--quotas]

Each method runs in a process of its own (its peak memory is that process's, the generated problem included).
The gap is measured against the LP relaxation's bound over every allowed pair (from RDN's column generation).
The full MIP is skipped above ``--mip-pairs`` pairs (one binary each: 100,000 x 1,000 would be 10^8). Goals on a
2-core machine: 1,000 x 50 within 0.3% of the bound in 5 s; 10,000 x 200 within 0.3% in 30 s; 100,000 x 1,000
within 1% in 10 minutes under 12 GB (``--sizes 100000x1000``).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rdn.matching import optimizer  # noqa: E402
from rdn.matching.generate import instance  # noqa: E402

METHODS = ("greedy", "highs-mip", "rdn")


def greedy(problem: optimizer.Problem) -> np.ndarray:
    """Fill by value: the most valuable pair worth placing first, if the case is free and the site (and its
    country's quota) has room. Each case's sites are sorted lazily, a block at a time, and merged through a
    heap, so memory stays at a few (cases x block) arrays rather than a sort of every pair."""
    n_cases, n_sites = problem.scores.shape
    worth = optimizer._worth(problem)
    left = optimizer._limits(problem)
    block = min(16, n_sites)
    heap: list[tuple[float, int, int]] = []  # (-value, case, rank of the site in the case's order)
    first: dict[int, np.ndarray] = {}
    for start, stop in optimizer._chunks(problem):
        value = optimizer._reduced(problem, start, stop, np.zeros_like(left), worth)
        top = np.argpartition(-value, block - 1, axis=1)[:, :block]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(value, top, axis=1), axis=1, kind="stable"), 1)
        for k, i in enumerate(range(start, stop)):
            first[i] = top[k]
            if worth[i, top[k, 0]]:
                heap.append((-float(value[k, top[k, 0]]), i, 0))
    heapq.heapify(heap)
    order: dict[int, np.ndarray] = {}  # a case's whole order, once its first block is used up
    out = np.full(n_cases, -1, dtype=np.int64)
    while heap:
        _neg, i, rank = heapq.heappop(heap)
        sites = first[i] if rank < block else order[i]
        j = int(sites[rank])
        if out[i] < 0:
            rows, coef = optimizer._usage(problem, np.array([i]), np.array([j]))
            if optimizer._fits(left, rows, coef)[0]:
                out[i] = j
                np.subtract.at(left, rows, coef)
                continue
            nxt = rank + 1
            if nxt == block and nxt < n_sites:
                row = np.where(worth[i], problem.weights[i] * problem.scores[i].astype(float), -np.inf)
                order[i] = np.argsort(-row, kind="stable")
            sites = first[i] if nxt < block else order.get(i)
            if sites is not None and nxt < len(sites) and worth[i, sites[nxt]]:
                heapq.heappush(heap, (-float(problem.weights[i] * problem.scores[i, sites[nxt]]), i, nxt))
    return out


def full_mip(problem: optimizer.Problem, seconds: float) -> np.ndarray:
    """Every pair worth placing as a binary variable, handed to HiGHS with a time limit."""
    cases, sites = np.nonzero(optimizer._worth(problem))
    h = optimizer._highs()
    h.setOptionValue("time_limit", seconds)
    h.passModel(optimizer._model(problem, cases, sites, np.arange(problem.needs.shape[0]),
                                 optimizer._limits(problem), integer=True))
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return optimizer._assignment(problem, cases, sites, x if len(x) == len(cases) else np.zeros(len(cases)))


def run_one(method: str, cases: int, sites: int, seed: int, mip_seconds: float, quotas: bool
            ) -> dict[str, float | str]:
    problem = instance(seed, cases, sites, quotas=quotas)
    started = time.perf_counter()
    bound = float("nan")
    if method == "greedy":
        assignment = greedy(problem)
    elif method == "highs-mip":
        assignment = full_mip(problem, mip_seconds)
    else:
        solution = optimizer.solve(problem)
        assignment, bound = solution.assignment, solution.bound
    seconds = time.perf_counter() - started
    broken = optimizer.violations(problem, assignment)
    return {"seconds": seconds, "objective": optimizer.objective(problem, assignment), "bound": bound,
            "broken": len(broken)}


def measure(method: str, cases: int, sites: int, args: argparse.Namespace) -> dict[str, float | str]:
    proc = subprocess.Popen([sys.executable, __file__, "--one", method, "--sizes", f"{cases}x{sites}",
                             "--seed", str(args.seed), "--mip-seconds", str(args.mip_seconds)]
                            + (["--quotas"] if args.quotas else []),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{method} on {cases}x{sites} failed (status {status})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000x50,10000x200")
    parser.add_argument("--mip-seconds", type=float, default=60.0)
    parser.add_argument("--mip-pairs", type=int, default=5_000_000, help="skip the full MIP above this many pairs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quotas", action="store_true", help="country quotas with an emergency reserve")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes.split(",")]
    if args.one:
        (cases, sites), = sizes
        print(json.dumps(run_one(args.one, cases, sites, args.seed, args.mip_seconds, args.quotas)))
        return
    console = Console(width=110)
    table = Table(title=f"Matching: generated problems (seed {args.seed}{', quotas' if args.quotas else ''}); "
                        f"HiGHS full MIP limited to {args.mip_seconds:g} s; gap to the LP bound over every pair")
    for column in ("cases x sites", "method", "seconds", "peak MB", "objective", "gap to LP bound", "broken"):
        table.add_column(column, justify="right" if column not in ("method",) else "left")
    for cases, sites in sizes:
        with console.status(f"{cases:,} x {sites:,}: RDN's optimizer"):
            ours = measure("rdn", cases, sites, args)
        bound = float(ours["bound"])
        for method in METHODS:
            if method == "highs-mip" and cases * sites > args.mip_pairs:
                table.add_row(f"{cases:,} x {sites:,}", method, "-", "-", f"skipped: {cases * sites:,} pairs", "-",
                              "-")
                continue
            if method == "rdn":
                result = ours
            else:
                with console.status(f"{cases:,} x {sites:,}: {method}"):
                    result = measure(method, cases, sites, args)
            gap = (bound - float(result["objective"])) / bound * 100 if bound > 0 else 0.0
            table.add_row(f"{cases:,} x {sites:,}", method, f"{float(result['seconds']):.2f}",
                          f"{float(result['peak_mb']):,.0f}", f"{float(result['objective']):,.1f}", f"{gap:.3f}%",
                          str(result["broken"]))
    console.print(table)


if __name__ == "__main__":
    main()
