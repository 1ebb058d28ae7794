"""DenseFormer-style weighted averaging of earlier block outputs (MambaMixer / TSM2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn


class WeightedAverage(nn.Module):
    """``sum_i w_i x_i`` over ``n_inputs`` same-shaped tensors with learnable scalar weights ``w``.

    The weights are plain scalars (no softmax, no normalisation) and start as the identity on the LAST
    input (``w = [0, ..., 0, 1]``), DenseFormer's initialisation: at the start a block sees exactly what a
    plain stack would give it.
    """

    def __init__(self, n_inputs: int):
        super().__init__()
        weights = torch.zeros(n_inputs)
        weights[-1] = 1.0
        self.weights = nn.Parameter(weights)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != self.weights.numel():
            raise ValueError(f"WeightedAverage expects {self.weights.numel()} inputs, got {len(inputs)}.")
        out = self.weights[0] * inputs[0]
        for w, x in zip(self.weights[1:], inputs[1:], strict=True):
            out = out + w * x
        return out
