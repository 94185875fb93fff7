"""``loupe``: the admin's command line (set-up, serving, import, accounts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.db import run_after_commit, session_scope
from app.services import auth as auth_service
from app.services import demo as demo_service
from app.services import imports as import_service
from app.services import projects as project_service
from app.services.archives import count_path
from app.services.errors import ServiceError
from app.services.imports import ImportResult
from app.settings import get_settings
from app.task_client import LONG_QUEUES, QUEUES, SHORT_QUEUES, prepare_broker

ROOT = Path(__file__).resolve().parent.parent
cli = typer.Typer(help="Loupe: active-learning image labelling.", no_args_is_help=True, add_completion=False)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    settings = get_settings()
    settings.ensure_dirs()
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = settings.database_url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    console.print(f"database ready: {settings.database_url.split('@')[-1]}")


def ensure_admin(username: str = "admin") -> None:
    from app.security import generate_password

    given = os.environ.get("LOUPE_ADMIN_PASSWORD")
    password = given or generate_password()
    with session_scope(get_settings().database_url) as s:
        created = auth_service.create_user_unless_taken(s, username, password, is_admin=True) is not None
    if not created:
        console.print(f"admin account '{username}' exists (reset with: loupe reset-password {username})")
    elif given:
        console.print(f"created admin account '{username}' with the password from LOUPE_ADMIN_PASSWORD")
    else:
        file = _write_private(get_settings().var_dir / "admin-password.txt", password + "\n")
        console.print(f"created admin account '{username}'; its generated password is in {file} (readable by "
                      "you only: sign in, change it under Account, then delete the file)", soft_wrap=True)


def _write_private(path: Path, content: str) -> Path:
    """Write ``content`` to a file only its owner may read (0600), never to the terminal or a log: a
    container's stdout ends up in its logs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    return path.resolve()


def ensure_demo() -> None:
    settings = get_settings()
    with session_scope(settings.database_url) as s:
        created = demo_service.create_demo_project(s) is not None
    if not created:
        console.print(f"demo project '{demo_service.DEMO_PROJECT}' exists")
        return
    import_path(demo_service.DEMO_PROJECT, demo_service.demo_folder(settings.var_dir))


def _progress_bar(total: int) -> tuple[Progress, Callable[[int, ImportResult], None]]:
    bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeRemainingColumn(), console=console)
    task = bar.add_task("", total=total)

    def on_progress(seen: int, res: ImportResult) -> None:
        bar.update(task, completed=seen,
                   description=f"{res.created} new, {res.duplicates} duplicates, {len(res.rejected)} rejected")

    return bar, on_progress


def _report(result: ImportResult, labelled: int) -> None:
    console.print(f"[green]{result.created} imported[/green], {result.duplicates} duplicates, "
                  f"{len(result.rejected)} rejected" + (f", {labelled} labelled from folders" if labelled else ""))
    if result.unknown_labels:
        console.print(f"  [yellow]left unlabelled[/yellow]: sub-folders that name no class of the project: "
                      f"{', '.join(result.unknown_labels)}")
    for r in result.rejected[:50]:
        console.print(f"  [yellow]rejected[/yellow] {r['filename']}: {r['reason']}")
    if len(result.rejected) > 50:
        console.print(f"  ... and {len(result.rejected) - 50} more")


def import_path(project_ref: str, path: Path, create: bool = False, labels_from_folders: bool = False) -> None:
    settings = get_settings()
    if not path.exists():
        _fail(f"{path} does not exist")
    total = count_path(path)
    with session_scope(settings.database_url) as s:
        project = project_service.find_project(s, project_ref)
        if project is None:
            if not create:
                _fail(f"no project '{project_ref}' (pass --create to make one from the folder's class names)")
            classes = import_service.folder_classes(path)
            if not classes:
                _fail("--create needs a folder with one sub-folder per class")
            project = project_service.create_project(s, project_ref, classes)
            s.commit()

        def commit_chunk() -> None:  # a long import keeps what it has done
            s.commit()
            run_after_commit(s)

        bar, on_progress = _progress_bar(total)
        with bar:
            result, labelled = import_service.import_path(s, project, path, settings, labels_from_folders,
                                                          on_progress, commit_chunk)
    _report(result, labelled)


@cli.command("import")
def import_cmd(
    project: Annotated[str, typer.Argument(help="project name or id")],
    path: Annotated[Path, typer.Argument(help="an image, a zip, or a folder (one sub-folder per class)")],
    create: Annotated[bool, typer.Option(help="create the project, classes from the sub-folders")] = False,
    labels_from_folders: Annotated[bool, typer.Option(help="keep class sub-folders as imported labels")] = False,
) -> None:
    """Import images into a project, with a progress bar and a list of what was rejected and why."""
    import_path(project, path, create, labels_from_folders)


@cli.command()
def init(demo: Annotated[bool, typer.Option(help="import the digits demo project")] = True) -> None:
    """Set up a fresh machine: migrate, create the admin account, import the demo project."""
    migrate()
    ensure_admin()
    if demo:
        ensure_demo()


@cli.command("create-user")
def create_user(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="make an admin")] = False,
    password: Annotated[str | None, typer.Option(help="else prompted for")] = None,
) -> None:
    """Create an account."""
    password = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(get_settings().database_url) as s:
            auth_service.create_user(s, username, password, is_admin=admin)
    except ServiceError as exc:
        _fail(str(exc.detail))
    console.print(f"created {'admin ' if admin else ''}user '{username}'")


@cli.command("reset-password")
def reset_password(
    username: str, password: Annotated[str | None, typer.Option(help="else prompted for")] = None
) -> None:
    """Set a new password for an account."""
    password = password or typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(get_settings().database_url) as s:
            auth_service.set_password(s, username, password)
    except ServiceError as exc:
        _fail(str(exc.detail))
    console.print(f"password of '{username}' changed")


def worker_command(queues: str = ",".join(QUEUES), concurrency: int = 1, name: str | None = None) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues,
            "-c", str(concurrency), "--pool", "solo" if concurrency == 1 else "prefork", "-l", "info",
            "--without-gossip", "--without-mingle", *(["-n", f"{name}@%h"] if name else [])]


@cli.command()
def worker(queues: str = ",".join(QUEUES), concurrency: int = 1) -> None:
    """Run a Celery worker in the foreground (production runs one per queue)."""
    os.execv(sys.executable, worker_command(queues, concurrency))


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    embedded_worker: Annotated[bool, typer.Option(
        help="start the workers beside the API (one for short jobs, one for long)")] = True,
    workers: Annotated[int, typer.Option(
        min=1, envvar="LOUPE_API_WORKERS",
        help="API processes. A request is mostly Python CPU, and one process runs one thread of Python "
             "at a time: about one per core given to the API (docs/reliability.md, Load)")] = 2,
) -> None:
    """Serve the API and UI, with the embedded workers; Ctrl-C stops all."""
    import uvicorn

    from app.server import uvicorn_options

    # Two worker processes: short jobs (embed, train) never wait behind a pretraining chunk or a
    # fine-tuning, which have their own (docs/architecture.md, Jobs).
    if embedded_worker:
        prepare_broker(get_settings().broker_url)
    procs = [subprocess.Popen(worker_command(SHORT_QUEUES, name="short"), cwd=ROOT),
             subprocess.Popen(worker_command(LONG_QUEUES, name="long"), cwd=ROOT)] if embedded_worker else []
    console.print(f"Loupe on [bold]http://{host}:{port}[/bold] (API docs at /docs, {workers} API processes); "
                  "Ctrl-C stops")
    try:
        # Header and body read timeouts, a header size limit (app/server.py): uvicorn has none of its own.
        uvicorn.run("app.main:create_app", factory=True, host=host, port=port, log_level="info", workers=workers,
                    **uvicorn_options(get_settings()))
    finally:
        live = [p for p in procs if p.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        # A worker's warm shutdown puts its running job back in the queue at the job's next progress
        # report, or after 15 s at the latest (workers/startup.py), so this cut leaves no job "running".
        for proc in live:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                console.print(f"a worker (pid {proc.pid}) did not stop in 20 s: killed")
                proc.kill()
                proc.wait()


@cli.command()
def backup(path: Annotated[Path, typer.Argument(help="the archive to write (.tar, or .tar.gz to compress)")]) -> None:
    """Back up the database and the media store into one archive (safe while the service runs)."""
    from app.backup import BackupError
    from app.backup import backup as do_backup

    settings = get_settings()
    try:
        do_backup(settings.database_url, settings.media_path, path, log=console.print)
    except BackupError as exc:
        _fail(str(exc))


@cli.command()
def restore(path: Annotated[Path, typer.Argument(help="an archive made by 'loupe backup'")]) -> None:
    """Restore a backup into an empty database and an empty media directory."""
    from app.backup import BackupError
    from app.backup import restore as do_restore

    settings = get_settings()
    if not path.is_file():
        _fail(f"{path} does not exist")
    try:
        do_restore(path, settings.database_url, settings.media_path, log=console.print)
    except BackupError as exc:
        _fail(str(exc))


from app.cli_backbones import backbone_cli  # noqa: E402 - a sub-app of its own module

cli.add_typer(backbone_cli, name="backbone")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
