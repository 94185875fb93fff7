"""Each pretext loss against a hand-written reference at tiny sizes."""

from __future__ import annotations

import math

import pytest
import torch

from ml.augment import BatchAugment
from ml.backbones import create_backbone
from ml.ssl.jigsaw import Jigsaw, permutation_set
from ml.ssl.masked_ae import MaskedAutoencoder, patch_normalised, random_patch_mask
from ml.ssl.patches import extract_patches
from ml.ssl.relative_patch import NEIGHBOURS, RelativePatchLocation
from ml.ssl.rotation import RotationPrediction, rotate_all
from ml.ssl.simclr import nt_xent_loss

NO_AUG = BatchAugment(scale=None, jitter_p=0.0, grayscale_p=0.0, noise_std=0.0)


def _ce(logits: torch.Tensor, label: int) -> float:
    row = [float(v) for v in logits]
    m = max(row)
    return -(row[label] - m - math.log(sum(math.exp(v - m) for v in row)))


def test_nt_xent_matches_loops():
    torch.manual_seed(0)
    b, d, t = 3, 5, 0.3
    z1, z2 = torch.randn(b, d), torch.randn(b, d)
    z = [v / v.norm() for v in torch.cat([z1, z2])]
    total = 0.0
    for i in range(2 * b):
        pos = (i + b) % (2 * b)
        sims = {j: float(z[i] @ z[j]) / t for j in range(2 * b) if j != i}
        total += -(sims[pos] - math.log(sum(math.exp(s) for s in sims.values())))
    assert nt_xent_loss(z1, z2, t).item() == pytest.approx(total / (2 * b), rel=1e-5)


def test_nt_xent_perfect_views_low_loss():
    z = torch.eye(4)
    assert nt_xent_loss(z, z, 0.1) < nt_xent_loss(z, z.roll(1, 0), 0.1)


def test_rotate_all():
    x = torch.arange(4.0).view(1, 1, 2, 2)  # [[0,1],[2,3]]
    r, labels = rotate_all(x)
    assert labels.tolist() == [0, 1, 2, 3]
    assert r[1, 0].tolist() == [[1, 3], [0, 2]]  # 90 degrees counter-clockwise
    assert r[2, 0].tolist() == [[3, 2], [1, 0]]


def _seeded(cls, channels=1, size=16, **kw):
    torch.manual_seed(0)
    return cls(create_backbone("cnn", channels, size, widths=(4, 8, 8, 8)), augment=NO_AUG, **kw).eval()


def test_rotation_loss_matches_reference():
    m = _seeded(RotationPrediction)
    x = torch.rand(2, 1, 16, 16)
    loss = m(x, torch.Generator().manual_seed(0)).item()
    ref = []
    for k in range(4):
        for i in range(2):
            logits = m.head(m.encode(torch.rot90(x[i:i + 1], k, dims=(2, 3))))[0]
            ref.append(_ce(logits, k))
    assert loss == pytest.approx(sum(ref) / len(ref), rel=1e-5)


def test_random_patch_mask():
    mask = random_patch_mask(3, 10, 4, 0.5, torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1, 10, 10)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (mask[:, :, :4, :4] == mask[:, :, :1, :1]).all()  # constant within a patch


def _masked_ae_by_hand(m, x):
    """(loss from the module, and its clean input, mask and reconstruction redone step by step)."""
    loss = m(x, torch.Generator().manual_seed(5)).item()
    g = torch.Generator().manual_seed(5)
    clean = m.backbone.normalize(x)
    mask = random_patch_mask(len(x), x.shape[-1], m.patch, m.mask_ratio, g)
    noise = torch.randn(clean.shape, generator=g) * m.noise_std
    recon = m.decoder(m.backbone.forward_blocks((clean + noise) * (1 - mask))[-1])
    return loss, clean, mask, recon


def test_masked_ae_loss_matches_reference():
    m = _seeded(MaskedAutoencoder, patch=4, visible_weight=0.25)
    loss, clean, mask, recon = _masked_ae_by_hand(m, torch.rand(2, 1, 16, 16))
    num = den = 0.0
    for i in range(2):
        for yy in range(16):
            for xx in range(16):
                w = 1.0 if mask[i, 0, yy, xx] else 0.25
                num += w * float(recon[i, 0, yy, xx] - clean[i, 0, yy, xx]) ** 2
                den += w
    assert loss == pytest.approx(num / den, rel=1e-4)


def test_patch_normalised_target_matches_reference():
    x = torch.rand(2, 3, 10, 10)
    out = patch_normalised(x, 4)
    assert out.shape == x.shape
    # A full 4x4 cell: its own mean and (biased) std.
    cell = x[1, 2, 4:8, 0:4]
    assert torch.allclose(out[1, 2, 4:8, 0:4], (cell - cell.mean()) / (cell.var(unbiased=False) + 1e-6).sqrt(),
                          atol=1e-5)
    # The ragged edge cell (rows 8-9) is padded by repeating its last row, as the target sees it.
    edge = torch.cat([x[0, 0, 8:10, 4:8], x[0, 0, 9:10, 4:8].repeat(2, 1)])
    ref = (edge - edge.mean()) / (edge.var(unbiased=False) + 1e-6).sqrt()
    assert torch.allclose(out[0, 0, 8:10, 4:8], ref[:2], atol=1e-5)


def test_masked_ae_with_normalised_targets_matches_reference():
    m = _seeded(MaskedAutoencoder, patch=4, norm_pix=True)
    loss, clean, mask, recon = _masked_ae_by_hand(m, torch.rand(2, 1, 16, 16))
    target = patch_normalised(clean, 4)
    w = mask + m.visible_weight * (1 - mask)
    assert loss == pytest.approx(float((w * (recon - target) ** 2).sum() / w.sum()), rel=1e-4)


def test_extract_patches_picks_cells():
    # A 3x3 image of distinct constant cells: with no gap, each patch is exactly its cell's value.
    x = torch.arange(9.0).view(1, 1, 3, 3).repeat_interleave(4, 2).repeat_interleave(4, 3)
    cells = torch.tensor([[4, 0, 8, 5]])
    p = extract_patches(x, cells, 3, torch.Generator().manual_seed(0), gap=0.0, out_size=4)
    assert p.shape == (4, 1, 4, 4)
    assert [float(v.mean()) for v in p] == pytest.approx([4, 0, 8, 5], abs=1e-5)


def test_relative_patch_loss_matches_reference():
    m = _seeded(RelativePatchLocation)
    x = torch.rand(3, 1, 16, 16)
    loss = m(x, torch.Generator().manual_seed(1)).item()
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 8, (3,), generator=g)
    cells = torch.stack([torch.full((3,), 4), NEIGHBOURS[labels]], 1)
    patches = extract_patches(x, cells, 3, g, out_size=m.patch_size)
    ref = []
    for i in range(3):
        pair = torch.cat([m.encode(patches[2 * i:2 * i + 1]), m.encode(patches[2 * i + 1:2 * i + 2])], 1)
        ref.append(_ce(m.head(pair)[0], int(labels[i])))
    assert loss == pytest.approx(sum(ref) / 3, rel=1e-5)


def test_permutation_sets():
    p2 = permutation_set(2, 24)
    assert p2.shape == (24, 4) and len({tuple(r) for r in p2.tolist()}) == 24
    p3 = permutation_set(3, 10)
    assert p3.shape == (10, 9) and p3[0].tolist() == list(range(9))
    assert all(sorted(r) == list(range(9)) for r in p3.tolist())
    dists = [(p3[i] != p3[j]).sum().item() for i in range(10) for j in range(i)]
    assert min(dists) >= 6  # far apart, unlike random neighbours that can differ in 2 tiles
    assert torch.equal(p3, permutation_set(3, 10))


def test_jigsaw_loss_matches_reference():
    m = _seeded(Jigsaw, grid=2)
    x = torch.rand(2, 1, 16, 16)
    loss = m(x, torch.Generator().manual_seed(2)).item()
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, len(m.perms), (2,), generator=g)
    tiles = extract_patches(x, m.perms[labels], 2, g, out_size=m.patch_size)
    ref = []
    for i in range(2):
        feats = torch.cat([m.encode(tiles[4 * i + j:4 * i + j + 1]) for j in range(4)], 1)
        ref.append(_ce(m.head(feats)[0], int(labels[i])))
    assert loss == pytest.approx(sum(ref) / 2, rel=1e-5)


def test_vicreg_loss_matches_loops():
    from ml.ssl.vicreg import vicreg_loss

    torch.manual_seed(0)
    b, d = 6, 4
    za, zb = torch.randn(b, d), torch.randn(b, d)

    def var_cov(z):
        mean = [sum(float(z[i, k]) for i in range(b)) / b for k in range(d)]
        cov = [[sum((float(z[i, p]) - mean[p]) * (float(z[i, q]) - mean[q]) for i in range(b)) / (b - 1)
                for q in range(d)] for p in range(d)]
        v = sum(max(0.0, 1 - math.sqrt(cov[k][k] + 1e-4)) for k in range(d)) / d
        c = sum(cov[p][q] ** 2 for p in range(d) for q in range(d) if p != q) / d
        return v, c

    inv = sum((float(za[i, k]) - float(zb[i, k])) ** 2 for i in range(b) for k in range(d)) / (b * d)
    (va, ca), (vb, cb) = var_cov(za), var_cov(zb)
    expected = 25 * inv + 25 * 0.5 * (va + vb) + 1 * (ca + cb)
    assert vicreg_loss(za, zb).item() == pytest.approx(expected, rel=1e-5)


def test_vicreg_penalises_collapse():
    from ml.ssl.vicreg import vicreg_loss

    spread = torch.randn(64, 8) * 2
    collapsed = torch.zeros(64, 8)
    assert vicreg_loss(collapsed, collapsed) > vicreg_loss(spread, spread)


def test_multicrop_views_and_sizes():
    from ml.ssl.multicrop import MultiCrop

    x = torch.rand(5, 3, 64, 64)
    glob, loc = MultiCrop(n_local=3).views(x, torch.Generator().manual_seed(0), BatchAugment(), 32)
    assert [v.shape for v in glob] == [torch.Size([5, 3, 32, 32])] * 2
    assert [v.shape for v in loc] == [torch.Size([5, 3, 16, 16])] * 3
    assert not torch.allclose(glob[0], glob[1])


def test_crop_from_a_larger_working_copy_is_antialiased():
    # A one-pixel checkerboard at twice the input side: a whole-image view must come out near its mean
    # grey (as an antialiased resize gives), not as a moire of the pattern.
    board = (torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2
    x = board.float().expand(2, 3, 64, 64).contiguous()
    whole = BatchAugment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    out = whole(x, torch.Generator().manual_seed(0), 32)
    assert out.shape == (2, 3, 32, 32)
    assert (out[:, :, 2:-2, 2:-2] - 0.5).abs().max() < 0.1
    resized = NO_AUG(x, torch.Generator().manual_seed(0), 32)
    assert resized.shape == (2, 3, 32, 32) and (resized[:, :, 2:-2, 2:-2] - 0.5).abs().max() < 0.1


def test_pretraining_keeps_larger_images_at_up_to_twice_the_input():
    import numpy as np

    from ml.pretrain import describe_input

    big = np.random.default_rng(0).integers(0, 255, (4, 200, 300, 3), dtype=np.uint8)
    config, arr = describe_input(big, image_size=64)
    assert config["image_size"] == 64 and arr.shape == (4, 128, 128, 3)
    small = np.random.default_rng(0).integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)
    assert describe_input(small, image_size=32)[1].shape == (4, 40, 40, 3)


def test_simclr_takes_local_crops_on_colour_photographs_only():
    from ml.ssl.simclr import SimCLR

    assert SimCLR(create_backbone("cnn", 3, 64)).crops.n_local == 4
    assert SimCLR(create_backbone("cnn", 3, 32)).crops.n_local == 0  # CIFAR-size thumbnails: two views
    assert SimCLR(create_backbone("cnn", 1, 64)).crops.n_local == 0  # greyscale scans and digits
    assert SimCLR(create_backbone("cnn", 3, 64), n_local=0).crops.n_local == 0
