"""Near-duplicates and outliers on the embeddings (issue 18, items 2 and 3). Arrays in, arrays out.

* **k nearest neighbours by cosine** (``knn``): an exact blocked search (query blocks times all rows,
  ``torch.topk`` per block, never an N x N matrix) up to ``EXACT_UP_TO`` rows (20,000); above it the same blocked
  search inside an inverted file: spherical k-means cells (sqrt(2N), 500 rows or more each), every row listed in its two
  nearest cells, and the queries of a cell compared exactly with the rows listed in the ``nprobe`` cells
  nearest to its centroid (itself first). A duplicate sits beside its original in the embedding space, so
  it shares a cell (or a neighbouring one) with it: the approximation only loses far neighbours, which
  neither the duplicate rule nor an outlier's mean distance depends on much. The CPU seconds of 1M x 256
  are in docs/benchmarks.md.
* **Duplicate groups** (``duplicate_groups``): two rows are duplicates when their cosine similarity is
  at least ``threshold``, or at least ``hash_threshold`` and their perceptual hashes differ in at most
  ``max_hamming`` bits (a re-encoded, resized or slightly cropped copy keeps its hash while a backbone
  may move it a little), or their hashes are equal (not for blank images, which all hash alike). A group
  is a set of rows that are **all** duplicates of one another (complete linkage), grown from the kNN
  pairs strongest first: a pair joins two groups only if every member of one is a duplicate of every
  member of the other. Connected components chained look-alikes (a~b, b~c, ... with the ends far apart)
  into groups of hundreds (300 small digits); a complete group cannot chain. A group's ``similarity`` is
  the weakest cosine between any two of its members.
* **Outliers** (``atypical``): the mean cosine distance to the k nearest neighbours, from the same pass;
  ``phash`` and ``grey_std`` (blank or nearly constant images) on small grey images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 20_000
NEIGHBOURS = 10
# Cells searched per query cell above EXACT_UP_TO: its own list and that of the cell nearest its centroid.
# One alone finds the near-duplicates (a copy is listed in its original's cell) but misses the neighbours
# across a border, which are what make a border row look atypical: on 30k clustered rows one probe kept
# 140 of the exact 200 least typical, two 198 (docs/benchmarks.md).
NPROBE = 2
MIN_CELL = 500
# Defaults measured on EuroSAT (bench/duplicates.py, docs/benchmarks.md). With the images' hashes (the
# service always has them), a pair is a duplicate when its embeddings pass HASH_THRESHOLD and its pictures
# agree: pHashes at most MAX_HAMMING bits apart or low frequencies at least LOW_FREQ_THRESHOLD alike. The
# embeddings alone cannot tell a copy from a look-alike (two calm sea tiles are closer than a tile and its
# crop under every embedding measured), so the cosine rule (THRESHOLD) serves arrays without pictures.
THRESHOLD = 0.95
HASH_THRESHOLD = 0.80
MAX_HAMMING = 14
LOW_FREQ_THRESHOLD = 0.92
LOW_FREQ = 6  # the 6 x 6 lowest DCT frequencies of the 32 px grey image, the constant left out
BLANK_STD = 4.0  # grey levels (0-255): below it an image is nearly constant
HASH_SIDE = 32  # phash reads a 32 x 32 grey image; its 8 x 8 lowest frequencies make the 64 bits

Progress = Callable[[float, str], None]


def _unit(X: np.ndarray, centre: bool = True):  # -> torch.Tensor
    """Rows as unit vectors, after the pool's mean row is taken off: pixels and ReLU features are all
    positive, so any two rows of a raw embedding look alike (EuroSAT's sea and forest tiles pass a cosine
    of 0.95); centred, the cosine measures what sets two rows apart from the pool."""
    import torch

    T = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if centre:
        T = T - T.mean(0, keepdim=True)
    return T / T.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _topk_block(Q, C, k: int, self_cols=None):  # (b, D), (m, D) -> (b, k) idx into C, sims
    import torch

    S = Q @ C.T
    if self_cols is not None:
        S[torch.arange(len(Q)), self_cols] = -float("inf")  # not its own neighbour
    kk = min(k, S.shape[1] - (1 if self_cols is not None else 0))
    if kk <= 0:
        return S.new_zeros((len(Q), 0), dtype=torch.long), S.new_zeros((len(Q), 0))
    sim, idx = torch.topk(S, kk, dim=1)
    return idx, sim


def knn(X: np.ndarray, k: int = NEIGHBOURS, *, exact_up_to: int = EXACT_UP_TO, nprobe: int = NPROBE,
        centre: bool = True, seed: int = 0, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(idx (N, k) int64, sim (N, k) float32): each row's k most cosine-similar other rows (cosine of
    the centred rows unless ``centre`` is False), most similar first; -1 and -inf past the end (fewer
    than k + 1 rows)."""
    import torch

    N = len(X)
    idx = np.full((N, k), -1, dtype=np.int64)
    sim = np.full((N, k), -np.inf, dtype=np.float32)
    if N < 2:
        return idx, sim
    U = _unit(X, centre)
    with torch.no_grad():
        if N <= exact_up_to:
            # A block of queries against every row: about 256 MB of similarities at a time.
            b = int(max(16, min(4096, (64 << 20) // N)))
            for s in range(0, N, b):
                e = min(N, s + b)
                i, v = _topk_block(U[s:e], U, k, self_cols=torch.arange(s, e))
                idx[s:e, :i.shape[1]] = i.numpy()
                sim[s:e, :i.shape[1]] = v.numpy()
                if progress:
                    progress(e / N, f"neighbours: {e:,} of {N:,}")
            return idx, sim
        return _ivf(U, k, nprobe, seed, idx, sim, progress)


def _kmeans(U, n_cells: int, seed: int, iters: int = 8, per_cell: int = 32):
    """Spherical k-means centroids (unit rows) fitted on a sample of at most ``per_cell`` rows a cell
    (32 place a centroid as well as 64 for what the cells are for, at half the cost)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    N = len(U)
    sample = U[torch.randperm(N, generator=g)[:min(N, per_cell * n_cells)]]
    C = sample[torch.randperm(len(sample), generator=g)[:n_cells]].clone()
    for _ in range(iters):
        assign = torch.cat([(sample[s:s + 8192] @ C.T).argmax(1) for s in range(0, len(sample), 8192)])
        sums = torch.zeros_like(C).index_add_(0, assign, sample)
        counts = torch.bincount(assign, minlength=n_cells)
        empty = counts == 0
        sums[empty] = sample[torch.randint(len(sample), (int(empty.sum()),), generator=g)]
        C = sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return C


def _ivf(U, k: int, nprobe: int, seed: int, idx: np.ndarray, sim: np.ndarray,
         progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    """The inverted-file search. Every row is listed in its two nearest cells; the queries of a cell
    (the rows whose nearest cell it is) are compared with the rows listed in it (and, for ``nprobe`` > 1,
    in the cells nearest its centroid). A pair split by a cell border still meets: each is listed in the
    other's cell when that cell is its second nearest, which is where a near-duplicate lands.

    The cost is two matrix products: every row against the centroids (N x n_cells) and every query
    against its cells' lists (N x 2 nprobe N / n_cells); sqrt(2N) cells (1,414 at 1M) keep the first
    small. The rows of a cell's list lie in one slice (sorted once by cell), its own queries first, so a
    one-probe search gathers no index set and needs no deduplication (the old search sorted and
    deduplicated four cells' lists for every cell: 311 CPU seconds at 1M; 149 now, with two probes)."""
    import torch

    N = len(U)
    # At least MIN_CELL rows a cell: in smaller cells most rows sit near a border and pairs split (on
    # 2,500 EuroSAT files, 71 cells of 35 lost 6 of the 480 copies the exact search finds).
    n_cells = int(max(2, min(round(np.sqrt(2 * N)), N // MIN_CELL)))
    C = _kmeans(U, n_cells, seed)
    top2 = torch.cat([torch.topk(U[s:s + 8192] @ C.T, 2, dim=1).indices for s in range(0, N, 8192)]).numpy()
    primary = top2[:, 0]
    # Lists: each row in its two nearest cells, a cell's own queries first (in the same order as
    # ``q_order``), so that query j of a cell is column j of its list and never its own neighbour.
    listed_rows = np.concatenate([np.arange(N), np.arange(N)])
    listed_cells = np.concatenate([primary, top2[:, 1]])
    second = np.concatenate([np.zeros(N, np.int8), np.ones(N, np.int8)])
    order = np.lexsort((second, listed_cells))
    list_rows = listed_rows[order]
    list_starts = np.searchsorted(listed_cells[order], np.arange(n_cells + 1))
    q_counts = np.bincount(primary, minlength=n_cells)
    probes = torch.topk(C @ C.T, min(nprobe, n_cells), dim=1).indices.numpy() if nprobe > 1 else None
    done = 0
    for c in range(n_cells):
        nq = int(q_counts[c])
        if nq == 0:
            continue
        cands = list_rows[list_starts[c]:list_starts[c + 1]]
        queries = cands[:nq]
        self_cols = np.arange(nq)
        if probes is not None:  # more cells: the union of their lists (a row listed in two of them once)
            more = [list_rows[list_starts[p]:list_starts[p + 1]] for p in probes[c] if p != c]
            cands = np.unique(np.concatenate([cands, *more]))
            self_cols = np.searchsorted(cands, queries)
        Cm = U[torch.from_numpy(cands)]
        Q = Cm[:nq] if probes is None else U[torch.from_numpy(queries)]
        for s in range(0, nq, 2048):
            q = queries[s:s + 2048]
            i, v = _topk_block(Q[s:s + 2048], Cm, k, self_cols=torch.from_numpy(self_cols[s:s + 2048]))
            idx[q, :i.shape[1]] = cands[i.numpy()]
            sim[q, :i.shape[1]] = v.numpy()
        done += nq
        if progress and c % 32 == 0:
            progress(done / N, f"neighbours: {done:,} of {N:,}")
    return idx, sim


def atypical(sim: np.ndarray) -> np.ndarray:
    """(N,) mean cosine distance (1 - similarity) to the k nearest neighbours: higher is less typical."""
    valid = np.isfinite(sim)
    d = np.where(valid, 1.0 - sim, 0.0).sum(1)
    return (d / np.maximum(valid.sum(1), 1)).astype(np.float32)


def phash(grey: np.ndarray) -> np.ndarray:
    """(N,) uint64 perceptual hashes of (N, 32, 32) grey images: the signs of the 8 x 8 lowest DCT
    frequencies against their median (the constant term left out of the median)."""
    from scipy.fft import dctn

    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 3 or g.shape[1:] != (HASH_SIDE, HASH_SIDE):
        raise ValueError(f"phash wants (N, {HASH_SIDE}, {HASH_SIDE}) grey images, got {g.shape}")
    d = dctn(g, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(g), 64)
    bits = d > np.median(d[:, 1:], axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def low_frequencies(grey: np.ndarray, k: int = LOW_FREQ) -> np.ndarray:
    """(N, k*k - 1) float32 unit rows: the k x k lowest DCT frequencies of (N, 32, 32) grey images without
    the constant term (brightness), a continuous pHash: a crop or a resize moves it a little, where a
    hash's bits near the median flip."""
    from scipy.fft import dctn

    d = dctn(np.asarray(grey, dtype=np.float64), axes=(1, 2), norm="ortho")[:, :k, :k].reshape(len(grey), -1)[:, 1:]
    return (d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between two arrays of uint64 hashes."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


def grey_std(grey: np.ndarray) -> np.ndarray:
    """(N,) standard deviation of each grey image's pixels (0-255): near 0 for a blank frame."""
    g = np.asarray(grey, dtype=np.float32)
    return g.reshape(len(g), -1).std(1)


@dataclass
class Groups:
    """Duplicate groups; rows index the arrays given to ``duplicate_groups``."""

    members: list[np.ndarray]  # each group's rows, ascending; groups largest first, then most similar
    similarity: np.ndarray  # (G,) float32 the weakest cosine between two of the group's members
    group_of: np.ndarray  # (N,) int64 each row's group, -1 for a row in none


def duplicate_groups(idx: np.ndarray, sim: np.ndarray, threshold: float = THRESHOLD, *,
                     X: np.ndarray | None = None, hashes: np.ndarray | None = None,
                     low_freq: np.ndarray | None = None, hash_threshold: float = HASH_THRESHOLD,
                     max_hamming: int = MAX_HAMMING, low_freq_threshold: float = LOW_FREQ_THRESHOLD,
                     blank: np.ndarray | None = None, centre: bool = True) -> Groups:
    """Complete-linkage groups of duplicates among the kNN pairs (``knn``'s output).

    Without ``hashes``: two rows are duplicates when their cosine is at least ``threshold``. With them:
    when the cosine is at least ``hash_threshold`` and the pictures agree (hashes at most ``max_hamming``
    bits apart, or ``low_freq`` rows at least ``low_freq_threshold`` alike), or the hashes are equal
    (their cosine measured on ``X``, centred as ``knn`` did), except ``blank`` rows.

    The candidate pairs are the kNN pairs (and equal hashes) that are duplicates, taken strongest first;
    a pair merges its two groups when every member of one is a duplicate of every member of the other:
    measured on ``X`` when given (the service gives it: any pair, not only the k nearest), otherwise read
    from the candidate pairs (a pair outside the kNN lists counts as no duplicate)."""
    N = len(idx)
    rows = np.repeat(np.arange(N), idx.shape[1])
    cols, s = idx.ravel(), sim.ravel()
    ok = cols >= 0
    rows, cols, s = rows[ok], cols[ok], s[ok]
    rule = _PairRule(threshold, hashes, low_freq, hash_threshold, max_hamming, low_freq_threshold, blank)
    keep = rule.duplicate(rows, cols, s)
    rows, cols, s = rows[keep], cols[keep], s[keep]
    mean = _mean_row(X) if X is not None and centre else None
    if hashes is not None and X is not None:
        er, ec = _equal_hash_pairs(hashes, blank)
        if len(er):
            cos = (_unit_rows(X, er, mean) * _unit_rows(X, ec, mean)).sum(1)
            rows, cols, s = np.concatenate([rows, er]), np.concatenate([cols, ec]), np.concatenate([s, cos])
    group_of = np.full(N, -1, dtype=np.int64)
    if len(rows) == 0:
        return Groups([], np.zeros(0, np.float32), group_of)
    # Each unordered pair once, with its largest similarity (a pair is listed from both ends).
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    order = np.lexsort((-s, b, a))
    a, b, s = a[order], b[order], s[order]
    first = np.concatenate([[True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])])
    a, b, s = a[first], b[first], s[first].astype(np.float64)
    if X is not None:
        cross = _cross_on_rows(X, np.unique(np.concatenate([a, b])), rule, mean)
    else:
        cross = _cross_on_pairs(a, b, s)
    members, weakest = _complete_linkage(N, a, b, s, cross)
    rank = np.lexsort((-weakest, -np.array([len(m) for m in members])))
    members = [members[r] for r in rank]
    weakest = weakest[rank]
    for g, m in enumerate(members):
        group_of[m] = g
    return Groups(members, weakest, group_of)


Cross = Callable[[list[int], list[int]], tuple[bool, float]]


def _complete_linkage(N: int, a: np.ndarray, b: np.ndarray, s: np.ndarray,
                      cross: Cross) -> tuple[list[np.ndarray], np.ndarray]:
    """(groups' rows ascending, each group's weakest similarity) from the duplicate pairs (a, b, s), strongest
    first: a pair merges its rows' groups when ``cross(A, B)`` says every member of one is a duplicate of
    every member of the other (two single rows: the pair itself is one)."""
    label = np.arange(N)
    members: dict[int, list[int]] = {}
    weakest: dict[int, float] = {}
    for e in np.argsort(-s, kind="stable"):
        i, j = int(a[e]), int(b[e])
        gi, gj = int(label[i]), int(label[j])
        if gi == gj:
            continue
        A, B = members.get(gi, [i]), members.get(gj, [j])
        ok, w = (True, float(s[e])) if len(A) == 1 and len(B) == 1 else cross(A, B)
        if not ok:
            continue  # a look-alike of some members, not of all: no chain
        if len(A) < len(B):
            gi, gj, A, B = gj, gi, B, A
        label[B] = gi
        members[gi] = A + B
        members.pop(gj, None)
        weakest[gi] = min(weakest.pop(gi, np.inf), weakest.pop(gj, np.inf), w)
    groups = [np.array(sorted(m), dtype=np.int64) for m in members.values()]
    return groups, np.array([weakest[g] for g in members], dtype=np.float32)


def _cross_on_rows(X: np.ndarray, nodes: np.ndarray, rule: _PairRule, mean: np.ndarray | None) -> Cross:
    """Every pair of two groups measured on the embeddings (``nodes``: the rows any pair names, ascending;
    ``mean``: the row taken off first, as ``knn`` centres)."""
    units = _unit_rows(X, nodes, mean)

    def cross(A: list[int], B: list[int]) -> tuple[bool, float]:
        cos = units[np.searchsorted(nodes, A)] @ units[np.searchsorted(nodes, B)].T
        r, c = np.repeat(A, len(B)), np.tile(B, len(A))
        ok = rule.duplicate(r, c, cos.ravel())
        if rule.hashes is not None:  # equal hashes join below the cosine bar (not blank ones)
            ok |= rule.equal_hash(r, c)
        return bool(ok.all()), float(cos.min())
    return cross


def _cross_on_pairs(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> Cross:
    """Every pair of two groups read from the duplicate pairs found (no embeddings: a pair outside the kNN
    lists counts as no duplicate)."""
    pair_sim = {(int(i), int(j)): float(v) for i, j, v in zip(a, b, s, strict=True)}

    def cross(A: list[int], B: list[int]) -> tuple[bool, float]:
        sims = [pair_sim.get((min(i, j), max(i, j))) for i in A for j in B]
        if any(v is None for v in sims):
            return False, 0.0
        return True, min(v for v in sims if v is not None)
    return cross


class _PairRule:
    """Whether pairs of rows are duplicates, given their cosine: the rule ``duplicate_groups`` documents."""

    def __init__(self, threshold: float, hashes: np.ndarray | None, low_freq: np.ndarray | None,
                 hash_threshold: float, max_hamming: int, low_freq_threshold: float, blank: np.ndarray | None):
        self.threshold, self.hashes, self.low_freq = threshold, hashes, low_freq
        self.hash_threshold, self.max_hamming, self.low_freq_threshold = hash_threshold, max_hamming, low_freq_threshold
        self.blank = None if blank is None else np.asarray(blank, bool)

    def duplicate(self, r: np.ndarray, c: np.ndarray, cos: np.ndarray) -> np.ndarray:
        if self.hashes is None:
            return cos >= self.threshold
        agree = hamming(self.hashes[r], self.hashes[c]) <= self.max_hamming
        if self.low_freq is not None:
            agree |= (self.low_freq[r] * self.low_freq[c]).sum(1) >= self.low_freq_threshold
        return (cos >= self.hash_threshold) & agree

    def equal_hash(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        assert self.hashes is not None
        same = np.asarray(self.hashes, np.uint64)[r] == np.asarray(self.hashes, np.uint64)[c]
        if self.blank is not None:
            same &= ~self.blank[r] & ~self.blank[c]
        return same


def _mean_row(X: np.ndarray, block: int = 65536) -> np.ndarray:
    """The pool's mean row (float64 sums over blocks: no float32 copy of the whole pool)."""
    total = np.zeros(X.shape[1], dtype=np.float64)
    for s in range(0, len(X), block):
        total += np.asarray(X[s:s + block], dtype=np.float64).sum(0)
    return (total / max(len(X), 1)).astype(np.float32)


def _unit_rows(X: np.ndarray, rows: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """Rows of X (less ``mean`` when given) as unit vectors, float32."""
    U = np.asarray(X[rows], dtype=np.float32)
    if mean is not None:
        U = U - mean
    return U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)


def _equal_hash_pairs(hashes: np.ndarray, blank: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first of its hash, another of that hash) among non-blank rows: a star per equal hash."""
    rows = np.arange(len(hashes)) if blank is None else np.flatnonzero(~np.asarray(blank, bool))
    h = np.asarray(hashes, np.uint64)[rows]
    order = np.argsort(h, kind="stable")
    hs, rs = h[order], rows[order]
    starts = np.concatenate([[True], hs[1:] != hs[:-1]]) if len(hs) else np.zeros(0, bool)
    head = rs[np.maximum.accumulate(np.where(starts, np.arange(len(hs)), 0))] if len(hs) else rs
    pair = ~starts
    return head[pair], rs[pair]
