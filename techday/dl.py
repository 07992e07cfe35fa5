"""Deep-learning helpers the labs of the deep-learning track share (PyTorch, plain torch only).

Each helper is taught in a lab first and used from here afterwards:

- lab 10 (first network): :func:`device` (the tier's device), :func:`seed_everything`, the digits
  data (:func:`load_digits_split`: scikit-learn's bundled 8x8 digits as tensors, with a fixed
  stratified train / validation / test split; the test split's labels are the grader's, from
  :func:`held_out_digits` only), :func:`evaluate` (eval mode, no gradients). The
  trainee writes their own training loop in lab 10; :func:`fit` is that loop, kept here for later labs.
- lab 11 (CNNs and augmentation): the transforms, written in plain torch (torchvision would load with
  CPU PyTorch too, but its random transforms use the global random state and one draw per batch,
  while these give each image its own draw from a ``torch.Generator``): :func:`hflip`, :func:`random_hflip`, :func:`shift`,
  :func:`random_shift` (a crop of a zero-padded image), :func:`gaussian_noise`, :func:`normalize`,
  :class:`Compose`; :func:`shifted_noisy` (a fixed, seeded perturbed copy of a split).
- lab 12 (transfer learning): :func:`select_classes`, :func:`few_shot`, :func:`make_strokes` (the
  source domain: generated pen strokes, no digit among them), :func:`make_backbone`,
  :func:`pretrain_backbone` and :func:`load_backbone` (the course's own pre-trained backbone: a
  small checkpoint in ``techday/data/``, written by ``course/scripts/pretrain_backbone.py``).
- lab 17 (the track's assessment): :class:`PartsBackbone`, :func:`pretrain_parts_backbone` and
  :func:`load_parts_backbone`: the course's backbone pre-trained on many labelled plates
  (``techday.parts``), which the assessment adapts to a new product, flanges, from a few labels
  (``techday/data/parts_backbone.pt``, written by ``course/scripts/pretrain_parts_backbone.py``).
- lab 16 (attention and transformers): :func:`sort_sequences` (the generated sequence task: a
  prompt of symbols, a separator, the same symbols sorted) and :data:`IGNORE` (the target of a
  position the loss leaves out).

Every random helper takes a ``torch.Generator`` so that a seed reproduces a run exactly. Nothing is
downloaded: the digits ship inside scikit-learn. Importing :mod:`techday` does not import this module
(nor PyTorch); labs import it after ``techday.setup``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import atomicfile
from .i18n import msg

__all__ = [
    "Compose", "DigitsData", "Split", "device", "evaluate", "few_shot", "fit", "gaussian_noise", "hflip",
    "backbone_record", "held_out_digits", "PartsBackbone", "load_backbone", "load_digits_split", "load_parts_backbone", "make_backbone", "make_strokes", "flips", "normalize", "pretrain_backbone", "pretrain_parts_backbone", "random_hflip", "random_shift", "save_backbone",
    "seed_everything", "select_classes", "shift", "shifted_noisy", "sort_sequences", "IGNORE",
]

# Mean and standard deviation of the digits' pixels (scaled to [0, 1]) over the training split of
# the default seed: the constants a lab passes to `normalize`.
DIGITS_MEAN = 0.3051
DIGITS_STD = 0.3760


# --------------------------------------------------------------------------------------------------
# Lab 10: devices, seeds, data, evaluation
# --------------------------------------------------------------------------------------------------
def device(lab=None) -> torch.device:
    """The device a lab's tensors and models live on: ``cuda`` on the GPU tier, ``cpu`` otherwise.

    ``lab`` is what ``techday.setup`` returned; without it the tier the last ``setup`` chose (or
    ``$TECHDAY_TIER``) decides. On the GPU tier a CPU-only PyTorch build is an error, not a silent
    fallback: timings taken there would not be GPU figures.
    """
    tier = lab.tier if lab is not None else (os.environ.get("TECHDAY_TIER_RESOLVED") or os.environ.get("TECHDAY_TIER"))
    if tier == "gpu":
        if not torch.cuda.is_available():
            from .i18n import msg

            raise RuntimeError(msg("techday.torch_without_cuda",
                                   "the GPU tier was chosen but this PyTorch ({version}) cannot use CUDA: "
                                   "install a CUDA build of PyTorch, or run with tier='cpu'", version=torch.__version__))
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's random generators (CPU and every GPU), and return a fresh
    ``torch.Generator`` seeded the same way, for shuffling and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


@dataclass
class Split:
    """Images ``x`` (N, 1, 8, 8), float32 in [0, 1], and labels ``y`` (N,), int64 (None: labels the
    grader keeps, as in :func:`load_digits_split`'s test split)."""

    x: torch.Tensor
    y: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, dev) -> "Split":
        return Split(self.x.to(dev), None if self.y is None else self.y.to(dev))


@dataclass
class DigitsData:
    """The digits, split three ways: fit on ``train``, choose on ``val``, report on ``test`` once."""

    train: Split
    val: Split
    test: Split
    n_classes: int = 10
    # Which of scikit-learn's 1,797 images each split holds (row numbers into load_digits()).
    indices: dict | None = None

    def to(self, dev) -> "DigitsData":
        return DigitsData(self.train.to(dev), self.val.to(dev), self.test.to(dev), self.n_classes, self.indices)


# The grader's held-out digits: the test split of the default split (20 %, seed 0), which the accuracy
# bars of labs 10-12 measure on. Their labels are handed out by held_out_digits() alone, which only the
# labs' locked cells call (the review flags a trainee's cell that does): a "model" that looked its
# input up among labelled held-out images passed lab 10's bar untrained (4 of 15 points).
HELD_OUT_FRACTION, HELD_OUT_SEED = 0.2, 0


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # 0..16 -> [0, 1]; one channel
    return x, digits.target.astype(np.int64)


def _partition(y, val_fraction: float, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), stratify=y[rest],
                                  random_state=seed + 1)
    return np.sort(train), np.sort(val), np.sort(test)


def _held_rows(y):
    """The rows of the grader's held-out digits (the test rows do not depend on the validation size)."""
    return _partition(y, 0.2, HELD_OUT_FRACTION, HELD_OUT_SEED)[2]


def _split(x, y, idx, labelled: bool = True) -> Split:
    return Split(torch.from_numpy(x[idx].copy()), torch.from_numpy(y[idx].copy()) if labelled else None)


def load_digits_split(val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> DigitsData:
    """scikit-learn's bundled 8x8 digits (1,797 images, shipped with the package: no download) as
    tensors, split into disjoint train / validation / test sets, stratified by label (each split holds
    every digit in the same proportion), the same split for the same ``seed``.

    The test split comes without labels (``test.y`` is None): they are the grader's
    (:func:`held_out_digits`). No split of another seed or size holds a labelled image of the grader's
    held-out rows either: those rows are left out of its train and validation sets."""
    x, y = _digits()
    train, val, test = _partition(y, val_fraction, test_fraction, seed)
    held = _held_rows(y)
    train, val = train[~np.isin(train, held)], val[~np.isin(val, held)]
    indices = {"train": train, "val": val, "test": test}
    return DigitsData(_split(x, y, train), _split(x, y, val), _split(x, y, test, labelled=False), indices=indices)


def held_out_digits() -> Split:
    """The grader's held-out digits with their labels: the images of :func:`load_digits_split`'s test
    split (default arguments). For the locked cells that measure a lab's accuracy bar; never for
    training or choosing."""
    x, y = _digits()
    return _split(x, y, _held_rows(y))


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, batch_size: int = 512) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``data``, in eval mode (dropout off,
    batch-norm uses its running statistics) and without building a graph. The model's mode is
    restored afterwards. Introduced in lab 10, where the trainee writes it."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    loss_sum, correct = 0.0, 0
    try:
        for i in range(0, len(data), batch_size):
            xb, yb = data.x[i:i + batch_size].to(dev), data.y[i:i + batch_size].to(dev)
            logits = model(xb)
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(dim=1) == yb).sum().item()
    finally:
        model.train(was_training)
    n = max(len(data), 1)
    return loss_sum / n, correct / n


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, train: Split, val: Split | None = None,
        epochs: int = 10, batch_size: int = 64, transform=None, generator: torch.Generator | None = None,
        keep_best: bool = False) -> dict:
    """The training loop of lab 10: each epoch shuffles ``train`` (inputs and labels together), runs
    mini-batch steps (``zero_grad``, forward, loss, ``backward``, ``step``) in train mode, then
    evaluates on ``val`` in eval mode.

    ``transform(x, generator)`` augments each training batch (lab 11). ``keep_best`` restores the
    weights of the epoch with the best validation accuracy at the end (early stopping, chosen on
    ``val``, never on the test split). Returns the history: ``train_loss``, ``val_loss``, ``val_acc``
    per epoch, and ``best_epoch``.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    dev = next(model.parameters()).device
    history = {"train_loss": [], "val_loss": [], "val_acc": [], "best_epoch": None}
    best_acc, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total, seen = 0.0, 0
        for i in range(0, len(train), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = train.x[idx], train.y[idx]
            if transform is not None:
                xb = transform(xb, generator)
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        history["train_loss"].append(total / seen)
        if val is not None:
            val_loss, val_acc = evaluate(model, val)
            history["val_loss"].append(val_loss)
            history["val_acc"].append(val_acc)
            if keep_best and val_acc > best_acc:
                best_acc, history["best_epoch"] = val_acc, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


# --------------------------------------------------------------------------------------------------
# Lab 11: transforms in plain torch. Images are (N, C, H, W); every transform keeps shape and dtype.
# --------------------------------------------------------------------------------------------------
def hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (the last axis)."""
    return x.flip(-1)


def random_hflip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``, independently. Not label-preserving for
    digits (a mirrored 3 is not a 3): lab 11 shows why an augmentation must suit the task."""
    flip = torch.rand(x.shape[0], generator=generator) < p
    flip = flip.to(x.device).view(-1, *([1] * (x.dim() - 1)))
    return torch.where(flip, x.flip(-1), x)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move the content of every image ``dy`` pixels down and ``dx`` pixels right (negative: up,
    left), filling with zeros: what a camera that moved a little sees."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y, dst_y = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def random_shift(x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift]: a random crop of the
    image zero-padded by ``max_shift`` on every side, back to the original size."""
    n = x.shape[0]
    span = 2 * max_shift + 1
    dys = torch.randint(0, span, (n,), generator=generator) - max_shift
    dxs = torch.randint(0, span, (n,), generator=generator) - max_shift
    out = torch.empty_like(x)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            rows = ((dys == dy) & (dxs == dx)).nonzero().flatten().to(x.device)
            if rows.numel():
                out[rows] = shift(x[rows], dy, dx)
    return out


def gaussian_noise(x: torch.Tensor, std: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add zero-mean Gaussian noise of standard deviation ``std`` to every pixel."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + std * noise


def normalize(x: torch.Tensor, mean: float = DIGITS_MEAN, std: float = DIGITS_STD) -> torch.Tensor:
    """``(x - mean) / std``: zero mean and unit variance over the training pixels."""
    return (x - mean) / std


class Compose:
    """Apply transforms in order; each is called as ``t(x, generator)`` (or ``t(x)`` if it takes one
    argument, like :func:`normalize`)."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        import inspect

        for t in self.transforms:
            takes_generator = len(inspect.signature(t).parameters) > 1
            x = t(x, generator=generator) if takes_generator else t(x)
        return x


def shifted_noisy(data: Split, max_shift: int = 1, noise_std: float = 0.1, seed: int = 1234) -> Split:
    """A fixed perturbed copy of ``data``: every image moved by one pixel (never zero) in a seeded
    random direction of up to ``max_shift`` and given Gaussian noise. The "camera moved" test set of lab 11."""
    g = torch.Generator().manual_seed(seed)
    moves = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
             if (dy, dx) != (0, 0)]
    pick = torch.randint(0, len(moves), (len(data),), generator=g)
    x = torch.empty_like(data.x)
    for k, (dy, dx) in enumerate(moves):
        rows = (pick == k).nonzero().flatten()
        if rows.numel():
            x[rows] = shift(data.x[rows], dy, dx)
    return Split(gaussian_noise(x, noise_std, g), data.y.clone())


# --------------------------------------------------------------------------------------------------
# Lab 12: tasks from the digits, and the course's pre-trained backbone
# --------------------------------------------------------------------------------------------------
def select_classes(data: Split, classes, relabel: bool = True) -> Split:
    """The images of ``classes`` only; with ``relabel`` their labels become 0, 1, ... in the order
    given (digits 5-9 become classes 0-4 of a new task)."""
    classes = list(classes)
    keep = torch.isin(data.y, torch.tensor(classes))
    x, y = data.x[keep], data.y[keep]
    if relabel:
        lookup = torch.full((int(data.y.max()) + 1,), -1, dtype=torch.int64)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        y = lookup[y]
    return Split(x.clone(), y.clone())


def few_shot(data: Split, per_class: int, seed: int = 0) -> Split:
    """``per_class`` labelled examples of each class, drawn with ``seed``: the few labels a new task has."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(data.y):
        rows = (data.y == c).nonzero().flatten()
        if len(rows) < per_class:
            raise ValueError(msg("techday.few_shot_too_few", "class {label} has {count} examples, fewer than {per_class}",
                                 label=int(c), count=len(rows), per_class=per_class))
        picks.append(rows[torch.randperm(len(rows), generator=g)[:per_class]])
    idx = torch.cat(picks).sort().values
    return Split(data.x[idx].clone(), data.y[idx].clone())


STROKE_SHAPES_SEED = 7  # the shapes of the source task; the images are drawn with each call's own seed


def _stroke_shapes(classes: int, seed: int) -> list[list[tuple[float, float, float, float]]]:
    """``classes`` shapes, each a pen path of 2 or 3 straight strokes between random points of the
    unit square (row, column), away from the border."""
    g = np.random.default_rng(seed)
    shapes = []
    for _ in range(classes):
        pts = g.uniform(0.15, 0.85, (int(g.integers(2, 4)) + 1, 2))
        shapes.append([(*pts[i], *pts[i + 1]) for i in range(len(pts) - 1)])
    return shapes


def _draw_strokes(strokes, width: float, size: int = 8) -> np.ndarray:
    """Anti-aliased strokes on a ``size`` x ``size`` image: a pixel's value falls off with its distance
    from the nearest stroke (``width`` in pixels sets how fast)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    img = np.zeros((size, size), np.float32)
    for r0, c0, r1, c1 in strokes:
        p0, d = np.array([r0, c0]) * size, np.array([r1 - r0, c1 - c0]) * size
        t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
        dist = np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1]))
        img = np.maximum(img, np.clip(1.2 - dist / width, 0, 1))
    return img


def make_strokes(n: int, seed: int = 0, classes: int = 40) -> Split:
    """Lab 12's **source** domain: ``n`` 8 x 8 images of pen strokes, ``classes`` shapes (label = shape),
    each drawn with its own jitter of the stroke ends, pen width, one-pixel shift, contrast and noise.
    The shapes are the same for every call (:data:`STROKE_SHAPES_SEED`); ``seed`` draws the images.
    No digit is among them: a backbone trained here and reused on the digits is a transfer between
    two domains, as a model zoo's backbone trained on photographs is reused on a factory's parts."""
    g = np.random.default_rng(seed)
    shapes = _stroke_shapes(classes, STROKE_SHAPES_SEED)
    y = g.integers(0, classes, n)
    x = np.zeros((n, 1, 8, 8), np.float32)
    for i in range(n):
        strokes = [tuple(v + g.normal(0, 0.03) for v in stroke) for stroke in shapes[y[i]]]
        img = _draw_strokes(strokes, width=float(g.uniform(0.55, 1.0)))
        img = np.roll(img, tuple(int(v) for v in g.integers(-1, 2, 2)), axis=(0, 1))
        x[i, 0] = np.clip(img * g.uniform(0.7, 1.0) + g.normal(0, 0.05, img.shape), 0, 1)
    return Split(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))


class Backbone(nn.Module):
    """Two convolution blocks (conv, batch-norm, ReLU) and a 2x2 max-pool, flattened:
    (N, 1, 8, 8) -> (N, out_features) with ``out_features = 2 * width * 4 * 4`` (512 by default)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.out_features = 2 * width * 4 * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def make_backbone(width: int = 16) -> Backbone:
    """A fresh, untrained :class:`Backbone`."""
    return Backbone(width)


def pretrain_backbone(source: Split, n_classes: int = 10, epochs: int = 8, seed: int = 0, width: int = 16,
                      dev=None) -> tuple[Backbone, nn.Linear]:
    """Train a :class:`Backbone` and a linear head on the source task, with the augmentation of lab 11
    (random one-pixel shifts, Gaussian noise), and return both in eval mode. Deterministic for a seed
    on one machine with one CPU thread. ``course/scripts/pretrain_backbone.py`` calls it to make the
    checkpoint that lab 12 loads."""
    g = seed_everything(seed)
    backbone = make_backbone(width)
    head = nn.Linear(backbone.out_features, n_classes)
    model = nn.Sequential(backbone, nn.Dropout(0.25), head).to(dev or "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    augment = Compose(random_shift, gaussian_noise)
    fit(model, optimizer, source, None, epochs=epochs, batch_size=64, transform=augment, generator=g)
    return backbone.eval(), head.eval()


def save_backbone(path: Path | str, backbone: nn.Module, meta: dict) -> str:
    """Write a course backbone checkpoint (``state_dict``, ``width``, ``meta`` with the PyTorch version)
    as the ``course/scripts/pretrain_*.py`` scripts do; returns the first 16 hex digits of its SHA-256."""
    import hashlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomicfile.replacing(path, "wb") as f:  # minutes of pretraining: the committed checkpoint stays whole
        torch.save({"state_dict": backbone.state_dict(), "width": backbone.width,
                    "meta": {**meta, "torch": str(torch.__version__)}}, f)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


BACKBONE_PATH = Path(__file__).resolve().parent / "data" / "strokes_backbone.pt"

# What a course checkpoint's ``meta`` says in words, as course/scripts/pretrain_*.py write it: English, its
# numbers as fields (a record reads the same in every language, as a timing's label does). A lab shows it
# through :func:`backbone_record`, in the trainee's language.
STROKES_SOURCE_TASK = ("techday.dl.make_strokes: pen strokes 8x8, {shapes} shapes, {images} images (seed {seed}); "
                       "no digits")
PARTS_SOURCE_TASK = "techday.parts.make_parts: {plates} plates 32x32 (seed 101), ok / scratch / dent; no flange"
PARTS_AUGMENTATION = "flips (left-right, top-bottom)"


def _record_wording():
    """(meta key, the English a script writes, the same in the run's language): each msg's English is its
    constant's (tests/unit/test_dl.py holds them equal)."""
    return (
        ("source_task", STROKES_SOURCE_TASK, lambda **f: msg(
            "techday.backbone_strokes_task", "techday.dl.make_strokes: pen strokes 8x8, {shapes} shapes, {images} "
            "images (seed {seed}); no digits", **f)),
        ("source_task", PARTS_SOURCE_TASK, lambda **f: msg(
            "techday.backbone_parts_task", "techday.parts.make_parts: {plates} plates 32x32 (seed 101), ok / scratch "
            "/ dent; no flange", **f)),
        ("augmentation", PARTS_AUGMENTATION, lambda **f: msg(
            "techday.backbone_parts_augmentation", "flips (left-right, top-bottom)", **f)),
    )


def _unformat(template: str, text: str) -> dict | None:
    """The fields that make ``template.format(**fields) == text`` (as text), or None where ``text`` is not
    ``template``'s wording."""
    import re
    import string

    pattern = "".join(re.escape(literal) + (f"(?P<{name}>.+?)" if name else "")
                      for literal, name, _, _ in string.Formatter().parse(template))
    found = re.fullmatch(pattern, text)
    return found.groupdict() if found else None


def backbone_record(meta: dict) -> dict:
    """A course checkpoint's ``meta`` as a lab shows it (lab 12 prints it, lab 17 quotes its source task): the
    values its pretraining script wrote in words (:data:`STROKES_SOURCE_TASK`, :data:`PARTS_SOURCE_TASK`,
    :data:`PARTS_AUGMENTATION`) in the trainee's language, with the numbers as stored; every other value
    (numbers, names, code) as stored. A value in other words (a checkpoint made otherwise) stays as it is."""
    shown = dict(meta)
    for key, template, say in _record_wording():
        value = meta.get(key)
        fields = _unformat(template, value) if isinstance(value, str) else None
        if fields is not None:
            shown[key] = say(**fields)
    return shown


def load_backbone(path: Path | str = BACKBONE_PATH, map_location="cpu") -> tuple[Backbone, dict]:
    """The course's pre-trained backbone (lab 12): a checkpoint written by
    ``course/scripts/pretrain_backbone.py``, a dictionary with the backbone's ``state_dict``, its
    ``width`` and a ``meta`` record of how it was made. Returns the backbone (eval mode) and ``meta``."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    backbone = make_backbone(checkpoint["width"])
    backbone.load_state_dict(checkpoint["state_dict"])
    return backbone.eval(), checkpoint["meta"]


# --------------------------------------------------------------------------------------------------
# Lab 17: the course's parts backbone (plates), adapted to a new product in the assessment
# --------------------------------------------------------------------------------------------------
class PartsBackbone(nn.Module):
    """Three convolution blocks (conv, batch-norm, ReLU; 2x2 max-pools after the first two) and a
    global max-pool over the 8 x 8 map (``nn.MaxPool2d(8)``: it exports to ONNX, and a defect
    anywhere in the picture lights up the same feature): (N, 1, 32, 32) -> (N, out_features) with
    ``out_features = 4 * width`` (64 by default)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.MaxPool2d(8), nn.Flatten(),
        )
        self.out_features = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def flips(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right and, independently, top-bottom, each with probability 1/2: a
    flipped part is still the same part (not so for digits)."""
    lr = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
    ud = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device).view(-1, 1, 1, 1)
    x = torch.where(lr, x.flip(-1), x)
    return torch.where(ud, x.flip(-2), x)


def pretrain_parts_backbone(n: int = 12_000, epochs: int = 8, seed: int = 0, width: int = 16,
                            data_seed: int = 101) -> tuple[PartsBackbone, nn.Linear, dict]:
    """Train a :class:`PartsBackbone` and a 3-class head on ``n`` labelled plates
    (``make_parts(n, data_seed)``) with flips, Adam and a one-cycle schedule, and return both in eval
    mode and a record (the validation accuracy on 1,500 other plates). Deterministic for a seed on
    one machine with one CPU thread. ``course/scripts/pretrain_parts_backbone.py`` calls it."""
    from .parts import make_parts

    g = seed_everything(seed)
    x, y = make_parts(n, seed=data_seed, as_tensor=True)
    backbone = PartsBackbone(width)
    head = nn.Linear(backbone.out_features, 3)
    model = nn.Sequential(backbone, head)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = 128
    steps = epochs * ((n + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            optimizer.zero_grad()
            F.cross_entropy(model(flips(x[idx], g)), y[idx]).backward()
            optimizer.step()
            schedule.step()
    xv, yv = make_parts(1_500, seed=data_seed + 1, as_tensor=True)
    _, val_acc = evaluate(model, Split(xv, yv))
    return backbone.eval(), head.eval(), {"source_val_accuracy": round(val_acc, 4)}


PARTS_BACKBONE_PATH = Path(__file__).resolve().parent / "data" / "parts_backbone.pt"


def load_parts_backbone(path: Path | str = PARTS_BACKBONE_PATH, map_location="cpu") -> tuple[PartsBackbone, dict]:
    """The course's parts backbone (lab 17): a checkpoint written by
    ``course/scripts/pretrain_parts_backbone.py`` (``state_dict``, ``width``, ``meta``). Returns a
    fresh :class:`PartsBackbone` holding those weights (eval mode) and ``meta``; each call gives a
    new copy, so adapting one leaves the next untouched."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    backbone = PartsBackbone(checkpoint["width"])
    backbone.load_state_dict(checkpoint["state_dict"])
    return backbone.eval(), checkpoint["meta"]


IGNORE = -100  # the target of a position the loss leaves out (F.cross_entropy's default ignore_index)


def sort_sequences(n: int, length: int = 8, symbols: int = 10, seed: int = 0) -> Split:
    """Lab 16's generated sequence task, for a causal (next-token) transformer.

    Each of the ``n`` rows is ``a_1 .. a_L, SEP, s_1 .. s_L`` with ``a`` drawn uniformly from
    ``range(symbols)`` (``L = length``), ``SEP = symbols`` and ``s`` the prompt sorted. ``x`` holds every
    token but the last (N, 2L) and ``y`` the token that follows each position (N, 2L): the next-token
    targets of the model that reads ``x``. The first L targets (inside the prompt, where the next
    symbol is random) are :data:`IGNORE`, so the loss counts only the sorted answer, whose first
    symbol follows SEP. Token ids run from 0 to ``symbols`` (vocabulary ``symbols + 1``).

    Sorting needs attention: every output position must find, among all the prompt's positions, the
    symbol that belongs there, which no fixed window of neighbours can see."""
    if n < 0 or length < 1 or symbols < 2:
        raise ValueError(f"sort_sequences: n={n}, length={length}, symbols={symbols}: need n >= 0, length >= 1, symbols >= 2")
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, symbols, (n, length), generator=g)
    rows = torch.cat([prompt, torch.full((n, 1), symbols), prompt.sort(dim=1).values], dim=1)
    y = rows[:, 1:].clone()
    # Inside the prompt the next symbol is random, and after its last symbol comes SEP, always known.
    y[:, :length] = IGNORE
    return Split(rows[:, :-1].clone(), y)
