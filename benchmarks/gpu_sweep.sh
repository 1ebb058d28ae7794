#!/usr/bin/env bash
# The benchmark cells that are too slow for a CPU, in parts that each fit one 10-minute call on the GPU
# test machine (see ../shared/gpu/README.md). Every part is resumable: cells already in the results CSV are
# skipped, so a part cut off by the time limit is finished by running it again.
#
# Once, on the development machine (repository root):
#   echo /.whl/ >> .git/info/exclude && mkdir -p .whl && cp ../shared/gpu/wheels/mamba_ssm-*.whl .whl/
#   echo /.data/ >> .git/info/exclude && mkdir -p .data \
#     && for f in ../shared/datasets/*.csv ../shared/datasets/*.txt; do gzip -c "$f" > ".data/$(basename "$f").gz"; done
# (about 38 MiB of wheel and 7 MiB of gzip data: under the 64 MiB a call may carry; the readers take .gz copies.)
#
# Each device call, with carry [".whl", ".data"]:
#   bash benchmarks/gpu_sweep.sh PART
# The project keeps its records in results/ (--results-dir results). Back on the development machine, merge
# $OUT's bench_results.csv (it starts as a copy of results/bench_results.csv) and samples.csv into results/, then
# regenerate the results page:
#   python benchmarks/merge_results.py OUT_DIR
#   MPLBACKEND=Agg mamba-forecast report --results-dir results --out docs/benchmarks.md
#
# Parts:
#   tsm2-ett-h    TSM2 at input 512 on ETTh1 and ETTh2, all four horizons (official preset: the paper table)
#   tsm2-rest     TSM2 at input 512 on ETTm1 and Exchange (official preset)
#   tsm2-weather  TSM2 at input 512 on Weather (official preset)
#   smamba        SMamba's official preset on every dataset and horizon (the paper reproduction)
#   grid          the four models at input 96 with tuned presets on ETTh1, ETTh2, ETTm1, Exchange, SML2010
#                 (cells only; the searches that write the tuned presets, with their cells, are benchmarks/gpu_grid.sh)
#   weather       the four models at input 96 with tuned presets on Weather (tuned where an entry exists)
set -euo pipefail

part="${1:?usage: bash benchmarks/gpu_sweep.sh PART (see the header for the parts)}"
budget="${BUDGET_S:-540}"  # DEVICE=cpu BUDGET_S=20 tries a part here; leave time to pack the results before the call's 600 s limit
out="${OUT:-/tmp/gpu_sweep_out}"
mkdir -p "$out"

if [ -d .whl ] && [ ! -d /tmp/site/mamba_ssm ]; then  # /tmp/site stays while the machine is warm
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
data="${MAMBA_FORECAST_DATA:-$PWD/.data}"
[ -f "$out/bench_results.csv" ] || cp results/bench_results.csv "$out/bench_results.csv"

five="ETTh1,ETTh2,ETTm1,Weather,Exchange"
all_h="96,192,336,720"
case "$part" in
    tsm2-ett-h)   args=(--model TSM2 --dataset ETTh1,ETTh2 --horizon "$all_h" --preset official) ;;
    tsm2-rest)    args=(--model TSM2 --dataset ETTm1,Exchange --horizon "$all_h" --preset official) ;;
    tsm2-weather) args=(--model TSM2 --dataset Weather --horizon "$all_h" --preset official) ;;
    smamba)       args=(--model SMamba --dataset "$five" --horizon "$all_h" --preset official) ;;
    grid)         args=(--model SMamba,AttentionMamba,FMamba,TSM2 --dataset ETTh1,ETTh2,ETTm1,Exchange,SML2010
                        --horizon "$all_h" --input-size 96 --preset tuned) ;;
    weather)      args=(--model SMamba,AttentionMamba,FMamba,TSM2 --dataset Weather --horizon "$all_h"
                        --input-size 96 --preset tuned) ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
esac

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, importlib.util as u; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'mamba_ssm', u.find_spec('mamba_ssm') is not None)"
rc=0
timeout "$budget" python3 -m mamba_forecast.cli bench "${args[@]}" --device "${DEVICE:-cuda}" --no-progress \
    --data-dir "$data" --results-dir results --out "$out/bench_results.csv" --samples "$out/samples.csv" || rc=$?
echo "part $part: exit $rc (124 = stopped at the ${budget}s budget; run the part again to go on)"
exit "$rc"
