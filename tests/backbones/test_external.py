"""ml.backbones.external with real files: each format loads, embeds and reports its width; bad files are
refused with the reason; continued pretraining changes the weights and keeps the input contract."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backbones.conftest import REGISTRATIONS


@pytest.mark.parametrize("case", sorted(REGISTRATIONS))
def test_each_format_checks_and_embeds(case, backbone_files):
    from ml.backbones.check import check_backbone
    from ml.backbones.external import registered_checkpoint
    from ml.embedding import extract_embeddings

    key, form, width = REGISTRATIONS[case]
    report = check_backbone(backbone_files[key], form["format"], form.get("architecture"), int(form["input_size"]))
    assert report["embedding_dim"] == width and report["input_size"] == 32 and report["in_channels"] == 3
    assert report["normalization"] == "imagenet" and report["norm_mean"] == [0.485, 0.456, 0.406]
    assert report["trainable"] == (form["format"] != "onnx")
    ckpt = registered_checkpoint(backbone_files[key], form["format"], form.get("architecture"), 32)
    images = np.random.default_rng(0).integers(0, 256, (5, 40, 40), dtype=np.uint8)  # greyscale, other size
    out = extract_embeddings(ckpt, images, dtype=np.float32)
    assert out.shape == (5, width) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-4)
    assert not np.allclose(out[0], out[1])


def test_resnet_exposes_its_four_stages_for_layer_choices(backbone_files):
    from ml.backbones.external import registered_checkpoint
    from ml.embedding import extract_embeddings, load_backbone

    ckpt = registered_checkpoint(backbone_files["safetensors"], "torchvision", "resnet18", 32)
    assert load_backbone(ckpt).block_dims == [64, 128, 256, 512]
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert extract_embeddings(ckpt, images, layer="concat:3").shape == (3, 128 + 256 + 512)


@pytest.mark.parametrize("file,fmt,arch,reason", [
    ("garbage", "torchvision", "resnet18", "neither a PyTorch state dict"),
    ("garbage", "torchscript", None, "not a TorchScript module"),
    ("garbage", "onnx", None, "not an ONNX model"),
    ("pth", "torchvision", "resnet50", "does not fit torchvision resnet50"),
    ("pth", "torchvision", "resnet_nonesuch", "unknown torchvision architecture"),
    ("pth", "keras", None, "unknown backbone format 'keras'"),
    ("onnx", "torchscript", None, "not a TorchScript module"),
])
def test_bad_files_are_refused_with_the_reason(file, fmt, arch, reason, backbone_files):
    from ml.backbones.check import check_backbone

    with pytest.raises(ValueError, match=reason):
        check_backbone(backbone_files[file], fmt, arch, 32)


def test_continued_pretraining_changes_the_weights_and_keeps_the_input_contract(backbone_files):
    import torch

    from ml.backbones.external import registered_checkpoint
    from ml.embedding import extract_embeddings
    from ml.pretrain import pretrain
    from ml.run import Run

    start = registered_checkpoint(backbone_files["pth"], "torchvision", "resnet18", 32, registered_id=7)
    images = np.random.default_rng(0).integers(0, 256, (48, 28, 28), dtype=np.uint8)  # greyscale 28 px
    torch.set_num_threads(2)
    done = pretrain(images, method="simclr", run=Run(epochs=1, batch_size=24, device="cpu"), initial_backbone=start)
    cfg = done.config
    assert (cfg["image_size"], cfg["in_channels"]) == (32, 3)  # not the 28 px, 1 channel the images suggest
    assert cfg["norm_mean"] == start.config["norm_mean"] and cfg["norm_std"] == start.config["norm_std"]
    assert cfg["registered_backbone"] == 7 and cfg["external"]["architecture"] == "resnet18"
    changed = [k for k, v in start.backbone_state.items()
               if v.is_floating_point() and not torch.equal(v, done.backbone_state[k])]
    assert any(k.endswith("conv1.weight") for k in changed), changed
    assert extract_embeddings(done, images[:4]).shape == (4, 512)  # reloads as the registered one did


def test_an_onnx_backbone_cannot_be_trained(backbone_files):
    from ml.backbones.external import registered_checkpoint
    from ml.pretrain import pretrain
    from ml.run import Run

    start = registered_checkpoint(backbone_files["onnx"], "onnx", None, 32)
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="ONNX backbone can only be used frozen"):
        pretrain(images, method="simclr", run=Run(epochs=1, batch_size=8, device="cpu"), initial_backbone=start)
    from ml.finetune import finetune

    with pytest.raises(ValueError, match="ONNX backbone can only be used frozen"):
        finetune(images, np.arange(16) % 2, 2, start, epochs=1, device="cpu")


def test_a_project_backbone_exports_as_torchscript_that_registers_back(tmp_path):
    from ml.backbones.check import check_backbone
    from ml.backbones.export import export_torchscript
    from ml.embedding import extract_embeddings
    from ml.pretrain import random_backbone_checkpoint

    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    learned = random_backbone_checkpoint(images, backbone="cnn")
    contract = export_torchscript(learned, tmp_path / "exported.pt")
    assert contract["image_size"] == learned.config["image_size"] and contract["in_channels"] == 1
    report = check_backbone(tmp_path / "exported.pt", "torchscript")  # its contract comes with the file
    assert (report["input_size"], report["in_channels"], report["normalization"]) == (
        learned.config["image_size"], 1, "unit")
    from ml.backbones.external import registered_checkpoint

    again = extract_embeddings(registered_checkpoint(tmp_path / "exported.pt", "torchscript"), images, dtype=np.float32)
    original = extract_embeddings(learned, images, dtype=np.float32)
    assert np.allclose(again, original, atol=1e-4)  # the same features, normalisation included


def test_fine_tuning_starts_from_a_registered_backbone(backbone_files):
    import torch

    from ml.backbones.external import registered_checkpoint
    from ml.embedding import extract_embeddings
    from ml.finetune import finetune

    start = registered_checkpoint(backbone_files["torchscript"], "torchscript", None, 32, registered_id=3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    tuned = finetune(images, np.arange(24) % 2, 2, start, epochs=2, device="cpu")
    assert tuned.config["registered_backbone"] == 3 and tuned.config["finetuned_from"] == "registered"
    assert any(not torch.equal(v, tuned.backbone_state[k]) for k, v in start.backbone_state.items()
               if v.is_floating_point())
    assert extract_embeddings(tuned, images[:3]).shape == (3, 24)


def test_an_exported_backbone_keeps_its_blocks_so_multi_layer_embeddings_survive(tmp_path):
    """A project's backbone registered by another project gives every block's map (``concat:3`` the same
    as in the project that learned it), not only the last block's: it was one block before."""
    from ml.backbones.export import export_torchscript
    from ml.backbones.external import registered_checkpoint
    from ml.embedding import extract_embeddings, load_backbone
    from ml.pretrain import random_backbone_checkpoint

    images = np.random.default_rng(1).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    learned = random_backbone_checkpoint(images, backbone="cnn")
    export_torchscript(learned, tmp_path / "exported.pt")
    registered = registered_checkpoint(tmp_path / "exported.pt", "torchscript")
    assert len(load_backbone(registered).blocks) == len(load_backbone(learned).blocks) > 1
    for layer in ("concat:3", "penultimate"):
        again = extract_embeddings(registered, images, layer=layer, dtype=np.float32)
        assert np.allclose(again, extract_embeddings(learned, images, layer=layer, dtype=np.float32), atol=1e-4)
