"""The ``rdn`` command: serve, worker, demo, database, people, tokens, audit, keys, jobs."""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from rdn import db
from rdn.config import ConfigError, Mode, get_settings

app = typer.Typer(help="RDN: the Resettlement Diplomacy Network's coordination platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
user_app = typer.Typer(help="People and their roles.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for other systems.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of sensitive fields.", no_args_is_help=True)
jobs_app = typer.Typer(help="The outbox: pending and dead jobs.", no_args_is_help=True)
for sub, name in ((db_app, "db"), (user_app, "user"), (org_app, "org"), (token_app, "token"),
                  (audit_app, "audit"), (keys_app, "keys"), (jobs_app, "jobs")):
    app.add_typer(sub, name=name)

console = Console()
err = Console(stderr=True)


def _cli_actor():  # type: ignore[no-untyped-def]
    from rdn.core.audit import Actor

    try:
        who = getpass.getuser()
    except Exception:
        who = str(os.getuid())
    return Actor(f"cli:{who}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=False)


@app.callback()
def _main() -> None:
    try:
        get_settings()
    except ConfigError as exc:
        err.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


# Serving -----------------------------------------------------------------------------------------------------


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
          port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
          worker: Annotated[bool | None, typer.Option("--worker/--no-worker",
                                                      help="Run a worker in this process too")] = None) -> None:
    """Start the web server (with an in-process worker unless --no-worker or RDN_INPROCESS_WORKER=false)."""
    import uvicorn

    from rdn.app import configure_logging, create_app

    settings = get_settings()
    configure_logging()
    run_worker = settings.inprocess_worker if worker is None else worker
    application = create_app(start_worker=run_worker)
    host, port = host or settings.host, port or settings.port
    console.print(f"RDN serving on http://{host}:{port} ({'with' if run_worker else 'without'} an in-process worker)")
    # Live event streams would hold a graceful shutdown forever: they get a few seconds, then end (browsers
    # reconnect to another server and replay what they missed).
    uvicorn.run(application, host=host, port=port, log_level=settings.log_level.lower(),
                proxy_headers=settings.trust_proxy_headers, forwarded_allow_ips=settings.forwarded_allow_ips,
                server_header=False, timeout_graceful_shutdown=5, log_config=None)


@app.command()
def worker(drain: Annotated[bool, typer.Option(help="Run every due job, then exit")] = False) -> None:
    """Run a worker: claims due outbox jobs and runs them. Run as many as you like."""
    from rdn import modules
    from rdn.app import configure_logging
    from rdn.core import outbox

    configure_logging()
    modules.load_job_handlers()
    w = outbox.Worker()
    if drain:
        done = w.run_until_idle(max_seconds=3600)
        console.print(f"{done} jobs run")
        return
    outbox.install_signal_handlers(w)
    w.run_forever()


# Database and demo -------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from rdn import migrate

    migrate.upgrade(get_settings().database_url, revision)
    console.print(f"Database at {migrate.head_revision() if revision == 'head' else revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision and the code's."""
    from rdn import migrate

    with db.engine().connect() as conn:
        current = migrate.current_revision(conn)
    console.print(f"database: {current or '(empty)'}\ncode:     {migrate.head_revision()}")
    if current != migrate.head_revision():
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Seed the demo network once (later runs only fill in what is missing) and print the personas."""
    from rdn import modules
    from rdn.core.modules import DemoContext

    installed = sorted((m for m in modules.installed() if m.demo), key=lambda m: m.demo_order)
    modules.load_job_handlers()
    with db.transaction() as session:
        ctx = DemoContext(session=session, say=lambda text: err.print(text))
        for module in installed:
            module.demo(ctx)  # type: ignore[misc]
    print_personas(ctx.personas)


def print_personas(personas: list[dict[str, str]]) -> None:
    """Plain lines (never truncated, whatever the terminal's width)."""
    if not personas:
        return
    print(f"\nDemo personas: sign in at /login with the password {personas[0]['password']}")
    print("Personas with a TOTP secret sign in with a code: add the secret to an authenticator app, or run")
    print("`rdn totp EMAIL` (dev mode) to print the current code.\n")
    width = max(len(p["email"]) for p in personas)
    for p in personas:
        print(f"  {p['email']:<{width}}  {p['organization']} ({p['roles']})")
        print(f"  {'':<{width}}  TOTP secret: {p['totp_secret']}")
    print()


@app.command()
def totp(email: str) -> None:
    """Print the current TOTP code of a demo persona (dev mode only)."""
    import pyotp

    from rdn.core import identity

    if get_settings().mode == Mode.production:
        err.print("Not available in production mode")
        raise typer.Exit(2)
    with db.transaction() as session:
        user = session.scalars(select(identity.User).where(identity.User.email == email.lower())).first()
        secret = identity.get_totp_secret(session, user) if user else None
    if not secret:
        err.print(f"No TOTP secret for {email}")
        raise typer.Exit(1)
    console.print(pyotp.TOTP(secret).now())


# Organizations and people ------------------------------------------------------------------------------------


@org_app.command("add")
def org_add(name: Annotated[str, typer.Option()], short_name: Annotated[str, typer.Option()],
            kind: Annotated[str, typer.Option(help="government, observer, agency, ngo, mobility_office, "
                                                   "sponsor_group or secretariat")],
            country: Annotated[str | None, typer.Option(help="ISO 3166-1 alpha-2")] = None) -> None:
    """Create an organization."""
    from rdn import modules
    from rdn.core.errors import ValidationFailed
    from rdn.network import service

    modules.load_job_handlers()
    try:
        with db.transaction() as session:
            org = service.create_organization(session, actor=_cli_actor(), name=name, short_name=short_name,
                                              kind=kind, country=country)
            org_id = org.id
    except ValidationFailed as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Created organization {short_name} ({org_id})")


@user_app.command("add")
def user_add(email: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()],
             org: Annotated[str, typer.Option(help="The organization's short name")],
             role: Annotated[str, typer.Option(help="admin, senior_official, officer, caseworker, analyst, sponsor")],
             password: Annotated[bool, typer.Option(
                 "--password/--invite", help="Type a password now, or email an invitation")] = False) -> None:
    """Create a person with a role in an organization."""
    from rdn import modules
    from rdn.core.errors import ValidationFailed
    from rdn.core.tenancy import Organization
    from rdn.network import service

    modules.load_job_handlers()
    secret = None
    if password:
        secret = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != secret:
            err.print("[red]The two passwords differ[/red]")
            raise typer.Exit(1)
    try:
        with db.transaction() as session:
            organization = session.scalars(select(Organization).where(Organization.short_name == org)).first()
            if organization is None:
                raise ValidationFailed("org", f"no organization with short name {org!r}")
            user = service.create_person(session, actor=_cli_actor(), email=email, full_name=name,
                                         org=organization, role=role, password=secret)
            user_id = user.id
    except ValidationFailed as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    console.print(f"Created {email} ({user_id})" + ("" if password else "; an invitation email is queued"))


@token_app.command("create")
def token_create(user: Annotated[str, typer.Option("--user", help="The person's email")],
                 org: Annotated[str | None, typer.Option(help="Organization short name (default: their first)")] = None,
                 name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
                 scope: Annotated[list[str] | None, typer.Option(help="read, write, admin (repeatable)")] = None,
                 days: Annotated[int, typer.Option(help="Days until it expires (0: never)")] = 90) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    from rdn.core import audit, clock, identity
    from rdn.core.tenancy import Membership, Organization

    with db.transaction() as session:
        person = session.scalars(select(identity.User).where(identity.User.email == user.lower())).first()
        if person is None or not person.active:
            err.print(f"[red]No active person with email {user}[/red]")
            raise typer.Exit(1)
        stmt = select(Organization).join(Membership).where(Membership.user_id == person.id)
        if org:
            stmt = stmt.where(Organization.short_name == org)
        organization = session.scalars(stmt.order_by(Organization.name)).first()
        if organization is None:
            err.print(f"[red]{user} has no role in {org or 'any organization'}[/red]")
            raise typer.Exit(1)
        try:
            plaintext, row = identity.create_token(
                session, user=person, org_id=organization.id, name=name, scopes=scope or ["read"],
                expires_at=clock.now() + timedelta(days=days) if days else None)
        except ValueError as exc:
            err.print(f"[red]scope: {exc}[/red]")
            raise typer.Exit(1) from None
        audit.record(session, action="token.create", actor=_cli_actor(), object_type="api_token",
                     object_id=row.id, details={"user": str(person.id), "scopes": row.scopes})
    err.print(f"Token for {user} in {organization.short_name}, scopes {', '.join(row.scopes)}. "
              "It is shown once; store it now:")
    print(plaintext)


# Audit and keys ----------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; name the first broken entry (exit status 1)."""
    from rdn.core import audit

    with _progress() as progress, db.transaction() as session:
        task = progress.add_task("Verifying the audit chain", total=None)
        result = audit.verify(session, progress=lambda done, total: progress.update(task, completed=done,
                                                                                     total=total))
    if result.ok:
        console.print(f"[green]OK[/green]: {result.checked} entries, chain intact")
        return
    console.print(f"[red]BROKEN[/red] at entry {result.broken_seq}: {result.problem} "
                  f"({result.checked} entries before it are intact)")
    raise typer.Exit(1)


@keys_app.command("new")
def keys_new() -> None:
    """Print a fresh master key (base64) for RDN_MASTER_KEY."""
    from rdn.core.crypto import new_master_key

    print(new_master_key())


@keys_app.command("rotate")
def keys_rotate(
    data_keys: Annotated[bool, typer.Option(help="Also start new data keys for new writes")] = False,
) -> None:
    """Re-wrap every data key under the current RDN_MASTER_KEY, in small batches, while servers run.

    Before: set the new key as RDN_MASTER_KEY and the old one in RDN_PREVIOUS_MASTER_KEYS on every server.
    After: remove the old key from RDN_PREVIOUS_MASTER_KEYS.
    """
    from rdn.core import audit, crypto

    with _progress() as progress:
        task = progress.add_task("Re-wrapping data keys", total=None)
        done = 0
        for done, total in crypto.rewrap_batches(db.new_session):
            progress.update(task, completed=done, total=total)
    started = 0
    with db.transaction() as session:
        if data_keys:
            owners = sorted(set(session.scalars(select(crypto.DataKey.owner))))
            for owner in owners:
                crypto.create_data_key(session, owner)
            started = len(owners)
        audit.record(session, action="keys.rotate", actor=_cli_actor(),
                     details={"rewrapped": done, "new_data_keys": started})
    console.print(f"Re-wrapped {done} data keys under master key "
                  f"{crypto.master_key_id(get_settings().master_key_bytes)}; started {started} new data keys")


@keys_app.command("status")
def keys_status() -> None:
    """Count data keys by the master key wrapping them."""
    from sqlalchemy import func

    from rdn.core import crypto

    current = crypto.master_key_id(get_settings().master_key_bytes)
    with db.transaction() as session:
        rows = session.execute(select(crypto.DataKey.master_key_id, func.count()).group_by(
            crypto.DataKey.master_key_id)).all()
    for kid, count in rows:
        console.print(f"{kid}: {count} data keys{' (current)' if kid == current else ''}")


# Jobs --------------------------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(status: str = "dead", limit: int = 50) -> None:
    """List jobs with STATUS (pending, running, done, dead)."""
    from rdn.core.outbox import Job, JobStatus, counts

    with db.transaction() as session:
        table = Table(title=f"Jobs: {status} ({counts(session)})")
        for column in ("id", "kind", "attempts", "updated", "last error"):
            table.add_column(column)
        for job in session.scalars(select(Job).where(Job.status == JobStatus(status))
                                   .order_by(Job.updated_at.desc()).limit(limit)):
            table.add_row(str(job.id), job.kind, str(job.attempts), job.updated_at.isoformat(timespec="seconds"),
                          (job.last_error or "")[:80])
    console.print(table)


@jobs_app.command("retry")
def jobs_retry(job_id: uuid.UUID) -> None:
    """Send a dead job round again."""
    from rdn import modules
    from rdn.core import audit, outbox

    modules.load_job_handlers()
    with db.transaction() as session:
        job = session.get(outbox.Job, job_id)
        if job is None:
            err.print("No such job")
            raise typer.Exit(1)
        if job.status not in (outbox.JobStatus.dead, outbox.JobStatus.pending):
            err.print(f"Only dead or waiting jobs can be retried; this one is {outbox.JobStatus(job.status).value}")
            raise typer.Exit(1)
        outbox.retry(session, job)
        audit.record(session, action="job.retry", actor=_cli_actor(), object_type="job", object_id=job.id)
    console.print(f"Job {job_id} will run again")


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # pragma: no cover - reported by the callback in practice
        err.print(f"[red]Configuration error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
