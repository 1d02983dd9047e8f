"""``radiofind simulate``: a DeepSource point-source sky observed by MeerKAT or ASKAP, end to end.

Order of work: every parameter is validated (and the sky drawn, which checks that the sources fit)
before anything is written; then the Measurement Set is made (casatools), its unflagged samples
give the theoretical natural-weight noise that sets the flux of SNR 1, the sky is predicted (ducc0)
with thermal noise added, each weighting is imaged (WSClean), and the truth catalogue gets each
source's SNR measured in each image. All outputs are staged and moved into ``outdir`` only when the
whole run has succeeded (:func:`radiofind.io.outputs.staged_outputs`).

Parameter names and defaults are those of the ``radiofind.simulate`` cab
(plugin/cabs/radiofind.yml).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radiofind import __version__
from radiofind.io.outputs import staged_outputs
from radiofind.noise import robust_rms
from radiofind.simulation.config import DIFFUSE_FWHM, SimulationConfig
from radiofind.simulation.sky import RESOLVED_FWHM

log = logging.getLogger("radiofind.simulation")


def simulate(*, outdir: str | os.PathLike, telescope: str = "meerkat", ra: str = "50.0",
             dec: str = "-20.0", synthesis_time: float = 1.0, integration_time: float = 300.0,
             frequency: float = 1.4e9, channel_width: float = 2.0898e6, n_channels: int = 10,
             sefd: float | None = None, sigma: float | None = None, n_sources: int = 300,
             snr_scale: float = 1.5, snr_min: float = 0.1, min_separation: float = 40.0,
             border: float = 0.1, bright_source: float | None = None, size: int = 2048,
             scale: float = 1.5, weightings: Sequence[str] = ("natural", "uniform"),
             niter: int = 10000, auto_threshold: float = 3.0, auto_mask: float | None = None,
             mgain: float = 0.8, super_weight: float = 1.0, primary_beam: bool = False,
             phase_error: float | None = None, resolved: float = 0.0,
             resolved_fwhm: Sequence[float] = RESOLVED_FWHM, diffuse: float = 0.0,
             diffuse_fwhm: float = DIFFUSE_FWHM, skip_imaging: bool = False,
             drop_ms: bool = False, seed: int = 1, threads: int = 0,
             overwrite: bool = False) -> dict:
    """Simulate an observation of a point-source sky and image it.

    Parameters are those of the ``radiofind.simulate`` cab; see ``radiofind simulate --help``.
    ``sefd=None`` takes the telescope's (MeerKAT 443 Jy, ASKAP 1800 Jy); ``sigma`` (noise per
    visibility, re and im, Jy) overrides it. ``threads=0`` uses every core. ``bright_source``
    (an SNR; None or 0: off) adds one strong source at a seeded free position, drawn apart from
    the other sources so they stay those of ``seed``; it is the truth's last row (header keyword
    ``BRIGHTSN``). ``auto_mask`` (None: off) is WSClean's ``-auto-mask`` sigma; ``super_weight``
    its ``-super-weight`` (the box uniform and Briggs weights are counted in, in uv cells of the
    image: 0.25 at 1024 pixels weights as WSClean's default does a 4096-pixel image).
    ``primary_beam`` attenuates every source by the telescope's primary beam (its power gain at the
    source, the truth's ``pb`` column; ``flux`` and ``snr_input`` stay the source's own) and writes
    the primary-beam-corrected images ``<w>-image-pb.fits`` (image over the beam's gain, whose
    noise rises away from the pointing) and the gain itself, ``pb.fits``, beside the usual ones.
    The truth's ``snr_<w>`` are measured in the uncorrected images: a source's SNR against the
    noise where it lies. ``phase_error`` (degrees rms; None or 0: off) corrupts the sky's
    visibilities with antenna-based phase errors, one per antenna and integration, as
    calibration leaves them (truth header ``PHASEERR``): around a bright source they make
    artefacts that CLEAN cannot remove. ``resolved`` (a fraction, 0: off) makes that share of
    the sources, drawn by a stream of their own, elliptical Gaussians whose major-axis FWHM is
    drawn uniformly in ``resolved_fwhm`` (arcsec), axis ratio 0.3-1, any position angle; their
    flux is integrated, so they peak lower (truth columns ``maj``, ``min``, ``pa``).
    ``diffuse`` (0: off) adds a round Gaussian halo of diffuse emission at the pointing, of that
    integrated flux in units of the theoretical natural noise and FWHM ``diffuse_fwhm`` arcsec:
    not a source of the truth catalogue (header ``DIFFSNR``, ``DIFFFWHM``, ``DIFFX``, ``DIFFY``);
    ``simulation.json`` records its peak in each image (``diffuse_peak_snr``).

    Writes into ``outdir``: ``sim.ms`` (unless ``drop_ms``), ``truth.fits``, ``<w>-image.fits``,
    ``<w>-residual.fits``, ``<w>-psf.fits`` for each weighting ``w`` (unless ``skip_imaging``),
    and ``simulation.json`` (parameters, theoretical and measured noise, beams, timings,
    versions). With ``skip_imaging`` the truth has no measured SNR columns.

    Returns
    -------
    dict
        The contents of ``simulation.json``.

    Raises
    ------
    RadiofindError
        Any invalid parameter (before any work), an existing output without ``overwrite``, a
        missing WSClean, or a failing step.
    """
    params = {k: v for k, v in locals().items()}
    cfg = SimulationConfig.from_params(params)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    sky = cfg.draw_sky()  # also proves the sources fit, before any output exists
    names = cfg.output_names()
    with staged_outputs(cfg.outdir, names, overwrite=cfg.overwrite) as stage:
        summary = _run(cfg, sky, stage, timings)
        timings["total"] = time.perf_counter() - t_start
        summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        stage.path("simulation.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("simulation written to %s in %.1f s", cfg.outdir, timings["total"])
    return summary


def _run(cfg: SimulationConfig, sky, stage, timings: dict[str, float]) -> dict:
    """The work proper, writing into the staging folder."""
    from radiofind.simulation.ms import count_unflagged, create_ms, ms_shape
    from radiofind.simulation.noise import natural_image_noise
    from radiofind.simulation.predict import fill_ms
    from radiofind.simulation.truth import add_measured_snr, truth_table, write_truth

    # An MS that is not kept lives in the staging folder under a name that is never moved out.
    ms_path = stage.path("sim.ms") if cfg.keep_ms else stage.tmpdir / "scratch.ms"

    t0 = time.perf_counter()
    obs = cfg.observation
    log.info("creating the %s Measurement Set (%d dumps x %d channels)",
             obs.telescope.casa_name, obs.n_times, obs.n_channels)
    create_ms(ms_path, cfg.observation)
    n_rows = ms_shape(ms_path)[0]
    n_samples = count_unflagged(ms_path)
    timings["ms"] = time.perf_counter() - t0

    theory = natural_image_noise(cfg.sigma_vis, n_samples)
    sky = sky.with_flux_unit(theory)
    log.info("sigma per visibility %.4g Jy; theoretical natural image noise %.4g Jy/beam",
             cfg.sigma_vis, theory)

    t0 = time.perf_counter()
    log.info("predicting %d sources and adding thermal noise", len(sky))
    halo = cfg.diffuse_halo(theory)  # (x, y, flux, FWHM) or None
    fill_ms(ms_path, sky, size=cfg.size, scale=cfg.scale, sigma=cfg.sigma_vis,
            rng=cfg.noise_rng(), threads=cfg.threads, phase_error=cfg.phase_error,
            gain_rng=cfg.gain_rng(), diffuse=halo)
    timings["predict_noise"] = time.perf_counter() - t0

    truth = truth_table(sky, cfg.truth_meta())
    gain = beam_map(cfg) if cfg.primary_beam else None  # the same for every weighting
    images: dict[str, dict] = {}
    if cfg.image:
        from radiofind.simulation.imaging import run_wsclean

        workdir = stage.tmpdir / "wsclean"
        workdir.mkdir()
        for weighting in cfg.weightings:
            t0 = time.perf_counter()
            products = run_wsclean(ms_path, workdir, weighting=weighting, size=cfg.size,
                                   scale=cfg.scale, niter=cfg.niter,
                                   auto_threshold=cfg.auto_threshold, mgain=cfg.mgain,
                                   threads=cfg.threads, auto_mask=cfg.auto_mask,
                                   super_weight=cfg.super_weight)
            timings[f"wsclean_{weighting}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            info = add_measured_snr(truth, products.image, weighting,
                                    diffuse_at=None if halo is None else halo[0])
            info["residual_rms"] = _residual_rms(products.residual)
            timings[f"measure_{weighting}"] = time.perf_counter() - t0
            images[weighting] = info
            if cfg.primary_beam:
                write_pb_corrected(products.image, stage.path(f"{weighting}-image-pb.fits"),
                                   gain, cfg)
            for kind in ("image", "residual", "psf"):
                os.replace(getattr(products, kind), stage.path(f"{weighting}-{kind}.fits"))
            log.info("%s: beam %.1f\" x %.1f\", noise %.3g Jy/beam (theory natural %.3g)",
                     weighting, info["beam_arcsec"]["bmaj"], info["beam_arcsec"]["bmin"],
                     info["noise"], theory)
        shutil.rmtree(workdir, ignore_errors=True)
    if cfg.primary_beam:
        write_pb_map(stage.path("pb.fits"), gain, cfg)
    write_truth(truth, stage.path("truth.fits"))

    return {
        "parameters": cfg.params,
        "observation": {
            "telescope": cfg.observation.telescope.casa_name,
            "n_antennas": cfg.observation.telescope.n_antennas,
            "ra_deg": cfg.observation.ra_deg, "dec_deg": cfg.observation.dec_deg,
            "n_rows": n_rows, "n_unflagged_samples": n_samples,
            "channel_freqs_hz": cfg.observation.channel_freqs.tolist(),
            "sefd_jy": cfg.sefd, "sigma_vis_jy": cfg.sigma_vis,
        },
        "noise": {"theoretical_natural_jy": theory, "flux_unit_jy": theory},
        "images": images,
        "n_sources": len(sky),
        "versions": _versions(cfg.image),
    }


PB_LIMIT = 0.05  # the corrected images are blank (NaN) where the beam's gain is below this


def beam_map(cfg: SimulationConfig) -> np.ndarray:
    """The primary beam's gain on the output images' pixels, ``[y, x]``."""
    y, x = np.mgrid[0:cfg.size, 0:cfg.size]
    return cfg.beam_gain(x, y).astype(np.float32)


def write_pb_corrected(image_path: Path, out: Path, gain: np.ndarray,
                       cfg: SimulationConfig) -> None:
    """``image_path`` divided by the primary beam's ``gain`` (:func:`beam_map`), as WSClean's
    ``-pb.fits``: the same header, blank where the gain is below :data:`PB_LIMIT`."""
    from astropy.io import fits

    with fits.open(image_path) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            corrected = np.where(gain >= PB_LIMIT, data / gain, np.nan).astype(np.float32)
        header = hdul[0].header.copy()
    header["HISTORY"] = (f"radiofind simulate: divided by the {cfg.observation.telescope.name} "
                         f"primary beam (blank below gain {PB_LIMIT:g})")
    fits.PrimaryHDU(corrected, header=header).writeto(out)


def write_pb_map(out: Path, gain: np.ndarray, cfg: SimulationConfig) -> None:
    """The primary beam's ``gain`` (:func:`beam_map`) as an image with the output images'
    celestial WCS."""
    from astropy.io import fits

    from radiofind.simulation.sky import image_wcs

    obs = cfg.observation
    header = image_wcs(obs.ra_deg, obs.dec_deg, cfg.size, cfg.scale).to_header()
    header["BUNIT"] = ""
    header["TELESCOP"] = obs.telescope.casa_name
    header.update(cfg.beam_keywords())
    header["PBFREQ"] = (obs.frequency, "frequency, Hz")
    fits.PrimaryHDU(gain, header=header).writeto(out)


def _residual_rms(path: Path) -> float:
    from radiofind.io.images import read_image

    return robust_rms(read_image(path, require_beam=False).data)


def _versions(with_wsclean: bool) -> dict[str, str]:
    """Versions of every component that shaped the result."""
    from importlib.metadata import version

    import casacore
    import ducc0

    # The package metadata, not an import: casatools must not load into a process running TF.
    versions = {"radiofind": __version__, "python": sys.version.split()[0],
                "numpy": np.__version__, "ducc0": ducc0.__version__,
                "casatools": version("casatools"),
                "python-casacore": getattr(casacore, "__version__", "unknown")}
    if with_wsclean:
        from radiofind.simulation.imaging import wsclean_version

        versions["wsclean"] = wsclean_version()
    return versions
