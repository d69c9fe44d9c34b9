"""Placement problems from files, and the Python API for notebooks: ``rdn match solve`` is built on it.

Formats (headers are trimmed and case-insensitive; rows are numbered as a spreadsheet shows them, the header
being row 1):

* **cases.csv**: ``case_id``, ``people``; optional ``need_<resource>`` columns (an empty cell is 0), ``priority``
  (emergency, urgent, normal: :data:`PRIORITY_WEIGHTS`; empty is normal), ``excluded_countries`` (ISO codes
  separated by ``;``: no site in those countries), ``tie_site`` (a family tie: only that site). Other columns
  (``adults``, ``nationality``, ``languages``, ``education``, ...) feed the scorer (:mod:`rdn.matching.scoring`).
* **sites.csv**: ``site_id``, ``country``, ``capacity_people`` and ``capacity_<resource>`` for each resource a
  case needs; other columns feed the scorer. The resources are ``people`` and every ``need_``/``capacity_``
  name; a need without a capacity (or the reverse) is an error naming the column.
* **scores** (optional; without them the scorer computes them): a dense ``.npy`` matrix (cases x sites, in the
  files' order; a negative or NaN entry forbids the pair) or a long ``.csv`` / ``.parquet`` file with
  ``case_id, site_id, score`` (a pair not in the file is forbidden).

Outputs: ``assignments.csv`` (``case_id, site_id, score``; an empty site for an unplaced case) and a JSON
report (:func:`report`). A bad input raises :class:`InputError` naming the file, row and column, and nothing is
written: the outputs go to temporary files renamed at the very end.

In a notebook::

    from rdn.matching import files
    problem, case_ids, site_ids = files.read_problem("cases.csv", "sites.csv")   # numpy arrays inside
    result = files.solve_files("cases.csv", "sites.csv", out="assignments.csv", report="report.json")
    result.report["gap"], files.explain_case(result.inputs, result.solution, "c00042").sentences()
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rdn.matching.optimizer import Problem, Solution, solve
from rdn.matching.scoring import LIST_SPLIT, CaseTable, InputError, Scorer, SiteTable, load_scorer, parse_number

if TYPE_CHECKING:
    from rdn.matching.explain import Context, Explanation

__all__ = ["PRIORITY_WEIGHTS", "CsvTable", "InputError", "Inputs", "Result", "explain_case", "inputs_from_rows",
           "load_inputs", "read_csv", "read_problem", "read_scores", "report", "solve_files", "write_outputs"]

PRIORITY_WEIGHTS: dict[str, float] = {"emergency": 3.0, "urgent": 1.5, "normal": 1.0}
STAGES = ("reading", "scoring", "solving", "writing")
Progress = Callable[[str], None]
ScoresReader = Callable[[list[str], list[str]], NDArray[np.float64]]


@dataclass(frozen=True)
class CsvTable:
    file: str  # the name errors use
    columns: list[str]  # lower case, trimmed
    rows: list[dict[str, str]]
    numbers: list[int]  # each row's number as a spreadsheet shows it (header: 1)


def read_csv(path: str | Path, *, name: str | None = None) -> CsvTable:
    """A CSV file's rows as dicts of strings (headers trimmed, lower case, spaces as underscores)."""
    path = Path(path)
    file = name or path.name
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            records = list(enumerate(csv.reader(fh), start=1))
    except OSError as exc:
        raise InputError(file, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(file, "is not UTF-8 text") from None
    except csv.Error as exc:
        raise InputError(file, f"is not valid CSV ({exc})") from None
    records = [(n, r) for n, r in records if any(cell.strip() for cell in r)]
    if not records:
        raise InputError(file, "is empty (no header row)")
    header_row, header = records[0]
    columns = [c.strip().lower().replace(" ", "_") for c in header]
    for k, column in enumerate(columns):
        if not column:
            raise InputError(file, f"the header's cell {k + 1} is empty", row=header_row)
        if columns.index(column) != k:
            raise InputError(file, f"the column {column} appears twice", row=header_row)
    rows, numbers = [], []
    for n, record in records[1:]:
        if len(record) > len(columns) and any(cell.strip() for cell in record[len(columns):]):
            raise InputError(file, f"{len(record)} cells, but the header has {len(columns)} columns", row=n)
        rows.append({c: (record[k] if k < len(record) else "") for k, c in enumerate(columns)})
        numbers.append(n)
    return CsvTable(file, columns, rows, numbers)


def _rows(table: CsvTable | Sequence[Mapping[str, Any]], file: str) -> CsvTable:
    if isinstance(table, CsvTable):
        return table
    rows = [{str(k).strip().lower(): "" if v is None else str(v) for k, v in row.items()} for row in table]
    columns = list(dict.fromkeys(c for row in rows for c in row))
    rows = [{c: row.get(c, "") for c in columns} for row in rows]
    return CsvTable(file, columns, rows, [k + 2 for k in range(len(rows))])


@dataclass(frozen=True)
class Inputs:
    """A placement problem with everything needed to write and explain its solution."""

    problem: Problem
    case_ids: list[str]
    site_ids: list[str]
    site_countries: list[str]
    resources: list[str]  # the columns of problem.needs and problem.capacity; "people" first
    priorities: list[str]
    excluded: list[frozenset[str]]  # per case: the countries it excludes
    ties: NDArray[np.int64]  # per case: the site of its family tie, -1 none
    cases: CaseTable
    sites: SiteTable
    scorer: Scorer | None  # what computed the scores; None when they came from a file
    scores_source: str  # "scorer" or the scores file's name
    files: tuple[str, str]  # the names of the cases and sites files


def inputs_from_rows(case_rows: CsvTable | Sequence[Mapping[str, Any]],
                     site_rows: CsvTable | Sequence[Mapping[str, Any]], *,
                     scores: NDArray[np.float64] | ScoresReader | None = None, scorer: Scorer | None = None,
                     cases_file: str = "cases.csv", sites_file: str = "sites.csv", scores_source: str = "scores",
                     progress: Progress | None = None) -> Inputs:
    """The problem from rows (CSV rows, or dicts built from the database): the same rules as the files.
    ``scores``: a dense (cases, sites) matrix (negative or NaN: forbidden), or a function of the case and site
    ids that returns one (called once the rows are checked); without it, ``scorer`` (default:
    :func:`rdn.matching.scoring.load_scorer`) computes them."""
    cases_t, sites_t = _rows(case_rows, cases_file), _rows(site_rows, sites_file)
    if not cases_t.rows:
        raise InputError(cases_t.file, "has no cases")
    if not sites_t.rows:
        raise InputError(sites_t.file, "has no sites")
    for table, required in ((cases_t, ("case_id", "people")), (sites_t, ("site_id", "country", "capacity_people"))):
        for column in required:
            if column not in table.columns:
                raise InputError(table.file, f"the column {column} is missing")
    cases = CaseTable.from_rows(cases_t.rows, file=cases_t.file, row_numbers=cases_t.numbers)
    sites = SiteTable.from_rows(sites_t.rows, file=sites_t.file, row_numbers=sites_t.numbers)
    resources = _resources(cases_t, sites_t)
    needs = np.zeros((len(cases), len(resources)))
    capacity = np.zeros((len(sites), len(resources)))
    for r, resource in enumerate(resources):
        column = "people" if resource == "people" else f"need_{resource}"
        for k, (row, n) in enumerate(zip(cases_t.rows, cases_t.numbers, strict=True)):
            text = row[column].strip()
            if not text:
                if resource == "people":
                    raise InputError(cases_t.file, "is empty", row=n, column=column)
                continue
            needs[k, r] = _number(text, cases_t.file, n, column, integer=resource == "people")
        column = f"capacity_{resource}"
        for k, (row, n) in enumerate(zip(sites_t.rows, sites_t.numbers, strict=True)):
            text = row[column].strip()
            if not text:
                raise InputError(sites_t.file, "is empty (write 0 for none)", row=n, column=column)
            capacity[k, r] = _number(text, sites_t.file, n, column)
    if (needs[:, 0] < 1).any():
        k = int(np.argmax(needs[:, 0] < 1))
        raise InputError(cases_t.file, "a case has at least 1 person", row=cases_t.numbers[k], column="people")
    for k, country in enumerate(sites.country):
        if not country:
            raise InputError(sites_t.file, "is empty", row=sites_t.numbers[k], column="country")
    priorities, weights = [], np.ones(len(cases))
    for k, row in enumerate(cases_t.rows):
        priority = (row.get("priority") or "").strip().lower() or "normal"
        if priority not in PRIORITY_WEIGHTS:
            raise InputError(cases_t.file, f"{row['priority']!r} is not a priority: "
                                           f"{', '.join(PRIORITY_WEIGHTS)}", row=cases_t.numbers[k],
                             column="priority")
        priorities.append(priority)
        weights[k] = PRIORITY_WEIGHTS[priority]
    site_index = {s: j for j, s in enumerate(sites.ids)}
    countries = np.array(sites.country)
    allowed = np.ones((len(cases), len(sites)), dtype=bool)
    excluded: list[frozenset[str]] = []
    ties = np.full(len(cases), -1, dtype=np.int64)
    for k, row in enumerate(cases_t.rows):
        codes = frozenset(c.upper() for c in LIST_SPLIT.split((row.get("excluded_countries") or "").strip()) if c)
        excluded.append(codes)
        if codes:
            allowed[k, np.isin(countries, list(codes))] = False
        tie = (row.get("tie_site") or "").strip()
        if tie:
            if tie not in site_index:
                raise InputError(cases_t.file, f"{tie!r} is not a site_id of {sites_t.file}", row=cases_t.numbers[k],
                                 column="tie_site")
            j = site_index[tie]
            if sites.country[j] in codes:
                raise InputError(cases_t.file, f"the tie site {tie} is in {sites.country[j]}, which the case "
                                               "excludes", row=cases_t.numbers[k], column="tie_site")
            ties[k] = j
            keep = allowed[k, j]
            allowed[k] = False
            allowed[k, j] = keep
    if progress:
        progress("scoring")
    source = "scorer"
    if scores is None:
        scorer = scorer or load_scorer()
        matrix = np.asarray(scorer.scores(cases, sites), dtype=float)
    else:
        matrix = np.asarray(scores(cases.ids, sites.ids) if callable(scores) else scores, dtype=float)
        if matrix.shape != (len(cases), len(sites)):
            raise InputError(scores_source, f"shape {matrix.shape}, expected {(len(cases), len(sites))} "
                                            "(cases x sites)")
        scorer, source = None, scores_source
    matrix, allowed = _forbid(matrix, allowed, source)
    problem = Problem(matrix, allowed, needs, capacity, weights)
    return Inputs(problem, cases.ids, sites.ids, sites.country, resources, priorities, excluded, ties, cases,
                  sites, scorer, source, (cases_t.file, sites_t.file))


def _number(text: str, file: str, row: int, column: str, *, integer: bool = False) -> float:
    return parse_number(text, lambda message: InputError(file, message, row=row, column=column), integer=integer,
                        low=0)


def _resources(cases: CsvTable, sites: CsvTable) -> list[str]:
    needs = [c.removeprefix("need_") for c in cases.columns if c.startswith("need_")]
    capacities = [c.removeprefix("capacity_") for c in sites.columns if c.startswith("capacity_")]
    if "people" in needs:
        raise InputError(cases.file, "a case's people are its people column: remove need_people",
                         column="need_people")
    for resource in needs:
        if resource not in capacities:
            raise InputError(cases.file, f"a need with no capacity: {sites.file} has no column capacity_{resource}",
                             column=f"need_{resource}")
    for resource in capacities:
        if resource != "people" and resource not in needs:
            raise InputError(sites.file, f"a capacity no case needs: {cases.file} has no column need_{resource}",
                             column=f"capacity_{resource}")
    return ["people"] + [r for r in capacities if r != "people"]


def _forbid(matrix: NDArray[np.float64], allowed: NDArray[np.bool_], file: str
            ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Negative or NaN scores forbid their pair; an infinite one is an error."""
    if np.isposinf(matrix).any():
        i, j = np.argwhere(np.isposinf(matrix))[0]
        raise InputError(file, f"the score of case {i + 1} at site {j + 1} is infinite")
    bad = np.isnan(matrix) | (matrix < 0)
    return np.where(bad, 0.0, matrix), allowed & ~bad


# Score files ---------------------------------------------------------------------------------------------------


def read_scores(path: str | Path, case_ids: Sequence[str], site_ids: Sequence[str]) -> NDArray[np.float64]:
    """A dense (cases, sites) matrix from a score file; NaN where a long file has no score for the pair."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(path.name, "cannot be read (no such file)")
    if suffix == ".npy":
        return _dense_scores(path, len(case_ids), len(site_ids))
    if suffix in (".csv", ".parquet"):
        return _long_scores(path, case_ids, site_ids)
    raise InputError(path.name, "scores must be a .npy matrix or a .csv or .parquet file of case_id,site_id,score")


def _dense_scores(path: Path, cases: int, sites: int) -> NDArray[np.float64]:
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(path.name, f"is not a .npy matrix ({exc})") from None
    if matrix.dtype.kind not in "fiub":
        raise InputError(path.name, f"holds {matrix.dtype}, not numbers")
    if matrix.shape != (cases, sites):
        raise InputError(path.name, f"shape {matrix.shape}, expected {(cases, sites)}: one row per case and one "
                                    "column per site, in the order of the cases and sites files")
    return matrix.astype(float)


def _long_scores(path: Path, case_ids: Sequence[str], site_ids: Sequence[str]) -> NDArray[np.float64]:
    import pyarrow as pa
    import pyarrow.compute as pc

    file = path.name
    first_row = 2 if path.suffix.lower() == ".csv" else 1
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pv

            with open(path, newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh), [])
            names = [h.strip().lower().replace(" ", "_") for h in header]
            table = pv.read_csv(path, read_options=pv.ReadOptions(column_names=names, skip_rows=1),
                                parse_options=pv.ParseOptions(ignore_empty_lines=False),
                                convert_options=pv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                                  strings_can_be_null=False))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            table = table.rename_columns([n.strip().lower() for n in table.column_names])
    except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise InputError(file, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    for column in ("case_id", "site_id", "score"):
        if column not in table.column_names:
            raise InputError(file, f"the column {column} is missing (expected case_id, site_id, score)")
    rows = np.arange(len(table)) + first_row  # each record's row number, kept through dropping blank lines
    if first_row == 2:
        blank = pc.and_(pc.and_(pc.equal(table["case_id"], ""), pc.equal(table["site_id"], "")),
                        pc.equal(table["score"], ""))
        if pc.any(blank).as_py():
            keep = pc.invert(blank)
            rows = rows[keep.to_numpy(zero_copy_only=False)]
            table = table.filter(keep)

    def positions(column: str, ids: Sequence[str], what: str) -> NDArray[np.int64]:
        values = pc.utf8_trim_whitespace(pc.cast(table[column], pa.string()))
        index = pc.index_in(values, value_set=pa.array(list(ids), pa.string()))
        missing = index.is_null().to_numpy(zero_copy_only=False)
        if missing.any():
            k = int(np.argmax(missing))
            value = values[k].as_py()
            message = "is empty" if not value else f"{value!r} is not a {what} of the {what.split('_')[0]}s file"
            raise InputError(file, message, row=int(rows[k]), column=column)
        return index.to_numpy(zero_copy_only=False).astype(np.int64)

    ci = positions("case_id", case_ids, "case_id")
    si = positions("site_id", site_ids, "site_id")
    column = table["score"]
    try:
        score = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, ValueError):
        texts = column.to_pylist()
        for k, text in enumerate(texts):
            try:
                float(text)
            except (TypeError, ValueError):
                shown = "is empty" if text in (None, "") else f"{text!r} is not a number"
                raise InputError(file, shown, row=int(rows[k]), column="score") from None
        raise InputError(file, "scores that are not numbers", column="score") from None
    nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else np.zeros(len(ci), bool)
    if nulls.any():
        raise InputError(file, "is empty", row=int(rows[np.argmax(nulls)]), column="score")
    if np.isposinf(score).any():
        raise InputError(file, "is infinite", row=int(rows[np.argmax(np.isposinf(score))]), column="score")
    key = ci * len(site_ids) + si
    order = np.argsort(key, kind="stable")
    repeated = np.nonzero(key[order][1:] == key[order][:-1])[0]
    if len(repeated):
        first, second = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        raise InputError(file, f"case {case_ids[ci[second]]} at site {site_ids[si[second]]} appears twice (also on "
                               f"row {rows[first]})", row=int(rows[second]), column="site_id")
    matrix = np.full((len(case_ids), len(site_ids)), np.nan)
    matrix[ci, si] = score
    return matrix


# Reading and solving -------------------------------------------------------------------------------------------


def load_inputs(cases_csv: str | Path, sites_csv: str | Path, scores: str | Path | None = None, *,
                scorer: Scorer | None = None, progress: Progress | None = None) -> Inputs:
    """Read and check the files; compute the scores (or read them from ``scores``)."""
    if progress:
        progress("reading")
    cases_t, sites_t = read_csv(cases_csv), read_csv(sites_csv)
    reader: ScoresReader | None = None
    if scores is not None:
        path = Path(scores)
        if not path.is_file():  # before the (longer) work on the rows
            raise InputError(path.name, "cannot be read (no such file)")

        def reader(case_ids: list[str], site_ids: list[str]) -> NDArray[np.float64]:
            return read_scores(path, case_ids, site_ids)

    return inputs_from_rows(cases_t, sites_t, scores=reader, scorer=scorer, progress=progress,
                            scores_source=Path(scores).name if scores is not None else "scores")


def read_problem(cases_csv: str | Path, sites_csv: str | Path, scores: str | Path | None = None, *,
                 scorer: Scorer | None = None) -> tuple[Problem, list[str], list[str]]:
    """The optimizer's :class:`~rdn.matching.optimizer.Problem` (numpy arrays) from the files, with the case
    and site ids in the order of the arrays' rows and columns."""
    inputs = load_inputs(cases_csv, sites_csv, scores, scorer=scorer)
    return inputs.problem, inputs.case_ids, inputs.site_ids


def report(inputs: Inputs, solution: Solution) -> dict[str, Any]:
    """What ``report.json`` holds: the objective, the bound and the gap, counts, and the use of each site and
    country."""
    a = solution.assignment
    problem = inputs.problem
    placed = a >= 0
    used = np.zeros_like(problem.capacity)
    np.add.at(used, a[placed], problem.needs[placed])
    countries: dict[str, dict[str, Any]] = {}
    for country in inputs.site_countries:
        entry = countries.setdefault(country, {"sites": 0, "cases": 0, "people": 0})
        entry["sites"] += 1
    sites = {}
    for j, site in enumerate(inputs.site_ids):
        here = a == j
        entry = countries[inputs.site_countries[j]]
        entry["cases"] += int(here.sum())
        entry["people"] += int(problem.needs[here, 0].sum())
        sites[site] = {"country": inputs.site_countries[j], "cases": int(here.sum()),
                       "used": {r: _num(used[j, k]) for k, r in enumerate(inputs.resources)},
                       "capacity": {r: _num(problem.capacity[j, k]) for k, r in enumerate(inputs.resources)}}
    priorities = {p: {"cases": 0, "placed": 0} for p in PRIORITY_WEIGHTS}
    for i, p in enumerate(inputs.priorities):
        priorities[p]["cases"] += 1
        priorities[p]["placed"] += int(a[i] >= 0)
    return {
        "status": "optimal" if solution.method == "exact" else "feasible",
        "objective": solution.objective,
        "upper_bound": solution.bound,
        "gap": solution.gap,
        "seconds": round(solution.seconds, 4),
        "method": solution.method,
        "cases": len(a),
        "placed": int(placed.sum()),
        "unplaced": int((~placed).sum()),
        "people": {"placed": _num(problem.needs[placed, 0].sum()), "unplaced": _num(problem.needs[~placed, 0].sum())},
        "priorities": priorities,
        "resources": inputs.resources,
        "scores": inputs.scores_source,
        "inputs": {"cases": inputs.files[0], "sites": inputs.files[1]},
        "countries": countries,
        "sites": sites,
    }


def _num(x: float) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else x


def _score_text(x: float) -> str:
    return repr(round(float(x), 10)) if math.isfinite(x) else ""


def write_outputs(inputs: Inputs, solution: Solution, out: str | Path, report_path: str | Path,
                  summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write assignments.csv and report.json together: both to temporary files first, renamed at the end."""
    summary = summary if summary is not None else report(inputs, solution)
    targets = [Path(out), Path(report_path)]
    temps: list[Path] = []
    try:
        for target in targets:
            fd, name = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(Path(name))
        with open(temps[0], "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["case_id", "site_id", "score"])
            scores = inputs.problem.scores
            for i, case in enumerate(inputs.case_ids):
                j = int(solution.assignment[i])
                writer.writerow([case, inputs.site_ids[j], _score_text(scores[i, j])] if j >= 0 else [case, "", ""])
        temps[1].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        for temp, target in zip(temps, targets, strict=True):
            temp.replace(target)
    except BaseException:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    return summary


def check_outputs(out: str | Path, report_path: str | Path) -> None:
    """Fail before any work when an output cannot be written where asked."""
    for label, path in (("--out", Path(out)), ("--report", Path(report_path))):
        if not path.resolve().parent.is_dir():
            raise InputError(str(path), f"{label}: the folder {path.resolve().parent} does not exist")
        if path.is_dir():
            raise InputError(str(path), f"{label}: is a folder")
    if Path(out).resolve() == Path(report_path).resolve():
        raise InputError(str(out), "--out and --report are the same file")


@dataclass(frozen=True)
class Result:
    inputs: Inputs
    solution: Solution
    report: dict[str, Any]


def solve_files(cases_csv: str | Path, sites_csv: str | Path, *, out: str | Path | None = None,
                report_path: str | Path | None = None, scores: str | Path | None = None,
                scorer: Scorer | None = None, progress: Progress | None = None) -> Result:
    """Read, score, solve and (when ``out`` and ``report_path`` are given) write: ``rdn match solve`` in one
    call. Raises :class:`InputError` on bad input, before writing anything."""
    if (out is None) != (report_path is None):
        raise ValueError("give both out and report_path, or neither")
    if out is not None and report_path is not None:
        check_outputs(out, report_path)
    inputs = load_inputs(cases_csv, sites_csv, scores, scorer=scorer, progress=progress)
    if progress:
        progress("solving")
    solution = solve(inputs.problem)
    summary = report(inputs, solution)
    if out is not None and report_path is not None:
        if progress:
            progress("writing")
        write_outputs(inputs, solution, out, report_path, summary)
    return Result(inputs, solution, summary)


def explain_case(inputs: Inputs, solution: Solution, case: str | int, *, context: Context | None = None
                 ) -> Explanation:
    """Why case ``case`` (an id, or a row index) went where it went: :func:`rdn.matching.explain.explain` with
    the names, exclusions, tie and score breakdown the inputs know. Explaining many cases of one solution:
    pass ``context=rdn.matching.explain.prepare(inputs.problem, solution)``."""
    from rdn.matching.explain import explain

    i = case if isinstance(case, int) else inputs.case_ids.index(case)
    scorer = inputs.scorer

    def breakdown(i: int, j: int):  # type: ignore[no-untyped-def]
        assert scorer is not None
        return scorer.breakdown(inputs.cases, inputs.sites, i, j)

    return explain(inputs.problem, solution, i, site_labels=inputs.site_ids, resources=inputs.resources,
                   site_countries=inputs.site_countries, excluded_countries=inputs.excluded[i],
                   tie_site=int(inputs.ties[i]) if inputs.ties[i] >= 0 else None,
                   breakdown=breakdown if scorer is not None else None, case_label=inputs.case_ids[i],
                   context=context)
