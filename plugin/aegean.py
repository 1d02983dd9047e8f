"""``radiofind aegean``: BANE + Aegean (AegeanTools) on an image, in radiofind's catalogue schema.

Like ``radiofind pybdsf``: the image is squeezed to 2-D and copied into a scratch folder, where
BANE writes its background and rms maps and Aegean reads all three (the user's input folder is
never written to). Positions come from Aegean's fitted components (RA/Dec), SNRs from radiofind's
own noise definition, so every finder is scored alike by ``radiofind evaluate``.

AegeanTools 2.3.5 and numpy >= 2.4
----------------------------------
AegeanTools 2.3.5 (``fitting.py``) catches ``np.linalg.linalg.LinAlgError`` when the covariance
of a fit is singular. numpy 2.0 deprecated the private module ``numpy.linalg.linalg`` and numpy
2.4 removed it, so on such a fit the ``except`` clause itself raises ``AttributeError`` and the
whole run crashes. :func:`_numpy_compat` gives numpy back a minimal ``numpy.linalg.linalg`` that
holds only ``LinAlgError`` (the very class ``numpy.linalg`` exports, so the ``except`` catches
what it meant to), and only when the attribute is missing; nothing else in numpy changes.
Singular covariances do happen on real images (a 384² natural-weighted MeerKAT simulation hit
it). Everything else AegeanTools 2.3.5 imports works with numpy 2.4, scipy 1.17 and astropy 8;
with the stand-in it gave the same catalogue as unpatched AegeanTools under numpy 2.3.5.

``nocov`` is Aegean's ``--nocov``: its default fit weights residuals by the beam's pixel
correlation matrix, which on that natural image (beam ~20 x 15 pixels) drove most fitted
positions 8-19 pixels off the true sources (with or without the stand-in); without it 9 of 12
fell within 2.4 pixels.
"""

from __future__ import annotations

import logging
import tempfile
import types
from pathlib import Path

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.io.catalog import FORMATS, catalogue_with
from radiofind.io.images import write_fits_to

log = logging.getLogger("radiofind.aegean")


def run_aegean(*, image: str, outdir: str, seedclip: float = 5.0, floodclip: float = 4.0,
               nocov: bool = False, formats=tuple(FORMATS),
               overwrite: bool = False) -> dict:
    """Run BANE and Aegean on ``image`` and write the components as a radiofind catalogue."""
    if not seedclip > 0 or not floodclip > 0:
        raise RadiofindError("seedclip and floodclip must be positive")
    if floodclip > seedclip:
        # Aegean would silently lower floodclip to seedclip: say so instead.
        raise RadiofindError("floodclip must be <= seedclip (Aegean's flood vs seed threshold)")
    return catalogue_with("aegean", lambda img: _process(img, seedclip, floodclip, nocov),
                          image=image, outdir=outdir, formats=formats, overwrite=overwrite,
                          meta={"SEEDCLIP": seedclip, "FLOODCLP": floodclip, "NOCOV": nocov},
                          settings=f"seedclip {seedclip}, floodclip {floodclip}")


def _numpy_compat() -> None:
    """Restore ``numpy.linalg.linalg.LinAlgError`` for AegeanTools 2.3.5 (see the module doc)."""
    if not hasattr(np.linalg, "linalg"):
        shim = types.ModuleType("numpy.linalg.linalg",
                                "radiofind's stand-in for the module numpy 2.4 removed; "
                                "AegeanTools 2.3.5 needs only its LinAlgError.")
        shim.LinAlgError = np.linalg.LinAlgError
        np.linalg.linalg = shim


def _process(img, seedclip: float, floodclip: float, nocov: bool):
    _numpy_compat()
    # AegeanTools is imported here: only this command needs it.
    from AegeanTools.BANE import filter_image
    from AegeanTools.source_finder import SourceFinder

    # Its logger prints every step at INFO through its own handler (set up at import): keep that
    # chatter for -vv, as for PyBDSF.
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    logging.getLogger("AegeanTools").setLevel(logging.INFO if verbose else logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="radiofind-aegean-") as tmp:
        fitsname = str(Path(tmp) / "image.fits")
        data = np.where(np.isfinite(img.data), img.data, np.nan).astype(np.float32)
        write_fits_to(fitsname, data, img)
        base = str(Path(tmp) / "image")
        try:
            # BANE: background and rms maps (image_bkg.fits, image_rms.fits); one worker, as the
            # other finders use.
            filter_image(im_name=fitsname, out_base=base, cores=1)
            sources = SourceFinder().find_sources_in_image(
                fitsname, bkgin=f"{base}_bkg.fits", rmsin=f"{base}_rms.fits",
                innerclip=seedclip, outerclip=floodclip, docov=not nocov, cores=1,
                nonegative=True, progress=False)
        except Exception as err:  # AegeanTools raises many types for images it cannot use
            raise RadiofindError(f"Aegean failed on {img.path}: {err}") from None
    if not sources:
        log.warning("Aegean found no sources")
    def errors(name: str, scale: float = 3600.0) -> np.ndarray:
        """Aegean's errors (-1 where its fit gave none: NaN), times ``scale`` (positions:
        degrees on the sky to arcsec)."""
        values = np.array([getattr(s, name) for s in sources], float)
        return np.where(values >= 0, scale * values, np.nan)

    return (np.array([s.ra for s in sources], float), np.array([s.dec for s in sources], float),
            {"ra_err": errors("err_ra"), "dec_err": errors("err_dec"),
             "peak_flux_fit": np.array([s.peak_flux for s in sources], float),
             "total_flux": np.array([s.int_flux for s in sources], float),
             "total_flux_err": errors("err_int_flux", 1.0),
             "maj": np.array([s.a for s in sources], float),  # fitted FWHM, arcsec
             "min": np.array([s.b for s in sources], float),
             "pa": np.array([s.pa for s in sources], float) % 180.0,
             "local_rms": np.array([s.local_rms for s in sources], float),
             "flags": np.array([s.flags for s in sources], np.int32)})
