"""Block sizes of the Triton selective scan (:mod:`mamba_forecast.ssm.triton_scan`), in plain Python.

Each program of the kernels holds a [channels block, d_state block, chunk] tile of a few fp32 tensors. The chunk
follows d_state and the length; the channel block and the warp count are autotune's choice on the device among
:func:`_candidates`, and :func:`_blocks` is the fixed choice the interpreter runs.
"""

from __future__ import annotations

# Work per program: a [channels block, d_state block, chunk] tile of each of a few fp32 tensors, at most this many
# elements per warp. At these sizes ptxas keeps the whole tile in registers on sm_90 (checked by compiling ahead
# of time without a GPU, benchmarks/triton_configs.py); which channel block and warp count runs fastest is left
# to triton.autotune on the device.
_MAX_CHUNK = 32
_FWD_TILE_PER_WARP = 512
_BWD_TILE_PER_WARP = 256
_NUM_WARPS = 4  # the fixed choice under the interpreter
_FWD_TILE = _FWD_TILE_PER_WARP * _NUM_WARPS
_BWD_TILE = _BWD_TILE_PER_WARP * _NUM_WARPS
_WARPS = (4, 8)
_BLOCKS_D = (2, 4, 8, 16, 32, 64)


def _pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def _state_and_chunk(d_state: int, length: int) -> tuple[int, int]:
    """(d_state block, chunk length): the chunk depends on d_state and the length only, so the forward and the
    backward walk the same chunks (the backward starts from the forward's saved chunk states): 32 steps up to
    16 states, 16 up to 32, 8 beyond, never longer than the sequence rounded up to a power of two."""
    block_n = max(2, _pow2(d_state))
    chunk = min(max(8, min(_MAX_CHUNK, 512 // block_n)), max(2, _pow2(length)))
    return block_n, chunk


def _blocks(channels: int, d_state: int, length: int, tile: int) -> tuple[int, int, int]:
    """(channels block, d_state block, chunk length): powers of two, at least 2 (no size-1 axes in the tiles);
    the channel block is the largest whose tile has at most ``tile`` elements."""
    block_n, chunk = _state_and_chunk(d_state, length)
    block_d = max(2, min(_pow2(channels), tile // (block_n * chunk)))
    return block_d, block_n, chunk


def _candidates(channels: int, d_state: int, length: int, tile_per_warp: int) -> list[tuple[int, int]]:
    """The (channels block, warps) pairs autotune times for one shape: the largest channel block whose tile fits
    ``tile_per_warp`` elements per warp at 4 warps, half of it (twice the programs, for a small batch), and the
    largest at 8 warps; blocks wider than the channels left out. Few, because each one is compiled once per
    specialisation (dtype, d_state, options) before it is timed."""
    block_n, chunk = _state_and_chunk(d_state, length)
    widest = max(2, _pow2(channels))
    pairs = []
    for warps, keep in ((4, 2), (8, 1)):
        fits = [b for b in _BLOCKS_D if b * block_n * chunk <= tile_per_warp * warps and b <= widest]
        pairs += [(b, warps) for b in fits[-keep:]]
    # a d_state so large that even two channels overflow 8 warps: the smallest tile, 8 warps
    return sorted(set(pairs)) or [(2, 8)]
