"""The ``tianbao`` command: every process of the product, and its maintenance tasks."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backend.settings import Settings, get_settings
from bot.heartbeat import DEFAULT_MAX_AGE_SECONDS, KINDS, Heartbeat, beat_while, check
from bot.heartbeat import default_path as default_heartbeat_path

if TYPE_CHECKING:
    from backend.db import Database

# The database layer, the server and the apps are imported by the commands that use them: a container
# health check (`tianbao health worker`, every 30 s) must not pay seconds of imports to read one file.


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValueError as exc:  # production profile refusals, bad values
        raise click.ClickException(str(exc)) from exc
    settings.keep_generated_secrets()  # QR codes, staff tokens and links outlive a restart
    settings.configure_messages()  # every process (bot, worker, scheduler) shows times and contacts alike
    return settings


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Tianbao (田保): chat front end for agricultural and work-safety liability insurance."""
    _logging(verbose)


@main.command()
@click.option("--host", default=None, help="Listen address (TIANBAO_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (TIANBAO_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Everything in one process: API, web chat, Telegram, delivery worker and scheduler."""
    import uvicorn

    from backend.db import Database
    from bot.server import build_embedded_app

    settings = _settings()
    if host or port:
        settings = settings.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    db = Database(settings)
    report = asyncio.run(_bootstrap_and_dispose(db, settings))
    _announce(settings, report.regions_loaded, report.admin.password)
    app = build_embedded_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


async def _bootstrap_and_dispose(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    from backend.bootstrap import bootstrap

    try:
        return await bootstrap(db, settings)
    except ValueError as exc:  # a refused TIANBAO_ADMIN_PASSWORD: a clear error, not a traceback
        raise click.ClickException(str(exc)) from exc
    finally:
        await db.dispose()


def _announce(settings: Settings, regions_loaded: int, admin_password: str | None) -> None:
    if regions_loaded:
        click.echo(f"Loaded {regions_loaded} administrative divisions.")
    if admin_password:
        click.secho("=" * 64, fg="yellow")
        click.secho(
            f"  Staff account 'admin' created. One-time password: {admin_password}", fg="yellow", bold=True
        )
        click.secho("  It is shown only now. Reset it with: tianbao create-admin", fg="yellow")
        click.secho("=" * 64, fg="yellow")
    click.echo(f"Web chat: {settings.public_url}/chat   API docs: {settings.public_url}/docs")


@main.command()
def api() -> None:
    """The backend API alone (production: several replicas behind a load balancer)."""
    import uvicorn

    from backend.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


@main.command("bot")
def bot_command() -> None:
    """The bot alone: web chat and Telegram (webhook when TIANBAO_WEBHOOK_URL is set, else polling)."""
    import uvicorn

    from bot.server import build_bot_app

    settings = _settings()
    uvicorn.run(build_bot_app(settings), host=settings.host, port=settings.port, log_level="info")


def _heartbeat_option(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--heartbeat",
        "heartbeat_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default_heartbeat_path(kind),
        show_default=True,
        help=f"File the {kind} writes while alive; `tianbao health {kind}` reads it.",
    )


@main.command()
@click.option("--worker-id", default=None, help="Name of this worker in claims (default host-pid).")
@_heartbeat_option("worker")
def worker(worker_id: str | None, heartbeat_path: Path) -> None:
    """The outbox delivery worker alone; run as many as you like."""
    asyncio.run(_run_worker(_settings(), worker_id, Heartbeat(heartbeat_path)))


async def _run_worker(settings: Settings, worker_id: str | None, heartbeat: Heartbeat) -> None:
    from bot.client import BackendClient
    from bot.runtime import build_runtime

    backend = BackendClient.for_url(
        settings.backend_url or "http://127.0.0.1:8000", service_token=settings.service_token
    )
    runtime = build_runtime(settings, backend)
    delivery = runtime.delivery_worker(worker_id=worker_id)
    delivery.on_round = heartbeat.beat  # a round that reached the backend: alive and working
    _stop_on_signals(delivery.stop)
    try:
        await delivery.run_forever()
    finally:
        heartbeat.clear()
        await runtime.close()


@main.command("scheduler")
@_heartbeat_option("scheduler")
def scheduler_command(heartbeat_path: Path) -> None:
    """The scheduler alone; with Redis, several copies run each job once."""
    asyncio.run(_run_scheduler(_settings(), Heartbeat(heartbeat_path)))


SCHEDULER_BEAT_SECONDS = 10.0


async def _run_scheduler(settings: Settings, heartbeat: Heartbeat) -> None:
    from backend.db import Database
    from scheduler.runner import SchedulerRunner

    db = Database(settings)
    runner = SchedulerRunner(db, redis_url=settings.redis_url)
    stopped = asyncio.Event()
    _stop_on_signals(stopped.set)
    runner.start()
    # Beats from the scheduler's own event loop while APScheduler runs: a stalled loop or a stopped
    # scheduler stops the beat.
    beating = asyncio.create_task(
        beat_while(lambda: bool(runner.scheduler.running), heartbeat, SCHEDULER_BEAT_SECONDS)
    )
    try:
        await stopped.wait()
    finally:
        beating.cancel()
        heartbeat.clear()
        await runner.shutdown()
        await db.dispose()


@main.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option(
    "--heartbeat",
    "heartbeat_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The heartbeat file (default: the one that process writes by default).",
)
@click.option("--max-age", type=float, default=None, help="Seconds a heartbeat stays fresh.")
def health(kind: str, heartbeat_path: Path | None, max_age: float | None) -> None:
    """Exit 0 if the worker or scheduler of this container is alive, 1 if not (container health checks)."""
    report = check(
        heartbeat_path or default_heartbeat_path(kind),
        DEFAULT_MAX_AGE_SECONDS[kind] if max_age is None else max_age,
    )
    click.echo(f"{kind}: {report.detail}")
    if not report.healthy:
        sys.exit(1)


def _stop_on_signals(callback: object) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)  # type: ignore[arg-type]


@main.command()
def migrate() -> None:
    """Migrate the database to the newest schema and load reference data."""
    from backend.bootstrap import prepare_database
    from backend.db import Database

    settings = _settings()

    async def run() -> int:
        db = Database(settings)
        try:
            return await prepare_database(db)
        finally:
            await db.dispose()

    loaded = asyncio.run(run())
    click.echo(f"Database is at the newest schema. Regions loaded now: {loaded}.")


@main.command("create-admin")
@click.option("--username", default="admin", show_default=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 12 characters; not a common password, a pattern or the username.",
)
def create_admin(username: str, password: str) -> None:
    """Create an admin account, or reset its password (which also ends a sign-in lock)."""
    from backend.bootstrap import prepare_database
    from backend.db import Database
    from backend.refusals import refusal_message
    from backend.staff.passwords import password_problem
    from backend.staff.service import set_admin_password

    problem = password_problem(password, username)
    if problem is not None:  # the staff password rule, said before any database work
        raise click.ClickException(refusal_message(problem, "en", {}))

    settings = _settings()

    async def run() -> None:
        db = Database(settings)
        try:
            await prepare_database(db)
            async with db.session() as session:
                await set_admin_password(session=session, username=username, password=password)
        finally:
            await db.dispose()

    asyncio.run(run())
    click.echo(f"Admin account '{username}' is ready.")


@main.command("import-villages")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--county", "county_code", default=None, help="Accept only villages of this county code.")
def import_villages(file: Path, county_code: str | None) -> None:
    """Import villages from a CSV (code,name[,township_code]) and print the rejected rows."""
    from backend.bootstrap import prepare_database
    from backend.db import Database
    from backend.regions.service import import_villages_file

    settings = _settings()

    async def run():  # type: ignore[no-untyped-def]
        db = Database(settings)
        try:
            await prepare_database(db)
            return await import_villages_file(db=db, path=file, county_code=county_code)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    click.echo(f"Accepted: {report.accepted}; rejected: {len(report.rejected)}")
    for row in report.rejected:
        click.echo(f"  line {row.line}: {row.code} {row.name}: {row.reason}")
    if report.rejected:
        sys.exit(1)


if __name__ == "__main__":
    main()
