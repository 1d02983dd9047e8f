"""Purity, completeness, PC and S90 in bins of SNR (DeepSource section 5.1).

Binning convention (one for purity, completeness and every PC_s lookup):

* Bins have width ``w`` (``snr_bin``) and are *centred* on the multiples of ``w``: bin ``k`` covers
  ``[(k - 1/2) w, (k + 1/2) w)``, so with the default ``w = 0.5`` the SNRs 3, 4 and 5 are bin
  centres (bin 3 is ``[2.75, 3.25)``), never edges.
* Bin 0 also takes every SNR below ``w/2``, negative ones included (faint truth sources sitting
  on a noise trough); the last bin is an overflow bin that takes every SNR from the first edge
  at or above ``snr_max`` (default 20) upwards.
* Bins are half-open: a value on an edge belongs to the bin above it. Values within 1e-9 bin
  widths below an edge count as on it, so e.g. SNR 3.0 with ``w = 0.4`` (an edge) goes to
  ``[3.0, 3.4)`` whatever the rounding of 3.0 / 0.4.
* Sources whose SNR is NaN (outside the image) are counted in the totals but in no bin.

Purity ``P = TP / (TP + FP)`` is counted in bins of *detection* SNR, completeness
``C = TP / (TP + FN)`` in bins of *true* SNR; a bin with nothing to count gives NaN. ``PC = P * C``
bin by bin; where one factor is NaN and the other is 0 the product is 0 (it is 0 for any value of
the undefined factor in [0, 1]), otherwise NaN propagates. ``PC_s`` (s = 3, 4, 5) is read from the
bins that contain ``s``. S90: see :func:`s90`, and :func:`s90_interpolated` for the same S90
read between bin centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radiofind.errors import RadiofindError

REFERENCE_SNRS = (3.0, 4.0, 5.0)
_EDGE_EPS = 1e-9


@dataclass(frozen=True)
class SnrBins:
    """SNR bins of width ``width`` centred on its multiples; bin ``n_bins - 1`` is the overflow."""

    width: float
    n_bins: int

    @classmethod
    def make(cls, width: float, snr_max: float = 20.0) -> SnrBins:
        """Bins of ``width`` from 0 up to an overflow bin from the first edge >= ``snr_max``."""
        if not (math.isfinite(width) and width > 0):
            raise RadiofindError(f"the SNR bin width must be positive, got {width}")
        if not (math.isfinite(snr_max) and snr_max > 0):
            raise RadiofindError(f"the top of the SNR bins must be positive, got {snr_max}")
        # The overflow bin's lower edge (n - 1/2) w is the first edge >= snr_max.
        n_overflow = max(math.ceil(snr_max / width + 0.5 - _EDGE_EPS), 1)
        return cls(float(width), n_overflow + 1)

    @property
    def centre(self) -> np.ndarray:
        """Nominal bin centres k * width (the overflow bin is plotted at its own)."""
        return np.arange(self.n_bins) * self.width

    @property
    def lower(self) -> np.ndarray:
        """Lower edges; -inf for bin 0."""
        lo = (np.arange(self.n_bins) - 0.5) * self.width
        lo[0] = -np.inf
        return lo

    @property
    def upper(self) -> np.ndarray:
        """Upper edges; +inf for the overflow bin."""
        hi = (np.arange(self.n_bins) + 0.5) * self.width
        hi[-1] = np.inf
        return hi

    def index(self, snr) -> np.ndarray:
        """Bin index of each SNR; -1 for NaN."""
        snr = np.asarray(snr, dtype=np.float64)
        out = np.full(snr.shape, -1, dtype=np.int64)
        ok = ~np.isnan(snr)
        with np.errstate(invalid="ignore"):
            raw = np.floor(np.where(ok, snr, 0.0) / self.width + 0.5 + _EDGE_EPS)
        out[ok] = np.clip(raw[ok], 0, self.n_bins - 1).astype(np.int64)
        return out

    def count(self, snr, weights=None) -> np.ndarray:
        """Number of (weighted) values per bin."""
        idx = self.index(snr)
        keep = idx >= 0
        w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
        return np.bincount(idx[keep], weights=w, minlength=self.n_bins).astype(np.int64)

    def to_dict(self) -> dict:
        return {"width": self.width, "centre": self.centre.tolist(),
                "lower": self.lower.tolist(), "upper": self.upper.tolist()}


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def pc_product(purity: np.ndarray, completeness: np.ndarray) -> np.ndarray:
    """P * C, and 0 where one factor is 0 and the other undefined (see the module notes)."""
    p = np.asarray(purity, dtype=np.float64)
    c = np.asarray(completeness, dtype=np.float64)
    pc = p * c
    pc[(p == 0) | (c == 0)] = 0.0
    return pc


def s90(purity, completeness, lower, *, level: float = 0.9) -> float:
    """The lowest SNR above which purity and completeness both stay at or above ``level``.

    Bins are scanned from the top down. A bin *fails* when its purity or its completeness is
    defined and below ``level``; a bin where both are undefined (empty) is skipped, neither
    passing nor failing. S90 is the lower edge of the lowest non-empty bin of the unbroken
    passing run that ends at the highest non-empty bin, clipped at 0 (bin 0 has no lower edge).

    Parameters
    ----------
    purity, completeness
        Per-bin values (NaN for empty bins), same binning.
    lower
        Lower edge of each bin.
    level
        The quality level, 0.9 for S90.

    Returns
    -------
    float
        S90; NaN when no bin has data or the highest non-empty bin fails.
    """
    k = s90_bin(purity, completeness, level=level)
    return math.nan if k is None else float(max(np.asarray(lower, dtype=np.float64)[k], 0.0))


def s90_bin(purity, completeness, *, level: float = 0.9) -> int | None:
    """Index of the bin whose lower edge is S90 (see :func:`s90`); None when there is none."""
    p = np.asarray(purity, dtype=np.float64)
    c = np.asarray(completeness, dtype=np.float64)
    has_data = np.isfinite(p) | np.isfinite(c)
    fails = (np.isfinite(p) & (p < level)) | (np.isfinite(c) & (c < level))
    lowest = None
    for k in range(p.size - 1, -1, -1):
        if not has_data[k]:
            continue
        if fails[k]:
            break
        lowest = k
    return lowest


def s90_interpolated(purity, completeness, centre, *, level: float = 0.9) -> float:
    """S90 read off the purity and completeness curves drawn straight between bin centres.

    :func:`s90` is a bin edge, so it moves in steps of a bin width (0.5 by default). Here the
    same passing run is found (:func:`s90_bin`); for each of purity and completeness that fails
    in the non-empty bin below the run, the point where the straight line from that bin's centre
    to the centre of the next bin above where the same curve is defined reaches ``level`` is
    taken, and S90 is the higher of the two such points: the lowest SNR above which both lines
    stay at or above ``level``. When the run reaches the lowest non-empty bin nothing fails below
    it, and the value is :func:`s90`'s. Where both curves are defined in the run's first bin, it
    lies within one bin width below that bin's centre (a curve empty there is drawn on to its
    next defined bin, which can put S90 higher).

    The parameters are :func:`s90`'s, with each bin's ``centre`` in place of its lower edge; NaN,
    as there, when no bin has data or the highest non-empty bin fails.
    """
    p = np.asarray(purity, dtype=np.float64)
    c = np.asarray(completeness, dtype=np.float64)
    centre = np.asarray(centre, dtype=np.float64)
    k = s90_bin(p, c, level=level)
    if k is None:
        return math.nan
    edge = float(max(centre[k] - (centre[1] - centre[0]) / 2, 0.0)) if centre.size > 1 else 0.0
    below = [j for j in range(k) if np.isfinite(p[j]) or np.isfinite(c[j])]
    if not below:
        return edge
    j = below[-1]
    crossings = []
    for curve in (p, c):
        if not (np.isfinite(curve[j]) and curve[j] < level):
            continue
        above = next((i for i in range(k, curve.size) if np.isfinite(curve[i])), None)
        if above is None:  # nothing of this curve above the failing bin: the edge, as s90
            crossings.append(edge)
            continue
        x0, x1, y0, y1 = centre[j], centre[above], curve[j], curve[above]
        crossings.append(x0 + (x1 - x0) * (level - y0) / (y1 - y0))
    return float(max(crossings))


def score(truth_snr, det_snr, truth_found, det_is_tp, *, snr_bin: float = 0.5,
          snr_max: float = 20.0, level: float = 0.9) -> dict:
    """Score one catalogue: counts, purity, completeness, PC per bin, PC3/4/5 and S90.

    Parameters
    ----------
    truth_snr
        True SNR of every truth source (NaN where it cannot be measured).
    det_snr
        SNR of every detection, measured with the same noise.
    truth_found, det_is_tp
        Crossmatch flags (see :class:`radiofind.evaluate.crossmatch.Match`).
    snr_bin
        Bin width (see the module notes for the binning).
    snr_max
        Start of the overflow bin (rounded up to the next bin edge).
    level
        Quality level for S90.

    Returns
    -------
    dict
        JSON-serialisable (floats may be NaN or +-inf): ``bins`` (width, centre, lower, upper),
        per-bin lists ``tp_det``, ``fp`` (by detection SNR), ``tp_true``, ``fn`` (by true SNR),
        ``purity``, ``completeness``, ``pc``; ``at_snr`` ({"3": {purity, completeness, pc}, ...}),
        ``pc3``, ``pc4``, ``pc5``, ``s90``, ``s90_interp`` (:func:`s90_interpolated`),
        ``n_above_s90`` (TP + FP detections above S90, as in
        DeepSource Table 4), and totals ``n_truth``, ``n_detections``, ``n_tp``, ``n_fp``, ``n_fn``,
        ``n_truth_unbinned``, ``n_det_unbinned``.
    """
    bins = SnrBins.make(snr_bin, snr_max)
    truth_snr = np.asarray(truth_snr, dtype=np.float64).ravel()
    det_snr = np.asarray(det_snr, dtype=np.float64).ravel()
    truth_found = np.asarray(truth_found, dtype=bool).ravel()
    det_is_tp = np.asarray(det_is_tp, dtype=bool).ravel()
    if truth_snr.shape != truth_found.shape or det_snr.shape != det_is_tp.shape:
        raise RadiofindError("SNR arrays and crossmatch flags have different lengths")

    tp_det = bins.count(det_snr[det_is_tp])
    fp = bins.count(det_snr[~det_is_tp])
    tp_true = bins.count(truth_snr[truth_found])
    fn = bins.count(truth_snr[~truth_found])
    purity = ratio(tp_det, tp_det + fp)
    completeness = ratio(tp_true, tp_true + fn)
    pc = pc_product(purity, completeness)

    at_snr = {}
    for s in REFERENCE_SNRS:
        k = int(bins.index(s))
        at_snr[f"{s:g}"] = {"purity": float(purity[k]), "completeness": float(completeness[k]),
                            "pc": float(pc[k])}
    k90 = s90_bin(purity, completeness, level=level)
    s90_value = math.nan if k90 is None else float(max(bins.lower[k90], 0.0))
    above = np.arange(bins.n_bins) >= (bins.n_bins if k90 is None else k90)

    n_tp = int(det_is_tp.sum())
    return {
        "bins": bins.to_dict(),
        "tp_det": tp_det.tolist(), "fp": fp.tolist(),
        "tp_true": tp_true.tolist(), "fn": fn.tolist(),
        "purity": purity.tolist(), "completeness": completeness.tolist(), "pc": pc.tolist(),
        "at_snr": at_snr,
        **{f"pc{s:g}": at_snr[f"{s:g}"]["pc"] for s in REFERENCE_SNRS},
        "s90": s90_value,
        "s90_interp": s90_interpolated(purity, completeness, bins.centre, level=level),
        "level": float(level),
        "n_above_s90": int((tp_det + fp)[above].sum()),
        "n_truth": int(truth_snr.size), "n_detections": int(det_snr.size),
        "n_tp": n_tp, "n_fp": int((~det_is_tp).sum()), "n_fn": int((~truth_found).sum()),
        "n_truth_unbinned": int(np.isnan(truth_snr).sum()),
        "n_det_unbinned": int(np.isnan(det_snr).sum()),
    }
