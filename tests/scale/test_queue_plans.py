"""The queue's statements are answered by their indexes on PostgreSQL, not by walking the pool.

A plan is what makes a page cost the same with 30,000 samples or a million: these tests read
PostgreSQL's own EXPLAIN of the statements ``app.services.queue.take`` runs (``app.repos.queue``
builds them), on a pool with planner statistics (ANALYZE), and fail if one stops using the index it
was written for. (The audit pick once said ``is_audit IS true``, which PostgreSQL does not match to the partial index's
``WHERE is_audit``: it walked the whole-pool index, 11 ms a page at 1M samples.)
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import insert, text

from app.db import get_engine, session_scope
from app.models import Project, Sample
from app.repos import queue
from tests.conftest import fresh_database

N = 30_000


def add_pool(s, name: str, rng: np.random.Generator, audit_every: int | None = 20) -> int:
    """A project of N bare sample rows (a third labelled, every ``audit_every``-th in the audit sample; none
    if None) for a plan to be read on; its id."""
    project = Project(name=name, classes=["a", "b"], settings={})
    s.add(project)
    s.flush()
    s.execute(insert(Sample), [
        {"project_id": project.id, "filename": f"{i}.png", "content_hash": f"{i:064x}", "storage_key": "k",
         "thumbnail_key": "t", "width": 1, "height": 1, "mode": "L", "byte_size": 1, "created_at":
         datetime.now(UTC), "status": "labelled" if i % 3 == 0 else "unlabelled",
         "rand_key": int(rng.integers(2**62)), "is_audit": audit_every is not None and i % audit_every == 0}
        for i in range(N)])
    return project.id


@pytest.fixture(scope="module")
def pool(request, tmp_path_factory):
    with fresh_database("postgres", tmp_path_factory.mktemp("plans"), request) as url:
        with session_scope(url) as s:
            pid = add_pool(s, "plans", np.random.default_rng(0))
        with get_engine(url).connect() as c:
            c.execute(text("ANALYZE samples"))
            c.commit()
        yield url, pid


def plan_of(url: str, stmt, **params) -> str:
    engine = get_engine(url)
    # The statement as the driver gets it: expanding IN lists rendered, parameters by name.
    state = stmt.compile(dialect=engine.dialect).construct_expanded_state(params)
    with engine.connect() as c:
        rows = c.exec_driver_sql("EXPLAIN " + state.statement, state.parameters).all()
    return "\n".join(r[0] for r in rows)


def test_the_audit_pick_uses_the_audit_partial_index(pool):
    url, pid = pool
    plan = plan_of(url, queue._AUDIT, pid=pid, now=datetime.now(UTC), taken=[], limit=1)
    assert "ix_samples_audit_queue" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_random_pick_and_the_held_items_use_their_indexes(pool):
    url, pid = pool
    fresh = plan_of(url, queue._FRESH_RANDOM, pid=pid, now=datetime.now(UTC), taken=[1, 2], limit=5)
    assert "ix_samples_project_status_rand" in fresh, fresh
    held = plan_of(url, queue._HELD, pid=pid, uid=1, client="", limit=5)
    assert "Seq Scan" not in held, held
    assert "Seq Scan" not in fresh, fresh


def test_the_second_opinion_pick_reads_only_the_samples_awaiting_one(pool):
    """The overlap's pick (issue 17) reads the partial index of samples awaiting a second opinion, which is
    empty in a project without overlap: a page never walks the labelled pool looking for them."""
    url, pid = pool
    plan = plan_of(url, queue._SECOND, pid=pid, uid=1, now=datetime.now(UTC), taken=[1], limit=5)
    assert "ix_samples_second_wanted" in plan, plan
    # The exclusions (issue 18) are a small table the planner may read whole; the pool never is.
    assert "Seq Scan on samples" not in plan, plan


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_big_import_refreshes_the_planner_statistics(admin, digits_project, settings):
    """Without statistics the planner guessed the held-items query onto the whole pool's index (2-8 ms
    a page under load, 10k samples); an import that grows the table by a tenth runs ANALYZE."""
    from tests.conftest import digits_pngs, upload

    def estimated_rows() -> float:
        with get_engine(settings.database_url).connect() as c:
            return c.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'samples'::regclass")).scalar_one()

    assert estimated_rows() <= 0  # never analysed (-1) or empty
    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(40)]).status_code == 201
    assert estimated_rows() == 40
    # A small import into a big table leaves the statistics to autovacuum.
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(2, offset=40)]).status_code == 201
    assert estimated_rows() == 40
