# Right answers written another way than lab 04's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="negated_floor_division" cell="tile_grid" passes=["tile_grid_tests"]
def tile_grid(shape):
    n_rows, n_cols = shape
    blocks_x = -(-n_cols // TILE)
    blocks_y = -(-n_rows // TILE)
    return int(blocks_x), int(blocks_y)

# %% right="divmod_ceiling" cell="tile_grid" passes=["tile_grid_tests"]
def tile_grid(shape):
    def ceil_div(n, d):
        q, r = divmod(n, d)
        return q + (r > 0)
    return (ceil_div(shape[1], TILE), ceil_div(shape[0], TILE))

# %% right="block_dims_and_while_loops" cell="transpose_padded" passes=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    rows, cols = a.shape
    in_col = cuda.blockIdx.x * cuda.blockDim.x + tx  # blockDim.x == TILE
    j = ty
    while j < TILE:
        in_row = cuda.blockIdx.y * TILE + j
        if in_row < rows and in_col < cols:
            tile[j, tx] = a[in_row, in_col]
        j += cuda.blockDim.y  # blockDim.y == TILE_ROWS
    cuda.syncthreads()
    out_col = cuda.blockIdx.y * TILE + tx
    j = ty
    while j < TILE:
        out_row = cuda.blockIdx.x * TILE + j
        if out_row < cols and out_col < rows:  # out is cols x rows
            out[out_row, out_col] = tile[tx, j]
        j += cuda.blockDim.y

# %% right="column_check_hoisted" cell="transpose_padded" passes=["transpose_padded_tests"]
@cuda.jit
def transpose_padded(a, out):
    tile = cuda.shared.array((TILE, TILE_PAD), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    bx = cuda.blockIdx.x
    by = cuda.blockIdx.y
    col = bx * TILE + tx
    if col < a.shape[1]:
        for k in range(TILE // TILE_ROWS):
            r = ty + k * TILE_ROWS
            if by * TILE + r < a.shape[0]:
                tile[r, tx] = a[by * TILE + r, col]
    cuda.syncthreads()  # outside every branch: all threads reach it
    ocol = by * TILE + tx
    if ocol < out.shape[1]:
        for k in range(TILE // TILE_ROWS):
            r = ty + k * TILE_ROWS
            if bx * TILE + r < out.shape[0]:
                out[bx * TILE + r, ocol] = tile[tx, r]

# %% right="ternary_loads_and_while_tiles" cell="matmul_tiled" passes=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row = cuda.blockIdx.y * cuda.blockDim.y + ty
    col = cuda.blockIdx.x * cuda.blockDim.x + tx
    m, inner = a.shape
    n = b.shape[1]
    acc = float32(0.0)
    k0 = 0
    while k0 < inner:  # ceil(K / TILE) tiles
        ka = k0 + tx
        kb = k0 + ty
        sa[ty, tx] = a[row, ka] if row < m and ka < inner else float32(0.0)
        sb[ty, tx] = b[kb, col] if kb < inner and col < n else float32(0.0)
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
        k0 += TILE
    if row < m and col < n:
        c[row, col] = acc

# %% right="negated_division_tile_count" cell="matmul_tiled" passes=["matmul_tiled_tests"]
@cuda.jit
def matmul_tiled(a, b, c):
    sa = cuda.shared.array((TILE, TILE), float32)
    sb = cuda.shared.array((TILE, TILE), float32)
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    col, row = cuda.grid(2)  # blocks of TILE x TILE: the same as blockIdx * TILE + threadIdx
    acc = float32(0.0)
    for t in range(-(-a.shape[1] // TILE)):
        sa[ty, tx] = float32(0.0)
        sb[ty, tx] = float32(0.0)
        if row < a.shape[0] and t * TILE + tx < a.shape[1]:
            sa[ty, tx] = a[row, t * TILE + tx]
        if t * TILE + ty < b.shape[0] and col < b.shape[1]:
            sb[ty, tx] = b[t * TILE + ty, col]
        cuda.syncthreads()
        for k in range(TILE):
            acc += sa[ty, k] * sb[k, tx]
        cuda.syncthreads()
    if row < c.shape[0] and col < c.shape[1]:
        c[row, col] = acc
