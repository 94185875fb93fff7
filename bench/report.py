"""How every benchmark reports a row: one line on stdout (JSON, or key=value for people), and the same
JSON appended to a .jsonl file when asked, so docs/bench-results keeps every run."""

from __future__ import annotations

import json
from pathlib import Path


def emit(row: dict, as_json: bool, out: Path | str | None = None) -> None:
    line = json.dumps(row)
    print(line if as_json else ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as fh:
            fh.write(line + "\n")
