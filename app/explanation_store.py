"""The n-gram weights a text project's model version is explained by (issue 19): one JSON file per
version, ``explanations/p{project}/v{version}.json`` under the media folder, written by the train job
(``workers/jobs/explain_terms.py``) and read by ``GET /samples/{sid}/explanation``.

``{"classes": [...], "terms": {class: [[ngram, weight], ...]}}``, strongest first. Written to a
temporary name and renamed: a reader never sees half a file. A backup carries it with the media.

Beside it, when the version's embedding holds the project's text encoder, ``v{version}.occlusion.json``
(``workers/jobs/explain_occlusion.py``): for the documents the queue serves next, the words whose removal
lowers the suggestion's log-odds, ``{"samples": {sid: {"label": class, "terms": [[word, fall, [[start,
end], ...]], ...]}}}``, largest fall first."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from app.storage import atomic_file


def key_for(project_id: int, model_version_id: int) -> str:
    return f"explanations/p{project_id}/v{model_version_id}.json"


def occlusion_key_for(project_id: int, model_version_id: int) -> str:
    return f"explanations/p{project_id}/v{model_version_id}.occlusion.json"


def write(media: Path, project_id: int, model_version_id: int, classes: list[str],
          terms: list[list[tuple[str, float]]]) -> str:
    key = key_for(project_id, model_version_id)
    with atomic_file(media / key, ".json") as fh:
        fh.write(json.dumps({"classes": classes, "terms": dict(zip(classes, terms, strict=True))}).encode())
    return key


def read(media: Path, project_id: int, model_version_id: int) -> dict[str, dict[str, float]] | None:
    """Per class, its n-grams' weights; None when the version has none (an image project, a version
    made before its train job wrote them, or one still being written)."""
    path = media / key_for(project_id, model_version_id)
    try:
        return _read(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None


@lru_cache(maxsize=8)
def _read(path: str, _mtime: int) -> dict[str, dict[str, float]]:
    # A version's file is read once per process, not once per document shown (the label view asks for
    # every item); the modification time in the key lets a rewritten file in.
    with open(path) as fh:
        data = json.load(fh)
    return {c: {t: float(w) for t, w in rows} for c, rows in data["terms"].items()}


Occluded = tuple[str, list[tuple[str, float, list[tuple[int, int]]]]]  # (label, [(word, fall, spans), ...])


def write_occlusion(media: Path, project_id: int, model_version_id: int, samples: dict[int, Occluded]) -> str:
    key = occlusion_key_for(project_id, model_version_id)
    body = {"samples": {str(sid): {"label": label, "terms": [[w, fall, [list(sp) for sp in spans]]
                                                            for w, fall, spans in terms]}
                        for sid, (label, terms) in samples.items()}}
    with atomic_file(media / key, ".json") as fh:
        fh.write(json.dumps(body).encode())
    return key


def read_occlusion(media: Path, project_id: int, model_version_id: int, sample_id: int) -> Occluded | None:
    """The sample's occluded words under the version; None when the version has none for it (its embedding
    holds no encoder, the document was not among those the queue served next, or the file is being written)."""
    path = media / occlusion_key_for(project_id, model_version_id)
    try:
        samples = _read_occlusion(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return None
    return samples.get(sample_id)


@lru_cache(maxsize=8)
def _read_occlusion(path: str, _mtime: int) -> dict[int, Occluded]:
    with open(path) as fh:
        data = json.load(fh)
    return {int(sid): (row["label"], [(w, float(f), [(int(a), int(b)) for a, b in spans])
                                      for w, f, spans in row["terms"]])
            for sid, row in data["samples"].items()}
