"""The artefact check (radiofind.detect.artefacts): a bright source's calibration artefacts come
in +/- pairs mirrored through it; true sources have no such mirror."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import make_header, make_image, write_image

from radiofind.errors import RadiofindError

BEAM = 4.6
NOISE = 1e-5


def _gauss(size, x, y, peak):
    sigma = BEAM / np.sqrt(8 * np.log(2))
    yy, xx = np.mgrid[:size, :size]
    return peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def _field(size=256, *, pairs=((40, 10), (-25, 35), (15, -50)), pair_snr=8.0, seed=3):
    """Noise, a 1000-sigma source at the centre, artefact pairs (+ at centre + d, - at centre -
    d) and true sources of the same SNR whose mirror points are empty."""
    data, *_ = make_image(size, n_sources=0, beam_pix=BEAM, noise=NOISE, seed=seed)
    c = size // 2
    data = data + _gauss(size, c, c, 1000 * NOISE)
    for dx, dy in pairs:
        data += _gauss(size, c + dx, c + dy, pair_snr * NOISE)
        data -= _gauss(size, c - dx, c - dy, pair_snr * NOISE)
    true = [(c + 60, c + 60), (c - 70, c + 20), (c + 5, c - 90)]
    for x, y in true:
        data += _gauss(size, x, y, pair_snr * NOISE)
    return data.astype(np.float32), c, [(c + dx, c + dy) for dx, dy in pairs], true


def test_bright_sources_are_the_absolute_peaks_one_per_source():
    from radiofind.detect.artefacts import bright_sources

    data, c, *_ = _field()
    x, y, snr = bright_sources(data, NOISE, BEAM)
    assert (x.tolist(), y.tolist()) == ([c], [c]) and snr[0] == pytest.approx(1000, rel=0.02)
    x2, y2, snr2 = bright_sources(-data, NOISE, BEAM)  # the image times -1: the same source
    assert (x2.tolist(), y2.tolist()) == ([c], [c]) and snr2[0] == pytest.approx(snr[0])
    assert len(bright_sources(data, NOISE, BEAM, least=2000)[0]) == 0
    # Found block by block: a source on the corner of four 64-pixel blocks, and a second one.
    import dask.array as da

    two = data + _gauss(256, 64, 64, 500 * NOISE)
    xb, yb, sb = bright_sources(da.from_array(two, chunks=64), NOISE, BEAM)
    assert sorted(zip(xb.tolist(), yb.tolist())) == [(64.0, 64.0), (c, c)]
    assert np.allclose(sorted(sb), sorted(bright_sources(two, NOISE, BEAM)[2]))


def test_artefacts_are_the_detections_with_a_negative_mirror():
    from radiofind.detect.artefacts import artefacts, bright_sources

    data, c, pairs, true = _field()
    x = np.array([p[0] for p in pairs + true], float)
    y = np.array([p[1] for p in pairs + true], float)
    snr = data[y.astype(int), x.astype(int)] / NOISE
    bright = bright_sources(data, NOISE, BEAM)
    flagged, mirror = artefacts(data, x, y, snr, NOISE, bright, BEAM, 0.8)
    assert flagged.tolist() == [True] * len(pairs) + [False] * len(true)
    assert np.all(mirror[:len(pairs)] < -0.8 * snr[:len(pairs)])
    assert np.all(np.abs(mirror[len(pairs):]) < 4)  # noise at a true source's mirror
    # Bright detections (a tenth of the source or more) and those near it are not checked.
    flagged, mirror = artefacts(data, x, y, np.full(x.shape, 150.0), NOISE, bright, BEAM, 0.8)
    assert not flagged.any() and np.isnan(mirror).all()
    near = artefacts(data, [c + 5.0], [c], [8.0], NOISE, bright, BEAM, 0.8)[1]
    assert np.isnan(near).all()
    # A mirror point off the image reads NaN and flags nothing; no bright source, nothing done.
    off = artefacts(data, [5.0], [5.0], [8.0], NOISE, (np.array([200.0]), np.array([200.0]),
                                                       np.array([1000.0])), BEAM, 0.8)
    assert not off[0].any() and np.isnan(off[1]).all()
    none = artefacts(data, x, y, snr, NOISE, (np.empty(0),) * 3, BEAM, 0.8)
    assert not none[0].any()


def test_detect_drops_the_artefacts_and_keeps_the_sources(tmp_path):
    from astropy.table import Table

    from radiofind.detect.run import detect

    data, c, pairs, true = _field()
    image = write_image(tmp_path / "bright.fits", data, make_header(256, beam_arcsec=6.9))
    args = dict(image=image, model="meerkat-uniform", formats=["fits"])
    off = detect(outdir=str(tmp_path / "off"), artefact_check=0, **args)
    on = detect(outdir=str(tmp_path / "on"), **args)
    t_off = Table.read(off["catalog"])
    t_on = Table.read(on["catalog"])

    def found(table, points):
        return [bool(np.min(np.hypot(table["x"] - px, table["y"] - py)) < 2) for px, py in points]

    assert all(found(t_off, pairs)) and all(found(t_off, true))  # the network sees them all
    assert not any(found(t_on, pairs)) and all(found(t_on, true))
    assert on["n_artefacts"] == len(t_off) - len(t_on) >= len(pairs)
    assert t_on.meta["ARTEFK"] == 0.8 and t_off.meta["ARTEFK"] == 0
    assert "mirror_snr" in t_on.colnames and "mirror_snr" not in t_off.colnames
    with pytest.raises(RadiofindError, match="artefact-check"):
        detect(outdir=str(tmp_path / "bad"), artefact_check=-1, **args)
