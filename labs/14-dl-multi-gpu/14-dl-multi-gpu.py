# %% [markdown] key="several-gpus-distributeddataparallel-torchrun"
# # 14 Several GPUs: DistributedDataParallel with torchrun
#
# One GPU trains your model; eight GPUs in one server can train it up to about eight times faster.
# PyTorch's own engine for that is **DistributedDataParallel** (DDP): one process per GPU, each with a
# full copy of the model and its own share of the data, and the gradients averaged across processes
# at every step, so that all copies stay identical. `torchrun` starts the processes.
#
# ## You will learn
# - the DDP model: ranks, world size, process groups, and the `nccl` (the fast path for GPU tensors) and
#   `gloo` (CPU tensors) backends;
# - how `torchrun` launches processes and what it tells each of them (`RANK`, `LOCAL_RANK`,
#   `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`);
# - sharding the data with `DistributedSampler`, and why `sampler.set_epoch(epoch)` matters;
# - all-reduce: averaging a metric over all ranks;
# - checkpointing from rank 0 only, and loading the checkpoint anywhere;
# - scaling efficiency: what limits the speed-up from N GPUs.
#
# **Tiers**: with 2 or more GPUs the script runs one process per GPU with `nccl`. With one
# GPU (or one MIG slice), and on the CPU tier, it runs 2 CPU processes with `gloo` on this machine
# (loopback only, 127.0.0.1): the same code path, the same checks, no GPU figures. DDP needs a GPU of
# its own for every process; section 5 says why one GPU is not shared.
#
# **How this lab works**: you write four functions; the notebook ships them into a training
# script and launches it with `torchrun`. The grader runs your functions in 2 processes, on data
# sizes you have not tried. Do not edit test cells.
#
# Points: exercise 1: 3, exercise 2: 3, exercises 3 and 4 (tested together under torchrun): 6 (12 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and prints it.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("14.title", "14 Several GPUs: DDP with torchrun"))

# %% nbgrader="locked" id="imports"
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from techday.dltrain import ddp_plan, torchrun, write_functions
from techday.i18n import msg

if not lab.on_gpu:
    torch.set_num_threads(1)  # CI machines share their cores: one thread per process
N_GPUS = torch.cuda.device_count() if lab.on_gpu else 0
print(msg("14.banner", "PyTorch {version} | gloo available: {gloo} | nccl available: {nccl} | GPUs: {n_gpus} | "
                       "2-process runs here: {plan}", version=torch.__version__, gloo=dist.is_gloo_available(),
          nccl=dist.is_nccl_available(), n_gpus=N_GPUS, plan=ddp_plan(N_GPUS, 2).reason))

# %% [markdown] key="ddp-works"
# ## 1. How DDP works
#
# ```
#            torchrun --nproc_per_node 4 train.py
#     ┌────────────┬────────────┬────────────┬────────────┐
#     │ rank 0     │ rank 1     │ rank 2     │ rank 3     │   one process per GPU
#     │ GPU 0      │ GPU 1      │ GPU 2      │ GPU 3      │
#     │ model copy │ model copy │ model copy │ model copy │   identical weights
#     │ shard 0    │ shard 1    │ shard 2    │ shard 3    │   DistributedSampler: different data
#     │ forward    │ forward    │ forward    │ forward    │
#     │ backward ──┴── all-reduce (average) the gradients ─┴── overlapped with backward
#     │ optimizer.step(): the same averaged gradients, so the same new weights everywhere
# ```
#
# - **rank**: the number of a process, `0 ... world_size - 1`; **local rank**: its number on its own
#   machine, which picks its GPU. `torchrun` sets `RANK`, `LOCAL_RANK`, `WORLD_SIZE`, and the address
#   of the rendezvous, `MASTER_ADDR:MASTER_PORT`, in each process's environment.
# - `dist.init_process_group(backend)` connects the processes: `nccl` moves GPU tensors over NVLink,
#   PCIe or the network, and is the fast path on GPUs; `gloo` moves tensors over TCP: CPU tensors, and
#   for some collectives (all-reduce, broadcast) CUDA tensors too, which it stages through host memory,
#   far more slowly than NCCL. Here everything stays on 127.0.0.1.
# - `DDP(model)` broadcasts rank 0's weights to every rank once, then, during `backward()`, averages
#   each bucket of gradients across ranks as soon as it is ready, overlapping communication with the
#   rest of the backward pass.
# - Each rank must see **different** data, or N GPUs just compute the same gradient N times:
#   `DistributedSampler` gives rank `r` every `world_size`-th sample of a shuffled order.
#
# The training script below is what you would run on a GPU server. It imports your four functions
# from `ddp_exercises.py`, which the notebook writes from your solutions. Read it once: everything
# that is not an exercise is here.

# %% nbgrader="locked" id="script"
DDP_SCRIPT = r'''
"""Train a small CNN on parts-inspection images with DDP. Launch with:
    python -m torch.distributed.run --standalone --nproc_per_node N ddp_train.py --out DIR
With --cuda: nccl, one GPU per process, when every process has a GPU of its own; otherwise gloo on
CPU processes (techday.dltrain.ddp_plan chooses)."""
import argparse, json, os, time
import torch, torch.distributed as dist, torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from ddp_exercises import make_loader, train_one_epoch, all_reduce_mean, save_checkpoint
from techday.dltrain import ddp_plan
from techday.parts import make_parts


class LoggedParts(torch.utils.data.Dataset):
    """Parts images; remembers which samples this process loaded (to check the sharding)."""
    def __init__(self, images, labels):
        self.images, self.labels, self.seen = images, labels, []
    def __len__(self):
        return len(self.images)
    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.images[i], self.labels[i]


def make_model(width):
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                         nn.Flatten(), nn.Linear(2 * width, 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    local_rank, local_world = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    plan = ddp_plan(torch.cuda.device_count() if args.cuda else 0, local_world)
    device = torch.device(plan.devices[local_rank])
    use_cuda = device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(plan.backend)
    rank, world = dist.get_rank(), dist.get_world_size()

    images, labels = make_parts(args.samples, seed=args.seed, size=args.size, as_tensor=True)
    dataset = LoggedParts(images, labels)
    loader, sampler = make_loader(dataset, args.batch, rank, world, args.seed)
    torch.manual_seed(args.seed + rank)  # different on purpose: DDP must broadcast rank 0's weights
    model = DDP(make_model(args.width).to(device), device_ids=[device.index] if use_cuda else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    checkpoint = os.path.join(args.out, "checkpoint.pt")

    saves, calls, real_save, real_barrier = [], [], torch.save, dist.barrier
    def counting_save(obj, f, *a, **k):  # records every torch.save this process makes
        saves.append(str(f))
        calls.append("save")
        return real_save(obj, f, *a, **k)
    def counting_barrier(*a, **k):  # records every barrier this process enters
        calls.append("barrier")
        return real_barrier(*a, **k)
    torch.save, dist.barrier = counting_save, counting_barrier

    history = []
    for epoch in range(args.epochs):
        dataset.seen = []
        if use_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss_sum, n = train_one_epoch(model, loader, sampler, optimizer, epoch, device)
        if use_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        local = loss_sum / n
        mean = all_reduce_mean(local, device)
        history.append({"epoch": epoch, "seen": list(dataset.seen), "samples": n, "seconds": seconds,
                        "local_loss": local, "mean_loss": mean})
        calls.clear()
        save_checkpoint(model, optimizer, epoch, checkpoint)
        history[-1]["checkpoint_calls"] = list(calls)  # torch.save and dist.barrier, in order
        if rank == 0:
            print(f"epoch {epoch}: mean loss over {world} ranks {mean:.4f} ({seconds:.2f} s)", flush=True)
    torch.save, dist.barrier = real_save, real_barrier

    dist.barrier()
    state = torch.load(checkpoint, map_location=device)
    own = model.module.state_dict()
    same_keys = set(state.get("model", {})) == set(own)
    matches = same_keys and all(torch.equal(state["model"][k].to(device), v) for k, v in own.items())
    saved_opt, own_opt = state.get("optimizer"), optimizer.state_dict()
    opt_matches = (isinstance(saved_opt, dict) and set(saved_opt.get("state", {})) == set(own_opt["state"])
                   and all(torch.equal(saved_opt["state"][k]["momentum_buffer"].to(device), v["momentum_buffer"])
                           for k, v in own_opt["state"].items()))
    result = {"rank": rank, "world": world, "backend": dist.get_backend(), "device": str(device), "history": history,
              "saves": saves, "checkpoint_matches": bool(matches), "checkpoint_keys_match": same_keys,
              "checkpoint_epoch": state.get("epoch"), "checkpoint_optimizer_matches": bool(opt_matches),
              "weights_sum": float(sum(p.double().sum() for p in own.values() if p.is_floating_point()))}
    with open(os.path.join(args.out, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''

EXERCISES_HEADER = """
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
"""


def run_ddp(n, epochs=2, batch=16, seed=0, nproc=2, width=8, timeout=240):
    """Write your functions and the script to a fresh folder, launch them with torchrun, and return
    the per-rank results (a list of dicts, rank 0 first). ddp_plan chooses the backend and devices from
    the GPUs visible here; the script makes the same choice in every process."""
    plan = ddp_plan(N_GPUS, nproc)
    with tempfile.TemporaryDirectory(prefix="techday-ddp-") as tmp:  # removed when the run is over
        work = Path(tmp)
        write_functions(work / "ddp_exercises.py", [make_loader, train_one_epoch, all_reduce_mean, save_checkpoint],
                        header=EXERCISES_HEADER)
        (work / "ddp_train.py").write_text(DDP_SCRIPT, encoding="utf-8")
        args = ["--samples", n, "--epochs", epochs, "--batch", batch, "--seed", seed, "--width", width, "--out", work]
        if plan.use_cuda:
            args.append("--cuda")
        t0 = time.perf_counter()
        torchrun(work / "ddp_train.py", args, nproc=nproc, timeout=timeout, cwd=work)  # raises if a rank failed
        wall = time.perf_counter() - t0
        results = [json.loads((work / f"rank{r}.json").read_text()) for r in range(nproc)]
    for h in results[0]["history"]:
        print(msg("14.rank0_epoch", "  [rank 0] epoch {epoch}: mean loss over {world} ranks {mean:.4f} ({seconds:.2f} s)",
                  epoch=h["epoch"], world=results[0]["world"], mean=h["mean_loss"], seconds=h["seconds"]))
    devices = ", ".join(r["device"] for r in results)
    print(msg("14.run_summary", "  {nproc} processes ({backend}; {devices}), {n} samples, {epochs} epochs: {wall:.1f} s with start-up",
              nproc=nproc, backend=results[0]["backend"], devices=devices, n=n, epochs=epochs, wall=wall))
    return results

# %% [markdown] key="sharding-data"
# ## 2. Sharding the data
#
# `DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)` shuffles
# the indices `0 ... n-1` with a generator seeded by `seed + epoch` (the same order on every rank), pads
# the list by repeating a few indices until its length divides by `world_size`, and gives rank `r` the
# entries at positions `r, r + world_size, r + 2 world_size, ...` of that list. Every rank gets the same
# number of samples, so every rank does the same number of steps (a rank with one step more would wait
# in its all-reduce for the others until the process group's timeout).
#
# The DataLoader then takes the sampler **instead of** `shuffle=True` (the two exclude each other).
#
# ## Exercise 1: `make_loader` (3 points)
#
# Write `make_loader(dataset, batch_size, rank, world_size, seed)` that returns `(loader, sampler)`:
# a `DistributedSampler` over `dataset` for this `rank` of `world_size`, shuffling with `seed`, and a
# `DataLoader` with that sampler and `batch_size` (no worker processes here: `num_workers=0`).
# Pass `num_replicas` and `rank` explicitly: then the sampler works without a process group, which
# lets the test below check your shards in this notebook.

# %% nbgrader="solution" id="make_loader"
def make_loader(dataset, batch_size, rank, world_size, seed):
    """(loader, sampler): this rank's shuffled shard of dataset, in batches."""
    ### BEGIN SOLUTION
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0)
    return loader, sampler
    ### END SOLUTION

# %% nbgrader="tests" id="make_loader_tests" points=3
"""make_loader gives 2 ranks disjoint shards of a 40-sample data set that together hold every sample
once, shuffled (not 0, 2, 4, ...), through a DistributedSampler with the given seed and a DataLoader
of the given batch size; hidden: 3 ranks on 31 samples (padding), batch size 4, another seed; and cases drawn afresh
at every grading (techday.draw)."""
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from techday.i18n import msg


def shards(n, world, batch, seed, epoch=0):
    ds = TensorDataset(torch.arange(n), torch.arange(n))
    out = []
    for r in range(world):
        loader, sampler = make_loader(ds, batch, r, world, seed)
        assert isinstance(sampler, DistributedSampler), \
            msg("14.not_distributed_sampler", "rank {r}: use a DistributedSampler, got {type_name}", r=r, type_name=type(sampler).__name__)
        assert loader.sampler is sampler, msg("14.sampler_not_passed", "pass the sampler to the DataLoader (sampler=...)")
        assert loader.batch_size == batch, msg("14.batch_size", "batch size {got}, expected {batch}", got=loader.batch_size, batch=batch)
        assert sampler.num_replicas == world and sampler.rank == r and sampler.seed == seed and sampler.shuffle, \
            msg("14.sampler_args", "rank {r}: the sampler needs num_replicas={world}, rank={r}, seed={seed}, shuffle=True",
                r=r, world=world, seed=seed)
        sampler.set_epoch(epoch)
        out.append(torch.cat([x for x, _ in loader]).tolist())
    return out


s0, s1 = shards(40, 2, 8, seed=3)
assert len(s0) == len(s1) == 20, msg("14.shard_sizes", "40 samples on 2 ranks: 20 each, got {n0} and {n1}", n0=len(s0), n1=len(s1))
assert not set(s0) & set(s1), msg("14.shards_overlap", "the two ranks share samples: each rank must get its own shard")
assert sorted(s0 + s1) == list(range(40)), msg("14.every_sample_once", "together the ranks must see every sample exactly once")
assert s0 != list(range(0, 40, 2)), msg("14.not_shuffled", "the shard is not shuffled (shuffle=True)")
### BEGIN HIDDEN TESTS
sh = shards(31, 3, 4, seed=11)
assert all(len(s) == 11 for s in sh), \
    msg("14.hidden_padded", "hidden: 31 samples on 3 ranks, 11 each (padded), got {sizes}", sizes=[len(s) for s in sh])
assert set(sum(sh, [])) == set(range(31)), msg("14.hidden_every_sample", "hidden: every sample is in some shard")
assert shards(31, 3, 4, seed=11, epoch=1) != sh, msg("14.hidden_reshuffle", "hidden: set_epoch(1) must reshuffle")
assert shards(40, 2, 8, seed=4)[0] != s0, msg("14.hidden_seed", "hidden: the seed must be passed to the sampler")
# Drawn at every grading (techday.draw): the sizes, ranks, batches and seeds above are published with the course.
import techday.draw

rd = techday.draw.rng("14.make_loader_tests")
n_d, world_d, batch_d = int(rd.integers(5, 61)), int(rd.integers(1, 5)), int(rd.integers(1, 11))
seed_d, epoch_d = int(rd.integers(0, 2 ** 31)), int(rd.integers(0, 10))
ds_d = TensorDataset(torch.arange(n_d), torch.arange(n_d))
want_d = []
for r in range(world_d):  # the reference: a DistributedSampler of the same settings, in the same epoch
    ref_sampler = DistributedSampler(ds_d, num_replicas=world_d, rank=r, shuffle=True, seed=seed_d)
    ref_sampler.set_epoch(epoch_d)
    want_d.append(list(ref_sampler))
got_d = shards(n_d, world_d, batch_d, seed=seed_d, epoch=epoch_d)
assert got_d == want_d, msg("14.drawn_shards", "{n} samples on {world} ranks in batches of {batch}, seed {seed}, epoch {epoch}: "
                            "the shards {got}, expected {want}", n=n_d, world=world_d, batch=batch_d, seed=seed_d,
                            epoch=epoch_d, got=got_d, want=want_d)
### END HIDDEN TESTS
print(msg("14.loader_passed", "make_loader: all visible tests passed."))

# %% [markdown] key="epoch-set-epoch"
# ## 3. One epoch, and `set_epoch`
#
# The sampler shuffles with `seed + epoch`. It does not know the epoch unless you tell it: without
# `sampler.set_epoch(epoch)` at the start of every epoch, every epoch uses the order of epoch 0, the
# same batches in the same order, which costs accuracy.
#
# ## Exercise 2: `train_one_epoch` (3 points)
#
# Write `train_one_epoch(model, loader, sampler, optimizer, epoch, device)`:
# call `sampler.set_epoch(epoch)`, put the model in training mode, and for each batch `(x, y)` move it
# to `device`, clear the gradients, compute `F.cross_entropy(model(x), y)`, `backward()`, `step()`.
# Return `(loss_sum, n)`: the sum over batches of `loss.item() * len(x)`, and the number of samples
# this rank processed. With a DDP model the same code averages the gradients across ranks inside
# `backward()`: nothing else changes.

# %% nbgrader="solution" id="train_one_epoch"
def train_one_epoch(model, loader, sampler, optimizer, epoch, device):
    """One epoch over this rank's shard; returns (sum of per-sample losses, number of samples)."""
    ### BEGIN SOLUTION
    sampler.set_epoch(epoch)
    model.train()
    loss_sum, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(x)
        n += len(x)
    return loss_sum, n
    ### END SOLUTION

# %% nbgrader="tests" id="train_one_epoch_tests" points=3
"""train_one_epoch calls sampler.set_epoch(epoch) before iterating (a spy sampler records it, and two
epochs see different orders), returns (loss sum, samples) for its shard (whose last batch is smaller),
and leaves exactly the weights of a reference that clears the gradients every step; hidden: rank 1 of 2,
epoch 5, SGD with momentum; and cases drawn afresh at every grading (techday.draw)."""
import copy

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from techday.i18n import msg


class SpySampler(DistributedSampler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs, self.orders = [], []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)
        super().set_epoch(epoch)

    def __iter__(self):
        order = list(super().__iter__())
        self.orders.append(order)
        return iter(order)


def check_epochs(world, rank, epochs, make_opt, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(26, 1, 4, 4)  # batches of 4: the last one of every shard is smaller
    y = torch.randint(0, 3, (26,))
    ds = TensorDataset(x, y)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ref_model = copy.deepcopy(model)
    sampler = SpySampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(ds, batch_size=4, sampler=sampler)
    opt = make_opt(model.parameters())
    ref_opt = make_opt(ref_model.parameters())
    for epoch in epochs:
        n_before = len(sampler.orders)
        loss_sum, n = train_one_epoch(model, loader, sampler, opt, epoch, torch.device("cpu"))
        assert sampler.epochs and sampler.epochs[-1] == epoch, \
            msg("14.set_epoch_missing", "epoch {epoch}: call sampler.set_epoch(epoch) at the start of every epoch (calls seen: {calls})",
                epoch=epoch, calls=sampler.epochs)
        assert len(sampler.orders) == n_before + 1, msg("14.loader_once", "iterate over the loader once per epoch")
        order = sampler.orders[-1]
        assert n == len(order) == 26 // world, msg("14.n_samples", "returned n={n}, this rank's shard has {shard} samples", n=n, shard=len(order))
        ref_sum = 0.0
        ref_model.train()
        for i in range(0, len(order), 4):
            idx = order[i:i + 4]
            ref_opt.zero_grad()
            loss = F.cross_entropy(ref_model(x[idx]), y[idx])
            loss.backward()
            ref_opt.step()
            ref_sum += loss.item() * len(idx)
        assert abs(loss_sum - ref_sum) < 1e-4 * max(1.0, abs(ref_sum)), \
            msg("14.loss_sum", "loss sum {got:.5f}, expected {want:.5f}", got=loss_sum, want=ref_sum)
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), msg("14.differs_from_reference", "{name} differs from the reference: zero the gradients every step", name=name)
    return sampler


sp = check_epochs(1, 0, [0, 1], lambda p: torch.optim.SGD(p, lr=0.1))
assert sp.orders[0] != sp.orders[1], msg("14.same_order", "epochs 0 and 1 came in the same order: sampler.set_epoch(epoch)")
### BEGIN HIDDEN TESTS
sp_h = check_epochs(2, 1, [5, 6], lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), seed=3)
assert sp_h.orders[0] != sp_h.orders[1], msg("14.hidden_same_order", "hidden: epochs 5 and 6 in the same order")
# Drawn at every grading (techday.draw): the ranks, epochs, optimisers and seeds above are published with the course.
import techday.draw

rd = techday.draw.rng("14.train_one_epoch_tests")
world_d = int(rd.integers(1, 3))
lr_d, momentum_d, epoch_d = round(float(rd.uniform(0.01, 0.2)), 3), round(float(rd.uniform(0.0, 0.9)), 2), int(rd.integers(0, 20))
sp_d = check_epochs(world_d, int(rd.integers(0, world_d)), [epoch_d, epoch_d + 1],
                    lambda p: torch.optim.SGD(p, lr=lr_d, momentum=momentum_d), seed=int(rd.integers(0, 2 ** 31)))
assert sp_d.orders[0] != sp_d.orders[1], msg("14.drawn_same_order", "epochs {epoch} and {next_epoch} came in the same order: "
                                              "sampler.set_epoch(epoch)", epoch=epoch_d, next_epoch=epoch_d + 1)
### END HIDDEN TESTS
print(msg("14.train_passed", "train_one_epoch: all visible tests passed."))

# %% [markdown] key="all-reduce-checkpoints"
# ## 4. All-reduce and checkpoints
#
# After an epoch each rank knows the loss **of its own shard** only. An **all-reduce** combines one
# tensor from every rank and hands the result to every rank:
#
# ```python
# t = torch.tensor([value], dtype=torch.float64, device=device)   # GPU tensor for nccl, CPU tensor for gloo here
# dist.all_reduce(t, op=dist.ReduceOp.SUM)                          # now every rank holds the sum
# mean = t.item() / dist.get_world_size()
# ```
#
# Every rank must call it, in the same order, or the ranks wait for each other forever (a *hang*).
#
# **Checkpoints.** All ranks hold the same weights, so one copy is enough: save from **rank 0 only**.
# N processes writing the same file at once can leave a corrupt file, and on a shared file system they
# multiply the traffic by N. Save the plain model, `model.module.state_dict()` (a DDP model's own keys
# all start with `module.`), so that the checkpoint loads into a model without DDP, for example for
# deployment (lab 15). Then `dist.barrier()`: no rank goes on, and perhaps reads the file, before
# rank 0 has finished writing it.
#
# ## Exercise 3: `all_reduce_mean` and Exercise 4: `save_checkpoint` (6 points together)
#
# - `all_reduce_mean(value, device)`: the mean of the Python float `value` over all ranks, as a float,
#   on every rank.
# - `save_checkpoint(model, optimizer, epoch, path)`: on rank 0 only, `torch.save` a dict with keys
#   `"model"` (the unwrapped model's `state_dict()`: `model.module` if `model` is a `DDP`, else `model`),
#   `"optimizer"` (its `state_dict()`) and `"epoch"`, to `path`; then, on every rank, `dist.barrier()`.
#
# Both need a process group, so they are tested by launching the training script in 2 processes.

# %% nbgrader="solution" id="all_reduce_mean"
def all_reduce_mean(value, device):
    """The mean of value over all ranks, returned on every rank."""
    ### BEGIN SOLUTION
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item() / dist.get_world_size()
    ### END SOLUTION

# %% nbgrader="solution" id="save_checkpoint"
def save_checkpoint(model, optimizer, epoch, path):
    """Save {"model", "optimizer", "epoch"} from rank 0 only, then wait for it on every rank."""
    ### BEGIN SOLUTION
    if dist.get_rank() == 0:
        plain = model.module if isinstance(model, DDP) else model
        torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)
    dist.barrier()
    ### END SOLUTION

# %% [markdown] key="launch"
# ## 5. Launch
#
# `run_ddp` writes your four functions to `ddp_exercises.py`, the script to `ddp_train.py`, and runs
#
# ```
# python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_train.py --samples ... --out ...
# ```
#
# `--standalone` starts a rendezvous on this machine; `MASTER_ADDR=127.0.0.1` keeps every connection
# on the loopback interface. Each process writes what it saw to `rank<r>.json`. On several servers you
# would run the same command on each, with `--nnodes`, `--node_rank` and a shared `--rdzv_endpoint`.
#
# **Which devices**: `techday.dltrain.ddp_plan(visible GPUs, processes)` chooses,
# in the notebook and in every process alike. With a GPU for every process, rank `r` uses `cuda:r` and
# `nccl`. With fewer GPUs than processes (one GPU, or one MIG slice, as most of you have) all ranks
# run on the CPU with `gloo`: asking for `cuda:1` where only `cuda:0` exists fails ("invalid device
# ordinal"), NCCL refuses two ranks on one GPU, and two processes sharing one GPU only take turns on
# it, with every all-reduce through host memory (gloo), so what they measure is not DDP. On the CPU the
# ranks, the sharding, the all-reduce and the checkpoint behave exactly as on N GPUs; only the speed
# differs.

# %%
N_DDP = lab.size(full=4_096, ci=256)
ddp_results = run_ddp(N_DDP, epochs=2, batch=16, seed=0)
for r in ddp_results:
    h = r["history"][-1]
    print(msg("14.rank_summary", "rank {rank}: {samples} samples per epoch, local loss {local:.4f}, all-reduced mean {mean:.4f}, "
                                 "torch.save calls {saves}, checkpoint matches its weights: {matches}",
              rank=r["rank"], samples=h["samples"], local=h["local_loss"], mean=h["mean_loss"], saves=len(r["saves"]),
              matches=r["checkpoint_matches"]))

# %% nbgrader="tests" id="ddp_tests" points=6
"""Under torchrun with 2 processes: in every epoch the ranks together load each sample exactly once, in
a new order each epoch; the all-reduced loss is the same on both ranks and equals the mean of their
local losses; only rank 0 calls torch.save, and every rank calls dist.barrier after it; the checkpoint
holds the plain (unwrapped) model's weights, which equal every rank's weights, the optimizer's state and
the last epoch; hidden: a second launch with 3 epochs, 200
samples (not a multiple of the batch), batch size 12 and another seed."""
import math

from techday.i18n import msg


def check_ddp(results, n, epochs):
    assert [r["rank"] for r in results] == [0, 1] and all(r["world"] == 2 for r in results), \
        msg("14.two_ranks", "expected ranks 0 and 1 of a world of 2")
    for e in range(epochs):
        seen = [r["history"][e]["seen"] for r in results]
        assert not set(seen[0]) & set(seen[1]), \
            msg("14.ddp_overlap", "epoch {e}: both ranks loaded the same samples: shard with DistributedSampler", e=e)
        assert sorted(seen[0] + seen[1]) == list(range(n)), \
            msg("14.ddp_every_sample", "epoch {e}: the ranks together must load every sample once", e=e)
        if e:
            prev = [r["history"][e - 1]["seen"] for r in results]
            assert seen[0] != prev[0], \
                msg("14.ddp_repeats_order", "epoch {e} repeats the order of epoch {prev}: call sampler.set_epoch(epoch)", e=e, prev=e - 1)
        for r in results:
            h = r["history"][e]
            assert h["samples"] == len(h["seen"]), msg(
                "14.ddp_samples_counted", "epoch {e}, rank {rank}: train_one_epoch counted {n} samples, the rank loaded {seen}: "
                "count len(x) of every batch (the last one may be smaller)", e=e, rank=r["rank"], n=h["samples"], seen=len(h["seen"]))
        local = [r["history"][e]["local_loss"] for r in results]
        mean = [r["history"][e]["mean_loss"] for r in results]
        assert math.isclose(mean[0], mean[1], rel_tol=1e-9), \
            msg("14.ddp_disagree", "epoch {e}: ranks disagree on the mean loss {mean}: all-reduce", e=e, mean=mean)
        assert math.isclose(mean[0], sum(local) / 2, rel_tol=1e-6), \
            msg("14.ddp_not_mean", "epoch {e}: mean {mean:.6f} is not the average of the local losses {local}: divide the sum by the world size",
                e=e, mean=mean[0], local=local)
    assert len(results[0]["saves"]) == epochs, \
        msg("14.rank0_saves", "rank 0 saved {saves} times in {epochs} epochs: save once per epoch", saves=len(results[0]["saves"]), epochs=epochs)
    assert not results[1]["saves"], msg("14.rank1_saved", "rank 1 called torch.save: save the checkpoint from rank 0 only")
    for r in results:
        for h in r["history"]:
            calls = h["checkpoint_calls"]
            after_save = calls[calls.index("save") + 1:] if "save" in calls else calls
            assert "barrier" in after_save, msg(
                "14.checkpoint_barrier", "epoch {e}, rank {rank}: save_checkpoint made the calls {calls}: rank 0 saves, then every "
                "rank calls dist.barrier(), so that no rank goes on before the file is written",
                e=h["epoch"], rank=r["rank"], calls=calls)
    assert all(r["checkpoint_keys_match"] for r in results), \
        msg("14.checkpoint_keys", "the checkpoint's keys are not the plain model's: save model.module.state_dict() (no 'module.' prefix)")
    assert all(r["checkpoint_matches"] for r in results), msg("14.checkpoint_differs", "the checkpoint differs from the ranks' weights")
    assert all(r["checkpoint_optimizer_matches"] for r in results), msg(
        "14.checkpoint_optimizer", "the checkpoint's \"optimizer\" is not the optimizer's state_dict() (its momentum buffers): "
        "without it, training cannot resume where it stopped")
    assert results[0]["checkpoint_epoch"] == epochs - 1, \
        msg("14.checkpoint_epoch", "the checkpoint's epoch is {got}, expected the last epoch, {want}",
            got=results[0]["checkpoint_epoch"], want=epochs - 1)
    assert math.isclose(results[0]["weights_sum"], results[1]["weights_sum"], rel_tol=1e-9), msg("14.weights_differ", "the ranks' weights differ")


check_ddp(ddp_results, N_DDP, 2)
### BEGIN HIDDEN TESTS
check_ddp(run_ddp(200, epochs=3, batch=12, seed=7), 200, 3)
### END HIDDEN TESTS
print(msg("14.ddp_passed", "DDP under torchrun: all visible tests passed."))

# %% [markdown] key="scaling-efficiency"
# ## 6. Scaling efficiency
#
# With N GPUs the ideal is N times the samples per second of one GPU. The **scaling efficiency** is
#
# `efficiency = throughput(N GPUs) / (N * throughput(1 GPU))`
#
# and the gap comes from:
#
# - **communication**: every step all-reduces the whole gradient, `2 (N - 1) / N * model bytes` per GPU
#   with a ring all-reduce. DDP overlaps it with the backward pass; a small model with short steps has
#   little to overlap with, so the communication shows;
# - **the slowest rank**: every step waits for the last rank to finish its backward pass (stragglers,
#   uneven data loading);
# - **the input pipeline**: N GPUs need N times the data, from the same CPUs and disks.
#
# Keep the per-GPU batch size constant as you add GPUs (weak scaling; the global batch grows N-fold,
# so raise the learning rate, commonly in proportion, with a warm-up); within one server NVLink makes
# efficiencies above 90 % common for convolutional networks of real size.
#
# On a server with 2 or more GPUs, the cell below measures it with this script at full scale. On the
# CPU tier the 2 processes share 2 CPU cores with everything else, so a speed-up figure would measure
# the machine's load, not DDP, and it is not printed.

# %%
if lab.gpu_only(msg("14.gpu_only_scaling", "scaling efficiency with 1 and N GPUs under torchrun (nccl)")) and N_GPUS >= 2:
    n_scale = 32_768

    def throughput(results):
        # every rank processed its samples in parallel: total samples / the slowest rank's time (last epoch)
        return sum(r["history"][-1]["samples"] for r in results) / max(r["history"][-1]["seconds"] for r in results)

    one = throughput(run_ddp(n_scale, epochs=2, batch=256, nproc=1, width=64))
    many = throughput(run_ddp(n_scale, epochs=2, batch=256, nproc=N_GPUS, width=64))
    print(msg("14.scaling", "1 GPU: {one:,.0f} samples/s | {n_gpus} GPUs: {many:,.0f} samples/s | efficiency {eff:.0%} [GPU ({name}), nccl]",
              one=one, n_gpus=N_GPUS, many=many, eff=many / (N_GPUS * one), name=torch.cuda.get_device_name()))
elif lab.on_gpu:
    print(msg("14.needs_two_gpus", "[GPU only] scaling efficiency needs 2 or more GPUs; this machine has {n_gpus}.", n_gpus=N_GPUS))

# %% [markdown] key="summary"
# ## Summary
#
# - DDP: one process per GPU, the same model on each, a different shard of the data on each, gradients
#   averaged in `backward()`. `torchrun` starts the processes and tells each its rank.
# - `DistributedSampler(dataset, num_replicas, rank, shuffle=True, seed)` in the DataLoader, and
#   `sampler.set_epoch(epoch)` at the start of every epoch.
# - Metrics of the whole data set need an all-reduce, on every rank.
# - Save checkpoints from rank 0 only, unwrap `model.module`, then `dist.barrier()`.
# - Scaling efficiency is lost to communication, stragglers and input pipelines.
#
# ## Going further
#
# - PyTorch's DDP tutorial: https://pytorch.org/tutorials/intermediate/ddp_tutorial.html and torchrun:
#   https://pytorch.org/docs/stable/elastic/run.html
# - Models too large for one GPU: Fully Sharded Data Parallel (`torch.distributed.fsdp.fully_shard`)
#   shards the weights, gradients and optimizer state themselves.
# - `DDP(model, gradient_as_bucket_view=True)` and `static_graph=True` save memory and time;
#   `model.no_sync()` skips the all-reduce on gradient-accumulation steps.
# - Next: lab 15, exporting the trained model and serving it.
