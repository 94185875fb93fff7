"""The teaching loop of a text project through the REST API alone, with and without the project's own encoder.

Imports a dataset's pool (JSON Lines, ids only: the labels stay here) into a fresh text project of a
spawned server with its embedded worker, optionally queues background pretraining of the project's
encoder (``--pretrain-total`` CPU-seconds in the service's chunks, as the import would queue it) and waits
for its chunks to end, then labels queue pages with their true labels (an oracle standing in for the
expert), letting the automatic retraining run, and scores the predictions endpoint on every document it
did not label at each of ``--at`` label counts.

    nice -n 10 .venv/bin/python bench/text_teaching_loop.py --dataset ag_news --at 50,100 --json
    nice -n 10 .venv/bin/python bench/text_teaching_loop.py --dataset ag_news --at 50,100 --pretrain-total 300 --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from harness import free_port
from teaching_loop import _accuracy_on_the_rest, signed_in, spawn, training, wait_job

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "text"


def load(name: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """(texts, labels) of the pool, ``n`` of them in a random order (0: all)."""
    with (DATA / name / "train.jsonl").open() as fh:
        rows = [json.loads(line) for line in fh]
    order = np.random.default_rng(seed).permutation(len(rows))[: n or len(rows)]
    return [rows[i]["text"] for i in order], [rows[i]["label"] for i in order]


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ag_news")
    ap.add_argument("--n", type=int, default=0, help="documents (0: the whole pool)")
    ap.add_argument("--at", default="50,100", help="label counts at which the rest is scored")
    ap.add_argument("--page", type=int, default=10, help="queue items asked for at a time")
    ap.add_argument("--pretrain-total", type=float, default=0, help="CPU-seconds of background pretraining of "
                    "the project's encoder before the first label (0: none, the TF-IDF embedding only)")
    ap.add_argument("--settings", default="{}", help="JSON: more project settings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    return ap


def _import(api: httpx.Client, texts: list[str], labels: list[str], settings: dict) -> tuple[int, dict[int, str]]:
    classes = sorted(set(labels))
    pid = api.post("/projects", json={"name": f"text-loop-{int(time.time())}", "kind": "text", "classes": classes,
                                      "settings": settings}).json()["id"]
    body = "".join(json.dumps({"id": f"d{i:06d}", "text": t}) + "\n" for i, t in enumerate(texts)).encode()
    r = api.post(f"/projects/{pid}/samples", files=[("files", ("pool.jsonl", body))])
    assert r.status_code == 201, r.text
    true_of, cursor = {}, None
    while True:
        page = api.get(f"/projects/{pid}/samples", params={"limit": 1000} | ({"cursor": cursor} if cursor else {}))
        for s in page.json()["items"]:
            true_of[s["id"]] = labels[int(s["filename"][1:])]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return pid, true_of


def _pretrain(api: httpx.Client, pid: int, quiet: bool) -> dict:
    """Queue the encoder's pretraining and wait for every chunk (each queues the next until the total)."""
    job = api.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"reason": "bench"}}).json()
    chunks = []
    while job is not None:
        done = wait_job(api, job["id"], quiet)
        assert done["state"] == "succeeded", done
        chunks.append({k: done["result"].get(k) for k in ("chunk", "steps", "trained_s", "switched", "verdict")})
        nxt = done["result"].get("next_chunk_job")
        job = {"id": nxt} if nxt else None
    while training(api, pid):
        time.sleep(1)
    return {"chunks": chunks}


def _label_as_oracle(api: httpx.Client, pid: int, true_of: dict[int, str], labels: int, page_size: int) -> int:
    """Label ``labels`` queue items with their true class, a page at a time, waiting for each retrain it
    asks for (the model read before the page is posted must change) and for any train job still running
    (``teaching_loop``'s version waits for a new model after any running train, and a train job that has
    already made its model current would leave it waiting for ever). Returns the labels given."""
    given = 0
    while given < labels:
        page = api.post(f"/projects/{pid}/queue/lease", params={"limit": min(page_size, labels - given)}).json()
        if not page["items"]:
            break
        before = api.get(f"/projects/{pid}").json()["current_model_version"]
        body = [{"sample_id": i["sample_id"], "label": true_of[i["sample_id"]]} for i in page["items"]]
        assert api.post(f"/projects/{pid}/labels", json=body).status_code == 201
        given += len(body)
        if api.get(f"/projects/{pid}/metrics").json()["labels_until_retrain"] == 0:
            while api.get(f"/projects/{pid}").json()["current_model_version"] == before:
                time.sleep(0.5)
        while training(api, pid):
            time.sleep(0.5)
    return given


def _wait_first_model(api: httpx.Client, pid: int) -> None:
    while api.get(f"/projects/{pid}/metrics").json()["model_version"] is None:
        time.sleep(0.5)
    while training(api, pid):
        time.sleep(0.5)


def loop(api: httpx.Client, args: argparse.Namespace) -> dict:
    texts, labels = load(args.dataset, args.n, args.seed)
    settings = json.loads(args.settings)
    if args.pretrain_total:
        settings["pretrain_total_budget_s"] = args.pretrain_total
    t0 = time.perf_counter()
    pid, true_of = _import(api, texts, labels, settings)
    out: dict = {"dataset": args.dataset, "documents": len(texts), "settings": settings,
                 "import_s": round(time.perf_counter() - t0, 1), "load_start": os.getloadavg()[0]}
    _wait_first_model(api, pid)
    if args.pretrain_total:
        t1 = time.perf_counter()
        out["pretrain"] = _pretrain(api, pid, args.json)
        out["pretrain"]["wall_s"] = round(time.perf_counter() - t1, 1)
    out["points"], given = [], 0
    for at in sorted(int(a) for a in args.at.split(",")):
        _label_as_oracle(api, pid, true_of, at - given, args.page)
        acc, rest, labelled = _accuracy_on_the_rest(api, pid, true_of)
        given = labelled
        out["points"].append({"labels": labelled, "accuracy_unlabelled_rest": round(acc, 4), "rest": rest})
        if not args.json:
            print(out["points"][-1], flush=True)
    versions = api.get(f"/projects/{pid}/versions").json()
    model: dict = next((m for m in versions["models"] if m["current"]), {})
    out["embedding_version"] = model.get("embedding_version_id")
    out["load_end"] = os.getloadavg()[0]
    return out


def main() -> None:
    args = _arguments().parse_args()
    port = free_port()
    proc = spawn(Path(tempfile.mkdtemp(prefix="loupe-text-loop-")), port)
    try:
        out = loop(signed_in(f"http://127.0.0.1:{port}/api/v1", "bench-admin-pw", timeout=300), args)
        print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
