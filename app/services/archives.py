"""Turn uploads (image files, zips, folder trees) into a stream of candidate files.

Zips are read member by member with limits on count, total size and compression ratio, so a zip bomb
is refused from its headers and a member that lies about its size is cut off as it is read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from app.settings import Settings

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # a local file header, an empty zip, a spanned one


@dataclass
class Candidate:
    filename: str  # as the user knows it: the upload's name, or its path inside a zip or folder
    data: bytes | None  # None when rejected before reading
    folder: str | None = None  # the class sub-folder in an ImageFolder layout
    rejected: str | None = None


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in p.parts


def _hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts) or parts[-1] in SKIPPED_NAMES


def _read_limited(fh: IO[bytes], limit: int) -> bytes | None:
    data = fh.read(limit + 1)
    return None if len(data) > limit else data


def expand_zip(name: str, fileobj: BinaryIO, settings: Settings) -> Iterator[Candidate]:
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError):
        yield Candidate(name, None, rejected="corrupt zip archive")
        return
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > settings.max_zip_members:
            yield Candidate(name, None, rejected=f"zip has {len(members)} files, over the limit of "
                            f"{settings.max_zip_members}")
            return
        total = sum(m.file_size for m in members)
        if total > settings.max_zip_uncompressed_bytes:
            yield Candidate(name, None, rejected=f"zip expands to {total} bytes, over the limit of "
                            f"{settings.max_zip_uncompressed_bytes} (zip bomb?)")
            return
        for m in members:
            inner = f"{name}/{m.filename}"
            if _unsafe(m.filename):
                yield Candidate(inner, None, rejected="unsafe path in zip (absolute or '..')")
                continue
            if _hidden(m.filename):
                continue
            if is_zip_name(m.filename):
                yield Candidate(inner, None, rejected="nested zip archives are not accepted")
                continue
            if m.file_size > settings.max_file_bytes:
                yield Candidate(inner, None, rejected=f"file is {m.file_size} bytes, over the limit of "
                                f"{settings.max_file_bytes}")
                continue
            if m.compress_size and m.file_size > 1 << 20 and m.file_size / m.compress_size > settings.max_zip_ratio:
                yield Candidate(inner, None, rejected="compression ratio too high (zip bomb?)")
                continue
            try:
                with zf.open(m) as fh:
                    data = _read_limited(fh, min(m.file_size, settings.max_file_bytes))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                yield Candidate(inner, None, rejected=f"cannot read from zip ({exc})")
                continue
            if data is None:
                yield Candidate(inner, None, rejected="member is larger than its zip header says")
                continue
            if _zip_appended(io.BytesIO(data), data[:4]):
                yield Candidate(inner, None, rejected="has a zip archive appended: not imported (nested zip "
                                "archives are not accepted)")
                continue
            parts = PurePosixPath(m.filename).parts
            folder = parts[-2] if len(parts) >= 2 else None
            yield Candidate(m.filename, data, folder=folder)


def _zip_appended(fileobj: BinaryIO, head: bytes) -> bool:
    """A zip's directory at the end of a file that does not start as a zip: an image (or anything) with
    an archive appended, a polyglot that reads as either."""
    found = zipfile.is_zipfile(fileobj)
    fileobj.seek(0)
    return found and not head.startswith(ZIP_MAGIC)


def polyglot_reason(name: str, fileobj: BinaryIO) -> str | None:
    """Why the name and the content disagree about what a file is, or None when they agree.

    The name says zip (``.zip``) or not; the content starts as a zip or not. A file that starts as a zip
    under an image's name, or an image (anything not starting as a zip) with a zip appended, is refused:
    importing it as either would surprise whoever looks at its name or at its bytes."""
    if is_zip_name(name):
        return None
    head = fileobj.read(len(ZIP_MAGIC[0]))
    fileobj.seek(0)
    suffix = PurePosixPath(name).suffix.lower()
    if head.startswith(ZIP_MAGIC) and suffix in IMAGE_SUFFIXES:
        return f"named {suffix} but is a zip archive: not imported (name it .zip to import the files inside)"
    if _zip_appended(fileobj, head):
        kind = f"named {suffix}" if suffix else "not named .zip"
        return (f"{kind} but has a zip archive appended: imported neither as an image nor as a zip "
                "(upload the image alone, or the archive named .zip)")
    return None


def expand_upload(name: str, fileobj: BinaryIO, settings: Settings) -> Iterator[Candidate]:
    """One uploaded file: a zip (by its name, or by its content under a name that is not an image's) is
    expanded, anything else is a candidate image; a file whose name and content disagree is refused."""
    reason = polyglot_reason(name, fileobj)
    if reason is not None:
        yield Candidate(name, None, rejected=reason)
        return
    if is_zip_name(name) or zipfile.is_zipfile(fileobj):
        fileobj.seek(0)
        yield from expand_zip(name, fileobj, settings)
        return
    fileobj.seek(0)
    data = _read_limited(fileobj, settings.max_file_bytes)
    if data is None:
        yield Candidate(name, None, rejected=f"file is over the limit of {settings.max_file_bytes} bytes")
    else:
        yield Candidate(name, data)


def expand_path(path: Path, settings: Settings) -> Iterator[Candidate]:
    """A file, a zip, or a folder tree (sub-folders named after classes are kept as ``folder``)."""
    if path.is_file():
        with path.open("rb") as fh:
            yield from expand_upload(path.name, fh, settings)
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if _hidden(rel.as_posix()):
            continue
        with file.open("rb") as fh:
            if is_zip_name(file.name):
                yield from expand_zip(rel.as_posix(), fh, settings)
                continue
            reason = polyglot_reason(file.name, fh)
            data = _read_limited(fh, settings.max_file_bytes) if reason is None else None
        folder = rel.parts[-2] if len(rel.parts) >= 2 else None
        if reason is not None:
            yield Candidate(rel.as_posix(), None, rejected=reason)
        elif data is None:
            yield Candidate(rel.as_posix(), None, rejected=f"file is over the limit of {settings.max_file_bytes} bytes")
        else:
            yield Candidate(rel.as_posix(), data, folder=folder)


def count_path(path: Path) -> int:
    """A quick count for a progress bar (zips count their members)."""
    if path.is_file():
        if is_zip_name(path.name):
            try:
                with zipfile.ZipFile(path) as zf:
                    return sum(1 for m in zf.infolist() if not m.is_dir())
            except zipfile.BadZipFile:
                return 1
        return 1
    return sum(1 for p in path.rglob("*") if p.is_file())
