"""techday.simlimits: the CPU tier refuses the launches every GPU refuses. Wrong answers caught: a block
of 2,048 threads (or 1,024 x 2), a grid of 70,000 rows of blocks, a kernel declaring 160 KB of shared
memory or two arrays past 48 KiB together (each ran in the simulator before); right ones that stay:
1,024 threads as 32 x 32, 48 KiB exactly, shared arrays under the race check. And a lab that never
imports Numba does not load it for this."""

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent('''
    import json, sys
    import techday
    lab = techday.setup(tier="cpu", scale="ci", quiet=True)
    loaded_early = "numba.cuda" in sys.modules
    import numpy as np
    from numba import cuda, float64, int32
    from techday.simtrace import check_races

    @cuda.jit
    def fill(a):
        i = cuda.grid(1)
        if i < a.size:
            a[i] = 1

    @cuda.jit
    def big_shared(a):
        s = cuda.shared.array(20000, float64)
        s[0] = 1.0
        a[0] = s[0]

    @cuda.jit
    def two_shared(a, n):
        s = cuda.shared.array(3072, float64)
        t = cuda.shared.array(3072, float64)
        if n:
            u = cuda.shared.array(1, int32)
            u[0] = 1
        s[0] = 1.0
        t[0] = 2.0
        a[0] = s[0] + t[0]

    got = {"loaded_early": loaded_early}

    def run(name, fn):
        try:
            fn()
            got[name] = "ran"
        except Exception as e:
            got[name] = f"{type(e).__name__}: {e}"

    a = np.zeros(4)
    run("threads_2048", lambda: fill[1, 2048](a))
    run("threads_1024x2", lambda: fill[1, (1024, 2)](a))
    run("z_65", lambda: fill[1, (1, 1, 65)](a))
    run("threads_32x32", lambda: fill[1, (32, 32)](a))
    run("grid_y_70000", lambda: fill[(1, 70000), 1](a))
    run("shared_160k", lambda: big_shared[1, 1](a))
    run("shared_48k", lambda: two_shared[1, 1](a, 0))
    got["two_arrays_apart"] = float(a[0])  # 1 + 2: the two arrays are two buffers, not one
    run("shared_48k_plus", lambda: two_shared[1, 1](a, 1))

    def checked():
        with check_races():
            two_shared[1, 1](a, 1)

    run("shared_48k_plus_checked", checked)
    from techday.simtools import quicker_barriers  # labs 03 and 04: keeps the allocator, and its limit

    quicker_barriers()
    run("shared_160k_after_quicker_barriers", lambda: big_shared[1, 1](a))
    a[0] = 0
    run("shared_48k_after_quicker_barriers", lambda: two_shared[1, 1](a, 0))
    got["two_arrays_apart_after"] = float(a[0])
    print(json.dumps(got))
''')


def test_the_cpu_tier_refuses_what_a_gpu_refuses():
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "TECHDAY_KERNEL_LOG")}
    env.update(PYTHONPATH=str(ROOT), TECHDAY_LANG="en")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loaded_early"] is False, got
    for name, what in (("threads_2048", "a block of 2048 x 1 x 1 = 2048 threads"),
                       ("threads_1024x2", "a block of 1024 x 2 x 1 = 2048 threads"),
                       ("z_65", "a block of 1 x 1 x 65 = 65 threads"),
                       ("grid_y_70000", "a grid of 1 x 70000 x 1 blocks"),
                       ("shared_160k", "declares 160000 bytes of shared memory"),
                       ("shared_48k_plus", "declares 49156 bytes of shared memory"),
                       ("shared_48k_plus_checked", "declares 49156 bytes of shared memory"),
                       ("shared_160k_after_quicker_barriers", "declares 160000 bytes of shared memory")):
        assert got[name].startswith(("LaunchRefused", "RuntimeError")) and what in got[name], (name, got[name])
    assert got["threads_32x32"] == "ran" and got["shared_48k"] == "ran", got
    assert got["two_arrays_apart"] == 3.0 and got["two_arrays_apart_after"] == 3.0, got
    assert got["shared_48k_after_quicker_barriers"] == "ran", got


POISON = textwrap.dedent('''
    import json
    import techday
    techday.setup(tier="cpu", scale="ci", quiet=True)
    import numpy as np
    from numba import cuda, float32, int32

    @cuda.jit
    def reads_what_nobody_wrote(out):
        s = cuda.shared.array(4, int32)
        loc = cuda.local.array(2, float32)
        dyn = cuda.shared.array(0, float32)
        out[0] = s[0]
        out[1] = loc[0]
        out[2] = dyn[0]

    @cuda.jit
    def counts_without_zeroing(values, hist):
        local = cuda.shared.array(8, int32)
        cuda.syncthreads()
        for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
            cuda.atomic.add(local, values[i], 1)
        cuda.syncthreads()
        if cuda.threadIdx.x < 8:
            cuda.atomic.add(hist, cuda.threadIdx.x, local[cuda.threadIdx.x])

    out = np.zeros(3)
    reads_what_nobody_wrote[1, 1, 0, 16](out)
    hist = np.zeros(8, np.int32)
    counts_without_zeroing[1, 32](np.arange(64, dtype=np.int64) % 8, hist)  # one block: no buffer of another
    from techday.simtrace import check_races, trace_shared
    checked, traced = np.zeros(8, np.int32), np.zeros(8, np.int32)
    with check_races():  # the race check's own shared arrays are poisoned too
        counts_without_zeroing[1, 32](np.arange(64, dtype=np.int64) % 8, checked)
    with trace_shared():
        counts_without_zeroing[1, 32](np.arange(64, dtype=np.int64) % 8, traced)
    got = {"device_int": cuda.device_array(3, np.int32).copy_to_host().tolist(),
           "device_uint8_f": cuda.device_array((2, 2), np.uint8, order="F").copy_to_host().tolist(),
           "device_like": [str(v) for v in cuda.device_array_like(np.zeros(2, np.float64)).copy_to_host()],
           "kernel": [str(v) for v in out], "hist": hist.tolist(), "checked": checked.tolist(),
           "traced": traced.tolist()}
    print(json.dumps(got))
''')


def test_memory_a_gpu_leaves_uninitialised_is_poisoned_on_the_cpu_tier(tmp_path):
    """NumPy's ``empty`` often hands out zeroed pages, and the simulator zeroes dynamic shared memory:
    a kernel that never zeroes its shared counters, or adds into a ``cuda.device_array`` nobody cleared,
    could be right there. Wrong answer caught: the one-block histogram below without zeroing counts
    8 per bin on a zeroed buffer; poisoned, it is off by one in every bin."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "TECHDAY_KERNEL_LOG")}
    env.update(PYTHONPATH=str(ROOT), TECHDAY_LANG="en")
    script = tmp_path / "poison.py"
    script.write_text(POISON, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["device_int"] == [-1, -1, -1], got
    assert got["device_uint8_f"] == [[255, 255], [255, 255]], got
    assert got["device_like"] == ["nan", "nan"], got
    assert got["kernel"] == ["-1.0", "nan", "nan"], got  # static shared, local, dynamic shared
    assert got["hist"] == got["checked"] == got["traced"] == [7] * 8, got
