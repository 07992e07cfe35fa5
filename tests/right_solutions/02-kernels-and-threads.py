# Right answers written another way than lab 02's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="explicit_indices_and_while_loops" cell="fill_index_2d" passes=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    nrows, ncols = out.shape
    row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    col_start = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    row_step = cuda.gridDim.y * cuda.blockDim.y
    col_step = cuda.gridDim.x * cuda.blockDim.x
    while row < nrows:
        col = col_start
        while col < ncols:
            out[row, col] = row * ncols + col
            col += col_step
        row += row_step

# %% right="columns_outer_loop" cell="fill_index_2d" passes=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    x, y = cuda.grid(2)
    sx, sy = cuda.gridsize(2)
    ncols = out.shape[1]
    for c in range(x, ncols, sx):  # the other loop order: still every (row, col) exactly once
        for r in range(y, out.shape[0], sy):
            out[r, c] = r * ncols + c

# %% right="negated_floor_division" cell="launch_config" passes=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    t = threads_per_block
    if t not in range(32, 1025, 32):
        raise ValueError("threads_per_block must be a multiple of 32 in [32, 1024]")
    blocks = -(-n // t)
    blocks = min(blocks, max_blocks)
    if blocks < 1:
        blocks = 1
    return int(blocks), int(t)

# %% right="divmod_ceiling" cell="launch_config" passes=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    if not (32 <= threads_per_block <= 1024) or threads_per_block % 32:
        raise ValueError(threads_per_block)
    full, rest = divmod(n, threads_per_block)
    needed = full + (1 if rest else 0)
    return (max(min(needed, max_blocks), 1), threads_per_block)

# %% right="explicit_index_math_while_loop" cell="layer_kernel" passes=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    centred = v - mean
    return centred / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return w * v + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    step = cuda.blockDim.x * cuda.gridDim.x
    n = out.shape[0]
    while i < n:
        z = normalise(x[i], mean, std)
        z = weigh(z, w[i], b)
        out[i] = activate(z)
        i += step

# %% right="device_array_unpacked_config_copy_into" cell="layer_gpu" passes=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    dtype = x.dtype
    d_x, d_w = cuda.to_device(x), cuda.to_device(w)
    d_out = cuda.device_array(x.shape, dtype=dtype)
    blocks, threads = launch_config(len(x), THREADS_PER_BLOCK, MAX_BLOCKS)
    layer_kernel[blocks, threads](d_x, d_w, dtype.type(b), dtype.type(mean), dtype.type(std), d_out)
    result = np.empty(x.shape, dtype=dtype)
    d_out.copy_to_host(result)
    return result

# %% right="numpy_scalars_and_size" cell="layer_gpu" passes=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    b_, mean_, std_ = (np.array(v, dtype=x.dtype)[()] for v in (b, mean, std))  # NumPy scalars of x's dtype
    d_x = cuda.to_device(x)
    d_w = cuda.to_device(w)
    d_out = cuda.device_array_like(x)
    layer_kernel[launch_config(x.size, THREADS_PER_BLOCK, MAX_BLOCKS)](d_x, d_w, b_, mean_, std_, d_out)
    return d_out.copy_to_host()

# %% right="early_return_and_one_index_formula" cell="by_kind" passes=["by_kind_tests"]
@cuda.jit
def by_kind(x, out):
    t = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    n = out.shape[0]
    if t >= n:
        return
    half = n - n // 2  # the number of even indices, (n + 1) // 2
    if t < half:
        out[2 * t] = even_work(x[2 * t])
    else:
        k = 2 * (t - half) + 1
        out[k] = odd_work(x[k])
