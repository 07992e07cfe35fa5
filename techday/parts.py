"""Parts inspection: a seeded synthetic manufacturing data set for the deep-learning track.

Each sample is a small grayscale photograph of one machined part (a rectangular plate) seen from
above, in one of three classes::

    0 "ok"       no defect
    1 "scratch"  a thin dark line across the surface
    2 "dent"     a small dark pit with a bright rim on one side

Nuisance variation makes the task worth a CNN: the part's position, rotation and size, the part's
and the background's brightness, faint machining marks on every part, and sensor noise. A defect
covers a few dozen pixels at most, so the mean brightness of an image says almost nothing about its
class (tests/unit/test_parts.py checks that). Everything is drawn from ``numpy.random.default_rng
(seed)``: the same ``(n, seed, size)`` gives the same bytes on every machine.

A second product, ``product="flange"``, is what lab 17's transfer exercise adapts to: round flanges
with a centre bore, turned on a lathe (concentric machining rings), photographed by another camera
line (a lighter, softer background, less contrast, more sensor noise), with the same three classes and
the same kinds of defect on the ring between bore and rim. The bore is a dark round hole like a dent
without its bright rim, so a model must learn to tell them apart.

Introduced in lab 13 (training fast) and used by labs 14-17; lab 17's grader evaluates on seeds the
trainee never sees. Importing this module does not import PyTorch.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

CLASSES = ("ok", "scratch", "dent")
CLASSES_KO = ("정상", "긁힘", "찍힘")
PRODUCTS = ("plate", "flange")

# How often each (n, seed, size) was asked of make_parts in this process, per product: lab 17's transfer
# test reads it to check that a notebook learned from its 90 labelled flanges and drew no others.
_REQUESTS: dict[str, Counter] = {product: Counter() for product in PRODUCTS}


def requests(product: str) -> Counter:
    """How many times each ``(n, seed, size)`` was drawn by :func:`make_parts` for ``product`` in this
    process so far (a copy). Lab 17's transfer test allows the labelled flanges and its own test sets
    and nothing else, and refuses any draw, a repeated one too, while the trainee's code runs: the
    exercise is learning from few labels. It sees calls of :func:`make_parts` only, not a copy of the
    generator."""
    return Counter(_REQUESTS[product])


def _scratch(rng, du, dv, brightness, s):
    """A thin dark line segment at a random angle through the point (du, dv) = (0, 0): what to add to
    the surface (negative: darker). Both products draw their defects with this and :func:`_dent`."""
    phi = rng.uniform(0.0, np.pi)
    length = rng.uniform(9.0, 15.0) * s
    width = rng.uniform(0.55, 0.85) * s
    depth = rng.uniform(0.3, 0.5) * brightness
    along = du * np.cos(phi) + dv * np.sin(phi)
    across = -du * np.sin(phi) + dv * np.cos(phi)
    return -depth * np.exp(-0.5 * (across / width) ** 2) * (np.abs(along) < length / 2)


def _dent(rng, du, dv, brightness, s):
    """A small dark pit at (du, dv) = (0, 0), lit from one side (bright rim)."""
    radius = rng.uniform(1.4, 2.1) * s
    depth = rng.uniform(0.4, 0.6) * brightness
    pit = np.exp(-0.5 * (du ** 2 + dv ** 2) / radius ** 2)
    light = rng.uniform(0.0, 2 * np.pi)
    off = 1.2 * radius
    rim = np.exp(-0.5 * ((du - off * np.cos(light)) ** 2 + (dv - off * np.sin(light)) ** 2) / (0.8 * radius) ** 2)
    return -depth * pit + 0.5 * depth * rim


def _draw_part(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    s = size / 32.0  # every length below is given for 32 x 32 and scaled
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background = rng.uniform(0.05, 0.35)
    brightness = rng.uniform(0.45, 0.85)
    cy, cx = size / 2 + rng.uniform(-3.5, 3.5, size=2) * s
    theta = rng.uniform(0.0, np.pi)
    half_a, half_b = rng.uniform(9.0, 12.0) * s, rng.uniform(6.5, 9.0) * s
    c, sn = np.cos(theta), np.sin(theta)
    u = (xx - cx) * c + (yy - cy) * sn       # along the part's long axis
    v = -(xx - cx) * sn + (yy - cy) * c      # across it
    # A soft-edged rectangle: the plate.
    edge = 0.6 * s
    plate = 1.0 / (1.0 + np.exp(-(np.minimum(half_a - np.abs(u), half_b - np.abs(v))) / edge))
    # Machining marks on every part: faint stripes along the long axis, and a brightness gradient.
    marks = rng.uniform(0.0, 0.04) * np.sin(2 * np.pi * v / rng.uniform(2.5, 4.5) / s + rng.uniform(0, 2 * np.pi))
    gradient = rng.uniform(-0.08, 0.08) * u / (half_a + 1e-6)
    surface = brightness * (1.0 + gradient) + marks
    img = background + (surface - background) * plate

    # A defect somewhere on the plate, away from its rim.
    def spot_on_plate():
        return rng.uniform(-half_a + 2.5 * s, half_a - 2.5 * s), rng.uniform(-half_b + 2.5 * s, half_b - 2.5 * s)

    if label:  # 1: a scratch, 2: a dent (see _scratch and _dent)
        pu, pv = spot_on_plate()
        du, dv = u - pu, v - pv
        mark = _scratch(rng, du, dv, brightness, s) if label == 1 else _dent(rng, du, dv, brightness, s)
        img = img + mark * plate

    gain = rng.uniform(0.85, 1.15)
    noise = rng.normal(0.0, rng.uniform(0.02, 0.05), size=img.shape)
    return (gain * img + noise).astype(np.float32)


def _draw_flange(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    s = size / 32.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    background = rng.uniform(0.35, 0.55)          # the other camera line: a lighter tray
    brightness = rng.uniform(0.6, 0.9)
    cy, cx = size / 2 + rng.uniform(-3.0, 3.0, size=2) * s
    outer = rng.uniform(10.5, 13.0) * s
    bore = rng.uniform(2.6, 3.6) * s
    r = np.hypot(xx - cx, yy - cy)
    edge = 0.8 * s
    disc = 1.0 / (1.0 + np.exp(-(outer - r) / edge))
    hole = 1.0 / (1.0 + np.exp(-(bore - r) / (0.5 * s)))
    rings = rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * r / rng.uniform(1.8, 3.2) / s + rng.uniform(0, 2 * np.pi))
    light = rng.uniform(-0.1, 0.1) * (xx - cx) / outer
    surface = brightness * (1.0 + light) + rings
    img = background + (surface - background) * disc
    img = img - (img - 0.6 * background) * hole  # the bore: through the part, darker than the tray
    if label:
        ang = rng.uniform(0.0, 2 * np.pi)
        rad = rng.uniform(bore + 3.0 * s, outer - 2.5 * s)
        du, dv = xx - (cx + rad * np.cos(ang)), yy - (cy + rad * np.sin(ang))
        mark = _scratch(rng, du, dv, brightness, s) if label == 1 else _dent(rng, du, dv, brightness, s)
        img = img + mark * disc * (1.0 - hole)
    gain = rng.uniform(0.7, 1.0)                  # less contrast than the plates' camera
    noise = rng.normal(0.0, rng.uniform(0.03, 0.06), size=img.shape)
    return (gain * img + noise).astype(np.float32)


def make_parts(n: int, seed: int, size: int = 32, as_tensor: bool = False, product: str = "plate"):
    """``n`` parts-inspection images and their labels, deterministic for ``(n, seed, size)``.

    Returns ``(images, labels)``: float32 ``(n, 1, size, size)`` (roughly 0..1, not clipped: sensor
    noise can go below 0) and int64 ``(n,)`` in ``0..2`` (see ``CLASSES``). The classes are balanced:
    their counts differ by at most one. ``as_tensor=True`` returns ``torch.Tensor`` s instead of
    NumPy arrays. ``product`` is ``"plate"`` (labs 13-17) or ``"flange"`` (lab 17's transfer
    exercise: see the module's docstring); the plates' bytes do not depend on it existing.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    if product not in PRODUCTS:
        raise ValueError(f"product must be one of {PRODUCTS}, not {product!r}")
    _REQUESTS[product][(int(n), int(seed), int(size))] += 1
    key = [int(seed), int(size), 0x9A275] + ([0xF1A9E] if product == "flange" else [])
    rng = np.random.default_rng(key)
    draw = _draw_part if product == "plate" else _draw_flange
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, 1, size, size), np.float32)
    for i, label in enumerate(labels):
        images[i, 0] = draw(rng, int(label), size)
    if as_tensor:
        import torch

        return torch.from_numpy(images), torch.from_numpy(labels)
    return images, labels


def show(images, labels, per_class: int = 8):
    """A grid of ``per_class`` images of each class, one row per class (matplotlib, imported here), for
    the labs' first look at a data set; ``images`` and ``labels`` as :func:`make_parts` returns them."""
    import matplotlib.pyplot as plt

    images, labels = np.asarray(images), np.asarray(labels)
    fig, axes = plt.subplots(len(CLASSES), per_class, figsize=(1.25 * per_class, 4), squeeze=False)
    for row, cls in enumerate(CLASSES):
        picks = np.flatnonzero(labels == row)[:per_class]
        for col in range(per_class):
            axes[row, col].axis("off")
            if col < len(picks):
                axes[row, col].imshow(images[picks[col], 0], cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title(cls, fontsize=9, loc="left")
    plt.tight_layout()
    plt.show()
