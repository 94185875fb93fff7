"""A service's refusal reads as a sentence: names quoted and joined with "and", never a Python list
(issue 17, item 7). FastAPI's own validation errors keep their documented list; the browser words them
(frontend/js/api.js: describe; tests/frontend/test_ui_newcomer.py)."""

from __future__ import annotations

from app.services.errors import listed
from tests.conftest import digits_pngs, upload


def test_names_are_listed_as_a_person_writes_them():
    assert listed(["cat"]) == "'cat'"
    assert listed(["cat", "dog", "owl"]) == "'cat', 'dog' and 'owl'"
    assert listed(["image", "text"], last="or") == "'image' or 'text'"
    assert listed([3, 5]) == "3 and 5"
    assert listed(range(15)) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 5 more"


def test_refusals_name_what_is_wrong_without_python_lists(admin, digits_project):
    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(2)]).status_code == 201
    sid = admin.get(f"/projects/{pid}/samples").json()["items"][0]["id"]
    refusals = [
        (admin.post(f"/projects/{pid}/labels", json=[{"sample_id": sid, "label": "cat"}]), 422,
         "the label 'cat' is not a class of project 'digits' (its classes: '0', '1'"),
        (admin.post(f"/projects/{pid}/labels", json={"sample_id": 10**9, "label": "3"}), 404,
         f"sample {10**9} not found"),
        (admin.post("/projects", json={"name": "twice", "classes": ["a", "b", "a"]}), 422,
         "class names must be unique; repeated: 'a'"),
    ]
    for r, status, words in refusals:
        assert r.status_code == status, r.text
        detail = r.json()["detail"]
        assert isinstance(detail, str) and words in detail, detail
        assert "[" not in detail and "]" not in detail, detail
