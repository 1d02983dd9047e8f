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
from radiofind.io.catalog import catalogue_with
from radiofind.io.images import write_fits_to

log = logging.getLogger("radiofind.pybdsf")


def run_pybdsf(*, image: str, outdir: str, thresh_isl: float = 3.0, thresh_pix: float = 5.0,
               formats=("fits", "csv", "ds9", "crtf"), overwrite: bool = False) -> dict:
    """Run PyBDSF's ``process_image`` and write the sources as a radiofind catalogue."""
    if not thresh_isl > 0 or not thresh_pix > 0:
        raise RadiofindError("thresh_isl and thresh_pix must be positive")
    if thresh_pix < thresh_isl:
        raise RadiofindError("thresh_pix must be >= thresh_isl (PyBDSF's peak vs island threshold)")
    return catalogue_with("pybdsf", lambda img: _process(img, thresh_isl, thresh_pix),
                          image=image, outdir=outdir, formats=formats, overwrite=overwrite,
                          meta={"THRISL": thresh_isl, "THRPIX": thresh_pix},
                          settings=f"thresh_isl {thresh_isl}, thresh_pix {thresh_pix}")


def _process(img, thresh_isl: float, thresh_pix: float):
    # PyBDSF is imported here: it is slow to import and only this command needs it.
    import bdsf

    with tempfile.TemporaryDirectory(prefix="radiofind-pybdsf-") as tmp:
        fitsname = str(Path(tmp) / "image.fits")
        data = np.where(np.isfinite(img.data), img.data, np.nan)
        write_fits_to(fitsname, data, img)
        freq = img.frequency
        if freq is None:
            log.warning("%s has no frequency axis or RESTFRQ; telling PyBDSF 1.4 GHz", img.path)
            freq = 1.4e9
        chatter = io.StringIO()  # PyBDSF prints its parameters and files: keep them for -v
        try:
            with contextlib.redirect_stdout(chatter):
                result = bdsf.process_image(fitsname, thresh_isl=thresh_isl,
                                            thresh_pix=thresh_pix, frequency=freq, quiet=True,
                                            ncores=1)
        except Exception as err:  # PyBDSF raises bare RuntimeError/ValueError for bad images
            raise RadiofindError(f"PyBDSF failed on {img.path}: {err}") from None
        finally:
            log.debug("PyBDSF output:\n%s", chatter.getvalue())
        if result.nsrc == 0:
            log.warning("PyBDSF found no sources")
            empty = np.array([], dtype=float)
            return empty, empty, {"total_flux": empty, "peak_flux_fit": empty}
        srl = str(Path(tmp) / "image.srl.fits")
        with contextlib.redirect_stdout(chatter):
            result.write_catalog(outfile=srl, format="fits", catalog_type="srl", clobber=True)
        src = Table.read(srl)
    return (np.asarray(src["RA"], float), np.asarray(src["DEC"], float),
            {"total_flux": np.asarray(src["Total_flux"], float),
             "peak_flux_fit": np.asarray(src["Peak_flux"], float)})
