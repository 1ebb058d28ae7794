"""The torch scan's CPU threading (``mamba_forecast.ssm.cpu_threads``): off by default, when the scan reads no
load and touches no thread setting; opt-in load-adaptive row workers and thread cap, whose results match the
plain scan's and whose thread changes never outlive a scan."""

import os
import threading
import time

import pytest
import torch

from conftest import rel_err
from mamba_forecast.ssm import cpu_scan_threading, cpu_threads, selective_scan, set_cpu_scan_threading, torch_scan
from test_ssm import GRAD_NAMES, make_inputs, run_scan

FLAGS = dict(use_d=True, use_z=True, use_bias=True, softplus=True, last_state=True)


@pytest.fixture
def two_threads(monkeypatch):
    """torch at 2 intra-op threads for the test (conftest runs at 1), the free-core probe's cache emptied."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(cpu_threads, "_free_cpus_cache", [float("-inf"), None])
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def adaptive(two_threads):
    with cpu_scan_threading():
        yield


def test_the_switch_is_public_off_by_default_and_restored_by_the_context():
    assert set_cpu_scan_threading(False) is False  # the default
    with cpu_scan_threading():
        assert set_cpu_scan_threading(True) is True
        with pytest.raises(RuntimeError, match="inside"), cpu_scan_threading(False):
            assert set_cpu_scan_threading(False) is False
            raise RuntimeError("inside")
        assert set_cpu_scan_threading(True) is True  # the outer setting came back
    assert set_cpu_scan_threading(False) is False
    with pytest.raises(TypeError, match="enabled must be True or False"):
        set_cpu_scan_threading("yes")


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_by_default_the_scan_reads_no_load_and_sets_no_threads(monkeypatch, threads):
    # The default scan's result cannot depend on the machine's load: it never reads it. Faked both ways (idle,
    # then every core taken), the probe is never called and the results are the same bit for bit; torch's
    # thread count is never set, and every op runs on the calling thread.
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        probes, set_calls, idents = [], [], set()
        chunk_states = torch_scan._chunk_states
        monkeypatch.setattr(
            torch_scan, "_chunk_states", lambda *a: idents.add(threading.get_ident()) or chunk_states(*a)
        )
        monkeypatch.setattr(torch, "set_num_threads", set_calls.append)
        inputs = make_inputs(64, 32, 40, 16, seed=4)  # a batch the adaptive threading would scan in blocks
        results = []
        for others in (0, 10**6):
            monkeypatch.setattr(cpu_threads, "_free_cpus_cache", [float("-inf"), None])
            monkeypatch.setattr(
                cpu_threads, "_running_elsewhere", lambda others=others: probes.append(others) or others
            )
            results.append(run_scan(inputs, "torch", **FLAGS))
        assert probes == [] and set_calls == [] and idents == {threading.get_ident()}
        assert torch.get_num_threads() == threads
        (out_a, last_a, grads_a), (out_b, last_b, grads_b) = results
        assert torch.equal(out_a, out_b) and torch.equal(last_a, last_b)
        assert all(torch.equal(grads_a[k], grads_b[k]) for k in GRAD_NAMES)
    finally:
        monkeypatch.undo()
        torch.set_num_threads(old)


@pytest.mark.parametrize("free", [1, 2, None])
def test_adaptive_scan_runs_on_the_free_cores_and_restores_the_thread_count(monkeypatch, adaptive, free):
    # With a core taken by another process every intra-op op of the scan would wait on a descheduled thread;
    # the adaptive scan caps torch's threads to the free cores for its forward and backward, and gives them back.
    seen = []
    chunk_states = torch_scan._chunk_states
    monkeypatch.setattr(cpu_threads, "_free_cpus", lambda: free)
    monkeypatch.setattr(
        torch_scan, "_chunk_states", lambda *a: seen.append(torch.get_num_threads()) or chunk_states(*a)
    )
    inputs = make_inputs(3, 5, 40, 6, seed=5)
    out, last, grads = run_scan(inputs, "torch", **FLAGS)
    assert torch.get_num_threads() == 2
    assert len(seen) >= 2 and set(seen) == {1 if free == 1 else 2}  # forward and backward alike
    out_r, last_r, grads_r = run_scan(inputs, "reference", **FLAGS)
    assert rel_err(out, out_r) < 1e-5 and rel_err(last, last_r) < 1e-5
    for name in GRAD_NAMES:
        assert rel_err(grads[name], grads_r[name]) < 1e-5, name


@pytest.mark.parametrize("clamp_scale", [0.5, 60.0])
@pytest.mark.parametrize("free", [1, 2])
def test_adaptive_scan_matches_the_plain_scan_at_any_load(monkeypatch, two_threads, clamp_scale, free):
    # Blocks of rows run on parallel workers (no per-op barrier) with the other ops capped to the free cores:
    # every output and gradient must match the plain scan's (and the reference) to fp32 rounding, whatever the
    # load, and the thread count must come back.
    inputs = make_inputs(7, 5, 40, 6, seed=13, delta_scale=clamp_scale)
    ref = run_scan(inputs, "reference", **FLAGS)
    rows = []
    chunk_states = torch_scan._chunk_states
    monkeypatch.setattr(
        torch_scan, "_chunk_states", lambda k, dt, *rest: rows.append(dt.shape[1]) or chunk_states(k, dt, *rest)
    )
    out_1, last_1, grads_1 = run_scan(inputs, "torch", **FLAGS)
    assert set(rows) == {7}  # the plain scan: the whole batch at once
    rows.clear()
    monkeypatch.setattr(cpu_threads, "_MIN_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(cpu_threads, "_free_cpus", lambda: free)
    with cpu_scan_threading():
        out_p, last_p, grads_p = run_scan(inputs, "torch", **FLAGS)
    assert torch.get_num_threads() == 2
    assert max(rows) < 7  # blocks of rows
    assert rel_err(out_p, out_1) < 1e-6 and rel_err(last_p, last_1) < 1e-6
    assert rel_err(out_p, ref[0]) < 1e-5 and rel_err(last_p, ref[1]) < 1e-5
    assert grads_p.keys() == set(GRAD_NAMES)
    for name in GRAD_NAMES:
        assert rel_err(grads_p[name], grads_1[name]) < 1e-6, name
        assert rel_err(grads_p[name], ref[2][name]) < 1e-5, name


def test_row_blocks_cover_every_row_once_on_several_threads(monkeypatch, two_threads):
    monkeypatch.setattr(cpu_threads, "_MIN_BLOCK_ELEMENTS", 1)
    seen, idents = [], set()

    def fn(r0, r1):
        assert torch.get_num_threads() == 1 and not torch.is_grad_enabled()
        idents.add(threading.get_ident())
        time.sleep(0.05)  # long enough that the second worker takes a block
        seen.extend(range(r0, r1))

    cpu_threads.over_row_blocks(9, 10, 2, fn)
    assert sorted(seen) == list(range(9)) and len(idents) == 2
    assert torch.get_num_threads() == 2 and torch.is_grad_enabled()
    seen.clear()
    cpu_threads.over_row_blocks(9, 10, 1, lambda r0, r1: seen.append((r0, r1)))
    assert seen == [(0, 9)]

    def boom(r0, r1):
        raise ValueError("block failed")

    with pytest.raises(ValueError, match="block failed"):
        cpu_threads.over_row_blocks(9, 10, 2, boom)
    assert torch.get_num_threads() == 2


def test_row_workers_run_in_the_callers_inference_mode(monkeypatch, two_threads):
    # inference mode is per thread: a worker outside it may not write into the caller's inference tensors
    monkeypatch.setattr(cpu_threads, "_MIN_BLOCK_ELEMENTS", 1)
    modes = set()
    for inference in (True, False):
        with torch.inference_mode(inference):
            out = torch.zeros(4)

            def fn(r0, r1, out=out, inference=inference):
                modes.add((inference, torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
                time.sleep(0.05)
                out[r0:r1] = 1.0

            cpu_threads.over_row_blocks(4, 10, 2, fn)
        assert out.tolist() == [1.0] * 4
    assert modes == {(True, True, False), (False, False, False)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_row_workers_still_run_in_a_forked_child(monkeypatch, two_threads):
    # a DataLoader-style fork after the pool exists: the child must get threads of its own, not hang
    monkeypatch.setattr(cpu_threads, "_MIN_BLOCK_ELEMENTS", 1)
    seen = []
    cpu_threads.over_row_blocks(4, 10, 2, lambda r0, r1: time.sleep(0.05) or seen.append(r0))
    assert sorted(seen) == [0, 1, 2, 3]
    pid = os.fork()
    if pid == 0:  # child
        done = []
        try:
            cpu_threads.over_row_blocks(4, 10, 2, lambda r0, r1: done.extend(range(r0, r1)))
        finally:
            os._exit(0 if sorted(done) == [0, 1, 2, 3] else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in over_row_blocks")
    assert os.waitstatus_to_exitcode(status) == 0


def test_thread_count_is_restored_when_the_scan_fails(monkeypatch, adaptive):
    monkeypatch.setattr(cpu_threads, "_free_cpus", lambda: 1)

    def fail(*args):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr(torch_scan, "_chunk_states", fail)
    inputs = make_inputs(1, 2, 8, 3)
    with pytest.raises(RuntimeError, match="boom"):
        selective_scan(inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"], backend="torch")
    assert torch.get_num_threads() == 2


def test_free_cores_count_other_runnable_processes(monkeypatch):
    cpus = len(os.sched_getaffinity(0))
    total = os.cpu_count()
    for others, expected in ((0, cpus), (10**6, 1)):
        monkeypatch.setattr(cpu_threads, "_free_cpus_cache", [float("-inf"), None])
        monkeypatch.setattr(cpu_threads, "_running_elsewhere", lambda others=others: others)
        assert cpu_threads._free_cpus() == expected
    if cpus == total:
        monkeypatch.setattr(cpu_threads, "_free_cpus_cache", [float("-inf"), None])
        monkeypatch.setattr(cpu_threads, "_running_elsewhere", lambda: 1)
        assert cpu_threads._free_cpus() == max(1, cpus - 1)
    # unknown (no /proc): no cap, and the answer is cached
    monkeypatch.setattr(cpu_threads, "_free_cpus_cache", [float("-inf"), None])
    monkeypatch.setattr(cpu_threads, "_running_elsewhere", lambda: None)
    assert cpu_threads._free_cpus() is None
    monkeypatch.setattr(cpu_threads, "_running_elsewhere", lambda: 0)
    assert cpu_threads._free_cpus() is None


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux /proc")
def test_probe_sees_a_competing_process():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        # the competitor busy-loops, so it is runnable at every sample; our own threads are not counted
        assert all(cpu_threads._running_elsewhere() >= 1 for _ in range(5))
    finally:
        proc.kill()
        proc.wait()
