"""Pretraining a text project's encoder on its own documents (issue 19): a WordPiece tokenizer learnt from
the pool, a small transformer encoder (``ml.text_encoder``), and a language-model pretext task
(``ml.ssl.mlm``: BERT's masked LM by default, GPT's causal LM) on the shared trainer (``ml.training``):
budgeted in seconds of a clock (wall, or CPU for benchmarks), resumable in chunks from its checkpoint.

The checkpoint's config carries the tokenizer (its JSON text) and the encoder's shape, so ``load_text_encoder``
rebuilds both; a resumed run keeps its tokenizer (documents imported since are cut into the same pieces).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from ml.checkpoint import Checkpoint
from ml.run import Run
from ml.ssl.mlm import TEXT_METHODS, MaskedLanguageModel
from ml.text_encoder import EncoderShape, TextEncoder, embed_ids
from ml.text_tokenizer import VOCAB_SIZE, choose_length, encode, from_text, to_text, train_tokenizer

DEFAULT_TEXT_METHOD = "mlm"
KIND = "text_encoder"  # ``config["kind"]`` of a text encoder's checkpoint
# The encoder's size: what 5 CPU-minutes on two cores train past 1,000 tokens/s per core (issue 19's floor;
# d 192 x 4 layers ran at about a third of that), with enough layers for the seed's choices of layer.
MAX_LEN = 64
D_MODEL, LAYERS, HEADS = 128, 3, 4


def is_text_checkpoint(ckpt: Checkpoint) -> bool:
    return ckpt.config.get("kind") == KIND


def pretrain_text(
    texts: Sequence[str],
    method: str = DEFAULT_TEXT_METHOD,
    run: Run = Run(),
    *,
    vocab_size: int = VOCAB_SIZE,
    max_len: int = MAX_LEN,
    d_model: int = D_MODEL,
    layers: int = LAYERS,
    heads: int = HEADS,
) -> Checkpoint:
    """Language-model pretraining of a text encoder on unlabelled documents (labels are never seen).

    Args:
        texts: the pool's documents.
        method: ``mlm`` (BERT) or ``causal_lm`` (GPT).
        run: the budget (``epochs`` instead for a reproducible step count), seed, device, progress
            (messages with the loss and tokens/s), checkpoint, resumption (a resumed run keeps its
            checkpoint's settings), chunk, learning rate, batch size and precision: ``ml.run.Run``.
        vocab_size, max_len, d_model, layers, heads: the tokenizer's and the encoder's size (a resumed
            run keeps its own).

    Returns:
        The ``Checkpoint``: encoder weights, config (tokenizer JSON, encoder shape, method), training state.
    """
    resume_from = run.resume_from()
    if resume_from is not None:
        c = resume_from.config  # a later chunk keeps the run's settings
        tok, shape = from_text(c["tokenizer"]), EncoderShape(**c["encoder"])
        method, run = c["method"], run.resumed(resume_from)
        ids = encode(tok, texts, shape.max_len)
    else:
        tok = train_tokenizer(texts, vocab_size=vocab_size)
        ids = encode(tok, texts, max_len)
        shape = EncoderShape(vocab_size=tok.get_vocab_size(), max_len=choose_length(ids, max_len), d_model=d_model,
                             layers=layers, heads=heads)
        ids = ids[:, : shape.max_len]
    cls = _method(method)
    cfg = run.train_config(len(ids), cls.default_batch_size, cls.default_lr, weight_decay=0.01, warmup=0.06,
                           final_lr_ratio=0.05)
    torch.manual_seed(run.seed)
    model = cls(TextEncoder(shape))
    tokens = int((ids != 0).sum())

    def report(fraction: float, loss: float, docs_per_s: float) -> None:
        if run.progress is not None:
            tokens_per_s = docs_per_s * tokens / max(1, len(ids))
            run.progress(fraction, f"{cls.name}: loss {loss:.3f}, {tokens_per_s:.0f} tokens/s")

    config: dict[str, Any] = {"kind": KIND, "method": cls.name, "tokenizer": to_text(tok), "encoder": shape.as_dict(),
                              "seed": run.seed, "documents": len(ids), "tokens": tokens}
    # The trainer takes any module with a ``backbone`` and ``forward(batch, g) -> loss`` (an SSLMethod by its type).
    return run.train(model, ids, cfg, config, resume_from, report)  # type: ignore[arg-type]


def _method(name: str) -> type[MaskedLanguageModel]:
    try:
        return TEXT_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown text pretraining method {name!r}; known: {sorted(TEXT_METHODS)}") from None


def load_text_encoder(ckpt: Checkpoint) -> tuple[TextEncoder, Tokenizer]:
    """The encoder (eval mode, on the CPU) and the tokenizer a text checkpoint holds; causal when it was
    trained by the causal LM (its features read each position's prefix, as in training)."""
    encoder = TextEncoder(EncoderShape(**ckpt.config["encoder"]), causal=_method(ckpt.config["method"]).causal)
    encoder.load_state_dict(ckpt.backbone_state)
    return encoder.eval(), from_text(ckpt.config["tokenizer"])


def encoder_embedding(ckpt: Checkpoint, texts: Sequence[str], layer: str = "concat:3", pooling: str = "mean",
                      device: str | None = None, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """(N, D) float32 L2-normalised features of ``texts`` under a pretrained text encoder
    (``ml.text_encoder.embed_ids``)."""
    encoder, tok = load_text_encoder(ckpt)
    ids = encode(tok, texts, encoder.shape.max_len)
    return embed_ids(encoder, ids, layer=layer, pooling=pooling, device=device, progress=progress)


def with_sparse_row(encoder: TextEncoder, tok: Tokenizer, layer: str, pooling: str,
                    sparse_row: np.ndarray | None) -> Callable[[list[str]], np.ndarray]:
    """An ``embed`` callable for ``ml.occlusion``: documents (a document and its variants with a word dropped)
    to rows as a text project's embedding holds them, the encoder's features of each beside ``sparse_row``,
    the document's own TF-IDF view held as it is (the TF-IDF and SVD fitted on the pool are not kept; that
    view's words are read exactly by ``ml.ngram_weights``); the encoder's features alone without it."""

    def embed(documents: list[str]) -> np.ndarray:
        feats = embed_ids(encoder, encode(tok, documents, encoder.shape.max_len), layer=layer, pooling=pooling)
        if sparse_row is None:
            return feats
        return two_views(np.repeat(np.asarray(sparse_row, np.float32)[None], len(documents), 0), feats)[0]

    return embed


def two_views(sparse_view: np.ndarray, encoder_view: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """A text project's embedding once it has an encoder: the TF-IDF view (LSA) and the encoder's features side
    by side, each L2-normalised row by row and the whole scaled back to unit length, with the two blocks'
    widths: co-training's two genuinely different views (``ml.fit.views`` splits at the last block), and
    the two blocks a ``weighted`` layer weighs."""
    a = sparse_view / (np.linalg.norm(sparse_view, axis=1, keepdims=True) + 1e-8)
    b = encoder_view / (np.linalg.norm(encoder_view, axis=1, keepdims=True) + 1e-8)
    return (np.hstack([a, b]) / np.sqrt(2)).astype(np.float32), (a.shape[1], b.shape[1])
