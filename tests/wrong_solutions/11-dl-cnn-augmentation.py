# %% wrong="flatten_size_fixed_for_width_16" cell="make_cnn" fails=["make_cnn_tests"]
def make_cnn(width=16, dropout=0.25):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(512, 10),
    )

# %% wrong="no_padding" cell="make_cnn" fails=["make_cnn_tests"]
def make_cnn(width=16, dropout=0.25):
    return nn.Sequential(
        nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(2 * width * 4 * 4, 10),
    )

# %% wrong="no_batchnorm" cell="make_cnn" fails=["make_cnn_tests"]
def make_cnn(width=16, dropout=0.25):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(2 * width * 4 * 4, 10),
    )

# %% wrong="roll_wraps_around" cell="random_shift" fails=["random_shift_tests"]
def random_shift(x, max_shift, generator):
    m = max_shift
    oy = torch.randint(0, 2 * m + 1, (x.shape[0],), generator=generator) - m
    ox = torch.randint(0, 2 * m + 1, (x.shape[0],), generator=generator) - m
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = torch.roll(x[i], shifts=(int(oy[i]), int(ox[i])), dims=(-2, -1))
    return out

# %% wrong="one_shift_for_the_whole_batch" cell="random_shift" fails=["random_shift_tests"]
def random_shift(x, max_shift, generator):
    m = max_shift
    hgt, wid = x.shape[-2:]
    padded = F.pad(x, (m, m, m, m))
    oy, ox = (int(v) for v in torch.randint(0, 2 * m + 1, (2,), generator=generator))
    return padded[:, :, oy:oy + hgt, ox:ox + wid].clone()

# %% wrong="offsets_off_by_one" cell="random_shift" fails=["random_shift_tests"]
def random_shift(x, max_shift, generator):
    m = max_shift
    n, _, hgt, wid = x.shape
    padded = F.pad(x, (m, m, m, m))
    oy = torch.randint(0, 2 * m, (n,), generator=generator)
    ox = torch.randint(0, 2 * m, (n,), generator=generator)
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, oy[i]:oy[i] + hgt, ox[i]:ox[i] + wid]
    return out

# %% wrong="mirrors_digits" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    return dl.gaussian_noise(dl.random_hflip(random_shift(x, 1, generator), 0.5, generator), 0.05, generator)

# %% wrong="noise_too_strong" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    return dl.gaussian_noise(random_shift(x, 1, generator), 0.5, generator)

# %% wrong="shuffles_images_apart_from_labels" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    out = dl.gaussian_noise(random_shift(x, 1, generator), 0.05, generator)
    return out[torch.randperm(len(out), generator=generator)]

# %% wrong="noise_added_in_place" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    x += 0.05 * torch.randn(x.shape, generator=generator)
    return random_shift(x, 1, generator)

# %% wrong="no_augmentation" cell="augment" fails=["augment_tests", "bar_tests"]
def augment(x, generator):
    return x.clone()

# %% wrong="noise_before_the_shift" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    return random_shift(dl.gaussian_noise(x, 0.05, generator), 1, generator)

# %% wrong="shift_by_two_pixels" cell="augment" fails=["augment_tests"]
def augment(x, generator):
    return dl.gaussian_noise(random_shift(x, 2, generator), 0.05, generator)
