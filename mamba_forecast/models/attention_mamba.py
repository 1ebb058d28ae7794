"""Attention Mamba: a bidirectional-Mamba value gated by an adaptive-pooling attention map."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..layers import AdaptivePoolAttention, EncoderLayer
from ..ssm import BiMamba
from .base import InvertedForecaster, check_choice, check_d_conv, check_int
from .spec import BenchHook, Choice, ModelSpec, Reference, SameAs, register

VARIANTS = ("official", "paper")


class PooledAttentionMambaMixer(nn.Module):
    """Token mixer of Attention Mamba: ``V = fwd(x) + flip(bwd(flip(x)))``, ``W = AdaptivePoolAttention(x)``.

    Returns ``W * V + V`` (``variant="official"``; the encoder layer adds ``x``, giving the official
    ``W * V + x + V``) or ``W * V`` (``variant="paper"``).
    """

    def __init__(self, d_model: int, n_tokens: int, scale: float, gated_residual: bool, backward_kwargs, **mamba):
        super().__init__()
        self.value = BiMamba(d_model, backward_kwargs=backward_kwargs, **mamba)
        self.attention = AdaptivePoolAttention(d_model, n_tokens, scale)
        self.gated_residual = gated_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.value(x)  # [B, T, D]
        gated = self.attention(x) * v  # [B, T, D]
        return gated + v if self.gated_residual else gated


class AttentionMamba(InvertedForecaster):
    """Attention Mamba (Xiong et al., "Attention Mamba: Time Series Modeling with Adaptive Pooling
    Acceleration and Receptive Field Enhancements", IEEE SMC 2025, arXiv:2504.02013).

    S-Mamba's pipeline (inverted embedding, post-norm encoder layers, final LayerNorm, ``Linear(D -> h)``) with a
    different token mixer: the value is S-Mamba's bidirectional Mamba over the variate tokens, and it is gated
    element-wise by a weight map ``W [B, T, D]`` computed from queries and keys adaptively pooled (average plus
    max) to a fixed ``(D/4) x (D/4)`` score matrix. The score matrix does not grow with the number of series; the
    projections, the pooling and ``LP2`` do, linearly, so the model's cost is linear in the number of series.

    ``variant="official"`` (default) is the computation of the official code (``SuperBearcafedo/AttentionMamba``,
    ``layers/Mamba_EncDec.py``): both axes of ``[B, T, D]`` pooled to ``D/4`` (tokens up-sampled when
    ``T < D/4``), GELU, scores scaled by ``1 / (4 d_ff)``, softmax, ``LP: Linear(D/4 -> D)`` and
    ``LP2: Linear(D/4 -> T)``; update ``LN(x + W * V + V)``; FFN hidden width ``4 d_ff`` without dropout;
    the forward Mamba uses ``d_conv`` and the backward one ``d_conv=4`` (the official code leaves it at
    mamba-ssm's default). ``variant="paper"`` follows the paper's equations as summarised: scores scaled by
    ``1 / sqrt(D/4)``, update ``LN(x + W * V)``, FFN hidden width ``d_ff`` with dropout, both Mamba blocks
    with ``d_conv``.

    Args:
        input_size: look-back length L.
        h: forecast horizon.
        n_series: number of series N; required, because ``LP2`` is sized by the number of tokens
            (``n_series + hist_exog_size + futr_exog_size``).
        d_model: token width D, a multiple of 4 (official: 512; 256 for Weather).
        d_ff: FFN width parameter (official scripts: ``d_ff == d_model``). In the official variant the FFN is
            ``4 * d_ff`` wide and the scores are scaled by ``1 / (4 d_ff)``, as in the official code, where
            this equals ``4 * d_model`` (it only runs with ``d_ff == d_model``).
        e_layers: number of encoder layers (1 in every official script).
        d_state: Mamba state size (64 in the official scripts, 128 for Solar).
        d_conv: forward Mamba convolution width (2 officially).
        expand: Mamba inner expansion (1 officially).
        dropout: dropout of the embedding (and, in the paper variant, of the FFN).
        use_norm: per-window instance normalisation of ``x`` (off for PEMS04/07 in the official scripts).
        n_outputs: outputs per step and series; the output gains a last axis when > 1.
        hist_exog_size, futr_exog_size, stat_exog_size: exogenous inputs, as in :class:`SMamba`.
        scan_backend: selective-scan backend.
        variant: ``"official"`` or ``"paper"``.

    Defaults are the official ECL configuration (d_model 512, d_ff 512, 1 layer, d_state 64, d_conv 2,
    expand 1). With ``input_size=96, h=96, n_series=321`` the model has 4,675,617 parameters: the official
    code's 4,938,273 less its unused value projection ``V`` (262,656).

    Differences from the official code: the unused modules (``V``, ``LP3``, a sigmoid, a dropout) are left out;
    the FFN's 1x1 convolutions are linear maps; ``d_ff != d_model`` is allowed (the official code then fails).
    """

    FIXED_N_SERIES = True

    def __init__(
        self,
        input_size: int,
        h: int,
        n_series: int | None = None,
        *,
        d_model: int = 512,
        d_ff: int = 512,
        e_layers: int = 1,
        d_state: int = 64,
        d_conv: int = 2,
        expand: int = 1,
        dropout: float = 0.1,
        use_norm: bool = True,
        n_outputs: int = 1,
        hist_exog_size: int = 0,
        futr_exog_size: int = 0,
        stat_exog_size: int = 0,
        scan_backend: str = "auto",
        variant: str = "official",
    ):
        d_model = check_int("d_model", d_model, minimum=4)
        if d_model % 4:
            raise ValueError(
                f"d_model must be a multiple of 4 (the attention pools to d_model/4), got {d_model}; "
                f"pass e.g. d_model={d_model - d_model % 4 or 4}."
            )
        d_ff = check_int("d_ff", d_ff)
        e_layers = check_int("e_layers", e_layers)
        d_state = check_int("d_state", d_state)
        d_conv = check_d_conv(d_conv)
        expand = check_int("expand", expand)
        variant = check_choice("variant", variant, VARIANTS)
        super().__init__(
            input_size,
            h,
            n_series,
            d_model=d_model,
            dropout=dropout,
            use_norm=use_norm,
            n_outputs=n_outputs,
            hist_exog_size=hist_exog_size,
            futr_exog_size=futr_exog_size,
            stat_exog_size=stat_exog_size,
            scan_backend=scan_backend,
        )
        self.variant = variant
        official = self.variant == "official"
        mamba = {"d_state": d_state, "d_conv": d_conv, "expand": expand, "scan_backend": self.scan_backend}
        n_tokens = self.n_tokens
        assert n_tokens is not None  # FIXED_N_SERIES: the base refused n_series=None
        scale = 1.0 / (4 * d_ff) if official else 1.0 / math.sqrt(d_model // 4)
        ffn_width, ffn_dropout = (4 * d_ff, 0.0) if official else (d_ff, self.dropout)
        self.layers.extend(
            EncoderLayer(
                PooledAttentionMambaMixer(
                    d_model,
                    n_tokens,
                    scale,
                    gated_residual=official,
                    backward_kwargs={"d_conv": 4} if official else None,
                    **mamba,
                ),
                d_model,
                ffn_width,
                ffn_dropout,
            )
            for _ in range(e_layers)
        )


register(
    ModelSpec(
        name="AttentionMamba",
        core=AttentionMamba,
        title="Attention Mamba",
        tagline="adaptive pooled attention over a bidirectional Mamba",
        summary=(
            "S-Mamba's variate tokens and bidirectional Mamba, with the Mamba output gated by an attention map "
            "computed from queries and keys adaptively pooled (average plus max) to a fixed `d_model/4 x d_model/4` "
            "score matrix; a feed-forward network then mixes time inside each token and a linear head maps every "
            "series token to its forecast. One of its layers is sized by the number of tokens (series plus exogenous "
            "series), so the model is tied to the number of series it was built for."
        ),
        arg_docs={
            "d_model": "token width, a multiple of 4. Default 512 (the official ECL setting).",
            "d_ff": "feed-forward width parameter; in the official variant the FFN is `4 * d_ff` wide and the scores "
            "are scaled by `1 / (4 * d_ff)` (the official scripts use `d_ff == d_model`).",
            "e_layers": "number of encoder layers (1 in every official script).",
            "d_state": "Mamba state size (64 in the official scripts).",
            "d_conv": "Mamba causal convolution width of the forward scan, 2 to 4.",
            "expand": "Mamba inner expansion factor.",
            "variant": '"official" (the computation of the authors\' code) or "paper" (the paper\'s equations: '
            "`1/sqrt(d_model/4)` score scale, FFN of width `d_ff` with dropout, both scans with `d_conv`).",
            "dropout": "dropout of the embedding (and, in the paper variant, of the FFN).",
        },
        references=(
            Reference(
                "Sijie Xiong et al.",
                2025,
                "Attention Mamba: Time Series Modeling with Adaptive Pooling "
                "Acceleration and Receptive Field Enhancements",
                "https://arxiv.org/abs/2504.02013",
                "IEEE SMC 2025",
            ),
            Reference(
                "Zihan Wang et al.",
                2024,
                "Is Mamba Effective for Time Series Forecasting?",
                "https://arxiv.org/abs/2403.11144",
                "Neurocomputing",
            ),
        ),
        card="docs/models/attention_mamba.md",
        search_space={
            "d_model": Choice([64, 128, 256, 512]),
            "e_layers": Choice([1, 2]),
            "d_state": Choice([16, 32, 64]),
        },
        derived={"d_ff": SameAs("d_model")},
        auto_summary=(
            "token width (a multiple of 4, with `d_ff` equal to it, as in the official scripts), depth, Mamba state "
            "size, and the shared training settings."
        ),
        example={"d_model": 16, "d_ff": 16},
        demo={"d_model": 128, "d_ff": 128, "e_layers": 1, "d_state": 16},
        bench=BenchHook(
            preset_table="attention_mamba",
            preset_source="AttentionMamba official script",
            published_name="Attention Mamba",
        ),
        # Validation tuning picked 6e-5 to 2.6e-4 on every set (ETTh1, ETTh2, ETTm1, Exchange, SML2010), and 1e-4 beat
        # NeuralForecast's usual 1e-3 on ETTh1, Exchange and SML2010 (benchmarks/defaults_nf.py, H = 96; the table is on
        # the model card).
        learning_rate=1e-4,
    )
)
