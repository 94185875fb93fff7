"""Pretrain a text encoder on a benchmark pool (issue 19), for ``bench/text_efficiency.py --encoder``:

    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/text_pretrain.py \
        --datasets ag_news,banking77 --method mlm --seconds 300 --clock cpu --threads 1 --out bench/out

Trains ``ml.text_pretrain.pretrain_text`` on the pool's documents only (never the test set, never a label)
for ``--seconds`` of the ``--clock`` (cpu: process CPU seconds per torch thread, so a loaded machine slows
the run down instead of shrinking it), and writes ``<out>/text_<method>_<dataset>_<seconds>s_seed<seed>.pt``
with the run's figures (steps, tokens/s per core, loss) printed and kept in the checkpoint's state.

``--snapshots 900,3600`` keeps the run at those points of its clock too: the run is trained in chunks (the
trainer's ``stop_after_seconds``; the learning-rate schedule spans the whole ``--seconds``, so an early
snapshot is the long run caught midway, its rate not yet decayed, not a run of that length) and after each
chunk its checkpoint is copied to ``<out>/text_<method>_<dataset>_<seconds>s_at<snapshot>s_seed<seed>.pt``
(marked done, with ``snapshot_of_s``: a finished encoder to evaluate, not a run to resume): one 60-minute
run gives the 15- and 60-minute encoders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ml.checkpoint import Checkpoint  # noqa: E402
from ml.run import Run  # noqa: E402
from ml.text_pretrain import pretrain_text  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "text"


def checkpoint_path(out: Path, method: str, dataset: str, seconds: float, seed: int) -> Path:
    return out / f"text_{method}_{dataset}_{int(seconds)}s_seed{seed}.pt"


def snapshot_path(out: Path, method: str, dataset: str, seconds: float, at: float, seed: int) -> Path:
    return out / f"text_{method}_{dataset}_{int(seconds)}s_at{int(at)}s_seed{seed}.pt"


def pool_texts(name: str) -> list[str]:
    with (DATA / name / "train.jsonl").open() as fh:
        return [json.loads(line)["text"] for line in fh]


def run(name: str, method: str, seconds: float, clock: str, seed: int, out: Path,
        snapshots: tuple[float, ...] = ()) -> dict:
    texts = pool_texts(name)
    out.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(out, method, name, seconds, seed)
    last = [0.0]

    def progress(fraction: float, msg: str) -> None:
        if time.perf_counter() - last[0] > 30 or fraction >= 1.0:
            last[0] = time.perf_counter()
            print(f"{name} {fraction:.0%} {msg}", flush=True)

    plan = Run(budget_seconds=seconds, budget_clock=clock, seed=seed, progress=progress, checkpoint_path=str(path),
               resume=True)
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    for at in sorted(s for s in snapshots if s < seconds):
        # One chunk up to ``at`` on the run's clock (a resumed run starts from what its checkpoint has done).
        done = Checkpoint.load(str(path)).state["elapsed_s"] if path.exists() else 0.0
        if done < at:
            snap = pretrain_text(texts, method=method, run=replace(plan, stop_after_seconds=at - done))
            keep_snapshot(path, snapshot_path(out, method, name, seconds, at, seed), seconds)
            print(json.dumps({**figures_of(snap, name, method, clock, seed, len(texts)), "snapshot_at": at,
                              "load": os.getloadavg()[0]}), flush=True)
    ckpt = pretrain_text(texts, method=method, run=plan)
    figures = {**figures_of(ckpt, name, method, clock, seed, len(texts)), "seconds": seconds,
               "wall_s": round(time.perf_counter() - t0, 1), "load_start": load0, "load_end": os.getloadavg()[0]}
    print(json.dumps(figures), flush=True)
    return figures


def keep_snapshot(path: Path, to: Path, seconds: float) -> None:
    """A copy of the run's checkpoint as it stands, marked done: the copy is a finished encoder that nothing
    trains on (``bench/text_efficiency.py --encoder`` waits for a checkpoint that is not done), and
    ``snapshot_of_s`` says which run it was caught in."""
    ckpt = Checkpoint.load(str(path))
    ckpt.state.update(done=True, snapshot_of_s=seconds)
    ckpt.save(str(to))


def figures_of(ckpt: Checkpoint, name: str, method: str, clock: str, seed: int, documents: int) -> dict:
    """The run's figures as its checkpoint's state holds them (steps, epochs, loss, tokens/s per core)."""
    st, cfg = ckpt.state, ckpt.config
    tokens_per_doc = cfg["tokens"] / max(1, cfg["documents"])
    return {"dataset": name, "method": method, "clock": clock, "seed": seed, "elapsed_s": round(st["elapsed_s"], 1),
            "steps": st["step"], "documents_seen": st["images_seen"], "epochs": st["images_seen"] / documents,
            "loss": round(st["loss"], 3), "cpu_s": round(st["cpu_s"], 1),
            "tokens_per_s_per_core": round(st["images_seen"] * tokens_per_doc / max(1e-9, st["cpu_s"])
                                           / torch.get_num_threads(), 1),
            "threads": torch.get_num_threads(), "encoder": cfg["encoder"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="ag_news,banking77")
    ap.add_argument("--method", default="mlm")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--clock", default="cpu", choices=("cpu", "wall"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    # One thread: on this two-core machine under load a step took 1.3 CPU-s on one thread and 3.3 on two
    # (threads spinning for each other), so one thread trains 2.5 times as much per CPU second.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--snapshots", default="", help="points of the run's clock (seconds, comma-separated) at "
                    "which to keep a copy of its checkpoint, e.g. 900,3600")
    args = ap.parse_args(argv)
    snapshots = tuple(float(s) for s in args.snapshots.split(",") if s)
    torch.set_num_threads(args.threads)
    for name in args.datasets.split(","):
        run(name, args.method, args.seconds, args.clock, args.seed, args.out, snapshots)


if __name__ == "__main__":
    main()
