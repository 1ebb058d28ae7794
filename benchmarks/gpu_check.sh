#!/usr/bin/env bash
# One run on the GPU test machine (see ../shared/gpu/README.md), under 10 minutes: backend parity (mamba-ssm's
# CUDA scan, Triton, torch against the sequential reference, fp32 and bf16), scan speed with the Triton/mamba-ssm
# acceptance ratio, `pytest -m gpu`, the four models' Adam steps in their official configurations per backend,
# one ETTh1-96 cell end to end (SMamba), and bf16-mixed against fp32 for the four models on ETTh1-96.
# Prints markdown and writes it to $OUT/gpu_check.md, ready to paste into docs/performance.md; the figures go to
# $OUT/gpu_check.json (and results/gpu_check.json on a GPU). Details: benchmarks/gpu_check.py.
# The data is the ETTh1 copy bundled in the package (mamba_forecast/datasets/data), so no data folder travels.
#
# Once, on the development machine (repository root): the two wheels, 58 MiB, travel with the call
#   echo /.whl/ >> .git/info/exclude && mkdir -p .whl && cp ../shared/gpu/wheels/*.whl .whl/
# Each device call, with carry [".whl"]:
#   bash benchmarks/gpu_check.sh
# Dry run anywhere (CPU, tiny shapes, Triton's interpreter, no wheels needed):
#   DEVICE=cpu bash benchmarks/gpu_check.sh
set -euo pipefail

device="${DEVICE:-cuda}"
out="${OUT:-/tmp/gpu_check_out}"
budget="${BUDGET_S:-520}"  # the wheels' install, a last item's overrun and returning the files fit in the rest of 600 s
mkdir -p "$out"
json="$out/gpu_check.json"

if [ "$device" = "cuda" ]; then
    wheels="${WHEELS:-.whl}"
    if [ -d "$wheels" ] && [ ! -d /tmp/site/mamba_ssm ]; then  # no compiling: the wheels go in as they are
        python3 -m pip install -q --no-index --no-deps --target /tmp/site "$wheels"/*.whl
    fi
    export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    [ -d results ] && json="$json,results/gpu_check.json"
else
    export TRITON_INTERPRET=1  # before anything imports triton: the 'triton' backend then runs on the CPU
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

python3 benchmarks/gpu_check.py --device "$device" --budget "$budget" --out "$out/gpu_check.md" --json "$json"
echo "report: $out/gpu_check.md, figures: $json"
