"""Integrated flux densities and sizes of detections: an elliptical Gaussian fitted at each.

The network finds sources and detect places each on its image peak, whose value (``peak``, in
the image's units, Jy/beam) is a point source's flux density. A resolved source spreads its
flux over more than a beam and peaks lower: for the catalogue's ``total_flux``, ``maj``, ``min``
and ``pa``, detect fits an elliptical Gaussian to the image around every detection of SNR at
least :data:`FIT_SNR` (fainter ones get NaN: noise makes their fitted sizes meaningless; their
``peak`` is the flux density of a point source).

The fit is Guo's (2011) weighted least squares of ``ln I`` on a quadratic in the pixel offsets,
which a Gaussian's logarithm is, iterated :data:`FIT_ITERATIONS` times with the weights the
squared model (Caruana's fit weighted by the data squared to start with), on the pixels within
:data:`FIT_RADIUS_BEAMS` beam (FWHM) of the detection that read at least :data:`FIT_LEVEL` of
its peak and :data:`FIT_NOISE` times the noise, and no more than the peak (a brighter
neighbour's pixels are left out). Sources much larger than the beam (beyond ~1.5 beams) are
fitted on their core alone. Oversampled
beams are read every few pixels (:data:`SAMPLES_PER_BEAM` samples across the beam's FWHM). It
is linear algebra on moments shared by every window, so a catalogue of any size is fitted in
batches of whole arrays, no optimiser per source.

From the fitted Gaussian (amplitude A, covariance C in pixels, taken through the WCS to arcsec on
the sky): ``maj``, ``min`` are its FWHMs (arcsec), ``pa`` its major axis' position angle (degrees
North through East, 0-180), and ``total_flux = A sqrt(det C) / (sigma_bmaj sigma_bmin)`` (the
integral of the image over the beam's area: the flux density for an image in Jy/beam). These are
the fitted (not deconvolved) sizes: a point source reads the beam's. ``total_flux_err`` is
Condon's (1997) one-sigma error of that integral (:func:`condon_flux_error`).

Measured by ``benchmarks/photometry.py`` against the truth (README, "Flux densities").
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from radiofind.io.images import FWHM_TO_SIGMA

COLUMNS = ("total_flux", "total_flux_err", "maj", "min", "pa")  # what the catalogue gets
FIT_SNR = 5.0  # detections at least this bright (catalogue SNR) are fitted
FIT_LEVEL = 0.3  # pixels at least this fraction of the detection's peak are fitted,
FIT_NOISE = 3.0  # and at least this many times the noise (else noise peaks join the fit)
FIT_RADIUS_BEAMS = 1.0  # the fitted window's radius, in beams (geometric FWHM), plus a pixel
FIT_ITERATIONS = 3  # Guo's reweighting
SAMPLES_PER_BEAM = 6  # oversampled beams are read every few pixels: this many across the FWHM
FIT_BATCH = 1 << 19  # window pixels (detections x pixels per window) fitted at once (memory)


def window_offsets(beam_pixels: float, radius_beams: float = FIT_RADIUS_BEAMS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The pixel offsets (dx, dy) of a fitting window: a disc of ``radius_beams`` beams and a
    pixel, every ``step`` pixels (1 unless the beam spans more than :data:`SAMPLES_PER_BEAM`)."""
    step = max(1, int(beam_pixels // SAMPLES_PER_BEAM))
    radius = radius_beams * beam_pixels + 1.0
    r = int(math.ceil(radius / step)) * step
    off = np.arange(-r, r + 1, step)
    dy, dx = np.meshgrid(off, off, indexing="ij")
    disc = (dx**2 + dy**2 <= radius**2).ravel()
    return dx.ravel()[disc], dy.ravel()[disc]


def gaussian_fits(pixels, x: np.ndarray, y: np.ndarray, noise, beam_pixels: float, *,
                  level: float = FIT_LEVEL, noise_level: float = FIT_NOISE,
                  radius_beams: float = FIT_RADIUS_BEAMS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elliptical Gaussians fitted to ``pixels`` (numpy, dask or memory map) around pixel
    positions (x, y) where the noise is ``noise`` (one value, or one per position): amplitude,
    centre offset from (x, y) rounded (pixels, shape (n, 2)) and covariance (pixels², (n, 2,
    2)). NaN where the fit is not a peak (a window too sparse, or a quadratic that does not
    curve down both ways). ``level``, ``noise_level`` and ``radius_beams``: the module's
    settings (:data:`FIT_LEVEL`, ...), for their search."""
    from radiofind.detect.positions import _gather

    x, y = np.asarray(x, float), np.asarray(y, float)
    noise = np.broadcast_to(np.asarray(noise, float), x.shape)
    n = x.size
    amp, centre, cov = np.full(n, np.nan), np.full((n, 2), np.nan), np.full((n, 2, 2), np.nan)
    if not n:
        return amp, centre, cov
    dx, dy = window_offsets(beam_pixels, radius_beams)
    # ln I = c0 + c1 dx + c2 dy + c3 dx² + c4 dx dy + c5 dy², on offsets every window shares.
    basis = np.stack([np.ones(dx.size), dx, dy, dx * dx, dx * dy, dy * dy], axis=1).astype(float)
    outer = np.einsum("pi,pj->pij", basis, basis).reshape(dx.size, 36)
    ny, nx = pixels.shape
    batch = max(1, FIT_BATCH // dx.size)
    for start in range(0, n, batch):
        sl = slice(start, start + batch)
        xi, yi = np.rint(x[sl]).astype(np.int64), np.rint(y[sl]).astype(np.int64)
        wx, wy = xi[:, None] + dx, yi[:, None] + dy
        inside = (wx >= 0) & (wx < nx) & (wy >= 0) & (wy < ny)
        values = _gather(pixels, np.clip(wy, 0, ny - 1), np.clip(wx, 0, nx - 1))
        values = np.where(inside, values, np.nan)
        # The peak: the window's centre pixel or a neighbour (every window holds its centre).
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a window off the image
            top = np.nanmax(np.where(np.abs(dx) + np.abs(dy) <= 1, values, np.nan), axis=1)
        floor = np.fmax(level * top, noise_level * noise[sl])
        with np.errstate(invalid="ignore"):
            use = (values >= floor[:, None]) & (values <= top[:, None]) & (top[:, None] > 0)
        log_v = np.log(np.where(use, values, 1.0))
        weight = np.where(use, values, 0.0) ** 2
        coef = np.full((values.shape[0], 6), np.nan)
        for _ in range(FIT_ITERATIONS):
            normal = (weight @ outer).reshape(-1, 6, 6)
            rhs = (weight * log_v) @ basis
            good = (use.sum(axis=1) >= 6) & (np.linalg.cond(normal) < 1e12)
            coef[:] = np.nan
            coef[good] = np.linalg.solve(normal[good], rhs[good][..., None])[..., 0]
            model = np.exp(np.clip(np.nan_to_num(coef @ basis.T, nan=-50.0), -50.0, 50.0))
            weight = np.where(use, model, 0.0) ** 2
        # The quadratic form's matrix is -inv(C) / 2: Q = inv(C).
        q = -2.0 * np.stack([np.stack([coef[:, 3], coef[:, 4] / 2], -1),
                             np.stack([coef[:, 4] / 2, coef[:, 5]], -1)], -2)
        with np.errstate(invalid="ignore"):
            peak_ok = np.isfinite(q).all(axis=(1, 2)) & (q[:, 0, 0] > 0) \
                & (q[:, 0, 0] * q[:, 1, 1] - q[:, 0, 1] ** 2 > 0)
        c = np.full(q.shape, np.nan)
        c[peak_ok] = np.linalg.inv(q[peak_ok])
        mu = np.einsum("nij,nj->ni", c, coef[:, 1:3])
        a = np.exp(coef[:, 0] + 0.5 * np.einsum("ni,nij,nj->n", mu, q, mu))
        # A centre beyond the window is no fit of this detection's source.
        far = ~(np.hypot(mu[:, 0], mu[:, 1]) <= radius_beams * beam_pixels)
        a[far | ~peak_ok], mu[far | ~peak_ok], c[far | ~peak_ok] = np.nan, np.nan, np.nan
        amp[sl], centre[sl], cov[sl] = a, mu, c
    return amp, centre, cov


def flux_and_shape(image, x: np.ndarray, y: np.ndarray, snr: np.ndarray, noise,
                   **settings) -> dict[str, np.ndarray]:
    """The catalogue's ``total_flux``, ``maj``, ``min`` (FWHM, arcsec) and ``pa`` (degrees
    North through East) for detections at pixel positions (x, y) of ``image`` with SNRs
    ``snr`` against ``noise`` (one value or one per detection): the Gaussian fits of those at
    least :data:`FIT_SNR` bright, NaN for the others (``settings``: :func:`gaussian_fits`')."""
    from radiofind.detect.positions import sky_jacobian

    x, y, snr = (np.asarray(v, float) for v in (x, y, snr))
    noise = np.broadcast_to(np.asarray(noise, float), x.shape)
    out = {k: np.full(x.shape, np.nan) for k in COLUMNS}
    fit = np.flatnonzero(snr >= FIT_SNR)
    if not fit.size:
        return out
    amp, centre, cov = gaussian_fits(image.pixels, x[fit], y[fit], noise[fit],
                                     image.beam_pixels, **settings)
    jac = sky_jacobian(image, np.rint(x[fit]) + centre[:, 0], np.rint(y[fit]) + centre[:, 1])
    sky = np.einsum("nij,njk,nlk->nil", jac, cov, jac)  # arcsec², (east, north)
    ok = np.isfinite(sky).all(axis=(1, 2))
    eig, vec = np.full((fit.size, 2), np.nan), np.full((fit.size, 2, 2), np.nan)
    eig[ok], vec[ok] = np.linalg.eigh(sky[ok])  # ascending: the major axis last
    beam = image.beam
    sigma_beam2 = (beam.bmaj * 3600 * FWHM_TO_SIGMA) * (beam.bmin * 3600 * FWHM_TO_SIGMA)
    with np.errstate(invalid="ignore"):
        out["total_flux"][fit] = amp * np.sqrt(np.linalg.det(sky)) / sigma_beam2
        out["maj"][fit] = np.sqrt(eig[:, 1]) / FWHM_TO_SIGMA
        out["min"][fit] = np.sqrt(eig[:, 0]) / FWHM_TO_SIGMA
        out["pa"][fit] = np.degrees(np.arctan2(vec[:, 0, 1], vec[:, 1, 1])) % 180.0
        out["total_flux_err"][fit] = out["total_flux"][fit] * condon_flux_error(
            amp / noise[fit], out["maj"][fit], out["min"][fit],
            3600.0 * math.sqrt(beam.bmaj * beam.bmin))
    return out


def condon_flux_error(snr, maj, minor, noise_fwhm):
    """The relative one-sigma error of a fitted Gaussian's integrated flux density (Condon 1997,
    eqs. 21 and 41): from the errors of its amplitude (of SNR ``snr``) and of its FWHMs ``maj``,
    ``minor``, in noise correlated over ``noise_fwhm`` (the beam; any one unit of angle)."""
    snr, maj, minor = (np.asarray(v, float) for v in (snr, maj, minor))

    def rho2(a_major: float, a_minor: float):
        return (maj * minor / (4.0 * noise_fwhm**2) * (1 + (noise_fwhm / maj) ** 2) ** a_major
                * (1 + (noise_fwhm / minor) ** 2) ** a_minor * snr**2)

    with np.errstate(invalid="ignore", divide="ignore"):
        amp2 = 2.0 / rho2(1.5, 1.5)
        major2, minor2 = 2.0 / rho2(2.5, 0.5), 2.0 / rho2(0.5, 2.5)
        return np.sqrt(amp2 + noise_fwhm**2 / (maj * minor) * (major2 + minor2))
