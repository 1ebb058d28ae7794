"""NeuralForecast's own forecasters as baselines in the harness: ``bench --model PatchTST`` and the like.

A user choosing between our four models and the forecasters they already have needs both trained and scored
the same way. Here NeuralForecast's network (the ``nn.Module`` inside each of its model classes) is built with
NeuralForecast's defaults and trained by the harness's loop (:mod:`.train`) on the same splits, z-scored data,
windows, batches, early stopping and test windows as our models, and tuned by ``mamba-forecast tune`` with the
same budget. Only the network is NeuralForecast's; its Lightning training loop is not used.

How each is configured (NeuralForecast 3.3 defaults unless listed; :data:`BASELINES`):

* inputs: the look-back of every series; no calendar features (NeuralForecast's users add none by default, and
  PatchTST, DLinear and NHITS take none in their papers);
* the channel-independent models (PatchTST, DLinear, NHITS) see each series of a window as its own sample
  (a batch of 32 windows of N series is 32 N univariate windows), as NeuralForecast trains them;
* window normalisation: PatchTST (RevIN), iTransformer, TSMixer (RevIN), TimeMixer and SOFTS normalise each
  window themselves; DLinear and NHITS do not, and NeuralForecast users give them ``scaler_type="standard"``:
  the wrapper standardises each series' look-back here (mean and std of the window, as NeuralForecast's
  ``TemporalNorm``) and undoes it on the forecast; the tuner may switch it off (``window_norm``);
* the learning rate is the class's default (1e-4 for PatchTST and DLinear, 1e-3 for the others), the batch 32
  windows (our models' batch), Adam, and the protocol's schedule and early stopping;
* ``MSE()`` as the loss (the harness's criterion).

Torch only at import: NeuralForecast is imported when a baseline is built.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn


@dataclass(frozen=True)
class Baseline:
    """One NeuralForecast forecaster as the harness runs it.

    ``multivariate``: whether the network takes all series of a window at once (``n_series``).
    ``window_norm``: whether the wrapper standardises each look-back (for networks without their own
    normalisation). ``settings``: NeuralForecast arguments set here (none yet: the class defaults are used).
    ``tune_space``: the model's own choices for ``mamba-forecast tune`` (added to the learning rate, optimiser and
    schedule every model gets).
    """

    name: str
    multivariate: bool
    window_norm: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    tune_space: Mapping[str, tuple] = field(default_factory=dict)


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("PatchTST", multivariate=False, tune_space={"hidden_size": (16, 64, 128), "dropout": (0.1, 0.2, 0.3)}),
        Baseline("iTransformer", multivariate=True, tune_space={"hidden_size": (128, 256, 512), "e_layers": (1, 2, 3)}),
        Baseline(
            "TSMixer",
            multivariate=True,
            tune_space={"n_block": (1, 2, 4), "ff_dim": (32, 64, 256), "dropout": (0.1, 0.5, 0.9)},
        ),
        Baseline("DLinear", multivariate=False, window_norm=True, tune_space={"window_norm": (True, False)}),
        Baseline(
            "NHITS",
            multivariate=False,
            window_norm=True,
            tune_space={"window_norm": (True, False), "dropout_prob_theta": (0.0, 0.1, 0.3)},
        ),
        # the paper's ETT scripts differ from NeuralForecast's defaults most in the down-sampling layers (3, not 1)
        # and in each series on its own: a search reaches them (results/experiments/timemixer_paper_settings)
        Baseline(
            "TimeMixer",
            multivariate=True,
            tune_space={
                "d_model": (16, 32, 64),
                "e_layers": (2, 4),
                "down_sampling_layers": (1, 2, 3),
                "channel_independence": (0, 1),
            },
        ),
        Baseline("SOFTS", multivariate=True, tune_space={"hidden_size": (128, 256, 512), "e_layers": (1, 2, 3)}),
    )
}

# Arguments of a NeuralForecast class that the harness sets itself or that do not describe the network.
_HARNESS_ARGS = frozenset(
    {
        "h",
        "input_size",
        "n_series",
        "futr_exog_list",
        "hist_exog_list",
        "stat_exog_list",
        "exclude_insample_y",
        "loss",
        "valid_loss",
        "max_steps",
        "learning_rate",
        "num_lr_decays",
        "early_stop_patience_steps",
        "val_monitor",
        "val_check_steps",
        "batch_size",
        "valid_batch_size",
        "windows_batch_size",
        "inference_windows_batch_size",
        "start_padding_enabled",
        "training_data_availability_threshold",
        "step_size",
        "scaler_type",
        "random_seed",
        "drop_last_loader",
        "alias",
        "optimizer",
        "optimizer_kwargs",
        "lr_scheduler",
        "lr_scheduler_kwargs",
        "dataloader_kwargs",
        "trainer_kwargs",
    }
)


def baseline_names() -> tuple[str, ...]:
    return tuple(BASELINES)


def is_baseline(name: str) -> bool:
    return name in BASELINES


def nf_class(name: str) -> type:
    """NeuralForecast's class of baseline ``name`` (imports NeuralForecast)."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    try:
        import neuralforecast.models as nf_models
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"the {name} baseline is NeuralForecast's: install this package with its neuralforecast extra "
            "(pip install '.[neuralforecast]' in a clone)"
        ) from exc
    return getattr(nf_models, name)


def _signature_defaults(name: str) -> dict[str, Any]:
    parameters = inspect.signature(nf_class(name)).parameters
    return {
        k: p.default
        for k, p in parameters.items()
        if k != "self" and p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    }


def default_learning_rate(name: str) -> float:
    """The class's default learning rate (what a NeuralForecast user trains with unless they set one)."""
    return float(_signature_defaults(name)["learning_rate"])


def network_arguments(name: str) -> dict[str, Any]:
    """The network arguments of baseline ``name`` with their values here: the class defaults, then ``settings``,
    plus ``window_norm`` (the wrapper's)."""
    defaults = {k: v for k, v in _signature_defaults(name).items() if k not in _HARNESS_ARGS}
    spec = BASELINES[name]
    return {**defaults, **spec.settings, "window_norm": spec.window_norm}


class NeuralForecastBaseline(nn.Module):
    """NeuralForecast's network behind the harness's call: ``forward(x [B, L, N], ...) -> [B, H, N]``.

    Exogenous inputs (the harness's calendar tokens) are not passed: see the module docstring.
    """

    def __init__(self, network: nn.Module, *, multivariate: bool, window_norm: bool, eps: float = 1e-5):
        super().__init__()
        self.network = network
        self.multivariate = multivariate
        self.window_norm = window_norm
        self.eps = eps

    def forward(self, x, hist_exog=None, futr_exog=None, stat_exog=None):  # x [B, L, N]
        B, L, N = x.shape
        mean = x.mean(1, keepdim=True) if self.window_norm else x.new_zeros(())  # [B, 1, N]
        std = x.std(1, keepdim=True, unbiased=False).clamp_min(self.eps) if self.window_norm else x.new_ones(())
        x = (x - mean) / std
        y_in = x if self.multivariate else x.transpose(1, 2).reshape(B * N, L, 1)  # [B, L, N] | [B*N, L, 1]
        batch = {
            "insample_y": y_in,
            "insample_mask": torch.ones_like(y_in),
            "futr_exog": None,
            "hist_exog": None,
            "stat_exog": None,
        }
        loss: Any = self.network.loss  # NeuralForecast's loss module (its domain_map turns outputs into forecasts)
        y = loss.domain_map(self.network(batch))  # [B, H, N] | [B*N, H, 1] (or without the 1)
        y = y.reshape(B, N, -1).transpose(1, 2) if not self.multivariate else y.reshape(B, -1, N)  # [B, H, N]
        return y * std + mean


def build_baseline(
    name: str, input_size: int, horizon: int, n_series: int, *, seed: int = 1, **arguments
) -> NeuralForecastBaseline:
    """Baseline ``name`` for windows of ``input_size`` and ``horizon`` over ``n_series`` series, its weights drawn
    from ``seed`` (NeuralForecast seeds every generator with its ``random_seed`` when a model is built);
    ``arguments`` (tuned or ``--set`` values) replace :func:`network_arguments`' values. An argument the class does
    not take is a ``ValueError`` naming the ones it does."""
    values = network_arguments(name)
    unknown = sorted(k for k in arguments if k not in values)
    if unknown:
        raise ValueError(f"{name} does not take {', '.join(unknown)}; its arguments here: {', '.join(values)}")
    values.update(arguments)
    window_norm = bool(values.pop("window_norm"))
    from neuralforecast.losses.pytorch import MSE

    cls = nf_class(name)
    sizes = {"h": horizon, "input_size": input_size}
    if BASELINES[name].multivariate:
        sizes["n_series"] = n_series
    quiet = logging.getLogger("lightning_fabric.utilities.seed")  # "Seed set to ..." on every build
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        network = cls(**sizes, **values, loss=MSE(), valid_loss=MSE(), scaler_type="identity", random_seed=seed)
    finally:
        quiet.setLevel(level)
    return NeuralForecastBaseline(network, multivariate=BASELINES[name].multivariate, window_norm=window_norm)
