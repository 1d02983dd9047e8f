"""benchmarks/generalisation.py counts the detections near resolved and strong sources right."""

import sys
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import generalisation  # noqa: E402

from radiofind.evaluate.run import FieldMatch  # noqa: E402

ARCSEC = 1 / 3600.0


def test_unmatched_near_counts_unmatched_detections_inside_each_centres_own_radius(tmp_path):
    # Detections east of (50, -20) at 5", 15", 25" and 60"; the second is matched to a source.
    offsets = np.array([5.0, 15.0, 25.0, 60.0]) * ARCSEC
    cat = tmp_path / "cat.fits"
    Table({"ra": 50.0 + offsets / np.cos(np.radians(20.0)),
           "dec": np.full(4, -20.0)}).write(cat)
    match = FieldMatch(truth_snr=np.array([9.0]), det_snr=np.array([3.0, 9.0, 6.0, 7.0]),
                       truth_found=np.array([True]),
                       det_is_tp=np.array([False, True, False, False]),
                       separation_deg=np.zeros(1))
    near = generalisation.unmatched_near
    assert near(cat, match, 50.0, -20.0, 30 * ARCSEC) == 2  # 5" and 25"; 15" is a true one
    assert near(cat, match, 50.0, -20.0, 30 * ARCSEC, 5.0) == 1  # only the SNR-6 one
    assert near(cat, match, 50.0, -20.0, 4 * ARCSEC) == 0
    # Several centres, each with its own radius: a detection near either counts once.
    far = 50.0 + 60 * ARCSEC / np.cos(np.radians(20.0))
    assert near(cat, match, [50.0, far], [-20.0, -20.0], [6 * ARCSEC, 1 * ARCSEC]) == 2
    assert near(cat, match, [50.0, far], [-20.0, -20.0], [6 * ARCSEC, 1 * ARCSEC], 5.0) == 1
    assert near(cat, match, [50.0, 50.0], [-20.0, -20.0], 30 * ARCSEC) == 2  # not twice
    assert near(cat, match, [], [], 30 * ARCSEC) == 0


def test_every_same_sky_check_names_a_change_some_variant_makes():
    changes = {k for _, change in generalisation.VARIANTS.values() for k in change}
    for key, same in generalisation.SAME_SKY_CHECKS.items():
        assert key in changes and callable(same.check)
        assert all(k in changes for k in same.keeps)
