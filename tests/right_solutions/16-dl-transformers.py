# Right answers written another way than lab 16's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="matmul_mT_and_in_place_mask" cell="attention" passes=["attention_tests"]
def attention(q, k, v, causal=False):
    scores = torch.matmul(q, k.mT) / math.sqrt(q.size(-1))
    if causal:
        n = q.size(-2)
        above = torch.triu(torch.ones((n, n), dtype=torch.bool, device=q.device), diagonal=1)
        scores.masked_fill_(above, -math.inf)  # scores is a fresh tensor: filling it in place is safe
    weights = F.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights

# %% right="einsum_and_where" cell="attention" passes=["attention_tests"]
def attention(q, k, v, causal=False):
    scores = torch.einsum("...id,...jd->...ij", q, k) / math.sqrt(q.shape[-1])
    if causal:
        n = scores.shape[-1]
        keep = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        scores = torch.where(keep, scores, torch.full_like(scores, float("-inf")))
    weights = scores.softmax(-1)
    return torch.einsum("...ij,...jd->...id", weights, v), weights

# %% right="chunk_reshape_permute" cell="self_attention" passes=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        b, n, c = x.size()
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = [t.reshape(b, n, self.n_heads, self.head_dim).permute(0, 2, 1, 3) for t in (q, k, v)]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = y.permute(0, 2, 1, 3).contiguous().view(b, n, c)
        return self.proj(y)

# %% right="unflatten_unbind" cell="self_attention" passes=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"{d_model} % {n_heads} != 0")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        # (B, L, 3C) -> (B, L, 3, H, C/H) -> (3, B, H, L, C/H): q, k, v split first, then heads from features
        parts = self.qkv(x).unflatten(-1, (3, self.n_heads, -1)).permute(2, 0, 3, 1, 4)
        q, k, v = parts.unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(y.transpose(1, 2).flatten(2))

# %% right="nullcontext_reshape_and_float" cell="train_step" passes=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    import contextlib
    model.train(True)
    optimizer.zero_grad()  # set_to_none=True is the default
    ctx = (torch.autocast(device_type=x.device.type, dtype=amp_dtype) if amp_dtype is not None
           else contextlib.nullcontext())
    with ctx:
        logits = model(x)
    vocab = logits.size(-1)
    loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
    optimizer.step()
    return float(loss.detach())

# %% right="view_and_explicit_ignore_index" cell="train_step" passes=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    for p in model.parameters():
        p.grad = None
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    b, n, vocab = logits.shape
    loss = F.cross_entropy(logits.float().view(b * n, vocab), y.reshape(b * n), ignore_index=dl.IGNORE)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(model.parameters()), max_norm)
    optimizer.step()
    return loss.item()

# %% right="inference_mode_and_stacked_tokens" cell="generate" passes=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    new = []
    seq = prompt
    with torch.inference_mode():
        for _ in range(n_new):
            token = model(seq)[:, -1].argmax(dim=-1)
            new.append(token)
            seq = torch.cat((seq, token.unsqueeze(1)), dim=1)
    if not new:
        return prompt[:, :0]
    return torch.stack(new, dim=1)

# %% right="preallocated_output" cell="generate" passes=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    b, t = prompt.shape
    seq = torch.empty((b, t + n_new), dtype=prompt.dtype, device=prompt.device)
    seq[:, :t] = prompt
    with torch.no_grad():
        for i in range(t, t + n_new):
            seq[:, i] = model(seq[:, :i])[:, -1].argmax(-1)
    return seq[:, t:]

# %% right="sets_and_exit_stack" cell="activation_bytes" passes=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    import contextlib
    param_ptrs = set(p.untyped_storage().data_ptr() for p in model.parameters())
    sizes = {}

    def pack(t):
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in param_ptrs and ptr not in sizes:
            sizes[ptr] = s.nbytes()
        return t

    def unpack(t):
        return t

    model.train()
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.enable_grad())
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(pack, unpack))
        if amp_dtype is not None:
            stack.enter_context(torch.autocast(x.device.type, dtype=amp_dtype))
        model(x)
    return int(sum(sizes.values()))
