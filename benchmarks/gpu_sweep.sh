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
# Parts (the paper reproductions and the side-by-side at L=96 keep the papers' protocol, --protocol official, so
# they match the rows already in results/bench_results.csv and resume from them):
#   tsm2-ett-h    TSM2 at input 512 on ETTh1 and ETTh2, all four horizons (official preset: the paper table)
#   tsm2-rest     TSM2 at input 512 on ETTm1 and Exchange (official preset)
#   tsm2-weather  TSM2 at input 512 on Weather (official preset)
#   smamba        SMamba's official preset on every dataset and horizon (the paper reproduction)
#   grid          the four models at input 96 with tuned presets on ETTh1, ETTh2, ETTm1, Exchange, SML2010
#                 (cells only; the searches that write the tuned presets, with their cells, are benchmarks/gpu_grid.sh)
#   weather       the four models at input 96 with tuned presets on Weather (tuned where an entry exists)
# TSM2 at its published setting under --protocol converge (issue 24, item 6: SAMFormer's reference point, which
# TSM2's baselines come from: up to 100 epochs, patience 5). The replication's preset otherwise (input 512,
# d_model 32, batch 128 on ETT, 32 on Exchange, 64 on Weather, lr 1e-4): only the protocol changes against the
# official rows above, so the two can be compared; SAMFormer's batch 32 and lr 1e-3 would change two settings
# at once and quadruple the steps of an epoch of a model that is bound by launches. Each cell runs in a process
# of its own, the cells of a part side by side (a cell is not resumable within itself: it must finish in one
# call; finished cells are skipped on the next call):
#   tsm2-converge-etth      ETTh1 and ETTh2 x 96/192/336/720 (8 cells)
#   tsm2-converge-exchange  Exchange x 96/192/336/720 (4 cells)
#   tsm2-converge-ettm1     ETTm1 x 96/192/336/720 (4 cells)
#   tsm2-converge-weather   Weather x 96/192/336/720 (4 cells)
# Sizing, from the rows with device cuda in results/bench_results.csv: TSM2 at input 512 on ETTh1/ETTh2 took 44 to
# 64 s an epoch on the H200 (63 batches of 128 and the validation), measured while benchmarks/gpu_grid.sh ran nine
# chains (up to about 30 processes) on that GPU; under the official protocol those cells stopped after 5 to 10
# epochs. Under converge a cell runs at least 6 epochs (patience 5) and, judging by where the official runs were
# still improving, about 8 to 15: 6 to 16 minutes at that contended rate, less with 4 to 8 processes instead of
# 30. ETTh: fits a call if an epoch takes at most about 35 s with 8 cells side by side. Exchange (about 4,700
# windows in batches of 32, 8 series: some 150 steps) about twice an ETTh epoch. ETTm1 (about 34,000 windows,
# 4.3x ETTh) and Weather (about 36,000 windows in batches of 64 and 21 series, 9x the steps and 3x the series)
# fit only if the first parts show epochs several times faster than the grid's: at the grid's rate an ETTm1
# epoch takes 3 to 4.5 minutes and a Weather epoch over 7, so those cells could not finish within one call.
# Run tsm2-converge-etth first; its log prints each epoch's seconds ($OUT/logs/).
set -euo pipefail

part="${1:?usage: bash benchmarks/gpu_sweep.sh PART (see the header for the parts)}"
budget="${BUDGET_S:-540}"  # leave time to pack the results before the call's 600 s limit
out="${OUT:-/tmp/gpu_sweep_out}"
extra=(${EXTRA:-})         # e.g. --max-train-batches 2 --epochs 1 for a dry run
mkdir -p "$out/logs"
# Dry run of a part on a CPU, in a copy of the tree:
#   DEVICE=cpu BUDGET_S=120 MAMBA_FORECAST_DATA=../shared/datasets EXTRA="--max-train-batches 2 --epochs 1" \
#     bash benchmarks/gpu_sweep.sh tsm2-converge-exchange

if [ -d .whl ] && [ ! -d /tmp/site/mamba_ssm ]; then  # /tmp/site stays while the machine is warm
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
data="${MAMBA_FORECAST_DATA:-$PWD/.data}"
[ -f "$out/bench_results.csv" ] || cp results/bench_results.csv "$out/bench_results.csv"

five="ETTh1,ETTh2,ETTm1,Weather,Exchange"
all_h="96,192,336,720"
official=(--protocol official)
converge=(--model TSM2 --preset official --input-size 512 --protocol converge)
cells=()  # converge parts: "DATASET HORIZON" per cell, each in a process of its own
case "$part" in
    tsm2-ett-h)   args=(--model TSM2 --dataset ETTh1,ETTh2 --horizon "$all_h" --preset official "${official[@]}") ;;
    tsm2-rest)    args=(--model TSM2 --dataset ETTm1,Exchange --horizon "$all_h" --preset official "${official[@]}") ;;
    tsm2-weather) args=(--model TSM2 --dataset Weather --horizon "$all_h" --preset official "${official[@]}") ;;
    smamba)       args=(--model SMamba --dataset "$five" --horizon "$all_h" --preset official "${official[@]}") ;;
    grid)         args=(--model SMamba,AttentionMamba,FMamba,TSM2 --dataset ETTh1,ETTh2,ETTm1,Exchange,SML2010
                        --horizon "$all_h" --input-size 96 --preset tuned "${official[@]}") ;;
    weather)      args=(--model SMamba,AttentionMamba,FMamba,TSM2 --dataset Weather --horizon "$all_h"
                        --input-size 96 --preset tuned "${official[@]}") ;;
    tsm2-converge-etth)     for d in ETTh1 ETTh2; do for h in ${all_h//,/ }; do cells+=("$d $h"); done; done ;;
    tsm2-converge-exchange) for h in ${all_h//,/ }; do cells+=("Exchange $h"); done ;;
    tsm2-converge-ettm1)    for h in ${all_h//,/ }; do cells+=("ETTm1 $h"); done ;;
    tsm2-converge-weather)  for h in ${all_h//,/ }; do cells+=("Weather $h"); done ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
esac

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, importlib.util as u; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'mamba_ssm', u.find_spec('mamba_ssm') is not None)"
common=(--device "${DEVICE:-cuda}" --no-progress --data-dir "$data" --results-dir results
        --out "$out/bench_results.csv" --samples "$out/samples.csv")
rc=0
if [ ${#cells[@]} -eq 0 ]; then
    timeout "$budget" python3 -m mamba_forecast.cli bench "${args[@]}" "${common[@]}" "${extra[@]}" || rc=$?
else
    pids=()
    for cell in "${cells[@]}"; do
        read -r d h <<<"$cell"
        timeout "$budget" python3 -m mamba_forecast.cli bench "${converge[@]}" --dataset "$d" --horizon "$h" \
            "${common[@]}" "${extra[@]}" > "$out/logs/$part-$d-H$h.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
    for cell in "${cells[@]}"; do
        read -r d h <<<"$cell"
        tail -n 2 "$out/logs/$part-$d-H$h.log" | sed "s/^/[$d H$h] /"
    done
fi
echo "part $part: exit $rc (124 = stopped at the ${budget}s budget; run the part again to go on)"
exit "$rc"
