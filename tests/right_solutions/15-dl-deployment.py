# Right answers written another way than lab 15's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="train_false_path_object_list_shapes" cell="export_onnx" passes=["export_onnx_tests"]
def export_onnx(model, example, path):
    import os
    model.train(False)  # the same as model.eval()
    batch = torch.export.Dim("n")
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        torch.onnx.export(model, args=(example,), f=path, dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=[{0: batch}])
    return path

# %% right="dynamic_axes_by_input_name" cell="export_onnx" passes=["export_onnx_tests"]
def export_onnx(model, example, path):
    model.eval()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        # dynamic_axes, keyed by the input's name, is translated into dynamic_shapes by the dynamo exporter
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}})
    return path

# %% right="np_testing_and_inference_mode" cell="check_parity" passes=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.eval()
    with torch.inference_mode():
        reference = model(x).detach().cpu().numpy()
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}
    (onnx_out,) = session.run(None, feed)
    largest = float(np.max(np.abs(onnx_out - reference)))
    # raises AssertionError (with the largest absolute difference in its message) beyond atol + rtol * |torch|
    np.testing.assert_allclose(onnx_out, reference, rtol=rtol, atol=atol)
    return largest

# %% right="torch_isclose_and_explicit_assert" cell="check_parity" passes=["check_parity_tests"]
def check_parity(model, session, x, rtol=1e-4, atol=1e-5):
    model.train(False)
    with torch.no_grad():
        torch_out = model(x)
    name = session.get_inputs()[0].name
    onnx_out = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    worst = (onnx_out - torch_out).abs().max().item()
    ok = onnx_out.shape == torch_out.shape and bool(torch.isclose(onnx_out, torch_out, rtol=rtol, atol=atol).all())
    assert ok, f"ONNX Runtime differs from PyTorch by up to {worst:.3e} (rtol={rtol}, atol={atol})"
    return float(worst)

# %% right="perf_counter_ns_and_numpy_percentiles" cell="measure_latency" passes=["measure_latency_tests"]
def measure_latency(run, batch, warmup=3, repeat=20):
    for _ in range(warmup):
        run()
    ns = np.empty(repeat, dtype=np.int64)
    for i in range(repeat):
        start = time.perf_counter_ns()
        run()
        ns[i] = time.perf_counter_ns() - start
    ms = ns / 1e6
    median_ms = float(np.median(ms))
    return {"batch": batch, "median_ms": median_ms, "p90_ms": float(np.percentile(ms, 90)),
            "samples_per_s": batch / (median_ms / 1e3)}

# %% right="percentiles_in_one_call" cell="measure_latency" passes=["measure_latency_tests"]
def measure_latency(run, batch, warmup=3, repeat=20):
    _ = [run() for _ in range(warmup)]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        t1 = time.perf_counter()
        times.append(t1 - t0)
    p50, p90 = np.percentile(np.array(times) * 1000.0, [50, 90])
    return dict(batch=batch, median_ms=float(p50), p90_ms=float(p90), samples_per_s=batch * 1000.0 / float(p50))
