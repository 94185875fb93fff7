"""The admin's backbone input size section: what each size costs on this machine, and the change saved."""

from __future__ import annotations


def test_admin_sees_the_cost_of_an_input_size_and_changes_it(page, server, login, screenshot):
    pid = server.project_id
    login(page)
    page.goto(f"/#/projects/{pid}/admin/settings")
    section = page.locator("#input-size")
    section.get_by_text("takes effect at the next pretraining").wait_for()
    assert page.locator("#set-input_size").count() == 0  # not twice: only in its own section
    page.get_by_label("Automatic").uncheck()
    page.get_by_label("Input size in pixels").fill("48")
    cost = page.locator("#input-size-cost")
    cost.get_by_text("48 px").wait_for()
    text = cost.inner_text()
    assert "images/s" in text and "sees each of the" in text and "times" in text, text
    screenshot(page, "admin-input-size")
    page.get_by_role("button", name="Save input size").click()
    page.get_by_text("Input size 48 px from the next pretraining").wait_for()
    assert server.admin.get(f"/projects/{pid}")["settings"]["input_size"] == 48
    page.get_by_label("Input size in pixels").fill("50")  # not a multiple of 4: refused, nothing saved
    page.get_by_role("button", name="Save input size").click()
    page.locator("#toast").filter(has_text="multiple of 4").wait_for()  # the refusal, not the field hint
    assert server.admin.get(f"/projects/{pid}")["settings"]["input_size"] == 48
    page.get_by_label("Automatic").check()  # the session's server is shared: leave it automatic
    page.get_by_role("button", name="Save input size").click()
    page.get_by_text("Input size: automatic").wait_for()
    assert server.admin.get(f"/projects/{pid}")["settings"]["input_size"] is None
