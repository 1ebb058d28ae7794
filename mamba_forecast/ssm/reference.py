"""The ``"reference"`` backend (the plain sequential recurrence, the tests' oracle) and the input preparation
and output finishing it shares with the ``"torch"`` backend."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
