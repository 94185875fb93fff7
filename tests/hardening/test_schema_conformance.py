"""The OpenAPI schema says what the API really answers (issue 16, item 10): schemathesis over every
operation as an admin, with ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance`` and ``response_schema_conformance``. Before, the schema documented only
2xx and 422, so every 401, 403, 404 and 409 and the export's CSV, NDJSON and zip were undocumented.

Bounded: a few examples an operation (``LOUPE_SCHEMA_EXAMPLES``, default 4, half as many invalid
ones), no shrinking, on SQLite; tests/reliability/test_bad_requests.py fuzzes longer for server errors.
"""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, fresh_database, make_settings, upload
from tests.reliability.conftest import create_admin

EXAMPLES = int(os.environ.get("LOUPE_SCHEMA_EXAMPLES", "4"))
BUDGET_S = 150  # the whole run, on a busy 2-core machine; it took about a third of that
VICTIM_PASSWORD = "victim-password-1"


@pytest.fixture
def target(tmp_path, request):
    """The real app on SQLite, seeded with a project, samples, labels, a review, a job and a second
    user whose account and token the run may change (never the admin's own: a PATCH of the admin's
    own account could deactivate the account the run uses)."""
    from app.main import create_app

    # The run sends wrong passwords (POST /users/me/password, /auth/login): no lockout of the admin.
    with fresh_database("sqlite", tmp_path, request) as url:
        settings = make_settings(tmp_path, url, login_failures_per_account=10**6, login_failures_per_address=10**6)
        create_admin(settings)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            yield client.app, admin, _seed(admin)


def _seed(admin: Api) -> dict[str, object]:
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(12)]).status_code == 201
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "1"} for s in sids[:3]],
                   headers={"X-Label-Batch": "1"})
    victim = admin.new_user("victim", VICTIM_PASSWORD)
    admin.post(f"/projects/{pid}/members", json={"username": "victim", "role": "annotator"})
    victim.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "2"})  # opens a review
    uid = next(u["id"] for u in admin.get("/users").json() if u["username"] == "victim")
    return {"pid": pid, "sid": sids[5], "lid": r.json()["items"][0]["id"], "batch_id": r.json()["batch_id"],
            "jid": admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()["id"],
            "rid": admin.get(f"/projects/{pid}/reviews").json()[0]["id"], "uid": uid,
            "tid": victim.post("/tokens", json={"name": "t"}).json()["id"], "username": "victim"}


def _no_defaults(fn):  # hypothesis refuses a test function with default arguments
    def test(case):
        fn(case)

    return test


class Run:
    """Calls cases as the admin and collects every failure (one report lists them all)."""

    # The one call that ends the run's own session; after it succeeds, sign in again.
    ENDS_SESSION = ("POST", "/api/v1/auth/logout")
    # Path parameters that must always name the seeded row: the admin's own account or token must
    # not be changed (a PATCH of user 1 could deactivate the account the run uses).
    ALWAYS_REAL = ("uid", "tid")

    def __init__(self, admin: Api, real: dict[str, object], checks: list) -> None:
        self.admin, self.real, self.checks = admin, real, checks
        self.token = admin.headers["Authorization"]
        self.failures: dict[str, str] = {}
        self.calls = 0
        self.statuses: dict[int, int] = {}

    def one(self, case, key: str, n: int) -> None:
        # Every other case aims at rows that exist, so the happy paths are checked too.
        for name in case.path_parameters or {}:
            if name in self.real and (name in self.ALWAYS_REAL or n % 2 == 0):
                case.path_parameters[name] = self.real[name]
        self.calls += 1
        response = case.call(headers={"Authorization": self.token})
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.status_code < 300 and (case.method.upper(), case.path) == self.ENDS_SESSION:
            self.token = self.admin.login_as("admin", ADMIN_PASSWORD).headers["Authorization"]
        try:
            case.validate_response(response, checks=self.checks)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all collected, then reported together
            self.failures.setdefault(key, f"{type(exc).__name__}: {str(exc)[:1200]}\n  request: {case.method} "
                                          f"{case.formatted_path} query={case.query} body={str(case.body)[:200]}")


def test_the_schema_documents_every_status_and_content_type(target):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hsettings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    app, admin, real = target
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 40
    run = Run(admin, real, [not_a_server_error, status_code_conformance, content_type_conformance,
                            response_schema_conformance])
    started = time.monotonic()
    for op in operations:
        key = f"{op.method.upper()} {op.path}"
        for mode, n in ((GenerationMode.POSITIVE, EXAMPLES), (GenerationMode.NEGATIVE, max(1, EXAMPLES // 2))):
            counter = iter(range(10**9))
            settings = hsettings(max_examples=n, deadline=None, database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            test = _no_defaults(lambda case, key=key, counter=counter: run.one(case, key, next(counter)))
            try:
                settings(given(case=op.as_strategy(generation_mode=mode))(test))()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, key  # nothing in this operation can be made invalid
    elapsed = time.monotonic() - started
    print(f"schema conformance: {run.calls} calls over {len(operations)} operations in {elapsed:.0f} s; "
          f"statuses {sorted(run.statuses.items())}")
    assert not run.failures, f"{len(run.failures)} operations:\n\n" + "\n\n".join(
        f"{k}\n{v}" for k, v in run.failures.items())
    assert elapsed < BUDGET_S, f"the run took {elapsed:.0f} s, over its {BUDGET_S} s budget"


def test_every_route_documents_its_error_answers(tmp_path):
    """What the fuzzer meets only by luck, checked on the schema itself: every operation but the two
    open ones answers 401 without a token, every write 403 without the CSRF header (signed in by
    cookie), every operation 503 when the database is away; and each error answer has its body."""
    from app.main import create_app

    schema = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")).openapi()
    open_ops = {("get", "/api/v1/health"), ("post", "/api/v1/auth/login")}
    problems = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            want = {"503"} if (method, path) in open_ops else {"401", "503"}
            if method != "get" and (method, path) not in open_ops:
                want.add("403")
            if want - codes:
                problems.append(f"{method.upper()} {path}: {sorted(want - codes)} not documented")
            problems += [f"{method.upper()} {path}: {code} has no body schema" for code in codes
                         if code.startswith("4") and "content" not in op["responses"][code]]
    assert not problems, "\n".join(problems)
