"""Notes and doubt in the browser (issue 17 item 4), with a user's eye: an expert marks a sample unsure
with its key and finds it in the review list with their comment; the guidelines sit beside the label
view, rendered safely, with examples per class, and an admin edits them there."""

from __future__ import annotations

import pytest

from tests.frontend.conftest import Api
from tests.frontend.test_ui import current_sample, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "notes-password-1"


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (16, 16), 200).save(out, "PNG")
    return out.getvalue()


def _member(server, username: str, role: str) -> Api:
    server.admin.post("/users", {"username": username, "password": PASSWORD})
    server.admin.post(f"/projects/{server.project_id}/members", {"username": username, "role": role})
    return Api(server.url).login(username, PASSWORD)


def test_unsure_key_sends_the_sample_to_review_with_its_comment(page, server, login):
    pid = server.project_id
    _member(server, "uma", "reviewer")  # labels, and settles reviews
    login(page, "uma", PASSWORD)
    page.goto(f"/#/projects/{pid}/label")

    # U, then Backspace: the mark is taken back and the sample is on screen again, unlabelled.
    first, _ = current_sample(page)
    page.keyboard.press("u")
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{first}'])").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{first}")["status"] == "unsure", what="the first mark")
    page.keyboard.press("Backspace")
    page.locator(f".stage[data-sample-id='{first}']").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{first}")["status"] == "unlabelled", what="the mark undone")

    # A comment, then U: the sample (the same one, back on screen) leaves the queue for the review list.
    sid, filename = current_sample(page)
    assert sid == first
    page.locator("#comments-box summary").click()
    page.locator("#comment-text").fill("the loop is open at the top: a 9 or a 4?")
    page.locator("#comment-send").click()
    page.locator("#comments .comment", has_text="the loop is open at the top").wait_for()
    page.locator("#label-image").click()  # focus back on the view: keys are shortcuts again
    page.keyboard.press("u")
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{sid}")["status"] == "unsure", what="the mark stored")
    history = server.admin.get(f"/samples/{sid}/labels")
    # Every mark kept, the one taken back with its undo. (The queue may serve a sample another test of this
    # shared server labelled and undid before: its history starts with that, and uma's follows.)
    assert [(h["action"], h["username"]) for h in history if h["username"] == "uma"] == [
        ("unsure", "uma"), ("undo", "uma"), ("unsure", "uma")]
    assert server.admin.get(f"/samples/{sid}")["label"] is None  # not a label

    # In the review list: why, who, and the comment; a class key settles it.
    page.goto(f"/#/projects/{pid}/reviews")
    review = page.locator(f".review[aria-label='Review of sample {sid}']")
    review.wait_for()
    assert "An expert is unsure" in review.inner_text()
    assert "marked unsure by uma" in review.inner_text()
    assert "the loop is open at the top" in review.inner_text()
    truth = server.true_label(filename)
    review.get_by_role("button", name=f"Resolve as {truth}").click()
    wait_until(lambda: server.admin.get(f"/samples/{sid}")["status"] == "labelled", what="the decision")
    assert server.admin.get(f"/samples/{sid}")["label"] == truth


GUIDE = """## How to tell a 1 from a 7

A **7** has a bar at the top; a 1 has none.

<script>window.__owned = 1</script>

![a clear seven](sample:{seven})

[never](javascript:window.__owned=2)
"""


def test_guidelines_beside_the_label_view(page, browser, server, login):
    pid = server.project_id
    _member(server, "gil", "annotator")
    items = server.admin.get(f"/projects/{pid}/samples?status=unlabelled&limit=1000")["items"]
    cls = server.true_label(items[0]["filename"])  # the demo's files come in class order: two of the first class
    sevens = [s for s in items if server.true_label(s["filename"]) == cls][:2]
    server.admin.post(f"/projects/{pid}/labels", [{"sample_id": s["id"], "label": cls} for s in sevens])
    seven = sevens[0]["id"]
    server.admin.call("PUT", f"/projects/{pid}/guidelines",
                      {"markdown": GUIDE.format(seven=seven), "examples": {cls: [sevens[1]["id"]]}})

    login(page, "gil", PASSWORD)
    page.goto(f"/#/projects/{pid}/label")
    current_sample(page)
    panel = page.locator("#guidelines")
    if not panel.evaluate("el => el.open"):
        panel.locator("summary").click()
    body = page.locator("#guidelines-body")
    body.locator("h2", has_text="How to tell a 1 from a 7").wait_for()
    assert body.locator("strong", has_text="7").count() == 1
    # The script is text on the page, never an element, and never ran; the javascript: link is no link.
    assert "<script>window.__owned = 1</script>" in body.inner_text()
    assert body.locator("script").count() == 0 and page.evaluate("window.__owned") is None
    assert body.locator("a[href^='javascript']").count() == 0
    img = body.locator(f"img[src='/api/v1/samples/{seven}/image']")
    img.wait_for()
    wait_until(lambda: img.evaluate("i => i.complete && i.naturalWidth > 0"), what="the sample's image shown")
    example = page.locator(f"#guidelines-examples .example-row[data-class='{cls}'] img")
    example.first.wait_for()
    assert example.first.get_attribute("src") == f"/api/v1/samples/{sevens[1]['id']}/thumbnail"
    assert page.locator("#guidelines-edit").count() == 0  # an annotator reads; an admin edits

    # The admin edits them beside the label view; the annotator's next visit shows the new text.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    page = context.new_page()  # the admin's own browser
    login(page, "admin", "admin-password-1")
    page.goto(f"/#/projects/{pid}/label")
    current_sample(page)
    if not page.locator("#guidelines").evaluate("el => el.open"):
        page.locator("#guidelines summary").click()
    page.locator("#guidelines-edit").click()
    page.locator("#guidelines-markdown").fill("Count the *strokes*.\n\n")
    # An image of their own: uploaded, its Markdown put in the text, shown once saved.
    page.locator("#guidelines-image").set_input_files(
        files=[{"name": "bar.png", "mimeType": "image/png", "buffer": _png()}])
    wait_until(lambda: "](image:" in page.locator("#guidelines-markdown").input_value(), what="the image's Markdown")
    page.locator("#guidelines-save").click()
    page.locator("#guidelines-body em", has_text="strokes").wait_for()
    uploaded = page.locator("#guidelines-body img[alt='bar.png']")
    uploaded.wait_for()
    wait_until(lambda: uploaded.evaluate("i => i.complete && i.naturalWidth > 0"), what="the uploaded image shown")
    assert server.admin.get(f"/projects/{pid}/guidelines")["markdown"].startswith("Count the *strokes*.")
    context.close()
