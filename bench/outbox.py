"""Outbox throughput: emails delivered per second to a local SMTP sink, with 1 and 2 workers,
on SQLite and on PostgreSQL.

    .venv/bin/python bench/outbox.py [--emails 3000] [--workers 1,2] [--backends sqlite,postgresql]

Each run: a fresh database, N emails enqueued and committed, then W ``rdn worker`` processes started
together; the clock runs from the first SMTP acceptance to the last (steady state), and the table also
shows the wall time from starting the workers. The sink is aiosmtpd on 127.0.0.1, accepting everything.
PostgreSQL is reached at RDN_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
a database is created per run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from rdn import db, migrate, modules  # noqa: E402
from rdn.config import load_settings, set_settings  # noqa: E402
from rdn.core.mail import send_email  # noqa: E402

RDN = str(Path(sys.executable).with_name("rdn"))
console = Console()


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        with self.lock:
            self.count += 1
            self.first = self.first or now
            self.last = now
        return "250 OK"

    def reset(self) -> None:
        with self.lock:
            self.count, self.first, self.last = 0, 0.0, 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_database(tmp: Path) -> tuple[str, callable]:
    url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
    return url, lambda: None


def postgres_database(admin_url: str) -> tuple[str, callable]:
    base = make_url(db.normalise_url(admin_url))
    name = f"rdn_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def environ(url: str, smtp_port: int) -> dict[str, str]:
    return {"RDN_MODE": "test", "RDN_DATABASE_URL": url, "RDN_SMTP_HOST": "127.0.0.1",
            "RDN_SMTP_PORT": str(smtp_port), "RDN_LOG_LEVEL": "WARNING", "RDN_INPROCESS_WORKER": "false"}


def run_once(url: str, workers: int, emails: int, sink: Sink, smtp_port: int) -> dict[str, float]:
    migrate.upgrade(url)
    set_settings(load_settings(environ=environ(url, smtp_port)))
    engine = db.make_engine(url)
    with Session(engine) as session:
        for i in range(emails):
            send_email(session, to=f"official{i}@gov.example", subject=f"Page {i}",
                       text="A crisis was declared. Please acknowledge.\n" + "-" * 1500)
        session.commit()
    engine.dispose()
    sink.reset()
    env = {**os.environ, **environ(url, smtp_port)}
    started = time.perf_counter()
    procs = [subprocess.Popen([RDN, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{workers} worker(s)", total=emails)
            deadline = time.perf_counter() + 600
            while sink.count < emails and time.perf_counter() < deadline:
                progress.update(task, completed=sink.count)
                time.sleep(0.1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    if sink.count < emails:
        raise SystemExit(f"only {sink.count} of {emails} delivered within the time limit")
    steady = sink.last - sink.first
    return {"rate": (emails - 1) / steady if steady > 0 else float("inf"), "steady": steady,
            "wall": sink.last - started, "delivered": sink.count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    modules.load_job_handlers()
    pg_admin = os.environ.get("RDN_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    tmp = Path(tempfile.mkdtemp(prefix="rdn-bench-"))
    table = Table(title=f"Outbox: {args.emails} emails to a local SMTP sink ({os.cpu_count()} CPUs)")
    for column in ("database", "workers", "emails/s (steady)", "seconds (first to last)", "seconds (wall)"):
        table.add_column(column, justify="right")
    try:
        for backend in args.backends.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                if backend == "sqlite":
                    url, cleanup = sqlite_database(tmp)
                else:
                    url, cleanup = postgres_database(pg_admin)
                try:
                    result = run_once(url, workers, args.emails, sink, port)
                finally:
                    db.engine().dispose()
                    set_settings(None)
                    cleanup()
                table.add_row(backend, str(workers), f"{result['rate']:.0f}", f"{result['steady']:.2f}",
                              f"{result['wall']:.2f}")
                console.print(f"{backend}, {workers} worker(s): {result['rate']:.0f} emails/s")
    finally:
        controller.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
