"""Issue 16, item 2: an import writes in short batches, so on SQLite labelling goes on while a large
import runs, and an import that stops midway leaves whole samples only: no row without its files, no
file without a row (app/services/imports.py says what a stopped import leaves)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select, text

from tests.conftest import ADMIN_PASSWORD, digits_pngs, live_server, make_settings


def photos(n: int, size: tuple[int, int] = (1024, 768), seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` distinct JPEG photographs of smooth random colour fields (each decode, thumbnail and working
    copy costs what a real photo of that size costs)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
        buf = io.BytesIO()
        small.resize(size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        out.append((f"photo_{i:04d}.jpg", buf.getvalue()))
    return out


def sign_in(api: str) -> httpx.Client:
    r = httpx.post(f"{api}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    return httpx.Client(base_url=api, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=120)


def test_labels_go_on_while_a_large_import_runs_on_sqlite(tmp_path, sqlite_url):
    """Labels answer at once and the import's first batches are visible before it ends (one write
    transaction for the whole import, or for all its rows at the end, fails this)."""
    from app.db import session_scope
    from app.services.auth import create_user

    settings = make_settings(tmp_path, sqlite_url)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    big = photos(240)
    with live_server(settings) as url, sign_in(f"{url}/api/v1") as admin:
        pid = admin.post("/projects", json={"name": "p", "classes": [str(i) for i in range(10)],
                                            "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        pool = digits_pngs(60)
        assert admin.post(f"/projects/{pid}/samples", files=[("files", (n, d)) for n, d, _ in pool]).status_code == 201
        answer: dict = {}

        def import_big() -> None:
            answer["start"] = time.monotonic()
            try:
                with sign_in(f"{url}/api/v1") as other:
                    answer["r"] = other.post(f"/projects/{pid}/samples", files=[("files", f) for f in big])
            finally:
                answer["took"] = time.monotonic() - answer["start"]

        importer = threading.Thread(target=import_big)
        importer.start()
        # (status, seconds of the slower of its two calls) of each label given while the import ran
        labels: list[tuple[int, float]] = []
        counts = set()
        while importer.is_alive():
            counts.add(admin.get(f"/projects/{pid}").json()["sample_count"])
            t0 = time.monotonic()
            items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 1}).json()["items"]
            if not items:  # all labelled before the import's first batch: keep watching the count
                time.sleep(0.05)
                continue
            t1 = time.monotonic()
            r = admin.post(f"/projects/{pid}/labels", json={"sample_id": items[0]["sample_id"], "label": "3"})
            labels.append((r.status_code, max(t1 - t0, time.monotonic() - t1)))
        importer.join()
    assert "r" in answer, "the import failed (see the captured exception)"
    assert answer["r"].status_code == 201 and answer["r"].json()["created"] == len(big), answer["r"].text
    slowest = max(took for _, took in labels)
    # Not the bench's 1 s floor: the test machine is shared (load 10 on 2 cores at times), and a lock held
    # for the whole import made a call wait nearly the whole import (10.8 s of about 12 before).
    bound = max(2.0, answer["took"] / 4)
    assert slowest < bound, f"a lease or label waited {slowest:.2f} s of an import of {answer['took']:.1f} s"
    assert all(status == 201 for status, _ in labels), labels
    assert len(labels) >= 3, f"only {len(labels)} labels were given while the import ran"
    between = sorted(c for c in counts if 60 < c < 60 + len(big))
    print(f"{len(labels)} labels during an import of {answer['took']:.1f} s, slowest call {slowest:.3f} s; "
          f"sample counts seen {sorted(counts)}")
    assert len(between) >= 2, f"no batch was visible before the import ended (counts seen: {sorted(counts)})"


# ---------------------------------------------------------------- what a stopped import leaves


@pytest.fixture
def project(settings):
    from app.db import session_scope
    from app.services.projects import create_project

    with session_scope(settings.database_url) as s:
        return create_project(s, "stops", [str(i) for i in range(10)]).id


class ClientGone(Exception):
    pass


def run_import(settings, pid: int, candidates) -> None:
    from app.db import session_scope
    from app.models import Project
    from app.services.imports import import_candidates

    with session_scope(settings.database_url) as s:
        import_candidates(s, s.get(Project, pid), candidates, settings)


def stored(settings) -> dict[str, set[str]]:
    """Content hash -> the kinds of file (images, thumbs, work) stored under it."""
    out: dict[str, set[str]] = {}
    for kind in ("images", "thumbs", "work"):
        for f in (Path(settings.media_path) / kind).rglob("*"):
            if f.is_file():
                out.setdefault(f.name[:64], set()).add(kind)
    return out


def samples(settings, pid: int) -> dict[str, str]:
    """The project's samples: content hash -> file name."""
    from app.db import session_scope
    from app.models import Sample

    with session_scope(settings.database_url, read_only=True) as s:
        return dict(s.execute(select(Sample.content_hash, Sample.filename).where(Sample.project_id == pid)).all())


def assert_whole(settings, rows: dict[str, str]) -> None:
    """Every row has its original and thumbnail; every stored file belongs to a row."""
    files = stored(settings)
    assert set(files) == set(rows), "a file without a row, or a row without its files"
    assert all({"images", "thumbs"} <= kinds for kinds in files.values()), files


def test_an_import_that_stops_midway_keeps_whole_batches_and_queues_their_embedding(settings, project):
    from app.db import session_scope
    from app.models import Job
    from app.services.archives import Candidate
    from app.services.imports import BATCH

    good = digits_pngs(BATCH + 10)

    def candidates():
        for i, (name, data, _cls) in enumerate(good):
            if i == 3:
                yield Candidate("broken.png", b"\x89PNG not really")
            yield Candidate(name, data)
        raise ClientGone("the client went away mid-upload")

    with pytest.raises(ClientGone):
        run_import(settings, project, candidates())
    rows = samples(settings, project)
    # The first batch is whole and committed; the ten after it were checked but never stored.
    assert sorted(rows.values()) == [n for n, _, _ in good[:BATCH]]
    assert_whole(settings, rows)
    with session_scope(settings.database_url, read_only=True) as s:
        kinds = s.scalars(select(Job.kind).where(Job.project_id == project)).all()
    assert "embed" in kinds, "the committed samples' embedding was not queued"
    # Sending the same files again finishes the import: what is in counts as a duplicate.
    run_import(settings, project, iter([Candidate(n, d) for n, d, _ in good]))
    assert len(samples(settings, project)) == len(good)


def refuse_insert_of(db_url: str, filename: str) -> None:
    """The database itself refuses a sample row of that name (a trigger): a failure inside a batch's
    transaction, after its files were stored."""
    from app.db import get_engine

    with get_engine(db_url).begin() as conn:
        if db_url.startswith("sqlite"):
            conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON samples WHEN NEW.filename = '{filename}' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
        else:
            conn.execute(text(f"CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.filename = '{filename}' "
                              "THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ "
                              "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON samples FOR EACH ROW EXECUTE FUNCTION refuse()"))


def test_a_batch_the_database_refuses_takes_back_its_files(settings, project):
    from sqlalchemy.exc import DBAPIError

    from app.services.archives import Candidate
    from app.services.errors import ImportStopped
    from app.services.imports import BATCH

    good = digits_pngs(3 * BATCH)
    poison = good[BATCH + 5][0]
    refuse_insert_of(settings.database_url, poison)
    # The database's error, wrapped so that the answer says what the first batch stored (tests/reliability/
    # test_import_interrupted.py: not "nothing was changed").
    with pytest.raises(ImportStopped) as stop:
        run_import(settings, project, iter([Candidate(n, d) for n, d, _ in good]))
    assert isinstance(stop.value.cause, DBAPIError) and "refused by the test" in str(stop.value.cause)
    assert stop.value.stored == BATCH and f"{BATCH} new samples were stored" in str(stop.value.detail)
    rows = samples(settings, project)
    assert sorted(rows.values()) == [n for n, _, _ in good[:BATCH]]
    assert_whole(settings, rows)


def test_a_failed_batch_keeps_the_files_another_projects_row_names(settings, project):
    """Files are shared by content across projects. A failed batch removes the files it wrote, then
    looks for rows naming them: here another project's row was committed while its files were missing
    (the moment in a race where that import found them stored, just before they were removed)."""
    from app.db import session_scope
    from app.services.archives import Candidate
    from app.services.projects import create_project

    with session_scope(settings.database_url) as s:
        other = create_project(s, "other", ["a", "b"]).id
    (name, data, _), = digits_pngs(1, offset=7)
    run_import(settings, other, iter([Candidate(name, data)]))
    for f in Path(settings.media_path).rglob("*.*"):
        f.unlink()  # so the failing import below writes them anew (and would take them back)
    refuse_insert_of(settings.database_url, "same-content.png")
    with pytest.raises(Exception, match="refused by the test"):
        run_import(settings, project, iter([Candidate("same-content.png", data)]))
    assert_whole(settings, samples(settings, other))


def test_a_committed_batch_puts_back_a_shared_file_removed_before_its_commit(settings, project):
    """The other side of that race: this import found the file stored (another project's), and a failing
    import removed it before this batch committed. The batch looks for its files after its commit."""
    from app.db import after_commit, session_scope
    from app.models import Project
    from app.services.archives import Candidate
    from app.services.imports import import_candidates
    from app.services.projects import create_project

    with session_scope(settings.database_url) as s:
        other = create_project(s, "other", ["a", "b"]).id
    (name, data, _), = digits_pngs(1, offset=9)
    run_import(settings, other, iter([Candidate(name, data)]))
    with session_scope(settings.database_url) as s:

        def candidates():
            # Runs at this batch's commit: the shared files vanish between its insert and its check.
            after_commit(s, lambda: [f.unlink() for f in Path(settings.media_path).rglob("*.*")])
            yield Candidate(name, data)

        import_candidates(s, s.get(Project, project), candidates(), settings)
    assert_whole(settings, samples(settings, project))
    assert_whole(settings, samples(settings, other))


def test_batches_count_duplicates_across_batches_and_against_the_project(settings, project):
    from app.db import session_scope
    from app.models import Project, Sample
    from app.services.archives import Candidate
    from app.services.imports import BATCH, import_candidates

    items = digits_pngs(BATCH + 20)
    run_import(settings, project, iter([Candidate(n, d) for n, d, _ in items[:10]]))
    # Repeats within the import (a batch apart) and of what the project holds.
    again = items + items[BATCH - 5:BATCH + 5]
    with session_scope(settings.database_url) as s:
        result = import_candidates(s, s.get(Project, project), iter([Candidate(n, d) for n, d, _ in again]),
                                   settings)
        assert (result.created, result.duplicates) == (BATCH + 10, 20)
        assert s.scalar(select(func.count()).select_from(Sample).where(Sample.project_id == project)) == BATCH + 20
