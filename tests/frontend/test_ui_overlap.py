"""Second opinions on purpose (issue 17, item 3), with a user's eye: two annotators, each in a browser
context of their own, on a project with overlap 100 %: the second is served the very samples the first
labelled, marked as second opinions, without the first label; the dashboard then shows their kappa."""

from __future__ import annotations

import httpx
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.conftest import digits_pngs
from tests.frontend.conftest import Api
from tests.frontend.test_ui import current_sample, wait_until

pytestmark = pytest.mark.browser

PASSWORD = "overlap-password-1"
N = 6


def _project(server) -> tuple[int, dict[str, str]]:
    admin = server.admin
    pid = admin.post("/projects", {"name": "second-opinions-ui", "classes": [str(d) for d in range(10)],
                                   "settings": {"overlap": 1.0, "auto_pretrain": False, "auto_embed": False,
                                                "retrain_every": 1000}})["id"]
    files = digits_pngs(N)
    r = httpx.post(f"{server.url}/api/v1/projects/{pid}/samples", files=[("files", (n, d)) for n, d, _ in files],
                   headers={"Authorization": f"Bearer {admin.token}"}, timeout=60)
    assert r.status_code == 201, r.text
    for name in ("ana", "ben"):
        admin.post("/users", {"username": name, "password": PASSWORD})
        admin.post(f"/projects/{pid}/members", {"username": name, "role": "annotator"})
    return pid, {n: c for n, _, c in files}


def _label_all(pg, pid: int, choose) -> list[tuple[int, str, bool]]:
    """Label every sample the label view serves, with the key ``choose(filename, index)`` names:
    (sample id, class pressed, shown as a second opinion) in the order shown."""
    pg.goto(f"/#/projects/{pid}/label")
    done = []
    for i in range(N):
        sid, filename = current_sample(pg)
        second = pg.locator(".stage").get_attribute("data-second-opinion") == "1"
        if second:
            assert pg.locator(".badge.second-opinion").is_visible()
        cls = choose(filename, i)
        pg.keyboard.press(cls)
        done.append((sid, cls, second))
        pg.locator(f".stage:not([data-sample-id='{sid}'])").wait_for()
    pg.get_by_text("Every sample is labelled or leased to someone else.").wait_for()
    return done


def test_two_annotators_with_overlap_100_get_the_same_samples_and_the_dashboard_shows_their_kappa(
        browser, server, login, screenshot):
    pid, truth = _project(server)
    ana_ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    ben_ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    try:
        ana, ben = ana_ctx.new_page(), ben_ctx.new_page()
        errors: list[str] = []
        for pg in (ana, ben):
            pg.on("pageerror", lambda e: errors.append(str(e)))
        login(ana, "ana", PASSWORD)
        login(ben, "ben", PASSWORD)
        first = _label_all(ana, pid, lambda f, i: truth[f])
        assert not any(second for _, _, second in first)
        wait_until(lambda: server.admin.get(f"/projects/{pid}")["labelled_count"] == N, what="ana's labels stored")

        # ben is served the same samples, each a second opinion. ana's label is in none of what his page
        # asks for: the queue's items carry no label (tests/team/test_overlap.py), and the page never asks
        # for a sample's label or history.
        requests: list[str] = []
        ben.on("request", lambda r: requests.append(r.url))

        def ben_chooses(filename: str, i: int) -> str:
            if i == 0:
                screenshot(ben, "label-second-opinion")
            return truth[filename] if i < N - 2 else str((int(truth[filename]) + 1) % 10)

        second = _label_all(ben, pid, ben_chooses)
        assert sorted(s for s, _, _ in second) == sorted(s for s, _, _ in first)
        assert all(is_second for _, _, is_second in second)
        told = [u for u in requests if any(u.split("?")[0].endswith((f"/samples/{s}", f"/samples/{s}/labels"))
                                           for s, _, _ in first)]
        assert told == [], told
        api = Api(server.url).login("ben", PASSWORD)
        wait_until(lambda: (api.get(f"/projects/{pid}/metrics")["agreement"]["pairs"] or [{}])[0].get("n") == N,
                   what="ben's labels stored as second opinions")

        ana_by = {s: c for s, c, _ in first}
        ben_by = {s: c for s, c, _ in second}
        ids = sorted(ana_by)
        kappa = cohen_kappa_score([ana_by[s] for s in ids], [ben_by[s] for s in ids])
        ben.goto(f"/#/projects/{pid}/dashboard")
        pair = ben.locator("#agreement .agreement-pair[data-pair='ana|ben']")
        pair.wait_for()
        words = pair.inner_text()
        assert f"{N - 2} of {N} shared samples" in words and f"kappa {kappa:.2f}" in words, words
        assert f"Only {N} shared samples" in words  # few samples: said in words, with the interval
        ben.locator("#agreement details.agreement-details summary").click()
        cell = ben.locator("#agreement table[aria-label='Agreement per annotator pair'] td.kappa")
        assert cell.inner_text() == f"{kappa:.2f}"
        screenshot(ben, "dashboard-agreement")
        assert not errors, errors
    finally:
        ana_ctx.close()
        ben_ctx.close()


def test_the_admin_sets_the_overlap_and_its_classes_in_the_settings_form(page, server, login):
    pid = server.admin.post("/projects", {"name": "overlap-settings-ui", "classes": ["cat", "lynx", "dog"],
                                          "settings": {"auto_pretrain": False, "auto_embed": False}})["id"]
    login(page)
    page.goto(f"/#/projects/{pid}/admin/settings")
    page.locator("#set-overlap").fill("0.25")
    page.locator("#set-overlap_classes").fill("lynx, dog")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#toast").filter(has_text="Settings saved").wait_for()
    settings = server.admin.get(f"/projects/{pid}")["settings"]
    assert (settings["overlap"], settings["overlap_classes"]) == (0.25, ["lynx", "dog"])
    # A class the project lacks: the server's sentence, naming the setting and the class.
    page.locator("#set-overlap_classes").fill("lynx, puma")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#toast").filter(has_text="overlap_classes: 'puma' is not a class").wait_for()
    assert server.admin.get(f"/projects/{pid}")["settings"]["overlap_classes"] == ["lynx", "dog"]
