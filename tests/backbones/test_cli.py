"""``loupe backbone register / list / export / delete`` on the command line, with real files."""

from __future__ import annotations

from tests.conftest import make_settings
from tests.project.test_cli import _loupe


def test_register_list_and_export(tmp_path, sqlite_url, backbone_files):
    settings = make_settings(tmp_path, sqlite_url)
    r = _loupe(settings, "backbone", "register", str(backbone_files["onnx"]), "--format", "onnx", "--name", "team onnx")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "registered backbone 1 'team onnx': embedding width 24, input 32 px" in r.stdout

    bad = _loupe(settings, "backbone", "register", str(backbone_files["pth"]), "--format", "torchvision",
                 "--name", "wrong")  # refused before any check runs; the checks' reasons are tested by REST
    assert bad.returncode == 1 and "needs an architecture" in bad.stdout

    listed = _loupe(settings, "backbone", "list")
    assert listed.returncode == 0 and "team onnx" in listed.stdout and "wrong" not in listed.stdout

    out = tmp_path / "copy.onnx"
    r = _loupe(settings, "backbone", "export", "1", str(out))
    assert r.returncode == 0 and out.read_bytes() == backbone_files["onnx"].read_bytes()
    assert _loupe(settings, "backbone", "export", "7", str(out)).returncode == 1

    gone = _loupe(settings, "backbone", "delete", "1")
    assert gone.returncode == 0 and "deleted backbone 1 'team onnx'" in gone.stdout, gone.stdout + gone.stderr
    assert "team onnx" not in _loupe(settings, "backbone", "list").stdout
    again = _loupe(settings, "backbone", "delete", "1")
    assert again.returncode == 1 and "backbone 1 not found" in again.stdout
