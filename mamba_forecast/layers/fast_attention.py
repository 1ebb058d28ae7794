"""Linear-cost ("fast") attention across tokens with a kernel feature map, for FMamba."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

KERNELS = ("gaussian", "performer")


def orthogonal_gaussian_features(n_features: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Performer's orthogonal random features ``[n_features, dim]``: blocks of orthonormal rows (QR of a
    Gaussian matrix), each row rescaled to the norm of an independent ``dim``-dimensional Gaussian vector, so
    that every row is marginally ``N(0, I)``."""
    blocks = []
    for _ in range(math.ceil(n_features / dim)):
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        # Without this sign fix the QR factor is not Haar-distributed: the rows get a non-zero mean and the
        # softmax-kernel estimate a bias that no number of features removes.
        blocks.append((q * torch.sign(torch.diagonal(r))).T)
    rows = torch.cat(blocks)[:n_features]
    norms = torch.randn(n_features, dim, generator=generator).norm(dim=1, keepdim=True)
    return rows * norms


class FastAttention(nn.Module):
    """Multi-head attention across tokens whose cost is linear in the number of tokens T.

    ``Q, K, V = Linear(x)``; features ``Q' = phi(Q)``, ``K' = phi(K)``; the product ``K'^T V`` is formed first
    (``[d_k, d_k]`` or ``[m, d_k]`` per head), then multiplied by ``Q'``; an output ``Linear(D -> D)`` follows.

    Kernels:
        ``"gaussian"``: FMamba's reading, ``phi(x) = exp(-x^2 / 2)`` element-wise and
            ``A = (Q' / d_k) (K'^T V)`` (a constant normalisation, no softmax).
        ``"performer"``: FAVOR+ positive random features (Choromanski et al., 2021), an unbiased estimate of
            softmax attention: ``phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(m)`` with ``x' = x d_k^(-1/4)`` and
            ``m = n_features`` orthogonal Gaussian rows ``W``, and ``A = D^-1 Q' (K'^T V)`` with
            ``D = diag(Q' K'^T 1)``. ``W`` is drawn once at construction and kept as a buffer (saved with the
            state dict, same values for the same seed); it is not redrawn during training.

    Shapes: ``forward(x [B, T, D]) -> [B, T, D]``.
    """

    features: torch.Tensor  # the random features W of the performer kernel (a buffer)

    def __init__(self, d_model: int, n_heads: int = 1, kernel: str = "gaussian", n_features: int | None = None):
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.kernel = kernel
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        if kernel == "performer":
            self.register_buffer("features", orthogonal_gaussian_features(n_features or self.d_head, self.d_head))

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, T, d_k]

    def _performer_features(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        x = x * self.d_head**-0.25
        logits = x @ self.features.T.to(x.dtype) - x.square().sum(-1, keepdim=True) / 2  # [B, H, T, m]
        # Any constant per query row (or per head for keys) cancels in D^-1: subtract the max for stability.
        dims = (-1,) if is_query else (-2, -1)
        logits = logits - logits.amax(dim=dims, keepdim=True).detach()
        return torch.exp(logits) / math.sqrt(self.features.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))  # [B, H, T, d_k]
        if self.kernel == "gaussian":
            kv = torch.exp(-k.square() / 2).transpose(-2, -1) @ v  # [B, H, d_k, d_k]
            out = torch.exp(-q.square() / 2) @ kv / self.d_head  # [B, H, T, d_k]
        else:
            qf, kf = self._performer_features(q, True), self._performer_features(k, False)  # [B, H, T, m]
            kv = kf.transpose(-2, -1) @ v  # [B, H, m, d_k]
            normaliser = qf @ kf.sum(dim=-2, keepdim=True).transpose(-2, -1)  # [B, H, T, 1]
            out = (qf @ kv) / normaliser  # [B, H, T, d_k]
        return self.out(out.transpose(1, 2).reshape(b, n, d))  # [B, T, D]
