"""Near-duplicates and outliers on arrays (issue 18): the neighbours are the exact ones (and the cell
search finds the planted copies), groups are rows all above the threshold with one another (no chains),
perceptual hashes survive a resize and tell different images apart, blank images have no spread."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data_check import atypical, duplicate_groups, grey_std, hamming, knn, low_frequencies, phash


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _with_copies(n: int = 400, dim: int = 32, copies: int = 20, noise: float = 0.01, seed: int = 0):
    """Random directions, and ``copies`` of them re-added with a little noise; (X, planted pairs)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    src = rng.choice(n, copies, replace=False)
    dup = X[src] + noise * rng.normal(size=(copies, dim)).astype(np.float32)
    return np.concatenate([X, dup]), {(int(s), n + i) for i, s in enumerate(src)}


def test_knn_is_the_exact_cosine_neighbours_without_itself():
    X, _ = _with_copies(200)
    idx, sim = knn(X, 5, centre=False)
    U = _unit(X)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    truth = np.argsort(-S, axis=1)[:, :5]
    assert np.array_equal(np.sort(idx, 1), np.sort(truth, 1))
    assert np.allclose(sim, np.take_along_axis(S, idx, 1), atol=1e-5)
    assert (np.diff(sim, axis=1) <= 1e-6).all()  # most similar first
    assert not (idx == np.arange(len(X))[:, None]).any()


def test_centring_takes_off_what_every_row_shares():
    rng = np.random.default_rng(0)
    X = (5.0 + rng.normal(0, 1, (50, 8))).astype(np.float32)  # all alike before centring (cosine ~0.96)
    assert knn(X, 1, centre=False)[1].min() > 0.9
    assert knn(X, 1)[1].max() < 0.9


def test_knn_fewer_rows_than_k_pads():
    idx, sim = knn(np.eye(3, dtype=np.float32), 5)
    assert (idx[:, :2] >= 0).all() and (idx[:, 2:] == -1).all() and np.isinf(sim[:, 2:]).all()


@pytest.mark.parametrize("nprobe", [1, 3])
def test_cell_search_finds_every_planted_copy_and_the_same_groups_as_the_exact_search(nprobe):
    X, pairs = _with_copies(3000, dim=16, copies=60, seed=3)
    exact_idx, exact_sim = knn(X, 5)
    exact = duplicate_groups(exact_idx, exact_sim, 0.98)
    idx, sim = knn(X, 5, exact_up_to=100, nprobe=nprobe)  # forces the inverted-file search
    cells = duplicate_groups(idx, sim, 0.98)
    found = {tuple(sorted(map(int, g))) for g in cells.members}
    assert found == {tuple(sorted(p)) for p in pairs}
    assert found == {tuple(sorted(map(int, g))) for g in exact.members}
    # Never itself, no row twice, most similar first; and most of the exact ten nearest.
    assert not (idx == np.arange(len(X))[:, None]).any()
    assert all(len(set(r)) == len(r) for r in idx[:500])
    assert (np.diff(sim, axis=1) <= 1e-6).all()


def test_two_probes_keep_the_least_typical_rows_of_the_exact_search():
    # Clustered rows, as embeddings are: a border row's neighbours sit in the next cell, which one probe
    # misses (on 30k rows it kept 140 of the exact 200 least typical; two probes 198).
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, 64))
    X = (centres[rng.integers(0, 100, 30000)] + 0.8 * rng.normal(size=(30000, 64))).astype(np.float32)
    exact = atypical(knn(X, 10)[1])
    cells = atypical(knn(X, 10, exact_up_to=100)[1])
    top = set(np.argsort(-exact)[:200].tolist())
    assert len(top & set(np.argsort(-cells)[:200].tolist())) >= 190


def test_groups_are_rows_all_above_the_threshold_with_one_another():
    # Rows 0-1-2 chained (0~1 0.990, 1~2 0.990 and a little more, 0~2 0.961), 3-4 at 0.97, 5 alone.
    a = np.array([1.0, 0, 0, 0])
    X = np.stack([
        a, _unit(np.array([[1.0, 0.1425, 0, 0]]))[0], _unit(np.array([[1.0, 0.2876, 0, 0]]))[0],
        [0, 1.0, 0, 0], _unit(np.array([[0.0, 1.0, 0.2493, 0]]))[0], [0, 0, 0, 1.0],
    ]).astype(np.float32)
    idx, sim = knn(X, 3, centre=False)
    for given in (None, X):  # every pair measured on the rows, or read from the kNN pairs
        g = duplicate_groups(idx, sim, 0.98, X=given, centre=False)
        # 0 and 2 are 0.961 alike: the stronger pair (1, 2) is a group, 0 is left out, not chained in.
        assert [sorted(m.tolist()) for m in g.members] == [[1, 2]]
        assert g.similarity[0] == pytest.approx(0.990, abs=2e-3)
        assert g.group_of.tolist() == [-1, 0, 0, -1, -1, -1]
        low = duplicate_groups(idx, sim, 0.96, X=given, centre=False)
        assert [sorted(m.tolist()) for m in low.members] == [[0, 1, 2], [3, 4]]
        assert low.similarity.tolist() == pytest.approx([0.961, 0.97], abs=2e-3)  # the weakest of any two
        assert duplicate_groups(idx, sim, 0.999, X=given, centre=False).members == []


@pytest.mark.parametrize("pictures", [False, True])
def test_a_chain_of_look_alikes_is_never_one_group(pictures):
    """Rows along an arc, each 0.99 alike to the next and the ends 150 degrees apart (look-alike digits
    in a row of small steps): connected components made one group of all 20; a group must hold rows
    that are all duplicates of one another."""
    step = np.arccos(0.99)
    angles = step * np.arange(20)
    X = np.stack([np.cos(angles), np.sin(angles), np.zeros(20)], 1).astype(np.float32)
    idx, sim = knn(X, 4, centre=False)
    kw = {"hashes": np.zeros(20, np.uint64) + np.arange(20, dtype=np.uint64), "hash_threshold": 0.98,
          "max_hamming": 64} if pictures else {}
    for given in (None, X):
        g = duplicate_groups(idx, sim, 0.98, X=given, centre=False, **kw)
        assert g.members, "neighbouring rows are duplicates"
        assert max(len(m) for m in g.members) <= 2  # three in a row are 0.96 apart at the ends
        U = _unit(X)
        for m in g.members:
            assert (U[m] @ U[m].T).min() >= 0.98 - 1e-4
        assert g.group_of[0] != g.group_of[19] or g.group_of[0] == -1


def test_hash_joins_a_copy_below_the_cosine_threshold_but_not_a_stranger():
    X = np.array([[1.0, 0, 0], [0.85, 0.527, 0], [0.85, 0, 0.527]], dtype=np.float32)  # cos 0.85 each to row 0
    idx, sim = knn(X, 2, centre=False)
    hashes = np.array([0b1111, 0b1110, 0xFFFF_0000_FFFF_0000], dtype=np.uint64)
    g = duplicate_groups(idx, sim, 0.95, hashes=hashes, hash_threshold=0.8, max_hamming=4)
    assert [sorted(m.tolist()) for m in g.members] == [[0, 1]]
    assert duplicate_groups(idx, sim, 0.95).members == []


def test_with_pictures_a_look_alike_needs_them_to_agree():
    """Two rows with nearly equal embeddings (two calm sea tiles) whose pictures differ are not joined
    once hashes are given; agreeing low frequencies join a pair whose hashes differ (a crop)."""
    X = np.array([[1.0, 0, 0], [0.999, 0.045, 0], [0, 1.0, 0], [0.03, 0.9995, 0]], dtype=np.float32)
    idx, sim = knn(X, 1, centre=False)
    hashes = np.array([0, 0xFFFF_FFFF, 0, 0xFFFF_0000_FFFF_0000], dtype=np.uint64)
    assert len(duplicate_groups(idx, sim, 0.95).members) == 2  # embeddings alone: both pairs
    assert duplicate_groups(idx, sim, hashes=hashes, max_hamming=14).members == []
    low = np.array([[1.0, 0], [0, 1.0], [0.6, 0.8], [0.6, 0.8]], dtype=np.float32)
    g = duplicate_groups(idx, sim, hashes=hashes, low_freq=low, max_hamming=14, low_freq_threshold=0.92)
    assert [sorted(m.tolist()) for m in g.members] == [[2, 3]]


def test_equal_hashes_join_even_far_apart_but_blank_images_do_not():
    X = np.eye(4, dtype=np.float32)
    idx, sim = knn(X, 3, centre=False)
    hashes = np.array([7, 7, 9, 9], dtype=np.uint64)
    g = duplicate_groups(idx, sim, 0.95, X=X, hashes=hashes, blank=np.array([False, False, True, True]),
                         centre=False)
    assert [sorted(m.tolist()) for m in g.members] == [[0, 1]]


def _image(seed: int, side: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (8, 8))
    return np.kron(small, np.ones((side // 8, side // 8))) + rng.normal(0, 3, (side, side))


def _shrink(img: np.ndarray, side: int = 32) -> np.ndarray:
    f = img.shape[0] // side
    return img[:side * f, :side * f].reshape(side, f, side, f).mean((1, 3))


def _resize(img: np.ndarray, side: int = 32) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.asarray(im.resize((side, side), Image.Resampling.BOX), dtype=np.float32)


def test_phash_survives_a_resize_and_a_small_crop_and_separates_images():
    imgs = [_image(s) for s in range(20)]
    h = phash(np.stack([_shrink(i) for i in imgs]))
    resized = phash(np.stack([_shrink(i[::2, ::2]) for i in imgs]))  # 64 px copy
    cropped = phash(np.stack([_resize(i[4:-4, 4:-4]) for i in imgs]))  # 6 % cut off, 120 px
    assert (hamming(h, resized) <= 4).all()
    assert (hamming(h, cropped) <= 10).all()
    strangers = hamming(h[:, None], h[None, :])[~np.eye(20, dtype=bool)]
    assert strangers.min() > 10


def test_low_frequencies_of_a_resized_copy_agree_and_of_strangers_do_not():
    imgs = [_image(s) for s in range(20)]
    a = low_frequencies(np.stack([_shrink(i) for i in imgs]))
    b = low_frequencies(np.stack([_shrink(i[::2, ::2]) for i in imgs]))
    assert ((a * b).sum(1) > 0.98).all()
    cross = a @ a.T
    assert cross[~np.eye(20, dtype=bool)].max() < 0.9


def test_phash_refuses_another_shape():
    with pytest.raises(ValueError, match="32, 32"):
        phash(np.zeros((2, 16, 16)))


def test_blank_images_have_no_spread_and_atypical_rows_score_highest():
    assert grey_std(np.full((1, 32, 32), 128.0))[0] == 0
    assert grey_std(np.stack([_image(1)]))[0] > 40
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.05, (100, 8)) + 1, [[-1, 1, -1, 1, -1, 1, -1, 1]]]).astype(np.float32)
    score = atypical(knn(X, 5)[1])
    assert score.argmax() == 100
