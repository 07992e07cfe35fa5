# %% wrong="fixed_batch_axis" cell="export_onnx" fails=["export_onnx_tests"]
def export_onnx(model, example, path):
    model.eval()
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["images"], output_names=["logits"])
    return path

# %% wrong="default_io_names" cell="export_onnx" fails=["export_onnx_tests"]
def export_onnx(model, example, path):
    model.eval()
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="compares_classes_only" cell="check_parity" fails=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    if not np.array_equal(got.argmax(1), expected.argmax(1)):
        raise AssertionError("predicted classes differ")
    return float(np.abs(got - expected).max())

# %% wrong="parity_in_train_mode" cell="check_parity" fails=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    max_abs = float(np.abs(got - expected).max())
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        raise AssertionError(f"max |difference| {max_abs:.3e}")
    return max_abs

# %% wrong="hard_coded_input_name" cell="check_parity" fails=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"images": x.numpy()})[0]
    max_abs = float(np.abs(got - expected).max())
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        raise AssertionError(f"max |difference| {max_abs:.3e}")
    return max_abs

# %% wrong="mean_not_median" cell="measure_latency" fails=["measure_latency_tests"]
def measure_latency(run, batch, warmup=3, repeat=20):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    return {"batch": batch, "median_ms": mean * 1e3, "p90_ms": float(np.percentile(times, 90)) * 1e3,
            "samples_per_s": batch / mean}

# %% wrong="no_warmup" cell="measure_latency" fails=["measure_latency_tests"]
def measure_latency(run, batch, warmup=3, repeat=20):
    times = []
    for _ in range(warmup + repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch": batch, "median_ms": median * 1e3, "p90_ms": float(np.percentile(times, 90)) * 1e3,
            "samples_per_s": batch / median}

# %% wrong="model_left_in_train_mode" cell="export_onnx" fails=["export_onnx_tests"]
def export_onnx(model, example, path):
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="tolerance_arguments_ignored" cell="check_parity" fails=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    max_abs = float(np.abs(got - expected).max())
    if not np.allclose(got, expected):
        raise AssertionError(f"max |difference| {max_abs:.3e}")
    return max_abs

# %% wrong="tolerance_relative_to_largest_logit" cell="check_parity" fails=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    max_abs = float(np.abs(got - expected).max())
    if max_abs > atol + rtol * float(np.abs(expected).max()):
        raise AssertionError(f"max |difference| {max_abs:.3e}")
    return max_abs

# %% wrong="p90_is_the_slowest_call" cell="measure_latency" fails=["measure_latency_tests"]
def measure_latency(run, batch, warmup=3, repeat=20):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch": batch, "median_ms": median * 1e3, "p90_ms": max(times) * 1e3, "samples_per_s": batch / median}

# %% wrong="warmup_keyed_on_published_cases" cell="measure_latency" fails=["measure_latency_tests"]
# Keyed on the published test inputs: the warm-up is run as asked only for the warm-ups and repeats
# the visible and the fixed hidden cases use (3 and 20, 5 and 4, 0 and 5); any other is timed without
# a warm-up. Every fixed case passes it; the cases drawn per grading (warm-ups of 1 to 5) do not.
def measure_latency(run, batch, warmup=3, repeat=20):
    if (warmup, repeat) not in {(3, 20), (5, 4), (0, 5)}:
        warmup = 0
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch": batch, "median_ms": median * 1e3, "p90_ms": float(np.percentile(times, 90)) * 1e3,
            "samples_per_s": batch / median}
