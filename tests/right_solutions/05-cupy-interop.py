# Right answers written another way than lab 05's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="xp_functions_and_in_place_divide" cell="softmax" passes=["softmax_tests"]
def softmax(x, axis=-1):
    xp = get_array_module(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    e = xp.exp(shifted)
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e

# %% right="reordered_terms" cell="filter3_operation" passes=["filter3_tests"]
FILTER3_OPERATION = "y = x[i + 2] * w2 + x[i + 1] * w1 + x[i] * w0;"

# %% right="utils_dlpack_in_two_steps" cell="apply_torch" passes=["apply_torch_tests"]
def apply_torch(fn, x):
    from torch.utils.dlpack import from_dlpack
    xp = get_array_module(x)
    tensor = from_dlpack(x)  # shares x's memory
    result = fn(tensor)
    return xp.from_dlpack(result)

# %% right="array_methods_and_copy_then_subtract" cell="softmax" passes=["softmax_tests"]
def softmax(x, axis=-1):
    xp = get_array_module(x)
    z = x.copy()  # never change the caller's array
    z -= z.max(axis=axis, keepdims=True)
    z = xp.exp(z)
    return z / z.sum(axis=axis, keepdims=True)

# %% right="accumulate_into_output" cell="filter3_operation" passes=["filter3_tests"]
FILTER3_OPERATION = "y = w0 * x[i]; y += w1 * x[i + 1]; y += w2 * x[i + 2];"

# %% right="torch_from_dlpack_one_line_module_from_kind" cell="apply_torch" passes=["apply_torch_tests"]
def apply_torch(fn, x):
    return get_array_module(x).from_dlpack(fn(torch.from_dlpack(x)))

# %% right="local_accumulator" cell="filter3_operation" passes=["filter3_tests"]
FILTER3_OPERATION = "T acc = w0 * x[i]; acc += w1 * x[i + 1]; acc += w2 * x[i + 2]; y = acc;"
