"""The CPU tier against C: the project's Numba copy and triad beside a C STREAM build, interleaved.

    python benchmarks/c_stream.py [--n 33554432] [--rounds 5] [--reps 10]

Builds a STREAM-style copy and triad in C (OpenMP, ``-O3 -march=native``, first-touch initialisation,
``omp_get_wtime``, the best of ``--reps`` repetitions, as McCalpin's STREAM reports it), then runs
rounds that alternate C, the project's Numba parallel kernels (``benchmarks/stream.py``) and NumPy, so
a change in machine load falls on all three alike. Prints the best GB/s of each and the ratios.
Bytes are counted as STREAM counts them (copy 16, triad 24 per element; no write-allocate). CPU
figures only: nothing here is a GPU figure. Needs a C compiler with OpenMP (``cc -fopenmp``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

C_SOURCE = r"""
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]); int reps = atoi(argv[2]); const double s = 0.4;
    double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double)), *c = malloc(n * sizeof(double));
    #pragma omp parallel for
    for (long i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.0; }
    double copy = 1e30, triad = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = omp_get_wtime();
        #pragma omp parallel for
        for (long i = 0; i < n; i++) c[i] = a[i];
        t = omp_get_wtime() - t; if (t < copy) copy = t;
        t = omp_get_wtime();
        #pragma omp parallel for
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        t = omp_get_wtime() - t; if (t < triad) triad = t;
    }
    double ea = 1.0, ec = 0.0;  /* the same steps on scalars: what every element must hold */
    for (int r = 0; r < reps; r++) { ec = ea; ea = 2.0 + s * ec; }
    for (long i = 0; i < n; i += n / 97 + 1)
        if (a[i] < ea * (1 - 1e-12) || a[i] > ea * (1 + 1e-12) || c[i] != ec) { fprintf(stderr, "wrong result\n"); return 1; }
    printf("%.9e %.9e\n", copy, triad);
    return 0;
}
"""


def build(workdir: Path) -> Path:
    src, exe = workdir / "stream.c", workdir / "stream"
    src.write_text(C_SOURCE)
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O3", "-march=native", "-fopenmp", str(src), "-o", str(exe)], check=True)
    return exe


def best(fn, reps: int) -> float:
    fn()  # compiles (Numba) and touches the pages
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2**25)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args(argv)
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # CPU only: never touch a GPU from here
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from techday.bench.families import load

    st = load("stream")
    n, s = args.n, 0.4
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.zeros(n)
    figures: dict[str, list[float]] = {k: [] for k in ("c copy", "c triad", "numba copy", "numba triad",
                                                         "numpy copy", "numpy triad")}
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        for _ in range(args.rounds):
            copy_s, triad_s = (float(x) for x in subprocess.run([str(exe), str(n), str(args.reps)], check=True,
                                                                capture_output=True, text=True).stdout.split())
            figures["c copy"].append(16 * n / copy_s / 1e9)
            figures["c triad"].append(24 * n / triad_s / 1e9)
            figures["numba copy"].append(16 * n / best(lambda: st.copy_cpu(a, c), args.reps) / 1e9)
            figures["numba triad"].append(24 * n / best(lambda: st.triad_cpu(b, c, s, a), args.reps) / 1e9)
            figures["numpy copy"].append(16 * n / best(lambda: np.copyto(c, a), args.reps) / 1e9)
            figures["numpy triad"].append(24 * n / best(lambda: st._numpy_triad(b, c, s, a), args.reps) / 1e9)
    top = {k: max(v) for k, v in figures.items()}
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU tier (CPU figures, not GPU figures), n = {n:,}, {args.rounds} interleaved rounds, best of "
          f"{args.reps}; {os.cpu_count()} cores, load {load_avg:.2f}")
    for k, v in top.items():
        print(f"  {k:12s} {v:8.2f} GB/s")
    for op in ("copy", "triad"):
        print(f"  {op}: numba / C = {top['numba ' + op] / top['c ' + op]:.3f}, "
              f"numpy / C = {top['numpy ' + op] / top['c ' + op]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
