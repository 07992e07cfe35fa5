"""techday.simtrace.check_races: data races found from the simulator's accesses, whatever order its
threads ran in. Wrong answers caught, each beside a right one that must stay clean: a histogram's
plain ``+=`` in global memory (one block and across blocks: the simulator runs blocks one after
another, so across blocks no count is ever lost there); a privatised histogram's plain merge into
global memory, its plain count in shared memory, and each of its two barriers left out; a tree
reduction without its barriers; a thread summing a shared slice with NumPy before the barrier; a
slice store racing with element updates; two threads storing different values in one element. Also:
atomics under ``expose_races``, one value stored by many threads (a flag), two launches touching one
element, the methods put back after the block, and nothing to check on the GPU tier."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    from numba import cuda, float64, int32
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as Arr
    from numba.cuda.simulator.kernel import BlockThread
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from techday.simtools import expose_races
    from techday.simtrace import check_races

    @cuda.jit
    def hist_atomic(v, h):
        for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(h, v[i], 1)

    @cuda.jit
    def hist_plain(v, h):
        for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
            h[v[i]] += 1

    @cuda.jit
    def hist_shared(v, h, merge_plain, count_plain, sync1, sync2):
        local = cuda.shared.array(16, int32)
        t = cuda.threadIdx.x
        for b in range(t, h.shape[0], cuda.blockDim.x):
            local[b] = 0
        if sync1:
            cuda.syncthreads()
        for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
            if count_plain:
                local[v[i]] += 1
            else:
                cuda.atomic.add(local, v[i], 1)
        if sync2:
            cuda.syncthreads()
        for b in range(t, h.shape[0], cuda.blockDim.x):
            if merge_plain:
                h[b] += local[b]
            else:
                cuda.atomic.add(h, b, local[b])

    @cuda.jit
    def tree(x, out, sync):
        cache = cuda.shared.array(32, float64)
        t = cuda.threadIdx.x
        cache[t] = x[cuda.grid(1)]
        if sync:
            cuda.syncthreads()
        s = 16
        while s > 0:
            if t < s:
                cache[t] += cache[t + s]
            if sync:
                cuda.syncthreads()
            s //= 2
        if t == 0:
            out[cuda.blockIdx.x] = cache[0]

    @cuda.jit
    def tree_divergent(x, out, how):
        cache = cuda.shared.array(32, float64)
        t = cuda.threadIdx.x
        cache[t] = x[cuda.grid(1)]
        cuda.syncthreads()
        s = 16
        while s > 0:
            if how == 1:  # the barrier inside the if: threads t >= s skip it
                if t < s:
                    cache[t] += cache[t + s]
                    cuda.syncthreads()
            else:  # threads with nothing left to add return before the barrier
                if t >= s:
                    return
                cache[t] += cache[t + s]
                cuda.syncthreads()
            s //= 2
        if t == 0:
            out[cuda.blockIdx.x] = cache[0]

    @cuda.jit
    def two_sites(x, out):
        t = cuda.threadIdx.x
        if t % 2 == 0:
            cuda.syncthreads()
        else:
            cuda.syncthreads()
        out[cuda.grid(1)] = x[cuda.grid(1)]

    @cuda.jit
    def slice_sum(x, out, sync):
        cache = cuda.shared.array(32, float64)
        t = cuda.threadIdx.x
        cache[t] = x[cuda.grid(1)]
        if sync:
            cuda.syncthreads()
        if t == 0:
            out[cuda.blockIdx.x] = cache[0:32].sum()

    @cuda.jit
    def slice_zero(x, out, sync):
        cache = cuda.shared.array(32, float64)
        t = cuda.threadIdx.x
        if t == 0:
            cache[:] = 0
        if sync:
            cuda.syncthreads()
        cache[t] += x[cuda.grid(1)]
        cuda.syncthreads()
        if t == 0:
            s = 0.0
            for k in range(32):
                s += cache[k]
            out[cuda.blockIdx.x] = s

    @cuda.jit
    def flag(v, f):
        i = cuda.grid(1)
        if i < v.shape[0] and v[i] > 3:
            f[0] = 1

    @cuda.jit
    def last_writer(v, f):
        i = cuda.grid(1)
        if i < v.shape[0]:
            f[0] = i

    v = np.random.default_rng(0).integers(0, 16, 500)
    x = np.arange(64.0)
    got = {}

    def run(name, fn):
        with check_races() as races:
            fn()
        got[name] = {"hazards": len(races.hazards), "barriers": [b.count for b in races.barriers],
                     "kinds": sorted({h.kind for h in races.hazards}),
                     "spaces": sorted({h.space for h in races.hazards}), "first": races.first(),
                     "cross_block": any(h.first.block != h.second.block for h in races.hazards),
                     "accesses": races.accesses, "launches": races.launches}

    run("atomic", lambda: hist_atomic[2, 32](v, np.zeros(16, np.int64)))
    run("plain_one_block", lambda: hist_plain[1, 32](v, np.zeros(16, np.int64)))
    run("plain_one_thread_per_block", lambda: hist_plain[2, 1](v, np.zeros(16, np.int64)))
    for name, args in (("shared_ok", (0, 0, 1, 1)), ("shared_merge_plain", (1, 0, 1, 1)),
                       ("shared_count_plain", (0, 1, 1, 1)), ("shared_no_sync1", (0, 0, 0, 1)),
                       ("shared_no_sync2", (0, 0, 1, 0))):
        run(name, lambda: hist_shared[2, 32](v, np.zeros(16, np.int64), *args))
    for kernel in (tree, slice_sum, slice_zero):
        for sync in (1, 0):
            run(f"{kernel.__name__}_{sync}", lambda: kernel[2, 32](x, np.zeros(2), sync))
    for how in (1, 2):
        out_d = np.zeros(2)
        run(f"tree_divergent_{how}", lambda: tree_divergent[2, 32](x, out_d, how))
        got[f"tree_divergent_{how}"]["right_sums"] = bool(np.allclose(out_d, [x[:32].sum(), x[32:].sum()]))
    run("two_sites", lambda: two_sites[1, 4](x, np.zeros(64)))
    run("flag", lambda: flag[2, 32](v, np.zeros(1, np.int64)))
    run("last_writer", lambda: last_writer[2, 32](v, np.zeros(1, np.int64)))
    d = cuda.to_device(np.zeros(16, np.int64))
    run("two_launches", lambda: (hist_plain[1, 1](v, d), hist_plain[1, 1](v, d)))

    def under_expose(kernel):
        with expose_races():
            kernel[2, 32](v, np.zeros(16, np.int64))

    run("atomic_expose_inside", lambda: under_expose(hist_atomic))
    with expose_races():
        run("atomic_expose_outside", lambda: hist_atomic[2, 32](v, np.zeros(16, np.int64)))
        run("plain_expose_outside", lambda: hist_plain[2, 32](v, np.zeros(16, np.int64)))
    got["restored"] = ("check_races" not in Arr.__getitem__.__qualname__
                       and "check_races" not in Arr.__setitem__.__qualname__
                       and "check_races" not in FakeCUDAShared.array.__qualname__
                       and "check_races" not in BlockThread.syncthreads.__qualname__)
    print(json.dumps(got))
''')


def _run(tmp_path, script: str, lang: str = "en"):
    """Run ``script`` from a file (so the lines a race report quotes can be read back) in the simulator."""
    path = tmp_path / "kernels.py"
    path.write_text(script, encoding="utf-8")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT), "TECHDAY_LANG": lang}
    return subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The kernels of SCRIPT under the check, run once for the tests of this module."""
    out = _run(tmp_path_factory.mktemp("races"), SCRIPT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_races_are_found_whatever_order_the_threads_ran_in_and_right_kernels_stay_clean(results):
    got = results
    clean = ["atomic", "shared_ok", "tree_1", "slice_sum_1", "slice_zero_1", "flag",
             "two_launches", "atomic_expose_inside", "atomic_expose_outside"]
    racy = ["plain_one_block", "plain_one_thread_per_block", "shared_merge_plain", "shared_count_plain",
            "shared_no_sync1", "shared_no_sync2", "tree_0", "slice_sum_0", "slice_zero_0", "last_writer",
            "plain_expose_outside"]
    assert {name: got[name]["hazards"] for name in clean} == dict.fromkeys(clean, 0), got
    assert all(got[name]["hazards"] > 0 for name in racy), {name: got[name] for name in racy}
    assert all(got[name]["accesses"] > 0 for name in clean + racy)
    # Across blocks: the simulator never loses a count there, and the race is still reported as one
    # between two blocks, in global memory.
    assert got["plain_one_thread_per_block"]["cross_block"] and not got["plain_one_block"]["cross_block"]
    merge = got["shared_merge_plain"]
    assert merge["cross_block"] and merge["spaces"] == ["global"] and merge["kinds"] == ["read-write"], merge
    assert "threads of two blocks" in merge["first"] and "h[b] += local[b]" in merge["first"], merge["first"]
    # In shared memory, between two barriers: where, who and which line.
    count = got["shared_count_plain"]
    assert count["spaces"] == ["shared"] and not count["cross_block"], count
    assert "shared array of line" in count["first"] and "local[v[i]] += 1" in count["first"], count["first"]
    assert "cuda.syncthreads() is missing" in count["first"]
    assert got["shared_no_sync1"]["kinds"] == ["atomic-plain"] and got["shared_no_sync2"]["kinds"] == ["atomic-plain"]
    assert got["last_writer"]["kinds"] == ["write-write"]
    assert "cache[0:32].sum()" in got["slice_sum_0"]["first"], got["slice_sum_0"]["first"]
    assert "cache[:] = 0" in got["slice_zero_0"]["first"], got["slice_zero_0"]["first"]
    assert got["two_launches"]["launches"] == 2
    assert all(got[name]["barriers"] == [] for name in clean + racy), got


def test_barriers_in_divergent_code_are_found(results):
    """Rule 2 of lab 03 broken two ways (the barrier inside ``if t < s``; a return before the barrier):
    the simulator releases a barrier once every thread still running waits at it, so both trees give
    the right sums there, and the epochs the race check orders by no longer line up. Reported per
    block, the thread that passed the most barriers against one that passed fewer, and where they
    part; also one barrier for even threads and another for odd ones (the same count, two places)."""
    got = results
    for how in (1, 2):
        tree = got[f"tree_divergent_{how}"]
        assert tree["right_sums"] is True, tree  # the simulator's answer is right: the result cannot tell
        assert tree["barriers"] == [[6, 5], [6, 5]], tree  # one per block: thread 0 passed 6, thread 1 five
        assert "barriers in divergent code" in tree["first"] and "cuda.syncthreads()" in tree["first"], tree
    sites = got["two_sites"]
    assert sites["barriers"] == [[1, 1]] and "line" in sites["first"], sites
    assert got["restored"] is True


def test_a_race_is_described_in_korean(tmp_path):
    script = textwrap.dedent('''
        import numpy as np
        from numba import cuda
        from techday.simtrace import check_races

        @cuda.jit
        def racy(h):
            h[0] += 1

        with check_races() as races:
            racy[2, 4](np.zeros(1, np.int64))
        print(races.first())
    ''')
    out = _run(tmp_path, script, "ko")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "전역 메모리의 경쟁 상태" in out.stdout and "h[0] += 1" in out.stdout, out.stdout


def test_there_are_no_races_to_check_outside_the_simulator():
    script = ("from techday.simtrace import check_races, TraceUnavailable\n"
              "try:\n    check_races().__enter__()\nexcept TraceUnavailable as e:\n    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "refused: races are checked in the CUDA simulator only" in out.stdout, out.stdout + out.stderr
