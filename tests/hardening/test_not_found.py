"""A 404 says nothing about other projects (issue 16, item 10): a job, label, label batch, review or
sample in a project the caller may not see answers exactly as one that does not exist (it answered
"project 2 not found" for a job that exists and "job 99999 not found" for one that does not)."""

from __future__ import annotations

from tests.conftest import digits_pngs, upload

MISSING = 987_654


def _setup(admin) -> dict[str, object]:
    pid = admin.post("/projects", json={"name": "secret", "classes": ["a", "b"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(4)]).status_code == 201
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    ann = admin.new_user("ann", "ann-password-1")
    admin.post(f"/projects/{pid}/members", json={"username": "ann", "role": "annotator"})
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": sids[0], "label": "a"}],
                   headers={"X-Label-Batch": "1"})
    assert r.status_code == 201, r.text
    lid, batch = r.json()["items"][0]["id"], r.json()["batch_id"]
    assert ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "b"}).status_code == 201
    rid = admin.get(f"/projects/{pid}/reviews").json()[0]["id"]
    jid = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()["id"]
    return {"job": jid, "label": lid, "batch": batch, "review": rid, "sample": sids[1]}


def _calls(ids: dict[str, object]) -> list[tuple[str, str, dict, str]]:
    """(method, url, keyword arguments, the id in the url) of each route that reaches a project through
    another resource."""
    return [("get", f"/jobs/{ids['job']}", {}, str(ids["job"])),
            ("delete", f"/labels/{ids['label']}", {}, str(ids["label"])),
            ("delete", f"/label-batches/{ids['batch']}", {}, str(ids["batch"])),
            ("post", f"/reviews/{ids['review']}/resolve", {"json": {"label": "a"}}, str(ids["review"])),
            ("get", f"/samples/{ids['sample']}", {}, str(ids["sample"])),
            ("get", f"/samples/{ids['sample']}/labels", {}, str(ids["sample"]))]


def test_another_projects_rows_answer_as_rows_that_do_not_exist(admin):
    ids = _setup(admin)
    missing = {"job": MISSING, "label": MISSING, "batch": "0" * 32, "review": MISSING, "sample": MISSING}
    outsider = admin.new_user("olga", "olga-password-1")
    problems = []
    for (method, url, kw, real), (_, missing_url, _, fake) in zip(_calls(ids), _calls(missing), strict=True):
        hidden, absent = getattr(outsider, method)(url, **kw), getattr(outsider, method)(missing_url, **kw)
        said, expected = str(hidden.json().get("detail")), str(absent.json().get("detail"))
        same = said.replace(real, "N") == expected.replace(fake, "N")
        if (hidden.status_code, absent.status_code) != (404, 404) or not same:
            problems.append(f"{method.upper()} {url}: {hidden.status_code} {said!r}; missing: {absent.status_code} "
                            f"{expected!r}")
    assert not problems, "\n".join(problems)
