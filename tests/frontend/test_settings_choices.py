"""The admin's settings form offers exactly the ml registries' estimators, strategies, self-supervised
methods and embedding layers (it once carried lists of its own, which lacked co-training and VICReg), and a
choice made there is what the project then has."""

from __future__ import annotations

from app.services.project_settings import EMBEDDING_LAYERS, NOT_PROJECT_ESTIMATORS


def _options(page, key: str) -> list[str]:
    return page.locator(f"#set-{key} option").evaluate_all("(os) => os.map((o) => o.value)")


def test_the_settings_selects_are_the_registries_and_a_choice_is_saved(page, server, login, screenshot):
    from ml.estimators import list_estimators
    from ml.ssl import list_methods
    from ml.strategies import list_strategies

    pid = server.project_id
    before = server.admin.get(f"/projects/{pid}")["settings"]
    login(page)
    page.goto(f"/#/projects/{pid}/admin/settings")
    page.locator("#set-estimator").wait_for()
    assert sorted(_options(page, "estimator")) == sorted(set(list_estimators()) - set(NOT_PROJECT_ESTIMATORS))
    assert sorted(_options(page, "strategy")) == list_strategies()
    assert sorted(_options(page, "ssl_method")) == list_methods()
    assert _options(page, "embedding_layer") == list(EMBEDDING_LAYERS)
    assert "weighted:3" in EMBEDDING_LAYERS and "co_training" in _options(page, "estimator")
    page.locator("#set-estimator").select_option("co_training")
    page.locator("#set-embedding_layer").select_option("weighted:3")
    screenshot(page, "admin-settings-choices")
    page.get_by_role("button", name="Save settings").click()
    page.locator("#toast").filter(has_text="Settings saved").wait_for()
    after = server.admin.get(f"/projects/{pid}")["settings"]
    assert (after["estimator"], after["embedding_layer"]) == ("co_training", "weighted:3")
    # The session's server is shared: put the choices back (and let a re-embed they queued finish).
    back = {k: before[k] for k in ("estimator", "embedding_layer")}
    server.admin.call("PATCH", f"/projects/{pid}", {"settings": back})
    server.admin.idle(pid)
