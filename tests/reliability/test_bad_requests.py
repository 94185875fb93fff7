"""Bad requests answer 4xx, never 500: hand-written cases, then schemathesis over every route.

tests/api/test_labels_queue_export.py::test_bad_labels_store_nothing already shows a label outside the
classes (422), an unknown sample id and another project's sample id (404), malformed JSON and wrong
types (422) on SQLite and PostgreSQL; these add ids and limits far out of range, odd bodies and
characters a database refuses, on both databases too.
"""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, fresh_database, make_settings, upload
from tests.reliability.conftest import create_admin

HUGE = 2**70  # past every integer column (and 64-bit integers)


def _seed(admin: Api) -> tuple[int, list[int]]:
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    items = digits_pngs(12)
    assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    return pid, sids


@pytest.fixture
def lenient_admin(tmp_path, db_url):
    """An admin client that gets a server error as a 500 answer (as a real client would), not as an
    exception, so one run lists every case that fails."""
    from app.main import create_app

    settings = make_settings(tmp_path, db_url)
    create_admin(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client).login_as("admin", ADMIN_PASSWORD)


def test_out_of_range_ids_limits_and_odd_bodies_are_4xx(lenient_admin):
    admin = lenient_admin
    pid, sids = _seed(admin)
    other = admin.post("/projects", json={"name": "other", "classes": ["x"]}).json()["id"]
    cases = [
        ("get", f"/projects/{HUGE}", {}),
        ("get", f"/projects/{-1}", {}),
        ("get", f"/samples/{HUGE}", {}),
        ("get", f"/samples/{HUGE}/image", {}),
        ("get", f"/samples/{2**31}/thumbnail", {}),
        ("get", f"/samples/{2**63}/labels", {}),
        ("delete", f"/labels/{HUGE}", {}),
        ("delete", "/labels/0", {}),
        ("get", f"/jobs/{HUGE}", {}),
        ("post", f"/jobs/{2**40}/cancel", {}),
        ("post", f"/projects/{pid}/queue/lease", {"params": {"limit": 10**12}}),
        ("post", f"/projects/{pid}/queue/lease", {"params": {"limit": 0}}),
        ("post", f"/projects/{pid}/queue/lease", {"params": {"limit": "ten"}}),
        ("get", f"/projects/{pid}/samples", {"params": {"limit": 10**12}}),
        ("get", f"/projects/{pid}/samples", {"params": {"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"}}),
        ("get", f"/projects/{pid}/samples", {"params": {"status": "maybe"}}),
        ("get", f"/projects/{pid}/samples", {"params": {"label": "x" * 5000}}),
        ("get", f"/projects/{pid}/predictions", {"params": {"limit": 10**12, "cursor": -5}}),
        ("get", f"/projects/{pid}/predictions", {"params": {"cursor": HUGE}}, "any"),
        ("get", f"/projects/{pid}/export", {"params": {"format": "xlsx"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": HUGE, "label": "1"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": "1", "duration_ms": -1}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": "\x00"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": "1\x00"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": ""}}),
        ("post", f"/projects/{pid}/labels", {"json": []}),
        ("post", f"/projects/{pid}/labels", {"json": None}),
        ("post", f"/projects/{pid}/labels", {"json": [[{"sample_id": sids[0], "label": "1"}]]}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": True, "label": "1"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": 1.5, "label": "1"}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": ["1"]}}),
        ("post", f"/projects/{pid}/labels", {"json": {"sample_id": sids[0], "label": "1"},
                                             "headers": {"Idempotency-Key": "k" * 500}}),
        ("post", f"/projects/{other}/labels", {"json": {"sample_id": sids[0], "label": "x"}}),
        ("post", f"/projects/{pid}/labels", {"content": b"\xff\xfe not utf-8", "headers": {"content-type":
                                                                                          "application/json"}}),
        ("post", f"/projects/{pid}/labels", {"content": b'{"sample_id": 1, "label": "1"', "headers": {
            "content-type": "application/json"}}),
        ("post", f"/projects/{pid}/labels", {"content": b"[" * 10000 + b"]" * 10000, "headers": {
            "content-type": "application/json"}}),
        ("post", f"/projects/{pid}/labels", {"data": {"sample_id": "1", "label": "1"}}),
        ("post", f"/projects/{pid}/queue/release", {"json": {"sample_ids": [HUGE]}}),
        ("post", f"/projects/{pid}/queue/release", {"json": {"sample_ids": list(range(1, 5000))}}),
        ("post", f"/projects/{pid}/jobs", {"json": {"kind": "train", "params": "fast"}}),
        ("post", f"/projects/{pid}/jobs", {"json": {"kind": "pretrain", "params": {"epochs": HUGE}}}),
        ("post", f"/projects/{pid}/jobs", {"json": {"kind": "pretrain", "params": {"budget_seconds": "NaN"}}}),
        ("post", "/projects", {"json": {"name": "n\x00ul", "classes": ["a"]}}, "any"),  # SQLite stores NUL
        ("post", "/projects", {"json": {"name": "dup", "classes": ["a", "a"]}}),
        ("post", "/projects", {"json": {"name": "many", "classes": [str(i) for i in range(5000)]}}),
        ("patch", f"/projects/{pid}", {"json": {"add_classes": ["1"]}}),
        ("patch", f"/projects/{pid}", {"json": {"settings": {"retrain_every": -3}}}),
        ("post", "/users", {"json": {"username": "u\x00", "password": "password-1"}}),
        ("post", "/auth/login", {"json": {"username": "admin\x00", "password": "x"}}),
        ("post", "/auth/login", {"json": {"username": "admin", "password": "x" * 100_000}}),
        ("post", f"/projects/{pid}/members", {"json": {"username": "nobody", "role": "annotator"}}),
        ("post", f"/projects/{pid}/members", {"json": {"username": "admin", "role": "owner"}}),
    ]
    problems = []
    for method, url, kw, *expect in cases:
        r = getattr(admin, method)(url, **kw)
        if r.status_code >= 500 or (not expect and not 400 <= r.status_code < 500):
            problems.append(f"{method.upper()} {url} {kw}: {r.status_code} {r.text[:200]}")
        elif r.status_code >= 400 and "detail" not in r.json():
            problems.append(f"{method.upper()} {url}: no 'detail' in {r.text[:200]}")
    assert not problems, "\n".join(problems)
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 0


# ---------------------------------------------------------------- schemathesis over the whole schema

EXAMPLES = int(os.environ.get("LOUPE_FUZZ_EXAMPLES", "12"))
# Operations that may revoke the token the run is using: after one succeeds, sign in again.
REVOKING = ("/api/v1/auth/logout", "/api/v1/tokens/")


@pytest.fixture
def fuzz_target(tmp_path, request):
    """An app on PostgreSQL when it is there (it refuses more input than SQLite: NUL bytes, integers
    past 64 bits), seeded with a project, samples, labels and a job so paths can hit real rows."""
    kind = "postgres"
    try:
        request.getfixturevalue("pg_template")
    except pytest.skip.Exception:
        kind = "sqlite"
    with fresh_database(kind, tmp_path, request) as url:
        settings = make_settings(tmp_path, url)
        create_admin(settings)
        from app.main import create_app

        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            pid, sids = _seed(admin)
            r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "1"} for s in sids[:3]])
            lid = r.json()["items"][0]["id"]
            jid = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()["id"]
            admin.post(f"/projects/{pid}/queue/lease", params={"limit": 2})
            yield app, admin, {"pid": pid, "sid": sids[5], "lid": lid, "jid": jid}, kind


def _no_defaults(fn):  # hypothesis refuses a test function with default arguments
    def test(case):
        fn(case)

    return test


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_target):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hsettings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    app, admin, real_ids, kind = fuzz_target
    token = admin.headers["Authorization"]
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: dict[str, str] = {}
    calls = 0
    statuses: dict[int, int] = {}
    started = time.monotonic()

    for op in operations:
        key = f"{op.method.upper()} {op.path}"
        for mode, n in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, max(1, EXAMPLES // 2))):
            counter = iter(range(10**9))

            def one(case, key=key, counter=counter, mode=mode) -> None:
                nonlocal calls, token
                # Every other case aims at rows that exist, so the happy paths are exercised too.
                if case.path_parameters and next(counter) % 2 == 0:
                    for name in case.path_parameters:
                        if name in real_ids:
                            case.path_parameters[name] = real_ids[name]
                calls += 1
                response = case.call(headers={"Authorization": token})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code < 300 and case.method.upper() in ("POST", "DELETE") and any(
                        case.path.startswith(p) for p in REVOKING):
                    token = admin.login_as("admin", ADMIN_PASSWORD).headers["Authorization"]
                try:
                    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                except Exception as exc:  # noqa: BLE001 - every failure is collected, then reported together
                    failures.setdefault(key, f"{mode.value}: {type(exc).__name__}: {str(exc)[:1500]}\n"
                                             f"  request: {case.method} {case.formatted_path} "
                                             f"query={case.query} body={str(case.body)[:300]}")

            settings = hsettings(max_examples=n, deadline=None, database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            try:
                settings(given(case=op.as_strategy(generation_mode=mode))(_no_defaults(one)))()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, key  # nothing in this operation can be made invalid
    elapsed = time.monotonic() - started
    print(f"schemathesis on {kind}: {calls} calls over {len(operations)} operations in {elapsed:.0f}s; "
          f"statuses {sorted(statuses.items())}")
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
