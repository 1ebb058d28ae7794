"""The four forecasters as plain PyTorch modules: shapes, gradients, determinism, backends, learning, errors."""

from __future__ import annotations

import math

import pytest
import torch

from mamba_forecast.layers import FastAttention
from mamba_forecast.models import TSM2, AttentionMamba, FMamba, SMamba

# Small configurations, fast on a loaded 2-core CPU. n_series is given to every model (AttentionMamba needs it).
# With d_model=16 AttentionMamba pools to 4 x 4, so the tests' N in 1..9 covers N below and above D/4.
SMALL = {
    "SMamba": (SMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4)),
    "AttentionMamba": (AttentionMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4)),
    "AttentionMamba-paper": (AttentionMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4, variant="paper")),
    "FMamba": (FMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4, n_heads=2)),
    "FMamba-performer": (FMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4, n_heads=2, kernel="performer")),
    "TSM2": (TSM2, dict(d_model=16, e_layers=2, d_state=4, patch_len=8, stride=4)),
}
NAMES = list(SMALL)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These shapes are tiny: on a shared CPU, extra intra-op threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name, input_size=24, h=6, n_series=3, seed=0, **overrides):
    cls, kwargs = SMALL[name]
    torch.manual_seed(seed)
    return cls(input_size=input_size, h=h, n_series=n_series, **{**kwargs, **overrides})


def inputs(batch, input_size, h, n_series, k_hist=0, k_futr=0, k_stat=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, input_size, n_series, generator=g) * 3 + 5
    hist = torch.randn(batch, input_size, k_hist, generator=g) if k_hist else None
    futr = torch.randn(batch, input_size + h, k_futr, generator=g) if k_futr else None
    stat = torch.randn(batch, n_series, k_stat, generator=g) if k_stat else None
    return x, hist, futr, stat


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "batch, input_size, n_series, h, n_outputs",
    [(1, 24, 1, 1, 1), (3, 24, 5, 7, 1), (2, 32, 3, 12, 3)],
)
def test_output_shape(name, batch, input_size, n_series, h, n_outputs):
    model = build(name, input_size=input_size, h=h, n_series=n_series, n_outputs=n_outputs).eval()
    x, *_ = inputs(batch, input_size, h, n_series)
    y = model(x)
    expected = (batch, h, n_series) if n_outputs == 1 else (batch, h, n_series, n_outputs)
    assert y.shape == expected
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k_hist, k_futr, k_stat", [(2, 0, 0), (0, 3, 0), (0, 0, 2), (1, 2, 3)])
def test_exogenous_inputs_shape_and_effect(name, k_hist, k_futr, k_stat):
    b, L, h, n = 2, 24, 6, 3
    model = build(name, input_size=L, h=h, n_series=n, hist_exog_size=k_hist, futr_exog_size=k_futr, stat_exog_size=k_stat).eval()
    x, hist, futr, stat = inputs(b, L, h, n, k_hist, k_futr, k_stat)
    y = model(x, hist_exog=hist, futr_exog=futr, stat_exog=stat)
    assert y.shape == (b, h, n)
    # every exogenous input given reaches the forecast
    for key, value in (("hist_exog", hist), ("futr_exog", futr), ("stat_exog", stat)):
        if value is not None:
            kw = {"hist_exog": hist, "futr_exog": futr, "stat_exog": stat, key: value + 1.0}
            assert not torch.allclose(model(x, **kw), y)


@pytest.mark.parametrize("name", NAMES)
def test_instance_norm_makes_forecast_scale_equivariant(name):
    """With use_norm, scaling and shifting the input scales and shifts every output the same way."""
    model = build(name, n_outputs=2).eval()
    x, *_ = inputs(2, 24, 6, 3)
    y = model(x)
    assert torch.allclose(model(x * 10 + 3), y * 10 + 3, atol=1e-3)
    plain = build(name, use_norm=False).eval()
    assert not torch.allclose(plain(x * 10 + 3), plain(x) * 10 + 3, atol=1e-3)


# ------------------------------------------------------------------------------------------------------
# gradients, determinism, backends
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_finite_gradient(name):
    model = build(name, hist_exog_size=1, futr_exog_size=1, stat_exog_size=1, n_outputs=2)
    x, hist, futr, stat = inputs(2, 24, 6, 3, 1, 1, 1)
    model(x, hist, futr, stat).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_initial_weights(name):
    a, b, c = build(name, seed=7), build(name, seed=7), build(name, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("name", NAMES)
def test_torch_and_reference_scan_backends_agree(name):
    x, hist, futr, stat = inputs(2, 24, 6, 3, 1, 1, 1)
    exog = dict(hist_exog_size=1, futr_exog_size=1, stat_exog_size=1)
    fast = build(name, scan_backend="torch", **exog).eval()
    ref = build(name, scan_backend="reference", **exog).eval()
    assert torch.allclose(fast(x, hist, futr, stat), ref(x, hist, futr, stat), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------------
# architecture-specific facts
# ------------------------------------------------------------------------------------------------------


def test_smamba_official_etth1_parameter_count():
    # architectures.md Appendix A: 1,150,624 in the official code, minus 4,928 in its unused modules.
    model = SMamba(input_size=96, h=96, n_series=7, d_model=256, d_ff=256, e_layers=2, d_state=2, d_conv=2, expand=1)
    assert n_params(model) == 1_145_696
    assert n_params(SMamba(input_size=96, h=96, n_series=7)) == 1_145_696  # the defaults are that setting


def test_smamba_accepts_any_number_of_series():
    model = build("SMamba", n_series=None).eval()
    for n in (1, 4, 9):
        assert model(torch.randn(2, 24, n)).shape == (2, 6, n)


# ------------------------------------------------------------------------------------------------------
# learning
# ------------------------------------------------------------------------------------------------------


def synthetic_windows(n_windows=32, input_size=32, h=8, seed=0):
    """Windows of a 4-series system with cross-series structure: lags, sums and sign flips of two sines."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1200, dtype=torch.float32)
    base = torch.sin(2 * math.pi * t / 24) + 0.5 * torch.sin(2 * math.pi * t / 7 + 1.0)
    lagged = torch.roll(base, 3)
    series = torch.stack([base, lagged, 0.5 * base + lagged, -2 * base + 1], dim=1)  # [T, 4]
    starts = torch.randint(0, len(t) - input_size - h, (n_windows,), generator=g)
    windows = torch.stack([series[s : s + input_size + h] for s in starts.tolist()])
    return windows[:, :input_size], windows[:, input_size:]


@pytest.mark.parametrize("name", NAMES)
def test_training_loss_falls_tenfold(name):
    """Within 300 Adam steps the loss falls 10x, and below a tenth of the best naive forecast's loss."""
    x, y = synthetic_windows()
    naive = min(
        torch.nn.functional.mse_loss(x.mean(1, keepdim=True).expand_as(y), y).item(),  # window mean
        torch.nn.functional.mse_loss(x[:, -1:].expand_as(y), y).item(),  # last value
    )
    model = build(name, input_size=32, h=8, n_series=4, dropout=0.0, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < min(losses[0], naive) / 10:
            break
    assert losses[-1] < min(losses[0], naive) / 10, (
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps (naive forecast {naive:.4f})"
    )


# ------------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------------

COMMON_BAD = [
    ("input_size", 0, ValueError),
    ("input_size", 9.5, TypeError),
    ("h", -1, ValueError),
    ("n_series", 0, ValueError),
    ("d_model", 0, ValueError),
    ("e_layers", 0, ValueError),
    ("d_state", "16", TypeError),
    ("d_conv", 5, ValueError),
    ("d_conv", 1, ValueError),
    ("expand", 0, ValueError),
    ("dropout", 1.0, ValueError),
    ("dropout", -0.1, ValueError),
    ("use_norm", "yes", TypeError),
    ("n_outputs", 0, ValueError),
    ("hist_exog_size", -1, ValueError),
    ("scan_backend", "triton", ValueError),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arg, value, error", COMMON_BAD)
def test_bad_hyperparameter_is_named(name, arg, value, error):
    with pytest.raises(error, match=arg):
        build(name, **{arg: value})


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_are_named(name):
    model = build(name, hist_exog_size=1, futr_exog_size=2, stat_exog_size=1)
    x, hist, futr, stat = inputs(2, 24, 6, 3, 1, 2, 1)
    with pytest.raises(ValueError, match="input_size=24"):
        model(x[:, :20], hist, futr, stat)
    with pytest.raises(ValueError, match="3-D"):
        model(x[0], hist, futr, stat)
    with pytest.raises(TypeError, match="x must be"):
        model(x.long(), hist, futr, stat)
    with pytest.raises(ValueError, match="hist_exog is required"):
        model(x, None, futr, stat)
    with pytest.raises(ValueError, match="futr_exog must have shape"):
        model(x, hist, futr[:, :24], stat)
    with pytest.raises(ValueError, match="stat_exog must have shape"):
        model(x, hist, futr, stat[:, :2])
    plain = build(name)
    with pytest.raises(ValueError, match="hist_exog_size=1"):
        plain(x, hist_exog=hist)
