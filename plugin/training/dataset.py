"""Training data: simulated fields on disk -> normalised images, demand images, random crops.

A field is a folder written by ``radiofind simulate``: ``<weighting>-image.fits`` and
``truth.fits``. Images are normalised exactly as at detection time (divided by
:func:`radiofind.noise.robust_rms`), so the network never sees raw Jy/beam.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.io.catalog import read_catalog
from radiofind.io.images import Image, binned, read_image
from radiofind.noise import robust_rms
from radiofind.training.demand import coefficient_image, demand_image

# A noise peak is a local maximum more than this many beams from every truth source.
NOISE_PEAK_BEAMS = 1.5
# The share of training crops centred near a true source.
SOURCE_FRACTION = 0.5


@dataclass
class Field:
    """One simulated field at one weighting."""

    name: str
    image: Image  # as simulated (truth SNRs and matching use it)
    grid: Image  # what the network sees: the image binned by the model's input.bin
    normalised: np.ndarray
    truth_x: np.ndarray
    truth_y: np.ndarray
    truth_ra: np.ndarray
    truth_dec: np.ndarray
    demand: np.ndarray | None = None
    # Noise peaks to centre crops on (hard negatives; :func:`find_noise_peaks`), grid pixels.
    peaks_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    peaks_y: np.ndarray = field(default_factory=lambda: np.empty(0))


def find_fields(data: str | Path, weighting: str) -> list[Path]:
    """Field folders under ``data`` holding ``<weighting>-image.fits`` and ``truth.fits``."""
    data = Path(data)
    if not data.is_dir():
        raise RadiofindError(f"training data folder not found: {data}")
    fields = sorted(p.parent for p in data.glob(f"*/{weighting}-image.fits")
                    if (p.parent / "truth.fits").is_file())
    if not fields:
        raise RadiofindError(f"no simulated fields with {weighting}-image.fits and truth.fits "
                             f"in {data}")
    return fields


def describe_training_set(folders: list[Path]) -> dict:
    """How the fields were simulated, from their ``simulation.json``: for a model card."""
    keys = ("telescope", "synthesis_time", "integration_time", "frequency", "channel_width",
            "n_channels", "n_sources", "snr_scale", "snr_min", "min_separation", "size", "scale",
            "niter", "auto_threshold", "auto_mask", "mgain", "super_weight")
    values: dict[str, set] = {k: set() for k in keys}
    seeds, ras, decs, beams = [], [], [], {}
    for folder in folders:
        meta_path = folder / "simulation.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        params = meta.get("parameters", {})
        for k in keys:
            if k in params:
                values[k].add(params[k])
        seeds.append(params.get("seed"))
        ras.append(meta.get("observation", {}).get("ra_deg"))
        decs.append(meta.get("observation", {}).get("dec_deg"))
        for w, info in meta.get("images", {}).items():
            beams.setdefault(w, []).append(info.get("beam_arcsec", {}))
    summary = {k: sorted(v) if len(v) > 1 else next(iter(v)) for k, v in values.items() if v}
    summary["n_fields"] = len(folders)
    if seeds:
        summary["seeds"] = [min(seeds), max(seeds)]
        summary["ra_deg"] = [round(min(ras), 2), round(max(ras), 2)]
        summary["dec_deg"] = [round(min(decs), 2), round(max(decs), 2)]
    for w, bs in beams.items():
        size = [float(np.sqrt(b["bmaj"] * b["bmin"])) for b in bs if b]
        if size:
            summary[f"beam_arcsec_{w}"] = [round(min(size), 2), round(max(size), 2)]
    return summary


def load_field(folder: Path, weighting: str, *, bin: int = 1) -> Field:
    """One field, averaged in ``bin`` x ``bin`` pixel blocks for the network (as at detection)."""
    img = read_image(folder / f"{weighting}-image.fits")
    grid = binned(img, bin)
    truth = read_catalog(folder / "truth.fits")
    x, y = grid.world_to_pixel(truth["ra"], truth["dec"])
    noise = robust_rms(grid.data)
    normalised = np.nan_to_num(grid.data / noise).astype(np.float32)
    return Field(folder.name, img, grid, normalised, x, y, np.asarray(truth["ra"]),
                 np.asarray(truth["dec"]))


def attach_demand(field: Field, *, alpha: float, b_n: float, horn_radius: float,
                  gauss_fwhm: float) -> None:
    coeff = coefficient_image(field.normalised.shape, field.truth_x, field.truth_y,
                              horn_radius=horn_radius, gauss_fwhm=gauss_fwhm)
    field.demand = demand_image(field.normalised, coeff, alpha=alpha, b_n=b_n)


def local_maxima(image: np.ndarray, low: float) -> np.ndarray:
    """Pixels no lower than their 3 x 3 neighbourhood and at least ``low``."""
    from scipy import ndimage

    return (image == ndimage.maximum_filter(image, size=3)) & (image >= low)


def far_from(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, distance: float
             ) -> np.ndarray:
    """Pixels of an image of ``shape`` more than ``distance`` pixels from every position (x, y);
    positions off the image count at its nearest edge pixel, NaN ones not at all."""
    from scipy import ndimage

    placed = np.isfinite(x) & np.isfinite(y)
    seeds = np.ones(shape, bool)
    seeds[np.clip(np.round(y[placed]).astype(int), 0, shape[0] - 1),
          np.clip(np.round(x[placed]).astype(int), 0, shape[1] - 1)] = False
    return ndimage.distance_transform_edt(seeds) > distance


def find_noise_peaks(f: Field, snr: float) -> int:
    """Record the field's noise peaks: local maxima (3 x 3) of its normalised image at ``snr`` or
    higher, more than :data:`NOISE_PEAK_BEAMS` beams from every truth source. Returns how many.

    They are what a finder's false detections are made of, and a random crop seldom holds a
    bright one (a 1024² MeerKAT uniform training image holds about 20 at SNR 4 or more, so a 96²
    crop about one time in six): :func:`random_crops` can centre crops on them.
    """
    if not snr > 0:
        raise RadiofindError(f"the noise peaks' SNR must be positive, got {snr}")
    far = far_from(f.normalised.shape, f.truth_x, f.truth_y,
                   NOISE_PEAK_BEAMS * f.grid.beam_pixels)
    f.peaks_y, f.peaks_x = (a.astype(np.float64)
                            for a in np.nonzero(local_maxima(f.normalised, snr) & far))
    return int(f.peaks_x.size)


def _origin(x: float, y: float, size: int, nx: int, ny: int, rng: np.random.Generator
            ) -> tuple[int, int]:
    """A crop origin that puts pixel (x, y) at a random place inside a ``size``² crop."""
    cx = int(np.rint(x)) - int(rng.integers(size))
    cy = int(np.rint(y)) - int(rng.integers(size))
    return int(np.clip(cx, 0, nx - size)), int(np.clip(cy, 0, ny - size))


def random_crops(fields: list[Field], n: int, size: int, rng: np.random.Generator, *,
                 augment: bool = True, source_fraction: float = SOURCE_FRACTION,
                 noise_peak_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (input, demand) crops of ``size``², with flips and 90° rotations.

    A fraction ``source_fraction`` of the crops contain a true source at a random place (sources
    cover a tiny part of the sky, so uniform crops alone teach mostly background), and a
    fraction ``noise_peak_fraction`` one of the field's noise peaks (:func:`find_noise_peaks`;
    hard negatives); the rest are anywhere. With ``noise_peak_fraction`` 0 the crops are those
    drawn before it existed, for the same ``rng``.
    """
    xs = np.empty((n, size, size, 1), np.float32)
    ys = np.empty((n, size, size, 1), np.float32)
    for k in range(n):
        f = fields[rng.integers(len(fields))]
        ny, nx = f.normalised.shape
        if ny < size or nx < size:
            raise RadiofindError(f"crop size {size} exceeds image {f.name} ({nx}x{ny})")
        u = rng.random()
        if u < source_fraction and len(f.truth_x):
            k_src = rng.integers(len(f.truth_x))
            x0, y0 = _origin(f.truth_x[k_src], f.truth_y[k_src], size, nx, ny, rng)
        elif u < source_fraction + noise_peak_fraction and len(f.peaks_x):
            k_peak = rng.integers(len(f.peaks_x))
            x0, y0 = _origin(f.peaks_x[k_peak], f.peaks_y[k_peak], size, nx, ny, rng)
        else:
            y0, x0 = rng.integers(0, ny - size + 1), rng.integers(0, nx - size + 1)
        a = f.normalised[y0:y0 + size, x0:x0 + size]
        b = f.demand[y0:y0 + size, x0:x0 + size]
        if augment:
            turns, flip = int(rng.integers(4)), bool(rng.integers(2))
            a, b = np.rot90(a, turns), np.rot90(b, turns)
            if flip:
                a, b = a[:, ::-1], b[:, ::-1]
        xs[k, :, :, 0], ys[k, :, :, 0] = a, b
    return xs, ys
