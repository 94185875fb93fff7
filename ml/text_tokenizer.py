"""A WordPiece tokenizer trained on the project's own documents (issue 19; BERT's tokenizer, Wu et al. 2016),
with the ``tokenizers`` library: nothing downloaded, the vocabulary is the pool's.

Arrays out: ``encode`` gives an (N, L) int32 array of token ids, ``[CLS]`` first and ``[SEP]`` after the
last token kept, padded with ``PAD`` (0) on the right. The tokenizer travels inside the encoder's
checkpoint as its JSON text (``to_str``/``from_str``: plain data, so ``torch.load(weights_only=True)`` reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4, in this order
VOCAB_SIZE = 8000


def train_tokenizer(texts: Sequence[str], vocab_size: int = VOCAB_SIZE, min_frequency: int = 2) -> Tokenizer:
    """A lower-cased, accent-stripped WordPiece vocabulary of at most ``vocab_size`` pieces learnt from ``texts``."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=50))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS),
                                                                                                 ("[SEP]", SEP)])
    for i, name in enumerate(SPECIAL):  # the ids the masking and padding code relies on
        assert tok.token_to_id(name) == i, (name, tok.token_to_id(name))
    return tok


def encode(tok: Tokenizer, texts: Sequence[str], max_len: int) -> np.ndarray:
    """(N, max_len) int32 token ids: ``[CLS]`` pieces ``[SEP]``, cut to ``max_len`` (``[SEP]`` kept), padded with 0."""
    out = np.zeros((len(texts), max_len), dtype=np.int32)
    for i, enc in enumerate(tok.encode_batch(list(texts))):
        ids = enc.ids
        if len(ids) > max_len:
            ids = ids[: max_len - 1] + [SEP]
        out[i, : len(ids)] = ids
    return out


def choose_length(ids: np.ndarray, cap: int) -> int:
    """A sequence length that holds 95 % of the documents whole (at least 8, at most ``cap``)."""
    lengths = (ids != PAD).sum(1)
    return int(min(cap, max(8, np.percentile(lengths, 95)))) if len(lengths) else 8


def to_text(tok: Tokenizer) -> str:
    return tok.to_str()


def from_text(text: str) -> Tokenizer:
    return Tokenizer.from_str(text)
