"""Load-adaptive threading of the ``"torch"`` scan on the CPU: opt-in, off by default.

Off (the default), the scan runs every op on torch's intra-op threads as the user set them
(``torch.set_num_threads``), reads nothing about the machine's load and changes no thread setting.

On (:func:`set_cpu_scan_threading` for the process, :func:`cpu_scan_threading` for a block), a CPU scan at more
than one torch thread does two things, both there for a CPU shared with other processes (docs/performance.md,
"The scan on a busy CPU"): the scan is thousands of small ops, each an OpenMP parallel region ending in a
barrier, and a barrier waiting for a thread that another process displaced costs scheduler ticks.

1. Row workers: blocks of batch rows are scanned by as many workers as torch has threads, each running its
   ops on one intra-op thread (2 cores), so no op of the chunk loop waits in a barrier.
2. Thread cap: the scan's other ops run on no more intra-op threads than there are free cores, counted from
   ``/proc/loadavg`` and ``/proc/self/task/*/stat``.

The price: while such a scan runs torch's thread count is changed (the calling thread's, and the count that
threads started meanwhile begin with), and restored when it ends or raises; and the last bits of outputs and
gradients depend on the thread count, so (through the cap) on the load, within fp32 rounding.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import math
import os
import threading
import time

import torch

# Blocks of rows are scanned by several threads at once only when every block's work tensor has at least this
# many elements: smaller blocks would spend their time in Python's per-op overhead, under the GIL.
_MIN_BLOCK_ELEMENTS = 1 << 18
# The count of free cores is probed at most this often (seconds).
_FREE_CPUS_TTL = 0.5

_enabled = False


def set_cpu_scan_threading(enabled: bool) -> bool:
    """Switch the ``"torch"`` scan's load-adaptive CPU threading on or off for the whole process.

    Off by default. On, a CPU scan at more than one torch thread scans blocks of batch rows on parallel
    workers (one intra-op thread each) and runs its other ops on no more threads than the machine's load
    leaves free; that keeps the scan fast on a CPU shared with other jobs (docs/performance.md). While such a
    scan runs, torch's thread count is changed and then restored, and results may differ from the default's
    in the last bits, depending on the thread count and the load.

    Returns:
        The previous setting, so that a caller can restore it (or use :func:`cpu_scan_threading`).

    Raises:
        TypeError: ``enabled`` is not a bool.
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {type(enabled).__name__} {enabled!r}.")
    previous, _enabled = _enabled, enabled
    return previous


@contextlib.contextmanager
def cpu_scan_threading(enabled: bool = True):
    """A context in which the load-adaptive CPU threading is ``enabled`` (see :func:`set_cpu_scan_threading`);
    the previous setting comes back on exit. The setting is process-wide, not per thread."""
    previous = set_cpu_scan_threading(enabled)
    try:
        yield
    finally:
        set_cpu_scan_threading(previous)


def row_workers(device: torch.device) -> int:
    """How many row workers a scan on ``device`` uses: torch's thread count when the adaptive threading is on
    and ``device`` is the CPU, else 1 (the plain scan, on the calling thread)."""
    if not _enabled or torch.device(device).type != "cpu":
        return 1
    return torch.get_num_threads()


def _running_elsewhere() -> int | None:
    """Runnable tasks on the machine now that are not threads of this process (None where /proc is missing).

    The ``running/total`` field of ``/proc/loadavg`` is the kernel's instantaneous count of runnable tasks
    (not an average); this process's own runnable threads (the caller, and intra-op workers still spinning)
    are read from ``/proc/self/task/*/stat`` and subtracted.
    """
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        tids = os.listdir("/proc/self/task")
    except (OSError, ValueError, IndexError):
        return None
    own = 0
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        own += state == "R"
    return max(0, running - max(own, 1))


_free_cpus_cache: list = [-math.inf, None]  # [probed at (time.monotonic), free cores]


def _free_cpus() -> int | None:
    """Cores of this process's affinity set that other processes leave free now (>= 1), or None if unknown.

    The machine-wide count of other runnable tasks is scaled to the share of the machine's cores this process
    may use. Cached for _FREE_CPUS_TTL seconds: the probe reads a few small /proc files (~0.1 ms).
    """
    now = time.monotonic()
    if now - _free_cpus_cache[0] < _FREE_CPUS_TTL:
        return _free_cpus_cache[1]
    others = _running_elsewhere()
    free = None
    if others is not None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        total = max(os.cpu_count() or cpus, cpus)
        free = max(1, cpus - round(others * cpus / total))
    _free_cpus_cache[:] = [now, free]
    return free


@contextlib.contextmanager
def capped_threads(active: bool):
    """With ``active`` (a scan that has row workers), run the block on at most as many intra-op threads as
    there are free cores, and restore the caller's count after, also when the block raises. The cap covers
    the scan's ops outside the row workers (input preparation, chunk layout, gate, and a single block when the
    work is small), which would otherwise each wait in a barrier for a displaced thread."""
    threads = torch.get_num_threads()
    free = _free_cpus() if active and threads > 1 else None
    if free is None or free >= threads:
        yield
        return
    torch.set_num_threads(free)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _row_blocks(rows: int, per_row: int, workers: int) -> list[tuple[int, int]]:
    """Blocks ``(r0, r1)`` covering ``range(rows)``: about 2 per worker, each at least _MIN_BLOCK_ELEMENTS
    elements of work tensor (``per_row`` elements a row); one block for small work or a single worker."""
    if workers <= 1:
        return [(0, rows)]
    n_blocks = min(rows, 2 * workers, max(1, rows * per_row // _MIN_BLOCK_ELEMENTS))
    bounds = [rows * i // n_blocks for i in range(n_blocks + 1)]
    return list(itertools.pairwise(bounds))


def over_row_blocks(rows: int, per_row: int, workers: int, fn) -> None:
    """Call ``fn(r0, r1)`` over blocks of rows that cover ``range(rows)`` (``fn`` must write disjoint rows):
    on this thread alone when there is one block, else on up to ``workers`` threads that take blocks as they
    come free.

    Each worker runs its ops on its own intra-op threads (one on 2 cores), so a worker on a core that another
    process shares just scans fewer blocks; the only synchronisation is the final join. The workers run in the
    caller's grad and inference mode (both are per thread, and writing into tensors the caller created under
    ``torch.inference_mode`` is allowed only inside it).
    """
    blocks = _row_blocks(rows, per_row, workers)
    workers = min(workers, len(blocks))
    if workers <= 1:
        fn(0, rows)
        return
    queue = iter(blocks)
    lock = threading.Lock()
    threads = torch.get_num_threads()
    per_worker = max(1, threads // workers)
    inference = torch.is_inference_mode_enabled()

    def work():
        torch.set_num_threads(per_worker)  # this thread's intra-op threads (thread-local in ATen's OpenMP)
        with torch.inference_mode(inference), torch.no_grad():
            while True:
                with lock:
                    block = next(queue, None)
                if block is None:
                    return
                fn(*block)

    try:
        futures = [_row_pool(os.getpid()).submit(work) for _ in range(workers - 1)]
        try:
            work()  # this thread is a worker too
        finally:
            errors = [f.exception() for f in futures]
        if any(e is not None for e in errors):
            raise next(e for e in errors if e is not None)
    finally:
        torch.set_num_threads(threads)  # also the default that threads created later start from


@functools.lru_cache(maxsize=1)
def _row_pool(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    """The row workers' threads; keyed by the process id, as a forked child inherits no threads."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, (os.cpu_count() or 1) - 1), thread_name_prefix="mamba_forecast_scan"
    )
