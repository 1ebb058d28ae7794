"""Settings every test shares: one torch thread, quiet Lightning, no warning noise."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from mamba_forecast.models import get_spec, model_names

# The models under test: every registered model spec (a model registered in its core file joins every test
# parametrised over MODEL_NAMES).
MODEL_NAMES = model_names()


def small_arguments(name: str, width: int = 16, d_state: int = 4, e_layers: int = 1) -> dict:
    """Small sizes for registered model ``name``: the usual size arguments, those it takes."""
    sizes = {"d_model": width, "d_ff": width, "e_layers": e_layers, "d_state": d_state}
    return {k: v for k, v in sizes.items() if k in get_spec(name).arguments}


# Trainer switches every host-library test uses: CPU, no progress bar, no logger, no model summary.
QUIET = dict(enable_progress_bar=False, logger=False, enable_model_summary=False, accelerator="cpu")

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")


@pytest.fixture(autouse=True, scope="session")
def _one_thread_quiet():
    # The models under test are tiny and CI has two shared cores: extra intra-op threads only contend there
    # (10 to 100 times slower under load). Subprocesses the tests start get OMP_NUM_THREADS=1 themselves.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(threads)
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


# ----------------------------------------------------------------------------------------------------
# probabilistic forecasts: quantiles must never cross


def _quantile_of(suffix: str) -> float | None:
    """The quantile a NeuralForecast output column suffix stands for (``-lo-80`` -> 0.1, ``_ql0.3`` -> 0.3)."""
    import re

    if suffix == "-median":
        return 0.5
    match = re.fullmatch(r"-(lo|hi)-(\d+(?:\.\d+)?)", suffix)
    if match:
        level = float(match.group(2)) / 100
        return (1 - level) / 2 if match.group(1) == "lo" else (1 + level) / 2
    match = re.fullmatch(r"_ql(\d*\.?\d+)", suffix)
    return float(match.group(1)) if match else None


def count_quantile_crossings(forecast, model: str) -> int:
    """Rows of a NeuralForecast forecast (``predict`` or ``cross_validation``) whose quantile columns of
    ``model`` are not in increasing order of their quantile (``-lo-90 <= -lo-80 <= -median <= -hi-80 ...``)."""
    import numpy as np

    columns = {}
    for column in forecast.columns:
        if str(column).startswith(model):
            q = _quantile_of(str(column)[len(model):])
            if q is not None:
                columns[q] = column
    assert len(columns) >= 2, f"no quantile columns of {model} in {list(forecast.columns)}"
    values = forecast[[columns[q] for q in sorted(columns)]].to_numpy(dtype=float)
    return int((np.diff(values, axis=1) < 0).any(axis=1).sum())


def count_darts_quantile_crossings(series) -> int:
    """Time steps of a Darts forecast of quantile likelihood parameters (``predict_likelihood_parameters=True``,
    components ``<name>_q0.10`` ...) whose quantiles of some target component decrease."""
    import re

    import numpy as np

    groups: dict[str, list[tuple[float, int]]] = {}
    for j, name in enumerate(series.components):
        match = re.fullmatch(r"(.*)_q(\d*\.?\d+)", str(name))
        assert match, f"{name} is not a quantile component"
        groups.setdefault(match.group(1), []).append((float(match.group(2)), j))
    values = series.all_values(copy=False)[:, :, 0]
    bad = np.zeros(len(values), dtype=bool)
    for members in groups.values():
        ordered = values[:, [j for _, j in sorted(members)]]
        bad |= (np.diff(ordered, axis=1) < 0).any(axis=1)
    return int(bad.sum())
