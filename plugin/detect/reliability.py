"""Reliability from negative detections: how many of a catalogue's detections are noise.

A radio image's noise is symmetric about zero, and its sources are positive. The same search run
on the image times -1 (:func:`radiofind.io.images.negated`) finds no source, only noise troughs
turned into peaks, with the statistics of the noise peaks the search finds in the image itself:
its detections at an SNR count the false detections to expect there (the idea of SoFiA's
reliability, Serra, Jurek & Flöer 2012). Where the noise is not Gaussian (deep cleaning
without a mask restores noise peaks as clean beams; an underestimated noise inflates every
SNR), the negatives follow it, since they come from the same image.

Its limits: the faint sources below the detection limit add a positive skew that the
negated image lacks, and real sources take the place of noise peaks they sit on, so at low SNR
in confused natural-weighting images the negatives count more false detections than there are
(README, "Reliability").
"""

from __future__ import annotations

import numpy as np

SNR_KERNEL = 0.25  # Gaussian kernel (sigma) over which detections and negatives are counted
_STEP = 0.05  # histogram step, in SNR, of the kernel counts
PURITY_SNRS = (3.0, 4.0, 5.0)  # SNRs above which detect reports the estimated purity
# Fewer negative detections than this and detect warns that its estimates are rough: a count of
# n has a Poisson error of sqrt(n), and one 1024² uniform field holds ~4 (README, "Reliability").
MIN_NEGATIVES = 10


def reliability(snr, negative_snr, *, width: float = SNR_KERNEL) -> np.ndarray:
    """Each detection's reliability: 1 - (negative detections) / (detections) at its SNR.

    Both are counted with a Gaussian kernel of ``width`` in SNR, clipped to [0, 1]. Detections
    more than 5 kernel widths above every negative one get 1; NaN SNRs get NaN.
    """
    snr = np.asarray(snr, dtype=float)
    neg = np.asarray(negative_snr, dtype=float)
    neg = neg[np.isfinite(neg)]
    out = np.full(snr.shape, np.nan)
    ok = np.isfinite(snr)
    if not width > 0:
        raise ValueError(f"the kernel width must be > 0, got {width}")
    if not neg.size:
        out[ok] = 1.0
        return out
    top = neg.max() + 5.0 * width
    out[ok & (snr > top)] = 1.0
    near = ok & (snr <= top)
    if not near.any():
        return out
    from scipy.ndimage import gaussian_filter1d

    lo = min(snr[near].min(), neg.min()) - 5.0 * width
    edges = lo + _STEP * np.arange(int(np.ceil((top - lo) / _STEP)) + 2)
    counts = [gaussian_filter1d(np.histogram(v, edges)[0].astype(float), width / _STEP,
                                mode="constant") for v in (snr[near], neg)]
    i = np.clip(np.searchsorted(edges, snr[near], side="right") - 1, 0, len(edges) - 2)
    out[near] = np.clip(1.0 - counts[1][i] / counts[0][i], 0.0, 1.0)
    return out


def purity_estimate(snr, negative_snr, above: float) -> float | None:
    """1 - (negative detections) / (detections) with SNR >= ``above`` (at least 0); None when
    no detection is that bright."""
    snr = np.asarray(snr, dtype=float)
    neg = np.asarray(negative_snr, dtype=float)
    n = int((snr >= above).sum())
    if not n:
        return None
    return max(0.0, 1.0 - int((neg >= above).sum()) / n)
