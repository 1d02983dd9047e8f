"""Visibilities of a point-source sky: ducc0's wgridder, an exact DFT reference, and the MS writer.

Sign convention (measured with WSClean, FACTS.md): with a Measurement Set's UVW column,

    V(u, v, w) = sum_k S_k exp(+2 pi i (u l_k + v m_k + w (n_k - 1))),   n = sqrt(1 - l**2 - m**2)

with (u, v, w) in wavelengths and (l, m) the direction cosines towards east and north.

Image pixels to (l, m): WSClean's image is a SIN projection about the phase centre, whose
projection-plane coordinates *are* (l, m), linear in pixels, with ``CDELT1 = -scale`` (RA, i.e. l,
grows to the left) and 0-based pixel (size/2, size/2) at the centre:

    l = -(x - size/2) * scale,    m = (y - size/2) * scale       (scale in radians)

ducc0 indexes its model as ``model[ix, iy]`` with ``l' = (ix - nx/2) * pixsize``. FACTS' flags
(``flip_u=True``) need ``model[l, m]`` with l growing with the index, i.e. ``ix = size - x``, which
falls off the grid for x = 0. Flipping the sign of u *and* of l leaves ``u l`` unchanged, so
``flip_u=False, flip_v=True`` with ``model[x, y]`` (the image transposed, no mirroring) is the
same transform and covers exactly WSClean's pixels. tests/test_simulation.py checks this against
:func:`dft_visibilities` and against a WSClean image.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from radiofind.io.images import FWHM_TO_SIGMA
from radiofind.simulation.noise import add_thermal_noise, sigma_weight
from radiofind.simulation.sky import PointSky

log = logging.getLogger("radiofind.simulation")

SPEED_OF_LIGHT = 299_792_458.0
ARCSEC = np.pi / 180.0 / 3600.0


def pixel_to_lm(x: np.ndarray, y: np.ndarray, size: int, scale: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Direction cosines (l, m) of 0-based image pixels (x, y); ``scale`` in arcsec."""
    step = scale * ARCSEC
    l_ = -(np.asarray(x, dtype=float) - size // 2) * step
    m_ = (np.asarray(y, dtype=float) - size // 2) * step
    return l_, m_


def dft_visibilities(uvw: np.ndarray, freqs: np.ndarray, l: np.ndarray, m: np.ndarray,  # noqa: E741
                     flux: np.ndarray) -> np.ndarray:
    """Exact visibilities of point sources (slow, for tests): shape ``(nrow, nchan)``.

    Parameters
    ----------
    uvw
        ``(nrow, 3)`` baseline coordinates, metres (MS UVW column).
    freqs
        ``(nchan,)`` Hz.
    l, m
        Direction cosines of the sources.
    flux
        Flux densities, Jy.
    """
    l = np.asarray(l, dtype=float)  # noqa: E741
    m = np.asarray(m, dtype=float)
    n1 = np.sqrt(1.0 - l**2 - m**2) - 1.0
    out = np.zeros((len(uvw), len(freqs)), dtype=np.complex128)
    path = uvw[:, 0:1] * l + uvw[:, 1:2] * m + uvw[:, 2:3] * n1  # (nrow, nsrc), metres
    for c, f in enumerate(np.asarray(freqs, dtype=float)):
        out[:, c] = np.exp(2j * np.pi * path * (f / SPEED_OF_LIGHT)) @ np.asarray(flux, float)
    return out


def model_image(x: np.ndarray, y: np.ndarray, flux: np.ndarray, size: int, *,
                major: np.ndarray | None = None, minor: np.ndarray | None = None,
                pa: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
    """ducc0's model array for sources at integer pixels: ``model[x, y] = flux`` (image.T).

    Sources with a ``major`` FWHM above 0 (arcsec, with ``minor`` and the position angle ``pa``
    in degrees North through East; ``scale`` the pixel size in arcsec) are elliptical Gaussians
    sampled at the pixel centres out to 4 sigma and scaled to sum to their ``flux``; the others,
    and all when ``major`` is None, are points.
    """
    model = np.zeros((size, size), dtype=np.float64)
    x, y = np.asarray(x, dtype=int), np.asarray(y, dtype=int)
    flux = np.asarray(flux, dtype=np.float64)
    resolved = np.zeros(len(x), bool) if major is None else np.asarray(major) > 0
    np.add.at(model, (x[~resolved], y[~resolved]), flux[~resolved])
    for i in np.flatnonzero(resolved):
        s_maj = major[i] * FWHM_TO_SIGMA / scale
        s_min = max(minor[i] * FWHM_TO_SIGMA / scale, 1e-3)
        half = int(math.ceil(4.0 * s_maj))
        xs = np.arange(max(x[i] - half, 0), min(x[i] + half, size - 1) + 1)
        ys = np.arange(max(y[i] - half, 0), min(y[i] + half, size - 1) + 1)
        dx, dy = np.meshgrid(xs - x[i], ys - y[i], indexing="ij")
        # RA grows to the left: East is -x, North +y; the major axis points along (-sin, cos).
        sin, cos = math.sin(math.radians(pa[i])), math.cos(math.radians(pa[i]))
        along, across = -dx * sin + dy * cos, dx * cos + dy * sin
        g = np.exp(-0.5 * ((along / s_maj) ** 2 + (across / s_min) ** 2))
        model[xs[0]:xs[-1] + 1, ys[0]:ys[-1] + 1] += flux[i] * g / g.sum()
    return model


def predict_point_sources(uvw: np.ndarray, freqs: np.ndarray, model: np.ndarray, scale: float, *,
                          threads: int = 1, epsilon: float = 1e-8) -> np.ndarray:
    """Visibilities ``(nrow, nchan)`` of a model from :func:`model_image`, with ducc0.

    Parameters
    ----------
    uvw
        ``(nrow, 3)`` metres.
    freqs
        ``(nchan,)`` Hz.
    model
        ``(size, size)`` array indexed ``[x, y]`` of image pixels, Jy.
    scale
        Pixel size, arcsec.
    threads
        ducc0 threads.
    epsilon
        ducc0's requested accuracy (relative, on the whole output).
    """
    from ducc0.wgridder.experimental import dirty2vis  # the simulation extra only

    return dirty2vis(uvw=np.ascontiguousarray(uvw, dtype=np.float64),
                     freq=np.ascontiguousarray(freqs, dtype=np.float64), dirty=model,
                     pixsize_x=scale * ARCSEC, pixsize_y=scale * ARCSEC, epsilon=epsilon,
                     do_wgridding=True, flip_u=False, flip_v=True, flip_w=False,
                     divide_by_n=False, nthreads=int(threads))


PHASE_TIMESCALE = 1800.0  # s: correlation time of the antenna phase errors


def antenna_phases(tab, phase_error_deg: float, rng: np.random.Generator,
                   timescale: float = PHASE_TIMESCALE) -> np.ndarray:
    """Per-row gain factors ``exp(i (phi_p - phi_q))`` of antenna-based phase errors.

    Each antenna's phase drifts as a stationary Gaussian (first-order autoregressive) process
    over the MS's integrations, ``phase_error_deg`` rms, with correlation time ``timescale``
    seconds: errors that calibration leaves change slowly, and slowly changing errors put a
    bright source's artefacts near it rather than spreading them over the image as noise.
    """
    times, t_index = np.unique(tab.getcol("TIME"), return_inverse=True)
    ant1, ant2 = tab.getcol("ANTENNA1"), tab.getcol("ANTENNA2")
    n_ant = int(max(ant1.max(), ant2.max())) + 1
    sigma = np.radians(phase_error_deg)
    phi = np.empty((len(times), n_ant))
    phi[0] = rng.normal(0.0, sigma, n_ant)
    for k in range(1, len(times)):
        rho = np.exp(-(times[k] - times[k - 1]) / timescale)
        phi[k] = rho * phi[k - 1] + np.sqrt(1.0 - rho**2) * rng.normal(0.0, sigma, n_ant)
    return np.exp(1j * (phi[t_index, ant1] - phi[t_index, ant2]))


def fill_ms(path: str | os.PathLike, sky: PointSky, *, size: int, scale: float, sigma: float,
            rng: np.random.Generator, threads: int = 1, max_samples: int = 4_000_000,
            phase_error: float = 0.0, gain_rng: np.random.Generator | None = None,
            diffuse: tuple[int, int, float, float] | None = None) -> None:
    """Write DATA = sky + thermal noise, and SIGMA/WEIGHT, into a Measurement Set.

    XX and YY carry the Stokes I flux (an unpolarised source: I = (XX + YY) / 2), XY and YX none;
    every correlation gets independent noise of ``sigma`` (re and im). ``phase_error`` (degrees
    rms, 0: none) corrupts the sky's visibilities, not the noise, with antenna-based phase errors
    drawn by ``gain_rng`` (:func:`antenna_phases`): what calibration leaves, which a bright
    source spreads over the image as artefacts. ``diffuse`` (x, y, flux in Jy, FWHM in arcsec)
    adds a round Gaussian of diffuse emission to the sky that is not one of its sources. Rows
    are processed in chunks of at most ``max_samples`` row x channel samples (about 64 bytes
    each in memory).
    """
    from casacore.tables import table

    from radiofind.simulation.ms import ms_frequencies

    freqs = ms_frequencies(path)
    model = model_image(sky.x, sky.y, sky.apparent_flux, size, major=sky.major,
                        minor=sky.minor, pa=sky.pa, scale=scale)
    if diffuse is not None:
        hx, hy, hflux, hfwhm = diffuse
        model += model_image([hx], [hy], [hflux], size, major=np.array([hfwhm]),
                             minor=np.array([hfwhm]), pa=np.zeros(1), scale=scale)
    with table(os.fspath(path), readonly=False, ack=False) as tab:
        nrow = tab.nrows()
        ncorr = tab.getcell("DATA", 0).shape[1]
        gains = antenna_phases(tab, phase_error, gain_rng) if phase_error else None
        step = max(1, max_samples // len(freqs))
        for start in range(0, nrow, step):
            n = min(step, nrow - start)
            uvw = tab.getcol("UVW", startrow=start, nrow=n)
            stokes_i = predict_point_sources(uvw, freqs, model, scale, threads=threads)
            if gains is not None:
                stokes_i = stokes_i * gains[start:start + n, None]
            data = np.zeros((n, len(freqs), ncorr), dtype=np.complex64)
            data[:, :, 0] = stokes_i
            data[:, :, ncorr - 1] = stokes_i
            add_thermal_noise(data, sigma, rng)
            sig, wgt = sigma_weight(sigma, (n, ncorr))
            tab.putcol("DATA", data, startrow=start, nrow=n)
            tab.putcol("SIGMA", sig, startrow=start, nrow=n)
            tab.putcol("WEIGHT", wgt, startrow=start, nrow=n)
            if "WEIGHT_SPECTRUM" in tab.colnames():
                tab.putcol("WEIGHT_SPECTRUM", np.broadcast_to(
                    wgt[:, None, :], data.shape).astype(np.float32), startrow=start, nrow=n)
            if "SIGMA_SPECTRUM" in tab.colnames():
                tab.putcol("SIGMA_SPECTRUM", np.broadcast_to(
                    sig[:, None, :], data.shape).astype(np.float32), startrow=start, nrow=n)
            log.debug("filled rows %d-%d of %d", start, start + n, nrow)
