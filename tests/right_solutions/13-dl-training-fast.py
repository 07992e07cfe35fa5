# Right answers written another way than lab 13's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="nanosecond_clock_and_enumerate" cell="measure_throughput" passes=["measure_throughput_tests"]
def measure_throughput(step, batches, warmup=2, device="cpu", label=""):
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    n_batches = n_samples = 0
    t0 = None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            sync()
            t0 = time.perf_counter_ns()
        step(x, y)
        if i >= warmup:
            n_batches += 1
            n_samples += x.shape[0]
    if t0 is None:  # no batch after the warm-up
        sync()
        t0 = time.perf_counter_ns()
    sync()
    seconds = (time.perf_counter_ns() - t0) / 1e9
    return {"label": label, "device": str(dev), "batches": n_batches, "samples": n_samples,
            "seconds": seconds, "samples_per_s": n_samples / seconds if seconds > 0 else float("inf")}

# %% right="islice_warmup_and_sync_helper" cell="measure_throughput" passes=["measure_throughput_tests"]
def measure_throughput(step, batches, warmup=2, device="cpu", label=""):
    from itertools import islice
    dev = torch.device(device)

    def wait():
        if dev.type == "cuda":
            torch.cuda.synchronize(device)

    it = iter(batches)
    for x, y in islice(it, warmup):  # the same iterator: the timed loop goes on where this stops
        step(x, y)
    wait()
    start = time.perf_counter()
    count = samples = 0
    for x, y in it:
        step(x, y)
        count += 1
        samples += x.size(0)
    wait()
    elapsed = time.perf_counter() - start
    return dict(label=label, device=str(dev), batches=count, samples=samples, seconds=elapsed,
                samples_per_s=samples / elapsed)

# %% right="keyword_autocast_and_float_of_detached_loss" cell="amp_train_step" passes=["amp_train_step_tests"]
def amp_train_step(model, optimizer, scaler, x, y, device_type, amp_dtype):
    optimizer.zero_grad()
    with torch.autocast(device_type=device_type, dtype=amp_dtype):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    scaled = scaler.scale(loss)
    scaled.backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())

# %% right="grads_set_to_none_by_hand" cell="amp_train_step" passes=["amp_train_step_tests"]
def amp_train_step(model, optimizer, scaler, x, y, device_type, amp_dtype):
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = None
    with torch.autocast(device_type, amp_dtype):
        loss = F.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach().float().item()

# %% right="positional_batch_size_bool_workers" cell="make_loader" passes=["make_loader_tests"]
def make_loader(dataset, batch_size, device_type, workers):
    from torch.utils.data import DataLoader
    return DataLoader(dataset, batch_size, shuffle=True, num_workers=workers, pin_memory=(device_type == "cuda"),
                      drop_last=True, persistent_workers=bool(workers))

# %% right="random_sampler_and_kwargs" cell="make_loader" passes=["make_loader_tests"]
def make_loader(dataset, batch_size, device_type, workers):
    from torch.utils.data import DataLoader, RandomSampler
    options = {"batch_size": batch_size, "drop_last": True, "num_workers": workers}
    if workers > 0:
        options["persistent_workers"] = True  # the default, False, is what 0 workers need
    if device_type == "cuda":
        options["pin_memory"] = True
    return DataLoader(dataset, sampler=RandomSampler(dataset), **options)  # a new order every epoch
