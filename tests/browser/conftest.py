"""Browser tests: a real ``rdn serve`` with the demo network, driven through Debian's Chromium.

Chromium is never downloaded: Playwright drives ``/usr/bin/chromium``. CI installs it (``.ci/run``) and
sets RDN_REQUIRE_BROWSER=1, so there a missing browser fails the run; on a machine without it the browser
tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.conftest import free_port, fresh_database_url, subprocess_env

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
RDN = str(Path(sys.executable).with_name("rdn"))
DEMO_PASSWORD = "Resettle-Demo-2026!"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("RDN_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"RDN_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
    skip = pytest.mark.skip(reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


def start_server(env: dict[str, str], port: int) -> tuple[subprocess.Popen[bytes], str]:
    """``rdn serve`` (with its worker) on ``port``, once it answers /readyz; with its address."""
    proc = subprocess.Popen([RDN, "serve", "--port", str(port), "--worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the server did not start")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, smtp_server: Any) -> Iterator[str]:
    """A real server on a fresh database seeded with the demo network (and an in-process worker)."""
    gen = fresh_database_url(tmp_path_factory.mktemp("browser"))
    url = next(gen)
    port = free_port()
    env = subprocess_env(url, smtp_server[0], RDN_SSE_MAX_SECONDS="60",
                                       RDN_BASE_URL=f"http://127.0.0.1:{port}")
    subprocess.run([RDN, "demo"], env=env, check=True, capture_output=True)
    proc, base = start_server(env, port)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        next(gen, None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API runs an event loop in this thread while it is open, which would
    # break later tests that start their own (asyncio.run); it stops when the module's tests are done.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield instance
        instance.close()


def totp_code(email: str) -> str:
    from rdn.network.demo import demo_totp_secret

    return pyotp.TOTP(demo_totp_secret(email)).now()


def sign_in(page: Any, base: str, email: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    """The real sign-in: password, then a TOTP code from the persona's secret."""
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/login/mfa**")
    page.get_by_label("Code").fill(totp_code(email))
    page.get_by_role("button", name="Verify").click()
    try:
        page.wait_for_url(base + "/", timeout=5000)
    except PlaywrightTimeout:
        # A code is accepted once: if an earlier test used this step's code (a sign-in or a step-up), the
        # next step's code is the one a person would type.
        time.sleep(30 - time.time() % 30 + 1)
        page.get_by_label("Code").fill(totp_code(email))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(base + "/")


AXE_SERIOUS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""


def axe_violations(browser: Any, signed_in: Any, server: str, paths: list[str],
                   locales: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    """axe-core's serious and critical violations on each page, in each language, as the person signed in to
    ``signed_in`` (a browser context) sees them: {"ar /path": [...]} (empty when there are none). Arabic pages
    must also be laid out right to left."""
    audit = browser.new_context(bypass_csp=True, storage_state=signed_in.storage_state())
    page = audit.new_page()
    found: dict[str, Any] = {}
    try:
        for locale in locales:
            page.goto(server + "/")
            page.locator("#locale-switch").select_option(locale)
            page.locator("form[action='/locale'] button").click()
            for path in paths:
                page.goto(server + path)
                if locale == "ar":
                    assert page.locator("html").get_attribute("dir") == "rtl", path
                page.add_script_tag(path=str(AXE))
                violations = page.evaluate(AXE_SERIOUS)
                if violations:
                    found[f"{locale} {path}"] = violations
    finally:
        if locales != ("en",):  # the language is the person's too: give them back English for later sign-ins
            page.goto(server + "/")
            page.locator("#locale-switch").select_option("en")
            page.locator("form[action='/locale'] button").click()
        audit.close()
    return found
