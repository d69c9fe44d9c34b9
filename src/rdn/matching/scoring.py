"""Scores: the predicted integration outcome of placing each case at each site.

The score of case ``i`` at site ``j`` is the expected number of the case's working-age adults employed 90
days after arrival (the outcome Annie MOORE and GeoMatch maximise)::

    score[i, j] = floor + adults[i] * P(an adult of case i placed at site j is employed)

The default scorer is a transparent logistic model: ``logit P = intercept + sum_k coef_k * (x_k - center_k)``
over a handful of features built from simple case and site columns (:data:`FEATURES`). Its coefficients live in
a JSON file (the packaged ``coefficients.json`` holds illustrative defaults; ``rdn match fit`` writes one fitted
on past placements). ``floor`` is a small constant so that a case with no working-age adult still has a
positive score everywhere and gets placed when there is room.

A feature whose input is unknown (its column is missing, or the cell is empty) contributes nothing: the case
is scored as if at the feature's center. Every scorer follows :class:`Scorer`; ``rdn match solve`` can also
take scores from a file (``rdn.matching.files``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

DEFAULT_COEFFICIENTS = "coefficients.json"
LIST_SPLIT = re.compile(r"\s*[;|,]\s*")
EDUCATION_WORDS = {"none": 0, "primary": 1, "secondary": 2, "vocational": 2, "university": 3, "tertiary": 3}
YES = {"1", "yes", "y", "true", "t"}
NO = {"0", "no", "n", "false", "f"}
SETTINGS = {"urban", "rural"}  # "any" or empty: no preference


class InputError(ValueError):
    """A problem with an input file, naming the file and, where there is one, the row and column.

    Rows are numbered as a spreadsheet shows them (the header is row 1); in a Parquet file, from 1."""

    def __init__(self, file: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.file, self.message, self.row, self.column = file, message, row, column
        where = [file] + ([f"row {row}"] if row is not None else []) + ([f"column {column}"] if column else [])
        super().__init__(f"{', '.join(where)}: {message}")


class CoefficientsError(ValueError):
    """A coefficients file that cannot be used (the message names the file and the entry)."""


# Case and site tables ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseTable:
    """What the scorer knows about each case, in file order. Unknown values: NaN, "" or an empty set."""

    ids: list[str]
    people: NDArray[np.float64]
    adults: NDArray[np.float64]  # working-age adults (1 when the column is missing)
    nationality: list[str]  # ISO 3166-1 alpha-2, upper case
    languages: list[frozenset[str]]  # lower case codes
    education: NDArray[np.float64]  # highest level among the adults: 0 none, 1 primary, 2 secondary, 3 university
    setting: list[str]  # preferred setting: "urban", "rural" or "" (none)
    medical: NDArray[np.float64]  # a serious medical condition: 1, 0, NaN unknown
    columns: frozenset[str] = frozenset()  # the columns the rows had

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, str]], *, file: str = "cases.csv",
                  row_numbers: Sequence[int] | None = None, prefix: str = "",
                  require_id: bool = True) -> CaseTable:
        """From CSV rows (dicts of strings, lower-case headers). Columns, all optional but ``case_id``:
        ``people``, ``adults``, ``nationality``, ``languages`` (separated by ``;``), ``education`` (0-3, or
        none/primary/secondary/vocational/university), ``setting`` (urban, rural, any), ``medical`` (yes/no;
        without it, ``need_medical`` > 0 means yes). ``prefix`` is prepended to every column name but ``case_id``."""
        cells = _Cells(rows, file, row_numbers, prefix)
        n = len(rows)
        ids = cells.ids("case_id", required=require_id)
        people = cells.numbers("people", default=1.0, integer=True, low=0)
        adults = cells.numbers("adults", default=1.0, integer=True, low=0)
        nationality = [t.upper() for t in cells.texts("nationality")]
        languages = [frozenset(s.lower() for s in items) for items in cells.lists("languages")]
        education = cells.levels("education", EDUCATION_WORDS)
        setting = cells.settings("setting")
        if cells.has("medical"):
            medical = cells.flags("medical")
        elif cells.has("need_medical"):
            medical = (cells.numbers("need_medical", default=0.0, low=0) > 0).astype(float)
        else:
            medical = np.full(n, np.nan)
        return cls(ids, people, adults, nationality, languages, education, setting, medical, cells.columns)


@dataclass(frozen=True)
class SiteTable:
    """What the scorer knows about each site, in file order."""

    ids: list[str]
    country: list[str]
    languages: list[frozenset[str]]  # languages served (interpreters, caseworkers, classes)
    communities: list[frozenset[str]]  # nationalities with an established community there
    unemployment: NDArray[np.float64]  # local unemployment rate, percent
    demand: NDArray[np.float64]  # education level local jobs mostly ask for, 0-3
    setting: list[str]  # "urban", "rural" or ""
    medical_care: NDArray[np.float64]  # specialised medical care nearby: 1, 0, NaN unknown
    columns: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, str]], *, file: str = "sites.csv",
                  row_numbers: Sequence[int] | None = None, prefix: str = "",
                  require_id: bool = True, unique_ids: bool = True) -> SiteTable:
        """From CSV rows. Columns, all optional but ``site_id``: ``country``, ``languages``, ``communities``
        (nationalities, separated by ``;``), ``unemployment_rate`` (percent), ``labour_demand`` (0-3),
        ``setting`` (urban, rural), ``medical_care`` (yes/no). ``prefix`` is prepended to every column name but
        ``site_id``; ``unique_ids=False`` lets a site appear on several rows (past placements)."""
        cells = _Cells(rows, file, row_numbers, prefix)
        ids = cells.ids("site_id", required=require_id, unique=unique_ids)
        country = [t.upper() for t in cells.texts("country")]
        languages = [frozenset(s.lower() for s in items) for items in cells.lists("languages")]
        communities = [frozenset(s.upper() for s in items) for items in cells.lists("communities")]
        unemployment = cells.numbers("unemployment_rate", default=math.nan, low=0, high=100, percent=True)
        demand = cells.levels("labour_demand", EDUCATION_WORDS)
        setting = cells.settings("setting")
        medical_care = cells.flags("medical_care")
        return cls(ids, country, languages, communities, unemployment, demand, setting, medical_care,
                   cells.columns)


class _Cells:
    """Column readers over CSV rows that name the file, row and column of a bad cell."""

    def __init__(self, rows: Sequence[Mapping[str, str]], file: str, row_numbers: Sequence[int] | None,
                 prefix: str) -> None:
        self.rows, self.file, self.prefix = rows, file, prefix
        self.numbers_of = list(row_numbers) if row_numbers is not None else [k + 2 for k in range(len(rows))]
        self.columns = frozenset(c for row in rows[:1] for c in row)

    def has(self, name: str) -> bool:
        return self.prefix + name in self.columns

    def error(self, k: int, name: str, message: str) -> InputError:
        return InputError(self.file, message, row=self.numbers_of[k], column=self.prefix + name)

    def texts(self, name: str) -> list[str]:
        column = self.prefix + name
        if column not in self.columns:
            return [""] * len(self.rows)
        return [(row.get(column) or "").strip() for row in self.rows]

    def ids(self, name: str, *, required: bool, unique: bool = True) -> list[str]:
        """The id column (never prefixed): non-empty and, if ``unique``, each value once."""
        if not self.rows:
            return []
        if name not in self.columns:
            if required:
                raise InputError(self.file, f"the column {name} is missing")
            return [str(k + 1) for k in range(len(self.rows))]
        out = [(row.get(name) or "").strip() for row in self.rows]
        seen: dict[str, int] = {}
        for k, value in enumerate(out):
            if not value:
                raise InputError(self.file, "is empty", row=self.numbers_of[k], column=name)
            if unique and value in seen:
                raise InputError(self.file, f"{value!r} appears twice (also on row {self.numbers_of[seen[value]]})",
                                 row=self.numbers_of[k], column=name)
            seen.setdefault(value, k)
        return out

    def lists(self, name: str) -> list[list[str]]:
        return [[s for s in LIST_SPLIT.split(text) if s] for text in self.texts(name)]

    def numbers(self, name: str, *, default: float, integer: bool = False, low: float | None = None,
                high: float | None = None, percent: bool = False) -> NDArray[np.float64]:
        out = np.full(len(self.rows), default, dtype=float)
        for k, text in enumerate(self.texts(name)):
            if text:
                out[k] = parse_number(text, lambda message, k=k: self.error(k, name, message), integer=integer,
                                      low=low, high=high, percent=percent)
        return out

    def levels(self, name: str, words: Mapping[str, int]) -> NDArray[np.float64]:
        out = np.full(len(self.rows), np.nan)
        for k, text in enumerate(self.texts(name)):
            value = text.lower()
            if not value or value == "unknown":
                continue
            if value in words:
                out[k] = words[value]
            elif value in {"0", "1", "2", "3"}:
                out[k] = int(value)
            else:
                raise self.error(k, name, f"{text!r} is not a level: 0-3 or {', '.join(words)}")
        return out

    def flags(self, name: str) -> NDArray[np.float64]:
        out = np.full(len(self.rows), np.nan)
        for k, text in enumerate(self.texts(name)):
            value = text.lower()
            if value in YES:
                out[k] = 1.0
            elif value in NO:
                out[k] = 0.0
            elif value and value != "unknown":
                raise self.error(k, name, f"{text!r} is not yes or no")
        return out

    def settings(self, name: str) -> list[str]:
        out = []
        for k, text in enumerate(self.texts(name)):
            value = text.lower()
            if value in ("", "any", "unknown"):
                value = ""
            elif value not in SETTINGS:
                raise self.error(k, name, f"{text!r} is not urban, rural or any")
            out.append(value)
        return out


def parse_number(text: str, error, *, integer: bool = False, low: float | None = None,  # type: ignore[no-untyped-def]
                 high: float | None = None, percent: bool = False) -> float:
    """A number from a cell; ``error(message)`` builds the exception to raise."""
    raw = text.strip()
    if percent and raw.endswith("%"):
        raw = raw[:-1].strip()
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise error(f"{text!r} is not a finite number")
    if integer and value != int(value):
        raise error(f"{text!r} is not a whole number")
    if low is not None and value < low:
        raise error(f"{text} is below {low:g}")
    if high is not None and value > high:
        raise error(f"{text} is above {high:g}")
    return value


# Features ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # what an officer reads
    description: str
    binary: bool  # yes/no (center 0) rather than a level


FEATURES: dict[str, Feature] = {f.name: f for f in (
    Feature("language_match", "Speaks a language the site serves",
            "1 if an adult of the case speaks one of the languages the site's services work in (cases.languages "
            "against sites.languages), else 0", True),
    Feature("community", "Same-nationality community at the site",
            "1 if the site has an established community of the case's nationality (cases.nationality in "
            "sites.communities), else 0", True),
    Feature("unemployment_rate", "Local unemployment rate (%)",
            "the site's local unemployment rate in percent (sites.unemployment_rate)", False),
    Feature("education", "Education level (0-3)",
            "the highest education level among the case's adults: 0 none, 1 primary, 2 secondary or vocational, "
            "3 university (cases.education)", False),
    Feature("skills_gap", "Gap between education and local job demand",
            "|cases.education - sites.labour_demand|: how far the case's education is from the level local "
            "jobs mostly ask for (0-3)", False),
    Feature("setting_match", "Urban/rural preference met",
            "1 if the case's preferred setting (urban or rural) is the site's, else 0 (cases.setting, "
            "sites.setting)", True),
    Feature("medical_care_missing", "Medical condition without specialised care nearby",
            "1 if the case has a serious medical condition and the site has no specialised medical care nearby "
            "(cases.medical, sites.medical_care), else 0", True),
)}


class Term(NamedTuple):
    """One named contribution to a score.

    ``scale`` "logit": the terms on this scale add up to the log-odds of employment; "score": the terms on
    this scale add up to the score (expected adults employed, plus the floor). ``value`` is the feature's
    value (NaN: unknown)."""

    name: str
    contribution: float
    value: float
    label: str
    scale: str

    def text(self) -> str:
        """One line an officer can read: "Speaks a language the site serves: yes (+0.50)"."""
        if self.scale == "score":
            return f"{self.label}: {self.contribution:.2f}"
        if self.name == "intercept":
            return f"{self.label}: {self.contribution:+.2f}"
        feature = FEATURES.get(self.name)
        if math.isnan(self.value):
            shown = "unknown"
        elif feature is not None and feature.binary:
            shown = "yes" if self.value >= 0.5 else "no"
        else:
            shown = f"{self.value:g}"
        return f"{self.label}: {shown} ({self.contribution:+.2f})"


Pair = tuple[NDArray[np.int64], NDArray[np.int64]] | None


def _pairwise(case: NDArray[np.float64], site: NDArray[np.float64], pairs: Pair
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Case and site columns shaped to combine: (cases, 1) and (1, sites), or (pairs,) and (pairs,)."""
    if pairs is None:
        return case[:, None], site[None, :]
    return case[pairs[0]], site[pairs[1]]


def _incidence(sets: Sequence[frozenset[str]], vocabulary: Mapping[str, int]) -> NDArray[np.float32]:
    m = np.zeros((len(sets), max(1, len(vocabulary))), dtype=np.float32)
    rows = [k for k, s in enumerate(sets) for _ in s]
    cols = [vocabulary[v] for s in sets for v in s]
    m[rows, cols] = 1.0
    return m


def _set_match(case_sets: Sequence[frozenset[str]], site_sets: Sequence[frozenset[str]], pairs: Pair
               ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """1 where the case's set meets the site's, else 0; known where neither set is empty."""
    vocabulary = {v: n for n, v in enumerate(sorted(set().union(*case_sets, *site_sets)))}
    case_m, site_m = _incidence(case_sets, vocabulary), _incidence(site_sets, vocabulary)
    x = (case_m @ site_m.T if pairs is None else (case_m[pairs[0]] * site_m[pairs[1]]).sum(axis=1)) > 0
    a, b = _pairwise(np.array([bool(s) for s in case_sets]), np.array([bool(s) for s in site_sets]), pairs)
    return x.astype(float), a & b


def _code(values: Sequence[str], vocabulary: Sequence[str]) -> NDArray[np.float64]:
    index = {v: n for n, v in enumerate(vocabulary)}
    return np.array([index[v] if v else np.nan for v in values], dtype=float)


def _features(cases: CaseTable, sites: SiteTable, pairs: Pair
              ) -> dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]]:
    """Each feature as (value, known), both broadcasting to (cases, sites) (or (pairs,)); a value is 0 where it
    is unknown, so that a feature centered at 0 needs no mask."""
    out = {}
    out["language_match"] = _set_match(cases.languages, sites.languages, pairs)
    nationality = [frozenset([n]) if n else frozenset() for n in cases.nationality]
    out["community"] = _set_match(nationality, sites.communities, pairs)
    for name, values, side in (("unemployment_rate", sites.unemployment, "site"),
                               ("education", cases.education, "case")):
        if pairs is not None:
            v = values[pairs[1] if side == "site" else pairs[0]]
        else:
            v = values[None, :] if side == "site" else values[:, None]
        known = ~np.isnan(v)
        out[name] = (np.where(known, v, 0.0), known)
    a, b = _pairwise(cases.education, sites.demand, pairs)
    gap = np.abs(a - b)
    known = ~np.isnan(gap)
    out["skills_gap"] = (np.nan_to_num(gap, copy=False, nan=0.0), known)
    levels = ["urban", "rural"]
    a, b = _pairwise(_code(cases.setting, levels), _code(sites.setting, levels), pairs)
    out["setting_match"] = ((a == b).astype(float), ~np.isnan(a) & ~np.isnan(b))
    a, b = _pairwise(cases.medical, sites.medical_care, pairs)
    # Known as soon as the case has no condition; otherwise the site's side is needed too.
    out["medical_care_missing"] = (((a == 1) & (b == 0)).astype(float), (a == 0) | (~np.isnan(a) & ~np.isnan(b)))
    return out


def feature_values(cases: CaseTable, sites: SiteTable, ci: NDArray[np.int64] | None = None,
                   si: NDArray[np.int64] | None = None) -> dict[str, NDArray[np.float64]]:
    """Each feature's values (NaN: unknown): over every pair as arrays that broadcast to (cases, sites), or, with
    ``ci`` and ``si``, for the pairs (ci[k], si[k]) as (pairs,) arrays."""
    pairs = (np.asarray(ci), np.asarray(si)) if ci is not None and si is not None else None
    return {name: np.where(known, x, np.nan) for name, (x, known) in _features(cases, sites, pairs).items()}


# Coefficients --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficient:
    value: float
    center: float = 0.0


@dataclass(frozen=True)
class Coefficients:
    intercept: float
    features: dict[str, Coefficient]
    floor: float = 0.01
    source: str = ""
    fit: dict[str, object] = field(default_factory=dict)  # how the file was fitted (rdn match fit)

    def to_json(self) -> dict[str, object]:
        return {
            "model": "logistic",
            "outcome": "an adult of working age employed 90 days after arrival; the score is the case's "
                       "expected number of employed adults plus the floor",
            "source": self.source,
            "intercept": self.intercept,
            "floor": self.floor,
            "features": {name: {"coefficient": c.value, "center": c.center, "label": FEATURES[name].label,
                                "description": FEATURES[name].description}
                         for name, c in self.features.items()},
            **({"fit": self.fit} if self.fit else {}),
        }


def default_coefficients_path() -> Path:
    return Path(str(resources.files("rdn.matching").joinpath(DEFAULT_COEFFICIENTS)))


def load_coefficients(path: str | Path | None = None) -> Coefficients:
    """Read a coefficients file (default: the packaged illustrative one); a bad one raises
    :class:`CoefficientsError` naming the file and the entry."""
    path = Path(path) if path is not None else default_coefficients_path()
    name = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CoefficientsError(f"{name}: cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise CoefficientsError(f"{name}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise CoefficientsError(f"{name}: expected a JSON object")
    if data.get("model", "logistic") != "logistic":
        raise CoefficientsError(f"{name}: model {data.get('model')!r} is not known (only logistic)")

    def number(value: object, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CoefficientsError(f"{name}: {where} must be a finite number, not {value!r}")
        return float(value)

    features = data.get("features", {})
    if not isinstance(features, dict):
        raise CoefficientsError(f"{name}: features must be an object")
    parsed = {}
    for feature, entry in features.items():
        if feature not in FEATURES:
            raise CoefficientsError(f"{name}: features.{feature} is not a feature this scorer knows "
                                    f"({', '.join(FEATURES)})")
        entry = entry if isinstance(entry, dict) else {"coefficient": entry}
        parsed[feature] = Coefficient(number(entry.get("coefficient"), f"features.{feature}.coefficient"),
                                      number(entry.get("center", 0.0), f"features.{feature}.center"))
    floor = number(data.get("floor", 0.01), "floor")
    if floor < 0:
        raise CoefficientsError(f"{name}: floor cannot be negative")
    return Coefficients(number(data.get("intercept"), "intercept"), parsed, floor, str(data.get("source", "")),
                        data.get("fit") if isinstance(data.get("fit"), dict) else {})


def save_coefficients(coefficients: Coefficients, path: str | Path) -> None:
    Path(path).write_text(json.dumps(coefficients.to_json(), indent=2) + "\n", encoding="utf-8")


# Scorers -------------------------------------------------------------------------------------------------------


class Scorer(Protocol):
    """Anything that predicts the outcome of every placement, and explains one."""

    def scores(self, cases: CaseTable, sites: SiteTable) -> NDArray[np.float64]:
        """(cases, sites): the predicted outcome of placing each case at each site (>= 0)."""
        ...

    def breakdown(self, cases: CaseTable, sites: SiteTable, i: int, j: int) -> list[Term]:
        """Named contributions that explain ``scores(cases, sites)[i, j]``."""
        ...


def sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without overflow


@dataclass(frozen=True)
class LogisticScorer:
    """``floor + adults * sigmoid(intercept + sum coef * (x - center))``; unknown features contribute 0."""

    coefficients: Coefficients

    def logits(self, cases: CaseTable, sites: SiteTable) -> NDArray[np.float64]:
        out = np.full((len(cases), len(sites)), self.coefficients.intercept)
        for feature, (x, known) in _features(cases, sites, None).items():
            c = self.coefficients.features.get(feature)
            if c is None or c.value == 0:
                continue
            if c.center == 0:  # x is 0 where unknown: no mask needed
                out += c.value * x
            else:
                out += np.where(known, c.value * (x - c.center), 0.0)
        return out

    def scores(self, cases: CaseTable, sites: SiteTable) -> NDArray[np.float64]:
        p = sigmoid(self.logits(cases, sites))
        p *= cases.adults[:, None]
        p += self.coefficients.floor
        return p

    def breakdown(self, cases: CaseTable, sites: SiteTable, i: int, j: int) -> list[Term]:
        ci, si = np.array([i]), np.array([j])
        values = feature_values(cases, sites, ci, si)
        terms = [Term("intercept", self.coefficients.intercept, 1.0, "Baseline (a case at every feature's center)",
                      "logit")]
        for feature, spec in FEATURES.items():
            x = float(values[feature][0])
            c = self.coefficients.features.get(feature, Coefficient(0.0))
            contribution = 0.0 if math.isnan(x) else c.value * (x - c.center)
            terms.append(Term(feature, contribution, x, spec.label, "logit"))
        p = float(sigmoid(np.array(sum(t.contribution for t in terms))))
        adults = float(cases.adults[i])
        terms.append(Term("employed_adults", adults * p, adults,
                          f"Expected adults employed ({adults:g} working-age adults x {p:.0%} chance each)", "score"))
        terms.append(Term("floor", self.coefficients.floor, self.coefficients.floor,
                          "Floor (every case is worth placing)", "score"))
        return terms


def load_scorer(path: str | Path | None = None) -> LogisticScorer:
    """The logistic scorer with the coefficients in ``path`` (default: the packaged illustrative defaults)."""
    return LogisticScorer(load_coefficients(path))


def explain_terms(terms: Sequence[Term]) -> list[str]:
    """The breakdown as lines an officer can read, largest effects first, then the score."""
    logit = sorted((t for t in terms if t.scale == "logit" and t.name != "intercept"),
                   key=lambda t: -abs(t.contribution))
    rest = [t for t in terms if t.scale == "logit" and t.name == "intercept"]
    return [t.text() for t in rest + logit] + [t.text() for t in terms if t.scale == "score"] + [
        f"Score: {sum(t.contribution for t in terms if t.scale == 'score'):.2f}"]
