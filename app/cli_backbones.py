"""``loupe backbone ...``: register, list, export and delete backbone files (mounted in app/cli.py).

The same rules as ``POST /api/v1/backbones`` (app/services/backbones.py): the file is checked in a
child process, and a refused file is reported with the reason and leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.db import session_scope
from app.services import backbones as backbone_service
from app.services.errors import ServiceError
from app.settings import get_settings

backbone_cli = typer.Typer(help="Backbone files an organisation brings: register, list, export, delete.",
                           no_args_is_help=True)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@backbone_cli.command("register")
def register(
    file: Annotated[Path, typer.Argument(help="a state dict (.pth, .safetensors), TorchScript or ONNX file")],
    format: Annotated[str, typer.Option("--format", help="torchvision, torchscript or onnx")],  # noqa: A002
    name: Annotated[str | None, typer.Option(help="a unique name (default: the file name)")] = None,
    architecture: Annotated[str | None, typer.Option(help="for torchvision: a torchvision.models name")] = None,
    input_size: Annotated[int | None, typer.Option(help="input side in px (default: the file's own, else 224)")] = None,
    normalization: Annotated[str | None, typer.Option(help="imagenet (default) or unit")] = None,
) -> None:
    """Check a backbone file (loads, runs on a dummy batch) and register it."""
    if not file.is_file():
        _fail(f"{file} does not exist")
    settings = get_settings()
    settings.ensure_dirs()
    console.print(f"checking {file.name} ...")
    try:
        with session_scope(settings.database_url) as s, file.open("rb") as fh:
            row = backbone_service.register_file(s, settings.media_path, None, fh, file.name, format, name,
                                                 architecture, input_size, normalization)
            summary = (row.id, row.name, row.embedding_dim, row.input_size)
    except ServiceError as exc:
        _fail(str(exc.detail))
    console.print(f"[green]registered[/green] backbone {summary[0]} '{summary[1]}': embedding width {summary[2]}, "
                  f"input {summary[3]} px")


@backbone_cli.command("list")
def list_cmd() -> None:
    """The registered backbones."""
    settings = get_settings()
    table = Table("id", "name", "format", "architecture", "width", "input", "from project")
    with session_scope(settings.database_url) as s:
        for r in backbone_service.list_backbones(s):
            table.add_row(str(r.id), r.name, r.format, r.architecture or "", str(r.embedding_dim),
                          f"{r.input_size} px", str(r.source_project_id or ""))
    console.print(table)


@backbone_cli.command("export")
def export(backbone_id: Annotated[int, typer.Argument(help="a registered backbone's id")],
           out: Annotated[Path, typer.Argument(help="where to write the file")]) -> None:
    """Write a registered backbone's file (to register it on another Loupe, or to use it elsewhere)."""
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            row = backbone_service.get_backbone(s, backbone_id)
            key, fmt = row.file_key, row.format
    except ServiceError as exc:
        _fail(str(exc.detail))
    source = settings.media_path / key
    if not source.is_file():
        _fail("the stored backbone file is missing from the media store")
    shutil.copyfile(source, out)
    console.print(f"wrote {out} ({fmt}, {out.stat().st_size} bytes)")


@backbone_cli.command("delete")
def delete(backbone_id: Annotated[int, typer.Argument(help="a registered backbone's id")]) -> None:
    """Unregister a backbone and remove its file (refused while a project has it as its backbone)."""
    settings = get_settings()
    try:
        with session_scope(settings.database_url) as s:
            name = backbone_service.get_backbone(s, backbone_id).name
            backbone_service.delete_backbone(s, settings.media_path, backbone_id)
    except ServiceError as exc:
        _fail(str(exc.detail))
    console.print(f"[green]deleted[/green] backbone {backbone_id} '{name}'")
