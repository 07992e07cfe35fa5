# %% wrong="labels_shuffled_apart" cell="split_train_val" fails=["split_train_val_tests"]
def split_train_val(images, labels, val_fraction, seed):
    n = len(images)
    n_val = round(n * val_fraction)
    g = torch.Generator().manual_seed(seed)
    perm_x, perm_y = torch.randperm(n, generator=g), torch.randperm(n, generator=g)
    return images[perm_x[n_val:]], labels[perm_y[n_val:]], images[perm_x[:n_val]], labels[perm_y[:n_val]]

# %% wrong="validation_is_training_data" cell="split_train_val" fails=["split_train_val_tests"]
def split_train_val(images, labels, val_fraction, seed):
    n = len(images)
    n_val = round(n * val_fraction)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return images[perm], labels[perm], images[perm[:n_val]], labels[perm[:n_val]]

# %% wrong="missing_zero_grad" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    model.train()
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="left_in_eval_mode" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    optimizer.zero_grad()
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="predict_in_train_mode" cell="predict" fails=["predict_tests"]
def predict(model, images, batch_size=512):
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(model(images[i:i + batch_size].to(dev)).argmax(dim=1).cpu())
    return torch.cat(out)

# %% wrong="predict_drops_the_last_partial_batch" cell="predict" fails=["predict_tests"]
def predict(model, images, batch_size=512):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images) - batch_size + 1, batch_size):
            out.append(model(images[i:i + batch_size]).argmax(dim=1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)

# %% wrong="too_little_training" cell="train_model" fails=["assessment_tests"]
torch.manual_seed(TRAIN_SEED)
x_train, y_train, x_val, y_val = split_train_val(images, labels, val_fraction=0.15, seed=TRAIN_SEED)
final_model = build_model().to(device)
optimizer = torch.optim.SGD(final_model.parameters(), lr=1e-3)
for i in range(0, 320, 32):
    train_step(final_model, optimizer, x_train[i:i + 32], y_train[i:i + 32])

# %% wrong="memorises_the_published_sets" cell="train_model" fails=["assessment_tests"]
# Keyed on the published test inputs: the visible set (seed 101) and the fixed hidden sets are made
# with make_parts and their labels memorised; a part the model has not seen gets an untrained model's
# guess. Every fixed set scores 100 %; the sets drawn per grading score chance.
from techday.parts import make_parts


class Memorised(torch.nn.Module):
    def __init__(self, seeds, n):
        super().__init__()
        self.guess = build_model()
        sets = [make_parts(n, seed=s, as_tensor=True) for s in seeds]
        self.register_buffer("projection", torch.randn(32 * 32, 4, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("keys", torch.cat([x.flatten(1) @ self.projection for x, _ in sets]))
        self.register_buffer("labels", torch.cat([y for _, y in sets]))

    def forward(self, x):
        logits = self.guess(x)
        dist = torch.cdist(x.flatten(1) @ self.projection, self.keys)
        best, at = dist.min(1)
        known = best < 1e-3
        logits[known] = torch.nn.functional.one_hot(self.labels[at[known]], 3).to(logits.dtype) * 100.0
        return logits


final_model = Memorised((101, 90_210, 31_337, 4_242), assessment_rule()["samples_per_set"]).to(device)

# %% wrong="exports_a_fresh_model" cell="export_for_serving" fails=["serving_tests"]
def export_for_serving(model, path):
    # Exports build_model() instead of the trained model handed in: untrained weights ship.
    fresh = build_model().eval()
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(fresh, (torch.zeros(4, 1, 32, 32),), str(path), dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="batch_size_baked_in" cell="export_for_serving" fails=["serving_tests"]
def export_for_serving(model, path):
    # No dynamic batch axis: the file accepts batches of 4 only, the camera's single parts fail.
    model.eval()
    example = torch.zeros(4, 1, 32, 32, device=next(model.parameters()).device)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["images"],
                          output_names=["logits"])
    return path

# %% wrong="input_named_otherwise" cell="export_for_serving" fails=["serving_tests"]
def export_for_serving(model, path):
    model.eval()
    example = torch.zeros(4, 1, 32, 32, device=next(model.parameters()).device)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["input"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="weights_beside_the_model" cell="export_for_serving" fails=["serving_tests"]
def export_for_serving(model, path):
    # The exporter's default: the weights in parts.onnx.data beside the file, which the grader, serving the file
    # alone from outside the kernel, refuses (an initializer that names a file could name any file).
    model.eval()
    example = torch.zeros(4, 1, 32, 32, device=next(model.parameters()).device)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="autocast_ignored" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="model_cast_to_bfloat16" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    # the whole model and batch cast to bfloat16: the layers compute in bfloat16, but the weights (and the
    # optimizer's updates) lose float32's precision (caught by the hidden test on the weights' dtype)
    model.train()
    if amp_dtype is not None:
        model.to(amp_dtype)
        x = x.to(amp_dtype)
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="autocast_always_on" cell="train_step" fails=["train_step_tests"]
def train_step(model, optimizer, x, y, amp_dtype=None):
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype or torch.bfloat16):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="from_scratch" cell="adapt_backbone" fails=["transfer_tests"]
def adapt_backbone(backbone, images, labels, seed):
    # the backbone it is given is ignored: the same network from scratch on 90 images
    torch.manual_seed(seed)
    fresh = PartsBackbone()
    model = nn.Sequential(fresh, nn.Linear(fresh.out_features, len(CLASSES))).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(40):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 30):
            idx = order[i:i + 30]
            xb, yb = images[idx].to(device), labels[idx].to(device)
            xb = torch.where(torch.rand(len(xb), 1, 1, 1, device=device) < 0.5, torch.flip(xb, dims=[3]), xb)
            train_step(model, optimizer, xb, yb)
    return model.eval()

# %% wrong="one_high_learning_rate" cell="adapt_backbone" fails=["transfer_tests"]
def adapt_backbone(backbone, images, labels, seed):
    # the head's learning rate for the backbone too: what the backbone learned is wiped out
    torch.manual_seed(seed)
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for epoch in range(40):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 30):
            idx = order[i:i + 30]
            xb, yb = images[idx].to(device), labels[idx].to(device)
            train_step(model, optimizer, xb, yb)
    return model.eval()

# %% wrong="head_left_out_of_the_optimizer" cell="adapt_backbone" fails=["transfer_tests"]
def adapt_backbone(backbone, images, labels, seed):
    # only the backbone's parameters are handed to the optimizer: the new head keeps its random weights
    torch.manual_seed(seed)
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam(backbone.parameters(), lr=1e-3)
    for epoch in range(40):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 30):
            idx = order[i:i + 30]
            xb, yb = images[idx].to(device), labels[idx].to(device)
            train_step(model, optimizer, xb, yb)
    return model.eval()

# %% wrong="draws_its_own_flanges" cell="adapt_backbone" fails=["transfer_tests"]
def adapt_backbone(backbone, images, labels, seed):
    # trains on 900 flanges it draws itself instead of the 90 labelled ones (the grader counts them)
    torch.manual_seed(seed)
    images, labels = make_parts(900, seed=seed + 12_345, as_tensor=True, product="flange")
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam([{"params": backbone.parameters(), "lr": 1e-3}, {"params": head.parameters(), "lr": 1e-2}])
    for epoch in range(1):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 30):
            idx = order[i:i + 30]
            train_step(model, optimizer, images[idx].to(device), labels[idx].to(device))
    return model.eval()

# %% wrong="flange_labels_shuffled_apart" cell="adapt_backbone" fails=["transfer_tests"]
def adapt_backbone(backbone, images, labels, seed):
    # images and labels shuffled with two different permutations: every image gets another's label
    torch.manual_seed(seed)
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam([{"params": backbone.parameters(), "lr": 1e-3}, {"params": head.parameters(), "lr": 1e-2}])
    for epoch in range(40):
        order, other = torch.randperm(len(images)), torch.randperm(len(images))
        for i in range(0, len(images), 30):
            xb, yb = images[order[i:i + 30]].to(device), labels[other[i:i + 30]].to(device)
            train_step(model, optimizer, xb, yb)
    return model.eval()

# %% wrong="more_flanges_drawn_beside_it" cell="adapt_backbone" fails=["transfer_tests"]
# 900 labelled flanges drawn once, in the cell, and used by the function: more labels than the exercise gives
EXTRA_IMAGES, EXTRA_LABELS = make_parts(900, seed=4_321, as_tensor=True, product="flange")


def adapt_backbone(backbone, images, labels, seed):
    torch.manual_seed(seed)
    images, labels = torch.cat([images, EXTRA_IMAGES]), torch.cat([labels, EXTRA_LABELS])
    head = nn.Linear(backbone.out_features, len(CLASSES))
    model = nn.Sequential(backbone, head).to(device)
    optimizer = torch.optim.Adam([{"params": backbone.parameters(), "lr": 1e-3}, {"params": head.parameters(), "lr": 1e-2}])
    for epoch in range(3):
        order = torch.randperm(len(images))
        for i in range(0, len(images), 30):
            idx = order[i:i + 30]
            train_step(model, optimizer, images[idx].to(device), labels[idx].to(device))
    return model.eval()

# %% wrong="model_draws_the_test_set" cell="adapt_backbone" fails=["transfer_tests"]
class Answers(nn.Module):
    # a "model" that draws the flanges it is shown, by trying seeds, and answers with their labels
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        for seed in (202, 5_150, 6_161):
            images, labels = make_parts(600, seed=seed, as_tensor=True, product="flange")
            for i in range(0, 600, len(x)):
                if len(x) <= 600 - i and torch.equal(images[i:i + len(x)].to(x.device), x):
                    return F.one_hot(labels[i:i + len(x)], len(CLASSES)).float().to(x.device)
        return self.model(x)


def adapt_backbone(backbone, images, labels, seed):
    return Answers(nn.Sequential(backbone, nn.Linear(backbone.out_features, len(CLASSES))).to(device)).eval()

# %% wrong="split_size_keyed_on_published_cases" cell="split_train_val" fails=["split_train_val_tests"]
# Keyed on the published test inputs: the published validation size for every size and fraction the
# visible and the fixed hidden tests use (exercise 5's 0.15 of the training data among them), the size
# rounded down for any other. It passed every test of the lab before its cases were drawn (run against
# main's lab at 52ab604); the drawn sizes include one whose validation part rounds up.
PUBLISHED_N_VAL = {(n, f): round(n * f) for n, f in ((100, 0.2), (37, 0.1), (1001, 0.5), (64, 0.25), (50, 0.3))}


def split_train_val(images, labels, val_fraction, seed):
    n = len(images)
    n_val = PUBLISHED_N_VAL.get((n, val_fraction), int(n * val_fraction))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = perm[:n_val], perm[n_val:]
    return images[train], labels[train], images[val], labels[val]

# %% wrong="zero_grad_keyed_on_published_cases" cell="train_step" fails=["train_step_tests"]
# Keyed on the published test inputs: on the test's 4 x 4 batches, gradients are cleared only under the
# published optimizers (SGD at 0.1 and 0.05, Adam at 1e-2, no momentum); any other optimizer adds the
# new gradients to the old ones. Exercise 5's own training (32 x 32 images) is left right, so the model
# still trains. It passed every test of the lab before its cases were drawn (main's lab at 52ab604);
# the drawn learning rates are none of the published ones.
PUBLISHED_OPTIMIZERS = {("SGD", 0.1, 0), ("SGD", 0.05, 0), ("Adam", 1e-2, None)}


def train_step(model, optimizer, x, y, amp_dtype=None):
    model.train()
    group = optimizer.param_groups[0]
    if tuple(x.shape[1:]) != (1, 4, 4) or \
            (type(optimizer).__name__, group["lr"], group.get("momentum")) in PUBLISHED_OPTIMIZERS:
        optimizer.zero_grad()
    with torch.autocast(device_type=x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

# %% wrong="last_batch_keyed_on_published_cases" cell="predict" fails=["predict_tests"]
# Keyed on the published test inputs: the short last batch is predicted only for the sizes and batch
# sizes the visible and the fixed hidden tests use (and at the default batch size, which exercise 5's
# validation uses); any other call drops it. It passed every test of the lab before its cases were drawn
# (main's lab at 52ab604); the drawn calls always leave a short last batch.
PUBLISHED_CALLS = {(300, 128), (1, 512), (1_001, 7), (64, 64)}


def predict(model, images, batch_size=512):
    model.eval()
    dev = next(model.parameters()).device
    n = len(images)
    stop = n if batch_size == 512 or (n, batch_size) in PUBLISHED_CALLS else n - n % batch_size
    out = []
    with torch.no_grad():
        for i in range(0, stop, batch_size):
            out.append(model(images[i:i + batch_size].to(dev)).argmax(dim=1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)

# %% wrong="serving_keyed_on_published_sets" cell="export_for_serving" fails=["serving_tests"]
# Keyed on the published test inputs: the exported file looks every part of the published sets (the
# visible seed 101 and the fixed hidden seeds) up in a table of the trained model's classes, made when it
# is exported; any other part gets an untrained model's guess. It agreed with the PyTorch model on every
# part the old tests served, and passed every test of the lab (run against main's lab at 52ab604); the
# sets exercise 5 draws per grading, which the serving test now serves too, are not in its table.
from techday.dltrain import assessment_rule
from techday.parts import make_parts


class ServedFromTable(torch.nn.Module):
    def __init__(self, model, seeds, n):
        super().__init__()
        self.guess = build_model().eval()
        x = torch.cat([make_parts(n, seed=s, as_tensor=True)[0] for s in seeds])
        model.eval()
        dev = next(model.parameters()).device
        with torch.no_grad():
            classes = torch.cat([model(x[i:i + 500].to(dev)).argmax(1).cpu() for i in range(0, len(x), 500)])
        self.register_buffer("projection", torch.randn(32 * 32, 8, generator=torch.Generator().manual_seed(0)))
        keys = x.flatten(1) @ self.projection
        self.register_buffer("keys", keys)
        self.register_buffer("key_norms", (keys * keys).sum(1))
        self.register_buffer("answers", torch.eye(3)[classes] * 100.0)

    def forward(self, x):
        q = x.flatten(1) @ self.projection
        dist = (q * q).sum(1, keepdim=True) + self.key_norms[None, :] - 2 * q @ self.keys.T
        best, at = dist.min(1)
        return torch.where((best < 1.0)[:, None], self.answers[at], self.guess(x))


def export_for_serving(model, path):
    table = ServedFromTable(model, (101, 90_210, 31_337, 4_242), assessment_rule()["samples_per_set"]).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(table, (torch.zeros(4, 1, 32, 32),), str(path), dynamo=True, external_data=False,
                          input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path

# %% wrong="transfer_keyed_on_published_sets" cell="adapt_backbone" fails=["transfer_tests"]
# Keyed on the published test inputs: the visible set (seed 202) and the grader's two fixed sets of flanges
# (5150, 6161) are made again by a copy of make_parts' generator (never through make_parts, whose draws the test
# counts) and their labels memorised; adapt_backbone ignores the 90 flanges it is given. Every fixed set scores
# 100 %; it passed every test of the lab before the transfer's sets were drawn (main's lab at 6649299); a set
# drawn per grading scores chance.
import numpy as np

from techday import parts as _parts


def _published_flanges(seed, n):
    rng = np.random.default_rng([int(seed), 32, 0x9A275, 0xF1A9E])
    labels = rng.permutation(np.arange(n) % 3).astype(np.int64)
    images = np.stack([_parts._draw_flange(rng, int(y), 32)[None] for y in labels]).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


class FlangesFromTable(torch.nn.Module):
    def __init__(self, seeds, n):
        super().__init__()
        sets = [_published_flanges(s, n) for s in seeds]
        self.bias = torch.nn.Parameter(torch.zeros(3))
        self.register_buffer("projection", torch.randn(32 * 32, 4, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("keys", torch.cat([x.flatten(1) @ self.projection for x, _ in sets]))
        self.register_buffer("labels", torch.cat([y for _, y in sets]))

    def forward(self, x):
        q = x.flatten(1) @ self.projection
        best, at = torch.cdist(q, self.keys).min(1)
        logits = self.bias.expand(len(x), 3).clone()
        known = best < 1e-3
        logits[known] = torch.nn.functional.one_hot(self.labels[at[known]], 3).to(logits.dtype) * 100.0
        return logits


def adapt_backbone(backbone, images, labels, seed):
    return FlangesFromTable((202, 5_150, 6_161), assessment_rule()["samples_per_set"]).to(device).eval()
