"""Per-window instance normalisation (RevIN without affine parameters), as in S-Mamba and Attention Mamba."""

from __future__ import annotations

import torch

EPS = 1e-5


def instance_normalize(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise each (sample, variate) series of ``x [B, L, N]`` over its L steps.

    The mean is detached and the standard deviation is not, exactly as in the official S-Mamba and
    Attention Mamba code (``stdev = sqrt(var(unbiased=False) + eps)``).

    Returns:
        ``(x_normalised [B, L, N], mean [B, 1, N], stdev [B, 1, N])``.
    """
    var, mean = torch.var_mean(x, dim=1, keepdim=True, unbiased=False)
    mean = mean.detach()
    stdev = torch.sqrt(var + eps)
    return (x - mean) / stdev, mean, stdev


def instance_denormalize(y: torch.Tensor, mean: torch.Tensor, stdev: torch.Tensor) -> torch.Tensor:
    """Undo :func:`instance_normalize` on a forecast ``y [B, h, N, n_outputs]`` (every output is rescaled)."""
    return torch.addcmul(mean.unsqueeze(-1), y, stdev.unsqueeze(-1))
