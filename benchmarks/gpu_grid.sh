#!/usr/bin/env bash
# Issue #13's tuned grid on the GPU test machine in one call: many small chains at once, one process each.
# A chain is "tune at H=96 on validation (trials split over --jobs processes sharing the Optuna journal), then the
# four horizons with the tuned preset (one process per horizon)". Small models leave an H200 mostly idle, so the
# chains run side by side; each one is resumable (the journal keeps finished trials, the results CSV finished
# cells), so a chain cut off by the budget goes on at the next call.
#
# Once, on the development machine (repository root):
#   printf '/.whl/\n/.data/\n/.pydeps/\n' >> .git/info/exclude
#   mkdir -p .whl .data .pydeps && cp ../shared/gpu/wheels/mamba_ssm-*.whl .whl/
#   for f in ../shared/datasets/*.csv ../shared/datasets/*.txt; do gzip -c "$f" > ".data/$(basename "$f").gz"; done
#   cp -r <site-packages>/{optuna,colorlog,tqdm} .pydeps/     # the GPU machine has no Optuna (pure Python, 2.4 MiB)
# Each device call, with carry [".whl", ".data", ".pydeps"] (about 47 MiB):
#   bash benchmarks/gpu_grid.sh [CHAIN ...]        (default: every chain below)
# It returns $OUT/grid.tar.gz: bench_results.csv, samples.csv, tuning_trials.csv, tuning_studies.journal,
# tuned_presets.json and logs/. The project keeps its records in results/ and its tuned table in the package, so
# the commands here name them (--results-dir results, --presets-file mamba_forecast/bench/tuned_presets.json).
# Back here, merge them into the tree (and commit) before the next call, which starts from it:
#   mkdir -p /tmp/grid && tar -xzf grid.tar.gz -C /tmp/grid && python benchmarks/merge_results.py /tmp/grid
#   MPLBACKEND=Agg mamba-forecast report --results-dir results --out docs/benchmarks.md   # the results page
#   python benchmarks/acceptance.py                                                     # docs/targets.md
# The default chains took 498 s on an H200 (2026-11-29). The ETTm1 chains (four times the rows per epoch) need a
# call of their own; all four ran on the 2-core CPU instead (SMamba's and FMamba's about an hour each,
# AttentionMamba's about 3.5 hours, TSM2's about 6 hours of core time; the tuned table, trial log and results CSV keep
# them), so the whole grid is in the tree and a call here only reruns chains whose results were removed.
# Dry run on a CPU, in a copy of the tree (it writes the journal, trial log and tuned table like a real run):
#   DEVICE=cpu BUDGET_S=120 TRIALS=2 EXTRA="--max-train-batches 2 --epochs 1" bash benchmarks/gpu_grid.sh tsm2-ETTh1
set -uo pipefail

budget="${BUDGET_S:-520}"          # the work; packing the results takes a few seconds more
device="${DEVICE:-cuda}"
out="${OUT:-/tmp/gpu_grid_out}"
extra=(${EXTRA:-})                 # e.g. --max-train-batches 2 for a dry run (tune and bench)
trials="${TRIALS:-8}"
mkdir -p "$out/logs"
t_start=$(date +%s)

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ ! -d /tmp/site/mamba_ssm ] && [ "$device" = cuda ]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site:$PWD/.pydeps${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
data="${MAMBA_FORECAST_DATA:-$PWD/.data}"
results="$out/bench_results.csv"
cp results/bench_results.csv "$results"   # finished cells are skipped; new rows are appended
touch "$out/samples.csv"                  # new cells' test windows (merge_results.py adds them to results/)
# Issue #13's grid was tuned and scored under the papers' protocol: its searches (journal, study names) and cells
# resume only under --protocol official (tune and bench default to converge now)
common=(--data-dir "$data" --device "$device" --results-dir results --protocol official
        --presets-file mamba_forecast/bench/tuned_presets.json)

# --- which scan runs here: the default (mamba-ssm's kernel when it imports), else Triton, else torch
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
smoke() {
    python3 - "$device" <<'EOF'
import sys, torch
from mamba_forecast.models import SMamba
from mamba_forecast.ssm.scan import resolve_backend
dev = torch.device(sys.argv[1])
net = SMamba(input_size=48, h=24, n_series=7, d_model=32, d_ff=32, d_state=4).to(dev)
y = net(torch.randn(8, 48, 7, device=dev), None, None, None)
y.float().pow(2).mean().backward()
assert y.shape == (8, 24, 7) and torch.isfinite(y).all()
print("torch", torch.__version__, "scan backend:", resolve_backend("auto", dev, torch.float32, 4), flush=True)
EOF
}
if ! smoke; then
    echo "default scan failed; trying triton"; export MAMBA_FORECAST_SCAN=triton
    smoke || { echo "triton failed; using torch"; export MAMBA_FORECAST_SCAN=torch; smoke || exit 3; }
fi

# --- the chains: NAME -> "MODEL DATASET JOBS INPUT SEEDS PRESET HORIZONS"
#     JOBS: tune processes (0: no search, bench only); INPUT "-": the preset's look-back; SEEDS: extra seeds at H=96
declare -A chain=(
    [fmamba-ETTh1]="FMamba ETTh1 3 - 2024,2025 tuned 96,192,336,720"
    [attentionmamba-ETTh2]="AttentionMamba ETTh2 3 - - tuned 96,192,336,720"
    [tsm2-ETTh1]="TSM2 ETTh1 4 96 2024,2025 tuned 96,192,336,720"
    [tsm2-ETTh2]="TSM2 ETTh2 4 96 - tuned 96,192,336,720"
    [tsm2-Exchange]="TSM2 Exchange 4 96 - tuned 96,192,336,720"
    [tsm2-SML2010]="TSM2 SML2010 4 96 2024,2025 tuned 96,192,336,720"
    [smamba-ETTm1]="SMamba ETTm1 8 - - tuned 96,192,336,720"
    [attentionmamba-ETTm1]="AttentionMamba ETTm1 8 - - tuned 96,192,336,720"
    [fmamba-ETTm1]="FMamba ETTm1 8 - - tuned 96,192,336,720"
    [tsm2-ETTm1]="TSM2 ETTm1 8 96 - tuned 96,192,336,720"
    [tsm2-official-ETTh1]="TSM2 ETTh1 0 512 - official 96,192,336,720"
    [tsm2-official-ETTh2]="TSM2 ETTh2 0 512 - official 96,192,336,720"
    [smamba-official-Weather]="SMamba Weather 0 - - official 336,720"
)
# default: what fits one 10-minute call next to each other (ETTm1's searches need a call of their own)
order=(fmamba-ETTh1 attentionmamba-ETTh2 tsm2-ETTh1 tsm2-ETTh2 tsm2-Exchange tsm2-SML2010
       tsm2-official-ETTh1 tsm2-official-ETTh2 smamba-official-Weather)
[ $# -gt 0 ] && order=("$@")

run_chain() {
    local name=$1 model dataset jobs input seeds preset horizons
    read -r model dataset jobs input seeds preset horizons <<<"${chain[$name]}"
    local inp=(); [ "$input" != "-" ] && inp=(--input-size "$input")
    if [ "$jobs" -gt 0 ]; then
        echo "=== $(date -u +%T) tune $model $dataset (jobs $jobs)"
        python3 -m mamba_forecast.cli tune --model "$model" --dataset "$dataset" --trials "$trials" --seed 2023 \
            --jobs "$jobs" "${inp[@]}" "${common[@]}" "${extra[@]}" || { echo "=== tune failed"; return 1; }
    fi
    echo "=== $(date -u +%T) bench $model $dataset ($preset)"
    local pids=() runs=() h s
    for h in ${horizons//,/ }; do runs+=("$h 2023"); done
    [ "$seeds" != "-" ] && for s in ${seeds//,/ }; do runs+=("96 $s"); done
    for r in "${runs[@]}"; do
        read -r h s <<<"$r"
        python3 -m mamba_forecast.cli bench --model "$model" --dataset "$dataset" --horizon "$h" --seeds "$s" \
            --preset "$preset" "${inp[@]}" "${common[@]}" "${extra[@]}" --no-progress --out "$results" \
            --samples "$out/samples.csv" > "$out/logs/$name-H$h-s$s.log" 2>&1 &
        pids+=($!)
    done
    local rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
    echo "=== $(date -u +%T) chain $name done (rc $rc)"
    return $rc
}

tests_pid=""
if [ "${GPU_TESTS:-1}" = 1 ]; then  # the GPU tests too, on a core of their own (GPU_TESTS=0: not)
    ( python3 -m pytest -q -m gpu tests > "$out/logs/pytest_gpu.log" 2>&1
      echo "pytest -m gpu exit $?" >> "$out/logs/pytest_gpu.log" ) &
    tests_pid=$!
fi
pids=()
for name in "${order[@]}"; do
    [ -n "${chain[$name]:-}" ] || { echo "unknown chain $name"; continue; }
    setsid bash -c "$(declare -p chain common extra out results data trials); $(declare -f run_chain); run_chain $name" \
        > "$out/logs/$name.log" 2>&1 &
    pids+=($!)
done
# the deadline: stop whatever is still running (finished trials and cells are already written)
deadline=$(( t_start + budget ))
(
    while [ "$(date +%s)" -lt "$deadline" ] && [ ! -f "$out/.all_done" ]; do sleep 2; done
    [ -f "$out/.all_done" ] || { echo "budget reached: stopping the chains still running";
        for p in "${pids[@]}"; do kill -TERM -- -"$p" 2>/dev/null; done; pkill -f "pytest -q -m gpu" 2>/dev/null; }
) &
killer=$!
for p in "${pids[@]}"; do wait "$p"; done
[ -n "$tests_pid" ] && wait "$tests_pid" 2>/dev/null
touch "$out/.all_done"; wait "$killer"; rm -f "$out/.all_done"
sleep 1

cp results/tuning_trials.csv results/tuning_studies.journal mamba_forecast/bench/tuned_presets.json "$out/"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader > "$out/logs/nvidia.txt" 2>/dev/null || true
tar -czf "$out/grid.tar.gz" -C "$out" bench_results.csv samples.csv tuning_trials.csv tuning_studies.journal \
    tuned_presets.json logs
for name in "${order[@]}"; do tail -n 1 "$out/logs/$name.log" 2>/dev/null | sed "s/^/[$name] /"; done
tail -n 3 "$out/logs/pytest_gpu.log" 2>/dev/null
echo "elapsed $(( $(date +%s) - t_start )) s"
