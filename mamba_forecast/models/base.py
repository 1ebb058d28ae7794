"""What every forecaster shares: argument checks, input checks, instance normalisation, output layout.

A new architecture subclasses :class:`Forecaster` and implements ``forecast`` (normalised inputs in,
``[B, h, N, n_outputs]`` out), or, if its tokens are whole series, :class:`InvertedForecaster` and fills
``self.layers`` with token mixers.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn

from ..layers import InvertedEmbedding, instance_denormalize, instance_normalize
from ..layers.embedding import TokenEmbedding
from ..ssm.scan import BACKENDS

# ----------------------------------------------------------------------------------------------------
# argument checks: each raises before anything is built, naming the argument and how to fix it
# ----------------------------------------------------------------------------------------------------


def check_int(name: str, value, *, minimum: int = 1, maximum: int | None = None, hint: str = "") -> int:
    """``value`` as an int in ``[minimum, maximum]``; TypeError for a non-integer, ValueError out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__}); pass e.g. {name}={max(minimum, 1)}."
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be {bounds}, got {value}.{' ' + hint if hint else ''}")
    return value


def check_dropout(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"dropout must be a float in [0, 1), got {value!r}; pass e.g. dropout=0.1.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value}; pass e.g. dropout=0.1 (0 disables it).")
    return float(value)


def check_choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")
    return value


def check_d_conv(value) -> int:
    return check_int(
        "d_conv",
        value,
        minimum=2,
        maximum=4,
        hint="The causal convolution width must be 2, 3 or 4 (the limits of the fused CUDA kernel).",
    )


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return value


# ----------------------------------------------------------------------------------------------------
# base classes
# ----------------------------------------------------------------------------------------------------


class Forecaster(nn.Module):
    """Base of the four forecasters: checks, instance normalisation and output layout, once.

    ``forward(x [B, L, N], hist_exog [B, L, K_h], futr_exog [B, L+h, K_f], stat_exog [B, N, S])`` returns
    ``[B, h, N]`` (``n_outputs == 1``) or ``[B, h, N, n_outputs]``. Subclasses implement
    ``forecast(x, hist_exog, futr_exog, stat_exog) -> [B, h, N, n_outputs]`` on the normalised ``x``;
    absent exogenous inputs arrive as ``None``.

    Subclasses set ``FIXED_N_SERIES = True`` when a layer is sized by the number of series: ``n_series`` is
    then required and ``x`` must have exactly that many series.
    """

    FIXED_N_SERIES = False

    def __init__(
        self,
        input_size: int,
        h: int,
        n_series: int | None = None,
        *,
        dropout: float = 0.1,
        use_norm: bool = True,
        n_outputs: int = 1,
        hist_exog_size: int = 0,
        futr_exog_size: int = 0,
        stat_exog_size: int = 0,
        scan_backend: str = "auto",
    ):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_int("input_size", input_size)
        self.h = check_int("h", h)
        if n_series is None:
            if self.FIXED_N_SERIES:
                raise ValueError(
                    f"{name} needs n_series (the number of series N in x [B, L, N]) because one of its layers is "
                    f"sized by it; pass e.g. {name}(input_size={self.input_size}, h={self.h}, n_series=7)."
                )
            self.n_series = None
        else:
            self.n_series = check_int("n_series", n_series)
        self.dropout = check_dropout(dropout)
        self.use_norm = check_bool("use_norm", use_norm)
        self.n_outputs = check_int("n_outputs", n_outputs)
        self.hist_exog_size = check_int("hist_exog_size", hist_exog_size, minimum=0)
        self.futr_exog_size = check_int("futr_exog_size", futr_exog_size, minimum=0)
        self.stat_exog_size = check_int("stat_exog_size", stat_exog_size, minimum=0)
        self.scan_backend = check_choice("scan_backend", scan_backend, BACKENDS)

    # -- input checks ---------------------------------------------------------------------------------

    def _check_exog(self, name, value, size, shape, hint):
        """``value`` checked against ``shape`` (``None`` entries are free), or None when ``size`` is 0."""
        if size == 0:
            if value is not None and value.numel() > 0:
                raise ValueError(
                    f"{name} was given with shape {tuple(value.shape)} but the model was built with {name}_size=0; "
                    f"rebuild it with {name}_size={value.shape[-1]} or leave {name} out."
                )
            return None
        expected = "[" + ", ".join(str(s) if s is not None else "batch" for s in shape) + "]"
        if value is None:
            raise ValueError(
                f"{name} is required: the model was built with {name}_size={size}; pass {name} {expected} ({hint})."
            )
        if (
            not isinstance(value, torch.Tensor)
            or value.dim() != len(shape)
            or any(s is not None and s != v for s, v in zip(shape, value.shape, strict=True))
        ):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must have shape {expected} ({hint}), got {got}.")
        return value

    def _check_inputs(self, x, hist_exog, futr_exog, stat_exog):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point torch.Tensor [batch, input_size, n_series], got {x!r:.80}.")
        if x.dim() != 3:
            raise ValueError(
                f"x must be 3-D [batch, input_size={self.input_size}, n_series], got shape {tuple(x.shape)}."
            )
        batch, length, n = x.shape
        if length != self.input_size:
            raise ValueError(
                f"x has {length} time steps (shape {tuple(x.shape)}) but the model was built with "
                f"input_size={self.input_size}; pass the last {self.input_size} steps or rebuild with "
                f"input_size={length}."
            )
        if n < 1:
            raise ValueError(f"x has no series (shape {tuple(x.shape)}); n_series must be >= 1.")
        if self.FIXED_N_SERIES and n != self.n_series:
            raise ValueError(
                f"x has {n} series (shape {tuple(x.shape)}) but {type(self).__name__} was built with "
                f"n_series={self.n_series}; rebuild it with n_series={n}."
            )
        hist_exog = self._check_exog(
            "hist_exog",
            hist_exog,
            self.hist_exog_size,
            (batch, self.input_size, self.hist_exog_size),
            "batch, input_size, hist_exog_size",
        )
        futr_exog = self._check_exog(
            "futr_exog",
            futr_exog,
            self.futr_exog_size,
            (batch, self.input_size + self.h, self.futr_exog_size),
            "batch, input_size + h, futr_exog_size",
        )
        stat_exog = self._check_exog(
            "stat_exog",
            stat_exog,
            self.stat_exog_size,
            (batch, n, self.stat_exog_size),
            "batch, n_series, stat_exog_size",
        )
        return tuple(None if e is None else e.to(x.dtype) for e in (hist_exog, futr_exog, stat_exog))

    # -- forward ------------------------------------------------------------------------------------------

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None) -> torch.Tensor:
        """Forecast ``[B, h, N]`` (or ``[B, h, N, n_outputs]``) from ``x [B, L, N]`` and the exogenous inputs."""
        hist_exog, futr_exog, stat_exog = self._check_inputs(x, hist_exog, futr_exog, stat_exog)
        if self.use_norm:
            x, mean, stdev = instance_normalize(x)  # [B, L, N], [B, 1, N], [B, 1, N]
            y = instance_denormalize(self.forecast(x, hist_exog, futr_exog, stat_exog), mean, stdev)
        else:
            y = self.forecast(x, hist_exog, futr_exog, stat_exog)  # [B, h, N, n_outputs]
        return y.squeeze(-1) if self.n_outputs == 1 else y

    def forecast(self, x, hist_exog, futr_exog, stat_exog) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class InvertedForecaster(Forecaster):
    """Base of the models whose tokens are whole series (S-Mamba, Attention Mamba, FMamba).

    ``forecast``: :class:`~mamba_forecast.layers.InvertedEmbedding` (variate tokens, then exogenous tokens)
    -> ``self.layers`` (filled by the subclass, each ``[B, T, D] -> [B, T, D]``) -> LayerNorm (when
    ``final_norm``) -> ``Linear(D -> h * n_outputs)`` on the first N tokens only (exogenous tokens are dropped).
    """

    # set by the subclass, never by a user: not architecture arguments of a subclass forwarding **kwargs here
    INTERNAL_ARGS = ("final_norm", "token_embedding")

    def __init__(
        self,
        input_size: int,
        h: int,
        n_series: int | None = None,
        *,
        d_model: int,
        final_norm: bool = True,
        token_embedding: TokenEmbedding = nn.Linear,
        **common,
    ):
        super().__init__(input_size, h, n_series, **common)
        self.d_model = check_int("d_model", d_model)
        self.embedding = InvertedEmbedding(
            self.input_size,
            self.h,
            self.d_model,
            hist_exog_size=self.hist_exog_size,
            futr_exog_size=self.futr_exog_size,
            stat_exog_size=self.stat_exog_size,
            dropout=self.dropout,
            token_embedding=token_embedding,
        )
        self.layers = nn.ModuleList()
        self.norm = nn.LayerNorm(self.d_model) if final_norm else nn.Identity()
        self.head = nn.Linear(self.d_model, self.h * self.n_outputs)

    @property
    def n_tokens(self) -> int | None:
        """Tokens the layers see: n_series variates plus the exogenous tokens (None while n_series is unknown)."""
        return None if self.n_series is None else self.n_series + self.hist_exog_size + self.futr_exog_size

    def embed(self, x, hist_exog, futr_exog, stat_exog) -> torch.Tensor:
        return self.embedding(x, hist_exog, futr_exog, stat_exog)  # [B, T, D]

    def forecast(self, x, hist_exog, futr_exog, stat_exog) -> torch.Tensor:
        batch, _, n = x.shape
        tokens = self.embed(x, hist_exog, futr_exog, stat_exog)  # [B, T, D]
        for layer in self.layers:
            tokens = layer(tokens)  # [B, T, D]
        # norm and head on every token, then keep the variates' rows: slicing first would copy the slice for the
        # norm (and zero-fill and copy its gradient), which costs more than the few exogenous rows
        out = self.head(self.norm(tokens))[:, :n]  # [B, N, h * n_outputs]
        return out.view(batch, n, self.h, self.n_outputs).transpose(1, 2)  # [B, h, N, n_outputs]
