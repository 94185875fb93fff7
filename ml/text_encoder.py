"""A small transformer encoder for a text project's documents (issue 19; BERT's architecture at a size a
CPU pretrains in minutes), and the seed's feature-based use of it: the layer (token embeddings, last,
second-to-last, a weighted sum or concatenation of the last k) and the pooling (mean over the tokens,
or the first token, ``[CLS]``).

Arrays in, arrays out: token ids (``ml.text_tokenizer.encode``) in, (N, D) float32 rows out,
L2-normalised (each pooled layer normalised before the concatenation, as ``ml.embedding`` does for
image blocks, so every layer weighs the same in a dot product).

The "blocks" of the encoder (the name ``ml.embedding`` and the estimators use) are its hidden states:
block 0 the token + position embeddings, block i the output of layer i, so "last", "penultimate",
"concat:k" and "weighted:k" mean for a text project what they mean for an image one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.text_tokenizer import PAD

POOLINGS = ("mean", "first")


@dataclass(frozen=True)
class EncoderShape:
    vocab_size: int
    max_len: int = 128
    d_model: int = 192
    layers: int = 4
    heads: int = 4
    dropout: float = 0.0  # minutes of pretraining do not overfit; dropout cost a tenth of a CPU step

    def as_dict(self) -> dict:
        return asdict(self)


class TextEncoder(nn.Module):
    """Token + learned position embeddings, then ``layers`` pre-norm transformer layers (GELU, 4x wide
    feed-forward). ``forward_blocks(ids)`` gives every hidden state, (B, L, d) each; ``PAD`` tokens are
    masked out of attention. ``causal=True`` lets a position see only those before it (a GPT-style model);
    ``causal`` at construction is the default of ``forward_blocks``: an encoder trained by the causal LM
    (``load_text_encoder``) embeds documents as it was trained, each position reading only those before it
    (under full attention its features are those of a network it never was)."""

    def __init__(self, shape: EncoderShape, causal: bool = False) -> None:
        super().__init__()
        self.shape, self.causal = shape, causal
        d = shape.d_model
        self.tokens = nn.Embedding(shape.vocab_size, d, padding_idx=PAD)
        self.positions = nn.Embedding(shape.max_len, d)
        self.embed_norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(shape.dropout)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d, shape.heads, 4 * d, shape.dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(shape.layers)])
        self.final_norm = nn.LayerNorm(d)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)

    @property
    def out_dim(self) -> int:
        return self.shape.d_model

    @property
    def num_blocks(self) -> int:
        return self.shape.layers + 1

    def forward_blocks(self, ids: torch.Tensor, causal: bool | None = None) -> list[torch.Tensor]:
        """(B, L) ids to [embeddings, layer 1, ..., layer n] hidden states, the last after the final norm
        (``causal``: the encoder's own by default)."""
        causal = self.causal if causal is None else causal
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.embed_norm(self.tokens(ids) + self.positions(pos)[None]))
        pad = ids == PAD
        n = ids.shape[1]  # True where attention is not allowed, the same type as the padding mask
        mask = torch.ones(n, n, dtype=torch.bool, device=ids.device).triu(1) if causal else None
        out = [x]
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=pad, is_causal=causal)
            out.append(x)
        out[-1] = self.final_norm(out[-1])
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_blocks(ids)[-1]


def trim(ids: torch.Tensor) -> torch.Tensor:
    """Drop the columns that are padding in every row of the batch (batches are padded to the pool's length)."""
    longest = int((ids != PAD).sum(1).max().item()) if len(ids) else 1
    return ids[:, : max(1, longest)]


def pool_tokens(hidden: torch.Tensor, ids: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, d) to (B, d): the mean over the real tokens (``[CLS]`` and ``[SEP]`` included), or the first token."""
    if pooling == "first":
        return hidden[:, 0]
    if pooling != "mean":
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    keep = (ids != PAD).unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(1) / keep.sum(1).clamp_min(1.0)


def text_layer_indices(layer: str, num_blocks: int) -> list[int]:
    """Hidden states a layer choice pools: ``embeddings`` (block 0) or the image names (``ml.embedding.parse_layer``:
    last, penultimate, concat:k, weighted:k, weighted), a k past the encoder's depth taking every block."""
    from ml.embedding import layer_for, parse_layer

    if layer == "embeddings":
        return [0]
    return parse_layer(layer_for(layer, num_blocks), num_blocks)


@torch.inference_mode()
def embed_ids(encoder: TextEncoder, ids: np.ndarray, layer: str = "concat:3", pooling: str = "mean",
              batch_size: int = 256, device: str | None = None,
              progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """(N, L) token ids to (N, D) float32 L2-normalised features of ``layer`` pooled by ``pooling``.

    Documents go through in order of length, so a batch's padding is cut to its longest document."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder = encoder.to(dev).eval()
    idx = text_layer_indices(layer, encoder.num_blocks)
    order = np.argsort((ids != PAD).sum(1), kind="stable")
    out = np.empty((len(ids), len(idx) * encoder.out_dim), np.float32)
    for start in range(0, len(ids), batch_size):
        rows = order[start:start + batch_size]
        batch = trim(torch.from_numpy(ids[rows]).long().to(dev))
        hidden = encoder.forward_blocks(batch)
        pooled = [F.normalize(pool_tokens(F.layer_norm(hidden[i].float(), hidden[i].shape[-1:]) if i < len(hidden) - 1
                                          else hidden[i].float(), batch, pooling), dim=1) for i in idx]
        out[rows] = F.normalize(torch.cat(pooled, 1), dim=1).cpu().numpy()
        if progress is not None:
            progress(min(1.0, (start + len(rows)) / len(ids)), f"{start + len(rows)} of {len(ids)} documents")
    return out


def block_widths(encoder: TextEncoder, layer: str) -> list[int]:
    """Widths of the pooled hidden states ``embed_ids`` lays side by side for ``layer``."""
    return [encoder.out_dim] * len(text_layer_indices(layer, encoder.num_blocks))
