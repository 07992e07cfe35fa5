# %% wrong="rows_and_columns_swapped" cell="tile_grid" fails=["tile_grid_tests"]
def tile_grid(shape):
    rows, cols = shape
    return (rows + TILE - 1) // TILE, (cols + TILE - 1) // TILE

# %% wrong="floor_instead_of_ceiling" cell="tile_grid" fails=["tile_grid_tests"]
def tile_grid(shape):
    rows, cols = shape
    return max(cols // TILE, 1), max(rows // TILE, 1)

# %% wrong="float_ceiling" cell="tile_grid" fails=["tile_grid_tests"]
def tile_grid(shape):
    rows, cols = shape
    return math.ceil(cols / TILE), math.ceil(rows / TILE)

# %% wrong="swapped_tile_indices" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # The tile read back as it was written: a copy of each tile, not its transpose.
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < out.shape[0] and out_col < out.shape[1]:
            out[first_out_row + j, out_col] = tile[j, tx]

# %% wrong="missing_syncthreads" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # No barrier: a thread reads tile entries other threads have not written yet.
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < out.shape[0] and out_col < out.shape[1]:
            out[first_out_row + j, out_col] = tile[tx, j]

# %% wrong="tile_not_padded" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # Right result, unpadded tile: its column reads are 32-way bank conflicts on a GPU
    # (caught by the PTX byte count and, on behaviour, by the traced bank conflicts).
    tile = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < out.shape[0] and out_col < out.shape[1]:
            out[first_out_row + j, out_col] = tile[tx, j]

# %% wrong="store_checked_against_input_shape" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # The store checked against a's shape, not out's: wrong on every non-square shape.
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < a.shape[0] and out_col < a.shape[1]:
            out[first_out_row + j, out_col] = tile[tx, j]

# %% wrong="missing_second_syncthreads" cell="matmul_tiled" fails=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        k_a = t * TILE + tx
        k_b = t * TILE + ty
        if row < a.shape[0] and k_a < a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        else:
            sa[ty, tx] = float32(0.0)
        if k_b < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        else:
            sb[ty, tx] = float32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc

# %% wrong="missing_first_syncthreads" cell="matmul_tiled" fails=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        k_a = t * TILE + tx
        k_b = t * TILE + ty
        if row < a.shape[0] and k_a < a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        else:
            sa[ty, tx] = float32(0.0)
        if k_b < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        else:
            sb[ty, tx] = float32(0.0)
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc

# %% wrong="tile_bounds_off_by_one" cell="matmul_tiled" fails=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        k_a = t * TILE + tx
        k_b = t * TILE + ty
        if row < a.shape[0] and k_a <= a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        else:
            sa[ty, tx] = float32(0.0)
        if k_b <= b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        else:
            sb[ty, tx] = float32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc

# %% wrong="no_zeros_outside_the_matrices" cell="matmul_tiled" fails=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range((a.shape[1] + TILE - 1) // TILE):
        k_a = t * TILE + tx
        k_b = t * TILE + ty
        if row < a.shape[0] and k_a < a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        if k_b < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc

# %% wrong="last_partial_tile_skipped" cell="matmul_tiled" fails=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    acc = float32(0.0)
    for t in range(a.shape[1] // TILE):
        k_a = t * TILE + tx
        k_b = t * TILE + ty
        if row < a.shape[0] and k_a < a.shape[1]:
            sa[ty, tx] = a[row, k_a]
        else:
            sa[ty, tx] = float32(0.0)
        if k_b < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[k_b, col]
        else:
            sb[ty, tx] = float32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc

# %% wrong="host_numpy_object_as_transpose_kernel" cell="transpose_padded" fails=["transpose_padded_tests"]
class HostTranspose:
    """Indexes and calls like a kernel, but transposes on the host with NumPy."""

    def __getitem__(self, config):
        def run(a, out):
            out.copy_to_device(np.ascontiguousarray(a.copy_to_host().T))
        return run


transpose_padded = HostTranspose()

# %% wrong="host_numpy_object_as_matmul_kernel" cell="matmul_tiled" fails=["matmul_tiled_tests"]
class HostMatmul:
    """Indexes and calls like a kernel, but multiplies on the host with NumPy."""

    def __getitem__(self, config):
        def run(a, b, c):
            c.copy_to_device((a.copy_to_host() @ b.copy_to_host()).astype(np.float32))
        return run


matmul_tiled = HostMatmul()

# %% wrong="stores_down_a_column" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # Right result, strided stores: each thread writes back the elements it loaded, transposed, so the
    # threads of a warp (threadIdx.x) write down a column of out (caught on behaviour: traced sectors).
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            out[col, first_row + j] = tile[j, tx]

# %% wrong="one_row_of_the_tile_per_thread" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # transpose_shared with a padded tile, as if the block had TILE x TILE threads: with TILE_ROWS rows
    # of threads only rows 0..TILE_ROWS-1 of each tile are loaded and stored.
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * TILE + ty
    col = cuda.blockIdx.x * TILE + tx
    if row < a.shape[0] and col < a.shape[1]:
        tile[ty, tx] = a[row, col]
    cuda.syncthreads()
    out_row = cuda.blockIdx.x * TILE + ty
    out_col = cuda.blockIdx.y * TILE + tx
    if out_row < out.shape[0] and out_col < out.shape[1]:
        out[out_row, out_col] = tile[tx, ty]

# %% wrong="padded_on_the_wrong_axis" cell="transpose_padded" fails=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    # Right result and the padded tile's bytes (the PTX check passes), but the extra row, not the extra
    # column: rows of TILE words, so a warp reading a column of the tile hits one bank (caught on
    # behaviour: traced bank conflicts with the GPU's 32 x 32 tile).
    tile = cuda.shared.array((TILE_PAD, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col = cuda.blockIdx.x * TILE + tx
    first_row = cuda.blockIdx.y * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_row + j < a.shape[0] and col < a.shape[1]:
            tile[j, tx] = a[first_row + j, col]
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    first_out_row = cuda.blockIdx.x * TILE
    for j in range(ty, TILE, TILE_ROWS):
        if first_out_row + j < out.shape[0] and out_col < out.shape[1]:
            out[first_out_row + j, out_col] = tile[tx, j]
