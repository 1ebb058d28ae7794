"""The forecasters as plain PyTorch modules (torch only; no host library is imported)."""

from .base import Forecaster, InvertedForecaster
from .smamba import SMamba

__all__ = ["Forecaster", "InvertedForecaster", "SMamba"]
