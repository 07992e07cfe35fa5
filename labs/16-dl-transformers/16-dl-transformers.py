# %% [markdown] key="attention-transformers"
# # 16 Attention and transformers
#
# Most of what a startup builds in 2026 has a transformer inside: language models, code assistants,
# speech, vision. This lab builds one from its parts and trains it on a task that needs attention,
# then looks at the two things that limit transformers on a GPU: the speed of attention and the
# memory of training.
#
# ## You will learn
# - attention as one formula, `softmax(Q K^T / sqrt(d)) V`, written from scratch, with the causal mask
#   that lets a model read only the past;
# - `torch.nn.functional.scaled_dot_product_attention` (SDPA): the same result from fused kernels
#   (FlashAttention on recent GPUs) that never store the `L x L` attention matrix;
# - multi-head self-attention as a module, checked against PyTorch's own `nn.MultiheadAttention`;
# - a small causal transformer trained on data this lab generates (sorting sequences of symbols), with
#   mixed precision and gradient clipping in the training step, and greedy decoding;
# - memory budgeting: measure the activation memory a forward pass keeps for backward, see how it grows
#   with batch size and sequence length, what SDPA and bfloat16 save, and budget a batch size.
#
# **Tier honesty**: on the GPU tier every figure is a GPU figure. On the CPU tier the same code runs
# on the processor at a small size, and timings are CPU figures, labelled so. The activation memory of
# section 8 is counted from the tensors autograd keeps, the same on every tier.
#
# **How this lab works**: read, run the examples, solve the five exercises (delete
# `raise NotImplementedError()` and write your code); the test cell after each one checks it (do not
# edit test cells). The grader also runs hidden tests and trains your transformer with a seed of its own.
# Grading checks behaviour, never speed.
#
# Points: exercise 1: 3, exercise 2: 3, exercise 3: 3, exercise 4: 2, the trained sorter: 2,
# exercise 5: 3 (16 in all).

# %% tags=["parameters"]
tier = None  # "auto", "gpu" or "cpu"; None: $TECHDAY_TIER, else auto
scale = None  # "full" or "ci"; None: $TECHDAY_SCALE, else full

# %% [markdown] key="setup"
# ## Setup
# Run this cell first: it chooses the tier and prints it.

# %% nbgrader="locked" id="setup"
import techday
from techday.i18n import msg

lab = techday.setup(tier=tier, scale=scale, title=msg("16.title", "16 Attention and transformers"))

# %% nbgrader="locked" id="imports"
import math
import time

import torch
from torch import nn
from torch.nn import functional as F

from techday import dl
from techday.dltrain import device_label
from techday.i18n import msg
from techday.labtools import time_cpu, time_cuda
from techday.tier import shown_label

if not lab.on_gpu:
    torch.set_num_threads(1)  # small models: one CPU thread each, no oversubscription of a shared machine
dev = dl.device(lab)
LABEL = device_label(dev)
GPU_BF16 = lab.on_gpu and torch.cuda.is_bf16_supported(including_emulation=False)  # native, not emulated
print(msg("16.versions", "PyTorch {version} | device {device} | figures in this lab: {label}",
          version=torch.__version__, device=dev, label=shown_label(LABEL)))

# %% [markdown] key="attention-formula"
# ## 1. Attention in one formula
#
# A sequence of `L` tokens enters as `L` vectors. For each position, attention asks: *which other
# positions matter to me, and what do they say?* Three linear maps of the input give each position a
# **query** `q` (what I look for), a **key** `k` (what I offer) and a **value** `v` (what I say).
# Position `i` scores every position `j` with the dot product `q_i . k_j`, turns the scores into
# weights with a softmax, and returns the weighted sum of the values:
#
# `attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V`
#
# with `Q`, `K`, `V` of shape `(..., L, d)`: the softmax runs over the keys (the last axis of the
# `L x L` score matrix), so each row of weights sums to 1. Why divide by `sqrt(d)`: a dot product of
# two random `d`-dimensional vectors has a standard deviation of about `sqrt(d)`; unscaled, large `d`
# pushes the softmax towards one-hot weights whose gradients vanish.
#
# A model that predicts the **next** token must not read the future. The **causal mask** sets the
# score of every key after the query (`j > i`) to minus infinity before the softmax, so its weight is
# exactly 0: row `i` of the weights is zero right of the diagonal.
#
# ## Exercise 1: `attention` from scratch (3 points)
#
# Write `attention(q, k, v, causal=False)` for tensors of shape `(..., L, d)` (any leading axes: batch,
# heads). Return **two** tensors: the output `(..., L, d)` and the weights `(..., L, L)`:
# 1. scores `q @ k.transpose(-2, -1)` divided by `math.sqrt(d)`, `d = q.shape[-1]`;
# 2. if `causal`: fill the scores above the diagonal with `float("-inf")` (a boolean mask from
#    `torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1)` and `masked_fill`);
# 3. weights `torch.softmax(scores, dim=-1)`; output `weights @ v`.
#
# Use PyTorch operations, not `scaled_dot_product_attention` (which returns no weights).

# %% nbgrader="solution" id="attention"
def attention(q, k, v, causal=False):
    """softmax(q k^T / sqrt(d)) v over the last two axes; returns (output, weights)."""
    ### BEGIN SOLUTION
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if causal:
        length = q.shape[-2]
        future = torch.ones(length, length, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    ### END SOLUTION

# %% nbgrader="tests" id="attention_tests" points=3
"""attention returns the output and the weights: rows of weights sum to 1, the output equals PyTorch's
scaled_dot_product_attention with and without the causal mask, causal weights are zero right of the
diagonal and a causal output does not change when later tokens do; hidden: scores scaled by sqrt(d) not
sqrt(L) (d != L), leading axes other than (batch, heads), large scores without overflow, float64 kept; and cases drawn afresh at every grading (techday.draw)."""
import torch
from torch.nn import functional as F

from techday.i18n import msg


def check_attention(shape, causal, dtype=torch.float32, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=g, dtype=dtype) * scale for _ in range(3))
    result = attention(q, k, v, causal=causal)
    assert isinstance(result, tuple) and len(result) == 2, msg("16.attention_returns", "return (output, weights)")
    out, weights = result
    length = shape[-2]
    assert tuple(out.shape) == tuple(shape), msg("16.attention_out_shape", "output shape {got}, expected {want}",
                                                 got=tuple(out.shape), want=tuple(shape))
    assert tuple(weights.shape) == (*shape[:-1], length), msg(
        "16.attention_weights_shape", "weights shape {got}, expected {want}", got=tuple(weights.shape),
        want=(*shape[:-1], length))
    assert out.dtype == dtype, msg("16.attention_dtype", "output dtype {got}, expected {want}", got=out.dtype, want=dtype)
    assert torch.isfinite(out).all(), msg("16.attention_finite", "the output has inf or nan (scores of {scale}x)", scale=scale)
    assert torch.allclose(weights.sum(-1), torch.ones((), dtype=dtype), atol=1e-5), msg(
        "16.attention_rows", "each row of weights must sum to 1 (softmax over the keys, dim=-1)")
    if causal:
        upper = weights.masked_select(torch.ones(length, length, dtype=torch.bool).triu(1))
        assert torch.all(upper == 0), msg("16.attention_causal_zero", "causal weights right of the diagonal must be exactly 0")
    want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(out, want, atol=tol, rtol=tol), msg(
        "16.attention_values", "output differs from softmax(q k^T / sqrt(d)) v (causal={causal}) by {diff:.2e}",
        causal=causal, diff=float((out - want).abs().max()))
    return q, k, v, out


check_attention((2, 3, 5, 5), causal=False)
check_attention((2, 3, 5, 5), causal=True)
q_t, k_t, v_t, out_t = check_attention((1, 1, 6, 4), causal=True, seed=1)
k_t2, v_t2 = k_t.clone(), v_t.clone()
k_t2[..., 4:, :] += 3.0
v_t2[..., 4:, :] -= 5.0
out_t2, _ = attention(q_t, k_t2, v_t2, causal=True)
assert torch.allclose(out_t2[..., :4, :], out_t[..., :4, :], atol=1e-6), msg(
    "16.attention_reads_future", "with causal=True, positions 0-3 changed when only positions 4-5 did: mask the future")
### BEGIN HIDDEN TESTS
check_attention((3, 7, 16), causal=False, seed=2)        # d = 16 != L = 7
check_attention((3, 7, 16), causal=True, seed=3)
check_attention((2, 2, 2, 9, 3), causal=True, seed=4)   # more leading axes
check_attention((1, 2, 8, 8), causal=False, scale=40.0, seed=5)  # scores in the thousands
check_attention((1, 2, 8, 8), causal=True, scale=40.0, seed=6)
check_attention((2, 4, 6, 8), causal=True, dtype=torch.float64, seed=7)
q_m = torch.empty(1, 2, 5, 4, device="meta")  # a device other than the CPU: the mask must follow q
try:
    out_m, w_m = attention(q_m, q_m, q_m, causal=True)
except RuntimeError as exc:
    raise AssertionError(msg("16.hidden_mask_device", "the causal mask must be made on q's device "
                             "(device=q.device), or it fails on a GPU: {why}", why=str(exc)[:120])) from None
assert w_m.device == q_m.device and tuple(out_m.shape) == (1, 2, 5, 4)
# Drawn at every grading (techday.draw): the cases above are published with the course.
import techday.draw

rd = techday.draw.rng("16.attention_tests")
for causal_d in (False, True):
    shape_d = (*[int(v) for v in rd.integers(1, 4, int(rd.integers(1, 3)))], int(rd.integers(1, 12)), int(rd.integers(1, 17)))
    check_attention(shape_d, causal=causal_d, scale=float(rd.choice([1.0, 10.0])),
                    dtype=(torch.float32, torch.float64)[int(rd.integers(2))], seed=int(rd.integers(1 << 30)))
### END HIDDEN TESTS
print(msg("16.attention_passed", "attention: all visible tests passed."))

# %% [markdown] key="weights-look"
# The weights are a map of who reads whom. Below, one random query sequence of 6 positions with the
# causal mask: row `i` spreads over positions `0 .. i` only, and the first row is all on position 0.

# %%
g = torch.Generator().manual_seed(0)
q_demo, k_demo, v_demo = (torch.randn(1, 1, 6, 8, generator=g) for _ in range(3))
_, w_demo = attention(q_demo, k_demo, v_demo, causal=True)
for i, row in enumerate(w_demo[0, 0].tolist()):
    print(msg("16.query_row", "  query {i}: {weights}", i=i, weights=" ".join(f"{w:5.2f}" for w in row)))

# %% [markdown] key="sdpa"
# ## 2. `scaled_dot_product_attention`: the same result, fused
#
# Your `attention` writes the `L x L` score matrix to memory, reads it back for the softmax, writes the
# weights, and reads them again for `weights @ v`, per head. For a sequence of 4,096 tokens that is
# 16.8 million numbers per head and per sequence, and autograd keeps the weights for the backward pass.
# `torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=...)` computes the same
# output with a **fused** kernel where one exists for the device and the dtype: FlashAttention on NVIDIA
# GPUs from Ampere on (float16 and bfloat16), a memory-efficient kernel on others, a fused CPU kernel;
# they work through the keys in tiles that stay in on-chip memory and keep only one number per query for
# backward. PyTorch picks the kernel; `torch.nn.attention.sdpa_kernel` can force one, which is how you
# find out whether a fast path is available.
#
# The cell below checks that both agree, then times both (forward only, after a warm-up; CUDA events on
# the GPU tier, the host clock on the CPU tier).

# %%
B_SDPA, H_SDPA, D_SDPA = 4, 8, 64
L_SDPA = lab.size(full=2048, ci=256)
sdpa_dtype = torch.bfloat16 if GPU_BF16 else torch.float32
q_s, k_s, v_s = (torch.randn(B_SDPA, H_SDPA, L_SDPA, D_SDPA, device=dev, dtype=sdpa_dtype) for _ in range(3))
mine_out, _ = attention(q_s, k_s, v_s, causal=True)
fused_out = F.scaled_dot_product_attention(q_s, k_s, v_s, is_causal=True)
tol = 3e-2 if sdpa_dtype == torch.bfloat16 else 1e-4
print(msg("16.sdpa_agree", "batch {b}, {h} heads, L = {l}, d = {d}, {dtype}: largest difference {diff:.1e} (tolerance {tol})",
          b=B_SDPA, h=H_SDPA, l=L_SDPA, d=D_SDPA, dtype=sdpa_dtype, diff=float((mine_out - fused_out).abs().max()), tol=tol))
assert torch.allclose(mine_out.float(), fused_out.float(), atol=tol, rtol=tol)


def time_ms(fn):
    """Median milliseconds of 5 calls of fn() after a warm-up: the course's timers (techday.labtools), CUDA
    events on the GPU tier, the host clock on the CPU tier."""
    return (time_cuda if lab.on_gpu else time_cpu)(fn, repeat=5, label=LABEL).median * 1e3


t_mine = time_ms(lambda: attention(q_s, k_s, v_s, causal=True))
t_fused = time_ms(lambda: F.scaled_dot_product_attention(q_s, k_s, v_s, is_causal=True))
print(msg("16.sdpa_time", "forward, causal: your attention {mine:.2f} ms | scaled_dot_product_attention {fused:.2f} ms [{label}]",
          mine=t_mine, fused=t_fused, label=shown_label(LABEL)))
if lab.on_gpu:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH):
        try:
            with sdpa_kernel(backend):
                t = time_ms(lambda: F.scaled_dot_product_attention(q_s, k_s, v_s, is_causal=True))
            print(msg("16.sdpa_backend", "  {backend}: {ms:.2f} ms", backend=backend.name, ms=t))
        except RuntimeError as exc:  # no kernel of this kind for this GPU, dtype or shape
            print(msg("16.sdpa_backend_none", "  {backend}: not available here ({why})", backend=backend.name,
                      why=str(exc).splitlines()[0][:120]))
del q_s, k_s, v_s, mine_out, fused_out

# %% [markdown] key="multi-head"
# ## 3. Multi-head self-attention
#
# In **self**-attention the queries, keys and values all come from the same sequence `x` of shape
# `(B, L, C)`. One linear layer `qkv = nn.Linear(C, 3 * C)` makes all three at once (split its output
# into three `C`-wide parts, in the order q, k, v). **Multi-head** attention splits `C` into `H` heads of
# `C / H` dimensions each, so that different heads can attend to different things (one to the
# neighbour, one to equal symbols, ...), and runs attention in all heads at once:
#
# `(B, L, C) -> view (B, L, H, C/H) -> transpose (B, H, L, C/H)`
#
# After attention the heads go back, `transpose(1, 2)` then `reshape(B, L, C)` (`reshape`, not `view`: the
# transposed tensor is not contiguous in memory, and `view` fails on it with some kernels), and an output projection
# `proj = nn.Linear(C, C)` mixes them. The order of the axes matters: heads must be split from the
# *feature* axis, never from positions.
#
# ## Exercise 2: `SelfAttention` (3 points)
#
# Complete the module `SelfAttention(d_model, n_heads)`:
# - raise `ValueError` if `d_model` is not a multiple of `n_heads`;
# - attributes `self.n_heads`, `self.qkv = nn.Linear(d_model, 3 * d_model)` and
#   `self.proj = nn.Linear(d_model, d_model)`;
# - `forward(x, causal=False)` for `x` of shape `(B, L, d_model)`: q, k, v from `self.qkv(x)`, split into
#   heads, `F.scaled_dot_product_attention(q, k, v, is_causal=causal)`, heads merged, `self.proj`.
#
# The test copies your weights into PyTorch's `nn.MultiheadAttention` (whose `in_proj_weight` stacks
# q, k and v the same way) and compares the outputs.

# %% nbgrader="solution" id="self_attention"
class SelfAttention(nn.Module):
    """Multi-head self-attention: one qkv projection, scaled_dot_product_attention, an output projection."""

    def __init__(self, d_model, n_heads):
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x, causal=False):
        ### BEGIN SOLUTION
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))
        ### END SOLUTION

# %% nbgrader="tests" id="self_attention_tests" points=3
"""SelfAttention has the qkv and proj layers of the stated shapes and gives the output of PyTorch's
nn.MultiheadAttention with the same weights, with and without the causal mask, and refuses a width
that the heads do not divide; hidden: other widths, head counts and lengths, one head, a batch of one; and cases drawn afresh at every grading (techday.draw)."""
import torch
from torch import nn

from techday.i18n import msg


def check_self_attention(d_model, n_heads, batch, length, seed=0):
    torch.manual_seed(seed)
    mine = SelfAttention(d_model, n_heads)
    assert mine.n_heads == n_heads, msg("16.sa_heads_attr", "set self.n_heads")
    assert isinstance(mine.qkv, nn.Linear) and tuple(mine.qkv.weight.shape) == (3 * d_model, d_model), msg(
        "16.sa_qkv_shape", "self.qkv must be nn.Linear(d_model, 3 * d_model)")
    assert isinstance(mine.proj, nn.Linear) and tuple(mine.proj.weight.shape) == (d_model, d_model), msg(
        "16.sa_proj_shape", "self.proj must be nn.Linear(d_model, d_model)")
    ref = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mine.qkv.weight)
        ref.in_proj_bias.copy_(mine.qkv.bias)
        ref.out_proj.weight.copy_(mine.proj.weight)
        ref.out_proj.bias.copy_(mine.proj.bias)
    x = torch.randn(batch, length, d_model)
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    for causal in (False, True):
        got = mine(x, causal=causal)
        want, _ = ref(x, x, x, attn_mask=future if causal else None, need_weights=False)
        assert tuple(got.shape) == (batch, length, d_model), msg("16.sa_shape", "output shape {got}, expected {want}",
                                                                 got=tuple(got.shape), want=(batch, length, d_model))
        assert torch.allclose(got, want, atol=1e-5), msg(
            "16.sa_values", "d_model {d}, {h} heads, causal={causal}: output differs from nn.MultiheadAttention by {diff:.2e}: "
            "split q, k, v in that order, heads from the feature axis (view, then transpose(1, 2)), merge them back, then proj",
            d=d_model, h=n_heads, causal=causal, diff=float((got - want).abs().max()))


check_self_attention(d_model=16, n_heads=4, batch=2, length=5)
try:
    SelfAttention(10, 4)
except ValueError:
    pass
else:
    raise AssertionError(msg("16.sa_not_divisible", "SelfAttention(10, 4) must raise ValueError: 10 is not a multiple of 4"))
### BEGIN HIDDEN TESTS
check_self_attention(d_model=24, n_heads=3, batch=3, length=7, seed=1)
check_self_attention(d_model=8, n_heads=1, batch=1, length=4, seed=2)
check_self_attention(d_model=32, n_heads=8, batch=2, length=9, seed=3)
# Drawn at every grading (techday.draw): the sizes above are published with the course.
import techday.draw

rd = techday.draw.rng("16.self_attention_tests")
heads_d = int(rd.choice([1, 2, 3, 4, 8]))
check_self_attention(d_model=heads_d * int(rd.integers(1, 9)), n_heads=heads_d, batch=int(rd.integers(1, 4)),
                     length=int(rd.integers(1, 12)), seed=int(rd.integers(1 << 30)))
### END HIDDEN TESTS
print(msg("16.sa_passed", "SelfAttention: all visible tests passed."))

# %% [markdown] key="tiny-transformer"
# ## 4. A small transformer and its task
#
# The task: read a row of `L` symbols (digits 0-9), a separator, and then write the same symbols
# **sorted**, one token at a time. `dl.sort_sequences` generates as many rows as we like (no downloads).
# A model that writes position `i` of the answer must find, among all the prompt's positions, the
# symbol that belongs there: a convolution with a fixed window cannot do that, attention can.
#
# The model is a decoder-only transformer, the shape of the GPT family, at toy size: token embedding
# plus a learned position embedding, `N_LAYERS` **blocks**, a final layer norm and a linear head that
# scores every symbol for the next position. Each block is
# `x = x + attn(norm1(x), causal=True)` then `x = x + mlp(norm2(x))` (pre-norm with residual
# connections, as in GPT-2 and most models since), built on your `SelfAttention`.
#
# `dl.sort_sequences` returns inputs `x` (every token but the last) and next-token targets `y`. Targets
# inside the prompt are `dl.IGNORE` (-100): the next prompt symbol is random, there is nothing to learn,
# and `F.cross_entropy` skips targets equal to -100 by default.

# %% nbgrader="locked" id="model"
LENGTH, SYMBOLS = 8, 10          # prompt length, number of symbols
VOCAB = SYMBOLS + 1              # the symbols and the separator
D_MODEL = lab.size(full=128, ci=32)
N_HEADS, N_LAYERS = 4, 2


class Block(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d_model), SelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.norm1(x), causal=True)
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    def __init__(self, vocab=VOCAB, max_len=2 * LENGTH, d_model=D_MODEL, n_heads=N_HEADS, n_layers=N_LAYERS):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        self.blocks = nn.Sequential(*(Block(d_model, n_heads) for _ in range(n_layers)))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, x):  # (B, L) token ids -> (B, L, vocab) scores for the next token
        h = self.tokens(x) + self.positions[:x.shape[1]]
        return self.head(self.norm(self.blocks(h)))


example = dl.sort_sequences(1, LENGTH, SYMBOLS, seed=1)
print(msg("16.example", "input  x: {x}\ntarget y: {y}", x=example.x[0].tolist(), y=example.y[0].tolist()))
torch.manual_seed(0)
print(msg("16.params", "TinyTransformer: d_model {d}, {h} heads, {n} blocks, {p:,} parameters",
          d=D_MODEL, h=N_HEADS, n=N_LAYERS, p=sum(p.numel() for p in TinyTransformer().parameters())))

# %% [markdown] key="training-step"
# ## 5. The training step: mixed precision and gradient clipping
#
# A transformer's training step is lab 10's step with two additions that every large-model recipe has:
#
# - **mixed precision** (lab 13): the forward pass under `torch.autocast(device_type, dtype=bfloat16)`
#   runs matrix multiplications and attention in bfloat16 (Tensor Cores, half the bytes), while the
#   weights, the optimizer and reductions such as the loss stay in float32. bfloat16 has float32's
#   range, so no `GradScaler` is needed (float16 would need one);
# - **gradient clipping**: `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)` rescales all
#   gradients together when their joint norm exceeds `max_norm`; one unlucky batch can otherwise throw a
#   transformer's training off course.
#
# The loss is cross-entropy over every position: flatten `(B, L, V)` scores to `(B * L, V)` and the
# targets to `(B * L)`. Positions whose target is `dl.IGNORE` do not count.
#
# ## Exercise 3: `train_step` (3 points)
#
# Write `train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0)`:
# 1. `model.train()` and `optimizer.zero_grad(set_to_none=True)`;
# 2. under `torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None)`:
#    `logits = model(x)`;
# 3. outside autocast: `loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())`;
# 4. `loss.backward()`, clip the gradient norm to `max_norm`, `optimizer.step()`;
# 5. return `loss.item()`.

# %% nbgrader="solution" id="train_step"
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    """One optimisation step of a next-token model; returns the loss as a float."""
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()
    ### END SOLUTION

# %% nbgrader="tests" id="train_step_tests" points=3
"""train_step gives the weights of a reference step (zero_grad, next-token cross-entropy that skips
IGNORE targets, clipping to max_norm, step) and returns the loss; under amp_dtype=bfloat16 the model's
matrix multiplications run in bfloat16 and without it in float32; hidden: stale gradients, a max_norm that
clips hard, a model left in eval mode, a batch whose targets are all IGNORE but one; and cases drawn afresh at every grading (techday.draw)."""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from techday import dl
from techday.i18n import msg


def reference_step(model, optimizer, x, y, max_norm):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def check_step(seed, max_norm=1.0, stale=False, eval_mode=False, one_target=False, n=16):
    """One train_step against reference_step from the same weights; eval_mode: the model arrives in eval mode."""
    torch.manual_seed(seed)
    model = TinyTransformer(d_model=16, n_heads=2, n_layers=1)
    nn.init.normal_(model.head.weight, std=2.0)  # large first gradients, so that clipping matters
    ref = copy.deepcopy(model)
    opt, ref_opt = torch.optim.SGD(model.parameters(), lr=0.5), torch.optim.SGD(ref.parameters(), lr=0.5)
    data = dl.sort_sequences(n, LENGTH, SYMBOLS, seed=seed)
    y = data.y.clone()
    if one_target:
        y[:] = dl.IGNORE
        y[0, -1] = data.y[0, -1]
    if stale:
        for p in model.parameters():
            p.grad = torch.full_like(p, 7.0)
    if eval_mode:
        model.eval()
    got = train_step(model, opt, data.x, y, max_norm=max_norm)
    assert model.training, msg("16.step_train_mode", "train_step must put the model in train mode (model.train())")
    want = reference_step(ref, ref_opt, data.x, y, max_norm)
    assert isinstance(got, float), msg("16.step_returns_float", "return loss.item(), a float; got {kind}", kind=type(got).__name__)
    assert abs(got - want) < 1e-5, msg("16.step_loss", "loss {got:.5f}, expected {want:.5f}: cross-entropy over the flattened "
                                       "positions, IGNORE targets left out", got=got, want=want)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6), msg(
            "16.step_weights", "after one step {name} differs from the reference (max_norm={max_norm}): zero the gradients, "
            "clip their norm after backward and before step", name=name, max_norm=max_norm)


def linear_dtypes(amp_dtype):
    """The dtypes the model's Linear layers compute in during train_step."""
    seen = []
    torch.manual_seed(0)
    model = TinyTransformer(d_model=16, n_heads=2, n_layers=1)
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype)) for m in model.modules()
             if isinstance(m, nn.Linear)]
    data = dl.sort_sequences(4, LENGTH, SYMBOLS, seed=0)
    loss = train_step(model, torch.optim.SGD(model.parameters(), lr=0.01), data.x, data.y, amp_dtype=amp_dtype)
    for h in hooks:
        h.remove()
    assert isinstance(loss, float) and loss == loss, msg("16.step_amp_loss", "the loss under autocast must be a number, got {loss!r}", loss=loss)
    return set(seen)


check_step(seed=0)
got_dtypes = linear_dtypes(torch.bfloat16)
assert got_dtypes == {torch.bfloat16}, msg("16.step_autocast", "with amp_dtype=torch.bfloat16 the Linear layers computed in {dtypes}: "
                                           "run the forward pass under torch.autocast", dtypes=sorted(map(str, got_dtypes)))
got_dtypes = linear_dtypes(None)
assert got_dtypes == {torch.float32}, msg("16.step_no_autocast", "with amp_dtype=None the Linear layers computed in {dtypes}: "
                                          "autocast only when amp_dtype is given", dtypes=sorted(map(str, got_dtypes)))
### BEGIN HIDDEN TESTS
check_step(seed=1, stale=True)
check_step(seed=2, max_norm=0.05)
check_step(seed=3, eval_mode=True)
check_step(seed=4, one_target=True, max_norm=10.0)
# Drawn at every grading (techday.draw): the seeds above are published with the course.
import techday.draw

rd = techday.draw.rng("16.train_step_tests")
check_step(seed=int(rd.integers(1 << 30)), max_norm=float(rd.choice([0.05, 1.0, 10.0])), stale=bool(rd.integers(2)),
           eval_mode=bool(rd.integers(2)))
### END HIDDEN TESTS
print(msg("16.step_passed", "train_step: all visible tests passed."))

# %% [markdown] key="decoding"
# ## 6. Greedy decoding
#
# A next-token model writes one token at a time: give it the prompt and the separator, take the
# highest-scoring symbol at the **last** position, append it, and run the model again on the longer
# sequence. (Real servers keep each layer's keys and values from the previous steps, the **KV cache**,
# and compute only the new position; this lab recomputes everything, which gives the same tokens.)
#
# ## Exercise 4: `generate` (2 points)
#
# Write `generate(model, prompt, n_new)` for `prompt` of shape `(B, T)`: put the model in eval mode and,
# under `torch.no_grad()`, repeat `n_new` times: scores of the last position `model(seq)[:, -1]`, their
# `argmax(-1)`, appended to `seq`. Return only the `n_new` new tokens, shape `(B, n_new)`.

# %% nbgrader="solution" id="generate"
def generate(model, prompt, n_new):
    """Greedy decoding: n_new tokens after prompt, one model call per token."""
    ### BEGIN SOLUTION
    model.eval()
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            nxt = model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return seq[:, prompt.shape[1]:]
    ### END SOLUTION

# %% nbgrader="tests" id="generate_tests" points=2
"""generate returns (B, n_new) tokens equal to step-by-step greedy decoding, calls the model once per new
token on the growing sequence, in eval mode and without building an autograd graph; hidden: another model
and prompt length, n_new of 1, a batch of one; and cases drawn afresh at every grading (techday.draw)."""
import torch
from torch import nn

from techday.i18n import msg


class Spy(nn.Module):
    """A tiny causal model that records each call: input length, training mode, whether autograd was on."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.inner = TinyTransformer(d_model=16, n_heads=2, n_layers=1)
        self.calls = []

    def forward(self, x):
        self.calls.append((x.shape[1], self.training, torch.is_grad_enabled()))
        return self.inner(x)


def reference_generate(model, prompt, n_new):
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq[:, prompt.shape[1]:]


def check_generate(seed, batch, length, n_new):
    spy = Spy(seed)
    spy.train()
    prompt = torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))
    got = generate(spy, prompt, n_new)
    calls = spy.calls
    spy.inner.eval()
    want = reference_generate(spy.inner, prompt, n_new)
    assert tuple(got.shape) == (batch, n_new), msg("16.gen_shape", "return the {n} new tokens only, shape {want}; got {got}",
                                                   n=n_new, want=(batch, n_new), got=tuple(got.shape))
    assert [c[0] for c in calls] == list(range(length, length + n_new)), msg(
        "16.gen_calls", "call the model once per new token on the growing sequence; input lengths were {lengths}",
        lengths=[c[0] for c in calls])
    assert not any(c[1] for c in calls), msg("16.gen_eval", "put the model in eval mode before decoding")
    assert not any(c[2] for c in calls), msg("16.gen_no_grad", "decode under torch.no_grad()")
    assert torch.equal(got, want), msg("16.gen_tokens", "tokens {got}, greedy decoding gives {want}",
                                       got=got.tolist(), want=want.tolist())


check_generate(seed=0, batch=3, length=5, n_new=4)
### BEGIN HIDDEN TESTS
check_generate(seed=1, batch=2, length=9, n_new=1)
check_generate(seed=2, batch=1, length=3, n_new=8)
# Drawn at every grading (techday.draw): the prompts above are published with the course.
import techday.draw

rd = techday.draw.rng("16.generate_tests")
check_generate(seed=int(rd.integers(1 << 30)), batch=int(rd.integers(1, 4)), length=int(rd.integers(1, 9)),
               n_new=int(rd.integers(1, 9)))
### END HIDDEN TESTS
print(msg("16.gen_passed", "generate: all visible tests passed."))

# %% [markdown] key="train-sorter"
# ## 7. Train the sorter
#
# Now train `TinyTransformer` with your `train_step` on freshly generated batches (every batch is new:
# the model cannot memorise), with AdamW, the usual optimizer for transformers, and a learning rate that
# falls linearly to zero over the run (large steps early, fine ones at the end). On the GPU tier the
# forward pass runs in bfloat16 where the GPU supports it; on the CPU tier in float32 (the exercise's
# test ran your step under bfloat16 autocast on the CPU as well). Then your `generate` writes the
# answer for 500 held-out prompts, and we count the rows it sorts **exactly**. The test checks this run
# (seed 0); the grader trains once more with a seed of its own.

# %% nbgrader="locked" id="train"
STEPS = lab.size(full=1500, ci=600)
BATCH = lab.size(full=256, ci=64)
BAR = 0.90  # fraction of held-out rows sorted exactly (the grading bar)
AMP = torch.bfloat16 if GPU_BF16 else None


def train_sorter(seed, steps=STEPS):
    """Train a TinyTransformer with the trainee's train_step; returns the model and the exact-sort rate."""
    dl.seed_everything(seed)
    model = TinyTransformer().to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 - i / steps)  # linear decay to 0
    losses = []
    for step in range(steps):
        batch = dl.sort_sequences(BATCH, LENGTH, SYMBOLS, seed=seed * 100_003 + step).to(dev)
        losses.append(train_step(model, optimizer, batch.x, batch.y, amp_dtype=AMP))
        schedule.step()
    held_out = dl.sort_sequences(500, LENGTH, SYMBOLS, seed=seed + 7_777_777).to(dev)
    prompt = held_out.x[:, :LENGTH + 1]  # the symbols and the separator
    answer = generate(model, prompt, LENGTH)
    # A row counts when the model sorts it: your generate's answer and the course's own greedy decoding
    # of the same model both (they agree for a generate that decodes the model).
    want = held_out.y[:, LENGTH:]
    exact = ((answer == want) & (greedy_decode(model, prompt, LENGTH) == want)).all(dim=1).float().mean().item()
    return model, exact, losses


def greedy_decode(model, prompt, n_new):
    """The course's greedy decoding: n_new tokens after prompt, one model call per token."""
    model.eval()
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq[:, prompt.shape[1]:]


t0 = time.perf_counter()
sorter, exact0, losses0 = train_sorter(seed=0)
seconds = time.perf_counter() - t0
print(msg("16.trained", "{steps} steps of {batch} rows ({amp}): loss {first:.3f} -> {last:.3f}; held-out rows sorted exactly: "
          "{exact:.1%} ({seconds:.1f} s [{label}])", steps=STEPS, batch=BATCH, amp=AMP or torch.float32,
          first=losses0[0], last=sum(losses0[-20:]) / 20, exact=exact0, seconds=seconds, label=shown_label(LABEL)))
demo = dl.sort_sequences(3, LENGTH, SYMBOLS, seed=42).to(dev)
for row, got in zip(demo.x[:, :LENGTH].tolist(), generate(sorter, demo.x[:, :LENGTH + 1], LENGTH).tolist()):
    print(f"  {row} -> {got}")

# %% nbgrader="tests" id="sorter_tests" points=2
"""The transformer trained with the trainee's train_step sorts at least BAR of 500 held-out rows exactly,
decoded with the trainee's generate (seed 0); hidden: trained again with the grader's own seed."""
from techday.i18n import msg

assert exact0 >= BAR, msg("16.below_bar", "{exact:.1%} of held-out rows sorted exactly, below the bar {bar:.0%}",
                          exact=exact0, bar=BAR)
### BEGIN HIDDEN TESTS
_, exact_h, _ = train_sorter(seed=20261205)
assert exact_h >= BAR, msg("16.hidden_below_bar", "grader's seed: {exact:.1%} sorted exactly, below {bar:.0%}",
                           exact=exact_h, bar=BAR)
### END HIDDEN TESTS
print(msg("16.sorter_passed", "the trained transformer sorts {exact:.1%} of held-out rows exactly (bar {bar:.0%}).",
          exact=exact0, bar=BAR))

# %% [markdown] key="attention-map"
# What did it learn? Below, the first block's attention for one held-out row, recomputed with your
# `attention` from the block's own q, k and v: for each answer position, the prompt position that gets
# the most weight (summed over the heads), and the symbol the model writes there. Compare the two
# columns: does a position look at the symbol it is about to write, or at its neighbour in sorted
# order? The second block refines what the first found, so expect a pattern, not a perfect lookup.

# %%
with torch.no_grad():
    row = dl.sort_sequences(1, LENGTH, SYMBOLS, seed=3).to(dev)
    block = sorter.blocks[0]
    h = block.norm1(sorter.tokens(row.x) + sorter.positions[:row.x.shape[1]])
    q, k, v = block.attn.qkv(h).split(D_MODEL, dim=-1)
    heads = lambda t: t.view(1, -1, N_HEADS, D_MODEL // N_HEADS).transpose(1, 2)  # noqa: E731
    _, w_map = attention(heads(q), heads(k), heads(v), causal=True)
tokens = row.x[0].tolist()
writes = generate(sorter, row.x[:, :LENGTH + 1], LENGTH)[0].tolist()  # what the model writes after each position
print(msg("16.map_tokens", "tokens: {tokens}", tokens=tokens))
for i in range(LENGTH, 2 * LENGTH):
    top = w_map[0, :, i, :LENGTH].sum(0).argmax().item()  # the prompt position with the most weight, all heads
    print(msg("16.map_row", "  position {i} writes {w}: most weight on prompt position {j} (symbol {s})",
              i=i, w=writes[i - LENGTH], j=top, s=tokens[top]))

# %% [markdown] key="memory"
# ## 8. Memory: what training keeps
#
# Training memory on a GPU has four parts:
#
# | part | size |
# | --- | --- |
# | weights | parameters x 4 bytes (float32) |
# | gradients | the same |
# | optimizer state | AdamW keeps two float32 numbers per parameter: 8 bytes per parameter |
# | **activations** | every tensor the forward pass keeps for the backward pass |
#
# The first three depend on the model only. The activations grow with the batch size, the sequence
# length (and, for attention that stores its weights, with the length **squared**), and shrink with
# bfloat16. They are usually what decides the largest batch that fits.
#
# PyTorch lets you watch what autograd keeps: inside
# `with torch.autograd.graph.saved_tensors_hooks(pack, unpack):` every tensor saved for backward passes
# through `pack(tensor)`, whose return value is stored (return the tensor itself to change nothing), and
# `unpack` gets it back during backward. Several saved tensors can share one block of memory (a view of
# the same storage, a tensor saved by two operations): count each storage once, by
# `t.untyped_storage().data_ptr()`, with its size `t.untyped_storage().nbytes()`. The parameters
# are saved too (a linear layer needs its weight for backward), but they are in memory anyway: leave
# them out.
#
# ## Exercise 5: `activation_bytes` (3 points)
#
# Write `activation_bytes(model, x, amp_dtype=None)`: run `model(x)` in train mode, with autograd on,
# under autocast as in `train_step` (enabled only if `amp_dtype` is given) and inside a
# `saved_tensors_hooks` context whose `pack` records the storages of the saved tensors; return the total
# bytes of the distinct storages saved, parameters' storages excluded, as an `int`. Do not call
# backward.

# %% nbgrader="solution" id="activation_bytes"
def activation_bytes(model, x, amp_dtype=None):
    """Bytes of the distinct non-parameter storages that model(x) saves for backward."""
    ### BEGIN SOLUTION
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def remember(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return int(sum(saved.values()))
    ### END SOLUTION

# %% nbgrader="tests" id="activation_bytes_tests" points=3
"""activation_bytes counts a small network exactly (the input and the ReLU output that Linear layers and
the ReLU keep: 144 bytes for 3 rows of 4 features), grows linearly with the batch, leaves the parameters
out, counts a storage saved twice once and returns an int; hidden: under no_grad and in eval mode it still
measures training, fewer bytes under bfloat16 autocast, the same count as the hooks' own reference on the
transformer."""
import torch
from torch import nn

from techday.i18n import msg


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


got = activation_bytes(small_net(), torch.randn(3, 4))
assert isinstance(got, int), msg("16.act_int", "return an int, got {kind}", kind=type(got).__name__)
assert got == 3 * 4 * 4 + 3 * 8 * 4, msg(
    "16.act_small", "3 rows of 4 features: the input (48 bytes) and the ReLU output (96 bytes, saved by the ReLU "
    "and by the second Linear: count its storage once) make 144 bytes, got {got}; leave the parameters out", got=got)
assert activation_bytes(small_net(), torch.randn(30, 4)) == 10 * got, msg(
    "16.act_linear", "ten times the batch should keep ten times the bytes")


class SavesTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x):
        h = x * self.w  # saves x and w
        return h * h    # saves h twice


assert activation_bytes(SavesTwice(), torch.randn(5, 4)) == 2 * 5 * 4 * 4, msg(
    "16.act_dedup", "x and h: 160 bytes; a storage saved twice counts once, and the parameter not at all")


class SavesAView(nn.Module):
    def forward(self, x):
        big = x * 2.0          # saves nothing that needs a gradient: x has none, 2.0 is a number
        return big[:, 2:].sin()  # sin saves its input: a view of big, whose whole storage stays alive


got_view = activation_bytes(SavesAView(), torch.randn(5, 4, requires_grad=True))
assert got_view == 5 * 4 * 4, msg(
    "16.act_view", "a saved view keeps its whole storage alive: {want} bytes (the storage of x * 2.0), got {got}; "
    "count t.untyped_storage().nbytes(), not the view's own bytes", want=5 * 4 * 4, got=got_view)
### BEGIN HIDDEN TESTS
net = small_net(1).eval()
with torch.no_grad():
    assert activation_bytes(net, torch.randn(3, 4)) == 144, msg("16.hidden_act_grad", "measure with autograd on, in train mode")


def reference_bytes(model, x, amp_dtype=None):
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return sum(seen.values())


torch.manual_seed(0)
tt = TinyTransformer(d_model=16, n_heads=2, n_layers=2)
xs = dl.sort_sequences(6, LENGTH, SYMBOLS, seed=1).x
fp32, bf16 = activation_bytes(tt, xs), activation_bytes(tt, xs, amp_dtype=torch.bfloat16)
assert fp32 == reference_bytes(tt, xs), msg("16.hidden_act_ref", "{got} bytes on the transformer, expected {want}",
                                             got=fp32, want=reference_bytes(tt, xs))
assert bf16 == reference_bytes(tt, xs, torch.bfloat16) and bf16 < fp32, msg(
    "16.hidden_act_amp", "under bfloat16 autocast: {bf16} bytes, float32 {fp32}", bf16=bf16, fp32=fp32)
### END HIDDEN TESTS
print(msg("16.act_passed", "activation_bytes: all visible tests passed ({got} bytes for the small network).", got=got))

# %% [markdown] key="memory-measured"
# Now measure the transformer's activations. The table below changes one thing at a time: the batch, the
# sequence length, the attention (your `attention`, which keeps the `L x L` weights, against
# `scaled_dot_product_attention`), and the precision. Read the ratios, not the bytes: doubling the
# length doubles the bytes with SDPA and about quadruples the attention's share with yours.

# %%
class MathAttention(SelfAttention):
    """SelfAttention with the exercise-1 attention instead of SDPA: keeps the L x L weights for backward."""

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out, _ = attention(q, k, v, causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))


def with_math_attention(model):
    for block in model.blocks:
        fused = block.attn
        block.attn = MathAttention(D_MODEL, N_HEADS).to(dev)
        block.attn.load_state_dict(fused.state_dict())
    return model


torch.manual_seed(0)
m_sdpa = TinyTransformer(max_len=1024).to(dev)
m_math = with_math_attention(TinyTransformer(max_len=1024).to(dev))
MEM_AMP = torch.bfloat16 if GPU_BF16 or not lab.on_gpu else None  # autocast runs bfloat16 on every CPU
rows = []
for batch, length in ((8, 64), (16, 64), (8, 128), (8, 256)):
    xb = torch.randint(0, VOCAB, (batch, length), device=dev)
    rows.append((batch, length, activation_bytes(m_sdpa, xb), activation_bytes(m_math, xb),
                 activation_bytes(m_sdpa, xb, amp_dtype=MEM_AMP) if MEM_AMP else None))
print(msg("16.mem_header", "batch  length   SDPA float32   your attention   SDPA bfloat16   (MiB kept for backward)"))
for batch, length, a, b, c in rows:
    print(f"{batch:5d}  {length:6d}   {a / 2**20:12.2f}   {b / 2**20:14.2f}   " + (f"{c / 2**20:13.2f}" if c else "            -"))

# %% [markdown] key="budget"
# ## 9. Budgeting a batch size
#
# The activations grow linearly with the batch: measure two batch sizes, fit `bytes = a + b * batch`,
# and the largest batch under a budget follows. Add the fixed parts (weights, gradients, AdamW's two
# states: 16 bytes per float32 parameter) and keep headroom for the allocator's fragmentation and the
# CUDA context (10-20 % is a common rule). On the GPU tier the cell then checks the prediction against
# the real peak, `torch.cuda.max_memory_allocated()` around one training step; on the CPU tier it shows
# the arithmetic for a 16 GiB budget, an example and not a measurement of any GPU.

# %%
SEQ = 2 * LENGTH
b1, b2 = 64, 128
a1 = activation_bytes(sorter, torch.randint(0, VOCAB, (b1, SEQ), device=dev), amp_dtype=AMP)
a2 = activation_bytes(sorter, torch.randint(0, VOCAB, (b2, SEQ), device=dev), amp_dtype=AMP)
per_row = (a2 - a1) / (b2 - b1)
fixed = 16 * sum(p.numel() for p in sorter.parameters())
if lab.on_gpu:
    free, total = torch.cuda.mem_get_info()
    budget = int(0.8 * free)
else:
    budget = 16 * 2**30
largest = int((budget - fixed - (a1 - per_row * b1)) // per_row)
print(msg("16.budget", "activations {per_row:,.0f} bytes per row; weights, gradients and AdamW {fixed:,} bytes; "
          "budget {budget:.1f} GiB -> largest batch about {largest:,} rows of {seq} tokens",
          per_row=per_row, fixed=fixed, budget=budget / 2**30, largest=largest, seq=SEQ))
if lab.on_gpu:
    trial = min(largest // 4, 65536)
    model_b = TinyTransformer().to(dev)
    opt_b = torch.optim.AdamW(model_b.parameters(), lr=1e-3)
    batch_b = dl.sort_sequences(trial, LENGTH, SYMBOLS, seed=5).to(dev)
    train_step(model_b, opt_b, batch_b.x, batch_b.y, amp_dtype=AMP)  # AdamW creates its states on the first step
    opt_b.zero_grad(set_to_none=True)  # the resident model: weights and AdamW states, no gradients
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    train_step(model_b, opt_b, batch_b.x, batch_b.y, amp_dtype=AMP)
    peak = torch.cuda.max_memory_allocated() - base
    predicted = a1 + per_row * (trial - b1)
    print(msg("16.budget_gpu", "measured on {gpu}: batch {trial:,}: peak above the resident model {peak:.1f} MiB, predicted "
              "activations {predicted:.1f} MiB (the peak also holds the gradients, the logits and the loss)",
              gpu=torch.cuda.get_device_name(), trial=trial, peak=peak / 2**20, predicted=predicted / 2**20))
    del model_b, opt_b, batch_b

# %% [markdown] key="summary"
# ## Summary
#
# - Attention is `softmax(Q K^T / sqrt(d)) V`; the causal mask sets future scores to minus infinity, and
#   a causal model's past outputs never change with later tokens.
# - `F.scaled_dot_product_attention` computes the same with fused kernels that do not store the
#   `L x L` weights: faster, and activation memory linear in the length instead of quadratic.
# - Multi-head attention splits the feature axis into heads (`view`, then `transpose(1, 2)`), and merges
#   them back before the output projection.
# - A transformer's training step: autocast in bfloat16 (no GradScaler), loss in float32 over the
#   flattened positions with ignored targets, gradient clipping before the optimizer step.
# - Greedy decoding calls the model once per new token, in eval mode under `no_grad`.
# - Training memory = weights + gradients + optimizer state + activations; measure the activations at
#   two batch sizes, fit a line, keep headroom.
#
# ## Going further
#
# - Make the task harder: `LENGTH = 16`, or `SYMBOLS = 50`. Which needs more layers, which more steps?
# - Add a KV cache to `generate`: keep each block's k and v from earlier steps and feed only the new
#   token. Check that the tokens stay the same and time both on the GPU.
# - Activation checkpointing: wrap each block in `torch.utils.checkpoint.checkpoint(block, x,
#   use_reentrant=False)` and measure `activation_bytes` again: what does it save, and what does it cost?
# - On the GPU tier, force each SDPA backend with `sdpa_kernel` at lengths 512 to 16,384 and plot time
#   against length for your `attention` and for FlashAttention.
# - Next: lab 17, the track's assessment.
