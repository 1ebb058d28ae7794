"""The Mamba (S6) layer: one selective scan with several backends, and the Mamba / BiMamba blocks."""

from .mamba import BiMamba, Mamba
from .scan import (
    BACKENDS,
    cuda_scan_available,
    resolve_backend,
    selective_scan,
    selective_scan_reference,
    triton_scan_available,
)

__all__ = [
    "BACKENDS",
    "BiMamba",
    "Mamba",
    "cuda_scan_available",
    "resolve_backend",
    "selective_scan",
    "selective_scan_reference",
    "triton_scan_available",
]
