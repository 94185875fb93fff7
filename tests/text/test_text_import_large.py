"""A text upload with more labelled rows than PostgreSQL takes bind parameters in one statement (65,535):
before the fix the import's labels went out as one statement of 66,000 ids, and PostgreSQL refused it;
the API called that "database unavailable, retry" (503), and a retry failed the same way."""

from __future__ import annotations

import csv
import io

import pytest

ROWS = 66_000


# PostgreSQL only: its limit is the one the statement met (SQLite's driver took the same import).
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_upload_of_66000_labelled_rows_imports_and_labels_every_row(admin):
    pid = admin.post("/projects", json={"name": "tickets", "kind": "text", "classes": ["billing", "login"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["text", "label"])
    for i in range(ROWS):
        w.writerow([f"ticket {i}: cannot {'pay' if i % 2 else 'sign in'}", "billing" if i % 2 else "login"])
    r = admin.post(f"/projects/{pid}/samples", files=[("files", ("tickets.csv", buf.getvalue().encode(), "text/csv"))])
    assert r.status_code == 201, r.text[:500]
    out = r.json()
    assert out["created"] == ROWS and out["rejected"] == [] and out["labelled"] == ROWS, {**out, "rejected": "..."}
    # And the labels are there: a page of labelled samples with the rows' labels.
    page = admin.get(f"/projects/{pid}/samples", params={"status": "labelled", "limit": 10}).json()["items"]
    assert len(page) == 10 and {s["label"] for s in page} <= {"billing", "login"}
