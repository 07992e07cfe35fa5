# %% wrong="naive_sum_of_squares" cell="mean_var" fails=["mean_var_tests"]
@njit
def mean_var(x):
    s = 0.0
    s2 = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        s2 += x[i] * x[i]
    m = s / x.shape[0]
    return m, s2 / x.shape[0] - m * m

# %% wrong="sample_variance" cell="mean_var" fails=["mean_var_tests"]
@njit
def mean_var(x):
    count = 0
    mean = 0.0
    m2 = 0.0
    for i in range(x.shape[0]):
        count += 1
        delta = x[i] - mean
        mean += delta / count
        m2 += delta * (x[i] - mean)
    return mean, m2 / max(count - 1, 1)

# %% wrong="float64_signature_only" cell="huber" fails=["huber_tests"]
@vectorize(["float64(float64, float64)"])
def huber(r, delta):
    a = abs(r)
    if a <= delta:
        return 0.5 * r * r
    return delta * (a - 0.5 * delta)

# %% wrong="numpy_function_not_a_ufunc" cell="huber" fails=["huber_tests"]
def huber(r, delta):
    return np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))

# %% wrong="forgot_abs" cell="huber" fails=["huber_tests"]
@vectorize(["float32(float32, float32)", "float64(float64, float64)"])
def huber(r, delta):
    if r <= delta:
        return 0.5 * r * r
    return delta * (r - 0.5 * delta)

# %% wrong="no_grid_stride" cell="saxpy_kernel" fails=["saxpy_kernel_tests"]
@cuda.jit
def saxpy_kernel(a, x, y, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i] = a * x[i] + y[i]

# %% wrong="off_by_one_bound" cell="saxpy_kernel" fails=["saxpy_kernel_tests"]
@cuda.jit
def saxpy_kernel(a, x, y, out):
    for i in range(cuda.grid(1), x.shape[0] + 1, cuda.gridsize(1)):
        out[i] = a * x[i] + y[i]

# %% wrong="stride_is_block_size" cell="saxpy_kernel" fails=["saxpy_kernel_tests"]
@cuda.jit
def saxpy_kernel(a, x, y, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.blockDim.x):
        out[i] = a * x[i] + y[i]

# %% wrong="returns_device_array" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_y, d_out)
    return d_out

# %% wrong="numpy_arrays_to_kernel" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    out = np.empty_like(x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](a, x, y, out)
    return out

# %% wrong="float32_output_always" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array(x.shape[0], np.float32)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](a, d_x, d_y, d_out)
    return d_out.copy_to_host()

# %% wrong="numpy_instead_of_gpu" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    return a * x + y

# %% wrong="numpy_mean_and_var" cell="mean_var" fails=["mean_var_tests"]
@njit
def mean_var(x):
    return x.mean(), x.var()  # right numbers (Numba's var takes two passes), but not Welford's single pass

# %% wrong="two_passes" cell="mean_var" fails=["mean_var_tests"]
@njit
def mean_var(x):
    mean = 0.0
    for i in range(x.shape[0]):
        mean += x[i]
    mean /= x.shape[0]
    m2 = 0.0
    for i in range(x.shape[0]):  # a second pass over the data: exact, but not what a stream allows
        m2 += (x[i] - mean) * (x[i] - mean)
    return mean, m2 / x.shape[0]

# %% wrong="host_numpy_object_as_saxpy_kernel" cell="saxpy_kernel" fails=["saxpy_kernel_tests", "saxpy_tests"]
class HostSaxpy:
    """Indexes and calls like a kernel, but computes on the host with NumPy."""

    def __getitem__(self, config):
        def run(a, x, y, out):
            out.copy_to_device((a * x.copy_to_host() + y.copy_to_host()).astype(out.dtype))
        return run


saxpy_kernel = HostSaxpy()

# %% wrong="token_launch_then_numpy" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x[:1])
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_x, d_out)  # a launch as taught, on 1 element
    return (x.dtype.type(a) * x + y).astype(x.dtype)

# %% wrong="one_block" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    saxpy_kernel[1, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_y, d_out)  # right numbers, one block does it all
    return d_out.copy_to_host()

# %% wrong="always_max_blocks" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    saxpy_kernel[MAX_BLOCKS, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_y, d_out)  # more blocks than work
    return d_out.copy_to_host()

# %% wrong="warp_sized_blocks" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / 32), MAX_BLOCKS))
    saxpy_kernel[blocks, 32](x.dtype.type(a), d_x, d_y, d_out)  # not THREADS_PER_BLOCK
    return d_out.copy_to_host()

# %% wrong="python_float_a" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](a, d_x, d_y, d_out)  # float64 arithmetic on float32 data
    return d_out.copy_to_host()

# %% wrong="kernel_for_show_numpy_result" cell="saxpy" fails=["saxpy_tests"]
def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_out = cuda.device_array_like(d_x)
    blocks = max(1, min(math.ceil(x.shape[0] / THREADS_PER_BLOCK), MAX_BLOCKS))
    saxpy_kernel[blocks, THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_x, d_out)  # launched, result ignored
    return (x.dtype.type(a) * x + y).astype(x.dtype)

# %% wrong="fstring_in_the_kernel" cell="saxpy_kernel" fails=["saxpy_kernel_tests"]
@cuda.jit
def saxpy_kernel(a, x, y, out):
    # A string in a kernel: the simulator runs it as Python; no GPU compiles it (caught by the CPU
    # tier's compile check, techday.simcompile).
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        label = f"{i}"
        out[i] = a * x[i] + y[int(label)]

# %% wrong="saxpy_blocks_keyed_on_published_cases" cell="saxpy" fails=["saxpy_tests"]
# Keyed on the published test inputs: the launch taught (ceil(n / THREADS_PER_BLOCK) blocks, up to
# MAX_BLOCKS) for the sizes the visible and the fixed hidden tests use, n // THREADS_PER_BLOCK blocks for
# any other (the grid-stride loop still covers every element, so the values are right). It passed every
# test of the lab before its cases were drawn (run against main's lab at 52ab604); the drawn sizes include
# one of 2 to 4 blocks whose last block is part-filled.
PUBLISHED_SIZES = {3_001, 1_000_003, 1, 100, 2_503, 1_237}


def saxpy(a, x, y):
    d_x = cuda.to_device(x)
    d_y = cuda.to_device(y)
    d_out = cuda.device_array_like(d_x)
    n = x.shape[0]
    blocks = math.ceil(n / THREADS_PER_BLOCK) if n in PUBLISHED_SIZES else n // THREADS_PER_BLOCK
    saxpy_kernel[max(1, min(blocks, MAX_BLOCKS)), THREADS_PER_BLOCK](x.dtype.type(a), d_x, d_y, d_out)
    return d_out.copy_to_host()
