"""Duplicate groups and outliers on 1M x 256 embeddings (issue 18, item 4): the floor is 5 minutes on the
2-core machine.

    flock /tmp/loupe-bench.lock python bench/data_check_scale.py --rows 1000000 --dim 256 --json

The embeddings are random-ish: rows drawn around --clusters centres (a pool of a few hundred kinds of
image), with --copies planted near-duplicates (a row plus 1 % noise) whose recovery is counted, so the
timing is of the real work (the cell search finds them) and not of an empty answer. Times the kNN pass
(``ml.data_check.knn``), the grouping and the outlier scores as the train job runs them, with the load
average beside them, and the process's CPU seconds (on a shared machine the wall time measures the others).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data_check import NPROBE, THRESHOLD, atypical, duplicate_groups, knn  # noqa: E402


def pool(rows: int, dim: int, clusters: int, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    X = np.empty((rows, dim), np.float32)
    for s in range(0, rows, 100_000):
        e = min(rows, s + 100_000)
        X[s:e] = centres[rng.integers(0, clusters, e - s)] + 0.8 * rng.normal(size=(e - s, dim)).astype(np.float32)
    src = rng.choice(rows - copies, copies, replace=False)
    dst = rows - copies + np.arange(copies)
    X[dst] = X[src] + 0.01 * rng.normal(size=(copies, dim)).astype(np.float32)
    return X, src, dst


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--clusters", type=int, default=500)
    p.add_argument("--copies", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the cores)")
    p.add_argument("--nprobe", type=int, default=NPROBE, help="cells searched per query cell (the service's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    X, src, dst = pool(args.rows, args.dim, args.clusters, args.copies, args.seed)
    load_before = os.getloadavg()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    idx, sim = knn(X, nprobe=args.nprobe)
    knn_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    groups = duplicate_groups(idx, sim, THRESHOLD)
    score = atypical(sim)
    top = np.argsort(-score)[:200]
    rest_s = time.perf_counter() - t1
    total = time.perf_counter() - t0
    cpu = time.process_time() - cpu0  # this process's CPU seconds (all its threads): what a busy machine hides
    found = int((groups.group_of[src] >= 0).__and__(groups.group_of[src] == groups.group_of[dst]).sum())
    out = {"rows": args.rows, "dim": args.dim, "nprobe": args.nprobe, "threads": torch.get_num_threads(),
           "knn_s": round(knn_s, 1),
           "groups_outliers_s": round(rest_s, 1), "total_s": round(total, 1),
           "cpu_s": round(cpu, 1), "planted_pairs": args.copies,
           "planted_found": found, "groups": len(groups.members),
           "rows_in_groups": int((groups.group_of >= 0).sum()), "outliers_listed": int(len(top)),
           "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()]}
    print(json.dumps(out) if args.json else "  ".join(f"{k}={v}" for k, v in out.items()), flush=True)


if __name__ == "__main__":
    main()
