"""The demo project ``loupe init`` sets up: scikit-learn's handwritten digits, unlabelled."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from app.models import Project
from app.services import projects as project_service

DEMO_PROJECT = "digits-demo"


def demo_folder(var_dir: Path) -> Path:
    """scikit-learn's bundled digits (1,797 8x8 greyscale images), written once as real PNG files in an
    ImageFolder tree under ``var_dir/demo/digits``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = var_dir / "demo" / "digits"
    if folder.is_dir() and any(folder.rglob("*.png")):
        return folder
    digits = load_digits()
    for i, (img, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        out = folder / str(target)
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * (255.0 / 16.0)).astype(np.uint8), "L").save(out / f"{i:04d}.png")
    return folder


def create_demo_project(session: Session) -> Project | None:
    """The demo project, new; None if it exists already."""
    if project_service.find_project(session, DEMO_PROJECT) is not None:
        return None
    return project_service.create_project(session, DEMO_PROJECT, [str(d) for d in range(10)],
                                          "scikit-learn's handwritten digits (8x8 px), unlabelled")
