"""The statistics benchmarks/noise_peaks.py measures noise peaks against sources with."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import noise_peaks  # noqa: E402


def gaussian(fwhm_x: float, fwhm_y: float, size: int = 61, angle: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - size // 2
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = 4.0 * math.log(2.0)
    return np.exp(-k * ((u / fwhm_x) ** 2 + (v / fwhm_y) ** 2))


def test_half_max_width_is_the_beams_width_however_it_is_turned():
    # The area above half maximum of a Gaussian is pi/4 * FWHM_x * FWHM_y.
    for angle in (0.0, 0.7):
        w = noise_peaks.half_max_width(gaussian(12.0, 8.0, angle=angle))
        assert w == pytest.approx(math.sqrt(math.pi / 4.0 * 12.0 * 8.0), rel=0.03)
    # A side lobe above half maximum that does not touch the centre is not counted.
    a = gaussian(10.0, 10.0)
    a[2:6, 2:6] = 0.9
    assert noise_peaks.half_max_width(a) == pytest.approx(noise_peaks.half_max_width(
        gaussian(10.0, 10.0)))


def test_auc_is_the_mann_whitney_share():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 1.0, 300), rng.normal(0.0, 1.0, 200)
    u = stats.mannwhitneyu(a, b).statistic
    assert noise_peaks.auc(a, b) == pytest.approx(u / (a.size * b.size))
    assert noise_peaks.auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert noise_peaks.auc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 0.0
    assert noise_peaks.auc(np.array([1.0]), np.array([])) is None


def test_fisher_finds_the_direction_that_separates_correlated_classes():
    # Two classes differ along pixel 0 only, under noise strongly correlated between pixels 0 and
    # 1: the best direction subtracts pixel 1 from pixel 0 (it cancels the shared noise), which
    # the difference of the means alone would miss.
    rng = np.random.default_rng(2)
    n, p = 4000, 6
    cov = np.eye(p)
    cov[0, 1] = cov[1, 0] = 0.9
    noise = rng.multivariate_normal(np.zeros(p), cov, 2 * n)
    shift = np.zeros(p)
    shift[0] = 0.5
    x = np.concatenate([noise[:n], noise[n:] + shift])
    label = np.r_[np.zeros(n, int), np.ones(n, int)]
    w = noise_peaks.fisher(x, label)
    best = np.linalg.solve(cov, shift)
    assert np.dot(w, best) / (np.linalg.norm(w) * np.linalg.norm(best)) > 0.99
    score = x @ w
    assert noise_peaks.auc(score[label == 1], score[label == 0]) > \
        noise_peaks.auc(x[label == 1, 0], x[label == 0, 0]) + 0.1
