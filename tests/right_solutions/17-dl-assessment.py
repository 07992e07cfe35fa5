# Right answers written another way than lab 17's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="validation_from_the_end_of_the_permutation" cell="split_train_val" passes=["split_train_val_tests"]
def split_train_val(images, labels, val_fraction, seed):
    n = labels.shape[0]
    n_val = int(round(n * val_fraction))
    g = torch.Generator()
    g.manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    train_idx, val_idx = perm[:n - n_val], perm[n - n_val:]
    return (images.index_select(0, train_idx), labels.index_select(0, train_idx),
            images.index_select(0, val_idx), labels.index_select(0, val_idx))

# %% right="shuffled_copies_then_slices" cell="split_train_val" passes=["split_train_val_tests"]
def split_train_val(images, labels, val_fraction, seed):
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    x, y = images[perm], labels[perm]  # one permutation for both: every image keeps its label
    k = round(len(images) * val_fraction)
    return x[k:], y[k:], x[:k], y[:k]

# %% right="two_blocks_and_a_wide_linear" cell="build_model" passes=["build_model_tests"]
def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),                                    # 32 -> 16
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),                                    # 16 -> 8
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 3),
    )

# %% right="module_subclass" cell="build_model" passes=["build_model_tests"]
def build_model():
    class PartsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                nn.Conv2d(12, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(inplace=True), nn.MaxPool2d(8))
            self.classifier = nn.Linear(24, 3)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return PartsNet()

# %% right="plain_zero_grad_and_float" cell="train_step" passes=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    model.train(True)
    optimizer.zero_grad()
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return float(loss)

# %% right="inference_mode_and_split" cell="predict" passes=["predict_tests"]
def predict(model, images, batch_size=512):
    model.eval()
    device_of_model = next(iter(model.parameters())).device
    with torch.inference_mode():
        parts = [model(chunk.to(device_of_model)).argmax(-1).cpu() for chunk in torch.split(images, batch_size)]
    if not parts:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat(parts).to(torch.int64)

# %% right="preallocated_result" cell="predict" passes=["predict_tests"]
def predict(model, images, batch_size=512):
    model.eval()
    dev = next(model.parameters()).device
    result = torch.empty(images.size(0), dtype=torch.int64)
    with torch.no_grad():
        start = 0
        while start < images.size(0):
            stop = min(start + batch_size, images.size(0))
            result[start:stop] = model(images[start:stop].to(dev)).argmax(dim=1).cpu()
            start = stop
    return result
