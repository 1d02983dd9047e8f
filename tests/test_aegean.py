"""``radiofind aegean``: BANE + Aegean on synthetic images, the numpy >= 2.4 shim, bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table
from synthetic import make_header, make_image, write_image

from radiofind.errors import RadiofindError


@pytest.fixture(scope="module")
def bright_field(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aegean")
    data, x, y, snr = make_image(256, n_sources=8, snr=(15.0, 40.0), beam_pix=4.0, seed=2,
                                 border=24)
    path = write_image(folder / "field.fits", data, make_header(256, beam_arcsec=6.0))
    return path, x, y


def test_aegean_finds_the_bright_sources_where_they_are(bright_field, tmp_path):
    from radiofind.aegean import run_aegean

    path, x, y = bright_field
    before = sorted(os.listdir(os.path.dirname(path)))
    summary = run_aegean(image=path, outdir=str(tmp_path / "out"))
    assert sorted(os.listdir(os.path.dirname(path))) == before  # input folder untouched
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["field.aegean.crtf", "field.aegean.csv", "field.aegean.fits",
                     "field.aegean.reg", "field.aegean.vot"]
    cat = Table.read(summary["catalog"])
    assert cat.meta["FINDER"] == "aegean" and summary["n_sources"] == len(cat)
    for column in ("ra", "dec", "x", "y", "peak", "snr", "peak_flux_fit", "total_flux"):
        assert column in cat.colnames
    # Every injected source (SNR 15-40) is found within 0.5 pixel; at most one noise peak more.
    dist = np.hypot(cat["x"][None, :] - x[:, None], cat["y"][None, :] - y[:, None])
    assert dist.min(axis=1).max() < 0.5, dist.min(axis=1)
    # Aegean's own position errors, in arcsec: below 1" (2/3 pixel) for those sources.
    found = cat[dist.argmin(axis=1)]
    assert np.all((found["ra_err"] > 0) & (found["ra_err"] < 1) & (found["dec_err"] > 0)
                  & (found["dec_err"] < 1)), found["ra_err", "dec_err"]
    np.testing.assert_allclose(found["maj"], 6.0, rtol=0.15)  # points: the beam's FWHM
    assert len(x) <= len(cat) <= len(x) + 1
    matched = dist.argmin(axis=1)
    assert np.all(cat["snr"][matched] > 10)
    # RA/Dec agree with the pixel positions through the image's WCS.
    from astropy.wcs import WCS

    ra, dec = WCS(make_header(256)).all_pix2world(x, y, 0)
    np.testing.assert_allclose(cat["ra"][matched], ra, atol=0.5 * 1.5 / 3600)
    np.testing.assert_allclose(cat["dec"][matched], dec, atol=0.5 * 1.5 / 3600)


def test_aegean_pure_noise_gives_an_empty_catalogue(tmp_path):
    from radiofind.aegean import run_aegean

    data, *_ = make_image(128, n_sources=1, snr=(0.0, 0.0), seed=5)
    path = write_image(tmp_path / "noise.fits", data, make_header(128))
    summary = run_aegean(image=path, outdir=str(tmp_path / "out"), seedclip=8, floodclip=6,
                         formats=["csv"])
    assert summary["n_sources"] == 0
    assert Table.read(tmp_path / "out" / "noise.aegean.csv", format="csv").colnames[:3] == [
        "id", "ra", "dec"]


@pytest.mark.parametrize("kwargs, message", [
    ({"image": "missing.fits"}, "no such file"),
    ({"seedclip": 0}, "must be positive"),
    ({"seedclip": 3, "floodclip": 4}, "floodclip must be <= seedclip"),
    ({"formats": ["fits", "xls"]}, "unknown catalogue format"),
    ({"image": "NOBEAM"}, "beam"),
])
def test_aegean_bad_input_is_refused_before_any_output(tmp_path, kwargs, message):
    from radiofind.aegean import run_aegean

    data = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    header = make_header(64)
    good = write_image(tmp_path / "good.fits", data, header)
    del header["BMAJ"], header["BMIN"]
    nobeam = write_image(tmp_path / "nobeam.fits", data, header)
    image = {"NOBEAM": nobeam}.get(kwargs.get("image"), kwargs.get("image", good))
    args = {**kwargs, "image": image}
    with pytest.raises(RadiofindError, match=message):
        run_aegean(outdir=str(tmp_path / "out"), **args)
    assert not (tmp_path / "out").exists()


def test_aegean_keeps_existing_outputs_unless_overwrite(bright_field, tmp_path):
    from radiofind.aegean import run_aegean

    path, _, _ = bright_field
    out = tmp_path / "out"
    out.mkdir()
    (out / "field.aegean.csv").write_text("keep me")
    with pytest.raises(RadiofindError, match="output exists"):
        run_aegean(image=path, outdir=str(out), formats=["csv"])
    assert (out / "field.aegean.csv").read_text() == "keep me"


SINGULAR_FIT = """
import sys
import lmfit
import numpy as np
if sys.argv[1] == "shim":
    from radiofind.aegean import _numpy_compat
    _numpy_compat()
from AegeanTools.fitting import covar_errors
params = lmfit.Parameters()
params.add("components", value=1, vary=False)
for name, value in dict(amp=1.0, xo=5.0, yo=5.0, sx=2.0, sy=2.0, theta=0.0).items():
    params.add("c0_" + name, value=value)
# A singular covariance matrix makes scipy's inv raise LinAlgError, which AegeanTools catches
# as np.linalg.linalg.LinAlgError.
covar_errors(params, np.ones((10, 10)), errs=None, B=None, C=np.zeros((100, 100)))
print("FIT-OK")
"""


def test_numpy_shim_lets_aegean_survive_a_singular_covariance():
    def run(mode):
        return subprocess.run([sys.executable, "-c", SINGULAR_FIT, mode], capture_output=True,
                              text=True, timeout=120)

    with_shim = run("shim")
    assert with_shim.returncode == 0 and "FIT-OK" in with_shim.stdout, with_shim.stderr[-2000:]
    without = run("plain")
    if without.returncode != 0:  # numpy >= 2.4: the shim is what makes it work
        assert "has no attribute 'linalg'" in without.stderr, without.stderr[-2000:]


def test_aegean_help_loads_no_aegeantools():
    code = ("import sys; from radiofind.cli import main\n"
            "try:\n    main(['aegean', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('AegeanTools', 'lmfit', 'astropy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--seedclip" in out.stdout and "HEAVY []" in out.stdout


def test_aegean_cli_bad_input_gives_one_line_error(tmp_path):
    from click.testing import CliRunner

    from radiofind.cli import main

    result = CliRunner().invoke(main, ["aegean", str(tmp_path / "missing.fits"),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("radiofind: error:")]
    assert len(errors) == 1 and "no such file" in errors[0]
    assert not (tmp_path / "out").exists()
