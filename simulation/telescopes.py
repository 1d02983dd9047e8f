"""The arrays radiofind simulates: real antenna positions, dish sizes, default SEFDs, and a
primary beam model of each (for ``simulate --primary-beam``).

Positions come from the layout files in ``layouts/`` (ITRF X, Y, Z in metres; their headers say
where each was taken from, and ``scripts/extract_layouts.py`` rebuilds them).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

from radiofind.errors import RadiofindError

# name -> (name written to the MS OBSERVATION table, default SEFD in Jy, layout file, primary
# beam shape, its FWHM in units of lambda / D).
# SEFDs: MeerKAT L-band ~443 Jy (Tsys/eta ~ 20 K over a 13.5 m dish); ASKAP ~1800 Jy (PAF, 12 m).
# Beams: MeerKAT's L-band power pattern is close to that of a cosine-tapered aperture (Condon &
# Ransom 2016, eq. 3.95) with FWHM 57.5' at 1.5 GHz (Mauch et al. 2020), 1.13 lambda / D for
# 13.5 m; ASKAP's formed beams are close to Gaussians of FWHM 1.09 lambda / D (McConnell et al.
# 2016). Both are circular, frequency-scaled approximations of the main lobe; sidelobes are not
# modelled.
_KNOWN = {
    "meerkat": ("MeerKAT", 443.0, "meerkat.txt", "cosine", 1.13),
    "askap": ("ASKAP", 1800.0, "askap.txt", "gaussian", 1.09),
}
SPEED_OF_LIGHT = 299_792_458.0  # m/s
BEAM_SHAPES = ("cosine", "gaussian")


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
    beam_shape: str = "gaussian"
    beam_fwhm_lambda_d: float = 1.09

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

    def beam_fwhm_deg(self, frequency: float) -> float:
        """FWHM of the primary beam's power pattern at ``frequency`` (Hz), degrees."""
        wavelength = SPEED_OF_LIGHT / frequency
        diameter = float(np.median(self.dish_diameters))
        return math.degrees(self.beam_fwhm_lambda_d * wavelength / diameter)

    def primary_beam(self, offset_deg, frequency: float) -> np.ndarray:
        """Power gain of the primary beam (1 on axis) at angular distances ``offset_deg`` from the
        pointing, at ``frequency`` (Hz).

        ``cosine``: the cosine-tapered aperture's pattern, ``[cos(1.189 pi r) / (1 - 4 (1.189
        r)**2)]**2`` with ``r`` the offset over the FWHM; ``gaussian``: ``exp(-4 ln 2 r**2)``.
        Beyond the cosine pattern's first null (``r`` = 1.26) the gain is 0.
        """
        r = np.asarray(offset_deg, dtype=np.float64) / self.beam_fwhm_deg(frequency)
        if self.beam_shape == "gaussian":
            return np.exp(-4.0 * math.log(2.0) * r**2)
        x = 1.189 * r
        with np.errstate(divide="ignore", invalid="ignore"):
            amp = np.cos(math.pi * x) / (1.0 - 4.0 * x**2)
        amp = np.where(np.isclose(x, 0.5), math.pi / 4.0, amp)  # the removable 0 / 0
        return np.where(x < 1.5, amp**2, 0.0)


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
    casa_name, sefd, filename, beam_shape, beam_fwhm = _KNOWN[key]
    text = (resources.files("radiofind.simulation") / "layouts" / filename).read_text()
    names, positions, diameters = read_layout(text)
    positions.setflags(write=False)
    diameters.setflags(write=False)
    return Telescope(name=key, casa_name=casa_name, antenna_names=names, positions=positions,
                     dish_diameters=diameters, sefd=sefd, beam_shape=beam_shape,
                     beam_fwhm_lambda_d=beam_fwhm)
