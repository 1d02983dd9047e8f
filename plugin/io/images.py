"""Read radio images (FITS or CASA) into one 2-D form; write maps that keep the input's WCS.

Radio images usually carry degenerate frequency and Stokes axes; these are squeezed so every part of
radiofind sees a 2-D celestial image with a restoring beam. What cannot be used (no celestial WCS,
no beam, no finite pixels, more than one plane) is refused here with a clear message.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from radiofind.errors import RadiofindError

# Block size (pixels a side) for reading, the network and blob detection; memory per running block
# is set by it (see radiofind.detect.inference).
DEFAULT_CHUNK = 1024

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


FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # a Gaussian's


@dataclass
class Image:
    """A 2-D celestial image: ``data[y, x]``, its WCS, beam and header.

    ``data`` is a numpy array (:func:`read_image`) or a lazy dask array (:func:`open_image`).
    """

    data: Any
    wcs: WCS
    beam: Beam
    header: fits.Header
    path: str = ""
    # A reader of the file that reads scattered pixels by themselves (a memory map): see pixels.
    points: Any = None

    @property
    def pixels(self):
        """The pixels to read scattered values from (catalogue peaks, windows around
        detections): the memory-mapped file where the image has one, so that only the pages
        holding them are read (a dask array reads every block they fall in: on a 32768² image,
        the whole 4.3 GB for each gather), else ``data``."""
        return self.data if self.points is None else self.points

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
    """Read a FITS file or a CASA image as a 2-D :class:`Image` held in memory.

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
    img = open_image(path, require_beam=require_beam, chunk=None)
    img.data = np.asarray(img.data[:, :])
    if not np.isfinite(img.data).any():
        raise RadiofindError(f"{img.path} has no finite pixels (all NaN/blank)")
    return img


def check_another(other: str | os.PathLike, image: str | os.PathLike, option: str) -> None:
    """Refuse ``option`` (an image of the field to help search ``image``) naming ``image``."""
    if os.path.realpath(other) == os.path.realpath(image):
        raise RadiofindError(f"{option} must be another image of the field, not the one "
                             "searched")


def open_image(path: str | os.PathLike, *, require_beam: bool = True,
               chunk: int | None = DEFAULT_CHUNK) -> Image:
    """Open a FITS file or CASA image without reading its pixels.

    ``data`` is a dask array of ``chunk`` x ``chunk`` blocks (or, with ``chunk=None``, the plane
    reader itself, to slice directly). Blocks are read on demand: FITS by a memory map (or astropy's
    ``section`` for scaled/compressed data), CASA images by python-casacore slices, so an image
    of any size is read in bounded memory. Readers hold only the path, so the array can be sent
    to dask.distributed workers that share the filesystem.
    """
    path = str(path)
    if not os.path.exists(path):
        raise RadiofindError(f"no such file: {path}")
    reader = CasaPlane(path) if os.path.isdir(path) else FitsPlane(path)
    img = _to_image(reader, reader.header, path, require_beam=require_beam)
    if chunk is not None:
        import dask.array as da

        img.data = da.from_array(reader, chunks=(chunk, chunk), lock=False, asarray=False,
                                 meta=np.empty((0, 0), dtype=np.float32),
                                 name=f"radiofind-image-{reader.token}")
        if reader.pointwise:
            img.points = reader
    return img


class _Plane:
    """A 2-D plane of an image file, sliced like a numpy array (``plane[y0:y1, x0:x1]``).

    Degenerate leading axes (frequency, Stokes) are indexed at 0; pixels come back as float32.
    """

    header: fits.Header
    full_shape: tuple[int, ...]
    dtype = np.dtype(np.float32)
    ndim = 2
    pointwise = False  # reads scattered pixels (index arrays) touching only their own pages

    @property
    def shape(self) -> tuple[int, int]:
        return self.full_shape[-2], self.full_shape[-1]

    @property
    def token(self) -> str:
        st = os.stat(self.path)
        return f"{abs(hash((os.path.abspath(self.path), st.st_mtime_ns, st.st_size))):x}"

    def _key(self, key) -> tuple:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        return (0,) * (len(self.full_shape) - 2) + key

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self._read(self._key(key)), dtype=np.float32)


class FitsPlane(_Plane):
    """The first image HDU of a FITS file, read by memory map (or ``section``) per slice."""

    def __init__(self, path: str):
        self.path = path
        try:
            with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
                for index, hdu in enumerate(hdul):
                    if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                        header = hdu.header.copy()
                        self.hdu_index = index
                        self.offset = hdul.fileinfo(index)["datLoc"]
                        compressed = isinstance(hdu, fits.CompImageHDU)
                        break
                else:
                    raise RadiofindError(f"{path} holds no image (no HDU with two or more axes)")
        except (OSError, ValueError, TypeError, IndexError) as err:
            raise RadiofindError(f"{path} is not a readable FITS image ({err})") from None
        self.header = header
        naxis = header["NAXIS"]
        self.full_shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        bitpix = header["BITPIX"]
        scaled = header.get("BSCALE", 1) != 1 or header.get("BZERO", 0) != 0
        # Plain float data: memory-map it directly; anything else through astropy's section.
        plain = not (scaled or compressed)
        self.raw_dtype = {-32: ">f4", -64: ">f8"}.get(bitpix) if plain else None
        self.pointwise = self.raw_dtype is not None

    def _read(self, key):
        if self.raw_dtype is not None:
            if isinstance(key[-1], np.ndarray):
                return self._read_points(key)
            mm = np.memmap(self.path, dtype=self.raw_dtype, mode="r", offset=self.offset,
                           shape=self.full_shape)
            try:
                return np.array(mm[key], dtype=np.float32)
            finally:
                del mm
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
            return np.array(hdul[self.hdu_index].section[key], dtype=np.float32)

    def _read_points(self, key, band_bytes: int = 64 * 2**20):
        """Scattered pixels ``key`` = (0, ..., iy, ix), integer arrays of one shape, by bands
        of rows each mapped alone: the pages a map has touched count in the process's memory
        until it is unmapped (one map for all of 1.4 M window pixels on a 32768² image took
        peak RSS from 1.3 to 5.0 GB)."""
        lead, iy, ix = key[:-2], np.asarray(key[-2]), np.asarray(key[-1])
        flat_y, flat_x = iy.ravel(), ix.ravel()
        order = np.argsort(flat_y, kind="stable")
        ys = flat_y[order]
        out = np.empty(ys.size, dtype=np.float32)
        rows = max(1, band_bytes // (self.full_shape[-1] * np.dtype(self.raw_dtype).itemsize))
        start = 0
        while start < ys.size:
            stop = int(np.searchsorted(ys, ys[start] + rows))
            mm = np.memmap(self.path, dtype=self.raw_dtype, mode="r", offset=self.offset,
                           shape=self.full_shape)
            try:
                at = order[start:stop]
                out[at] = mm[lead + (flat_y[at], flat_x[at])]
            finally:
                del mm
            start = stop
        return out.reshape(iy.shape)


class CasaPlane(_Plane):
    """A CASA image, read by python-casacore ``getdata`` slices."""

    def __init__(self, path: str):
        self.path = path
        im = self._open()
        self.full_shape = tuple(int(n) for n in im.shape())
        # casacore's own FITS writer converts the coordinate system and beam exactly; a
        # one-pixel sub-image at the origin keeps the reference pixel and costs nothing.
        with tempfile.TemporaryDirectory(prefix="radiofind-casa-") as tmp:
            fitsname = os.path.join(tmp, "header.fits")
            corner = [0] * len(self.full_shape)
            im.subimage(blc=corner, trc=corner, dropdegenerate=False).tofits(fitsname,
                                                                               velocity=False)
            header = fits.getheader(fitsname)
        naxis = header["NAXIS"]
        for i, n in zip(range(naxis, 0, -1), self.full_shape, strict=True):
            header[f"NAXIS{i}"] = n
        self.header = header

    def _open(self):
        # python-casacore is imported here only: FITS-only users never pay for it.
        from casacore.images import image as casa_image

        try:
            return casa_image(self.path)
        except RuntimeError as err:
            raise RadiofindError(
                f"{self.path} is not a readable CASA image ({str(err).splitlines()[0]})"
            ) from None

    def _read(self, key):
        blc, trc = [], []
        for k, n in zip(key, self.full_shape, strict=True):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step != 1:
                    raise IndexError("CASA image slices must have step 1")
                blc.append(start)
                trc.append(max(stop - 1, start))
            else:
                blc.append(int(k))
                trc.append(int(k))
        data = self._open().getdata(blc=blc, trc=trc)
        squeeze = tuple(i for i, k in enumerate(key) if not isinstance(k, slice))
        return data.reshape([b - a + 1 for a, b in zip(blc, trc, strict=True)]).squeeze(squeeze)


def _to_image(plane: _Plane, header: fits.Header, path: str, *, require_beam: bool) -> Image:
    naxis = header["NAXIS"]
    # Squeeze degenerate axes (frequency, Stokes) and refuse genuine cubes.
    extra = [i for i in range(3, naxis + 1) if header.get(f"NAXIS{i}", 1) > 1]
    if extra:
        raise RadiofindError(
            f"{path} has {naxis} axes with more than one plane on axis {extra[0]}; "
            "pass a single-plane (2-D) image")
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
    out = wcs.to_header()
    # The squeezed frequency axis still matters (PyBDSF needs it; models record it).
    for i in range(3, naxis + 1):
        if str(header.get(f"CTYPE{i}", "")).upper().startswith("FREQ"):
            out["FREQ"] = (float(header[f"CRVAL{i}"]), "[Hz] frequency of the squeezed axis")
    for key in _CARRIED:
        if key in header and key not in out:
            out[key] = header[key]
    return Image(data=plane, wcs=wcs, beam=beam, header=out, path=path)


def block_mean(data, factor: int, *, chunk: int | None = None):
    """Average ``data`` in ``factor`` x ``factor`` blocks, ignoring blank (NaN) pixels.

    The image is padded with blanks to a multiple of ``factor``, so edge blocks average the
    pixels they have; a block with no finite pixel stays blank. Works on numpy arrays and,
    lazily, on dask arrays (then rechunked so every output block is ``chunk`` pixels a side,
    default: the input's chunk size divided by ``factor``).
    """
    factor = int(factor)
    if factor == 1:
        return data
    ny, nx = data.shape
    pad = ((0, -ny % factor), (0, -nx % factor))
    if hasattr(data, "dask"):
        import dask.array as da

        if any(p for _, p in pad):
            data = da.pad(data, pad, mode="constant", constant_values=np.nan)
        out_chunk = chunk or max(1, max(data.chunksize) // factor)
        # Neighbouring blocks merge, never all-to-all: the "tasks" method, named so that dask does
        # not import dask.distributed (0.15 s) only to choose it.
        data = data.rechunk((factor * out_chunk, factor * out_chunk), method="tasks")
        return data.map_blocks(_block_mean, factor, dtype=np.float32,
                               chunks=tuple(tuple(c // factor for c in cs) for cs in data.chunks),
                               meta=np.empty((0, 0), dtype=np.float32))
    if any(p for _, p in pad):
        data = np.pad(data, pad, constant_values=np.nan)
    return _block_mean(data, factor)


def _block_mean(block: np.ndarray, factor: int) -> np.ndarray:
    ny, nx = block.shape
    cells = block.reshape(ny // factor, factor, nx // factor, factor)
    if np.isfinite(block).all():  # the usual case, at half the cost of nanmean
        return cells.mean(axis=(1, 3), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-blank blocks: NaN, as meant
        return np.nanmean(cells, axis=(1, 3)).astype(np.float32)


def binned(img: Image, factor: float, *, chunk: int | None = None) -> Image:
    """``img`` on a grid of ``factor`` input pixels per pixel, with its WCS rescaled so that grid
    pixel ``q`` is centred on input pixel ``(q + 1/2) factor - 1/2`` (see :func:`unbinned_pixels`).

    An integer ``factor`` >= 2 averages ``factor`` x ``factor`` pixel blocks (see
    :func:`block_mean`); a ``factor`` below 1 interpolates the image onto a finer grid (see
    :func:`upsampled`); 1 returns ``img``. The beam, in degrees, is unchanged.
    """
    if not factor > 0:
        raise RadiofindError(f"binning factor must be > 0, got {factor}")
    if factor == 1:
        return img
    if factor > 1:
        if factor != int(factor):
            raise RadiofindError(f"a binning factor above 1 must be an integer, got {factor}")
        factor = int(factor)
        data = block_mean(img.data, factor, chunk=chunk)
    else:
        factor = float(factor)
        data = upsampled(img.data, factor, chunk=chunk)
    wcs = img.wcs.deepcopy()
    # 1-based: input pixel p (0-based) is grid pixel (p - (f - 1) / 2) / f.
    wcs.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / factor + 0.5
    if wcs.wcs.has_cd():
        wcs.wcs.cd = np.asarray(wcs.wcs.cd) * factor
    else:
        wcs.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * factor
    wcs.wcs.set()
    header = img.header.copy()
    header.update(wcs.to_header())
    header["RFBIN"] = (factor, "radiofind: input pixels per side of each pixel")
    return Image(data=data, wcs=wcs, beam=img.beam, header=header, path=img.path)


def tapered(img: Image, fwhm_beams: float) -> Image:
    """``img`` smoothed by a circular Gaussian of FWHM ``fwhm_beams`` times its beam size
    sqrt(BMAJ BMIN): what a Gaussian uv taper does to the image, at lower resolution and, for a
    uniformly weighted image, higher point-source sensitivity (its noise comes mostly from the
    sparse long baselines, which the taper weighs down).

    Blank (NaN) pixels stay blank and count as missing: each pixel is the Gaussian mean of the
    finite pixels around it (normalised convolution), so blanks and the image edges do not pull
    it towards 0. A dask image is smoothed lazily block by block with a halo of 4 sigma; the beam
    of the result is the input's widened in quadrature.
    """
    if not (fwhm_beams > 0 and np.isfinite(fwhm_beams)):
        raise RadiofindError(f"taper must be a number of beams > 0, got {fwhm_beams}")
    sigma = fwhm_beams * img.beam_pixels / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    depth = int(np.ceil(4.0 * sigma))
    if hasattr(img.data, "dask"):
        data = img.data.astype(np.float32).map_overlap(
            _taper_block, depth=depth, boundary=np.nan, dtype=np.float32, sigma=sigma,
            meta=np.empty((0, 0), dtype=np.float32))
    else:
        data = _taper_block(np.asarray(img.data, dtype=np.float32), sigma)
    widen = np.hypot(1.0, fwhm_beams)
    beam = Beam(img.beam.size_deg * widen, img.beam.size_deg * widen, 0.0)
    header = img.header.copy()
    header.update({"BMAJ": beam.bmaj, "BMIN": beam.bmin, "BPA": 0.0,
                   "RFTAPER": (float(fwhm_beams), "radiofind: Gaussian taper FWHM, beams")})
    return Image(data=data, wcs=img.wcs, beam=beam, header=header, path=img.path)


def psf_beside(image: str | os.PathLike) -> Path | None:
    """WSClean's PSF of ``image``: ``<name>-psf.fits`` beside ``<name>-image.fits``, its
    primary-beam-corrected ``<name>-image-pb.fits`` (or ``<name>-MFS-image.fits``...), if there
    is one."""
    path = Path(image)
    for suffix in ("-image.fits", "-image.fit", "-image-pb.fits", "-image-pb.fit"):
        if path.name.endswith(suffix):
            psf = path.with_name(path.name[:-len(suffix)] + "-psf" + suffix[suffix.index("."):])
            return psf if psf.is_file() else None
    return None


def whitened_image(img: Image, psf_path: str | os.PathLike) -> Image:
    """``img`` whitened by its own noise power spectrum over the uv cells its PSF samples
    (:func:`radiofind.noise.whitened`), held in memory: for a uniformly weighted image, about the
    naturally weighted image of the same visibilities. The PSF (a FITS file or CASA image) must
    have the image's pixels: the same shape and pixel size, and, where both headers say it
    (WSClean's WSCWEIGH), the same weighting."""
    from radiofind.noise import whitened

    psf = open_image(psf_path, require_beam=False, chunk=None)
    scale = psf.pixel_scale_deg / img.pixel_scale_deg
    if psf.data.shape != img.data.shape or not abs(scale - 1.0) < 1e-3:
        raise RadiofindError(
            f"{psf_path}: the PSF has {psf.data.shape[1]} x {psf.data.shape[0]} pixels of "
            f"{psf.pixel_scale_deg * 3600:.4g}\" and the image {img.data.shape[1]} x "
            f"{img.data.shape[0]} of {img.pixel_scale_deg * 3600:.4g}\": whitening needs the PSF "
            "made with the image (WSClean's <name>-psf.fits)")
    weights = [str(h.get("WSCWEIGH", "")).strip() for h in (img.header, psf.header)]
    if all(weights) and weights[0] != weights[1]:
        raise RadiofindError(f"{psf_path}: the PSF was made with {weights[1]} weighting and the "
                             f"image with {weights[0]}: whitening needs the image's own PSF")
    data = whitened(np.asarray(img.data[:, :]), np.asarray(psf.data[:, :]))
    header = img.header.copy()
    header["RFWHITE"] = (Path(psf_path).name, "radiofind: whitened with this PSF")
    return Image(data=data, wcs=img.wcs, beam=img.beam, header=header, path=img.path)


class _NegatedPoints:
    """A reader of scattered pixels (:attr:`Image.pixels`) whose values come back sign-flipped."""

    ndim = 2

    def __init__(self, points):
        self.points = points
        self.shape = points.shape
        self.dtype = points.dtype

    def __getitem__(self, key) -> np.ndarray:
        return -np.asarray(self.points[key])


def background_subtracted(img: Image, background, box: int) -> Image:
    """``img`` less a background map (its shape; lazily for a lazy image): diffuse emission
    taken out from under the compact sources, whose peaks and SNRs are then read above it."""
    header = img.header.copy()
    header["RFBKGBOX"] = (int(box), "radiofind: background cell, pixels")
    return Image(data=img.data - background, wcs=img.wcs, beam=img.beam, header=header,
                 path=img.path, points=None)


def negated(img: Image) -> Image:
    """``img`` times -1, lazily (blanks stay blank): its sources become troughs and its noise
    troughs become peaks, with the same statistics as the noise peaks of ``img`` where the noise
    is symmetric. What detect --negatives searches to count the false detections it would make."""
    header = img.header.copy()
    header["RFNEGATE"] = (True, "radiofind: the image times -1")
    return Image(data=-img.data, wcs=img.wcs, beam=img.beam, header=header, path=img.path,
                 points=None if img.points is None else _NegatedPoints(img.points))


def _taper_block(block: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    finite = np.isfinite(block)
    smooth = ndimage.gaussian_filter(np.where(finite, block, 0.0).astype(np.float64), sigma,
                                     mode="constant", truncate=4.0)
    weight = ndimage.gaussian_filter(finite.astype(np.float64), sigma, mode="constant",
                                     truncate=4.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, smooth / weight, np.nan).astype(np.float32)


# Input pixels read beyond an output block's footprint on each side when upsampling: the cubic
# spline's prefilter is recursive, and its influence falls by 0.268 per pixel (to 2e-6 at 10).
UPSAMPLE_HALO = 10


def upsampled(data, factor: float, *, chunk: int | None = None):
    """``data`` interpolated (cubic spline) onto a grid of ``factor`` (< 1) input pixels per
    pixel; grid pixel ``q`` sits at input position ``(q + 1/2) factor - 1/2``.

    The grid has ``ceil(n / factor)`` pixels a side. A grid pixel whose nearest input pixel is
    blank is blank; blanks are read as 0 by the spline. Works on numpy arrays and, lazily, on
    dask arrays, in output blocks of ``chunk`` pixels (default: the input's chunk size) that each
    read their footprint plus ``UPSAMPLE_HALO`` pixels, so memory stays bounded.
    """
    if not 0 < factor < 1:
        raise RadiofindError(f"an upsampling factor must be in (0, 1), got {factor}")
    ny, nx = data.shape
    out_shape = (math.ceil(ny / factor), math.ceil(nx / factor))
    if not hasattr(data, "dask"):
        return _upsample_block(np.asarray(data), factor, 0, 0, 0, 0, out_shape)
    import dask
    import dask.array as da

    step = chunk or max(data.chunksize)

    def span(q0: int, q1: int, n: int) -> tuple[int, int]:
        lo = math.floor((q0 + 0.5) * factor - 0.5) - UPSAMPLE_HALO
        hi = math.ceil((q1 - 0.5) * factor - 0.5) + UPSAMPLE_HALO + 1
        return max(lo, 0), min(hi, n)

    rows = []
    for qy0 in range(0, out_shape[0], step):
        qy1 = min(qy0 + step, out_shape[0])
        y0, y1 = span(qy0, qy1, ny)
        row = []
        for qx0 in range(0, out_shape[1], step):
            qx1 = min(qx0 + step, out_shape[1])
            x0, x1 = span(qx0, qx1, nx)
            block = dask.delayed(_upsample_block)(data[y0:y1, x0:x1], factor, y0, x0, qy0, qx0,
                                                  (qy1 - qy0, qx1 - qx0))
            row.append(da.from_delayed(block, (qy1 - qy0, qx1 - qx0), dtype=np.float32))
        rows.append(row)
    return da.block(rows)


def _upsample_block(slab: np.ndarray, factor: float, y0: int, x0: int, qy0: int, qx0: int,
                    shape: tuple[int, int]) -> np.ndarray:
    """Grid pixels ``qy0 ...``, ``qx0 ...`` (``shape``) interpolated from ``slab``, the input
    from pixel (``y0``, ``x0``) on."""
    from scipy import ndimage

    slab = np.asarray(slab, dtype=np.float64)
    py = (np.arange(qy0, qy0 + shape[0]) + 0.5) * factor - 0.5 - y0
    px = (np.arange(qx0, qx0 + shape[1]) + 0.5) * factor - 0.5 - x0
    blank = ~np.isfinite(slab)
    coeffs = ndimage.spline_filter(np.where(blank, 0.0, slab), order=3, mode="nearest")
    yy, xx = np.meshgrid(py, px, indexing="ij")
    out = ndimage.map_coordinates(coeffs, [yy, xx], order=3, mode="nearest", prefilter=False)
    if blank.any():
        iy = np.clip(np.rint(py).astype(int), 0, slab.shape[0] - 1)
        ix = np.clip(np.rint(px).astype(int), 0, slab.shape[1] - 1)
        out[blank[np.ix_(iy, ix)]] = np.nan
    return out.astype(np.float32)


def unbinned_pixels(x, y, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel positions on a :func:`binned` grid -> the same positions in input pixels."""
    return ((np.asarray(x) + 0.5) * factor - 0.5, (np.asarray(y) + 0.5) * factor - 0.5)


def binned_pixels(x, y, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """0-based input pixel positions -> the same positions on a :func:`binned` grid (the inverse
    of :func:`unbinned_pixels`)."""
    return ((np.asarray(x) + 0.5) / factor - 0.5, (np.asarray(y) + 0.5) / factor - 0.5)


def write_fits_to(path: str | os.PathLike, data: np.ndarray, like: Image,
                  extra: dict | None = None) -> None:
    """Write a 2-D map with the WCS, beam and telescope keywords of ``like``.

    ``path`` is a staged path (see :mod:`radiofind.io.outputs`), which makes the write atomic.
    """
    header = like.header.copy()
    for key, value in (extra or {}).items():
        header[key] = value
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(path)


class FitsMapWriter:
    """A 2-D float32 FITS map written block by block (``writer[y0:y1, x0:x1] = block``).

    The file is laid out at creation (header, then a data area the size of the image, left
    sparse), and each block is written through its own short-lived memory map, so the map never
    needs to fit in memory; ``dask.array.store`` can write into it from threads or from
    dask.distributed workers on a shared filesystem. ``path`` should be a staged path (see
    :mod:`radiofind.io.outputs`) so the finished file appears atomically.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int], like: Image,
                 extra: dict | None = None):
        self.path = str(path)
        self.shape = tuple(int(n) for n in shape)
        header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2),
                              ("NAXIS1", self.shape[1]), ("NAXIS2", self.shape[0])])
        header.extend(like.header, unique=True)
        for key, value in (extra or {}).items():
            header[key] = value
        head = header.tostring().encode("ascii")
        self.offset = len(head)
        nbytes = 4 * self.shape[0] * self.shape[1]
        padded = -(-nbytes // 2880) * 2880
        with open(self.path, "wb") as fh:
            fh.write(head)
            fh.truncate(self.offset + padded)

    def __setitem__(self, key, value) -> None:
        mm = np.memmap(self.path, dtype=">f4", mode="r+", offset=self.offset, shape=self.shape)
        try:
            mm[key] = value
            mm.flush()
        finally:
            del mm
