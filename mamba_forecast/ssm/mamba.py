"""The Mamba (S6) block and its bidirectional pairing.

``Mamba`` has the constructor arguments, defaults, initialisation, parameter names and shapes of
``mamba_ssm.modules.mamba_simple.Mamba`` (mamba-ssm 1.2 to 2.3), so a ``state_dict`` moves between the
two in either direction. It runs anywhere: the selective scan goes through
:func:`mamba_forecast.ssm.selective_scan` (mamba-ssm's CUDA kernel, Triton, or pure PyTorch) and the causal
depthwise convolution uses causal-conv1d's kernel on CUDA when it is installed and takes the input
(``torch``'s grouped ``Conv1d`` otherwise). With ``use_fast_path`` (the default, as in mamba-ssm), a CUDA
input, and mamba-ssm's compiled scan and causal-conv1d both loadable, the whole block after ``in_proj`` runs as
mamba-ssm's fused ``mamba_inner_fn`` (what ``mamba_ssm.Mamba`` itself runs), unless a scan backend other than
``"auto"``/``"cuda"`` is asked for.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .scan import BACKENDS, _cuda_rejects, resolve_backend, selective_scan

# What causal-conv1d's kernel takes: widths 2 to 4, fp32/fp16/bf16 inputs.
_FUSED_CONV_WIDTHS = (2, 3, 4)
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=1)
def _causal_conv1d_fn():
    try:
        from causal_conv1d import causal_conv1d_fn
    except Exception:  # noqa: BLE001 - a broken or mismatched build means no kernel
        return None
    return causal_conv1d_fn


def _fused_conv_usable(x: torch.Tensor, width: int) -> bool:
    """Whether causal-conv1d's kernel takes ``x`` [B, channels, L] with a filter of ``width`` taps."""
    return x.is_cuda and width in _FUSED_CONV_WIDTHS and x.dtype in _FUSED_DTYPES


@functools.lru_cache(maxsize=1)
def _mamba_inner_fn():
    """mamba-ssm's fused ``mamba_inner_fn`` when it can run (its compiled scan and causal-conv1d load), else None."""
    from .scan import _mamba_ssm_scan

    if isinstance(_mamba_ssm_scan(), Exception):
        return None
    try:
        from mamba_ssm.ops import selective_scan_interface as interface
    except Exception:  # noqa: BLE001 - a broken or mismatched build means no kernel
        return None
    if getattr(interface, "causal_conv1d_fwd_function", None) is None or _causal_conv1d_fn() is None:
        return None
    return getattr(interface, "mamba_inner_fn", None)


@torch.compiler.disable
def _fused_block(fn, xz, block: Mamba) -> torch.Tensor:
    # mamba-ssm's custom autograd Function with CUDA extensions: run eagerly under torch.compile
    A = -torch.exp(block.A_log.float())
    return fn(
        xz,
        block.conv1d.weight,
        block.conv1d.bias,
        block.x_proj.weight,
        block.dt_proj.weight,
        block.out_proj.weight,
        block.out_proj.bias,
        A,
        None,
        None,
        block.D.float(),
        delta_bias=block.dt_proj.bias.float(),
        delta_softplus=True,
    )


class Mamba(nn.Module):
    """One Mamba block: input projection, causal depthwise conv, selective scan, gate, output projection.

    Args:
        d_model: width D of the input and output ``[batch, length, D]``.
        d_state: state size N of the SSM per channel.
        d_conv: width of the causal depthwise convolution (the CUDA kernel supports 2 to 4).
        expand: inner width factor E (d_inner = E * D).
        dt_rank: rank of the step-size projection; ``"auto"`` means ``ceil(D / 16)``.
        dt_min, dt_max: range of the initial step sizes (log-uniform).
        dt_init: ``"random"`` or ``"constant"`` initialisation of ``dt_proj.weight``.
        dt_scale: scale of that initialisation.
        dt_init_floor: lower clamp of the initial step sizes.
        conv_bias: bias in the convolution.
        bias: bias in ``in_proj`` and ``out_proj``.
        use_fast_path: on CUDA, run the block through mamba-ssm's fused ``mamba_inner_fn`` when mamba-ssm's
            compiled scan and causal-conv1d load, ``d_conv`` is 2 to 4, the input is fp32/fp16/bf16 and the scan
            backend resolves to ``"cuda"``; otherwise (and with ``False``) the block runs op by op.
        layer_idx: kept for signature compatibility with mamba-ssm.
        scan_backend: ``"auto"``, ``"cuda"``, ``"triton"``, ``"torch"`` or ``"reference"`` (see
            ``selective_scan``).

    Shapes: ``forward(hidden_states [B, L, D]) -> [B, L, D]``; the scan runs along L.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        use_fast_path: bool = True,
        layer_idx: int | None = None,
        device=None,
        dtype=None,
        scan_backend: str = "auto",
    ):
        super().__init__()
        for name, value in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv), ("expand", expand)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}.")
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if scan_backend not in BACKENDS:
            raise ValueError(f"scan_backend must be one of {BACKENDS}, got {scan_backend!r}.")
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}.")
        factory = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_fast_path = use_fast_path
        self.layer_idx = layer_idx
        self.scan_backend = scan_backend

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
            **factory,
        )
        self.activation = "silu"
        self.act = nn.SiLU()
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)

        # Step sizes start log-uniform in [dt_min, dt_max]: the dt bias is softplus^-1 of those values.
        dt_std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, dt_std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
        dt = torch.exp(
            torch.rand(self.d_inner, **factory) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # mamba-ssm's markers, for training code written for it (its init skips the bias, its optimiser groups
        # leave A_log and D out of weight decay): attributes a Parameter does not declare
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]

        # S4D-real initialisation: A = -(1..N) for every channel, stored as its log.
        A = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.D._no_weight_decay = True  # type: ignore[attr-defined]
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv + SiLU on [B, d_inner, L] (any strides)."""
        fused = _causal_conv1d_fn()
        if fused is not None and _fused_conv_usable(x, self.d_conv):
            # channel-first and contiguous: causal-conv1d treats a tensor with unit channel stride as channel-last,
            # whose kernel needs channel counts and strides that are multiples of 8
            return fused(x.contiguous(), self.conv1d.weight.squeeze(1), self.conv1d.bias, activation="silu")
        return self.act(self.conv1d(x)[..., : x.shape[-1]])  # torch's grouped (depthwise) convolution

    def _fast_path(self, hidden_states: torch.Tensor):
        """mamba-ssm's ``mamba_inner_fn`` when this block can run through it (see ``use_fast_path``), else None."""
        if not (self.use_fast_path and hidden_states.is_cuda and self.d_conv in _FUSED_CONV_WIDTHS):
            return None
        if self.scan_backend not in ("auto", "cuda") or hidden_states.dtype not in _FUSED_DTYPES:
            return None
        if _cuda_rejects(hidden_states.dtype, self.d_state) is not None:
            return None  # the op-by-op path falls back to another scan backend (with a warning for "cuda")
        fn = _mamba_inner_fn()
        if fn is None:
            return None
        backend = resolve_backend(self.scan_backend, hidden_states.device, hidden_states.dtype, self.d_state)
        return fn if backend == "cuda" else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != self.d_model:
            raise ValueError(
                f"Mamba expects [batch, length, d_model={self.d_model}], got shape {tuple(hidden_states.shape)}."
            )
        batch, length, _ = hidden_states.shape
        xz = self.in_proj(hidden_states).transpose(1, 2)  # [B, 2*d_inner, L]
        fused = self._fast_path(hidden_states)
        if fused is not None:
            return _fused_block(fused, xz.contiguous(), self)
        x, z = xz.chunk(2, dim=1)  # [B, d_inner, L] each
        x = self._conv(x)
        x_dbl = self.x_proj(x.transpose(1, 2))  # [B, L, dt_rank + 2N]
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # [B, d_inner, L]; bias added inside the scan
        A = -torch.exp(self.A_log.float())  # [d_inner, N]
        y = selective_scan(
            x,
            dt,
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            self.D.float(),
            z=z,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            backend=self.scan_backend,
        )  # [B, d_inner, L]
        return self.out_proj(y.transpose(1, 2))  # [B, L, D]


class BiMamba(nn.Module):
    """A forward Mamba plus a separately weighted Mamba over the reversed sequence, re-reversed and summed.

    This is S-Mamba's bidirectional layout: ``fwd(x) + flip(bwd(flip(x)))`` along the length axis.
    ``backward_kwargs`` overrides constructor arguments of the backward block only (Attention Mamba's
    official code uses ``d_conv=4`` there and 2 in the forward block).

    Shapes: ``forward(x [B, L, D]) -> [B, L, D]``.
    """

    def __init__(self, d_model: int, backward_kwargs: dict | None = None, **mamba_kwargs):
        super().__init__()
        self.fwd = Mamba(d_model, **mamba_kwargs)
        self.bwd = Mamba(d_model, **{**mamba_kwargs, **(backward_kwargs or {})})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fwd(x) + self.bwd(x.flip(1)).flip(1)
