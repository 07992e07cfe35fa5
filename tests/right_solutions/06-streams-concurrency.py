# Right answers written another way than lab 06's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="closed_form_starts" cell="chunk_bounds" passes=["chunk_bounds_tests"]
def chunk_bounds(n, chunks):
    if chunks < 1:
        raise ValueError("chunks must be >= 1")
    k = min(n, chunks)
    if k <= 0:
        return []
    size, extra = divmod(n, k)
    # chunk i starts after i chunks of `size` and min(i, extra) of the larger ones
    starts = [i * size + min(i, extra) for i in range(k + 1)]
    return [(starts[i], starts[i + 1]) for i in range(k)]

# %% right="accumulated_sizes" cell="chunk_bounds" passes=["chunk_bounds_tests"]
def chunk_bounds(n, chunks):
    from itertools import accumulate
    if not chunks >= 1:
        raise ValueError(chunks)
    count = min(chunks, n)
    q, r = divmod(n, count) if count else (0, 0)
    sizes = [q + 1] * r + [q] * (count - r)
    stops = list(accumulate(sizes))
    return list(zip([0] + stops[:-1], stops))

# %% right="pinned_by_size_and_device_array_like" cell="pipeline" passes=["pipeline_tests"]
def pipeline(x, n_streams):
    out = cuda.pinned_array(x.size, dtype=x.dtype)  # x is 1-D: its shape is (x.size,)
    streams = [cuda.stream() for _ in range(n_streams)]
    for k, (start, stop) in enumerate(chunk_bounds(x.size, n_streams)):
        stream = streams[k]
        d_in = cuda.to_device(x[start:stop], stream=stream)
        d_out = cuda.device_array_like(d_in, stream=stream)
        transform_kernel[BLOCKS, THREADS, stream](d_in, d_out)
        d_out.copy_to_host(out[start:stop], stream=stream)
    for stream in streams:
        stream.synchronize()
    return out

# %% right="queue_then_synchronise_in_reverse" cell="pipeline" passes=["pipeline_tests"]
def pipeline(x, n_streams):
    bounds = chunk_bounds(x.size, n_streams)
    streams = [cuda.stream() for _ in range(n_streams)]
    result = cuda.pinned_array(x.shape, x.dtype)
    for (a, b), s in zip(bounds, streams):
        d = cuda.to_device(x[a:b], stream=s)
        y = cuda.device_array(shape=(b - a,), dtype=x.dtype, stream=s)
        transform_kernel[BLOCKS, THREADS, s](d, y)
        y.copy_to_host(result[a:b], stream=s)
    for s in reversed(streams):  # every stream, in any order, after all chunks are queued
        s.synchronize()
    return result

# %% right="perf_counter_ns_and_statistics_median" cell="measure" passes=["measure_tests"]
def measure(fn, repeat=5, warmup=1):
    import statistics
    for _ in range(warmup):
        fn()
    ms = []
    if lab.on_gpu:
        start, stop = cuda.event(timing=True), cuda.event(timing=True)
        for _ in range(repeat):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            ms.append(cuda.event_elapsed_time(start, stop))
        clock = "cuda-events"
    else:
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            fn()
            ms.append((time.perf_counter_ns() - t0) / 1e6)
        clock = "host"
    return dict(tier=lab.tier, clock=clock, median_ms=float(statistics.median(ms)), runs=repeat,
                label=lab.timing_label())
