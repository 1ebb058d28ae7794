"""FMamba for NeuralForecast."""

from __future__ import annotations

from typing import Optional

from neuralforecast.losses.pytorch import MAE

from .. import models as core
from ._base import MambaForecaster, core_defaults, model_arguments


class FMamba(MambaForecaster):
    """FMamba

    FMamba: variate tokens (an MLP embedding of each series' look-back plus a position encoding over the
    tokens), then in every layer fast attention across the tokens (linear in the number of series), a Mamba
    scan over the tokens and an MLP block. No official code was available; this is the package's
    reconstruction of the published pipeline (see the model card). Multivariate: all series are forecast
    together, so they must share their timestamps.

    Args:
        {leading_args}
        d_model (int): token width.
        d_ff (int): hidden width of the MLP block.
        e_layers (int): number of layers.
        d_state (int): Mamba state size.
        d_conv (int): Mamba causal convolution width, 2 to 4.
        expand (int): Mamba inner expansion factor.
        n_heads (int): fast-attention heads (must divide `d_model`).
        kernel (str): fast-attention kernel: "gaussian" (the paper's `exp(-x^2/2)` feature map) or
            "performer" (FAVOR+ random features approximating softmax attention).
        n_features (int, optional): random features per head for `kernel="performer"` (default: the head
            width).
        position (str): "tokens" (a sinusoidal position encoding over the token index) or "none".
        dropout (float): dropout of the embedding, the attention output and the MLP block.
        use_norm (bool): per-window instance normalisation of each series (RevIN without affine weights).
        {scan_backend}
        {training_args}

    References:
        - [Shusen Ma, Yu Kang, Peng Bai, Yun-Bo Zhao (2024). "FMamba: Mamba based on Fast-attention for Multivariate Time-series Forecasting".](https://arxiv.org/abs/2407.14814)
        - [Krzysztof Choromanski et al. (2021). "Rethinking Attention with Performers". ICLR.](https://arxiv.org/abs/2009.14794)
    """

    core_class = core.FMamba
    _default = core_defaults(core.FMamba)

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
        n_heads: int = _default["n_heads"],
        kernel: str = _default["kernel"],
        n_features: Optional[int] = _default["n_features"],
        position: str = _default["position"],
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
