"""Two app servers on one PostgreSQL database see each other's events (LISTEN/NOTIFY).

Each server is a real ``rdn serve`` process. A browser-like client listens to the Server-Sent Events stream
of one server while a change is made through the API of the other; the event must arrive.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from rdn import db
from rdn.core import identity
from rdn.core.web import session_cookie_name
from tests.conftest import ON_POSTGRES, free_port, fresh_database_url, subprocess_env
from tests.factories import build_network

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ON_POSTGRES, reason="LISTEN/NOTIFY between servers needs PostgreSQL "
                                                "(runs when RDN_TEST_DATABASE_URL names one, as in CI)"),
]
RDN = str(Path(sys.executable).with_name("rdn"))


@pytest.fixture
def database(tmp_path):
    yield from fresh_database_url(tmp_path)


def _serve(url: str, smtp_port: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = subprocess_env(url, smtp_port, RDN_SSE_MAX_SECONDS="60")
    proc = subprocess.Popen([RDN, "serve", "--port", str(port), "--no-worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def _listen(base: str, cookie: str, events: queue.Queue[str], ready: threading.Event) -> None:
    try:
        with httpx.stream("GET", base + "/events", cookies={session_cookie_name(): cookie}, timeout=30) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    ready.set()
                if line.startswith(("event:", "data:")):
                    events.put(line.split(":", 1)[1].strip())
    except httpx.HTTPError:
        return  # the server was stopped at the end of the test


def test_two_servers_see_each_others_events(database, smtp_server):
    engine = db.make_engine(database)
    with Session(engine) as session:
        net = build_network(session)
        cookie, row = identity.start_session(session, net.officer_canada, ip=None, user_agent="test")
        identity.activate_session(row, mfa=True)
        token, _ = identity.create_token(session, user=net.admin_secretariat, org_id=net.orgs["secretariat"].id,
                                         name="servers", scopes=["read", "write", "admin"])
        session.commit()
    engine.dispose()

    first, base_a = _serve(database, smtp_server[0])
    second, base_b = _serve(database, smtp_server[0])
    try:
        for listener_base, writer_base, name in ((base_b, base_a, "Made on A"), (base_a, base_b, "Made on B")):
            events: queue.Queue[str] = queue.Queue()
            ready = threading.Event()
            thread = threading.Thread(target=_listen, args=(listener_base, cookie, events, ready), daemon=True)
            thread.start()
            assert ready.wait(10), "the event stream did not open"
            time.sleep(0.3)  # the listener's subscription is registered right after the first line
            response = httpx.post(writer_base + "/api/v1/organizations", headers={"Authorization": f"Bearer {token}"},
                                  json={"name": name, "short_name": name.lower().replace(" ", "-"),
                                        "kind": "ngo", "country": "CA"}, timeout=10)
            assert response.status_code == 201, response.text
            org_id = response.json()["id"]
            received: list[str] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(org_id in item for item in received):
                with contextlib.suppress(queue.Empty):
                    received.append(events.get(timeout=0.5))
            assert "org.created" in received, f"{listener_base} received {received}"
            assert any(org_id in item and name in item for item in received)
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait(timeout=30)
