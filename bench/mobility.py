"""Safe Mobility under load: public registrations accepted per second, and screening at scale.

1. **Registrations.** A fresh database is migrated and given a Safe Mobility office (Costa Rica's rule:
   Nicaraguans and Venezuelans present by 12 June 2023) with ``--rules`` screening rules. Real ``rdn serve``
   processes (one per CPU, as docs/operations.md deploys them; ``--servers`` to choose) behind no proxy but
   trusting ``X-Forwarded-For`` from 127.0.0.1, as behind the load balancer, are driven by ``--clients``
   concurrent clients (default 20) on the same machine, each posting households (1 to 6 people, names, contact,
   consents, answers) to ``POST /api/v1/mobility/offices/cr/registrations`` for ``--seconds`` after a warm-up.
   Each request comes from an address of its own (registrants are many people, and the per-address limits are
   not what is measured). Every registration is validated, checked for eligibility and duplicates, sealed,
   screened against every rule and audited before its 201. The table gives accepted registrations per second
   and latency; the rows counted in the database afterwards must equal the 201s.
2. **Screening.** ``--screen`` registrations (default 100,000) are written directly into the database and
   screened against ``--screen-rules`` rules (default 50) in one run of ``rdn.mobility.screening.screen_many``:
   seconds, registrations per second, results written, and the process's peak memory.

    .venv/bin/python bench/mobility.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/rdn_bench_mobility]
                                       [--clients 20] [--seconds 20] [--warmup 3] [--servers N] [--rules 6]
                                       [--screen 100000] [--screen-rules 50] [--parts register,screen] [--keep]

Without ``--pg`` the database is a temporary SQLite file (one server process). With ``--pg`` the database named
in the URL is created (dropped first if it exists) and dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from pathways import database, percentile  # noqa: E402
from pathways import start_server as start_pathways_server  # noqa: E402
from rdn import db, migrate  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core import clock  # noqa: E402
from rdn.core.audit import Actor  # noqa: E402
from rdn.core.tenancy import OrgKind  # noqa: E402
from rdn.mobility import sealed  # noqa: E402
from rdn.mobility.models import (  # noqa: E402
    Office,
    Registration,
    RegistrationStatus,
    RuleStatus,
    ScreeningResult,
    ScreeningRule,
)
from rdn.network import service as network  # noqa: E402

RDN = str(Path(sys.executable).with_name("rdn"))
console = Console()
ACTOR = Actor("bench")
GIVEN = ["María", "José", "Luis", "Ana", "Carlos", "Yusleidy", "Jean", "Marie", "Daniela", "Andrés", "Rosa", "Pedro",
         "Wilmer", "Yohana", "Kervens", "Nadège", "Osmany", "Leidy", "Fabiola", "Darwin"]
FAMILY = ["González", "Rodríguez", "Pérez", "Hernández", "López", "Martínez", "Joseph", "Pierre", "Díaz", "Torres",
          "Ramírez", "Flores", "Castillo", "Morales", "Jiménez", "Rojas", "Vargas", "Mendoza", "Silva", "Suárez"]
NATIONALITIES = ["VE"] * 6 + ["NI"] * 3 + ["CU", "HT", "CO"]


def environ(url: str) -> dict[str, str]:
    return {"RDN_MODE": "test", "RDN_DATABASE_URL": url, "RDN_LOG_LEVEL": "WARNING", "RDN_INPROCESS_WORKER": "false",
            "RDN_SMTP_HOST": "127.0.0.1", "RDN_SMTP_PORT": "9", "RDN_TRUST_PROXY_HEADERS": "true",
            "RDN_FORWARDED_ALLOW_IPS": "127.0.0.1"}


# The office and its rules ----------------------------------------------------------------------------------------


def rule_set(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` rules of the kinds offices write: nationality and presence windows, ages, ties, answers."""
    templates = [
        lambda: [{"field": "nationality", "op": "in", "value": rng.sample(["VE", "NI", "CU", "HT", "CO"], 2)},
                 {"field": "arrived_on", "op": "on_or_before", "value": f"2023-0{rng.randint(1, 9)}-12"}],
        lambda: [{"field": "ties", "op": "contains", "value": rng.choice(["ES", "CA", "US", "BR"])}],
        lambda: [{"field": "age", "op": "gte", "value": 18},
                 {"field": "age", "op": "lte", "value": rng.choice([45, 55])},
                 {"field": "answer.trade", "op": "is_true"}],
        lambda: [{"field": "has_children", "op": "is_true"},
                 {"any": [{"field": "nationality", "op": "eq", "value": "VE"},
                          {"field": "household_size", "op": "gte", "value": rng.randint(3, 5)}]}],
        lambda: [{"field": "members.max_age", "op": "gte", "value": 60}],
    ]
    rules = []
    for n in range(count):
        destination = rng.choice(["ES", "CA", "US", "BR", "UY"])
        rules.append({"name": f"Rule {n} ({destination})", "destination": destination,
                      "questions": [{"key": "trade", "type": "yes_no", "text": {"en": "Do you have a trade?",
                                                                                  "es": "¿Tiene un oficio?"}}],
                      "conditions": templates[n % len(templates)]()})
    return rules


def make_office(url: str, rules: list[dict[str, Any]], *, country: str = "CR") -> uuid.UUID:
    """An office with Costa Rica's rule (the registrations' office), or Colombia's (the screening benchmark's
    own, holding only its registrations), and ``rules`` as its screening rules."""
    name, slug, nationalities, cutoff, zone = {
        "CR": ("Safe Mobility Office Costa Rica", "cr", ["NI", "VE"], date(2023, 6, 12), "America/Costa_Rica"),
        "CO": ("Safe Mobility Office Colombia", "co", ["CU", "HT", "VE"], date(2023, 6, 11), "America/Bogota"),
    }[country]
    engine = db.make_engine(url)
    with Session(engine) as session:
        org = network.create_organization(session, actor=ACTOR, name=name, short_name=f"smo-{slug}",
                                          kind=OrgKind.mobility_office, country=country)
        session.flush()
        office = Office(org_id=org.id, slug=slug, country=country, name=name, nationalities=nationalities,
                        presence_cutoff=cutoff, opened_on=cutoff, timezone=zone, address="", accepting=True)
        session.add(office)
        session.flush()
        for rule in rules:
            session.add(ScreeningRule(office_id=office.id, name=rule["name"], destination=rule["destination"],
                                      questions=rule["questions"], conditions=rule["conditions"],
                                      status=RuleStatus.active))
        session.commit()
        office_id = office.id
    engine.dispose()
    return office_id


# Registrations ---------------------------------------------------------------------------------------------------


def household(rng: random.Random) -> dict[str, Any]:
    """One registration as the public API takes it."""
    family = rng.choice(FAMILY)
    born = date(rng.randint(1960, 2004), rng.randint(1, 12), rng.randint(1, 28))
    nationality = rng.choice(["VE", "VE", "NI"])
    members = []
    for k in range(rng.choices([0, 1, 2, 3, 4, 5], (20, 25, 25, 15, 10, 5))[0]):
        child = k > 0 or rng.random() < 0.3
        members.append({"relationship": "child" if child else "spouse", "given_name": rng.choice(GIVEN),
                        "family_name": family, "sex": rng.choice(["f", "m"]),
                        "birth_date": (date(rng.randint(2008, 2024), rng.randint(1, 12), rng.randint(1, 28))
                                       if child else date(rng.randint(1965, 2004), 5, 1)).isoformat(),
                        "nationality": nationality})
    return {
        "given_name": rng.choice(GIVEN), "family_name": family, "birth_date": born.isoformat(), "sex": rng.choice("fm"),
        "nationality": nationality,
        "arrived_on": (date(2019, 1, 1) + timedelta(days=rng.randint(0, 1600))).isoformat(),
        "members": members, "ties": rng.sample(["ES", "CA", "US"], rng.randint(0, 1)),
        "phone": f"+506 8{rng.randint(1000000, 9999999)}", "email": f"person{rng.randint(1, 10**9)}@example.org",
        "whatsapp": "", "consent_screening": True, "consent_contact": True, "consent_share": rng.random() < 0.9,
        "answers": {"trade": rng.random() < 0.5}, "language": rng.choice(["es", "es", "es", "en", "ht"]),
    }


@dataclass
class Sample:
    ms: float
    status: int


def client_loop(base_url: str, until: float, seed_: int, out: list[Sample], errors: list[str]) -> None:
    rng = random.Random(seed_)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while time.perf_counter() < until:
            body = household(rng)
            ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            t0 = time.perf_counter()
            try:
                response = http.post("/api/v1/mobility/offices/cr/registrations", json=body,
                                     headers={"X-Forwarded-For": ip, "Idempotency-Key": uuid.uuid4().hex})
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            out.append(Sample((time.perf_counter() - t0) * 1000, response.status_code))
            if response.status_code not in (201, 422) and len(errors) < 20:
                errors.append(f"{response.status_code} {response.text[:300]}")


def load(ports: list[int], clients: int, seconds: float, seed_: int) -> tuple[list[Sample], list[str], float]:
    samples: list[Sample] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + seconds
    threads = [threading.Thread(target=client_loop, args=(f"http://127.0.0.1:{ports[i % len(ports)]}", until,
                                                          seed_ * 1000 + i, samples, errors))
               for i in range(clients)]
    for t in threads:
        t.start()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("registering", total=seconds)
        while any(t.is_alive() for t in threads):
            progress.update(task, completed=min(seconds, time.perf_counter() - started),
                            description=f"registering: {clients} clients, {len(samples)} requests")
            time.sleep(0.25)
    for t in threads:
        t.join()
    return samples, errors, time.perf_counter() - started


def count_registrations(url: str) -> int:
    engine = db.make_engine(url)
    with Session(engine) as session:
        n = int(session.scalar(select(func.count()).select_from(Registration)) or 0)
    engine.dispose()
    return n


# Screening at scale ----------------------------------------------------------------------------------------------


def seed_registrations(url: str, office_id: uuid.UUID, count: int) -> float:
    """``count`` registrations written directly (no names sealed: screening does not read them)."""
    rng = random.Random(5)
    engine = db.make_engine(url)
    started = time.perf_counter()
    with Session(engine) as session:
        office = session.get(Office, office_id)
        assert office is not None
        now = clock.now()
        pin = sealed.pin_hash("000000")
        rows = []
        for n in range(count):
            h = household(rng)
            born = date.fromisoformat(h["birth_date"])
            members = [{"relationship": "principal", "sex": h["sex"], "birth_date": h["birth_date"],
                        "nationality": h["nationality"]}] + [
                {k: m[k] for k in ("relationship", "sex", "birth_date", "nationality")} for m in h["members"]]
            rows.append({"id": uuid.uuid4(), "office_id": office.id, "org_id": office.org_id,
                          "reference": f"SM-CR-B{n:07d}", "pin_hash": pin, "status": RegistrationStatus.received,
                          "status_since": now, "language": "es", "nationality": h["nationality"], "birth_date": born,
                          "arrived_on": date.fromisoformat(h["arrived_on"]), "household_size": len(members),
                          "profile": {"members": members, "ties": h["ties"], "categories": []},
                          "answers": h["answers"], "consent_screening": now, "consent_contact": now,
                          "consent_share": now, "person_key": uuid.uuid4().hex, "history": [], "created_at": now,
                          "updated_at": now})
            if len(rows) == 5000:
                session.execute(insert(Registration), rows)
                rows = []
        if rows:
            session.execute(insert(Registration), rows)
        session.commit()
    engine.dispose()
    return time.perf_counter() - started


def screen(url: str, office_id: uuid.UUID) -> tuple[float, int, float]:
    """Screen every open registration of the office once: seconds, results written, peak RSS in MB."""
    from rdn.mobility import screening

    engine = db.make_engine(url)
    with Session(engine) as session:
        before = int(session.scalar(select(func.count()).select_from(ScreeningResult)) or 0)
    started = time.perf_counter()
    with Session(engine) as session:
        screened = screening.screen_many(session, office_id)
        session.commit()
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        after = int(session.scalar(select(func.count()).select_from(ScreeningResult)) or 0)
    engine.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"screen_many reported {screened:,} registrations screened")
    return seconds, after - before, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default="", help="a PostgreSQL URL naming the database to create (and drop)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--servers", type=int, default=None)
    parser.add_argument("--rules", type=int, default=6, help="screening rules of the office during registration")
    parser.add_argument("--screen", type=int, default=100_000, help="registrations screened at once")
    parser.add_argument("--screen-rules", type=int, default=50)
    parser.add_argument("--parts", default="register,screen")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    parts = {p for p in args.parts.split(",") if p}
    if args.servers is None:
        args.servers = (os.cpu_count() or 1) if args.pg else 1

    # With --keep a SQLite file must outlive the run (a TemporaryDirectory is removed when the program ends).
    tmp_dir = Path(tempfile.mkdtemp(prefix="rdn-bench-mobility-"))
    url, drop, backend = database(args.pg, tmp_dir)
    set_settings(load_settings(environ=environ(url)))
    table = Table(title=f"Safe Mobility on {backend}, {os.cpu_count()} CPUs (clients on the same machine)")
    for column in ("measure", "count", "seconds", "per second", "median ms", "p95 ms", "p99 ms", "other"):
        table.add_column(column, justify="left" if column in ("measure", "other") else "right")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with console.status("Migrating"):
            migrate.upgrade(url)
        if "register" in parts:
            make_office(url, rule_set(random.Random(1), args.rules))
            ports = []
            for _ in range(args.servers):
                proc, port = start_pathways_server(url, environ(url))
                procs.append(proc)
                ports.append(port)
            if args.warmup > 0:
                load(ports, args.clients, args.warmup, 99)
            before = count_registrations(url)
            samples, errors, wall = load(ports, args.clients, args.seconds, 1)
            stored = count_registrations(url) - before
            accepted = [s.ms for s in samples if s.status == 201]
            refused = sum(1 for s in samples if s.status == 422)
            failed = len(samples) - len(accepted) - refused
            if accepted:
                table.add_row(f"public registrations accepted ({args.clients} clients, {args.servers} server(s), "
                              f"{args.rules} rules)", f"{len(accepted):,}", f"{wall:.1f}",
                              f"{len(accepted) / wall:.1f}", f"{statistics.median(accepted):.1f}",
                              f"{percentile(accepted, 95):.1f}", f"{percentile(accepted, 99):.1f}",
                              f"{refused:,} not eligible (422); {failed} failed; {stored:,} rows stored")
            if stored != len(accepted):
                console.print(f"[red]{stored:,} registrations stored for {len(accepted):,} accepted[/]")
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            procs = []
            if errors:
                console.print(f"{len(errors)} errors, the first: " + "; ".join(errors[:3]), style="red")
        if "screen" in parts:
            with console.status(f"Writing {args.screen:,} registrations and {args.screen_rules} rules"):
                office_id = make_office(url, rule_set(random.Random(2), args.screen_rules), country="CO")
                seeded = seed_registrations(url, office_id, args.screen)
            console.print(f"Wrote {args.screen:,} registrations in {seeded:.1f} s")
            with console.status("Screening"):
                seconds, results, peak = screen(url, office_id)
            table.add_row(f"screening: {args.screen:,} registrations x {args.screen_rules} rules", f"{args.screen:,}",
                          f"{seconds:.1f}", f"{args.screen / seconds:,.0f}", "-", "-", "-",
                          f"{results:,} results written; peak {peak:,.0f} MB")
    finally:
        for proc in procs:
            proc.terminate()
        db.engine().dispose()
        set_settings(None)
        if args.keep:
            console.print(f"Kept the database: {url}")
        else:
            drop()
            shutil.rmtree(tmp_dir, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
