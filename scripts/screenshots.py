"""Take the README's screenshots from a running demo server (``make run`` or ``rdn serve``).

    .venv/bin/python scripts/screenshots.py http://127.0.0.1:8000 EMAIL PREFIX PATH[=NAME] ...

Signs in as the demo persona EMAIL (password and TOTP from the demo seeding), opens each PATH and writes
``docs/screenshots/PREFIX-NAME.png`` (NAME defaults to the path's last part). Uses Debian's chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyotp
from playwright.sync_api import sync_playwright

from rdn.network.demo import DEMO_PASSWORD, demo_totp_secret

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def main(base: str, email: str, prefix: str, paths: list[str]) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(base + "/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/login/mfa**")
        page.get_by_label("Code").fill(pyotp.TOTP(demo_totp_secret(email)).now())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(base + "/")
        for item in paths:
            path, _, name = item.partition("=")
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            target = OUT / f"{prefix}-{name or path.rstrip('/').rsplit('/', 1)[-1] or 'home'}.png"
            page.screenshot(path=str(target))
            print(target)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
