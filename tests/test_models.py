"""The four forecasters as plain PyTorch modules: shapes, gradients, determinism, backends, learning, errors."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import MODEL_NAMES, small_arguments
from mamba_forecast.layers import FastAttention
from mamba_forecast.models import TSM2, AttentionMamba, FMamba, SMamba, get_spec
from mamba_forecast.models.spec import ADAPTER_ARGS, architecture_arguments

# Small configurations, fast on a loaded 2-core CPU. n_series is given to every model (AttentionMamba needs it).
# With d_model=16 AttentionMamba pools to 4 x 4, so the tests' N in 1..9 covers N below and above D/4.
# Every registered model is tested (one without an entry here with its spec's example settings, shrunk).
SMALL = {
    **{name: (get_spec(name).core, {**get_spec(name).example, **small_arguments(name)}) for name in MODEL_NAMES},
    "SMamba": (SMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4)),
    "AttentionMamba": (AttentionMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4)),
    "AttentionMamba-paper": (AttentionMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4, variant="paper")),
    "FMamba": (FMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4, n_heads=2)),
    "FMamba-performer": (FMamba, dict(d_model=16, d_ff=16, e_layers=2, d_state=4, n_heads=2, kernel="performer")),
    "TSM2": (TSM2, dict(d_model=16, e_layers=2, d_state=4, patch_len=8, stride=4)),
}
NAMES = list(SMALL)


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
    model = build(
        name, input_size=L, h=h, n_series=n, hist_exog_size=k_hist, futr_exog_size=k_futr, stat_exog_size=k_stat
    ).eval()
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
    """With use_norm, scaling and shifting x scales and shifts every output the same way (exogenous inputs,
    which are not normalised, held fixed)."""
    exog = dict(hist_exog_size=1, futr_exog_size=1, stat_exog_size=1)
    model = build(name, n_outputs=2, **exog).eval()
    x, hist, futr, stat = inputs(2, 24, 6, 3, 1, 1, 1)
    y = model(x, hist, futr, stat)
    assert torch.allclose(model(x * 10 + 3, hist, futr, stat), y * 10 + 3, atol=1e-3)
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


def test_attention_mamba_official_ecl_parameter_count():
    # architectures.md Appendix A: 4,938,273 in the official code, whose unused value projection V
    # (Linear(512, 512): 262,656 parameters) is left out here.
    model = AttentionMamba(input_size=96, h=96, n_series=321, d_model=512, d_ff=512, e_layers=1, d_state=64)
    assert n_params(model) == 4_938_273 - (512 * 512 + 512)
    assert n_params(AttentionMamba(input_size=96, h=96, n_series=321)) == n_params(model)  # the defaults


@pytest.mark.parametrize("variant", ["official", "paper"])
@pytest.mark.parametrize("n_series, k_hist, k_futr", [(3, 0, 0), (8, 0, 0), (20, 0, 0), (5, 2, 2)])
def test_attention_mamba_token_counts_below_and_above_pooled_size(variant, n_series, k_hist, k_futr):
    """d_model=32 pools the token axis to 8: 3 and 5+4 tokens are up-sampled, 20 are down-sampled."""
    torch.manual_seed(0)
    model = AttentionMamba(
        input_size=24,
        h=5,
        n_series=n_series,
        d_model=32,
        d_ff=32,
        d_state=4,
        variant=variant,
        hist_exog_size=k_hist,
        futr_exog_size=k_futr,
    ).eval()
    x, hist, futr, _ = inputs(2, 24, 5, n_series, k_hist, k_futr)
    y = model(x, hist, futr)
    assert y.shape == (2, 5, n_series) and torch.isfinite(y).all()


def test_attention_mamba_needs_n_series_and_checks_it():
    with pytest.raises(ValueError, match="n_series"):
        AttentionMamba(input_size=24, h=6, d_model=16, d_ff=16)
    model = build("AttentionMamba", n_series=3)
    with pytest.raises(ValueError, match="n_series=3"):
        model(torch.randn(2, 24, 4))


def test_attention_mamba_variants_follow_the_official_code_or_the_paper():
    official = build("AttentionMamba")
    paper = build("AttentionMamba-paper")
    mixer = official.layers[0].mixer
    assert (mixer.value.fwd.d_conv, mixer.value.bwd.d_conv) == (2, 4)  # asymmetric, as in the official code
    assert official.layers[0].ffn.up.out_features == 4 * 16  # FFN 4 * d_ff, no dropout
    assert official.layers[0].ffn.dropout.p == 0.0
    assert mixer.attention.scale == 1 / (4 * 16)
    mixer = paper.layers[0].mixer
    assert (mixer.value.fwd.d_conv, mixer.value.bwd.d_conv) == (2, 2)
    assert paper.layers[0].ffn.up.out_features == 16
    assert mixer.attention.scale == 1 / math.sqrt(16 // 4)


@pytest.mark.parametrize("bad, message", [(dict(d_model=18), "multiple of 4"), (dict(variant="code"), "variant")])
def test_attention_mamba_rejects_bad_arguments(bad, message):
    with pytest.raises(ValueError, match=message):
        build("AttentionMamba", **bad)


def test_gaussian_fast_attention_is_the_linear_form_of_its_quadratic_kernel():
    torch.manual_seed(0)
    att = FastAttention(8, n_heads=2, kernel="gaussian")
    x = torch.randn(3, 11, 8)
    q, k, v = (f(x).view(3, 11, 2, 4).transpose(1, 2) for f in (att.query, att.key, att.value))
    phi = lambda t: torch.exp(-t.square() / 2)  # noqa: E731
    quadratic = (phi(q) @ phi(k).transpose(-2, -1)) @ v / 4  # [B, H, T, d_k], the T x T form
    expected = att.out(quadratic.transpose(1, 2).reshape(3, 11, 8))
    assert torch.allclose(att(x), expected, atol=1e-5)


def test_performer_fast_attention_approximates_softmax_attention():
    torch.manual_seed(0)
    att = FastAttention(8, n_heads=1, kernel="performer", n_features=4096)
    x = torch.randn(2, 10, 8) * 0.5
    q, k, v = att.query(x), att.key(x), att.value(x)
    exact = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1) @ v @ att.out.weight.T
    uniform = v.mean(1, keepdim=True) @ att.out.weight.T  # what attention with no preference would give
    approx = att(x) - att.out.bias

    def rel_error(a):
        return ((a - exact).norm() / exact.norm()).item()

    assert rel_error(approx) < 0.03 < 0.05 < rel_error(uniform)


def test_performer_random_features_are_saved_with_the_model():
    a, b = build("FMamba-performer", seed=1).eval(), build("FMamba-performer", seed=2).eval()
    assert any(k.endswith("attention.features") for k in a.state_dict())
    x, *_ = inputs(2, 24, 6, 3)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (dict(kernel="softmax"), ValueError, "kernel"),
        (dict(kernel="gaussian", n_features=16), ValueError, "n_features"),
        (dict(n_heads=3), ValueError, "n_heads"),
    ],
)
def test_fmamba_rejects_bad_arguments(bad, error, message):
    with pytest.raises(error, match=message):
        build("FMamba", **bad)


@pytest.mark.parametrize("input_size", [8, 9, 21, 24])
def test_tsm2_works_for_any_input_size_from_one_patch(input_size):
    model = build("TSM2", input_size=input_size, use_norm=False).eval()  # patch_len 8, stride 4
    x, *_ = inputs(2, input_size, 6, 3)
    y = model(x)
    assert y.shape == (2, 6, 3)
    newest, oldest = x.clone(), x.clone()
    newest[:, -1] += 1
    oldest[:, 0] += 1
    assert not torch.allclose(model(newest), y)  # the newest step is always in a patch
    if (input_size - 8) % 4:  # patches are aligned to the end: the oldest steps are the ones left out
        assert torch.equal(model(oldest), y)


def test_tsm2_weighted_averaging_has_the_papers_scalar_count_and_identity_init():
    for e_layers in (1, 2, 3):
        model = build("TSM2", e_layers=e_layers)
        weights = [m.weights for m in model.modules() if m.__class__.__name__ == "WeightedAverage"]
        assert sum(w.numel() for w in weights) == e_layers * (2 * e_layers + 3)  # MambaMixer's L(2L+3)
        assert all(w[-1] == 1 and w[:-1].abs().sum() == 0 for w in weights)


@pytest.mark.parametrize(
    "bad, message", [(dict(patch_len=25), "patch_len"), (dict(stride=0), "stride"), (dict(patch_len=0), "patch_len")]
)
def test_tsm2_rejects_bad_patching(bad, message):
    with pytest.raises(ValueError, match=message):
        build("TSM2", **bad)


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
    ("scan_backend", "fast", ValueError),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arg, value, error", COMMON_BAD)
def test_bad_hyperparameter_is_named(name, arg, value, error):
    cls = SMALL[name][0]
    if arg not in ADAPTER_ARGS and arg not in architecture_arguments(cls):
        pytest.skip(f"{cls.__name__} has no {arg}")
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
