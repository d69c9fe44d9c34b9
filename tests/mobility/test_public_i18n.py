"""The registrants' catalogs (domain ``mobility``): every string the code and templates pass to ``t()``/``tn()``
is translated in every public language, with the same placeholders, and the catalogs compile and serve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from rdn.core.i18n import LOCALE_DIR
from rdn.mobility import public_i18n
from rdn.mobility.public_i18n import BABEL_CODES, PUBLIC_LOCALES, t, tn, using

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [code for code in PUBLIC_LOCALES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: The same extraction as `make i18n` for the mobility domain (see the Makefile).
IGNORE = ".* ._ accounts cases core matching network ops pathways redphone reports welcome"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    pot = tmp_path_factory.mktemp("mobility-i18n") / "mobility.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "--no-location", "--no-default-keywords", "-k", "t",
                                "-k", "tn:1,2", f"--ignore-dirs={IGNORE}", "-F", str(ROOT / "babel.cfg"),
                                "-o", str(pot), str(ROOT / "src" / "rdn")])
    with pot.open("rb") as fh:
        return read_po(fh)


def catalog(code: str) -> Catalog:
    with (LOCALE_DIR / code / "LC_MESSAGES" / "mobility.po").open("rb") as fh:
        return read_po(fh, locale=BABEL_CODES.get(code, code))


def test_the_extraction_finds_strings_of_python_and_templates(extracted: Catalog) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    assert "Registration is free." in ids  # templates
    assert "Please choose a country from the list." in ids  # registration.py
    assert "Usually within %(num)s week" in ids  # tn()
    assert "capacity" not in ids  # other domains' code is not read


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_string_is_translated_with_the_same_placeholders(extracted: Catalog, code: str) -> None:
    cat = catalog(code)
    missing, wrong = [], []
    for source in extracted:
        if not source.id:
            continue
        found = cat.get(source.id)
        forms = found.string if found is not None else None
        forms = list(forms) if isinstance(forms, tuple) else [forms]
        if found is None or not all(forms) or found.fuzzy:
            missing.append(source.id)
            continue
        ids = [source.id] if isinstance(source.id, str) else list(source.id)
        expected = set().union(*(PLACEHOLDER.findall(i) for i in ids))
        for form in forms:
            if set(PLACEHOLDER.findall(form)) != expected:
                wrong.append((source.id, form))
    assert missing == [], f"{code}: {len(missing)} untranslated, e.g. {missing[:5]}"
    assert wrong == [], f"{code}: placeholders differ: {wrong[:5]}"


@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_are_served_and_format(code: str) -> None:
    public_i18n.translations.cache_clear()
    with using(code):
        free = t("Registration is free.")
        weeks = tn("Usually within %(num)s week", "Usually within %(num)s weeks", 3)
        office = t("Register at the %(office)s", office="X")
    assert free != "Registration is free."
    assert "3" in weeks and "X" in office


@pytest.mark.parametrize(("code", "rtl"), [("ar", True), ("prs", True), ("ps", True), ("es", False), ("ht", False)])
def test_direction(code: str, rtl: bool) -> None:
    assert public_i18n.direction(code) == ("rtl" if rtl else "ltr")
