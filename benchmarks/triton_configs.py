"""Registers and spills of the Triton scan's autotune candidates, compiled for sm_90 (H100/H200) without a GPU.

    python benchmarks/triton_configs.py                         # the GPU notes' and the models' scan shapes
    python benchmarks/triton_configs.py --shapes 512,16,321 --dtype bf16

On the device ``triton.autotune`` picks, per (channels, d_state, length), the fastest of a few channel blocks and
warp counts (``mamba_forecast/ssm/triton_scan.py``, ``_candidates``). This compiles each distinct candidate of
the given shapes ahead of time (forward and backward kernels, every option on) and reads the machine code's
resource use with the ``cuobjdump`` that ships with Triton: registers per thread, and local memory / stack
(non-zero: registers spilled). Prints a markdown table. Needs triton with its NVIDIA backend; no GPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

# (channels, d_state, length): the official configurations' scans (SMamba ETTh1: 256 channels over 7 series + 4
# calendar tokens, d_state 2; SMamba ECL, Traffic, PEMS07; AttentionMamba PEMS07 and ECL; TSM2 ETTh1's mixers over
# 63 patches and 7 series) and the GPU notes' scan shapes.
SHAPES = [
    (256, 2, 11),
    (512, 16, 325),
    (512, 32, 866),
    (512, 32, 883),
    (512, 64, 883),
    (512, 64, 325),
    (64, 16, 63),
    (64, 16, 7),
    (128, 16, 7),
    (512, 16, 21),
    (512, 16, 321),
    (512, 16, 862),
]


def _resources(cubin: bytes, cuobjdump: str) -> dict:
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        out = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    line = next(ln for ln in out.stdout.splitlines() if "REG:" in ln)
    return {k: int(v) for k, v in (field.split(":") for field in line.split() if field.split(":")[-1].isdigit())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=None, help="channels,d_state,length[;...]")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="the activations' dtype")
    args = parser.parse_args(argv)

    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from mamba_forecast.ssm import triton_scan as ts

    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")] if args.shapes else SHAPES
    kernels = {
        "forward": (ts._scan_fwd_kernel, ts._FWD_TILE_PER_WARP),
        "backward": (ts._scan_bwd_kernel, ts._BWD_TILE_PER_WARP),
    }
    activations = {"u_ptr", "delta_ptr", "B_ptr", "C_ptr", "z_ptr", "out_ptr", "dout_ptr", "du_ptr", "ddelta_ptr"}
    activations.add("dz_ptr")
    seen: dict = {}  # (kernel, BLOCK_D, BLOCK_N, CHUNK, warps) -> the shapes that have it among their candidates
    rows = {}
    for shape in shapes:
        block_n, chunk = ts._state_and_chunk(shape[1], shape[2])
        for name, (kernel, per_warp) in kernels.items():
            for block_d, warps in ts._candidates(*shape, per_warp):
                key = (name, block_d, block_n, chunk, warps)
                if key in seen:
                    seen[key].append(shape)
                    continue
                seen[key] = [shape]
                constexprs = dict(HAS_D=True, HAS_Z=True, HAS_BIAS=True, SOFTPLUS=True, ACC=tl.float32)
                constexprs.update(BLOCK_D=block_d, BLOCK_N=block_n, CHUNK=chunk)
                if "HAS_DLAST" in kernel.arg_names:
                    constexprs["HAS_DLAST"] = True
                signature = {
                    arg: "constexpr"
                    if arg in constexprs
                    else "i32"
                    if arg in ("n_ch", "n_st", "length", "n_chunks")
                    else f"*{args.dtype}"
                    if arg in activations
                    else "*fp32"
                    for arg in kernel.arg_names
                }
                compiled = triton.compile(
                    ASTSource(fn=kernel, signature=signature, constexprs=constexprs),
                    target=GPUTarget("cuda", 90, 32),
                    options={"num_warps": warps},
                )
                rows[key] = _resources(compiled.asm["cubin"], cuobjdump)
    print(f"triton {triton.__version__}, target sm_90, {args.dtype} activations, every option on")
    print("| kernel | BLOCK_D x BLOCK_N x CHUNK | warps | tile / warp | registers | local / stack bytes | shapes |")
    print("|---|---|---|---|---|---|---|")
    for key, r in rows.items():
        name, block_d, block_n, chunk, warps = key
        shapes_s = "; ".join(",".join(map(str, s)) for s in seen[key])
        print(
            f"| {name} | {block_d} x {block_n} x {chunk} | {warps} | {block_d * block_n * chunk // warps} | "
            f"{r.get('REG')} | {r.get('LOCAL', 0)} / {r.get('STACK', 0)} | {shapes_s} |"
        )


if __name__ == "__main__":
    main()
