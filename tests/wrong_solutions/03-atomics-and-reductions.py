# %% wrong="plain_increment_race" cell="histogram_atomic" fails=["histogram_atomic_tests"]
@cuda.jit
def histogram_atomic(values, hist):
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        hist[values[i]] += 1  # read, add, write: threads on the same bin lose counts

# %% wrong="no_grid_stride" cell="histogram_atomic" fails=["histogram_atomic_tests"]
@cuda.jit
def histogram_atomic(values, hist):
    i = cuda.grid(1)
    if i < values.shape[0]:
        cuda.atomic.add(hist, values[i], 1)

# %% wrong="grid_stride_off_by_one" cell="histogram_atomic" fails=["histogram_atomic_tests"]
@cuda.jit
def histogram_atomic(values, hist):
    for i in range(cuda.grid(1), values.shape[0] - 1, cuda.gridsize(1)):
        cuda.atomic.add(hist, values[i], 1)

# %% wrong="missing_syncthreads_after_zeroing" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        local[b] = 0
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        cuda.atomic.add(hist, b, local[b])

# %% wrong="missing_syncthreads_before_merge" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        cuda.atomic.add(hist, b, local[b])

# %% wrong="zero_only_own_bin" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    tid = cuda.threadIdx.x
    if tid < nbins:
        local[tid] = 0  # 64 threads zero 64 of 256 bins: the rest keep the last block's counts
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    for b in range(tid, nbins, cuda.blockDim.x):
        cuda.atomic.add(hist, b, local[b])

# %% wrong="missing_syncthreads_after_store" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="missing_syncthreads_in_tree" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="grid_stride_skips_last" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0] - 1, cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="block_stride_instead_of_grid_stride" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.blockDim.x):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="final_sum_on_host" cell="gpu_sum" fails=["gpu_sum_tests"]
def gpu_sum(x):
    d_x = cuda.to_device(x) if isinstance(x, np.ndarray) else x
    n = d_x.shape[0]
    blocks = max(1, min((n + SUM_THREADS - 1) // SUM_THREADS, MAX_SUM_BLOCKS))
    d_partial = cuda.device_array(blocks, np.float64)
    block_sum_kernel[blocks, SUM_THREADS](d_x, d_partial)
    return float(d_partial.copy_to_host().sum())

# %% wrong="floor_division_blocks" cell="gpu_sum" fails=["gpu_sum_tests"]
def gpu_sum(x):
    d_x = cuda.to_device(x) if isinstance(x, np.ndarray) else x
    n = d_x.shape[0]
    blocks = min(n // SUM_THREADS, MAX_SUM_BLOCKS)
    d_partial = cuda.device_array(blocks, np.float64)
    block_sum_kernel[blocks, SUM_THREADS](d_x, d_partial)
    d_total = cuda.device_array(1, np.float64)
    block_sum_kernel[1, SUM_THREADS](d_partial, d_total)
    return float(d_total.copy_to_host()[0])

# %% wrong="host_numpy_object_as_histogram_atomic" cell="histogram_atomic" fails=["histogram_atomic_tests"]
class HostHistogram:
    """Indexes and calls like a kernel, but counts on the host with np.bincount."""

    def __getitem__(self, config):
        def run(values, hist):
            counts = np.bincount(values.copy_to_host(), minlength=hist.shape[0])
            hist.copy_to_device((hist.copy_to_host() + counts).astype(hist.dtype))
        return run


histogram_atomic = HostHistogram()

# %% wrong="host_numpy_object_as_histogram_shared" cell="histogram_shared" fails=["histogram_shared_tests"]
class HostHistogram:
    """Indexes and calls like a kernel, but counts on the host with np.bincount."""

    def __getitem__(self, config):
        def run(values, hist):
            counts = np.bincount(values.copy_to_host(), minlength=hist.shape[0])
            hist.copy_to_device((hist.copy_to_host() + counts).astype(hist.dtype))
        return run


histogram_shared = HostHistogram()

# %% wrong="host_numpy_object_as_block_sum_kernel" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
class HostBlockSum:
    """Indexes and calls like a kernel, but adds up each block's elements on the host with NumPy."""

    def __getitem__(self, config):
        blocks, threads = config

        def run(x, partial):
            h_x = x.copy_to_host()
            owner = (np.arange(h_x.size) % (blocks * threads)) // threads
            partial.copy_to_device(np.array([h_x[owner == b].astype(np.float64).sum() for b in range(blocks)]))
        return run


block_sum_kernel = HostBlockSum()

# %% wrong="launches_on_nothing_sum_on_host" cell="gpu_sum" fails=["gpu_sum_tests"]
def gpu_sum(x):
    d_x = cuda.to_device(x) if isinstance(x, np.ndarray) else x
    n = d_x.shape[0]
    blocks = max(1, min((n + SUM_THREADS - 1) // SUM_THREADS, MAX_SUM_BLOCKS))
    d_partial = cuda.device_array(blocks, np.float64)
    block_sum_kernel[blocks, SUM_THREADS](d_x[:0], d_partial)  # both passes launched as taught, on no data
    d_total = cuda.device_array(1, np.float64)
    block_sum_kernel[1, SUM_THREADS](d_partial, d_total)
    return math.fsum(d_x.copy_to_host())

# %% wrong="kernel_for_show_sum_on_host" cell="gpu_sum" fails=["gpu_sum_tests"]
def gpu_sum(x):
    d_x = cuda.to_device(x) if isinstance(x, np.ndarray) else x
    n = d_x.shape[0]
    blocks = max(1, min((n + SUM_THREADS - 1) // SUM_THREADS, MAX_SUM_BLOCKS))
    d_partial = cuda.device_array(blocks, np.float64)
    block_sum_kernel[blocks, SUM_THREADS](d_x, d_partial)
    d_total = cuda.device_array(1, np.float64)
    block_sum_kernel[1, SUM_THREADS](d_partial, d_total)  # the kernel's sum is never read
    return float(np.sum(d_x.copy_to_host(), dtype=np.float64))

# %% wrong="global_atomics_behind_a_shared_array" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    # Right counts, no privatisation: the shared array is zeroed and then never used; every value is
    # one global atomic, as in histogram_atomic (caught on behaviour: hist updated once per value).
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(hist, values[i], 1)

# %% wrong="thread_zero_adds_the_cache_alone" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    # Right partial sums, no tree: after one barrier thread 0 adds the whole cache while the other
    # threads wait (caught on behaviour: one thread reads all SUM_THREADS entries).
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    if tid == 0:
        total = 0.0
        for t in range(cuda.blockDim.x):
            total += cache[t]
        partial[cuda.blockIdx.x] = total

# %% wrong="state_of_the_thread_in_its_block" cell="pi_darts_kernel" fails=["pi_darts_kernel_tests"]
@cuda.jit
def pi_darts_kernel(states, darts_per_thread, hits):
    # cuda.threadIdx.x as the state's index: thread 5 of every block shares state 5 (a race on it).
    i = cuda.grid(1)
    if i < hits.shape[0]:
        inside = 0
        for _ in range(darts_per_thread):
            x = xoroshiro128p_uniform_float32(states, cuda.threadIdx.x)
            y = xoroshiro128p_uniform_float32(states, cuda.threadIdx.x)
            if x * x + y * y <= 1.0:
                inside += 1
        hits[i] = inside

# %% wrong="one_state_for_every_thread" cell="pi_darts_kernel" fails=["pi_darts_kernel_tests"]
@cuda.jit
def pi_darts_kernel(states, darts_per_thread, hits):
    i = cuda.grid(1)
    if i < hits.shape[0]:
        inside = 0
        for _ in range(darts_per_thread):
            x = xoroshiro128p_uniform_float32(states, 0)
            y = xoroshiro128p_uniform_float32(states, 0)
            if x * x + y * y <= 1.0:
                inside += 1
        hits[i] = inside

# %% wrong="one_number_for_x_and_y" cell="pi_darts_kernel" fails=["pi_darts_kernel_tests"]
@cuda.jit
def pi_darts_kernel(states, darts_per_thread, hits):
    # Darts on the diagonal: x == y, inside when x < 1 / sqrt(2), so "pi" comes out near 2.83.
    i = cuda.grid(1)
    if i < hits.shape[0]:
        inside = 0
        for _ in range(darts_per_thread):
            x = xoroshiro128p_uniform_float32(states, i)
            if x * x + x * x <= 1.0:
                inside += 1
        hits[i] = inside

# %% wrong="every_thread_writes" cell="pi_darts_kernel" fails=["pi_darts_kernel_tests"]
@cuda.jit
def pi_darts_kernel(states, darts_per_thread, hits):
    # No bounds check: with more threads than entries, the extra threads draw and write past hits.
    i = cuda.grid(1)
    inside = 0
    for _ in range(darts_per_thread):
        x = xoroshiro128p_uniform_float32(states, i)
        y = xoroshiro128p_uniform_float32(states, i)
        if x * x + y * y <= 1.0:
            inside += 1
    hits[i] = inside

# %% wrong="shared_merge_not_atomic" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    # A race between blocks: two blocks add to one bin of hist at once. The simulator runs one block
    # after another, so no count is lost there; the race check finds it.
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    tid = cuda.threadIdx.x
    for b in range(tid, nbins, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    for b in range(tid, nbins, cuda.blockDim.x):
        hist[b] += local[b]

# %% wrong="shared_count_not_atomic" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    # A race in shared memory: threads of a block count one value at once with a plain +=.
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    tid = cuda.threadIdx.x
    for b in range(tid, nbins, cuda.blockDim.x):
        local[b] = 0
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        local[values[i]] += 1
    cuda.syncthreads()
    for b in range(tid, nbins, cuda.blockDim.x):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])

# %% wrong="barrier_inside_the_if" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    # Rule 2 broken: the barrier is inside the if, so threads t >= s never reach it. The simulator
    # releases a barrier once every thread still running waits there, so the sums come out right.
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
            cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="return_before_the_barrier" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    # Rule 2 broken another way: threads that have nothing left to add return, before the barriers
    # the others still call.
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid >= s:
            return
        cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="shared_size_from_the_launch" cell="block_sum_kernel" fails=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    # A shared array sized at run time: a GPU needs a constant size (caught by the compile check).
    cache = cuda.shared.array(cuda.blockDim.x, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        acc += x[i]
    cache[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]

# %% wrong="python_list_in_the_kernel" cell="histogram_atomic" fails=["histogram_atomic_tests"]
@cuda.jit
def histogram_atomic(values, hist):
    # A Python list in a kernel (caught by the compile check).
    mine = []
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        mine.append(values[i])
    for v in mine:
        cuda.atomic.add(hist, v, 1)
# %% wrong="shared_histogram_never_zeroed" cell="histogram_shared" fails=["histogram_shared_tests"]
@cuda.jit
def histogram_shared(values, hist):
    # The block's counters are never zeroed: shared memory starts with whatever was there.
    local = cuda.shared.array(MAX_BINS, int32)
    nbins = hist.shape[0]
    cuda.syncthreads()
    for i in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(local, values[i], 1)
    cuda.syncthreads()
    for b in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        cuda.atomic.add(hist, b, local[b])
