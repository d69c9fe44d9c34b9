"""The ``rdn`` command: serve, worker, demo, database, people, tokens, audit, keys, jobs."""

from __future__ import annotations

import gc
import getpass
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from rdn import db
from rdn.config import ConfigError, Mode, get_settings
from rdn.matching.cli import app as match_app

app = typer.Typer(help="RDN: the Resettlement Diplomacy Network's coordination platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
user_app = typer.Typer(help="People and their roles.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for other systems.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys of sensitive fields.", no_args_is_help=True)
jobs_app = typer.Typer(help="The outbox: pending and dead jobs.", no_args_is_help=True)
cases_app = typer.Typer(help="Cases: import households from spreadsheets, export what you may see.",
                        no_args_is_help=True)
for sub, name in ((db_app, "db"), (user_app, "user"), (org_app, "org"), (token_app, "token"),
                  (audit_app, "audit"), (keys_app, "keys"), (jobs_app, "jobs"), (cases_app, "cases")):
    app.add_typer(sub, name=name)
app.add_typer(match_app, name="match")

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
    _settle_garbage_collector()
    console.print(f"RDN serving on http://{host}:{port} ({'with' if run_worker else 'without'} an in-process worker)")
    # Live event streams would hold a graceful shutdown forever: they get a few seconds, then end (browsers
    # reconnect to another server and replay what they missed).
    uvicorn.run(application, host=host, port=port, log_level=settings.log_level.lower(),
                proxy_headers=settings.trust_proxy_headers, forwarded_allow_ips=settings.forwarded_allow_ips,
                server_header=False, timeout_graceful_shutdown=5, log_config=None)


def _settle_garbage_collector() -> None:
    """What start-up built (modules, models, routes, templates) lives as long as the process: freeze it, so
    that a full collection walks only what requests made since, and collect the young generation less often.
    A full collection over everything took 80-100 ms, during which every request in flight waits."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)


GC_YOUNG = 20_000  # allocations between young collections (Python's default: 700)


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


# Cases -------------------------------------------------------------------------------------------------------


def _acting_as(session, email: str, org: str | None):  # type: ignore[no-untyped-def]
    """The person ``email`` acting in ``org`` (their first organization if None), as a principal that passes the
    same policy checks as on the web. The command line has no step-up: sensitive sections stay out of reach."""
    from rdn.core import identity
    from rdn.core.tenancy import Membership, Organization

    person = session.scalars(select(identity.User).where(identity.User.email == email.strip().lower())).first()
    if person is None or not person.active:
        err.print(f"No active person with email {email}", style="red", markup=False, highlight=False)
        raise typer.Exit(2)
    stmt = select(Organization).join(Membership).where(Membership.user_id == person.id,
                                                       Organization.active.is_(True))
    if org:
        stmt = stmt.where(Organization.short_name == org)
    organization = session.scalars(stmt.order_by(Organization.name)).first()
    if organization is None:
        err.print(f"{email} has no role in {org or 'any active organization'}", style="red", markup=False,
                  highlight=False)
        raise typer.Exit(2)
    return identity.principal_for(session, person, org_id=organization.id, via="cli")


_IMPORT_PHASES = {"read": "Reading the file", "validate": "Checking rows", "check": "Looking for known people",
                  "write": "Writing cases"}


@cases_app.command("import")
def cases_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="A CSV file or an XLSX workbook")],
    as_: Annotated[str, typer.Option("--as", help="Email of the person importing (they must be allowed to "
                                                  "open cases)")],
    org: Annotated[str | None, typer.Option(help="Organization short name (default: their first)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the whole file, write nothing")] = False,
    all_warnings: Annotated[bool, typer.Option("--all-warnings", help="List every warning, not the first ten")
                            ] = False,
) -> None:
    """Import households from a spreadsheet: one case per household, all or nothing.

    Every error of the file is listed ("row 7, column sex: ..."); a file with any error imports nothing
    (exit status 1).
    """
    from rdn import modules
    from rdn.cases import imports
    from rdn.core import policy
    from rdn.core.errors import ValidationFailed

    modules.load_job_handlers()
    data = file.read_bytes()
    session = db.new_session()
    try:
        actor = _acting_as(session, as_, org)
        if not policy.can(actor, "case.create"):
            err.print(f"{as_} may not open cases in {actor.org.name if actor.org else org}", style="red",
                      markup=False, highlight=False)
            raise typer.Exit(2)
        with _progress() as progress:
            task = progress.add_task(_IMPORT_PHASES["read"], total=None)

            def show(done: int, total: int | None, phase: str) -> None:
                progress.update(task, description=_IMPORT_PHASES.get(phase, phase), completed=done, total=total)

            report = imports.import_file(session, actor=actor, data=data, filename=file.name, dry_run=dry_run,
                                         progress=show)
        if report.ok and not dry_run:
            session.commit()
        else:
            session.rollback()
    except ValidationFailed as exc:
        session.rollback()
        err.print(f"{file.name}: {exc.detail}", style="red", highlight=False, markup=False)
        raise typer.Exit(1) from None
    finally:
        session.close()
    def say(text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)  # one line per finding

    for line in imports.iter_errors(report):
        say(line)
    shown = report.warnings if all_warnings else report.warnings[:10]
    for warning in shown:
        say(f"warning: {warning.field}: {warning.message}")
    hidden = len(report.warnings) - len(shown) + report.more_warnings
    if hidden:
        say(f"warning: ... and {hidden:,} more warnings" + ("" if all_warnings else " (--all-warnings lists them)"))
    counts = f"{report.people:,} people in {report.cases:,} cases"
    if not report.ok:
        say(f"Nothing imported: {len(report.errors) + report.more_errors:,} errors in {file.name} ({counts})", "red")
        raise typer.Exit(1)
    if dry_run:
        say(f"No errors in {file.name}: {counts} would be imported (dry run: nothing written)", "green")
        return
    first, last = report.numbers or ("", "")
    say(f"Imported {counts} from {file.name}: {first} to {last} (import {report.import_id})", "green")


@cases_app.command("rebuild-shares")
def cases_rebuild_shares() -> None:
    """Recompute which cases each government sees through referrals (the lists' ``case_shares``) from the
    referrals, agreements and members: after writing to those tables by hand, outside RDN."""
    from rdn.cases import shares

    with db.transaction() as session:
        count = shares.rebuild(session)
    typer.echo(f"{count} case shares")


@cases_app.command("export")
def cases_export(
    as_: Annotated[str, typer.Option("--as", help="Email of the person exporting: the export holds what they "
                                                  "may see")],
    org: Annotated[str | None, typer.Option(help="Organization short name (default: their first)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json")] = "csv",
    output: Annotated[Path | None, typer.Option(help="File to write (default: standard output)")] = None,
    stage: Annotated[list[str] | None, typer.Option(help="Only cases at this stage (repeatable)")] = None,
    nationality: Annotated[str | None, typer.Option(help="Principal applicant's nationality (ISO code)")] = None,
    priority: Annotated[str | None, typer.Option(help="Processing priority: emergency, urgent, normal")] = None,
    category: Annotated[str | None, typer.Option(help="Submission category, such as LPN")] = None,
    country: Annotated[str | None, typer.Option(help="Country the family is in now (ISO code)")] = None,
    relation: Annotated[str | None, typer.Option(help="owned or referred (to your organization)")] = None,
    search: Annotated[str | None, typer.Option(help="A name or a case number")] = None,
) -> None:
    """Export cases as CSV or XLSX (with HXL hashtags) or JSON: only what the person may see, audited.

    Sensitive sections are never exported from the command line (they need a step-up in a browser).
    """
    import shutil
    import tempfile

    from rdn import modules
    from rdn.cases import exports
    from rdn.cases.models import Category, Priority
    from rdn.cases.pipeline import Stage
    from rdn.cases.search import CaseFilters
    from rdn.core import policy

    modules.load_job_handlers()
    problems = []
    if fmt not in exports.FORMATS:
        problems.append(f"--format must be one of {', '.join(exports.FORMATS)}")
    problems += [f"--stage: unknown stage {s!r}" for s in stage or [] if s not in Stage.__members__]
    if priority and priority not in Priority.__members__:
        problems.append(f"--priority must be one of {', '.join(Priority.__members__)}")
    if category and category.upper() not in Category.__members__:
        problems.append(f"--category must be one of {', '.join(Category.__members__)}")
    if relation and relation not in ("owned", "referred"):
        problems.append("--relation must be owned or referred")
    if fmt == "xlsx" and output is None and sys.stdout.isatty():
        problems.append("an XLSX workbook is not for a terminal: give --output")
    if problems:
        for problem in problems:
            err.print(problem, style="red", highlight=False, markup=False)
        raise typer.Exit(2)
    filters = CaseFilters(q=search or "", stage=list(stage or []), priority=priority or "", category=category or "",
                          nationality=nationality or "", current_country=country or "", relation=relation or "")
    # Written to a temporary file first: the audit entries commit before anything leaves, and a failed export
    # leaves no half-written file behind.
    target_dir = output.resolve().parent if output else None
    with tempfile.NamedTemporaryFile(dir=target_dir, prefix=".rdn-export-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with db.transaction() as session:
                actor = _acting_as(session, as_, org)
                if not policy.can(actor, "case.export"):
                    err.print(f"{as_} may not export cases", style="red", markup=False, highlight=False)
                    raise typer.Exit(2)
                summary = exports.export(session, actor=actor, filters=filters, fmt=fmt, out=tmp)
            tmp.flush()
        except BaseException:
            tmp.close()
            tmp_path.unlink(missing_ok=True)
            raise
    if output is not None:
        tmp_path.replace(output)
    else:
        with tmp_path.open("rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        tmp_path.unlink(missing_ok=True)
    cases = f"{summary.cases:,} case" + ("" if summary.cases == 1 else "s")
    people = f"{summary.people:,} " + ("person" if summary.people == 1 else "people")
    err.print(f"Exported {cases} ({people}) as {fmt}" + (f" to {output}" if output else "")
              + f"; sections: {', '.join(summary.sections)}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # pragma: no cover - reported by the callback in practice
        err.print(f"[red]Configuration error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
