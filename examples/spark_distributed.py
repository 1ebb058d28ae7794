"""Train SMamba with NeuralForecast's distributed fit on Spark, then forecast locally and on Spark.

    python examples/spark_distributed.py                        # a few minutes on a 2-core CPU
    MAMBA_FORECAST_FAST=1 python examples/spark_distributed.py  # tiny model, short data (still 1-3 minutes:
                                                                # Spark and two training processes start up)

Needs `pip install pyspark` and a Java runtime (Spark 4 needs Java 17 or newer). Spark runs in local mode here
(`local[2]`); on a cluster, use your cluster's SparkSession and a `partitions_path` every node can read (e.g.
s3:// or dbfs:/).

What happens in `nf.fit(spark_df, distributed_config=DistributedConfig(...))`:

* NeuralForecast writes the Spark DataFrame as `num_nodes * devices` parquet partitions, split by series
  (`repartitionByRange` on `unique_id`), and starts one training process per partition with Spark's
  `TorchDistributor` (Lightning's DDP, gloo on CPU).
* Each process reads **only its own partition**: a multivariate model sees a sub-panel there (here 7 series
  -> about 4 and 3). SMamba, FMamba and TSM2 are not sized by the number of series, so they train on such
  sub-panels with shared weights; AttentionMamba, and any model with `hist_exog_list`/`futr_exog_list`, is
  refused before training. Cross-series mixing happens within a partition only.
* The trained model comes back to the driver. `nf.predict(df=pandas_df)` forecasts the whole panel locally;
  `nf.predict(df=spark_df)` forecasts each partition on Spark and returns a Spark DataFrame.

Data: the ETTh1 copy bundled with mamba-forecast (ETDataset, Zhou et al., AAAI 2021; CC BY-ND 4.0).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings

import numpy as np
import pandas as pd
from neuralforecast import DistributedConfig, NeuralForecast

from mamba_forecast.datasets import load_demo_data, to_long
from mamba_forecast.neuralforecast import SMamba

# Print only this script's own lines: the trainer switches (enable_progress_bar, enable_model_summary, logger)
# turn off the progress bar, the model summary and the log files; Lightning's "Seed set", "GPU available" and
# "max_steps reached" lines are INFO logs; three warnings (a Lightning deprecation under torch 2.13, pin_memory
# without a GPU, an empty validation list) say nothing about the forecasts.
for _logger in ("pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=r".*(LeafSpec|pin_memory|Total length of)")

FAST = os.environ.get("MAMBA_FORECAST_FAST") == "1"
H = 24
if FAST:
    HISTORY, SIZE = 24 * 6, dict(input_size=2 * H, d_model=16, d_ff=16, e_layers=1, d_state=4, max_steps=3)
else:
    HISTORY, SIZE = 24 * 7 * 12, dict(input_size=4 * H, max_steps=300)
TRAINER = dict(accelerator="cpu", enable_progress_bar=False, logger=False, enable_model_summary=False)


def spark_session():
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("mamba-forecast-distributed")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main() -> pd.DataFrame:
    df = to_long(load_demo_data()).groupby("unique_id").tail(HISTORY + H).reset_index(drop=True)
    train, test = df.groupby("unique_id").head(HISTORY), df.groupby("unique_id").tail(H)

    spark = spark_session()
    spark_train = spark.createDataFrame(train)
    # No n_series: on Spark each training process sees only the series of its partition.
    nf = NeuralForecast(models=[SMamba(h=H, **SIZE, val_check_steps=SIZE["max_steps"], **TRAINER)], freq="h")
    with tempfile.TemporaryDirectory() as tmp:
        config = DistributedConfig(partitions_path=os.path.join(tmp, "partitions"), num_nodes=1, devices=2)
        nf.fit(spark_train, distributed_config=config)

        local = nf.predict(df=train)  # the whole panel, on the driver
        on_spark = nf.predict(df=spark_train).toPandas()  # one partition per Spark task
    forecast = local.merge(test, on=["unique_id", "ds"])
    both = local.merge(on_spark, on=["unique_id", "ds"], suffixes=("", "_spark"))
    print(
        f"{local['unique_id'].nunique()} series forecast locally, {on_spark['unique_id'].nunique()} on Spark; "
        f"largest local/Spark difference {np.max(np.abs(both['SMamba'] - both['SMamba_spark'])):.3g}"
    )
    print(f"held-out day: MAE {np.mean(np.abs(forecast['SMamba'] - forecast['y'])):.3f}")
    return forecast


if __name__ == "__main__":
    main()
