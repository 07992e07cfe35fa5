# Right answers written another way than lab 07's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="centred_offsets_and_if_clamps" cell="blur_kernel" passes=["blur_kernel_tests"]
@cuda.jit
def blur_kernel(img, weights, out):
    rows = img.shape[0]
    cols = img.shape[1]
    k = weights.shape[0]
    half = k // 2
    total = 0
    for i in range(k * k):
        total += weights[i // k, i % k]
    row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    while row < rows:
        col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        while col < cols:
            acc = 0
            for dy in range(-half, half + 1):
                y = row + dy
                if y < 0:
                    y = 0
                if y > rows - 1:
                    y = rows - 1
                for dx in range(-half, half + 1):
                    x = col + dx
                    if x < 0:
                        x = 0
                    if x > cols - 1:
                        x = cols - 1
                    acc += weights[dy + half, dx + half] * img[y, x]
            out[row, col] = (acc + total // 2) // total
            col += cuda.gridDim.x * cuda.blockDim.x
        row += cuda.gridDim.y * cuda.blockDim.y

# %% right="column_major_thread_number_and_while_zeroing" cell="histogram_kernel" passes=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    counts = cuda.shared.array(256, numba.int32)
    # any numbering of the block's threads from 0 to threads - 1 will do
    t = cuda.threadIdx.x * cuda.blockDim.y + cuda.threadIdx.y
    threads = cuda.blockDim.x * cuda.blockDim.y
    b = t
    while b < 256:
        counts[b] = 0
        b += threads
    cuda.syncthreads()
    x0, y0 = cuda.grid(2)
    sx, sy = cuda.gridsize(2)
    for y in range(y0, img.shape[0], sy):
        for x in range(x0, img.shape[1], sx):
            cuda.atomic.add(counts, numba.int32(img[y, x]), 1)
    cuda.syncthreads()
    b = t
    while b < 256:
        cuda.atomic.add(hist, b, counts[b])  # zeros too: adding 0 is harmless
        b += threads

# %% right="separate_loops_first_nonzero_break" cell="lut_kernel" passes=["lut_kernel_tests"]
@cuda.jit
def lut_kernel(hist, lut):
    counts = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    counts[v] = hist[v]
    cuda.syncthreads()
    n = numba.int64(0)
    for b in range(256):
        n += counts[b]
    cdf = numba.int64(0)
    for b in range(v + 1):
        cdf += counts[b]
    cdf_min = numba.int64(0)
    for b in range(256):
        if counts[b] > 0:
            cdf_min = counts[b]
            break
    span = n - cdf_min
    if span > 0:
        level = ((cdf - cdf_min) * 255 + span // 2) // span
        if level < 0:
            level = 0
        elif level > 255:
            level = 255
        lut[v] = level
    else:
        lut[v] = v

# %% right="shared_prefix_scan" cell="lut_kernel" passes=["lut_kernel_tests"]
@cuda.jit
def lut_kernel(hist, lut):
    # Hillis-Steele inclusive scan of the 256 counts in shared memory, double-buffered
    ping = cuda.shared.array(256, numba.int64)
    pong = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    ping[v] = hist[v]
    cuda.syncthreads()
    offset = 1
    src_is_ping = True
    while offset < 256:
        if src_is_ping:
            pong[v] = ping[v] + ping[v - offset] if v >= offset else ping[v]
        else:
            ping[v] = pong[v] + pong[v - offset] if v >= offset else pong[v]
        cuda.syncthreads()
        src_is_ping = not src_is_ping
        offset *= 2
    # 8 steps: the scan ends in ping
    cdf = ping[v]
    n = ping[255]
    cdf_min = numba.int64(0)
    b = 0
    while b < 256 and cdf_min == 0:  # the first non-zero cumulative count is the first non-zero bin's count
        cdf_min = ping[b]
        b += 1
    span = n - cdf_min
    if span == 0:
        lut[v] = v
    else:
        lut[v] = min(max(((cdf - cdf_min) * 255 + span // 2) // span, 0), 255)

# %% right="while_loops_and_host_buffers_like" cell="pipeline" passes=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    while row < out.shape[0]:
        col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        while col < out.shape[1]:
            out[row, col] = lut[img[row, col]]
            col += cuda.gridDim.x * cuda.blockDim.x
        row += cuda.gridDim.y * cuda.blockDim.y


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    blocks = grid_2d(d_img.shape)
    blur_kernel[blocks, BLOCK_2D](d_img, d_weights, d_blurred)
    clear_kernel[1, 256](d_hist)  # any time before the histogram is counted
    histogram_kernel[blocks, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[blocks, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    img = np.asarray(img, dtype=np.uint8)
    d_img = cuda.to_device(img)
    d_weights = cuda.to_device(np.array(weights, dtype=np.int32))
    d_blurred = cuda.device_array_like(d_img)
    d_out = cuda.device_array_like(d_img)
    d_hist = cuda.to_device(np.zeros(256, np.int32))
    d_lut = cuda.device_array(shape=(256,), dtype=np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    result = np.empty(img.shape, np.uint8)
    d_out.copy_to_host(result)
    return result

# %% right="numba_type_signatures_and_a_wrapped_device_function" cell="blur_kernel" passes=["blur_kernel_tests"]
# Signatures of Numba's type objects (one per output type the tests use) and a device function made by wrapping a
# plain function: styles of Numba's documentation that the outside check took only as strings and decorated defs.
from numba import void, uint8, int16, int32 as i32


def clamp_index(v, last):
    return min(max(v, 0), last)


clamp = cuda.jit(device=True)(clamp_index)


@cuda.jit([void(uint8[:, :], i32[:, :], uint8[:, :]), void(uint8[:, :], i32[:, :], int16[:, :])])
def blur_kernel(img, weights, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    rows, cols = img.shape
    k = weights.shape[0]
    r = k // 2
    total = 0
    for i in range(k):
        for j in range(k):
            total += weights[i, j]
    for row in range(row0, rows, row_stride):
        for col in range(col0, cols, col_stride):
            acc = 0
            for i in range(k):
                y = clamp(row + i - r, rows - 1)
                for j in range(k):
                    acc += weights[i, j] * img[y, clamp(col + j - r, cols - 1)]
            out[row, col] = (acc + total // 2) // total

# %% right="plain_function_wrapped_by_cuda_jit" cell="histogram_kernel" passes=["histogram_kernel_tests"]
def count_levels(img, hist):
    local = cuda.shared.array(256, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    threads = cuda.blockDim.x * cuda.blockDim.y
    for b in range(t, 256, threads):
        local[b] = 0
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    for b in range(t, 256, threads):
        cuda.atomic.add(hist, b, local[b])


histogram_kernel = cuda.jit(count_levels)

# %% right="numba_module_signature_and_an_alias" cell="lut_kernel" passes=["lut_kernel_tests"]
@cuda.jit(numba.void(numba.types.int32[:], numba.uint8[::1]))
def equalisation_table(hist, lut):
    counts = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    counts[v] = hist[v]
    cuda.syncthreads()
    n = 0
    cdf = 0
    cdf_min = 0
    for b in range(256):
        c = counts[b]
        n += c
        if b <= v:
            cdf += c
        if cdf_min == 0:
            cdf_min = c
    span = n - cdf_min
    if span == 0:
        lut[v] = v
    else:
        lut[v] = min(max(((cdf - cdf_min) * 255 + span // 2) // span, 0), 255)


lut_kernel = equalisation_table

# %% right="apply_kernel_wrapped_with_a_string_signature" cell="pipeline" passes=["pipeline_tests"]
def apply_table(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


apply_lut_kernel = cuda.jit("void(uint8[:, :], uint8[:], uint8[:, :])")(apply_table)


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()
