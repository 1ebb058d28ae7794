"""FMamba: fast (linear) attention across the variates, then a unidirectional Mamba, then an MLP block."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..layers import KERNELS, EncoderLayer, FastAttention, sinusoidal_positions
from ..ssm import Mamba
from .base import InvertedForecaster, check_choice, check_d_conv, check_int
from .spec import BenchHook, Choice, ModelSpec, Reference, SameAs, register

POSITIONS = ("tokens", "none")


def mlp_block(in_features: int, d_model: int) -> nn.Module:
    """FMamba's embedding MLP block ``Linear(in -> D) -> GELU -> Linear(D -> D)`` (dropout follows it)."""
    return nn.Sequential(nn.Linear(in_features, d_model), nn.GELU(), nn.Linear(d_model, d_model))


class FMambaLayer(nn.Module):
    """``x = LN(x + Dropout(FastAttention(x)))``, then ``x = LN(x + Mamba(x))`` and ``x = LN(x + FFN(x))``."""

    def __init__(self, attention: FastAttention, mamba: Mamba, d_model: int, d_ff: int, dropout: float):
        super().__init__()
        self.attention = attention
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_norm = nn.LayerNorm(d_model)
        self.encoder = EncoderLayer(mamba, d_model, d_ff, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention_dropout(self.attention(x)))  # [B, T, D]
        return self.encoder(x)  # [B, T, D]


class FMamba(InvertedForecaster):
    """FMamba (Ma, Kang, Bai, Zhao, "FMamba: Mamba based on Fast-attention for Multivariate Time-series
    Forecasting", arXiv:2407.14814), RECONSTRUCTED.

    **No official code could be obtained** (the repository the paper links was not available) and the paper
    body was read only through third-party summaries, so this is our reconstruction of the published
    pipeline "embedding (positional embedding + MLP block) -> fast-attention -> Mamba -> MLP block ->
    projector", built on the S-Mamba pipeline the paper extends. What we decided:

    * Tokens are whole series (inverted embedding, as in S-Mamba); the embedding is an MLP block
      ``Linear(L -> D) -> GELU -> Linear(D -> D)``, then dropout, plus (``position="tokens"``, the default) a
      fixed sinusoidal position encoding over the token index (variates, then exogenous tokens), or
      (``position="none"``) no position encoding: the tokens are then a set, as in S-Mamba. The encoding's
      RMS is about 0.7 whatever the data, several times that of freshly embedded tokens; whether it helps
      is a tuning choice (``mamba-forecast tune``). A time-axis encoding is not offered: each token already
      embeds its whole look-back with a ``Linear(L -> D)``, which sees every time step's position.
    * Fast attention across the tokens with one of two kernels (see :class:`~mamba_forecast.layers.FastAttention`):
      ``"gaussian"`` (default, the literal reading of the paper's formula: ``phi(x) = exp(-x^2/2)``
      element-wise, ``A = (phi(Q) / d_k)(phi(K)^T V)``; note that with this constant normalisation the
      attention output grows with the number of tokens) or ``"performer"`` (FAVOR+ positive orthogonal random
      features approximating softmax attention, drawn once and stored as a buffer). V is a plain linear map.
      Either way the cost is linear in the number of series.
    * Then a unidirectional Mamba over the tokens (the paper's narrative) and a GELU MLP block (the FFN of
      S-Mamba), each as ``LN(x + sublayer(x))``. ``e_layers`` such layers; no extra final LayerNorm; head
      ``Linear(D -> h)`` per variate token; instance normalisation as in S-Mamba.
    * Hyper-parameters were not published: the defaults are S-Mamba's ETTh1 widths (d_model 256, d_ff 256,
      2 layers) with mamba-ssm's default block (d_state 16, d_conv 4, expand 2) and one attention head.

    Args:
        input_size: look-back length L.
        h: forecast horizon.
        n_series: number of series N; optional (any N works).
        d_model, d_ff, e_layers: token width, MLP width, number of layers.
        d_state, d_conv, expand: Mamba block settings.
        n_heads: attention heads (must divide ``d_model``).
        kernel: ``"gaussian"`` or ``"performer"``.
        position: ``"tokens"`` (sinusoidal encoding over the token index) or ``"none"``.
        n_features: random features per head for ``kernel="performer"`` (default: the head width).
        dropout, use_norm, n_outputs, hist_exog_size, futr_exog_size, stat_exog_size, scan_backend: as in
            :class:`SMamba` (exogenous series are extra tokens, static features extend each variate's input).

    Shapes: ``forward(x [B, L, N], ...) -> [B, h, N]`` (or ``[B, h, N, n_outputs]``).
    """

    def __init__(
        self,
        input_size: int,
        h: int,
        n_series: int | None = None,
        *,
        d_model: int = 256,
        d_ff: int = 256,
        e_layers: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout: float = 0.1,
        use_norm: bool = True,
        n_outputs: int = 1,
        hist_exog_size: int = 0,
        futr_exog_size: int = 0,
        stat_exog_size: int = 0,
        scan_backend: str = "auto",
        n_heads: int = 1,
        kernel: str = "gaussian",
        n_features: int | None = None,
        position: str = "tokens",
    ):
        d_model = check_int("d_model", d_model)
        n_heads = check_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"n_heads must divide d_model={d_model}, got n_heads={n_heads}; pass e.g. n_heads=1.")
        d_ff = check_int("d_ff", d_ff)
        e_layers = check_int("e_layers", e_layers)
        d_state = check_int("d_state", d_state)
        d_conv = check_d_conv(d_conv)
        expand = check_int("expand", expand)
        kernel = check_choice("kernel", kernel, KERNELS)
        position = check_choice("position", position, POSITIONS)
        if n_features is not None:
            if kernel != "performer":
                raise ValueError(
                    f"n_features only applies to kernel='performer' (got kernel={kernel!r}); leave it out."
                )
            n_features = check_int("n_features", n_features)
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
            final_norm=False,
            token_embedding=mlp_block,
        )
        self.kernel = kernel
        self.position = position
        self.layers.extend(
            FMambaLayer(
                FastAttention(d_model, n_heads, kernel, n_features),
                Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, scan_backend=self.scan_backend),
                d_model,
                d_ff,
                self.dropout,
            )
            for _ in range(e_layers)
        )

    def embed(self, x, hist_exog, futr_exog, stat_exog) -> torch.Tensor:
        tokens = self.embedding(x, hist_exog, futr_exog, stat_exog)  # [B, T, D]
        if self.position == "none":
            return tokens
        return tokens + sinusoidal_positions(tokens.shape[1], self.d_model, device=tokens.device, dtype=tokens.dtype)


register(
    ModelSpec(
        name="FMamba",
        core=FMamba,
        title="FMamba",
        tagline="fast attention across variates followed by Mamba",
        summary=(
            "Variate tokens (an MLP embedding of each series' look-back plus a position encoding over the tokens), "
            "then in every layer fast attention across the tokens (linear in the number of series), a Mamba scan "
            "over the tokens and an MLP block; a linear head maps every series token to its forecast. No official "
            "code was available; this is the package's reconstruction of the published pipeline (see the model card)."
        ),
        arg_docs={
            "d_model": "token width.",
            "d_ff": "hidden width of the MLP block.",
            "e_layers": "number of layers.",
            "d_state": "Mamba state size.",
            "d_conv": "Mamba causal convolution width, 2 to 4.",
            "expand": "Mamba inner expansion factor.",
            "n_heads": "fast-attention heads (must divide `d_model`).",
            "kernel": 'fast-attention kernel: "gaussian" (the paper\'s `exp(-x^2/2)` feature map) or "performer" '
            "(FAVOR+ random features approximating softmax attention).",
            "n_features": 'random features per head for `kernel="performer"` (default None: the head width).',
            "position": '"tokens" (a sinusoidal position encoding over the token index) or "none".',
            "dropout": "dropout of the embedding, the attention output and the MLP block.",
        },
        references=(
            Reference(
                "Shusen Ma, Yu Kang, Peng Bai, Yun-Bo Zhao",
                2024,
                "FMamba: Mamba based on Fast-attention for Multivariate Time-series Forecasting",
                "https://arxiv.org/abs/2407.14814",
            ),
            Reference(
                "Krzysztof Choromanski et al.",
                2021,
                "Rethinking Attention with Performers",
                "https://arxiv.org/abs/2009.14794",
                "ICLR",
            ),
        ),
        card="docs/models/fmamba.md",
        search_space={
            "d_model": Choice([64, 128, 256]),
            "e_layers": Choice([1, 2, 3]),
            "d_state": Choice([8, 16, 32]),
            "kernel": Choice(["gaussian", "performer"]),
        },
        derived={"d_ff": SameAs("d_model")},
        auto_summary=(
            "token width (with the MLP width equal to it), depth, Mamba state size, fast-attention kernel, and the "
            "shared training settings."
        ),
        example={"d_model": 16, "d_ff": 16},
        demo={"d_model": 128, "d_ff": 128, "e_layers": 1, "d_state": 16},
        bench=BenchHook(
            preset_table="smamba",
            published_name="FMamba",
            tune_space={"position": Choice(["tokens", "none"]), "kernel": Choice(["gaussian", "performer"])},
        ),
        # NeuralForecast's usual 1e-3 lost to 1e-4 on Exchange (-13% MSE) and SML2010 (-22%) and beat it by 1.6% on
        # ETTh1 (benchmarks/defaults_nf.py, H = 96; the table is on the model card); tuning picked 9e-5 on Exchange.
        learning_rate=1e-4,
    )
)
