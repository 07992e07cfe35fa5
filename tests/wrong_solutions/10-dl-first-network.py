# %% wrong="no_zero_grad_after_step" cell="sgd_step" fails=["sgd_step_tests"]
def sgd_step(w, b, x, y, lr):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    return loss.item()

# %% wrong="rebinds_w_outside_no_grad" cell="sgd_step" fails=["sgd_step_tests"]
def sgd_step(w, b, x, y, lr):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    w = w - lr * w.grad  # a new tensor: the caller's w never changes
    b = b - lr * b.grad
    return loss.item()

# %% wrong="mlp_without_dropout" cell="make_mlp" fails=["make_mlp_tests"]
def make_mlp(hidden=128, dropout=0.2):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

# %% wrong="missing_zero_grad" cell="train_epoch" fails=["train_epoch_tests"]
def train_epoch(model, optimizer, x, y, batch_size, generator):
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(y)

# %% wrong="labels_shuffled_apart_from_inputs" cell="train_epoch" fails=["train_epoch_tests", "bar_tests"]
def train_epoch(model, optimizer, x, y, batch_size, generator):
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[i:i + batch_size])  # labels in the original order
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(y)

# %% wrong="zero_grad_after_backward" cell="train_epoch" fails=["train_epoch_tests"]
def train_epoch(model, optimizer, x, y, batch_size, generator):
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for i in range(0, len(y), batch_size):
        idx = order[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(y)

# %% wrong="eval_left_in_train_mode" cell="evaluate" fails=["evaluate_tests"]
def evaluate(model, x, y):
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy

# %% wrong="validates_on_training_data" cell="fit" fails=["fit_tests"]
def fit(model, optimizer, train, val, epochs, batch_size, generator):
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        history["train_loss"].append(train_epoch(model, optimizer, train.x, train.y, batch_size, generator))
        val_loss, val_acc = evaluate(model, train.x, train.y)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
    return history

# %% wrong="dropout_on_the_inputs" cell="make_mlp" fails=["make_mlp_tests"]
def make_mlp(hidden=128, dropout=0.2):
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

# %% wrong="dropout_on_the_logits" cell="make_mlp" fails=["make_mlp_tests"]
def make_mlp(hidden=128, dropout=0.2):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10), nn.Dropout(dropout))

# %% wrong="evaluate_records_the_graph" cell="evaluate" fails=["evaluate_tests"]
def evaluate(model, x, y):
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy

# %% wrong="fit_reseeds_every_epoch" cell="fit" fails=["fit_tests"]
def fit(model, optimizer, train, val, epochs, batch_size, generator):
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        g = torch.Generator().manual_seed(0)
        history["train_loss"].append(train_epoch(model, optimizer, train.x, train.y, batch_size, g))
        val_loss, val_acc = evaluate(model, val.x, val.y)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
    return history

# %% wrong="train_loss_measured_after_the_epoch" cell="fit" fails=["fit_tests"]
def fit(model, optimizer, train, val, epochs, batch_size, generator):
    history = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        train_epoch(model, optimizer, train.x, train.y, batch_size, generator)
        history["train_loss"].append(evaluate(model, train.x, train.y)[0])
        val_loss, val_acc = evaluate(model, val.x, val.y)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
    return history
