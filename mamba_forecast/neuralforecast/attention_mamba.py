"""AttentionMamba for NeuralForecast."""

from __future__ import annotations

from typing import Optional

from neuralforecast.losses.pytorch import MAE

from .. import models as core
from ._base import MambaForecaster, core_defaults, model_arguments


class AttentionMamba(MambaForecaster):
    """AttentionMamba

    Attention Mamba: S-Mamba's variate tokens and bidirectional Mamba, with the Mamba output gated by an
    attention map computed from queries and keys adaptively pooled (average plus max) to a fixed
    `d_model/4 x d_model/4` score matrix, so its cost is linear in the number of series. One of its
    layers is sized by the number of tokens (series plus exogenous columns), so the model is built at the
    first `fit` unless `n_series` is given. Multivariate: all series are forecast together, so they must share
    their timestamps.

    Args:
        {leading_args}
        d_model (int): token width, a multiple of 4. Default 512 (the official ECL setting).
        d_ff (int): feed-forward width parameter; in the official variant the FFN is `4 * d_ff` wide and the
            scores are scaled by `1 / (4 * d_ff)` (the official scripts use `d_ff == d_model`).
        e_layers (int): number of encoder layers (1 in every official script).
        d_state (int): Mamba state size (64 in the official scripts).
        d_conv (int): Mamba causal convolution width of the forward scan, 2 to 4.
        expand (int): Mamba inner expansion factor.
        variant (str): "official" (the computation of the authors' code) or "paper" (the paper's equations:
            `1/sqrt(d_model/4)` score scale, FFN of width `d_ff` with dropout, both scans with `d_conv`).
        dropout (float): dropout of the embedding (and, in the paper variant, of the FFN).
        use_norm (bool): per-window instance normalisation of each series (RevIN without affine weights).
        {scan_backend}
        {training_args}

    References:
        - [Sijie Xiong et al. (2025). "Attention Mamba: Time Series Modeling with Adaptive Pooling Acceleration and Receptive Field Enhancements". IEEE SMC 2025.](https://arxiv.org/abs/2504.02013)
        - [Zihan Wang et al. (2024). "Is Mamba Effective for Time Series Forecasting?" Neurocomputing.](https://arxiv.org/abs/2403.11144)
    """

    core_class = core.AttentionMamba
    _default = core_defaults(core.AttentionMamba)

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
        variant: str = _default["variant"],
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
