"""Content-addressed blob storage on the local file system (``media_dir``).

Keys are derived from the content hash, so a file is stored once however often it is imported, and a
write is atomic (temp file, then rename): a crash never leaves a half-written blob under a real key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` whole once the block ends (temp file in the same folder,
    then rename), or not at all if the block raises: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Resolved once: resolving every key cost an lstat per path component, per file.
        self._root = os.path.realpath(self.root)
        self._dirs: set[str] = set()  # folders known to exist (an import writes thousands of files)

    @staticmethod
    def key_for(digest: str, kind: str, ext: str) -> str:
        return f"{kind}/{digest[:2]}/{digest[2:4]}/{digest}{ext}"

    @staticmethod
    def working_key(digest: str, side: int, ext: str) -> str:
        """Where the working copy of the original with hash ``digest`` lives (imaging.working_copy).

        Derived from the content hash, like the original's key, so no column records it and samples
        imported before working copies existed find theirs once a worker has made it; the side is
        part of the name, so a larger ``work_side`` makes new copies instead of reusing smaller ones.
        """
        return BlobStore.key_for(digest, "work", f"-{side}{ext}")

    def _path(self, key: str) -> str:
        p = os.path.normpath(os.path.join(self._root, key))
        if not p.startswith(self._root + os.sep):
            raise ValueError(f"storage key escapes the media directory: {key}")
        return p

    def path(self, key: str) -> Path:
        return Path(self._path(key))

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def put(self, key: str, data: bytes) -> bool:
        """Write ``data`` under ``key`` unless it is already there; returns True if it wrote."""
        target = self._path(key)
        if os.path.exists(target):
            return False
        folder = os.path.dirname(target)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def delete(self, key: str) -> None:
        Path(self._path(key)).unlink(missing_ok=True)
