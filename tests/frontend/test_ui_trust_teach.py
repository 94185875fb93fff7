"""(Issue 14, trust.) Teach by neighbourhood labels what the user's threshold covers and nothing else,
with the label a person chose, and asks before a large batch (browser, real server and worker, the digits
demo). After test_ui.py, on its server (one Playwright per session)."""

from __future__ import annotations

import math

import pytest

from tests.frontend.test_ui import label_true, labelled, train, wait_until

pytestmark = pytest.mark.browser


def _tiles(page) -> dict[int, tuple[float, str, bool]]:
    """Every tile on screen: sample id -> (confidence or similarity, suggested class, ticked)."""
    return {int(t["id"]): (float(t["v"] or 0), t["s"], t["in"]) for t in page.eval_on_selector_all(
        ".thumb", "els => els.map(e => ({id: e.dataset.sampleId, v: e.dataset.value, s: e.dataset.suggested,"
                  " in: e.classList.contains('in')}))")}


def _apply(page, server, n: int) -> None:
    before = labelled(server)
    page.locator("#teach-apply").click()
    if n > 20:  # a large batch asks first, naming the count
        bar = page.locator("#teach-confirm")
        bar.wait_for()
        assert f"Label {n} samples" in bar.inner_text()
        assert labelled(server) == before  # nothing yet
        page.locator("#teach-confirm-yes").click()
    try:
        wait_until(lambda: labelled(server) == before + n, what=f"{n} labelled")
    except AssertionError as exc:  # say what was stored and what the page and the server said
        toasts = page.eval_on_selector_all(".toast", "els => els.map(e => e.innerText)")
        raise AssertionError(f"{exc}: {labelled(server) - before} of {n} labelled; toasts {toasts}; "
                             f"server log:\n{server.log.read_text()[-3000:]}") from None
    page.locator("#teach-undo").wait_for()


def _floor(x: float) -> float:
    return math.floor(x * 100) / 100


def test_two_batches_in_a_row_label_only_what_the_threshold_covers(page, server, login):
    pid = server.project_id
    server.admin.idle(pid)
    label_true(server, 60)
    train(server)
    counts = {c: len(server.admin.get(f"/projects/{pid}/suggestions?label={c}&limit=500")["items"])
              for c in [str(i) for i in range(10)]}
    cls = max(counts, key=counts.get)
    login(page)
    page.goto(f"/#/projects/{pid}/teach")
    page.locator(".thumb").first.wait_for()
    assert page.locator("#teach-threshold").input_value() == "0.95"  # an absolute default
    page.select_option("#teach-class", cls)
    page.get_by_text(f"suggests as “{cls}”").wait_for()
    assert page.locator("#teach-apply-label").input_value() == cls  # the class the user chose to review

    # Batch 1: the user sets the threshold to cover about a dozen tiles and unticks one.
    values = sorted((v for v, _, _ in _tiles(page).values()), reverse=True)
    t1 = _floor(values[11])
    page.locator("#teach-threshold").fill(str(t1))
    tiles = _tiles(page)
    ticked = {sid for sid, (v, _, on) in tiles.items() if on}
    assert ticked == {sid for sid, (v, _, _) in tiles.items() if v >= t1}
    no = sorted(ticked)[0]
    page.locator(f".thumb[data-sample-id='{no}'] input[type=checkbox]").uncheck()
    ticked.discard(no)
    _apply(page, server, len(ticked))

    # The grid reloads: the threshold stays where the user put it, the unticked tile stays unticked,
    # and what is ticked is exactly what that threshold covers.
    page.wait_for_function(f"!document.querySelector(\".thumb[data-sample-id='{sorted(ticked)[0]}']\")")
    page.locator(".thumb").first.wait_for()  # the grid is cleared first, then filled again
    assert page.locator("#teach-threshold").input_value() == str(t1)
    tiles = _tiles(page)
    assert {sid for sid, (_, _, on) in tiles.items() if on} == {
        sid for sid, (v, _, _) in tiles.items() if v >= t1 and sid != no}

    # Batch 2: the user lowers it to cover more than twenty: a confirmation names the count.
    values = sorted((v for sid, (v, _, _) in tiles.items() if sid != no), reverse=True)
    t2 = _floor(values[min(24, len(values) - 1)])
    page.locator("#teach-threshold").fill(str(t2))
    tiles = _tiles(page)
    second = {sid for sid, (_, _, on) in tiles.items() if on}
    assert second == {sid for sid, (v, _, _) in tiles.items() if v >= t2 and sid != no} and len(second) > 20
    assert page.locator("#teach-disagree").get_attribute("data-count") == "0"  # all suggested as cls
    _apply(page, server, len(second))

    for sid in ticked | second:
        assert server.admin.get(f"/samples/{sid}")["label"] == cls
    assert server.admin.get(f"/samples/{no}")["status"] == "unlabelled"


def test_the_label_to_apply_is_never_the_models_guess(page, server, login):
    pid = server.project_id
    server.admin.idle(pid)
    if server.admin.get(f"/projects/{pid}")["current_model_version"] is None:
        label_true(server, 40)
        train(server)
    login(page)
    page.goto(f"/#/projects/{pid}/teach")
    page.locator(".thumb").first.wait_for()
    assert page.locator("#teach-apply-label").input_value() == ""  # nobody chose one yet
    assert page.locator("#teach-apply").is_disabled()

    # Around an unlabelled sample: empty until chosen, whatever the model guesses for it.
    items = server.admin.get(f"/projects/{pid}/samples?status=unlabelled&limit=50")["items"]
    anchor = items[7]
    page.goto(f"/#/projects/{pid}/teach?sample={anchor['id']}")
    page.get_by_text(f"nearest to #{anchor['id']}").wait_for()
    assert page.locator("#teach-apply-label").input_value() == ""
    assert page.locator("#teach-apply").is_disabled()
    truth = server.true_label(anchor["filename"])
    page.select_option("#teach-apply-label", truth)
    # The grid says how many ticked tiles the current model disagrees with.
    page.locator("#teach-threshold").fill("0.5")
    tiles = _tiles(page)
    against = sum(1 for _, s, on in tiles.values() if on and s and s != truth)
    assert page.locator("#teach-disagree").get_attribute("data-count") == str(against)
    assert page.locator(".thumb.in.disagree").count() == against

    # Around a sample a person labelled: that label.
    done = server.admin.get(f"/projects/{pid}/samples?status=labelled&limit=1")["items"][0]
    page.goto(f"/#/projects/{pid}/teach?sample={done['id']}")
    page.get_by_text(f"nearest to #{done['id']}").wait_for()
    assert page.locator("#teach-apply-label").input_value() == done["label"]
