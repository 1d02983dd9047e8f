"""Read radio images (FITS or CASA) into one 2-D form; write maps that keep the input's WCS.

Radio images usually carry degenerate frequency and Stokes axes; these are squeezed so every part of
radiofind sees a 2-D celestial image with a restoring beam. What cannot be used (no celestial WCS,
no beam, no finite pixels, more than one plane) is refused here with a clear message.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from radiofind.errors import RadiofindError

# Header keywords carried from the input to derived 2-D maps (beam, telescope, WSClean settings).
_CARRIED = ("BMAJ", "BMIN", "BPA", "BUNIT", "TELESCOP", "OBJECT", "DATE-OBS", "EQUINOX", "RADESYS",
            "RESTFRQ", "CRVAL3", "WSCWEIGH", "WSCNITER", "WSCTHRES", "WSCGAIN", "WSCMGAIN")


@dataclass
class Beam:
    """Restoring beam, all angles in degrees."""

    bmaj: float
    bmin: float
    bpa: float = 0.0

    @property
    def size_deg(self) -> float:
        """Beam size sqrt(BMAJ * BMIN) (DeepSource eq. 1), degrees."""
        return float(np.sqrt(self.bmaj * self.bmin))


@dataclass
class Image:
    """A 2-D celestial image: ``data[y, x]``, its WCS, beam and header."""

    data: np.ndarray
    wcs: WCS
    beam: Beam
    header: fits.Header
    path: str = ""

    @property
    def pixel_scale_deg(self) -> float:
        """Pixel size (geometric mean of the two axes), degrees."""
        scales = np.abs(np.diag(self.wcs.pixel_scale_matrix))
        return float(np.sqrt(scales[0] * scales[1]))

    @property
    def beam_pixels(self) -> float:
        """Beam size sqrt(BMAJ * BMIN) in pixels."""
        return self.beam.size_deg / self.pixel_scale_deg

    @property
    def frequency(self) -> float | None:
        """Observing frequency in Hz from the squeezed frequency axis or RESTFRQ, if known."""
        for key in ("FREQ", "RESTFRQ", "RESTFREQ"):
            if self.header.get(key):
                return float(self.header[key])
        return None

    @property
    def telescope(self) -> str:
        return str(self.header.get("TELESCOP", "")).strip()

    def pixel_to_world(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel (x, y) -> (RA, Dec) in degrees."""
        ra, dec = self.wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(ra) % 360.0, np.asarray(dec)

    def world_to_pixel(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """(RA, Dec) in degrees -> 0-based pixel (x, y)."""
        x, y = self.wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
        return np.asarray(x), np.asarray(y)


def read_image(path: str | os.PathLike, *, require_beam: bool = True) -> Image:
    """Read a FITS file or a CASA image as a 2-D :class:`Image`.

    Parameters
    ----------
    path
        FITS file or CASA image directory.
    require_beam
        Refuse images without BMAJ/BMIN (every detector needs the beam).

    Raises
    ------
    RadiofindError
        Missing file, not an image, no celestial WCS, no beam, several planes, all pixels blank.
    """
    path = str(path)
    if not os.path.exists(path):
        raise RadiofindError(f"no such file: {path}")
    if os.path.isdir(path):
        data, header = _read_casa(path)
    else:
        data, header = _read_fits(path)
    return _to_image(data, header, path, require_beam=require_beam)


def _read_fits(path: str) -> tuple[np.ndarray, fits.Header]:
    try:
        with fits.open(path, memmap=True) as hdul:
            for hdu in hdul:
                if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2 and hdu.data is not None:
                    return np.asarray(hdu.data), hdu.header.copy()
    except (OSError, ValueError, TypeError) as err:
        raise RadiofindError(f"{path} is not a readable FITS image ({err})") from None
    raise RadiofindError(f"{path} holds no image (no HDU with two or more axes)")


def _read_casa(path: str) -> tuple[np.ndarray, fits.Header]:
    # python-casacore is imported here only: FITS-only users never pay for it.
    try:
        from casacore.images import image as casa_image
    except ImportError as err:  # pragma: no cover - python-casacore is a hard dependency
        raise RadiofindError(f"reading CASA images needs python-casacore ({err})") from None
    try:
        im = casa_image(path)
    except RuntimeError as err:
        raise RadiofindError(
            f"{path} is not a readable CASA image ({str(err).splitlines()[0]})"
        ) from None
    # casacore's own FITS writer converts the coordinate system and beam exactly; the temporary
    # FITS file is the simplest faithful route to an astropy WCS.
    with tempfile.TemporaryDirectory(prefix="radiofind-casa-") as tmp:
        fitsname = os.path.join(tmp, "image.fits")
        im.tofits(fitsname, velocity=False)
        with fits.open(fitsname) as hdul:
            return np.array(hdul[0].data), hdul[0].header.copy()


def _to_image(data: np.ndarray, header: fits.Header, path: str, *, require_beam: bool) -> Image:
    naxis = header.get("NAXIS", data.ndim)
    # Squeeze degenerate axes (frequency, Stokes) and refuse genuine cubes.
    extra = [i for i in range(3, naxis + 1) if header.get(f"NAXIS{i}", 1) > 1]
    if extra:
        raise RadiofindError(
            f"{path} has {naxis} axes with more than one plane on axis {extra[0]}; "
            "pass a single-plane (2-D) image")
    data = np.asarray(data).reshape(header["NAXIS2"], header["NAXIS1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception as err:  # astropy raises several types for broken WCS headers
            raise RadiofindError(f"{path} has an unusable WCS ({err})") from None
    if not wcs.has_celestial or wcs.celestial.naxis != 2 or "" in wcs.wcs.ctype:
        raise RadiofindError(f"{path} has no celestial WCS "
                             "(need RA/Dec axes: CTYPE1/2, CRVAL, CDELT)")
    if require_beam and not (header.get("BMAJ") and header.get("BMIN")):
        raise RadiofindError(f"{path} has no restoring beam (BMAJ/BMIN header keywords)")
    beam = Beam(float(header.get("BMAJ", 0.0)), float(header.get("BMIN", 0.0)),
                float(header.get("BPA", 0.0)))
    data = data.astype(np.float32, copy=False)
    if not np.isfinite(data).any():
        raise RadiofindError(f"{path} has no finite pixels (all NaN/blank)")
    out = wcs.to_header()
    # The squeezed frequency axis still matters (PyBDSF needs it; models record it).
    for i in range(3, naxis + 1):
        if str(header.get(f"CTYPE{i}", "")).upper().startswith("FREQ"):
            out["FREQ"] = (float(header[f"CRVAL{i}"]), "[Hz] frequency of the squeezed axis")
    for key in _CARRIED:
        if key in header and key not in out:
            out[key] = header[key]
    return Image(data=data, wcs=wcs, beam=beam, header=out, path=path)


def write_fits_to(path: str | os.PathLike, data: np.ndarray, like: Image,
                  extra: dict | None = None) -> None:
    """Write a 2-D map with the WCS, beam and telescope keywords of ``like``.

    ``path`` is a staged path (see :mod:`radiofind.io.outputs`), which makes the write atomic.
    """
    header = like.header.copy()
    for key, value in (extra or {}).items():
        header[key] = value
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(path)
