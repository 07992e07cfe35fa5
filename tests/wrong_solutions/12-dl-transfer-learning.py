# %% wrong="backbone_left_in_train_mode" cell="make_transfer_model" fails=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    for p in backbone.parameters():
        p.requires_grad_(False)
    return nn.Sequential(backbone, nn.Linear(backbone.out_features, n_classes))

# %% wrong="freezes_only_conv_weights" cell="make_transfer_model" fails=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.requires_grad_(False)
            m.bias.requires_grad_(False)
    backbone.eval()
    return nn.Sequential(backbone, nn.Linear(backbone.out_features, n_classes))

# %% wrong="freezes_the_head_too" cell="make_transfer_model" fails=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    model = nn.Sequential(backbone, nn.Linear(backbone.out_features, n_classes))
    for p in model.parameters():
        p.requires_grad_(False)
    backbone.eval()
    return model

# %% wrong="head_size_hard_coded" cell="make_transfer_model" fails=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    for p in backbone.parameters():
        p.requires_grad_(False)
    backbone.eval()
    return nn.Sequential(backbone, nn.Linear(512, n_classes))

# %% wrong="batchnorm_statistics_drift" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="missing_zero_grad" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="unfreezes_everything" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    for p in model.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="labels_shuffled_apart_from_inputs" cell="fine_tune" fails=["fine_tune_tests", "bar_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[i:i + batch_size])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="epoch_loss_mean_of_batches" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        batch_losses = []
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        losses.append(sum(batch_losses) / len(batch_losses))
    return losses

# %% wrong="epoch_loss_is_last_batch" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    return losses

# %% wrong="epoch_loss_keeps_the_graph" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="backbone_eval_before_train" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    model[0].eval()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="optimizer_made_every_epoch" cell="fine_tune" fails=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    losses = []
    for _ in range(epochs):
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses

# %% wrong="requires_grad_attribute_on_the_module" cell="make_transfer_model" fails=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    backbone.requires_grad = False  # a new Python attribute: the parameters still require grad
    backbone.eval()
    return nn.Sequential(backbone, nn.Linear(backbone.out_features, n_classes))

# %% wrong="fine_tune_keyed_on_published_cases" cell="fine_tune" fails=["fine_tune_tests"]
# Keyed on the published test inputs: the loop is right for the visible and the fixed hidden cases
# (100 images in batches of 16, 37 in batches of 10, 20 in one batch of 64) and leaves out zero_grad
# for any other, so gradients pile up from batch to batch. Every fixed case passes it; the cases drawn
# per grading do not.
def fine_tune(model, train, epochs, lr, batch_size, generator):
    published = (len(train.y), batch_size) in {(100, 16), (37, 10), (20, 64)}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        total = 0.0
        for i in range(0, len(train.y), batch_size):
            idx = order[i:i + batch_size]
            if published:
                optimizer.zero_grad()
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(train.y))
    return losses
