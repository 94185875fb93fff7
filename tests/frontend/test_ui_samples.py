"""The Samples view (issue 17, item 1), as an expert uses it: filter the grid, open a sample at full
size, correct its label, and see the history show the new revision; tick several and label them at once."""

from __future__ import annotations

import pytest

from tests.frontend.test_ui import wait_until

pytestmark = pytest.mark.browser


def _unlabelled(server, n: int) -> list[dict]:
    """n unlabelled demo samples from the end of the pool (the label view's tests take theirs from the queue).

    Only the demo's own '<digit>/NNNN.png' files: other tests share this server and import files of their own
    (test_ui's 'new/fresh.png'), whose folder is no class and whose truth is unknown.
    """
    pid = server.project_id
    items = server.admin.get(f"/projects/{pid}/samples?status=unlabelled&sort=-created&limit={n + 20}")["items"]
    demo = [s for s in items if s["filename"].split("/")[0].isdigit()]
    assert len(demo) >= n, f"fewer than {n} unlabelled demo samples left: {items}"
    return demo[:n]


def test_filter_open_correct_and_see_the_history(page, server, login, screenshot):
    pid = server.project_id
    target, other = _unlabelled(server, 2)
    truth = server.true_label(target["filename"])
    server.admin.post(f"/projects/{pid}/labels", {"sample_id": target["id"], "label": truth})
    wrong = str((int(truth) + 1) % 10)

    login(page)
    page.goto(f"/#/projects/{pid}/samples")
    grid = page.locator("#sample-grid")
    grid.locator(".thumb").first.wait_for()
    assert page.locator(".tabs a[data-tab='samples']").get_attribute("aria-current") == "page"

    # Filter: labelled only, newest first (other tests on this server label many), then by file name: the
    # one sample. The grid shows the last page until the next arrives: wait for the filtered one.
    page.select_option("#samples-sort", "-created")
    page.select_option("#samples-status", "labelled")
    wait_until(lambda: "status=labelled" in (grid.get_attribute("data-shown") or ""), what="the labelled filter")
    wait_until(lambda: grid.locator(".thumb").count() > 0 and all(
        lab for lab in grid.locator(".thumb").evaluate_all("els => els.map(e => e.dataset.label)")),
        what="only labelled samples shown")
    assert grid.locator(f".thumb[data-sample-id='{target['id']}']").count() == 1
    assert grid.locator(f".thumb[data-sample-id='{other['id']}']").count() == 0
    page.fill("#samples-q", target["filename"])
    page.locator("#samples-q").press("Enter")
    wait_until(lambda: grid.locator(".thumb").evaluate_all("els => els.map(e => Number(e.dataset.sampleId))")
               == [target["id"]], what="the file-name filter")
    assert "status=labelled" in page.url and "q=" in page.url  # the filters are in the address

    # Open it: the image at full size, one revision in its history.
    page.get_by_role("button", name=f"Open sample {target['id']}").click()
    dialog = page.locator("#sample-detail")
    dialog.wait_for()
    wait_until(lambda: page.evaluate("() => { const i = document.getElementById('sample-full');"
                                     " return i && i.complete && i.naturalWidth > 0; }"), what="the full image")
    rows = dialog.locator("#sample-history tbody tr")
    assert rows.count() == 1 and truth in rows.first.inner_text()
    # Each heading stands over its column (the label view's flex strip once shared the table's class and
    # laid the headings out as a row of chips beside the cells).
    columns = page.evaluate("() => [...document.querySelectorAll('#sample-history thead th')].map((th, i) => {"
                            " const td = document.querySelector(`#sample-history tbody tr td:nth-child(${i + 1})`);"
                            " const a = th.getBoundingClientRect(), b = td.getBoundingClientRect();"
                            " return [a.left, b.left, a.width, b.width].map(Math.round); })")
    assert len(columns) == 6 and all(th_x == td_x and th_w == td_w for th_x, td_x, th_w, td_w in columns), columns
    screenshot(page, "samples-detail")

    # Correct it: the new revision tops the history, the sample's label changed on the server too.
    dialog.get_by_role("button", name=f"Label as {wrong}").click()
    wait_until(lambda: rows.count() == 2, what="the correction in the history")
    newest = rows.first.inner_text()
    assert wrong in newest and "admin" in newest
    assert server.admin.get(f"/samples/{target['id']}")["label"] == wrong
    assert dialog.locator("[data-fact='Label']").inner_text() == wrong
    dialog.get_by_role("button", name="Close").click()
    assert grid.locator(f".thumb[data-sample-id='{target['id']}']").get_attribute("data-label") == wrong


def test_select_several_and_label_them_at_once(page, server, login, screenshot):
    pid = server.project_id
    picks = _unlabelled(server, 3)
    login(page)
    page.goto(f"/#/projects/{pid}/samples?status=unlabelled&sort=-created")
    grid = page.locator("#sample-grid")
    for s in picks:
        grid.locator(f".thumb[data-sample-id='{s['id']}'] input[type=checkbox]").check()
    assert page.locator("#samples-selected").inner_text() == "3"
    screenshot(page, "samples")
    page.select_option("#samples-bulk-label", "4")
    page.locator("#samples-bulk-apply").click()
    wait_until(lambda: all(server.admin.get(f"/samples/{s['id']}")["label"] == "4" for s in picks),
               what="the three labelled")
    # The grid reloads with its filter: the three are no longer unlabelled.
    wait_until(lambda: not ({s["id"] for s in picks} & set(grid.locator(".thumb").evaluate_all(
        "els => els.map(e => Number(e.dataset.sampleId))"))), what="the grid reloaded")
