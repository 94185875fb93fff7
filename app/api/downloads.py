"""The ``Content-Disposition`` of every download, per RFC 6266 with RFC 5987's ``filename*``.

A file name can be anything a project or an upload was called (``Проект-猫``, a ``"``, CR/LF): raw in a
header it is a 500 (not Latin-1), a malformed header (a quote) or a split response (CR/LF). So the header
carries a plain-ASCII ``filename`` for old clients and the exact name, UTF-8 and percent-encoded, in
``filename*``, which every current browser prefers. Control, bidi-override and path characters are
replaced in both: a name must not reorder itself on screen (``U+202E``) or name a directory."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_UNSAFE = re.compile(r"[/\\]")
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%;]')
_RUNS = re.compile(r"_{2,}")


def _visible(name: str) -> str:
    """The name with controls (Cc), format characters such as bidi overrides (Cf) and path separators
    replaced by ``_``."""
    kept = "".join("_" if unicodedata.category(c) in ("Cc", "Cf") else c for c in name)
    return _UNSAFE.sub("_", kept)


def _ascii_fallback(name: str) -> str:
    """Accents dropped (é -> e), other non-ASCII and the characters a quoted-string or a naive parser
    trips on replaced; a name with nothing ASCII left keeps its extension behind ``download``."""
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    out = _RUNS.sub("_", _FALLBACK_UNSAFE.sub("_", decomposed))
    stem, dot, ext = out.rpartition(".")
    if not dot:
        stem, ext = out, ""
    if not stem.strip("_ -."):
        stem = "download"
    return stem + dot + ext


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """The header value that names ``filename`` for a download, safe for any string."""
    name = _visible(filename) or "download"
    return f"{disposition}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment(filename: str) -> dict[str, str]:
    """Response headers for a download named ``filename``."""
    return {"Content-Disposition": content_disposition(filename)}
