"""The standard long-horizon benchmark: protocol, presets, training loop, runner and report.

Imports torch, numpy and pandas only (matplotlib only when figures are drawn, NeuralForecast only for
``via="neuralforecast"``).
"""

from .presets import Preset, get_preset, known_models
from .protocol import ProtocolData, prepare, time_features, window_batches
from .runner import COLUMNS, Cell, read_results, run_cell, run_cells
from .train import EarlyStopping, fit_and_test, type1_lr

__all__ = [
    "COLUMNS",
    "Cell",
    "EarlyStopping",
    "Preset",
    "ProtocolData",
    "fit_and_test",
    "get_preset",
    "known_models",
    "prepare",
    "read_results",
    "run_cell",
    "run_cells",
    "time_features",
    "type1_lr",
    "window_batches",
]
