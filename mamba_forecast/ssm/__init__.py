"""The Mamba (S6) layer: one selective scan with several backends, and the Mamba / BiMamba blocks."""

from .cpu_threads import cpu_scan_threading, set_cpu_scan_threading
from .mamba import BiMamba, Mamba
from .reference import selective_scan_reference
from .scan import (
    BACKENDS,
    cuda_scan_available,
    resolve_backend,
    selective_scan,
    set_default_scan_backend,
    triton_scan_available,
)

__all__ = [
    "BACKENDS",
    "BiMamba",
    "Mamba",
    "cpu_scan_threading",
    "cuda_scan_available",
    "resolve_backend",
    "selective_scan",
    "selective_scan_reference",
    "set_cpu_scan_threading",
    "set_default_scan_backend",
    "triton_scan_available",
]
