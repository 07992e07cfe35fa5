# Right answers written another way than lab 10's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="grads_set_to_none" cell="sgd_step" passes=["sgd_step_tests"]
def sgd_step(w, b, x, y, lr):
    # Clearing the gradients the way optimizer.zero_grad() does by default (set_to_none=True).
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w.sub_(lr * w.grad)
        b.sub_(lr * b.grad)
    w.grad = None
    b.grad = None
    return float(loss.detach())

# %% right="evaluate_in_inference_mode" cell="evaluate" passes=["evaluate_tests"]
def evaluate(model, x, y):
    model.eval()
    with torch.inference_mode():
        logits = model(x)
        loss = F.cross_entropy(logits, y, reduction="sum").item() / len(y)
        accuracy = (logits.argmax(1) == y).sum().item() / len(y)
    return loss, accuracy
