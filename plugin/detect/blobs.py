"""Thresholded blob detection (TBD, DeepSource section 4.2) on the network's output map.

The threshold is found dynamically: lowering it in logarithmic steps from the map's maximum, the
number of blobs first grows as sources emerge, then jumps once noise peaks break through. The
chosen threshold is the last step before the growth per step exceeds ``delta_max`` (the step whose
growth is closest to ``delta_max`` from below). Blobs smaller than ``a_min`` pixels are dropped;
each remaining blob gives one source at its mean, centroid or peak position.

``delta_max`` is given per 4096 x 4096 pixels (DeepSource's image size) and scaled with the
searched area, so one value serves images of any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radiofind.errors import RadiofindError
from radiofind.noise import robust_rms

REFERENCE_AREA = 4096 * 4096
# Blended sources are split when their map peaks are this many beams apart: the crossmatch radius,
# so two split detections can never claim the same source.
DEBLEND_BEAMS = 2.0 / 3.0
CENTRES = ("mean", "centroid", "peak")


@dataclass
class Blobs:
    """Sources found by TBD: positions (0-based pixels) and per-blob properties."""

    x: np.ndarray
    y: np.ndarray
    area: np.ndarray
    score: np.ndarray  # peak of the network output in the blob
    threshold: float
    thresholds: np.ndarray  # the threshold ladder tried
    counts: np.ndarray  # blobs at each step


def threshold_ladder(tmap: np.ndarray, n_steps: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Logarithmic thresholds from the map's maximum down to its background noise."""
    values = tmap if valid is None else tmap[valid]
    top = float(np.max(values))
    floor = robust_rms(values)
    if not top > floor:
        return np.array([top])
    return np.geomspace(top, floor, n_steps)


def count_blobs(mask: np.ndarray) -> int:
    """Connected regions (8-connectivity) in a boolean mask."""
    return int(ndimage.label(mask, structure=np.ones((3, 3)))[1])


def dynamic_threshold(tmap: np.ndarray, *, delta_max: float, n_steps: int = 50,
                      valid: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Choose the TBD threshold: lower it until the blob count jumps by more than ``delta_max``.

    Returns
    -------
    threshold, ladder, counts
    """
    ladder = threshold_ladder(tmap, n_steps, valid)
    area = tmap.size if valid is None else int(valid.sum())
    allowed = max(delta_max * area / REFERENCE_AREA, 1.0)
    counts = np.zeros(len(ladder), dtype=int)
    chosen = ladder[-1]
    for i, tau in enumerate(ladder):
        above = tmap > tau if valid is None else (tmap > tau) & valid
        counts[i] = count_blobs(above)
        if i and counts[i] - counts[i - 1] > allowed:
            chosen = ladder[i - 1]
            counts = counts[: i + 1]
            ladder = ladder[: i + 1]
            break
    return float(chosen), ladder, counts


def split_blended(tmap: np.ndarray, labels: np.ndarray, n: int, min_distance: float
                  ) -> tuple[np.ndarray, int]:
    """Split blobs that hold several peaks of the map at least ``min_distance`` pixels apart.

    Two sources closer than the threshold contour merge into one blob, whose single centre would
    then match neither. Each pixel of such a blob goes to its nearest peak.
    """
    # A square window is separable (fast on big maps); peaks closer than min_distance along
    # both axes are one peak.
    size = 2 * int(np.ceil(min_distance)) + 1
    peaks = (tmap == ndimage.maximum_filter(tmap, size=size)) & (labels > 0)
    py, px = np.nonzero(peaks)
    plab = labels[py, px]
    multi = np.nonzero(np.bincount(plab, minlength=n + 1) > 1)[0]
    if not len(multi):
        return labels, n
    labels = labels.copy()
    slices = ndimage.find_objects(labels)
    for lab in multi:
        sl = slices[lab - 1]
        inside = labels[sl] == lab
        ys, xs = np.nonzero(inside)
        ys, xs = ys + sl[0].start, xs + sl[1].start
        sel = plab == lab
        d2 = (ys[:, None] - py[sel][None, :]) ** 2 + (xs[:, None] - px[sel][None, :]) ** 2
        nearest = np.argmin(d2, axis=1)
        for k in range(1, sel.sum()):  # peak 0 keeps the blob's label
            n += 1
            labels[ys[nearest == k], xs[nearest == k]] = n
    return labels, n


def find_blobs(tmap: np.ndarray, *, delta_max: float, a_min: int, centre: str = "mean",
               threshold: float | None = None, n_steps: int = 50,
               valid: np.ndarray | None = None, deblend: float | None = None) -> Blobs:
    """Thresholded blob detection on a network output map.

    Parameters
    ----------
    tmap
        The network output ``T(I)``, 2-D.
    delta_max
        Largest allowed growth of the blob count per threshold step, per 4096² pixels.
    a_min
        Minimum blob area in pixels.
    centre
        ``mean`` (eq. 4), ``centroid`` (output-weighted, eq. 5) or ``peak`` (eq. 6).
    threshold
        Use this fixed threshold instead of the dynamic one.
    n_steps
        Steps of the logarithmic threshold ladder.
    valid
        Boolean mask of pixels that may hold sources (False for blanked regions).
    deblend
        Split blobs holding map peaks at least this many pixels apart (None: no splitting).
    """
    if centre not in CENTRES:
        raise RadiofindError(f"unknown centre rule {centre!r} (choose from {', '.join(CENTRES)})")
    if delta_max <= 0 or a_min < 1 or n_steps < 2:
        raise RadiofindError("delta_max must be > 0, a_min >= 1 and n_steps >= 2")
    if threshold is None:
        tau, ladder, counts = dynamic_threshold(tmap, delta_max=delta_max, n_steps=n_steps,
                                                valid=valid)
    else:
        tau, ladder, counts = float(threshold), np.array([threshold]), np.array([], dtype=int)
    above = tmap > tau if valid is None else (tmap > tau) & valid
    labels, n = ndimage.label(above, structure=np.ones((3, 3)))
    if deblend and n:
        labels, n = split_blended(tmap, labels, n, deblend)
    empty = np.array([], dtype=float)
    if n == 0:
        return Blobs(empty, empty, empty, empty, tau, ladder, counts)
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(tmap, dtype=np.float32), labels, index)
    keep = index[area >= a_min]
    if centre == "mean":
        pos = ndimage.center_of_mass(above.astype(np.float32), labels, keep)
    elif centre == "centroid":
        pos = ndimage.center_of_mass(np.where(above, tmap, 0).astype(np.float64), labels, keep)
    else:
        pos = ndimage.maximum_position(tmap, labels, keep)
    pos = np.asarray(pos, dtype=float).reshape(-1, 2)
    score = ndimage.maximum(tmap, labels, keep) if len(keep) else empty
    return Blobs(x=pos[:, 1], y=pos[:, 0], area=area[keep - 1], score=np.asarray(score, float),
                 threshold=tau, thresholds=ladder, counts=counts)
