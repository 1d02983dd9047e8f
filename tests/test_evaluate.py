"""Tests of radiofind.evaluate: crossmatch, metrics (hand-checked numbers), plot, evaluate step."""

from __future__ import annotations

import inspect
import json
import math
from importlib import resources

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from radiofind.errors import RadiofindError
from radiofind.evaluate.crossmatch import crossmatch
from radiofind.evaluate.metrics import SnrBins, s90, s90_interpolated, score
from radiofind.evaluate.run import evaluate, format_table, parse_catalogs

ARCSEC = 1.0 / 3600.0
nan = math.nan


# --------------------------------------------------------------------------- crossmatch


def test_greedy_nearest_first_beats_matching_in_catalogue_order():
    # On the equator (RA offsets are true separations), radius 0.8":
    #   truth A at 0", truth B at 1"; detection d0 at 0.7" (A: 0.7", B: 0.3"),
    #   detection d1 at -0.75" (A: 0.75").
    # Truth-by-truth in catalogue order, A takes its nearest, d0, and B is left with nothing (1 TP).
    # Nearest pair first: (B, d0, 0.3") then (A, d0) is refused (d0 used), then (A, d1, 0.75"):
    # 2 TP.
    truth_ra = np.array([0.0, 1.0]) * ARCSEC
    det_ra = np.array([0.7, -0.75]) * ARCSEC % 360.0
    m = crossmatch(truth_ra, [0, 0], det_ra, [0, 0], radius_deg=0.8 * ARCSEC)
    assert m.n_tp == 2
    assert m.truth_index.tolist() == [1, 0] and m.det_index.tolist() == [0, 1]
    np.testing.assert_allclose(m.separation_deg / ARCSEC, [0.3, 0.75], rtol=1e-6)
    assert m.truth_found.all() and m.det_is_tp.all()
    assert m.det_truth().tolist() == [1, 0]


def test_two_detections_near_one_source_nearest_wins():
    # Truth at 0"; detections at 0.5" and 0.2" (both inside 1"): the 0.2" one is TP, the other FP.
    m = crossmatch([10.0], [-30.0], [10.0, 10.0], [-30.0 + 0.5 * ARCSEC, -30.0 - 0.2 * ARCSEC],
                   radius_deg=ARCSEC)
    assert m.det_is_tp.tolist() == [False, True]
    assert m.truth_found.tolist() == [True]
    np.testing.assert_allclose(m.separation_deg / ARCSEC, [0.2], rtol=1e-6)


def test_one_detection_between_two_sources_is_used_once():
    # Detection at 0.45" between sources at 0" and 1": it matches the nearer (0") once; 1" is FN.
    m = crossmatch(np.array([0.0, 1.0]) * ARCSEC, [0, 0], [0.45 * ARCSEC], [0],
                   radius_deg=0.6 * ARCSEC)
    assert m.truth_found.tolist() == [True, False]
    assert m.det_is_tp.tolist() == [True]


def test_radius_edges_inclusive_and_on_the_sphere():
    r = 2.0 * ARCSEC
    # Equator: separations 1.999", exactly 2", 2.001" -> in, in (inclusive), out.
    det_ra = np.array([1.999, 2.0, 2.001]) * ARCSEC
    for ra, expect in zip(det_ra, [True, True, False], strict=True):
        assert crossmatch([0.0], [0.0], [ra], [0.0], radius_deg=r).n_tp == int(expect)
    # Dec 60: 3" of RA is 1.5" on the sky -> inside 2"; 5" of RA (2.5") -> outside.
    assert crossmatch([50.0], [60.0], [50.0 + 3 * ARCSEC], [60.0], radius_deg=r).n_tp == 1
    assert crossmatch([50.0], [60.0], [50.0 + 5 * ARCSEC], [60.0], radius_deg=r).n_tp == 0
    # Across RA = 0/360: 0.5" either side of 0 is 1" apart.
    m = crossmatch([360.0 - 0.5 * ARCSEC], [0.0], [0.5 * ARCSEC], [0.0], radius_deg=r)
    assert m.n_tp == 1
    np.testing.assert_allclose(m.separation_deg / ARCSEC, [1.0], rtol=1e-6)


def test_no_double_assignment_and_maximal_on_a_crowded_field():
    rng = np.random.default_rng(3)
    t_ra, t_dec = 50 + rng.uniform(0, 20, 60) * ARCSEC, -30 + rng.uniform(0, 20, 60) * ARCSEC
    d_ra, d_dec = 50 + rng.uniform(0, 20, 80) * ARCSEC, -30 + rng.uniform(0, 20, 80) * ARCSEC
    r = 2.0 * ARCSEC
    m = crossmatch(t_ra, t_dec, d_ra, d_dec, radius_deg=r)
    assert len(set(m.truth_index)) == m.n_tp == len(set(m.det_index)) > 10
    assert (m.separation_deg <= r).all() and (np.diff(m.separation_deg) >= 0).all()
    assert m.truth_found.sum() == m.det_is_tp.sum() == m.n_tp
    # Maximal: no unmatched truth has an unmatched detection within the radius.
    free = crossmatch(t_ra[~m.truth_found], t_dec[~m.truth_found], d_ra[~m.det_is_tp],
                      d_dec[~m.det_is_tp], radius_deg=r)
    assert free.n_tp == 0


def test_crossmatch_empty_and_bad_input():
    m = crossmatch([1.0, 2.0], [0.0, 0.0], [], [], radius_deg=ARCSEC)
    assert m.n_tp == 0 and m.truth_found.tolist() == [False, False] and m.det_is_tp.size == 0
    assert crossmatch([], [], [1.0], [0.0], radius_deg=ARCSEC).det_is_tp.tolist() == [False]
    for radius in (0.0, -1.0, nan):
        with pytest.raises(RadiofindError, match="radius"):
            crossmatch([1.0], [0.0], [1.0], [0.0], radius_deg=radius)
    with pytest.raises(RadiofindError, match="NaN"):
        crossmatch([nan], [0.0], [1.0], [0.0], radius_deg=ARCSEC)


# --------------------------------------------------------------------------- metrics


def test_bins_are_centred_on_multiples_of_the_width():
    bins = SnrBins.make(0.5)  # bin k = [(k - 1/2) 0.5, (k + 1/2) 0.5); overflow from 20.25
    idx = bins.index([3.0, 2.75, 3.2499, 3.25, -2.0, 0.1, 20.2, 20.25, 1e6, np.inf, nan])
    assert idx.tolist() == [6, 6, 6, 7, 0, 0, 40, 41, 41, 41, -1]
    assert bins.n_bins == 42 and bins.centre[6] == 3.0
    assert (bins.lower[6], bins.upper[6]) == (2.75, 3.25)
    assert bins.lower[0] == -np.inf and bins.upper[-1] == np.inf and bins.lower[-1] == 20.25
    # 3.0 on an edge (width 0.4: edges at 2.6, 3.0, 3.4) goes to the bin above, despite rounding.
    b04 = SnrBins.make(0.4)
    assert b04.lower[b04.index(3.0)] == pytest.approx(3.0)
    with pytest.raises(RadiofindError):
        SnrBins.make(0.0)


def test_score_hand_checked():
    # Bins of width 1: bin k = [k - 0.5, k + 0.5).
    truth_snr = [3.1, 2.9, 3.2, 3.4, 4.0, 4.2, 5.0, 1.0]
    truth_found = [1, 1, 1, 0, 1, 1, 1, 0]
    det_snr = [3.0, 2.8, 3.3, 4.1, 4.3, 5.1, 3.1, 1.2, 4.4]
    det_is_tp = [1, 1, 1, 1, 1, 1, 0, 0, 0]
    res = score(truth_snr, det_snr, truth_found, det_is_tp, snr_bin=1.0)
    # bin 1: truth 1.0 missed -> C = 0/1; det 1.2 FP -> P = 0/1; PC = 0
    # bin 3: truth 3.1, 2.9, 3.2 found, 3.4 missed -> C = 3/4;
    #        det 3.0, 2.8, 3.3 TP, 3.1 FP -> P = 3/4
    #        PC3 = 0.75 * 0.75 = 0.5625
    # bin 4: truth 4.0, 4.2 found -> C = 1; det 4.1, 4.3 TP, 4.4 FP -> P = 2/3; PC4 = 2/3
    # bin 5: truth 5.0 found, det 5.1 TP -> P = C = PC5 = 1
    # S90, from the top: bin 5 passes, bin 4 fails (P = 0.67) -> lower edge of bin 5 = 4.5
    assert res["tp_det"][:6] == [0, 0, 0, 3, 2, 1] and res["fp"][:6] == [0, 1, 0, 1, 1, 0]
    assert res["tp_true"][:6] == [0, 0, 0, 3, 2, 1] and res["fn"][:6] == [0, 1, 0, 1, 0, 0]
    np.testing.assert_allclose(res["purity"][:6], [nan, 0, nan, 0.75, 2 / 3, 1.0])
    np.testing.assert_allclose(res["completeness"][:6], [nan, 0, nan, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(res["pc"][:6], [nan, 0, nan, 0.5625, 2 / 3, 1.0])
    assert all(math.isnan(v) for v in res["purity"][6:])
    assert res["pc3"] == pytest.approx(0.5625) and res["pc4"] == pytest.approx(2 / 3)
    assert res["pc5"] == 1.0
    assert res["at_snr"]["3"] == {"purity": 0.75, "completeness": 0.75, "pc": 0.5625}
    assert res["s90"] == 4.5 and res["n_above_s90"] == 1
    assert (res["n_truth"], res["n_detections"], res["n_tp"], res["n_fp"], res["n_fn"]) == \
        (8, 9, 6, 3, 2)
    json.dumps(res)  # serialisable as it is


def test_s90_skips_empty_bins_and_stops_at_a_dip():
    lower = SnrBins.make(1.0, snr_max=7.0).lower  # [-inf, 0.5, 1.5, ..., 6.5, 7.5]
    p = [nan, 0.2, 0.5, 0.95, 0.8, 1.0, nan, 1.0, nan]
    c = [nan, 0.1, 0.6, 0.92, 1.0, 0.9, nan, nan, nan]
    # From the top: 8 empty (skip), 7 P = 1 passes, 6 empty (skip), 5 passes (C = 0.9 exactly),
    # 4 fails (P = 0.8) -> S90 = lower edge of bin 5 = 4.5, although bin 3 passes again.
    assert s90(p, c, lower) == 4.5
    p[4] = 0.95  # no dip: 3..7 pass, 2 fails -> 2.5
    assert s90(p, c, lower) == 2.5
    p[7] = 0.5  # the highest non-empty bin fails -> no S90
    assert math.isnan(s90(p, c, lower))
    assert s90([nan, 1.0, 0.9], [1.0, nan, 1.0], [-np.inf, 0.5, 1.5]) == 0.0  # clipped at 0
    assert math.isnan(s90([nan] * 3, [nan] * 3, [-np.inf, 0.5, 1.5]))


def test_s90_interpolated_between_bin_centres():
    centre = SnrBins.make(1.0, snr_max=7.0).centre  # 0, 1, ..., 8
    p = [nan, 0.2, 0.5, 0.95, 0.85, 1.0, nan, 1.0, nan]
    c = [nan, 0.1, 0.6, 0.92, 1.0, 0.9, nan, nan, nan]
    # The run is bins 5-7 as for s90 (4.5); purity fails in bin 4 (0.85) and reaches 1.0 at 5:
    # 0.9 is crossed a third of the way, at 4 + 0.05 / 0.15.
    assert s90(p, c, SnrBins.make(1.0, snr_max=7.0).lower) == 4.5
    assert s90_interpolated(p, c, centre) == pytest.approx(4 + 1 / 3)
    # Both fail below the run: the later crossing (purity 0.6 -> 1.0 at 2.75, completeness
    # 0.8 -> 0.95 at 2 + 2/3).
    assert s90_interpolated([nan, nan, 0.6, 1.0], [nan, nan, 0.8, 0.95], centre[:4]) == \
        pytest.approx(2.75)
    # An empty bin between the failing bin and the run: the line spans both.
    assert s90_interpolated([nan, 0.5, nan, 1.0], [nan, 0.5, nan, 1.0], centre[:4]) == \
        pytest.approx(2.6)
    # Purity undefined in the run's first bin: the line goes to the next bin where it is defined.
    assert s90_interpolated([nan, 0.7, nan, 0.9], [nan, 0.95, 1.0, 1.0], centre[:4]) == \
        pytest.approx(3.0)
    # Nothing fails below the run: s90's edge.
    assert s90_interpolated([nan, 0.95, 1.0], [nan, 0.9, 1.0], centre[:3]) == 0.5
    # No run: NaN, as s90.
    assert math.isnan(s90_interpolated([nan, 1.0, 0.5], [nan, 1.0, 1.0], centre[:3]))
    assert math.isnan(s90_interpolated([nan] * 3, [nan] * 3, centre[:3]))


def test_score_reports_the_interpolated_s90():
    # Bin 4 (width 0.5: [3.75, 4.25)): 1 of 2 detections true; bin 4.5 and 5: all true.
    det = [4.0, 4.0, 4.5, 4.5, 5.0]
    res = score([4.0, 4.5, 4.5, 5.0], det, [True] * 4, [True, False, True, True, True])
    assert res["s90"] == 4.25
    assert res["s90_interp"] == pytest.approx(4.0 + 0.5 * (0.9 - 0.5) / (1.0 - 0.5))
    assert res["s90_interp"] == s90_interpolated(res["purity"], res["completeness"],
                                                 res["bins"]["centre"])


def test_score_empty_catalogue():
    res = score([3.0, 3.1, 4.0], [], [False] * 3, [], snr_bin=0.5)
    assert all(math.isnan(p) for p in res["purity"])
    assert res["completeness"][6] == 0.0 and res["completeness"][8] == 0.0
    # C = 0 makes PC = 0 whatever the (undefined) purity; empty bins stay NaN.
    assert res["pc3"] == 0.0 and res["pc4"] == 0.0 and math.isnan(res["pc5"])
    assert math.isnan(res["s90"]) and res["n_detections"] == 0 and res["n_fn"] == 3


def test_format_table_side_by_side():
    a = score([3.0, 3.0], [3.0, 3.0], [1, 0], [1, 0], snr_bin=0.5)  # P3 = C3 = 0.5, PC3 = 0.25
    b = score([3.0, 3.0], [3.0], [1, 1], [1], snr_bin=0.5)  # impossible but simple: P3 = C3 = 1
    results = {"finders": {"cnn": a, "pybdsf": b}, "n_truth": 2, "noise": 1e-3,
               "noise_unit": "Jy/beam", "radius_arcsec": 4.0, "match_radius": 0.6667,
               "snr_bin": 0.5}
    text = format_table(results, title="natural")
    row3 = next(line for line in text.splitlines() if line.startswith("3 "))
    assert row3.split() == ["3", "|", "0.50", "1.00", "|", "0.50", "1.00", "|", "0.25", "1.00"]
    assert text.splitlines()[0] == "natural" and "cnn" in text and "pybdsf" in text
    rows = {line.split("|")[0].strip(): line.split("|")[1].split() for line in text.splitlines()
            if "|" in line}
    assert rows["S90"] == ["-", "2.75"] and rows["S90 lin"] == ["-", "2.75"]


# --------------------------------------------------------------------------- the evaluate step


def test_signature_matches_the_cab():
    cab = yaml.safe_load(resources.files("radiofind.cabs").joinpath("radiofind.yml").read_text())
    cab = cab["cabs"]["radiofind.evaluate"]
    params = inspect.signature(evaluate).parameters
    assert set(params) == set(cab["inputs"]) | set(cab["outputs"])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    for name, spec in cab["inputs"].items():
        if "default" in spec:
            assert params[name].default == spec["default"], name


def test_parse_catalogs(tmp_path):
    a, b = tmp_path / "x.fits", tmp_path / "d=1" / "y.csv"
    b.parent.mkdir()
    a.touch()
    b.touch()
    assert parse_catalogs([f"cnn={a}", str(b)]) == {"cnn": str(a), "y": str(b)}
    with pytest.raises(RadiofindError, match="two catalogues"):
        parse_catalogs([str(a), f"x={b}"])
    with pytest.raises(RadiofindError, match="no such file"):
        parse_catalogs([str(tmp_path / "missing.fits")])
    with pytest.raises(RadiofindError, match="at least one"):
        parse_catalogs([])


N_PIX, PIX_ARCSEC, BEAM_ARCSEC, SIGMA = 160, 2.0, 8.0, 1e-3


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A 160x160 SIN image (2"/px, 8" beam, noise 1 mJy) with 25 point sources, and catalogues."""
    root = tmp_path_factory.mktemp("field")
    rng = np.random.default_rng(42)
    header = fits.Header()
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [50.0, -30.0]
    wcs.wcs.crpix = [N_PIX / 2 + 1, N_PIX / 2 + 1]
    wcs.wcs.cdelt = [-PIX_ARCSEC * ARCSEC, PIX_ARCSEC * ARCSEC]
    wcs.wcs.cunit = ["deg", "deg"]
    header.update(wcs.to_header())
    header.update(BMAJ=BEAM_ARCSEC * ARCSEC, BMIN=BEAM_ARCSEC * ARCSEC, BPA=0.0, BUNIT="JY/BEAM")

    grid = np.arange(20, 141, 30)  # 5 x 5 sources, 60" apart (>> the 5.3" match radius)
    sx, sy = (a.ravel().astype(float) for a in np.meshgrid(grid, grid))
    amp = np.linspace(1.0, 25.0, sx.size) * SIGMA  # SNR 1 .. 25 in steps of 1
    s_px = BEAM_ARCSEC / PIX_ARCSEC / (2 * np.sqrt(2 * np.log(2)))
    yy, xx = np.mgrid[:N_PIX, :N_PIX]
    data = rng.normal(0.0, SIGMA, (N_PIX, N_PIX))
    for x0, y0, a in zip(sx, sy, amp, strict=True):
        data += a * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s_px**2))
    image = root / "image.fits"
    fits.PrimaryHDU(data.astype(np.float32), header=header).writeto(image)

    ra, dec = wcs.all_pix2world(sx, sy, 0)
    Table({"ra": ra, "dec": dec, "flux": amp}).write(root / "truth.fits")

    # "good": every source with SNR >= 3, 1 px (2") off, plus one false positive in empty sky.
    good = amp >= 3 * SIGMA
    gx, gy = np.append(sx[good] + 1, 35.0), np.append(sy[good], 35.0)
    # "poor": sources with SNR >= 8, 2 px (4") off, plus a second detection 2.5 px (5") from the
    # brightest source: inside the radius but farther than the first, so it is a false positive.
    poor = amp >= 8 * SIGMA
    px, py = np.append(sx[poor], sx[-1]), np.append(sy[poor] + 2, sy[-1] - 2.5)
    for name, x, y, fmt in (("good", gx, gy, "csv"), ("poor", px, py, "fits")):
        r, d = wcs.all_pix2world(x, y, 0)
        Table({"ra": r, "dec": d, "x": x, "y": y}).write(root / f"{name}.{fmt}", format=fmt)
    (root / "empty.csv").write_text("ra,dec\n")
    Table({"x": [1.0], "y": [2.0]}).write(root / "nopos.csv")
    return {"root": root, "image": image, "truth": root / "truth.fits", "n_good": int(good.sum()),
            "n_poor": int(poor.sum())}


def _run(field, outdir, **kw):
    root = field["root"]
    return evaluate(truth=field["truth"], image=field["image"], outdir=outdir,
                    catalogs=[f"cnn={root / 'good.csv'}", str(root / "poor.fits"),
                              str(root / "empty.csv")], **kw)


def test_evaluate_end_to_end(field, tmp_path):
    outdir = tmp_path / "metrics"
    res = _run(field, outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["metrics.json", "metrics.png",
                                                        "metrics.txt"]
    assert (outdir / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((outdir / "metrics.json").read_text())  # strict JSON: NaN written as null
    assert set(saved["finders"]) == {"cnn", "poor", "empty"}
    assert saved["noise"] == pytest.approx(SIGMA, rel=0.1)
    assert saved["radius_arcsec"] == pytest.approx(0.6667 * BEAM_ARCSEC)

    cnn, poor, empty = (res["finders"][k] for k in ("cnn", "poor", "empty"))
    assert (cnn["n_truth"], cnn["n_detections"], cnn["n_tp"]) == (25, field["n_good"] + 1,
                                                                   field["n_good"])
    assert (poor["n_detections"], poor["n_tp"], poor["n_fp"]) == (field["n_poor"] + 1,
                                                                 field["n_poor"], 1)
    assert cnn["median_separation_arcsec"] == pytest.approx(2.0, abs=0.05)
    assert poor["median_separation_arcsec"] == pytest.approx(4.0, abs=0.05)
    # Above SNR ~4.25 every true source is found by "cnn" (all with SNR >= 3 are in its list).
    bins = np.array(cnn["bins"]["lower"])
    c = np.array(cnn["completeness"])
    assert np.all(c[(bins >= 4.25) & np.isfinite(c)] == 1.0)
    assert 0 < cnn["s90"] <= 4.25 and cnn["s90"] < poor["s90"]
    # The empty catalogue: no purity anywhere, completeness 0 wherever there is a source.
    assert empty["n_detections"] == 0
    assert all(v is None for v in saved["finders"]["empty"]["purity"])
    ce = np.array(empty["completeness"])
    assert np.all(ce[np.isfinite(ce)] == 0.0) and math.isnan(empty["s90"])
    text = (outdir / "metrics.txt").read_text()
    assert text == format_table(res) + "\n" and "cnn" in text and "poor" in text


def test_evaluate_refuses_to_overwrite_and_leaves_nothing_partial(field, tmp_path, monkeypatch):
    outdir = tmp_path / "out"
    _run(field, outdir)
    before = (outdir / "metrics.json").read_bytes()
    with pytest.raises(RadiofindError, match="output exists"):
        _run(field, outdir, snr_bin=1.0)
    assert (outdir / "metrics.json").read_bytes() == before
    _run(field, outdir, snr_bin=1.0, overwrite=True)
    assert json.loads((outdir / "metrics.json").read_text())["snr_bin"] == 1.0

    # A catalogue without ra/dec: refused, and no output folder or staging left behind.
    fresh = tmp_path / "fresh"
    with pytest.raises(RadiofindError, match="ra"):
        evaluate(truth=field["truth"], image=field["image"], outdir=fresh,
                 catalogs=[str(field["root"] / "nopos.csv")])
    # A failure while the outputs are being written (here: the plot) leaves nothing either.
    import radiofind.evaluate.plot as plot_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(plot_module, "plot_metrics", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _run(field, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("kw, match", [({"snr_bin": 0.0}, "snr_bin"),
                                       ({"snr_bin": -0.5}, "snr_bin"),
                                       ({"match_radius": 0}, "match_radius"),
                                       ({"match_radius": nan}, "match_radius")])
def test_evaluate_rejects_bad_parameters(tmp_path, kw, match):
    with pytest.raises(RadiofindError, match=match):
        evaluate(truth="t.fits", image="i.fits", catalogs=["c.fits"], outdir=tmp_path / "o", **kw)


def test_evaluate_missing_files(field, tmp_path):
    with pytest.raises(RadiofindError, match="no such file"):
        evaluate(truth=field["truth"], image=tmp_path / "none.fits", outdir=tmp_path / "o",
                 catalogs=[str(field["root"] / "good.csv")])
    with pytest.raises(RadiofindError, match="no such file"):
        evaluate(truth=tmp_path / "none.fits", image=field["image"], outdir=tmp_path / "o",
                 catalogs=[str(field["root"] / "good.csv")])
    assert not (tmp_path / "o").exists()


def test_positions_off_the_image_are_counted_but_not_binned(field):
    from radiofind.evaluate.run import compare_catalogs
    from radiofind.io.images import read_image

    truth = Table.read(field["truth"])
    truth.add_row({"ra": 50.5, "dec": -30.0, "flux": 1.0})  # ~26' away: off the 5.3' image
    truth.add_row({"ra": 230.0, "dec": 30.0, "flux": 1.0})  # far side of the SIN projection
    dets = Table.read(field["root"] / "good.csv")
    dets.add_row({"ra": 50.5, "dec": -30.0, "x": nan, "y": nan})
    res = compare_catalogs(read_image(field["image"]), truth, {"g": dets})["finders"]["g"]
    assert (res["n_truth"], res["n_truth_unbinned"], res["n_det_unbinned"]) == (27, 2, 1)
    # The off-image pair still matches (it is listed in both) but sits in no bin.
    assert res["n_tp"] == field["n_good"] + 1
    assert sum(res["tp_true"]) + sum(res["fn"]) == 25 and sum(res["tp_det"]) == field["n_good"]


def test_match_field_names_the_truth_source_of_each_separation(field):
    # "poor" detects the sources with SNR >= 8 two pixels (4") off; the extra detection 5" from the
    # brightest one loses to the closer one. Each separation must come with its own source's SNR.
    from radiofind.evaluate.run import match_field, measure_truth_snr
    from radiofind.io.images import read_image

    image = read_image(field["image"])
    truth = Table.read(field["truth"])
    snr, noise = measure_truth_snr(image, truth["ra"], truth["dec"])
    dets = Table.read(field["root"] / "poor.fits")
    m = match_field(image, truth["ra"], truth["dec"], snr, noise, dets["ra"], dets["dec"])
    assert m.truth_index.shape == m.separation_deg.shape == (field["n_poor"],)
    np.testing.assert_allclose(m.separation_deg / ARCSEC, 4.0, atol=0.05)
    assert (np.asarray(truth["flux"])[m.truth_index] >= 8 * SIGMA).all()
    assert sorted(m.truth_index) == sorted(np.nonzero(m.truth_found)[0])
