"""Fitting the scorer: on outcomes drawn from known coefficients, the fit ranks held-out adults well (AUC) and
recovers each coefficient's sign; a bad OUTCOMES file is named by row and column and nothing is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rdn.matching.fit import MIN_CASES, fit_file, synthetic_outcomes, write_csv
from rdn.matching.scoring import Coefficient, InputError, load_coefficients, load_scorer

# Known coefficients, larger than the packaged defaults so that 3,000 cases pin every sign down.
TRUTH = replace(load_coefficients(), intercept=-0.3, features={
    "language_match": Coefficient(0.9), "community": Coefficient(0.7), "unemployment_rate": Coefficient(-0.15, 6.0),
    "education": Coefficient(0.5, 1.5), "skills_gap": Coefficient(-0.45), "setting_match": Coefficient(0.5),
    "medical_care_missing": Coefficient(-1.0)})


def test_fit_on_synthetic_outcomes_ranks_well_and_recovers_signs(tmp_path: Path) -> None:
    write_csv(tmp_path / "outcomes.csv", synthetic_outcomes(3000, seed=5, coefficients=TRUTH))
    report = fit_file(tmp_path / "outcomes.csv", tmp_path / "fitted.json", test_share=0.25, seed=1)
    assert report.auc is not None and report.auc > 0.65
    assert report.brier is not None and report.brier < 0.25
    assert report.missing == []
    for name, truth in TRUTH.features.items():
        fitted = report.coefficients.features[name].value
        assert fitted * truth.value > 0, (name, fitted, truth.value)
        assert abs(fitted - truth.value) < max(0.5 * abs(truth.value), 0.1), (name, fitted, truth.value)
    # Calibrated: every decile's predicted rate within 10 points of what was observed, rising with the decile.
    assert len(report.calibration) == 10
    assert all(abs(d.predicted - d.observed) < 0.10 for d in report.calibration)
    assert report.calibration[-1].observed > report.calibration[0].observed + 0.2
    scorer = load_scorer(tmp_path / "fitted.json")  # the file written is one the scorer loads
    assert scorer.coefficients.fit["test_cases"] == report.test_cases == round(report.cases * 0.25)
    assert "Fitted by `rdn match fit` on outcomes.csv" in scorer.coefficients.source


def test_missing_feature_columns_keep_a_zero_coefficient(tmp_path: Path) -> None:
    rows = synthetic_outcomes(400, seed=2)
    for row in rows:
        del row["site_communities"], row["nationality"]
    write_csv(tmp_path / "outcomes.csv", rows)
    report = fit_file(tmp_path / "outcomes.csv", tmp_path / "fitted.json")
    assert report.missing == ["community"]
    assert report.coefficients.features["community"].value == 0.0


@pytest.mark.parametrize(("change", "where"), [
    (lambda rows: rows[6].update(employed_adults=str(int(rows[6]["adults"]) + 1)), "row 8, column employed_adults"),
    (lambda rows: rows[3].update(adults="two"), "row 5, column adults: 'two' is not a number"),
    (lambda rows: rows[0].update(site_unemployment_rate="lots"), "row 2, column site_unemployment_rate"),
    (lambda rows: [r.pop("employed_adults") for r in rows], "the column employed_adults is missing"),
    (lambda rows: rows.__delitem__(slice(MIN_CASES - 5, None)), f"at least {MIN_CASES} are needed"),
])
def test_a_bad_outcomes_file_is_named_and_nothing_is_written(tmp_path: Path, change, where: str) -> None:  # type: ignore[no-untyped-def]
    rows = synthetic_outcomes(100, seed=3)
    change(rows)
    write_csv(tmp_path / "outcomes.csv", rows)
    with pytest.raises(InputError, match=where) as caught:
        fit_file(tmp_path / "outcomes.csv", tmp_path / "fitted.json")
    assert str(caught.value).startswith("outcomes.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outcomes.csv"]
