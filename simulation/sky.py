"""The DeepSource point-source sky (Vafaei Sadr et al. 2019, section 2) on the output image grid.

Each source's SNR is drawn from ``snr_min + Exponential(snr_scale)`` (with the defaults 0.1 and 1.5,
45 % of the sources fall below SNR 1, as in the paper) and its flux is ``snr * flux_unit``, where
``flux_unit`` is the theoretical natural-weight image noise of the observation, so the drawn SNR is
the one the source would have in a natural-weight image with no other errors. Sources sit exactly
at integer pixel centres of the image WSClean will make (SIN projection about the pointing,
``CDELT1 = -scale``, 0-based pixel ``(size/2, size/2)`` on the pointing), so truth positions carry
no sub-pixel ambiguity; they avoid a source-free border (where the noise can be measured, as in the
paper) and each other by ``min_separation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.wcs import WCS

from radiofind.errors import RadiofindError


@dataclass
class PointSky:
    """Point sources on an image grid.

    Attributes
    ----------
    x, y
        0-based integer pixel positions (``data[y, x]``).
    ra, dec
        Their sky positions, degrees.
    snr
        Drawn SNR (flux over ``flux_unit``).
    flux
        Flux density, Jy.
    flux_unit
        The Jy value of SNR 1 (theoretical natural-weight image noise).
    gain
        Primary-beam power gain at each source (None: 1, no primary beam): the observed
        (apparent) flux is ``flux * gain``.
    major, minor, pa
        Elliptical Gaussian shapes (None: every source a point): FWHM of the major and minor
        axes in arcsec (0 for a point source) and the major axis's position angle in degrees,
        North through East. ``flux`` is then the integrated flux; the peak is lower.
    """

    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    snr: np.ndarray
    flux: np.ndarray
    flux_unit: float
    gain: np.ndarray | None = None
    major: np.ndarray | None = None
    minor: np.ndarray | None = None
    pa: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def apparent_flux(self) -> np.ndarray:
        """What the telescope sees: ``flux`` times the primary beam's gain."""
        return self.flux if self.gain is None else self.flux * self.gain

    def with_flux_unit(self, flux_unit: float) -> PointSky:
        """The same sources with ``flux = snr * flux_unit``."""
        return replace(self, flux=self.snr * flux_unit, flux_unit=float(flux_unit))


def _parse_angle(text: str | float, what: str, sexagesimal_unit: u.Unit) -> float:
    """Degrees from a number (degrees) or a string with units ('03h20m00s', '-20d00m00s').

    Colon-separated strings without units are read in ``sexagesimal_unit`` (hours for RA).
    """
    try:
        return float(text)
    except (TypeError, ValueError):
        pass
    text = str(text).strip()
    try:
        try:
            angle = Angle(text)
        except u.UnitsError:
            angle = Angle(text, unit=sexagesimal_unit)
        return float(angle.to_value(u.deg))
    except (ValueError, u.UnitsError) as err:
        raise RadiofindError(
            f"cannot read {what} {text!r}: give degrees (50.0) or sexagesimal with units "
            f"(03h20m00s, -20d00m00s) ({err})") from None


def parse_pointing(ra: str | float, dec: str | float) -> tuple[float, float]:
    """Pointing (RA, Dec) in degrees from numbers or sexagesimal strings.

    Raises
    ------
    RadiofindError
        Unreadable values, or Dec outside [-90, 90].
    """
    ra_deg = _parse_angle(ra, "RA", u.hourangle)
    dec_deg = _parse_angle(dec, "Dec", u.deg)
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        raise RadiofindError(f"pointing must be finite, got RA={ra!r} Dec={dec!r}")
    if not -90.0 <= dec_deg <= 90.0:
        raise RadiofindError(f"Dec must lie in [-90, 90] degrees, got {dec_deg:g}")
    return ra_deg % 360.0, dec_deg


def image_wcs(ra_deg: float, dec_deg: float, size: int, scale_arcsec: float) -> WCS:
    """The celestial WCS of a WSClean ``-size size size -scale scale`` image of this pointing."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [size // 2 + 1, size // 2 + 1]  # FITS is 1-based: 0-based size/2
    wcs.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "FK5"
    wcs.wcs.equinox = 2000.0
    return wcs


def offset_deg(x, y, size: int, scale_arcsec: float) -> np.ndarray:
    """Angular distance from the pointing of 0-based pixels (x, y) of an :func:`image_wcs` grid,
    degrees: in the SIN projection the pixel offset is the sine of that distance."""
    dx = np.asarray(x, dtype=np.float64) - size // 2
    dy = np.asarray(y, dtype=np.float64) - size // 2
    sin_rho = np.hypot(dx, dy) * math.radians(scale_arcsec / 3600.0)
    return np.degrees(np.arcsin(np.minimum(sin_rho, 1.0)))


def draw_point_sources(n_sources: int, *, wcs: WCS, size: int, scale: float, flux_unit: float,
                       snr_min: float = 0.1, snr_scale: float = 1.5, border: float = 0.1,
                       min_separation: float = 40.0, seed: int = 1,
                       max_rejections: int = 200_000) -> PointSky:
    """Draw a DeepSource point-source sky.

    Parameters
    ----------
    n_sources
        Number of sources.
    wcs
        The image grid (see :func:`image_wcs`), for RA/Dec.
    size
        Image size in pixels (square).
    scale
        Pixel size, arcsec.
    flux_unit
        Flux density of SNR 1, Jy.
    snr_min, snr_scale
        SNR = ``snr_min + Exponential(snr_scale)``.
    border
        Source-free border on each side, as a fraction of ``size``.
    min_separation
        Minimum distance between sources, arcsec (measured on the pixel grid; the SIN projection
        distorts it by less than 1e-4 over a degree).
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same sky.
    max_rejections
        Give up after this many consecutive rejected positions.

    Raises
    ------
    RadiofindError
        When ``n_sources`` cannot be placed with this separation inside the border.
    """
    rng = np.random.default_rng(seed)
    snr = snr_min + rng.exponential(snr_scale, n_sources)
    lo = int(math.ceil(border * size))
    hi = size - 1 - lo  # inclusive
    if hi < lo:
        raise RadiofindError(
            f"border {border:g} leaves no room for sources in a {size}-pixel image")
    # Two sources on one pixel would be one source: at least one pixel apart whatever is asked.
    sep = max(min_separation / scale, 1.0)
    side = hi - lo + 1
    # Densest packing of discs of diameter sep (hexagonal), generous at the edges.
    capacity = (side + sep) ** 2 / (math.sqrt(3) / 2 * sep**2)
    if n_sources > capacity:
        raise RadiofindError(
            f"cannot place {n_sources} sources {min_separation:g} arcsec apart in the "
            f"{side * scale / 60:.1f}' square inside the border (at most ~{int(capacity)}): lower "
            "n_sources, min_separation or border, or enlarge size/scale")
    xs, ys = _place(rng, n_sources, lo, hi, sep, max_rejections)
    if len(xs) < n_sources:
        raise RadiofindError(
            f"placed only {len(xs)} of {n_sources} sources {min_separation:g} arcsec apart inside "
            f"the border after {max_rejections} rejected tries: lower n_sources, min_separation or "
            "border, or enlarge size/scale")
    x, y = np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)
    ra, dec = wcs.all_pix2world(x.astype(float), y.astype(float), 0)
    return PointSky(x=x, y=y, ra=np.asarray(ra) % 360.0, dec=np.asarray(dec), snr=snr,
                    flux=snr * flux_unit, flux_unit=float(flux_unit))


def add_bright_source(sky: PointSky, snr: float, *, wcs: WCS, size: int, scale: float,
                      border: float = 0.1, min_separation: float = 40.0, seed: int = 1,
                      max_tries: int = 100_000) -> PointSky:
    """``sky`` with one more source of SNR ``snr``, appended last, at a seeded free position.

    The position is drawn inside the border, at least ``min_separation`` from every source, by a
    generator of its own (``default_rng([seed, 2])``), so the other sources are exactly those
    :func:`draw_point_sources` gives for ``seed`` without it.

    Raises
    ------
    RadiofindError
        When no free position is found in ``max_tries`` draws.
    """
    rng = np.random.default_rng([seed, 2])
    lo = int(math.ceil(border * size))
    hi = size - 1 - lo
    sep2 = max(min_separation / scale, 1.0) ** 2
    for _ in range(max(1, max_tries // 256)):
        cand = rng.integers(lo, hi + 1, size=(256, 2))
        free = np.ones(len(cand), dtype=bool)
        if len(sky):
            d2 = ((cand[:, :1] - sky.x[None, :]) ** 2 + (cand[:, 1:] - sky.y[None, :]) ** 2)
            free = (d2 >= sep2).all(axis=1)
        if free.any():
            cx, cy = (int(v) for v in cand[np.argmax(free)])
            break
    else:
        raise RadiofindError(
            f"no room for the bright source {min_separation:g} arcsec from the other sources "
            "inside the border: lower n_sources or min_separation, or enlarge size/scale")
    ra, dec = wcs.all_pix2world([float(cx)], [float(cy)], 0)
    return PointSky(x=np.append(sky.x, cx).astype(np.int64),
                    y=np.append(sky.y, cy).astype(np.int64),
                    ra=np.append(sky.ra, np.asarray(ra) % 360.0), dec=np.append(sky.dec, dec),
                    snr=np.append(sky.snr, float(snr)),
                    flux=np.append(sky.flux, float(snr) * sky.flux_unit),
                    flux_unit=sky.flux_unit,
                    **{k: None if getattr(sky, k) is None else np.append(getattr(sky, k), 0.0)
                       for k in ("major", "minor", "pa")})


RESOLVED_AXIS_RATIO = (0.3, 1.0)  # minor / major of resolved sources, drawn uniformly
RESOLVED_FWHM = (3.0, 12.0)  # arcsec: simulate's default range of their major axes


def make_resolved(sky: PointSky, fraction: float, fwhm: tuple[float, float], *,
                  seed: int = 1) -> PointSky:
    """``sky`` with a random ``fraction`` of its sources made elliptical Gaussians.

    Each chosen source keeps its position and its flux, now integrated over the Gaussian: its
    major-axis FWHM is drawn uniformly in ``fwhm`` (arcsec), its axis ratio uniformly in
    :data:`RESOLVED_AXIS_RATIO` and its position angle uniformly, by a generator of its own
    (``default_rng([seed, 4])``), so the sky is otherwise that of ``seed``.
    """
    rng = np.random.default_rng([seed, 4])
    n = len(sky)
    pick = rng.choice(n, size=int(round(fraction * n)), replace=False)
    major, minor, pa = np.zeros(n), np.zeros(n), np.zeros(n)
    major[pick] = rng.uniform(fwhm[0], fwhm[1], len(pick))
    minor[pick] = major[pick] * rng.uniform(*RESOLVED_AXIS_RATIO, len(pick))
    pa[pick] = rng.uniform(0.0, 180.0, len(pick))
    return replace(sky, major=major, minor=minor, pa=pa)


def _place(rng: np.random.Generator, n: int, lo: int, hi: int, sep: float,
           max_rejections: int) -> tuple[list[int], list[int]]:
    """Random sequential placement with a cell grid (cells of side ``sep``) for neighbour checks."""
    xs: list[int] = []
    ys: list[int] = []
    cells: dict[tuple[int, int], list[int]] = {}
    sep2 = sep * sep
    rejections = 0
    batch = max(64, 2 * n)
    while len(xs) < n and rejections < max_rejections:
        cand = rng.integers(lo, hi + 1, size=(batch, 2))
        for cx, cy in cand.tolist():
            key = (int(cx // sep), int(cy // sep))
            clash = False
            for i in range(key[0] - 1, key[0] + 2):
                for j in range(key[1] - 1, key[1] + 2):
                    for k in cells.get((i, j), ()):
                        if (xs[k] - cx) ** 2 + (ys[k] - cy) ** 2 < sep2:
                            clash = True
                            break
                    if clash:
                        break
                if clash:
                    break
            if clash:
                rejections += 1
                if rejections >= max_rejections:
                    break
                continue
            rejections = 0
            cells.setdefault(key, []).append(len(xs))
            xs.append(cx)
            ys.append(cy)
            if len(xs) == n:
                break
    return xs, ys
