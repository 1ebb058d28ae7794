"""Token embeddings: inverted (one token per whole series) and patch (one token per patch of a series)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

TokenEmbedding = Callable[[int, int], nn.Module]


class InvertedEmbedding(nn.Module):
    """iTransformer / S-Mamba's inverted embedding: each series becomes one ``d_model`` token.

    Tokens, in this order: the N target variates (their look-back, with their static features appended when
    ``stat_exog_size > 0``), then ``hist_exog_size`` historical-exogenous series of length L, then
    ``futr_exog_size`` future-exogenous series of length L + h. Each of the three kinds has its own embedding,
    built by ``token_embedding(in_features, d_model)`` (``nn.Linear`` by default), and dropout follows.

    Shapes: ``forward(x [B, L, N], hist_exog [B, L, K_h], futr_exog [B, L+h, K_f], stat_exog [B, N, S])
    -> [B, N + K_h + K_f, d_model]``.
    """

    def __init__(
        self,
        input_size: int,
        h: int,
        d_model: int,
        *,
        hist_exog_size: int = 0,
        futr_exog_size: int = 0,
        stat_exog_size: int = 0,
        dropout: float = 0.0,
        token_embedding: TokenEmbedding = nn.Linear,
    ):
        super().__init__()
        self.series = token_embedding(input_size + stat_exog_size, d_model)
        self.hist = token_embedding(input_size, d_model) if hist_exog_size else None
        self.futr = token_embedding(input_size + h, d_model) if futr_exog_size else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None) -> torch.Tensor:
        series = x.transpose(1, 2)  # [B, N, L]
        if stat_exog is not None:
            series = torch.cat([series, stat_exog.to(series.dtype)], dim=-1)  # [B, N, L + S]
        tokens = [self.series(series)]  # [B, N, D]
        if self.hist is not None:
            tokens.append(self.hist(hist_exog.transpose(1, 2)))  # [B, K_h, D]
        if self.futr is not None:
            tokens.append(self.futr(futr_exog.transpose(1, 2)))  # [B, K_f, D]
        return self.dropout(torch.cat(tokens, dim=1))  # [B, N + K_h + K_f, D]


def sinusoidal_positions(n_positions: int, d_model: int, *, device=None, dtype=None) -> torch.Tensor:
    """The fixed sine/cosine position encoding of "Attention Is All You Need", ``[n_positions, d_model]``."""
    position = torch.arange(n_positions, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table.to(dtype or torch.get_default_dtype())


def patch_count(length: int, patch_len: int, stride: int) -> int:
    """Number of patches :func:`patchify` cuts from ``length`` steps."""
    return (length - patch_len) // stride + 1


def patchify(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """Cut the last axis of ``x [..., L]`` into patches ``[..., n_patches, patch_len]``.

    The patches are aligned to the END of the window: when ``(L - patch_len) % stride != 0`` the oldest
    steps are left out, never the most recent ones (which matter most for a forecast).
    """
    length = x.shape[-1]
    start = (length - patch_len) % stride
    return x[..., start:].unfold(-1, patch_len, stride)
