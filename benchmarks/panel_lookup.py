"""What finding a panel's timestamps costs a NeuralForecast fit (``neuralforecast/_compat.panel_index``).

Times ``panel_index`` as a model's ``fit`` calls it inside ``NeuralForecast.fit`` (the lookup alone, and one
whole fit of a tiny model), with the interpreter's usual heap and with ``--extra`` million more live objects
(a notebook holding data frames, a Ray or Spark driver). Run it on two checkouts to compare lookups.

    python benchmarks/panel_lookup.py --extra 0 3
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=float, nargs="+", default=[0, 3], help="million extra live objects")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import torch
    from neuralforecast import NeuralForecast

    import mamba_forecast.neuralforecast._base as base
    from mamba_forecast.neuralforecast import SMamba

    torch.set_num_threads(1)
    lookups: list[float] = []
    real = base.panel_index

    def timed(dataset):
        t0 = time.perf_counter()
        found = real(dataset)
        lookups.append(time.perf_counter() - t0)
        assert found is not None, "the lookup found no timestamps"
        return found

    base.panel_index = timed
    ds = pd.date_range("2024-01-01", periods=400, freq="h")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"unique_id": np.repeat(["a", "b", "c"], len(ds)), "ds": np.tile(ds, 3), "y": rng.normal(size=3 * len(ds))}
    )
    quiet = dict(enable_progress_bar=False, enable_model_summary=False, logger=False, accelerator="cpu")
    keep = []
    for extra in args.extra:
        keep[:] = [[i] for i in range(int(extra * 1e6))]
        fits = []
        lookups.clear()
        for _ in range(args.repeat):
            model = SMamba(h=24, input_size=48, d_model=8, d_ff=8, d_state=4, e_layers=1, max_steps=1, **quiet)
            t0 = time.perf_counter()
            NeuralForecast(models=[model], freq="h").fit(df)
            fits.append(time.perf_counter() - t0)
        print(
            f"{len(gc.get_objects()) / 1e6:.1f} M live objects: lookup median {statistics.median(lookups) * 1e3:.2f} ms"
            f", fit median {statistics.median(fits) * 1e3:.0f} ms ({args.repeat} fits)",
            flush=True,
        )


if __name__ == "__main__":
    main()
