"""The "far from every class" outliers (issue 18) are read on each request from the current model's
predictions: on PostgreSQL the statement walks the (model version, confidence, sample) index from its low
end and stops at the limit; it never sorts the version's predictions (a sort of a million rows a request)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import insert, text

from app.db import get_engine, session_scope
from app.models import ModelVersion, Prediction
from app.repos import data_checks
from tests.conftest import fresh_database
from tests.scale.test_queue_plans import add_pool, plan_of


def test_the_least_confident_walk_reads_the_confidence_index_without_a_sort(request, tmp_path):
    with fresh_database("postgres", tmp_path, request) as url:
        rng = np.random.default_rng(0)
        with session_scope(url) as s:
            pid = add_pool(s, "outlier plans", rng, audit_every=None)
            mv = ModelVersion(project_id=pid, estimator="logistic", strategy="margin")
            s.add(mv)
            s.flush()
            mv_id = mv.id
            ids = [r[0] for r in s.execute(text("SELECT id FROM samples WHERE project_id = :p"), {"p": pid})]
            conf = rng.uniform(0.3, 1.0, len(ids))
            s.execute(insert(Prediction), [{"model_version_id": mv_id, "sample_id": sid, "label": "a",
                                            "confidence": float(c), "score": 0.0, "priority": 0.0}
                                           for sid, c in zip(ids, conf, strict=True)])
        with get_engine(url).connect() as c:
            c.execute(text("ANALYZE samples"))
            c.execute(text("ANALYZE predictions"))
            c.commit()
        plan = plan_of(url, data_checks._LEAST_CONFIDENT, mv=mv_id, limit=200)
        assert "ix_predictions_version_confidence_sample" in plan, plan
        assert "Sort" not in plan and "Seq Scan on predictions" not in plan, plan
        with session_scope(url) as s:
            got = data_checks.least_confident(s, mv_id, 5)
        assert len(got) == 5 and [c for _, c in got] == sorted(c for _, c in got)
