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
