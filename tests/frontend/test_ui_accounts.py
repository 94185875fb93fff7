"""The account view's own-password form and the users view's deactivate button (issue 16, item 7)."""

from __future__ import annotations

import pytest

from tests.frontend.conftest import Api, ApiError


def _viewer(server, username: str, password: str) -> Api:
    server.admin.post("/users", {"username": username, "password": password})
    server.admin.post(f"/projects/{server.project_id}/members", {"username": username, "role": "viewer"})
    return Api(server.url).login(username, password)


def test_a_user_changes_their_password_in_the_account_view(page, server, login):
    other = _viewer(server, "erin", "erin-password-1")
    login(page, "erin", "erin-password-1")
    page.goto("/#/account")
    page.get_by_label("Current password").fill("erin-password-1")
    page.get_by_label("New password (8 or more characters)").fill("erin-password-2")
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Password changed").wait_for()
    with pytest.raises(ApiError) as err:
        other.get("/auth/me")  # another sign-in of erin's ended
    assert err.value.status == 401
    assert Api(server.url).login("erin", "erin-password-2").get("/auth/me")["username"] == "erin"


def test_an_admin_deactivates_a_user_in_the_users_view(page, server, login):
    frank = _viewer(server, "frank", "frank-password-1")
    login(page)
    page.goto("/#/admin/users")
    page.get_by_role("button", name="Deactivate frank").click()
    page.get_by_text("frank deactivated").wait_for()
    with pytest.raises(ApiError) as err:
        frank.get("/auth/me")
    assert err.value.status == 401
    page.get_by_role("button", name="Activate frank").click()
    page.get_by_text("frank activated").wait_for()
