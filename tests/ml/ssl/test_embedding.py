"""Extraction: deterministic, L2-normalised, every layer choice; checkpoints round-trip and resume."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from ml.backbones import create_backbone
from ml.checkpoint import Checkpoint
from ml.embedding import (
    embedding_dim,
    extract_embeddings,
    extract_embeddings_from_files,
    load_backbone,
)
from ml.pretrain import pretrain, random_backbone_checkpoint
from ml.run import Run
from ml.ssl import create_method
from ml.training import TrainConfig, train


@pytest.fixture(scope="module")
def trained(digits_28):
    return pretrain(digits_28[0][:256], method="simclr", run=Run(epochs=1, batch_size=128, seed=0, device="cpu"))


@pytest.mark.parametrize("layer", ["last", "penultimate", "concat:2", "concat:4"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_extraction_layers(trained, digits_28, layer, dtype):
    x = digits_28[0][:70]
    calls = []
    e1 = extract_embeddings(trained, x, layer=layer, dtype=dtype, batch_size=32, progress=lambda f, m: calls.append(f))
    e2 = extract_embeddings(trained, x, layer=layer, dtype=dtype, batch_size=16)
    assert e1.dtype == dtype and e1.shape == (70, embedding_dim(load_backbone(trained), layer))
    assert np.array_equal(e1, e2)  # deterministic, and independent of batch size up to rounding
    assert np.allclose(np.linalg.norm(e1.astype(np.float32), axis=1), 1.0, atol=2e-3)
    assert calls[-1] == 1.0 and len(calls) == 3


def test_bad_layer(trained, digits_28):
    with pytest.raises(ValueError):
        extract_embeddings(trained, digits_28[0][:2], layer="concat:9")


def test_pretrain_config_and_progress(digits_28):
    msgs = []
    ck = pretrain(digits_28[0][:256], method="rotation", run=Run(budget_seconds=1.5, batch_size=64, device="cpu",
                                                                 progress=lambda f, m: msgs.append((f, m))))
    c = ck.config
    assert (c["backbone"], c["in_channels"], c["image_size"], c["method"]) == ("cnn", 1, 28, "rotation")
    assert len(c["norm_mean"]) == 1 and c["norm_std"][0] > 0
    assert msgs[-1][0] == 1.0 and "loss" in msgs[-1][1] and "images/s" in msgs[-1][1]
    assert ck.state["done"] and ck.state["step"] > 0


def test_checkpoint_round_trip(trained, digits_28, tmp_path):
    path = tmp_path / "ck.pt"
    trained.save(path)
    loaded = Checkpoint.load(path)
    assert loaded.config == trained.config
    x = digits_28[0][:20]
    assert np.array_equal(extract_embeddings(trained, x), extract_embeddings(loaded, x))
    assert np.array_equal(extract_embeddings(str(path), x), extract_embeddings(load_backbone(loaded), x))


def test_resume_is_exact(digits_28, tmp_path):
    images = digits_28[0][:128]
    cfg = TrainConfig(epochs=2, budget_seconds=None, batch_size=32, lr=1e-3)

    def fresh():
        torch.manual_seed(0)
        return create_method("simclr", create_backbone("cnn", 1, 28, widths=(8, 16, 16, 32)))

    full = train(fresh(), images, cfg, device="cpu")
    path = str(tmp_path / "run.pt")
    part = train(fresh(), images, cfg, device="cpu", checkpoint_path=path, stop_after_steps=5)
    assert not part.state["done"] and part.state["step"] == 5
    resumed = train(fresh(), images, cfg, device="cpu", resume_from=Checkpoint.load(path))
    assert resumed.state["done"] and resumed.state["step"] == full.state["step"] == 8
    for k, v in full.backbone_state.items():
        assert torch.equal(v, resumed.backbone_state[k]), k
    # The same run again from scratch: seeded, so bit-identical.
    again = train(fresh(), images, cfg, device="cpu")
    assert all(torch.equal(v, again.backbone_state[k]) for k, v in full.backbone_state.items())


def test_a_memory_mapped_set_larger_than_memory_trains_as_an_in_memory_one(digits_28, tmp_path, monkeypatch):
    """A working set over the in-memory limit is read a batch at a time, with the same batches, views and
    weights as the in-memory path (here the limit is set to 0 so that 128 digits are "too large")."""
    import ml.training

    images = digits_28[0][:128]
    mapped = np.lib.format.open_memmap(tmp_path / "set.npy", mode="w+", dtype=np.uint8, shape=images.shape)
    mapped[:] = images
    mapped.flush()
    cfg = TrainConfig(epochs=1, budget_seconds=None, batch_size=32, lr=1e-3)

    def fresh():
        torch.manual_seed(0)
        return create_method("simclr", create_backbone("cnn", 1, 28, widths=(8, 16, 16, 32)))

    in_memory = train(fresh(), images, cfg, device="cpu")
    monkeypatch.setattr(ml.training, "IN_MEMORY_BYTES", 0)
    from_disk = train(fresh(), np.load(tmp_path / "set.npy", mmap_mode="r"), cfg, device="cpu")
    assert from_disk.state["step"] == in_memory.state["step"] == 4
    assert all(torch.equal(v, from_disk.backbone_state[k]) for k, v in in_memory.backbone_state.items())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_train_reproducibly(digits_28, precision):
    """bf16 autocast (the default where the CPU does bf16 natively) is as seeded as fp32, and differs
    from it: it really runs in reduced precision."""
    from ml.training import use_bf16

    images = digits_28[0][:128]
    cfg = TrainConfig(epochs=1, budget_seconds=None, batch_size=32, lr=1e-3, precision=precision)
    other = TrainConfig(**{**cfg.as_dict(), "precision": "bf16" if precision == "fp32" else "fp32"})

    def run(c):
        torch.manual_seed(0)
        return train(create_method("rotation", create_backbone("cnn", 1, 28, widths=(8, 16, 16, 32))), images, c,
                     device="cpu")

    a, b, c = run(cfg), run(cfg), run(other)
    assert use_bf16(precision, torch.device("cpu")) == (precision == "bf16")
    assert np.isfinite(a.state["loss"]) and a.config["train"]["precision"] == precision
    assert all(torch.equal(v, b.backbone_state[k]) for k, v in a.backbone_state.items())
    assert not all(torch.equal(v, c.backbone_state[k]) for k, v in a.backbone_state.items())
    with pytest.raises(ValueError, match="precision"):
        use_bf16("fp8", torch.device("cpu"))


def test_pretrain_resume_from_path(digits_28, tmp_path):
    path = str(tmp_path / "p.pt")
    images = digits_28[0][:128]
    first = pretrain(images, method="masked_ae", run=Run(epochs=1, batch_size=64, checkpoint_path=path, device="cpu"))
    again = pretrain(images, method="simclr", run=Run(epochs=2, checkpoint_path=path, resume=True, device="cpu"))
    assert again.config["method"] == "masked_ae"  # the checkpoint's settings win on resume
    assert again.state["step"] == 2 * first.state["step"]


def test_random_backbone_and_files(digits_28, tmp_path):
    images = digits_28[0][:40]
    ck = random_backbone_checkpoint(images, seed=3)
    assert ck.config["method"] == "none"
    paths = []
    for i, im in enumerate(images):
        p = os.path.join(tmp_path, f"{i}.png")
        Image.fromarray(im).save(p)
        paths.append(p)
    from_files = extract_embeddings_from_files(ck, paths, layer="concat:2", dtype=np.float32, batch_size=16,
                                               num_workers=1)
    from_arrays = extract_embeddings(ck, images, layer="concat:2", dtype=np.float32)
    assert np.allclose(from_files, from_arrays, atol=1e-5)
    other = random_backbone_checkpoint(images, seed=4)
    assert not np.allclose(extract_embeddings(other, images), extract_embeddings(ck, images))


def test_colour_input(colour_32):
    ck = pretrain(colour_32[:128], method="jigsaw", run=Run(epochs=1, batch_size=64, device="cpu"))
    assert (ck.config["in_channels"], ck.config["image_size"], ck.config["backbone"]) == (3, 32, "cnn")
    assert extract_embeddings(ck, colour_32[:10], layer="concat:3").shape[0] == 10
