"""The selective scan (Mamba's S6 recurrence) with three interchangeable backends.

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
* ``"torch"``: pure PyTorch, no Python loop over the length. The length is cut into chunks; inside a
  chunk the recurrence is solved in closed form with cumulative log-decays
  (``h_t = e^{S_t} (h_0 + sum_{s<=t} e^{-S_s} x_s)``, the prefix sum done as one small matmul), and a
  short loop carries the state across chunks. A hand-written backward recomputes each chunk from the
  saved chunk-start states, so memory grows with the chunk, not with batch x channels x length x d_state.
  Computation is in fp32 whatever the input dtype, and autocast (``torch.autocast``, Lightning's
  ``precision="bf16-mixed"`` / ``"16-mixed"``) is switched off inside the scan, forward and backward, so the
  recurrence never runs in bf16/fp16. Runs on CPU, CUDA and MPS.
* ``"reference"``: the plain sequential recurrence, the oracle for tests.

``"auto"`` (the default) picks, for CUDA tensors, ``"cuda"`` when mamba-ssm's compiled kernel really loads and
takes the inputs' dtype, else ``"triton"`` when ``triton`` imports, else ``"torch"``; for any other device,
``"torch"``. The environment variable ``MAMBA_FORECAST_SCAN`` (``cuda``, ``triton``, ``torch`` or
``reference``) overrides ``"auto"``; an explicit ``backend=`` argument overrides both.

The gradient of the returned last state: ``"torch"``, ``"triton"`` and ``"reference"`` propagate it (a loss
on the last state reaches every input); mamba-ssm's kernel (``"cuda"``) ignores it, as mamba-ssm documents:
with ``"cuda"`` only the output's gradient flows back.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import importlib
import math
import os
import threading
import time
import warnings

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "cuda", "triton", "torch", "reference")
ENV_VAR = "MAMBA_FORECAST_SCAN"

# Largest chunk the torch backend uses, and the largest spread of log-decay allowed inside one chunk.
# exp(+-_MAX_LOG_DECAY) stays far from fp32 overflow and keeps the rounding of the decays below 1e-6.
_MAX_CHUNK = 16
_MAX_LOG_DECAY = 24.0
# The torch backend holds a few [rows, chunk, d_state, channels] work tensors per chunk. Above this many elements
# per tensor (128 MiB in fp32) the batch is scanned in slices of rows, so a large batch of short sequences (TSM2's
# time mixer over thousands of series, say) does not materialise every row's states at once.
_MAX_WORK_ELEMENTS = 1 << 25
# On the CPU the torch backend scans blocks of rows on parallel workers (_over_row_blocks) and runs its other ops
# with no more intra-op threads than there are free cores (_scan_threads); False switches both off (the
# benchmarks' "torch-uncapped"). The count of free cores is probed at most every _FREE_CPUS_TTL seconds.
_ADAPT_THREADS = True
_FREE_CPUS_TTL = 0.5
# On the CPU, blocks of rows are scanned by several threads at once (each running its ops single-threaded on 2
# cores) when every block's work tensor has at least this many elements.
_MIN_BLOCK_ELEMENTS = 1 << 18

_CUDA_INSTALL_HINT = (
    "Install the fused kernels with `pip install mamba-forecast[cuda]` (mamba-ssm and causal-conv1d, "
    "built for your CUDA and torch versions), or use backend='torch', which runs everywhere."
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
    except Exception as exc:  # ImportError, or an OSError from a kernel built for another torch
        return exc
    if getattr(interface, "selective_scan_cuda", None) is None:
        try:
            compiled = importlib.import_module("selective_scan_cuda")
        except Exception as exc:
            return ImportError(f"mamba-ssm imports but its compiled selective_scan_cuda does not ({exc})")
        if compiled is None or not hasattr(compiled, "fwd"):
            return ImportError("mamba-ssm imports but was installed without its compiled selective_scan_cuda")
    return fn


@functools.lru_cache(maxsize=1)
def _triton_module():
    """``mamba_forecast.ssm.triton_scan`` (which imports triton), or the exception saying why it cannot load."""
    try:
        return importlib.import_module(f"{__package__}.triton_scan")
    except Exception as exc:  # ImportError without triton; anything a broken triton install raises
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
        return (f"Triton runs in interpreter mode (TRITON_INTERPRET=1), which takes CPU tensors only; got tensors "
                f"on {torch.device(device)}. Unset TRITON_INTERPRET, or use backend='torch'.")
    if kind == "cpu":
        return ("The 'triton' scan backend needs CUDA tensors; on a CPU use backend='torch' (Triton's interpreter, "
                "TRITON_INTERPRET=1 set before triton is first imported, runs it on CPU for tests only).")
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


def resolve_backend(
    backend: str = "auto", device: torch.device | None = None, dtype: torch.dtype | None = None,
    d_state: int | None = None,
) -> str:
    """The backend ``selective_scan`` will run for inputs of ``dtype`` (u's) on ``device``.

    ``"auto"``: on CUDA, mamba-ssm's kernel when it really loads and takes ``dtype``/``d_state``, else Triton
    when it imports, else the torch backend; elsewhere the torch backend. ``"cuda"`` asked for inputs its
    kernel rejects (fp64, say) falls back the same way, with a warning.

    Raises:
        ValueError: ``backend`` (or ``$MAMBA_FORECAST_SCAN``) is not a known backend name.
        RuntimeError: ``"cuda"`` or ``"triton"`` was asked for where it cannot run; the message says what is
            missing.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        env = os.environ.get(ENV_VAR, "").strip().lower()
        if env:
            if env not in BACKENDS:
                raise ValueError(
                    f"${ENV_VAR}={env!r} is not a scan backend; use one of cuda, triton, torch, reference "
                    "(or unset it)."
                )
            backend = env
    if backend == "auto":
        return _auto_backend(device, dtype, d_state)
    if backend == "cuda":
        fn = _mamba_ssm_scan()
        if isinstance(fn, Exception):
            raise RuntimeError(f"The 'cuda' scan backend needs mamba-ssm, which failed to load ({fn}). {_CUDA_INSTALL_HINT}")
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
            u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
            return_last_state=return_last_state,
        )
    if backend == "triton":
        # the kernels accumulate in fp32 (fp64 for fp64 u) themselves; autocast does not reach them
        with _autocast_off(u.device):
            return _triton_module().selective_scan_triton(
                u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
            )
    scan = selective_scan_reference if backend == "reference" else _selective_scan_torch
    # Under autocast, matmul/bmm/einsum would otherwise run in bf16/fp16 even on fp32 copies of the inputs:
    # the state recurrence (and its cumulative log-decays) must accumulate in fp32. The output keeps u's dtype,
    # as mamba-ssm's kernel does.
    with _autocast_off(u.device):
        return scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def _autocast_off(device: torch.device):
    """A context that disables autocast for ``device`` (a no-op where autocast does not exist for it)."""
    kind = torch.device(device).type
    available = getattr(torch.amp, "is_autocast_available", None)  # torch >= 2.4
    if not (available(kind) if available is not None else kind in ("cpu", "cuda")):
        return contextlib.nullcontext()
    return torch.autocast(device_type=kind, enabled=False)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; everything else (fp32, fp16, bf16) is computed in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    """Copies of the inputs in the compute dtype, and the effective step size."""
    cd = _compute_dtype(u.dtype)
    delta = delta.to(cd)
    if delta_bias is not None:
        delta = delta + delta_bias.to(cd)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return u.to(cd), delta, A.to(cd), B.to(cd), C.to(cd)


def _finish(y, u, D, z, dtype):
    """Skip connection and gate, then the output dtype."""
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(dtype)


def selective_scan_reference(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The sequential recurrence, one time step at a time (the test oracle; slow)."""
    u_c, dt, A_c, B_c, C_c = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, channels, length = u.shape
    decay = torch.exp(dt.unsqueeze(-1) * A_c[:, None, :])  # [b, c, l, n]
    drive = (dt * u_c).unsqueeze(-1) * B_c.transpose(1, 2).unsqueeze(1)  # [b, c, l, n]
    h = u_c.new_zeros(batch, channels, A.shape[1])
    ys = []
    for t in range(length):
        h = decay[:, :, t] * h + drive[:, :, t]
        ys.append(torch.einsum("bcn,bn->bc", h, C_c[:, :, t]))
    y = torch.stack(ys, dim=-1) if ys else u_c.new_zeros(batch, channels, 0)
    out = _finish(y, u_c, D, z, u.dtype)
    return (out, h) if return_last_state else out


# ----------------------------------------------------------------------------------------------------
# torch backend: chunked closed-form scan with a hand-written backward
# ----------------------------------------------------------------------------------------------------


def _running_elsewhere() -> int | None:
    """Runnable tasks on the machine now that are not threads of this process (None where /proc is missing).

    The ``running/total`` field of ``/proc/loadavg`` is the kernel's instantaneous count of runnable tasks
    (not an average); this process's own runnable threads (the caller, and intra-op workers still spinning)
    are read from ``/proc/self/task/*/stat`` and subtracted.
    """
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        tids = os.listdir("/proc/self/task")
    except (OSError, ValueError, IndexError):
        return None
    own = 0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        own += state == "R"
    return max(0, running - max(own, 1))


_free_cpus_cache = [-math.inf, None]  # [probed at (time.monotonic), free cores]


def _free_cpus() -> int | None:
    """Cores of this process's affinity set that other processes leave free now (>= 1), or None if unknown.

    The machine-wide count of other runnable tasks is scaled to the share of the machine's cores this process
    may use. Cached for _FREE_CPUS_TTL seconds: the probe reads a few small /proc files (~0.1 ms).
    """
    now = time.monotonic()
    if now - _free_cpus_cache[0] < _FREE_CPUS_TTL:
        return _free_cpus_cache[1]
    others = _running_elsewhere()
    free = None
    if others is not None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        total = max(os.cpu_count() or cpus, cpus)
        free = max(1, cpus - round(others * cpus / total))
    _free_cpus_cache[:] = [now, free]
    return free


@contextlib.contextmanager
def _scan_threads(device: torch.device):
    """On the CPU, run the block with at most as many intra-op threads as there are free cores; restore after.

    The scan is a few thousand small ops (tens per chunk of a few time steps), and every one is an OpenMP
    parallel region that ends in a barrier. When another process holds one of the cores a torch thread
    counts on, each barrier waits for a descheduled thread (scheduler ticks, 4 to 16 ms against 0.3 ms of
    work at (32, 321, 512, 16)), and the scan collapses (docs/performance.md). The chunk loop avoids the
    barriers with row workers (_over_row_blocks); the ops around it run here on no more threads than there
    are free cores. The user's setting is restored on exit, so the cap never leaks out of the scan.
    """
    if not _ADAPT_THREADS or torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    free = _free_cpus() if threads > 1 else None
    if free is None or free >= threads:
        yield
        return
    torch.set_num_threads(free)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _chunk_plan(dt: torch.Tensor, A: torch.Tensor) -> tuple[int, bool]:
    """The chunk length for the closed form, and whether single steps must have their decay clamped.

    dt: [b, l, c] (time-major), A: [c, n]. The chunk is the largest power of two <= _MAX_CHUNK for which
    sum_t min(|dt_t| max_n |A|, _MAX_LOG_DECAY) stays under _MAX_LOG_DECAY inside every chunk. A single
    step that decays by more than exp(-_MAX_LOG_DECAY) (< 4e-11) is clamped to that decay: the state it
    forgets is below fp32 resolution either way, and the closed form stays finite.
    """
    length = dt.shape[1]
    step = dt.abs() * A.abs().amax(dim=1)  # [b, l, c]
    clamp = bool(step.amax() > _MAX_LOG_DECAY) if step.numel() else False
    if clamp:
        step = step.clamp(max=_MAX_LOG_DECAY)
    chunk = min(_MAX_CHUNK, 1 << max(0, math.ceil(math.log2(max(length, 1)))))
    while chunk > 1:
        n_chunks = -(-length // chunk)
        padded = F.pad(step, (0, 0, 0, n_chunks * chunk - length))
        if float(padded.view(step.shape[0], n_chunks, chunk, -1).sum(2).amax()) <= _MAX_LOG_DECAY:
            break
        chunk //= 2
    return chunk, clamp


class _ChunkedScan(torch.autograd.Function):
    """y_t = <C_t, h_t>, h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t, in chunk-major layouts.

    Inputs (fp32 or fp64, contiguous; the length is padded to whole chunks with dt = u = 0):
        u, dt: [k, b, T, c]; A_t: [n, c] (A transposed); Bm, Cm: [k, b, T, n]   (k chunks of T steps)
    Outputs: y [k, b, T, c], last state [b, n, c].
    Per chunk the work tensors are [b, T, n, c], so the reductions over n and over c are batched matmuls and
    every per-chunk slice of an input is contiguous. Rows of the batch are independent: with ``workers`` > 1
    (the CPU) blocks of rows are scanned by that many threads at once (see _over_row_blocks).
    """

    @staticmethod
    def forward(ctx, u, dt, A_t, Bm, Cm, clamp, workers=1):
        n_chunks, b, chunk, c = u.shape
        n = A_t.shape[0]
        du = dt * u
        tril = torch.ones(chunk, chunk, device=u.device, dtype=u.dtype).tril_()
        dt_cum = None if clamp else torch.matmul(tril, dt)  # in-chunk cumulative steps [k, b, T, c]
        starts = u.new_empty(n_chunks, b, n, c)
        y = u.new_empty(n_chunks, b, chunk, c)
        last = u.new_empty(b, n, c)

        def rows(r0, r1):
            sl = slice(r0, r1)
            dt_r, du_r, B_r, C_r = dt[:, sl], du[:, sl], Bm[:, sl], Cm[:, sl]
            cum_r = None if dt_cum is None else dt_cum[:, sl]
            buffers = [u.new_empty(r1 - r0, chunk, n, c) for _ in range(3)]
            h = u.new_zeros(r1 - r0, n, c)
            bt = (r1 - r0) * chunk
            for k in range(n_chunks):
                starts[k, sl] = h
                decay, work, prefix = _chunk_states(k, dt_r, cum_r, du_r, A_t, B_r, h, tril, buffers)
                torch.mul(prefix, decay, out=work)  # h_t  [rows, T, n, c]
                torch.bmm(C_r[k].view(bt, 1, n), work.view(bt, n, c), out=y[k, sl].view(bt, 1, c))
                h = work[:, -1].clone()
            last[sl] = h

        _over_row_blocks(b, chunk * n * c, workers, rows)
        ctx.save_for_backward(u, dt, A_t, Bm, Cm, starts)
        ctx.clamp = clamp
        ctx.workers = workers
        return y, last

    @staticmethod
    def backward(ctx, gy, g_last):
        # backward() may be called inside an autocast region (the forward ran with it disabled): keep fp32
        with _autocast_off(gy.device), _scan_threads(gy.device):
            return _ChunkedScan._backward(ctx, gy, g_last)

    @staticmethod
    def _backward(ctx, gy, g_last):
        u, dt, A_t, Bm, Cm, starts = ctx.saved_tensors
        n_chunks, b, chunk, c = u.shape
        n = A_t.shape[0]
        gy = gy.contiguous()
        du = dt * u
        tril = torch.ones(chunk, chunk, device=u.device, dtype=u.dtype).tril_()
        triu = tril.t().contiguous()
        dt_cum = None if ctx.clamp else torch.matmul(tril, dt)
        g_u = torch.empty_like(u)
        g_dt = torch.empty_like(u)
        g_B = torch.empty_like(Bm)
        g_C = torch.empty_like(Cm)
        g_last = g_last.contiguous() if g_last is not None else None
        g_A_parts = {}

        def rows(r0, r1):
            sl = slice(r0, r1)
            nr = r1 - r0
            bt = nr * chunk
            u_r, dt_r, du_r, B_r, C_r, gy_r = u[:, sl], dt[:, sl], du[:, sl], Bm[:, sl], Cm[:, sl], gy[:, sl]
            cum_r = None if dt_cum is None else dt_cum[:, sl]
            buffers = [u.new_empty(nr, chunk, n, c) for _ in range(3)]
            rev = u.new_empty(nr, chunk, n, c)
            g_A = torch.zeros_like(A_t)
            gh_B = u.new_empty(bt, 1, c)
            carry = g_last[sl] if g_last is not None else u.new_zeros(nr, n, c)
            for k in reversed(range(n_chunks)):
                h0 = starts[k, sl]
                decay, work, prefix = _chunk_states(k, dt_r, cum_r, du_r, A_t, B_r, h0, tril, buffers)  # h_t = E_t P_t
                # adjoint: gh_t = C_t gy_t + exp(dt_{t+1} A) gh_{t+1}  =>  gh_t = E_t^-1 sum_{s>=t} E_s q_s
                torch.mul(C_r[k].unsqueeze(-1), gy_r[k].unsqueeze(2), out=work)  # q_s [rows, T, n, c]
                work[:, -1] += carry
                work.mul_(decay)
                torch.matmul(triu, work.view(nr, chunk, n * c), out=rev.view(nr, chunk, n * c))  # R_t
                carry = rev[:, 0].clone()  # E_0 gh_0 = R_0: the adjoint handed to the previous chunk
                torch.div(rev, decay, out=work)  # gh_t
                decay.mul_(prefix)  # h_t
                torch.bmm(decay.view(bt, n, c), gy_r[k].view(bt, c, 1), out=g_C[k, sl].view(bt, n, 1))
                torch.bmm(work.view(bt, n, c), du_r[k].view(bt, c, 1), out=g_B[k, sl].view(bt, n, 1))
                torch.bmm(B_r[k].view(bt, 1, n), work.view(bt, n, c), out=gh_B)  # sum_n gh B
                gh_B = gh_B.view(nr, chunk, c)
                torch.mul(gh_B, dt_r[k], out=g_u[k, sl])
                # d/d(dt A): gh_t * (h_t - dt_t u_t B_t) = R_t * P_{t-1}   (P_{-1} = h0)
                rev[:, 1:].mul_(prefix[:, :-1])
                rev[:, 0].mul_(h0)
                torch.mul(rev, A_t, out=work)
                torch.sum(work, 2, out=g_dt[k, sl])
                g_dt[k, sl].addcmul_(gh_B, u_r[k])
                rev.mul_(dt_r[k].unsqueeze(2))
                g_A += rev.sum((0, 1))
                gh_B = gh_B.view(bt, 1, c)
            g_A_parts[r0] = g_A

        _over_row_blocks(b, chunk * n * c, ctx.workers, rows)
        g_A = g_A_parts.pop(0)
        for r0 in sorted(g_A_parts):  # a fixed order: the same sum whatever thread finished first
            g_A += g_A_parts[r0]
        return g_u, g_dt, g_A, g_B, g_C, None, None


def _over_row_blocks(rows: int, per_row: int, workers: int, fn) -> None:
    """Call ``fn(r0, r1)`` over blocks of rows that cover ``range(rows)``: on this thread alone when
    ``workers`` is 1 or the work is small, else on ``workers`` threads that take blocks as they come free.

    On a CPU shared with other processes this is what keeps the scan from collapsing: each worker runs its
    ops on torch threads of its own (one on 2 cores), so no op waits in a parallel-region barrier for a
    thread the scheduler took away, and a worker on a busy core just scans fewer blocks. Blocks are at
    least _MIN_BLOCK_ELEMENTS elements per work tensor (so Python's per-op overhead, under the GIL, stays
    small) and about 2 per worker. ``fn`` must write disjoint rows.
    """
    n_blocks = min(rows, 2 * workers, max(1, rows * per_row // _MIN_BLOCK_ELEMENTS))
    workers = min(workers, n_blocks)
    if workers <= 1:
        fn(0, rows)
        return
    bounds = [rows * i // n_blocks for i in range(n_blocks + 1)]
    blocks = iter(zip(bounds[:-1], bounds[1:]))
    lock = threading.Lock()
    threads = torch.get_num_threads()
    per_worker = max(1, threads // workers)

    def work():
        torch.set_num_threads(per_worker)  # this thread's intra-op threads (thread-local in ATen's OpenMP)
        with torch.no_grad():
            while True:
                with lock:
                    block = next(blocks, None)
                if block is None:
                    return
                fn(*block)

    try:
        futures = [_row_pool(os.getpid()).submit(work) for _ in range(workers - 1)]
        try:
            work()  # this thread is a worker too
        finally:
            errors = [f.exception() for f in futures]
        if any(e is not None for e in errors):
            raise next(e for e in errors if e is not None)
    finally:
        torch.set_num_threads(threads)  # also the default that threads created later start from


@functools.lru_cache(maxsize=1)
def _row_pool(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """The row workers' threads; keyed by the process id, as a forked child inherits no threads."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                                 thread_name_prefix="mamba_forecast_scan")


def _chunk_states(k, dt, dt_cum, du, A_t, Bm, h0, tril, buffers):
    """For chunk k: decay E_t = exp(A cumsum(dt)) and prefix P_t = h0 + sum_{s<=t} x_s / E_s.

    Then h_t = E_t * P_t. Returns (decay, scratch, prefix), three [b, T, n, c] buffers. With ``dt_cum``
    None (clamp mode) each step's log-decay is floored at -_MAX_LOG_DECAY before the prefix sum.
    """
    decay, work, prefix = buffers
    b, chunk, n, c = decay.shape
    if dt_cum is None:
        torch.mul(dt[k].unsqueeze(2), A_t, out=work).clamp_(min=-_MAX_LOG_DECAY)
        torch.matmul(tril, work.view(b, chunk, n * c), out=decay.view(b, chunk, n * c))
    else:
        torch.mul(dt_cum[k].unsqueeze(2), A_t, out=decay)
    decay.exp_()
    torch.mul(Bm[k].unsqueeze(-1), du[k].unsqueeze(2), out=work)  # x_s = dt_s u_s B_s
    work.div_(decay)
    work[:, 0] += h0
    torch.matmul(tril, work.view(b, chunk, n * c), out=prefix.view(b, chunk, n * c))
    return decay, work, prefix


def _to_chunks(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """[b, f, l] -> [k, b, T, f], padding the length with zeros to k whole chunks of T."""
    b, f, length = x.shape
    x = F.pad(x, (0, -length % chunk))
    return x.view(b, f, -1, chunk).permute(2, 0, 3, 1).contiguous()


def _scan_rows(u, dt, A_t, B, C, chunk, clamp, workers=1):
    """The chunked scan of some rows of the batch: y [rows, c, padded length] and the last state [rows, n, c]."""
    rows, channels, _ = u.shape
    # dt = 0 on the padded steps leaves the state untouched
    y, last = _ChunkedScan.apply(
        _to_chunks(u, chunk), _to_chunks(dt, chunk), A_t, _to_chunks(B, chunk), _to_chunks(C, chunk), clamp,
        workers,
    )
    return y.permute(1, 3, 0, 2).reshape(rows, channels, -1), last


def _selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    # rows are scanned by as many threads as torch would use (before the cap below), each single-threaded on
    # 2 cores: no op of the chunk loop ever waits in a barrier for a thread another process displaced
    workers = torch.get_num_threads() if _ADAPT_THREADS and u.device.type == "cpu" else 1
    with _scan_threads(u.device):
        return _selective_scan_torch_body(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, workers
        )


def _selective_scan_torch_body(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, workers=1):
    u_c, dt, A_c, B_c, C_c = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, channels, length = u.shape
    if length == 0:
        out = _finish(u_c.new_zeros(batch, channels, 0), u_c, D, z, u.dtype)
        return (out, u_c.new_zeros(batch, channels, A.shape[1])) if return_last_state else out
    chunk, clamp = _chunk_plan(dt.detach().transpose(1, 2), A_c.detach())
    A_t = A_c.t().contiguous()
    rows = max(1, _MAX_WORK_ELEMENTS // (chunk * A.shape[1] * channels))
    parts = [
        _scan_rows(
            u_c[i : i + rows], dt[i : i + rows], A_t, B_c[i : i + rows], C_c[i : i + rows], chunk, clamp, workers
        )
        for i in range(0, batch, rows)
    ]
    if len(parts) == 1:
        y, last = parts[0]
    else:
        y, last = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    y = y[..., :length]
    out = _finish(y, u_c, D, z, u.dtype)
    return (out, last.transpose(1, 2)) if return_last_state else out
