"""Validate ``radiofind simulate``'s parameters once, before any work, into one object.

Everything a user can get wrong (an unknown telescope, a non-positive size or time, an unreadable
pointing, a sky that cannot fit, a missing WSClean) is refused here with a
:class:`~radiofind.errors.RadiofindError`, so a run never fails half-way for a reason that was
knowable at the start. The steps then read only what they need from the result.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from radiofind.errors import RadiofindError
from radiofind.simulation.imaging import robust_of
from radiofind.simulation.ms import Observation
from radiofind.simulation.noise import visibility_sigma
from radiofind.simulation.sky import (
    RESOLVED_FWHM,
    PointSky,
    add_bright_source,
    draw_point_sources,
    image_wcs,
    make_resolved,
    offset_deg,
    parse_pointing,
)
from radiofind.simulation.telescopes import get_telescope

MIN_SIZE = 32  # ducc0's smallest grid; WSClean's pixel centre needs an even size too
DIFFUSE_FWHM = 180.0  # arcsec: simulate's default size of the diffuse halo


def _number(name: str, value: Any, *, integer: bool = False, minimum: float | None = None,
            above: float | None = None, below: float | None = None,
            maximum: float | None = None) -> Any:
    """``value`` as a float (or int), checked against the bounds; RadiofindError otherwise."""
    if isinstance(value, bool):
        raise RadiofindError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RadiofindError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RadiofindError(f"{name} must be finite, got {value!r}")
    if integer:
        if number != int(number):
            raise RadiofindError(f"{name} must be a whole number, got {value!r}")
        number = int(number)
    if minimum is not None and number < minimum:
        raise RadiofindError(f"{name} must be at least {minimum:g}, got {value!r}")
    if above is not None and not number > above:
        raise RadiofindError(f"{name} must be greater than {above:g}, got {value!r}")
    if below is not None and not number < below:
        raise RadiofindError(f"{name} must be less than {below:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise RadiofindError(f"{name} must be at most {maximum:g}, got {value!r}")
    return number


def _fwhm_range(value: Any) -> tuple[float, float]:
    """``resolved_fwhm``: two FWHM in arcsec, least first (a string 'a,b' or a sequence)."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    if len(items) != 2:
        raise RadiofindError(
            f"resolved_fwhm must be two FWHM in arcsec, least first, got {value!r}")
    lo, hi = (_number("resolved_fwhm", v, above=0) for v in items)
    if hi < lo:
        raise RadiofindError(f"resolved_fwhm must be least first, got {value!r}")
    return lo, hi


def _weightings(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names = tuple(str(v).strip().lower() for v in items if str(v).strip())
    for name in names:
        robust_of(name)  # an unknown name is refused with the choices
    return tuple(dict.fromkeys(names))  # drop repeats, keep order


@dataclass(frozen=True)
class SimulationConfig:
    """Validated parameters of one simulation (see :func:`radiofind.simulation.run.simulate`)."""

    params: dict
    outdir: Path
    observation: Observation
    sefd: float | None
    sigma_vis: float
    n_sources: int
    snr_scale: float
    snr_min: float
    min_separation: float
    border: float
    bright_source: float | None  # SNR of the extra strong source, None when off
    size: int
    scale: float
    weightings: tuple[str, ...]
    niter: int
    auto_threshold: float
    auto_mask: float | None  # WSClean -auto-mask sigma, None when off
    mgain: float
    super_weight: float  # WSClean -super-weight (1: its default)
    primary_beam: bool  # sources attenuated by the telescope's beam; <w>-image-pb.fits written
    phase_error: float  # antenna-based phase errors on the sky's visibilities, deg rms (0: none)
    resolved: float  # fraction of the sources made elliptical Gaussians (0: all points)
    resolved_fwhm: tuple[float, float]  # their major axes' FWHM range, arcsec
    diffuse: float  # integrated flux of a diffuse halo at the pointing, flux units (0: none)
    diffuse_fwhm: float  # its FWHM, arcsec
    image: bool  # not skip_imaging
    keep_ms: bool  # not drop_ms
    seed: int
    threads: int
    overwrite: bool

    @classmethod
    def from_params(cls, params: dict) -> SimulationConfig:
        """Check every parameter of ``simulate`` and resolve defaults (SEFD, threads)."""
        p = dict(params)
        if not p.get("outdir"):
            raise RadiofindError("outdir is required")
        telescope = get_telescope(p["telescope"])
        ra_deg, dec_deg = parse_pointing(p["ra"], p["dec"])
        observation = Observation(
            telescope=telescope, ra_deg=ra_deg, dec_deg=dec_deg,
            synthesis_time=_number("synthesis_time", p["synthesis_time"], above=0),
            integration_time=_number("integration_time", p["integration_time"], above=0),
            frequency=_number("frequency", p["frequency"], above=0),
            channel_width=_number("channel_width", p["channel_width"], above=0),
            n_channels=_number("n_channels", p["n_channels"], integer=True, minimum=1))
        sefd = None
        if p.get("sigma") is not None:
            sigma_vis = _number("sigma", p["sigma"], above=0)
        else:
            sefd = telescope.sefd if p.get("sefd") is None else _number("sefd", p["sefd"], above=0)
            sigma_vis = visibility_sigma(sefd, observation.channel_width,
                                         observation.integration_time)
        size = _number("size", p["size"], integer=True, above=0)
        if size < MIN_SIZE or size % 2:
            raise RadiofindError(f"size must be an even number of pixels >= {MIN_SIZE}, got {size}")
        scale = _number("scale", p["scale"], above=0)
        # The SIN projection needs l**2 + m**2 < 1 at the image corners.
        if size / 2 * scale * math.sqrt(2) * math.pi / 180 / 3600 >= 1:
            raise RadiofindError(f"a {size}-pixel image of {scale:g}\" pixels exceeds the sky")
        image = not p["skip_imaging"]
        if not image and p["drop_ms"]:
            raise RadiofindError("skip_imaging with drop_ms would leave no data: choose one")
        weightings = _weightings(p["weightings"])
        if image and not weightings:
            raise RadiofindError("no weighting to image: give natural and/or uniform")
        threads = _number("threads", p["threads"], integer=True, minimum=0)
        bright = p.get("bright_source")
        bright = None if bright is None else _number("bright_source", bright, minimum=0) or None
        auto_threshold = _number("auto_threshold", p["auto_threshold"], above=0)
        auto_mask = p.get("auto_mask")
        if auto_mask is not None:
            auto_mask = _number("auto_mask", auto_mask, above=0)
            if not auto_mask > auto_threshold:
                raise RadiofindError(
                    f"auto_mask ({auto_mask:g}) must be greater than auto_threshold "
                    f"({auto_threshold:g}): WSClean cleans unmasked down to the mask level, then "
                    "in the mask down to the threshold")
        cfg = cls(
            params=_jsonable(p), outdir=Path(p["outdir"]), observation=observation, sefd=sefd,
            sigma_vis=sigma_vis,
            n_sources=_number("n_sources", p["n_sources"], integer=True, minimum=0),
            snr_scale=_number("snr_scale", p["snr_scale"], above=0),
            snr_min=_number("snr_min", p["snr_min"], minimum=0),
            min_separation=_number("min_separation", p["min_separation"], minimum=0),
            border=_number("border", p["border"], minimum=0, below=0.5),
            bright_source=bright, size=size, scale=scale, weightings=weightings,
            niter=_number("niter", p["niter"], integer=True, minimum=0),
            auto_threshold=auto_threshold, auto_mask=auto_mask,
            mgain=_number("mgain", p["mgain"], above=0),
            super_weight=_number("super_weight", p.get("super_weight", 1.0), above=0),
            primary_beam=bool(p.get("primary_beam", False)),
            phase_error=_number("phase_error", p.get("phase_error") or 0.0, minimum=0),
            resolved=_number("resolved", p.get("resolved") or 0.0, minimum=0, maximum=1),
            resolved_fwhm=_fwhm_range(p.get("resolved_fwhm", RESOLVED_FWHM)),
            diffuse=_number("diffuse", p.get("diffuse") or 0.0, minimum=0),
            diffuse_fwhm=_number("diffuse_fwhm", p.get("diffuse_fwhm", DIFFUSE_FWHM), above=0),
            image=image, keep_ms=not p["drop_ms"],
            seed=_number("seed", p["seed"], integer=True, minimum=0),
            threads=threads or os.cpu_count() or 1, overwrite=bool(p["overwrite"]))
        if cfg.mgain > 1:
            raise RadiofindError(f"mgain must be at most 1, got {cfg.mgain:g}")
        if image:
            from radiofind.simulation.imaging import find_wsclean

            find_wsclean()  # a missing WSClean is found now, not after the MS is made
        return cfg

    def output_names(self) -> list[str]:
        """Names written into ``outdir``."""
        names = ["truth.fits", "simulation.json"]
        if self.keep_ms:
            names.insert(0, "sim.ms")
        if self.image:
            kinds = ("image", "residual", "psf") + (("image-pb",) if self.primary_beam else ())
            names += [f"{w}-{kind}.fits" for w in self.weightings for kind in kinds]
        if self.primary_beam:
            names.append("pb.fits")
        return names

    def draw_sky(self) -> PointSky:
        """The sky in units of SNR (flux unit 1 Jy until the noise is known)."""
        obs = self.observation
        wcs = image_wcs(obs.ra_deg, obs.dec_deg, self.size, self.scale)
        sky = draw_point_sources(
            self.n_sources, wcs=wcs, size=self.size, scale=self.scale, flux_unit=1.0,
            snr_min=self.snr_min, snr_scale=self.snr_scale, border=self.border,
            min_separation=self.min_separation, seed=self.seed)
        if self.resolved:
            sky = make_resolved(sky, self.resolved, self.resolved_fwhm, seed=self.seed)
        if self.bright_source:
            # Its own generator: the other sources stay exactly those of this seed without it.
            sky = add_bright_source(sky, self.bright_source, wcs=wcs, size=self.size,
                                    scale=self.scale, border=self.border,
                                    min_separation=self.min_separation, seed=self.seed)
        if self.primary_beam:
            sky = replace(sky, gain=self.beam_gain(sky.x, sky.y))
        return sky

    def beam_gain(self, x, y) -> np.ndarray:
        """The primary beam's power gain at 0-based pixels (x, y) of the output images, at the
        band's centre frequency."""
        obs = self.observation
        return obs.telescope.primary_beam(offset_deg(x, y, self.size, self.scale),
                                          obs.frequency)

    def noise_rng(self) -> np.random.Generator:
        """The thermal noise's generator: seeded by ``seed`` but a stream apart from the sky's."""
        return np.random.default_rng([self.seed, 1])

    def gain_rng(self) -> np.random.Generator:
        """The phase errors' generator: a stream of its own, so the noise is that of ``seed``
        with or without them."""
        return np.random.default_rng([self.seed, 3])

    def truth_meta(self) -> dict:
        """FITS header keywords of the truth catalogue."""
        obs = self.observation
        return {"TELESCOP": obs.telescope.casa_name, "RA_PNT": (obs.ra_deg, "pointing RA, deg"),
                "DEC_PNT": (obs.dec_deg, "pointing Dec, deg"), "SEED": self.seed,
                "IMSIZE": (self.size, "image size, pixels"),
                "PIXSCALE": (self.scale, "pixel size, arcsec"),
                "SNRMIN": self.snr_min, "SNRSCALE": self.snr_scale,
                "MINSEP": (self.min_separation, "minimum separation, arcsec"),
                "BORDER": (self.border, "source-free border, fraction of size"),
                "SIGVIS": (self.sigma_vis, "noise per visibility re/im, Jy"),
                **({"BRIGHTSN": (self.bright_source, "SNR of the bright source (last row)")}
                   if self.bright_source else {}),
                **({"PHASEERR": (self.phase_error, "antenna phase errors, deg rms")}
                   if self.phase_error else {}),
                **({"RESOLVED": (self.resolved, "fraction of sources resolved (maj, min, pa)"),
                    "RESFWHM1": (self.resolved_fwhm[0], "least major FWHM, arcsec"),
                    "RESFWHM2": (self.resolved_fwhm[1], "greatest major FWHM, arcsec")}
                   if self.resolved else {}),
                **({"DIFFSNR": (self.diffuse, "diffuse halo's flux, SNR units (not a row)"),
                    "DIFFFWHM": (self.diffuse_fwhm, "its FWHM, arcsec"),
                    "DIFFX": (self.size // 2, "its centre, 0-based pixel x"),
                    "DIFFY": (self.size // 2, "its centre, 0-based pixel y")}
                   if self.diffuse else {}),
                **(self.beam_keywords() if self.primary_beam else {})}

    def diffuse_halo(self, flux_unit: float) -> tuple[int, int, float, float] | None:
        """The diffuse halo as (x, y, apparent flux in Jy, FWHM in arcsec), None without one:
        round, at the pointing (the image's centre pixel), attenuated by the primary beam's
        gain there if the sky is."""
        if not self.diffuse:
            return None
        c = self.size // 2
        gain = float(self.beam_gain([c], [c])[0]) if self.primary_beam else 1.0
        return c, c, self.diffuse * flux_unit * gain, self.diffuse_fwhm

    def beam_keywords(self) -> dict:
        """FITS header keywords of the primary beam (the truth's and ``pb.fits``'s)."""
        obs = self.observation
        return {"PBMODEL": (obs.telescope.beam_shape, "primary beam shape (column pb)"),
                "PBFWHM": (obs.telescope.beam_fwhm_deg(obs.frequency) * 60.0,
                           "primary beam FWHM, arcmin")}


def _jsonable(params: dict) -> dict:
    """Parameters as JSON values (paths as strings, sequences as lists)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, (tuple, list)):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
