"""``radiofind pybdsf``: PyBDSF on an image, written in radiofind's catalogue schema.

PyBDSF runs on a squeezed 2-D copy of the image in a scratch folder: it writes log files beside
its input, and radiofind never touches the user's input folder. Positions come from PyBDSF's
source list (RA/Dec of each fitted source), SNRs from radiofind's own noise definition, so both
finders are scored alike.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np
from astropy.table import Table

from radiofind.errors import RadiofindError
from radiofind.io.catalog import FORMATS, catalogue_with
from radiofind.io.images import write_fits_to

log = logging.getLogger("radiofind.pybdsf")


def run_pybdsf(*, image: str, outdir: str, thresh_isl: float = 3.0, thresh_pix: float = 5.0,
               detection_image: str | None = None, formats=tuple(FORMATS),
               overwrite: bool = False) -> dict:
    """Run PyBDSF's ``process_image`` and write the sources as a radiofind catalogue.

    ``detection_image``: another image of the field, on the same pixel grid (e.g. the
    natural-weighted one when measuring the uniform image), in which PyBDSF finds its islands;
    sources are still fitted in ``image`` (PyBDSF's own ``detection_image``).
    """
    from radiofind.io.images import check_another, read_image

    if not thresh_isl > 0 or not thresh_pix > 0:
        raise RadiofindError("thresh_isl and thresh_pix must be positive")
    if thresh_pix < thresh_isl:
        raise RadiofindError("thresh_pix must be >= thresh_isl (PyBDSF's peak vs island threshold)")
    meta = {"THRISL": thresh_isl, "THRPIX": thresh_pix}
    settings = f"thresh_isl {thresh_isl}, thresh_pix {thresh_pix}"
    det = None
    if detection_image:
        check_another(detection_image, image, "--detection-image")
        det = read_image(detection_image)
        meta["DETIMAGE"] = Path(detection_image).name
        settings += f", islands from {Path(detection_image).name}"
    return catalogue_with("pybdsf", lambda img: _process(img, thresh_isl, thresh_pix, det),
                          image=image, outdir=outdir, formats=formats, overwrite=overwrite,
                          meta=meta, settings=settings)


def same_grid(a, b) -> bool:
    """Whether images ``a`` and ``b`` have the same shape and pixel grid on the sky (corners and
    centre agree to 0.01 pixel), as PyBDSF's detection image must."""
    if a.data.shape != b.data.shape:
        return False
    ny, nx = a.data.shape
    x = np.array([0.0, nx - 1.0, 0.0, nx - 1.0, nx / 2])
    y = np.array([0.0, 0.0, ny - 1.0, ny - 1.0, ny / 2])
    bx, by = b.world_to_pixel(*a.pixel_to_world(x, y))
    return bool(np.all(np.hypot(bx - x, by - y) < 0.01))


def _process(img, thresh_isl: float, thresh_pix: float, det=None):
    # PyBDSF is imported here: it is slow to import and only this command needs it.
    import bdsf

    if det is not None and not same_grid(img, det):
        raise RadiofindError(f"the detection image {det.path} is not on the pixel grid of "
                             f"{img.path} (PyBDSF needs the same shape and registration): image "
                             "both with the same size, pixel scale and phase centre")
    with tempfile.TemporaryDirectory(prefix="radiofind-pybdsf-") as tmp:
        def scratch(name: str, im) -> str:
            """A squeezed copy of ``im`` for PyBDSF, blanks as NaN."""
            path = str(Path(tmp) / name)
            write_fits_to(path, np.where(np.isfinite(im.data), im.data, np.nan), im)
            return path

        fitsname = scratch("image.fits", img)
        extra = {} if det is None else {"detection_image": scratch("detection.fits", det)}
        freq = img.frequency
        if freq is None:
            log.warning("%s has no frequency axis or RESTFRQ; telling PyBDSF 1.4 GHz", img.path)
            freq = 1.4e9
        chatter = io.StringIO()  # PyBDSF prints its parameters and files: keep them for -v
        try:
            with contextlib.redirect_stdout(chatter):
                result = bdsf.process_image(fitsname, thresh_isl=thresh_isl,
                                            thresh_pix=thresh_pix, frequency=freq, quiet=True,
                                            ncores=1, **extra)
        except Exception as err:  # PyBDSF raises bare RuntimeError/ValueError for bad images
            raise RadiofindError(f"PyBDSF failed on {img.path}: {err}") from None
        finally:
            log.debug("PyBDSF output:\n%s", chatter.getvalue())
        if result.nsrc == 0:
            log.warning("PyBDSF found no sources")
            empty = np.array([], dtype=float)
            return empty, empty, {"ra_err": empty, "dec_err": empty, "total_flux": empty,
                                  "total_flux_err": empty, "maj": empty, "min": empty,
                                  "pa": empty, "peak_flux_fit": empty}
        srl = str(Path(tmp) / "image.srl.fits")
        with contextlib.redirect_stdout(chatter):
            result.write_catalog(outfile=srl, format="fits", catalog_type="srl", clobber=True)
        src = Table.read(srl)
    # PyBDSF's own errors (Condon 1997, from its fits): positions in degrees on the sky.
    return (np.asarray(src["RA"], float), np.asarray(src["DEC"], float),
            {"ra_err": 3600.0 * np.asarray(src["E_RA"], float),
             "dec_err": 3600.0 * np.asarray(src["E_DEC"], float),
             "total_flux": np.asarray(src["Total_flux"], float),
             "total_flux_err": np.asarray(src["E_Total_flux"], float),
             "maj": 3600.0 * np.asarray(src["Maj"], float),  # fitted FWHM, degrees
             "min": 3600.0 * np.asarray(src["Min"], float),
             "pa": np.asarray(src["PA"], float),
             "peak_flux_fit": np.asarray(src["Peak_flux"], float)})
