"""How the harness's loop runs on a device: segments copied once, windows gathered there, and the precision and
compile switches of ``train`` / ``fit_and_test`` (the protocol itself is tested in test_bench.py and
test_protocol.py)."""

import math

import pytest
import torch

from conftest import synthetic_ett
from mamba_forecast.bench import prepare
from mamba_forecast.bench.models import LinearBaseline
from mamba_forecast.bench.protocol import window_batches
from mamba_forecast.bench.train import COMPILE_MODES, PRECISIONS, compiled, fit_and_test, make_optimizer, train


def linear_forward(model, x, xm):
    return model(x)


@pytest.fixture(scope="module")
def data():
    return prepare("ETTh1", 24, frame=synthetic_ett(n_rows=900))


def quiet(**kw):
    return dict(progress=False, log=lambda *_: None, **kw)


def test_a_segment_is_copied_to_a_device_once_and_windows_are_gathered_there(data):
    # "meta" stands in for an accelerator: tensors there have shapes and a device but no data
    values, marks = data.device_segment("train", "meta")
    assert values.device.type == marks.device.type == "meta"
    again = data.device_segment("train", torch.device("meta"))
    assert again[0] is values and again[1] is marks  # the copy is kept, not made per call
    cpu_values, _ = data.device_segment("train", "cpu")
    assert cpu_values.device.type == "cpu" and cpu_values.shape == values.shape
    assert torch.equal(cpu_values, data.segment("train")[0])
    batches = list(window_batches(values, marks, 24, 12, 16, shuffle=True, drop_last=True, generator=None))
    assert batches and all(t.device.type == "meta" for b in batches for t in b)
    x, xm, y = batches[0]
    n = data.n_series
    assert (x.shape, xm.shape, y.shape) == ((16, 24, n), (16, 24, 4), (16, 12, n))


def test_the_shuffled_order_is_the_cpu_generators_permutation(data):
    values, marks = data.segment("train")
    n = values.shape[0] - 24 - 12 + 1
    order = torch.randperm(n, generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    batches = list(window_batches(values, marks, 24, 12, 32, shuffle=True, drop_last=True, generator=gen))
    for k, (x, xm, y) in enumerate(batches):
        for j, i in enumerate(order[32 * k : 32 * (k + 1)].tolist()):
            assert torch.equal(x[j], values[i : i + 24]) and torch.equal(xm[j], marks[i : i + 24])
            assert torch.equal(y[j], values[i + 24 : i + 36])


def test_bf16_mixed_runs_the_forward_passes_under_autocast_and_the_loss_in_fp32(data):
    seen = []

    def forward(model, x, xm):
        return model(x)

    def record(layer, inputs, out):  # the linear map, where autocast takes effect
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype, layer.training))

    assert PRECISIONS == ("fp32", "bf16-mixed")
    runs = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        seen.clear()
        model = LinearBaseline(24, 12)
        model.proj.register_forward_hook(record)
        runs[precision] = fit_and_test(
            model,
            data,
            12,
            forward_fn=forward,
            epochs=2,
            batch_size=16,
            learning_rate=1e-2,
            precision=precision,
            **quiet(),
        )
        training, scoring = {s for s in seen if s[2]}, {s for s in seen if not s[2]}
        if precision == "fp32":
            assert training == {(False, torch.float32, True)} and scoring == {(False, torch.float32, False)}
        else:  # training, validation and the test all under autocast
            assert training == {(True, torch.bfloat16, True)} and scoring == {(True, torch.bfloat16, False)}
    fp32, bf16 = runs["fp32"], runs["bf16-mixed"]
    assert math.isfinite(bf16.mse) and math.isfinite(bf16.val_loss)
    assert bf16.mse == pytest.approx(fp32.mse, rel=0.05)  # the same training, rounded to bf16 in the forward
    assert bf16.sample["forecast"].dtype == fp32.sample["forecast"].dtype  # float32 either way


@pytest.mark.parametrize(
    "switch, error, message",
    [
        ({"precision": "bf16"}, ValueError, "precision must be one of fp32, bf16-mixed"),
        ({"precision": "16-mixed"}, ValueError, "precision must be one of"),
        ({"compile": "yes please"}, RuntimeError, "Invalid backend"),  # torch.compile lists its backends
        ({"compile": 1}, TypeError, "compile must be True, False, an inductor mode"),
    ],
)
def test_a_bad_switch_is_refused_before_training(data, switch, error, message):
    model = LinearBaseline(24, 12)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epochs = []
    with pytest.raises(error, match=message):
        train(
            model,
            data,
            12,
            forward_fn=linear_forward,
            epochs=1,
            batch_size=16,
            learning_rate=1e-2,
            on_epoch=lambda e, v: epochs.append(e),
            **switch,
            **quiet(),
        )
    assert not epochs and all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_compiled_training_matches_eager(data):
    """``compile`` runs the forward passes through torch.compile (here its ``aot_eager`` backend, quick to compile
    on a CPU); weights stay on the model, so the restored best epoch and the test score match eager training."""
    torch._dynamo.reset()
    results = {}
    for compile_ in (False, "aot_eager"):
        torch.manual_seed(0)
        model = LinearBaseline(24, 12)
        results[compile_] = fit_and_test(
            model,
            data,
            12,
            forward_fn=linear_forward,
            epochs=2,
            batch_size=16,
            learning_rate=1e-2,
            validation="full",
            compile=compile_,
            **quiet(),
        )
    eager, compiled = results[False], results["aot_eager"]
    assert compiled.mse == pytest.approx(eager.mse, rel=1e-6)
    assert compiled.val_loss == pytest.approx(eager.val_loss, rel=1e-6)
    assert [h["train_loss"] for h in compiled.history] == pytest.approx([h["train_loss"] for h in eager.history])


def test_compile_takes_inductor_modes_and_backend_names(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: calls.append(kw) or model)
    model = LinearBaseline(4, 2)
    assert compiled(model, False) is model and not calls
    for switch in (True, "reduce-overhead", "aot_eager"):
        compiled(model, switch)
    assert calls == [{}, {"mode": "reduce-overhead"}, {"backend": "aot_eager"}]
    assert "reduce-overhead" in COMPILE_MODES and "max-autotune" in COMPILE_MODES


def test_the_fused_optimiser_is_asked_for_on_cuda_only(monkeypatch, data):
    seen = []
    monkeypatch.setattr(
        "mamba_forecast.bench.train.make_optimizer",
        lambda name, params, lr, fused=False: seen.append(fused) or make_optimizer(name, params, lr, fused),
    )
    train(
        LinearBaseline(24, 12),
        data,
        12,
        forward_fn=linear_forward,
        epochs=1,
        batch_size=16,
        learning_rate=1e-2,
        max_train_batches=1,
        **quiet(),
    )
    assert seen == [False]  # on the CPU the update stays torch's default (foreach or per-tensor), bit for bit
    assert make_optimizer("adam", LinearBaseline(4, 2).parameters(), 1e-3, fused=True).defaults["fused"] is True
    assert make_optimizer("adamw", LinearBaseline(4, 2).parameters(), 1e-3).defaults["fused"] is None


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@needs_cuda
def test_on_cuda_no_window_crosses_from_the_host(data):
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        train(
            LinearBaseline(24, 12),
            data,
            12,
            forward_fn=linear_forward,
            epochs=1,
            batch_size=16,
            learning_rate=1e-2,
            device="cuda",
            **quiet(),
        )
    steps = data.n_windows("train", 12) // 16
    copies = [e.name for e in prof.events() if e.device_type == DeviceType.CUDA and "HtoD" in e.name]
    # the model, the segments and each pass's order: a handful, not three per batch
    assert 0 < len(copies) < steps / 2, (len(copies), steps)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", PRECISIONS)
def test_training_on_cuda_follows_the_cpu_run(data, precision):
    """The same windows in the same order: the CUDA run differs from the CPU's by rounding only."""
    runs = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        runs[device] = fit_and_test(
            LinearBaseline(24, 12),
            data,
            12,
            forward_fn=linear_forward,
            epochs=2,
            batch_size=16,
            learning_rate=1e-2,
            validation="full",
            device=device,
            precision=precision,
            **quiet(),
        )
    tol = 1e-3 if precision == "fp32" else 5e-2
    assert runs["cuda"].mse == pytest.approx(runs["cpu"].mse, rel=tol)
    assert runs["cuda"].val_loss == pytest.approx(runs["cpu"].val_loss, rel=tol)
