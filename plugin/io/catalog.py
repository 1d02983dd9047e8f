"""The catalogue schema shared by every finder, and its writers and reader.

One schema for the CNN and PyBDSF alike, so evaluation treats them the same: ``ra``, ``dec`` (deg),
``x``, ``y`` (0-based pixels of the image searched), ``peak`` (image units at the pixel), ``snr``
(peak / image noise), ``peak_err`` (the image noise at the source: the peak's one-sigma error),
``ra_err``, ``dec_err`` (one-sigma position errors on the sky, arcsec, along RA and Dec: each
finder's own), ``total_flux`` (integrated flux density, the image's units times beams: Jy for an
image in Jy/beam) and its one-sigma error ``total_flux_err``, ``maj``, ``min`` (fitted FWHM,
arcsec: the beam's for a point source) and ``pa`` (degrees North through East), each finder's
own fit, plus any finder-specific columns. Metadata (image, finder, noise, beam) rides in the
table's ``meta`` and the FITS header.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from radiofind.errors import RadiofindError
from radiofind.io.images import Image
from radiofind.noise import pixel_values

REQUIRED = ("ra", "dec", "x", "y", "peak", "snr")
# Every finder's catalogue holds these (NaN where a finder gives none).
SCHEMA = REQUIRED + ("ra_err", "dec_err", "peak_err", "total_flux", "total_flux_err", "maj",
                     "min", "pa")
UNITS = {"ra": "deg", "dec": "deg", "ra_err": "arcsec", "dec_err": "arcsec", "maj": "arcsec",
         "min": "arcsec", "pa": "deg"}
FORMATS = {"fits": ".fits", "csv": ".csv", "votable": ".vot", "ds9": ".reg", "crtf": ".crtf"}


def make_catalog(image: Image, x: np.ndarray, y: np.ndarray, noise, *, finder: str,
                 extra: dict | None = None) -> Table:
    """Build a catalogue from pixel positions found in ``image``.

    Parameters
    ----------
    image
        The image searched (its WCS gives RA/Dec, its pixels the peak).
    x, y
        0-based pixel positions.
    noise
        Image noise (see :func:`radiofind.noise.robust_rms`) for the SNR column: one value, or
        one per source (a local rms map's value at each; the metadata then records the median).
    finder
        Name recorded in the metadata ("radiofind", "pybdsf", ...).
    extra
        More columns, name -> array: the finder's own :data:`SCHEMA` columns (``ra_err``,
        ``total_flux``, ...; NaN where it gives none) and its own others.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ra, dec = image.pixel_to_world(x, y)
    peak = pixel_values(image.pixels, x, y)
    table = Table()
    table["id"] = np.arange(len(x), dtype=np.int32)
    table["ra"], table["dec"] = ra, dec
    given = dict(extra or {})
    for name in ("ra_err", "dec_err"):  # beside the positions
        table[name] = np.asarray(given.pop(name, np.full(x.shape, np.nan)), dtype=float)
    table["x"], table["y"] = x, y
    table["peak"] = peak
    table["peak_err"] = np.broadcast_to(np.asarray(noise, dtype=float), x.shape).copy()
    table["snr"] = peak / noise
    for name, values in given.items():
        table[name] = values
    for name in SCHEMA:  # what the finder does not give (its own fit's columns) reads NaN
        if name not in table.colnames:
            table[name] = np.full(x.shape, np.nan)
    for name, unit in UNITS.items():
        table[name].unit = unit
    table.meta.update({"FINDER": finder, "IMAGE": os.path.basename(image.path),
                       "NOISE": float(np.median(noise)), "BMAJ": image.beam.bmaj,
                       "BMIN": image.beam.bmin, "BPA": image.beam.bpa})
    return table


def write_catalog(table: Table, stage, basename: str, formats=tuple(FORMATS),
                  *, beam_deg: float | None = None) -> list[str]:
    """Write ``table`` as ``basename.<ext>`` for each format into a staging area.

    ``stage`` is a :class:`radiofind.io.outputs.Staging`; returns the names written.
    """
    radius_arcsec = 3600.0 * (beam_deg if beam_deg
                              else np.sqrt(table.meta["BMAJ"] * table.meta["BMIN"])) / 2
    names = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise RadiofindError(f"unknown catalogue format {fmt!r} "
                                 f"(choose from {', '.join(FORMATS)})")
        name = basename + FORMATS[fmt]
        path = stage.path(name)
        if fmt in ("fits", "csv"):
            table.write(path, format=fmt)
        elif fmt == "votable":
            _write_votable(path, table)
        elif fmt == "ds9":
            _write_ds9(path, table, radius_arcsec)
        elif fmt == "crtf":
            _write_crtf(path, table, radius_arcsec)
        names.append(name)
    return names


def _write_votable(path: Path, table: Table) -> None:
    """The table as a VOTable, its metadata (image, finder, noise, beam, settings) as the
    table's INFO elements, which :func:`read_catalog` reads back (astropy's writer drops them)."""
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    plain = table.copy(copy_data=False)
    plain.meta = {}
    votable = from_table(plain)
    infos = votable.get_first_table().infos
    for key, value in table.meta.items():
        value, comment = value if isinstance(value, tuple) else (value, "")
        info = Info(name=key, value=str(value))
        if comment:
            info.content = comment
        infos.append(info)
    votable.to_xml(str(path))


def _info_value(text: str):
    """A VOTable INFO's value as the int, float, bool or string it was written from."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _write_ds9(path: Path, table: Table, radius_arcsec: float) -> None:
    finder = table.meta.get("FINDER", "radiofind")
    color = "green" if finder == "radiofind" else "cyan"
    lines = ["# Region file format: DS9 version 4.1", f"# {finder} catalogue",
             f'global color={color} width=1 font="helvetica 9 normal roman"', "fk5"]
    for row in table:
        lines.append(f'circle({row["ra"]:.7f},{row["dec"]:.7f},{radius_arcsec:.2f}") '
                     f'# text={{{row["snr"]:.1f}}}')
    Path(path).write_text("\n".join(lines) + "\n")


def _write_crtf(path: Path, table: Table, radius_arcsec: float) -> None:
    lines = ["#CRTFv0 CASA Region Text Format version 0"]
    for row in table:
        lines.append(f'circle [[{row["ra"]:.7f}deg, {row["dec"]:.7f}deg], '
                     f'{radius_arcsec:.2f}arcsec] coord=J2000, label="{row["snr"]:.1f}"')
    Path(path).write_text("\n".join(lines) + "\n")


def read_catalog(path: str | os.PathLike, *, required=("ra", "dec")) -> Table:
    """Read a catalogue (FITS table, CSV or VOTable, by its extension: .csv, .vot/.xml, else
    FITS) and check it has the ``required`` columns."""
    path = str(path)
    if not os.path.exists(path):
        raise RadiofindError(f"no such file: {path}")
    try:
        suffix = Path(path).suffix.lower()
        if suffix in (".vot", ".xml"):
            from astropy.io.votable import parse

            votable = parse(path).get_first_table()
            table = votable.to_table()
            table.meta.update({i.name: _info_value(i.value) for i in votable.infos})
        else:
            table = Table.read(path, format="csv" if suffix == ".csv" else "fits")
    except Exception as err:  # astropy raises many types for unreadable tables
        raise RadiofindError(f"{path} is not a readable catalogue ({err})") from None
    # PyBDSF (and many other finders) write upper-case RA/DEC: accept any case.
    for name in list(table.colnames):
        if name.lower() in ("ra", "dec") and name.lower() not in table.colnames:
            table.rename_column(name, name.lower())
    missing = [c for c in required if c not in table.colnames]
    if missing:
        raise RadiofindError(f"{path} lacks column(s) {', '.join(missing)}")
    return table


def current_catalogue(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a FITS catalogue holding every :data:`SCHEMA` column: one written
    before a column joined the schema is stale (for caches such as the benchmarks')."""
    if not os.path.exists(path):
        return False
    from astropy.io import fits

    with fits.open(path) as hdus:
        return set(SCHEMA) <= set(hdus[1].columns.names)


def output_names(image: str, formats: list[str], finder: str) -> dict[str, str]:
    """Names of the outputs a finder writes for ``image``: ``<stem>.<finder>.<ext>``."""
    stem = Path(image.rstrip("/")).name
    for ext in (".fits", ".FITS", ".image", ".img"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return {fmt: f"{stem}.{finder}{FORMATS[fmt]}" for fmt in formats} | {"base": f"{stem}.{finder}"}


def check_formats(formats: list[str]) -> list[str]:
    formats = list(formats or [])
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise RadiofindError(f"unknown catalogue format(s) {', '.join(bad) or '(none given)'}; "
                             f"choose from {', '.join(FORMATS)}")
    return formats


def catalogue_with(finder: str, find, *, image: str, outdir: str, formats, overwrite: bool,
                   meta: dict, settings: str) -> dict:
    """Run an external finder on ``image`` and write its sources in radiofind's schema.

    ``find(img)`` gets the :class:`~radiofind.io.images.Image` and returns ``(ra, dec, extra)``
    (degrees, and the finder's columns: its own errors, fluxes and sizes under the
    :data:`SCHEMA` names); positions become pixels through the image's WCS and
    SNRs come from radiofind's own noise, so every finder is scored alike. Outputs are staged
    (nothing is written if the finder fails); ``meta`` goes into the table's metadata and
    ``settings`` into the one-line summary printed.
    """
    import time

    from radiofind.io.images import read_image
    from radiofind.io.outputs import staged_outputs
    from radiofind.noise import robust_rms

    formats = check_formats(formats)
    t0 = time.perf_counter()
    img = read_image(image)
    names = output_names(image, formats, finder)
    with staged_outputs(outdir, [names[f] for f in formats], overwrite=overwrite) as stage:
        ra, dec, extra = find(img)
        x, y = img.world_to_pixel(ra, dec)
        table = make_catalog(img, x, y, robust_rms(img.data), finder=finder, extra=extra)
        table.meta.update(meta)
        write_catalog(table, stage, names["base"], formats)
    seconds = time.perf_counter() - t0
    print(f"radiofind {finder}: {len(table)} sources in {Path(image).name} ({settings}; "
          f"{seconds:.1f} s) -> {outdir}")
    return {"image": image, "n_sources": len(table), "seconds": seconds,
            "catalog": str(Path(outdir) / names.get("fits", names[formats[0]]))}
