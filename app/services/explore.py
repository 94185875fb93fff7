"""Teach by neighbourhood: samples near one another in the embedding space, or sharing a suggestion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.orm import Session

from app import embedding_store
from app.models import EmbeddingVersion, ModelVersion, Prediction, Project, Sample
from app.repos import queue as queue_repo
from app.repos import results as results_repo
from app.repos import samples as samples_repo
from app.services.errors import Invalid, NotFound
from app.settings import Settings

CHUNK = 200_000  # rows per dot-product block: bounded memory on big pools


def _check_query(session: Session, project: Project, sample_ids: list[int]) -> None:
    if any(not 1 <= sid <= 2**62 for sid in sample_ids):
        raise Invalid("sample_id must be between 1 and 2**62")
    if unknown := sorted(set(sample_ids) - samples_repo.ids_in_project(session, project.id, sample_ids)):
        raise NotFound(f"sample {', '.join(map(str, unknown))} not found in project {project.id}")


def neighbours(session: Session, settings: Settings, project: Project, sample_ids: list[int], limit: int,
               unlabelled_only: bool) -> list[tuple[int, float]]:
    """The ``limit`` samples most similar (cosine) to any of ``sample_ids``, best first, the query
    samples and those taken out of the pool left out. With several (a cluster), a sample's similarity is
    its best to any of them."""
    _check_query(session, project, sample_ids)
    if project.current_embedding_version_id is None:
        raise Invalid("the project has no embeddings yet (they are computed after an import)")
    ev = session.get(EmbeddingVersion, project.current_embedding_version_id)
    assert ev is not None
    ids, vectors = embedding_store.read(settings.media_path, ev.file_key, ev.ids_key)
    wanted = np.unique(np.asarray(sample_ids, dtype=np.int64))
    pos = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
    missing = wanted[ids[pos] != wanted] if len(ids) else wanted
    if len(missing):
        raise NotFound(f"sample {', '.join(map(str, missing.tolist()))} has no embedding yet")
    queries = np.asarray(vectors[pos], dtype=np.float32)  # (k, D)
    sims = np.empty(len(ids), dtype=np.float32)
    for i in range(0, len(ids), CHUNK):
        sims[i:i + CHUNK] = (np.asarray(vectors[i:i + CHUNK], dtype=np.float32) @ queries.T).max(axis=1)
    sims[pos] = -np.inf
    hidden = samples_repo.not_offered_ids(session, project.id, labelled=unlabelled_only)
    if hidden:
        sims[np.isin(ids, np.fromiter(hidden, dtype=np.int64))] = -np.inf
    k = min(limit, int(np.isfinite(sims).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(int(ids[i]), float(sims[i])) for i in top]


def unexplored(session: Session, project: Project, limit: int) -> list[int]:
    """Typical samples of the embedding groups nobody has labelled yet (as the current model's train job
    found them, while some class had few labels), still unlabelled: where a class that never comes up
    may be hiding."""
    if project.current_model_version_id is None:
        return []
    mv = session.get(ModelVersion, project.current_model_version_id)
    ids = list((mv.metrics or {}).get("unexplored", [])) if mv else []
    if not ids:
        return []
    free = samples_repo.offered_among(session, ids)
    return [sid for sid in ids if sid in free][:limit]


def suggested(session: Session, project: Project, label: str, limit: int, min_confidence: float) -> list[int]:
    """Unlabelled samples the current model suggests as ``label``, most confident first."""
    if label not in project.classes:
        raise Invalid(f"'{label}' is not a class of project '{project.name}'")
    if project.current_model_version_id is None:
        return []
    return results_repo.suggested(session, project.current_model_version_id, label, min_confidence, limit)


def with_samples(session: Session, project: Project, pairs: Sequence[tuple[int, float | None]]) \
        -> list[tuple[int, float | None, Sample, Prediction | None]]:
    """(sample id, similarity) pairs with each sample and its current prediction, if it has one."""
    ids = [sid for sid, _ in pairs]
    samples = samples_repo.by_ids(session, ids)
    mv = project.current_model_version_id
    preds = queue_repo.predictions(session, mv, ids) if ids and mv else {}
    return [(sid, sim, samples[sid], preds.get(sid)) for sid, sim in pairs]
