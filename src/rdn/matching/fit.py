"""Fitting the scorer on past placements: ``rdn match fit OUTCOMES.csv``.

OUTCOMES.csv has **one row per placed case**: ``adults`` (working-age adults of the case) and
``employed_adults`` (how many of them were employed 90 days after arrival), the case columns the features need
(``nationality``, ``languages``, ``education``, ``setting``, ``medical``) and the columns of the site the case
went to, prefixed with ``site_`` (``site_languages``, ``site_communities``, ``site_unemployment_rate``,
``site_labour_demand``, ``site_setting``, ``site_medical_care``). ``case_id`` and ``site_id`` are optional.
Cases with no working-age adult are left out (they say nothing about employment).

Each adult is one observation (employed or not), so a case row weighs as much as its adults. A share of the
cases (``--test-share``, chosen at random with ``--seed``) is held out: the model fitted on the rest is
measured on them (AUC, Brier score, calibration by decile of predicted probability). The coefficients written
are then fitted on every case. Features whose columns are missing from the file keep a coefficient of 0.

:func:`synthetic_outcomes` generates outcomes from known coefficients (tests and demos).
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rdn.matching.scoring import (
    FEATURES,
    CaseTable,
    Coefficient,
    Coefficients,
    InputError,
    SiteTable,
    feature_values,
    load_coefficients,
    parse_number,
    save_coefficients,
    sigmoid,
)

MIN_CASES = 20
REGULARISATION_C = 100.0  # inverse strength of the L2 penalty: close to plain maximum likelihood


@dataclass(frozen=True)
class Decile:
    cases: int
    adults: int
    predicted: float  # mean predicted probability (per adult)
    observed: float  # employed adults / adults


@dataclass(frozen=True)
class FitReport:
    coefficients: Coefficients
    cases: int  # cases with at least one adult
    adults: int
    employed: int
    train_cases: int
    test_cases: int
    auc: float | None  # held out; None when the held-out part has only one outcome
    brier: float | None
    calibration: list[Decile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # features with no data in the file

    def to_json(self) -> dict[str, object]:
        return {"cases": self.cases, "adults": self.adults, "employed": self.employed,
                "train_cases": self.train_cases, "test_cases": self.test_cases, "auc": self.auc,
                "brier": self.brier, "missing_features": self.missing,
                "calibration": [{"cases": d.cases, "adults": d.adults, "predicted": round(d.predicted, 4),
                                 "observed": round(d.observed, 4)} for d in self.calibration]}


@dataclass(frozen=True)
class Outcomes:
    cases: CaseTable
    sites: SiteTable
    adults: NDArray[np.float64]
    employed: NDArray[np.float64]


def read_outcomes(path: str | Path) -> Outcomes:
    from rdn.matching.files import read_csv

    table = read_csv(path)
    for column in ("adults", "employed_adults"):
        if column not in table.columns:
            raise InputError(table.file, f"the column {column} is missing (one row per placed case: adults, "
                                         "employed_adults, case columns, site_ columns)")
    adults = np.zeros(len(table.rows))
    employed = np.zeros(len(table.rows))
    for k, (row, number) in enumerate(zip(table.rows, table.numbers, strict=True)):
        for column, out in (("adults", adults), ("employed_adults", employed)):
            text = (row.get(column) or "").strip()
            if not text:
                raise InputError(table.file, "is empty", row=number, column=column)
            out[k] = parse_number(text, lambda message, c=column, n=number: InputError(table.file, message, row=n,
                                                                                        column=c),
                                  integer=True, low=0)
        if employed[k] > adults[k]:
            raise InputError(table.file, f"{employed[k]:g} employed adults but only {adults[k]:g} adults",
                             row=number, column="employed_adults")
    cases = CaseTable.from_rows(table.rows, file=table.file, row_numbers=table.numbers, require_id=False)
    sites = SiteTable.from_rows(table.rows, file=table.file, row_numbers=table.numbers, prefix="site_",
                                require_id=False, unique_ids=False)
    cases = CaseTable(cases.ids, cases.people, adults, cases.nationality, cases.languages, cases.education,
                      cases.setting, cases.medical, cases.columns)
    keep = adults > 0
    if keep.sum() < MIN_CASES:
        raise InputError(table.file, f"{int(keep.sum())} cases with adults: at least {MIN_CASES} are needed")
    if employed[keep].sum() == 0 or employed[keep].sum() == adults[keep].sum():
        raise InputError(table.file, "every adult has the same outcome: nothing to learn from")
    index = np.nonzero(keep)[0]
    return Outcomes(_take_cases(cases, index), _take_sites(sites, index), adults[index], employed[index])


def _take_cases(t: CaseTable, index: NDArray[np.int64]) -> CaseTable:
    pick = index.tolist()
    return CaseTable([t.ids[k] for k in pick], t.people[index], t.adults[index], [t.nationality[k] for k in pick],
                     [t.languages[k] for k in pick], t.education[index], [t.setting[k] for k in pick],
                     t.medical[index], t.columns)


def _take_sites(t: SiteTable, index: NDArray[np.int64]) -> SiteTable:
    pick = index.tolist()
    return SiteTable([t.ids[k] for k in pick], [t.country[k] for k in pick], [t.languages[k] for k in pick],
                     [t.communities[k] for k in pick], t.unemployment[index], t.demand[index],
                     [t.setting[k] for k in pick], t.medical_care[index], t.columns)


def design(outcomes: Outcomes) -> tuple[dict[str, NDArray[np.float64]], list[str]]:
    """Each feature's value for each case at the site it went to (NaN unknown), and the features with no data."""
    n = len(outcomes.cases)
    pairs = np.arange(n)
    values = feature_values(outcomes.cases, outcomes.sites, pairs, pairs)
    values = {name: np.broadcast_to(v, (n,)).astype(float) for name, v in values.items()}
    missing = [name for name, v in values.items() if np.isnan(v).all()]
    return values, missing


def fit(outcomes: Outcomes, *, test_share: float = 0.25, seed: int = 0, source: str = "") -> FitReport:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    if not 0 < test_share < 1:
        raise ValueError("the test share must be between 0 and 1")
    values, missing = design(outcomes)
    used = [name for name in FEATURES if name not in missing]
    weights = outcomes.adults
    centers = {}
    for name in used:
        known = ~np.isnan(values[name])
        centers[name] = 0.0 if FEATURES[name].binary else float(np.average(values[name][known],
                                                                           weights=weights[known]))
    n = len(weights)
    x = np.column_stack([np.nan_to_num(values[name] - centers[name], nan=0.0) for name in used]) if used \
        else np.zeros((n, 0))

    def samples(rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Each case as two weighted observations: its employed adults (1) and the others (0)."""
        xs = np.vstack([x[rows], x[rows]])
        ys = np.concatenate([np.ones(len(rows)), np.zeros(len(rows))])
        ws = np.concatenate([outcomes.employed[rows], outcomes.adults[rows] - outcomes.employed[rows]])
        keep = ws > 0
        return xs[keep], ys[keep], ws[keep]

    def model(rows: NDArray[np.int64]) -> LogisticRegression:
        xs, ys, ws = samples(rows)
        m = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
        if x.shape[1] == 0:
            xs = np.zeros((len(ys), 1))
        m.fit(xs, ys, sample_weight=ws)
        return m

    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_share))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    held = model(train)
    xs, ys, ws = samples(test)
    p = held.predict_proba(xs if x.shape[1] else np.zeros((len(ys), 1)))[:, 1]
    two_outcomes = len(np.unique(ys)) == 2
    auc = float(roc_auc_score(ys, p, sample_weight=ws)) if two_outcomes else None
    brier = float(brier_score_loss(ys, p, sample_weight=ws)) if len(ys) else None
    p_case = held.predict_proba(x[test] if x.shape[1] else np.zeros((len(test), 1)))[:, 1]
    calibration = []
    ranked = test[np.argsort(p_case, kind="stable")]
    p_sorted = np.sort(p_case, kind="stable")
    for rows, probs in zip(np.array_split(ranked, min(10, len(ranked))),
                           np.array_split(p_sorted, min(10, len(ranked))), strict=True):
        adults = outcomes.adults[rows]
        calibration.append(Decile(len(rows), int(adults.sum()), float(np.average(probs, weights=adults)),
                                  float(outcomes.employed[rows].sum() / adults.sum())))
    final = model(np.arange(n))
    coefs = final.coef_[0] if x.shape[1] else []
    features = {name: Coefficient(0.0, 0.0) for name in FEATURES}
    for name, value in zip(used, coefs, strict=True):
        features[name] = Coefficient(round(float(value), 6), round(centers[name], 6))
    report = FitReport(Coefficients(round(float(final.intercept_[0]), 6), features, 0.01, source),
                       n, int(outcomes.adults.sum()), int(outcomes.employed.sum()), len(train), len(test), auc,
                       brier, calibration, missing)
    return replace(report, coefficients=replace(report.coefficients, fit=report.to_json()))


def fit_file(outcomes_csv: str | Path, out: str | Path, *, test_share: float = 0.25, seed: int = 0) -> FitReport:
    """Read OUTCOMES.csv, fit, and write the coefficients file (all or nothing: a bad file writes nothing)."""
    outcomes = read_outcomes(outcomes_csv)
    source = (f"Fitted by `rdn match fit` on {Path(outcomes_csv).name}: {len(outcomes.adults):,} cases, "
              f"{int(outcomes.adults.sum()):,} adults (held-out share {test_share:g}, seed {seed}).")
    report = fit(outcomes, test_share=test_share, seed=seed, source=source)
    out = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out.resolve().parent, prefix=".rdn-fit-", suffix=".json")
    os.close(fd)
    try:
        save_coefficients(report.coefficients, tmp)
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


# Synthetic data ------------------------------------------------------------------------------------------------

NATIONALITIES = {"SY": ["ar"], "AF": ["ps", "fa"], "SD": ["ar", "en"], "CD": ["fr", "sw", "ln"],
                 "MM": ["my"], "ER": ["ti", "ar"], "VE": ["es"]}
COUNTRIES = ["CA", "DE", "ES", "BR", "NZ", "SE"]
LANGUAGES = ["ar", "ps", "fa", "fr", "sw", "my", "ti", "es", "en"]


def random_case_rows(rng: np.random.Generator, n: int, *, prefix: str = "c") -> list[dict[str, str]]:
    """Plausible case rows: the scorer's columns plus ``case_id``, ``people``, ``adults``."""
    rows = []
    for k in range(n):
        nationality = str(rng.choice(list(NATIONALITIES)))
        people = int(min(9, rng.geometric(0.4)))
        adults = int(rng.integers(1, min(people, 3) + 1)) if rng.random() > 0.03 else 0
        spoken = set(NATIONALITIES[nationality][: int(rng.integers(1, 3))])
        if rng.random() < 0.35:
            spoken.add("en")
        rows.append({
            "case_id": f"{prefix}{k + 1:05d}", "people": str(max(people, adults)), "adults": str(adults),
            "nationality": nationality, "languages": ";".join(sorted(spoken)),
            "education": str(int(rng.choice(4, p=[0.2, 0.35, 0.3, 0.15]))),
            "setting": str(rng.choice(["urban", "rural", "any"], p=[0.45, 0.2, 0.35])),
            "medical": "yes" if rng.random() < 0.15 else "no",
        })
    return rows


def random_site_rows(rng: np.random.Generator, n: int, *, prefix: str = "s") -> list[dict[str, str]]:
    """Plausible site rows: the scorer's columns plus ``site_id`` and ``country``."""
    rows = []
    for k in range(n):
        served = set(rng.choice(LANGUAGES, size=int(rng.integers(1, 4)), replace=False).tolist())
        communities = rng.choice(list(NATIONALITIES), size=int(rng.integers(0, 4)), replace=False).tolist()
        rows.append({
            "site_id": f"{prefix}{k + 1:03d}", "country": COUNTRIES[k % len(COUNTRIES)],
            "languages": ";".join(sorted(served)), "communities": ";".join(sorted(communities)),
            "unemployment_rate": f"{rng.uniform(3, 14):.1f}", "labour_demand": str(int(rng.integers(0, 4))),
            "setting": "urban" if rng.random() < 0.6 else "rural",
            "medical_care": "yes" if rng.random() < 0.5 else "no",
        })
    return rows


def synthetic_outcomes(n: int, *, seed: int = 0, coefficients: Coefficients | None = None,
                       sites: int = 40) -> list[dict[str, str]]:
    """OUTCOMES rows drawn from known coefficients (default: the packaged ones): each case placed at a random
    site, its employed adults drawn from the model's probability."""
    rng = np.random.default_rng(seed)
    coefficients = coefficients or load_coefficients()
    case_rows = random_case_rows(rng, n)
    site_rows = random_site_rows(rng, sites)
    where = rng.integers(0, sites, n)
    cases = CaseTable.from_rows(case_rows)
    site_table = SiteTable.from_rows(site_rows)
    values = feature_values(cases, site_table, np.arange(n), where)
    logit = np.full(n, coefficients.intercept)
    for name, x in values.items():
        c = coefficients.features.get(name)
        if c is not None:
            logit += np.nan_to_num((np.broadcast_to(x, (n,)) - c.center) * c.value, nan=0.0)
    p = sigmoid(logit)
    employed = rng.binomial(cases.adults.astype(int), p)
    rows = []
    for k in range(n):
        row = dict(case_rows[k])
        row.update({f"site_{name}": value for name, value in site_rows[where[k]].items()})
        row["employed_adults"] = str(int(employed[k]))
        rows.append(row)
    return rows


def write_csv(path: str | Path, rows: Sequence[dict[str, str]]) -> None:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
