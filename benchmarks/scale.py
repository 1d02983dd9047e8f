#!/usr/bin/env python
"""Scale benchmark: radiofind detect on big images, against PyBDSF and against the CPU's limit.

(a) a simulated 4096² MeerKAT natural-weighting image (radiofind simulate: casatools MS, ducc0,
    WSClean): `radiofind detect` vs `radiofind pybdsf` (PyBDSF's default 3/5 thresholds), each a
    separate process on the same cores, wall time and peak RSS from /usr/bin/time;
(b) a synthetic 32768² FITS image (~4.3 GB): white noise convolved with a simulated MeerKAT
    natural-weighting PSF (the dirty beam) plus restoring-beam point sources on a jittered grid,
    written block by block; `radiofind detect` end to end, its wall
    time and peak RSS, and the fraction of injected sources recovered (within 2/3 beam), by SNR;
(c) the network's throughput on one 4096² pass (Mpix/s) against the compute bound: FLOPs per
    pixel of the architecture over the machine's measured float32 peak (the faster of a numpy and
    a TensorFlow matmul), in ONNX Runtime (what detect runs) and in TensorFlow.

    python benchmarks/scale.py                      # all three (~1 h on 2 cores)
    python benchmarks/scale.py --parts a,c --big-size 8192
    python benchmarks/scale.py --parts t     # blob detection alone on (b)'s map

Writes benchmarks/results/scale.json and scale.md (the README's table). Inputs are kept in
benchmarks/work/scale/ and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PIXEL_ARCSEC = 1.5


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, peak RSS (GB), exit code, output."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    h, m, s = (float(g) if g else 0.0 for g in wall.groups())
    result = {"cmd": " ".join(cmd), "wall_s": 3600 * h + 60 * m + s,
              "peak_rss_gb": int(rss.group(1)) / 1024**2, "rc": proc.returncode}
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed: {result['cmd']}")
    result["stdout"] = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    steps = re.search(r"timings: noise ([\d.]+) s, network \+ map ([\d.]+) s, "
                      r"blob detection ([\d.]+) s", proc.stderr)
    if steps:
        result["steps_s"] = dict(zip(("noise", "network", "tbd"), map(float, steps.groups()),
                                     strict=True))
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time, with every run's wall time beside it."""
    run = dict(sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2])
    run["wall_s_runs"] = [r["wall_s"] for r in runs]
    return run


def part_a(work: Path, size: int, repeats: int = 3) -> dict:
    """detect and PyBDSF on one image, alternately ``repeats`` times each; median wall times."""
    field = work / f"natural-{size}"
    if not (field / "simulation.json").exists():
        subprocess.run(["radiofind", "simulate", "--telescope", "meerkat", "--size", str(size),
                        "--n-sources", str(size * size // 16000), "--snr-scale", "2.5",
                        "--weightings", "natural", "--seed", "700001", "--drop-ms",
                        "-o", str(field), "--overwrite"], check=True)
    image = str(field / "natural-image.fits")
    commands = {"radiofind": "detect", "pybdsf": "pybdsf"}
    runs = {finder: [] for finder in commands}
    for _ in range(repeats):
        for finder, command in commands.items():
            runs[finder].append(timed(["radiofind", command, image, "-o",
                                       str(work / f"a-{finder}-{size}"), "--overwrite"]))
    det, bdsf = median_run(runs["radiofind"]), median_run(runs["pybdsf"])
    # What each found, scored against the simulation's truth (after the timed runs).
    from astropy.table import Table

    from radiofind.evaluate.run import compare_catalogs
    from radiofind.io.images import read_image

    stem = Path(image).stem
    scores = compare_catalogs(read_image(image), Table.read(field / "truth.fits"), {
        "radiofind": Table.read(work / f"a-radiofind-{size}" / f"{stem}.radiofind.fits"),
        "pybdsf": Table.read(work / f"a-pybdsf-{size}" / f"{stem}.pybdsf.fits")})
    quality = {name: {k: r[k] for k in ("pc3", "pc4", "pc5", "s90", "n_detections", "n_tp")}
               for name, r in scores["finders"].items()}
    return {"image": image, "size": size, "repeats": repeats, "radiofind": det, "pybdsf": bdsf,
            "speedup": bdsf["wall_s"] / det["wall_s"],
            "memory_ratio": bdsf["peak_rss_gb"] / det["peak_rss_gb"], "quality": quality}


def natural_psf(work: Path, half: int = 64) -> tuple[np.ndarray, float]:
    """The central (2 half + 1)² of a simulated MeerKAT natural-weighting PSF, and its beam (px)."""
    from astropy.io import fits

    field = work / "psf"
    if not (field / "simulation.json").exists():
        subprocess.run(["radiofind", "simulate", "--telescope", "meerkat", "--size", "512",
                        "--n-sources", "1", "--weightings", "natural", "--seed", "700002",
                        "--drop-ms", "-o", str(field), "--overwrite"], check=True)
    with fits.open(field / "natural-psf.fits") as hdul:
        psf = np.squeeze(hdul[0].data).astype(np.float64)
        header = hdul[0].header
    beam_pix = np.sqrt(header["BMAJ"] * header["BMIN"]) / abs(header["CDELT2"])
    cy, cx = np.unravel_index(np.argmax(psf), psf.shape)
    return psf[cy - half:cy + half + 1, cx - half:cx + half + 1], float(beam_pix)


def make_big_image(path: Path, size: int, psf: np.ndarray, beam_pix: float, *,
                   chunk: int = 1024, spacing: int = 190, seed: int = 1
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the synthetic image block by block; return the sources (x, y, SNR).

    Like a restored WSClean image: the noise is white noise convolved with the dirty beam (so it
    has the PSF's correlations and sidelobes), scaled to unit rms; the sources are restoring-beam
    Gaussians (peak = SNR); everything times 20 uJy/beam.
    """
    import dask.array as da
    from astropy.wcs import WCS
    from scipy.signal import fftconvolve

    from radiofind.io.images import Beam, FitsMapWriter, Image

    rng = np.random.default_rng(seed)
    grid = np.arange(spacing // 2, size - spacing // 2, spacing)
    gy, gx = (a.ravel().astype(float) for a in np.meshgrid(grid, grid, indexing="ij"))
    gx += rng.uniform(-spacing / 4, spacing / 4, gx.size)
    gy += rng.uniform(-spacing / 4, spacing / 4, gy.size)
    snr = np.exp(rng.uniform(np.log(2.0), np.log(200.0), gx.size))  # log-uniform 2-200
    if path.exists():
        return gx, gy, snr
    kernel = psf / np.sqrt(np.sum(psf**2))  # unit-variance correlated noise
    depth = psf.shape[0] // 2
    sigma_b = beam_pix / np.sqrt(8 * np.log(2))
    reach = int(np.ceil(5 * sigma_b))
    noise_jy = 2e-5

    def block(white: np.ndarray, block_info=None) -> np.ndarray:
        # The block arrives with a halo of `depth` on every side (reflected at the image edge).
        i, j = block_info[0]["chunk-location"]
        y0h, x0h = i * chunk - depth, j * chunk - depth
        img = fftconvolve(white.astype(np.float64), kernel, mode="same")
        h, w = img.shape
        near = (gx > x0h - reach) & (gx < x0h + w + reach) & (gy > y0h - reach) & \
               (gy < y0h + h + reach)
        for sx, sy, a in zip(gx[near] - x0h, gy[near] - y0h, snr[near], strict=True):
            ya, yb = max(int(sy) - reach, 0), min(int(sy) + reach + 1, h)
            xa, xb = max(int(sx) - reach, 0), min(int(sx) + reach + 1, w)
            if ya >= yb or xa >= xb:
                continue
            yy, xx = np.mgrid[ya:yb, xa:xb]
            img[ya:yb, xa:xb] += a * np.exp(-((yy - sy) ** 2 + (xx - sx) ** 2) / (2 * sigma_b**2))
        return (img * noise_jy).astype(np.float32)

    white = da.random.default_rng(seed).standard_normal((size, size), chunks=chunk,
                                                        dtype=np.float32)
    image = white.map_overlap(block, depth=depth, boundary="reflect", dtype=np.float32)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [50.0, -30.0]
    w.wcs.crpix = [size / 2 + 1, size / 2 + 1]
    w.wcs.cdelt = [-PIXEL_ARCSEC / 3600, PIXEL_ARCSEC / 3600]
    header = w.to_header()
    beam = beam_pix * PIXEL_ARCSEC / 3600
    header.update({"BMAJ": beam, "BMIN": beam, "BPA": 0.0, "BUNIT": "JY/BEAM",
                   "TELESCOP": "MeerKAT", "WSCWEIGH": "Briggs'(1.5)", "FREQ": 1.4e9})
    like = Image(data=None, wcs=w, beam=Beam(beam, beam), header=header)
    tmp = path.with_name(path.name + ".part")
    da.store(image, FitsMapWriter(tmp, (size, size), like), lock=False)
    os.replace(tmp, path)
    return gx, gy, snr


def part_b(work: Path, size: int, chunk: int) -> dict:
    from astropy.table import Table
    from scipy.spatial import cKDTree

    path = work / f"synthetic-{size}.fits"
    psf, beam_pix = natural_psf(work)
    t0 = time.perf_counter()
    x, y, snr = make_big_image(path, size, psf, beam_pix, chunk=chunk)
    made = time.perf_counter() - t0
    out = work / f"b-radiofind-{size}"
    det = timed(["radiofind", "detect", str(path), "-o", str(out), "--chunk", str(chunk),
                 "--formats", "fits", "--overwrite"])
    cat = Table.read(out / f"synthetic-{size}.radiofind.fits")
    d, _ = cKDTree(np.c_[cat["x"], cat["y"]]).query(np.c_[x, y])
    found = d < (2 / 3) * beam_pix
    bins = [(2, 3), (3, 5), (5, 10), (10, 200.1)]
    completeness = {f"{a}-{b:g}": float(found[(snr >= a) & (snr < b)].mean()) for a, b in bins}
    tree = cKDTree(np.c_[x, y])
    dd, _ = tree.query(np.c_[cat["x"], cat["y"]])
    return {"image": str(path), "size": size, "gigabytes": path.stat().st_size / 1e9,
            "make_s": made, "chunk": chunk, "n_injected": int(len(x)),
            "n_above_10": int((snr >= 10).sum()),
            "recovered_above_10": float(found[snr >= 10].mean()),
            "completeness_by_snr": completeness, "n_detections": len(cat),
            "detections_matched": float((dd < (2 / 3) * beam_pix).mean()),
            "radiofind": det}


def part_t(work: Path, size: int, chunk: int) -> dict:
    """Blob detection alone on part (b)'s network map, as detect runs it (model's TBD settings)."""
    import dask.array as da

    from radiofind.detect.blobs import DEBLEND_BEAMS, find_blobs
    from radiofind.detect.models import resolve_model
    from radiofind.io.images import FitsPlane, open_image

    path = work / f"b-radiofind-{size}" / f"synthetic-{size}.radiofind-map.fits"
    tmap = da.from_array(FitsPlane(str(path)), chunks=(chunk, chunk), lock=False, asarray=False,
                         meta=np.empty((0, 0), dtype=np.float32))
    beam = open_image(path).beam_pixels
    tbd = {"deblend_beams": DEBLEND_BEAMS, **resolve_model("meerkat-natural").tbd}
    t0 = time.perf_counter()
    blobs = find_blobs(tmap, delta_max=tbd["delta_max"], threshold=tbd.get("threshold"),
                       a_min=int(tbd["a_min"]),
                       centre=tbd["centre"], n_steps=int(tbd.get("n_steps", 50)),
                       deblend=tbd["deblend_beams"] * beam)
    return {"map": str(path), "seconds": time.perf_counter() - t0, "n": len(blobs.x),
            "threshold": blobs.threshold}


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """The machine's float32 peak in FLOP/s: the faster of a numpy (BLAS) and a TensorFlow
    square matmul on every core."""
    import tensorflow as tf

    best = 0.0
    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    for matmul, finish in ((np.matmul, np.asarray), (tf.linalg.matmul, lambda c: c.numpy())):
        x = a if matmul is np.matmul else tf.constant(a)
        finish(matmul(x, x))  # warm up
        t0 = time.perf_counter()
        for _ in range(reps):
            c = matmul(x, x)
        finish(c)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def part_c(size: int) -> dict:
    """The network over one size² image in each runtime, at three chunk sizes; the best against
    the compute bound."""
    from radiofind.detect.inference import predict_map
    from radiofind.detect.models import resolve_model
    from radiofind.detect.network import flops_per_pixel

    mdl = resolve_model("meerkat-natural")
    flops = flops_per_pixel(mdl.architecture)
    data = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
    runtimes = {}
    for runtime in ("onnxruntime", "tensorflow"):
        block = mdl.block(runtime)
        predict_map(block, mdl.architecture, data[:256, :256])  # warm up (build, trace)
        passes = {}
        for chunk in (1024, 2048, 4096):
            t0 = time.perf_counter()
            predict_map(block, mdl.architecture, data, chunk=chunk)
            passes[chunk] = time.perf_counter() - t0
        best_chunk = min(passes, key=passes.get)
        runtimes[runtime] = {"seconds_by_chunk": passes, "best_chunk": best_chunk,
                             "mpix_per_s": size * size / passes[best_chunk] / 1e6}
    peak = matmul_peak()
    bound = peak / flops / 1e6
    best = runtimes["onnxruntime"]
    return {"size": size, "runtimes": runtimes, "runtime": "onnxruntime",
            "best_chunk": best["best_chunk"], "mpix_per_s": best["mpix_per_s"],
            "flops_per_pixel": flops, "peak_gflops": peak / 1e9,
            "compute_bound_mpix_per_s": bound, "fraction_of_bound": best["mpix_per_s"] / bound,
            "cores": os.cpu_count()}


def steps_row(part: str, det: dict, spec: str) -> list[str]:
    """The table row of detect's own step timings, if its log had them."""
    st = det.get("steps_s")
    if not st:
        return []
    times = " / ".join(format(st[k], spec) for k in ("noise", "network", "tbd"))
    return [f"| ({part}) detect steps: noise / network + map / blob detection | {times} s |"]


def table(res: dict) -> str:
    rows = ["| measurement | value |", "|---|---|"]
    if "a" in res:
        a = res["a"]
        det = a["radiofind"]
        n = a.get("repeats", 1)
        rows += [f"| (a) {a['size']}² natural: radiofind detect (median of {n}) | "
                 f"{det['wall_s']:.1f} s, {det['peak_rss_gb']:.2f} GB |",
                 f"| (a) {a['size']}² natural: PyBDSF (3/5, median of {n}) | "
                 f"{a['pybdsf']['wall_s']:.1f} s, {a['pybdsf']['peak_rss_gb']:.2f} GB |",
                 f"| (a) speed-up over PyBDSF | {a['speedup']:.1f}× |"]
        rows += steps_row("a", det, ".1f")
        for name, q in a.get("quality", {}).items():
            rows += [f"| (a) {name} against the truth: PC3 / PC4 / PC5 / S90 (detections) | "
                     + " / ".join("-" if q[k] is None or not np.isfinite(q[k]) else f"{q[k]:.2f}"
                                  for k in ("pc3", "pc4", "pc5", "s90"))
                     + f" ({q['n_detections']}) |"]
    if "b" in res:
        b = res["b"]
        det = b["radiofind"]
        rows += [f"| (b) {b['size']}² synthetic ({b['gigabytes']:.1f} GB): detect end to end | "
                 f"{det['wall_s']:.0f} s, {det['peak_rss_gb']:.2f} GB peak RSS |",
                 f"| (b) injected sources above SNR 10 recovered | {b['recovered_above_10']:.4f} "
                 f"({b['n_above_10']}) |",
                 "| (b) completeness by SNR | " + ", ".join(
                     f"{k}: {v:.2f}" for k, v in b["completeness_by_snr"].items()) + " |",
                 f"| (b) detections matching an injected source | {b['detections_matched']:.3f} "
                 f"of {b['n_detections']} |"]
        rows += steps_row("b", det, ".0f")
    if "t" in res:
        t = res["t"]
        rows += [f"| (b) blob detection alone on that map (current code) | {t['seconds']:.0f} s, "
                 f"{t['n']} sources, threshold {t['threshold']:.3g} |"]
    if "c" in res:
        c = res["c"]
        rows += [f"| (c) network throughput ({c['size']}², chunk {c['best_chunk']}, "
                 f"ONNX Runtime) | {c['mpix_per_s']:.2f} Mpix/s |"]
        if "tensorflow" in c.get("runtimes", {}):
            tf_ = c["runtimes"]["tensorflow"]
            rows += [f"| (c) the same in TensorFlow (chunk {tf_['best_chunk']}) | "
                     f"{tf_['mpix_per_s']:.2f} Mpix/s |"]
        rows += [f"| (c) compute bound ({c['flops_per_pixel']} FLOP/px, "
                 f"{c['peak_gflops']:.0f} GFLOP/s matmul peak, {c['cores']} cores) | "
                 f"{c['compute_bound_mpix_per_s']:.2f} Mpix/s "
                 f"({c['fraction_of_bound']:.2f} of it) |"]
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--size", type=int, default=4096, help="image size for (a) and (c)")
    ap.add_argument("--big-size", type=int, default=32768, help="image size for (b)")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--work", default=str(HERE / "work" / "scale"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = HERE / "results" / "scale.json"
    res = json.loads(out.read_text()) if out.exists() else {}
    parts = args.parts.split(",")
    if "a" in parts:
        res["a"] = part_a(work, args.size)
        print(json.dumps(res["a"], indent=1))
    if "b" in parts:
        res["b"] = part_b(work, args.big_size, args.chunk)
        print(json.dumps(res["b"], indent=1))
    # (c) last: it loads TensorFlow, whose idle threads should not share the cores with (a)
    if "c" in parts:
        res["c"] = part_c(args.size)
        print(json.dumps(res["c"], indent=1))
    if "t" in parts:
        res["t"] = part_t(work, args.big_size, args.chunk)
        print(json.dumps(res["t"], indent=1))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=float))
    (HERE / "results" / "scale.md").write_text(table(res))
    print(table(res))


if __name__ == "__main__":
    main()
