"""The GPU benchmark suite behind ``techday bench``: check, time, compare with the device's limits.

- :mod:`.core`: kernels, implementations, the plan of sizes, checking (poisoned outputs, per-dtype
  bounds) and timing (CUDA events, ``perf_counter``, median and spread, L2 flush);
- :mod:`.families`: loads the kernel families from ``benchmarks/`` (course content, one module each);
- :mod:`.limits`: DRAM bandwidth and FLOP/s limits from device attributes, cross-checked with
  :mod:`techday.gpuspecs`;
- :mod:`.env`, :mod:`.schema`: the environment record and the results document (``techday.bench/2``),
  read within size caps and checked against an allow-list;
- :mod:`.runner`: :func:`run_suite`; :mod:`.report`: table, roofline PNG, HTML;
- :mod:`.counts`, :mod:`.verify`: what each kernel counts under a plan, and a results file's figures
  recomputed from that and the project's limits (the leaderboard trusts nothing else);
- :mod:`.leaderboard`: merge many runs; :mod:`.cli`: the ``techday bench`` command.

Lab 08 ("Measure your GPU") runs the quick suite through :func:`run_suite`. Importing this package
imports neither Numba nor CuPy; the runner chooses the tier first.
"""

from .schema import SCHEMA, validate

__all__ = ["SCHEMA", "validate", "run_suite"]


def run_suite(**kwargs):
    """See :func:`techday.bench.runner.run_suite`."""
    from .runner import run_suite as _run

    return _run(**kwargs)

