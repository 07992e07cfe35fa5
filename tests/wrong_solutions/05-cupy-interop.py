# %% wrong="softmax_no_max_shift" cell="softmax" fails=["softmax_tests"]
def softmax(x, axis=-1):
    xp = get_array_module(x)
    e = xp.exp(x)
    return e / e.sum(axis=axis, keepdims=True)

# %% wrong="softmax_calls_numpy" cell="softmax" fails=["softmax_tests"]
def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)

# %% wrong="softmax_sums_everything" cell="softmax" fails=["softmax_tests"]
def softmax(x, axis=-1):
    xp = get_array_module(x)
    e = xp.exp(x - x.max())
    return e / e.sum()

# %% wrong="softmax_ignores_axis" cell="softmax" fails=["softmax_tests"]
def softmax(x, axis=-1):
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)

# %% wrong="filter3_centred_index" cell="filter3_operation" fails=["filter3_tests"]
FILTER3_OPERATION = "y = w0 * x[i - 1] + w1 * x[i] + w2 * x[i + 1]"

# %% wrong="filter3_convolution_order" cell="filter3_operation" fails=["filter3_tests"]
FILTER3_OPERATION = "y = w2 * x[i] + w1 * x[i + 1] + w0 * x[i + 2]"

# %% wrong="filter3_reads_past_the_end" cell="filter3_operation" fails=["filter3_tests"]
FILTER3_OPERATION = "y = w0 * x[i + 1] + w1 * x[i + 2] + w2 * x[i + 3]"

# %% wrong="filter3_not_c" cell="filter3_operation" fails=["filter3_tests"]
FILTER3_OPERATION = "y = w0 * x[i] + w1 * x[i + 1] + w2 * x[i + 2] +"

# %% wrong="apply_torch_copies_in" cell="apply_torch" fails=["apply_torch_tests"]
def apply_torch(fn, x):
    xp = get_array_module(x)
    return xp.from_dlpack(fn(torch.tensor(x)))

# %% wrong="apply_torch_returns_tensor" cell="apply_torch" fails=["apply_torch_tests"]
def apply_torch(fn, x):
    return fn(torch.from_dlpack(x))

# %% wrong="apply_torch_copies_out" cell="apply_torch" fails=["apply_torch_tests"]
def apply_torch(fn, x):
    xp = get_array_module(x)
    return xp.array(fn(torch.from_dlpack(x)).numpy(), copy=True)

# %% wrong="apply_torch_from_numpy" cell="apply_torch" fails=["apply_torch_tests"]
def apply_torch(fn, x):
    xp = get_array_module(x)
    return xp.from_dlpack(fn(torch.from_numpy(x)))

# %% wrong="apply_torch_keyed_on_published_cases" cell="apply_torch" fails=["apply_torch_tests"]
# Keyed on the published test inputs: DLPack both ways (no copies) for the shapes and types the visible
# and the fixed hidden tests use and for an array that only speaks DLPack; a contiguous copy in for any
# other (the values stay right; fn no longer sees x's memory, and x's strides are lost). It passed every
# test of the lab before its cases were drawn (run against main's lab at 52ab604); the drawn matrices'
# shapes are none of these, or their type differs.
PUBLISHED_ARRAYS = {((1_001,), "float32"), ((10, 6), "int64"), ((6, 4), "int64"), ((7,), "float64")}


def apply_torch(fn, x):
    xp = get_array_module(x)
    if getattr(x, "shape", None) is None or (tuple(x.shape), np.dtype(x.dtype).name) in PUBLISHED_ARRAYS:
        return xp.from_dlpack(fn(torch.from_dlpack(x)))
    return xp.from_dlpack(fn(torch.from_dlpack(xp.ascontiguousarray(x).copy())))
