"""The country lists of forms: built once per language, the chosen codes marked, nothing else let through."""

from __future__ import annotations

from rdn.core import i18n
from rdn.core.web import country_options


def test_one_option_per_country_with_the_chosen_one_selected():
    with i18n.using("en"):
        html = str(country_options("VE"))
    assert html.count("<option ") == len(i18n.countries("en"))
    assert '<option value="VE" selected>Venezuela</option>' in html
    assert html.count(" selected>") == 1


def test_several_chosen_and_none():
    with i18n.using("en"):
        assert str(country_options(["CO", "PE"])).count(" selected>") == 2
        assert " selected>" not in str(country_options(None))
        assert " selected>" not in str(country_options(""))


def test_names_in_the_page_language():
    with i18n.using("ar"):
        html = str(country_options("SY"))
    assert f'<option value="SY" selected>{i18n.country_name("SY", "ar")}</option>' in html
    assert i18n.country_name("SY", "ar") != "Syria"


def test_a_hostile_choice_marks_nothing_and_is_not_echoed():
    with i18n.using("en"):
        for bad in ('"><script>alert(1)</script>', "ve", "XX", 'V"', ["<b>", 7, None]):
            html = str(country_options(bad))  # type: ignore[arg-type]
            assert " selected>" not in html and "<script>" not in html and "<b>" not in html
