"""Multipart uploads read after the route's access check, streamed to disk with the limits applied as the
bytes arrive.

FastAPI reads a ``File()`` body whole before it solves a route's dependencies, so a caller without a
token had 200 MB read (4.2 s) before the 401 (issue 16, item 4). An upload route takes its files from
a dependency that depends on the route's access check instead (``samples.SampleFiles``): FastAPI sees
no body parameter, solves the check first, and only then does ``receive_files`` read the body. The
answer to a caller who may not upload comes before the body, and the connection is closed
(app/api/limits.py), so the rest is never read.

As the body arrives each file goes to its own temporary file: the first MiB in memory (16 MiB at most
for the whole request), the rest on disk under ``<var>/uploads`` (unnamed: nothing is left behind, even
by a crash). The request's limit (``max_request_bytes``) is counted by ``BodySizeLimit`` as the bytes
arrive (413 as soon as it is passed, nothing stored); a file that is not a zip (by its name or first
bytes) keeps at most ``max_file_bytes`` + 1 bytes, enough for the import to list it as over the limit.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import finish
from app.services.archives import ZIP_MAGIC, is_zip_name
from app.settings import Settings

MAX_FILES = 1000  # per request, as FastAPI's form parsing allowed
MAX_FIELD_BYTES = 64 * 1024  # a text field beside the files (a name, a format)
SPOOL_BYTES = 1 << 20  # a file up to this size may stay in memory...
MEMORY_BUDGET = 16 << 20  # ...while the request's files in memory stay under this


@dataclass
class ReceivedFile:
    """One uploaded file: its name as sent and its content (``file``, at offset 0)."""

    filename: str
    file: BinaryIO
    size: int = 0


@dataclass
class ReceivedForm:
    files: list[ReceivedFile]
    fields: dict[str, str]  # the text fields asked for, as sent (the last of a repeated one)


@dataclass
class _Part:
    filename: str
    cap: int | None  # bytes kept: the per-file limit + 1, or None (no cap) once it is known to be a zip
    buf: bytearray = field(default_factory=bytearray)
    disk: BinaryIO | None = None
    size: int = 0  # bytes kept
    head: bytes = b""

    def take(self, data: bytes) -> bytes:
        """The part of ``data`` to keep: a file named or starting as a zip is kept whole (the request limit
        bounds it), any other stops at its cap."""
        if len(self.head) < 4:
            self.head += data[:4 - len(self.head)]
            if len(self.head) >= 4 and self.head.startswith(ZIP_MAGIC):
                self.cap = None
        if self.cap is None:
            return data
        return data[:max(0, self.cap - self.size)]


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _Receiver:
    """python-multipart's callbacks: the parts named ``field_name`` that carry a file become ``_Part``s,
    the text fields named in ``text_fields`` are kept; other parts are read past and dropped."""

    def __init__(self, field_name: str, text_fields: tuple[str, ...], tmp_dir: Path, file_cap: int | None) -> None:
        self.field_name, self.text_fields, self.tmp_dir, self.file_cap = field_name, text_fields, tmp_dir, file_cap
        self.parts: list[_Part] = []
        self.current: _Part | None = None
        self.text: bytearray | None = None  # the text field being read
        self.fields: dict[str, str] = {}
        self._text_name = ""
        self.pending: list[tuple[_Part, bytes]] = []
        self.in_memory = 0
        self._header, self._value, self._disposition = b"", b"", b""

    def on_part_begin(self) -> None:
        self.current, self.text, self._disposition = None, None, b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = _decode(options.get(b"name", b""))
        if b"filename" not in options:
            if name in self.text_fields:
                self.text = bytearray()
                self._text_name = name
            return
        if name != self.field_name:
            return
        if len(self.parts) >= MAX_FILES:
            raise HTTPException(413, f"the upload has more than {MAX_FILES} files, the limit for one request")
        filename = _decode(options[b"filename"])
        self.current = _Part(filename, None if is_zip_name(filename) else self.file_cap)
        self.parts.append(self.current)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.text is not None:
            self.text += data[start:end]
            if len(self.text) > MAX_FIELD_BYTES:
                raise HTTPException(413, f"the form field {self._text_name!r} is over the limit of "
                                         f"{MAX_FIELD_BYTES} bytes")
        elif self.current is not None:
            kept = self.current.take(data[start:end])
            if kept:
                self.pending.append((self.current, kept))
                self.current.size += len(kept)

    def on_part_end(self) -> None:
        if self.text is not None:
            self.fields[self._text_name] = _decode(bytes(self.text))
        self.current, self.text = None, None

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
            "on_part_data", "on_part_end")}

    def spills(self) -> bool:
        """Whether writing what is pending touches the disk (then it is done in a worker thread)."""
        return any(p.disk is not None or p.size > SPOOL_BYTES for p, _ in self.pending) or \
            self.in_memory + sum(len(d) for _, d in self.pending) > MEMORY_BUDGET

    def write_pending(self) -> None:
        for part, data in self.pending:
            if part.disk is None and (part.size > SPOOL_BYTES or self.in_memory + len(data) > MEMORY_BUDGET):
                part.disk = cast(BinaryIO, tempfile.TemporaryFile(dir=self.tmp_dir))
                part.disk.write(part.buf)
                self.in_memory -= len(part.buf)
                part.buf = bytearray()
            if part.disk is not None:
                part.disk.write(data)
            else:
                part.buf += data
                self.in_memory += len(data)
        self.pending.clear()

    def files(self) -> list[ReceivedFile]:
        out = []
        for part in self.parts:
            if part.disk is not None:
                part.disk.seek(0)
            out.append(ReceivedFile(part.filename, part.disk or io.BytesIO(part.buf), part.size))
        return out

    def close(self) -> None:
        for part in self.parts:
            if part.disk is not None:
                part.disk.close()
        self.parts.clear()


def _missing(field_name: str) -> RequestValidationError:
    return RequestValidationError([{"type": "missing", "loc": ("body", field_name), "msg": "Field required"}])


def _boundary(request: Request, field_name: str) -> bytes:
    """The multipart boundary; anything but multipart/form-data has no files (422, as FastAPI answered)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise _missing(field_name)
    return boundary


async def _read(request: Request, receiver: _Receiver, boundary: bytes) -> None:
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if receiver.spills():
                await run_in_threadpool(receiver.write_pending)
            else:
                receiver.write_pending()
        parser.finalize()
    except FormParserError as exc:
        raise HTTPException(400, f"the multipart body could not be read: {exc}") from None
    if parser.state not in (MultipartState.END_BOUNDARY, MultipartState.END):  # its last file may be cut short
        raise HTTPException(400, "the multipart body ended before its closing boundary: nothing was imported")


@asynccontextmanager
async def receive_form(request: Request, session: Session, settings: Settings, field_name: str,
                       text_fields: tuple[str, ...] = (), whole_files: bool = False) -> AsyncIterator[ReceivedForm]:
    """The request's files under ``field_name`` and its ``text_fields``, read now: call it only after the
    access check. The session's transaction (the check's) ends first: nothing should hold it while a
    client sends. ``whole_files`` keeps every file whole (a backbone file: only the request's limit)
    instead of cutting a file that is not a zip at ``max_file_bytes`` + 1 (an image)."""
    boundary = _boundary(request, field_name)
    if session.in_transaction():
        await run_in_threadpool(finish, session)
    tmp_dir = Path(settings.var_dir) / "uploads"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(field_name, text_fields, tmp_dir, None if whole_files else settings.max_file_bytes + 1)
    try:
        await _read(request, receiver, boundary)
        files = receiver.files()
        if not files:
            raise _missing(field_name)
        yield ReceivedForm(files, receiver.fields)
    finally:
        receiver.close()


@asynccontextmanager
async def receive_files(request: Request, session: Session, settings: Settings,
                        field_name: str) -> AsyncIterator[list[ReceivedFile]]:
    """The request's files under ``field_name`` (images, zips): ``receive_form`` without text fields."""
    async with receive_form(request, session, settings, field_name) as form:
        yield form.files
