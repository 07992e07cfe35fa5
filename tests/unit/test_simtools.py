"""techday.simtools on the simulator: a correct shared-memory kernel gives the right answer every
time, also with threads switched every microsecond (the simulator's own allocation race is fixed)."""

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import sys, threading
    import numpy as np
    from techday.simtools import atomic_shared_arrays, expose_races
    from numba import cuda, int32
    from numba.cuda.simulator import kernelapi

    # 1. The allocation itself: 64 threads of one block asking at once get one array (the
    #    simulator as shipped gives several in about 1 of 8 such trials).
    assert atomic_shared_arrays()
    def trial(n=64):
        shared = kernelapi.FakeCUDAShared(0)
        got, barrier = [None] * n, threading.Barrier(n)
        def run(i):
            barrier.wait()
            got[i] = shared.array(256, np.int32)
        ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in ts: t.start()
        for t in ts: t.join()
        return len({id(a) for a in got})
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    split = sum(trial() > 1 for _ in range(40))
    sys.setswitchinterval(old)
    print("trials with a split shared array:", split)
    assert split == 0

    # 2. A privatised histogram (two shared arrays: they must stay two) under expose_races.
    @cuda.jit
    def hist_shared(values, hist, seen):
        local = cuda.shared.array(256, int32)
        marks = cuda.shared.array(64, int32)
        tid = cuda.threadIdx.x
        for b in range(tid, 256, cuda.blockDim.x):
            local[b] = 0
        marks[tid] = tid
        cuda.syncthreads()
        for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(local, values[i], 1)
        cuda.syncthreads()
        for b in range(tid, 256, cuda.blockDim.x):
            if local[b] != 0:
                cuda.atomic.add(hist, b, local[b])
        if tid == 0:
            total = 0
            for t in range(64):
                total += marks[t]
            seen[cuda.blockIdx.x] = total
    values = np.random.default_rng(1).integers(0, 256, 4096).astype(np.uint8)
    want = np.bincount(values, minlength=256)
    for run in range(8):
        hist, seen = np.zeros(256, np.int32), np.zeros(4, np.int32)
        with expose_races():
            hist_shared[4, 64](values, hist, seen)
        assert (hist == want).all(), f"run {run}: {int(hist.sum())} of {values.size} counted"
        assert (seen == sum(range(64))).all(), seen
    print("histograms right: 8 of 8")
''')


def test_simulator_shared_arrays_are_one_per_block_under_fast_switching():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "trials with a split shared array: 0" in out.stdout and "histograms right: 8 of 8" in out.stdout


RACE_SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    from numba import cuda
    from numba.cuda.simulator.cudadrv.devicearray import FakeWithinKernelCUDAArray
    from techday.simtools import expose_races

    @cuda.jit
    def plain(counter):
        counter[0] += 1                  # read, add, write: not atomic

    @cuda.jit
    def atomic(counter):
        cuda.atomic.add(counter, 0, 1)

    store = FakeWithinKernelCUDAArray.__setitem__
    for kernel in (plain, atomic):
        counts = []
        for _ in range(10):
            counter = np.zeros(1, np.int64)
            with expose_races():
                kernel[1, 32](counter)
            counts.append(int(counter[0]))
        print(kernel.__name__, json.dumps(counts))
    assert FakeWithinKernelCUDAArray.__setitem__ is store, "expose_races left its store in place"
''')


def test_expose_races_loses_updates_in_every_launch_and_atomics_none():
    """One unsynchronised increment per thread, 32 threads: with only a fast switch interval the
    simulator counted all 32 in every launch (each thread finished before the next one started) and
    a racy histogram sometimes passed on a busy host. Nearly every launch must lose counts (at least 8
    of 10: on the 2-core CI machine with three test workers, 2 launches of 10 once counted all 32, the
    yield finding no other thread ready); atomics none. Wrong answer caught: no yield before the store
    (all 32 counted in every launch)."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", RACE_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    counts = dict((name, json.loads(values)) for name, values in (line.split(" ", 1) for line in out.stdout.splitlines()))
    assert sum(c < 32 for c in counts["plain"]) >= 8, f"racy launches counted every update: {counts['plain']}"
    assert counts["atomic"] == [32] * 10, counts["atomic"]


GENERATOR_SCRIPT = textwrap.dedent('''
    import warnings
    import numpy as np
    from numba.cuda import random as generator
    from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float32
    from techday.simtools import quiet_generator

    compiled = generator.init_xoroshiro128p_states_cpu
    warnings.simplefilter("ignore")
    cases = [(1, 0, 0), (64, 7, 0), (96, 123456789, 3), (5, 2**63 + 5, 1)]
    want = [create_xoroshiro128p_states(n, seed=s, subsequence_start=k).copy_to_host() for n, s, k in cases]
    with quiet_generator():
        assert generator.init_xoroshiro128p_states_cpu is compiled.py_func, "the block kept the compiled function"
        got = [create_xoroshiro128p_states(n, seed=s, subsequence_start=k).copy_to_host() for n, s, k in cases]
        plain, host_plain = generator.xoroshiro128p_uniform_float32, got[1].copy()
        draws_plain = [plain(host_plain, i) for i in range(64) for _ in range(3)]
    assert generator.init_xoroshiro128p_states_cpu is compiled, "the compiled function was not put back"
    for (n, s, k), a, b in zip(cases, want, got):
        assert a.tobytes() == b.tobytes(), f"states differ for n={n} seed={s} start={k}"
    host = want[1].copy()
    draws = [xoroshiro128p_uniform_float32(host, i) for i in range(64) for _ in range(3)]
    assert np.array_equal(np.float32(draws), np.float32(draws_plain)), "draws differ"
    assert host.tobytes() == host_plain.tobytes(), "the states advanced differently"
    try:
        with quiet_generator():
            raise KeyError("inside")
    except KeyError:
        pass
    assert generator.init_xoroshiro128p_states_cpu is compiled, "an error in the block left the plain function"
    print("states and draws equal:", len(cases), "cases")
''')


def test_quiet_generator_creates_the_same_states_without_compiling():
    """Caught: a plain generator that differs from Numba's by one bit anywhere in 4 seeds (the seed
    mixing, the jump-ahead, a state past the first) or in 192 float32 draws; a block that leaves the
    plain functions in numba.cuda.random after it ends, also when it ends in an error."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", GENERATOR_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "states and draws equal: 4 cases" in out.stdout
