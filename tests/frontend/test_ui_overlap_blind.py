"""A blind second opinion in the Samples view (issue 17 item 3), with a user's eye: an annotator who may
give a sample's second opinion sees no first label on its tile, in its facts or in its history."""

from __future__ import annotations

import pytest

from tests.frontend.test_ui import wait_until
from tests.frontend.test_ui_recent_labels import PASSWORD, _annotator
from tests.frontend.test_ui_samples import _unlabelled

pytestmark = pytest.mark.browser


def test_the_samples_view_hides_a_first_label_awaiting_your_opinion(page, server, login):
    pid = server.project_id
    olga, _ = _annotator(server, "olga"), _annotator(server, "pete")
    target = _unlabelled(server, 1)[0]
    truth = server.true_label(target["filename"])
    server.admin.call("PATCH", f"/projects/{pid}", {"settings": {"overlap": 1.0}})
    try:
        olga.post(f"/projects/{pid}/labels", {"sample_id": target["id"], "label": truth})
        login(page, "pete", PASSWORD)
        page.goto(f"/#/projects/{pid}/samples?q={target['filename']}")
        tile = page.locator(f"#sample-grid .thumb[data-sample-id='{target['id']}']")
        tile.wait_for()
        assert tile.get_attribute("data-label") == "" and "✓" not in tile.inner_text()
        page.get_by_role("button", name=f"Open sample {target['id']}").click()
        dialog = page.locator("#sample-detail")
        dialog.wait_for()
        label = dialog.locator("dd[data-fact='Label']")
        wait_until(lambda: "hidden until you give yours" in label.inner_text(), what="the label hidden")
        assert dialog.locator("#sample-history").inner_text() == "Hidden until you label it."
        assert "Give your opinion" in dialog.inner_text()
        # The admin sees it.
        assert server.admin.get(f"/samples/{target['id']}")["label"] == truth
    finally:
        server.admin.call("PATCH", f"/projects/{pid}", {"settings": {"overlap": 0.0}})
