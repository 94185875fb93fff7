"""Bad uploads answer 4xx naming the file and the problem, and leave no sample, blob or thumbnail.

Extends tests/api/test_import_samples.py (which covers empty/text/truncated PNG in a batch, '../' and
absolute zip paths, a nested .zip, and that RGB/RGBA/P/CMYK/I;16 are accepted at the right size):
here every bad case is uploaded alone and the media directory is checked, the size limits are shown
over real HTTP, and accepted odd modes are checked by their pixels.
"""

from __future__ import annotations

import io
import socket
import struct
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, make_settings, upload
from tests.reliability.conftest import create_admin, live_server, media_files

RNG = np.random.default_rng(7)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


NOISE = Image.fromarray(RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8))
PNG = _encode(NOISE, "PNG")
JPEG = _encode(NOISE, "JPEG")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 8-bit greyscale pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + _png_chunk(b"IEND", b""))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def make_api(tmp_path, sqlite_url) -> Iterator:
    """make_api(**settings) -> (settings, admin Api, project id) on an app built with those settings."""
    clients = []

    def make(**extra):
        settings = make_settings(tmp_path, sqlite_url, **extra)
        create_admin(settings)
        from app.main import create_app

        client = TestClient(create_app(settings)).__enter__()
        clients.append(client)
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        r = admin.post("/projects", json={"name": "p", "classes": ["a", "b"],
                                          "settings": {"auto_pretrain": False, "auto_embed": False}})
        assert r.status_code == 201, r.text
        return settings, admin, r.json()["id"]

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def assert_nothing_stored(admin: Api, pid: int, settings) -> None:
    assert admin.get(f"/projects/{pid}").json()["sample_count"] == 0
    assert admin.get(f"/projects/{pid}/samples").json()["items"] == []
    assert media_files(settings) == [], "a rejected upload left files in the media store"


BAD_FILES = {
    # name: (bytes, a fragment the reason must contain)
    "truncated.jpg": (JPEG[: len(JPEG) * 6 // 10], "truncated"),
    "garbage-after-header.jpg": (b"\xff\xd8\xff\xe0" + RNG.integers(0, 255, 3000, dtype=np.uint8).tobytes(),
                                 "corrupt"),
    "bad-crc.png": (_flip(PNG, PNG.index(b"IDAT") + 40), "corrupt"),
    "truncated.png": (PNG[: len(PNG) // 2], "truncated"),
    "empty.jpg": (b"", "empty file"),
    "a-pdf.png": (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n", "not an image"),
    "html.jpeg": (b"<!doctype html><title>x</title>", "not an image"),
    "random.webp": (RNG.integers(0, 255, 5000, dtype=np.uint8).tobytes(), "not an image"),
    "portable-pixmap.png": (_encode(NOISE, "PPM"), "unsupported image format PPM"),
    "icon.bmp": (_encode(NOISE, "ICO"), "unsupported image format ICO"),
    "bomb-50000x50000.png": (png_claiming(50_000, 50_000), "over the limit"),
    "corrupt.zip": (b"PK\x03\x04" + b"\0" * 100, "corrupt zip"),
}


def test_each_bad_file_alone_is_422_with_its_reason_and_leaves_nothing(make_api):
    settings, admin, pid = make_api()
    for name, (data, fragment) in sorted(BAD_FILES.items()):
        r = upload(admin, pid, [(name, data)])
        assert r.status_code == 422, (name, r.text)
        rejected = r.json()["detail"]["rejected"]
        assert [x["filename"] for x in rejected] == [name]
        assert fragment in rejected[0]["reason"], (name, rejected)
        assert_nothing_stored(admin, pid, settings)


def test_pixel_limit_from_settings_rejects_a_real_image(make_api):
    settings, admin, pid = make_api(max_image_pixels=64 * 64 - 1)
    r = upload(admin, pid, [("big.png", PNG), ("bomb.png", png_claiming(50_000, 50_000))])
    assert r.status_code == 422
    reasons = {x["filename"]: x["reason"] for x in r.json()["detail"]["rejected"]}
    assert "64x64 = 4096 pixels, over the limit of 4095" in reasons["big.png"]
    assert "over the limit of 4095" in reasons["bomb.png"]
    assert_nothing_stored(admin, pid, settings)
    small = _encode(NOISE.resize((32, 32)), "PNG")
    assert upload(admin, pid, [("small.png", small)]).json()["created"] == 1


def test_file_over_the_per_file_limit_is_listed_and_the_rest_imported(make_api):
    settings, admin, pid = make_api(max_file_bytes=len(PNG) - 1)
    (name, small, _), = digits_pngs(1)
    r = upload(admin, pid, [("big.png", PNG), (name, small), ("in.zip", zip_of({"z/big.png": PNG}))])
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 1
    reasons = {x["filename"]: x["reason"] for x in r.json()["rejected"]}
    assert f"over the limit of {len(PNG) - 1}" in reasons["big.png"]
    assert f"over the limit of {len(PNG) - 1}" in reasons["in.zip/z/big.png"]
    assert len(media_files(settings)) == 2  # the one image and its thumbnail


def test_zip_bombs_are_refused_by_ratio_and_by_total_size(make_api):
    settings, admin, pid = make_api(max_zip_uncompressed_bytes=3 * 1024 * 1024)
    zeros = b"\0" * (2 * 1024 * 1024)  # compresses ~1000:1
    r = upload(admin, pid, [("ratio.zip", zip_of({"zeros.png": zeros}))])
    assert r.status_code == 422
    (rej,) = r.json()["detail"]["rejected"]
    assert rej["filename"] == "ratio.zip/zeros.png" and "compression ratio" in rej["reason"]
    # Two such members expand past the total limit: the whole zip is refused from its directory alone.
    r = upload(admin, pid, [("total.zip", zip_of({"a.png": zeros, "b.png": zeros, "c.png": PNG}))])
    assert r.status_code == 422
    (rej,) = r.json()["detail"]["rejected"]
    assert rej["filename"] == "total.zip" and "over the limit of 3145728" in rej["reason"]
    assert_nothing_stored(admin, pid, settings)


def test_zip_with_escaping_paths_writes_nothing_outside_the_store(make_api, tmp_path):
    settings, admin, pid = make_api()
    before = {p for p in tmp_path.parent.rglob("*")}
    evil = zip_of({"../../escape.png": PNG, "/etc/abs.png": PNG, "..\\win.png": PNG, "C:/drive.png": PNG,
                   "a/../../up.png": PNG, "inner.zip": zip_of({"x.png": PNG}),
                   "disguised.png": zip_of({"y.png": PNG})})
    r = upload(admin, pid, [("evil.zip", evil)])
    assert r.status_code == 422, r.text
    reasons = {x["filename"]: x["reason"] for x in r.json()["detail"]["rejected"]}
    for name in ("../../escape.png", "/etc/abs.png", "..\\win.png", "C:/drive.png", "a/../../up.png"):
        assert "unsafe path" in reasons[f"evil.zip/{name}"], reasons
    assert "nested zip" in reasons["evil.zip/inner.zip"]
    assert "not an image" in reasons["disguised.png"]  # a zip inside, whatever its name, is not expanded
    assert_nothing_stored(admin, pid, settings)
    new = {p for p in tmp_path.parent.rglob("*")} - before
    assert not [p for p in new if p.name in ("escape.png", "abs.png", "win.png", "drive.png", "up.png")]


def test_a_mixed_batch_imports_the_good_and_lists_every_bad_one(make_api):
    settings, admin, pid = make_api()
    good = digits_pngs(4)
    zipped = zip_of({f"d/{good[2][0]}": good[2][1], "d/broken.png": PNG[:100], f"d/{good[3][0]}": good[3][1],
                     "../x.png": PNG})
    files = [(good[0][0], good[0][1]), ("empty.png", b""), ("batch.zip", zipped), (good[1][0], good[1][1]),
             ("bomb.png", png_claiming(50_000, 50_000)), ("words.jpg", b"not a jpeg")]
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] == 4 and body["duplicates"] == 0
    assert sorted(x["filename"] for x in body["rejected"]) == sorted(
        ["empty.png", "d/broken.png", "batch.zip/../x.png", "bomb.png", "words.jpg"]), body
    assert all(x["reason"] for x in body["rejected"])
    names = {s["filename"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]}
    assert names == {good[0][0], good[1][0], f"d/{good[2][0]}", f"d/{good[3][0]}"}
    assert len(media_files(settings)) == 8  # 4 images + 4 thumbnails, nothing of the rejected


# ---------------------------------------------------------------- odd but valid images, by their pixels


def _thumb(admin: Api, pid: int, filename: str) -> tuple[dict, Image.Image]:
    sample = next(s for s in admin.get(f"/projects/{pid}/samples").json()["items"] if s["filename"] == filename)
    r = admin.get(f"/samples/{sample['id']}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    return sample, Image.open(io.BytesIO(r.content))


def test_exif_rotation_is_applied_to_size_and_thumbnail(make_api):
    settings, admin, pid = make_api()
    # Stored 60 wide x 30 high: left half black, right half white. Orientation 6 = "rotate 90 CW to
    # view", so upright it is 30 wide x 60 high with the black half on top.
    arr = np.zeros((30, 60, 3), dtype=np.uint8)
    arr[:, 30:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(arr), "JPEG", exif=exif, quality=95)
    assert upload(admin, pid, [("rotated.jpg", data)]).status_code == 201
    sample, thumb = _thumb(admin, pid, "rotated.jpg")
    assert (sample["width"], sample["height"]) == (30, 60)
    assert thumb.size == (30, 60)
    grey = np.asarray(thumb.convert("L"), dtype=float)
    assert grey[:25].mean() < 30 and grey[35:].mean() > 225, "thumbnail is not upright"
    # The original bytes are served unchanged (the browser applies the same EXIF orientation).
    assert admin.get(f"/samples/{sample['id']}/image").content == data


def test_16bit_palette_and_cmyk_thumbnails_keep_their_content(make_api):
    settings, admin, pid = make_api()
    ramp16 = Image.fromarray((np.tile(np.linspace(0, 4000, 50), (20, 1))).astype(np.uint16))  # 12-bit data
    red_cmyk = Image.new("CMYK", (20, 20), (0, 255, 255, 0))
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)  # index 0 is blue
    pal.paste(1, (10, 0, 20, 20))  # right half green
    files = [("ramp16.png", _encode(ramp16, "PNG")), ("red-cmyk.jpg", _encode(red_cmyk, "JPEG", quality=95)),
             ("palette.png", _encode(pal, "PNG")), ("palette.gif", _encode(pal, "GIF"))]
    r = upload(admin, pid, files)
    assert r.status_code == 201 and r.json()["created"] == 4, r.text

    sample, thumb = _thumb(admin, pid, "ramp16.png")
    assert sample["mode"].startswith("I") and (sample["width"], sample["height"]) == (50, 20)
    row = np.asarray(thumb.convert("L"), dtype=float)[10]
    assert row[:5].mean() < 20 and row[-5:].mean() > 235, "16-bit image not rescaled to the full range"
    assert np.all(np.diff(row[::5]) >= -3), "the ramp is not a ramp any more"

    sample, thumb = _thumb(admin, pid, "red-cmyk.jpg")
    assert sample["mode"] == "CMYK"
    r_, g_, b_ = np.asarray(thumb.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
    assert r_ > 200 and g_ < 60 and b_ < 60, (r_, g_, b_)

    for name in ("palette.png", "palette.gif"):
        sample, thumb = _thumb(admin, pid, name)
        rgb = np.asarray(thumb.convert("RGB"), dtype=float)
        assert sample["mode"] == "P"
        assert rgb[:, :8, 2].mean() > 200 and rgb[:, :8, 1].mean() < 60, name  # blue left
        assert rgb[:, 12:, 1].mean() > 200 and rgb[:, 12:, 2].mean() < 60, name  # green right


# ---------------------------------------------------------------- the request size limit, over real HTTP


LIMIT = 1_000_000


@pytest.fixture
def small_limit_server(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    create_admin(settings)
    with live_server(settings, {"LOUPE_MAX_REQUEST_BYTES": str(LIMIT)}) as server:
        with server.client() as c:
            pid = c.post("/projects", json={"name": "p", "classes": ["a"],
                                            "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
            yield server, settings, pid, c


def _raw_upload(server, token: str, pid: int, chunks: Iterator[bytes],
                headers: dict[str, str]) -> tuple[int, bytes, int]:
    """Send a request by hand, body as given, and stop sending as soon as an answer arrives.

    Returns (status, response bytes, body bytes sent)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (f"POST /api/v1/projects/{pid}/samples HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    sock.sendall(head.encode())
    sent, answer = 0, b""
    sock.setblocking(False)
    try:
        for chunk in chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.sendall(chunk)
            except BlockingIOError:
                sock.setblocking(True)
                sock.sendall(chunk)
                sock.setblocking(False)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else 0
    return status, answer, sent


BOUNDARY = "loupeboundary"


def _multipart_stream(total: int, chunked: bool) -> Iterator[bytes]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"huge.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    pieces = [head] + [b"\0" * 65536] * (total // 65536)
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        # (the body never ends: the server must answer before it does)


def test_content_length_over_the_limit_is_413_before_any_body(small_limit_server):
    server, settings, pid, _c = small_limit_server
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(50 * LIMIT)}
    # Not one body byte is sent: the answer must come from the headers alone.
    status, answer, sent = _raw_upload(server, server.token(), pid, iter([]), headers)
    assert sent == 0 and status == 413, answer[:500]
    assert b"over the limit of 1000000 bytes" in answer


def test_chunked_body_without_length_is_cut_off_at_the_limit(small_limit_server):
    server, settings, pid, c = small_limit_server
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding": "chunked"}
    total = 50 * LIMIT
    status, answer, sent = _raw_upload(server, server.token(), pid, _multipart_stream(total, True), headers)
    assert status == 413, answer[:500]
    # Kernel socket buffers may hold a few hundred KB the server never read; it did not take it all.
    assert sent < 10 * LIMIT, f"{sent} of {total} bytes went out before the 413"
    assert c.get(f"/projects/{pid}").json()["sample_count"] == 0
    assert media_files(settings) == []
    # The server is still fine for the next request.
    (name, data, _), = digits_pngs(1)
    assert c.post(f"/projects/{pid}/samples", files=[("files", (name, data))]).status_code == 201
