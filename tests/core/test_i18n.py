"""Interface translations: complete catalogs, intact placeholders, localized pages and emails, negotiation.

The catalogs are checked against a fresh extraction of the code (the same ``pybabel extract`` that ``make i18n``
runs), so adding a string to a template or an ``N_()`` call without translating it fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.catalog import Message as CatalogMessage
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from sqlalchemy.orm import Session

from rdn.core import i18n, outbox
from rdn.core.identity import User
from rdn.core.tenancy import Role
from rdn.network import service
from tests.conftest import ROOT
from tests.factories import ACTOR, Client, make_person

LANGUAGES = ("es", "fr", "ar")
LOCALE_DIR = ROOT / "src" / "rdn" / "locale"
# Python %-format placeholders: %(name)s, %(n)d, %(x)05.2f ...
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
# Numbers the plural rules are evaluated on (CLDR rules change at 0, 1, 2, 3..10, 11..99, 100s and millions).
SAMPLE_NUMBERS = [*range(0, 2100), 1_000_000, 2_000_000, 10_000_000]


# Catalogs ----------------------------------------------------------------------------------------------------


def load_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Every string of the code, extracted now exactly as ``make i18n`` does (from the project root)."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "--no-location", "-F", str(ROOT / "babel.cfg"),
                                "-o", str(pot), str(ROOT / "src" / "rdn")])
    return load_catalog(pot)


@pytest.fixture(scope="module", params=LANGUAGES)
def catalog(request: pytest.FixtureRequest) -> Iterator[Catalog]:
    yield load_catalog(LOCALE_DIR / request.param / "LC_MESSAGES" / "messages.po", request.param)


def key(message: CatalogMessage) -> str:
    return message.id[0] if isinstance(message.id, tuple) else message.id


def forms(message: CatalogMessage) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_extraction_finds_the_strings_of_templates_and_of_python_code(extracted: Catalog) -> None:
    ids = {key(m) for m in extracted if m.id}
    assert len(ids) > 200
    assert "Skip to main content" in ids  # layout/base.html
    assert "Sponsor group" in ids  # N_() in network/service.py
    assert "Too many attempts. Please wait a few minutes before trying again." in ids  # accounts/pages.py
    plural = extracted.get("%(num)s active session")
    assert plural is not None and plural.id == ("%(num)s active session", "%(num)s active sessions")


def test_every_extracted_string_is_translated(extracted: Catalog, catalog: Catalog) -> None:
    missing, untranslated, fuzzy, wrong_plural = [], [], [], []
    for source in extracted:
        if not source.id:
            continue
        message = catalog.get(source.id)
        if message is None:
            missing.append(key(source))
            continue
        if message.fuzzy:
            fuzzy.append(key(source))
        if isinstance(source.id, tuple) and (message.id != source.id or len(forms(message)) != catalog.num_plurals):
            wrong_plural.append(key(source))
        if not all(form.strip() for form in forms(message)):
            untranslated.append(key(source))
    assert not missing, f"{catalog.locale}: not in the catalog (run make i18n): {missing}"
    assert not untranslated, f"{catalog.locale}: empty translations: {untranslated}"
    assert not fuzzy, f"{catalog.locale}: fuzzy translations: {fuzzy}"
    assert not wrong_plural, f"{catalog.locale}: plural entries not filled for every form: {wrong_plural}"


def test_catalog_header(catalog: Catalog) -> None:
    expected_plurals = {"es": 3, "fr": 3, "ar": 6}[str(catalog.locale)]
    assert catalog.num_plurals == expected_plurals
    assert catalog.project == "RDN" and catalog.version == "0.1"
    assert catalog.last_translator == "RDN contributors"
    assert catalog.language_team and "LANGUAGE" not in catalog.language_team
    assert not catalog.fuzzy
    if str(catalog.locale) == "ar":
        assert catalog.plural_forms.startswith("nplurals=6;")


def test_the_running_application_serves_every_translation(catalog: Catalog) -> None:
    """What gettext returns at run time (catalog compiled in memory) is the catalog's text, form by form."""
    locale = str(catalog.locale)
    with i18n.using(locale):
        for message in catalog:
            if not message.id:
                continue
            if isinstance(message.id, tuple):
                rule = i18n.translations(locale).plural
                for n in (0, 1, 2, 5, 11, 100, 1_000_000):
                    expected = message.string[rule(n)].replace("%(num)s", str(n))
                    assert i18n.ngettext(*message.id, n) == expected
            else:
                assert i18n.translations(locale).ugettext(message.id) == message.string


def test_translations_keep_the_placeholders(catalog: Catalog) -> None:
    """Same %(...)s names as the msgid; a plural form used for a single number may spell it out instead."""
    rule = i18n.translations(str(catalog.locale)).plural
    problems = []
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            expected = placeholders(message.id[0]) | placeholders(message.id[1])
            for index, form in enumerate(forms(message)):
                numbers = [n for n in SAMPLE_NUMBERS if rule(n) == index]
                if not numbers:
                    problems.append((message.id[0], index, "form is never used"))
                found = placeholders(form)
                allowed = [expected, expected - {"num"}] if len(numbers) == 1 else [expected]
                if found not in allowed:
                    problems.append((message.id[0], index, sorted(found)))
        elif placeholders(message.string) != placeholders(message.id):
            problems.append((message.id, sorted(placeholders(message.string))))
    assert not problems, f"{catalog.locale}: {problems}"


def test_translations_format_like_their_msgid(catalog: Catalog) -> None:
    """Templates always %-format (Jinja's newstyle gettext): a stray % or unknown name would break the page."""
    for message in catalog:
        if not message.id:
            continue
        source = message.id[0] if isinstance(message.id, tuple) else message.id
        values = {name: f"<{name}>" for name in placeholders(" ".join(message.id if isinstance(message.id, tuple)
                                                                        else [source]))}
        percent = (source % values).count("%")  # literal percent signs (%% in the msgid), e.g. "60%% in cash"
        for form in forms(message):
            rendered = form % values
            assert rendered.count("%") == percent, (catalog.locale, source, form)
            for name in placeholders(form):
                assert f"<{name}>" in rendered


def test_translations_keep_leading_and_trailing_whitespace(catalog: Catalog) -> None:
    for message in catalog:
        if not message.id:
            continue
        source = message.id[0] if isinstance(message.id, tuple) else message.id
        lead = source[: len(source) - len(source.lstrip())]
        trail = source[len(source.rstrip()):]
        for form in forms(message):
            assert form.startswith(lead) and form.endswith(trail), (catalog.locale, source)
            assert form.count("\n\n") == source.count("\n\n"), (catalog.locale, source)  # email paragraphs


# Pages -------------------------------------------------------------------------------------------------------


HOME = {
    # language: (html tag, greeting, organization kind, country, one session)
    "en": ('<html lang="en" dir="ltr">', "Welcome, Officer Canada", "Member government", "Canada",
           "1 active session"),
    "es": ('<html lang="es" dir="ltr">', "Le damos la bienvenida, Officer Canada", "Gobierno miembro", "Canadá",
           "1 sesión activa"),
    "fr": ('<html lang="fr" dir="ltr">', "Bienvenue, Officer Canada", "Gouvernement membre", "Canada",
           "1 session active"),
    "ar": ('<html lang="ar" dir="rtl">', "مرحبًا، Officer Canada", "حكومة عضو", "كندا", "جلسة نشطة واحدة"),
}


@pytest.mark.parametrize("language", list(HOME))
def test_home_page_in_the_language_of_the_cookie(client: Client, network, session: Session,
                                                 language: str) -> None:
    client.login(session, network.officer_canada)
    client.cookies.set("rdn_locale", language)
    r = client.get("/")
    assert r.status_code == 200, r.text
    html_tag, greeting, kind, country, sessions = HOME[language]
    assert html_tag in r.text
    assert f"<h1>{greeting}</h1>" in r.text
    assert f"{kind} · {country}" in r.text
    assert f"<p>{sessions}</p>" in r.text
    for other, (_, other_greeting, *_) in HOME.items():
        if other != language:
            assert other_greeting not in r.text


def test_switching_language_with_the_form(client: Client, network, session: Session) -> None:
    user = network.minister_spain
    client.login(session, user)
    r = client.post("/locale", data={"locale": "ar", "next": "/organizations"})
    assert r.status_code == 303
    assert r.headers["location"] == "/organizations"
    assert "rdn_locale=ar" in r.headers["set-cookie"]
    session.expire_all()
    assert session.get(User, user.id).locale == "ar"  # remembered for their emails too

    page = client.get("/organizations")
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "منظمات الشبكة" in page.text  # "Organizations of the network"
    assert "تسجيل الخروج" in page.text  # "Sign out"

    r = client.post("/locale", data={"locale": "es", "next": "/organizations"})
    assert r.status_code == 303
    page = client.get("/organizations")
    assert '<html lang="es" dir="ltr">' in page.text
    assert "Organizaciones de la red" in page.text and "Cerrar sesión" in page.text


def test_switching_to_an_unknown_language_is_refused(client: Client, network, session: Session) -> None:
    client.login(session, network.minister_spain)
    r = client.post("/locale", data={"locale": "xx", "next": "/"})
    assert r.status_code == 422
    assert "rdn_locale" not in r.headers.get("set-cookie", "")


def test_switching_language_needs_the_csrf_token(client: Client, network, session: Session) -> None:
    client.login(session, network.minister_spain)
    client.csrf = None  # the test client no longer adds the header
    r = client.post("/locale", data={"locale": "fr", "next": "/"})
    assert r.status_code == 403
    assert "rdn_locale" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize(("header", "html_tag", "title"), [
    ("ar-SY,ar;q=0.9,en;q=0.5", '<html lang="ar" dir="rtl">', "تسجيل الدخول إلى RDN"),
    ("de-DE,de;q=0.9,fr;q=0.7,es;q=0.6", '<html lang="fr" dir="ltr">', "Se connecter à RDN"),
    ("pt-BR,pt;q=0.9", '<html lang="en" dir="ltr">', "Sign in to RDN"),
])
def test_sign_in_page_follows_the_browser_language(client: Client, header: str, html_tag: str,
                                                   title: str) -> None:
    r = client.get("/login", headers={"Accept-Language": header})
    assert r.status_code == 200
    assert html_tag in r.text
    assert f"<h1>{title}</h1>" in r.text


def test_the_cookie_beats_the_browser_language_on_pages(client: Client) -> None:
    client.cookies.set("rdn_locale", "es")
    r = client.get("/login", headers={"Accept-Language": "ar"})
    assert '<html lang="es" dir="ltr">' in r.text and "Iniciar sesión en RDN" in r.text


def test_error_pages_are_translated(client: Client, network, session: Session) -> None:
    client.login(session, network.officer_canada)
    client.cookies.set("rdn_locale", "ar")
    r = client.get("/organizations/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404
    assert '<html lang="ar" dir="rtl">' in r.text
    assert "الصفحة غير موجودة" in r.text  # "Page not found"
    assert "الانتقال إلى الصفحة الرئيسية" in r.text  # "Go to the home page"


ADMIN_PAGES = ["/", "/organizations", "/organizations/new", "/people", "/people/new", "/account", "/admin/jobs",
               "/admin/audit"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_admin_page_renders_translated(client: Client, network, session: Session, language: str) -> None:
    client.login(session, network.admin_secretariat)
    client.cookies.set("rdn_locale", language)
    english = ("Skip to main content", "Sign out", "Language")
    with i18n.using(language):
        translated = [i18n.gettext(text) for text in english]
    pages = [*ADMIN_PAGES, f"/organizations/{network.orgs['canada'].id}", f"/people/{network.officer_canada.id}"]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert f'<html lang="{language}" dir="{i18n.direction(language)}">' in r.text, path
        for source, text in zip(english, translated, strict=True):
            assert text != source
            assert text in r.text, (path, text)
            assert f">{source}<" not in r.text, (path, source)


# Emails ------------------------------------------------------------------------------------------------------


def mail_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            return body.replace("\r\n", "\n")
    raise AssertionError("no text part")


def subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


@pytest.mark.parametrize(("language", "subject_text", "first_line", "hours"), [
    ("ar", "دعوة للانضمام إلى RDN", "مرحبًا Nadia Haddad،", "خلال 72 ساعة"),
    ("fr", "Invitation à rejoindre RDN", "Bonjour Nadia Haddad,", "dans les 72 heures"),
    ("es", "Invitación para unirse a RDN", "Hola, Nadia Haddad:", "en un plazo de 72 horas"),
])
def test_invitation_email_in_the_persons_language(network, session: Session, mailbox, language: str,
                                                  subject_text: str, first_line: str, hours: str) -> None:
    canada = network.orgs["canada"]
    email = f"nadia.{language}@rdn.test"
    service.create_person(session, actor=ACTOR, email=email, full_name="Nadia Haddad", org=canada,
                          role="officer", locale=language)
    session.commit()
    outbox.Worker().run_until_idle()
    [message] = mailbox.to(email)
    assert subject(message) == subject_text
    text = mail_text(message)
    assert text.splitlines()[0] == first_line
    assert "Canada" in text and hours in text
    assert re.search(r"http://testserver/password/set\?token=\S+", text)
    assert "%(" not in text and "Hello" not in text


def test_password_reset_email_in_the_persons_language(network, session: Session, mailbox) -> None:
    user, _ = make_person(session, "amira@rdn.test", network.orgs["canada"], [Role.officer], mfa=False,
                          name="Amira")
    user.locale = "fr"
    session.commit()
    service.send_password_reset(session, email="amira@rdn.test")
    session.commit()
    outbox.Worker().run_until_idle()
    [message] = mailbox.to("amira@rdn.test")
    assert subject(message) == "Réinitialisez votre mot de passe RDN"
    text = mail_text(message)
    assert text.startswith("Bonjour Amira,\n\n")
    assert "dans les 2 heures" in text
    assert text.rstrip().endswith("votre mot de passe reste inchangé.")


# Negotiation, direction, countries ---------------------------------------------------------------------------


@pytest.mark.parametrize(("cookie", "header", "expected"), [
    ("fr", "ar,es;q=0.9", "fr"),  # the switcher's cookie comes first
    ("ar", None, "ar"),
    ("xx", "es-MX,es;q=0.9", "es"),  # an unknown cookie is ignored
    ("", "fr-CA", "fr"),
    (None, "de;q=1.0, fr;q=0.4, ar;q=0.8", "ar"),  # the highest weight among supported languages
    (None, "es;q=0.2, fr;q=0.3", "fr"),
    (None, "en-GB;q=0.5, ES;q=0.9", "es"),  # case-insensitive, region ignored
    (None, "fr, ar", "fr"),  # equal weights: the first listed
    (None, "de, it;q=0.5", "en"),  # nothing supported: the default
    (None, "", "en"),
    (None, None, "en"),
    (None, "*", "en"),
])
def test_negotiate(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, header) == expected


def test_negotiate_falls_back_to_the_configured_default() -> None:
    assert i18n.negotiate(None, "de", default="es") == "es"
    assert i18n.negotiate(None, None, default="fr") == "fr"
    assert i18n.negotiate(None, "ar;q=0.1", default="fr") == "ar"


def test_negotiate_treats_weight_zero_as_not_acceptable() -> None:
    """RFC 9110 §12.4.2: q=0 means "not acceptable", so such a language is never chosen."""
    assert i18n.negotiate(None, "ar;q=0, de") == "en"
    assert i18n.negotiate(None, "fr;q=0, es;q=0.1") == "es"


@pytest.mark.parametrize(("locale", "expected"), [
    ("ar", "rtl"), ("fa", "rtl"), ("ps", "rtl"), ("ur", "rtl"), ("he", "rtl"), ("ar-SY", "rtl"), ("fa_AF", "rtl"),
    ("es", "ltr"), ("fr", "ltr"), ("en", "ltr"), ("es-MX", "ltr"),
])
def test_direction(locale: str, expected: str) -> None:
    assert i18n.direction(locale) == expected


def test_direction_of_the_current_locale() -> None:
    with i18n.using("ar"):
        assert i18n.direction() == "rtl"
    with i18n.using("es"):
        assert i18n.direction() == "ltr"


def test_country_names_are_localized() -> None:
    assert i18n.country_name("CA", "es") == "Canadá"
    assert i18n.country_name("CA", "fr") == "Canada"
    assert i18n.country_name("CA", "ar") == "كندا"
    assert i18n.country_name("DE", "fr") == "Allemagne"
    assert i18n.country_name("DE", "en") == "Germany"
    with i18n.using("es"):
        assert i18n.country_name("DE") == "Alemania"
    assert i18n.country_name("QQ", "es") == "QQ"
    assert i18n.country_name(None, "es") == ""


@pytest.mark.parametrize("locale", ["en", *LANGUAGES])
def test_country_lists_are_sorted_in_each_language(locale: str) -> None:
    countries = i18n.countries(locale)
    codes = [code for code, _ in countries]
    assert len(codes) == len(set(codes)) > 240
    assert all(len(code) == 2 and code.isupper() for code in codes)
    assert "ZZ" not in codes and "UN" not in codes
    assert dict(countries)["ES"] == {"en": "Spain", "es": "España", "fr": "Espagne", "ar": "إسبانيا"}[locale]
    assert [name for _, name in countries] == sorted(name for _, name in countries)
