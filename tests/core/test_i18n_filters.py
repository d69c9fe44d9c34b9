"""The cached page filters give what the uncached calls give, in each language."""

from __future__ import annotations

from rdn.core import i18n


def test_days_follow_the_language_and_the_plural():
    with i18n.using("en"):
        assert i18n.format_days(1) == "1 day"
        assert i18n.format_days(90) == "90 days"
    with i18n.using("es"):
        assert i18n.format_days(1) == i18n.ngettext("%(num)s day", "%(num)s days", 1) == "1 día"
        assert i18n.format_days(90) == "90 días"
    with i18n.using("en"):  # the cache is per language
        assert i18n.format_days(90) == "90 days"


def test_countries_are_named_and_listed_in_the_reader_language():
    with i18n.using("en"):
        assert i18n.format_countries(["SY", "IQ", "YE"]) == "Syria, Iraq, and Yemen"
        assert i18n.format_countries([]) == ""
    with i18n.using("es"):
        assert i18n.format_countries(["SY", "IQ"]) == "Siria y Irak"
    with i18n.using("ar"):
        assert i18n.format_countries(["SY", "IQ"]) == i18n.format_list(
            [i18n.country_name("SY", "ar"), i18n.country_name("IQ", "ar")], "ar")
