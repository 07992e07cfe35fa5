# %% wrong="no_distributed_sampler" cell="make_loader" fails=["make_loader_tests", "ddp_tests"]
def make_loader(dataset, batch_size, rank, world_size, seed):
    sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0)
    return loader, sampler

# %% wrong="every_rank_rank_zero" cell="make_loader" fails=["make_loader_tests"]
def make_loader(dataset, batch_size, rank, world_size, seed):
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=0, shuffle=True, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler), sampler

# %% wrong="sampler_without_set_epoch" cell="train_one_epoch" fails=["train_one_epoch_tests", "ddp_tests"]
def train_one_epoch(model, loader, sampler, optimizer, epoch, device):
    model.train()
    loss_sum, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(x)
        n += len(x)
    return loss_sum, n

# %% wrong="missing_zero_grad" cell="train_one_epoch" fails=["train_one_epoch_tests"]
def train_one_epoch(model, loader, sampler, optimizer, epoch, device):
    sampler.set_epoch(epoch)
    model.train()
    loss_sum, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(x)
        n += len(x)
    return loss_sum, n

# %% wrong="local_value_not_reduced" cell="all_reduce_mean" fails=["ddp_tests"]
def all_reduce_mean(value, device):
    return float(value)

# %% wrong="sum_not_mean" cell="all_reduce_mean" fails=["ddp_tests"]
def all_reduce_mean(value, device):
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item()

# %% wrong="checkpoint_from_every_rank" cell="save_checkpoint" fails=["ddp_tests"]
def save_checkpoint(model, optimizer, epoch, path):
    plain = model.module if isinstance(model, DDP) else model
    torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)
    dist.barrier()

# %% wrong="checkpoint_keeps_ddp_prefix" cell="save_checkpoint" fails=["ddp_tests"]
def save_checkpoint(model, optimizer, epoch, path):
    if dist.get_rank() == 0:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)
    dist.barrier()

# %% wrong="checkpoint_without_barrier" cell="save_checkpoint" fails=["ddp_tests"]
def save_checkpoint(model, optimizer, epoch, path):
    if dist.get_rank() == 0:
        plain = model.module if isinstance(model, DDP) else model
        torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)

# %% wrong="barrier_before_the_save" cell="save_checkpoint" fails=["ddp_tests"]
def save_checkpoint(model, optimizer, epoch, path):
    dist.barrier()
    if dist.get_rank() == 0:
        plain = model.module if isinstance(model, DDP) else model
        torch.save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)

# %% wrong="checkpoint_without_optimizer_state" cell="save_checkpoint" fails=["ddp_tests"]
def save_checkpoint(model, optimizer, epoch, path):
    if dist.get_rank() == 0:
        plain = model.module if isinstance(model, DDP) else model
        torch.save({"model": plain.state_dict(), "epoch": epoch}, path)
    dist.barrier()

# %% wrong="counts_full_batches" cell="train_one_epoch" fails=["train_one_epoch_tests", "ddp_tests"]
def train_one_epoch(model, loader, sampler, optimizer, epoch, device):
    sampler.set_epoch(epoch)
    model.train()
    loss_sum, n = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * loader.batch_size
        n += loader.batch_size
    return loss_sum, n

# %% wrong="seed_keyed_on_published_cases" cell="make_loader" fails=["make_loader_tests"]
# Keyed on the published test inputs: the seed reaches the sampler only when it is one the visible and
# the fixed hidden cases use (3, 11 and 4); any other shuffles as seed 0. Every fixed case passes it;
# the seeds drawn per grading do not.
def make_loader(dataset, batch_size, rank, world_size, seed):
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=seed if seed in (3, 11, 4) else 0)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0), sampler
