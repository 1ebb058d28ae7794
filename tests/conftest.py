"""Settings every test shares: one torch thread, quiet Lightning, no warning noise."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

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
