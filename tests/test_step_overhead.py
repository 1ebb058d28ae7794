"""Layers rewritten to launch fewer ops per training step compute what their plain formulation computes (forward
and gradients, to float rounding); the op counts are measured by benchmarks/step_profile.py."""

import torch
import torch.nn.functional as F

from conftest import rel_err
from mamba_forecast.layers import instance_denormalize, instance_normalize
from mamba_forecast.layers.pooled_attention import AdaptivePoolAttention, adaptive_pool
from mamba_forecast.models import AttentionMamba, SMamba


def _grads(fn, *leaves):
    leaves = [t.detach().clone().requires_grad_() for t in leaves]
    out = fn(*leaves)
    out = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(1)
    sum((o * torch.randn(o.shape, generator=g)).sum() for o in out).backward()
    return [o.detach() for o in out], [t.grad for t in leaves]


def test_instance_norm_is_the_official_two_pass_formula():
    """The official code: mean detached, ``stdev = sqrt(var(x - mean, unbiased=False) + eps)``, ``(x - mean) /
    stdev``; here one ``var_mean`` pass, and the forecast rescaled by one ``addcmul``."""

    def official(x, y):
        mean = x.mean(1, keepdim=True).detach()
        stdev = torch.sqrt(torch.var(x - mean, dim=1, keepdim=True, unbiased=False) + 1e-5)
        z = (x - mean) / stdev
        return z, stdev, y * stdev.unsqueeze(-1) + mean.unsqueeze(-1)

    def ours(x, y):
        z, mean, stdev = instance_normalize(x)
        assert not mean.requires_grad  # detached, as officially
        return z, stdev, instance_denormalize(y, mean, stdev)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 96, 7, generator=g, dtype=torch.float64) * 3 + 10
    y = torch.randn(4, 24, 7, 2, generator=g, dtype=torch.float64)
    (out_o, grad_o), (out_n, grad_n) = _grads(official, x, y), _grads(ours, x, y)
    for a, b in zip(out_n + grad_n, out_o + grad_o, strict=True):
        assert rel_err(a, b) < 1e-12
    (out_o, grad_o), (out_n, grad_n) = _grads(official, x.float(), y.float()), _grads(ours, x.float(), y.float())
    for a, b in zip(out_n + grad_n, out_o + grad_o, strict=True):
        assert rel_err(a, b) < 1e-5


def test_the_head_reads_the_variate_tokens_only():
    """Norm and head run on every token and the exogenous rows are dropped after: the same as dropping them first."""
    torch.manual_seed(0)
    model = SMamba(24, 12, 3, d_model=16, d_ff=16, e_layers=1, d_state=2, hist_exog_size=4, futr_exog_size=2)
    g = torch.Generator().manual_seed(0)
    x, hist, futr = torch.randn(5, 24, 3, generator=g), torch.randn(5, 24, 4, generator=g), torch.randn(5, 36, 2)
    model.eval()
    tokens = model.embed(x, hist, futr, None)
    for layer in model.layers:
        tokens = layer(tokens)
    first = model.head(model.norm(tokens[:, :3])).view(5, 3, 12, 1).transpose(1, 2)
    assert torch.allclose(model.forecast(x, hist, futr, None), first, atol=1e-6)


def test_pooled_attention_is_the_official_formulation():
    """``softmax(Q' K'^T * scale)``, ``LP``, then ``LP2`` on the transposed map: the scale now inside the batched
    product and ``LP2`` a batched product with its bias, to float rounding (forward and every gradient)."""
    torch.manual_seed(0)
    att = AdaptivePoolAttention(32, 11, scale=1 / 128).double()

    def official(x, *params):
        q = F.gelu(adaptive_pool(att.query(x), att.pooled))
        k = F.gelu(adaptive_pool(att.key(x), att.pooled))
        w = att.to_features(torch.softmax(q @ k.transpose(1, 2) * att.scale, dim=-1))
        return att.to_tokens(w.transpose(1, 2)).transpose(1, 2)

    x = torch.randn(3, 11, 32, dtype=torch.float64)
    results = []
    for fn in (official, lambda x, *params: att(x)):
        att.zero_grad()
        leaf = x.clone().requires_grad_()
        out = fn(leaf)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        results.append([out.detach(), leaf.grad] + [p.grad.clone() for p in att.parameters()])
    for a, b in zip(*results, strict=True):
        assert rel_err(a, b) < 1e-12


def test_attention_mamba_trains_the_same_step_on_float64():
    """One whole AttentionMamba forward and backward in float64 with the rewritten layers against the same model
    with the plain formulations patched back in."""
    torch.manual_seed(0)
    model = AttentionMamba(24, 12, 5, d_model=16, d_ff=16, d_state=4, hist_exog_size=4, scan_backend="reference")
    model = model.double()
    x, hist = torch.randn(3, 24, 5, dtype=torch.float64), torch.randn(3, 24, 4, dtype=torch.float64)

    def grads():
        model.zero_grad()
        torch.manual_seed(1)  # the same dropout masks
        out = model(x, hist)
        out.square().mean().backward()
        return [out.detach()] + [p.grad.clone() for p in model.parameters()]

    new = grads()
    att = model.layers[0].mixer.attention

    def plain_attention(xx):
        q = F.gelu(adaptive_pool(att.query(xx), att.pooled))
        k = F.gelu(adaptive_pool(att.key(xx), att.pooled))
        w = att.to_features(torch.softmax(q @ k.transpose(1, 2) * att.scale, dim=-1))
        return att.to_tokens(w.transpose(1, 2)).transpose(1, 2)

    att.forward = plain_attention
    old = grads()
    for a, b in zip(new, old, strict=True):
        assert rel_err(a, b) < 1e-10
