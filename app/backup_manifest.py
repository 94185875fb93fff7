"""The integrity of a backup archive: the SHA-256 of its files, as the manifest records them, and what in
an unpacked archive differs from its manifest (app/backup.py refuses to restore on any difference)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def hashes(folder: Path, files: list[Path]) -> dict[str, str]:
    """The SHA-256 of each file, by its path under ``folder``."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in files}


def manifest_problems(tmp: Path, manifest: dict) -> list[str]:
    """What in an unpacked archive (``tmp``) differs from its manifest: tables missing, added or with
    another row count; dumps and media files missing, added or altered. Empty when it matches."""
    dumps = {p.stem.split("-", 1)[1]: p for p in (tmp / "db").glob("*.jsonl")} if (tmp / "db").is_dir() else {}
    problems = [f"table {name}: its rows are missing" for name in manifest["tables"] if name not in dumps]
    problems += [f"table {name}: not in the manifest" for name in dumps if name not in manifest["tables"]]
    for name, dump in dumps.items():
        with dump.open("rb") as fh:
            n = sum(1 for _ in fh)
        if name in manifest["tables"] and n != manifest["tables"][name]:
            problems.append(f"table {name}: {n} rows, the manifest says {manifest['tables'][name]}")
    problems += _differences(tmp / "db", sorted(dumps.values()), manifest.get("dumps"), "dump")
    media = [p for p in (tmp / "media").rglob("*") if p.is_file()] if (tmp / "media").is_dir() else []
    problems += _differences(tmp / "media", media, manifest.get("media"), "media file")
    if "media" not in manifest and len(media) != manifest.get("media_files", len(media)):
        problems.append(f"{len(media)} media files, the manifest says {manifest['media_files']}")
    return problems


def _differences(folder: Path, files: list[Path], expected: dict[str, str] | None, what: str) -> list[str]:
    """Files missing from ``folder``, added to it, or whose SHA-256 differs from ``expected`` (an
    archive from before hashes were recorded has none: nothing to compare)."""
    if expected is None:
        return []
    found = hashes(folder, files)
    problems = [f"{what} {name} is missing" for name in expected if name not in found]
    problems += [f"{what} {name} is not in the manifest" for name in found if name not in expected]
    problems += [f"{what} {name}: its hash differs" for name, digest in found.items()
                 if name in expected and digest != expected[name]]
    return problems
