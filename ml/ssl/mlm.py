"""Language-model pretext tasks for a text encoder (issue 19), on the shared trainer (``ml.training``):

* ``MaskedLanguageModel``: BERT's masked-language model (Devlin et al. 2019), a denoising autoencoder of
  tokens: 15 % of the real tokens are chosen, of those 80 % become ``[MASK]``, 10 % a random token and
  10 % stay, and the encoder predicts the original token at each chosen position from both sides;
* ``CausalLanguageModel``: GPT's autoregressive model (Radford et al. 2018): the same encoder with a causal
  attention mask predicts each next token.

The batch is (B, L) int token ids (``ml.text_tokenizer.encode``); padding never takes part. The output
layer is tied to the token embedding (as BERT and GPT do), so the head adds almost no weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ml.text_encoder import TextEncoder, trim
from ml.text_tokenizer import MASK, PAD, SPECIAL


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (M, V) logits against (M,) target ids (the positions to predict only)."""
    return F.cross_entropy(logits.float(), targets.long())


def choose_masked(ids: torch.Tensor, ratio: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption of a (B, L) batch: (corrupted ids, bool mask of the positions to predict).

    Only real tokens are chosen (never padding, ``[CLS]`` or ``[SEP]``); every document with a real token has
    at least one chosen, so no row is wasted. All random draws come from ``g`` (CPU), then move to ``ids``' device."""
    real = (ids >= len(SPECIAL)).cpu()
    chosen = (torch.rand(ids.shape, generator=g) < ratio) & real
    # A row with nothing chosen gets its first real token (short documents: banking77 has 10-word ones).
    empty = ~chosen.any(1) & real.any(1)
    first = real.float().argmax(1)
    chosen[empty, first[empty]] = True
    action = torch.rand(ids.shape, generator=g)
    random_ids = torch.randint(len(SPECIAL), int(ids.max().item()) + 1 if ids.numel() else len(SPECIAL) + 1,
                               ids.shape, generator=g)
    corrupted = ids.cpu().clone()
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    corrupted[to_mask] = MASK
    corrupted[to_random] = random_ids[to_random].to(corrupted.dtype)
    return corrupted.to(ids.device), chosen.to(ids.device)


class _LMHead(nn.Module):
    """Dense + GELU + LayerNorm, then the tied output embedding (BERT's prediction head)."""

    def __init__(self, encoder: TextEncoder) -> None:
        super().__init__()
        d = encoder.out_dim
        self.transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.bias = nn.Parameter(torch.zeros(encoder.shape.vocab_size))
        self.encoder = [encoder]  # a list: the tied weights stay the encoder's (not registered twice)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden) @ self.encoder[0].tokens.weight.t() + self.bias


class MaskedLanguageModel(nn.Module):
    """BERT's masked-language model on ``encoder``; ``forward(ids, g)`` gives the mean loss at the chosen positions.

    Args:
        encoder: the network being pretrained (its weights are what is kept).
        mask_ratio: share of the real tokens chosen for prediction.
    """

    name = "mlm"
    default_lr = 2e-3
    default_batch_size = 64
    causal = False

    def __init__(self, encoder: TextEncoder, mask_ratio: float = 0.15) -> None:
        super().__init__()
        self.backbone = encoder  # the trainer keeps ``backbone``'s weights
        self.mask_ratio = mask_ratio
        self.head = _LMHead(encoder)

    def forward(self, ids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        ids = trim(ids.long())
        corrupted, chosen = choose_masked(ids, self.mask_ratio, g)
        hidden = self.backbone.forward_blocks(corrupted)[-1]
        return lm_loss(self.head(hidden[chosen]), ids[chosen])


class CausalLanguageModel(MaskedLanguageModel):
    """GPT's autoregressive model on ``encoder``: each real token predicts the next one (``[SEP]`` included,
    padding excluded), attention seeing only the tokens before it."""

    name = "causal_lm"
    causal = True

    def forward(self, ids: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        ids = trim(ids.long())
        hidden = self.backbone.forward_blocks(ids, causal=True)[-1]
        target = ids[:, 1:]
        keep = target != PAD
        return lm_loss(self.head(hidden[:, :-1][keep]), target[keep])


TEXT_METHODS: dict[str, type[MaskedLanguageModel]] = {m.name: m for m in (MaskedLanguageModel, CausalLanguageModel)}
