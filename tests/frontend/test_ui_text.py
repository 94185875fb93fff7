"""The label view of a text project (issue 19): the document in place of the image, a long one
scrolling with its start in view, and a class key labels it."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.frontend.test_ui import current_sample, wait_until
from tests.text.test_text_import import CLASSES, ag_news

pytestmark = pytest.mark.browser


def test_a_text_projects_label_view_shows_the_document_and_labels_with_a_key(page, server, login, screenshot):
    admin = server.admin
    # No embedding: the queue serves the documents in random order, each carrying its text.
    pid = admin.post("/projects", {"name": "news-ui", "kind": "text", "classes": CLASSES,
                                   "settings": {"auto_embed": False, "auto_pretrain": False}})["id"]
    rows = ag_news(60)
    # Long documents (about 6,000 characters, many paragraphs): the view must scroll, from the top.
    docs = ["\n\n".join(r["text"].strip() for r in rows[i:i + 30]) for i in (0, 30)]
    body = "\n".join(json.dumps({"text": d}) for d in docs).encode()
    r = httpx.post(f"{server.url}/api/v1/projects/{pid}/samples", files=[("files", ("long.jsonl", body))],
                   headers={"Authorization": f"Bearer {admin.token}"}, timeout=60)
    assert r.status_code == 201, r.text

    login(page)
    page.goto(f"/#/projects/{pid}/label")
    sid, _ = current_sample(page)
    text = page.locator("#label-text")
    text.wait_for()
    assert page.locator("#label-image").is_hidden() and page.locator(".viewport").is_hidden()
    whole = admin.get(f"/samples/{sid}/text")["text"]
    assert len(whole) > 2000 and whole in docs
    # The whole document (the queue item carries 2,000 characters; the rest is fetched), from its start.
    wait_until(lambda: text.inner_text().strip() == whole.strip(), what="the whole document shown")
    geometry = text.evaluate("e => [e.scrollTop, e.scrollHeight, e.clientHeight]")
    assert geometry[0] == 0 and geometry[1] > geometry[2], geometry  # scrolls, start visible
    assert text.evaluate("e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }")
    screenshot(page, "label-text")

    # The class keys work as for images: "2" is Sports.
    button = page.get_by_role("button", name=f"Label as {CLASSES[1]} (key 2)")
    assert button.is_visible()
    page.keyboard.press("2")
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    wait_until(lambda: admin.get(f"/samples/{sid}")["label"] == CLASSES[1], what="the label stored")
    nxt, _ = current_sample(page)
    other = admin.get(f"/samples/{nxt}/text")["text"]
    wait_until(lambda: text.inner_text().strip() == other.strip(), what="the next document shown")
    assert text.evaluate("e => e.scrollTop") == 0
