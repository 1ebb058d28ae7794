"""The forecasters as plain PyTorch modules (torch only; no host library is imported)."""

from .attention_mamba import AttentionMamba
from .base import Forecaster, InvertedForecaster
from .fmamba import FMamba
from .smamba import SMamba
from .tsm2 import TSM2

__all__ = ["AttentionMamba", "FMamba", "Forecaster", "InvertedForecaster", "SMamba", "TSM2"]
