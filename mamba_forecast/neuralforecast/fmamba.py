# Written by tools/host_classes.py from the FMamba spec in mamba_forecast/models/fmamba.py. Do not edit: change
# the spec (or the tool's templates) and run `python tools/host_classes.py`; tests/test_host_classes.py fails
# while this file is stale.
"""NeuralForecast classes of FMamba: ``FMamba`` and ``AutoFMamba``."""

from __future__ import annotations

from neuralforecast.losses.pytorch import MAE

from mamba_forecast.models import get_spec
from mamba_forecast.neuralforecast._base import MambaForecaster, model_arguments
from mamba_forecast.neuralforecast.auto import MambaAuto, ray_search_space


class FMamba(MambaForecaster):
    """FMamba

    FMamba: fast attention across variates followed by Mamba. Variate tokens (an MLP embedding of each series'
    look-back plus a position encoding over the tokens), then in every layer fast attention across the tokens
    (linear in the number of series), a Mamba scan over the tokens and an MLP block; a linear head maps every series
    token to its forecast. No official code was available; this is the package's reconstruction of the published
    pipeline (see the model card). Exogenous series are extra tokens mixed with the series' tokens: a historical one
    embedded from its look-back, a future one from its look-back and horizon joined; static features are appended to
    each series' look-back before the embedding. Multivariate: all series are forecast together, so they must share
    their timestamps. Model card: `docs/models/fmamba.md`.

    Args:
        h (int): forecast horizon.
        input_size (int): autoregressive input size (look-back window), y=[1,2,3,4] input_size=2 -> y_[t-2:t]=[1,2].
        n_series (int, optional): number of time series. Optional: when None it is read from the data at `fit`
            (all series go into every batch). Set it only to fix the number of series in advance (Darts'
            `NeuralForecastModel` does); `fit` and `predict` then refuse data with a different number.
        futr_exog_list (str list, optional): future exogenous columns, known over the horizon. Each column of
            each series becomes one extra token embedded from its `input_size + h` values.
        hist_exog_list (str list, optional): historical exogenous columns. Each column of each series becomes
            one extra token embedded from its `input_size` past values.
        stat_exog_list (str list, optional): static exogenous columns (from `static_df`), appended to each
            series' look-back before the embedding.
        exclude_insample_y (bool): if True the model does not see the past target values, only the exogenous
            inputs; the core's instance normalisation (`use_norm`) is then turned off, since there is no
            look-back to normalise by. NeuralForecast's window scaler (`scaler_type`, "standard" by default)
            still scales each window by its look-back's mean and deviation: pass `scaler_type="identity"` too
            for forecasts that do not depend on past target values at all.
        d_model (int): token width.
        d_ff (int): hidden width of the MLP block.
        e_layers (int): number of layers.
        d_state (int): Mamba state size.
        d_conv (int): Mamba causal convolution width, 2 to 4.
        expand (int): Mamba inner expansion factor.
        n_heads (int): fast-attention heads (must divide `d_model`).
        kernel (str): fast-attention kernel: "gaussian" (the paper's `exp(-x^2/2)` feature map) or "performer" (FAVOR+
            random features approximating softmax attention).
        n_features (int, optional): random features per head for `kernel="performer"` (default None: the head width).
        position (str): "tokens" (a sinusoidal position encoding over the token index) or "none".
        dropout (float): dropout of the embedding, the attention output and the MLP block.
        use_norm (bool): per-window instance normalisation of each series (RevIN without affine weights).
        scan_backend (str): selective-scan implementation: "auto" (on a GPU the fused CUDA kernels when `mamba-ssm` is
            installed, else Triton when `triton` is, else PyTorch; PyTorch on CPU), "cuda", "triton", "torch" or
            "reference".
        loss (PyTorch module): instantiated train loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
            Point losses, `MQLoss`/`HuberMQLoss`, `IQLoss` and `DistributionLoss` are supported; the head is
            sized by `loss.outputsize_multiplier`.
        valid_loss (PyTorch module): instantiated valid loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        max_steps (int): maximum number of training steps.
        learning_rate (float): learning rate between (0, 1).
        num_lr_decays (int): number of learning rate decays, evenly distributed across max_steps.
        early_stop_patience_steps (int): number of validation iterations before early stopping.
        val_monitor (str): metric to monitor for early stopping. Valid options: "ptl/val_loss", "valid_loss",
            "train_loss". Default: "ptl/val_loss".
        val_check_steps (int): number of training steps between every validation loss check.
        batch_size (int): number of different series in each batch; raised to the number of series, since a
            multivariate model sees all series together.
        valid_batch_size (int): number of different series in each validation and test batch, if None uses
            batch_size; raised to the number of series as well.
        windows_batch_size (int): number of windows to sample in each training batch.
        inference_windows_batch_size (int): number of windows to sample in each inference batch, -1 uses all.
        start_padding_enabled (bool): if True, the model will pad the time series with zeros at the beginning,
            by input size.
        training_data_availability_threshold (Union[float, List[float]]): minimum fraction of valid data points
            required for training windows. Single float applies to both insample and outsample; list of two
            floats specifies [insample_fraction, outsample_fraction]. Default 0.0.
        step_size (int): step size between each window of temporal data.
        scaler_type (str): type of scaler for temporal inputs normalization see [temporal scalers](https://github.com/Nixtla/neuralforecast/blob/main/neuralforecast/common/_scalers.py).
            Default "standard" (NeuralForecast's own models default to "identity"): each window of each series is
            standardised before the loss, so series of very different scales weigh alike in training; with
            "identity" a point loss is computed on the raw scale and the largest series dominates.
        random_seed (int): random seed for the pytorch initializer (also of layers built lazily at `fit`) and
            the numpy generators.
        drop_last_loader (bool): if True `TimeSeriesDataLoader` drops last non-full batch.
        alias (str): optional, custom name of the model.
        optimizer (Subclass of 'torch.optim.Optimizer'): optional, user specified optimizer instead of the
            default choice (Adam).
        optimizer_kwargs (dict): optional, list of parameters used by the user specified `optimizer`.
        lr_scheduler (Subclass of 'torch.optim.lr_scheduler.LRScheduler'): optional, user specified
            lr_scheduler instead of the default choice (StepLR).
        lr_scheduler_kwargs (dict): optional, list of parameters used by the user specified `lr_scheduler`.
        dataloader_kwargs (dict): optional, list of parameters passed into the PyTorch Lightning dataloader by
            the `TimeSeriesDataLoader`.
        **trainer_kwargs (int): keyword trainer arguments inherited from [PyTorch Lightning's trainer](https://pytorch-lightning.readthedocs.io/en/stable/api/pytorch_lightning.trainer.trainer.Trainer.html?highlight=trainer).
            Device choice goes here: `accelerator="cpu"` or `"gpu"`, `devices=1`. When CUDA is available and
            these are not given, NeuralForecast trains on the GPU with `devices=-1`, i.e. on every visible GPU
            (the windows, not the series, are split across them); pass `devices=1` (or `devices=[k]`) to use a
            single GPU. On a GPU the fused selective-scan kernels of `mamba-ssm` are used when installed
            (`scan_backend="auto"`), else the Triton scan when `triton` is installed; otherwise (and on CPU)
            the pure PyTorch scan runs.

    References:
        - [Shusen Ma, Yu Kang, Peng Bai, Yun-Bo Zhao (2024). "FMamba: Mamba based on Fast-attention for Multivariate
          Time-series Forecasting".](https://arxiv.org/abs/2407.14814)
        - [Krzysztof Choromanski et al. (2021). "Rethinking Attention with Performers".
          ICLR.](https://arxiv.org/abs/2009.14794)
    """

    spec = get_spec("FMamba")
    core_class = spec.core

    def __init__(
        self,
        h,
        input_size=96,
        n_series=None,
        futr_exog_list=None,
        hist_exog_list=None,
        stat_exog_list=None,
        exclude_insample_y=False,
        d_model: int = 256,
        d_ff: int = 256,
        e_layers: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        n_heads: int = 1,
        kernel: str = "gaussian",
        n_features: int | None = None,
        position: str = "tokens",
        dropout: float = 0.1,
        use_norm: bool = True,
        scan_backend: str = "auto",
        loss=MAE(),
        valid_loss=None,
        max_steps: int = 1000,
        learning_rate: float = 0.0001,
        num_lr_decays: int = -1,
        early_stop_patience_steps: int = -1,
        val_monitor: str = "ptl/val_loss",
        val_check_steps: int = 100,
        batch_size: int = 32,
        valid_batch_size: int | None = None,
        windows_batch_size=32,
        inference_windows_batch_size=32,
        start_padding_enabled=False,
        training_data_availability_threshold=0.0,
        step_size: int = 1,
        scaler_type: str = "standard",
        random_seed: int = 1,
        drop_last_loader: bool = False,
        alias: str | None = None,
        optimizer=None,
        optimizer_kwargs=None,
        lr_scheduler=None,
        lr_scheduler_kwargs=None,
        dataloader_kwargs=None,
        **trainer_kwargs,
    ):
        super().__init__(**model_arguments(locals()))


class AutoFMamba(MambaAuto):
    """AutoFMamba

    Hyperparameter search for `FMamba`: token width (with the MLP width equal to it), depth, Mamba state size,
    fast-attention kernel, and the shared training settings.

    Args:
        h (int): forecast horizon.
        n_series (int, optional): number of time series. Not needed: the models read it from the data at `fit`.
            When given, it is fixed in the search space.
        loss (PyTorch module): instantiated train loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        valid_loss (PyTorch module): instantiated valid loss class from [losses collection](https://nixtlaverse.nixtla.io/neuralforecast/losses.pytorch.html).
        config (dict or callable): search space: a dict of Ray Tune domains (`backend="ray"`) or a function of
            an Optuna trial returning a dict (`backend="optuna"`). None uses `get_default_config(h, backend)`.
            It must not hold `h`, `loss` or `valid_loss`. Device settings (`accelerator`, `devices`) go here too.
        search_alg (ray.tune.search variant or optuna.sampler): for Ray see https://docs.ray.io/en/latest/tune/api_docs/suggestion.html,
            for Optuna see https://optuna.readthedocs.io/en/stable/reference/samplers/index.html.
        num_samples (int): number of configurations tried.
        time_budget (int, optional): time budget of the search in seconds.
        refit_with_val (bool): whether the refit of the best configuration keeps the validation split.
        cpus (int): no longer supported by NeuralForecast 3.2+; use `ray_options=RayOptions(cpus=...)`.
        gpus (int): no longer supported by NeuralForecast 3.2+; use `ray_options=RayOptions(gpus=...)`.
        verbose (bool): print the progress of the search.
        alias (str, optional): custom name of the model.
        backend (str): "ray" or "optuna".
        callbacks (list of callable, optional): functions called during the search (Ray or Optuna callbacks).
        ray_options (RayOptions, optional): Ray-only options (`run_config`, `scheduler`, `cpus`, `gpus`).
            `cpus`/`gpus` are per trial: Ray runs as many trials at once as the cluster has room for (call
            `ray.init(...)` first; unset, `cpus` is every core of the machine, i.e. one trial at a time).
        optuna_options (OptunaOptions, optional): Optuna-only options (`study_kwargs`, `create_study_kwargs`).
            `study_kwargs={"n_jobs": 2}` runs two trials at a time in threads of this process.
    """

    model_class = FMamba
    default_config = ray_search_space(FMamba.spec)
    derived = dict(FMamba.spec.derived)
