"""The "Data problems" view (issue 18) with a user's eye: an expert opens it after the first train and
finds a planted wrong label with the model's alternative and its nearest labelled neighbours, keeps one
doubted label with K and relabels another with a class key (both decisions recorded), sees a re-encoded
copy grouped with its original and sets the copy aside (the queue stops serving it), and finds a blank
image first among the outliers, sets it aside and brings it back."""

from __future__ import annotations

import io
import sqlite3

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import digits_pngs, imagefolder_zip
from tests.frontend.test_ui import wait_until

pytestmark = pytest.mark.browser

N, FLIPS = 120, 6


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return buf.getvalue()


def _project(server) -> tuple[int, dict[str, int], set[str]]:
    """A digits project whose import put FLIPS digits in the wrong folder, plus an unlabelled JPEG copy
    of one digit and a blank image; {file name: sample id}, the flipped names."""
    admin = server.admin
    pid = admin.post("/projects", {"name": "data-problems-ui", "classes": [str(d) for d in range(10)],
                                   "settings": {"auto_pretrain": False, "retrain_every": 100_000}})["id"]
    items = digits_pngs(N)
    flipped = {name for name, _, _ in items[5::N // FLIPS][:FLIPS]}
    labelled = [(n, d, str((int(c) + 3) % 10) if n in flipped else c) for n, d, c in items]
    copy = io.BytesIO()
    Image.open(io.BytesIO(items[1][1])).save(copy, "JPEG", quality=85)
    headers = {"Authorization": f"Bearer {admin.token}"}
    r = httpx.post(f"{server.url}/api/v1/projects/{pid}/samples", params={"labels_from_folders": "true"},
                   headers=headers, timeout=120, files=[("files", ("digits.zip", imagefolder_zip(labelled))),
                          ("files", ("copy-of-1.jpg", copy.getvalue())),
                          ("files", ("blank.png", _png(np.full((8, 8), 90, np.uint8))))])
    assert r.status_code == 201, r.text
    admin.idle(pid, timeout=240)  # embed, then the train that checks labels, duplicates and outliers
    ids = {s["filename"].rsplit("/", 1)[-1]: s["id"] for s in admin.get(f"/projects/{pid}/samples?limit=1000")["items"]}
    return pid, ids, flipped


def _decisions(server, sid: int) -> list[tuple[str, str]]:
    with sqlite3.connect(server.var_dir / "loupe.db") as db:
        return db.execute("SELECT decision, label FROM label_issue_decisions WHERE sample_id = ? ORDER BY id",
                          (sid,)).fetchall()


def test_data_problems_view_keep_relabel_set_aside(page, server, login, screenshot):
    pid, ids, flipped = _project(server)
    login(page)
    page.goto(f"/#/projects/{pid}/problems")
    page.get_by_role("heading", name="Data problems").wait_for()

    # Possibly mislabelled: a planted wrong label is listed with the true digit as the alternative and
    # its nearest labelled neighbours beside it.
    issues = page.locator("#label-issue-list .issue")
    page.locator("#label-issue-list > *").first.wait_for()
    assert issues.count(), page.locator("#label-issue-list").inner_text()
    listed = [int(x) for x in issues.evaluate_all("els => els.map(e => e.dataset.sampleId)")]
    flipped_ids = {ids[n] for n in flipped}
    assert flipped_ids & set(listed), (listed, flipped_ids)
    first = issues.first
    assert "the model suggests" in first.inner_text()
    assert first.locator(".neighbours img").count() >= 3
    screenshot(page, "data-problems")

    # K keeps the focused label: recorded, and it leaves the list.
    kept = listed[0]
    kept_label = server.admin.get(f"/samples/{kept}")["label"]
    page.locator(f".issue[data-sample-id='{kept}']").focus()
    page.keyboard.press("k")
    page.locator(f".issue[data-sample-id='{kept}']").wait_for(state="detached")
    wait_until(lambda: _decisions(server, kept) == [("keep", kept_label)], what="the keep decision")
    assert server.admin.get(f"/samples/{kept}")["label"] == kept_label
    assert kept not in [i["sample_id"] for i in server.admin.get(f"/projects/{pid}/label-issues?limit=50")["items"]]

    # A class key relabels the focused one: the label changes and the decision is recorded.
    nxt = page.locator("#label-issue-list .issue").first
    nxt.wait_for()
    sid = int(nxt.get_attribute("data-sample-id"))
    suggested = nxt.locator(".issue-suggested").inner_text()
    nxt.focus()
    page.keyboard.press(suggested)
    wait_until(lambda: _decisions(server, sid) == [("relabel", suggested)], what="the relabel decision")
    # The label came from the import (nobody's): the expert's relabel is a second opinion beside it,
    # and the disagreement waits in the review list for a reviewer.
    history = server.admin.get(f"/samples/{sid}/labels")
    assert [(h["label"], h["username"]) for h in history if h["action"] == "set"][-1] == (suggested, "admin")
    reviews = server.admin.get(f"/projects/{pid}/reviews?status=open&limit=200")
    assert server.admin.get(f"/samples/{sid}")["label"] == suggested or any(r["sample_id"] == sid for r in reviews)
    page.locator(f".issue[data-sample-id='{sid}']").wait_for(state="detached")

    # Near-duplicates: the JPEG copy sits in a group with its original; its copies are set aside.
    original, copy = ids[digits_pngs(2)[1][0]], ids["copy-of-1.jpg"]
    group = page.locator("#duplicate-list .group", has=page.locator(f"figure[data-sample-id='{copy}']"))
    group.wait_for()
    members = [int(x) for x in group.get_attribute("data-sample-ids").split(",")]
    assert original in members
    group.get_by_role("button", name="Keep the first, set the copies aside").click()
    aside = set(members[1:])
    wait_until(lambda: {e["sample_id"] for e in server.admin.get(f"/projects/{pid}/exclusions")["items"]} == aside,
               what="the copies set aside")
    page.locator("#duplicate-list figure.set-aside").first.wait_for()

    # Outliers: the blank image first, set aside and brought back.
    blank = page.locator("#outlier-list .outlier").first
    blank.wait_for()
    assert int(blank.get_attribute("data-sample-id")) == ids["blank.png"]
    assert "Blank or nearly constant" in blank.inner_text()
    blank.get_by_role("button", name="Set aside").click()
    page.locator(f"#outlier-list .outlier.set-aside[data-sample-id='{ids['blank.png']}']").wait_for()
    assert ids["blank.png"] in {e["sample_id"] for e in server.admin.get(f"/projects/{pid}/exclusions")["items"]}
    page.locator(f"#outlier-list .outlier[data-sample-id='{ids['blank.png']}']").get_by_role(
        "button", name="Bring back").click()
    page.locator(f"#outlier-list .outlier:not(.set-aside)[data-sample-id='{ids['blank.png']}']").wait_for()
    assert ids["blank.png"] not in {e["sample_id"] for e in server.admin.get(f"/projects/{pid}/exclusions")["items"]}
