"""techday.dltrain.ddp_plan: the layout of lab 14's DDP runs for the GPUs a trainee's machine shows."""

import pytest

from techday.dltrain import ddp_plan


def _ordinals(plan):
    return [int(d.split(":")[1]) for d in plan.devices if d.startswith("cuda:")]


@pytest.mark.parametrize("gpus, nproc, world, backend, devices", [
    # 0 GPUs (the CPU tier): 2 CPU processes with gloo, as before
    (0, None, 2, "gloo", ("cpu", "cpu")),
    (0, 2, 2, "gloo", ("cpu", "cpu")),
    (0, 3, 3, "gloo", ("cpu",) * 3),
    # 1 GPU or MIG slice: 2 ranks must not share it (no cuda:1, no 2 NCCL ranks on cuda:0)
    (1, None, 2, "gloo", ("cpu", "cpu")),
    (1, 2, 2, "gloo", ("cpu", "cpu")),
    (1, 1, 1, "nccl", ("cuda:0",)),
    # 2 GPUs: one process per GPU
    (2, None, 2, "nccl", ("cuda:0", "cuda:1")),
    (2, 2, 2, "nccl", ("cuda:0", "cuda:1")),
    (2, 1, 1, "nccl", ("cuda:0",)),
    (2, 3, 3, "gloo", ("cpu",) * 3),
    # 8 GPUs: 8 processes by default; the graded 2-process run takes GPUs 0 and 1
    (8, None, 8, "nccl", tuple(f"cuda:{r}" for r in range(8))),
    (8, 2, 2, "nccl", ("cuda:0", "cuda:1")),
    (8, 1, 1, "nccl", ("cuda:0",)),
])
def test_ddp_plan_layout(gpus, nproc, world, backend, devices):
    plan = ddp_plan(gpus, nproc)
    assert (plan.world_size, plan.backend, plan.devices) == (world, backend, devices), plan
    assert plan.use_cuda == (backend == "nccl")
    assert len(plan.devices) == plan.world_size
    assert all(o < gpus for o in _ordinals(plan)), f"a rank got a GPU that is not visible: {plan}"
    if plan.use_cuda:   # nccl: every rank on a GPU of its own
        assert len(set(plan.devices)) == plan.world_size and all(d.startswith("cuda:") for d in plan.devices)
    assert plan.reason


@pytest.mark.parametrize("gpus", range(0, 9))
@pytest.mark.parametrize("nproc", [None, 1, 2, 3, 4, 8])
def test_no_rank_gets_an_ordinal_beyond_the_visible_gpus(gpus, nproc):
    plan = ddp_plan(gpus, nproc)
    assert plan.world_size == (nproc if nproc else max(gpus, 2) if gpus != 1 else 2)
    assert all(o < gpus for o in _ordinals(plan)), plan
    assert plan.backend == ("nccl" if gpus >= plan.world_size else "gloo"), plan
    if plan.backend == "gloo":
        assert set(plan.devices) == {"cpu"}, plan


@pytest.mark.parametrize("gpus, nproc", [(-1, None), (2, 0), (2, -3), (True, None), (1.0, None), (2, 2.0)])
def test_ddp_plan_rejects_nonsense(gpus, nproc):
    with pytest.raises(ValueError):
        ddp_plan(gpus, nproc)
