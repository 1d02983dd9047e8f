"""The ``radiofind evaluate`` step: score catalogues against the truth in the image they came from.

All SNRs share one noise: the robust noise of the image's source-free pixels, found by
:func:`radiofind.noise.measure_snr` with the truth positions masked. The true SNR of a source and
the SNR of a detection are both the image value at the position (from RA/Dec through the image
WCS, the same way for every finder) over that noise, so purity and completeness bins line up.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from radiofind.errors import RadiofindError
from radiofind.evaluate.crossmatch import crossmatch
from radiofind.evaluate.metrics import REFERENCE_SNRS, score
from radiofind.io.catalog import read_catalog
from radiofind.io.images import Image, read_image
from radiofind.io.outputs import check_writable, staged_outputs
from radiofind.noise import measure_snr, pixel_values

MATCH_RADIUS = 0.6667  # crossmatch radius, beams (2/3 of the beam size, as DeepSource)
OUTPUTS = ("metrics.json", "metrics.png", "metrics.txt")


def evaluate(*, truth: str | os.PathLike, image: str | os.PathLike,
             catalogs: str | Iterable[str], snr_bin: float = 0.5,
             match_radius: float = MATCH_RADIUS, overwrite: bool = False,
             outdir: str | os.PathLike) -> dict:
    """Crossmatch catalogues against the truth and write purity/completeness metrics and a plot.

    Parameters
    ----------
    truth
        Truth catalogue (FITS table or CSV) with ``ra`` and ``dec`` in degrees.
    image
        The image the catalogues were made from; SNRs are measured in it.
    catalogs
        Catalogues to score, each ``NAME=PATH`` or ``PATH`` (the name is then the file's stem).
    snr_bin
        Width of the SNR bins (bins are centred on its multiples; see
        :mod:`radiofind.evaluate.metrics`).
    match_radius
        Crossmatch radius in units of the beam size sqrt(BMAJ * BMIN).
    overwrite
        Replace existing outputs.
    outdir
        Output folder for ``metrics.json``, ``metrics.png`` and ``metrics.txt``.

    Returns
    -------
    dict
        See :func:`compare_catalogs`; plus ``image``, ``truth`` and each finder's ``catalog`` path.
        In ``metrics.json`` NaN and infinite values are written as ``null``.

    Raises
    ------
    RadiofindError
        Bad ``snr_bin`` or ``match_radius``, missing or unreadable files, a catalogue without
        ``ra``/``dec``, duplicate finder names, or outputs that exist without ``overwrite``.
    """
    _check_positive(snr_bin, "snr_bin")
    _check_positive(match_radius, "match_radius")
    entries = parse_catalogs(catalogs)
    # Refuse existing outputs before any reading; staged_outputs checks again when committing.
    check_writable((Path(outdir) / name for name in OUTPUTS), overwrite=overwrite)

    img = read_image(image)
    truth_table = read_catalog(truth)
    tables = {name: read_catalog(path) for name, path in entries.items()}
    results = compare_catalogs(img, truth_table, tables, snr_bin=snr_bin,
                               match_radius=match_radius)
    results["image"] = str(image)
    results["truth"] = str(truth)
    for name, path in entries.items():
        results["finders"][name]["catalog"] = str(path)

    # Deferred: matplotlib is only loaded by the step that draws (keeps `--help` fast).
    from radiofind.evaluate.plot import plot_metrics

    with staged_outputs(outdir, OUTPUTS, overwrite=overwrite) as stage:
        with open(stage.path("metrics.json"), "w") as fh:
            json.dump(json_safe(results), fh, indent=1, allow_nan=False)
            fh.write("\n")
        stage.path("metrics.txt").write_text(format_table(results) + "\n")
        plot_metrics(results, stage.path("metrics.png"), title=Path(str(image)).name)
    return results


def measure_truth_snr(image: Image, truth_ra, truth_dec) -> tuple[np.ndarray, float]:
    """True SNR of every truth source in ``image`` and the source-free noise they share.

    Positions the projection cannot place (e.g. the far side of a SIN image) get NaN.
    """
    t_x, t_y = image.world_to_pixel(truth_ra, truth_dec)
    placed = np.isfinite(t_x) & np.isfinite(t_y)
    snr = np.full(np.shape(t_x), np.nan)
    snr[placed], noise = measure_snr(image, t_x[placed], t_y[placed], known_sources=True)
    return snr, noise


@dataclass
class FieldMatch:
    """One field's crossmatch: what :func:`score_fields` needs to score many fields together."""

    truth_snr: np.ndarray
    det_snr: np.ndarray
    truth_found: np.ndarray
    det_is_tp: np.ndarray
    separation_deg: np.ndarray
    truth_index: np.ndarray | None = None  # the truth source of each separation_deg entry


def match_field(image: Image, truth_ra, truth_dec, truth_snr, noise: float, det_ra, det_dec, *,
                match_radius: float = MATCH_RADIUS) -> FieldMatch:
    """Crossmatch detections with the truth in one image; detection SNRs use the truth's noise."""
    d_ra, d_dec = np.asarray(det_ra, float), np.asarray(det_dec, float)
    d_x, d_y = image.world_to_pixel(d_ra, d_dec)
    det_snr = np.full(d_ra.shape, np.nan)
    placed = np.isfinite(d_x) & np.isfinite(d_y)
    det_snr[placed] = pixel_values(image.data, d_x[placed], d_y[placed]) / noise
    match = crossmatch(truth_ra, truth_dec, d_ra, d_dec,
                       radius_deg=match_radius * image.beam.size_deg)
    return FieldMatch(np.asarray(truth_snr, float), det_snr, match.truth_found, match.det_is_tp,
                      match.separation_deg, match.truth_index)


def score_fields(matches: Iterable[FieldMatch], *, snr_bin: float = 0.5) -> dict:
    """Score several fields together (counts summed before P and C, as DeepSource does)."""
    matches = list(matches)
    return score(np.concatenate([m.truth_snr for m in matches]),
                 np.concatenate([m.det_snr for m in matches]),
                 np.concatenate([m.truth_found for m in matches]),
                 np.concatenate([m.det_is_tp for m in matches]), snr_bin=snr_bin)


def above_five(matches) -> dict:
    """Completeness of the true sources with SNR >= 5 and purity of the detections with SNR >= 5
    (the image value at the detection over the noise, as purity's bins), over several fields."""
    true5 = [np.nan_to_num(m.truth_snr, nan=-1.0) >= 5 for m in matches]
    det5 = [np.nan_to_num(m.det_snr, nan=-1.0) >= 5 for m in matches]
    n = {"n_true5": sum(int(t.sum()) for t in true5),
         "n_true5_found": sum(int(m.truth_found[t].sum()) for m, t in zip(matches, true5,
                                                                          strict=True)),
         "n_det5": sum(int(d.sum()) for d in det5),
         "n_det5_tp": sum(int(m.det_is_tp[d].sum()) for m, d in zip(matches, det5, strict=True))}
    return {**n, "c_ge5": n["n_true5_found"] / n["n_true5"] if n["n_true5"] else None,
            "p_ge5": n["n_det5_tp"] / n["n_det5"] if n["n_det5"] else None}


def compare_catalogs(image: Image, truth: Table, catalogs: Mapping[str, Table], *,
                     snr_bin: float = 0.5, match_radius: float = MATCH_RADIUS) -> dict:
    """Score catalogues (already read) against the truth in ``image``; nothing is written.

    Parameters
    ----------
    image
        The image searched.
    truth
        Truth table with ``ra``, ``dec`` (degrees).
    catalogs
        Finder name -> catalogue table with ``ra``, ``dec`` (degrees).
    snr_bin, match_radius
        As for :func:`evaluate`.

    Returns
    -------
    dict
        ``noise`` (image units), ``beam`` (degrees and arcsec), ``match_radius`` (beams),
        ``radius_deg``, ``radius_arcsec``, ``snr_bin``, ``n_truth`` and ``finders``: name ->
        :func:`radiofind.evaluate.metrics.score` output plus ``median_separation_arcsec``.
    """
    _check_positive(snr_bin, "snr_bin")
    _check_positive(match_radius, "match_radius")
    t_ra, t_dec = table_radec(truth, "truth catalogue")
    truth_snr, noise = measure_truth_snr(image, t_ra, t_dec)
    radius_deg = match_radius * image.beam.size_deg

    finders = {}
    for name, table in catalogs.items():
        d_ra, d_dec = table_radec(table, f"catalogue {name!r}")
        fm = match_field(image, t_ra, t_dec, truth_snr, noise, d_ra, d_dec,
                         match_radius=match_radius)
        res = score_fields([fm], snr_bin=snr_bin)
        res["median_separation_arcsec"] = (float(np.median(fm.separation_deg)) * 3600.0
                                           if fm.separation_deg.size else math.nan)
        finders[name] = res

    beam = image.beam
    return {
        "noise": float(noise), "noise_unit": str(image.header.get("BUNIT", "")).strip(),
        "beam": {"bmaj_deg": beam.bmaj, "bmin_deg": beam.bmin, "bpa_deg": beam.bpa,
                 "size_deg": beam.size_deg, "size_arcsec": beam.size_deg * 3600.0},
        "match_radius": float(match_radius), "radius_deg": float(radius_deg),
        "radius_arcsec": float(radius_deg) * 3600.0, "snr_bin": float(snr_bin),
        "n_truth": int(t_ra.size), "finders": finders,
    }


def parse_catalogs(catalogs: str | Iterable[str]) -> dict[str, str]:
    """``NAME=PATH`` or ``PATH`` entries -> {name: path}; the name defaults to the file's stem."""
    if isinstance(catalogs, (str, os.PathLike)):
        catalogs = [catalogs]
    out: dict[str, str] = {}
    for entry in catalogs:
        entry = str(entry)
        name, sep, path = entry.partition("=")
        # A '=' inside a folder name is part of the path, not a NAME= prefix.
        if not sep or not name or os.sep in name or "/" in name:
            name, path = Path(entry).stem, entry
        if not path:
            raise RadiofindError(f"catalogue entry {entry!r} names no file (use NAME=PATH or PATH)")
        if name in out:
            raise RadiofindError(f"two catalogues are named {name!r}; name them with NAME=PATH")
        out[name] = path
    if not out:
        raise RadiofindError("give at least one catalogue to evaluate")
    for path in out.values():
        if not os.path.exists(path):
            raise RadiofindError(f"no such file: {path}")
    return out


def table_radec(table: Table, what: str) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec columns of ``table`` in degrees (converted if they carry another angle unit)."""
    out = []
    for col in ("ra", "dec"):
        if col not in table.colnames:
            raise RadiofindError(f"{what} lacks column {col!r}")
        column = table[col]
        try:
            values = np.array(np.ma.getdata(column), dtype=np.float64).ravel()
            values[np.ma.getmaskarray(column).ravel()] = np.nan
            if column.unit is not None and len(values):
                values = (values * u.Unit(column.unit)).to_value(u.deg)
        except (ValueError, TypeError, u.UnitsError) as err:
            raise RadiofindError(f"{what}: column {col!r} is not an angle in degrees ({err})") \
                from None
        bad = ~np.isfinite(values)
        if bad.any():
            raise RadiofindError(f"{what}: {int(bad.sum())} row(s) have a blank or NaN {col!r}")
        out.append(np.asarray(values, dtype=np.float64))
    return out[0], out[1]


def format_table(results: dict, *, title: str | None = None) -> str:
    """P, C and PC at SNR 3/4/5, S90 and counts, finders side by side (DeepSource Table 3)."""
    names = list(results["finders"])
    width = max([6] + [len(n) for n in names])
    group = " ".join(f"{n:>{width}}" for n in names)
    gw = len(group)
    lines = [title] if title else []
    lines.append(f"{'':<8}| " + " | ".join(f"{g:^{gw}}" for g in ("P", "C", "PC")))
    lines.append(f"{'SNR':<8}| " + " | ".join([group] * 3))
    lines.append("-" * 8 + "+" + "+".join(["-" * (gw + 2)] * 3))
    for s in REFERENCE_SNRS:
        cells = []
        for key in ("purity", "completeness", "pc"):
            cells.append(" ".join(_num(results["finders"][n]["at_snr"][f"{s:g}"][key], width)
                                  for n in names))
        lines.append(f"{s:<8g}| " + " | ".join(cells))
    lines.append("-" * 8 + "+" + "-" * (gw + 2))
    for label, key, fmt in (("S90", "s90", "{:.2f}"), ("S90 lin", "s90_interp", "{:.2f}"),
                            ("N det", "n_detections", "{:d}"),
                            ("N TP", "n_tp", "{:d}"), ("N >S90", "n_above_s90", "{:d}")):
        row = " ".join(_num(results["finders"][n][key], width, fmt) for n in names)
        lines.append(f"{label:<8}| {row}")
    lines.append(f"truth {results['n_truth']} sources; noise {results['noise']:.4g} "
                 f"{results.get('noise_unit', '')}; match radius {results['radius_arcsec']:.2f}\" "
                 f"({results['match_radius']:g} beam); SNR bins {results['snr_bin']:g} wide "
                 "(S90: a bin's lower edge; S90 lin: read between bin centres)")
    return "\n".join(lines)


def json_safe(obj):
    """A copy of ``obj`` with NaN and infinite floats replaced by None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _num(value, width: int, fmt: str = "{:.2f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{'-':>{width}}"
    return f"{fmt.format(value):>{width}}"


def _check_positive(value, name: str) -> None:
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise RadiofindError(f"{name} must be a positive number, got {value!r}")
