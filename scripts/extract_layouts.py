#!/usr/bin/env python
"""Rebuild ``simulation/layouts/{meerkat,askap}.txt`` from the public packages they come from.

Antenna positions are facts; this script records where radiofind's came from and reproduces them:

* MeerKAT: the 64 dishes M000-M063 of subarray ``meerkat`` in ``simms`` 3.0.2's
  ``simms/telescope/layouts/skamid.geodetic.yaml`` (WGS84 longitude, latitude, height), converted to
  ITRF (geocentric X, Y, Z) with ``astropy.coordinates.EarthLocation.from_geodetic``.
* ASKAP: the 36 dishes of the ANTENNA table (already ITRF) of the small real Measurement Set
  ``flint/data/tests/SB39400.RACS_0635-31.beam0.small.ms.zip`` shipped in ``askap-flint`` 0.10.0.

The wheels are fetched with ``pip download --no-deps`` (they are not radiofind dependencies) unless
``--wheels DIR`` already holds them. Usage::

    python scripts/extract_layouts.py [--wheels DIR] [--outdir simulation/layouts]
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

SIMMS = ("simms", "3.0.2", "simms/telescope/layouts/skamid.geodetic.yaml")
FLINT = ("askap-flint", "0.10.0", "flint/data/tests/SB39400.RACS_0635-31.beam0.small.ms.zip")
MEERKAT_DISH_M = 13.5


def find_wheel(folder: Path, package: str, version: str) -> Path:
    """The wheel of ``package==version`` in ``folder``, downloaded there if missing."""
    stem = f"{package.replace('-', '_')}-{version}-"
    found = sorted(folder.glob(f"{stem}*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        f"{package}=={version}", "-d", str(folder)], check=True)
        found = sorted(folder.glob(f"{stem}*.whl"))
    if not found:
        raise SystemExit(f"no wheel for {package}=={version} in {folder}")
    return found[0]


def meerkat_positions(wheel: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, ITRF XYZ (m) and dish diameters of subarray ``meerkat`` in the simms layout."""
    import yaml
    from astropy import units as u
    from astropy.coordinates import EarthLocation

    with zipfile.ZipFile(wheel) as whl:
        layout = yaml.safe_load(whl.read(SIMMS[2]))
    if layout.get("coord_sys") != "geodetic":
        raise SystemExit(f"{SIMMS[2]}: coordinates are {layout.get('coord_sys')}, not geodetic")
    index = {name: i for i, name in enumerate(layout["antnames"])}
    names = list(layout["subarray"]["meerkat"])
    geo = np.array([layout["antlocations"][index[n]] for n in names], dtype=float)
    sizes = np.array([layout["size"][index[n]] for n in names], dtype=float)
    loc = EarthLocation.from_geodetic(geo[:, 0] * u.deg, geo[:, 1] * u.deg, geo[:, 2] * u.m,
                                      ellipsoid="WGS84")
    xyz = np.stack([loc.x.to_value(u.m), loc.y.to_value(u.m), loc.z.to_value(u.m)], axis=1)
    return names, xyz, sizes


def askap_positions(wheel: Path, workdir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, ITRF XYZ (m) and dish diameters from the ANTENNA table of flint's test MS."""
    from casacore.tables import table

    with zipfile.ZipFile(wheel) as whl:
        (workdir / "ms.zip").write_bytes(whl.read(FLINT[2]))
    with zipfile.ZipFile(workdir / "ms.zip") as msz:
        msz.extractall(workdir / "ms")
    ms = next((workdir / "ms").rglob("*.ms"))
    with table(str(ms / "ANTENNA"), ack=False) as ant:
        ref = ant.getcolkeywords("POSITION")["MEASINFO"]["Ref"]
        if ref != "ITRF":
            raise SystemExit(f"{FLINT[2]}: ANTENNA positions are {ref}, expected ITRF")
        return list(ant.getcol("NAME")), ant.getcol("POSITION"), ant.getcol("DISH_DIAMETER")


def write_layout(path: Path, header: list[str], names, xyz, sizes) -> None:
    """Write one layout file: ``#`` header lines, then ``name x y z dish_diameter`` per antenna."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines.append("# name x_itrf_m y_itrf_m z_itrf_m dish_diameter_m")
    for name, (x, y, z), size in zip(names, xyz, sizes, strict=True):
        lines.append(f"{name} {x:.4f} {y:.4f} {z:.4f} {size:g}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder holding (or to receive) the wheels")
    parser.add_argument("--outdir", type=Path,
                        default=Path(__file__).resolve().parents[1] / "simulation" / "layouts")
    parser.add_argument("--date", default=datetime.date.today().isoformat(),
                        help="extraction date recorded in the headers")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="radiofind-layouts-") as tmp:
        wheels = args.wheels or Path(tmp)
        wheels.mkdir(parents=True, exist_ok=True)

        names, xyz, sizes = meerkat_positions(find_wheel(wheels, *SIMMS[:2]))
        if len(names) != 64:
            raise SystemExit(f"expected 64 MeerKAT dishes, found {len(names)}")
        write_layout(args.outdir / "meerkat.txt", [
            "MeerKAT: 64 dishes M000-M063, 13.5 m, ITRF (geocentric) X Y Z in metres.",
            f"Source: PyPI package {SIMMS[0]} {SIMMS[1]}, file {SIMMS[2]},",
            "subarray 'meerkat' (WGS84 longitude/latitude in degrees, height in metres).",
            "Conversion: astropy EarthLocation.from_geodetic(lon, lat, height, 'WGS84'),",
            "rounded to 0.1 mm.",
            f"Extracted by scripts/extract_layouts.py on {args.date}.",
        ], names, xyz, sizes)

        names, xyz, sizes = askap_positions(find_wheel(wheels, *FLINT[:2]), Path(tmp))
        if len(names) != 36:
            raise SystemExit(f"expected 36 ASKAP dishes, found {len(names)}")
        write_layout(args.outdir / "askap.txt", [
            "ASKAP: 36 dishes ak01-ak36, 12 m, ITRF (geocentric) X Y Z in metres.",
            f"Source: PyPI package {FLINT[0]} {FLINT[1]}, file {FLINT[2]}",
            "(a real ASKAP Measurement Set, SB39400), its ANTENNA table columns NAME, POSITION",
            "(MEASINFO Ref ITRF) and DISH_DIAMETER, copied (rounded to 0.1 mm).",
            f"Extracted by scripts/extract_layouts.py on {args.date}.",
        ], names, xyz, sizes)
    print(f"wrote {args.outdir / 'meerkat.txt'} and {args.outdir / 'askap.txt'}")


if __name__ == "__main__":
    main()
