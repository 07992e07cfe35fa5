# %% wrong="rows_cols_swapped" cell="fill_index_2d" fails=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, out.shape[1], row_stride):
        for col in range(col0, out.shape[0], col_stride):
            out[row, col] = row * out.shape[1] + col

# %% wrong="column_major_index" cell="fill_index_2d" fails=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, out.shape[0], row_stride):
        for col in range(col0, out.shape[1], col_stride):
            out[row, col] = col * out.shape[0] + row

# %% wrong="no_grid_stride_2d" cell="fill_index_2d" fails=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    col, row = cuda.grid(2)
    if row < out.shape[0] and col < out.shape[1]:
        out[row, col] = row * out.shape[1] + col

# %% wrong="missing_bounds_check_2d" cell="fill_index_2d" fails=["fill_index_2d_tests"]
@cuda.jit
def fill_index_2d(out):
    col, row = cuda.grid(2)
    out[row, col] = row * out.shape[1] + col

# %% wrong="float_ceil" cell="launch_config" fails=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    if threads_per_block % 32 != 0 or not 32 <= threads_per_block <= 1024:
        raise ValueError("threads_per_block must be a multiple of 32 from 32 to 1024")
    return max(1, min(math.ceil(n / threads_per_block), max_blocks)), threads_per_block

# %% wrong="floor_division" cell="launch_config" fails=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    if threads_per_block % 32 != 0 or not 32 <= threads_per_block <= 1024:
        raise ValueError("threads_per_block must be a multiple of 32 from 32 to 1024")
    return max(1, min(n // threads_per_block, max_blocks)), threads_per_block

# %% wrong="zero_blocks_for_empty" cell="launch_config" fails=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    if threads_per_block % 32 != 0 or not 32 <= threads_per_block <= 1024:
        raise ValueError("threads_per_block must be a multiple of 32 from 32 to 1024")
    return min((n + threads_per_block - 1) // threads_per_block, max_blocks), threads_per_block

# %% wrong="no_upper_limit_check" cell="launch_config" fails=["launch_config_tests"]
def launch_config(n, threads_per_block, max_blocks):
    if threads_per_block % 32 != 0:
        raise ValueError("threads_per_block must be a multiple of 32")
    return max(1, min((n + threads_per_block - 1) // threads_per_block, max_blocks)), threads_per_block

# %% wrong="grid_stride_bound_off_by_one" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    i = cuda.grid(1)
    while i <= x.shape[0]:
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))
        i += cuda.gridsize(1)

# %% wrong="grid_stride_starts_at_i_plus_1" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    for i in range(cuda.grid(1) + 1, x.shape[0], cuda.gridsize(1)):
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))

# %% wrong="one_thread_per_element_no_bounds_check" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    i = cuda.grid(1)
    out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))

# %% wrong="normalise_precedence" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return v - mean / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))

# %% wrong="weigh_before_normalise" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = activate(normalise(weigh(x[i], w[i], b), mean, std))

# %% wrong="sigmoid_instead_of_tanh" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return 1.0 / (1.0 + math.exp(-v))


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))

# %% wrong="plain_python_helpers" cell="layer_kernel" fails=["layer_kernel_tests"]
def normalise(v, mean, std):  # runs in the simulator, fails to compile on a GPU
    return (v - mean) / std


def weigh(v, w, b):
    return v * w + b


def activate(v):
    return math.tanh(v)


@cuda.jit
def layer_kernel(x, w, b, mean, std, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = activate(weigh(normalise(x[i], mean, std), w[i], b))

# %% wrong="returns_device_array" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    d_x = cuda.to_device(x)
    d_w = cuda.to_device(w)
    d_out = cuda.device_array_like(d_x)
    cast = x.dtype.type
    config = launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)
    layer_kernel[config](d_x, d_w, cast(b), cast(mean), cast(std), d_out)
    return d_out

# %% wrong="numpy_arrays_to_kernel" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    out = np.empty_like(x)
    cast = x.dtype.type
    layer_kernel[launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)](x, w, cast(b), cast(mean), cast(std), out)
    return out

# %% wrong="python_float_scalars" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    d_x = cuda.to_device(x)
    d_w = cuda.to_device(w)
    d_out = cuda.device_array_like(d_x)
    layer_kernel[launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)](d_x, d_w, b, mean, std, d_out)
    return d_out.copy_to_host()

# %% wrong="numpy_instead_of_gpu" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    return np.tanh(w * ((x - mean) / std) + b).astype(x.dtype)

# %% wrong="host_numpy_object_as_fill_kernel" cell="fill_index_2d" fails=["fill_index_2d_tests"]
class HostFill:
    """Indexes and calls like a kernel, but fills the matrix from the host with NumPy."""

    def __getitem__(self, config):
        def run(out):
            rows, cols = out.shape
            out[:, :] = np.arange(rows * cols).reshape(rows, cols)
        return run


fill_index_2d = HostFill()

# %% wrong="host_numpy_object_as_layer_kernel" cell="layer_kernel" fails=["layer_kernel_tests"]
@cuda.jit(device=True)
def normalise(v, mean, std):
    return (v - mean) / std


@cuda.jit(device=True)
def weigh(v, w, b):
    return v * w + b


@cuda.jit(device=True)
def activate(v):
    return math.tanh(v)


class HostLayer:
    """Indexes and calls like a kernel, but computes the layer on the host with NumPy."""

    def __getitem__(self, config):
        def run(x, w, b, mean, std, out):
            h_x, h_w = x.copy_to_host(), w.copy_to_host()
            out.copy_to_device(np.tanh(h_w * ((h_x - mean) / std) + b).astype(h_x.dtype))
        return run


layer_kernel = HostLayer()

# %% wrong="token_launch_then_numpy" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    cast = x.dtype.type
    d_x = cuda.to_device(x[:1])
    d_out = cuda.device_array_like(d_x)
    layer_kernel[launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)](  # as taught, but on 1 element
        d_x, cuda.to_device(w[:1]), cast(b), cast(mean), cast(std), d_out)
    return np.tanh(w * ((x - mean) / std) + b).astype(x.dtype)

# %% wrong="kernel_for_show_numpy_result" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    cast = x.dtype.type
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(d_x)
    layer_kernel[launch_config(x.shape[0], THREADS_PER_BLOCK, MAX_BLOCKS)](  # launched, result ignored
        d_x, cuda.to_device(w), cast(0.0), cast(0.0), cast(1.0), d_out)
    return np.tanh(w * ((x - mean) / std) + b).astype(x.dtype)

# %% wrong="one_block_launch" cell="layer_gpu" fails=["layer_gpu_tests"]
def layer_gpu(x, w, b, mean, std):
    d_x = cuda.to_device(x)
    d_w = cuda.to_device(w)
    d_out = cuda.device_array_like(d_x)
    cast = x.dtype.type
    layer_kernel[1, THREADS_PER_BLOCK](d_x, d_w, cast(b), cast(mean), cast(std), d_out)  # right numbers, 1 block
    return d_out.copy_to_host()

# %% wrong="in_order_like_by_parity" cell="by_kind" fails=["by_kind_tests"]
@cuda.jit
def by_kind(x, out):
    # Right results, by_parity's arrangement: every warp holds even and odd elements (caught on
    # behaviour: the traced stores show both kinds in every warp).
    i = cuda.grid(1)
    if i < x.shape[0]:
        if i % 2 == 0:
            out[i] = even_work(x[i])
        else:
            out[i] = odd_work(x[i])

# %% wrong="odd_elements_shifted_by_one" cell="by_kind" fails=["by_kind_tests"]
@cuda.jit
def by_kind(x, out):
    t = cuda.grid(1)
    n = x.shape[0]
    n_even = (n + 1) // 2
    if t < n_even:
        out[2 * t] = even_work(x[2 * t])
    elif t < n:
        j = 2 * (t - n_even)  # forgets the + 1: the odd threads overwrite even elements
        out[j] = odd_work(x[j])

# %% wrong="even_count_rounded_down" cell="by_kind" fails=["by_kind_tests"]
@cuda.jit
def by_kind(x, out):
    t = cuda.grid(1)
    n = x.shape[0]
    n_even = n // 2  # for odd n the last even element is left out
    if t < n_even:
        out[2 * t] = even_work(x[2 * t])
    elif t < 2 * n_even:
        j = 2 * (t - n_even) + 1
        out[j] = odd_work(x[j])
