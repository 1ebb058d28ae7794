"""The post-norm encoder layer shared by the inverted models (S-Mamba, Attention Mamba, FMamba)."""

from __future__ import annotations

import torch
import torch.nn as nn


class FeedForward(nn.Module):
    """Position-wise FFN ``Dropout(Linear(d_ff -> D)(Dropout(GELU(Linear(D -> d_ff)(x)))))``.

    This is iTransformer's pair of 1x1 convolutions written as linear maps (same parameters, same
    initialisation distribution). Applied to each token on its own: for an inverted token it mixes time.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(self.dropout(self.act(self.up(x)))))


class EncoderLayer(nn.Module):
    """S-Mamba's encoder layer: ``x = LN1(x + mixer(x)); x = LN2(x + FFN(x))``.

    The mixer mixes tokens (for S-Mamba a bidirectional Mamba over the variate tokens); no dropout is
    applied to its output, as in the official code.

    Shapes: ``forward(x [B, T, D]) -> [B, T, D]``.
    """

    def __init__(self, mixer: nn.Module, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.mixer = mixer
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff, dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.mixer(x))  # [B, T, D]
        return self.norm2(x + self.ffn(x))  # [B, T, D]
