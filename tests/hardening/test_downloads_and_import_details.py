"""Downloads and import details (issue 16, items 1 and 9): a download's file name reaches the header per
RFC 6266/5987 whatever the project is called; a file is an image or a zip by content and name together;
one bad file name is refused alone; CSV export cells cannot become spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import re
import zipfile
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


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _project(admin) -> int:
    r = admin.post("/projects", json={"name": "p", "classes": ["0", "1"],
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_file_is_an_image_or_a_zip_by_its_name_and_content_together(admin):
    pid = _project(admin)
    (a, png_a, _), (b, png_b, _), (c, png_c, _), (d, png_d, _) = digits_pngs(4)
    polyglot = png_a + _zip({"smuggled.png": png_b})
    files = [("cat.png", polyglot), ("dog.png", _zip({"inner.png": png_c})), ("plain.zip", _zip({"z/" + d: png_d})),
             ("inside.zip", _zip({"x/poly.png": polyglot}))]
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    reasons = {x["filename"]: x["reason"] for x in r.json()["rejected"]}
    assert "named .png but has a zip archive appended" in reasons.pop("cat.png")
    assert "named .png but is a zip archive" in reasons.pop("dog.png")
    assert "zip archive appended" in reasons.pop("inside.zip/x/poly.png")
    assert reasons == {} and r.json()["created"] == 1
    names = [s["filename"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    assert names == ["z/" + d]  # neither the polyglot nor its smuggled member


def _raw_upload(admin, pid: int, files: list[tuple[bytes, bytes]]):
    """A multipart body written by hand: clients escape control characters in file names, attackers do not."""
    body = b"".join(b'--bnd\r\nContent-Disposition: form-data; name="files"; filename="' + name +
                    b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n" for name, data in files) + b"--bnd--\r\n"
    return admin.post(f"/projects/{pid}/samples", content=body,
                      headers={"Content-Type": "multipart/form-data; boundary=bnd"})


def test_a_nul_in_a_file_name_refuses_that_file_only(admin):
    pid = _project(admin)
    (a, png_a, _), (b, png_b, _) = digits_pngs(2)
    r = _raw_upload(admin, pid, [(b"evil\x00.png", png_a), (b.encode(), png_b)])
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 1
    [rejected] = r.json()["rejected"]
    assert rejected["filename"] == "evil\ufffd.png" and "NUL" in rejected["reason"]
    assert [s["filename"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]] == [b]


def test_csv_export_cells_cannot_become_formulas(admin):
    r = admin.post("/projects", json={"name": "f", "classes": ["-1", "+x", "ok"],
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    pid = r.json()["id"]
    hostile = ["=HYPERLINK('http://evil').png", "+1+1.png", "-2+3.png", "@SUM(A1).png", "\tx.png",
               "\u202egnp.exe"]
    pngs = digits_pngs(len(hostile))
    named = [(n, d) for n, (_, d, _) in zip(hostile, pngs, strict=True)]
    assert upload(admin, pid, [f for f in named if "\t" not in f[0]]).status_code == 201
    assert _raw_upload(admin, pid, [(n.encode(), d) for n, d in named if "\t" in n]).status_code == 201
    items = admin.get(f"/projects/{pid}/samples").json()["items"]
    assert sorted(s["filename"] for s in items) == sorted(hostile)  # the API keeps the name as stored
    classes = ["-1", "+x", "ok", "ok", "ok", "ok"]
    body = [{"sample_id": s["id"], "label": cls} for s, cls in zip(items, classes, strict=True)]
    assert admin.post(f"/projects/{pid}/labels", json=body).status_code == 201
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/projects/{pid}/export", params={"format": "csv"}).text)))
    assert sorted(row["filename"] for row in rows) == sorted(
        "'" + n if n[0] in "=+-@\t" else n for n in hostile)
    assert sorted(row["label"] for row in rows) == sorted(["-1", "'+x", "ok", "ok", "ok", "ok"])  # -1: a number
    jsonl = admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text
    assert "=HYPERLINK" in jsonl  # machine formats keep the name as stored
    r = admin.get(f"/projects/{pid}/export", params={"format": "imagefolder"})
    members = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert len(members) == len(hostile) and not [m for m in members if "\u202e" in m or "\t" in m], members


def test_the_frontend_shows_file_names_with_bidi_and_control_characters_visible():
    import shutil
    import subprocess

    from tests.conftest import ROOT

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = ("import { safeName } from './frontend/js/dom.js';"
              "console.log(JSON.stringify(['invoice\\u202egpj.exe', 'a\\u0000b\\tc\\u2067.png', 'Проект-猫.png']"
              ".map(safeName)));")
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '["invoice[U+202E]gpj.exe","a[U+0000]b[U+0009]c[U+2067].png","Проект-猫.png"]'
    # Every file name a view puts on screen goes through it (a data- attribute is not shown).
    for view in (ROOT / "frontend/js/views").glob("*.js"):
        for line in view.read_text().splitlines():
            shown = [] if "dataset.filename =" in line else re.findall(r"(?<!safeName\()\b\w+\.filename\b", line)
            assert not shown, f"{view.name}: {line.strip()}"
