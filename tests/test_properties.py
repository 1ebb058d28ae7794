"""Property-based tests of the core models (every registered one) over random shapes and hyperparameters.

For any valid configuration: the forecast is finite and ``[B, h, N]`` (``[B, h, N, n_outputs]`` when
``n_outputs > 1``), and in eval mode every sample is forecast on its own: permuting the batch permutes the
output, and forecasting the batch in two parts gives the same numbers as all at once.
"""

from __future__ import annotations

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import MODEL_NAMES  # noqa: E402
from mamba_forecast.models import TSM2, AttentionMamba, FMamba, get_spec  # noqa: E402
from mamba_forecast.models.spec import ADAPTER_ARGS, architecture_arguments  # noqa: E402

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def configurations(draw, cls):
    """(model class, constructor kwargs, batch size) for one valid random configuration of ``cls``."""
    input_size = draw(st.integers(2, 24))
    kwargs = dict(
        input_size=input_size,
        h=draw(st.integers(1, 12)),
        n_series=draw(st.integers(1, 5)),
        e_layers=draw(st.integers(1, 2)),
        d_state=draw(st.integers(1, 8)),
        d_conv=draw(st.integers(2, 4)),
        expand=draw(st.integers(1, 2)),
        dropout=draw(st.sampled_from([0.0, 0.1, 0.5])),
        use_norm=draw(st.booleans()),
        n_outputs=draw(st.sampled_from([1, 1, 3])),
        hist_exog_size=draw(st.integers(0, 2)),
        futr_exog_size=draw(st.integers(0, 2)),
        stat_exog_size=draw(st.integers(0, 2)),
    )
    if cls is AttentionMamba:
        kwargs["d_model"] = 4 * draw(st.integers(1, 6))
        kwargs["variant"] = draw(st.sampled_from(["official", "paper"]))
    elif cls is FMamba:
        n_heads = draw(st.integers(1, 3))
        kwargs["n_heads"] = n_heads
        kwargs["d_model"] = n_heads * draw(st.integers(2, 8))
        kwargs["kernel"] = draw(st.sampled_from(["gaussian", "performer"]))
        if kwargs["kernel"] == "performer" and draw(st.booleans()):
            kwargs["n_features"] = draw(st.integers(1, 16))
    else:
        kwargs["d_model"] = draw(st.integers(1, 24))
    if cls is TSM2:
        kwargs["patch_len"] = draw(st.integers(1, input_size))
        kwargs["stride"] = draw(st.integers(1, 8))
    else:
        kwargs["d_ff"] = draw(st.integers(1, 24))
    batch = draw(st.integers(2, 6))
    accepted = ADAPTER_ARGS | set(architecture_arguments(cls))  # a registered model without some of these
    return {k: v for k, v in kwargs.items() if k in accepted}, batch


def inputs(kwargs, batch, seed):
    g = torch.Generator().manual_seed(seed)
    L, h, n = kwargs["input_size"], kwargs["h"], kwargs["n_series"]
    x = 5.0 + 3.0 * torch.randn(batch, L, n, generator=g)  # away from zero mean, unit scale
    hist = torch.randn(batch, L, kwargs["hist_exog_size"], generator=g) if kwargs["hist_exog_size"] else None
    futr = torch.randn(batch, L + h, kwargs["futr_exog_size"], generator=g) if kwargs["futr_exog_size"] else None
    stat = torch.randn(batch, n, kwargs["stat_exog_size"], generator=g) if kwargs["stat_exog_size"] else None
    return x, hist, futr, stat


def take(tensors, index):
    return tuple(None if t is None else t[index] for t in tensors)


@pytest.mark.parametrize("cls", [get_spec(name).core for name in MODEL_NAMES], ids=lambda c: c.__name__)
def test_finite_shaped_and_batch_independent(cls):
    @SETTINGS
    @given(config=configurations(cls), seed=st.integers(0, 2**16))
    def check(config, seed):
        kwargs, batch = config
        torch.manual_seed(seed)
        model = cls(**kwargs)
        args = inputs(kwargs, batch, seed)

        expected = (batch, kwargs["h"], kwargs["n_series"]) + (
            (kwargs["n_outputs"],) if kwargs["n_outputs"] > 1 else ()
        )
        model.train()
        out_train = model(*args)
        assert out_train.shape == expected
        assert torch.isfinite(out_train).all()

        model.eval()
        with torch.no_grad():
            out = model(*args)
            assert out.shape == expected and torch.isfinite(out).all()
            # permuting the batch permutes the forecasts
            perm = torch.randperm(batch, generator=torch.Generator().manual_seed(seed))
            torch.testing.assert_close(model(*take(args, perm)), out[perm], rtol=1e-4, atol=1e-4)
            # two parts give what the whole batch gives
            k = 1 + seed % (batch - 1)
            parts = torch.cat([model(*take(args, slice(0, k))), model(*take(args, slice(k, None)))])
            torch.testing.assert_close(parts, out, rtol=1e-4, atol=1e-4)
            # eval mode is deterministic (dropout off)
            torch.testing.assert_close(model(*args), out, rtol=0, atol=0)

    check()
