"""Text import speed end to end through the REST API of a real server (issue 19: 100,000 CSV rows in
under 30 s; a malformed row reported by its line, the rest imported).

    flock /tmp/loupe-bench.lock .venv/bin/python bench/text_import_speed.py --json

Builds a CSV of ``--rows`` documents from AG News (../shared/data/text/ag_news, pool and test text; each
document made unique by a row number, as the import folds duplicates by normalised content), with a
label column, ``--bad`` malformed rows planted at known lines (an empty text, or spaces only),
and uploads it to a fresh text project on a fresh database, one request, through uvicorn with
``--server-workers`` processes (2, as ``loupe serve`` runs it). The clock runs from the first byte sent to
the answer: every row parsed, checked, normalised, hashed and written with its label.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import process_tree  # noqa: E402
from import_speed import log, serving  # noqa: E402
from report import emit  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "text" / "ag_news"


def build_csv(data: Path, rows: int, bad: int) -> tuple[bytes, list[str], set[int]]:
    """The CSV's bytes, its classes, and the file lines (1 = the header) of the planted bad rows."""
    docs = [json.loads(line) for split in ("train", "test") for line in (data / f"{split}.jsonl").open()]
    classes = [c.strip() for c in (data / "classes.txt").read_text().splitlines() if c.strip()]
    bad_rows = {rows * (k + 1) // (bad + 1) for k in range(bad)}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["doc", "body", "topic"])
    for i in range(rows):
        d = docs[i % len(docs)]
        if i in bad_rows:  # no document: an empty text, or only spaces (a label alone is no document)
            w.writerow([f"d{i}", "" if len(buf.getvalue()) % 2 else "   ", d["label"]])
        else:
            w.writerow([f"d{i}", f"{d['text']} #{i}", d["label"]])
    return buf.getvalue().encode(), classes, {r + 2 for r in bad_rows}  # +1 header, +1 from 1


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the API's processes have used so far (the machine is shared: the wall
    clock alone says little under load)."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def import_once(c, db: str, server_workers: int, payload: bytes, classes: list[str], bad_lines: set[int],
                api_pid: int) -> dict:
    r = c.post("/projects", json={"name": f"text-{uuid.uuid4().hex[:6]}", "classes": classes, "kind": "text",
                                  "settings": {"auto_pretrain": False, "auto_embed": False}})
    r.raise_for_status()
    pid = r.json()["id"]
    cpu0, load0, t0 = cpu_seconds(api_pid), os.getloadavg()[0], time.perf_counter()
    r = c.post(f"/projects/{pid}/samples", files=[("files", ("docs.csv", payload, "text/csv"))],
               data={"text_column": "body", "label_column": "topic", "id_column": "doc"})
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(api_pid) - cpu0
    r.raise_for_status()
    answer = r.json()
    named = {x["line"] for x in answer["rejected"] if x.get("line") is not None}
    n = payload.count(b"\n") - 1
    row = {"db": db, "server_workers": server_workers, "rows": n, "megabytes": round(len(payload) / 1e6, 1),
           "created": answer["created"], "duplicates": answer["duplicates"], "rejected": len(answer["rejected"]),
           "bad_planted": len(bad_lines), "bad_named_by_line": len(named & bad_lines),
           "other_lines_named": len(named - bad_lines), "seconds": round(wall, 3),
           "rows_per_s": round(n / wall, 1), "api_cpu_s": round(cpu, 2),
           "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
    log(f"  {db}: {n} rows in {wall:.2f}s ({row['rows_per_s']} rows/s, API CPU {cpu:.1f}s, load {load0:.1f}), "
        f"{answer['created']} created, "
        f"{row['bad_named_by_line']} of {len(bad_lines)} bad rows named by line")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bad", type=int, default=10, help="malformed rows planted")
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--server-workers", type=int, default=2, help="API processes (loupe serve's default)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also append the JSON lines here")
    ap.add_argument("--server-log", type=Path, help="keep the server's output here")
    args = ap.parse_args()
    payload, classes, bad_lines = build_csv(args.data, args.rows, args.bad)
    log(f"{args.rows} rows, {len(payload) / 1e6:.1f} MB, {len(bad_lines)} bad rows at lines {sorted(bad_lines)}")
    for db in args.db.split(","):
        with serving(db, args.server_workers, args.server_log) as (c, api_pid):
            emit(import_once(c, db, args.server_workers, payload, classes, bad_lines, api_pid), args.json, args.out)


if __name__ == "__main__":
    main()
