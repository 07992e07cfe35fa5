# Right answers written another way than lab 11's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="layer_list_keywords_inplace_relu" cell="make_cnn" passes=["make_cnn_tests"]
def make_cnn(width=16, dropout=0.25):
    layers = []
    for c_in, c_out in ((1, width), (width, 2 * width)):
        layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers += [nn.MaxPool2d(kernel_size=2), nn.Flatten(), nn.Dropout(p=dropout)]
    side = 8 // 2  # 8 x 8 images, one 2 x 2 pooling
    layers.append(nn.Linear(2 * width * side * side, 10))
    return nn.Sequential(*layers)

# %% right="advanced_indexing_crop" cell="random_shift" passes=["random_shift_tests"]
def random_shift(x, max_shift, generator):
    n, c, h, w = x.shape
    m = max_shift
    padded = F.pad(x, [m] * 4)
    oy = torch.randint(0, 2 * m + 1, (n,), generator=generator).to(x.device)
    ox = torch.randint(0, 2 * m + 1, (n,), generator=generator).to(x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = ox[:, None] + torch.arange(w, device=x.device)  # (n, w)
    img = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[img, chan, rows[:, None, :, None], cols[:, None, None, :]]

# %% right="narrow_and_stack" cell="random_shift" passes=["random_shift_tests"]
def random_shift(x, max_shift, generator):
    height, width = x.shape[-2], x.shape[-1]
    padded = F.pad(x, (max_shift, max_shift, max_shift, max_shift))
    offsets_y = torch.randint(0, 2 * max_shift + 1, (x.size(0),), generator=generator)
    offsets_x = torch.randint(0, 2 * max_shift + 1, (x.size(0),), generator=generator)
    crops = [img.narrow(1, int(dy), height).narrow(2, int(dx), width)
             for img, dy, dx in zip(padded, offsets_y, offsets_x)]
    return torch.stack(crops) if crops else x.clone()

# %% right="keywords_two_steps" cell="augment" passes=["augment_tests"]
def augment(x, generator):
    shifted = random_shift(x, max_shift=1, generator=generator)
    return dl.gaussian_noise(shifted, std=0.05, generator=generator)

# %% right="named_layers" cell="make_cnn" passes=["make_cnn_tests"]
def make_cnn(width=16, dropout=0.25):
    from collections import OrderedDict
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, width, 3, padding=1)), ("bn1", nn.BatchNorm2d(width)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(width, 2 * width, 3, padding=1)), ("bn2", nn.BatchNorm2d(2 * width)), ("relu2", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)), ("flatten", nn.Flatten()), ("dropout", nn.Dropout(dropout)),
        ("fc", nn.Linear(2 * width * 16, 10)),
    ]))
