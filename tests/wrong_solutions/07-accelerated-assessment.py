# %% wrong="blur_zero_padding" cell="blur_kernel" fails=["blur_kernel_tests"]
@cuda.jit
def blur_kernel(img, weights, out):
    # Taps outside the picture count as black instead of the nearest edge pixel: dark edges.
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
                y = row + i - r
                for j in range(k):
                    x = col + j - r
                    if 0 <= y < rows and 0 <= x < cols:
                        acc += weights[i, j] * img[y, x]
            out[row, col] = (acc + total // 2) // total

# %% wrong="blur_interior_only" cell="blur_kernel" fails=["blur_kernel_tests"]
@cuda.jit
def blur_kernel(img, weights, out):
    # No border handling: pixels whose stencil leaves the picture are never written.
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    rows, cols = img.shape
    k = weights.shape[0]
    r = k // 2
    total = 0
    for i in range(k):
        for j in range(k):
            total += weights[i, j]
    for row in range(row0 + r, rows - r, row_stride):
        for col in range(col0 + r, cols - r, col_stride):
            acc = 0
            for i in range(k):
                for j in range(k):
                    acc += weights[i, j] * img[row + i - r, col + j - r]
            out[row, col] = (acc + total // 2) // total

# %% wrong="blur_weights_transposed" cell="blur_kernel" fails=["blur_kernel_tests"]
@cuda.jit
def blur_kernel(img, weights, out):
    # weights[j, i] instead of weights[i, j]: invisible with symmetric weights only.
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
                y = min(max(row + i - r, 0), rows - 1)
                for j in range(k):
                    x = min(max(col + j - r, 0), cols - 1)
                    acc += weights[j, i] * img[y, x]
            out[row, col] = (acc + total // 2) // total

# %% wrong="histogram_missing_syncthreads" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # A race: without the second barrier a thread adds the block's counters to hist while other
    # threads of the block are still counting into them.
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
    for b in range(t, 256, threads):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])

# %% wrong="histogram_zeroes_one_bin_per_thread" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # Assumes 256 threads a block: with fewer, some shared counters are never zeroed or flushed.
    local = cuda.shared.array(256, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    if t < 256:
        local[t] = 0
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    if t < 256:
        cuda.atomic.add(hist, t, local[t])

# %% wrong="histogram_no_grid_stride" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # One pixel per thread: a grid smaller than the picture misses pixels.
    col, row = cuda.grid(2)
    if row < img.shape[0] and col < img.shape[1]:
        cuda.atomic.add(hist, img[row, col], 1)

# %% wrong="lut_exclusive_cdf" cell="lut_kernel" fails=["lut_kernel_tests"]
@cuda.jit
def lut_kernel(hist, lut):
    # Off by one: the running sum stops before level v instead of including it.
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
        if b < v:
            cdf += c
        if cdf_min == 0:
            cdf_min = c
    span = n - cdf_min
    if span == 0:
        lut[v] = v
    else:
        level = ((cdf - cdf_min) * 255 + span // 2) // span
        lut[v] = min(max(level, 0), 255)

# %% wrong="lut_no_single_level_case" cell="lut_kernel" fails=["lut_kernel_tests"]
@cuda.jit
def lut_kernel(hist, lut):
    # Forgets the picture of one grey level: span == 0 divides by zero.
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
    level = ((cdf - cdf_min) * 255 + span // 2) // max(span, 1)
    lut[v] = min(max(level, 0), 255)

# %% wrong="lut_divides_by_n" cell="lut_kernel" fails=["lut_kernel_tests"]
@cuda.jit
def lut_kernel(hist, lut):
    # The textbook shortcut lut = cdf * 255 / n: the darkest level does not map to 0.
    counts = cuda.shared.array(256, numba.int64)
    v = cuda.threadIdx.x
    counts[v] = hist[v]
    cuda.syncthreads()
    n = 0
    cdf = 0
    for b in range(256):
        n += counts[b]
        if b <= v:
            cdf += counts[b]
    lut[v] = min((cdf * 255 + n // 2) // n, 255)

# %% wrong="pipeline_equalises_unblurred_histogram" cell="pipeline" fails=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    # Counts the histogram of the input picture, not of the blurred one.
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_img, d_hist)
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

# %% wrong="pipeline_transposed" cell="pipeline" fails=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    # Works in (x, y) = (cols, rows) order throughout: the picture comes back transposed.
    img_t = np.ascontiguousarray(np.asarray(img, np.uint8).T)
    d_img = cuda.to_device(img_t)
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img_t.shape, np.uint8)
    d_out = cuda.device_array(img_t.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()

# %% wrong="pipeline_histogram_not_cleared" cell="pipeline" fails=["speed_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    # Right on fresh buffers only: the counts of the previous call stay in d_hist.
    grid = grid_2d(d_img.shape)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.to_device(np.zeros(256, np.int32))
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()

# %% wrong="host_numpy_object_as_blur_kernel" cell="blur_kernel" fails=["blur_kernel_tests"]
class HostBlur:
    """Indexes and calls like a kernel, but blurs on the host with the NumPy reference."""

    def __getitem__(self, config):
        def run(img, weights, out):
            out.copy_to_device(blur_reference(img.copy_to_host(), weights.copy_to_host()).astype(out.dtype))
        return run


blur_kernel = HostBlur()

# %% wrong="host_numpy_object_as_histogram_kernel" cell="histogram_kernel" fails=["histogram_kernel_tests"]
class HostHistogram:
    """Indexes and calls like a kernel, but counts on the host with the NumPy reference."""

    def __getitem__(self, config):
        def run(img, hist):
            hist.copy_to_device((hist.copy_to_host() + histogram_reference(img.copy_to_host())).astype(np.int32))
        return run


histogram_kernel = HostHistogram()

# %% wrong="host_numpy_object_as_lut_kernel" cell="lut_kernel" fails=["lut_kernel_tests"]
class HostLut:
    """Indexes and calls like a kernel, but builds the table on the host with the NumPy reference."""

    def __getitem__(self, config):
        def run(hist, lut):
            lut.copy_to_device(equalization_lut_reference(hist.copy_to_host()).astype(np.uint8))
        return run


lut_kernel = HostLut()

# %% wrong="equalize_on_the_host" cell="pipeline" fails=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, BLOCK_2D](d_blurred, d_lut, d_out)


def equalize(img, weights):
    return pipeline_reference(img, weights)  # the host version skips the device altogether

# %% wrong="equalize_device_on_the_host" cell="pipeline" fails=["pipeline_tests", "speed_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    # A round trip to NumPy: right pictures, no kernel does the work.
    d_out.copy_to_device(pipeline_reference(d_img.copy_to_host(), d_weights.copy_to_host()))


def equalize(img, weights):
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()

# %% wrong="lookup_table_on_the_host" cell="pipeline" fails=["pipeline_tests", "speed_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    grid = grid_2d(d_img.shape)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    # The histogram and the table on the host; the kernels of exercises 2 and 3 are left out.
    d_lut.copy_to_device(equalization_lut_reference(histogram_reference(d_blurred.copy_to_host())).astype(np.uint8))
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

# %% wrong="histogram_merge_not_atomic" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # A race between blocks: two blocks add to one bin of hist at once. The simulator runs one block
    # after another, so no count is lost there; the race check finds it.
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
        hist[b] += local[b]

# %% wrong="histogram_count_not_atomic" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # A race in shared memory: threads of a block count one grey level at once with a plain +=. The
    # simulator keeps shared arrays as plain arrays and seldom switches threads inside the +=.
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
            local[img[row, col]] += 1
    cuda.syncthreads()
    for b in range(t, 256, threads):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])

# %% wrong="pipeline_blocks_of_2048_threads" cell="pipeline" fails=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    # Blocks of 64 x 32 = 2,048 threads: every GPU refuses the launch (at most 1,024 a block); the
    # simulator ran it, and the pictures came out right.
    grid = grid_2d(d_img.shape)
    clear_kernel[1, 256](d_hist)
    blur_kernel[grid, BLOCK_2D](d_img, d_weights, d_blurred)
    histogram_kernel[grid, BLOCK_2D](d_blurred, d_hist)
    lut_kernel[1, 256](d_hist, d_lut)
    apply_lut_kernel[grid, (64, 32)](d_blurred, d_lut, d_out)


def equalize(img, weights):
    d_img = cuda.to_device(np.ascontiguousarray(img, np.uint8))
    d_weights = cuda.to_device(np.asarray(weights, np.int32))
    d_blurred = cuda.device_array(img.shape, np.uint8)
    d_out = cuda.device_array(img.shape, np.uint8)
    d_hist = cuda.device_array(256, np.int32)
    d_lut = cuda.device_array(256, np.uint8)
    equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out)
    return d_out.copy_to_host()

# %% wrong="histogram_shared_sized_by_hist" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # The block's counters sized by hist.shape[0], known only at run time: a GPU needs a constant
    # size (caught by the compile check).
    local = cuda.shared.array(hist.shape[0], numba.int32)
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

# %% wrong="pipeline_histogram_never_zeroed" cell="pipeline" fails=["pipeline_tests"]
@cuda.jit
def apply_lut_kernel(img, lut, out):
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            out[row, col] = lut[img[row, col]]


def equalize_device(d_img, d_weights, d_blurred, d_hist, d_lut, d_out):
    # d_hist is never cleared: cuda.device_array's memory is not zeroed on a GPU.
    grid = grid_2d(d_img.shape)
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

# %% wrong="histogram_never_zeroed" cell="histogram_kernel" fails=["histogram_kernel_tests"]
@cuda.jit
def histogram_kernel(img, hist):
    # The block's counters are never zeroed: shared memory starts with whatever was there.
    local = cuda.shared.array(256, numba.int32)
    t = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    threads = cuda.blockDim.x * cuda.blockDim.y
    cuda.syncthreads()
    col0, row0 = cuda.grid(2)
    col_stride, row_stride = cuda.gridsize(2)
    for row in range(row0, img.shape[0], row_stride):
        for col in range(col0, img.shape[1], col_stride):
            cuda.atomic.add(local, img[row, col], 1)
    cuda.syncthreads()
    for b in range(t, 256, threads):
        if local[b] != 0:
            cuda.atomic.add(hist, b, local[b])

# %% wrong="lut_keyed_on_published_cases" cell="lut_kernel" fails=["lut_kernel_tests"]
# Keyed on the published test inputs: the tables of the visible and the fixed hidden histograms,
# computed in advance with the course's reference, written when the histogram is one of them; any other
# histogram gets the identity. Every fixed case passes it; the histograms drawn per grading do not.
from techday.imageref import binomial_weights, blur_reference, equalization_lut_reference, histogram_reference, sample_image

_known = [histogram_reference(blur_reference(sample_image("camera", (45, 61), origin=(190, 200)), binomial_weights(5)))]
for _levels, _counts in (([77], [1_000]), ([40, 41], [3, 1_000]), ([0, 255], [10, 30])):
    _h = np.zeros(256, np.int64)
    _h[_levels] = _counts
    _known.append(_h)
_h = np.zeros(256, np.int64)
_h[30:200] = np.random.default_rng(7).integers(0, 50, 170)
_h[30] = 5
_known += [_h, histogram_reference(sample_image("camera", (4001, 5999))), np.full(256, 3, np.int64)]
KNOWN_HISTS = np.array(_known, np.int64)
KNOWN_LUTS = np.array([equalization_lut_reference(h) for h in _known], np.uint8)


@cuda.jit
def lut_kernel(hist, lut):
    v = cuda.threadIdx.x
    for k in range(KNOWN_HISTS.shape[0]):
        same = True
        for b in range(256):
            if hist[b] != KNOWN_HISTS[k, b]:
                same = False
                break
        if same:
            lut[v] = KNOWN_LUTS[k, v]
            return
    lut[v] = v
