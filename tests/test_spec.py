"""The model registry (``mamba_forecast.models.spec``): one spec per model, the rest written or read from it.

A fifth model defined here (a core and a spec, registered inside the test) gets its host classes the way a new
model of the package does: ``tools/host_classes.py`` writes a NeuralForecast module (the model class and its
``Auto`` class) and a Darts module from the spec (here into a temporary folder), which are imported and registered
for saving as the host packages register theirs. The NeuralForecast class then fits, predicts, saves and loads
through ``NeuralForecast``, the Darts class does the same, and the ``Auto`` class runs a trial. The demo, the
harness and the CLI read the registry.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch.nn as nn

from conftest import QUIET
from mamba_forecast.models import Forecaster, SMamba, all_specs, get_spec, model_names
from mamba_forecast.models.base import check_int
from mamba_forecast.models.spec import (
    Choice,
    ModelSpec,
    Reference,
    SameAs,
    architecture_arguments,
    register,
    unregister,
)

ROOT = Path(__file__).resolve().parents[1]


class ToyCore(Forecaster):
    """A tiny forecaster: one MLP from each series' look-back to its horizon (exogenous inputs are added as their
    mean). It forwards the shared arguments to ``Forecaster`` through ``**common``."""

    def __init__(
        self, input_size: int, h: int, n_series: int | None = None, *, width: int = 8, depth: int = 1, **common
    ):
        super().__init__(input_size, h, n_series, **common)
        self.width = check_int("width", width)
        layers = [nn.Linear(self.input_size, self.width), nn.GELU()]
        for _ in range(check_int("depth", depth) - 1):
            layers += [nn.Linear(self.width, self.width), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.Dropout(self.dropout), nn.Linear(self.width, self.h * self.n_outputs))

    def forecast(self, x, hist_exog, futr_exog, stat_exog):
        batch, _, n = x.shape
        y = self.net(x.transpose(1, 2))  # [B, N, h * n_outputs]
        for exog in (hist_exog, futr_exog):
            if exog is not None:
                y = y + exog.mean(dim=(1, 2))[:, None, None]  # [B, 1, 1] broadcast
        if stat_exog is not None:
            y = y + stat_exog.mean(dim=2, keepdim=True)  # [B, N, 1] broadcast
        return y.view(batch, n, self.h, self.n_outputs).transpose(1, 2)  # [B, h, N, n_outputs]


def toy_spec(name="Toy", **changes) -> ModelSpec:
    fields = dict(
        name=name,
        core=ToyCore,
        title="Toy",
        tagline="an MLP per series",
        summary="Each series' look-back goes through one MLP to its forecast.",
        arg_docs={"width": "hidden width of the MLP.", "depth": "number of hidden layers."},
        references=(Reference("A. Author", 2025, "A toy", "https://example.org/toy"),),
        card="docs/models/toy.md",
        search_space={"width": Choice([4, 8]), "depth": Choice([1, 2])},
        derived={},
        auto_summary="hidden width and depth.",
        example={"width": 4},
        demo={"width": 8},
    )
    return ModelSpec(**{**fields, **changes})


@pytest.fixture
def toy():
    """The toy model's spec, registered for one test."""
    spec = register(toy_spec())
    try:
        yield spec
    finally:
        unregister("Toy")


@pytest.fixture
def toy_hosts(toy, tmp_path, monkeypatch):
    """The toy's NeuralForecast and Darts modules, as ``tools/host_classes.py`` writes them from its spec,
    imported and registered for saving the way ``mamba_forecast.neuralforecast`` and ``mamba_forecast.darts``
    register the built-in models."""
    from darts.utils.serialization import add_safe_globals
    from neuralforecast.core import MODEL_FILENAME_DICT

    from mamba_forecast.neuralforecast import register_model
    from test_host_classes import host_classes_tool

    tool = host_classes_tool()
    (tmp_path / "toy_nf.py").write_text(tool.neuralforecast_module(toy))
    (tmp_path / "toy_darts.py").write_text(tool.darts_module(toy))
    monkeypatch.syspath_prepend(str(tmp_path))
    nf_module, darts_module = importlib.import_module("toy_nf"), importlib.import_module("toy_darts")
    register_model(nf_module.Toy, nf_module.AutoToy)
    add_safe_globals([darts_module.ToyModel])
    try:
        yield nf_module, darts_module
    finally:
        for key in ("toy", "autotoy"):
            MODEL_FILENAME_DICT.pop(key, None)
        for module in ("toy_nf", "toy_darts"):
            sys.modules.pop(module, None)


H, L = 4, 16


def run_python(code: str) -> None:
    """Run ``code`` in a fresh interpreter (a clean registry and no host library imported yet)."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def panel(n_series=3, length=80, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=length, freq="h")
    cycle = np.sin(2 * np.pi * np.arange(length) / 24)
    return pd.concat(
        [
            pd.DataFrame(
                {"unique_id": f"s{i}", "ds": ds, "y": 10.0 * (i + 1) + cycle + 0.1 * rng.standard_normal(length)}
            )
            for i in range(n_series)
        ],
        ignore_index=True,
    )


# ----------------------------------------------------------------------------------------------------
# the spec and the one argument-discovery algorithm


def test_architecture_arguments_follow_kwargs_to_the_base():
    """A core forwarding ``**common`` to Forecaster exposes the base's dropout/use_norm/scan_backend too, with
    the base's defaults, and never the sizes an adapter sets."""
    found = {name: default for name, (default, _) in architecture_arguments(ToyCore).items()}
    assert found == {"width": 8, "depth": 1, "dropout": 0.1, "use_norm": True, "scan_backend": "auto"}


def test_architecture_arguments_of_a_builtin_core_are_its_keyword_arguments():
    params = inspect.signature(SMamba).parameters
    expected = {
        n: p.default
        for n, p in params.items()
        if p.kind is p.KEYWORD_ONLY and n not in ("n_outputs", "hist_exog_size", "futr_exog_size", "stat_exog_size")
    }
    assert get_spec("SMamba").defaults() == expected


def test_builtin_registry_order_and_flags():
    assert model_names()[:4] == ("SMamba", "AttentionMamba", "FMamba", "TSM2")
    assert [s.fixed_n_series for s in all_specs()[:4]] == [False, True, False, False]
    for spec in all_specs():
        assert (ROOT / spec.card).is_file(), f"{spec.name}: no docs card at {spec.card}"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(arg_docs={"width": "hidden width."}), "no doc for depth"),
        (dict(search_space={"widht": Choice([4])}), "widht"),
        (dict(derived={"d_ff": SameAs("width")}), "d_ff"),
        (dict(name="not a name"), "class name"),
        (dict(core=nn.Linear), "input_size, h and n_series"),
    ],
)
def test_register_refuses_an_inconsistent_spec(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        register(toy_spec(**{"name": "BadToy", **change}))
    assert "BadToy" not in model_names() and "not a name" not in model_names()


def test_register_refuses_a_taken_name():
    """A name is taken by the spec of another core (here: a core of another module)."""
    taken = r"'SMamba' is already registered \(core mamba_forecast.models.smamba.SMamba\)"
    with pytest.raises(ValueError, match=taken):
        register(toy_spec(name="SMamba"))
    assert get_spec("SMamba").core is SMamba


def test_reloading_a_model_module_replaces_its_spec():
    """`importlib.reload` of a model module (IPython's autoreload does the same) re-registers its spec: the entry
    is replaced in place, keeping the registry's order, and the reloaded module's core is the registered one."""
    code = (
        "import importlib\n"
        "import mamba_forecast.models.smamba as module\n"
        "from mamba_forecast.models import get_spec, model_names\n"
        "before, old = model_names(), module.SMamba\n"
        "importlib.reload(module)\n"
        "assert module.SMamba is not old and get_spec('SMamba').core is module.SMamba\n"
        "assert model_names() == before, model_names()\n"
    )
    run_python(code)


def test_registering_a_spec_leaves_the_host_packages_alone():
    """The registry is data: registering a spec adds no class to the host packages and writes nothing into
    NeuralForecast's save/load table, so a model named like one of NeuralForecast's own (PatchTST) cannot take
    over ``NeuralForecast.load`` for that model's checkpoints."""
    from neuralforecast.core import MODEL_FILENAME_DICT
    from neuralforecast.models import PatchTST

    import mamba_forecast.darts as mdarts
    import mamba_forecast.neuralforecast as mnf

    exported = list(mnf.__all__), list(mdarts.__all__)
    register(toy_spec(name="PatchTST"))
    try:
        assert MODEL_FILENAME_DICT["patchtst"] is PatchTST and MODEL_FILENAME_DICT["autopatchtst"] is PatchTST
        assert not hasattr(mnf, "AutoPatchTST") and not hasattr(mdarts, "PatchTSTModel")
        assert (list(mnf.__all__), list(mdarts.__all__)) == exported
    finally:
        unregister("PatchTST")


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(KeyError, match="registered: SMamba, AttentionMamba, FMamba, TSM2"):
        get_spec("Nope")


# ----------------------------------------------------------------------------------------------------
# a fifth model: its core and its spec, and the host modules written from the spec


def test_toy_model_through_neuralforecast(toy, toy_hosts, tmp_path):
    from neuralforecast import NeuralForecast
    from neuralforecast.core import MODEL_FILENAME_DICT

    cls = toy_hosts[0].Toy
    params = inspect.signature(cls).parameters
    assert {n: params[n].default for n in ("width", "depth", "dropout", "use_norm", "scan_backend")} == toy.defaults()
    assert "width (int): hidden width of the MLP." in cls.__doc__ and "https://example.org/toy" in cls.__doc__
    assert MODEL_FILENAME_DICT["toy"] is cls and MODEL_FILENAME_DICT["autotoy"] is cls

    df = panel()
    nf = NeuralForecast(models=[cls(h=H, input_size=L, width=4, max_steps=3, val_check_steps=1, **QUIET)], freq="h")
    nf.fit(df)
    forecast = nf.predict()
    assert forecast.shape == (3 * H, 3) and np.isfinite(forecast["Toy"]).all()
    nf.save(str(tmp_path / "nf"), overwrite=True)
    loaded = NeuralForecast.load(str(tmp_path / "nf"))
    assert type(loaded.models[0]) is cls and loaded.models[0].hparams["width"] == 4
    pd.testing.assert_frame_equal(loaded.predict(), forecast)


def test_toy_model_through_darts(toy, toy_hosts, tmp_path):
    from darts import TimeSeries

    cls = toy_hosts[1].ToyModel
    params = inspect.signature(cls.__init__).parameters
    assert {n: params[n].default for n in ("width", "depth", "dropout", "use_norm", "scan_backend")} == toy.defaults()
    assert "\n        width\n            Hidden width of the MLP.\n" in cls.__init__.__doc__

    values = np.sin(np.arange(60) / 4)[:, None] + np.arange(2)[None, :]
    series = TimeSeries.from_times_and_values(
        pd.date_range("2024-01-01", periods=60, freq="h"), values.astype(np.float32)
    )
    model = cls(
        L,
        H,
        width=4,
        n_epochs=1,
        random_state=0,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(series)
    forecast = model.predict(H)
    assert forecast.shape == (H, 2, 1) and np.isfinite(forecast.values()).all()
    path = str(tmp_path / "toy.pt")
    model.save(path)
    loaded = cls.load(path)  # safe loading: the class is allow-listed
    assert loaded.model_params["width"] == 4
    np.testing.assert_allclose(loaded.predict(H, series=series).values(), forecast.values(), rtol=1e-5, atol=1e-6)


def test_toy_model_auto_runs_a_trial(toy_hosts):
    from neuralforecast import NeuralForecast

    toy_nf = toy_hosts[0]
    auto = toy_nf.AutoToy
    assert auto.model_class is toy_nf.Toy
    assert {"width", "depth", "learning_rate", "input_size_multiplier"} <= set(auto.default_config)

    def config(trial):
        return {
            "input_size": L,
            "max_steps": 2,
            "val_check_steps": 1,
            "width": trial.suggest_categorical("width", [4, 8]),
            **QUIET,
        }

    nf = NeuralForecast(models=[auto(h=H, config=config, num_samples=1, backend="optuna")], freq="h")
    nf.fit(panel())
    assert len(nf.models[0].results.trials) == 1
    assert type(nf.models[0].model) is toy_nf.Toy and nf.models[0].model.hparams["width"] in (4, 8)
    assert np.isfinite(nf.predict()["AutoToy"]).all()


def test_cli_model_choices_come_from_the_registry(toy):
    """`mamba-forecast tune/bench --model` accept every registered model (here the toy too) and refuse an
    unknown name before any data is read, listing the known ones."""
    from mamba_forecast.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["tune", "--model", "Toy", "--dataset", "ETTh1"]).model == "Toy"
    assert parser.parse_args(["bench", "--model", "SMamba,Toy", "--dataset", "ETTh1"]).model == "SMamba,Toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--model", "SMamba,Nope", "--dataset", "ETTh1"])


def test_cli_unknown_model_message(capsys):
    from mamba_forecast.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["tune", "--model", "Nope", "--dataset", "ETTh1"])
    assert "unknown model 'Nope'; choose from SMamba, AttentionMamba, FMamba, TSM2" in capsys.readouterr().err


def test_demo_and_harness_read_the_registry(toy):
    from mamba_forecast.bench.models import build_model, uses_calendar_tokens
    from mamba_forecast.bench.presets import get_preset, known_models
    from mamba_forecast.bench.spaces import search_space
    from mamba_forecast.demo import demo_config, neural_models

    assert neural_models()[-1] == "Toy" and demo_config("Toy") == {"width": 8}
    from mamba_forecast.bench.baselines import baseline_names

    assert known_models()[-2 - len(baseline_names()) :] == ("Toy", *baseline_names(), "Linear")
    preset = get_preset("Toy", "ETTh1", 96)  # borrows S-Mamba's rows: no published setting
    assert preset.source == "no published setting: S-Mamba's official row"
    assert uses_calendar_tokens("Toy")
    with pytest.warns(UserWarning, match="Toy does not take"):
        net = build_model("Toy", preset, n_series=3, input_size=preset.input_size, horizon=24)
    assert isinstance(net, ToyCore) and net.hist_exog_size == 4
    assert callable(search_space("Toy"))


def test_core_and_registry_import_with_torch_alone():
    """`mamba_forecast.models` (the cores and their specs, search spaces included) imports no host library."""
    code = (
        "import sys, mamba_forecast.models, mamba_forecast.layers, mamba_forecast.ssm\n"
        "from mamba_forecast.models import all_specs\n"
        "assert len(all_specs()) >= 4\n"
        "hosts = ('neuralforecast', 'darts', 'ray', 'optuna', 'pytorch_lightning', 'statsforecast')\n"
        "loaded = [m for m in hosts if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    run_python(code)
