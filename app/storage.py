"""Content-addressed blob storage on the local file system (``media_dir``).

Keys are derived from the content hash, so a file is stored once however often it is imported, and a
write is atomic (temp file, then rename): a crash never leaves a half-written blob under a real key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key_for(digest: str, kind: str, ext: str) -> str:
        return f"{kind}/{digest[:2]}/{digest[2:4]}/{digest}{ext}"

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise ValueError(f"storage key escapes the media directory: {key}")
        return p

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def put(self, key: str, data: bytes) -> bool:
        """Write ``data`` under ``key`` unless it is already there; returns True if it wrote."""
        target = self.path(key)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
