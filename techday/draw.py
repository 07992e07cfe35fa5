"""The grading draw: inputs of hidden tests drawn afresh for every graded hand-in.

Why it exists. The course is an open repository: every hidden test's inputs are published with it
(lab 07's hidden pictures are fixed tuples of names, shapes and origins; lab 17's hidden data sets
fixed seeds). An answer that returns results computed in advance for exactly those inputs, and
anything for the rest, passes every fixed hidden test. So the certificate labs' hidden tests draw
further cases from a seed that nobody knows before the tests run: the grader's executor, outside the
trainee's kernel, draws one per hand-in (``secrets``), hands it to the referee in the file the kernel
reads and deletes before any notebook code runs (:mod:`techday.grading.referee`), and records it with
the grade (``draw`` in ``build/grading/<lab>/state.json`` and ``report.json``).

How a test asks. ``seed(label)`` and ``rng(label)`` raise the audit event :data:`EVENT`; the referee
answers it only while it runs a course test cell and only when the caller is that cell's code (or a
helper a course cell defined, through this module's own functions): a notebook cell that asks, or an
answer a test calls that asks, gets nothing and the refusal is recorded (the hand-in is flagged).
Outside the grader (``techday validate``, papermill, a trainee running the test cells) nothing answers
the event and the draw comes from ``$TECHDAY_DRAW`` when it is set (an integer), else :data:`DEFAULT`,
so a run is reproducible; ``techday validate --draw random`` runs the labs on a fresh draw.

Labs introduced: 07 (CUDA track assessment) and 17 (deep-learning track assessment).

What it does not cover: an answer that computes honestly from the arguments it is handed is right by
definition, whatever they are; the fixed cases stay fixed (and published); and a test sees only the
cases its own draw makes (a wrong answer may still pass a draw that misses its fault: the fixed edge
cases stay for that). See grading/README.md ("Hidden inputs drawn per grading")."""

from __future__ import annotations

import hashlib
import os
import sys

EVENT = "techday.referee.draw"
ENV = "TECHDAY_DRAW"
DEFAULT = 1207  # the draw outside the grader: fixed, so a validate run or a trainee's rerun is reproducible
SEED_BITS = 62

__all__ = ["DEFAULT", "ENV", "EVENT", "base", "parse", "rng", "seed"]


def parse(text: str) -> int:
    """A draw written as text (``$TECHDAY_DRAW``, ``--draw``): a non-negative integer."""
    from .i18n import msg

    try:
        value = int(str(text).strip().replace("_", ""))
    except ValueError:
        value = -1
    if not 0 <= value < 2 ** SEED_BITS:
        raise ValueError(msg("techday.draw_not_a_seed", "a draw is a whole number from 0 to 2**{bits} - 1, not {text}",
                             bits=SEED_BITS, text=repr(text)))
    return value


def base() -> int:
    """The draw of this run: the grader's (only while it runs a course test cell), else ``$TECHDAY_DRAW``,
    else :data:`DEFAULT`."""
    box: list = []
    sys.audit(EVENT, box)  # the referee answers by putting its draw in box, or refuses (RuntimeError)
    if box:
        return int(box[0])
    text = os.environ.get(ENV, "").strip()
    return parse(text) if text else DEFAULT


def seed(label: str) -> int:
    """The seed of the cases labelled ``label`` (a test's own name: each test draws apart) in this draw."""
    digest = hashlib.sha256(f"{base()}:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


def rng(label: str):
    """A NumPy generator of the cases labelled ``label`` in this draw."""
    import numpy as np

    return np.random.default_rng(seed(label))
