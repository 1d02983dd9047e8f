"""The artefact check (radiofind.detect.artefacts): a bright source's calibration artefacts come
in +/- pairs mirrored through it, which the image plus its reflection through the source cancels;
true sources keep their height in that sum."""

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


def _field(size=256, *, pairs=((40, 10), (-25, 35), (15, -50)), pair_snr=8.0, seed=3,
           artefact_rms=1.0):
    """Noise, a 1000-sigma source at the centre, a field of artefacts odd about it (smooth on the
    beam's scale, ``artefact_rms`` times the noise), artefact pairs (+ at centre + d, - at centre
    - d) and true sources of the same SNR whose mirror points hold only noise and artefacts."""
    data, *_ = make_image(size, n_sources=0, beam_pix=BEAM, noise=NOISE, seed=seed)
    c = size // 2
    data = data + _gauss(size, c, c, 1000 * NOISE)
    smooth, *_ = make_image(size, n_sources=0, beam_pix=BEAM, noise=NOISE, seed=seed + 1)
    # f(x) - f(2c - x): the reversed array rolled by one puts f[2c - y, 2c - x] at [y, x].
    odd = smooth - np.roll(smooth[::-1, ::-1], 1, axis=(0, 1))
    data = data + odd * (artefact_rms / np.sqrt(2))
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


def test_artefacts_are_the_detections_the_reflection_cancels():
    from radiofind.detect.artefacts import DEFAULT_T, artefacts, bright_sources

    data, c, pairs, true = _field()
    # A true source of SNR 6 on a pair's positive twin (its mirror a trough of -12): the sum
    # keeps its 6; and two true sources mirror images of each other through the bright one.
    data = data + _gauss(256, c + 30, c - 45, 18 * NOISE) - _gauss(256, c - 30, c + 45,
                                                                   12 * NOISE)
    data = data + _gauss(256, c - 80, c - 40, 8 * NOISE) + _gauss(256, c + 80, c + 40, 8 * NOISE)
    true = true + [(c + 30, c - 45), (c - 80, c - 40), (c + 80, c + 40)]
    x = np.array([p[0] for p in pairs + true], float)
    y = np.array([p[1] for p in pairs + true], float)
    snr = data[y.astype(int), x.astype(int)] / NOISE
    bright = bright_sources(data, NOISE, BEAM)
    flagged, mirror, sum_z = artefacts(data, x, y, snr, NOISE, bright, BEAM, DEFAULT_T)
    assert flagged.tolist() == [True] * len(pairs) + [False] * len(true)
    n = len(pairs)
    assert np.all(mirror[:n] < -4)  # the twin's trough (-8), in units of the noise
    assert np.all(np.abs(sum_z[:n]) < DEFAULT_T) and np.all(sum_z[n:] > 3)
    assert mirror[n + 3] < -10 and np.all(mirror[n + 4:] > 5)
    # Bright detections (a tenth of the source or more) and those near it are not checked.
    flagged, mirror, sum_z = artefacts(data, x, y, np.full(x.shape, 150.0), NOISE, bright, BEAM,
                                       DEFAULT_T)
    assert not flagged.any() and np.isnan(mirror).all() and np.isnan(sum_z).all()
    near = artefacts(data, [c + 5.0], [c], [8.0], NOISE, bright, BEAM, DEFAULT_T)[1]
    assert np.isnan(near).all()
    # A mirror point off the image reads NaN and flags nothing; no bright source, nothing done.
    off = artefacts(data, [5.0], [5.0], [8.0], NOISE, (np.array([200.0]), np.array([200.0]),
                                                       np.array([1000.0])), BEAM, DEFAULT_T)
    assert not off[0].any() and np.isnan(off[1]).all()
    none = artefacts(data, x, y, snr, NOISE, (np.empty(0),) * 3, BEAM, DEFAULT_T)
    assert not none[0].any()
    # Without the field of artefacts the reflection cancels nothing on the rings: a few pairs
    # are not told from chance, and nothing is checked.
    clean, *_ = _field(artefact_rms=0.0)
    quiet = artefacts(clean, x, y, snr, NOISE, bright_sources(clean, NOISE, BEAM), BEAM,
                      DEFAULT_T)
    assert not quiet[0].any() and np.isnan(quiet[2]).all()
    # A looser mirror cut flags the source on the twin too; a stricter sum cut still keeps it.
    k = n + 3
    assert artefacts(data, x[k:k + 1], y[k:k + 1], snr[k:k + 1], NOISE, bright, BEAM, 10.0,
                     mirror_sigma=1.0)[0].all()


def test_only_the_brightest_sources_are_mirrors(monkeypatch):
    """A survey image holds thousands of sources above SNR 100: only the MAX_MIRRORS brightest
    are mirrors (each costs a pass over the detections), so a pair mirrored through a fainter
    one is not checked."""
    import radiofind.detect.artefacts as module

    data, c, pairs, true = _field()
    x = np.array([p[0] for p in pairs], float)
    y = np.array([p[1] for p in pairs], float)
    snr = data[y.astype(int), x.astype(int)] / NOISE
    bright = module.bright_sources(data, NOISE, BEAM)
    # The field's source last among brighter ones (off the image: they check nothing here).
    many = tuple(np.concatenate([np.full(module.MAX_MIRRORS, v), b]) for v, b in
                 zip((-1e4, -1e4, 5000.0), bright, strict=True))
    assert module.artefacts(data, x, y, snr, NOISE, bright, BEAM, module.DEFAULT_T)[0].all()
    assert not module.artefacts(data, x, y, snr, NOISE, many, BEAM, module.DEFAULT_T)[0].any()
    monkeypatch.setattr(module, "MAX_MIRRORS", module.MAX_MIRRORS + 1)
    assert module.artefacts(data, x, y, snr, NOISE, many, BEAM, module.DEFAULT_T)[0].all()


def test_ring_spreads_measure_what_the_reflection_leaves():
    """On noise the sum's spread is sqrt(2) times the image's; an odd artefact pattern around
    the source raises the image's spread and leaves the sum's alone."""
    from radiofind.detect.artefacts import refined, ring_spreads

    rng = np.random.default_rng(5)
    size = 400
    c = (size - 1) / 2  # the reflection below is about the middle of the array
    noise = rng.normal(0, 1.0, (size, size))
    odd = rng.normal(0, 3.0, (size, size))
    odd = odd - odd[::-1, ::-1]  # f(x) - f(2c - x)
    radii = np.array([20.0, 60.0, 120.0])
    s_sum, s_img = ring_spreads(noise, c, c, radii, BEAM)
    assert np.allclose(s_img, 1.0, rtol=0.1) and np.allclose(s_sum, np.sqrt(2), rtol=0.1)
    a_sum, a_img = ring_spreads(noise + odd, c, c, radii, BEAM)
    assert np.all(a_img > 3.5) and np.allclose(a_sum, s_sum, rtol=1e-6)
    # Rings wholly off the image (their mirrors too) give NaN; the centre found to sub-pixel.
    assert np.isnan(ring_spreads(noise, c, c, np.array([1000.0]), BEAM)[0]).all()
    img = _gauss(64, 30.3, 31.7, 1.0)
    xr, yr = refined(-img, np.array([30.0]), np.array([32.0]))  # |value|: a trough as well
    assert abs(xr[0] - 30.3) < 0.1 and abs(yr[0] - 31.7) < 0.1


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
    assert t_on.meta["ARTEFT"] == 1.5 and t_off.meta["ARTEFT"] == 0
    assert t_on.meta["ARTEFM"] == 3.0 and "ARTEFM" not in t_off.meta
    for col in ("mirror_snr", "reflection_z"):
        assert col in t_on.colnames and col not in t_off.colnames
    with pytest.raises(RadiofindError, match="artefact-check"):
        detect(outdir=str(tmp_path / "bad"), artefact_check=-1, **args)
