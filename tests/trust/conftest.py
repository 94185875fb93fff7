"""The browser fixtures of tests/frontend (a real server and worker, headless Chromium)."""

from tests.frontend.conftest import browser, login, page, screenshot, server  # noqa: F401
