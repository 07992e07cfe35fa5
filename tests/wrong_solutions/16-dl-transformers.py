# Wrong but plausible solutions of lab 16, each with the tests it must fail (tests/grading/test_wrong_solutions.py).

# %% wrong="scaled_by_length" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(length)
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights

# %% wrong="softmax_over_queries" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    return weights @ v, weights

# %% wrong="mask_after_softmax" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    length = q.shape[-2]
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if causal:
        weights = weights.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), 0.0)
    return weights @ v, weights

# %% wrong="masked_scores_set_to_zero" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), 0.0)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights

# %% wrong="mask_hides_the_diagonal" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(0), -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights

# %% wrong="softmax_without_max_subtraction" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    # exp(scores) / sum: overflows to inf / inf = nan once scores pass about 88 (caught by the hidden large-score tests)
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    e = scores.exp()
    if causal:
        e = e.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), 0.0)
    weights = e / e.sum(-1, keepdim=True)
    return weights @ v, weights

# %% wrong="heads_split_from_positions" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.reshape(batch, self.n_heads, length, channels // self.n_heads) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))

# %% wrong="heads_merged_without_transpose" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.reshape(batch, length, channels))

# %% wrong="no_output_projection" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return out.transpose(1, 2).reshape(batch, length, channels)

# %% wrong="keys_and_queries_swapped" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        k, q, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))

# %% wrong="causal_flag_ignored" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))

# %% wrong="width_not_checked" cell="self_attention" fails=["self_attention_tests"]
class SelfAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x, causal=False):
        batch, length, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, channels // self.n_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, channels))

# %% wrong="no_clipping" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="clips_after_the_step" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return loss.item()

# %% wrong="stale_gradients_kept" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    # no zero_grad: gradients left by an earlier backward are added in (caught by the hidden stale-gradient test)
    model.train()
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()

# %% wrong="autocast_always_on" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype or torch.bfloat16):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()

# %% wrong="autocast_never_on" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()

# %% wrong="left_in_eval_mode" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    # no model.train(): a model handed over in eval mode trains with dropout off and batch-norm frozen
    # (caught by the hidden test that hands one over)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()

# %% wrong="returns_the_loss_tensor" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss

# %% wrong="one_pass_decoding" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    # every answer token from one call on the prompt: no token sees the ones written before it
    model.eval()
    with torch.no_grad():
        scores = model(prompt)
    return scores[:, -n_new:].argmax(-1)

# %% wrong="decodes_in_train_mode" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq[:, prompt.shape[1]:]

# %% wrong="builds_autograd_graphs" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    seq = prompt
    for _ in range(n_new):
        seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq[:, prompt.shape[1]:]

# %% wrong="returns_prompt_too" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq

# %% wrong="samples_instead_of_argmax" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            probs = torch.softmax(model(seq)[:, -1], dim=-1)
            seq = torch.cat([seq, torch.multinomial(probs, 1)], dim=1)
    return seq[:, prompt.shape[1]:]

# %% wrong="counts_every_save" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    total = 0

    def remember(t):
        nonlocal total
        if t.untyped_storage().data_ptr() not in params:
            total += t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return int(total)

# %% wrong="counts_the_parameters" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    saved = {}

    def remember(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return int(sum(saved.values()))

# %% wrong="measured_under_no_grad" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def remember(t):
        if t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.no_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        model(x)
    return int(sum(saved.values()))

# %% wrong="grad_mode_inherited" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    # no torch.enable_grad(): called under no_grad it sees nothing saved (caught by a hidden test)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def remember(t):
        if t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return int(sum(saved.values()))

# %% wrong="precision_ignored" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    # no autocast: bfloat16 is never measured (caught by the hidden mixed-precision test)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def remember(t):
        if t.untyped_storage().data_ptr() not in params:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        model(x)
    return int(sum(saved.values()))

# %% wrong="mask_made_on_the_cpu" cell="attention" fails=["attention_tests"]
def attention(q, k, v, causal=False):
    # the mask is made on the CPU whatever q's device: right on the CPU tier, a device error on a GPU
    # (caught by the hidden test on another device)
    length = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights

# %% wrong="counts_view_bytes_not_storages" cell="activation_bytes" fails=["activation_bytes_tests"]
def activation_bytes(model, x, amp_dtype=None):
    params = {p.data_ptr() for p in model.parameters()}
    saved = {}

    def remember(t):
        if t.data_ptr() not in params:
            saved[t.data_ptr()] = t.numel() * t.element_size()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(remember, lambda t: t):
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x)
    return int(sum(saved.values()))

# %% wrong="max_norm_ignored" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss.item()

# %% wrong="clips_each_gradient_alone" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    for p in model.parameters():
        if p.grad is not None:
            torch.nn.utils.clip_grad_norm_([p], max_norm)
    optimizer.step()
    return loss.item()

# %% wrong="decodes_from_the_last_token_only" cell="generate" fails=["generate_tests"]
def generate(model, prompt, n_new):
    model.eval()
    seq = prompt
    with torch.no_grad():
        for _ in range(n_new):
            nxt = model(seq[:, -1:])[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return seq[:, prompt.shape[1]:]

# %% wrong="clip_value_not_norm" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None, max_norm=1.0):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
    loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()
