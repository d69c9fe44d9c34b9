"""The best-practice library: Markdown that cannot carry script (hostile inputs, through the renderer and through
the note's page), deep nesting that stays cheap, validation that names fields and writes nothing, who may read
and change notes (pages and API), attachments accepted by their bytes and downloaded as attachments, search,
and the demo notes."""

from __future__ import annotations

import io
import re
import time
import uuid
import zipfile
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import identity, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import ValidationFailed
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext
from rdn.pathways import library
from rdn.pathways.models import Obstacle, Pathway, Practice
from tests.factories import Client, Network, api_token, csrf_of

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200 + b"This program cannot be run"


def office(kind: str, *, macros: bool = False) -> bytes:
    """A minimal Office Open XML package (enough for the sniffer: the parts it looks for)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml" if kind == "docx" else "xl/workbook.xml", "<x/>")
        if macros:
            z.writestr("word/vbaProject.bin" if kind == "docx" else "xl/vbaProject.bin", b"\x00macro")
    return buffer.getvalue()


def principal(net: Network, persona: str) -> Principal:
    return identity.principal_for(net.session, net.people[persona], org_id=net.org_of(persona).id, via="session")


def note(net: Network, persona: str = "officer_canada", *, upload: library.Upload | None = None,
         **over: Any) -> Practice:
    data = {"title": "Fee waiver for exit permits", "body": "We asked *together*.\n\n- count\n- ask\n",
            "tags": ["exit-permit", "fees"], "country": "LB", **over}
    practice = library.create(net.session, actor=principal(net, persona), data=data, upload=upload)
    net.session.commit()
    return practice


def browser(app: Any, net: Network, persona: str) -> Client:
    return Client(app).login(net.session, net.people[persona], org=net.org_of(persona))


# What the safe HTML may contain ----------------------------------------------------------------------------------


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


BAD_SCHEME = re.compile(r"^\s*(javascript|vbscript|data|file):", re.I)
RAW_TAG_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son\w+\s*=", re.I)


LAYOUT_TAGS = {"meta", "img", "form", "script"}  # the layout's own: metadata, the logo, forms, script files


def assert_safe(html: str, *, layout: bool = False) -> None:
    """No script, no event handler or style attribute, no link or source to a script-capable scheme (``layout``:
    a whole page, whose layout has its own meta tags, logo, forms and script files from /static/)."""
    parser = Tags()
    parser.feed(html)
    parser.close()
    # A handler written into a tag (quoted attribute values, where " onx=" is harmless text, left aside).
    assert not RAW_TAG_HANDLER.search(re.sub(r'"[^"]*"', '""', html)), html
    for tag, attrs in parser.tags:
        if tag == "script":
            assert layout and dict(attrs).get("src", "").startswith("/static/"), html
        forbidden = {"iframe", "svg", "object", "embed", "style", "math", "base", "img", "meta", "form"}
        assert tag not in (forbidden - LAYOUT_TAGS if layout else forbidden), html
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name, html)
            assert name.lower() != "style", html
            if name.lower() in {"href", "src", "action", "formaction", "xlink:href"} and value:
                assert not BAD_SCHEME.match(value), (tag, name, value)


def body_of(page_html: str) -> str:
    match = re.search(r'<article class="panel"[^>]*>(.*?)</article>', page_html, re.S)
    assert match, page_html[-2000:]
    return match.group(1)


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )",
    "[x](<javascript:alert(1)>)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    '<a href="javascript:alert(1)">x</a>',
    "![x](javascript:alert(1))",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#x3A;alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    "<style>body{display:none}</style>",
    '<div onclick="alert(1)">click</div>',
    '[x](https://ok.example/" onmouseover="alert(1))',
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "```js\" onload=\"alert(1)\n<script>alert(1)</script>\n```",
    "| a |\n| :-: |\n| <script>alert(1)</script> |",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<meta http-equiv=refresh content='0;url=javascript:alert(1)'>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_cannot_inject_script(text):
    html = str(library.render_markdown(text))
    assert "<script" not in html.lower()
    assert_safe(html)


def test_ordinary_markdown_still_renders():
    html = str(library.render_markdown(
        "# Heading\n\nSome *emphasis* and **strong** text, ~~struck~~.\n\n- one\n- two\n\n1. first\n2. second\n\n"
        "A [link](https://example.org/a?b=c \"Title\"), <https://example.org/auto> and <mailto:desk@example.org>.\n\n"
        "| Step | Days |\n| :--- | ---: |\n| Ask | 3 |\n\n![the plan](https://example.org/plan.png)\n\n> quoted\n\n"
        "`code` and <b>bold</b>\n"))
    assert "<h2>Heading</h2>" in html  # headings start below the page's title
    assert "<em>emphasis</em>" in html and "<strong>strong</strong>" in html and "<s>struck</s>" in html
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>first</li>" in html
    assert ('<a href="https://example.org/a?b=c" rel="nofollow noopener noreferrer" title="Title">link</a>'
            in html)
    assert '<a href="https://example.org/auto" rel="nofollow noopener noreferrer">' in html
    assert '<a href="mailto:desk@example.org" rel="nofollow noopener noreferrer">' in html
    assert "<table>" in html and "<th>Step</th>" in html and "style=" not in html  # alignment dropped (CSP)
    # An image is never loaded: it is a link to it, labelled with its alternative text.
    assert "<img" not in html
    assert '<a href="https://example.org/plan.png" rel="nofollow noopener noreferrer">the plan</a>' in html
    assert "<blockquote>" in html and "<code>code</code>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # raw HTML is shown as text
    assert_safe(html)


def test_links_only_to_http_https_and_mailto():
    for url in ("https://example.org", "http://example.org/x", "mailto:desk@example.org", "HTTPS://EXAMPLE.ORG"):
        assert library.safe_url(url), url
    for url in ("javascript:alert(1)", "JAVASCRIPT:x", "vbscript:x", "data:text/html,x", "file:///etc/passwd",
                "//evil.example", "/relative", "http:evil", "https://", "https://ex ample.org",
                "java\nscript:alert(1)", "https://example.org\\@evil", "ftp://example.org", ""):
        assert not library.safe_url(url), url
    # Relative and protocol-relative links stay text.
    html = str(library.render_markdown("[a](/logout) [b](//evil.example) [c](#x)"))
    assert "<a " not in html


@pytest.mark.parametrize("bomb", [
    "> " * 20_000 + "deep",
    "- " * 10_000 + "deep",
    "".join("  " * i + "- x\n" for i in range(400)),
    "*" * 10_000 + "a" + "*" * 10_000,
    "*_" * 10_000,
    "[" * 20_000,
    "![" * 10_000,
    "[x](" + "(" * 10_000 + ")" * 10_000 + ")",
    "<" * 20_000,
    "`" * 20_000,
    "|a|\n|-|\n" + "|x|\n" * 4_000,
    "[a]: <" * 3_000,
    "![" * 400_000,  # beyond what is ever rendered
])
def test_deep_nesting_and_pathological_input_stay_cheap(bomb):
    start = time.perf_counter()
    html = str(library.render_markdown(bomb))
    elapsed = time.perf_counter() - start
    assert elapsed < 3, f"{elapsed:.2f}s"
    assert_safe(html)


# Validation and the service ---------------------------------------------------------------------------------------


def _counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(Practice)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_invalid_fields_are_named_and_nothing_is_written(network, session):
    before = _counts(session)
    with pytest.raises(ValidationFailed) as caught:
        library.create(session, actor=principal(network, "officer_canada"), data={
            "title": "ab", "body": "   ", "tags": ["Fine", "two words ok", "bad_tag!"], "country": "XX",
            "pathway_id": str(uuid.uuid4()), "obstacle_id": "not-an-id"},
            upload=library.Upload("tool.pdf", EXE))
    fields = {e.field for e in caught.value.errors}
    assert fields == {"title", "body", "tags", "country", "pathway_id", "obstacle_id", "file"}
    tags_error = next(e.message for e in caught.value.errors if e.field == "tags")
    assert "bad_tag!" in tags_error and "fine" not in tags_error  # only the bad one is named
    with pytest.raises(ValidationFailed) as caught:
        library.create(session, actor=principal(network, "officer_canada"), data={
            "title": "x" * 201, "body": "y" * (library.MAX_BODY + 1), "tags": [f"t{i}" for i in range(11)]})
    assert {e.field for e in caught.value.errors} == {"title", "body", "tags"}
    with pytest.raises(ValidationFailed) as caught:
        library.create(session, actor=principal(network, "officer_canada"),
                       data={"title": "Fine title", "body": "Fine", "tags": ["x" * 31]})
    assert [e.field for e in caught.value.errors] == ["tags"]
    session.rollback()
    assert _counts(session) == before


def test_tags_are_normalised_and_search_finds_notes(network, session):
    a = note(network, tags=["Exit-Permit", "fee waiver", "démarche", "fees", "fees"], body="Asked 100% together")
    b = note(network, "caseworker_unhcr", title="ICRC travel documents", body="No passport? An ICRC document.",
             tags=["travel-documents"], country="")
    assert a.tags == ["exit-permit", "fee-waiver", "démarche", "fees"]
    reader = principal(network, "minister_spain")

    def ids(**kw: Any) -> list[uuid.UUID]:
        return [p.id for p in library.search(session, reader, **kw).items]

    assert set(ids()) == {a.id, b.id}
    assert ids(q="icrc DOCUMENT") == [b.id]  # title or body, any case
    assert ids(q="passport") == [b.id]
    assert ids(q="100%") == [a.id] and ids(q="%") == [a.id] and ids(q="_") == []  # wildcards are literal
    assert ids(tag="démarche") == [a.id] and ids(tag="Fee Waiver") == [a.id] and ids(tag="fee") == []
    assert ids(country="lb") == [a.id]
    assert ids(q="nothing like this") == []
    assert library.popular_tags(session, reader) == [
        ("démarche", 1), ("exit-permit", 1), ("fee-waiver", 1), ("fees", 1), ("travel-documents", 1)]


def test_writes_are_audited_and_only_the_own_organization_changes_a_note(network, session):
    practice = note(network)
    other = principal(network, "caseworker_unhcr")
    with pytest.raises(policy.NotFound):
        library.update(session, actor=other, practice=practice, data={"title": "Taken over"})
    with pytest.raises(policy.NotFound):
        library.delete(session, actor=other, practice=practice)
    with pytest.raises(policy.NotFound):
        library.access(session, other, practice.id, "practice.write")
    with pytest.raises(policy.NotFound):
        library.access(session, principal(network, "sponsor_group_a"), practice.id)
    with pytest.raises(policy.Forbidden):
        library.search(session, principal(network, "sponsor_group_a"))
    colleague = principal(network, "admin_canada")
    library.update(session, actor=colleague, practice=practice, data={"title": "Fee waiver, renewed"},
                   upload=library.Upload("notes.csv", b"step,days\nask,3\n"))
    session.commit()
    assert practice.title == "Fee waiver, renewed" and practice.content_type.startswith("text/csv")
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(practice.id))
                              .order_by(AuditEntry.seq)).all()
    assert actions == ["practice.create", "practice.update"]
    details = session.scalars(select(AuditEntry.details).where(AuditEntry.object_id == str(practice.id))
                              .order_by(AuditEntry.seq.desc())).first()
    assert details == {"changed": ["title", "attachment"]}
    library.delete(session, actor=colleague, practice=practice)
    assert session.scalar(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(1)) == "practice.delete"


# Attachments -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("decree.pdf", PDF, "application/pdf"),
    ("photo.PNG", PNG, "image/png"),
    ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 20, "image/jpeg"),
    ("notes.txt", "Démarche, étape 1\n".encode(), "text/plain; charset=utf-8"),
    ("list.csv", b"\xef\xbb\xbfa,b\n1,2\n", "text/csv; charset=utf-8"),
    ("template.docx", office("docx"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("figures.xlsx", office("xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("no-extension", PDF, "application/pdf"),
])
def test_attachments_are_accepted_by_their_bytes(name, data, expected):
    errors: list[Any] = []
    found = library.check_upload(library.Upload(name, data), errors)
    assert errors == [] and found is not None
    assert found[1] == expected
    if name == "no-extension":
        assert found[0] == "no-extension.pdf"


@pytest.mark.parametrize(("name", "data", "message"), [
    ("report.pdf", EXE, "must be a PDF"),  # a program renamed
    ("report.txt", EXE, "must be a PDF"),
    ("photo.pdf", PNG, "a PNG image, but its name ends in .pdf"),
    ("page.html", b"<html><script>alert(1)</script></html>", "plain text, but its name ends in .html"),
    ("image.svg", b"<svg onload=alert(1)/>", "plain text, but its name ends in .svg"),
    ("macro.docx", office("docx", macros=True), "without macros"),
    ("book.xlsx", b"PK\x03\x04not really a zip", "must be a PDF"),
    ("empty.pdf", b"", "empty"),
    ("big.pdf", PDF + b"0" * library.MAX_FILE, "larger than 5 MB"),
    ("latin1.txt", "caf\xe9".encode("latin-1"), "must be a PDF"),
])
def test_attachments_are_refused_by_their_bytes(name, data, message):
    errors: list[Any] = []
    assert library.check_upload(library.Upload(name, data), errors) is None
    assert [e.field for e in errors] == ["file"] and message in errors[0].message, errors


def test_file_names_are_cleaned_for_storage_and_headers():
    assert library.clean_filename("C:\\Users\\me\\..\\plan \"final\".pdf") == "plan final.pdf"
    assert library.clean_filename("../../etc/passwd") == "passwd"
    assert library.clean_filename("a\r\nb.pdf") == "ab.pdf"
    long = library.clean_filename("n" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")
    header = library.content_disposition("Démarche «modèle».pdf")
    assert header.startswith('attachment; filename="D_marche _mod_le_.pdf"; filename*=UTF-8\'\'D%C3%A9marche')


# Pages -----------------------------------------------------------------------------------------------------------


def test_sharing_reading_and_downloading_through_the_pages(app, network, session):
    officer = browser(app, network, "officer_canada")
    assert officer.get("/practices/new").status_code == 200
    # A browser without JavaScript: the CSRF token travels in the multipart form itself.
    officer.csrf = None
    token = csrf_of(officer.get("/practices/new").text)
    r = officer.post("/practices/new", data={
        "csrf_token": token, "title": "Remote interviews", "body": "## Set-up\n\n- a **private** room\n- a second line",
        "tags": "interviews, Remote", "country": "CO", "pathway_id": "", "obstacle_id": ""},
        files={"file": ("Checklist «v2».pdf", PDF, "application/octet-stream")})
    assert r.status_code == 303, r.text[-2000:]
    practice_id = r.headers["location"].split("/")[2].split("?")[0]
    practice = session.get(Practice, uuid.UUID(practice_id))
    assert practice.tags == ["interviews", "remote"] and practice.content_type == "application/pdf"
    assert practice.author_user_id == network.officer_canada.id

    # Another member's staff reads it, and downloads the attachment (never inline, never sniffed).
    reader = browser(app, network, "caseworker_unhcr")
    page = reader.get(f"/practices/{practice_id}")
    assert page.status_code == 200
    assert "<h3>Set-up</h3>" in page.text and "<strong>private</strong>" in page.text
    assert f'href="/practices/{practice_id}/file"' in page.text
    assert f'href="/practices/{practice_id}/edit"' not in page.text  # not theirs to change
    file = reader.get(f"/practices/{practice_id}/file")
    assert file.status_code == 200 and file.content == PDF
    assert file.headers["content-type"] == "application/pdf"
    assert file.headers["x-content-type-options"] == "nosniff"
    assert file.headers["content-disposition"].startswith('attachment; filename="Checklist _v2_.pdf"; filename*=')
    assert "sandbox" in file.headers["content-security-policy"]
    # The list, with its filters.
    listing = reader.get("/practices", params={"q": "remote", "country": "CO"})
    assert "Remote interviews" in listing.text and "<caption>" in listing.text
    assert "Remote interviews" in reader.get("/practices", params={"tag": "interviews"}).text
    empty = reader.get("/practices", params={"q": "no such words"})
    assert empty.status_code == 200 and "No notes match" in empty.text
    # The author's page offers the edit.
    assert f'href="/practices/{practice_id}/edit"' in officer.get(f"/practices/{practice_id}").text


def test_the_empty_library_and_pagination(app, network):
    reader = browser(app, network, "analyst_ec")
    assert "The library is empty" in reader.get("/practices").text
    for i in range(22):
        note(network, title=f"Note number {i:02d}")
    first = reader.get("/practices")
    assert first.text.count('href="/practices/') - first.text.count('href="/practices/new"') >= 20
    assert 'rel="next"' in first.text
    second = reader.get("/practices", params={"page": 2})
    assert "Showing 21 to 22 of 22" in second.text


def test_hostile_markdown_through_the_note_page(app, network):
    practice = note(network, title="<script>alert('title')</script>", body="\n\n".join(HOSTILE))
    page = browser(app, network, "minister_spain").get(f"/practices/{practice.id}")
    assert page.status_code == 200
    body = body_of(page.text)
    assert "<script" not in body.lower()
    assert_safe(body)
    assert_safe(page.text, layout=True)
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page.text
    # And through the API's body_html.
    api = browser(app, network, "minister_spain").get(f"/api/v1/practices/{practice.id}").json()
    assert "<script" not in api["body_html"].lower()
    assert_safe(api["body_html"])


def test_a_refused_form_names_the_fields_and_writes_nothing(app, network, session):
    officer = browser(app, network, "officer_canada")
    before = _counts(session)
    r = officer.post("/practices/new", data={"title": "ab", "body": "", "tags": "ok, not_ok", "country": "ZZ"},
                     files={"file": ("report.pdf", EXE, "application/pdf")})
    assert r.status_code == 422
    for anchor in ("#f-title", "#f-body", "#f-tags", "#f-country", "#f-file"):
        assert f'href="{anchor}"' in r.text, anchor
    assert "must be a PDF" in r.text and 'value="ok, not_ok"' in r.text  # what was typed is kept
    assert _counts(session) == before
    # A good form with an empty file input (a browser sends one) creates a note without attachment.
    r = officer.post("/practices/new", data={"title": "Good note", "body": "Text"},
                     files={"file": ("", b"", "application/octet-stream")})
    assert r.status_code == 303
    assert session.scalar(select(Practice.filename).where(Practice.title == "Good note")) == ""


def test_a_sponsor_group_sees_no_library(app, network):
    practice = note(network)
    sponsor = browser(app, network, "sponsor_group_a")
    assert sponsor.get("/practices").status_code == 403
    assert sponsor.get("/practices/new").status_code == 403
    assert sponsor.post("/practices/new", data={"title": "Our note", "body": "x"}).status_code == 403
    assert sponsor.get(f"/practices/{practice.id}").status_code == 404
    assert sponsor.get(f"/practices/{practice.id}/file").status_code == 404
    assert sponsor.get(f"/practices/{practice.id}/edit").status_code == 404
    assert sponsor.get("/api/v1/practices").status_code == 403
    assert sponsor.get(f"/api/v1/practices/{practice.id}").status_code == 404
    assert sponsor.post("/api/v1/practices", json={"title": "Our note", "body": "x"}).status_code == 403


def test_another_organization_cannot_edit_or_remove(app, network, session):
    practice = note(network, upload=library.Upload("a.txt", b"hello"))
    other = browser(app, network, "caseworker_unhcr")
    assert other.get(f"/practices/{practice.id}/edit").status_code == 404
    assert other.post(f"/practices/{practice.id}/edit", data={"title": "Mine now", "body": "x"}).status_code == 404
    assert other.post(f"/practices/{practice.id}/delete", data={"confirm": "1"}).status_code == 404
    assert other.patch(f"/api/v1/practices/{practice.id}", json={"title": "Mine now"}).status_code == 404
    assert other.delete(f"/api/v1/practices/{practice.id}").status_code == 404
    session.refresh(practice)
    assert practice.title == "Fee waiver for exit permits" and practice.filename == "a.txt"


def test_editing_replacing_and_removing_the_attachment(app, network, session):
    practice = note(network, upload=library.Upload("a.txt", b"hello"))
    practice_id = practice.id
    officer = browser(app, network, "officer_canada")
    form = officer.get(f"/practices/{practice.id}/edit")
    assert form.status_code == 200 and 'value="exit-permit, fees"' in form.text and "remove_file" in form.text
    r = officer.post(f"/practices/{practice.id}/edit", data={"title": "New title", "body": "New body", "tags": "x"},
                     files={"file": ("figures.xlsx", office("xlsx"), "application/octet-stream")})
    assert r.status_code == 303
    session.refresh(practice)
    assert practice.title == "New title" and practice.filename == "figures.xlsx" and practice.tags == ["x"]
    r = officer.post(f"/practices/{practice.id}/edit", data={"title": "New title", "body": "New body",
                                                             "remove_file": "1"})
    assert r.status_code == 303
    session.refresh(practice)
    assert practice.filename == "" and practice.data is None
    assert officer.get(f"/practices/{practice.id}/file").status_code == 404
    # Removing asks for a confirmation.
    assert officer.post(f"/practices/{practice.id}/delete").status_code == 422
    assert officer.post(f"/practices/{practice.id}/delete", data={"confirm": "1"}).status_code == 303
    session.expire_all()
    assert session.scalar(select(Practice.id).where(Practice.id == practice_id)) is None


# API -------------------------------------------------------------------------------------------------------------


def test_the_api(app, network, session):
    officer = browser(app, network, "officer_canada")
    r = officer.post("/api/v1/practices", json={"title": "Orientation by video", "body": "Three *short* sessions"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["body_html"] == "<p>Three <em>short</em> sessions</p>\n"
    assert created["organization"] == "Canada" and created["attachment"] is None and created["tags"] == []
    r = officer.post("/api/v1/practices", json={"title": "x", "body": "", "country": "QQ", "tags": ["a b c d"]})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"title", "body", "country"}
    r = officer.patch(f"/api/v1/practices/{created['id']}", json={"tags": ["orientation"], "country": "JO"})
    assert r.status_code == 200 and r.json()["tags"] == ["orientation"] and r.json()["title"] == created["title"]
    reader = browser(app, network, "analyst_ec")
    listed = reader.get("/api/v1/practices", params={"tag": "orientation", "country": "JO"}).json()
    assert [p["id"] for p in listed["items"]] == [created["id"]] and listed["meta"]["total"] == 1
    assert reader.get(f"/api/v1/practices/{created['id']}").json()["body"] == "Three *short* sessions"
    assert reader.patch(f"/api/v1/practices/{created['id']}", json={"title": "Mine"}).status_code == 404
    # A token with the read scope reads, and writes nothing.
    headers = api_token(session, network.officer_canada, network.orgs["canada"], ["read"])
    plain = Client(app)
    assert plain.get("/api/v1/practices", headers=headers).status_code == 200
    assert plain.post("/api/v1/practices", headers=headers, json={"title": "Token note", "body": "x"}
                      ).status_code == 403
    # Attachments are read through the API as downloads too.
    with_file = note(network, upload=library.Upload("plan.png", PNG))
    got = reader.get(f"/api/v1/practices/{with_file.id}").json()
    assert got["attachment"] == {"filename": "plan.png", "content_type": "image/png", "size": len(PNG),
                                 "url": f"/api/v1/practices/{with_file.id}/file"}
    listed = reader.get("/api/v1/practices", params={"per_page": 100}).json()["items"]
    assert {p["id"]: p["attachment"] and p["attachment"]["size"] for p in listed} == {
        created["id"]: None, str(with_file.id): len(PNG)}
    file = reader.get(got["attachment"]["url"])
    assert file.content == PNG and file.headers["content-disposition"].startswith("attachment;")
    assert file.headers["x-content-type-options"] == "nosniff"


# Demo ------------------------------------------------------------------------------------------------------------


def test_the_demo_notes_are_created_once(network, session):
    orgs = {"ca": "canada", "secretariat": "secretariat", "unhcr-like": "unhcr", "es": "spain", "iom-like": "unhcr"}
    people = {"officer_canada": "officer_canada", "admin_secretariat": "admin_secretariat",
              "caseworker_unhcr": "caseworker_unhcr", "minister_spain": "minister_spain",
              "officer_iom": "caseworker_unhcr"}
    said: list[str] = []
    ctx = DemoContext(session=session, orgs={k: network.orgs[v] for k, v in orgs.items()},
                      people={k: network.people[v] for k, v in people.items()}, say=said.append)
    library.seed(ctx)
    library.seed(ctx)
    notes = session.scalars(select(Practice)).all()
    assert len(notes) == len(library.DEMO_NOTES) == 5 and said == ["Created 5 best-practice notes"]
    assert all(n.tags for n in notes) and sum(1 for n in notes if n.country) >= 4
    assert sum(1 for n in notes if n.filename) == 2
    for n in notes:
        assert_safe(str(library.render_markdown(n.body)))


def test_a_note_about_a_pathway_and_an_obstacle(app, network, session):
    from datetime import date

    from rdn.pathways.models import ObstacleStatus, ObstacleType, PathwayStatus, PathwayType, Severity

    pathway = Pathway(org_id=network.orgs["canada"].id, country="CA", name="Government-assisted refugees",
                      type=PathwayType.resettlement, year=2026, status=PathwayStatus.open,
                      status_since=date(2026, 1, 1))
    obstacle = Obstacle(country="LB", type=ObstacleType.overstay_fine, title="Overstay fines at exit",
                        severity=Severity.high, status=ObstacleStatus.confirmed,
                        reported_by_org_id=network.orgs["unhcr"].id)
    session.add_all([pathway, obstacle])
    session.commit()
    officer = browser(app, network, "officer_canada")
    form = officer.get("/practices/new").text
    assert f'value="{pathway.id}"' in form and f'value="{obstacle.id}"' in form
    r = officer.post("/practices/new", data={"title": "Waiver of overstay fines", "body": "How.",
                                             "pathway_id": str(pathway.id), "obstacle_id": str(obstacle.id)})
    assert r.status_code == 303, r.text[-1500:]
    page = browser(app, network, "admin_unhcr").get(r.headers["location"]).text
    assert f'href="/pathways/{pathway.id}"' in page and f'href="/obstacles/{obstacle.id}"' in page
    listed = browser(app, network, "admin_unhcr").get("/api/v1/practices", params={"obstacle_id": str(obstacle.id)})
    assert [p["title"] for p in listed.json()["items"]] == ["Waiver of overstay fines"]
    assert browser(app, network, "admin_unhcr").get(
        "/api/v1/practices", params={"pathway_id": str(uuid.uuid4())}).json()["items"] == []
    # null in a PATCH unlinks the pathway; the other fields stay.
    practice_id = r.headers["location"].split("/")[2].split("?")[0]
    patched = officer.patch(f"/api/v1/practices/{practice_id}", json={"pathway_id": None, "title": None}).json()
    assert patched["pathway_id"] is None and patched["obstacle_id"] == str(obstacle.id)
    assert patched["title"] == "Waiver of overstay fines"
