"""A newcomer's path in the browser (issue 17, items 6 and 7): a new project with a description (the form
closes after use), an ImageFolder zip imported with its folders kept as labels, counts that follow imports,
undos and batches without a reload, errors worded as sentences, and long class names that fit their
buttons."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.frontend.conftest import Api
from tests.frontend.test_ui import wait_until

pytestmark = pytest.mark.browser

LONG = ("Pseudomonas aeruginosa biofilm on stainless steel coupons after fourteen days in the flow cell, "
        "stained with crystal violet and imaged at 40x under bright-field illumination")


def _zip(folders: dict[str, int]) -> bytes:
    """An ImageFolder zip: ``n`` distinct small PNGs in each class folder."""
    buf = io.BytesIO()
    rng = np.random.default_rng(17)
    with zipfile.ZipFile(buf, "w") as zf:
        for folder, n in folders.items():
            for i in range(n):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), "L").save(png, "PNG")
                zf.writestr(f"set/{folder}/{i:03d}.png", png.getvalue())
    return buf.getvalue()


def _project(server, name: str, classes: list[str]) -> int:
    return server.admin.post("/projects", {"name": name, "classes": classes,
                                           "settings": {"auto_pretrain": False, "auto_embed": False}})["id"]


def test_a_new_project_with_a_description_closes_its_form(page, server, login):
    login(page)
    page.get_by_role("button", name="New project").click()
    form = page.get_by_role("form", name="New project")
    form.wait_for()
    form.get_by_label("Project name").fill("newcomer birds")
    form.get_by_label("Classes, comma separated").fill("finch, wren, robin")
    form.get_by_label("Description").fill("Garden birds from the feeder camera, spring 2026")
    form.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"#/projects/\d+/admin/import$"))
    created = next(p for p in server.admin.get("/projects") if p["name"] == "newcomer birds")
    assert created["description"] == "Garden birds from the feeder camera, spring 2026"
    assert created["classes"] == ["finch", "wren", "robin"]

    page.goto("/#/projects")
    card = page.locator(".project-card[data-project='newcomer birds']")
    assert "feeder camera" in card.locator(".description").inner_text()
    assert page.locator("form.new-project").is_hidden()  # closed after use, and the button back
    page.get_by_role("button", name="New project").click()
    assert form.get_by_label("Project name").input_value() == ""  # nothing left from before
    form.get_by_label("Project name").fill("half typed")
    form.get_by_role("button", name="Cancel").click()
    assert form.is_hidden() and page.get_by_role("button", name="New project").is_visible()


def test_errors_read_as_sentences(page, server, login):
    login(page)
    page.get_by_role("button", name="New project").click()
    form = page.get_by_role("form", name="New project")
    alert = form.get_by_role("alert")
    # FastAPI's own validation list (the name over 200 characters), worded by the browser.
    form.get_by_label("Project name").fill("n" * 250)
    form.get_by_label("Classes, comma separated").fill("a, b")
    form.get_by_role("button", name="Create").click()
    alert.wait_for()
    assert alert.inner_text().strip() == "The name should have at most 200 characters."
    # A service's rule, with the names it refuses.
    form.get_by_label("Project name").fill("twice over")
    form.get_by_label("Classes, comma separated").fill("a, b, a")
    form.get_by_role("button", name="Create").click()
    wait_until(lambda: "unique" in alert.inner_text(), what="the second error")
    text = alert.inner_text().strip()
    assert text == "Class names must be unique; repeated: 'a'.", text
    assert not any(c in text for c in "[]{}")


def test_counts_follow_an_import_with_folder_labels_an_undo_and_a_batch(page, server, login):
    pid = _project(server, "newcomer counts", ["finch", "wren"])
    login(page)
    page.goto(f"/#/projects/{pid}/admin/import")
    counts = page.locator("#import-counts")
    wait_until(lambda: counts.inner_text() == "0 samples so far, 0 labelled.", what="the counts before")
    page.get_by_label("Keep a zip's class sub-folders as labels").check()
    page.set_input_files("#import-files", files=[{"name": "birds.zip", "mimeType": "application/zip",
                                                  "buffer": _zip({"finch": 6, "wren": 5, "owl": 2})}])
    result = page.locator("#import-result [role=status]")
    result.wait_for()
    text = result.inner_text()
    assert "13 imported" in text and "11 labelled from their folders" in text and "“owl”" in text, text
    # The import view's counts follow the import at once.
    wait_until(lambda: counts.inner_text() == "13 samples so far, 11 labelled.", timeout=10,
               what=f"the import view's counts (shown: {counts.inner_text()!r})")
    labels = server.admin.get(f"/projects/{pid}/metrics")
    assert labels["human_label_count"] == 0 and labels["labelled_count"] == 11  # imported, no expert's

    page.goto("/#/projects")
    card = page.locator(".project-card[data-project='newcomer counts'] .labelled")
    wait_until(lambda: card.inner_text() == "11 / 13 labelled", what="the list's counts after the import")
    # Elsewhere (another tab, a script): a teach batch labels the two owls, then one label is undone; the
    # list, left open, follows without a reload.
    owls = server.admin.get(f"/projects/{pid}/samples?status=unlabelled")["items"]
    batch = server.admin.post(f"/projects/{pid}/labels", [{"sample_id": s["id"], "label": "wren"} for s in owls],
                              headers={"X-Label-Batch": "1"})
    wait_until(lambda: card.inner_text() == "13 / 13 labelled", timeout=15, what="the list after a batch")
    server.admin.call("DELETE", f"/labels/{batch['items'][0]['id']}")
    wait_until(lambda: card.inner_text() == "12 / 13 labelled", timeout=15, what="the list after an undo")
    server.admin.call("DELETE", f"/label-batches/{batch['batch_id']}")
    wait_until(lambda: card.inner_text() == "11 / 13 labelled", timeout=15, what="the list after a batch undo")
    page.goto(f"/#/projects/{pid}/admin/import")
    wait_until(lambda: counts.inner_text() == "13 samples so far, 11 labelled.", what="the import view's counts")
    server.admin.post(f"/projects/{pid}/labels", {"sample_id": owls[0]["id"], "label": "finch"})
    wait_until(lambda: counts.inner_text() == "13 samples so far, 12 labelled.", timeout=15,
               what="the import view's counts after a label elsewhere")


def _upload(page, server, pid: int, data: bytes, labels_from_folders: bool = False) -> None:
    query = "?labels_from_folders=true" if labels_from_folders else ""
    r = page.request.post(f"{server.url}/api/v1/projects/{pid}/samples{query}",
                          headers={"Authorization": f"Bearer {server.admin.token}"},
                          multipart={"files": {"name": "set.zip", "mimeType": "application/zip", "buffer": data}})
    assert r.status == 201, r.text()


FITS = """(sel) => [...document.querySelectorAll(sel)].map((b) => {
    const name = b.querySelector('.cname') || b, box = b.closest('.panel').getBoundingClientRect();
    return { cls: name.textContent, title: b.title, fits: b.scrollWidth <= b.clientWidth,
             inside: name.getBoundingClientRect().right <= b.getBoundingClientRect().right + 0.5
                     && b.getBoundingClientRect().right <= box.right + 0.5,
             cut: name.scrollWidth > name.clientWidth, ellipsis: getComputedStyle(name).textOverflow };
})"""


def _check_fit(fits: list[dict], n: int) -> None:
    assert len(fits) == n, fits
    assert all(f["fits"] and f["inside"] for f in fits), fits  # every name inside its button, every button in place
    assert all(f["title"] == f["cls"] for f in fits), fits
    long = next(f for f in fits if f["cls"] == LONG)
    assert long["cut"] and long["ellipsis"] == "ellipsis", long  # shortened with "…", the full name its title


def test_a_long_class_name_fits_its_button(page, server, login):
    """In the label view and on a review's buttons: the button keeps its size, the name is cut with an
    ellipsis inside it, and the full name is its title."""
    pid = _project(server, "newcomer long names", ["ok", LONG])
    _upload(page, server, pid, _zip({"x": 2}))
    sid = server.admin.get(f"/projects/{pid}/samples")["items"][0]["id"]
    server.admin.post("/users", {"username": "newcomer-second", "password": "second-password-1"})
    server.admin.post(f"/projects/{pid}/members", {"username": "newcomer-second", "role": "annotator"})
    second = Api(server.url).login("newcomer-second", "second-password-1")
    server.admin.post(f"/projects/{pid}/labels", {"sample_id": sid, "label": "ok"})
    second.post(f"/projects/{pid}/labels", {"sample_id": sid, "label": LONG})  # the experts disagree: a review

    login(page)
    page.goto(f"/#/projects/{pid}/label")
    page.locator(".class-btn .cname").first.wait_for()
    _check_fit(page.evaluate(FITS, ".class-btn"), 2)
    page.goto(f"/#/projects/{pid}/reviews")
    page.locator(".review-classes .btn").first.wait_for()
    _check_fit(page.evaluate(FITS, ".review-classes .btn"), 2)
    review = page.evaluate("() => [document.querySelector('.review').scrollWidth, "
                           "document.querySelector('.review').clientWidth]")
    assert review[0] <= review[1], review  # nothing of the review sticks out of it


def test_the_dashboard_shows_imported_labels_apart_and_exports_coco_with_suggestions(page, server, login):
    pid = _project(server, "newcomer export", ["finch", "wren"])
    _upload(page, server, pid, _zip({"finch": 4, "wren": 3, "x": 1}), labels_from_folders=True)
    login(page)
    page.goto(f"/#/projects/{pid}/dashboard")
    human = page.locator("#stat-human")
    human.wait_for()
    assert human.locator(".stat-value").inner_text() == "0"
    assert "7 more imported with the data" in human.inner_text()

    coco = page.get_by_role("link", name="Export labels as COCO JSON")
    assert coco.get_attribute("href") == f"/api/v1/projects/{pid}/export?format=coco"
    page.locator("#export-suggestions").check()
    page.locator("#export-threshold").fill("0.75")
    for fmt in ("csv", "jsonl", "imagefolder", "coco"):
        href = page.locator(f".export a[data-format='{fmt}']").get_attribute("href")
        assert href == f"/api/v1/projects/{pid}/export?format={fmt}&suggestions=0.75", href
    doc = page.request.get(server.url + coco.get_attribute("href")).json()  # the page's own session
    assert [c["name"] for c in doc["categories"]] == ["finch", "wren"]
    assert len(doc["images"]) == len(doc["annotations"]) == 7
    assert {a["source"] for a in doc["annotations"]} == {"import"} and doc["info"]["suggestions"] == 0.75
    page.locator("#export-threshold").fill("2")  # no such confidence: the links leave it out
    assert coco.get_attribute("href") == f"/api/v1/projects/{pid}/export?format=coco"
    # A held-out share for the team's own training: the zip holds a train and a test ImageFolder.
    page.locator("#export-split").check()
    page.locator("#export-test-share").fill("30")
    zipped = page.get_by_role("link", name="Export labels as ImageFolder zip").get_attribute("href")
    assert zipped == f"/api/v1/projects/{pid}/export?format=imagefolder&test_share=0.3", zipped
    with zipfile.ZipFile(io.BytesIO(page.request.get(server.url + zipped).body())) as z:
        sides = [name.split("/")[0] for name in z.namelist()]
    assert len(sides) == 7 and set(sides) <= {"train", "test"}, sides
    page.locator("#export-test-share").fill("100")  # no such share: the links leave the split out
    assert coco.get_attribute("href") == f"/api/v1/projects/{pid}/export?format=coco"
