"""Thresholded blob detection (TBD, DeepSource section 4.2) on the network's output map.

The threshold is found dynamically: lowering it in logarithmic steps from the map's maximum, the
number of blobs first grows as sources emerge, then jumps once noise peaks break through. The
chosen threshold is the last step before the growth per step exceeds ``delta_max`` (the step whose
growth is closest to ``delta_max`` from below). Blobs smaller than ``a_min`` pixels are dropped;
each remaining blob gives one source at its mean, centroid or peak position.

``delta_max`` is given per 4096 x 4096 pixels (DeepSource's image size) and scaled with the
searched area, so one value serves images of any size.

Everything here works on maps of any size, tile by tile (the tiles are the map's dask chunks; a
numpy map is one tile): blobs are labelled per tile and joined across tile seams by a union-find
on the seam pixels, and each blob's area, centre and peak are sums and maxima gathered over the
tiles it covers. The result equals labelling the whole map at once, with no blob duplicated or
lost at a seam, and only a tile or two is ever in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from radiofind.errors import RadiofindError
from radiofind.noise import clipped_sigma, pixel_sample

REFERENCE_AREA = 4096 * 4096
# Blended sources are split when their map peaks are this many beams apart: the crossmatch radius,
# so two split detections can never claim the same source.
DEBLEND_BEAMS = 2.0 / 3.0
# A peak is split off when no map pixel within the deblending distance (a square) is higher. A
# peak that only a bright source's flank hides in the square's corners is split off when nothing
# within the deblending distance itself (a disc) is higher: a fainter source a beam and a half
# from a brighter one. A bright peak hidden even from the disc is split off too when the map dips
# between it and the brighter source, below DEBLEND_CONTRAST of it, and it is at least
# DEBLEND_RATIO of the map's maximum within DEBLEND_REACH: blended bright pairs a beam or two
# apart. Neither rescue runs beside a source in "glare": bright enough that its imaging artefacts,
# GLARE_FRACTION of its peak a beam or so out, reach SNR 5 (a source 2000 times the noise gives
# the network a lumpy answer on its main lobe; its lumps, at 1.5-4 % of its image peak, are not
# sources).
DEBLEND_CONTRAST = 0.8
DEBLEND_RATIO = 1.0 / 3.0
DEBLEND_REACH = 3.0  # higher peaks looked at for the dip, in deblending distances (2 beams)
# "Bright": at least half the network response the demand image asks for a point source of SNR 5.
SPLIT_SNR, SPLIT_RESPONSE = 5.0, 0.5
GLARE_FRACTION = 0.025  # "glare": the response to a source of SNR 5 / GLARE_FRACTION (200)
# A bright blob's centre is its map peak where the centre rule puts it farther from it than
# PIN_FRACTION of the deblending distance (1/3 beam): split off a neighbour, the blob can keep
# pixels of the neighbour's flank beyond the neighbour's own peak, whose weight pulls its centroid
# (by 0.7-0.8 beam, off the source).
PIN_FRACTION = 0.5
# A peak is split off on the disc test beside a bright source only where the network's input has
# SNR >= BESIDE_SNR within a pixel of it: the network answers a faint neighbour of a bright source
# weakly, and most faint peaks there are noise (on held-out ASKAP natural fields, splitting them
# all off lowered PC4 from 0.61 to 0.57). On the input's averaged grid, over the grid's noise, a
# source of image SNR 5.2 beside a brighter one read 4.4.
BESIDE_SNR = 4.0
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
    # Each blob's highest pixel of the network's input (NaN without one): see input_peaks.
    input_x: np.ndarray | None = None
    input_y: np.ndarray | None = None


EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity
COUNT_BATCH = 10  # thresholds counted per pass over the tiles
LADDER_SPAN = 100.0  # the threshold ladder spans at most this factor down to the map's noise


def split_levels(alpha: float, b_n: float) -> dict[str, float]:
    """The map levels of deblending beside brighter sources, for a network trained on the demand
    image with ``alpha`` and ``b_n`` (the keywords ``bright`` and ``glare`` of
    :func:`find_blobs`): ``bright``, above which blended peaks are split at dips, and ``glare``,
    the response to a source whose artefacts reach SNR 5 (see :data:`GLARE_FRACTION`)."""
    return {"bright": SPLIT_RESPONSE * (1.0 + b_n) * SPLIT_SNR ** alpha,
            "glare": (1.0 + b_n) * (SPLIT_SNR / GLARE_FRACTION) ** alpha}


def as_tiles(tmap, valid: np.ndarray | None = None):
    """The map as a dask array of tiles, NaN where no source may be (blanked pixels).

    A numpy map becomes a single tile; a dask map keeps its chunks.
    """
    import dask.array as da

    if hasattr(tmap, "dask"):
        if valid is not None:
            raise RadiofindError("pass blanked pixels as NaN in a dask map, not as `valid`")
        return tmap
    arr = np.asarray(tmap, dtype=np.float32)
    if valid is not None:
        arr = np.where(valid, arr, np.float32(np.nan))
    return da.from_array(arr, chunks=arr.shape)


def threshold_ladder(tmap, n_steps: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Logarithmic thresholds from the map's maximum down to its background noise.

    The top is capped at ``LADDER_SPAN`` times the noise. DeepSource's ladder starts at the map
    maximum, so one very bright source widened every step and moved the chosen threshold for the
    whole field: an SNR 2000 source raised it 2.3x at natural weighting and cost two thirds of
    the detections (benchmarks/generalisation.py). Blobs above the cap are all detected anyway.
    """
    import dask.array as da

    tiles = as_tiles(tmap, valid)
    top = float(da.nanmax(tiles).compute())
    return _ladder(top, clipped_sigma(pixel_sample(tiles)), n_steps)


def _ladder(top: float, floor: float, n_steps: int) -> np.ndarray:
    if not top > floor:
        return np.array([top])
    return np.geomspace(min(top, LADDER_SPAN * floor), floor, n_steps)


def dynamic_threshold(tmap, *, delta_max: float, n_steps: int = 50,
                      valid: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Choose the TBD threshold: lower it until the blob count jumps by more than ``delta_max``.

    Returns
    -------
    threshold, ladder, counts
    """
    import dask
    import dask.array as da

    tiles = as_tiles(tmap, valid)
    # The map's maximum and its count of usable pixels in one pass over the tiles.
    top, area = dask.compute(da.nanmax(tiles), da.isfinite(tiles).sum())
    ladder = _ladder(float(top), clipped_sigma(pixel_sample(tiles)), n_steps)
    allowed = max(delta_max * area / REFERENCE_AREA, 1.0)
    counts = np.zeros(0, dtype=int)
    for start in range(0, len(ladder), COUNT_BATCH):
        counts = np.concatenate([counts, count_blobs(tiles, ladder[start:start + COUNT_BATCH])])
        jumps = np.nonzero(np.diff(counts) > allowed)[0]
        if len(jumps):
            i = jumps[0] + 1
            return float(ladder[i - 1]), ladder[: i + 1], counts[: i + 1]
    return float(ladder[-1]), ladder, counts


def count_blobs(tiles, thresholds) -> np.ndarray:
    """Connected regions (8-connectivity) above each threshold, over the whole tiled map."""
    import dask

    grid = tiles.to_delayed()
    # Labelling releases the GIL: a map of fewer tiles than cores has each tile's thresholds
    # shared among several tasks (interleaved; the tile is read once).
    parts = int(min(len(thresholds), max(1, -(-(os.cpu_count() or 1) // grid.size))))
    thresholds = tuple(thresholds)
    pieces = dask.compute(*[dask.delayed(_label_tile)(b, thresholds[p::parts])
                            for b in grid.ravel() for p in range(parts)])
    results = []
    for t in range(grid.size):
        mine = pieces[t * parts:(t + 1) * parts]
        results.append([mine[k % parts][k // parts] for k in range(len(thresholds))])
    counts = []
    for k in range(len(thresholds)):
        n = np.array([r[k][0] for r in results]).reshape(grid.shape)
        strips = _object_grid([r[k][1] for r in results], grid.shape)
        edges, offsets = _seam_edges(n, strips)
        nodes, reps = _components(edges)
        counts.append(int(n.sum()) - (len(nodes) - len(np.unique(reps))))
    return np.array(counts, dtype=int)


def _label_tile(block: np.ndarray, thresholds) -> list:
    """Per threshold: the tile's blob count and its edge label strips (top, bottom, left, right)."""
    out = []
    for tau in thresholds:
        labels, n = ndimage.label(block > tau, structure=EIGHT)
        out.append((n, _strips(labels)))
    return out


def _object_grid(items: list, shape: tuple) -> np.ndarray:
    grid = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        grid[i] = item
    return grid.reshape(shape)


def _strips(labels: np.ndarray) -> tuple:
    return (labels[0].copy(), labels[-1].copy(), labels[:, 0].copy(), labels[:, -1].copy())


def _seam_edges(n: np.ndarray, strips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of global blob ids touching across tile seams, and each tile's id offset.

    A tile's local label ``l > 0`` has global id ``offset + l``; offsets run over tiles in raster
    order. Pixels touch across a seam when 8-adjacent: the last row of one tile row against the
    first row of the next (full width, so diagonal neighbours across corners are included), and
    likewise for columns.
    """
    offsets = np.concatenate([[0], np.cumsum(n.ravel())[:-1]]).reshape(n.shape)

    def glob(i, j, which):
        lab = strips[i, j][which].astype(np.int64)
        return np.where(lab > 0, lab + offsets[i, j], 0)

    pairs = []

    def touch(a: np.ndarray, b: np.ndarray) -> None:
        m = len(a)
        for d in (-1, 0, 1):
            aa = a[max(0, -d):m - max(0, d)]
            bb = b[max(0, d):m - max(0, -d)]
            both = (aa > 0) & (bb > 0)
            if both.any():
                pairs.append(np.stack([aa[both], bb[both]], axis=1))

    rows, cols = n.shape
    for i in range(rows - 1):  # horizontal seams
        touch(np.concatenate([glob(i, j, 1) for j in range(cols)]),
              np.concatenate([glob(i + 1, j, 0) for j in range(cols)]))
    for j in range(cols - 1):  # vertical seams
        touch(np.concatenate([glob(i, j, 3) for i in range(rows)]),
              np.concatenate([glob(i, j + 1, 2) for i in range(rows)]))
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    return edges, offsets


def _components(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blob ids joined by ``edges`` and, for each, its blob's representative (smallest id)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(edges):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    nodes, inverse = np.unique(edges, return_inverse=True)
    inverse = inverse.reshape(edges.shape)
    m = len(nodes)
    graph = coo_matrix((np.ones(len(edges)), (inverse[:, 0], inverse[:, 1])), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, comp, nodes)
    return nodes, smallest[comp]


def find_blobs(tmap, *, delta_max: float, a_min: int, centre: str = "mean",
               threshold: float | None = None, n_steps: int = 50,
               valid: np.ndarray | None = None, deblend: float | None = None,
               bright: float | None = None, glare: float = np.inf, snr=None) -> Blobs:
    """Thresholded blob detection on a network output map.

    Parameters
    ----------
    tmap
        The network output ``T(I)``, 2-D: a numpy array, or a dask array for maps of any size
        (processed chunk by chunk). NaN pixels never hold a source.
    delta_max
        Largest allowed growth of the blob count per threshold step, per 4096² pixels (the
        dynamic threshold; None only with a fixed ``threshold``).
    a_min
        Minimum blob area in pixels.
    centre
        ``mean`` (eq. 4), ``centroid`` (output-weighted, eq. 5) or ``peak`` (eq. 6).
    threshold
        Use this fixed threshold instead of the dynamic one.
    n_steps
        Steps of the logarithmic threshold ladder.
    valid
        Boolean mask of pixels that may hold sources (numpy maps; False for blanked regions).
    deblend
        Split blobs holding map peaks at least this many pixels apart (None: no splitting).
    bright, glare
        With ``deblend``: split off, too, peaks that a source above ``bright``, but below
        ``glare`` within reach, hides from the square test (:func:`split_levels`,
        :func:`_peak_mask`; ``bright`` None: not).
    snr
        The network's input (the noise-normalised image on the map's grid), numpy or dask like
        ``tmap``: where given, a fainter peak beside a bright source is split off on the disc
        test where it is at least :data:`BESIDE_SNR` (None: never).
    """
    if centre not in CENTRES:
        raise RadiofindError(f"unknown centre rule {centre!r} (choose from {', '.join(CENTRES)})")
    if (threshold is None and (delta_max is None or delta_max <= 0)) or a_min < 1 or n_steps < 2:
        raise RadiofindError("delta_max must be > 0 (or a fixed threshold given), a_min >= 1 and "
                             "n_steps >= 2")
    tiles = as_tiles(tmap, valid)
    if threshold is None:
        tau, ladder, counts = dynamic_threshold(tiles, delta_max=delta_max, n_steps=n_steps)
    else:
        tau, ladder, counts = float(threshold), np.array([threshold]), np.array([], dtype=int)
    table = blob_table(tiles, tau, deblend=deblend, bright=bright, glare=glare,
                       snr=None if snr is None else as_tiles(snr).rechunk(tiles.chunks))
    x, y, area, score = select_blobs(table, a_min=a_min, centre=centre, width=tiles.shape[1])
    input_x, input_y = input_peaks(table, a_min=a_min, width=tiles.shape[1])
    return Blobs(x=x, y=y, area=area, score=score, threshold=tau, thresholds=ladder,
                 counts=counts, input_x=input_x, input_y=input_y)


def select_blobs(table: dict[str, np.ndarray], *, a_min: int, centre: str, width: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The blobs of a :func:`blob_table` of at least ``a_min`` pixels, each at its ``centre``
    (at its ``peak`` instead where that centre lies farther from it than the table's ``pin``):
    x, y (0-based pixels), area and peak score. ``width``: the map's width in pixels."""
    if centre not in CENTRES:
        raise RadiofindError(f"unknown centre rule {centre!r} (choose from {', '.join(CENTRES)})")
    keep = table["area"] >= a_min
    table = {k: v[keep] for k, v in table.items()}
    if centre == "mean":
        y, x = table["sy"] / table["area"], table["sx"] / table["area"]
    elif centre == "centroid":
        y, x = table["swy"] / table["sw"], table["swx"] / table["sw"]
    else:
        y, x = (table["argmax"] // width).astype(float), (table["argmax"] % width).astype(float)
    if "pin" in table:
        ky, kx = (table["peak"] // width).astype(float), (table["peak"] % width).astype(float)
        pinned = np.hypot(y - ky, x - kx) > table["pin"]
        y, x = np.where(pinned, ky, y), np.where(pinned, kx, x)
    return x, y, table["area"], table["max"]


def input_peaks(table: dict[str, np.ndarray], *, a_min: int, width: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where each bright blob of at least ``a_min`` pixels holds its highest input pixel (x, y,
    0-based map pixels, in :func:`select_blobs`' order). NaN for the other blobs, and for all of
    a table made without ``snr``. Bright: the blobs :func:`blob_table` gives a finite ``pin``,
    peaking at or above ``bright`` outside glare (the network takes them for sources of SNR 5 or
    more).

    A blob's centre is where the network's output puts its source; this is where the image does.
    They part where the blob also covers a fainter neighbour, whose flank pulls the centroid, or
    the network's map peaks off the source: a source of image SNR 5.4 beside one of 1.7, two
    beams apart, had its blob centre 0.7 beam away, outside the crossmatch radius
    (:func:`radiofind.detect.positions.refine_bright` moves such detections). Fainter blobs
    are left out: the network judged them faint, and on noisier images, uniform ones and deeply
    cleaned ones, the image peaks in them are mostly noise (taking them lowered P(>=5)).
    """
    keep = table["area"] >= a_min
    if "input_argmax" not in table:
        nan = np.full(int(keep.sum()), np.nan)
        return nan, nan.copy()
    at = table["input_argmax"][keep]
    bright = np.isfinite(table["pin"][keep])
    return (np.where(bright, at % width, np.nan).astype(float),
            np.where(bright, at // width, np.nan).astype(float))


def weak_response(score, snr, *, alpha: float, b_n: float, response_snr: float,
                  min_response: float) -> np.ndarray:
    """Detections the network answers too weakly for their brightness: True to drop.

    The network was trained to output the demand image, whose peak on an isolated point source
    of image SNR ``s`` is ``(1 + b_n) s^alpha``. A detection at least ``response_snr`` bright in
    the image whose blob peaks below ``min_response`` times that is one the network does not take
    for a point source of that SNR: a noise spike, a sidelobe, the flank of a brighter source.
    ``min_response`` 0 keeps everything; NaN SNRs (off the image) are kept.
    """
    score = np.asarray(score, dtype=np.float64)
    snr = np.asarray(snr, dtype=np.float64)
    if not min_response > 0:
        return np.zeros(score.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        bright = np.nan_to_num(snr, nan=-np.inf) >= response_snr
        expected = (1.0 + b_n) * np.abs(np.where(bright, snr, 1.0)) ** alpha
    return bright & (score < min_response * expected)


def blob_table(tiles, tau: float, *, deblend: float | None = None,
               bright: float | None = None, glare: float = np.inf,
               snr=None) -> dict[str, np.ndarray]:
    """Every blob above ``tau`` (split at distinct peaks if ``deblend``; see :func:`_peak_mask`
    for ``bright``, ``glare`` and ``snr``, a dask array chunked as ``tiles``), as per-blob sums.

    Columns: ``area``, ``sy``/``sx`` (sums of pixel coordinates), ``sw``/``swy``/``swx`` (sums
    weighted by the map), ``max``, ``argmax`` (raster index of the first maximum), ``first``
    (raster index of the first pixel), ``peak`` (raster index of the map peak the blob was split
    at; ``argmax`` where none) and ``pin`` (how far in pixels the centre may lie from ``peak``
    before ``peak`` is taken instead: :data:`PIN_FRACTION` of ``deblend`` for blobs peaking at or
    above ``bright`` outside glare; infinite for the others), ordered by ``first``. With ``snr``,
    also ``input_max`` and ``input_argmax``: the highest input value in the blob and its raster
    index (where the image says the blob's source is; :func:`input_peaks`).
    """
    import dask

    grid = tiles.to_delayed()
    ys = np.concatenate([[0], np.cumsum(tiles.chunks[0])])
    xs = np.concatenate([[0], np.cumsum(tiles.chunks[1])])
    origins = [(ys[i], xs[j]) for i in range(grid.shape[0]) for j in range(grid.shape[1])]
    if deblend:
        reach = DEBLEND_REACH * deblend if bright is not None else float(np.ceil(deblend))
        import dask.array as da

        arrays = (tiles,) if snr is None or bright is None else (tiles, snr)
        peaks = da.map_overlap(_peak_mask, *arrays, depth=int(np.ceil(reach)), boundary="none",
                               separation=float(deblend), reach=float(reach), tau=float(tau),
                               bright=bright, glare=float(glare), dtype=np.uint8,
                               meta=np.empty((0, 0), dtype=np.uint8))
        # dask merges tiles thinner than the halo before overlapping them: back to the tiles.
        peak_grid = peaks.rechunk(tiles.chunks, method="tasks").to_delayed().ravel()
    else:
        peak_grid = [None] * grid.size
    first = dask.compute(*[dask.delayed(_label_and_peaks)(b, p, tau, o)
                           for b, p, o in zip(grid.ravel(), peak_grid, origins, strict=True)])
    n = np.array([r[0] for r in first]).reshape(grid.shape)
    strips = _object_grid([r[1] for r in first], grid.shape)
    edges, offsets = _seam_edges(n, strips)
    nodes, reps = _components(edges)
    # Each tile's lookup table: local label -> global blob id (the component's smallest id).
    luts = []
    for k, off in enumerate(offsets.ravel()):
        lut = np.arange(off, off + n.ravel()[k] + 1, dtype=np.int64)
        lut[0] = 0
        inside = (nodes > off) & (nodes <= off + n.ravel()[k])
        lut[nodes[inside] - off] = reps[inside]
        luts.append(lut)
    split = _split_plan(first, luts, int(n.sum()), tiles.shape[1]) if deblend else {}
    multi = np.fromiter(split, dtype=np.int64, count=len(split))
    tasks = []
    snr_grid = ([None] * grid.size if snr is None
                else snr.rechunk(tiles.chunks).to_delayed().ravel())
    for b, s, lut, o in zip(grid.ravel(), snr_grid, luts, origins, strict=True):
        # Each tile gets only the split plans of its own blobs (a small, cheap argument).
        mine = {int(g): split[int(g)] for g in np.intersect1d(lut, multi)}
        tasks.append(dask.delayed(_tile_sums)(b, tau, lut, o, tiles.shape[1],
                                              dask.delayed(mine, traverse=False), s))
    table = _combine(dask.compute(*tasks))
    ids = table.pop("id")
    table["peak"] = table["argmax"].copy()
    table["pin"] = np.full(table["max"].shape, np.inf)
    if deblend and bright is not None:
        # Each blob's own map peak (a split blob's part: the peak it was split at), and whether
        # that peak is in glare.
        found = np.concatenate([r[2] for r in first])
        gid = np.concatenate([lut[r[2][:, 2]] for r, lut in zip(first, luts, strict=True)])
        raster = found[:, 0] * tiles.shape[1] + found[:, 1]
        for g, (pk, sub) in split.items():
            at = np.nonzero(gid == g)[0]
            gid[at] = sub[np.searchsorted(pk[:, 0] * tiles.shape[1] + pk[:, 1], raster[at])]
        by_id = np.argsort(ids)
        row = by_id[np.searchsorted(ids, gid, sorter=by_id)]
        table["peak"][row] = raster
        free = np.ones(table["max"].shape, dtype=bool)
        free[row[found[:, 3] == 2]] = False
        table["pin"][free & (table["max"] >= bright)] = PIN_FRACTION * deblend
    return table


def _peak_mask(block: np.ndarray, snr: np.ndarray | None = None, *, separation: float,
               reach: float, tau: float, bright: float | None = None, glare: float = np.inf,
               contrast: float = DEBLEND_CONTRAST, ratio: float = DEBLEND_RATIO) -> np.ndarray:
    """The map peaks that are sources of their own, for deblending.

    A peak is a pixel no lower than every other within ``ceil(separation)`` pixels (a square).
    With ``bright``, two more kinds of local maximum (no lower than its 8 neighbours, above
    ``tau``) are peaks where the map stays below ``glare`` within ``reach`` pixels (a square):

    - one within ``reach`` of a pixel at or above ``bright`` that fails the square test only in
      the square's corners, beyond ``separation``: nothing within ``separation`` (a disc) is
      higher (the flank of a bright source a beam and a half away), and ``snr`` (the network's
      input) is at least :data:`BESIDE_SNR` within a pixel of it (without ``snr``, no such
      peak);
    - one at or above ``bright`` that a brighter source's flank hides even from the disc, when
      no higher local maximum (ties: the first in raster order) lies closer than ``separation``,
      it is at least ``ratio`` of the map's maximum within ``reach``, and the map dips between it
      and each higher local maximum within ``reach``: along the straight line joining them it
      falls below ``contrast`` times the lower one. A bump on a bright source's flank has no
      such dip.

    Faint blobs among faint blobs keep the square test, which the TBD search was tuned with.
    Returns 1 at peaks, 2 at peaks where the map reaches ``glare`` within ``reach``, 0 elsewhere.
    """
    filled = np.where(np.isfinite(block), block, -np.inf)
    radius = int(np.ceil(separation))
    square = _max_filter(filled, radius)
    out = filled == square
    if bright is None:
        return out.astype(np.uint8)
    reach_px = int(np.ceil(reach))
    around = _max_filter(filled, reach_px)
    out = np.where(out, np.where(around >= glare, 2, 1), 0).astype(np.uint8)
    maxima = (filled == _max_filter(filled, 1)) & (filled > tau)
    local = maxima & (out == 0) & (around < glare)
    if not local.any():
        return out
    beside = local & (around >= bright) & (snr is not None)
    if beside.any():
        by, bx = np.nonzero(beside)
        yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        disc = _max_at(filled, by, bx, np.hypot(yy, xx) <= max(separation, 1.5))
        near = _max_at(snr, by, bx, np.ones((3, 3), dtype=bool))
        keep = (filled[by, bx] == disc) & (near >= BESIDE_SNR)
        beside[by[~keep], bx[~keep]] = False
        out[beside] = 1
    # At least ``ratio`` of everything within reach: a lump far out on the main lobe of a very
    # bright source is not rescued by the dips between it and other lumps.
    hidden = local & ~beside & (filled >= bright) & (filled >= ratio * around)
    if not hidden.any():
        return out
    from scipy.spatial import cKDTree

    py, px = np.nonzero(maxima)
    value = filled[py, px]
    rank = np.empty(py.size, dtype=np.int64)
    rank[np.lexsort((py * block.shape[1] + px, -value))] = np.arange(py.size)
    maxima = cKDTree(np.column_stack([py, px]))
    hy, hx = np.nonzero(hidden)
    h_index = np.searchsorted(py * block.shape[1] + px, hy * block.shape[1] + hx)  # raster order
    t = np.linspace(0.0, 1.0, int(np.ceil(reach)) + 2)
    for lo, near in zip(h_index, maxima.query_ball_point(np.column_stack([hy, hx]), reach),
                        strict=True):
        hi = np.asarray([j for j in near if rank[j] < rank[lo]], dtype=np.int64)
        if not hi.size or np.hypot(py[hi] - py[lo], px[hi] - px[lo]).min() < separation:
            continue
        sy = np.rint(py[lo] + (py[hi] - py[lo])[:, None] * t).astype(np.int64)
        sx = np.rint(px[lo] + (px[hi] - px[lo])[:, None] * t).astype(np.int64)
        if np.all(filled[sy, sx].min(axis=1) < contrast * value[lo]):
            out[py[lo], px[lo]] = 1
    return out


def _max_filter(a: np.ndarray, radius: int) -> np.ndarray:
    """The maximum over the (2 radius + 1)² square around each pixel, pixels off the array left
    out: ``scipy.ndimage.maximum_filter(a, size=2 * radius + 1)``, in 3-4x less time (running
    maxima by doubling, a few whole-array operations per axis)."""
    return _max_1d(_max_1d(a, radius, 0), radius, 1)


def _max_1d(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    if radius <= 0:
        return a
    n = a.shape[axis]

    def cut(start: int, stop: int) -> tuple:
        return (slice(None),) * axis + (slice(start, stop),)

    shape = list(a.shape)
    shape[axis] = n + 2 * radius
    run = np.full(shape, -np.inf, dtype=a.dtype)
    run[cut(radius, radius + n)] = a
    # run[i] is the maximum of ``width`` padded pixels from i; doubled until the next doubling
    # would pass the window, then two overlapping runs cover it.
    size, width = 2 * radius + 1, 1
    while 2 * width <= size:
        m = run.shape[axis]
        run = np.maximum(run[cut(0, m - width)], run[cut(width, m)])
        width *= 2
    return np.maximum(run[cut(0, n)], run[cut(size - width, size - width + n)])


def _max_at(a: np.ndarray, ys: np.ndarray, xs: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """The maximum of ``a`` over ``footprint`` (odd-sized, centred) around each (ys, xs), pixels
    off the array and NaN pixels left out (-inf where nothing is left): ``maximum_filter`` of
    ``a`` with NaN as -inf, read at a few pixels."""
    hy, hx = footprint.shape[0] // 2, footprint.shape[1] // 2
    dy, dx = np.nonzero(footprint)
    wy, wx = ys[:, None] + (dy - hy), xs[:, None] + (dx - hx)
    inside = (wy >= 0) & (wy < a.shape[0]) & (wx >= 0) & (wx < a.shape[1])
    vals = a[np.clip(wy, 0, a.shape[0] - 1), np.clip(wx, 0, a.shape[1] - 1)]
    vals = np.where(inside & ~np.isnan(vals), vals, -np.inf)
    return vals.max(axis=1)


def _label_and_peaks(block: np.ndarray, peaks: np.ndarray | None, tau: float, origin) -> tuple:
    """A tile's blob count, its labels' seam strips and its peaks: rows of (y, x, local label,
    :func:`_peak_mask` value)."""
    labels, n = ndimage.label(block > tau, structure=EIGHT)
    found = np.zeros((0, 4), dtype=np.int64)
    if peaks is not None:
        py, px = np.nonzero((peaks > 0) & (labels > 0))
        found = np.stack([py + origin[0], px + origin[1], labels[py, px], peaks[py, px]],
                         axis=1).astype(np.int64)
    return n, _strips(labels), found


def _split_plan(first, luts, n_total: int, width: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Blobs holding several peaks: global id -> (peak positions (k, 2), sub-blob ids (k,)).

    Peaks are in raster order; the first keeps the blob's id, the others get new ids.
    """
    allpk = [np.column_stack([r[2][:, :2], lut[r[2][:, 2]]]) for r, lut in zip(first, luts,
                                                                                 strict=True)]
    peaks = np.concatenate(allpk) if allpk else np.zeros((0, 3), dtype=np.int64)
    if not len(peaks):
        return {}
    peaks = peaks[np.lexsort((peaks[:, 0] * width + peaks[:, 1], peaks[:, 2]))]
    ids, start, count = np.unique(peaks[:, 2], return_index=True, return_counts=True)
    plan, next_id = {}, n_total + 1
    for gid, s, c in zip(ids, start, count, strict=True):
        if c > 1:
            sub = np.concatenate([[gid], np.arange(next_id, next_id + c - 1)])
            next_id += c - 1
            plan[int(gid)] = (peaks[s:s + c, :2], sub)
    return plan


def _tile_sums(block: np.ndarray, tau: float, lut: np.ndarray, origin, width: int,
               split: dict, snr: np.ndarray | None = None) -> dict[str, np.ndarray]:
    above = block > tau
    labels, _ = ndimage.label(above, structure=EIGHT)
    py, px = np.nonzero(above)
    ids = lut[labels[py, px]]
    gy, gx = py + origin[0], px + origin[1]
    if split:
        ids = _assign_split(ids, gy, gx, split)
    w = block[py, px].astype(np.float64)
    raster = gy.astype(np.int64) * width + gx
    uid, inv = np.unique(ids, return_inverse=True)
    m = len(uid)
    best = _top(w, raster, inv)
    first = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first, inv, raster)
    out = {"id": uid, "area": np.bincount(inv, minlength=m).astype(float),
           "sy": np.bincount(inv, gy, m), "sx": np.bincount(inv, gx, m),
           "sw": np.bincount(inv, w, m), "swy": np.bincount(inv, w * gy, m),
           "swx": np.bincount(inv, w * gx, m), "max": w[best], "argmax": raster[best],
           "first": first}
    if snr is not None:
        v = np.nan_to_num(snr[py, px].astype(np.float64), nan=-np.inf)
        top = _top(v, raster, inv)
        out["input_max"], out["input_argmax"] = v[top], raster[top]
    return out


def _assign_split(ids: np.ndarray, gy: np.ndarray, gx: np.ndarray, split: dict) -> np.ndarray:
    """Pixels of split blobs (global ``ids``, at ``gy``, ``gx``) given the id of their nearest
    peak (ties: the first in raster order), per the :func:`_split_plan` entries in ``split``.

    A k-d tree of every split blob's peaks, each blob in a plane of its own (a third coordinate
    far apart per blob), finds the nearest: at low thresholds one blob can hold thousands of
    peaks and a million pixels, too many for all pairwise distances.
    """
    from scipy.spatial import cKDTree

    gids = np.fromiter(split, dtype=np.int64, count=len(split))
    sel = np.nonzero(np.isin(ids, gids))[0]
    if not sel.size:
        return ids
    gids.sort()
    # The peaks, blob after blob, each blob's in raster order: among tied peaks of one blob the
    # lowest index is the first in raster order.
    pk = np.concatenate([split[int(g)][0] for g in gids]).astype(np.float64)
    sub = np.concatenate([split[int(g)][1] for g in gids])
    plane = np.repeat(np.arange(gids.size), [len(split[int(g)][1]) for g in gids])
    apart = 4.0 * (np.ptp(np.concatenate([pk.ravel(), gy[sel], gx[sel]])) + 1.0)
    tree = cKDTree(np.column_stack([pk, plane * apart]))
    points = np.column_stack([gy[sel], gx[sel], np.searchsorted(gids, ids[sel]) * apart])
    d, near = tree.query(points, k=2)  # every split blob has two peaks or more
    nearest = near[:, 0]
    tied = np.nonzero(d[:, 1] == d[:, 0])[0]
    k = 2
    while tied.size:
        k = min(2 * k, len(sub))
        d, near = tree.query(points[tied], k=k)
        ties = d == d[:, :1]
        nearest[tied] = np.where(ties, near, len(sub)).min(axis=1)
        tied = tied[ties[:, -1] & (k < len(sub))]  # all k tied: there may be more
    out = ids.copy()
    out[sel] = sub[nearest]
    return out


def _top(value: np.ndarray, raster: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group (``group``: 0..m-1, each present), the index of its highest ``value``, ties to
    the lowest ``raster``: the first maximum in raster order, whichever tile it came from."""
    m = int(group.max()) + 1 if group.size else 0
    best = np.full(m, -np.inf)
    np.maximum.at(best, group, value)
    at = np.nonzero(value == best[group])[0]
    first = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first, group[at], raster[at])
    hit = at[raster[at] == first[group[at]]]
    # One index per group: the hit pixels are distinct rasters within a group.
    out = np.empty(m, dtype=np.int64)
    out[group[hit]] = hit
    return out


def _combine(parts) -> dict[str, np.ndarray]:
    """Merge per-tile sums of blobs that span several tiles."""
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    uid, inv = np.unique(cat["id"], return_inverse=True)
    m = len(uid)
    out: dict[str, Any] = {k: np.bincount(inv, cat[k], m)
                           for k in ("area", "sy", "sx", "sw", "swy", "swx")}
    for value, where in (("max", "argmax"), ("input_max", "input_argmax")):
        if value in cat:
            best = _top(cat[value], cat[where], inv)
            out[value], out[where] = cat[value][best], cat[where][best]
    first = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(first, inv, cat["first"])
    out["first"] = first
    out["id"] = uid
    rank = np.argsort(first, kind="stable")
    return {k: np.asarray(v)[rank] for k, v in out.items()}
