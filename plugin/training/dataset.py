"""Training data: simulated fields on disk -> normalised images, demand images, random crops.

A field is a folder written by ``radiofind simulate``: ``<weighting>-image.fits`` and
``truth.fits``. Images are normalised exactly as at detection time (divided by
:func:`radiofind.noise.robust_rms`), so the network never sees raw Jy/beam.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.io.catalog import read_catalog
from radiofind.io.images import Image, binned, read_image
from radiofind.noise import robust_rms
from radiofind.training.demand import coefficient_image, demand_image


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


def random_crops(fields: list[Field], n: int, size: int, rng: np.random.Generator, *,
                 augment: bool = True, source_fraction: float = 0.5
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (input, demand) crops of ``size``², with flips and 90° rotations.

    A fraction ``source_fraction`` of the crops contain a true source at a random place (sources
    cover a tiny part of the sky, so uniform crops alone teach mostly background).
    """
    xs = np.empty((n, size, size, 1), np.float32)
    ys = np.empty((n, size, size, 1), np.float32)
    for k in range(n):
        f = fields[rng.integers(len(fields))]
        ny, nx = f.normalised.shape
        if ny < size or nx < size:
            raise RadiofindError(f"crop size {size} exceeds image {f.name} ({nx}x{ny})")
        if rng.random() < source_fraction and len(f.truth_x):
            k_src = rng.integers(len(f.truth_x))
            cx = int(np.rint(f.truth_x[k_src])) - int(rng.integers(size))
            cy = int(np.rint(f.truth_y[k_src])) - int(rng.integers(size))
            x0, y0 = int(np.clip(cx, 0, nx - size)), int(np.clip(cy, 0, ny - size))
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
