# %% wrong="chunk_bounds_drops_remainder" cell="chunk_bounds" fails=["chunk_bounds_tests", "pipeline_tests"]
def chunk_bounds(n, chunks):
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    count = min(chunks, n)
    if count == 0:
        return []
    size = n // count
    return [(k * size, (k + 1) * size) for k in range(count)]

# %% wrong="chunk_bounds_remainder_in_last" cell="chunk_bounds" fails=["chunk_bounds_tests"]
def chunk_bounds(n, chunks):
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    count = min(chunks, n)
    if count == 0:
        return []
    size = n // count
    bounds = [(k * size, (k + 1) * size) for k in range(count)]
    bounds[-1] = (bounds[-1][0], n)
    return bounds

# %% wrong="chunk_bounds_float_split" cell="chunk_bounds" fails=["chunk_bounds_tests"]
def chunk_bounds(n, chunks):
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    count = min(chunks, n)
    edges = [round(k * n / count) for k in range(count + 1)] if count else []
    return list(zip(edges[:-1], edges[1:]))

# %% wrong="chunk_bounds_ceil_size" cell="chunk_bounds" fails=["chunk_bounds_tests"]
def chunk_bounds(n, chunks):
    if chunks < 1:
        raise ValueError("chunks must be at least 1")
    size = -(-n // chunks) if n else 0
    return [(a, min(a + size, n)) for a in range(0, n, size)] if size else []

# %% wrong="copy_back_on_first_stream" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=streams[0])
    for s in streams:
        s.synchronize()
    return out

# %% wrong="no_synchronize" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    return out

# %% wrong="synchronize_last_stream_only" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    streams[-1].synchronize()
    return out

# %% wrong="kernel_on_default_stream" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    for s in streams:
        s.synchronize()
    return out

# %% wrong="pageable_output" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = np.empty_like(x)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    for s in streams:
        s.synchronize()
    return out

# %% wrong="one_device_buffer_for_all_chunks" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    bounds = chunk_bounds(x.size, n_streams)
    d_y = cuda.device_array(max((b - a for a, b in bounds), default=0), dtype=x.dtype)
    for (a, b), s in zip(bounds, streams):
        d_x = cuda.to_device(x[a:b], stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y[: b - a])
        d_y[: b - a].copy_to_host(out[a:b], stream=s)
    for s in streams:
        s.synchronize()
    return out

# %% wrong="events_on_every_tier" cell="measure" fails=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, stop = cuda.event(), cuda.event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return {"tier": lab.tier, "clock": "cuda-events" if lab.on_gpu else "host",
            "median_ms": float(np.median(times)), "runs": repeat, "label": lab.timing_label()}

# %% wrong="claims_gpu_figures" cell="measure" fails=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"tier": "gpu", "clock": "cuda-events", "median_ms": float(np.median(times)), "runs": repeat,
            "label": "GPU"}

# %% wrong="mean_not_median" cell="measure" fails=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"tier": lab.tier, "clock": "host", "median_ms": float(np.mean(times)), "runs": repeat,
            "label": lab.timing_label()}

# %% wrong="warmup_timed" cell="measure" fails=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    times = []
    for _ in range(warmup + repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"tier": lab.tier, "clock": "host", "median_ms": float(np.median(times[:repeat])), "runs": repeat,
            "label": lab.timing_label()}

# %% wrong="seconds_not_milliseconds" cell="measure" fails=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"tier": lab.tier, "clock": "host", "median_ms": float(np.median(times)), "runs": repeat,
            "label": lab.timing_label()}

# %% wrong="token_launches_then_numpy" cell="pipeline" fails=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams)]
    for (a, b), s in zip(chunk_bounds(x.size, n_streams), streams):
        d_x = cuda.to_device(x[a:a + 1], stream=s)
        d_y = cuda.device_array(1, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)  # one launch per chunk on its stream, on one element
    for s in streams:
        s.synchronize()
    out[:] = np.sqrt(x) * 2 + 1  # the answer comes from the host
    return out

# %% wrong="pipeline_keyed_on_published_cases" cell="pipeline" fails=["pipeline_tests"]
# Keyed on the published test inputs: one stream per chunk for the sizes and stream counts the visible
# and the fixed hidden tests use; every chunk on one stream (serialised, though the values are right) for
# any other. It passed every test of the lab before its cases were drawn (run against main's lab at
# 52ab604); the drawn cases always ask for 2 streams or more.
PUBLISHED_PIPELINES = {(10_001, 4), (1_000, 3), (7, 3), (2, 4), (4_099, 1), (5_003, 8)}


def pipeline(x, n_streams):
    out = cuda.pinned_array(x.shape, dtype=x.dtype)
    streams = [cuda.stream() for _ in range(n_streams if (x.size, n_streams) in PUBLISHED_PIPELINES else 1)]
    for k, (a, b) in enumerate(chunk_bounds(x.size, n_streams)):
        s = streams[k % len(streams)]
        d_x = cuda.to_device(x[a:b], stream=s)
        d_y = cuda.device_array(b - a, dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d_x, d_y)
        d_y.copy_to_host(out[a:b], stream=s)
    for s in streams:
        s.synchronize()
    return out
