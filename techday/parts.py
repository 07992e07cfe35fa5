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

Introduced in lab 13 (training fast) and used by labs 14-17; lab 17's grader evaluates on seeds the
trainee never sees. Importing this module does not import PyTorch.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("ok", "scratch", "dent")
CLASSES_KO = ("정상", "긁힘", "찍힘")


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

    if label == 1:  # scratch: a thin dark line segment at a random angle
        pu, pv = spot_on_plate()
        phi = rng.uniform(0.0, np.pi)
        length = rng.uniform(9.0, 15.0) * s
        width = rng.uniform(0.55, 0.85) * s
        depth = rng.uniform(0.3, 0.5) * brightness
        du, dv = u - pu, v - pv
        along = du * np.cos(phi) + dv * np.sin(phi)
        across = -du * np.sin(phi) + dv * np.cos(phi)
        line = np.exp(-0.5 * (across / width) ** 2) * (np.abs(along) < length / 2)
        img = img - depth * line * plate
    elif label == 2:  # dent: a small dark pit, lit from one side (bright rim)
        pu, pv = spot_on_plate()
        radius = rng.uniform(1.4, 2.1) * s
        depth = rng.uniform(0.4, 0.6) * brightness
        du, dv = u - pu, v - pv
        pit = np.exp(-0.5 * (du ** 2 + dv ** 2) / radius ** 2)
        light = rng.uniform(0.0, 2 * np.pi)
        off = 1.2 * radius
        rim = np.exp(-0.5 * ((du - off * np.cos(light)) ** 2 + (dv - off * np.sin(light)) ** 2) / (0.8 * radius) ** 2)
        img = img + (-depth * pit + 0.5 * depth * rim) * plate

    gain = rng.uniform(0.85, 1.15)
    noise = rng.normal(0.0, rng.uniform(0.02, 0.05), size=img.shape)
    return (gain * img + noise).astype(np.float32)


def make_parts(n: int, seed: int, size: int = 32, as_tensor: bool = False):
    """``n`` parts-inspection images and their labels, deterministic for ``(n, seed, size)``.

    Returns ``(images, labels)``: float32 ``(n, 1, size, size)`` (roughly 0..1, not clipped: sensor
    noise can go below 0) and int64 ``(n,)`` in ``0..2`` (see ``CLASSES``). The classes are balanced:
    their counts differ by at most one. ``as_tensor=True`` returns ``torch.Tensor`` s instead of
    NumPy arrays.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    rng = np.random.default_rng([int(seed), int(size), 0x9A275])
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, 1, size, size), np.float32)
    for i, label in enumerate(labels):
        images[i, 0] = _draw_part(rng, int(label), size)
    if as_tensor:
        import torch

        return torch.from_numpy(images), torch.from_numpy(labels)
    return images, labels
