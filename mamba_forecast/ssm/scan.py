"""The selective scan (Mamba's S6 recurrence): one entry point, ``selective_scan``, and the choice of its backend.

``selective_scan`` has the signature, tensor layouts and semantics of mamba-ssm's ``selective_scan_fn``::

    u, delta, z : [batch, channels, length]
    A           : [channels, d_state]            (real)
    B, C        : [batch, d_state, length]       (input-dependent, shared by all channels)
    D, delta_bias : [channels]

    delta' = softplus(delta + delta_bias)  (softplus only if delta_softplus)
    h_t    = exp(delta'_t A) * h_{t-1} + delta'_t * B_t * u_t          # [batch, channels, d_state]
    y_t    = <C_t, h_t> + D * u_t
    out    = y * silu(z)                                                # if z is given

Backends:

* ``"cuda"``: mamba-ssm's fused kernel (needs ``mamba-ssm`` with its compiled ``selective_scan_cuda``
  extension, and CUDA tensors). It takes fp32, fp16 and bf16 inputs with ``d_state <= 256``; other inputs
  (fp64, say) run on the next backend in the ``"auto"`` order, with a warning when ``"cuda"`` was asked for.
* ``"triton"``: Triton kernels, forward and backward (``mamba_forecast.ssm.triton_scan``; needs ``triton`` and
  CUDA tensors, or CPU tensors under Triton's interpreter, ``TRITON_INTERPRET=1``, which is for tests only).
  The backward recomputes the states from chunk-start checkpoints. fp32 accumulation (fp64 for fp64 inputs).
* ``"torch"``: pure PyTorch, the recurrence one fused step at a time over chunks of the length, with a
  hand-written backward (``torch_scan``); memory grows with the chunk, not with the length. Runs on CPU, CUDA
  and MPS. On the CPU its load-adaptive threading is opt-in (``set_cpu_scan_threading``, ``cpu_threads``).
* ``"reference"``: the plain sequential recurrence, the oracle for tests (``reference``).

The ``"torch"`` and ``"reference"`` backends compute in fp32 whatever the input dtype, and autocast
(``torch.autocast``, Lightning's ``precision="bf16-mixed"`` / ``"16-mixed"``) is switched off inside the scan,
forward and backward, so the recurrence never runs in bf16/fp16.

``"auto"`` (the default) picks, for CUDA tensors, ``"cuda"`` when mamba-ssm's compiled kernel really loads and
takes the inputs' dtype, else ``"triton"`` when ``triton`` imports, else ``"torch"``; for any other device,
``"torch"``. The environment variable ``MAMBA_FORECAST_SCAN`` (``cuda``, ``triton``, ``torch`` or
``reference``) overrides ``"auto"``; it is read once, at the first scan, and ``set_default_scan_backend``
changes the override at run time. An explicit ``backend=`` argument overrides both.

The gradient of the returned last state: ``"torch"``, ``"triton"`` and ``"reference"`` propagate it (a loss
on the last state reaches every input); mamba-ssm's kernel (``"cuda"``) ignores it, as mamba-ssm documents:
with ``"cuda"`` only the output's gradient flows back.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings

import torch

from .reference import selective_scan_reference
from .torch_scan import _autocast_off, selective_scan_torch

BACKENDS = ("auto", "cuda", "triton", "torch", "reference")
ENV_VAR = "MAMBA_FORECAST_SCAN"

# What backend="auto" runs: "auto" (the automatic choice), another name of BACKENDS, or a bad value of $ENV_VAR
# kept to be reported at use. None until the first scan reads $ENV_VAR.
_default = None

_CUDA_INSTALL_HINT = (
    'Install the fused kernels with mamba-forecast\'s `cuda` extra (`pip install ".[cuda]"` in a clone of it: '
    "mamba-ssm and causal-conv1d, built for your CUDA and torch versions), or use backend='torch', which runs "
    "everywhere."
)
_TRITON_INSTALL_HINT = "Install it with `pip install triton` (Linux), or use backend='torch', which runs everywhere."
# What mamba-ssm's selective_scan_cuda takes (u, delta, B, C, z share one of these; A, D, delta_bias are fp32).
_CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_CUDA_MAX_STATE = 256


@functools.lru_cache(maxsize=1)
def _mamba_ssm_scan():
    """mamba-ssm's ``selective_scan_fn``, or the exception explaining why it is unusable.

    Importing ``mamba_ssm`` is not enough: mamba-ssm after 2.3.2.post1 builds its CUDA scan only with
    ``MAMBA_KEEP_CUDA_BUILD=TRUE`` and otherwise imports with ``selective_scan_cuda = None`` (the first forward
    would then fail). So the compiled module must be there too.
    """
    try:
        interface = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
        fn = interface.selective_scan_fn
    except Exception as exc:  # noqa: BLE001 - ImportError, or an OSError from a kernel built for another torch
        return exc
    if getattr(interface, "selective_scan_cuda", None) is None:
        try:
            compiled = importlib.import_module("selective_scan_cuda")
        except Exception as exc:  # noqa: BLE001 - returned as the reason the kernel is unavailable
            return ImportError(f"mamba-ssm imports but its compiled selective_scan_cuda does not ({exc})")
        if compiled is None or not hasattr(compiled, "fwd"):
            return ImportError("mamba-ssm imports but was installed without its compiled selective_scan_cuda")
    return fn


@functools.lru_cache(maxsize=1)
def _triton_module():
    """``mamba_forecast.ssm.triton_scan`` (which imports triton), or the exception saying why it cannot load."""
    try:
        return importlib.import_module(f"{__package__}.triton_scan")
    except Exception as exc:  # noqa: BLE001 - ImportError without triton; anything a broken triton install raises
        return exc


def cuda_scan_available() -> bool:
    """True when a CUDA device is present and mamba-ssm's compiled selective-scan kernel really loads."""
    return torch.cuda.is_available() and not isinstance(_mamba_ssm_scan(), Exception)


def triton_scan_available(device: torch.device | str | None = "cuda") -> bool:
    """True when the ``"triton"`` backend can run on ``device``: triton imports, and ``device`` is a CUDA device
    (Triton compiling for the GPU) or, under Triton's interpreter (``TRITON_INTERPRET=1``), the CPU."""
    kind = torch.device(device).type if device is not None else "cuda"
    if kind == "cuda" and not torch.cuda.is_available():
        return False
    if kind not in ("cuda", "cpu"):
        return False
    mod = _triton_module()
    if isinstance(mod, Exception):
        return False
    return mod.INTERPRET == (kind == "cpu")


def _triton_unavailable_reason(device) -> str:
    mod = _triton_module()
    if isinstance(mod, Exception):
        return f"The 'triton' scan backend needs triton, which failed to import ({mod}). {_TRITON_INSTALL_HINT}"
    kind = torch.device(device).type if device is not None else "cuda"
    if mod.INTERPRET:
        return (
            f"Triton runs in interpreter mode (TRITON_INTERPRET=1), which takes CPU tensors only; got tensors "
            f"on {torch.device(device)}. Unset TRITON_INTERPRET, or use backend='torch'."
        )
    if kind == "cpu":
        return (
            "The 'triton' scan backend needs CUDA tensors; on a CPU use backend='torch' (Triton's interpreter, "
            "TRITON_INTERPRET=1 set before triton is first imported, runs it on CPU for tests only)."
        )
    return f"The 'triton' scan backend needs CUDA tensors, got tensors on {torch.device(device)}; use backend='torch'."


def _cuda_rejects(dtype: torch.dtype | None, d_state: int | None) -> str | None:
    """Why mamba-ssm's kernel cannot take inputs of ``dtype`` with ``d_state`` states (None when it can)."""
    if dtype is not None and dtype not in _CUDA_DTYPES:
        return f"mamba-ssm's kernel takes fp32, fp16 or bf16 inputs, not {dtype}"
    if d_state is not None and d_state > _CUDA_MAX_STATE:
        return f"mamba-ssm's kernel takes d_state <= {_CUDA_MAX_STATE}, not {d_state}"
    return None


def _auto_backend(device, dtype=None, d_state=None) -> str:
    on_cuda = device is not None and torch.device(device).type == "cuda"
    if not on_cuda:
        return "torch"
    if cuda_scan_available() and _cuda_rejects(dtype, d_state) is None:
        return "cuda"
    if triton_scan_available(device):
        return "triton"
    return "torch"


def _env_default() -> str:
    return os.environ.get(ENV_VAR, "").strip().lower() or "auto"


def _default_backend() -> str:
    """What ``"auto"`` stands for now: $MAMBA_FORECAST_SCAN as read at the first call, unless set since."""
    global _default
    if _default is None:
        _default = _env_default()
    return _default


def set_default_scan_backend(backend: str | None = None) -> str:
    """Set what ``backend="auto"`` runs, for the whole process; this replaces ``$MAMBA_FORECAST_SCAN``.

    The environment variable is read once, at the first scan (or at the first call of this function), so
    changing ``os.environ`` later has no effect; call this instead. An explicit ``backend=`` argument of
    ``selective_scan`` (or ``scan_backend=`` of a model) still wins.

    Args:
        backend: ``"cuda"``, ``"triton"``, ``"torch"`` or ``"reference"`` to run that backend wherever
            ``"auto"`` is asked for; ``"auto"`` for the automatic choice (as with the variable unset); ``None``
            to read ``$MAMBA_FORECAST_SCAN`` again.

    Returns:
        The previous setting, so that a caller can restore it.

    Raises:
        ValueError: ``backend`` (or, with ``None``, ``$MAMBA_FORECAST_SCAN``) is not a backend name; the
            setting is then left as it was.
    """
    global _default
    if backend is None:
        new = _env_default()
        if new not in BACKENDS:
            raise ValueError(
                f"${ENV_VAR}={new!r} is not a scan backend; use one of cuda, triton, torch, reference (or unset it)."
            )
    elif backend in BACKENDS:
        new = backend
    else:
        raise ValueError(f"backend must be one of {BACKENDS} or None (read ${ENV_VAR} again), got {backend!r}.")
    previous, _default = _default_backend(), new
    return previous


def resolve_backend(
    backend: str = "auto",
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    d_state: int | None = None,
) -> str:
    """The backend ``selective_scan`` will run for inputs of ``dtype`` (u's) on ``device``.

    ``"auto"``: on CUDA, mamba-ssm's kernel when it really loads and takes ``dtype``/``d_state``, else Triton
    when it imports, else the torch backend; elsewhere the torch backend. ``"cuda"`` asked for inputs its
    kernel rejects (fp64, say) falls back the same way, with a warning.

    Raises:
        ValueError: ``backend`` (or ``$MAMBA_FORECAST_SCAN``, for ``"auto"``) is not a known backend name.
        RuntimeError: ``"cuda"`` or ``"triton"`` was asked for where it cannot run; the message says what is
            missing.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        backend = _default_backend()
        if backend not in BACKENDS:
            raise ValueError(
                f"${ENV_VAR}={backend!r} is not a scan backend; use one of cuda, triton, torch, reference (or unset "
                "it) before the process starts, or call mamba_forecast.ssm.set_default_scan_backend('auto')."
            )
    if backend == "auto":
        return _auto_backend(device, dtype, d_state)
    if backend == "cuda":
        fn = _mamba_ssm_scan()
        if isinstance(fn, Exception):
            raise RuntimeError(
                f"The 'cuda' scan backend needs mamba-ssm, which failed to load ({fn}). {_CUDA_INSTALL_HINT}"
            )
        if device is not None and torch.device(device).type != "cuda":
            raise RuntimeError(
                f"The 'cuda' scan backend needs CUDA tensors, got tensors on {torch.device(device)}. "
                "Move the model to a GPU, or use backend='torch'."
            )
        reason = _cuda_rejects(dtype, d_state)
        if reason is not None:
            fallback = "triton" if triton_scan_available(device) else "torch"
            warnings.warn(f"{reason}: the scan runs on the {fallback!r} backend instead.", stacklevel=3)
            return fallback
    if backend == "triton" and not triton_scan_available(device if device is not None else "cuda"):
        raise RuntimeError(_triton_unavailable_reason(device))
    return backend


def _check_shapes(u, delta, A, B, C, D, z, delta_bias):
    if u.dim() != 3:
        raise ValueError(f"u must be [batch, channels, length], got shape {tuple(u.shape)}.")
    batch, channels, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must have the shape of u {tuple(u.shape)}, got {tuple(delta.shape)}.")
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f"A must be [channels={channels}, d_state], got shape {tuple(A.shape)}.")
    if A.is_complex():
        raise TypeError("complex A is not supported; pass a real A (Mamba uses A = -exp(A_log)).")
    d_state = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.shape != (batch, d_state, length):
            raise ValueError(
                f"{name} must be [batch={batch}, d_state={d_state}, length={length}], got shape {tuple(t.shape)}."
            )
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"{name} must be [channels={channels}], got shape {tuple(t.shape)}.")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must have the shape of u {tuple(u.shape)}, got {tuple(z.shape)}.")


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
):
    """Run the selective scan; see the module docstring for the recurrence and the layouts.

    Args:
        u: input ``[batch, channels, length]``.
        delta: step sizes ``[batch, channels, length]``.
        A: state matrix (diagonal per channel) ``[channels, d_state]``.
        B: input projection ``[batch, d_state, length]``.
        C: output projection ``[batch, d_state, length]``.
        D: skip weight ``[channels]`` (optional).
        z: gate ``[batch, channels, length]``; the output is multiplied by ``silu(z)`` (optional).
        delta_bias: added to ``delta`` before the softplus ``[channels]`` (optional).
        delta_softplus: apply ``softplus`` to ``delta + delta_bias``.
        return_last_state: also return the final state ``[batch, channels, d_state]`` (fp32; fp64 for fp64
            inputs on the torch, triton and reference backends). Its gradient is propagated by the ``"torch"``,
            ``"triton"`` and ``"reference"`` backends and ignored by ``"cuda"`` (mamba-ssm's kernel).
        backend: ``"auto"``, ``"cuda"``, ``"triton"``, ``"torch"`` or ``"reference"`` (module docstring).

    Returns:
        ``out`` with the dtype of ``u`` (and ``last_state`` when ``return_last_state``).
    """
    _check_shapes(u, delta, A, B, C, D, z, delta_bias)
    return _run_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, backend)


# torch.compile runs the scan eagerly (one graph break per call): the torch backend's chunk length depends on
# the data (the decays), its loops would be unrolled at every new length, and mamba-ssm's kernel is opaque.
# The rest of the model (projections, convolution, attention, norms, heads) is compiled.
@torch.compiler.disable
def _run_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, backend):
    backend = resolve_backend(backend, u.device, u.dtype, A.shape[1])
    if backend == "cuda":
        # the kernel wants u, delta, B, C, z of one dtype with unit strides, and fp32 A, D, delta_bias
        dtype = u.dtype
        u, delta, B, C = (t.to(dtype).contiguous() for t in (u, delta, B, C))
        z = z.to(dtype).contiguous() if z is not None else None
        A = A.float().contiguous()
        D = D.float().contiguous() if D is not None else None
        delta_bias = delta_bias.float().contiguous() if delta_bias is not None else None
        return _mamba_ssm_scan()(
            u,
            delta,
            A,
            B,
            C,
            D,
            z=z,
            delta_bias=delta_bias,
            delta_softplus=delta_softplus,
            return_last_state=return_last_state,
        )
    if backend == "triton":
        # the kernels accumulate in fp32 (fp64 for fp64 u) themselves; autocast does not reach them
        with _autocast_off(u.device):
            return _triton_module().selective_scan_triton(
                u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
            )
    scan = selective_scan_reference if backend == "reference" else selective_scan_torch
    # Under autocast, matmul/bmm/einsum would otherwise run in bf16/fp16 even on fp32 copies of the inputs:
    # the state recurrence must accumulate in fp32. The output keeps u's dtype, as mamba-ssm's kernel does.
    with _autocast_off(u.device):
        return scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
