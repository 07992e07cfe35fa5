"""Small helpers for the deep-learning labs 13-16: the track's assessment rule, honest labels for
throughput figures, the layout of a DDP run on the GPUs this machine has, and launching a script
under ``torchrun`` on this machine only.

The labs teach the training code itself; what lives here is plumbing a trainee would not write in a
workshop. Importing this module does not import PyTorch.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from . import proctree
from .i18n import msg

TRACK = "deep-learning"


def assessment_rule(track: str = TRACK, root: Path | None = None) -> dict:
    """The pass rule of a track's assessment lab, as ``course/syllabus.toml`` states it
    (``[tracks.<track>] assessment_bar = {...}``). Lab 17 reads its accuracy bars from here: the
    trained model's on plates, and the transfer exercise's on flanges (``transfer_*``)."""
    from .course.syllabus import CourseError, load_course

    course = load_course(root)
    if track not in course.tracks:
        raise CourseError(f"course/syllabus.toml has no track {track!r}")
    spec = course.tracks[track]
    rule = {"lab": spec.assessment, **spec.assessment_bar}
    if not rule["lab"]:
        raise CourseError(f"course/syllabus.toml: [tracks.{track}] pass_rule names no assessment lab")
    for key in ("min_mean_accuracy", "min_accuracy", "hidden_sets", "samples_per_set", "transfer_labels_per_class",
                "transfer_min_mean_accuracy", "transfer_min_accuracy"):
        if key not in rule:
            raise CourseError(f"course/syllabus.toml: [tracks.{track}] assessment_bar needs {key!r}")
    for prefix in ("", "transfer_"):
        if not 0 < rule[f"{prefix}min_accuracy"] <= rule[f"{prefix}min_mean_accuracy"] <= 1:
            raise CourseError(f"course/syllabus.toml: [tracks.{track}] assessment_bar: need 0 < {prefix}min_accuracy <= "
                              f"{prefix}min_mean_accuracy <= 1, got {rule}")
    if not (isinstance(rule["transfer_labels_per_class"], int) and rule["transfer_labels_per_class"] > 0):
        raise CourseError(f"course/syllabus.toml: [tracks.{track}] assessment_bar: transfer_labels_per_class must be "
                          f"a positive whole number, got {rule['transfer_labels_per_class']!r}")
    return rule


def device_label(device) -> str:
    """How to label a figure measured on ``device``: GPU figures name the GPU, CPU ones say so."""
    import torch

    from .tier import figure_label

    device = torch.device(device)
    if device.type == "cuda":
        return figure_label(torch.cuda.get_device_name(device))
    n = torch.get_num_threads()
    return figure_label(None, f"CPU, {n} thread{'s' if n != 1 else ''}")


@dataclass(frozen=True)
class DDPPlan:
    """How to lay out a DDP run on this machine: how many processes, which backend, and each rank's
    device (``"cuda:<i>"`` or ``"cpu"``), rank 0 first."""

    world_size: int
    backend: str                 # "nccl" or "gloo"
    devices: tuple[str, ...]
    reason: str

    @property
    def use_cuda(self) -> bool:
        return self.backend == "nccl"


def ddp_plan(visible_gpus: int, nproc: int | None = None) -> DDPPlan:
    """Choose the layout of a DDP run from the number of GPUs this process can see.

    ``nproc`` processes (default: one per visible GPU, and 2 when fewer than 2 are visible). When
    there is a GPU for every process, rank ``r`` gets ``cuda:r`` and the backend is ``nccl``: the
    layout DDP is built for. Otherwise every rank runs on the CPU with ``gloo``: NCCL refuses two
    ranks on one GPU, and 2 processes sharing one GPU (or one MIG slice) would only take turns on it,
    with every all-reduce through host memory, so their timings would say nothing about DDP. No rank
    is ever given a GPU ordinal that is not visible.
    """
    if isinstance(visible_gpus, bool) or not isinstance(visible_gpus, int) or visible_gpus < 0:
        raise ValueError(msg("techday.visible_gpus_invalid", "visible_gpus must be a whole number >= 0, not {value!r}",
                             value=visible_gpus))
    if nproc is None:
        nproc = visible_gpus if visible_gpus >= 2 else 2
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(msg("techday.nproc_invalid", "nproc must be a whole number >= 1, not {value!r}", value=nproc))
    if visible_gpus >= nproc:
        return DDPPlan(nproc, "nccl", tuple(f"cuda:{r}" for r in range(nproc)),
                       msg("techday.ddp_nccl", "{gpus} GPU(s) visible: one process per GPU, nccl", gpus=visible_gpus))
    if visible_gpus == 0:
        why = msg("techday.ddp_gloo_no_gpu", "0 GPUs visible: CPU processes, gloo")
    else:
        why = msg("techday.ddp_gloo_shared", "{gpus} GPU(s) visible for {nproc} processes: CPU processes, gloo "
                  "(nccl needs a GPU of its own for every process)", gpus=visible_gpus, nproc=nproc)
    return DDPPlan(nproc, "gloo", ("cpu",) * nproc, why)


def write_functions(path: Path | str, functions, header: str = "") -> Path:
    """Write the source of ``functions`` (defined in a notebook or a module) into a Python module,
    after ``header`` (its imports), so that processes started by ``torchrun`` can import them.
    Lab 14 ships the trainee's own functions to its worker processes this way."""
    parts = [textwrap.dedent(header).strip(), ""]
    for fn in functions:
        parts.append(textwrap.dedent(inspect.getsource(fn)).rstrip())
        parts.append("")
    path = Path(path)
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def torchrun(script: Path | str, args=(), nproc: int = 2, timeout: float = 180, cwd: Path | str | None = None,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m torch.distributed.run --standalone --nproc_per_node nproc script args`` on this
    machine only (rendezvous and process group on the loopback address 127.0.0.1), with a timeout.

    Returns the completed process; raises ``RuntimeError`` with the end of its output if it fails or
    times out. One thread per process: the processes share the machine's cores.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(script), *[str(a) for a in args]]
    run_env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
               **(env or {})}
    # Processes started here must import the same techday (and the notebook's folder) as the notebook.
    paths = [str(Path(cwd or ".").resolve()), str(Path(__file__).resolve().parent.parent)]
    run_env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [run_env.get("PYTHONPATH", "")] if p])
    # torchrun's agent makes a log folder per run in the temporary folder and leaves it there: give the
    # run a temporary folder of its own and remove it with everything in it afterwards.
    with tempfile.TemporaryDirectory(prefix="techday-torchrun-") as tmp:
        run_env["TMPDIR"] = tmp
        try:
            proc = proctree.run(cmd, timeout, cwd=cwd, env=run_env)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stdout or b"")[-2000:]
            raise RuntimeError(msg("techday.torchrun_timeout", "torchrun did not finish within {seconds:.0f} s: {tail!r}",
                                   seconds=timeout, tail=tail)) from None
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [line for line in out if "Error" in line or "error" in line][-5:]
        raise RuntimeError(msg("techday.torchrun_failed", "torchrun exited with {code}:", code=proc.returncode)
                           + "\n" + "\n".join(errors or out[-15:]))
    return proc
