"""One-to-one, nearest-first crossmatch of a catalogue against the truth, on the sphere.

Every (truth, detection) pair closer than the radius is a candidate; candidates are taken in order
of increasing separation and a pair is kept only if neither its truth source nor its detection has
been used yet. This is the "closest detection wins" rule of DeepSource section 5.1 made symmetric:
no truth source is matched twice and no detection counts as two true positives. It differs from
matching truth sources one by one in catalogue order, which lets an early source take a detection
that sits closer to a later one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from radiofind.errors import RadiofindError

# Pairs at exactly the radius count as matches; the relative slack absorbs the rounding of the
# unit-vector chord so that "exactly at the radius" does not depend on floating-point luck.
_RADIUS_SLACK = 1e-9


@dataclass
class Match:
    """Result of :func:`crossmatch`.

    Attributes
    ----------
    truth_index, det_index
        Indices of the matched pairs into the truth and detection catalogues, in the order the
        pairs were accepted (increasing separation).
    separation_deg
        Angular separation of each matched pair, degrees.
    truth_found
        Boolean per truth source: matched to a detection (a true positive, else a false negative).
    det_is_tp
        Boolean per detection: matched to a truth source (a true positive, else a false positive).
    radius_deg
        The crossmatch radius used, degrees.
    """

    truth_index: np.ndarray
    det_index: np.ndarray
    separation_deg: np.ndarray
    truth_found: np.ndarray
    det_is_tp: np.ndarray
    radius_deg: float

    @property
    def n_tp(self) -> int:
        """Number of matched pairs."""
        return int(self.truth_index.size)

    def det_truth(self) -> np.ndarray:
        """Index of the matched truth source for every detection; -1 where unmatched."""
        out = np.full(self.det_is_tp.size, -1, dtype=np.int64)
        out[self.det_index] = self.truth_index
        return out


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors, shape (n, 3), of RA/Dec positions in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64).ravel())
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64).ravel())
    cos_dec = np.cos(dec)
    return np.column_stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)])


def chord_to_angle_deg(chord: np.ndarray) -> np.ndarray:
    """Angle in degrees subtended by a chord of the unit sphere (accurate for small angles)."""
    return np.degrees(2.0 * np.arcsin(np.clip(np.asarray(chord) / 2.0, 0.0, 1.0)))


def crossmatch(truth_ra: np.ndarray, truth_dec: np.ndarray, det_ra: np.ndarray,
               det_dec: np.ndarray, *, radius_deg: float) -> Match:
    """Match detections to truth sources one-to-one, nearest pair first, within a radius.

    Parameters
    ----------
    truth_ra, truth_dec
        Truth positions, degrees.
    det_ra, det_dec
        Detected positions, degrees.
    radius_deg
        Largest separation of a match, degrees (inclusive). radiofind uses 2/3 of the beam size.

    Returns
    -------
    Match
        Matched index pairs, their separations, and per-source/per-detection flags.

    Raises
    ------
    RadiofindError
        A non-positive or non-finite radius, mismatched array lengths, or non-finite positions.

    Notes
    -----
    Candidate pairs come from a KD-tree on unit vectors (chord distance), so the match is correct
    anywhere on the sphere, across RA = 0/360 and near the poles. Ties in separation are broken by
    truth index, then detection index, so the result does not depend on the sort algorithm.
    """
    if not (np.isfinite(radius_deg) and radius_deg > 0):
        raise RadiofindError(f"the crossmatch radius must be positive, got {radius_deg}")
    truth_ra, truth_dec = _positions(truth_ra, truth_dec, "truth")
    det_ra, det_dec = _positions(det_ra, det_dec, "detection")
    n_truth, n_det = truth_ra.size, det_ra.size

    t_idx = d_idx = np.empty(0, dtype=np.int64)
    sep = np.empty(0)
    if n_truth and n_det:
        limit = radius_deg * (1.0 + _RADIUS_SLACK)
        chord_limit = 2.0 * np.sin(np.radians(min(limit, 180.0)) / 2.0)
        tree_t = cKDTree(unit_vectors(truth_ra, truth_dec))
        tree_d = cKDTree(unit_vectors(det_ra, det_dec))
        pairs = tree_t.sparse_distance_matrix(tree_d, chord_limit, output_type="ndarray")
        t_idx = pairs["i"].astype(np.int64)
        d_idx = pairs["j"].astype(np.int64)
        sep = chord_to_angle_deg(pairs["v"])
        keep = sep <= limit
        t_idx, d_idx, sep = t_idx[keep], d_idx[keep], sep[keep]

    order = np.lexsort((d_idx, t_idx, sep))
    truth_found = np.zeros(n_truth, dtype=bool)
    det_is_tp = np.zeros(n_det, dtype=bool)
    accepted = []
    for k in order:
        t, d = t_idx[k], d_idx[k]
        if truth_found[t] or det_is_tp[d]:
            continue
        truth_found[t] = det_is_tp[d] = True
        accepted.append(k)
    accepted = np.asarray(accepted, dtype=np.int64)
    return Match(truth_index=t_idx[accepted], det_index=d_idx[accepted],
                 separation_deg=sep[accepted], truth_found=truth_found, det_is_tp=det_is_tp,
                 radius_deg=float(radius_deg))


def _positions(ra, dec, what: str) -> tuple[np.ndarray, np.ndarray]:
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    if ra.shape != dec.shape:
        raise RadiofindError(f"{what} RA and Dec have different lengths ({ra.size}, {dec.size})")
    if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
        raise RadiofindError(f"{what} positions contain NaN or infinite RA/Dec")
    if (np.abs(dec) > 90.0).any():
        raise RadiofindError(f"{what} positions have |Dec| > 90 degrees")
    return ra, dec
