"""``rdn match solve`` and ``rdn match fit`` end to end on small generated files: the assignments respect every
capacity, exclusion and tie; the report agrees with the assignment file; the three score formats give the same
assignment; every bad input exits with status 2, names the file, row and column, and writes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rdn.cli import app
from rdn.matching import files
from rdn.matching.files import PRIORITY_WEIGHTS
from rdn.matching.fit import random_case_rows, random_site_rows, synthetic_outcomes, write_csv
from rdn.matching.optimizer import violations
from rdn.matching.scoring import load_scorer

runner = CliRunner()
COUNTRIES = ["CA", "CA", "DE", "DE", "ES", "ES"]


def make_files(folder: Path, *, seed: int = 0, cases: int = 36) -> tuple[Path, Path]:
    """A tight little problem: 36 cases, 6 sites in 3 countries, people and medical slots; some cases exclude a
    country, two are tied to a site, priorities vary."""
    rng = np.random.default_rng(seed)
    case_rows = random_case_rows(rng, cases)
    site_rows = random_site_rows(rng, len(COUNTRIES))
    for k, row in enumerate(case_rows):
        row["need_medical"] = "1" if row["medical"] == "yes" else ""
        row["priority"] = ["normal", "normal", "urgent", "emergency"][k % 4]
        row["excluded_countries"] = {0: "DE", 3: "ca;ES"}.get(k % 7, "")
        row["tie_site"] = {5: "s002", 11: "s005"}.get(k, "")
    people = sum(int(r["people"]) for r in case_rows)
    for k, row in enumerate(site_rows):
        row["country"] = COUNTRIES[k]
        row["capacity_people"] = str(int(people * 0.75 / len(site_rows)))
        row["capacity_medical"] = str(k % 3)
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "cases.csv", case_rows)
    write_csv(folder / "sites.csv", site_rows)
    return folder / "cases.csv", folder / "sites.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def solve(folder: Path, *extra: str) -> tuple[object, Path, Path]:
    out, report = folder / "assignments.csv", folder / "report.json"
    result = runner.invoke(app, ["match", "solve", "--cases", str(folder / "cases.csv"), "--sites",
                                 str(folder / "sites.csv"), "--out", str(out), "--report", str(report), *extra])
    return result, out, report


def test_solve_respects_every_constraint_and_the_report_agrees(tmp_path: Path) -> None:
    make_files(tmp_path)
    result, out, report_path = solve(tmp_path)
    assert result.exit_code == 0, result.output
    assert "Placed" in result.stdout
    for stage in ("Reading the files", "Scoring", "Solving", "Writing"):
        assert stage in result.stderr
    cases = read_rows(tmp_path / "cases.csv")
    sites = {row["site_id"]: row for row in read_rows(tmp_path / "sites.csv")}
    rows = read_rows(out)
    assert list(rows[0]) == ["case_id", "site_id", "score"]
    assert [r["case_id"] for r in rows] == [c["case_id"] for c in cases]
    used = {s: {"people": 0.0, "medical": 0.0} for s in sites}
    objective = 0.0
    for case, row in zip(cases, rows, strict=True):
        site = row["site_id"]
        if not site:
            assert row["score"] == ""
            continue
        assert sites[site]["country"] not in case["excluded_countries"].upper().split(";")
        if case["tie_site"]:
            assert site == case["tie_site"]
        used[site]["people"] += float(case["people"])
        used[site]["medical"] += float(case["need_medical"] or 0)
        objective += PRIORITY_WEIGHTS[case["priority"]] * float(row["score"])
    for site, use in used.items():
        assert use["people"] <= float(sites[site]["capacity_people"])
        assert use["medical"] <= float(sites[site]["capacity_medical"])
    report = json.loads(report_path.read_text())
    placed = sum(1 for r in rows if r["site_id"])
    assert (report["placed"], report["unplaced"], report["cases"]) == (placed, len(rows) - placed, len(rows))
    assert 0 < placed < len(rows)  # tight: some stay unplaced
    assert report["objective"] == pytest.approx(objective, rel=1e-8)
    assert report["upper_bound"] >= report["objective"] - 1e-6
    assert report["gap"] == pytest.approx(max(0.0, (report["upper_bound"] - report["objective"])
                                              / report["upper_bound"]), abs=1e-9)
    assert report["status"] in ("optimal", "feasible") and report["seconds"] >= 0 and report["method"]
    for site, use in used.items():
        assert report["sites"][site]["used"] == {"people": use["people"], "medical": use["medical"]}
        assert report["sites"][site]["cases"] == sum(1 for r in rows if r["site_id"] == site)
    for country in set(COUNTRIES):
        assert report["countries"][country]["cases"] == sum(
            1 for r in rows if r["site_id"] and sites[r["site_id"]]["country"] == country)
    assert report["people"]["placed"] == sum(u["people"] for u in used.values())


def test_the_python_api_gives_the_same_problem_and_an_explanation(tmp_path: Path) -> None:
    cases_csv, sites_csv = make_files(tmp_path)
    problem, case_ids, site_ids = files.read_problem(cases_csv, sites_csv)
    assert problem.scores.shape == (len(case_ids), len(site_ids)) == (36, 6)
    assert problem.needs.shape[1] == problem.capacity.shape[1] == 2
    result = files.solve_files(cases_csv, sites_csv)
    assert violations(result.inputs.problem, result.solution.assignment) == []
    assert not (tmp_path / "assignments.csv").exists()
    placed = int(np.nonzero(result.solution.assignment >= 0)[0][0])
    explanation = files.explain_case(result.inputs, result.solution, case_ids[placed])
    assert explanation.placed and explanation.breakdown is not None
    assert sum(t.contribution for t in explanation.breakdown if t.scale == "score") == pytest.approx(
        explanation.score)
    json.dumps(explanation.to_json())
    tied = case_ids.index(read_rows(cases_csv)[5]["case_id"])
    assert any(r.kind == "tie" for r in files.explain_case(result.inputs, result.solution, tied).binding)


def test_scores_from_npy_csv_and_parquet_give_the_same_assignment(tmp_path: Path) -> None:
    make_files(tmp_path)
    case_ids = [r["case_id"] for r in read_rows(tmp_path / "cases.csv")]
    site_ids = [r["site_id"] for r in read_rows(tmp_path / "sites.csv")]
    rng = np.random.default_rng(7)
    scores = rng.gamma(2.0, 0.5, (len(case_ids), len(site_ids)))
    scores[rng.random(scores.shape) < 0.15] = -1.0  # forbidden pairs
    scores[0, :] = np.nan  # a case with no allowed site
    np.save(tmp_path / "scores.npy", scores)
    ok = np.argwhere(np.isfinite(scores) & (scores >= 0))
    long = [{"case_id": case_ids[i], "site_id": site_ids[j], "score": repr(float(scores[i, j]))} for i, j in ok]
    write_csv(tmp_path / "scores.csv", long[::-1])  # any order
    pq.write_table(pa.table({"case_id": [r["case_id"] for r in long], "site_id": [r["site_id"] for r in long],
                             "score": [float(r["score"]) for r in long]}), tmp_path / "scores.parquet")
    outcomes = []
    for name in ("scores.npy", "scores.csv", "scores.parquet"):
        result, out, report = solve(tmp_path, "--scores", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        rows = read_rows(out)
        outcomes.append([r["site_id"] for r in rows])
        assert json.loads(report.read_text())["scores"] == name
        for i, row in enumerate(rows):
            if row["site_id"]:
                j = site_ids.index(row["site_id"])
                assert scores[i, j] >= 0 and float(row["score"]) == pytest.approx(scores[i, j])
        assert rows[0]["site_id"] == ""
    assert outcomes[0] == outcomes[1] == outcomes[2]


def _edit(path: Path, row: int, column: str, value: str) -> None:
    """Set a cell (row numbered as a spreadsheet: the header is row 1)."""
    rows = read_rows(path)
    rows[row - 2][column] = value
    write_csv(path, rows)


def _drop_column(path: Path, column: str) -> None:
    write_csv(path, [{k: v for k, v in r.items() if k != column} for r in read_rows(path)])


def _npy_wrong_shape(folder: Path) -> list[str]:
    np.save(folder / "scores.npy", np.ones((5, 6)))
    return ["--scores", str(folder / "scores.npy")]


def _long_unknown(folder: Path, column: str, suffix: str) -> list[str]:
    case_ids = [r["case_id"] for r in read_rows(folder / "cases.csv")]
    rows = [{"case_id": c, "site_id": "s001", "score": "1.5"} for c in case_ids]
    rows[3][column] = "nobody"
    if suffix == "csv":
        write_csv(folder / "scores.csv", rows)
    else:
        pq.write_table(pa.table({k: [r[k] for r in rows] for k in rows[0]}), folder / "scores.parquet")
    return ["--scores", str(folder / f"scores.{suffix}")]


def _long_repeated(folder: Path) -> list[str]:
    write_csv(folder / "scores.csv", [{"case_id": "c00001", "site_id": "s001", "score": "1"},
                                      {"case_id": "c00002", "site_id": "s001", "score": "1"},
                                      {"case_id": "c00001", "site_id": "s001", "score": "2"}])
    return ["--scores", str(folder / "scores.csv")]


BAD_INPUTS = {
    "unknown tie_site": (lambda f: _edit(f / "cases.csv", 4, "tie_site", "s999"),
                         ["cases.csv", "row 4", "column tie_site", "'s999'"]),
    "duplicate case_id": (lambda f: _edit(f / "cases.csv", 7, "case_id", "c00002"),
                          ["cases.csv", "row 7", "column case_id", "appears twice", "row 3"]),
    "non-numeric people": (lambda f: _edit(f / "cases.csv", 9, "people", "four"),
                           ["cases.csv", "row 9", "column people", "'four' is not a number"]),
    "negative capacity": (lambda f: _edit(f / "sites.csv", 3, "capacity_people", "-2"),
                          ["sites.csv", "row 3", "column capacity_people", "below 0"]),
    "bad priority": (lambda f: _edit(f / "cases.csv", 2, "priority", "soon"),
                     ["cases.csv", "row 2", "column priority", "emergency, urgent, normal"]),
    "missing column": (lambda f: _drop_column(f / "sites.csv", "capacity_people"),
                       ["sites.csv", "column capacity_people is missing"]),
    "need without capacity": (lambda f: _drop_column(f / "sites.csv", "capacity_medical"),
                              ["cases.csv", "column need_medical", "capacity_medical"]),
    "wrong npy shape": (_npy_wrong_shape, ["scores.npy", "shape (5, 6), expected (36, 6)"]),
    "unknown case in long csv": (lambda f: _long_unknown(f, "case_id", "csv"),
                                 ["scores.csv", "row 5", "column case_id", "'nobody'"]),
    "unknown site in parquet": (lambda f: _long_unknown(f, "site_id", "parquet"),
                                ["scores.parquet", "row 4", "column site_id", "'nobody'"]),
    "repeated pair in long csv": (lambda f: _long_repeated(f), ["scores.csv", "row 4", "appears twice", "row 2"]),
    "tie in an excluded country": (lambda f: _edit(f / "cases.csv", 5, "tie_site", "s001"),
                                   ["cases.csv", "row 5", "column tie_site", "in CA, which the case excludes"]),
    "missing scores file": (lambda f: ["--scores", str(f / "nothing.npy")], ["nothing.npy", "cannot be read"]),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_2_names_file_row_and_column_and_writes_nothing(tmp_path: Path, name: str) -> None:
    make_files(tmp_path)
    change, expected = BAD_INPUTS[name]
    extra = change(tmp_path) or []
    before = set(tmp_path.iterdir())
    result, out, report = solve(tmp_path, *extra)
    assert result.exit_code == 2, result.output
    for part in expected:
        assert part in result.stderr, (part, result.stderr)
    assert not out.exists() and not report.exists()
    assert set(tmp_path.iterdir()) == before  # no temporary files left either


def test_the_rdn_command_exits_2_on_bad_input(tmp_path: Path, database_url: str,
                                              smtp_server: tuple[int, object]) -> None:
    from tests.conftest import rdn_environ, run_rdn

    make_files(tmp_path)
    _edit(tmp_path / "cases.csv", 9, "people", "four")
    done = run_rdn(["match", "solve", "--cases", str(tmp_path / "cases.csv"), "--sites", str(tmp_path / "sites.csv"),
                    "--out", str(tmp_path / "a.csv"), "--report", str(tmp_path / "r.json")],
                   rdn_environ(database_url, smtp_server[0]))
    assert done.returncode == 2, done.stderr
    assert "cases.csv, row 9, column people: 'four' is not a number" in done.stderr
    assert not (tmp_path / "a.csv").exists()


def test_fit_writes_coefficients_that_solve_loads(tmp_path: Path) -> None:
    write_csv(tmp_path / "outcomes.csv", synthetic_outcomes(1500, seed=2))
    coefficients = tmp_path / "fitted.json"
    result = runner.invoke(app, ["match", "fit", str(tmp_path / "outcomes.csv"), "--out", str(coefficients),
                                 "--seed", "3"])
    assert result.exit_code == 0, result.output
    for text in ("AUC", "Brier score", "Calibration", "language_match"):
        assert text in result.stdout
    fitted = load_scorer(coefficients)
    assert fitted.coefficients.fit["auc"] > 0.55
    make_files(tmp_path)
    solved, out, _report = solve(tmp_path, "--coefficients", str(coefficients))
    assert solved.exit_code == 0, solved.output
    assert any(r["site_id"] for r in read_rows(out))


def test_fit_refuses_a_bad_file_and_writes_nothing(tmp_path: Path) -> None:
    rows = synthetic_outcomes(200, seed=1)
    rows[10]["employed_adults"] = str(int(rows[10]["adults"]) + 1)
    write_csv(tmp_path / "outcomes.csv", rows)
    result = runner.invoke(app, ["match", "fit", str(tmp_path / "outcomes.csv"), "--out",
                                 str(tmp_path / "c.json")])
    assert result.exit_code == 2
    assert "outcomes.csv, row 12, column employed_adults" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outcomes.csv"]


def test_the_notebook_example_in_the_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "matching.md").read_text(encoding="utf-8")
    example = doc.split("```python\n")[1].split("```")[0]
    make_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/matching.md", "exec"), {})  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out
    assert "placed; gap" in printed and "goes to" in printed and "Score: " in printed
    assert (tmp_path / "assignments.csv").exists() and (tmp_path / "report.json").exists()


def test_the_command_prints_only_its_summary_on_stdout(tmp_path: Path) -> None:
    """A fresh process (HiGHS prints a banner on file descriptor 1 when its first solver is made)."""
    import subprocess
    import sys

    make_files(tmp_path)
    rdn = str(Path(sys.executable).with_name("rdn"))
    done = subprocess.run([rdn, "match", "solve", "--cases", str(tmp_path / "cases.csv"), "--sites",
                           str(tmp_path / "sites.csv"), "--out", str(tmp_path / "a.csv"), "--report",
                           str(tmp_path / "r.json")], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "RDN_MODE": "test"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Placed") and "HiGHS" not in done.stdout
