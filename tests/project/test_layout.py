"""The dependency rule of docs/architecture.md, and the deployment files, checked mechanically."""

from __future__ import annotations

import ast
import subprocess
import sys

import yaml

from tests.conftest import ROOT


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


def test_app_never_imports_torch_ml_or_workers():
    bad = {(f, m) for f, m in _imports("app") if m.split(".")[0] in ("torch", "torchvision", "ml", "workers")}
    assert bad == set()


def test_ml_imports_nothing_of_the_service():
    forbidden = ("app", "workers", "fastapi", "sqlalchemy", "celery")
    bad = {(f, m) for f, m in _imports("ml") if m.split(".")[0] in forbidden}
    assert bad == set()


def test_imaging_is_pil_and_numpy_only():
    # app and ml both import it (the conversion they must share), so it may import neither side.
    allowed = {"PIL", "numpy", "imaging", "__future__", "io", "os", "typing"}
    assert {(f, m) for f, m in _imports("imaging") if m.split(".")[0] not in allowed} == set()


def test_textwords_is_the_standard_library_only():
    # The API's explanations and ml's occlusion split documents into the same words with it.
    allowed = {"textwords", "__future__", "re", "unicodedata"}
    assert {(f, m) for f, m in _imports("textwords") if m.split(".")[0] not in allowed} == set()


def test_workers_never_import_the_api_layer():
    assert {(f, m) for f, m in _imports("workers") if m.startswith("app.api")} == set()


def test_the_api_process_does_not_load_torch():
    code = "import sys, app.main; app.main.create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compose_file_names_every_service_with_command_and_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker-cpu", "worker-gpu"} <= set(services)
    for name in ("api", "worker-cpu", "worker-gpu"):
        svc = services[name]
        assert svc.get("command"), f"{name} has no command"
        env = svc.get("environment") or {}
        assert "LOUPE_DATABASE_URL" in env and "LOUPE_BROKER_URL" in env, f"{name} lacks settings"
        assert env["LOUPE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["LOUPE_BROKER_URL"].startswith("redis://")
        assert svc.get("build") or svc.get("image")
    for name in ("postgres", "redis"):
        assert services[name].get("image")
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert "gpu" in " ".join(gpu["command"]) and "cpu" in " ".join(services["worker-cpu"]["command"])
    assert (ROOT / "Dockerfile").is_file()
