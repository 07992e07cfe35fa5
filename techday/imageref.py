"""NumPy references for the accelerated track's assessment (lab 07): blur, histogram, equalisation.

The assessment asks for a small image pipeline written as Numba CUDA kernels:

1. **blur**: a 2-D convolution of an 8-bit grey image with a small square integer kernel (a binomial
   approximation of a Gaussian), with *clamp-to-edge* border handling: a tap that falls outside the
   image reads the nearest edge pixel (``np.pad(mode="edge")``). Integer weights keep the result
   exact: ``out = (sum(w * pixel) + total // 2) // total`` with ``total = w.sum()``, so a kernel and
   this reference agree bit for bit and a test can compare with ``==``.
2. **histogram**: 256 counts, one per grey level.
3. **equalisation lookup table**: the classic histogram equalisation. With ``cdf`` the cumulative
   histogram, ``n`` the number of pixels and ``cdf_min`` the cumulative count of the darkest level
   present, ``lut[v] = round((cdf[v] - cdf_min) * 255 / (n - cdf_min))`` in integer arithmetic
   (``(a * 255 + span // 2) // span``), clipped to 0..255. An image of one grey level has
   ``n == cdf_min``: there is nothing to stretch, and the table is the identity.
4. **lookup**: ``out = lut[blurred]``.

Every function here is plain NumPy, the ground truth the notebook's tests compare the kernels with.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binomial_weights", "sample_image", "blur_reference", "histogram_reference",
           "equalization_lut_reference", "pipeline_reference", "SAMPLES"]

# Grey 8-bit sample pictures that ship inside scikit-image (no download): name -> skimage.data function.
SAMPLES = ("camera", "coins", "moon", "page", "text", "brick", "grass", "gravel", "clock")


def binomial_weights(size: int = 5) -> np.ndarray:
    """The ``size`` x ``size`` binomial kernel (outer product of a row of Pascal's triangle), int32.

    ``binomial_weights(3)`` is ``[1, 2, 1]`` x ``[1, 2, 1]`` (sum 16); ``binomial_weights(5)`` is
    ``[1, 4, 6, 4, 1]`` x ``[1, 4, 6, 4, 1]`` (sum 256), the usual integer stand-in for a Gaussian.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"a blur kernel has an odd size, not {size}")
    row = np.array([1], np.int64)
    for _ in range(size - 1):
        row = np.convolve(row, [1, 1])
    return np.outer(row, row).astype(np.int32)


def sample_image(name: str = "camera", shape: tuple[int, int] | None = None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A grey uint8 scikit-image sample picture, C-contiguous.

    With ``shape``: a crop of that shape starting at ``origin``, the picture tiled (repeated) as
    often as needed, so any size can be made from one picture: small crops for the simulator, a
    4001 x 5999 image for the speed test on a GPU.
    """
    import skimage.data

    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}: choose one of {', '.join(SAMPLES)}")
    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"skimage.data.{name}() is not a grey uint8 picture")
    if shape is None:
        return np.ascontiguousarray(img)
    rows, cols = shape
    r0, c0 = origin
    reps = (-(-(r0 + rows) // img.shape[0]), -(-(c0 + cols) // img.shape[1]))
    return np.ascontiguousarray(np.tile(img, reps)[r0:r0 + rows, c0:c0 + cols])


def blur_reference(img: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Clamp-to-edge convolution with integer ``weights`` (odd square), rounded: uint8 like ``img``.

    ``out[r, c] = (sum_ij w[i, j] * img[clamp(r + i - k//2), clamp(c + j - k//2)] + total // 2) // total``.
    (Strictly a correlation: the weights are not flipped. For the symmetric binomial kernels the
    two are the same.)
    """
    img = np.asarray(img)
    w = np.asarray(weights, np.int64)
    if img.ndim != 2 or w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] % 2 == 0:
        raise ValueError(f"need a 2-D image and an odd square kernel, got {img.shape} and {w.shape}")
    total = int(w.sum())
    if total <= 0 or (w < 0).any():
        raise ValueError("blur weights must be non-negative with a positive sum")
    k = w.shape[0]
    r = k // 2
    padded = np.pad(img.astype(np.int64), r, mode="edge")
    acc = np.zeros(img.shape, np.int64)
    rows, cols = img.shape
    for i in range(k):
        for j in range(k):
            acc += w[i, j] * padded[i:i + rows, j:j + cols]
    return ((acc + total // 2) // total).astype(np.uint8)


def histogram_reference(img: np.ndarray) -> np.ndarray:
    """Counts of each grey level 0..255, int64."""
    return np.bincount(np.asarray(img, np.uint8).ravel(), minlength=256).astype(np.int64)


def equalization_lut_reference(hist: np.ndarray) -> np.ndarray:
    """The equalisation lookup table (uint8[256]) of a 256-bin histogram; identity for one level."""
    hist = np.asarray(hist, np.int64)
    if hist.shape != (256,) or (hist < 0).any() or hist.sum() == 0:
        raise ValueError("need 256 non-negative counts, not all zero")
    cdf = np.cumsum(hist)
    n = int(cdf[-1])
    cdf_min = int(cdf[np.flatnonzero(hist)[0]])
    span = n - cdf_min
    if span == 0:
        return np.arange(256, dtype=np.uint8)
    return np.clip(((cdf - cdf_min) * 255 + span // 2) // span, 0, 255).astype(np.uint8)


def pipeline_reference(img: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Blur, then equalise the blurred image's histogram: the whole assessment pipeline."""
    blurred = blur_reference(img, weights)
    return equalization_lut_reference(histogram_reference(blurred))[blurred]
