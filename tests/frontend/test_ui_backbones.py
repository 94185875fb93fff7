"""The admin view's Backbones section in a real browser: a file is checked and registered (or refused
with the reason), listed, and chosen for a project with a mode its format allows."""

from __future__ import annotations

import pytest

# Beside the other browser tests: their session's one Playwright (a second one in the same run fails).
from tests.backbones.conftest import backbone_files  # noqa: F401 - the fixture: real backbone files

pytestmark = pytest.mark.browser


def test_admin_registers_a_backbone_file_and_chooses_it(page, server, login, backbone_files):  # noqa: F811
    # A project of its own, without images: choosing a backbone queues nothing on the shared server.
    pid = server.admin.post("/projects", {"name": "byo-backbone", "classes": ["a", "b"]})["id"]
    login(page)
    page.goto(f"/#/projects/{pid}/admin/backbones")
    page.get_by_text("No backbone files registered yet.").wait_for()

    page.set_input_files("#backbone-file", str(backbone_files["garbage"]))
    page.select_option("#backbone-format", "onnx")
    page.get_by_role("button", name="Check and register").click()
    page.get_by_role("alert").filter(has_text="Not registered: the file is not an ONNX model").wait_for()

    page.set_input_files("#backbone-file", str(backbone_files["onnx"]))
    page.select_option("#backbone-format", "onnx")
    page.fill("#backbone-name", "team onnx")
    page.get_by_role("button", name="Check and register").click()
    page.get_by_text("Registered “team onnx”: it gives 24 features per image, from 32 px inputs.").wait_for()
    row = page.locator("tr[data-backbone]")
    row.filter(has_text="team onnx").wait_for()
    assert row.count() == 1

    page.select_option("#backbone-choice", label="team onnx (onnx, 24 features, 32 px)")
    assert page.locator("#backbone-mode option[value='continue']").is_disabled()  # ONNX: frozen only
    page.get_by_text("can only be used as it is").wait_for()
    page.get_by_role("button", name="Use for this project").click()
    page.get_by_text("Backbone chosen").wait_for()
    settings = server.admin.get(f"/projects/{pid}")["settings"]
    assert (settings["backbone"], settings["backbone_mode"]) == (int(row.get_attribute("data-backbone")), "frozen")
    page.goto(f"/#/projects/{pid}/admin/settings")
    page.locator("#set-estimator").wait_for()
    assert page.locator("#set-backbone").count() == 0  # chosen in its own section only
