"""A text project in every view beyond the label keys (issue 19), in Chromium: the new-project form
chooses the kind; the sample browser shows snippets, searches the words and opens a document with its
history; the review list shows the document's start, not an image; teach by neighbourhood shows
snippets with the similarity slider; the label view marks the words that drove the suggestion, and its
recent-labels strip, the guidelines' examples and the data-problems view show no broken thumbnail."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.frontend.test_ui import current_sample, wait_until
from tests.text.test_text_import import CLASSES, ag_news

pytestmark = pytest.mark.browser


def test_a_text_project_through_the_browsing_views(page, server, login, screenshot):  # one piece: one project
    admin = server.admin
    login(page)
    page.goto("/#/projects")
    page.get_by_role("button", name="New project").click()
    page.get_by_label("Project name").fill("news-views")
    page.get_by_label("Classes, comma separated").fill(", ".join(CLASSES))
    page.get_by_label("Kind of samples").select_option("text")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/admin/import")
    project = next(p for p in admin.get("/projects") if p["name"] == "news-views")
    assert project["kind"] == "text"
    pid = project["id"]

    # 90 documents, 40 with their topic: the embedded worker embeds (TF-IDF) and trains a model.
    rows = ag_news(90)
    body = "\n".join(json.dumps({"id": f"n{i}", "text": r["text"], **({"label": r["label"]} if i < 40 else {})})
                     for i, r in enumerate(rows)).encode()
    r = httpx.post(f"{server.url}/api/v1/projects/{pid}/samples", files=[("files", ("news.jsonl", body))],
                   headers={"Authorization": f"Bearer {admin.token}"}, timeout=60)
    assert r.status_code == 201, r.text
    wait_until(lambda: admin.get(f"/projects/{pid}")["current_model_version"], timeout=120, what="a model")
    by_name = {s["filename"]: s["id"] for s in admin.get(f"/projects/{pid}/samples?limit=100")["items"]}

    # The sample browser: a snippet per sample (no image), a search by words, a document opened whole.
    page.goto(f"/#/projects/{pid}/samples")
    wait_until(lambda: page.locator("#sample-grid .snippet[data-filled]").count() == 90, what="90 snippets")
    assert page.locator("#sample-grid img").count() == 0
    first = page.locator(f'.thumb[data-sample-id="{by_name["n0"]}"] .snippet')
    assert rows[0]["text"].strip().startswith(first.inner_text().strip()[:100])
    word = "Olympic"
    expected = {by_name[f"n{i}"] for i, r in enumerate(rows) if word.lower() in r["text"].lower().split()}
    page.get_by_label("Words in the text").fill(word.lower())
    page.get_by_label("Words in the text").press("Enter")
    wait_until(lambda: {int(x) for x in page.locator("#sample-grid .thumb").evaluate_all(
        "els => els.map(e => e.dataset.sampleId)")} == expected, what="the documents with the word")
    sid = by_name["n0"]
    page.goto(f"/#/projects/{pid}/samples")
    page.get_by_role("button", name=f"Open sample {sid}").click()
    wait_until(lambda: page.locator("#sample-full-text").inner_text().strip() == rows[0]["text"].strip(),
               what="the whole document")
    assert page.locator("#sample-history tr[data-label-id]").count() >= 1  # imported label
    screenshot(page, "text-sample-detail")
    page.get_by_role("button", name="Close").click()

    # The review list: an unsure mark's review shows the document's start.
    doubted = by_name["n50"]
    assert admin.post(f"/samples/{doubted}/unsure", {"note": "two topics"})
    page.goto(f"/#/projects/{pid}/reviews")
    snippet = page.locator(f'.review[data-review-id] .review-text[data-snippet="{doubted}"][data-filled]')
    snippet.wait_for()
    assert rows[50]["text"].strip().startswith(snippet.inner_text().strip()[:80])
    assert page.locator(".review img").count() == 0

    # Teach by neighbourhood: snippets around a document, with the similarity slider.
    page.goto(f"/#/projects/{pid}/teach?sample={by_name['n60']}")
    wait_until(lambda: page.locator(".thumbs .snippet[data-filled]").count() >= 10, what="neighbour snippets")
    assert page.locator(".thumbs img").count() == 0
    assert page.locator("#teach-threshold").is_visible() and page.get_by_text("Similarity at least").is_visible()
    page.locator("#teach-threshold").fill("0")
    screenshot(page, "text-teach")

    # The label view marks the words that pull towards the suggestion, inside the document.
    page.goto(f"/#/projects/{pid}/label")
    for _ in range(6):
        sid, _name = current_sample(page)
        item = admin.get(f"/samples/{sid}/explanation")
        if item["terms"] and not admin.get(f"/samples/{sid}")["is_audit"]:
            break
        page.keyboard.press("1")
        page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    else:
        raise AssertionError("no explained document among six")
    marks = page.locator("#label-text mark.drove")
    wait_until(lambda: marks.count() > 0, what="marked words")
    terms = {t["term"] for t in item["terms"]}
    marked = marks.evaluate_all("els => els.map(e => e.dataset.term)")
    assert set(marked) <= terms and marked, (marked, terms)
    whole = admin.get(f"/samples/{sid}/text")["text"]
    assert page.locator("#label-text").evaluate("e => e.textContent") == whole  # marks add no text
    assert set(marks.evaluate_all("els => els.map(e => getComputedStyle(e).display)")) == {"inline"}
    screenshot(page, "text-label-why")
    # The recent-labels strip has a mark for each document labelled here, no broken thumbnail.
    page.keyboard.press("2")
    wait_until(lambda: page.locator(".recent-strip .hist-doc").count() >= 1, what="the recent-labels strip")
    assert page.locator(".recent-strip img").count() == 0

    # The guidelines' examples per class (the labelled documents the model is surest of): snippets.
    page.locator("#guidelines summary").click()
    wait_until(lambda: page.locator("#guidelines-examples .example-snippet[data-filled]").count() > 0,
               what="example snippets in the guidelines")
    assert page.locator("#guidelines img").count() == 0

    # Data problems (the train job's label issues, duplicates, outliers): snippets, no thumbnails.
    page.goto(f"/#/projects/{pid}/problems")
    wait_until(lambda: page.locator(".problem-snippet[data-filled]").count() > 0, timeout=30,
               what="snippets in the data problems view")
    assert page.locator("main img").count() == 0
