"""Red phone benchmark, on SQLite and PostgreSQL.

1. Paging: a crisis declared through the API with 50 member governments x 20 people in level 1 of their
   chains (1,000 people): the time from the declaration to each first page's email being accepted by a
   local SMTP server (median, p99, last). Goal: every first page handed to SMTP within 10 s.
2. The room: 500 clients connected to the crisis room's live events (Server-Sent Events); a message is
   posted, again and again; the time from posting to each client receiving it (median, p99).
   Goal: p99 under 250 ms.

    .venv/bin/python bench/redphone.py [--governments 50] [--people 20] [--clients 500] [--messages 20]
                                       [--workers 2] [--backends sqlite,postgresql]

The platform runs as in production: ``rdn serve`` (no in-process worker) and ``rdn worker`` processes.
PostgreSQL is reached at RDN_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
a database is created per run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from outbox import environ, postgres_database, sqlite_database  # noqa: E402
from rdn import db, migrate, modules  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core import clock, identity  # noqa: E402
from rdn.core.audit import Actor  # noqa: E402
from rdn.core.crypto import Keyring  # noqa: E402
from rdn.core.tenancy import OrgKind, Role  # noqa: E402
from rdn.network import service as network  # noqa: E402
from rdn.redphone import chains  # noqa: E402
from rdn.redphone.models import ContactKind, ContactMethod  # noqa: E402

RDN = str(Path(sys.executable).with_name("rdn"))
console = Console()
ACTOR = Actor("bench")


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        raw = envelope.original_content or envelope.content
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"message-id:") and b"page-" in line:
                with self.lock:
                    self.pages.setdefault(line.split(b":", 1)[1].strip().decode(), now)
                break
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def build(url: str, governments: int, people: int) -> tuple[str, str]:
    """The network: a secretariat, the governments with their chains, everyone reachable by email.
    Returns a token to declare with (Germany's senior official) and one to listen with."""
    engine = db.make_engine(url)
    with Session(engine) as session:
        ring = Keyring.of(session)
        secretariat = network.create_organization(session, actor=ACTOR, name="Secretariat", short_name="sec",
                                                  kind=OrgKind.secretariat)
        lead = network.create_person(session, actor=ACTOR, email="lead@sec.bench", full_name="Lead",
                                     org=secretariat, role=Role.admin, invite=False)
        network.grant_role(session, actor=ACTOR, user=lead, org=secretariat, role=Role.senior_official)
        declarer = None
        for g in range(governments):
            org = network.create_organization(session, actor=ACTOR, name=f"Government {g:02d}", short_name=f"gov{g}",
                                              kind=OrgKind.government, country="CA")
            ids = []
            for p in range(people):
                role = Role.senior_official if p == 0 else Role.officer
                user = network.create_person(session, actor=ACTOR, email=f"p{p}@gov{g}.bench",
                                             full_name=f"Person {p} of {g}", org=org, role=role, invite=False)
                method = ContactMethod(id=uuid.uuid4(), user_id=user.id, kind=ContactKind.email, hint="p•••",
                                       verified_at=clock.now(), active=True)
                method.seal("address", user.email, keyring=ring)
                session.add(method)
                ids.append(user.id)
                if declarer is None and role == Role.senior_official:
                    declarer = (user, org)
            chains.set_chain(session, actor=ACTOR, org=org, repeat_count=1,
                             levels=[chains.LevelSpec("Level 1", 10, ids)])
        assert declarer is not None
        declare_token, _ = identity.create_token(session, user=declarer[0], org_id=declarer[1].id, name="bench",
                                                 scopes=["read", "write"])
        listen_token, _ = identity.create_token(session, user=lead, org_id=secretariat.id, name="listen",
                                                scopes=["read", "write"])
        session.commit()
    engine.dispose()
    return declare_token, listen_token


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([RDN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def sse_client(port: int, path: str, token: str, received: dict[str, float], ready: asyncio.Event,
                     counter: list[int], total: int, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    mine: dict[str, float] = {}
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"retry:"):
                counter[0] += 1
                if counter[0] == total:
                    ready.set()
            elif line.startswith(b"data:") and b"message_id" in line:
                now = time.perf_counter()
                data = json.loads(line[5:])
                mine.setdefault(data["message_id"], now)
    finally:
        writer.close()
        for key, value in mine.items():
            received.setdefault(key, 0.0)
            received[f"{key}:{id(mine)}"] = value


async def room_bench(port: int, crisis_id: str, token: str, clients: int, messages: int) -> list[float]:
    path = f"/api/v1/crises/{crisis_id}/events"
    received: dict[str, float] = {}
    ready, stop = asyncio.Event(), asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(sse_client(port, path, token, received, ready, counter, clients, stop))
             for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(1.0)  # every subscription is registered
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for n in range(messages):
            t0 = time.perf_counter()
            response = await client.post(f"/api/v1/crises/{crisis_id}/messages",
                                         json={"client_id": uuid.uuid4().hex, "body": f"Room message {n}"})
            response.raise_for_status()
            sent[response.json()["id"]] = t0
            await asyncio.sleep(0.25)
    await asyncio.sleep(2.0)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = []
    for key, value in received.items():
        if ":" in key:
            message_id = key.split(":")[0]
            if message_id in sent:
                latencies.append((value - sent[message_id]) * 1000)
    return latencies


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    migrate.upgrade(url)
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    set_settings(load_settings(environ=environ(url, smtp_port)))
    modules.load_job_handlers()
    with console.status(f"{name}: building {args.governments} governments x {args.people} people"):
        declare_token, listen_token = build(url, args.governments, args.people)
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RDN_")}, **environ(url, smtp_port),
           "RDN_WORKER_POLL_SECONDS": "0.2"}
    server = start(["serve", "--port", str(port), "--no-worker"], env)
    workers = [start(["worker"], env) for _ in range(args.workers)]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(1.5)  # the workers are listening
        expected = args.governments * args.people
        t0 = time.perf_counter()
        response = httpx.post(f"http://127.0.0.1:{port}/api/v1/crises", timeout=60,
                              headers={"Authorization": f"Bearer {declare_token}"},
                              json={"title": "Benchmark crisis", "activation_level": "full_activation"})
        response.raise_for_status()
        crisis_id = response.json()["id"]
        with console.status(f"{name}: waiting for {expected} first pages"):
            deadline = time.monotonic() + 120
            while len(sink.pages) < expected and time.monotonic() < deadline:
                time.sleep(0.05)
        page_latencies = [(t - t0) for t in sink.pages.values()]
        with console.status(f"{name}: {args.clients} clients in the room, {args.messages} messages"):
            room = asyncio.run(room_bench(port, crisis_id, listen_token, args.clients, args.messages))
    finally:
        for proc in (server, *workers):
            proc.terminate()
        for proc in (server, *workers):
            proc.wait(timeout=30)
        controller.stop()
        db.engine().dispose()
        set_settings(None)
    return {
        "pages": len(page_latencies), "expected": expected,
        "page_median": statistics.median(page_latencies), "page_p99": percentile(page_latencies, 99),
        "page_last": max(page_latencies),
        "room_samples": len(room), "room_expected": args.clients * args.messages,
        "room_median": statistics.median(room), "room_p99": percentile(room, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--governments", type=int, default=50)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    pg_admin = os.environ.get("RDN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    tmp = Path(tempfile.mkdtemp(prefix="rdn-bench-"))
    results = {}
    for backend in args.backends.split(","):
        url, cleanup = sqlite_database(tmp) if backend == "sqlite" else postgres_database(pg_admin)
        try:
            results[backend] = run_backend(backend, url, args)
        finally:
            cleanup()
    people = args.governments * args.people
    table = Table(title=f"Red phone: {args.governments} governments x {args.people} people; {args.clients} room "
                        f"clients; {args.workers} workers; {os.cpu_count()} CPUs")
    for column in ("database", "first pages sent", "page: median s", "page: p99 s", "last page s",
                   "room deliveries", "room: median ms", "room: p99 ms"):
        table.add_column(column, justify="right")
    for backend, r in results.items():
        table.add_row(backend, f"{r['pages']}/{people}", f"{r['page_median']:.2f}", f"{r['page_p99']:.2f}",
                      f"{r['page_last']:.2f}", f"{r['room_samples']}/{r['room_expected']}",
                      f"{r['room_median']:.0f}", f"{r['room_p99']:.0f}")
    console.print(table)
    console.print("Goals: every first page handed to SMTP within 10 s; room messages p99 under 250 ms.")


if __name__ == "__main__":
    main()
