"""Build the benchmark's networks from a preset (torch only)."""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from ..models import get_spec
from .baselines import build_baseline, is_baseline
from .presets import LINEAR, Preset

# Preset fields some architectures legitimately lack (TSM2 has no feed-forward width).
_SILENT = {"d_ff"}


def uses_calendar_tokens(name: str, preset: Preset | None = None) -> bool:
    """Whether model ``name`` takes the protocol's 4 calendar tokens (x_mark) as hist_exog (its spec's
    ``bench.calendar_tokens``, unless ``preset`` switches them off: ``--set calendar_tokens=false``). The official
    S-Mamba code feeds them (its paper numbers include them), so every one of the four models gets them: the
    models see the same inputs and SMamba's reproduction stays the official pipeline. The harness's Linear check
    model and NeuralForecast's baselines go without (see :mod:`.baselines`)."""
    own = name != LINEAR and not is_baseline(name) and get_spec(name).bench.calendar_tokens
    return own and (preset is None or preset.calendar_tokens)


class LinearBaseline(nn.Module):
    """Instance norm + one ``Linear(L -> H)`` shared by all variates: a fast model to check the harness."""

    def __init__(self, input_size: int, h: int, **_):
        super().__init__()
        self.proj = nn.Linear(input_size, h)

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None):  # x [B, L, N]
        mean = x.mean(1, keepdim=True)
        std = (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        y = self.proj(((x - mean) / std).transpose(1, 2)).transpose(1, 2)  # [B, H, N]
        return y * std + mean


def model_class(name: str):
    """The torch class of model ``name``: a registered spec's core, or the harness's Linear model."""
    return LinearBaseline if name == LINEAR else get_spec(name).core


def build_model(
    name: str,
    preset: Preset,
    n_series: int,
    input_size: int,
    horizon: int,
    calendar_tokens: bool | None = None,
    seed: int = 2023,
) -> nn.Module:
    """Instantiate ``name`` with the preset's sizes; preset arguments the model does not take (its spec's
    architecture arguments) are dropped with a warning. A NeuralForecast baseline takes the preset's ``extra``
    (tuned or ``--set`` network arguments) over NeuralForecast's defaults, its weights drawn from ``seed``
    (NeuralForecast reseeds every generator when a model is built; our models draw from the caller's seed)."""
    if is_baseline(name):
        return build_baseline(name, input_size, horizon, n_series, seed=seed, **preset.extra)
    cls = model_class(name)
    if name == LINEAR:
        return cls(input_size, horizon)
    use_marks = uses_calendar_tokens(name, preset) if calendar_tokens is None else calendar_tokens
    kwargs = dict(
        d_model=preset.d_model,
        d_ff=preset.d_ff,
        e_layers=preset.e_layers,
        d_state=preset.d_state,
        d_conv=preset.d_conv,
        expand=preset.expand,
        dropout=preset.dropout,
        use_norm=preset.use_norm,
        **preset.extra,
    )
    accepted = get_spec(name).arguments
    dropped = sorted(k for k in kwargs if k not in accepted and k not in _SILENT)
    if dropped:
        warnings.warn(f"{name} does not take {dropped}; using its defaults", stacklevel=2)
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    return cls(input_size, horizon, n_series=n_series, hist_exog_size=4 if use_marks else 0, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward(model: nn.Module, x: torch.Tensor, x_mark: torch.Tensor | None, use_marks: bool) -> torch.Tensor:
    """Call a contract model: ``forward(x, hist_exog, futr_exog, stat_exog) -> [B, H, N]``."""
    return model(x, x_mark if use_marks else None, None, None)
