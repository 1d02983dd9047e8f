"""The DeepSource Fig. 9 style comparison plot: counts on top, purity/completeness/PC below."""

from __future__ import annotations

import math
import os

import numpy as np

_COUNT_PANELS = (("tp_true", "TP (solid: by true SNR, dotted: by detection SNR)"),
                 ("fp", "FP (by detection SNR)"), ("fn", "FN (by true SNR)"))
_SCORE_PANELS = (("purity", "Purity"), ("completeness", "Completeness"),
                 ("pc", "Purity × Completeness"))


def plot_metrics(results: dict, path: str | os.PathLike, *, title: str | None = None,
                 snr_max: float | None = None) -> None:
    """Write a PNG comparing finders: TP/FP/FN counts (top), P, C and PC (bottom) vs SNR.

    Parameters
    ----------
    results
        The dict returned by :func:`radiofind.evaluate.run.evaluate` (uses ``results["finders"]``).
    path
        PNG file to write.
    title
        Figure title (default: none).
    snr_max
        Right edge of the SNR axis (default: the top of the last regular bin with any data).

    Notes
    -----
    Each finder has one colour. TP is shown in bins of true SNR (solid, the TP of completeness)
    and of detection SNR (dotted, the TP of purity); FP is binned by detection SNR, FN by true SNR.
    Values are plotted at bin centres; the overflow bin is left out. S90 is a vertical line per
    finder on the bottom panels; the grey horizontal line is the 0.9 quality level.
    """
    # Agg through the object API, imported here: `radiofind --help` never loads matplotlib, and no
    # global pyplot state or interactive backend is touched.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    finders = results["finders"]
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3, sharex=True)
    colours = [f"C{i % 10}" for i in range(len(finders))]
    right = snr_max if snr_max is not None else _default_right(finders)

    for (name, res), colour in zip(finders.items(), colours, strict=True):
        centre = np.asarray(res["bins"]["centre"])[:-1]
        for ax, (key, label) in zip(axes[0], _COUNT_PANELS, strict=True):
            ax.plot(centre, np.asarray(res[key])[:-1], "-o", ms=3, color=colour, label=name)
            if key == "tp_true":
                ax.plot(centre, np.asarray(res["tp_det"])[:-1], ":", color=colour)
            ax.set_title(label)
        s90 = res["s90"]
        for ax, (key, label) in zip(axes[1], _SCORE_PANELS, strict=True):
            ax.plot(centre, np.asarray(res[key], dtype=float)[:-1], "-o", ms=3, color=colour,
                    label=f"{name} (S90 {s90:.2f})" if math.isfinite(s90) else f"{name} (no S90)")
            if math.isfinite(s90):
                ax.axvline(s90, color=colour, ls="--", lw=1)
            ax.set_title(label)

    for ax in axes[0]:
        ax.set_ylabel("count per bin")
        ax.set_ylim(bottom=0)
    for ax in axes[1]:
        ax.axhline(0.9, color="0.6", lw=1)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("SNR")
    for ax in axes.ravel():
        ax.set_xlim(0, right)
        ax.grid(alpha=0.3)
    if finders:
        axes[0, 0].legend(fontsize=8)
        axes[1, 0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100, format="png")


def _default_right(finders: dict) -> float:
    right = 0.0
    for res in finders.values():
        centre = np.asarray(res["bins"]["centre"])[:-1]
        width = res["bins"]["width"]
        counts = sum(np.asarray(res[k])[:-1] for k in ("tp_det", "fp", "tp_true", "fn"))
        if np.any(counts > 0):
            right = max(right, float(centre[np.nonzero(counts)[0][-1]]) + width / 2)
    return right if right > 0 else 10.0
