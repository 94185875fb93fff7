"""Near-duplicates (issue 18, item 2): re-add pool images as re-encoded, resized or cropped copies and
count how many (original, copy) pairs the service's groups join, and how many shown pairs are false.

    flock /tmp/loupe-bench.lock python bench/duplicates.py --pool ../shared/data/eurosat-rgb --images 2000 \\
        --copies 500 --embedding pixels,untrained --json [--exact-up-to 0]

It draws --images files of the ImageFolder at random (seed), copies --copies of them in turn as a JPEG
at quality 70, resized to 56 px (JPEG 90), or cropped 3 px a side (JPEG 90), and writes the copies as
files beside none of the originals. Then, as the train job does (``workers/jobs/data_check.py``): each
file's perceptual hash and pixel spread from its 32 / 64 px grey image (``_grey``), the embedding
(``pixels``: the 16 px grey pixels a project has before any backbone, ``ml.pixel_baseline``;
``untrained``: the untrained backbone's concat:3 features on 64 px inputs; or a checkpoint path), the
kNN pass and the groups (``ml.data_check``: the service's rule, embeddings for candidates and the pictures
to confirm, and beside it the cosine threshold alone). A pair is
"shown" when both samples are in one group; "false" when it is not an (original, copy) pair. Reported
per embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.data_check import (  # noqa: E402
    BLANK_STD,
    EXACT_UP_TO,
    HASH_THRESHOLD,
    LOW_FREQ_THRESHOLD,
    MAX_HAMMING,
    THRESHOLD,
    duplicate_groups,
    knn,
    low_frequencies,
    phash,
)


def make_copies(paths: list[Path], rng: np.random.Generator, copies: int, out: Path) -> tuple[list[str], np.ndarray]:
    """(copy file paths, the row of each copy's original): a JPEG at 70, resized to 56 px, or cropped."""
    from PIL import Image

    src = rng.choice(len(paths), copies, replace=False)
    files = []
    for k, r in enumerate(src):
        im = Image.open(paths[r]).convert("RGB")
        w, h = im.size
        if k % 3 == 0:
            im.save(out / f"c{k}.jpg", "JPEG", quality=70)
        elif k % 3 == 1:
            im.resize((w * 7 // 8, h * 7 // 8), Image.Resampling.LANCZOS).save(out / f"c{k}.jpg", "JPEG", quality=90)
        else:
            im.crop((3, 3, w - 3, h - 3)).save(out / f"c{k}.jpg", "JPEG", quality=90)
        files.append(str(out / f"c{k}.jpg"))
    return files, src


def embed(method: str, paths: list[str]) -> np.ndarray:
    if method == "pixels":
        from ml.pixel_baseline import pixel_features
        from workers.jobs.embedding import PIXEL_SIZE

        return pixel_features(paths, PIXEL_SIZE)
    from imaging.normalise import load_image
    from ml.embedding import extract_embeddings
    from ml.images import to_array

    arr = np.stack([to_array(load_image(p), 64, 3) for p in paths])
    ckpt: object = method
    if method == "untrained":
        from ml.pretrain import random_backbone_checkpoint

        ckpt = random_backbone_checkpoint(arr, seed=0, device="cpu")
    return np.asarray(extract_embeddings(ckpt, arr, layer="concat:3", dtype=np.float32))  # type: ignore[arg-type]


def pairs_in(groups: list[np.ndarray]) -> set[tuple[int, int]]:
    out = set()
    for g in groups:
        m = sorted(int(x) for x in g)
        out |= {(a, b) for i, a in enumerate(m) for b in m[i + 1:]}
    return out


def score(X: np.ndarray, h: np.ndarray, low: np.ndarray, blank: np.ndarray, planted: set[tuple[int, int]],
          use_hash: bool, args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    idx, sim = knn(X, exact_up_to=args.exact_up_to)
    g = duplicate_groups(idx, sim, args.threshold, X=X, hashes=h if use_hash else None, low_freq=low, blank=blank,
                         hash_threshold=args.hash_threshold, max_hamming=args.max_hamming,
                         low_freq_threshold=args.low_freq_threshold)
    shown = pairs_in(g.members)
    found = len(planted & shown)
    return {"found": found, "found_pct": round(100 * found / len(planted), 1), "pairs_shown": len(shown),
            "false_pairs": len(shown - planted), "false_pct": round(100 * len(shown - planted) / max(len(shown), 1), 1),
            "groups": len(g.members), "largest_group": max((len(m) for m in g.members), default=0),
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", default=str(ROOT.parent / "shared" / "data" / "eurosat-rgb"))
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--copies", type=int, default=500)
    p.add_argument("--embedding", default="pixels,untrained")
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p.add_argument("--hash-threshold", type=float, default=HASH_THRESHOLD)
    p.add_argument("--max-hamming", type=int, default=MAX_HAMMING)
    p.add_argument("--low-freq-threshold", type=float, default=LOW_FREQ_THRESHOLD)
    p.add_argument("--exact-up-to", type=int, default=EXACT_UP_TO,
                   help="rows up to which the kNN pass is exact (0: the inverted file however small the pool, "
                        "to measure what the 1M path finds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from workers.jobs.data_check import _grey

    rng = np.random.default_rng(args.seed)
    files = sorted(Path(args.pool).glob("*/*.jpg"))
    picked = [files[i] for i in rng.choice(len(files), args.images, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        copy_files, src = make_copies(picked, rng, args.copies, Path(tmp))
        paths = [str(f) for f in picked] + copy_files
        planted = {(int(s), args.images + k) for k, s in enumerate(src)}
        greys = [_grey(q) for q in paths]
        h = phash(np.stack([g for g, _ in greys]))
        low = low_frequencies(np.stack([g for g, _ in greys]))
        blank = np.array([s for _, s in greys]) < BLANK_STD
        for method in args.embedding.split(","):
            t0 = time.perf_counter()
            X = embed(method, paths)
            embed_s = time.perf_counter() - t0
            for use_hash in (True, False):
                rule = ({"rule": "pictures", "hash_threshold": args.hash_threshold, "max_hamming": args.max_hamming,
                         "low_freq_threshold": args.low_freq_threshold} if use_hash
                        else {"rule": "cosine", "threshold": args.threshold})
                res = {"pool": Path(args.pool).name, "images": len(paths), "planted_pairs": len(planted),
                       "embedding": method, "dim": int(X.shape[1]), **rule,
                       "search": "exact" if len(paths) <= args.exact_up_to else "ivf", "embed_s": round(embed_s, 1),
                       **score(X, h, low, blank, planted, use_hash, args),
                       "load": [round(v, 2) for v in os.getloadavg()]}
                print(json.dumps(res) if args.json else "  ".join(f"{k}={v}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
