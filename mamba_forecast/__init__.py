"""mamba-forecast: Mamba (selective state-space) forecasters for NeuralForecast and Darts.

The core (``mamba_forecast.ssm``, ``mamba_forecast.layers``, ``mamba_forecast.models``) needs only torch.
The host adapters live in ``mamba_forecast.neuralforecast`` and ``mamba_forecast.darts`` and import their
host library only when imported themselves.
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
