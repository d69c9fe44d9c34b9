"""Matching at scale: greedy filling, HiGHS on the full MIP with a time limit, and RDN's optimizer, on generated
placement problems (``rdn.matching.generate``: case sizes 1-12 skewed small; people, medical slots,
large-family units and caseworker hours; capacities about 1.05x demand; about 13% of cases excluding a
country; 3% tied to a site).

    .venv/bin/python bench/matching.py [--sizes 1000x50,10000x200] [--mip-seconds 60] [--seed 1]

Each method runs in a process of its own (its peak memory is that process's). The gap is measured against the
LP relaxation's bound over every allowed pair (from RDN's column generation). Goals on a 2-core machine:
1,000 x 50 within 0.3% of the bound in 5 s; 10,000 x 200 within 0.3% in 30 s; 100,000 x 1,000 within 1% in
10 minutes under 12 GB (``--sizes 100000x1000``).
"""

from __future__ import annotations

import argparse
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
    """Fill by value: the most valuable allowed pair first, if the case is free and the site has room."""
    values = problem.values
    cases, sites = np.nonzero(values > 0)
    order = np.argsort(-values[cases, sites], kind="stable")
    left = problem.capacity.copy()
    out = np.full(problem.needs.shape[0], -1, dtype=np.int64)
    for k in order:
        i, j = cases[k], sites[k]
        if out[i] < 0 and (problem.needs[i] <= left[j] + 1e-9).all():
            out[i] = j
            left[j] -= problem.needs[i]
    return out


def full_mip(problem: optimizer.Problem, seconds: float) -> np.ndarray:
    """Every allowed pair worth something as a binary variable, handed to HiGHS with a time limit."""
    values = problem.values
    cases, sites = np.nonzero(values > 0)
    h = optimizer._highs()
    h.setOptionValue("time_limit", seconds)
    h.passModel(optimizer._model(problem, values, cases, sites, np.arange(problem.needs.shape[0]),
                                 problem.capacity, integer=True))
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return optimizer._assignment(problem, cases, sites, x if len(x) == len(cases) else np.zeros(len(cases)))


def run_one(method: str, cases: int, sites: int, seed: int, mip_seconds: float) -> dict[str, float | str]:
    problem = instance(seed, cases, sites)
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


def measure(method: str, cases: int, sites: int, seed: int, mip_seconds: float) -> dict[str, float | str]:
    proc = subprocess.Popen([sys.executable, __file__, "--one", method, "--sizes", f"{cases}x{sites}",
                             "--seed", str(seed), "--mip-seconds", str(mip_seconds)],
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
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes.split(",")]
    if args.one:
        (cases, sites), = sizes
        print(json.dumps(run_one(args.one, cases, sites, args.seed, args.mip_seconds)))
        return
    console = Console()
    table = Table(title=f"Matching: generated problems (seed {args.seed}); HiGHS full MIP limited to "
                        f"{args.mip_seconds:g} s; gap to the LP bound over every pair")
    for column in ("cases x sites", "method", "seconds", "peak MB", "objective", "gap to LP bound", "broken"):
        table.add_column(column, justify="right" if column not in ("method",) else "left")
    for cases, sites in sizes:
        with console.status(f"{cases:,} x {sites:,}: RDN's optimizer"):
            ours = measure("rdn", cases, sites, args.seed, args.mip_seconds)
        bound = float(ours["bound"])
        for method in METHODS:
            if method == "rdn":
                result = ours
            else:
                with console.status(f"{cases:,} x {sites:,}: {method}"):
                    result = measure(method, cases, sites, args.seed, args.mip_seconds)
            gap = (bound - float(result["objective"])) / bound * 100 if bound > 0 else 0.0
            table.add_row(f"{cases:,} x {sites:,}", method, f"{float(result['seconds']):.2f}",
                          f"{float(result['peak_mb']):,.0f}", f"{float(result['objective']):,.1f}", f"{gap:.3f}%",
                          str(result["broken"]))
    console.print(table)


if __name__ == "__main__":
    main()
