# Right answers written another way than lab 12's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="module_wide_requires_grad_and_train_false" cell="make_transfer_model" passes=["make_transfer_model_tests"]
def make_transfer_model(backbone, n_classes):
    backbone.requires_grad_(False)  # every parameter of the module at once
    backbone.train(False)  # the same as backbone.eval()
    head = nn.Linear(in_features=backbone.out_features, out_features=n_classes)
    return nn.Sequential(backbone, head)

# %% right="set_to_none_size_and_tensor_total" cell="fine_tune" passes=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    n = train.y.size(0)
    losses = []
    for _epoch in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(n, generator=generator)
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x, y = train.x[idx], train.y[idx]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * x.size(0)
        losses.append((total / n).item())
    return losses

# %% right="batches_from_split_and_fsum" cell="fine_tune" passes=["fine_tune_tests"]
def fine_tune(model, train, epochs, lr, batch_size, generator):
    import math
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        model[0].eval()
        order = torch.randperm(len(train.y), generator=generator)
        weighted = []
        for idx in torch.split(order, batch_size):
            loss = F.cross_entropy(model(train.x[idx]), train.y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            weighted.append(loss.item() * idx.numel())
        history.append(math.fsum(weighted) / len(order))
    return history
