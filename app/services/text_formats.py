"""Read a text project's uploads into documents: CSV (or TSV), JSON Lines, plain text (one document a
line) and zips of ``.txt`` files (one document a file, its sub-folder as an imported label).

Pure parsing, no database: ``app.services.text_import`` writes what this yields. Each bad row is named
by its file and line (1 = the file's first line; in a CSV the line a record starts on, a quoted field
may span lines), with the reason, and the rest of the file is read on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from app.services.archives import expand_upload, is_zip_name
from app.settings import Settings

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
TEXT_SUFFIXES = {".txt"}
# A document's length is checked by the import's own limit (``text_max_chars``), with its line named;
# the csv module's own limit (128 KiB a field) would stop the whole file instead.
csv.field_size_limit(1 << 30)
ACCEPTED = ("CSV (.csv, .tsv), JSON Lines (.jsonl, .ndjson), plain text (.txt, one document a line) or a zip of "
            ".txt files")


@dataclass(frozen=True)
class Columns:
    """Which CSV columns (JSON Lines keys) hold the text, the label and an id. ``label`` and ``id`` are
    read only where the file has them; ``explicit`` names those the uploader chose (then a file
    without them is an error, not a silent default)."""

    text: str = "text"
    label: str = "label"
    id: str = "id"
    explicit: frozenset[str] = frozenset()


@dataclass
class Document:
    source: str  # the file, as the uploader knows it (a zip's member by its path)
    line: int | None  # its line in ``source`` (None: a whole .txt file in a zip)
    text: str
    label: str | None = None
    ext_id: str | None = None

    @property
    def name(self) -> str:
        """What the sample's ``filename`` shows: its id if the file gave one, else where it came from."""
        if self.ext_id:
            return self.ext_id
        return self.source if self.line is None else f"{self.source}:{self.line}"


@dataclass
class BadRow:
    source: str
    line: int | None
    reason: str


def normalised(text: str) -> str:
    """What counts as the same document: Unicode NFKC, case folded, runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(text: str) -> str:
    return hashlib.sha256(normalised(text).encode("utf-8")).hexdigest()


def _check(doc: Document, max_chars: int) -> Document | BadRow:
    """The document, stripped of surrounding white space, or why it cannot be a sample."""
    text = doc.text.strip()
    if not text:
        return BadRow(doc.source, doc.line, "empty text")
    if "\x00" in text:
        return BadRow(doc.source, doc.line, "the text contains a NUL character")
    if len(text) > max_chars:
        return BadRow(doc.source, doc.line, f"the text has {len(text)} characters, over the limit of {max_chars}")
    doc.text = text
    if doc.label is not None:
        doc.label = doc.label.strip()[:200] or None
    if doc.ext_id is not None:
        doc.ext_id = doc.ext_id.strip()[:512] or None
    return doc


def _decode(data: bytes, source: str) -> str | BadRow:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return BadRow(source, line, f"not UTF-8 text (byte {exc.start} on line {line}): not imported "
                      "(save it as UTF-8)")


def _csv(text: str, source: str, delimiter: str, cols: Columns) -> Iterator[Document | BadRow]:
    lines = text.splitlines(keepends=True)
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        yield BadRow(source, 1, "the file is empty (a header row naming its columns is expected)")
        return
    except csv.Error as exc:
        yield BadRow(source, 1, f"the header row cannot be read ({exc})")
        return
    header = [h.strip() for h in header]
    missing = [getattr(cols, k) for k in ("text", "label", "id")
               if (k == "text" or k in cols.explicit) and getattr(cols, k) not in header]
    if missing:
        yield BadRow(source, 1, f"no column named {', '.join(repr(m) for m in missing)}; the columns are "
                     f"{header} (name them with text_column, label_column, id_column)")
        return
    at = {name: header.index(name) for name in (cols.text, cols.label, cols.id) if name in header}
    width = len(header)
    pos = reader.line_num  # lines read before the current stretch
    while pos < len(lines):
        # A stretch of records read by one reader; a broken record (an unclosed or stray quote) is named
        # and the next stretch starts on the line after its first.
        reader = csv.reader((lines[i] for i in range(pos, len(lines))), delimiter=delimiter, strict=True)
        end = pos
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(source, start, f"malformed CSV row ({exc})")
                pos = start
                break
            end = pos + reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != width:
                yield BadRow(source, start, f"the row has {len(row)} fields, the header {width}")
                continue
            yield Document(source, start, row[at[cols.text]],
                           label=row[at[cols.label]] if cols.label in at else None,
                           ext_id=row[at[cols.id]] if cols.id in at else None)


def _jsonl(text: str, source: str, cols: Columns) -> Iterator[Document | BadRow]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            yield BadRow(source, n, f"not valid JSON ({exc})")
            continue
        if isinstance(obj, str):
            yield Document(source, n, obj)
            continue
        if not isinstance(obj, dict):
            yield BadRow(source, n, f"a JSON object (with a '{cols.text}' field) or a string is expected")
            continue
        value = obj.get(cols.text)
        if not isinstance(value, str):
            yield BadRow(source, n, f"no text: the field '{cols.text}' is missing or not a string")
            continue
        missing = [getattr(cols, k) for k in ("label", "id") if k in cols.explicit and getattr(cols, k) not in obj]
        if missing:
            yield BadRow(source, n, f"no field {', '.join(repr(m) for m in missing)}")
            continue
        label, ext_id = obj.get(cols.label), obj.get(cols.id)
        yield Document(source, n, value, label=None if label is None else str(label),
                       ext_id=None if ext_id is None else str(ext_id))


def _lines(text: str, source: str) -> Iterator[Document | BadRow]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            yield Document(source, n, raw)


def parse_file(name: str, data: bytes, cols: Columns, whole_txt: bool = False,
               folder: str | None = None) -> Iterator[Document | BadRow]:
    """The documents (and bad rows) of one file. ``whole_txt``: a ``.txt`` is one document (a zip's
    member), labelled by ``folder``; otherwise one document a line."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in CSV_SUFFIXES and suffix not in JSONL_SUFFIXES and suffix not in TEXT_SUFFIXES:
        yield BadRow(name, None, f"not a text file this import reads: {ACCEPTED}")
        return
    text = _decode(data, name)
    if isinstance(text, BadRow):
        yield text
        return
    if suffix in CSV_SUFFIXES:
        yield from _csv(text, name, CSV_SUFFIXES[suffix], cols)
    elif suffix in JSONL_SUFFIXES:
        yield from _jsonl(text, name, cols)
    elif whole_txt:
        yield Document(name, None, text, label=folder)
    else:
        yield from _lines(text, name)


def parse_upload(name: str, fileobj: BinaryIO, cols: Columns, settings: Settings,
                 max_chars: int) -> Iterator[Document | BadRow]:
    """One uploaded file, checked row by row: a zip is expanded with the image import's limits
    (``archives.expand_upload``) and each member read by its name."""
    in_zip = is_zip_name(name) or zipfile.is_zipfile(fileobj)
    fileobj.seek(0)
    for cand in expand_upload(name, fileobj, settings):
        source = f"{name}/{cand.filename}" if in_zip and cand.data is not None else cand.filename
        if cand.rejected is not None or cand.data is None:
            yield BadRow(source, None, cand.rejected or "unreadable")
            continue
        for item in parse_file(source, cand.data, cols, whole_txt=in_zip, folder=cand.folder):
            yield item if isinstance(item, BadRow) else _check(item, max_chars)
