"""The demand image D = (C + b_n) · I^α (DeepSource eq. 3): what the network learns to output.

C is the δ-image of the true source positions smoothed by a horn-shaped smooth triangle and then a
Gaussian, scaled so an isolated source peaks at 1. I is the noise-normalised input image; its
power keeps the sign (``sign(I)·|I|^α``) because the image has negative noise pixels. α weights
bright against faint sources; b_n keeps a little of the background in D so the network learns it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from radiofind.io.images import FWHM_TO_SIGMA


def horn_kernel(radius: float) -> np.ndarray:
    """A horn-shaped smooth triangle: (1 - r/R)² inside R, peak 1 at the centre."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    dist = np.hypot(xx, yy)
    return np.clip(1.0 - dist / radius, 0.0, None) ** 2


def coefficient_image(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, *,
                      horn_radius: float, gauss_fwhm: float) -> np.ndarray:
    """C: unit deltas at (x, y) (rounded to pixels) smoothed by the horn then the Gaussian.

    Scaled so that one isolated source peaks at exactly 1; overlapping sources are capped at 1.
    """
    kernel = horn_kernel(horn_radius)
    if gauss_fwhm > 0:
        kernel = ndimage.gaussian_filter(np.pad(kernel, int(2 * gauss_fwhm)),
                                         gauss_fwhm * FWHM_TO_SIGMA)
    kernel = (kernel / kernel.max()).astype(np.float32)
    # Sources are sparse: stamping the kernel at each is exact (no FFT round-off) and cheap.
    coeff = np.zeros(shape, dtype=np.float32)
    r = kernel.shape[0] // 2
    ny, nx = shape
    for xc, yc in zip(np.rint(x).astype(int), np.rint(y).astype(int), strict=True):
        y0, y1, x0, x1 = max(yc - r, 0), min(yc + r + 1, ny), max(xc - r, 0), min(xc + r + 1, nx)
        if y0 < y1 and x0 < x1:
            coeff[y0:y1, x0:x1] += kernel[y0 - yc + r:y1 - yc + r, x0 - xc + r:x1 - xc + r]
    return np.clip(coeff, 0.0, 1.0)


def demand_image(image: np.ndarray, coeff: np.ndarray, *, alpha: float, b_n: float) -> np.ndarray:
    """D = (C + b_n) · sign(I)|I|^α for a noise-normalised image I."""
    powered = np.sign(image) * np.abs(image) ** alpha
    return ((coeff + b_n) * powered).astype(np.float32)
