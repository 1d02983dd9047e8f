"""The arrays radiofind simulates: real antenna positions, dish sizes, default SEFDs.

Positions come from the layout files in ``layouts/`` (ITRF X, Y, Z in metres; their headers say
where each was taken from, and ``scripts/extract_layouts.py`` rebuilds them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

from radiofind.errors import RadiofindError

# name -> (name written to the MS OBSERVATION table, default SEFD in Jy, layout file).
# SEFDs: MeerKAT L-band ~443 Jy (Tsys/eta ~ 20 K over a 13.5 m dish); ASKAP ~1800 Jy (PAF, 12 m).
_KNOWN = {
    "meerkat": ("MeerKAT", 443.0, "meerkat.txt"),
    "askap": ("ASKAP", 1800.0, "askap.txt"),
}


@dataclass(frozen=True, eq=False)
class Telescope:
    """An interferometer: antennas at ITRF positions.

    Attributes
    ----------
    name
        radiofind's name (``meerkat``, ``askap``).
    casa_name
        Telescope name written to the Measurement Set (``MeerKAT``, ``ASKAP``).
    antenna_names
        One name per antenna.
    positions
        ITRF X, Y, Z of each antenna, metres, shape ``(n_antennas, 3)``.
    dish_diameters
        Dish diameter of each antenna, metres.
    sefd
        Default system equivalent flux density, Jy.
    mount
        Antenna mount type.
    """

    name: str
    casa_name: str
    antenna_names: tuple[str, ...]
    positions: np.ndarray = field(repr=False)
    dish_diameters: np.ndarray = field(repr=False)
    sefd: float
    mount: str = "ALT-AZ"

    @property
    def n_antennas(self) -> int:
        return len(self.antenna_names)

    @property
    def n_baselines(self) -> int:
        """Cross-correlation baselines (no autocorrelations)."""
        return self.n_antennas * (self.n_antennas - 1) // 2

    @property
    def location(self) -> EarthLocation:
        """The array centre: mean of the antenna positions."""
        x, y, z = self.positions.mean(axis=0)
        return EarthLocation.from_geocentric(x * u.m, y * u.m, z * u.m)

    @property
    def latitude_deg(self) -> float:
        return float(self.location.lat.to_value(u.deg))


def known_telescopes() -> list[str]:
    """Names accepted by :func:`get_telescope`."""
    return sorted(_KNOWN)


def read_layout(text: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Parse a layout file's text: ``name x y z dish_diameter`` lines, ``#`` comments.

    Returns
    -------
    names, positions (n, 3) in metres, dish diameters in metres
    """
    names, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 5:
            raise RadiofindError(f"layout line {number}: expected 'name x y z diameter': {line!r}")
        names.append(parts[0])
        rows.append([float(v) for v in parts[1:]])
    values = np.array(rows, dtype=float).reshape(-1, 4)
    return tuple(names), values[:, :3], values[:, 3]


@functools.cache
def get_telescope(name: str) -> Telescope:
    """The :class:`Telescope` called ``name`` (case-insensitive).

    Raises
    ------
    RadiofindError
        For an unknown name; the message lists the known ones.
    """
    key = str(name).strip().lower()
    if key not in _KNOWN:
        raise RadiofindError(
            f"unknown telescope {name!r}; known telescopes: {', '.join(known_telescopes())}")
    casa_name, sefd, filename = _KNOWN[key]
    text = (resources.files("radiofind.simulation") / "layouts" / filename).read_text()
    names, positions, diameters = read_layout(text)
    positions.setflags(write=False)
    diameters.setflags(write=False)
    return Telescope(name=key, casa_name=casa_name, antenna_names=names, positions=positions,
                     dish_diameters=diameters, sefd=sefd)
