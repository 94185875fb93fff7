"""Registered backbones: files an organisation brings (or a project exports), checked, stored once, chosen
per project.

A file is checked in a child process (``python -m ml.backbones.check``) with a timeout: the API process
never imports torch, and an untrusted file that takes minutes, gigabytes or a native crash to load costs a
child, not the API. Only a file that loads and embeds a dummy batch is stored, and its row written; a
refused file leaves nothing (the upload's temporary copy is removed, the stored file is removed again if
the transaction rolls back).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import after_commit, on_rollback
from app.models import Project, RegisteredBackbone, User
from app.repos import backbones as repo
from app.services.errors import Conflict, Invalid, NotFound
from app.services.jobs import create_job
from app.services.project_settings import effective_settings

ROOT = Path(__file__).resolve().parent.parent.parent
FORMATS = ("torchvision", "torchscript", "onnx")
NORMALIZATIONS = ("imagenet", "unit")
EXTENSIONS = {"torchscript": ".pt", "onnx": ".onnx"}  # torchvision keeps the upload's own (.pth, .safetensors)
MODES_FOR_FORMAT = {"torchvision": ("frozen", "continue", "finetune"),
                    "torchscript": ("frozen", "continue", "finetune"), "onnx": ("frozen",)}
CHECK_TIMEOUT_S = 300.0
CHUNK = 1 << 20


# ---------------------------------------------------------------- the check, in a child process


def run_checker(args: list[str], timeout: float = CHECK_TIMEOUT_S) -> dict[str, Any]:
    """Run ``python -m ml.backbones.check ARGS``; its report, or Invalid with the reason it gave."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    try:
        done = subprocess.run([sys.executable, "-m", "ml.backbones.check", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Invalid(f"checking the backbone took over {timeout:.0f} s; nothing was stored") from None
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        why = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        tail = (done.stderr.strip().splitlines() or [""])[-1][:300]
        raise Invalid(f"the backbone check crashed ({why}) loading the file: {tail or 'no message'}; "
                      "nothing was stored")
    if not report.get("ok"):
        raise Invalid(f"{report.get('error', 'the backbone file was refused')}; nothing was stored")
    return report


def _validate_request(fmt: str, architecture: str | None, normalization: str | None) -> None:
    if fmt not in FORMATS:
        raise Invalid(f"unknown backbone format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "torchvision" and not architecture:
        raise Invalid("format torchvision needs an architecture: a torchvision.models name such as resnet18, "
                      "resnet50, mobilenet_v3_small, efficientnet_b0, convnext_tiny or vit_b_16")
    if fmt != "torchvision" and architecture:
        raise Invalid(f"architecture is for format torchvision only; a {fmt} file describes its own graph")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise Invalid(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")


def _check_name(session: Session, name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise Invalid("a backbone name needs 1 to 200 characters")
    if repo.name_taken(session, name):
        raise Conflict(f"a backbone named '{name}' is already registered")
    return name


# ---------------------------------------------------------------- registering


def _spool(media: Path, source: BinaryIO) -> tuple[Path, str, int]:
    """Copy an upload to a temporary file in the media store (same file system as its final place),
    hashing as it goes; returns (path, sha256, size)."""
    folder = media / "backbones" / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), digest.hexdigest(), size


def _keep(session: Session, media: Path, tmp: Path, key: str) -> None:
    """Move the checked file to its content-addressed key (once; a second copy of the same bytes shares
    it), and take it away again if the transaction does not commit."""
    target = media / key
    if target.exists():
        tmp.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
    on_rollback(session, lambda: target.unlink(missing_ok=True))


def register_file(session: Session, media: Path, user: User | None, source: BinaryIO, filename: str, fmt: str,
                  name: str | None = None, architecture: str | None = None, input_size: int | None = None,
                  normalization: str | None = None) -> RegisteredBackbone:
    """Check a backbone file and register it. Invalid (422) naming the problem, Conflict (409) for a
    name in use; in both cases nothing is stored."""
    _validate_request(fmt, architecture, normalization)
    if input_size is not None and not 8 <= input_size <= 1024:
        raise Invalid(f"input_size must be between 8 and 1024 px, got {input_size}")
    # The file is checked (seconds) before the first query: on SQLite a write request's first query takes
    # the write lock, which must not be held while a checker loads a network (every label would wait).
    tmp, sha, size = _spool(media, source)
    try:
        if size == 0:
            raise Invalid("the backbone file is empty; nothing was stored")
        ext = EXTENSIONS.get(fmt) or (".safetensors" if filename.endswith(".safetensors") else ".pth")
        # The checker sees the final extension (safetensors and .pth are told apart by it too).
        named = tmp.with_name(tmp.name + ext)
        os.replace(tmp, named)
        tmp = named
        args = ["check", str(tmp), "--format", fmt]
        for flag, value in (("--architecture", architecture), ("--input-size", input_size),
                            ("--normalization", normalization)):
            if value is not None:
                args += [flag, str(value)]
        report = run_checker(args)
        name = _check_name(session, name or Path(filename).stem or "backbone")
        key = f"backbones/{sha[:2]}/{sha}{ext}"
        _keep(session, media, tmp, key)
    finally:
        tmp.unlink(missing_ok=True)
    return _add(session, _row(report, name, fmt, architecture, key, filename, sha, size, user))


def _add(session: Session, row: RegisteredBackbone) -> RegisteredBackbone:
    """Store the row; a name another request registered after ``_check_name`` looked is a 409 too (the
    unique index decides a race; the caller's rollback removes the stored file)."""
    try:
        return repo.add(session, row)
    except IntegrityError:
        raise Conflict(f"a backbone named '{row.name}' is already registered") from None


def _row(report: dict, name: str, fmt: str, architecture: str | None, key: str, filename: str, sha: str, size: int,
         user: User | None, **source: int) -> RegisteredBackbone:
    details = {k: report.get(k) for k in ("normalization", "norm_mean", "norm_std", "block_dims", "parameters",
                                          "trainable", "exported")}
    return RegisteredBackbone(
        name=name, format=fmt, architecture=architecture, embedding_dim=int(report["embedding_dim"]),
        input_size=int(report["input_size"]), in_channels=int(report["in_channels"]), details=details,
        file_key=key, filename=Path(filename).name[:300], sha256=sha, size=size,
        created_by=user.id if user else None, **source)


def export_version(session: Session, media: Path, user: User | None, project: Project, version_id: int,
                   name: str | None = None) -> RegisteredBackbone:
    """Register a backbone a project learned (a backbone version) as a TorchScript file, so other projects
    can use it: the project's normalisation is inside the file, its input contract recorded."""
    bv = repo.project_version(session, project.id, version_id)
    if bv is None:
        raise NotFound(f"backbone version {version_id} not found in project {project.id}")
    name = _check_name(session, name or f"{project.name} backbone v{bv.id}")
    checkpoint = media / bv.checkpoint_key
    if not checkpoint.is_file():
        raise NotFound(f"the checkpoint of backbone version {bv.id} is missing from the media store")
    bv_id = bv.id
    # End the request's transaction before the export (seconds: a child process loads and traces the
    # network): on SQLite a write request's transaction holds the write lock, and every label would wait.
    # Only reads happened so far; the row is written in a new transaction, where the unique name decides a
    # race (_add).
    session.commit()
    folder = media / "backbones" / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    fd, out = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".pt")
    os.close(fd)
    tmp = Path(out)
    try:
        report = run_checker(["export", str(checkpoint), str(tmp)])
        data = tmp.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        key = f"backbones/{sha[:2]}/{sha}.pt"
        _keep(session, media, tmp, key)
    finally:
        tmp.unlink(missing_ok=True)
    return _add(session, _row(report, name, "torchscript", None, key, f"{name}.pt", sha, len(data), user,
                              source_project_id=project.id, source_backbone_version_id=bv_id))


def get_backbone(session: Session, backbone_id: int) -> RegisteredBackbone:
    row = repo.get(session, backbone_id)
    if row is None:
        raise NotFound(f"backbone {backbone_id} not found")
    return row


def list_backbones(session: Session) -> list[RegisteredBackbone]:
    return repo.list_all(session)


def delete_backbone(session: Session, media: Path, backbone_id: int) -> None:
    """Unregister a backbone and remove its file once the deletion has committed (kept while another
    registered backbone shares the same bytes). Refused (409) while a project names it as its backbone:
    that project's next embedding would have nothing to load. Projects that used it before keep working:
    each adopted it into a checkpoint of its own (workers/jobs/registered.py)."""
    row = get_backbone(session, backbone_id)
    users = repo.projects_choosing(session, row.id)
    if users:
        names = ", ".join(f"'{n}'" for n in users)
        raise Conflict(f"backbone '{row.name}' is the chosen backbone of {names}: choose another backbone (or none) "
                       "in those projects' settings first; nothing was deleted")
    key = row.file_key
    shared = repo.file_shared(session, key, but=row.id)
    repo.delete(session, row)
    if not shared:
        after_commit(session, lambda: (media / key).unlink(missing_ok=True))


# ---------------------------------------------------------------- a project's choice


def check_choice(session: Session, settings: dict[str, Any]) -> RegisteredBackbone | None:
    """The registered backbone a project's settings name (None for self-supervision from scratch);
    Invalid if it does not exist or its format does not allow the mode."""
    if settings.get("backbone") is None:
        return None
    row = repo.get(session, int(settings["backbone"]))
    if row is None:
        raise Invalid(f"backbone {settings['backbone']} is not registered (see GET /api/v1/backbones)")
    mode = settings.get("backbone_mode", "frozen")
    if mode not in MODES_FOR_FORMAT[row.format]:
        raise Invalid(f"a {row.format} backbone can only be used {' or '.join(MODES_FOR_FORMAT[row.format])}, "
                      f"not with backbone_mode {mode!r}: onnxruntime runs the model but cannot train it")
    return row


def settings_changed(session: Session, project: Project, before: dict[str, Any], broker_url: str) -> None:
    """After a settings patch: refuse a backbone choice that cannot work, and queue what makes it take
    effect. A new backbone: an embed job (it adopts the backbone, re-embeds every sample and switches the
    queue to it). Mode ``continue``: a pretrain job that starts from the backbone's weights. Cleared:
    a pretrain from scratch (if automatic pretraining is on); the project keeps embedding with the
    registered backbone until it finishes."""
    now = effective_settings(project.settings)
    row = check_choice(session, now)
    changed_backbone = now["backbone"] != before.get("backbone")
    changed_mode = now["backbone_mode"] != before.get("backbone_mode")
    if not (changed_backbone or changed_mode) or not repo.has_samples(session, project.id):
        return  # a project without images adopts it at its first import (workers/jobs/registered.py)
    if row is None:
        if changed_backbone and now["auto_pretrain"]:
            create_job(session, project, None, "pretrain",
                       {"reason": "registered backbone cleared: self-supervision from scratch"}, broker_url)
        return
    if changed_backbone:
        create_job(session, project, None, "embed", {"reason": f"registered backbone '{row.name}'"}, broker_url)
    if now["backbone_mode"] == "continue":
        create_job(session, project, None, "pretrain",
                   {"reason": f"continue pretraining registered backbone '{row.name}'"}, broker_url)
