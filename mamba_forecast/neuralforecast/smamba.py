"""SMamba for NeuralForecast."""

from __future__ import annotations

from typing import Optional

from neuralforecast.losses.pytorch import MAE

from .. import models as core
from ._base import MambaForecaster, core_defaults, model_arguments


class SMamba(MambaForecaster):
    """SMamba

    S-Mamba: each series' look-back window becomes one token; every encoder layer mixes the tokens with a
    bidirectional Mamba (one scan in series order, one in reverse) and then time inside each token with a
    feed-forward network. Exogenous columns are extra tokens. Multivariate: all series are forecast together,
    so they must share their timestamps.

    Args:
        {leading_args}
        d_model (int): token width. Default 256 (the official ETTh1 setting; 512 for larger panels).
        d_ff (int): hidden width of the feed-forward network (equal to `d_model` in the official scripts).
        e_layers (int): number of encoder layers.
        d_state (int): Mamba state size (2 for ETT/Weather, 16 or 32 elsewhere in the official scripts).
        d_conv (int): Mamba causal convolution width, 2 to 4.
        expand (int): Mamba inner expansion factor.
        dropout (float): dropout of the embedding and the feed-forward network.
        use_norm (bool): per-window instance normalisation of each series (RevIN without affine weights).
        {scan_backend}
        {training_args}

    References:
        - [Zihan Wang et al. (2024). "Is Mamba Effective for Time Series Forecasting?" Neurocomputing.](https://arxiv.org/abs/2403.11144)
        - [Albert Gu, Tri Dao (2023). "Mamba: Linear-Time Sequence Modeling with Selective State Spaces".](https://arxiv.org/abs/2312.00752)
    """

    core_class = core.SMamba
    _default = core_defaults(core.SMamba)

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
        d_ff: int = _default["d_ff"],
        e_layers: int = _default["e_layers"],
        d_state: int = _default["d_state"],
        d_conv: int = _default["d_conv"],
        expand: int = _default["expand"],
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
