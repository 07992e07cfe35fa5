# Right answers written another way than lab 01's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="while_loop_over_out" cell="saxpy_kernel" passes=["saxpy_kernel_tests"]
@cuda.jit
def saxpy_kernel(a, x, y, out):
    i = cuda.threadIdx.x + cuda.blockIdx.x * cuda.blockDim.x
    while i < out.size:
        out[i] = a * x[i] + y[i]
        i += cuda.blockDim.x * cuda.gridDim.x
