"""The selective scan as Triton kernels, forward and backward (the ``"triton"`` backend).

Imported only when that backend is used: it needs ``triton`` (on CUDA tensors, or on CPU tensors under
Triton's interpreter, ``TRITON_INTERPRET=1`` set before ``triton`` is first imported). The rest of the
package never imports this module at import time.

Semantics and layouts are those of :func:`mamba_forecast.ssm.selective_scan` (mamba-ssm's
``selective_scan_fn``)::

    u, delta, z : [batch, channels, length]     A : [channels, d_state] (real)
    B, C        : [batch, d_state, length]      D, delta_bias : [channels]

How it works. One program owns one batch row and a block of channels, holds the state
``h [channels block, d_state]`` in registers (fp32; fp64 for fp64 inputs) and walks the length in chunks of
``CHUNK`` steps (8 to 32). Inside a chunk the recurrence ``h_t = a_t h_{t-1} + x_t`` (``a_t = exp(dt_t A)``,
``x_t = dt_t u_t B_t``) is solved by an associative scan along the chunk, with the state carried in from the
previous chunk folded into the first step. The forward stores only the state at the start of every chunk
(``[batch, channels, n_chunks, d_state]``), never the states of every step. The backward walks the chunks in
reverse: it recomputes the chunk's states from its start state, runs the adjoint recurrence
``g_t = C_t dy_t + a_{t+1} g_{t+1}`` as a reverse associative scan, and accumulates every gradient from those.
The gradients of B and C sum over channel blocks with atomic adds (so their last bits may vary from run
to run, as with mamba-ssm's kernel); all others are deterministic.

Block sizes. The chunk follows d_state and the length (the same in both kernels). The channel block and the
number of warps are chosen on the device by ``triton.autotune``, once per (channels, d_state, length) and dtypes
in a process, among at most three candidates whose tiles stay in registers (``_candidates``); under Triton's
interpreter, or with ``MAMBA_FORECAST_TRITON_AUTOTUNE=0``, the fixed choice of ``_blocks`` runs instead.

Unlike mamba-ssm's kernel, the gradient of the returned last state is propagated.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .triton_blocks import (
    _BLOCKS_D,
    _BWD_TILE,
    _BWD_TILE_PER_WARP,
    _FWD_TILE,
    _FWD_TILE_PER_WARP,
    _NUM_WARPS,
    _WARPS,
    _blocks,
    _candidates,
    _state_and_chunk,
)

try:  # triton >= 3.2 reads its settings through ``knobs``
    from triton import knobs as _knobs

    INTERPRET = bool(_knobs.runtime.interpret)
except Exception:  # noqa: BLE001  # pragma: no cover - older triton
    INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def _prune(tile_per_warp: int):
    def prune(configs, named_args, **_):
        keep = set(_candidates(named_args["n_ch"], named_args["n_st"], named_args["length"], tile_per_warp))
        return [c for c in configs if (c.kwargs["BLOCK_D"], c.num_warps) in keep]

    return prune


def _autotuned(kernel, tile_per_warp: int, **options):
    """``kernel`` under ``triton.autotune``: at the first call for a (channels, d_state, length), and the inputs'
    dtypes, it times the candidate channel blocks and warp counts on the device and keeps the fastest."""
    configs = [triton.Config({"BLOCK_D": b}, num_warps=w) for w in _WARPS for b in _BLOCKS_D]
    return triton.autotune(
        configs=configs,
        key=["n_ch", "n_st", "length"],
        prune_configs_by={"early_config_prune": _prune(tile_per_warp)},
        **options,
    )(kernel)


@triton.jit
def _combine(a1, b1, a2, b2):
    # (a1, b1) then (a2, b2): h -> a2 (a1 h + b1) + b2
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _softplus(x):
    # log(1 + e^x) with log1p done by hand (Kahan's trick), exact to rounding for very negative x too
    e = tl.exp(tl.minimum(x, 20.0))
    w = 1.0 + e
    lp = tl.where(w == 1.0, e, tl.log(w) * e / (w - 1.0))
    return tl.where(x > 20.0, x, lp)


@triton.jit
def _step_sizes(delta_ptr, off, mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, ACC: tl.constexpr):
    """delta' = softplus(delta + bias) on a [channels, chunk] tile; 0 outside ``mask`` (a no-op step)."""
    dt_raw = tl.load(delta_ptr + off, mask=mask, other=0.0).to(ACC)
    if HAS_BIAS:
        dt_raw = dt_raw + bias[:, None]
    dt = dt_raw
    if SOFTPLUS:
        dt = _softplus(dt_raw)
    return tl.where(mask, dt, 0.0), dt_raw


@triton.jit
def _scan_fwd_kernel(
    u_ptr,
    delta_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    out_ptr,
    start_ptr,
    last_ptr,
    n_ch,
    n_st,
    length,
    n_chunks,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr,
):
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    t = tl.arange(0, CHUNK)
    md = d < n_ch
    mn = n < n_st
    mdn = md[:, None] & mn[None, :]
    A = tl.load(A_ptr + d[:, None] * n_st + n[None, :], mask=mdn, other=0.0).to(ACC)
    bias = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=md, other=0.0).to(ACC)
    Dv = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_D:
        Dv = tl.load(D_ptr + d, mask=md, other=0.0).to(ACC)
    row = pid_b.to(tl.int64) * n_ch * length
    row_bc = pid_b.to(tl.int64) * n_st * length
    start_off = (pid_b.to(tl.int64) * n_ch + d[:, None]) * n_chunks * n_st + n[None, :]
    first = (t == 0)[None, None, :]
    last = (t == CHUNK - 1)[None, None, :]
    h = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
    for c in range(n_chunks):
        tl.store(start_ptr + start_off + c * n_st, h, mask=mdn)
        ll = c * CHUNK + t
        ml = ll < length
        m2 = md[:, None] & ml[None, :]
        off = row + d[:, None] * length + ll[None, :]
        u = tl.load(u_ptr + off, mask=m2, other=0.0).to(ACC)
        dt, _ = _step_sizes(delta_ptr, off, m2, bias, HAS_BIAS, SOFTPLUS, ACC)
        mbc = mn[:, None] & ml[None, :]
        off_bc = row_bc + n[:, None] * length + ll[None, :]
        Bt = tl.load(B_ptr + off_bc, mask=mbc, other=0.0).to(ACC)
        Ct = tl.load(C_ptr + off_bc, mask=mbc, other=0.0).to(ACC)
        a = tl.exp(dt[:, None, :] * A[:, :, None])  # [BD, BN, T]; 1 on padded steps
        x = (dt * u)[:, None, :] * Bt[None, :, :]
        x = x + tl.where(first, a * h[:, :, None], 0.0)  # the carried state enters at the first step
        _, hs = tl.associative_scan((a, x), axis=2, combine_fn=_combine)
        y = tl.sum(hs * Ct[None, :, :], axis=1)  # [BD, T]
        h = tl.sum(tl.where(last, hs, 0.0), axis=2)  # padded steps keep the state: this is the last real one
        if HAS_D:
            y = y + Dv[:, None] * u
        if HAS_Z:
            zz = tl.load(z_ptr + off, mask=m2, other=0.0).to(ACC)
            y = y * zz * tl.sigmoid(zz)
        tl.store(out_ptr + off, y, mask=m2)
    tl.store(last_ptr + (pid_b.to(tl.int64) * n_ch + d[:, None]) * n_st + n[None, :], h, mask=mdn)


@triton.jit
def _scan_bwd_kernel(
    u_ptr,
    delta_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    start_ptr,
    dout_ptr,
    dlast_ptr,
    du_ptr,
    ddelta_ptr,
    dz_ptr,
    dA_ptr,
    dB_ptr,
    dC_ptr,
    dD_ptr,
    dbias_ptr,
    n_ch,
    n_st,
    length,
    n_chunks,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    HAS_DLAST: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    CHUNK: tl.constexpr,
):
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    t = tl.arange(0, CHUNK)
    md = d < n_ch
    mn = n < n_st
    mdn = md[:, None] & mn[None, :]
    A = tl.load(A_ptr + d[:, None] * n_st + n[None, :], mask=mdn, other=0.0).to(ACC)
    bias = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=md, other=0.0).to(ACC)
    Dv = tl.zeros([BLOCK_D], dtype=ACC)
    if HAS_D:
        Dv = tl.load(D_ptr + d, mask=md, other=0.0).to(ACC)
    row = pid_b.to(tl.int64) * n_ch * length
    row_bc = pid_b.to(tl.int64) * n_st * length
    state_off = (pid_b.to(tl.int64) * n_ch + d[:, None]) * n_st + n[None, :]
    start_off = (pid_b.to(tl.int64) * n_ch + d[:, None]) * n_chunks * n_st + n[None, :]
    first = (t == 0)[None, None, :]
    last = (t == CHUNK - 1)[None, None, :]
    # adjoint of the state arriving from after the chunk (at its last step); the last state's gradient first
    carry = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
    if HAS_DLAST:
        carry = tl.load(dlast_ptr + state_off, mask=mdn, other=0.0).to(ACC)
    dA = tl.zeros([BLOCK_D, BLOCK_N], dtype=ACC)
    dD = tl.zeros([BLOCK_D], dtype=ACC)
    dbias = tl.zeros([BLOCK_D], dtype=ACC)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        h0 = tl.load(start_ptr + start_off + c * n_st, mask=mdn, other=0.0).to(ACC)
        ll = c * CHUNK + t
        ml = ll < length
        m2 = md[:, None] & ml[None, :]
        off = row + d[:, None] * length + ll[None, :]
        u = tl.load(u_ptr + off, mask=m2, other=0.0).to(ACC)
        dt, dt_raw = _step_sizes(delta_ptr, off, m2, bias, HAS_BIAS, SOFTPLUS, ACC)
        # the next step's decay a_{t+1} (inside the chunk; the step after the chunk is in ``carry``)
        m2n = md[:, None] & ((ll + 1) < length)[None, :] & (t < CHUNK - 1)[None, :]
        dt_next, _ = _step_sizes(delta_ptr, off + 1, m2n, bias, HAS_BIAS, SOFTPLUS, ACC)
        mbc = mn[:, None] & ml[None, :]
        off_bc = row_bc + n[:, None] * length + ll[None, :]
        Bt = tl.load(B_ptr + off_bc, mask=mbc, other=0.0).to(ACC)
        Ct = tl.load(C_ptr + off_bc, mask=mbc, other=0.0).to(ACC)
        dtu = dt * u
        a = tl.exp(dt[:, None, :] * A[:, :, None])
        x = dtu[:, None, :] * Bt[None, :, :]
        _, hs = tl.associative_scan((a, x + tl.where(first, a * h0[:, :, None], 0.0)), axis=2, combine_fn=_combine)
        gy = tl.load(dout_ptr + off, mask=m2, other=0.0).to(ACC)
        if HAS_Z:
            zz = tl.load(z_ptr + off, mask=m2, other=0.0).to(ACC)
            sig = tl.sigmoid(zz)
            y = tl.sum(hs * Ct[None, :, :], axis=1)
            if HAS_D:
                y = y + Dv[:, None] * u
            tl.store(dz_ptr + off, gy * y * sig * (1.0 + zz * (1.0 - sig)), mask=m2)
            gy = gy * zz * sig
        du = tl.zeros([BLOCK_D, CHUNK], dtype=ACC)
        if HAS_D:
            dD += tl.sum(gy * u, axis=1)
            du = gy * Dv[:, None]
        a_next = tl.exp(dt_next[:, None, :] * A[:, :, None])
        a_next = tl.where(last, 0.0, a_next)
        q = Ct[None, :, :] * gy[:, None, :] + tl.where(last, carry[:, :, None], 0.0)
        _, gh = tl.associative_scan((a_next, q), axis=2, combine_fn=_combine, reverse=True)
        carry = tl.sum(tl.where(first, a * gh, 0.0), axis=2)
        decayed = hs - x  # a_t h_{t-1}
        dA += tl.sum(gh * decayed * dt[:, None, :], axis=2)
        ghB = tl.sum(gh * Bt[None, :, :], axis=1)  # [BD, T]
        du = du + dt * ghB
        ddt = tl.sum(gh * decayed * A[:, :, None], axis=1) + u * ghB
        if SOFTPLUS:
            ddt = ddt * tl.sigmoid(dt_raw)
        ddt = tl.where(m2, ddt, 0.0)
        dbias += tl.sum(ddt, axis=1)
        tl.store(du_ptr + off, du, mask=m2)
        tl.store(ddelta_ptr + off, ddt, mask=m2)
        tl.atomic_add(dB_ptr + off_bc, tl.sum(gh * dtu[:, None, :], axis=0), mask=mbc)
        tl.atomic_add(dC_ptr + off_bc, tl.sum(hs * gy[:, None, :], axis=0), mask=mbc)
    tl.store(dA_ptr + state_off, dA, mask=mdn)
    row_d = pid_b.to(tl.int64) * n_ch + d
    if HAS_D:
        tl.store(dD_ptr + row_d, dD, mask=md)
    if HAS_BIAS:
        tl.store(dbias_ptr + row_d, dbias, mask=md)


# Triton's interpreter (tests on a CPU) runs the fixed choice of _blocks: autotune's timing means nothing there and
# would take minutes. MAMBA_FORECAST_TRITON_AUTOTUNE=0 does the same on a GPU (no compiling and timing of
# candidates at the first call of each shape, e.g. for tests that run many shapes once).
_AUTOTUNE = not INTERPRET and os.environ.get("MAMBA_FORECAST_TRITON_AUTOTUNE", "1") != "0"
_scan_fwd_tuned = _autotuned(_scan_fwd_kernel, _FWD_TILE_PER_WARP)
# dB and dC are summed with atomic adds: autotune zeroes them before each timed run and before the real one
_scan_bwd_tuned = _autotuned(_scan_bwd_kernel, _BWD_TILE_PER_WARP, reset_to_zero=["dB_ptr", "dC_ptr"])


def _launch(kernel, tuned, tile: int, shape: tuple[int, int, int, int], args: tuple, flags: dict) -> None:
    """Run ``kernel`` over (batch rows, channel blocks): on the device ``tuned`` picks the channel block and the
    warps; under the interpreter, the fixed choice of :func:`_blocks` with 4 warps."""
    batch, channels, d_state, length = shape
    if _AUTOTUNE:
        tuned[lambda meta: (batch, triton.cdiv(channels, meta["BLOCK_D"]))](*args, **flags)
    else:
        block_d = _blocks(channels, d_state, length, tile)[0]
        kernel[(batch, triton.cdiv(channels, block_d))](*args, **flags, BLOCK_D=block_d, num_warps=_NUM_WARPS)


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


_TL = {torch.float32: tl.float32, torch.float64: tl.float64}


def _check_device(u: torch.Tensor) -> None:
    if u.device.type == "cuda" and not INTERPRET:
        return
    if u.device.type == "cpu" and INTERPRET:
        return
    if INTERPRET:
        raise RuntimeError(
            f"Triton runs in interpreter mode (TRITON_INTERPRET=1), which takes CPU tensors; got tensors on {u.device}."
        )
    raise RuntimeError(
        f"The 'triton' scan backend needs CUDA tensors (got tensors on {u.device}); on a CPU use backend='torch' "
        "(Triton's interpreter, TRITON_INTERPRET=1 set before triton is imported, is for testing only)."
    )


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        ctx.set_materialize_grads(False)
        acc = _acc_dtype(u.dtype)
        u, delta, B, C = (t.contiguous() for t in (u, delta, B, C))
        z = z.contiguous() if z is not None else None
        A_c = A.to(acc).contiguous()
        D_c = D.to(acc).contiguous() if D is not None else None
        bias_c = delta_bias.to(acc).contiguous() if delta_bias is not None else None
        batch, channels, length = u.shape
        d_state = A.shape[1]
        block_n, chunk = _state_and_chunk(d_state, length)
        n_chunks = triton.cdiv(length, chunk)
        out = torch.empty_like(u)
        starts = u.new_empty(batch, channels, n_chunks, d_state, dtype=acc)
        last = u.new_empty(batch, channels, d_state, dtype=acc)
        if length > 0:
            args = (
                u,
                delta,
                A_c,
                B,
                C,
                D_c if D_c is not None else A_c,
                z if z is not None else u,
                bias_c if bias_c is not None else A_c,
                out,
                starts,
                last,
                channels,
                d_state,
                length,
                n_chunks,
            )
            flags = dict(
                HAS_D=D is not None,
                HAS_Z=z is not None,
                HAS_BIAS=delta_bias is not None,
                SOFTPLUS=bool(delta_softplus),
                ACC=_TL[acc],
                BLOCK_N=block_n,
                CHUNK=chunk,
            )
            _launch(_scan_fwd_kernel, _scan_fwd_tuned, _FWD_TILE, (batch, channels, d_state, length), args, flags)
        else:
            last.zero_()
        ctx.save_for_backward(u, delta, A_c, B, C, D_c, z, bias_c, starts)
        ctx.flags = (delta_softplus, n_chunks, chunk)
        ctx.dtypes = (
            A.dtype,
            B.dtype,
            C.dtype,
            None if D is None else D.dtype,
            None if delta_bias is None else delta_bias.dtype,
        )
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A_c, B, C, D_c, z, bias_c, starts = ctx.saved_tensors
        delta_softplus, n_chunks, chunk = ctx.flags
        A_dtype, B_dtype, C_dtype, D_dtype, bias_dtype = ctx.dtypes
        acc = A_c.dtype
        batch, channels, length = u.shape
        d_state = A_c.shape[1]
        if dout is None:
            dout = torch.zeros_like(u)
        dout = dout.contiguous()
        if dlast is not None:
            dlast = dlast.to(acc).contiguous()
        du = torch.empty_like(u)
        ddelta = torch.empty_like(delta)
        dz = torch.empty_like(z) if z is not None else None
        dA = u.new_empty(batch, channels, d_state, dtype=acc)
        dB = torch.zeros(B.shape, dtype=acc, device=u.device)
        dC = torch.zeros(C.shape, dtype=acc, device=u.device)
        dD = u.new_empty(batch, channels, dtype=acc) if D_c is not None else None
        dbias = u.new_empty(batch, channels, dtype=acc) if bias_c is not None else None
        if length > 0:
            # the same chunks as the forward (their start states were saved)
            dummy = A_c
            args = (
                u,
                delta,
                A_c,
                B,
                C,
                D_c if D_c is not None else dummy,
                z if z is not None else u,
                bias_c if bias_c is not None else dummy,
                starts,
                dout,
                dlast if dlast is not None else dummy,
                du,
                ddelta,
                dz if dz is not None else du,
                dA,
                dB,
                dC,
                dD if dD is not None else dummy,
                dbias if dbias is not None else dummy,
                channels,
                d_state,
                length,
                n_chunks,
            )
            flags = dict(
                HAS_D=D_c is not None,
                HAS_Z=z is not None,
                HAS_BIAS=bias_c is not None,
                SOFTPLUS=bool(delta_softplus),
                HAS_DLAST=dlast is not None,
                ACC=_TL[acc],
                BLOCK_N=_state_and_chunk(d_state, length)[0],
                CHUNK=chunk,
            )
            _launch(_scan_bwd_kernel, _scan_bwd_tuned, _BWD_TILE, (batch, channels, d_state, length), args, flags)
        else:
            du.zero_()
            ddelta.zero_()
            dA.zero_()
            for g in (dD, dbias):
                if g is not None:
                    g.zero_()
        return (
            du,
            ddelta,
            dA.sum(0).to(A_dtype),
            dB.to(B_dtype),
            dC.to(C_dtype),
            None if dD is None else dD.sum(0).to(D_dtype),
            dz,
            None if dbias is None else dbias.sum(0).to(bias_dtype),
            None,
        )


def selective_scan_triton(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The Triton selective scan; arguments and results as :func:`mamba_forecast.ssm.selective_scan`.

    The state accumulates in fp32 (fp64 for fp64 ``u``) whatever the input dtype; the output has ``u``'s dtype,
    the last state the accumulation dtype. The gradient of the last state is propagated.
    """
    _check_device(u)
    out, last = _TritonScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return (out, last) if return_last_state else out
