"""`radiofind pybdsf --detection-image`: PyBDSF finds its islands in another image of the field
and fits its sources in the searched one."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, make_image, with_sources, write_image

from radiofind.errors import RadiofindError
from radiofind.pybdsf import run_pybdsf


def _two_images(tmp_path):
    # The searched image holds ten sources; the detection image holds only the first five.
    data, x, y, amp = make_image(256, n_sources=10, snr=(15.0, 30.0), seed=7)
    other = with_sources(256, x[:5], y[:5], 60e-5, seed=8)
    image = write_image(tmp_path / "uniform.fits", data, make_header(256))
    det = write_image(tmp_path / "natural.fits", other, make_header(256))
    return image, det, x, y, amp * 1e-5


def _nearest(table, x, y) -> tuple[np.ndarray, np.ndarray]:
    """For each true source: whether a detection lies within 2 pixels, and which is nearest."""
    d = np.hypot(np.asarray(table["x"])[:, None] - x, np.asarray(table["y"])[:, None] - y)
    return d.min(axis=0) < 2.0, d.argmin(axis=0)


def test_islands_come_from_the_detection_image(tmp_path):
    image, det, x, y, peak = _two_images(tmp_path)
    alone = run_pybdsf(image=image, outdir=str(tmp_path / "alone"), formats=["fits"])
    first = Table.read(alone["catalog"])
    found, which = _nearest(first, x, y)
    assert found.all()  # all ten in the image alone
    # PyBDSF's own position errors, in arcsec: a fraction of a pixel (1.5") at SNR 15-30.
    for name in ("ra_err", "dec_err"):
        errors = np.asarray(first[name])[which]
        assert np.all((errors > 0) & (errors < 0.75)), (name, errors)
    # Its fitted sizes, in arcsec: the 6" beam (make_image's sources are points).
    np.testing.assert_allclose(np.asarray(first["maj"])[which], 6.0, rtol=0.15)
    res = run_pybdsf(image=image, outdir=str(tmp_path / "det"), formats=["fits"],
                     detection_image=det)
    table = Table.read(res["catalog"])
    found, which = _nearest(table, x, y)
    assert found[:5].all() and not found[5:].any()  # only the five the detection image holds
    assert table.meta["DETIMAGE"] == "natural.fits"
    # Sources are fitted in the searched image: their peaks, not the detection image's (6e-4).
    fitted = np.asarray(table["peak_flux_fit"])[which[:5]]
    np.testing.assert_allclose(fitted, peak[:5], rtol=0.25)


@pytest.mark.parametrize("case", ["same", "missing", "shape", "shifted"])
def test_pybdsf_refuses_a_bad_detection_image(tmp_path, case):
    data, *_ = make_image(64, n_sources=2)
    image = write_image(tmp_path / "f.fits", data, make_header(64))
    other = {"same": lambda: image,
             "missing": lambda: str(tmp_path / "nope.fits"),
             "shape": lambda: write_image(tmp_path / "o.fits", np.zeros((96, 96), np.float32),
                                          make_header(96)),
             "shifted": lambda: write_image(tmp_path / "o.fits", data,
                                            make_header(64, ra=50.01))}[case]()
    with pytest.raises(RadiofindError, match="detection image|detection-image|nope.fits"):
        run_pybdsf(image=image, outdir=str(tmp_path / "out"), detection_image=other)
    assert not (tmp_path / "out").exists()
