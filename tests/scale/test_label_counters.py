"""The project's label counters (schema 0007, one row per labeller) equal the counts they replace,
through every way a label changes, and the retrain trigger and the audit quota that read them behave
as the counts did."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select, text

from app.db import session_scope
from app.models import Job, Label, Project, Sample
from tests.conftest import digits_pngs, upload


def _truth(url: str, pid: int) -> tuple[int, int, int]:
    """What the counters replace: the "set" label rows, the labelled and the labelled audit samples."""
    with session_scope(url) as s:
        sets = s.scalar(select(func.count()).where(Label.project_id == pid, Label.action == "set",
                                                   Label.opinion == "primary"))
        labelled = s.scalar(select(func.count()).where(Sample.project_id == pid, Sample.status == "labelled"))
        audit = s.scalar(select(func.count()).where(Sample.project_id == pid, Sample.status == "labelled",
                                                    Sample.is_audit.is_(True)))
    return int(sets), int(labelled), int(audit)


def _counters(url: str, pid: int) -> tuple[int, int, int]:
    from app.repos.label_counts import totals

    with session_scope(url) as s:
        t = totals(s, pid)
        return t.set_labels, t.labelled, t.audit_labelled


def _samples(admin, pid: int, n: int) -> list[int]:
    assert upload(admin, pid, [(name, data) for name, data, _ in digits_pngs(n)]).status_code == 201
    return [s["id"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]]


def test_counters_follow_labels_opinions_undo_batches_and_reviews(admin, digits_project, settings):
    from app.services.queue import _audit_quota

    pid, url = digits_project["id"], settings.database_url
    ids = _samples(admin, pid, 60)
    with session_scope(url) as s:  # six audit samples, whatever the import's random pick was
        for n, sid in enumerate(ids):
            s.get(Sample, sid).is_audit = n < 6
    ann = admin.new_user("ann")
    bob = admin.new_user("bob")
    for name in ("ann", "bob"):
        assert admin.post(f"/projects/{pid}/members", json={"username": name, "role": "annotator"}).status_code < 300
    assert _counters(url, pid) == _truth(url, pid) == (0, 0, 0)

    r = ann.post(f"/projects/{pid}/labels", json=[{"sample_id": i, "label": "1"} for i in ids[:4]])
    assert r.status_code == 201
    assert ann.post(f"/projects/{pid}/labels", json={"sample_id": ids[0], "label": "2"}).status_code == 201  # relabel
    r = bob.post(f"/projects/{pid}/labels", json={"sample_id": ids[1], "label": "3"})  # a second opinion, disagrees
    assert r.status_code == 201 and r.json()["items"][0]["opinion"] == "second"
    batch = ann.post(f"/projects/{pid}/labels", json=[{"sample_id": i, "label": "5"} for i in ids[10:14]],
                     headers={"X-Label-Batch": "1"})
    assert batch.status_code == 201
    assert _counters(url, pid) == _truth(url, pid) == (9, 8, 4)

    # A failed request (one bad class) stores nothing and counts nothing.
    bad = ann.post(f"/projects/{pid}/labels", json=[{"sample_id": ids[20], "label": "1"},
                                                    {"sample_id": ids[21], "label": "cat"}])
    assert bad.status_code == 422
    assert _counters(url, pid) == _truth(url, pid) == (9, 8, 4)

    # Undo: the relabel (the sample stays labelled), then a first label (it goes back to unlabelled).
    hist = ann.get(f"/samples/{ids[0]}/labels").json()
    assert admin.delete(f"/labels/{hist[-1]['id']}").status_code == 200
    assert admin.delete(f"/labels/{hist[0]['id']}").status_code == 200
    assert _counters(url, pid) == _truth(url, pid) == (9, 7, 3)
    assert ann.delete(f"/label-batches/{batch.json()['batch_id']}").status_code == 200
    assert _counters(url, pid) == _truth(url, pid) == (9, 3, 3)

    # A review resolved by an admin stores a label revision too.
    reviews = admin.get(f"/projects/{pid}/reviews").json()
    items = reviews["items"] if isinstance(reviews, dict) else reviews
    assert items, reviews
    r = admin.post(f"/reviews/{items[0]['id']}/resolve", json={"label": "3"})
    assert r.status_code < 300, r.text
    assert _counters(url, pid) == _truth(url, pid)

    # The audit quota reads the counters and gives what the counts gave.
    _, labelled, audited = _truth(url, pid)
    with session_scope(url) as s:
        project = s.get(Project, pid)
        share = float(project.settings["audit_fraction"])
        for limit in (1, 5, 10, 50):
            want = max(0, min(limit, math.ceil(share * (labelled + limit)) - audited))
            assert _audit_quota(s, project, limit) == want


def test_retrain_is_queued_at_exactly_k_labels(admin, settings):
    r = admin.post("/projects", json={"name": "k", "classes": ["a", "b"],
                                      "settings": {"auto_pretrain": False, "auto_embed": False, "retrain_every": 4}})
    pid, url = r.json()["id"], settings.database_url
    ids = _samples(admin, pid, 8)

    def trains() -> int:
        with session_scope(url) as s:
            return int(s.scalar(select(func.count()).where(Job.project_id == pid, Job.kind == "train")))

    for n, sid in enumerate(ids[:3], start=1):
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "a"}).status_code == 201
        assert admin.get(f"/projects/{pid}/metrics").json()["labels_until_retrain"] == 4 - n
        assert trains() == 0
    # The fourth new label (a relabel is a correction: it counts) queues one job;
    # later labels fold into it.
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": ids[0], "label": "b"}).status_code == 201
    assert admin.get(f"/projects/{pid}/metrics").json()["labels_until_retrain"] == 0
    assert trains() == 1
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": ids[4], "label": "a"}).status_code == 201
    assert trains() == 1


def test_migration_0007_backfills_the_counters(admin, digits_project, settings):
    from alembic import command

    from tests.project.test_migrations import _cfg

    pid, url = digits_project["id"], settings.database_url
    ids = _samples(admin, pid, 20)
    with session_scope(url) as s:
        s.get(Sample, ids[0]).is_audit = True
    admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i, "label": "1"} for i in ids[:5]])
    admin.post(f"/projects/{pid}/labels", json={"sample_id": ids[0], "label": "2"})
    truth = _truth(url, pid)
    assert truth[:2] == (6, 5) and truth[2] >= 1
    from app.db import get_engine

    get_engine(url).dispose()
    command.downgrade(_cfg(url), "0006")
    command.upgrade(_cfg(url), "head")
    assert _counters(url, pid) == truth


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # sample_counts is kept by triggers on PostgreSQL only
def test_a_lease_appends_no_sample_count_delta_and_a_label_one(admin, digits_project, settings):
    """Schema 0008: the sample-count trigger fires on a status change only, not on the queue's leases."""
    from app.models import SampleCount

    pid, url = digits_project["id"], settings.database_url
    assert url.startswith("postgresql")
    _samples(admin, pid, 20)

    def deltas() -> int:
        with session_scope(url) as s:
            return int(s.scalar(select(func.count()).select_from(SampleCount).where(SampleCount.project_id == pid)))

    with session_scope(url) as s:  # a row trigger with a WHEN condition; no statement trigger on UPDATE
        triggers = dict(s.execute(text(
            "SELECT tgname, (tgtype & 1) = 1 FROM pg_trigger WHERE tgrelid = 'samples'::regclass AND NOT tgisinternal"
        )).all())
    assert triggers.get("samples_count_status") is True and "samples_count_update" not in triggers
    before = deltas()
    items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
    assert len(items) == 5 and deltas() == before
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"], "label": "1"} for i in items[:3]])
    assert r.status_code == 201
    assert deltas() == before + 3  # one per sample whose status changed
    admin.post(f"/projects/{pid}/labels", json={"sample_id": items[0]["sample_id"], "label": "2"})  # stays labelled
    assert deltas() == before + 3
    p = admin.get(f"/projects/{pid}").json()
    assert (p["sample_count"], p["labelled_count"]) == (20, 3)
    assert _truth(url, pid)[1] == 3


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite's write lock is the whole database
def test_two_first_labels_of_one_sample_at_once_make_one_label_and_one_second_opinion(admin, digits_project, settings):
    """The first annotator's transaction holds the sample (its label not committed yet) while a second
    annotator labels it: the second waits, then sees the first label, so it is a second opinion and
    the sample is counted once (without the row lock both were primary, and labelled counted 2)."""
    import threading

    from app.models import User
    from app.services.labels import LabelRequest, add_labels

    pid, url = digits_project["id"], settings.database_url
    sid = _samples(admin, pid, 3)[0]
    for name in ("ann", "bob"):
        admin.new_user(name)
        admin.post(f"/projects/{pid}/members", json={"username": name, "role": "annotator"})
    done: list[str] = []
    with session_scope(url) as first:
        project = first.get(Project, pid)
        ann = first.scalar(select(User).where(User.username == "ann"))
        assert add_labels(first, project, ann, [LabelRequest(sid, "1")]).labels[0].opinion == "primary"

        def second() -> None:
            with session_scope(url) as s:
                bob = s.scalar(select(User).where(User.username == "bob"))
                done.append(add_labels(s, s.get(Project, pid), bob, [LabelRequest(sid, "2")]).labels[0].opinion)

        t = threading.Thread(target=second)
        t.start()
        t.join(1.0)
        assert t.is_alive() and not done  # waiting on the first transaction's lock on the sample
    t.join(10)
    assert done == ["second"]
    truth = _truth(url, pid)
    assert _counters(url, pid) == truth and truth[:2] == (1, 1)  # one new label: the other is a second opinion
    with session_scope(url) as s:
        assert s.get(Sample, sid).label == "1"
