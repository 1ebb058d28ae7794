"""Mixed precision and torch.compile.

The selective scan accumulates in fp32 under autocast (bf16 on CPU, fp16/bf16 on CUDA), forward and backward;
bf16-mixed training on ETTh1 through NeuralForecast and Darts stays finite; fp16-mixed on CUDA (GPU-marked);
torch.compile of the four core models gives the eager outputs and gradients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mamba_forecast.models import TSM2, AttentionMamba, FMamba, SMamba
from mamba_forecast.ssm import mamba as mamba_module
from mamba_forecast.ssm import selective_scan

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def bf16_exact(t):
    """``t`` rounded to the nearest bf16 value, kept in fp32 (so fp32 and bf16 runs see the same numbers)."""
    return t.bfloat16().float()


def long_scan_inputs(batch=2, channels=8, length=2048, d_state=8, seed=0):
    """A long sequence with a positive drive and decays from very slow (|A dt| ~ 1e-5 per step: the state sums
    ~thousands of terms) to fast. Every value is exactly representable in bf16."""
    g = torch.Generator().manual_seed(seed)
    return {
        "u": bf16_exact(torch.randn(batch, channels, length, generator=g) + 1),
        "delta": bf16_exact(torch.rand(batch, channels, length, generator=g) * 0.5),
        "A": bf16_exact(-torch.logspace(-4, 0, d_state).repeat(channels, 1)),
        "B": bf16_exact(torch.randn(batch, d_state, length, generator=g) + 1),
        "C": bf16_exact(torch.randn(batch, d_state, length, generator=g)),
    }


def bf16_recurrence_last_state(u, delta, A, B):
    """The recurrence h_t = exp(dt A) h_{t-1} + dt u B with the state held in bf16 (what the scan must NOT do)."""
    decay = torch.exp(delta.unsqueeze(-1) * A[:, None, :]).bfloat16()
    drive = ((delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)).bfloat16()
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=torch.bfloat16)
    for t in range(u.shape[-1]):
        h = decay[:, :, t] * h + drive[:, :, t]
    return h.float()


# ----------------------------------------------------------------------------------------------------
# the scan under autocast
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_scan_under_bf16_autocast_accumulates_in_fp32(backend):
    """Under CPU bf16 autocast the state recurrence runs in fp32: the final state (returned in fp32) equals the
    fp32 scan's to fp32 rounding, while a recurrence held in bf16 drifts by >5% on this 2048-step sequence.
    The output comes back in u's dtype (as mamba-ssm's kernel does), rounded once to bf16."""
    x = long_scan_inputs()
    out32, last32 = selective_scan(**x, return_last_state=True, backend=backend)

    drifted = bf16_recurrence_last_state(x["u"], x["delta"], x["A"], x["B"])
    assert rel_err(drifted, last32) > 0.05  # the tolerance below separates fp32 from bf16 accumulation

    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        # bf16 activations, as a model under bf16-mixed hands them to the scan
        bf = {k: (v if k == "A" else v.bfloat16()) for k, v in x.items()}
        out_bf, last_bf = selective_scan(**bf, return_last_state=True, backend=backend)
        # fp32 inputs inside an autocast region: autocast must not reach into the scan at all
        out_fp, last_fp = selective_scan(**x, return_last_state=True, backend=backend)
    assert out_bf.dtype == torch.bfloat16 and last_bf.dtype == torch.float32
    assert out_fp.dtype == torch.float32 and last_fp.dtype == torch.float32
    assert rel_err(last_bf, last32) < 1e-5
    assert rel_err(last_fp, last32) < 1e-5
    assert rel_err(out_fp, out32) < 1e-5
    assert rel_err(out_bf, out32) < 4e-3  # one rounding of the output to bf16 (2^-8 relative at most)


def test_scan_gradients_under_bf16_autocast():
    """Gradients flow through the torch scan under autocast, with backward() called inside the autocast region
    too. A, D and delta_bias stay fp32 parameters (as in the Mamba block): their gradients are accumulated in
    fp32 inside the scan and match the fp32 scan's to fp32 rounding; those of the bf16 activations to bf16."""
    x = long_scan_inputs(length=1024, seed=3)
    g = torch.Generator().manual_seed(4)
    channels = x["u"].shape[1]
    x["D"] = torch.randn(channels, generator=g)
    x["z"] = bf16_exact(torch.randn(x["u"].shape, generator=g))
    x["delta_bias"] = bf16_exact(torch.rand(channels, generator=g) * 0.1)
    x["delta"] = bf16_exact(x["delta"] - 2.0)  # softplus(delta + bias) ~ 0.1..0.4
    weight = bf16_exact(torch.randn(x["u"].shape, generator=g))
    params = ("A", "D", "delta_bias")

    def grads(autocast):
        leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=autocast):
            args = {k: (v if k in params or not autocast else v.bfloat16()) for k, v in leaves.items()}
            out = selective_scan(**args, delta_softplus=True, backend="torch")
            assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
            (out.float() * weight).sum().backward()
        return {k: v.grad for k, v in leaves.items()}

    g32, gbf = grads(False), grads(True)
    for name in x:
        assert gbf[name] is not None and gbf[name].dtype == torch.float32, name
        assert torch.isfinite(gbf[name]).all(), name
        tol = 1e-5 if name in params else 1e-2
        assert rel_err(gbf[name], g32[name]) < tol, (name, rel_err(gbf[name], g32[name]))


def test_mamba_block_under_bf16_autocast_trains():
    """A Mamba block under bf16 autocast: bf16 output close to fp32, finite fp32 gradients for every parameter."""
    torch.manual_seed(0)
    block = mamba_module.Mamba(d_model=16, d_state=8, scan_backend="torch")
    x = torch.randn(2, 200, 16)
    y32 = block(x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        y = block(x)
    assert y.dtype == torch.bfloat16
    assert rel_err(y, y32) < 0.02  # bf16 projections around an fp32 scan (measured 0.006)
    y.float().square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# ----------------------------------------------------------------------------------------------------
# bf16-mixed training on ETTh1
# ----------------------------------------------------------------------------------------------------

# ETTh1's first rows (7 series): input 96, horizon 24, so 281 training windows
ROWS, INPUT, H = 400, 96, 24
N_WINDOWS = ROWS - INPUT - H + 1
from conftest import QUIET, bundled_etth1, rel_err  # noqa: E402


@pytest.fixture(scope="module")
def etth1():
    return bundled_etth1().iloc[:ROWS].reset_index(drop=True)


@pytest.fixture
def scan_dtypes(monkeypatch):
    """Records (dtype of u, CPU autocast on) at every scan call from a Mamba block."""
    seen = []

    def spy(u, *args, **kwargs):
        seen.append((u.dtype, torch.is_autocast_enabled("cpu")))
        return selective_scan(u, *args, **kwargs)

    monkeypatch.setattr(mamba_module, "selective_scan", spy)
    return seen


def assert_finite_module(module):
    for name, p in module.named_parameters():
        assert torch.isfinite(p).all(), name


@pytest.mark.parametrize("name", ["SMamba", "TSM2"])
def test_neuralforecast_bf16_mixed_one_epoch_on_etth1(name, etth1, scan_dtypes):
    """One pass over all 281 ETTh1 training windows (one step: NeuralForecast samples windows_batch_size windows
    without replacement) with precision="bf16-mixed": the scan saw bf16 activations under autocast, and the loss,
    the weights and the forecasts are finite."""
    from neuralforecast import NeuralForecast

    from mamba_forecast import neuralforecast as mnf

    arch = dict(d_model=16, e_layers=1, d_state=4)
    if name == "SMamba":
        arch["d_ff"] = 16
    else:
        arch.update(patch_len=16, stride=8)
    model = getattr(mnf, name)(
        h=H,
        input_size=INPUT,
        max_steps=1,
        windows_batch_size=N_WINDOWS,
        precision="bf16-mixed",
        random_seed=0,
        **arch,
        **QUIET,
    )
    long = etth1.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(long)
    assert (torch.bfloat16, True) in scan_dtypes
    fitted = nf.models[0]
    losses = [loss for _, loss in fitted.train_trajectories]
    assert losses and all(math.isfinite(float(v)) for v in losses)
    assert_finite_module(fitted)
    forecast = nf.predict()
    assert len(forecast) == 7 * H and np.isfinite(forecast[name].to_numpy(dtype=float)).all()


@pytest.mark.parametrize("name", ["SMambaModel", "FMambaModel"])
def test_darts_bf16_mixed_one_epoch_on_etth1(name, etth1, scan_dtypes):
    """n_epochs=1 over all 281 ETTh1 windows (batches of 32) with precision="bf16-mixed": the scan saw bf16
    activations under autocast; the epoch's training loss, the weights and the forecast are finite."""
    from darts import TimeSeries

    from mamba_forecast import darts as mdarts

    series = TimeSeries.from_dataframe(etth1, time_col="date", value_cols=list(etth1.columns[1:])).astype(np.float32)
    model = getattr(mdarts, name)(
        INPUT,
        H,
        d_model=16,
        d_ff=16,
        e_layers=1,
        d_state=4,
        n_epochs=1,
        batch_size=32,
        random_state=0,
        pl_trainer_kwargs={**QUIET, "precision": "bf16-mixed"},
    )
    model.fit(series)
    assert (torch.bfloat16, True) in scan_dtypes
    assert model.epochs_trained == 1
    assert math.isfinite(float(model.trainer.callback_metrics["train_loss"]))
    assert_finite_module(model.model)
    forecast = model.predict(H, series=series)
    assert forecast.values().shape == (H, 7) and np.isfinite(forecast.values()).all()


# ----------------------------------------------------------------------------------------------------
# fp16-mixed on CUDA
# ----------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_cuda
def test_scan_under_fp16_autocast_on_cuda_accumulates_in_fp32():
    """On CUDA under fp16 autocast the torch scan's final state equals the fp32 scan's (fp32 accumulation)."""
    x = {k: v.half().float().cuda() for k, v in long_scan_inputs().items()}
    _, last32 = selective_scan(**x, return_last_state=True, backend="torch")
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        half = {k: (v if k == "A" else v.half()) for k, v in x.items()}
        out, last = selective_scan(**half, return_last_state=True, backend="torch")
    assert out.dtype == torch.float16 and last.dtype == torch.float32
    assert rel_err(last, last32) < 1e-5


@pytest.mark.gpu
@needs_cuda
def test_neuralforecast_and_darts_fp16_mixed_on_cuda(etth1):
    """precision="16-mixed" on one GPU: finite loss, weights and forecasts through both adapters."""
    pytest.importorskip("darts")  # the GPU test machine has neither host library
    pytest.importorskip("neuralforecast")
    from darts import TimeSeries
    from neuralforecast import NeuralForecast

    from mamba_forecast.darts import SMambaModel
    from mamba_forecast.neuralforecast import SMamba as NFSMamba

    gpu = dict(enable_progress_bar=False, logger=False, enable_model_summary=False, accelerator="gpu", devices=1)
    arch = dict(d_model=16, d_ff=16, e_layers=1, d_state=4)
    nf = NeuralForecast(
        models=[NFSMamba(h=H, input_size=INPUT, max_steps=5, precision="16-mixed", **arch, **gpu)], freq="h"
    )
    nf.fit(etth1.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"}))
    assert all(math.isfinite(float(v)) for _, v in nf.models[0].train_trajectories)
    assert_finite_module(nf.models[0])
    assert np.isfinite(nf.predict()["SMamba"].to_numpy(dtype=float)).all()

    series = TimeSeries.from_dataframe(etth1, time_col="date", value_cols=list(etth1.columns[1:])).astype(np.float32)
    model = SMambaModel(
        INPUT, H, **arch, n_epochs=1, random_state=0, pl_trainer_kwargs={**gpu, "precision": "16-mixed"}
    )
    model.fit(series)
    assert math.isfinite(float(model.trainer.callback_metrics["train_loss"]))
    assert_finite_module(model.model)
    assert np.isfinite(model.predict(H, series=series).values()).all()


# ----------------------------------------------------------------------------------------------------
# torch.compile
# ----------------------------------------------------------------------------------------------------

TINY = {
    "SMamba": (SMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4)),
    "AttentionMamba": (AttentionMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4)),
    "FMamba": (FMamba, dict(d_model=16, d_ff=16, e_layers=1, d_state=4, n_heads=2)),
    "TSM2": (TSM2, dict(d_model=16, e_layers=1, d_state=4, patch_len=8, stride=4)),
}


def eager_and_compiled(name, backend, *, train=True):
    """Outputs (and parameter gradients) of one model, eager and compiled, on the same inputs."""
    cls, kwargs = TINY[name]
    torch.manual_seed(0)
    model = cls(input_size=24, h=6, n_series=3, dropout=0.0, **kwargs)
    x = torch.randn(4, 24, 3, generator=torch.Generator().manual_seed(1)) * 3 + 5

    def run(fn):
        model.zero_grad()
        if not train:
            with torch.no_grad():
                return fn(x), None
        y = fn(x)
        y.square().mean().backward()
        return y.detach(), [p.grad.clone() for p in model.parameters()]

    torch._dynamo.reset()
    eager = run(model)
    compiled = run(torch.compile(model, backend=backend))
    return eager, compiled


# The default inductor backend compiles C++ for every kernel: on the loaded 2-core CI machine that took 54-78 s
# for the forward of one tiny model (65-135 s with the backward), too slow to repeat for all four. So the four
# models are compiled with backend="aot_eager" (Dynamo + AOTAutograd, the graphs the inductor lowers, forward and
# backward) and inductor itself runs on one tiny model's forward.
@pytest.mark.integration
@pytest.mark.parametrize("name", list(TINY))
def test_compiled_models_match_eager_aot_eager(name):
    (y, grads), (yc, grads_c) = eager_and_compiled(name, "aot_eager")
    assert rel_err(yc, y) < 1e-5
    for g, gc in zip(grads, grads_c, strict=True):
        assert torch.isfinite(gc).all()
        assert rel_err(gc, g) < 1e-5 or (g.abs().max() == 0 and gc.abs().max() == 0)


@pytest.mark.integration
def test_compiled_model_matches_eager_inductor():
    (y, _), (yc, _) = eager_and_compiled("SMamba", "inductor", train=False)
    assert rel_err(yc, y) < 1e-5
