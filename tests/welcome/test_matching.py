"""Matching sponsor groups to arriving families: every hard constraint excludes its pairs; the assignment is the
optimum that exhaustive search finds (and beats greedy where greedy goes wrong); the vectorised scores are the
scalar ones to the last bit; reasons for families left out say what stood in the way; results are reproducible
whatever the order of the input."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from rdn.welcome.matching import (
    TIE_WEIGHT,
    W_CITY,
    W_LANGUAGE,
    W_NATIONALITY,
    FamilyNeeds,
    GroupPrefs,
    MatchResult,
    compatible,
    match,
    score,
    score_matrix,
)

# Helpers -------------------------------------------------------------------------------------------------------


def instance(rng: random.Random, n_groups: int, n_families: int, *, countries: Sequence[str] = ("CA", "US"),
             cities: Sequence[str] = ("Toronto", "Ottawa", "Denver"),
             languages: Sequence[str] = ("ar", "fa", "en", "uk"), nationalities: Sequence[str] = ("AF", "SY", "UA"),
             needs: Sequence[str] = ("wheelchair", "medical")) -> tuple[list[GroupPrefs], list[FamilyNeeds]]:
    """Random groups and families with every kind of constraint and preference in play, so that many pairs are
    excluded and the allowed ones compete."""
    groups = []
    for i in range(n_groups):
        low = rng.choice((1, 1, 2))
        groups.append(GroupPrefs(
            id=f"g{i}", country=rng.choice(countries), city=rng.choice([*cities, ""]),
            languages=frozenset(rng.sample(list(languages), rng.randint(0, 2))),
            nationalities=frozenset(rng.sample(list(nationalities), rng.randint(1, 2))) if rng.random() < 0.3
            else frozenset(),
            min_size=low, max_size=rng.randint(low + 1, 9), capacity=rng.randint(2, 8),
            supports=frozenset(rng.sample(list(needs), 1)) if rng.random() < 0.3 else frozenset()))
    families = []
    for i in range(n_families):
        families.append(FamilyNeeds(
            id=f"f{i}", country=rng.choice(countries), size=rng.randint(1, 7),
            languages=frozenset(rng.sample(list(languages), rng.randint(1, 2))),
            nationality=rng.choice(list(nationalities)) if rng.random() < 0.9 else None,
            city=rng.choice([*cities, ""]),
            needs=frozenset(rng.sample(list(needs), 1)) if rng.random() < 0.15 else frozenset()))
    return groups, families


def pair_scores(groups: Sequence[GroupPrefs], families: Sequence[FamilyNeeds]) -> dict[tuple[int, int], float]:
    """The scalar score of every allowed pair, by positions."""
    return {(g, f): score(group, family)[0] for g, group in enumerate(groups) for f, family in enumerate(families)
            if compatible(group, family) is None}


def exhaustive(groups: Sequence[GroupPrefs], families: Sequence[FamilyNeeds]) -> float:
    """The best total over every injection of families into groups-or-nobody that welcomes as many families as
    any does (families first, then score)."""
    allowed = pair_scores(groups, families)
    best = (0, 0.0)
    for choice in itertools.product(range(-1, len(groups)), repeat=len(families)):
        used = [g for g in choice if g >= 0]
        if len(set(used)) < len(used) or any((g, f) not in allowed for f, g in enumerate(choice) if g >= 0):
            continue
        best = max(best, (len(used), sum(allowed[g, f] for f, g in enumerate(choice) if g >= 0)))
    return best[1]


def greedy(groups: Sequence[GroupPrefs], families: Sequence[FamilyNeeds]) -> float:
    """The best remaining pair first: what an optimal assignment must beat where it matters."""
    total, taken_g, taken_f = 0.0, set(), set()
    for (g, f), value in sorted(pair_scores(groups, families).items(), key=lambda kv: -kv[1]):
        if g not in taken_g and f not in taken_f:
            taken_g.add(g)
            taken_f.add(f)
            total += value
    return total


def assert_valid(result: MatchResult, groups: Sequence[GroupPrefs], families: Sequence[FamilyNeeds]) -> None:
    """One group per family and one family per group, only allowed pairs, proposals in the families' order, and
    every family and group either proposed or listed as left out (with a reason for families)."""
    by_group = {g.id: g for g in groups}
    by_family = {f.id: f for f in families}
    group_ids = [p.group_id for p in result.proposals]
    family_ids = [p.family_id for p in result.proposals]
    assert len(set(group_ids)) == len(group_ids)
    assert len(set(family_ids)) == len(family_ids)
    for p in result.proposals:
        assert compatible(by_group[p.group_id], by_family[p.family_id]) is None
        assert p.score == score(by_group[p.group_id], by_family[p.family_id])[0]
    position = {f.id: k for k, f in enumerate(families)}
    assert [position[i] for i in family_ids] == sorted(position[i] for i in family_ids)
    assert set(family_ids) | set(result.unmatched_families) == set(by_family)
    assert not set(family_ids) & set(result.unmatched_families)
    assert all(result.unmatched_families.values())
    assert set(group_ids) | set(result.unmatched_groups) == set(by_group)
    assert not set(group_ids) & set(result.unmatched_groups)
    assert result.unmatched_groups == [g.id for g in groups if g.id in set(result.unmatched_groups)]


# Hard constraints ----------------------------------------------------------------------------------------------

GROUP = GroupPrefs(id="g", country="CA", city="Toronto", languages=frozenset({"ar"}), min_size=2, max_size=6,
                   capacity=5, supports=frozenset({"wheelchair"}))
FAMILY = FamilyNeeds(id="f", country="CA", size=4, languages=frozenset({"ar"}), nationality="SY", city="Toronto")


@pytest.mark.parametrize(("group", "family", "excluded_by"), [
    (GROUP, FAMILY, None),
    (GROUP, replace(FAMILY, country="US"), "the group is in CA, the family goes to US"),
    (GROUP, replace(FAMILY, size=6), "the group can house 5 people, the family is 6 people"),
    (GROUP, replace(FAMILY, size=5), None),  # exactly the capacity
    (GROUP, replace(FAMILY, size=1), "the group hosts families of 2-6 people"),
    (GROUP, replace(FAMILY, size=2), None),  # exactly the minimum
    # Room enough, but above the range of sizes the group hosts:
    (replace(GROUP, capacity=9), replace(FAMILY, size=7), "the group hosts families of 2-6 people"),
    (GROUP, replace(FAMILY, needs=frozenset({"medical"})), "cannot support medical"),
    (GROUP, replace(FAMILY, needs=frozenset({"wheelchair", "medical"})), "cannot support medical"),
    (GROUP, replace(FAMILY, needs=frozenset({"wheelchair"})), None),
    (replace(GROUP, nationalities=frozenset({"AF", "UA"})), FAMILY,
     "would like to welcome AF, UA nationals, the family is SY"),
    (replace(GROUP, nationalities=frozenset({"AF"})), replace(FAMILY, nationality=None), "of unstated nationality"),
    (replace(GROUP, nationalities=frozenset({"sy"})), FAMILY, None),  # codes are normalised
    (GROUP, replace(FAMILY, languages=frozenset({"fa"})), None),  # language is only a preference
], ids=["allowed", "country", "capacity", "capacity-exact", "below-min", "min-exact", "above-max", "need",
        "one-need-of-two", "need-supported", "nationality", "nationality-unknown", "nationality-met", "no-language"])
def test_each_hard_constraint_excludes_the_pair(group: GroupPrefs, family: FamilyNeeds, excluded_by: str | None
                                                ) -> None:
    why = compatible(group, family)
    matrix = score_matrix([group], [family])
    result = match([group], [family])
    if excluded_by is None:
        assert why is None
        assert matrix[0, 0] == score(group, family)[0] > 0
        assert [(p.group_id, p.family_id) for p in result.proposals] == [("g", "f")]
    else:
        assert why is not None and excluded_by in why
        assert np.isnan(matrix[0, 0])
        assert result.proposals == []
        assert result.unmatched_groups == ["g"]


def test_the_score_adds_each_criterion_and_explains_it() -> None:
    group = GroupPrefs(id=1, country="ca", city=" TORONTO ", languages=frozenset({"AR", "fa"}),
                       nationalities=frozenset({"SY"}), capacity=8)
    family = FamilyNeeds(id=2, country="CA", size=4, languages=frozenset({"ar", "fa", "en"}), nationality="sy",
                         city="toronto")
    value, reasons = score(group, family)
    assert [r.code for r in reasons] == ["language", "city", "nationality", "size"]
    assert reasons[0].text == "shares Arabic and Persian"
    assert sum(r.points for r in reasons) == W_LANGUAGE + W_CITY + W_NATIONALITY + 0.5
    assert 0 <= value - (W_LANGUAGE + W_CITY + W_NATIONALITY + 0.5) < TIE_WEIGHT
    # Nothing in common but the country: only the use of the group's places counts (and the family is allowed).
    plain = FamilyNeeds(id=3, country="CA", size=2, languages=frozenset({"ti"}), nationality="SY")
    value, reasons = score(GroupPrefs(id=1, country="CA", capacity=8), plain)
    assert [r.code for r in reasons] == ["size"]
    assert 0.25 <= value < 0.25 + TIE_WEIGHT


# Optimality ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_small_instances_reach_the_exhaustive_optimum(seed: int) -> None:
    rng = random.Random(seed)
    groups, families = instance(rng, 5, 4, countries=("CA",) if seed % 2 else ("CA", "US"))
    result = match(groups, families)
    assert_valid(result, groups, families)
    assert result.total == pytest.approx(exhaustive(groups, families), abs=1e-9)


def test_the_instances_are_hard_enough_for_greedy_to_fail_somewhere() -> None:
    """Otherwise the exhaustive comparison above would prove little."""
    beaten = 0
    for seed in range(60):
        groups, families = instance(random.Random(seed), 5, 4, countries=("CA",))
        beaten += match(groups, families).total > greedy(groups, families) + 1e-9
    assert beaten > 0


def test_optimal_where_greedy_is_not() -> None:
    """Group A is the best for both families, but only A can take the family of 6: greedy gives A the family of 2
    (its best pair) and leaves the family of 6 without anyone; the optimum gives A the 6 and B the 2."""
    a = GroupPrefs(id="A", country="CA", city="Toronto", languages=frozenset({"ar"}), capacity=6)
    b = GroupPrefs(id="B", country="CA", city="Toronto", capacity=4)
    two = FamilyNeeds(id="two", country="CA", size=2, languages=frozenset({"ar"}), city="Toronto")
    six = FamilyNeeds(id="six", country="CA", size=6, languages=frozenset({"ar"}))
    result = match([a, b], [two, six])
    assert [(p.group_id, p.family_id) for p in result.proposals] == [("B", "two"), ("A", "six")]
    assert result.total == pytest.approx(exhaustive([a, b], [two, six]))
    assert greedy([a, b], [two, six]) == pytest.approx(score(a, two)[0])
    assert result.total > greedy([a, b], [two, six]) + 1


def test_two_families_welcomed_rather_than_one_perfect_pair() -> None:
    """A suits the Arabic-speaking family in Toronto perfectly, and is the only group that can take the family of
    five; B can take only the family of two. The best score alone would give A the perfect pair and leave the
    family of five out; welcoming both families comes first."""
    a = GroupPrefs(id="A", country="CA", city="Toronto", languages=frozenset({"ar"}), capacity=5)
    b = GroupPrefs(id="B", country="CA", capacity=2)
    perfect = FamilyNeeds(id="two", country="CA", size=2, languages=frozenset({"ar"}), city="Toronto")
    five = FamilyNeeds(id="five", country="CA", size=5)
    result = match([a, b], [perfect, five])
    assert sorted((p.group_id, p.family_id) for p in result.proposals) == [("A", "five"), ("B", "two")]
    assert result.unmatched_families == {}
    assert score(a, perfect)[0] > score(a, five)[0] + score(b, perfect)[0]  # what the score alone would pick


# Left out, and why ---------------------------------------------------------------------------------------------


def test_why_families_are_left_out() -> None:
    groups = [
        GroupPrefs(id="small", country="CA", capacity=4, max_size=4, supports=frozenset({"medical"})),
        GroupPrefs(id="mid", country="CA", capacity=6, supports=frozenset({"medical"})),
        GroupPrefs(id="picky", country="CA", capacity=9, nationalities=frozenset({"AF"})),
        GroupPrefs(id="us", country="US", capacity=9),
    ]
    families = [
        FamilyNeeds(id="in-de", country="DE", size=3),
        FamilyNeeds(id="nine", country="CA", size=9, nationality="SY"),
        FamilyNeeds(id="wheelchair", country="CA", size=3, needs=frozenset({"wheelchair"}), nationality="SY"),
        FamilyNeeds(id="six-sy", country="CA", size=6, nationality="SY"),
        FamilyNeeds(id="six-sy-2", country="CA", size=6, nationality="SY"),
    ]
    result = match(groups, families)
    assert_valid(result, groups, families)
    assert result.unmatched_families == {
        "in-de": "no sponsor group in DE",
        # "picky" could house them but prefers Afghan families; the two others are too small.
        "nine": "no compatible sponsor group in CA: 2 of 3 cannot house 9 people",
        "wheelchair": "no sponsor group in CA supports wheelchair",
        # Exactly one of the two families of six gets "mid"; the other has no one left.
        **{f: "every compatible group was matched with another family" for f in ("six-sy", "six-sy-2")
           if f not in {p.family_id for p in result.proposals}},
    }
    assert len(result.proposals) == 1 and result.proposals[0].group_id == "mid"
    assert result.unmatched_groups == ["small", "picky", "us"]


@pytest.mark.parametrize(("group", "family", "why"), [
    (GroupPrefs(id=1, country="CA", capacity=4), FamilyNeeds(id=1, country="CA", size=9),
     "no sponsor group in CA can house 9 people"),
    (GroupPrefs(id=1, country="CA", min_size=2), FamilyNeeds(id=1, country="CA", size=1),
     "no sponsor group in CA hosts families of 1 person"),
    (GroupPrefs(id=1, country="CA", nationalities=frozenset({"AF"})),
     FamilyNeeds(id=1, country="CA", size=3, nationality="SY"), "no sponsor group in CA is open to SY nationals"),
    (GroupPrefs(id=1, country="CA", nationalities=frozenset({"AF"})), FamilyNeeds(id=1, country="CA", size=3),
     "no sponsor group in CA is open to a family of unstated nationality"),
    (GroupPrefs(id=1, country="US"), FamilyNeeds(id=1, country="CA", size=3), "no sponsor group in CA"),
])
def test_the_reason_names_the_constraint(group: GroupPrefs, family: FamilyNeeds, why: str) -> None:
    assert match([group], [family]).unmatched_families == {family.id: why}


def test_the_constraint_excluding_most_groups_is_named() -> None:
    """Three groups lack wheelchair support, one of them is also too small: the need is what stands in the way."""
    groups = [GroupPrefs(id=1, country="CA", capacity=2), GroupPrefs(id=2, country="CA", capacity=8),
              GroupPrefs(id=3, country="CA", capacity=8)]
    family = FamilyNeeds(id="f", country="CA", size=4, needs=frozenset({"wheelchair"}))
    assert match(groups, [family]).unmatched_families == {"f": "no sponsor group in CA supports wheelchair"}


# The vectorised scores -----------------------------------------------------------------------------------------


def assert_matrix_is_scalar(groups: Sequence[GroupPrefs], families: Sequence[FamilyNeeds]) -> int:
    """Each cell is NaN exactly where compatible() objects and else exactly score(); returns the allowed pairs."""
    matrix = score_matrix(groups, families)
    allowed = 0
    for g, group in enumerate(groups):
        for f, family in enumerate(families):
            if compatible(group, family) is None:
                assert matrix[g, f] == score(group, family)[0], (group, family)
                allowed += 1
            else:
                assert np.isnan(matrix[g, f]), (group, family)
    return allowed


def test_vectorised_scores_equal_the_scalar_ones() -> None:
    groups, families = instance(random.Random(7), 60, 60, countries=("CA", "US", "DE", "AU"))
    allowed = assert_matrix_is_scalar(groups, families)
    assert 100 < allowed < 60 * 60 / 4  # a mix of allowed and excluded pairs in every country


def test_vectorised_scores_with_more_than_64_languages_needs_and_nationalities() -> None:
    """Vocabularies larger than a uint64 word: the masks take several words."""
    rng = random.Random(3)
    groups, families = instance(rng, 40, 40, countries=("CA",), languages=[f"l{k:03}" for k in range(150)],
                                nationalities=[f"N{k}" for k in range(80)], needs=[f"need{k}" for k in range(70)])
    # Make sure high codes meet: half of everyone speaks one of the last languages, supports and needs high needs.
    groups = [replace(g, languages=g.languages | {"l149"} if k % 2 else g.languages, supports=g.supports | {"need69"})
              for k, g in enumerate(groups)]
    families = [replace(f, languages=f.languages | {"l149"} if k % 3 else f.languages,
                        needs=frozenset({"need69"}) if k % 4 == 0 else f.needs) for k, f in enumerate(families)]
    assert assert_matrix_is_scalar(groups, families) > 50
    shared = [score(g, f)[1][0].code == "language" for g in groups for f in families if compatible(g, f) is None]
    assert any(shared)


# Reproducible --------------------------------------------------------------------------------------------------


def pairs(result: MatchResult) -> list[tuple[Any, Any]]:
    return [(p.group_id, p.family_id) for p in result.proposals]


def test_the_same_input_gives_the_same_proposals() -> None:
    groups, families = instance(random.Random(11), 120, 100)
    first, second = match(groups, families), match(groups, families)
    assert first.proposals == second.proposals
    assert first.unmatched_families == second.unmatched_families
    assert first.unmatched_groups == second.unmatched_groups


def test_the_order_of_the_groups_does_not_change_the_result() -> None:
    groups, families = instance(random.Random(12), 120, 100)
    result = match(groups, families)
    shuffled = groups[:]
    random.Random(0).shuffle(shuffled)
    again = match(shuffled, families)
    assert again.total == pytest.approx(result.total, abs=1e-9)
    # The tie-breaker hashes ids, not positions, so even among equal choices the same pairs are proposed.
    assert pairs(again) == pairs(result)


def test_equal_choices_are_settled_by_the_tie_breaker_not_the_order() -> None:
    twins = [GroupPrefs(id=f"twin{k}", country="CA", capacity=4) for k in range(5)]
    family = [FamilyNeeds(id="f", country="CA", size=2)]
    chosen = {pairs(match(order, family))[0] for order in itertools.permutations(twins)}
    assert len(chosen) == 1


# Size and input checks -----------------------------------------------------------------------------------------


def test_a_thousand_by_a_thousand_respects_every_constraint() -> None:
    groups, families = instance(random.Random(5), 1000, 1000, countries=("CA", "US", "DE"),
                                cities=[f"city{k}" for k in range(12)])
    result = match(groups, families)
    assert_valid(result, groups, families)
    assert len(result.proposals) > 300
    reasons = set(result.unmatched_families.values())
    assert "every compatible group was matched with another family" in reasons


def test_duplicate_ids_and_impossible_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="two groups"):
        match([GroupPrefs(id=1, country="CA"), GroupPrefs(id=1, country="CA")], [])
    with pytest.raises(ValueError, match="two families"):
        match([], [FamilyNeeds(id=1, country="CA", size=2), FamilyNeeds(id=1, country="US", size=3)])
    with pytest.raises(ValueError, match="at least 1"):
        FamilyNeeds(id=1, country="CA", size=0)


def test_nothing_to_match() -> None:
    result = match([GroupPrefs(id="g", country="CA")], [])
    assert (result.proposals, result.unmatched_families, result.unmatched_groups) == ([], {}, ["g"])
    result = match([], [FamilyNeeds(id="f", country="CA", size=2)])
    assert result.unmatched_families == {"f": "no sponsor group in CA"}
