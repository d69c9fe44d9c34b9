"""The default scorer: each feature moves the score the right way, the breakdown adds up to the score, unknown
inputs contribute nothing, bad cells and bad coefficient files are named, and scoring is vectorised."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from rdn.matching.fit import random_case_rows, random_site_rows
from rdn.matching.scoring import (
    FEATURES,
    CaseTable,
    CoefficientsError,
    InputError,
    SiteTable,
    default_coefficients_path,
    load_coefficients,
    load_scorer,
    sigmoid,
)

BASE_CASE = {"case_id": "c1", "people": "4", "adults": "2", "nationality": "SY", "languages": "ar",
             "education": "2", "setting": "urban", "medical": "no"}
BASE_SITE = {"site_id": "s1", "country": "CA", "languages": "en", "communities": "AF",
             "unemployment_rate": "6", "labour_demand": "2", "setting": "urban", "medical_care": "yes"}


def score(case: dict[str, str], site: dict[str, str]) -> float:
    return float(load_scorer().scores(CaseTable.from_rows([case]), SiteTable.from_rows([site]))[0, 0])


@pytest.mark.parametrize(("side", "change", "direction"), [
    ("site", {"languages": "en;ar"}, +1),  # the site serves the case's language
    ("site", {"communities": "AF;SY"}, +1),  # a Syrian community there
    ("site", {"unemployment_rate": "12"}, -1),
    ("site", {"unemployment_rate": "3.5%"}, +1),
    ("case", {"education": "university", "adults": "2"}, +1),  # more education, with a gap of 1 against demand 2
    ("site", {"labour_demand": "0"}, -1),  # jobs asking for less than the case has: a skills gap
    ("site", {"setting": "rural"}, -1),  # preference no longer met
    ("case", {"medical": "yes"}, 0),  # a condition, but care nearby: no effect
    ("case", {"adults": "3"}, +1),  # more adults who can work
])
def test_each_feature_moves_the_score_the_right_way(side: str, change: dict[str, str], direction: int) -> None:
    base = score(BASE_CASE, BASE_SITE)
    case = {**BASE_CASE, **change} if side == "case" else BASE_CASE
    site = {**BASE_SITE, **change} if side == "site" else BASE_SITE
    changed = score(case, site)
    if direction == 0:
        assert changed == pytest.approx(base)
    else:
        assert np.sign(changed - base) == direction, (change, base, changed)


def test_medical_condition_without_care_lowers_the_score() -> None:
    case = {**BASE_CASE, "medical": "yes"}
    assert score(case, {**BASE_SITE, "medical_care": "no"}) < score(case, BASE_SITE)


def test_the_breakdown_adds_up_to_the_score_for_every_pair() -> None:
    rng = np.random.default_rng(4)
    cases = CaseTable.from_rows(random_case_rows(rng, 30))
    sites = SiteTable.from_rows(random_site_rows(rng, 9))
    scorer = load_scorer()
    scores = scorer.scores(cases, sites)
    logits = scorer.logits(cases, sites)
    for i in range(len(cases)):
        for j in range(len(sites)):
            terms = scorer.breakdown(cases, sites, i, j)
            assert sum(t.contribution for t in terms if t.scale == "logit") == pytest.approx(logits[i, j])
            assert sum(t.contribution for t in terms if t.scale == "score") == pytest.approx(scores[i, j])
            assert {t.name for t in terms if t.scale == "logit"} == {"intercept", *FEATURES}
    text = [t.text() for t in scorer.breakdown(cases, sites, 0, 0)]
    assert any(line.startswith("Speaks a language the site serves: ") for line in text)
    assert any(line.startswith("Expected adults employed (") for line in text)


def test_unknown_inputs_contribute_nothing() -> None:
    coefficients = load_coefficients()
    bare = score({"case_id": "c1"}, {"site_id": "s1"})  # every scorer column missing: one adult, the baseline
    assert bare == pytest.approx(coefficients.floor + float(sigmoid(np.array(coefficients.intercept))))
    scorer = load_scorer()
    cases = CaseTable.from_rows([{"case_id": "c1", "education": ""}])
    sites = SiteTable.from_rows([{"site_id": "s1", "unemployment_rate": "9"}])
    terms = {t.name: t for t in scorer.breakdown(cases, sites, 0, 0)}
    assert math.isnan(terms["education"].value) and terms["education"].contribution == 0
    assert "unknown" in terms["education"].text()
    assert terms["unemployment_rate"].contribution < 0  # 9% against a center of 6%


def test_a_bad_cell_is_named_by_file_row_and_column() -> None:
    rows = [dict(BASE_CASE), {**BASE_CASE, "case_id": "c2", "education": "college"}]
    with pytest.raises(InputError) as caught:
        CaseTable.from_rows(rows, file="cases.csv")
    assert (caught.value.file, caught.value.row, caught.value.column) == ("cases.csv", 3, "education")
    assert str(caught.value).startswith("cases.csv, row 3, column education: 'college' is not a level")
    with pytest.raises(InputError, match=r"sites.csv, row 2, column unemployment_rate: 'high' is not a number"):
        SiteTable.from_rows([{**BASE_SITE, "unemployment_rate": "high"}])


def test_the_packaged_coefficients_say_what_they_are() -> None:
    data = json.loads(default_coefficients_path().read_text())
    assert "illustrative" in data["source"].lower()
    assert set(data["features"]) == set(FEATURES)
    for entry in data["features"].values():
        assert entry["description"] and entry["label"] and isinstance(entry["coefficient"], float)


@pytest.mark.parametrize(("content", "message"), [
    ('{"intercept": 0, "features": {"shoe_size": 1}}', "features.shoe_size is not a feature"),
    ('{"intercept": 0, "features": {"community": {"coefficient": "big"}}}', "features.community.coefficient must"),
    ('{"features": {}}', "intercept must be a finite number"),
    ("{not json", "not JSON"),
])
def test_a_bad_coefficients_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CoefficientsError, match=message) as caught:
        load_scorer(path)
    assert str(path) in str(caught.value)


def test_scoring_is_vectorised() -> None:
    rng = np.random.default_rng(0)
    scorer = load_scorer()
    cases = CaseTable.from_rows(random_case_rows(rng, 1000))
    sites = SiteTable.from_rows(random_site_rows(rng, 50))
    best = min(_timed(lambda: scorer.scores(cases, sites)) for _ in range(3))
    assert best < 0.25  # milliseconds in practice; generous for a loaded 2-core machine
    scores = scorer.scores(cases, sites)
    assert scores.shape == (1000, 50) and (scores > 0).all() and np.isfinite(scores).all()


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
