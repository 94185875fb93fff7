"""Doubt with a user's eye (issue 17 item 4): a sample marked unsure shows on the dashboard in plain
words, and Backspace takes the mark back after a reload, as it takes back a label."""

from __future__ import annotations

import pytest

from tests.frontend.conftest import ADMIN_PASSWORD
from tests.frontend.test_ui import current_sample, wait_until
from tests.frontend.test_ui_recent_labels import PASSWORD, _annotator

pytestmark = pytest.mark.browser


def test_backspace_after_a_reload_takes_back_an_unsure_mark(page, server, login):
    pid = server.project_id
    api = _annotator(server, "ulla")
    login(page, "ulla", PASSWORD)
    page.goto(f"/#/projects/{pid}/label")
    labelled, filename = current_sample(page)
    page.keyboard.press(server.true_label(filename))
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{labelled}'])").wait_for()
    marked, _ = current_sample(page)
    page.keyboard.press("u")
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{marked}'])").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{marked}")["status"] == "unsure", what="the mark stored")
    wait_until(lambda: server.admin.get(f"/samples/{labelled}")["status"] == "labelled", what="the label stored")

    # The dashboard says it, in words.
    page.goto(f"/#/projects/{pid}/dashboard")
    stat = page.locator("#stat-unsure")
    stat.wait_for()
    assert stat.locator(".stat-value").inner_text() == str(server.admin.get(f"/projects/{pid}/metrics")["unsure_count"])
    assert "waiting for a reviewer's decision" in stat.inner_text()

    # A reload: the page's own undo stack is gone; Backspace asks the server for the newest, the mark.
    page.goto(f"/#/projects/{pid}/label")
    page.reload()
    page.locator(".stage[data-sample-id]").wait_for()
    page.keyboard.press("Backspace")
    page.locator(f".stage[data-sample-id='{marked}']").wait_for()  # the sample back on screen
    wait_until(lambda: server.admin.get(f"/samples/{marked}")["status"] == "unlabelled", what="the mark taken back")
    # Said in words, and not wiped by a notice of the service's own (a new model's arrived here once).
    wait_until(lambda: "no longer marked unsure" in page.locator("#toast").inner_text(), what="the undo said")
    page.wait_for_timeout(1000)
    assert "no longer marked unsure" in page.locator("#toast").inner_text()
    assert [h["action"] for h in server.admin.get(f"/samples/{marked}/labels")] == ["unsure", "undo"]
    assert server.admin.get(f"/samples/{labelled}")["status"] == "labelled"  # the label before it stays
    # The next Backspace takes back the label before it (the mark is no longer live).
    page.keyboard.press("Backspace")
    page.locator(f".stage[data-sample-id='{labelled}']").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{labelled}")["status"] == "unlabelled", what="the label undone")
    assert [(i["action"], i["live"]) for i in api.get(f"/projects/{pid}/labels/mine")["items"]] == \
        [("unsure", False), ("set", False)]


def test_a_notice_of_the_service_waits_until_the_users_own_confirmation_has_had_its_time(page, server, login):
    """The toast is one slot: a new model's notice, arriving as the expert presses a key, wiped the
    confirmation of that key (seen in a loaded run of the test above). It now waits its turn."""
    login(page, "admin", ADMIN_PASSWORD)
    page.goto(f"/#/projects/{server.project_id}/label")
    page.locator(".stage[data-sample-id]").wait_for()
    shown = page.evaluate("""async () => {
        const { toast } = await import("/js/dom.js");
        toast("The mark on #7 was taken back: no longer marked unsure.", "ok", 1500);
        toast("Model v9 is ready: your queue now follows it.", "ok", 1500, { notice: true });
        return document.getElementById("toast").textContent;
    }""")
    assert shown.startswith("The mark on #7 was taken back"), shown
    wait_until(lambda: page.locator("#toast").inner_text().startswith("Model v9 is ready"),
               what="the notice shown after")
    # The user's own answers still replace at once (an error must never wait behind a notice).
    page.evaluate("""async () => {
        const { toast } = await import("/js/dom.js");
        toast("Not saved: offline", "error");
    }""")
    assert page.locator("#toast").inner_text() == "Not saved: offline"
