"""(Issue 14, trust.) The label view's project counter and the dashboard's figures after undo and relabel,
in a browser. After test_ui.py, on its server (one Playwright per session)."""

from __future__ import annotations

import re

import pytest

from tests.frontend.test_ui import current_sample, labelled, wait_until

pytestmark = pytest.mark.browser


def _key(server, filename: str) -> str:
    """The true class's key; "0" for the blank image test_ui.py's import test adds to the shared project
    (it has no class: the queue may serve it here, and the counter is what this test is about)."""
    label = server.true_label(filename)
    return label if label.isdigit() else "0"


def _shown(page) -> int:
    return int(re.match(r"([\d,]+) /", page.locator("#project-count").inner_text()).group(1).replace(",", ""))


def test_the_label_views_counter_stays_true_through_undo_and_relabel(page, server, login):
    pid = server.project_id
    server.admin.idle(pid)
    login(page)
    page.goto(f"/#/projects/{pid}/label")
    page.locator(".stage[data-ready]:not([data-ready='0']):not([data-ready='1'])").wait_for()
    # Why it is asked: in words; the technical detail is one click away.
    assert page.locator(".why-reason").inner_text().strip()
    details = page.locator("details.why-details")
    assert details.get_attribute("open") is None and not page.get_by_text("strategy ", exact=False).first.is_visible()
    details.locator("summary").click()
    assert "score" in details.inner_text()
    # Quick keys (the metrics refresh every fifth label races the labels in flight), undos and
    # relabels of the undone samples.
    for _round in range(4):
        for _ in range(5):
            _, filename = current_sample(page)
            sid = current_sample(page)[0]
            page.keyboard.press(_key(server, filename))
            page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
        for _ in range(2):
            page.keyboard.press("Backspace")
            page.wait_for_timeout(50)
        for _ in range(2):  # label the undone ones again (they come back to the front)
            sid, filename = current_sample(page)
            page.keyboard.press(_key(server, filename))
            page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    truth = labelled(server)
    wait_until(lambda: _shown(page) == labelled(server), timeout=10,
               what=f"the counter ({_shown(page)}) to equal the project's labelled samples ({truth})")
    # One more refresh while nothing is in flight: still equal.
    for _ in range(5):
        sid, filename = current_sample(page)
        page.keyboard.press(_key(server, filename))
        page.locator(f".stage[data-sample-id]:not([data-sample-id='{sid}'])").wait_for()
    wait_until(lambda: _shown(page) == labelled(server), timeout=10, what="the counter after a refresh")
    page.wait_for_timeout(1500)
    assert _shown(page) == labelled(server)


def test_the_dashboard_and_card_say_what_their_figures_rest_on(page, server, login):
    pid = server.project_id
    login(page)
    card = page.locator(".project-card[data-project='digits-demo'] .acc")
    project = server.admin.get(f"/projects/{pid}")
    if project["accuracy_estimate"] is not None:
        card.filter(has_text="95% CI").wait_for()
        assert f"model v{project['current_model_number']}" in card.inner_text()
    page.goto(f"/#/projects/{pid}/dashboard")
    page.locator("#stat-retrain").wait_for()
    m = server.admin.get(f"/projects/{pid}/metrics")
    retrain = page.locator("#stat-retrain").inner_text()
    if m["retrain"]["job"] is None:
        assert "due" not in retrain and "queued" not in retrain
    if m["accuracy_estimate"] is not None:
        assert "95% CI" in page.locator("#stat-accuracy").inner_text()
        assert "audit label" in page.locator("#stat-accuracy").inner_text()
        assert f"v{m['model_number']}" in page.locator("#stat-model").inner_text()
