# Written by tools/host_classes.py from the AttentionMamba spec in mamba_forecast/models/attention_mamba.py. Do
# not edit: change the spec (or the tool's templates) and run `python tools/host_classes.py`;
# tests/test_host_classes.py fails while this file is stale.
"""Darts class of Attention Mamba: ``AttentionMambaModel``."""

from __future__ import annotations

from mamba_forecast.darts._base import _MambaTorchModel
from mamba_forecast.models import get_spec


class AttentionMambaModel(_MambaTorchModel):
    spec = get_spec("AttentionMamba")
    _core_cls = spec.core

    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        d_model: int = 512,
        d_ff: int = 512,
        e_layers: int = 1,
        d_state: int = 64,
        d_conv: int = 2,
        expand: int = 1,
        dropout: float = 0.1,
        use_norm: bool = True,
        scan_backend: str = "auto",
        variant: str = "official",
        use_static_covariates: bool = True,
        **kwargs,
    ) -> None:
        """Attention Mamba: adaptive pooled attention over a bidirectional Mamba, as described in [1]_.

        S-Mamba's variate tokens and bidirectional Mamba, with the Mamba output gated by an attention map computed from
        queries and keys adaptively pooled (average plus max) to a fixed ``d_model/4 x d_model/4`` score matrix; a
        feed-forward network then mixes time inside each token and a linear head maps every series token to its
        forecast. One of its layers is sized by the number of tokens (series plus exogenous series), so the model is
        tied to the number of series it was built for.

        Exogenous series are extra tokens mixed with the series' tokens: a historical one embedded from its look-back, a
        future one from its look-back and horizon joined; static features are appended to each series' look-back before
        the embedding. In Darts terms, past covariates are the historical exogenous series, future covariates the future
        ones (their values over the input and output chunks joined along time) and static covariates the static features
        (covariates shared by all target components are given to each). The model supports past, future and static
        covariates, several target components and several series, and probabilistic forecasts through a Darts
        ``likelihood``.

        Parameters
        ----------
        input_chunk_length
            Number of past time steps fed to the model (the look-back window of every token).
        output_chunk_length
            Number of time steps predicted at once by the model; also the number of future values of the future
            covariates it reads. Forecasts with ``n > output_chunk_length`` are produced auto-regressively.
        output_chunk_shift
            Optionally, the number of steps between the end of the input chunk and the start of the output chunk.
            Forecasts then start ``output_chunk_shift`` steps after the end of the target series, and
            ``n > output_chunk_length`` is not possible. The future covariates of the skipped steps are not used.
        d_model
            Token width, a multiple of 4. Default 512 (the official ECL setting).
        d_ff
            Feed-forward width parameter; in the official variant the FFN is ``4 * d_ff`` wide and the scores are scaled
            by ``1 / (4 * d_ff)`` (the official scripts use ``d_ff == d_model``).
        e_layers
            Number of encoder layers (1 in every official script).
        d_state
            Mamba state size (64 in the official scripts).
        d_conv
            Mamba causal convolution width of the forward scan, 2 to 4.
        expand
            Mamba inner expansion factor.
        dropout
            Dropout of the embedding (and, in the paper variant, of the FFN).
        use_norm
            Per-window instance normalisation of each series (RevIN without affine weights).
        scan_backend
            Selective-scan implementation: "auto" (on a GPU the fused CUDA kernels when ``mamba-ssm`` is installed, else
            Triton when ``triton`` is, else PyTorch; PyTorch on CPU), "cuda", "triton", "torch" or "reference".
        variant
            "official" (the computation of the authors' code) or "paper" (the paper's equations: ``1/sqrt(d_model/4)``
            score scale, FFN of width ``d_ff`` with dropout, both scans with ``d_conv``).
        use_static_covariates
            Whether the model uses the static covariates of the target series, if they have any. If ``True``,
            all target series passed to ``fit()`` and ``predict()`` must have static covariates of the same
            dimensions.
        **kwargs
            Optional arguments of Darts' :class:`TorchForecastingModel`, of the PyTorch Lightning module and of
            its trainer:

        loss_fn
            PyTorch loss used for training when no ``likelihood`` is given. Default: ``torch.nn.MSELoss()``.
        likelihood
            A Darts :class:`TorchLikelihood <darts.utils.likelihood_models.torch.TorchLikelihood>` (e.g.
            ``QuantileRegression``, ``GaussianLikelihood``) for probabilistic forecasts; the model then outputs
            the likelihood's parameters and is trained on its loss. Default: ``None``.
        torch_metrics
            A ``torchmetrics.Metric`` or ``MetricCollection`` evaluated during training and validation.
            Default: ``None``.
        optimizer_cls
            PyTorch optimizer class. Default: ``torch.optim.Adam``.
        optimizer_kwargs
            Keyword arguments of the optimizer, e.g. ``{"lr": 1e-3}``. Default: ``None`` (the optimizer's own
            defaults).
        lr_scheduler_cls
            Optionally, a PyTorch learning-rate scheduler class. Default: ``None`` (constant learning rate).
        lr_scheduler_kwargs
            Keyword arguments of the learning-rate scheduler. Default: ``None``.
        use_reversible_instance_norm
            Whether to apply Darts' reversible instance normalisation ``RINorm`` [3]_ to the target input and
            invert it on the output (covariates are not normalised). ``True`` uses the default settings; a dict
            sets them (``{"affine": bool, "eps": float}``). Default: ``False``.
        batch_size
            Number of samples (input and output windows) per training batch. Default: ``32``.
        n_epochs
            Number of training epochs. Default: ``100``.
        model_name
            Name of the model, used for its checkpoint and log folders. Default: a name made of the creation
            time and the process id, e.g. ``"2024-05-01_10_00_00_torch_model_run_1234"``.
        work_dir
            Folder where checkpoints and logs are written. Default: the current working directory.
        log_tensorboard
            Whether to log the training to TensorBoard under ``"{work_dir}/darts_logs/{model_name}/logs/"``.
            Default: ``False``.
        nr_epochs_val_period
            Number of epochs between two evaluations of the validation loss (when ``fit()`` gets a
            ``val_series``). Default: ``1``.
        force_reset
            Whether to delete the checkpoints of an earlier model with the same name. Default: ``False``.
        save_checkpoints
            Whether to save the untrained model and the checkpoints of training automatically; reload them with
            ``AttentionMambaModel.load_from_checkpoint()``. Models can always be saved by hand with ``save()``.
            Default: ``False``.
        add_encoders
            Covariates generated from the time index (``"cyclic"``, ``"datetime_attribute"``, ``"position"``,
            ``"custom"``, with an optional ``"transformer"`` and ``"tz"``), e.g.
            ``{"cyclic": {"future": ["month"]}, "datetime_attribute": {"past": ["hour"]}}``. See
            :class:`SequentialEncoder <darts.dataprocessing.encoders.SequentialEncoder>`. Default: ``None``.
        random_state
            Seed of the weight initialisation and of sampling at prediction: the same seed gives the same
            forecasts. Default: ``None``.
        pl_trainer_kwargs
            Keyword arguments of the PyTorch Lightning ``Trainer`` used for training and prediction, e.g.
            ``{"accelerator": "gpu", "devices": [0]}`` to train on one GPU, ``{"accelerator": "cpu"}`` to
            stay on the CPU, or ``{"callbacks": [EarlyStopping(monitor="val_loss", patience=5)]}``. A custom
            trainer can also be passed to ``fit()`` and ``predict()``. Default: ``None``.
        show_warnings
            Whether to show the warnings of PyTorch Lightning. Default: ``False``.
        enable_finetuning
            Controls which weights a further ``fit()`` trains: ``True`` all, ``False`` none,
            ``{"unfreeze": [patterns]}`` only the matching parameters, ``{"freeze": [patterns]}`` all but the
            matching ones. Default: ``None``.

        References
        ----------
        .. [1] Sijie Xiong et al. "Attention Mamba: Time Series Modeling with Adaptive Pooling Acceleration and
                Receptive Field Enhancements", IEEE SMC 2025, https://arxiv.org/abs/2504.02013
        .. [2] Zihan Wang et al. "Is Mamba Effective for Time Series Forecasting?", Neurocomputing,
                https://arxiv.org/abs/2403.11144
        .. [3] T. Kim et al. "Reversible Instance Normalization for Accurate Time-Series Forecasting against
                Distribution Shift", ICLR 2022, https://openreview.net/forum?id=cGDAkQo1C0p

        Examples
        --------
        >>> import numpy as np
        >>> from darts.utils.timeseries_generation import datetime_attribute_timeseries, sine_timeseries
        >>> from mamba_forecast.darts import AttentionMambaModel
        >>> # two daily sine waves as the target, the day of the week as a future covariate
        >>> target = sine_timeseries(length=120, value_frequency=1 / 7, start="2024-01-01", column_name="a")
        >>> target = target.stack(sine_timeseries(length=120, value_frequency=1 / 14, start="2024-01-01"))
        >>> future_cov = datetime_attribute_timeseries(target, "weekday", one_hot=False, add_length=7)
        >>> model = AttentionMambaModel(
        ...     input_chunk_length=28,
        ...     output_chunk_length=7,
        ...     d_model=16,
        ...     d_ff=16,
        ...     n_epochs=2,
        ...     random_state=42,
        ...     pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False,
        ...                        "enable_model_summary": False},
        ... )
        >>> model = model.fit(target.astype(np.float32), future_covariates=future_cov.astype(np.float32))
        >>> pred = model.predict(7)
        >>> pred.shape, pred.components.tolist()
        ((7, 2, 1), ['a', 'sine'])
        >>> str(pred.start_time().date())
        '2024-04-30'
        """
        super().__init__()  # splits `model_params` (recorded by Darts) between Darts' model and module
        self._init_architecture()
