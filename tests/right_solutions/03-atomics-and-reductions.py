# Right answers written another way than lab 03's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="interleaved_tree" cell="block_sum_kernel" passes=["block_sum_kernel_tests"]
@cuda.jit
def block_sum_kernel(x, partial):
    # The first tree of the classic reduction talk: strides 1, 2, 4, ... (interleaved addressing; slower
    # on a GPU, for its divergence and bank conflicts, but a tree all the same).
    cache = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    i = cuda.grid(1)
    while i < x.shape[0]:
        acc += x[i]
        i += cuda.gridsize(1)
    cache[tid] = acc
    cuda.syncthreads()
    s = 1
    while s < cuda.blockDim.x:
        if tid % (2 * s) == 0:
            cache[tid] += cache[tid + s]
        cuda.syncthreads()
        s *= 2
    if tid == 0:
        partial[cuda.blockIdx.x] = cache[0]
