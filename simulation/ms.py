"""Empty Measurement Sets of a MeerKAT/ASKAP observation, made with the casatools simulator.

The simulator gets the real ITRF antenna positions (``coordsystem="global"``), an ideal linear feed
(XX XY YX YY), one spectral window and a track of ``synthesis_time`` hours centred on transit
(``settimes(usehourangle=True)``: the observation's start and stop are hour angles). It also creates
MODEL_DATA and CORRECTED_DATA full of zeros, which triple the disk use and which WSClean would
image silently in place of DATA; they are dropped.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.simulation.casaconfig import casa_output_to_log, import_casatools
from radiofind.simulation.telescopes import Telescope

log = logging.getLogger("radiofind.simulation")

# The simulator flags samples below this elevation (casatools' default is 10 degrees too).
ELEVATION_LIMIT_DEG = 10.0
# A fixed date keeps the Measurement Set (times, uvw) reproducible; the season barely matters
# because the track is placed by hour angle.
REFERENCE_DATE = "2024/01/01/00:00:00"


@dataclass(frozen=True)
class Observation:
    """What is observed, when and how; validated on construction.

    Attributes
    ----------
    telescope
        The array.
    ra_deg, dec_deg
        Pointing (phase centre), J2000 degrees.
    synthesis_time
        Track length, hours, centred on transit.
    integration_time
        Dump time, seconds.
    frequency
        Centre frequency of the band, Hz.
    channel_width
        Hz.
    n_channels
        Number of channels.
    """

    telescope: Telescope
    ra_deg: float
    dec_deg: float
    synthesis_time: float
    integration_time: float
    frequency: float
    channel_width: float
    n_channels: int

    def __post_init__(self) -> None:
        for name in ("synthesis_time", "integration_time", "frequency", "channel_width"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise RadiofindError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(self.n_channels, (int, np.integer)) and self.n_channels > 0):
            raise RadiofindError(f"n_channels must be a positive integer, got {self.n_channels!r}")
        if self.integration_time > self.synthesis_time * 3600.0:
            raise RadiofindError(
                f"integration_time ({self.integration_time:g} s) is longer than the synthesis time "
                f"({self.synthesis_time:g} h)")
        if self.synthesis_time > 24.0:
            raise RadiofindError(
                f"synthesis_time must be at most 24 h, got {self.synthesis_time:g}")
        if self.channel_freqs[0] <= 0:
            raise RadiofindError(
                "the band reaches zero frequency: lower channel_width or n_channels")
        transit = 90.0 - abs(self.dec_deg - self.telescope.latitude_deg)
        if transit < ELEVATION_LIMIT_DEG:
            raise RadiofindError(
                f"Dec {self.dec_deg:g} never rises above {ELEVATION_LIMIT_DEG:g} deg elevation at "
                f"{self.telescope.casa_name} (latitude {self.telescope.latitude_deg:.1f})")

    @property
    def n_times(self) -> int:
        """Number of dumps in the track."""
        return max(1, int(round(self.synthesis_time * 3600.0 / self.integration_time)))

    @property
    def channel_freqs(self) -> np.ndarray:
        """Channel centre frequencies, Hz, centred on ``frequency``."""
        offsets = np.arange(self.n_channels) - (self.n_channels - 1) / 2.0
        return self.frequency + offsets * self.channel_width


def create_ms(path: str | os.PathLike, obs: Observation) -> None:
    """Create an empty Measurement Set (DATA zero) for ``obs`` at ``path``.

    No autocorrelations; MODEL_DATA and CORRECTED_DATA are removed afterwards.

    Raises
    ------
    RadiofindError
        ``path`` exists, or the simulator produced no rows.
    """
    if "tensorflow" in sys.modules:
        # casatools aborts the process when it is loaded after TensorFlow (their bundled native
        # libraries clash), so a process that already runs a network makes its MS in a clean child.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            pool.submit(_create_ms, os.fspath(path), obs).result()
        return
    _create_ms(path, obs)


def _create_ms(path: str | os.PathLike, obs: Observation) -> None:
    path = os.fspath(path)
    if os.path.exists(path):
        raise RadiofindError(f"Measurement Set exists: {path}")
    ct = import_casatools()
    sm, me, qa = ct.simulator(), ct.measures(), ct.quanta()
    half = obs.synthesis_time * 3600.0 / 2.0
    with casa_output_to_log():
        _observe(sm, me, qa, path, obs, half)
    drop_columns(path, ("MODEL_DATA", "CORRECTED_DATA"))
    n_rows = ms_shape(path)[0]
    if n_rows == 0:
        raise RadiofindError("the simulated Measurement Set has no rows")
    log.info("Measurement Set: %d rows, %d channels, %s", n_rows, obs.n_channels, path)


def _observe(sm, me, qa, path: str, obs: Observation, half: float) -> None:
    """The simulator calls proper (``sm`` is closed whatever happens)."""
    tel = obs.telescope
    try:
        if not sm.open(path):
            raise RadiofindError(f"casatools could not create {path}")
        ref = me.position("itrf", *[qa.quantity(float(v), "m") for v in tel.positions.mean(axis=0)])
        sm.setconfig(telescopename=tel.casa_name, x=tel.positions[:, 0].tolist(),
                     y=tel.positions[:, 1].tolist(), z=tel.positions[:, 2].tolist(),
                     dishdiameter=tel.dish_diameters.tolist(), mount=[tel.mount] * tel.n_antennas,
                     antname=list(tel.antenna_names), padname=list(tel.antenna_names),
                     coordsystem="global", referencelocation=ref)
        # ``freq`` is the centre of the first channel.
        sm.setspwindow(spwname="SPW0", freq=_q(obs.channel_freqs[0], "Hz"),
                       deltafreq=_q(obs.channel_width, "Hz"),
                       freqresolution=_q(obs.channel_width, "Hz"), nchannels=int(obs.n_channels),
                       stokes="XX XY YX YY")
        sm.setfeed(mode="perfect X Y")
        sm.setfield(sourcename="SIM", sourcedirection=me.direction(
            "J2000", _q(obs.ra_deg, "deg"), _q(obs.dec_deg, "deg")))
        sm.setauto(autocorrwt=0.0)
        sm.setlimits(shadowlimit=0.001, elevationlimit=f"{ELEVATION_LIMIT_DEG}deg")
        sm.settimes(integrationtime=_q(obs.integration_time, "s"), usehourangle=True,
                    referencetime=me.epoch("UTC", REFERENCE_DATE))
        if not sm.observe(sourcename="SIM", spwname="SPW0", starttime=_q(-half, "s"),
                          stoptime=_q(half, "s")):
            raise RadiofindError("the casatools simulator failed to observe (see casatools.log)")
    finally:
        sm.close()
        sm.done()


def _q(value: float, unit: str) -> str:
    """A casatools quantity string with full float precision."""
    return f"{float(value):.17g}{unit}"


def drop_columns(path: str | os.PathLike, names: tuple[str, ...]) -> None:
    """Remove columns (and, with them, their storage files) from a table if present."""
    from casacore.tables import table  # python-casacore: needed only with an MS at hand

    with table(os.fspath(path), readonly=False, ack=False) as tab:
        present = [n for n in names if n in tab.colnames()]
        if present:
            tab.removecols(present)


def ms_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """(rows, channels, correlations) of the DATA column."""
    from casacore.tables import table

    with table(os.fspath(path), ack=False) as tab:
        n_rows = tab.nrows()
        if n_rows == 0:
            return 0, 0, 0
        nchan, ncorr = tab.getcell("DATA", 0).shape
    return n_rows, nchan, ncorr


def ms_frequencies(path: str | os.PathLike) -> np.ndarray:
    """Channel frequencies (Hz) of the single spectral window."""
    from casacore.tables import table

    with table(os.path.join(os.fspath(path), "SPECTRAL_WINDOW"), ack=False) as spw:
        return np.asarray(spw.getcol("CHAN_FREQ")[0], dtype=np.float64)


def count_unflagged(path: str | os.PathLike) -> int:
    """Unflagged (row, channel) samples of the first correlation (cross-correlations only)."""
    from casacore.tables import table

    total = 0
    with table(os.fspath(path), ack=False) as tab:
        for start in range(0, tab.nrows(), 100_000):
            nrow = min(100_000, tab.nrows() - start)
            flag = tab.getcol("FLAG", startrow=start, nrow=nrow)[:, :, 0]
            cross = tab.getcol("ANTENNA1", start, nrow) != tab.getcol("ANTENNA2", start, nrow)
            total += int((~flag[cross]).sum())
    return total
