"""Downloads and import details (issue 16, items 1 and 9): a download's file name reaches the header per
RFC 6266/5987 whatever the project is called; a file is an image or a zip by content and name together;
one bad file name is refused alone; CSV export cells cannot become spreadsheet formulas."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from tests.conftest import digits_pngs, upload

HOSTILE_NAMES = ["Проект-猫", 'say "cheese"; x=1', "line\r\nX-Injected: yes", "tab\tand\\back/slash"]


def _disposition_name(header: str) -> tuple[str, str]:
    """(the ASCII fallback, the decoded filename*) of a Content-Disposition value."""
    m = re.fullmatch(r'attachment; filename="([\x20-\x7e]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%!#$&+.^_`|~-]+)',
                     header)
    assert m, header
    assert '"' not in m.group(1) and "\\" not in m.group(1)
    return m.group(1), unquote(m.group(2), encoding="utf-8", errors="strict")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_export_format_names_its_file_safely(admin, name):
    r = admin.post("/projects", json={"name": name, "classes": ["0", "1"],
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    pid, stored = r.json()["id"], r.json()["name"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(2)]).status_code == 201
    for fmt, ext in (("csv", "csv"), ("jsonl", "jsonl"), ("imagefolder", "zip")):
        r = admin.get(f"/projects/{pid}/export", params={"format": fmt})
        assert r.status_code == 200, (fmt, r.text)
        assert set(r.headers) >= {"content-disposition"} and "x-injected" not in r.headers
        fallback, full = _disposition_name(r.headers["content-disposition"])
        assert full == re.sub(r"[\x00-\x1f\x7f/\\]", "_", f"{stored}-labels.{ext}")
        assert fallback.endswith(f"-labels.{ext}")


def test_a_download_name_cannot_reorder_itself_or_name_a_directory():
    from app.api.downloads import content_disposition

    fallback, full = _disposition_name(content_disposition("invoice\u202egpj.exe"))
    assert full == fallback == "invoice_gpj.exe"
    fallback, full = _disposition_name(content_disposition("../../etc/Café ünïcode.pth"))
    assert full == ".._.._etc_Café ünïcode.pth" and fallback == ".._.._etc_Cafe unicode.pth"
    assert _disposition_name(content_disposition("猫.onnx")) == ("download.onnx", "猫.onnx")
