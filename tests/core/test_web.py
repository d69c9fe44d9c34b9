"""The web layer's promises: security headers, no inline script, CSRF, RFC 9457 problems, identical 404s,
request ids, translated error pages, and API documentation served from our own static files."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from rdn.core.web import TEMPLATE_DIR
from tests.factories import Client, api_token, csrf_of

PROBLEM = "application/problem+json"


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_page_headers(response: Any) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    csp = csp_directives(response.headers["content-security-policy"])
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts is not None
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert "*" not in scripts
    assert csp.get("frame-ancestors") == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] in {"same-origin", "no-referrer", "strict-origin",
                                                   "strict-origin-when-cross-origin"}
    assert "no-store" in response.headers["cache-control"]


def test_every_kind_of_html_page_carries_the_security_headers(app, network, session):
    anonymous = TestClient(app, follow_redirects=False)
    c = Client(app).login(session, network.admin_secretariat)
    responses = [
        anonymous.get("/login"),
        anonymous.get("/password/forgot"),
        anonymous.get("/password/set", params={"token": "nothing"}),  # a 404 page
        anonymous.get("/no/such/page"),
        c.get("/"),
        c.get("/account"),
        c.get("/organizations"),
        c.get("/people"),
        c.get("/admin/jobs"),
        c.get("/admin/audit"),
        c.get(f"/organizations/{uuid.uuid4()}"),
        Client(app).login(session, network.officer_canada).get("/admin/jobs"),  # a 403 page
    ]
    assert {r.status_code for r in responses} == {200, 403, 404}
    for response in responses:
        assert_page_headers(response)


def test_static_files_are_cacheable(app):
    page = TestClient(app).get("/login")
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(a.startswith("/static/css/") for a in assets) and any(a.endswith(".js") or ".js?" in a for a in assets)
    for asset in assets:
        r = TestClient(app).get(asset)
        assert r.status_code == 200, asset
        cache = r.headers["cache-control"]
        assert "no-store" not in cache and "public" in cache
        max_age = re.search(r"max-age=(\d+)", cache)
        assert max_age and int(max_age.group(1)) >= 86400
        assert r.headers["x-content-type-options"] == "nosniff"


def test_a_missing_static_file_is_not_cached_for_long(app):
    r = TestClient(app).get("/static/css/no-such-file.css")
    assert r.status_code == 404
    cache = r.headers.get("cache-control", "")
    max_age = re.search(r"max-age=(\d+)", cache)
    assert "immutable" not in cache, cache
    assert "no-store" in cache or (max_age is not None and int(max_age.group(1)) <= 300), cache


INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*?[\s\"'](on[a-z]+|hx-on[:\-a-z]*)\s*=", re.S | re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*?\sstyle\s*=", re.S | re.I)


def test_no_template_has_inline_script_event_handlers_or_styles():
    templates = sorted(TEMPLATE_DIR.rglob("*.html"))
    assert len(templates) > 20
    problems = []
    for path in templates:
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(TEMPLATE_DIR)
        for attrs, body in INLINE_SCRIPT.findall(source):
            if body.strip():
                problems.append(f"{name}: inline <script> content")
            if "src=" not in attrs:
                problems.append(f"{name}: <script> without src")
        problems += [f"{name}: event handler attribute {m}" for m in EVENT_HANDLER.findall(source)]
        if STYLE_ATTRIBUTE.search(source):
            problems.append(f"{name}: style= attribute")
        if re.search(r"<style\b", source, re.I):
            problems.append(f"{name}: <style> element")
    assert problems == []


def test_the_checks_catch_what_they_look_for():
    # The template checks above are not vacuous.
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert EVENT_HANDLER.search('<button type="button" onclick="x()">')
    assert EVENT_HANDLER.search('<div hx-on:click="x()">')
    assert not EVENT_HANDLER.search('<p class="note">one=two</p>')
    assert STYLE_ATTRIBUTE.search('<p class="a" style="color: red">')


def test_form_posts_without_the_csrf_token_or_from_another_site_are_refused(app, network, session):
    anonymous = TestClient(app, follow_redirects=False)
    page = anonymous.get("/login")
    token = csrf_of(page.text)
    form = {"email": network.sponsor_group_a.email, "password": "correct horse battery staple", "next": "/"}
    refused = anonymous.post("/login", data=form)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "rdn_session" not in anonymous.cookies
    assert anonymous.post("/login", data={**form, "csrf_token": "forged"}).status_code == 403
    cross = anonymous.post("/login", data={**form, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert anonymous.post("/login", data={**form, "csrf_token": token},
                          headers={"Sec-Fetch-Site": "same-origin"}).status_code == 303

    # Signed in: a write without the token changes nothing.
    officer = network.officer_canada
    other = Client(app).login(session, officer)
    c = Client(app).login(session, officer)
    csrf, c.csrf = c.csrf, None
    assert c.post("/account/sessions/revoke-all").status_code == 403
    assert c.post("/account/sessions/revoke-all", headers={"Sec-Fetch-Site": "cross-site"},
                  data={"csrf_token": csrf}).status_code == 403
    assert c.post("/account/sessions/revoke-all", headers={"Sec-Fetch-Site": "same-site"},
                  data={"csrf_token": csrf}).status_code == 403
    api = c.delete(f"/api/v1/tokens/{uuid.uuid4()}")
    assert api.status_code == 403 and api.headers["content-type"].startswith(PROBLEM)
    assert other.get("/").status_code == 200
    assert c.post("/account/sessions/revoke-all", data={"csrf_token": csrf}).status_code == 303
    assert other.get("/").status_code == 303


def test_api_errors_are_rfc9457_problems_naming_the_field(app, network, session):
    headers = api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["admin"])
    api = TestClient(app)
    r = api.post("/api/v1/organizations", headers=headers,
                 json={"name": "X", "short_name": "okay-name", "kind": "ngo"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == 422
    assert body["instance"] == "/api/v1/organizations"
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert "name" in body["detail"]

    r = api.post("/api/v1/organizations", headers=headers,
                 json={"name": "Fine Name", "short_name": "okay-name", "kind": "spaceship"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["kind"]
    assert "kind" in r.json()["detail"]

    for response in (api.get("/api/v1/me"), api.get("/api/v1/no-such-thing", headers=headers),
                     api.post("/api/v1/organizations", headers={**headers, "Content-Type": "application/json"},
                              content=b"{not json")):
        assert response.status_code >= 400
        assert response.headers["content-type"].startswith(PROBLEM), response.text
        problem = response.json()
        assert {"type", "title", "status", "detail", "instance"} <= set(problem)
        assert problem["status"] == response.status_code


def test_missing_and_hidden_objects_give_identical_404s(app, network, session):
    headers = api_token(session, network.officer_canada, network.orgs["canada"], ["read"])
    api = TestClient(app)
    assert api.get(f"/api/v1/people/{network.officer_canada.id}", headers=headers).status_code == 200
    missing = api.get(f"/api/v1/people/{uuid.uuid4()}", headers=headers)
    hidden = api.get(f"/api/v1/people/{network.minister_spain.id}", headers=headers)
    no_org = api.get(f"/api/v1/organizations/{uuid.uuid4()}", headers=headers)
    for r in (missing, hidden, no_org):
        assert r.status_code == 404
        assert r.headers["content-type"] == missing.headers["content-type"]
        assert r.headers["content-type"].startswith(PROBLEM)

    def comparable(r: Any) -> dict[str, Any]:
        return {k: v for k, v in r.json().items() if k not in ("instance", "request_id")}

    assert comparable(missing) == comparable(hidden) == comparable(no_org)
    assert len(missing.content) - len(missing.json()["instance"]) == len(hidden.content) - len(
        hidden.json()["instance"])

    # The same through the pages.
    c = Client(app).login(session, network.officer_canada)
    page_missing = c.get(f"/people/{uuid.uuid4()}")
    page_hidden = c.get(f"/people/{network.minister_spain.id}")
    assert page_missing.status_code == page_hidden.status_code == 404

    def main(r: Any) -> str:
        return re.search(r"<main.*?</main>", r.text, re.S).group(0)  # type: ignore[union-attr]

    assert main(page_missing) == main(page_hidden)


def test_error_pages_are_html_in_the_visitors_language(app, network, session):
    c = Client(app).login(session, network.officer_canada)
    english = c.get(f"/organizations/{uuid.uuid4()}")
    assert english.status_code == 404
    assert english.headers["content-type"].startswith("text/html")
    assert '<html lang="en"' in english.text
    spanish = c.get(f"/organizations/{uuid.uuid4()}", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert spanish.status_code == 404
    assert spanish.headers["content-type"].startswith("text/html")
    assert '<html lang="es"' in spanish.text
    assert spanish.headers["content-language"] == "es"
    anonymous = TestClient(app).get("/nothing-here", headers={"Accept-Language": "es"})
    assert anonymous.status_code == 404 and '<html lang="es"' in anonymous.text
    arabic = c.get("/admin/jobs", headers={"Accept-Language": "ar"})
    assert arabic.status_code == 403
    assert '<html lang="ar" dir="rtl"' in arabic.text
    # The API stays JSON whatever the language.
    api = c.get(f"/api/v1/organizations/{uuid.uuid4()}", headers={"Accept-Language": "es"})
    assert api.headers["content-type"].startswith(PROBLEM)


def test_request_id_is_echoed_when_valid_and_generated_otherwise(app):
    c = TestClient(app)
    assert c.get("/login", headers={"X-Request-ID": "abc-123.def:4_5"}).headers["x-request-id"] == "abc-123.def:4_5"
    generated = set()
    for bad in ("has spaces in it", "x" * 65, "semi;colon", ""):
        rid = c.get("/login", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert rid != bad and re.fullmatch(r"[0-9a-f]{32}", rid)
        generated.add(rid)
    rid = c.get("/login").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    generated.add(rid)
    assert len(generated) == 5
    problem = c.get("/api/v1/me", headers={"X-Request-ID": "trace-77"})
    assert problem.headers["x-request-id"] == "trace-77"
    assert problem.json()["request_id"] == "trace-77"


def test_api_docs_load_only_our_own_static_files(app):
    c = TestClient(app)
    docs = c.get("/api/docs")
    assert docs.status_code == 200
    assert_page_headers(docs)
    urls = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(urls) >= 3
    assert not re.search(r"https?://", docs.text)
    for url in urls:
        assert url.startswith("/static/"), url
        assert c.get(url).status_code == 200, url
    for _attrs, body in INLINE_SCRIPT.findall(docs.text):
        assert not body.strip()
    assert c.get("/api/openapi.json").json()["info"]["title"] == "RDN"



def test_api_docs_are_not_served_in_production(production_app):
    c = TestClient(production_app, base_url="https://testserver")
    assert c.get("/api/docs").status_code == 404
    assert c.get("/api/openapi.json").status_code == 404
    assert "strict-transport-security" in c.get("/api/docs").headers
