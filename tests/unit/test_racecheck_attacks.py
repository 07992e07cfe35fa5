"""techday.simtrace.check_races attacked as a CUDA engineer and a grader would: routes to an element the
check once missed (a device array reshaped in the kernel, a record's field, dynamic shared memory, a
race checked under ``expose_races``), right kernels it once crashed or flagged (two shared arrays of
different shapes after ``quicker_barriers``, a check nested in a check or around ``trace_shared``, many
threads storing one computed NaN), and the simulator's methods put back after a kernel that raises.
Each racy kernel stands beside a right one that must stay clean. Also kept: every other route to an
element a kernel can take (device functions, index tuples, negative indices, rows and ``.T`` taken in
the kernel, an atomic against a plain read, a barrier of ``syncthreads_or``), and the honest patterns the
labs teach (trees, zeroing by one thread, many readers, local arrays, compaction, a padded tiled product)."""

import json
import textwrap

import pytest

from tests.unit.test_racecheck import _run

SCRIPT = textwrap.dedent('''
    import json
    import numpy as np
    from numba import cuda, float64, int32
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from techday.simtools import expose_races, quicker_barriers
    from techday.simtrace import check_races, trace_shared

    quicker_barriers()  # as labs 03 and 04 do first: the simulator's allocation of shared arrays wrapped

    @cuda.jit
    def reshaped(a, own):
        b = a.reshape(a.size)
        t = cuda.threadIdx.x
        if own:
            b[t] += 1
        else:
            b[1] += 1

    @cuda.jit
    def record(a, own):
        t = cuda.threadIdx.x
        if own == 1:
            a[t].x += 1
        elif own == 2:  # two fields of one record, one thread each
            if t == 0:
                a[0].x = 1
            if t == 1:
                a[0].y = 2.0
        else:
            a[0].x += 1

    @cuda.jit
    def dynamic(x, out, sync):
        s = cuda.shared.array(0, float64)
        t = cuda.threadIdx.x
        s[t] = x[t]
        if sync:
            cuda.syncthreads()
        out[t] = s[cuda.blockDim.x - 1 - t]

    @cuda.jit
    def dynamic_alias(out):
        a = cuda.shared.array(0, float64)
        b = cuda.shared.array(0, float64)
        t = cuda.threadIdx.x
        if t == 0:
            a[0] = 1.0
        if t == 1:
            out[0] = b[0]

    @cuda.jit
    def count(v, h, plain):
        local = cuda.shared.array(16, int32)
        t = cuda.threadIdx.x
        if t < 16:
            local[t] = 0
        cuda.syncthreads()
        for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
            if plain:
                local[v[i]] += 1
            else:
                cuda.atomic.add(local, v[i], 1)
        cuda.syncthreads()
        if t < 16:
            cuda.atomic.add(h, t, local[t])

    @cuda.jit
    def two_tiles(out):
        a = cuda.shared.array(8, int32)
        b = cuda.shared.array((4, 4), float64)
        t = cuda.threadIdx.x
        a[t] = t
        b[t % 4, t // 4] = 1.0
        cuda.syncthreads()
        out[t] = a[7 - t] + b[t % 4, t // 4] + b.shape[0]

    @cuda.jit
    def nan_flag(x, out, mixed):
        i = cuda.grid(1)
        if mixed and i == 3:
            out[0] = 1.0
        else:
            out[0] = x[i] * 0.0 * np.inf  # a NaN computed by each thread: a new object every time

    @cuda.jit
    def raises(out):
        if cuda.threadIdx.x == 3:
            raise ValueError("boom")
        out[cuda.threadIdx.x] = 1

    @cuda.jit(device=True)
    def bump(h, i):
        h[i] += 1

    @cuda.jit
    def racy_routes(h, route):
        t = cuda.threadIdx.x
        if route == 0:
            bump(h, (0, 0))  # through a device function
        elif route == 1:
            h[0, 1] += 1  # an index tuple
        elif route == 2:
            if t == 0:
                h[-1, -1] = 5  # a negative index and its positive twin
            if t == 1:
                h[h.shape[0] - 1, h.shape[1] - 1] = 7
        elif route == 3:
            row = h[0]  # a row taken in the kernel
            row[1] += 1
        elif route == 4:
            ht = h.T
            ht[1, 0] += 1
        elif route == 5:
            if t == 0:
                cuda.atomic.add(h, (0, 0), 1)
            else:
                h[1, 0] = h[0, 0]  # a plain read against an atomic
        elif route == 6:
            s = cuda.shared.array(4, int32)
            s[0] = t  # then syncthreads_or: a barrier, but after the race
            n = cuda.syncthreads_or(t == 0)
            h[t % 2, 0] = s[0] + n

    @cuda.jit
    def honest(x, out, partial, counter, kind):
        t = cuda.threadIdx.x
        i = cuda.grid(1)
        if kind == 0:  # a tree whose stride doubles, one value per block
            s = cuda.shared.array(16, float64)
            s[t] = x[i]
            cuda.syncthreads()
            step = 1
            while step < cuda.blockDim.x:
                if t % (2 * step) == 0:
                    s[t] += s[t + step]
                cuda.syncthreads()
                step *= 2
            if t == 0:
                partial[cuda.blockIdx.x] = s[0]
        elif kind == 1:  # thread 0 zeroes alone, a barrier, then atomics; early returns after the last barrier
            s = cuda.shared.array(4, int32)
            if t == 0:
                for b in range(4):
                    s[b] = 0
            cuda.syncthreads()
            cuda.atomic.add(s, t % 4, 1)
            n = cuda.syncthreads_count(t < 3)
            if t >= 4:
                return
            out[i] = s[t] + n
        elif kind == 2:  # many threads read one input; a private array; a grid-stride loop over own elements
            loc = cuda.local.array(2, float64)
            loc[0] = x[0]
            for j in range(i, x.shape[0], cuda.gridsize(1)):
                out[j] = x[j] + loc[0] + x[0]
        elif kind == 3:  # stream compaction: a slot from an atomic, then a plain store into it
            if x[i] > 8:
                out[cuda.atomic.add(counter, 0, 1)] = x[i]

    @cuda.jit
    def tiled(a, b, c):  # a 2-D tiled product, one tile padded
        sa = cuda.shared.array((4, 4), float64)
        sb = cuda.shared.array((4, 5), float64)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * 4 + ty
        col = cuda.blockIdx.x * 4 + tx
        acc = 0.0
        for k0 in range(0, a.shape[1], 4):
            sa[ty, tx] = a[row, k0 + tx] if row < a.shape[0] and k0 + tx < a.shape[1] else 0.0
            sb[ty, tx] = b[k0 + ty, col] if k0 + ty < b.shape[0] and col < b.shape[1] else 0.0
            cuda.syncthreads()
            for k in range(4):
                acc += sa[ty, k] * sb[k, tx]
            cuda.syncthreads()
        if row < c.shape[0] and col < c.shape[1]:
            c[row, col] = acc

    v = np.random.default_rng(1).integers(0, 16, 300)
    x = np.arange(1.0, 9.0)
    got = {}

    def run(name, fn):
        try:
            with check_races() as races:
                fn()
            got[name] = {"hazards": len(races.hazards), "first": races.first(),
                         "spaces": sorted({h.space for h in races.hazards})}
        except Exception as e:  # a crash is an answer too: the test says which
            got[name] = {"error": f"{type(e).__name__}: {e}"}

    rec = np.zeros(4, dtype=[("x", np.int64), ("y", np.float64)])
    run("reshape_racy", lambda: reshaped[1, 4](np.zeros((2, 3), np.int64), 0))
    run("reshape_own", lambda: reshaped[1, 4](np.zeros((2, 3), np.int64), 1))
    run("record_racy", lambda: record[1, 4](rec.copy(), 0))
    run("record_own", lambda: record[1, 4](rec.copy(), 1))
    fields = rec.copy()
    run("record_two_fields", lambda: record[1, 4](fields, 2))
    got["record_two_fields_result"] = [int(fields[0]["x"]), float(fields[0]["y"])]
    out_dyn = np.zeros(8)
    run("dynamic_sync", lambda: dynamic[1, 8, 0, 64](x, out_dyn, 1))
    got["dynamic_sync_right"] = out_dyn.tolist() == x[::-1].tolist()
    run("dynamic_no_sync", lambda: dynamic[1, 8, 0, 64](x, np.zeros(8), 0))
    run("dynamic_alias", lambda: dynamic_alias[1, 4, 0, 64](np.zeros(1)))

    def exposed(plain):
        with expose_races():
            count[2, 32](v, np.zeros(16, np.int64), plain)

    run("expose_inside_plain", lambda: exposed(1))
    run("expose_inside_atomic", lambda: exposed(0))
    out_tiles = np.zeros(8, np.int64)
    run("two_tiles", lambda: two_tiles[1, 8](out_tiles))
    got["two_tiles_result"] = out_tiles.tolist()
    out_nested = np.zeros(8, np.int64)

    def nested():
        with check_races() as inner:
            two_tiles[1, 8](out_nested)
        got["nested_inner_hazards"] = len(inner.hazards)

    run("nested", nested)
    got["nested_result"] = out_nested.tolist()
    out_traced = np.zeros(8, np.int64)

    def traced():
        with trace_shared() as shared:
            two_tiles[1, 8](out_traced)
        got["traced_sites"] = sorted(str(s) for s in shared.sites.values())

    run("trace_shared_inside", traced)
    got["traced_result"] = out_traced.tolist()
    out_alone = np.zeros(8, np.int64)
    try:
        with trace_shared() as shared:
            two_tiles[1, 8](out_alone)
        got["trace_alone_result"] = out_alone.tolist()
    except Exception as e:
        got["trace_alone_result"] = f"{type(e).__name__}: {e}"
    run("nan_flag", lambda: nan_flag[2, 4](x, np.zeros(1), 0))
    run("nan_or_one", lambda: nan_flag[2, 4](x, np.zeros(1), 1))
    for route in range(7):
        run(f"route_{route}", lambda: racy_routes[1, 4](cuda.to_device(np.zeros((2, 2), np.int64)), route))
    xs = np.arange(32.0)
    for kind in range(4):
        partial = np.zeros(2)
        run(f"honest_{kind}", lambda: honest[2, 16](xs, np.zeros(32), partial, np.zeros(1, np.int64), kind))
        if kind == 0:
            got["honest_tree_right"] = partial.tolist() == [xs[:16].sum(), xs[16:].sum()]
    am = np.random.default_rng(2).standard_normal((7, 9))
    bm = np.random.default_rng(3).standard_normal((9, 6))
    cm = np.zeros((7, 6))
    run("tiled", lambda: tiled[(2, 2), (4, 4)](am, bm, cm))
    got["tiled_right"] = bool(np.allclose(cm, am @ bm))
    run("raises", lambda: raises[1, 8](np.zeros(8, np.int64)))
    got["restored"] = all("check_races" not in f.__qualname__ for f in (
        FakeCUDAArray.__getitem__, FakeCUDAArray.__setitem__, FakeCUDAShared.array))
    print(json.dumps(got))
''')

TILES = [12 - t for t in range(8)]  # a[7 - t] + 1.0 + 4: both tiles of their own shapes


@pytest.fixture(scope="module")
def got(tmp_path_factory):
    out = _run(tmp_path_factory.mktemp("attacks"), SCRIPT)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_device_array_reshaped_in_the_kernel_is_checked(got):
    """Wrong answer caught: ``b = a.reshape(a.size); b[1] += 1`` by every thread (the reshaped array was
    the simulator's plain device array, whose accesses the check did not see: 0 accesses, clean). Right
    answer beside it: each thread its own element of the reshaped array."""
    assert got["reshape_racy"]["hazards"] == 1 and "b[1] += 1" in got["reshape_racy"]["first"], got["reshape_racy"]
    assert got["reshape_own"]["hazards"] == 0, got["reshape_own"]


def test_a_records_fields_are_checked(got):
    """Wrong answer caught: ``a[0].x += 1`` by every thread of a structured array (a field read and
    written as an attribute went past the check). Right answers: each thread its own record; two threads
    writing two fields of one record (not one element: no race)."""
    assert got["record_racy"]["hazards"] == 1 and "a[0].x += 1" in got["record_racy"]["first"], got["record_racy"]
    assert got["record_own"]["hazards"] == 0 and got["record_two_fields"]["hazards"] == 0, got
    assert got["record_two_fields_result"] == [1, 2.0]


def test_dynamic_shared_memory_is_checked(got):
    """Wrong answer caught: a reversal through ``cuda.shared.array(0, ...)`` without its barrier (dynamic
    shared memory was not recorded), and two dynamic arrays, which share one buffer, written through one
    and read through the other. Right answer: the same reversal with the barrier, clean and right."""
    assert got["dynamic_no_sync"]["hazards"] > 0 and got["dynamic_no_sync"]["spaces"] == ["shared"], got
    assert "cuda.syncthreads() is missing" in got["dynamic_no_sync"]["first"]
    assert got["dynamic_alias"]["hazards"] == 1, got["dynamic_alias"]
    assert got["dynamic_sync"]["hazards"] == 0 and got["dynamic_sync_right"] is True, got["dynamic_sync"]


def test_expose_races_inside_the_check_leaves_shared_memory_checked(got):
    """Wrong answer caught: a privatised histogram counting with a plain ``local[v[i]] += 1``, launched
    under ``expose_races()`` inside the check (expose_races installed the simulator's shared arrays in
    place of the check's: 0 hazards). Right answer: the atomic count, clean."""
    assert got["expose_inside_plain"]["hazards"] > 0, got["expose_inside_plain"]
    assert got["expose_inside_plain"]["spaces"] == ["shared"]
    assert got["expose_inside_atomic"]["hazards"] == 0, got["expose_inside_atomic"]


def test_two_shared_arrays_of_different_shapes_after_quicker_barriers(got):
    """Right answer that crashed: a kernel with two shared arrays of different shapes (a tile and a padded
    tile), race-checked after ``quicker_barriers()`` as labs 03 and 04 do: both arrays took the first's
    shape ("too many indices"), the hidden test failing a right kernel. Also ``trace_shared`` alone."""
    assert got["two_tiles"] == {"hazards": 0, "first": "", "spaces": []}, got["two_tiles"]
    assert got["two_tiles_result"] == TILES
    assert got["trace_alone_result"] == TILES


def test_a_check_nested_in_a_check_or_around_trace_shared_keeps_the_kernel_right(got):
    """Right answer that crashed: the same two-tile kernel inside a check nested in another check, and
    inside ``trace_shared`` nested in a check (the inner allocation took the outer's line as its site,
    so every shared array of the kernel was one)."""
    assert got["nested"]["hazards"] == 0 and got["nested_inner_hazards"] == 0, got
    assert got["nested_result"] == TILES
    assert got["trace_shared_inside"]["hazards"] == 0 and got["traced_result"] == TILES, got
    assert got["traced_sites"] == ["((4, 4), 'float64')", "((8,), 'int32')"], got["traced_sites"]


def test_one_computed_nan_stored_by_many_threads_is_one_value(got):
    """Right answer that was flagged: every thread storing the same computed NaN in one flag (two NaN
    objects never compare equal, so they counted as two values: a write-write race). A NaN and a 1.0
    stored in one element are still a race."""
    assert got["nan_flag"]["hazards"] == 0, got["nan_flag"]
    assert got["nan_or_one"]["hazards"] == 1, got["nan_or_one"]


def test_a_kernel_that_raises_puts_the_simulator_back(got):
    """The kernel's own error reaches the caller, and the simulator's methods are its own again."""
    assert got["raises"]["error"].startswith("ValueError") and "boom" in got["raises"]["error"], got["raises"]
    assert got["restored"] is True


def test_every_route_to_an_element_is_seen(got):
    """Wrong answers caught, one per route to the element: a ``+= 1`` through a device function, through
    an index tuple, through a row ``h[0]`` and through ``h.T`` taken in the kernel; ``h[-1, -1]`` and
    its positive twin stored by two threads; a plain read against an atomic add; a shared store racing
    before ``cuda.syncthreads_or``."""
    for route in range(7):
        assert got[f"route_{route}"].get("hazards") == 1, (route, got[f"route_{route}"])


def test_honest_patterns_the_labs_teach_stay_clean(got):
    """Right answers that must lose no point: a tree whose stride doubles with one ``partial[block]`` per
    block; thread 0 zeroing shared memory alone before a barrier, then atomics, ``syncthreads_count``
    and threads returning early; many threads reading one input beside a local array and a grid-stride
    loop over their own elements; a compaction storing into the slot an atomic handed out; a 2-D tiled
    product with a padded tile."""
    for name in ("honest_0", "honest_1", "honest_2", "honest_3", "tiled"):
        assert got[name] == {"hazards": 0, "first": "", "spaces": []}, (name, got[name])
    assert got["honest_tree_right"] is True and got["tiled_right"] is True
