"""Write the published-results table that ships inside the package (``mamba_forecast/bench/published.csv``).

    python benchmarks/make_published.py --from PATH/published_results.csv

The input is the full table of published MSE / MAE numbers (every model of the papers' tables). The package
keeps only the rows ``mamba-forecast report`` compares against: the four models this package implements, with
their source. Rows are sorted so a regeneration gives a small diff.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "mamba_forecast" / "bench" / "published.csv"
COLUMNS = ["dataset", "input_size", "horizon", "model", "mse", "mae", "source"]


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from mamba_forecast.bench.report import published_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="the full published_results.csv")
    parser.add_argument("--out", default=str(OUT), help="where to write (default: the package's table)")
    args = parser.parse_args(argv)

    keep = set(published_names().values())
    with open(args.source, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{args.source}: missing columns {missing}")
        rows = [{c: r[c] for c in COLUMNS} for r in reader if r["model"] in keep]
    if not rows:
        raise SystemExit(f"{args.source}: no rows for {sorted(keep)}")
    rows.sort(key=lambda r: (r["model"], r["dataset"], int(r["input_size"]), int(r["horizon"])))
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows ({', '.join(sorted({r['model'] for r in rows}))}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
