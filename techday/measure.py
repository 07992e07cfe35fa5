"""The measurement core shared by the labs and the benchmark suite: one definition of a repeated timing
(median, best, spread) and one table of the error bounds a result of each dtype is held to.

The labs reach these through :mod:`techday.labtools` (``Timing``, ``relative_spread``,
``assert_close``: frozen names), the benchmark suite through :mod:`techday.bench.core` (``Sample``
adds how the seconds were taken; ``check`` compares whole outputs). Neither keeps a copy.

Error bounds. An elementwise result (one output from a few inputs) is held to ``RTOL`` of its dtype
with :func:`numpy.isclose`; float64 then allows a few units in the last place, so a kernel that
computes in float32 and stores float64 fails. A sum of many terms (a reduction, a dot product, a
matrix product) is held to ``NORMWISE_RTOL`` as ``||got - ref|| / ||ref||``: the order of additions
differs between a GPU's tree and the host's pairwise sum, and a thread that adds ``m`` terms in a
grid-stride loop can be off by about ``m`` units of rounding (``m * 2**-53`` for float64). The float64
bound of 1e-10 covers ``m`` up to about a million, any grid of 32 threads or more over 2**25 elements.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

# Elementwise bound per dtype (np.isclose's rtol). "tf32" is float32 storage with TF32 tensor-core
# products (10-bit mantissa). Integers are exact.
RTOL = {"float64": 1e-12, "float32": 1e-5, "tf32": 5e-3, "float16": 1e-2, "bfloat16": 2e-2,
        "int8": 0.0, "uint8": 0.0, "int16": 0.0, "int32": 0.0, "int64": 0.0, "bool": 0.0}
# Normwise bound for sums of many terms (see the module docstring).
NORMWISE_RTOL = {**RTOL, "float64": 1e-10}


def rtol_for(dtype, normwise: bool = False) -> float:
    """The bound for results of ``dtype`` (a NumPy dtype, or a name such as ``"tf32"``). Unknown
    floating kinds get float32's bound; other unknown kinds are compared exactly."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    table = NORMWISE_RTOL if normwise else RTOL
    if name in table:
        return table[name]
    try:
        floating = np.issubdtype(np.dtype(name), np.floating)
    except TypeError:
        floating = True  # a name NumPy does not know is a reduced-precision float ("tf32" spelt otherwise)
    return table["float32"] if floating else 0.0


def relative_spread(seconds: list[float]) -> float:
    """How much repeated timings disagree, relative to their median: the interquartile range from 4
    samples on, the whole range below that (never 0 just because there were few runs)."""
    if not seconds:
        return 0.0
    mid = statistics.median(seconds)
    if not mid:
        return 0.0
    if len(seconds) < 4:
        return (max(seconds) - min(seconds)) / mid
    q = statistics.quantiles(seconds, n=4)
    return (q[2] - q[0]) / mid


@dataclass
class Timing:
    """Repeated measurements of one thing, in seconds, with the label of where they were taken
    ("GPU (NVIDIA H200)", "CPU/simulator (not a GPU figure)")."""

    what: str
    seconds: list[float]
    label: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The fastest repetition (BabelStream quotes this one; the median is the typical one)."""
        return min(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 = 5 % spread); see :func:`relative_spread`."""
        return relative_spread(self.seconds)

    def rate(self, amount: float) -> float:
        """``amount`` per second at the median time (bytes -> B/s, flops -> FLOP/s)."""
        return amount / self.median

    def __str__(self) -> str:
        from .i18n import msg
        from .tier import shown_label

        return msg("techday.timing", "{what}: median {ms:.3f} ms over {runs} runs (spread {spread:.0%}) [{label}]",
                   what=self.what, ms=self.median * 1e3, runs=len(self.seconds), spread=self.spread,
                   label=shown_label(self.label))
