"""In a real browser against `loupe serve`: while a pretraining runs, the label, teach and import views
say so in one line, and the admin's jobs view lists the backbones with why each was used or not (the
rest of background pretraining is tested in tests/scheduling)."""

from __future__ import annotations

import re
import time

STATUS = "#project-status"


def test_the_views_say_what_the_pretraining_means_for_the_expert(page, server, login, screenshot):
    pid = server.project_id
    job = server.admin.post(f"/projects/{pid}/jobs", {"kind": "pretrain", "params": {"budget_seconds": 300}})
    try:
        deadline = time.monotonic() + 60
        while server.admin.get(f"/jobs/{job['id']}")["progress"] < 0.03:
            assert time.monotonic() < deadline, "the pretraining did not start"
            time.sleep(0.3)
        login(page)
        for view in ("label", "teach", "admin/import"):
            page.goto(f"/#/projects/{pid}/{view}")
            status = page.locator(STATUS)
            status.wait_for()
            page.locator(STATUS, has_text="suggestions may").wait_for()
            assert re.search(r"Working: (first backbone training|backbone improving, \d+% trained); suggestions may "
                             r"get better in (about \d+ min|under a minute)", status.text_content()), view
            assert f"job #{job['id']} pretrain: running" in status.get_attribute("title")
        screenshot(page, "status-import")
    finally:
        server.admin.post(f"/jobs/{job['id']}/cancel")
    server.admin.idle(pid)
    page.goto(f"/#/projects/{pid}/admin/jobs")
    page.locator("#backbone-history table, #backbone-history .empty").first.wait_for()
    page.goto(f"/#/projects/{pid}/label")
    page.locator(f"{STATUS}[data-busy='false']").wait_for(state="attached")
    assert page.locator(STATUS).is_hidden()  # nothing running: the line takes no room
