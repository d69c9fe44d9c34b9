"""Pathway search under concurrent clients: "which pathways could people of this nationality, where they are now,
use?", through the API and the page (which also lists the obstacles known there and draws places offered
against places used).

A fresh database is migrated and seeded with ``--pathways`` pathways (default 2,000) of 30 destination
governments and ``--obstacles`` obstacles (default 5,000), spread over about 150 nationalities and 60 host
countries, inserted directly with the models (search keys computed as the service computes them). Real
``rdn serve`` processes (no worker; on PostgreSQL one per CPU as docs/operations.md deploys them, on SQLite one, as its
single-process mode runs; ``--servers`` to choose), each on a port of its own as behind a load balancer, are then
driven by ``--clients`` concurrent clients (default 10) on the same machine, each a caseworker of an agency with
an API token and a browser session, for ``--seconds`` per scenario after a warm-up:

* api: ``GET /api/v1/pathways?nationality=..&current_country=..`` (now and then ``status=open`` or page 2);
* page: ``GET /pathways?nationality=..&current_country=..`` (pathways, obstacles, the places picture).

Goal: p95 under 100 ms for each.

    .venv/bin/python bench/pathways.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/rdn_bench_pathways]
                                       [--pathways 2000] [--obstacles 5000] [--clients 10] [--seconds 20]
                                       [--warmup 3] [--scenarios api,page] [--servers N] [--keep]

Without ``--pg`` the database is a temporary SQLite file. With ``--pg`` the database named in the URL is
created (dropped first if it exists) through the server's ``postgres`` database, and dropped at the end unless
``--keep``. Set COLUMNS (e.g. COLUMNS=140) for wide tables when the output is not a terminal.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rdn import db, migrate  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core import clock, i18n, identity  # noqa: E402
from rdn.core.audit import Actor  # noqa: E402
from rdn.core.tenancy import Organization, OrgKind, Role  # noqa: E402
from rdn.core.web import session_cookie_name  # noqa: E402
from rdn.network import service as network  # noqa: E402
from rdn.pathways.catalog import key_rows  # noqa: E402
from rdn.pathways.models import (  # noqa: E402
    Obstacle,
    ObstacleStatus,
    ObstacleType,
    Pathway,
    PathwayStatus,
    PathwayType,
    Severity,
)

RDN = str(Path(sys.executable).with_name("rdn"))
console = Console()
ACTOR = Actor("bench")
GOAL_MS = 100.0
SCENARIOS = {"api": "/api/v1/pathways", "page": "/pathways"}

#: Nationalities most often asked about (weighted up), then ~130 others.
COMMON_NATIONALITIES = ["VE", "AF", "SY", "SD", "SS", "CD", "MM", "UA", "ER", "SO", "HT", "CO", "IQ", "NI", "CU",
                        "YE", "ET", "BI", "CF", "PS"]
#: Countries where people are: the hosts most often asked about first.
HOSTS = ["CO", "PE", "EC", "CR", "TR", "LB", "JO", "PK", "IR", "BD", "UG", "KE", "ET", "TD", "SD", "EG", "MX", "PA",
         "GT", "CL", "BR", "AR", "DO", "TT", "GY", "IQ", "LY", "NE", "ML", "BF", "CM", "NG", "RW", "TZ", "ZM", "MW",
         "MZ", "ZA", "CD", "CG", "SS", "DJ", "YE", "MY", "TH", "ID", "IN", "NP", "MA", "TN", "DZ", "MR", "SN", "AM",
         "AZ", "GE", "MD", "PL", "RO", "GR"]
DESTINATIONS = ["CA", "US", "AU", "NZ", "GB", "IE", "DE", "FR", "ES", "IT", "PT", "NL", "BE", "LU", "CH", "AT", "SE",
                "NO", "DK", "FI", "IS", "BR", "AR", "UY", "CL", "JP", "KR", "PH", "CZ", "LT"]


def nationalities() -> list[str]:
    others = [c for c, _n in i18n.countries() if c not in COMMON_NATIONALITIES and c not in DESTINATIONS]
    return COMMON_NATIONALITIES + random.Random(3).sample(others, 130)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def environ(url: str) -> dict[str, str]:
    return {"RDN_MODE": "test", "RDN_DATABASE_URL": url, "RDN_LOG_LEVEL": "WARNING", "RDN_INPROCESS_WORKER": "false",
            "RDN_SMTP_HOST": "127.0.0.1", "RDN_SMTP_PORT": "9"}


# The database --------------------------------------------------------------------------------------------------


def postgres(url: str) -> tuple[str, Any]:
    """Create the database ``url`` names (afresh); return its URL and a function dropping it."""
    target = make_url(db.normalise_url(url))
    name = target.database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"--pg: the URL must name a database of letters, digits and underscores, not {name!r}")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def run(*statements: str) -> None:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')

    def drop() -> None:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return target.render_as_string(hide_password=False), drop


def database(pg: str, tmp: Path) -> tuple[str, Any, str]:
    """The benchmark's database: the PostgreSQL one ``pg`` names (created afresh), else a SQLite file in
    ``tmp``; with the function dropping it, and the backend's name."""
    if pg:
        url, drop = postgres(pg)
        return url, drop, "PostgreSQL"
    return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}", lambda: None, "SQLite"


@dataclass
class Seeded:
    pathways: int
    obstacles: int
    seconds: float


def seed(url: str, n_pathways: int, n_obstacles: int) -> Seeded:
    rng = random.Random(11)
    nats = nationalities()
    nat_weights = [8.0 if c in COMMON_NATIONALITIES[:6] else 3.0 if c in COMMON_NATIONALITIES else 1.0 for c in nats]
    host_weights = [max(1.0, 12.0 - k * 0.5) for k in range(len(HOSTS))]
    year = clock.now().year
    started = time.perf_counter()
    engine = db.make_engine(url)
    with Session(engine) as session:
        govs = [network.create_organization(session, actor=ACTOR, name=f"Government {c}", short_name=f"gov-{c.lower()}",
                                            kind=OrgKind.government, country=c) for c in DESTINATIONS]
        agency = network.create_organization(session, actor=ACTOR, name="Refugee Agency", short_name="agency",
                                             kind=OrgKind.agency, country="CH")
        session.flush()
        now = clock.now()
        kinds, statuses = list(PathwayType), [PathwayStatus.open] * 14 + [PathwayStatus.paused] * 3 + [
            PathwayStatus.closed] * 3
        rows = []
        for i in range(n_pathways):
            gov = govs[i % len(govs)]
            eligible = [] if rng.random() < 0.4 else sorted(set(rng.choices(nats, nat_weights, k=rng.randint(1, 8))))
            where = [] if rng.random() < 0.35 else sorted(set(rng.choices(HOSTS, host_weights, k=rng.randint(1, 6))))
            places = rng.choice((50, 100, 200, 500, 1000, 2500, 5000))
            kind = rng.choice(kinds)
            rows.append(Pathway(
                org_id=gov.id, country=gov.country, name=f"{kind.value.replace('_', ' ').title()} {i}", type=kind,
                description=f"Benchmark pathway {i}.", nationalities=eligible, locations=where, categories=[],
                conditions="", year=year, places=places,
                places_used=rng.randint(0, places), processing_days=rng.randint(30, 900), fee_amount=None,
                fee_currency="", documents=["Identity document"], responsible=f"Ministry {gov.country}",
                status=rng.choice(statuses), status_since=now.date(), created_at=now, updated_at=now))
        session.add_all(rows)
        session.flush()
        session.add_all([key for row in rows for key in key_rows(row.id, row.nationalities, row.locations)])
        obstacles = []
        for i in range(n_obstacles):
            affected = [] if rng.random() < 0.3 else sorted(set(rng.choices(nats, nat_weights, k=rng.randint(1, 4))))
            status = rng.choices(list(ObstacleStatus), (30, 30, 15, 25))[0]
            obstacles.append(Obstacle(
                country=rng.choices(HOSTS, host_weights)[0], type=rng.choice(list(ObstacleType)),
                title=f"Obstacle {i}", description="", nationalities=affected, severity=rng.choice(list(Severity)),
                status=status, history=[], links=[], reported_by_org_id=agency.id,
                since=(now - timedelta(days=rng.randint(1, 700))).date(),
                resolved_at=now if status == ObstacleStatus.resolved else None,
                created_at=now - timedelta(days=rng.randint(0, 700)),
                updated_at=now - timedelta(days=rng.randint(0, 300))))
        session.add_all(obstacles)
        session.commit()
    with engine.connect() as conn:  # statistics, as a database in service has them
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()
    return Seeded(n_pathways, n_obstacles, time.perf_counter() - started)


@dataclass
class Client:
    token: str
    cookie: str
    base_url: str


def make_clients(url: str, count: int, ports: list[int]) -> list[Client]:
    """One caseworker of the agency per client, each with an API token and a browser session; the clients are
    spread over the servers' ports as a load balancer would spread them."""
    engine = db.make_engine(url)
    clients = []
    with Session(engine) as session:
        agency = session.scalars(select(Organization).where(Organization.short_name == "agency")).one()
        for n in range(count):
            user = network.create_person(session, actor=ACTOR, email=f"client{n}@agency.bench", full_name=f"Client {n}",
                                         org=agency, role=Role.caseworker, invite=False)
            token, _row = identity.create_token(session, user=user, org_id=agency.id, name="bench", scopes=["read"])
            cookie, row = identity.start_session(session, user, ip="127.0.0.1", user_agent="bench")
            identity.activate_session(row, mfa=True)
            row.active_org_id = agency.id
            clients.append(Client(token, cookie, f"http://127.0.0.1:{ports[n % len(ports)]}"))
        session.commit()
    engine.dispose()
    return clients


# The load ------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    ms: float
    status: int
    total: int | None


def params_for(rng: random.Random, nats: list[str], weights: list[float], host_weights: list[float]
               ) -> dict[str, Any]:
    params: dict[str, Any] = {"nationality": rng.choices(nats, weights)[0],
                              "current_country": rng.choices(HOSTS, host_weights)[0]}
    roll = rng.random()
    if roll < 0.15:
        params["status"] = "open"
    elif roll < 0.25:
        params["page"] = 2
    return params


def client_loop(client: Client, scenario: str, until: float, seed_: int, out: list[Sample], errors: list[str]) -> None:
    rng = random.Random(seed_)
    nats = nationalities()
    weights = [8.0 if c in COMMON_NATIONALITIES[:6] else 3.0 if c in COMMON_NATIONALITIES else 1.0 for c in nats]
    host_weights = [max(1.0, 12.0 - k * 0.5) for k in range(len(HOSTS))]
    headers = {"Authorization": f"Bearer {client.token}"} if scenario == "api" else {}
    cookies = {session_cookie_name(): client.cookie} if scenario == "page" else {}
    with httpx.Client(base_url=client.base_url, headers=headers, cookies=cookies, timeout=30) as http:
        while time.perf_counter() < until:
            params = params_for(rng, nats, weights, host_weights)
            t0 = time.perf_counter()
            try:
                response = http.get(SCENARIOS[scenario], params=params)
            except httpx.HTTPError as exc:
                errors.append(f"{scenario} {params}: {exc!r}")
                continue
            ms = (time.perf_counter() - t0) * 1000
            total = None
            if response.status_code == 200 and scenario == "api":
                total = response.json()["meta"]["total"]
            elif response.status_code != 200 and len(errors) < 20:
                errors.append(f"{scenario} {params}: {response.status_code} {response.text[:200]}")
            out.append(Sample(ms, response.status_code, total))


def cpu_seconds(pids: list[int]) -> float:
    """Seconds of CPU that ``pids`` have used so far (user and system)."""
    tick, used = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return used


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def run_scenario(clients: list[Client], scenario: str, seconds: float, seed_: int, server_pids: list[int]
                 ) -> tuple[list[Sample], list[str], dict[str, float]]:
    """Run one scenario; also return the CPU used meanwhile (100 = one core) by the servers, PostgreSQL and
    the benchmark's own clients."""
    samples: list[Sample] = []
    errors: list[str] = []
    pg = postgres_pids()
    before = (cpu_seconds(server_pids), cpu_seconds(pg), cpu_seconds([os.getpid()]), time.perf_counter())
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=client_loop, args=(c, scenario, until, seed_ * 1000 + i, samples, errors))
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(scenario, total=seconds)
        while any(t.is_alive() for t in threads):
            progress.update(task, completed=min(seconds, seconds - (until - time.perf_counter())),
                            description=f"{scenario}: {len(clients)} clients, {len(samples)} requests")
            time.sleep(0.25)
    for t in threads:
        t.join()
    after = (cpu_seconds(server_pids), cpu_seconds(pg), cpu_seconds([os.getpid()]), time.perf_counter())
    wall = after[3] - before[3]
    usage = {name: (after[k] - before[k]) / wall * 100 for k, name in enumerate(("server", "postgres", "clients"))}
    return samples, errors, usage


def start_server(url: str, settings: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """One ``rdn serve`` process (no worker) on a free port, once it answers /readyz; its RDN_ settings are
    ``settings`` (by default this benchmark's, for ``url``)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RDN_")}, **(settings or environ(url))}
    port = free_port()
    proc = subprocess.Popen([RDN, "serve", "--port", str(port), "--no-worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("rdn serve did not become ready")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="", help="a PostgreSQL URL naming the database to create (and drop)")
    parser.add_argument("--pathways", type=int, default=2000)
    parser.add_argument("--obstacles", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per scenario")
    parser.add_argument("--scenarios", default="api,page")
    parser.add_argument("--servers", type=int, default=None,
                        help="rdn serve processes (one port each); default: one per CPU on PostgreSQL (the "
                             "production deployment), one on SQLite (the single-process mode)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    if args.servers is None:
        args.servers = (os.cpu_count() or 1) if args.pg else 1
    # With --keep a SQLite file must outlive the run (a TemporaryDirectory is removed when the program ends).
    tmp_dir = Path(tempfile.mkdtemp(prefix="rdn-bench-pathways-"))
    url, drop, backend = database(args.pg, tmp_dir)
    set_settings(load_settings(environ=environ(url)))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, tuple[list[Sample], list[str], dict[str, float]]] = {}
    load_before = os.getloadavg()[0]
    try:
        with console.status("Migrating and seeding"):
            migrate.upgrade(url)
            seeded = seed(url, args.pathways, args.obstacles)
        ports = []
        for _ in range(args.servers):
            proc, port = start_server(url)
            procs.append(proc)
            ports.append(port)
        clients = make_clients(url, args.clients, ports)
        for n, scenario in enumerate(s for s in args.scenarios.split(",") if s):
            if scenario not in SCENARIOS:
                raise SystemExit(f"unknown scenario {scenario!r}; the scenarios are {', '.join(SCENARIOS)}")
            if args.warmup > 0:
                run_scenario(clients, scenario, args.warmup, 100 + n, [p.pid for p in procs])
            results[scenario] = run_scenario(clients, scenario, args.seconds, n, [p.pid for p in procs])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.engine().dispose()
        set_settings(None)
        if args.keep:
            console.print(f"Kept the database: {url}")
        else:
            drop()
            shutil.rmtree(tmp_dir, ignore_errors=True)
    load_after = os.getloadavg()[0]

    table = Table(title=f"Pathway search on {backend}: {seeded.pathways:,} pathways, {seeded.obstacles:,} obstacles "
                        f"(seeded in {seeded.seconds:.1f} s); {args.clients} clients, {args.seconds:.0f} s per "
                        f"scenario; {args.servers} rdn serve process(es); {os.cpu_count()} CPUs")
    for column in ("scenario", "requests", "req/s", "median ms", "p95 ms", "p99 ms", "max ms", "mean matches",
                   "goal", "errors"):
        table.add_column(column, justify="left" if column in ("scenario", "goal") else "right")
    all_errors: list[str] = []
    for scenario, (samples, errors, _usage) in results.items():
        all_errors += errors
        ok = [s.ms for s in samples if s.status == 200]
        failed = len(samples) - len(ok)
        if not ok:
            table.add_row(scenario, "0", "-", "-", "-", "-", "-", "-", "-", str(failed))
            continue
        p95 = percentile(ok, 95)
        totals = [s.total for s in samples if s.total is not None]
        table.add_row(f"{scenario} GET {SCENARIOS[scenario]}", f"{len(ok):,}", f"{len(ok) / args.seconds:.0f}",
                      f"{statistics.median(ok):.1f}", f"{p95:.1f}", f"{percentile(ok, 99):.1f}", f"{max(ok):.0f}",
                      f"{statistics.mean(totals):.0f}" if totals else "-",
                      f"p95 < {GOAL_MS:.0f} ms " + ("[green]met[/]" if p95 < GOAL_MS else "[red]missed[/]"),
                      str(failed))
    console.print(table)
    for scenario, (_samples, _errors, usage) in results.items():
        console.print(f"CPU during {scenario} (100% = one core): rdn serve {usage['server']:.0f}%, "
                      + (f"PostgreSQL {usage['postgres']:.0f}%, " if args.pg else "")
                      + f"the benchmark's clients {usage['clients']:.0f}%")
    console.print(f"Load average (1 min) before the run {load_before:.1f}, after {load_after:.1f}, on "
                  f"{os.cpu_count()} CPUs: the clients run on the same machine as the server(s).")
    if all_errors:
        console.print(f"{len(all_errors)} errors, the first: " + "; ".join(all_errors[:3]), style="red")


if __name__ == "__main__":
    main()
