"""Embeddings per second of the whole pipeline against the backbone's bare forward-pass rate.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/embed_throughput.py --json
    flock /tmp/loupe-bench.lock .venv/bin/python bench/embed_throughput.py --devices cuda --batch 512

* ``bare_per_s``: ``ml.embedding.embed_batch`` on uint8 batches already on the device (decoded and
  resized beforehand, not timed), the same batch size; what the backbone alone can do.
* ``pipeline_per_s``: what the embed job does, timed from the file paths to the stored array:
  ``ml.embedding.extract_embeddings_from_files`` (decode in DataLoader workers, batch, copy to the
  device, forward, pool, normalise, float16) then ``app.embedding_store.write`` (the .npy and its ids).
* ``decode_per_s``: decoding alone in this process (``ml.data.FileDataset``), to see which side limits.

The floor is ``ratio = pipeline_per_s / bare_per_s >= 0.7`` on every device. Images are
../shared/data/cifar10-test (10,000 JPEGs); the backbone is the one the service picks for them on that
device unless ``--backbone`` says otherwise (weights do not change the speed: a fresh one is used).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import emit  # noqa: E402

from app import embedding_store  # noqa: E402
from ml.backbones import create_backbone, default_backbone  # noqa: E402
from ml.data import FileDataset, list_image_folder  # noqa: E402
from ml.embedding import embed_batch, extract_embeddings_from_files  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cifar10-test"


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bare_rate(model, images: torch.Tensor, batch: int, dev: torch.device, repeat: int) -> float:
    x = images.to(dev)
    embed_batch(model, x[:batch])  # warm-up (cuDNN autotune, allocator)
    sync(dev)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            out = embed_batch(model, x[i:i + batch])
        out.cpu()
        sync(dev)
        best = max(best, len(x) / (time.perf_counter() - t0))
    return best


def pipeline_rate(model, paths: list[str], batch: int, dev: torch.device, workers: int | None,
                  repeat: int) -> tuple[float, dict]:
    ids = np.arange(1, len(paths) + 1, dtype=np.int64)
    best, info = 0.0, {}
    with tempfile.TemporaryDirectory() as media:
        for r in range(repeat):
            t0 = time.perf_counter()
            kw = {} if workers is None else {"num_workers": workers}
            emb = extract_embeddings_from_files(model, paths, batch_size=batch, device=str(dev), **kw)
            t1 = time.perf_counter()
            embedding_store.write(Path(media), 1, f"bench-{r}", ids, emb)
            t2 = time.perf_counter()
            rate = len(paths) / (t2 - t0)
            if rate > best:
                best, info = rate, {"extract_s": round(t1 - t0, 3), "store_s": round(t2 - t1, 3),
                                    "dim": int(emb.shape[1]), "dtype": str(emb.dtype)}
    return best, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backbone", help="default: the one the service picks on each device")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--num-workers", type=int, help="DataLoader workers (default: the library's)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    paths, _, _ = list_image_folder(args.data)
    paths = paths[:args.limit]
    ds = FileDataset(paths, args.size, 3)
    t0 = time.perf_counter()
    images = torch.stack([ds[i] for i in range(len(ds))])
    decode = len(ds) / (time.perf_counter() - t0)
    for name in args.devices.split(","):
        dev = torch.device(name)
        torch.manual_seed(0)
        backbone = args.backbone or default_backbone(3, args.size, name)
        model = create_backbone(backbone, 3, args.size).to(dev).eval()
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        bare = bare_rate(model, images, args.batch, dev, args.repeat)
        pipe, info = pipeline_rate(model, paths, args.batch, dev, args.num_workers, args.repeat)
        row = {"device": name, "backbone": backbone, "images": len(paths), "image_size": args.size,
               "batch": args.batch, "num_workers": args.num_workers, "torch_threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "decode_per_s": round(decode, 1), "bare_per_s": round(bare, 1),
               "pipeline_per_s": round(pipe, 1), "ratio": round(pipe / bare, 3), **info}
        emit(row, args.json, args.out)


if __name__ == "__main__":
    main()
