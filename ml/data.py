"""Datasets of unlabelled images: from uint8 arrays, and from stored files decoded in loader workers."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ml.images import as_nhwc, load_image, to_array

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ArrayDataset(Dataset):
    """uint8 (N, H, W[, C]) array as a Dataset of uint8 (C, H, W) tensors (labels, if any, are not served);
    rows are read on access, so a memory-mapped working set larger than memory trains a batch at a time."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = as_nhwc(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        # A copy: rows of a read-only memory map (a working set) must not reach torch as shared memory.
        return torch.from_numpy(np.array(self.images[i])).permute(2, 0, 1)


class FileDataset(Dataset):
    """Image files decoded on access (so in DataLoader worker processes) through ``ml.images``.

    Args:
        paths: file paths (the service's blob-storage paths).
        size: backbone input side.
        channels: 1 or 3.

    Items are uint8 (channels, size, size) tensors.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], size: int, channels: int) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.size, self.channels = size, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.paths[i]
        try:
            arr = to_array(load_image(path), self.size, self.channels)
        except Exception as exc:  # the path is what the caller needs to act on a bad file
            raise ValueError(f"cannot decode image {path!r}: {exc}") from exc
        return torch.from_numpy(arr).permute(2, 0, 1)


def list_image_folder(root: str | os.PathLike) -> tuple[list[str], np.ndarray, list[str]]:
    """Paths and labels of an ImageFolder layout (one sub-folder per class, sorted class names).

    Returns:
        (paths, labels as int64 array, class names).
    """
    root = os.fspath(root)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    paths, labels = [], []
    for idx, name in enumerate(classes):
        folder = os.path.join(root, name)
        for fname in sorted(os.listdir(folder)):
            if fname.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, fname))
                labels.append(idx)
    return paths, np.asarray(labels, dtype=np.int64), classes


def load_image_folder(root: str | os.PathLike, size: int | None = None, channels: int | None = None,
                      num_workers: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode an ImageFolder into (images (N, size, size, channels) uint8, labels, classes).

    ``size``/``channels`` default to ``ml.images.choose_input`` on the first 64 files.
    """
    from ml.images import choose_input

    paths, labels, classes = list_image_folder(root)
    if size is None or channels is None:
        step = max(1, len(paths) // 64)
        size, channels = choose_input([load_image(p) for p in paths[::step][:64]])
    loader = torch.utils.data.DataLoader(FileDataset(paths, size, channels), batch_size=512,
                                         num_workers=num_workers)
    images = torch.cat(list(loader)).permute(0, 2, 3, 1).numpy()
    return images, labels, classes


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` (uint8) and, when present, ``labels`` from an .npz file."""
    with np.load(os.fspath(path)) as f:
        return f["images"], (f["labels"] if "labels" in f else None)
