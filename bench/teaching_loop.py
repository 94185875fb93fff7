"""The teaching loop through the REST API alone, on images the system has not seen.

Imports N images into a fresh project, lets the automatic pretrain (self-supervised, on the project's
own images) run while it watches the progress, then labels images one page of the queue at a time with
their true labels (an oracle standing in for the expert), letting the automatic retraining run, and
finally scores the predictions endpoint on every sample it did not label.

    .venv/bin/python bench/teaching_loop.py --images ../shared/data/mnist/test.npz --n 3000 --labels 100 --json

With --spawn (the default) it starts its own server and embedded worker in a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from harness import free_port
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def load_images(path: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if path.endswith(".npz"):
        data = np.load(path)
        images, labels = data["images"], data["labels"]
    else:
        files = sorted(p for p in Path(path).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        classes = sorted({p.parent.name for p in files})
        images = np.stack([np.asarray(Image.open(p)) for p in files])
        labels = np.array([classes.index(p.parent.name) for p in files])
    order = np.random.default_rng(seed).permutation(len(images))[:n]
    return images[order], labels[order]


def as_zip(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i, img in enumerate(images):
            png = io.BytesIO()
            Image.fromarray(img).save(png, "PNG")
            zf.writestr(f"img_{i:06d}.png", png.getvalue())  # no class in the name: truth stays here
    return buf.getvalue()


def spawn(var: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, LOUPE_VAR_DIR=str(var), LOUPE_ADMIN_PASSWORD="bench-admin-pw")
    for key in ("LOUPE_DATABASE_URL", "LOUPE_BROKER_URL", "LOUPE_MEDIA_DIR"):
        env.pop(key, None)
    subprocess.run([sys.executable, "-m", "app.cli", "init", "--no-demo"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    log = (var / "serve.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def training(api: httpx.Client, pid: int) -> bool:
    """Whether a train job of the project is queued or running."""
    return any(j["kind"] == "train" and j["state"] in ("queued", "running")
               for j in api.get(f"/projects/{pid}/jobs").json())


def wait_job(api: httpx.Client, job_id: int, quiet: bool) -> dict:
    last = ""
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        line = f"  {job['kind']} {job['state']} {job['progress']:.0%} {job['message'][:90]}"
        if not quiet and line != last:
            print(line, file=sys.stderr)
            last = line
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(2)


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True, help=".npz with images/labels, or an ImageFolder")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--page", type=int, default=10, help="queue items asked for at a time")
    ap.add_argument("--pretrain-budget", type=float, default=None, help="chunk seconds (default: the project's)")
    ap.add_argument("--pretrain-total", type=float, default=None, help="total pretraining seconds (default: the "
                    "project's; pretraining goes on in the background while the oracle labels)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--url", help="use a running server instead of spawning one")
    ap.add_argument("--password", default="bench-admin-pw")
    ap.add_argument("--json", action="store_true")
    return ap


def _import(api: httpx.Client, images: np.ndarray, truth: np.ndarray, settings: dict) -> tuple[int, dict[int, str]]:
    """A project of ``images`` (one zip); its id and each sample's true class."""
    pid = api.post("/projects", json={"name": f"loop-{int(time.time())}", "classes": [str(c) for c in
                                      sorted(set(truth.tolist()))],
                                      "settings": settings}).json()["id"]
    r = api.post(f"/projects/{pid}/samples", files=[("files", ("images.zip", as_zip(images)))])
    assert r.status_code == 201, r.text
    samples, cursor = [], None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/projects/{pid}/samples", params=params).json()
        samples += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return pid, {s["id"]: str(truth[int(s["filename"].split("_")[1].split(".")[0])]) for s in samples}


def _first_queues(api: httpx.Client, pid: int, since: float, verbose: bool) -> tuple[float, float, float]:
    """Seconds from ``since`` to the first model-driven queue, the first pretraining chunk's end and the first
    queue on its backbone; returns once the train after it is done, so the first questions are its picks."""
    jobs = {j["kind"]: j for j in reversed(api.get(f"/projects/{pid}/jobs").json())}
    # The first model-driven queue comes from the pixel embedding, before any backbone exists.
    while api.get(f"/projects/{pid}/metrics").json()["model_version"] is None:
        time.sleep(0.5)
    first_model_s = time.perf_counter() - since
    pretrain = wait_job(api, jobs["pretrain"]["id"], verbose)  # the first chunk
    assert pretrain["state"] == "succeeded", pretrain
    pretrain_s = time.perf_counter() - since

    def on_backbone() -> bool:  # the current model was fitted on the pretrained backbone's embedding
        v = api.get(f"/projects/{pid}/versions").json()
        model = next((m for m in v["models"] if m["current"]), None)
        return model is not None and model["embedding_version_id"] == pretrain["result"]["embedding_version"]

    while not on_backbone():
        time.sleep(1)
    backbone_queue_s = time.perf_counter() - since
    while training(api, pid):
        time.sleep(1)
    return first_model_s, pretrain_s, backbone_queue_s


def _label_as_oracle(api: httpx.Client, pid: int, true_of: dict[int, str], labels: int, page_size: int) -> list[float]:
    """Label ``labels`` queue items with their true class, a page at a time; the waits for each retrain."""
    given, waits = 0, []
    while given < labels:
        before = api.get(f"/projects/{pid}").json()["current_model_version"]
        limit = min(page_size, labels - given)
        page = api.post(f"/projects/{pid}/queue/lease", params={"limit": limit}).json()["items"]
        if not page:
            break
        body = [{"sample_id": i["sample_id"], "label": true_of[i["sample_id"]]} for i in page]
        assert api.post(f"/projects/{pid}/labels", json=body).status_code == 201
        given += len(body)
        if api.get(f"/projects/{pid}/metrics").json()["labels_until_retrain"] == 0 or training(api, pid):
            w0 = time.perf_counter()
            # A newer model, or no train job left: a running job may be past storing its model already
            # (its label and data checks), and waiting for yet another model then never ended.
            while api.get(f"/projects/{pid}").json()["current_model_version"] == before and training(api, pid):
                time.sleep(0.5)
            waits.append(time.perf_counter() - w0)
    return waits


def _accuracy_on_the_rest(api: httpx.Client, pid: int, true_of: dict[int, str]) -> tuple[float, int, int]:
    """The model after the last label on the samples nobody labelled: (accuracy, their number, labelled)."""
    job = api.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
    wait_job(api, job["id"], True)
    while training(api, pid):
        time.sleep(0.5)
    done = api.get(f"/projects/{pid}/samples", params={"status": "labelled", "limit": 1000}).json()["items"]
    labelled = {s["id"] for s in done}
    preds, cursor = [], 0
    while cursor is not None:
        page = api.get(f"/projects/{pid}/predictions", params={"limit": 10000, "cursor": cursor}).json()
        preds += page["items"]
        cursor = int(page["next_cursor"]) if page["next_cursor"] else None
    rest = [p for p in preds if p["sample_id"] not in labelled]
    return float(np.mean([p["label"] == true_of[p["sample_id"]] for p in rest])), len(rest), len(labelled)


def signed_in(base: str, password: str, timeout: float) -> httpx.Client:
    """A client of the admin, once the server at ``base`` (…/api/v1) answers its health check (2 min)."""
    for _ in range(240):
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": password}).json()["token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


def main() -> None:
    args = _arguments().parse_args()
    images, truth = load_images(args.images, args.n, args.seed)
    args.port = args.port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="loupe-loop-"))
    proc = None if args.url else spawn(tmp, args.port)
    base = (args.url or f"http://127.0.0.1:{args.port}") + "/api/v1"
    try:
        api = signed_in(base, args.password, timeout=120)
        settings = {k: v for k, v in (("pretrain_budget_s", args.pretrain_budget),
                                      ("pretrain_total_budget_s", args.pretrain_total)) if v is not None}
        t0 = time.perf_counter()
        pid, true_of = _import(api, images, truth, settings)
        import_s = time.perf_counter() - t0
        first_model_s, pretrain_s, backbone_queue_s = _first_queues(api, pid, t0 + import_s, args.json)
        waits = _label_as_oracle(api, pid, true_of, args.labels, args.page)
        accuracy, rest, labelled = _accuracy_on_the_rest(api, pid, true_of)
        metrics = api.get(f"/projects/{pid}/metrics").json()
        out = {"images": len(images), "labels": labelled, "accuracy_unlabelled_rest": round(accuracy, 4),
               "unlabelled_rest": rest, "audit_estimate": metrics["accuracy_estimate"],
               "audit_labels": metrics["audit_label_count"], "import_s": round(import_s, 1),
               "pretrain_s": round(pretrain_s, 1), "first_model_queue_s": round(first_model_s, 1),
               "first_backbone_queue_s": round(backbone_queue_s, 1),
               "retrain_wait_s_mean": round(float(np.mean(waits)), 2) if waits else None,
               "model_versions": len(metrics["learning_curve"]), "settings": settings}
        print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
