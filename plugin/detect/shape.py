"""The shape check: a linear classifier of the image around each detection's peak.

At uniform weighting a noise peak is narrower than a point source of the same height: the noise's
autocorrelation is the Fourier transform of the squared weights, the point-spread function that
of the weights (``benchmarks/noise_peaks.py`` measures 0.86 of the beam's width). A noise peak
and a faint source therefore differ in shape, not only in height. The check scores each
detection by logistic regression on the network's input (the image over its noise, on the
model's grid) in a square of :data:`HALF_BEAMS` beams either side of the detection's peak,
divided by the peak's value, with the peak's SNR as one more feature, and drops detections below
an SNR whose score falls under a cut.

The classifier is fitted on the training fields' peaks (:func:`fit`): local maxima of SNR >=
:data:`FROM_SNR` within :data:`SOURCE_BEAMS` beam of a true source of true SNR >= 2 (sources)
and more than :data:`NOISE_BEAMS` beams from every one (noise); the cut and SNR are searched on
the validation fields with the TBD settings (``radiofind train --shape-check``).

At natural weighting a noise peak has the beam's shape (the noise's autocorrelation is the
point-spread function), and no classifier of shape tells the two apart (README, "What the images
allow").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radiofind.errors import RadiofindError

HALF_BEAMS = 1.5  # the classifier sees the image this many beams either side of the peak
FROM_SNR = 3.5  # the training peaks' least SNR
SOURCE_BEAMS = 1.0 / 3.0  # a peak this close to a true source (of true SNR >= 2) is a source's
NOISE_BEAMS = 1.5  # a peak farther than this from every true source is noise
PEAK_BEAMS = 0.25  # a detection's peak: the brightest input pixel within this of its position
L2 = 10.0  # the logistic regression's penalty on the squared weights, per peak (features ~1)
BATCH = 4096  # detections whose windows are gathered at once


def half_width(beam_pixels: float) -> int:
    """Pixels either side of the peak that the classifier sees, for a beam of that many pixels
    on the model's grid."""
    return max(2, int(round(HALF_BEAMS * beam_pixels)))


def features(data, x: np.ndarray, y: np.ndarray, half: int) -> np.ndarray:
    """The classifier's features for peaks at integer pixels (x, y) of ``data`` (the image over
    its noise; numpy or dask, only the windows are read): the (2 half + 1)² pixels around each,
    divided by its value, then the value over 5. Pixels off the image or blank count as 0."""
    from radiofind.noise import pixel_values

    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    off = np.arange(-half, half + 1)
    dy, dx = (a.ravel() for a in np.meshgrid(off, off, indexing="ij"))
    out = np.empty((x.size, dx.size + 1), dtype=np.float64)
    for k in range(0, x.size, BATCH):
        sl = slice(k, k + BATCH)
        # pixel_values reads off-image pixels as NaN; they count as 0
        win = pixel_values(data, (x[sl, None] + dx).ravel(), (y[sl, None] + dy).ravel())
        win = np.nan_to_num(win.reshape(-1, dx.size), nan=0.0)
        peak = win[:, dx.size // 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[sl, :-1] = np.where(peak[:, None] > 0, win / peak[:, None], 0.0)
        out[sl, -1] = peak / 5.0
    return out


def detection_peaks(data, x: np.ndarray, y: np.ndarray, beam_pixels: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each detection's peak: the brightest pixel of ``data`` within :data:`PEAK_BEAMS` beam of
    (x, y) (a disc of at least one pixel's radius), as integer pixels, with its value (-1 and NaN
    where the position is off the image or the whole disc blank)."""
    from radiofind.detect.positions import window_peaks

    px, py, value, _ = window_peaks(data, x, y, PEAK_BEAMS * beam_pixels, sub_pixel=False)
    found = np.isfinite(value)
    return (np.where(found, np.nan_to_num(px), -1).astype(np.int64),
            np.where(found, np.nan_to_num(py), -1).astype(np.int64), value)


@dataclass
class ShapeClassifier:
    """Logistic regression on :func:`features`: score = features . weights + bias (log-odds that
    the peak is a source's)."""

    half: int
    weights: np.ndarray
    bias: float

    def score(self, feats: np.ndarray) -> np.ndarray:
        return feats @ self.weights + self.bias

    def scores(self, data, x: np.ndarray, y: np.ndarray, beam_pixels: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Score and peak SNR of detections at (x, y) in pixels of ``data`` (the image over its
        noise on the model's grid, where the beam spans ``beam_pixels``); NaN for those whose
        peak is off the image or blank."""
        px, py, value = detection_peaks(data, x, y, beam_pixels)
        s = np.full(px.shape, np.nan)
        ok = np.isfinite(value)
        if ok.any():
            s[ok] = self.score(features(data, px[ok], py[ok], self.half))
        return s, value

    def card(self) -> dict:
        return {"half": int(self.half), "weights": [float(w) for w in self.weights],
                "bias": float(self.bias), "features": "input pixels within half of the peak "
                "over the peak (row by row), then the peak's SNR / 5"}

    @classmethod
    def from_card(cls, d: dict) -> ShapeClassifier:
        half = int(d["half"])
        weights = np.asarray(d["weights"], dtype=np.float64)
        if weights.shape != ((2 * half + 1) ** 2 + 1,):
            raise RadiofindError(f"the model card's shape classifier has {weights.size} weights; "
                                 f"a half-width of {half} needs {(2 * half + 1) ** 2 + 1}")
        return cls(half, weights, float(d["bias"]))


def dropped(scores: np.ndarray, snr: np.ndarray, *, cut: float | None,
            below_snr: float | None) -> np.ndarray:
    """Detections the check drops: SNR below ``below_snr`` and score below ``cut`` (NaN scores
    or SNRs are kept). No cut, or no SNR, drops none."""
    scores = np.asarray(scores, dtype=float)
    if cut is None or below_snr is None or not below_snr > 0:
        return np.zeros(scores.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return (np.asarray(snr, dtype=float) < below_snr) & (scores < cut)


def peak_labels(x: np.ndarray, y: np.ndarray, truth_x: np.ndarray, truth_y: np.ndarray,
                truth_snr: np.ndarray, beam_pixels: float, far: np.ndarray) -> np.ndarray:
    """Labels of peaks at integer pixels (x, y): 1 where the nearest true source lies within
    :data:`SOURCE_BEAMS` beam and has true SNR >= 2, 0 where ``far`` (the image's pixels more than
    :data:`NOISE_BEAMS` beams from every true source) holds, -1 between."""
    from scipy import spatial

    label = np.full(np.size(y), -1)
    placed = np.isfinite(truth_x) & np.isfinite(truth_y)
    if placed.any() and label.size:
        dist, near = spatial.cKDTree(np.column_stack([truth_x[placed], truth_y[placed]])).query(
            np.column_stack([x, y]))
        bright = np.nan_to_num(np.asarray(truth_snr, float)[placed], nan=-1.0) >= 2.0
        label[(dist < SOURCE_BEAMS * beam_pixels) & bright[near]] = 1
    label[far[y, x]] = 0
    return label


def labelled_peaks(normalised: np.ndarray, truth_x: np.ndarray, truth_y: np.ndarray,
                   beam_pixels: float, half: int) -> tuple[np.ndarray, np.ndarray]:
    """A training field's peaks (local maxima of SNR >= :data:`FROM_SNR` at least ``half``
    pixels inside the image) with their features and :func:`peak_labels`; the peaks between a
    source's and the noise are left out."""
    from radiofind.noise import pixel_values
    from radiofind.training.dataset import far_from, local_maxima

    peaks = local_maxima(np.nan_to_num(normalised, nan=-np.inf), FROM_SNR)
    peaks[:half], peaks[-half:], peaks[:, :half], peaks[:, -half:] = False, False, False, False
    y, x = np.nonzero(peaks)
    far = far_from(normalised.shape, truth_x, truth_y, NOISE_BEAMS * beam_pixels)
    label = peak_labels(x, y, truth_x, truth_y, pixel_values(normalised, truth_x, truth_y),
                        beam_pixels, far)
    keep = label >= 0
    return features(normalised, x[keep], y[keep], half), label[keep]


def fit(feats: np.ndarray, labels: np.ndarray, half: int, *, l2: float = L2
        ) -> ShapeClassifier:
    """L2-penalised logistic regression (L-BFGS): the score is the log-odds that a peak is a
    source's among the training fields' peaks (their share of sources is its prior)."""
    from scipy import optimize, special

    labels = np.asarray(labels)
    n1, n0 = int((labels == 1).sum()), int((labels == 0).sum())
    if n1 < 10 or n0 < 10:
        raise RadiofindError(f"the shape classifier needs at least 10 source and 10 noise peaks "
                             f"in the training fields, found {n1} and {n0}")
    sign = np.where(labels == 1, 1.0, -1.0)
    w_obs = 1.0 / labels.size

    def loss(p):
        z = sign * (feats @ p[:-1] + p[-1])
        g = -w_obs * sign * special.expit(-z)
        return (np.sum(w_obs * np.logaddexp(0.0, -z)) + 0.5 * l2 / labels.size
                * np.sum(p[:-1] ** 2),
                np.concatenate([feats.T @ g + l2 / labels.size * p[:-1], [g.sum()]]))

    res = optimize.minimize(loss, np.zeros(feats.shape[1] + 1), jac=True, method="L-BFGS-B",
                            options={"maxiter": 2000})
    if not np.all(np.isfinite(res.x)):
        raise RadiofindError("the shape classifier's fit did not converge")
    return ShapeClassifier(half, res.x[:-1], float(res.x[-1]))


def check_values(cut: float | None, below_snr: float | None) -> None:
    """Refuse a cut or an SNR that is not a finite number (an SNR below 0)."""
    if cut is not None and not math.isfinite(cut):
        raise RadiofindError(f"shape_cut must be a finite number, got {cut}")
    if below_snr is not None and not (math.isfinite(below_snr) and below_snr >= 0):
        raise RadiofindError(f"shape_snr must be a number >= 0, got {below_snr}")
