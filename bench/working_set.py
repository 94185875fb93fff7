"""What a pretraining spends getting its pixels: decoding every original (before working sets) against
building a project's working set once from the working copies, and against reading it again.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/working_set.py --data ../shared/data/eurosat-rgb --size 64
    flock /tmp/loupe-bench.lock .venv/bin/python bench/working_set.py --photos 150 --size 96

The folder (or ``--photos N`` generated 2000x1500 JPEGs) is imported into a fresh SQLite project through
``import_candidates`` (working copies made on the way; its time is reported too); then, timed one after
the other: ``ml.images.load_arrays`` on the originals at the input size (what a pretraining did before),
the first ``load_working_set`` (build: every working copy decoded once, to S = 2 x size), and a second
``load_working_set`` with one new sample (the set is memory-mapped; rows kept are copied, not decoded).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import emit  # noqa: E402


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def make_photos(folder: Path, n: int) -> Path:
    """``n`` 2000x1500 JPEGs with gradients, shapes and sensor-like noise (so they decode like photos)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for i in range(n):
        x = np.linspace(0, 255, 2000)[None, :, None] * np.ones((1500, 1, 3))
        img = Image.fromarray((x + rng.normal(0, 12, x.shape)).clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(8):
            cx, cy, r = rng.integers(0, 2000), rng.integers(0, 1500), rng.integers(60, 400)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        (folder / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        img.save(folder / f"c{i % 2}" / f"p{i:04d}.jpg", quality=90)
    return folder


def timings(ctx, originals: list[str], ids: np.ndarray, size: int) -> tuple[float, float, float, float, np.ndarray]:
    """Seconds to decode the originals, build the working set (all but one sample), extend it by one and
    read all of it again; and the set as first built."""
    from ml.images import load_arrays
    from workers.jobs.working_set import load_working_set

    t0 = time.perf_counter()
    load_arrays(originals, size, 3)
    decode_s = time.perf_counter() - t0
    log(f"decode originals: {decode_s:.1f} s")
    t0 = time.perf_counter()
    first = load_working_set(ctx, size, 3, ids[:-1])
    build_s = time.perf_counter() - t0
    log(f"build working set: {build_s:.1f} s")
    t0 = time.perf_counter()
    again = load_working_set(ctx, size, 3, ids)  # one new sample: extended (rows copied)
    np.asarray(again[:: max(1, len(ids) // 100)]).sum()  # touch it
    extend_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reread = load_working_set(ctx, size, 3, ids)
    np.asarray(reread).sum()  # every row read from the map
    read_s = time.perf_counter() - t0
    return decode_s, build_s, extend_s, read_s, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="an ImageFolder tree")
    ap.add_argument("--photos", type=int, help="generate this many 2000x1500 photos instead")
    ap.add_argument("--size", type=int, default=64, help="backbone input side")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="loupe-workset-"))
    os.environ.update(LOUPE_VAR_DIR=str(tmp), LOUPE_MEDIA_DIR=str(tmp / "media"), LOUPE_ENVIRONMENT="test",
                      LOUPE_DATABASE_URL=f"sqlite:///{tmp / 'loupe.db'}")
    from alembic import command
    from alembic.config import Config

    from app.db import session_scope
    from app.services import projects as project_service
    from app.services.archives import expand_path
    from app.services.imports import import_candidates
    from app.settings import get_settings
    from workers.jobs.context import JobContext, load_samples
    from workers.jobs.working_set import working_side

    settings = get_settings()
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = settings.database_url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    data = args.data or make_photos(tmp / "photos", args.photos)
    try:
        with session_scope(settings.database_url) as s:
            project = project_service.create_project(s, "bench", sorted(p.name for p in data.iterdir() if p.is_dir()))
            s.commit()
            t0 = time.perf_counter()
            res = import_candidates(s, project, expand_path(data, settings), settings, after_chunk=s.commit)
            import_s = time.perf_counter() - t0
            pid = project.id
        log(f"imported {res.created} in {import_s:.1f} s")
        ctx = JobContext(job_id=0, project_id=pid, classes=[], settings={}, params={}, db_url=settings.database_url,
                         media=settings.media_path, current_backbone_version_id=None, current_embedding=None)
        samples = load_samples(ctx)
        originals = [str(ctx.media / k) for k in samples.storage_keys]
        ids = samples.ids

        decode_s, build_s, extend_s, read_s, first = timings(ctx, originals, ids, args.size)
        side = working_side(args.size)
        work_mb = sum(p.stat().st_size for p in (ctx.media / "work").rglob("*") if p.is_file()) / 1e6 \
            if (ctx.media / "work").exists() else 0.0
        orig_mb = sum(os.path.getsize(p) for p in originals) / 1e6
        emit({"bench": "working_set", "data": str(args.data or f"{args.photos} generated 2000x1500 photos"),
              "images": len(ids), "input_size": args.size, "working_side": side, "cpus": os.cpu_count(),
              "import_s": round(import_s, 2), "import_images_per_s": round(res.created / import_s, 1),
              "decode_originals_s": round(decode_s, 2), "build_s": round(build_s, 2),
              "extend_one_s": round(extend_s, 2), "read_all_s": round(read_s, 2),
              "originals_mb": round(orig_mb, 1), "working_copies_mb": round(work_mb, 1),
              "set_mb": round(first.nbytes / max(1, len(first)) * len(ids) / 1e6, 1)}, args.json, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
