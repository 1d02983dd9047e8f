"""Tests of radiofind.simulation with real components on tiny, seeded observations.

A MeerKAT Measurement Set of a few minutes and two channels takes about a second to make with
casatools, and WSClean images it at 256 x 256 in well under a second, so the sign convention, the
pixel mapping and the noise theory are all checked against the real imager, not a mock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from radiofind.errors import RadiofindError
from radiofind.io.images import read_image
from radiofind.noise import robust_rms
from radiofind.simulation.ms import Observation, count_unflagged, create_ms, ms_frequencies
from radiofind.simulation.noise import natural_image_noise, visibility_sigma
from radiofind.simulation.predict import (
    dft_visibilities,
    fill_ms,
    model_image,
    pixel_to_lm,
    predict_point_sources,
)
from radiofind.simulation.sky import PointSky, draw_point_sources, image_wcs, parse_pointing
from radiofind.simulation.telescopes import get_telescope, known_telescopes

casacore_tables = pytest.importorskip("casacore.tables")
needs_wsclean = pytest.mark.skipif(shutil.which("wsclean") is None, reason="needs WSClean")

SIZE, SCALE = 256, 2.0  # a 8.5' image: tiny, but with sources well off the phase centre


def _sky(x, y, flux) -> PointSky:
    x, y = np.asarray(x), np.asarray(y)
    return PointSky(x=x, y=y, ra=np.zeros(len(x)), dec=np.zeros(len(x)),
                    snr=np.asarray(flux, float), flux=np.asarray(flux, float), flux_unit=1.0)


@pytest.fixture(scope="module")
def small_ms(tmp_path_factory):
    """An empty 10-minute, 60-s, 2-channel MeerKAT MS (copied by tests that fill it)."""
    obs = Observation(get_telescope("meerkat"), 50.0, -20.0, synthesis_time=10 / 60,
                      integration_time=60.0, frequency=1.4e9, channel_width=2.0898e6, n_channels=2)
    path = tmp_path_factory.mktemp("ms") / "small.ms"
    create_ms(path, obs)
    return path, obs


def _copy(ms, tmp_path):
    dst = tmp_path / "sim.ms"
    shutil.copytree(ms, dst)
    return dst


# --- layouts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, count, prefix, dish, lat, lon, height", [
    ("meerkat", 64, "M0", 13.5, -30.71, 21.44, (1000, 1200)),
    ("askap", 36, "ak", 12.0, -26.70, 116.63, (300, 450)),
])
def test_layout_files(name, count, prefix, dish, lat, lon, height):
    tel = get_telescope(name)
    assert tel.n_antennas == count == len(set(tel.antenna_names))
    assert all(a.startswith(prefix) for a in tel.antenna_names)
    assert np.all(tel.dish_diameters == dish)
    radius = np.linalg.norm(tel.positions, axis=1)
    assert np.all(np.abs(radius - 6.37e6) < 2.5e4)  # on the Earth's surface
    loc = tel.location
    assert loc.lat.to_value(u.deg) == pytest.approx(lat, abs=0.05)
    assert loc.lon.to_value(u.deg) == pytest.approx(lon, abs=0.05)
    assert height[0] < loc.height.to_value(u.m) < height[1]
    spread = np.linalg.norm(tel.positions - tel.positions.mean(axis=0), axis=1)
    assert spread.max() < 8000  # both arrays fit within ~8 km of their centre
    assert np.min(spread) < 300  # and have a core


def test_layout_names_and_headers():
    assert get_telescope("MeerKAT").antenna_names[0] == "M000"
    assert get_telescope("meerkat").antenna_names[-1] == "M063"
    assert get_telescope("askap").antenna_names[-1] == "ak36"
    from importlib import resources
    for name in known_telescopes():
        text = (resources.files("radiofind.simulation") / "layouts" / f"{name}.txt").read_text()
        assert "Source: PyPI package" in text and "ITRF" in text


def test_unknown_telescope_lists_known():
    with pytest.raises(RadiofindError, match="askap, meerkat"):
        get_telescope("vla")


# --- Measurement Set -----------------------------------------------------------------------------

def test_ms_structure(small_ms):
    path, obs = small_ms
    with casacore_tables.table(str(path), ack=False) as tab:
        assert "MODEL_DATA" not in tab.colnames() and "CORRECTED_DATA" not in tab.colnames()
        a1, a2 = tab.getcol("ANTENNA1"), tab.getcol("ANTENNA2")
        assert np.all(a1 != a2)  # no autocorrelations
        assert tab.nrows() == 2016 * obs.n_times == 2016 * 10
        times = np.unique(tab.getcol("TIME"))
        assert np.allclose(np.diff(times), 60.0)
        assert tab.getcell("DATA", 0).shape == (2, 4)
    with casacore_tables.table(str(path / "OBSERVATION"), ack=False) as tab:
        assert tab.getcol("TELESCOPE_NAME")[0] == "MeerKAT"
    assert np.allclose(ms_frequencies(path), [1.4e9 - 2.0898e6 / 2, 1.4e9 + 2.0898e6 / 2])
    assert count_unflagged(path) == 2016 * 10 * 2

    # The track is centred on transit: hour angle ~0 half-way through.
    from casacore.measures import measures
    me = measures()
    me.do_frame(me.epoch("UTC", f"{(times[0] + times[-1]) / 2}s"))
    me.do_frame(me.position("ITRF", *[f"{v}m" for v in get_telescope("meerkat").location.value]))
    hadec = me.measure(me.direction("J2000", "50deg", "-20deg"), "HADEC")
    assert abs(np.degrees(hadec["m0"]["value"])) < 0.5


@pytest.mark.parametrize("change, message", [
    ({"synthesis_time": 0}, "synthesis_time"), ({"integration_time": -1}, "integration_time"),
    ({"n_channels": 0}, "n_channels"), ({"dec_deg": 70.0}, "never rises"),
])
def test_observation_validation(change, message):
    args = dict(telescope=get_telescope("meerkat"), ra_deg=50.0, dec_deg=-20.0,
                synthesis_time=1.0, integration_time=300.0, frequency=1.4e9,
                channel_width=2e6, n_channels=2)
    args.update(change)
    with pytest.raises(RadiofindError, match=message):
        Observation(**args)


# --- sign convention and pixel mapping -----------------------------------------------------------

def test_pixel_to_lm_axes():
    l_, m_ = pixel_to_lm([SIZE // 2, SIZE // 2 - 10, SIZE // 2], [SIZE // 2, SIZE // 2, 140],
                         SIZE, SCALE)
    step = np.radians(SCALE / 3600)
    assert np.allclose(l_, [0, 10 * step, 0]) and np.allclose(m_, [0, 0, 12 * step])


def test_ducc0_predict_matches_dft(small_ms):
    path, _ = small_ms
    with casacore_tables.table(str(path), ack=False) as tab:
        uvw = tab.getcol("UVW")
    freqs = ms_frequencies(path)
    x, y = np.array([20, 128, 240, 77, 1]), np.array([30, 128, 200, 250, 128])
    flux = np.array([1.0, 0.5, 2.0, 0.3, 0.7])
    vis = predict_point_sources(uvw, freqs, model_image(x, y, flux, SIZE), SCALE)
    ref = dft_visibilities(uvw, freqs, *pixel_to_lm(x, y, SIZE, SCALE), flux)
    assert np.max(np.abs(vis - ref)) / np.max(np.abs(ref)) < 1e-6
    # The plain textbook sign would put sources at (-l, -m): make sure it is distinguishable.
    wrong = dft_visibilities(uvw, freqs, *[-c for c in pixel_to_lm(x, y, SIZE, SCALE)], flux)
    assert np.max(np.abs(vis - wrong)) / np.max(np.abs(ref)) > 0.1


@needs_wsclean
def test_wsclean_places_source_at_its_pixel(small_ms, tmp_path):
    from radiofind.simulation.imaging import run_wsclean

    path, obs = small_ms
    ms = _copy(path, tmp_path)
    x, y = 60, 190  # off-axis in both coordinates, so a flip of either axis would show
    fill_ms(ms, _sky([x], [y], [1.0]), size=SIZE, scale=SCALE, sigma=1e-6,
            rng=np.random.default_rng(0))
    out = tmp_path / "img"
    out.mkdir()
    products = run_wsclean(ms, out, weighting="natural", size=SIZE, scale=SCALE, niter=0,
                           threads=2)
    image = read_image(products.image)
    peak_y, peak_x = np.unravel_index(np.argmax(image.data), image.data.shape)
    # Sub-pixel peak by a parabola through the neighbours: within 0.5 px of the truth.
    def vertex(a, b, c):
        return 0.5 * (a - c) / (a - 2 * b + c)
    d = image.data
    fx = peak_x + vertex(d[peak_y, peak_x - 1], d[peak_y, peak_x], d[peak_y, peak_x + 1])
    fy = peak_y + vertex(d[peak_y - 1, peak_x], d[peak_y, peak_x], d[peak_y + 1, peak_x])
    assert abs(fx - x) < 0.5 and abs(fy - y) < 0.5
    assert d[y, x] == pytest.approx(1.0, rel=0.01)
    # Our grid is WSClean's: same world coordinates for the same pixel.
    ours = image_wcs(obs.ra_deg, obs.dec_deg, SIZE, SCALE)
    assert np.allclose(ours.all_pix2world([x], [y], 0), image.wcs.all_pix2world([x], [y], 0),
                       atol=1e-9)


# --- noise ---------------------------------------------------------------------------------------

def test_visibility_sigma_formula():
    assert visibility_sigma(443.0, 2.0898e6, 300.0) == pytest.approx(
        443.0 / np.sqrt(2 * 2.0898e6 * 300.0))
    assert natural_image_noise(1.0, 50) == pytest.approx(0.1)
    with pytest.raises(RadiofindError):
        visibility_sigma(0.0, 1e6, 10.0)


@needs_wsclean
def test_noise_theory_matches_wsclean_natural_image(small_ms, tmp_path):
    from radiofind.simulation.imaging import run_wsclean

    path, obs = small_ms
    ms = _copy(path, tmp_path)
    sigma = visibility_sigma(443.0, obs.channel_width, obs.integration_time)
    fill_ms(ms, _sky([], [], []), size=SIZE, scale=SCALE, sigma=sigma,
            rng=np.random.default_rng(3))
    with casacore_tables.table(str(ms), ack=False) as tab:
        data = tab.getcol("DATA")
        assert np.std(data.real) == pytest.approx(sigma, rel=0.02)
        assert np.std(data.imag) == pytest.approx(sigma, rel=0.02)
        assert np.allclose(tab.getcol("SIGMA"), sigma)
        assert np.allclose(tab.getcol("WEIGHT"), 1 / sigma**2, rtol=1e-6)
    theory = natural_image_noise(sigma, count_unflagged(ms))
    out = tmp_path / "img"
    out.mkdir()
    products = run_wsclean(ms, out, weighting="natural", size=SIZE, scale=SCALE, niter=0,
                           threads=2)
    measured = robust_rms(read_image(products.image).data)
    assert measured == pytest.approx(theory, rel=0.10)


# --- sky -----------------------------------------------------------------------------------------

def _draw(n=300, seed=1, **kw):
    wcs = image_wcs(50.0, -20.0, 1024, 1.5)
    args = dict(size=1024, scale=1.5, flux_unit=1e-5, border=0.1, min_separation=40.0, seed=seed)
    args.update(kw)
    return draw_point_sources(n, wcs=wcs, **args)


def test_sky_reproducible_and_seeded():
    a, b, c = _draw(seed=7), _draw(seed=7), _draw(seed=8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.snr, b.snr)
    assert not np.array_equal(a.x, c.x)
    assert np.allclose(a.flux, a.snr * 1e-5)


def test_sky_separation_border_and_pixels():
    sky = _draw(n=200, seed=2)
    assert sky.x.dtype.kind == "i" and sky.y.dtype.kind == "i"
    lo, hi = int(np.ceil(0.1 * 1024)), 1024 - 1 - int(np.ceil(0.1 * 1024))
    assert sky.x.min() >= lo and sky.x.max() <= hi and sky.y.min() >= lo and sky.y.max() <= hi
    d = np.hypot(sky.x[:, None] - sky.x, sky.y[:, None] - sky.y) * 1.5
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 40.0
    # RA/Dec agree with the image grid.
    ra, dec = image_wcs(50.0, -20.0, 1024, 1.5).all_pix2world(sky.x, sky.y, 0)
    assert np.allclose(sky.ra, ra) and np.allclose(sky.dec, dec)


def test_sky_snr_distribution():
    sky = _draw(n=4000, seed=3, min_separation=0.0, border=0.0)
    assert sky.snr.min() >= 0.1
    assert np.mean(sky.snr < 1.0) == pytest.approx(1 - np.exp(-0.9 / 1.5), abs=0.025)  # ~45 %
    assert len(set(zip(sky.x.tolist(), sky.y.tolist(), strict=True))) == 4000  # distinct pixels


def test_sky_too_crowded_is_an_error():
    with pytest.raises(RadiofindError, match="cannot place|placed only"):
        _draw(n=2000, min_separation=40.0)
    with pytest.raises(RadiofindError, match="placed only"):
        _draw(n=1000, min_separation=40.0, max_rejections=5000)


@pytest.mark.parametrize("ra, dec, expect", [
    ("50.0", "-20.0", (50.0, -20.0)), ("03h20m00s", "-20d00m00s", (50.0, -20.0)),
    ("03:20:00", "-20:30:00", (50.0, -20.5)), (370.0, 10, (10.0, 10.0)),
])
def test_parse_pointing(ra, dec, expect):
    assert np.allclose(parse_pointing(ra, dec), expect)


@pytest.mark.parametrize("ra, dec", [("fifty", "-20"), ("50", "-95"), ("50", "")])
def test_parse_pointing_errors(ra, dec):
    with pytest.raises(RadiofindError):
        parse_pointing(ra, dec)


# --- the whole command ---------------------------------------------------------------------------

TINY = dict(size=256, scale=2.0, synthesis_time=0.1, integration_time=60.0, n_channels=2,
            n_sources=10, min_separation=20.0, niter=200, threads=2)


@pytest.mark.parametrize("change, message", [
    ({"telescope": "vla"}, "unknown telescope"), ({"size": 0}, "size"), ({"size": -8}, "size"),
    ({"size": 255}, "even"), ({"scale": 0}, "scale"), ({"scale": -1.0}, "scale"),
    ({"ra": "nowhere"}, "RA"), ({"dec": "-100"}, "Dec"), ({"synthesis_time": 0}, "synthesis"),
    ({"n_channels": 0}, "n_channels"), ({"weightings": ["robust"]}, "weighting"),
    ({"sigma": -1.0}, "sigma"), ({"n_sources": 5000}, "sources"), ({"border": 0.5}, "border"),
    ({"skip_imaging": True, "drop_ms": True}, "no data"), ({"weightings": []}, "weighting"),
    ({"bright_source": -5.0}, "bright_source"), ({"auto_mask": 2.0}, "auto_mask"),
    ({"auto_mask": 0.0}, "auto_mask"), ({"super_weight": 0.0}, "super_weight"),
    ({"super_weight": -0.5}, "super_weight"), ({"weightings": ["briggs3"]}, "briggs<r>"),
    ({"weightings": ["briggs"]}, "weighting"), ({"weightings": ["briggs-0.5x"]}, "weighting"),
    ({"phase_error": -1.0}, "phase_error"), ({"resolved": 1.5}, "resolved"),
    ({"resolved": -0.1}, "resolved"), ({"resolved_fwhm": [5.0]}, "resolved_fwhm"),
    ({"resolved_fwhm": [8.0, 4.0]}, "least first"), ({"resolved_fwhm": "0,4"}, "resolved_fwhm"),
])
def test_simulate_rejects_bad_input_before_work(tmp_path, change, message):
    from radiofind.simulation.run import simulate

    with pytest.raises(RadiofindError, match=message):
        simulate(outdir=tmp_path / "out", **{**TINY, **change})
    assert os.listdir(tmp_path) == []


def test_simulate_refuses_existing_outputs(tmp_path):
    from radiofind.simulation.run import simulate

    out = tmp_path / "out"
    out.mkdir()
    (out / "truth.fits").write_text("old")
    with pytest.raises(RadiofindError, match="exists"):
        simulate(outdir=out, **TINY)
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging folder left behind
    assert os.listdir(out) == ["truth.fits"] and (out / "truth.fits").read_text() == "old"


@needs_wsclean
def test_simulate_tiny_end_to_end(tmp_path):
    from radiofind.simulation.run import simulate

    out = tmp_path / "out"
    summary = simulate(outdir=out, seed=5, **TINY)
    names = sorted(os.listdir(out))
    assert names == sorted(["sim.ms", "truth.fits", "simulation.json"]
                           + [f"{w}-{k}.fits" for w in ("natural", "uniform")
                              for k in ("image", "residual", "psf")])
    saved = json.loads((out / "simulation.json").read_text())
    assert saved["parameters"]["size"] == 256 and saved["parameters"]["sefd"] is None
    assert saved["observation"]["sefd_jy"] == 443.0
    for w in ("natural", "uniform"):
        assert saved["images"][w]["noise"] > 0 and saved["images"][w]["beam_arcsec"]["bmaj"] > 0
    assert {"casatools", "ducc0", "wsclean"} <= set(saved["versions"])
    assert summary["noise"]["theoretical_natural_jy"] == saved["noise"]["theoretical_natural_jy"]
    truth = Table.read(out / "truth.fits")
    assert len(truth) == 10
    assert {"ra", "dec", "flux", "x", "y", "snr_natural", "snr_uniform"} <= set(truth.colnames)
    assert truth.meta["SEED"] == 5 and truth.meta["TELESCOP"] == "MeerKAT"
    assert np.allclose(truth["flux"], truth["snr_input"] * saved["noise"]["flux_unit_jy"])
    # Same seed, same sky and bit-identical visibilities; WSClean's multi-threaded clean is not
    # guaranteed bit-reproducible, so the imaged noise is compared to 0.1 %.
    again = simulate(outdir=tmp_path / "again", seed=5, **TINY)
    with casacore_tables.table(str(out / "sim.ms"), ack=False) as a, \
            casacore_tables.table(str(tmp_path / "again" / "sim.ms"), ack=False) as b:
        assert np.array_equal(a.getcol("DATA"), b.getcol("DATA"))
    assert again["images"]["natural"]["noise"] == pytest.approx(
        summary["images"]["natural"]["noise"], rel=1e-3)
    assert np.array_equal(Table.read(tmp_path / "again" / "truth.fits")["flux"], truth["flux"])
    with pytest.raises(RadiofindError, match="exists"):
        simulate(outdir=out, seed=5, **TINY)
    simulate(outdir=out, seed=6, overwrite=True, **TINY)
    assert Table.read(out / "truth.fits").meta["SEED"] == 6


@needs_wsclean
def test_simulate_without_imaging_or_ms(tmp_path):
    from radiofind.simulation.run import simulate

    out = tmp_path / "out"
    simulate(outdir=out, skip_imaging=True, telescope="askap", **TINY)
    assert sorted(os.listdir(out)) == ["sim.ms", "simulation.json", "truth.fits"]
    truth = Table.read(out / "truth.fits")
    assert not [c for c in truth.colnames if c.startswith("snr_") and c != "snr_input"]
    assert json.loads((out / "simulation.json").read_text())["observation"]["n_antennas"] == 36
    simulate(outdir=tmp_path / "nms", drop_ms=True, weightings=["uniform"], **TINY)
    assert sorted(os.listdir(tmp_path / "nms")) == [
        "simulation.json", "truth.fits", "uniform-image.fits", "uniform-psf.fits",
        "uniform-residual.fits"]


def _config(**kw):
    """A validated config with simulate()'s defaults, TINY and ``kw`` (no work, no WSClean)."""
    import inspect

    from radiofind.simulation.config import SimulationConfig
    from radiofind.simulation.run import simulate

    params = {k: v.default for k, v in inspect.signature(simulate).parameters.items()}
    params.update(outdir="unused", skip_imaging=True, **{**TINY, **kw})
    return SimulationConfig.from_params(params)


def test_bright_source_leaves_the_other_sources_alone():
    plain = _config(seed=9).draw_sky()
    for off in (None, 0.0):
        same = _config(seed=9, bright_source=off).draw_sky()
        assert len(same) == len(plain) and np.array_equal(same.snr, plain.snr)
    sky = _config(seed=9, bright_source=500.0).draw_sky()
    assert len(sky) == len(plain) + 1
    for name in ("x", "y", "ra", "dec", "snr"):
        assert np.array_equal(getattr(sky, name)[:-1], getattr(plain, name)), name
    assert sky.snr[-1] == 500.0
    # Inside the border, apart from every other source, and seeded.
    lo, hi = int(np.ceil(0.1 * 256)), 256 - 1 - int(np.ceil(0.1 * 256))
    assert lo <= sky.x[-1] <= hi and lo <= sky.y[-1] <= hi
    assert np.hypot(plain.x - sky.x[-1], plain.y - sky.y[-1]).min() * 2.0 >= 20.0
    again = _config(seed=9, bright_source=500.0).draw_sky()
    other = _config(seed=10, bright_source=500.0).draw_sky()
    assert (again.x[-1], again.y[-1]) == (sky.x[-1], sky.y[-1])
    assert (other.x[-1], other.y[-1]) != (sky.x[-1], sky.y[-1])
    ra, dec = image_wcs(50.0, -20.0, 256, 2.0).all_pix2world([sky.x[-1]], [sky.y[-1]], 0)
    assert np.allclose([sky.ra[-1], sky.dec[-1]], [ra[0], dec[0]])


def test_auto_mask_reaches_the_wsclean_command(monkeypatch, tmp_path):
    from radiofind.simulation.imaging import wsclean_command

    fake = tmp_path / "wsclean"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RADIOFIND_WSCLEAN", str(fake))
    args = dict(weighting="natural", size=64, scale=2.0, niter=10, auto_threshold=1.0, mgain=0.8,
                threads=1)
    cmd = wsclean_command("x.ms", "n", auto_mask=5.0, **args)
    assert cmd[cmd.index("-auto-mask") + 1] == "5" and cmd[cmd.index("-auto-threshold") + 1] == "1"
    assert "-auto-mask" not in wsclean_command("x.ms", "n", **args)
    assert _config(auto_mask=5.0, auto_threshold=1.0).auto_mask == 5.0
    assert _config().auto_mask is None
    cmd = wsclean_command("x.ms", "n", super_weight=0.25, **args)
    assert cmd[cmd.index("-super-weight") + 1] == "0.25"
    assert cmd.index("-super-weight") > cmd.index("-weight")  # -weight would reset it
    assert "-super-weight" not in wsclean_command("x.ms", "n", super_weight=1.0, **args)
    assert _config(super_weight=0.25).super_weight == 0.25 and _config().super_weight == 1.0


@needs_wsclean
def test_super_weight_gives_a_larger_images_uniform_beam(small_ms, tmp_path):
    """WSClean counts uniform weights per uv cell of the image: the same data imaged at twice the
    size has a broader beam, and -super-weight 0.5 gives the smaller image that beam."""
    from radiofind.simulation.imaging import run_wsclean

    path, _ = small_ms
    ms = _copy(path, tmp_path)
    fill_ms(ms, _sky([128], [128], [1.0]), size=SIZE, scale=SCALE, sigma=1e-6,
            rng=np.random.default_rng(0))
    beams = {}
    for size, sw in [(SIZE, 1.0), (2 * SIZE, 1.0), (SIZE, 0.5)]:
        out = tmp_path / f"{size}-{sw:g}"
        out.mkdir()
        products = run_wsclean(ms, out, weighting="uniform", size=size, scale=SCALE, niter=0,
                               threads=2, super_weight=sw)
        beams[size, sw] = read_image(products.image).beam
    small, large, emulated = beams[SIZE, 1.0], beams[2 * SIZE, 1.0], beams[SIZE, 0.5]
    assert large.size_deg > 1.05 * small.size_deg
    assert emulated.bmaj == pytest.approx(large.bmaj, rel=0.01)
    assert emulated.bmin == pytest.approx(large.bmin, rel=0.01)


@needs_wsclean
def test_simulate_bright_source_and_auto_mask(tmp_path):
    """The bright source is in the truth and comes out at its SNR in a masked-clean image."""
    from radiofind.simulation.run import simulate

    simulate(outdir=tmp_path / "plain", seed=4, skip_imaging=True, **TINY)
    out = tmp_path / "out"
    summary = simulate(outdir=out, seed=4, bright_source=200.0, auto_mask=5.0,
                       auto_threshold=1.0, weightings=["natural"], drop_ms=True, **TINY)
    assert summary["parameters"]["bright_source"] == 200.0
    assert summary["parameters"]["auto_mask"] == 5.0
    truth, plain = Table.read(out / "truth.fits"), Table.read(tmp_path / "plain" / "truth.fits")
    assert len(truth) == len(plain) + 1 == TINY["n_sources"] + 1
    assert truth.meta["BRIGHTSN"] == 200.0 and truth["id"][-1] == TINY["n_sources"]
    for col in ("ra", "dec", "flux", "x", "y", "snr_input"):
        assert np.array_equal(truth[col][:-1], plain[col]), col
    assert truth["snr_input"][-1] == 200.0
    assert truth["flux"][-1] == pytest.approx(200.0 * summary["noise"]["flux_unit_jy"])
    # Measured in the restored natural image (its noise sits a little above theory).
    assert truth["snr_natural"][-1] == pytest.approx(200.0, rel=0.2)
    image = read_image(out / "natural-image.fits")
    peak_y, peak_x = np.unravel_index(np.argmax(image.data), image.data.shape)
    assert (peak_x, peak_y) == (truth["x"][-1], truth["y"][-1])


def test_cli_imports_stay_light():
    code = ("import sys, radiofind.simulation.run, radiofind.simulation.config; "
            "heavy = [m for m in ('casatools', 'ducc0', 'casacore.tables') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_wsclean
def test_simulate_meerkat_1024_noise_and_positions(tmp_path):
    """A DeepSource-like field (1 h, 5-min dumps, 10 channels) at 1024 x 1.5"."""
    from radiofind.simulation.run import simulate

    out = tmp_path / "out"
    summary = simulate(outdir=out, size=1024, n_sources=150, min_separation=30.0, threads=2,
                       seed=11)
    theory = summary["noise"]["theoretical_natural_jy"]
    assert summary["images"]["natural"]["residual_rms"] == pytest.approx(theory, rel=0.10)
    truth = Table.read(out / "truth.fits")
    bright = truth["snr_input"] > 3
    assert bright.sum() >= 10
    # Sources come out near their drawn SNR in the natural image (the measured noise of the
    # restored image is a little above theory, hence the tolerance).
    assert np.median(truth["snr_natural"][bright] / truth["snr_input"][bright]) == pytest.approx(
        1.0, abs=0.2)


def test_simulate_signature_matches_cab():
    """simulate() takes exactly the cab's inputs (with its defaults) plus outdir, keyword-only."""
    import inspect
    from importlib import resources

    import yaml

    from radiofind.simulation.run import simulate

    cab = yaml.safe_load((resources.files("radiofind.cabs") / "radiofind.yml").read_text())
    cab = cab["cabs"]["radiofind.simulate"]
    params = inspect.signature(simulate).parameters
    assert set(params) == set(cab["inputs"]) | set(cab["outputs"])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    for name, spec in cab["inputs"].items():
        default = params[name].default
        expected = spec.get("default")
        if spec["dtype"] == "float" and expected is not None:
            expected = float(expected)  # PyYAML reads 1.4e9 (no exponent sign) as a string
        assert (list(default) if isinstance(default, tuple) else default) == expected, name


def test_missing_wsclean_is_a_clear_error(tmp_path, monkeypatch):
    from radiofind.simulation.run import simulate

    monkeypatch.setenv("RADIOFIND_WSCLEAN", str(tmp_path / "no-such-wsclean"))
    with pytest.raises(RadiofindError, match="wsclean not found"):
        simulate(outdir=tmp_path / "out", **TINY)
    assert os.listdir(tmp_path) == []


def test_failing_wsclean_leaves_nothing_behind(tmp_path, monkeypatch):
    from radiofind.simulation.run import simulate

    fake = tmp_path / "bin" / "wsclean"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: something broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RADIOFIND_WSCLEAN", str(fake))
    with pytest.raises(RadiofindError, match="(?s)exit status 3.*something broke"):
        simulate(outdir=tmp_path / "out", **TINY)
    assert os.listdir(tmp_path) == ["bin"]


# --- the primary beam (simulate --primary-beam) --------------------------------------------------

@pytest.mark.parametrize("name, shape, fwhm_arcmin", [("meerkat", "cosine", 57.5 * 1.5 / 1.4),
                                                       ("askap", "gaussian", 66.9)])
def test_primary_beam_models(name, shape, fwhm_arcmin):
    tel = get_telescope(name)
    assert tel.beam_shape == shape
    fwhm = tel.beam_fwhm_deg(1.4e9)
    assert fwhm * 60 == pytest.approx(fwhm_arcmin, rel=2e-3)
    assert tel.beam_fwhm_deg(2.8e9) == pytest.approx(fwhm / 2)  # lambda / D
    r = np.linspace(0.0, 1.2, 241) * fwhm
    gain = tel.primary_beam(r, 1.4e9)
    assert gain[0] == 1.0 and np.all(np.diff(gain) < 0)  # the main lobe falls off
    assert tel.primary_beam(fwhm / 2, 1.4e9) == pytest.approx(0.5, abs=1e-4)
    assert np.all(np.isfinite(gain)) and np.all(gain > 0)


def test_cosine_beam_pattern_and_its_null():
    tel = get_telescope("meerkat")
    fwhm = tel.beam_fwhm_deg(1.4e9)
    # x = 1.189 r: the removable 0/0 at x = 1/2 is (pi/4)**2, and the first null at x = 3/2.
    assert tel.primary_beam(0.5 / 1.189 * fwhm, 1.4e9) == pytest.approx((np.pi / 4) ** 2)
    assert tel.primary_beam(0.5 / 1.189 * fwhm * (1 + 1e-9), 1.4e9) == pytest.approx(
        (np.pi / 4) ** 2, rel=1e-6)
    assert tel.primary_beam(1.5 / 1.189 * fwhm, 1.4e9) == pytest.approx(0.0, abs=1e-12)
    assert tel.primary_beam(2.0 * fwhm, 1.4e9) == 0.0


def test_offset_from_the_pointing_on_the_sin_grid():
    from radiofind.simulation.sky import offset_deg

    wcs = image_wcs(50.0, -20.0, 256, 10.0)
    x, y = np.array([128, 228, 0, 255, 40]), np.array([128, 128, 0, 255, 200])
    ra, dec = wcs.all_pix2world(x, y, 0)
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    truth = SkyCoord(50.0 * u.deg, -20.0 * u.deg).separation(
        SkyCoord(ra * u.deg, dec * u.deg)).deg
    assert np.allclose(offset_deg(x, y, 256, 10.0), truth, rtol=1e-9, atol=1e-12)


def test_primary_beam_attenuates_the_sky_and_only_it():
    plain = _config(seed=9, bright_source=50.0, scale=10.0).draw_sky()
    cfg = _config(seed=9, bright_source=50.0, primary_beam=True, scale=10.0)
    sky = cfg.draw_sky()
    assert plain.gain is None and np.array_equal(plain.apparent_flux, plain.flux)
    for name in ("x", "y", "snr"):  # the same sources, the bright one too
        assert np.array_equal(getattr(sky, name), getattr(plain, name)), name
    from radiofind.simulation.sky import offset_deg

    expect = get_telescope("meerkat").primary_beam(offset_deg(sky.x, sky.y, 256, 10.0), 1.4e9)
    assert np.allclose(sky.gain, expect) and sky.gain.min() < 0.9 and sky.gain.max() <= 1
    assert np.allclose(sky.apparent_flux, sky.flux * sky.gain)
    assert "pb.fits" in cfg.output_names() and "pb.fits" not in _config().output_names()


@needs_wsclean
def test_simulate_primary_beam_end_to_end(tmp_path):
    """Sources come out attenuated; the -pb image is the image over the beam, and its noise
    rises away from the pointing as 1 / gain."""
    from astropy.io import fits

    from radiofind.noise import robust_rms
    from radiofind.simulation.run import simulate

    out = tmp_path / "out"
    kw = {**TINY, "scale": 10.0, "n_sources": 30, "synthesis_time": 0.5}
    simulate(outdir=out, seed=3, primary_beam=True, snr_scale=20.0, weightings=["natural"],
             drop_ms=True, **kw)
    assert sorted(os.listdir(out)) == ["natural-image-pb.fits", "natural-image.fits",
                                       "natural-psf.fits", "natural-residual.fits", "pb.fits",
                                       "simulation.json", "truth.fits"]
    truth = Table.read(out / "truth.fits")
    assert truth.meta["PBMODEL"] == "cosine" and 0.5 < truth["pb"].min() < 0.9
    # Bright sources come out at their attenuated flux in the image, and at their own flux in
    # the corrected one (restored with CLEAN's beam: a few % either way).
    image = fits.getdata(out / "natural-image.fits").squeeze()
    corrected = fits.getdata(out / "natural-image-pb.fits").squeeze()
    bright = truth["snr_input"] * truth["pb"] > 20
    assert bright.sum() >= 5
    at = (np.asarray(truth["y"][bright], int), np.asarray(truth["x"][bright], int))
    flux, pb = np.asarray(truth["flux"][bright]), np.asarray(truth["pb"][bright])
    assert np.median(image[at] / (flux * pb)) == pytest.approx(1.0, abs=0.1)
    assert np.median(corrected[at] / flux) == pytest.approx(1.0, abs=0.1)
    gain = fits.getdata(out / "pb.fits")
    assert np.allclose(corrected, image / gain, rtol=1e-5)
    assert fits.getheader(out / "natural-image-pb.fits")["BMAJ"] == fits.getheader(
        out / "natural-image.fits")["BMAJ"]
    residual = fits.getdata(out / "natural-residual.fits").squeeze()
    centre, edge = gain > 0.95, gain < 0.75
    ratio = robust_rms(residual[edge] / gain[edge]) / robust_rms(residual[centre] / gain[centre])
    assert ratio == pytest.approx(np.mean(1 / gain[edge]), rel=0.15)


@pytest.mark.parametrize("name, robust", [("natural", 1.5), ("uniform", -1.5), ("briggs-0.5", -0.5),
                                          ("briggs0", 0.0), ("briggs2", 2.0), ("briggs0.25", 0.25)])
def test_briggs_weightings_reach_wsclean(monkeypatch, name, robust):
    from radiofind.simulation import imaging
    from radiofind.simulation.truth import noise_keyword

    monkeypatch.setattr(imaging, "find_wsclean", lambda: "wsclean")
    cmd = imaging.wsclean_command("x.ms", "n", weighting=name, size=64, scale=2.0, niter=10,
                                  auto_threshold=1.0, mgain=0.8, threads=1)
    i = cmd.index("-weight")
    assert cmd[i + 1] == "briggs" and float(cmd[i + 2]) == robust
    assert _config(weightings=f"natural,{name}").weightings == tuple(dict.fromkeys(
        ["natural", name]))
    key = noise_keyword(name)
    assert len(key) <= 8 and key.replace("_", "").isalnum() and key.isupper()
    assert noise_keyword("briggs0.25") != noise_keyword("briggs0.2")  # hundredths kept apart


@needs_wsclean
def test_simulate_a_briggs_weighting(tmp_path):
    """A robust-0 image lies between the natural and uniform ones: its beam and its noise."""
    from radiofind.simulation.run import simulate

    summary = simulate(outdir=tmp_path / "out", seed=2, drop_ms=True,
                       weightings=["natural", "briggs0", "uniform"], **TINY)
    assert (tmp_path / "out" / "briggs0-image.fits").is_file()
    beams = {w: summary["images"][w]["beam_arcsec"]["bmaj"] for w in summary["images"]}
    noise = {w: summary["images"][w]["noise"] for w in summary["images"]}
    assert beams["uniform"] < beams["briggs0"] < beams["natural"]
    assert noise["natural"] < noise["briggs0"] < noise["uniform"]
    truth = Table.read(tmp_path / "out" / "truth.fits")
    assert "snr_briggs0" in truth.colnames
    assert truth.meta["NSBP000"] == pytest.approx(noise["briggs0"], rel=1e-12)


def test_antenna_phases_drift_as_asked():
    """One phase per antenna and integration, of the asked rms, correlated over the timescale;
    each row gets exp(i (phi_p - phi_q)); autocorrelation-free rows' factors have unit modulus."""
    from radiofind.simulation.predict import antenna_phases

    n_ant, n_t, dt = 40, 400, 60.0
    a1, a2 = np.triu_indices(n_ant, 1)
    rows = dict(TIME=np.repeat(np.arange(n_t) * dt, len(a1)), ANTENNA1=np.tile(a1, n_t),
                ANTENNA2=np.tile(a2, n_t))

    class Tab:
        def getcol(self, name):
            return rows[name]

    g = antenna_phases(Tab(), 5.0, np.random.default_rng(1), timescale=1800.0)
    assert g.shape == (n_t * len(a1),) and np.allclose(np.abs(g), 1.0)
    # Recover the antenna phases from the rows with antenna 0 (phi_0 - phi_q) and 1.
    diff = np.angle(g.reshape(n_t, len(a1)))
    d01 = diff[:, 0]  # phi_0 - phi_1 per integration: rms 5 * sqrt(2) degrees
    assert np.degrees(d01.std()) == pytest.approx(5.0 * np.sqrt(2), rel=0.35)
    # Correlated over 30 min: successive integrations (1 min) nearly equal, 1 h apart much less.
    step = np.corrcoef(d01[:-1], d01[1:])[0, 1]
    far = np.corrcoef(d01[:-60], d01[60:])[0, 1]
    assert step > 0.9 and far < step - 0.3
    again = antenna_phases(Tab(), 5.0, np.random.default_rng(1), timescale=1800.0)
    assert np.array_equal(g, again)


@needs_wsclean
def test_phase_errors_leave_the_noise_and_sky_alone_and_corrupt_only_the_sources(tmp_path):
    from radiofind.simulation.run import simulate

    kw = dict(TINY, seed=4, skip_imaging=True, n_sources=3, snr_scale=50.0)
    simulate(outdir=tmp_path / "clean", **kw)
    simulate(outdir=tmp_path / "err", phase_error=5.0, **kw)
    simulate(outdir=tmp_path / "noise", phase_error=5.0, **{**kw, "n_sources": 0})
    simulate(outdir=tmp_path / "noise0", **{**kw, "n_sources": 0})
    with casacore_tables.table(str(tmp_path / "clean" / "sim.ms"), ack=False) as a, \
            casacore_tables.table(str(tmp_path / "err" / "sim.ms"), ack=False) as b, \
            casacore_tables.table(str(tmp_path / "noise" / "sim.ms"), ack=False) as c, \
            casacore_tables.table(str(tmp_path / "noise0" / "sim.ms"), ack=False) as d:
        clean, err, noise = a.getcol("DATA"), b.getcol("DATA"), d.getcol("DATA")
        assert np.array_equal(c.getcol("DATA"), noise)  # no sky: nothing to corrupt
        assert not np.allclose(clean, err)
        # The noise is the same stream in all four: the sky's part changes phase, not modulus.
        np.testing.assert_allclose(np.abs(err - noise), np.abs(clean - noise), rtol=1e-3,
                                   atol=1e-6)
    assert Table.read(tmp_path / "err" / "truth.fits").meta["PHASEERR"] == 5.0
    assert "PHASEERR" not in Table.read(tmp_path / "clean" / "truth.fits").meta
    sky_clean = Table.read(tmp_path / "clean" / "truth.fits")
    assert np.array_equal(sky_clean["flux"], Table.read(tmp_path / "err" / "truth.fits")["flux"])


# --- resolved sources ----------------------------------------------------------------------------

def _moments(image: np.ndarray, x0: float, y0: float) -> tuple[float, float, float]:
    """Second moments (xx, yy, xy) of ``image[y, x]`` about (x0, y0)."""
    yy, xx = np.indices(image.shape)
    w = image / image.sum()
    return (float((w * (xx - x0) ** 2).sum()), float((w * (yy - y0) ** 2).sum()),
            float((w * (xx - x0) * (yy - y0)).sum()))


@pytest.mark.parametrize("pa, along", [(0.0, "y"), (90.0, "x"), (45.0, "-xy"), (135.0, "+xy")])
def test_a_resolved_source_is_a_gaussian_of_its_flux_along_its_position_angle(pa, along):
    fwhm_maj, fwhm_min, scale = 12.0, 4.0, 1.0
    model = model_image([32], [32], [2.5], 64, major=np.array([fwhm_maj]),
                        minor=np.array([fwhm_min]), pa=np.array([pa]), scale=scale)
    assert model.sum() == pytest.approx(2.5)
    mxx, myy, mxy = _moments(model.T, 32, 32)  # model[x, y]: .T is the image
    sigma2 = [(f / 2.3548 / scale) ** 2 for f in (fwhm_maj, fwhm_min)]
    # The trace holds both axes' variances; the orientation follows North (+y) through East (-x).
    assert mxx + myy == pytest.approx(sum(sigma2), rel=0.02)
    if along in ("x", "y"):
        major, minor = (mxx, myy) if along == "x" else (myy, mxx)
        assert major == pytest.approx(sigma2[0], rel=0.02)
        assert minor == pytest.approx(sigma2[1], rel=0.05)
    else:  # PA 45: towards North-East, up and left (xy < 0); PA 135: South-East (xy > 0)
        assert mxy == pytest.approx((sigma2[0] - sigma2[1]) / 2 * (-1 if along == "-xy" else 1),
                                    rel=0.02)
    # Points stay single pixels beside it; a zero major axis is a point.
    both = model_image([10, 32], [10, 32], [1.0, 2.5], 64, major=np.array([0.0, fwhm_maj]),
                       minor=np.array([0.0, fwhm_min]), pa=np.array([0.0, pa]), scale=scale)
    assert both[10, 10] == 1.0 and np.count_nonzero(both[:11, :11]) == 1  # the stamp: 11-53
    assert np.array_equal(model_image([5], [7], [1.0], 16), model_image(
        [5], [7], [1.0], 16, major=np.zeros(1), minor=np.zeros(1), pa=np.zeros(1)))


def test_resolved_sources_are_a_seeded_share_and_leave_the_sky_alone():
    plain = _config(seed=9, n_sources=40).draw_sky()
    sky = _config(seed=9, n_sources=40, resolved=0.25, resolved_fwhm=[4.0, 10.0],
                  bright_source=300.0).draw_sky()
    for name in ("x", "y", "snr", "flux"):
        assert np.array_equal(getattr(sky, name)[:-1], getattr(plain, name)), name
    assert plain.major is None
    shaped = sky.major > 0
    assert shaped.sum() == 10 and not shaped[-1]  # a quarter of the 40; the bright one a point
    assert (sky.major[shaped] >= 4.0).all() and (sky.major[shaped] <= 10.0).all()
    ratio = sky.minor[shaped] / sky.major[shaped]
    assert (ratio >= 0.3).all() and (ratio <= 1.0).all()
    assert ((sky.pa[shaped] >= 0) & (sky.pa[shaped] < 180)).all()
    assert (sky.minor[~shaped] == 0).all() and (sky.pa[~shaped] == 0).all()
    again = _config(seed=9, n_sources=40, resolved=0.25, resolved_fwhm=[4.0, 10.0],
                    bright_source=300.0).draw_sky()
    assert np.array_equal(again.major, sky.major) and np.array_equal(again.pa, sky.pa)


@needs_wsclean
def test_simulate_resolved_sources_peak_lower_and_lie_along_their_position_angle(tmp_path):
    from radiofind.simulation.run import simulate

    kw = dict(TINY, seed=3, n_sources=6, snr_scale=400.0, snr_min=200.0, weightings=["uniform"],
              niter=2000)
    simulate(outdir=tmp_path / "points", **kw)
    simulate(outdir=tmp_path / "wide", resolved=1.0, resolved_fwhm=[24.0, 30.0], **kw)
    points = Table.read(tmp_path / "points" / "truth.fits")
    wide = Table.read(tmp_path / "wide" / "truth.fits")
    assert wide.meta["RESOLVED"] == 1.0 and wide.meta["RESFWHM2"] == 30.0
    assert "maj" not in points.colnames and (wide["maj"] >= 24).all() and wide["pa"].unit == "deg"
    assert np.array_equal(points["flux"], wide["flux"])  # integrated flux, as drawn
    # A source several beams wide (the beam: ~10" x 6") peaks well below a point of the same
    # flux: the peak falls as the beam's area over the area of the source convolved with it.
    image = read_image(tmp_path / "wide" / "uniform-image.fits").data
    peaks = read_image(tmp_path / "points" / "uniform-image.fits").data
    x, y = np.asarray(wide["x"], int), np.asarray(wide["y"], int)
    ratio = image[y, x] / peaks[y, x]
    assert (ratio < 0.4).all() and (ratio > 0.02).all(), ratio
    # In WSClean's image each source is longest along its position angle, North through East.
    for row in wide:
        x, y, r = int(row["x"]), int(row["y"]), 12
        cut = np.clip(image[y - r:y + r + 1, x - r:x + r + 1], 0, None)
        mxx, myy, mxy = _moments(cut, r, r)
        angle = np.degrees(0.5 * np.arctan2(2 * mxy, myy - mxx))  # from +y towards +x
        pa_seen = (-angle) % 180.0  # East is -x
        assert min(abs(pa_seen - row["pa"]), 180 - abs(pa_seen - row["pa"])) < 20.0, row["pa"]


@needs_wsclean
def test_simulate_a_diffuse_halo_at_the_pointing(tmp_path):
    from radiofind.simulation.run import simulate

    kw = dict(TINY, seed=2, n_sources=4, weightings=["natural"], niter=0)
    plain = simulate(outdir=tmp_path / "plain", **kw)
    halo = simulate(outdir=tmp_path / "halo", diffuse=400.0, diffuse_fwhm=90.0, **kw)
    truth = Table.read(tmp_path / "halo" / "truth.fits")
    assert len(truth) == 4  # the halo is not a source of the catalogue
    assert truth.meta["DIFFSNR"] == 400.0 and truth.meta["DIFFFWHM"] == 90.0
    assert (truth.meta["DIFFX"], truth.meta["DIFFY"]) == (128, 128)
    assert "diffuse_peak_snr" not in plain["images"]["natural"]
    peak = halo["images"]["natural"]["diffuse_peak_snr"]
    # 400 units of flux over a 90" disc, seen by a ~40" beam: a few sigma at its centre, and
    # the image there is raised by about that much over the same sky without it.
    a = read_image(tmp_path / "plain" / "natural-image.fits").data
    b = read_image(tmp_path / "halo" / "natural-image.fits").data
    rise = (b[128, 128] - a[128, 128]) / halo["images"]["natural"]["noise"]
    assert 3 < peak and rise == pytest.approx(peak - a[128, 128] / halo["images"]["natural"][
        "noise"], abs=0.5)
    edge = (b[10, 10] - a[10, 10]) / halo["images"]["natural"]["noise"]
    assert abs(edge) < 0.5 * rise  # diffuse, but at the pointing
