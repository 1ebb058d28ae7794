"""The ``"torch"`` backend: the selective scan in pure PyTorch, with a hand-written backward.

The length is cut into chunks of at most ``_MAX_CHUNK`` steps. Per chunk the decays ``exp(dt_t A)`` and drives
``dt_t u_t B_t`` are computed for every step at once, the recurrence ``h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t``
then runs one fused multiply-add per step over the whole ``[batch, d_state, channels]`` state, and the readout
``<C_t, h_t>`` is one batched matmul per chunk. The backward recomputes each chunk's states from the saved
chunk-start state and runs the adjoint recurrence the same way in reverse, so memory grows with the chunk, not
with batch x channels x length x d_state. Nothing is divided by a decay or raised to a cumulative decay, so any
step size is exact (a decay below fp32's range is a state forgotten, as in the plain recurrence). Computation
is in fp32 (fp64 for fp64 inputs) whatever the input dtype. On the CPU the opt-in threading of
:mod:`mamba_forecast.ssm.cpu_threads` may scan blocks of batch rows on parallel workers.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .cpu_threads import capped_threads, over_row_blocks, row_workers
from .reference import _finish, _prepare

# Largest chunk the torch backend uses: the per-chunk work tensors are [rows, chunk, d_state, channels].
_MAX_CHUNK = 16
# The torch backend holds a few [rows, chunk, d_state, channels] work tensors per chunk. Above this many elements
# per tensor (128 MiB in fp32) the batch is scanned in slices of rows, so a large batch of short sequences (TSM2's
# time mixer over thousands of series, say) does not materialise every row's states at once.
_MAX_WORK_ELEMENTS = 1 << 25


def _autocast_off(device: torch.device):
    """A context that disables autocast for ``device`` (a no-op where autocast does not exist for it)."""
    kind = torch.device(device).type
    available = getattr(torch.amp, "is_autocast_available", None)  # torch >= 2.4
    if not (available(kind) if available is not None else kind in ("cpu", "cuda")):
        return contextlib.nullcontext()
    return torch.autocast(device_type=kind, enabled=False)


def _chunk_length(length: int) -> int:
    """The chunk length: the fewest chunks of at most _MAX_CHUNK steps, as even as can be.

    Padded steps are work thrown away: 11 steps (SMamba's 7 series and 4 calendar tokens) are one chunk of 11,
    22 are two of 11, 100 are seven of 15 (five steps padded).
    """
    length = max(length, 1)
    return -(-length // -(-length // _MAX_CHUNK))


class _ChunkedScan(torch.autograd.Function):
    """y_t = <C_t, h_t>, h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t, in chunk-major layouts.

    Inputs (fp32 or fp64, contiguous; the length is padded to whole chunks with dt = u = 0):
        u, dt: [k, b, T, c]; A_t: [n, c] (A transposed); Bm, Cm: [k, b, T, n]   (k chunks of T steps)
    Outputs: y [k, b, T, c], last state [b, n, c].
    Per chunk the work tensors are [b, T, n, c], so the reductions over n and over c are batched matmuls and
    every per-chunk slice of an input is contiguous. Rows of the batch are independent: with ``workers`` > 1
    (the CPU's opt-in threading) blocks of rows are scanned by that many threads at once (see
    ``cpu_threads.over_row_blocks``).
    """

    @staticmethod
    def forward(ctx, u, dt, A_t, Bm, Cm, workers):
        n_chunks, b, chunk, c = u.shape
        n = A_t.shape[0]
        du = dt * u
        starts = u.new_empty(n_chunks, b, n, c)
        y = u.new_empty(n_chunks, b, chunk, c)
        last = u.new_empty(b, n, c)

        def rows(r0, r1):
            sl = slice(r0, r1)
            dt_r, du_r, B_r, C_r = dt[:, sl], du[:, sl], Bm[:, sl], Cm[:, sl]
            buffers = [u.new_empty(r1 - r0, chunk, n, c) for _ in range(2)]
            h = u.new_zeros(r1 - r0, n, c)
            bt = (r1 - r0) * chunk
            for k in range(n_chunks):
                starts[k, sl] = h
                _, states = _chunk_states(k, dt_r, du_r, A_t, B_r, h, buffers)  # h_t  [rows, T, n, c]
                torch.bmm(C_r[k].view(bt, 1, n), states.view(bt, n, c), out=y[k, sl].view(bt, 1, c))
                h = states[:, -1].clone()
            last[sl] = h

        over_row_blocks(b, chunk * n * c, workers, rows)
        ctx.save_for_backward(u, dt, A_t, Bm, Cm, starts)
        ctx.workers = workers
        return y, last

    @staticmethod
    def backward(ctx, gy, g_last):
        # backward() may be called inside an autocast region (the forward ran with it disabled): keep fp32
        with _autocast_off(gy.device), capped_threads(ctx.workers > 1):
            return _ChunkedScan._backward(ctx, gy, g_last)

    @staticmethod
    def _backward(ctx, gy, g_last):
        u, dt, A_t, Bm, Cm, starts = ctx.saved_tensors
        n_chunks, b, chunk, c = u.shape
        n = A_t.shape[0]
        gy = gy.contiguous()
        du = dt * u
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
            buffers = [u.new_empty(nr, chunk, n, c) for _ in range(2)]
            gh = u.new_empty(nr, chunk, n, c)
            g_A = torch.zeros_like(A_t)
            gh_B = u.new_empty(bt, 1, c)
            carry = g_last[sl] if g_last is not None else u.new_zeros(nr, n, c)
            for k in reversed(range(n_chunks)):
                h0 = starts[k, sl]
                decay, states = _chunk_states(k, dt_r, du_r, A_t, B_r, h0, buffers)  # a_t, h_t
                # adjoint: gh_t = C_t gy_t + a_{t+1} gh_{t+1}, and gh_{T-1} takes the next chunk's a_0 gh_0
                torch.mul(C_r[k].unsqueeze(-1), gy_r[k].unsqueeze(2), out=gh)
                gh[:, -1] += carry
                for t in range(chunk - 2, -1, -1):
                    gh[:, t].addcmul_(decay[:, t + 1], gh[:, t + 1])
                carry = decay[:, 0] * gh[:, 0]  # the adjoint handed to the previous chunk's last state
                torch.bmm(states.view(bt, n, c), gy_r[k].view(bt, c, 1), out=g_C[k, sl].view(bt, n, 1))
                torch.bmm(gh.view(bt, n, c), du_r[k].view(bt, c, 1), out=g_B[k, sl].view(bt, n, 1))
                torch.bmm(B_r[k].view(bt, 1, n), gh.view(bt, n, c), out=gh_B)  # sum_n gh B
                gh_B = gh_B.view(nr, chunk, c)
                torch.mul(gh_B, dt_r[k], out=g_u[k, sl])
                # d/d(dt A) at step t: gh_t * a_t * h_{t-1}   (h_{-1} = h0), built in the decay buffer
                decay[:, 1:].mul_(states[:, :-1])
                decay[:, 0].mul_(h0)
                decay.mul_(gh)
                torch.mul(decay, A_t, out=states)
                torch.sum(states, 2, out=g_dt[k, sl])
                g_dt[k, sl].addcmul_(gh_B, u_r[k])
                decay.mul_(dt_r[k].unsqueeze(2))
                g_A += decay.sum((0, 1))
                gh_B = gh_B.view(bt, 1, c)
            g_A_parts[r0] = g_A

        over_row_blocks(b, chunk * n * c, ctx.workers, rows)
        g_A = g_A_parts.pop(0)
        for r0 in sorted(g_A_parts):  # a fixed order: the same sum whatever thread finished first
            g_A += g_A_parts[r0]
        return g_u, g_dt, g_A, g_B, g_C, None


def _chunk_states(k, dt, du, A_t, Bm, h0, buffers):
    """For chunk k: the decays a_t = exp(dt_t A) and the states h_t = a_t h_{t-1} + dt_t u_t B_t from h0.

    Returns (decay, states), the two [b, T, n, c] ``buffers``, filled.
    """
    decay, states = buffers
    torch.mul(dt[k].unsqueeze(2), A_t, out=decay).exp_()
    torch.mul(Bm[k].unsqueeze(-1), du[k].unsqueeze(2), out=states)  # x_t = dt_t u_t B_t
    h = h0
    for t in range(decay.shape[1]):
        h = states[:, t].addcmul_(decay[:, t], h)
    return decay, states


def _to_chunks(x: torch.Tensor, chunk: int) -> torch.Tensor:
    """[b, f, l] -> [k, b, T, f], padding the length with zeros to k whole chunks of T."""
    b, f, length = x.shape
    x = F.pad(x, (0, -length % chunk))
    return x.view(b, f, -1, chunk).permute(2, 0, 3, 1).contiguous()


def _scan_rows(u, dt, A_t, B, C, chunk, workers):
    """The chunked scan of some rows of the batch: y [rows, c, padded length] and the last state [rows, n, c]."""
    rows, channels, _ = u.shape
    # dt = 0 on the padded steps leaves the state untouched
    y, last = _ChunkedScan.apply(
        _to_chunks(u, chunk),
        _to_chunks(dt, chunk),
        A_t,
        _to_chunks(B, chunk),
        _to_chunks(C, chunk),
        workers,
    )
    return y.permute(1, 3, 0, 2).reshape(rows, channels, -1), last


def selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    """The torch backend; arguments and results as :func:`mamba_forecast.ssm.selective_scan` (autocast must be
    off for ``u``'s device: the caller's job, as it is for every backend)."""
    workers = row_workers(u.device)  # torch's thread count before the cap below lowers it
    with capped_threads(workers > 1):
        return _scan_body(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, workers)


def _scan_body(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, workers):
    u_c, dt, A_c, B_c, C_c = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, channels, length = u.shape
    if length == 0:
        out = _finish(u_c.new_zeros(batch, channels, 0), u_c, D, z, u.dtype)
        return (out, u_c.new_zeros(batch, channels, A.shape[1])) if return_last_state else out
    chunk = _chunk_length(length)
    A_t = A_c.t().contiguous()
    rows = max(1, _MAX_WORK_ELEMENTS // (chunk * A.shape[1] * channels))
    parts = [
        _scan_rows(u_c[i : i + rows], dt[i : i + rows], A_t, B_c[i : i + rows], C_c[i : i + rows], chunk, workers)
        for i in range(0, batch, rows)
    ]
    if len(parts) == 1:
        y, last = parts[0]
    else:
        y, last = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    y = y[..., :length]
    out = _finish(y, u_c, D, z, u.dtype)
    return (out, last.transpose(1, 2)) if return_last_state else out
