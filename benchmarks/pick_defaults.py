"""Write each model's default entry (for datasets it was not tuned on) into the shipped tuned table.

    python benchmarks/pick_defaults.py [--trials-log results/tuning_trials.csv]
                                       [--presets-file mamba_forecast/bench/tuned_presets.json]

The default is chosen on validation only (``mamba_forecast.bench.tune.choose_default``): among the settings the
searches of the trial log completed on the most datasets, the one closest to each dataset's best. It is written
for the protocol its searches ran under and, until searches under the converge protocol exist, for converge too,
without the schedule (the converge protocol's own applies) and saying where it came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mamba_forecast.bench.presets import DEFAULT, TUNED_PRESETS_FILE, read_tuned  # noqa: E402
from mamba_forecast.bench.tune import choose_default, write_tuned  # noqa: E402
from mamba_forecast.models import model_names  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-log", default=str(ROOT / "results" / "tuning_trials.csv"))
    parser.add_argument("--presets-file", default=str(TUNED_PRESETS_FILE))
    args = parser.parse_args(argv)
    table = read_tuned(args.presets_file)
    for model in model_names():
        for protocol in ("official", "converge"):
            entry = choose_default(args.trials_log, model, protocol=protocol)
            if entry is None and protocol == "converge":
                searched = [e for e in table.get(model, {}).get(DEFAULT, []) if e["protocol"] == "official"]
                if not searched:
                    continue
                official = searched[0]
                settings = {k: v for k, v in official["settings"].items() if k != "lradj"}
                entry = {
                    **official,
                    "settings": settings,
                    "protocol": "converge",
                    "source": official["source"].replace(
                        "official protocol", "from official-protocol searches, with the converge protocol's schedule"
                    ),
                }
            if entry is None:
                print(f"{model} {protocol}: too few datasets searched; no default")
                continue
            write_tuned(Path(args.presets_file), model, DEFAULT, entry)
            table = read_tuned(args.presets_file)
            print(f"{model} {protocol}: {entry['settings']} ({entry['source']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
