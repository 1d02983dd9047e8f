"""Thermal noise: per visibility, and what it becomes in a natural-weight image.

Radiometer equation for one correlation product of one baseline: the real and imaginary parts each
carry Gaussian noise of

    sigma_vis = SEFD / sqrt(2 * channel_width * integration_time).

A natural-weight dirty image is the mean of ``Re(V_k exp(i phi_k))`` over the N unflagged samples
(baseline x time x channel); each term has variance sigma_vis**2 (cos**2 + sin**2), so one
polarisation's image noise is ``sigma_vis / sqrt(N)``. Stokes I = (XX + YY) / 2 averages two
independent polarisations:

    sigma_I = sigma_vis / sqrt(2 N)   ( = SEFD / sqrt(4 N dnu dt), Wrobel & Walker 1999 eq. 9-23).

This is the flux of "SNR 1" in the simulated sky. WSClean's Briggs 1.5 (radiofind's "natural") is
within a few per cent of it; uniform weighting is noisier.
"""

from __future__ import annotations

import math

import numpy as np

from radiofind.errors import RadiofindError


def visibility_sigma(sefd: float, channel_width: float, integration_time: float) -> float:
    """Noise of the real (and of the imaginary) part of one visibility, Jy.

    Parameters
    ----------
    sefd
        System equivalent flux density, Jy.
    channel_width
        Hz.
    integration_time
        Seconds.
    """
    for name, value in (("sefd", sefd), ("channel_width", channel_width),
                        ("integration_time", integration_time)):
        if not (math.isfinite(value) and value > 0):
            raise RadiofindError(f"{name} must be positive, got {value!r}")
    return float(sefd / math.sqrt(2.0 * channel_width * integration_time))


def natural_image_noise(sigma_vis: float, n_samples: int, *, n_pol: int = 2) -> float:
    """Theoretical noise of a natural-weight Stokes I image, Jy/beam.

    Parameters
    ----------
    sigma_vis
        Noise of the real/imaginary part of one visibility (one correlation), Jy.
    n_samples
        Unflagged (baseline, time, channel) samples.
    n_pol
        Polarisations averaged into Stokes I (2: XX and YY).
    """
    if n_samples <= 0:
        raise RadiofindError("no unflagged visibilities: the image noise is undefined")
    return float(sigma_vis / math.sqrt(n_pol * n_samples))


def add_thermal_noise(vis: np.ndarray, sigma: float, rng: np.random.Generator) -> None:
    """Add complex Gaussian noise (``sigma`` on each of re and im) to ``vis`` in place.

    All correlations get noise, so XY and YX are noise-like too, as in a real observation.
    The draws are consumed in row order, so filling a Measurement Set chunk by chunk gives the
    same noise as one big draw.
    """
    noise = rng.standard_normal(vis.shape + (2,), dtype=np.float64)
    vis += (sigma * (noise[..., 0] + 1j * noise[..., 1])).astype(vis.dtype)


def sigma_weight(sigma: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """SIGMA and WEIGHT column values for noise ``sigma``: WEIGHT = 1 / SIGMA**2."""
    sig = np.full(shape, sigma, dtype=np.float32)
    return sig, (1.0 / sig.astype(np.float64) ** 2).astype(np.float32)
