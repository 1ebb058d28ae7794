"""TSM2 for NeuralForecast."""

from __future__ import annotations

from typing import Optional

from neuralforecast.losses.pytorch import MAE

from .. import models as core
from ._base import MambaForecaster, core_defaults, model_arguments


class TSM2(MambaForecaster):
    """TSM2

    TSM2, the time-series MambaMixer: each series is cut into patches; every block mixes the patches of each
    series with a Mamba scan (time mixer) and the series of each patch with a bidirectional Mamba (variate
    mixer), each fed a learned weighted average of all earlier outputs. Exogenous columns are extra variates.
    Multivariate: all series are forecast together, so they must share their timestamps.

    Args:
        {leading_args}
        d_model (int): patch-token width.
        e_layers (int): number of MambaMixer blocks.
        d_state (int): Mamba state size.
        d_conv (int): Mamba causal convolution width, 2 to 4.
        expand (int): Mamba inner expansion factor.
        patch_len (int): patch length (at most `input_size`).
        stride (int): step between patches.
        dropout (float): dropout of the embedding and of each mixer's output.
        use_norm (bool): per-window instance normalisation of each series (RevIN without affine weights).
        {scan_backend}
        {training_args}

    References:
        - [Ali Behrouz, Michele Santacatterina, Ramin Zabih (2024). "MambaMixer: Efficient Selective State Space Models with Dual Token and Channel Selection".](https://arxiv.org/abs/2403.19888)
    """

    core_class = core.TSM2
    _default = core_defaults(core.TSM2)

    def __init__(
        self,
        h,
        input_size=96,
        n_series=None,
        futr_exog_list=None,
        hist_exog_list=None,
        stat_exog_list=None,
        exclude_insample_y=False,
        d_model: int = _default["d_model"],
        e_layers: int = _default["e_layers"],
        d_state: int = _default["d_state"],
        d_conv: int = _default["d_conv"],
        expand: int = _default["expand"],
        patch_len: int = _default["patch_len"],
        stride: int = _default["stride"],
        dropout: float = _default["dropout"],
        use_norm: bool = _default["use_norm"],
        scan_backend: str = _default["scan_backend"],
        loss=MAE(),
        valid_loss=None,
        max_steps: int = 1000,
        learning_rate: float = 1e-3,
        num_lr_decays: int = -1,
        early_stop_patience_steps: int = -1,
        val_monitor: str = "ptl/val_loss",
        val_check_steps: int = 100,
        batch_size: int = 32,
        valid_batch_size: Optional[int] = None,
        windows_batch_size=32,
        inference_windows_batch_size=32,
        start_padding_enabled=False,
        training_data_availability_threshold=0.0,
        step_size: int = 1,
        scaler_type: str = "standard",
        random_seed: int = 1,
        drop_last_loader: bool = False,
        alias: Optional[str] = None,
        optimizer=None,
        optimizer_kwargs=None,
        lr_scheduler=None,
        lr_scheduler_kwargs=None,
        dataloader_kwargs=None,
        **trainer_kwargs,
    ):
        super().__init__(**model_arguments(locals()))

    del _default
