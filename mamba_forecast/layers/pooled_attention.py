"""Attention Mamba's adaptive-pooling attention: a token x feature weight map from a small pooled score matrix."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def adaptive_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive average plus adaptive max pooling of BOTH trailing axes of ``x [B, T, D]`` to ``[B, size, size]``.

    This is what the official code gets from ``nn.AdaptiveAvgPool2d(size)(x) + nn.AdaptiveMaxPool2d(size)(x)``
    on a 3-D tensor, which PyTorch reads as one unbatched ``(C, H, W)`` image: the token axis T is pooled (or,
    when ``T < size``, up-sampled by repetition) as well as the feature axis D.
    """
    return F.adaptive_avg_pool2d(x, size) + F.adaptive_max_pool2d(x, size)


class AdaptivePoolAttention(nn.Module):
    """Attention Mamba's weight map ``W [B, T, D]`` from tokens ``x [B, T, D]``.

    ``Q, K = Linear(x)``; both are pooled to ``(D/4) x (D/4)`` with :func:`adaptive_pool`, passed through GELU;
    ``P = softmax(Q' K'^T * scale)`` over the last axis; ``W = LP2(LP(P)^T)^T`` where ``LP: Linear(D/4 -> D)``
    and ``LP2: Linear(D/4 -> n_tokens)``. The score matrix has a fixed size, so its cost does not grow with T;
    but ``LP2`` ties the layer to ``n_tokens`` tokens.
    """

    def __init__(self, d_model: int, n_tokens: int, scale: float):
        super().__init__()
        self.pooled = d_model // 4
        self.scale = scale
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.to_features = nn.Linear(self.pooled, d_model)  # official name LP
        self.to_tokens = nn.Linear(self.pooled, n_tokens)  # official name LP2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = F.gelu(adaptive_pool(self.query(x), self.pooled))  # [B, D/4, D/4]
        k = F.gelu(adaptive_pool(self.key(x), self.pooled))  # [B, D/4, D/4]
        # the scale inside the batched product, and LP2 applied along the pooled axis as one batched product with
        # its bias: no separate scaling, and no copy of a transposed operand
        scores = torch.baddbmm(q.new_empty(()), q, k.transpose(1, 2), beta=0, alpha=self.scale)  # [B, D/4, D/4]
        w = self.to_features(torch.softmax(scores, dim=-1))  # [B, D/4, D]
        lp2 = self.to_tokens
        return torch.baddbmm(lp2.bias[:, None], lp2.weight.expand(len(w), -1, -1), w)  # [B, T, D]
