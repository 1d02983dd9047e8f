"""The filters benchmarks/whitening.py sets beside detect's whitening check do what they say."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import whitening  # noqa: E402

from radiofind.noise import whitened  # noqa: E402
from synthetic import weighted_pair  # noqa: E402

SMOOTH = 2 / 256  # 2 uv cells of these 256² images, as whitened's default on a 1024² one


def corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def natural_psf(size: int = 256) -> np.ndarray:
    """The PSF of weighted_pair's natural image: its cells' visibility counts, centred."""
    k = np.fft.fftfreq(size) * size
    r = np.hypot(k[:, None], k[None, :])
    counts = np.where(r < size / 5, np.ceil(2000.0 / (1.0 + r / 3.0) ** 2), 0.0)
    psf = np.fft.fftshift(np.real(np.fft.ifft2(counts)))
    return psf / psf.max()


def test_the_exact_transfer_ratio_turns_the_uniform_image_into_the_natural_one():
    # Where every cell holds its visibilities' mean (no gridding kernel mixing cells), the
    # natural PSF's transfer over the uniform one's is each cell's count: the ceiling is exact.
    uniform, natural, psf, _, _ = weighted_pair(seed=3)
    out = whitening.transfer_ratio(uniform, psf, natural_psf())
    assert corr(out, natural) > 0.999
    # The uniform image itself is far from it.
    assert corr(uniform, natural) < 0.8


def test_the_transfer_weighted_filter_is_whitened_where_the_transfer_is_flat():
    # weighted_pair's uniform PSF samples each cell once (a flat transfer function): putting T in
    # the numerator changes nothing, and both approach the natural image.
    uniform, natural, psf, _, _ = weighted_pair(seed=4)
    tw = whitening.transfer_weighted(uniform, psf, SMOOTH)
    assert corr(tw, whitened(uniform, psf, smooth=SMOOTH)) > 0.99
    assert corr(tw, natural) > 0.9


def test_the_residual_estimate_reads_the_noise_from_the_residual():
    # Given the image as its own residual the filter is whitened's; given a residual of other
    # noise (white: every cell alike) it weighs the cells alike and the image stays uniform.
    uniform, natural, psf, _, _ = weighted_pair(seed=5)
    same = whitening.residual_noise(uniform, uniform, psf, SMOOTH)
    assert corr(same, whitened(uniform, psf, smooth=SMOOTH)) > 0.999
    flat = whitening.residual_noise(uniform, np.random.default_rng(0).normal(size=uniform.shape),
                                    psf, SMOOTH)
    assert corr(flat, uniform) > 0.95
    assert corr(flat, natural) < corr(same, natural) - 0.1
