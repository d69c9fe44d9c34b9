"""Locales, right-to-left layout and translation catalogs (Babel .po files, compiled in memory).

Text shown to people lives in catalogs under ``rdn/locale/<lang>/LC_MESSAGES/messages.po``; templates use
``{{ _("...") }}`` and Python code marks strings with ``N_("...")`` (translated where shown). ``make i18n``
re-extracts the strings and updates every catalog; a test fails when a catalog misses a string.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.lists import format_list as _babel_format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from rdn.core.context import locale_var

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

#: The interface languages: code -> name in that language.
LOCALES: dict[str, str] = {"en": "English", "es": "Español", "fr": "Français", "ar": "العربية"}
RTL_LANGUAGES = frozenset({"ar", "fa", "prs", "ps", "ur", "he"})
DEFAULT_LOCALE = "en"

# Codes Babel knows that are not ISO 3166-1 countries (EU is kept: ISO reserves it for the Union).
_NOT_COUNTRIES = {"ZZ", "EZ", "UN", "QO", "XA", "XB", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; it is translated where it is shown."""
    return message


_lock = threading.Lock()


@cache
def translations(locale: str) -> NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not path.exists():
        return NullTranslations()
    with _lock, path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def gettext(message: str, **variables: object) -> str:
    text = translations(locale_var.get()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(locale_var.get()).ungettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


@contextmanager
def using(locale: str | None) -> Iterator[None]:
    """Render in ``locale`` (an email to someone in their own language, say)."""
    token = locale_var.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        locale_var.reset(token)


def direction(locale: str | None = None) -> str:
    code = (locale or locale_var.get()).split("_")[0].split("-")[0]
    return "rtl" if code in RTL_LANGUAGES else "ltr"


def negotiate(cookie: str | None, accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The locale for a request: the language switcher's cookie, else the browser's preference."""
    if cookie in LOCALES:
        return cookie  # type: ignore[return-value]
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(",")[:20]:
        lang, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = lang.strip().lower().split("-")[0]
        if code in LOCALES and quality > 0:  # q=0 means "not acceptable" (RFC 9110, 12.4.2)
            ranked.append((quality, code))
    if ranked:
        return max(ranked, key=lambda item: item[0])[1]
    return default


@lru_cache(maxsize=16)
def _babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


@lru_cache(maxsize=16)
def countries(locale: str = DEFAULT_LOCALE) -> tuple[tuple[str, str], ...]:
    """ISO 3166-1 alpha-2 codes with their names in ``locale``, sorted by name."""
    names = _babel_locale(locale).territories
    return tuple(sorted(
        ((code, name) for code, name in names.items()
         if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES),
        key=lambda item: item[1],
    ))


@lru_cache(maxsize=16)
def _country_names(locale: str) -> dict[str, str]:
    return dict(countries(locale))


def is_country(code: str | None) -> bool:
    return bool(code) and code in _country_names(DEFAULT_LOCALE)  # type: ignore[operator]


def country_name(code: str | None, locale: str | None = None) -> str:
    if not code:
        return ""
    return _country_names(locale or locale_var.get()).get(code, code)


def format_datetime(value: datetime | None, locale: str | None = None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return _babel_format_datetime(value, format=fmt, tzinfo=value.tzinfo, locale=locale or locale_var.get())


#: ISO 639-3 codes of languages refugees speak that Babel's list lacks (English names).
EXTRA_LANGUAGES = {
    "prs": "Dari", "haz": "Hazaragi", "kmr": "Northern Kurdish", "fuv": "Nigerian Fulfulde", "swc": "Congo Swahili",
    "apd": "Sudanese Arabic", "ayp": "North Mesopotamian Arabic", "apc": "Levantine Arabic", "acm": "Iraqi Arabic",
    "bcc": "Southern Balochi", "hno": "Northern Hindko", "zag": "Zaghawa", "fvr": "Fur", "mls": "Masalit",
}


def language_name(code: str | None, locale: str | None = None) -> str:
    """A language's name in ``locale`` from its ISO 639 code (the code itself when unknown)."""
    if not code:
        return ""
    name = _babel_locale(locale or locale_var.get()).languages.get(code)
    return name or EXTRA_LANGUAGES.get(code, code)


def format_date(value: date | None, locale: str | None = None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return _babel_format_date(value, format=fmt, locale=locale or locale_var.get())


def format_list(items: list[str], locale: str | None = None) -> str:
    """"A, B and C" in the reader's language (Arabic: "أ وب وج")."""
    return _format_list(tuple(str(i) for i in items), locale or locale_var.get()) if items else ""


@lru_cache(maxsize=4096)
def _format_list(items: tuple[str, ...], locale: str) -> str:
    """Babel parses the locale and its list patterns on every call; pages list the same few names again."""
    return _babel_format_list(list(items), locale=_babel_locale(locale))


def format_days(days: int) -> str:
    """"3 days" in the reader's language (pages list many pathways, each with its processing time)."""
    return _format_days(int(days), locale_var.get())


@lru_cache(maxsize=4096)
def _format_days(days: int, locale: str) -> str:
    return ngettext("%(num)s day", "%(num)s days", days)  # locale_var is ``locale`` here


def format_countries(codes: list[str]) -> str:
    """Country names in the reader's language, as a list ("Syria, Iraq and Yemen")."""
    return _format_countries(tuple(codes), locale_var.get()) if codes else ""


@lru_cache(maxsize=4096)
def _format_countries(codes: tuple[str, ...], locale: str) -> str:
    return format_list([country_name(code, locale) for code in codes], locale)


def format_number(value: float | int, locale: str | None = None) -> str:
    return _format_number(value, locale or locale_var.get())


@lru_cache(maxsize=8192)
def _format_number(value: float | int, locale: str) -> str:
    """Babel's formatting takes tens of microseconds; pages show the same counts again and again."""
    return format_decimal(value, locale=locale)
