"""The label view's undo after a reload, and its "My recent labels" strip (issue 17, item 2)."""

from __future__ import annotations

import re

import pytest

from tests.frontend.conftest import Api
from tests.frontend.test_ui import current_sample, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "recent-password-1"


def _annotator(server, username: str) -> Api:
    # An annotator of their own, so "their newest live label" is the one of this test.
    server.admin.post("/users", {"username": username, "password": PASSWORD})
    server.admin.post(f"/projects/{server.project_id}/members", {"username": username, "role": "annotator"})
    return Api(server.url).login(username, PASSWORD)


def _counts(page) -> tuple[int, int]:
    """(this session, labelled in the project) as the label view shows them."""
    project = re.match(r"([\d,]+) /", page.locator("#project-count").inner_text()).group(1)
    return int(page.locator("#session-count").inner_text()), int(project.replace(",", ""))


def _label_three(page, server, api: Api) -> list[int]:
    """Label three samples with keys; their ids, newest first as the server stored them."""
    page.goto(f"/#/projects/{server.project_id}/label")
    done: list[int] = []
    for _ in range(3):
        sid, filename = current_sample(page)
        page.keyboard.press(server.true_label(filename))
        done.append(sid)
        page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    mine = lambda: [r["sample_id"] for r in api.get(f"/projects/{server.project_id}/labels/mine")["items"]]  # noqa: E731
    try:
        # As a set: the three POSTs go out together, and may be stored (given ids) in another order.
        wait_until(lambda: sorted(mine()) == sorted(done), timeout=60, what="three labels stored")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: shown {done[::-1]}, stored {mine()}, "
                             f"toast {page.locator('#toast').inner_text()!r}") from None
    return mine()  # newest first, as the server orders them


def test_undo_after_a_reload_takes_back_the_newest_label(page, server, login):
    api = _annotator(server, "rhea")
    login(page, "rhea", PASSWORD)
    done = _label_three(page, server, api)
    newest = done[0]
    strip = page.locator(".recent-strip")
    strip.locator(f".hist[data-sample-id='{newest}']").wait_for()

    page.reload()
    page.locator(".stage[data-sample-id]").wait_for()
    # The strip is read from the server: the three labels are there after the reload, newest first.
    strip.locator(f".hist[data-sample-id='{done[-1]}']").wait_for()
    assert [int(x) for x in strip.locator(".hist").evaluate_all("els => els.map(e => e.dataset.sampleId)")][:3] \
        == done
    page.keyboard.press("Backspace")
    page.locator(f".stage[data-sample-id='{newest}']").wait_for()  # the undone sample, on screen again
    wait_until(lambda: server.admin.get(f"/samples/{newest}/labels")[-1]["action"] == "undo", what="the undo")
    assert server.admin.get(f"/samples/{newest}")["status"] == "unlabelled"
    assert all(server.admin.get(f"/samples/{s}")["status"] == "labelled" for s in done[1:])
    strip.locator(f".hist.undone[data-sample-id='{newest}']").wait_for()
    items = api.get(f"/projects/{server.project_id}/labels/mine")["items"]
    assert [r["live"] for r in items] == [False, True, True]


def test_a_strip_item_reopens_its_sample_and_a_new_label_replaces_it(page, server, login):
    pid = server.project_id
    api = _annotator(server, "cato")
    login(page, "cato", PASSWORD)
    done = _label_three(page, server, api)
    first = done[0]
    truth = server.admin.get(f"/samples/{first}")["label"]
    other = str((int(truth) + 1) % 10)

    # With the keyboard: Tab reaches the strip item, Enter opens it (not "accept").
    session, project = _counts(page)
    item = page.locator(f".recent-strip .hist[data-sample-id='{first}']")
    item.focus()
    page.keyboard.press("Enter")
    page.locator(f".stage[data-sample-id='{first}']").wait_for()
    assert truth in page.locator(".why-reason").inner_text()
    page.keyboard.press(other)
    page.locator(f".stage[data-sample-id]:not([data-sample-id='{first}'])").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{first}")["label"] == other, what="the correction stored")
    assert _counts(page) == (session + 1, project)  # a label of this session, not one more labelled sample
    history = server.admin.get(f"/samples/{first}/labels")
    # cato's own revisions: an earlier test on the shared server may have labelled and undone this sample.
    assert [(h["action"], h["label"], h["username"]) for h in history if h["username"] == "cato"] == \
        [("set", truth, "cato"), ("set", other, "cato")]
    assert item.locator(".hist-label").inner_text() == other
    newest = api.get(f"/projects/{pid}/labels/mine?limit=1")["items"][0]
    assert (newest["sample_id"], newest["label"], newest["live"]) == (first, other, True)

    # A click works as well, and the undo of a correction gives the earlier label back.
    page.locator(f".recent-strip .hist[data-sample-id='{done[1]}']").click()
    page.locator(f".stage[data-sample-id='{done[1]}']").wait_for()
    page.keyboard.press("Backspace")  # the page's own newest: the correction of the first
    page.locator(f".stage[data-sample-id='{first}']").wait_for()
    wait_until(lambda: server.admin.get(f"/samples/{first}")["label"] == truth, what="the earlier label back")


def test_labels_reach_the_server_in_the_order_they_were_given(page, server, login):
    """A slow network for one label (its request held back in the browser for a moment) must not let the
    next key's label be stored first: the annotator's undo takes back the label they gave last, and the
    server allows an annotator to undo only their newest (it answered 403 when the two were stored out of
    order)."""
    api = _annotator(server, "otto")
    login(page, "otto", PASSWORD)
    held = {"n": 0}

    def hold_the_first(route):
        if held["n"] == 0:
            held["n"] += 1
            page.wait_for_timeout(800)
        route.continue_()

    def hold_the_undo(route):
        page.wait_for_timeout(1500)  # by then the held label has arrived too
        route.continue_()

    page.goto(f"/#/projects/{server.project_id}/label")
    page.route(re.compile(r".*/projects/\d+/labels$"), hold_the_first)
    page.route(re.compile(r".*/api/v1/labels/\d+$"), hold_the_undo)
    given = []
    for _ in range(2):
        sid, filename = current_sample(page)
        page.keyboard.press(server.true_label(filename))
        given.append(sid)
        page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    page.keyboard.press("Backspace")
    page.locator(f".stage[data-sample-id='{given[-1]}']").wait_for()

    def history(sid: int) -> list[str]:
        """otto's own revisions of the sample: on the shared server an earlier test may have labelled and
        undone the same sample (a fresh clone served one: its history began with another's set and undo)."""
        page.wait_for_timeout(100)  # the held requests' handlers run only while Playwright is called
        return [h["action"] for h in api.get(f"/samples/{sid}/labels") if h["username"] == "otto"]

    try:
        wait_until(lambda: history(given[-1]) == ["set", "undo"], timeout=30, what="the last label undone")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: given {given}, stored {[history(s) for s in given]}, "
                             f"toast {page.locator('#toast').inner_text()!r}") from None
    try:
        wait_until(lambda: history(given[0]) == ["set"], timeout=30, what="the first label stored and kept")
    except AssertionError as exc:
        everyone = [(h["username"], h["action"]) for h in api.get(f"/samples/{given[0]}/labels")]
        raise AssertionError(f"{exc}: the first sample's whole history {everyone}") from None
