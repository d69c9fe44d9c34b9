"""The languages of the public Safe Mobility pages and of what is sent to registrants.

Registrants are served in more languages than staff: Spanish, English, Haitian Creole, French, Portuguese, Arabic,
Dari and Pashto (the last three right to left). Their text lives in its own catalog domain, ``mobility``
(``src/rdn/locale/<code>/LC_MESSAGES/mobility.po``, extracted by ``make i18n`` from the calls to ``t()`` and
``tn()``), so that a language drops in as one more catalog and one more line in ``PUBLIC_LOCALES``, without
translating the whole staff interface. English is the source language.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from rdn.core.i18n import LOCALE_DIR, RTL_LANGUAGES

DOMAIN = "mobility"
#: code -> the language's name in itself, in the order the language menu lists them.
PUBLIC_LOCALES: dict[str, str] = {
    "es": "Español", "en": "English", "ht": "Kreyòl ayisyen", "fr": "Français", "pt": "Português",
    "ar": "العربية", "prs": "دری", "ps": "پښتو",
}
DEFAULT = "es"
#: Where Babel (dates, numbers) knows a language under another code.
BABEL_CODES = {"prs": "fa_AF"}

_var: ContextVar[str] = ContextVar("rdn_public_locale", default=DEFAULT)
_lock = threading.Lock()


@cache
def translations(code: str) -> NullTranslations:
    path = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if code == "en" or not path.exists():
        return NullTranslations()
    with _lock, path.open("rb") as fh:
        catalog = read_po(fh, locale=BABEL_CODES.get(code, code))
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def current() -> str:
    return _var.get()


def babel_code(code: str | None = None) -> str:
    code = code or current()
    return BABEL_CODES.get(code, code)


def t(message: str, **variables: object) -> str:
    """``message`` in the registrant's language (``%(name)s`` placeholders filled from ``variables``)."""
    text = translations(current()).ugettext(message)
    return text % variables if variables else text


def tn(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(current()).ungettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def direction(code: str | None = None) -> str:
    return "rtl" if (code or current()) in RTL_LANGUAGES else "ltr"


def pick(requested: str | None, cookie: str | None = None, accept_language: str | None = None) -> str:
    """The language for a public page: asked for in the address, else chosen before (cookie), else the
    browser's first known preference, else Spanish."""
    for code in (requested, cookie):
        if code in PUBLIC_LOCALES:
            return code  # type: ignore[return-value]
    for part in (accept_language or "").split(",")[:20]:
        tag = part.split(";")[0].strip().lower().replace("_", "-")
        if tag in ("fa-af", "prs"):
            return "prs"
        base = tag.split("-")[0]
        if base in PUBLIC_LOCALES:
            return base
    return DEFAULT


def set_current(code: str) -> None:
    """For the rest of this request (or task): serve in ``code``."""
    _var.set(code if code in PUBLIC_LOCALES else DEFAULT)


@contextmanager
def using(code: str | None) -> Iterator[None]:
    """Write in ``code`` (an email to a registrant in their own language, say)."""
    token = _var.set(code if code in PUBLIC_LOCALES else DEFAULT)
    try:
        yield
    finally:
        _var.reset(token)


def install(env: object) -> None:
    """Make ``t``, ``tn``, ``public_locales`` and ``public_direction`` available to templates."""
    env.globals.update(t=t, tn=tn, public_locales=PUBLIC_LOCALES, public_direction=direction,  # type: ignore[attr-defined]
                       public_locale=current)
