"""Figures of the papers, from per-sample logits (matplotlib, Agg backend; paper-column size).

One colour per loss in every figure (:data:`LOSS_COLORS`); the in-distribution is drawn filled and
the out-distribution hatched with a dashed outline. Every function writes one PNG and returns its path.

* :func:`logit_histograms`: intra-class (the predicted class) vs inter-class (the other classes)
  logits, in vs out (Fig. 3 of the 2019 paper);
* :func:`score_histogram`: maximum probability (Fig. 4), entropy (Fig. 6) or minimum distance
  (Fig. 1 of the 2021 paper), in vs out;
* :func:`roc_figure`: ROC curves of several loss x score pairs for one out-distribution;
* :func:`training_curves`: validation accuracy per epoch;
* :func:`sweep_figure`: accuracy and TNR@TPR95 against the entropic scale (Fig. 2 of the 2019 paper).
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import registry
from ._io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = [
    "LOSS_COLORS",
    "loss_color",
    "intra_inter_logits",
    "max_probability",
    "entropy",
    "min_distance",
    "score_values",
    "logit_histograms",
    "score_histogram",
    "roc_figure",
    "training_curves",
    "sweep_figure",
    "FIGSIZE",
    "DPI",
]

#: Live ``{loss: colour}``, fixed per loss across every figure (:class:`isomax.registry.LossSpec` ``color``;
#: the built-in losses: Okabe-Ito, colour-blind safe).
LOSS_COLORS = registry.loss_colors()
_EXTRA_COLORS = ("#D55E00", "#56B4E9", "#F0E442", "#000000")
SCORE_STYLES = {
    "es": "-",
    "mds": "--",
    "mps": ":",
    "energy": "-.",
    "max_logit": (0, (5, 1, 1, 1, 1, 1)),
    "mmls": (0, (3, 1)),
    "mmles": "-",
    "mmleps": (0, (1, 2)),
}
FIGSIZE = (3.3, 2.5)  # inches: one column of a two-column paper
DPI = 150
_RC: dict[RcKeyType, Any] = {
    "font.size": 7,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7,
    "legend.fontsize": 6,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.1,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "none",
    "legend.fancybox": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "hatch.linewidth": 0.5,
}


def loss_color(loss: str) -> str:
    if loss in LOSS_COLORS:
        return LOSS_COLORS[loss]
    return _EXTRA_COLORS[sum(map(ord, loss)) % len(_EXTRA_COLORS)]


def _linear(loss: str) -> bool:
    """Whether a loss trains a plain linear head (its logits are not distances); unknown names: False."""
    try:
        return registry.get_loss(loss).linear
    except ValueError:
        return False


def _labels():
    from .tables import LOSS_LABELS, SCORE_LABELS

    return LOSS_LABELS, SCORE_LABELS


@contextmanager
def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = FIGSIZE, **kw):
    """A Figure drawn with the Agg canvas directly: no pyplot, so no global backend is touched."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        yield fig, fig.subplots(nrows, ncols, **kw)


def _save(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    # exact paper-column size: layout by tight_layout
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue(), fsync=False)


# --- quantities --------------------------------------------------------------------------------------------------


def score_values(logits: np.ndarray, score: str, **kwargs) -> np.ndarray:
    """A score of :data:`isomax.scores.SCORES` (higher = more in-distribution) for numpy logits (N, C)."""
    import torch

    from .scores import SCORES

    return SCORES[score](torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)), **kwargs).numpy()


def intra_inter_logits(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logit of the predicted class, the other logits flattened)."""
    pred = logits.argmax(axis=1)
    mask = np.zeros(logits.shape, dtype=bool)
    mask[np.arange(len(logits)), pred] = True
    return logits[mask], logits[~mask]


def max_probability(logits: np.ndarray) -> np.ndarray:
    """``max_j softmax(logits)_j``: the MPS score (:func:`isomax.scores.max_probability`)."""
    return score_values(logits, "mps")


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy (nats) of ``softmax(logits)``: minus the entropic score (:func:`isomax.scores.entropic_score`)."""
    return -score_values(logits, "es")


def min_distance(logits: np.ndarray, distance_scale: float = 1.0) -> np.ndarray:
    """``-max_j logits_j / |d_s|``: the feature-prototype distance of the nearest prototype, minus the MDS
    score (:func:`isomax.scores.min_distance_score`)."""
    return -score_values(logits, "mds", distance_scale=float(distance_scale))


# --- figures -----------------------------------------------------------------------------------------------------


def _bins(*arrays: np.ndarray, n: int = 50, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    finite = [a[np.isfinite(a)] for a in arrays if a.size]
    both = np.concatenate(finite) if finite else np.zeros(1)
    if lo is None:
        lo = float(np.percentile(both, 0.2)) if both.size else 0.0
    if hi is None:
        hi = float(np.percentile(both, 99.8)) if both.size else 1.0
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def _hist_pair(
    ax, x_in: np.ndarray, x_out: np.ndarray, bins: np.ndarray, color: str, in_label: str, out_label: str
) -> None:
    """In filled, out hatched with a dashed outline; y in percent of the samples of each set (clipped to the range)."""
    for x, label, filled in ((x_in, in_label, True), (x_out, out_label, False)):
        if x.size == 0:
            continue
        x = np.clip(x, bins[0], bins[-1])
        weights = np.full(x.shape, 100.0 / x.size)
        if filled:
            ax.hist(x, bins=bins, weights=weights, histtype="stepfilled", color=color, alpha=0.55, lw=0, label=label)
        else:
            ax.hist(
                x,
                bins=bins,
                weights=weights,
                histtype="stepfilled",
                facecolor="none",
                edgecolor=color,
                hatch="/////",
                lw=0.9,
                ls="--",
                label=label,
            )
    ax.set_ylabel("samples per bin (%)")
    ax.margins(x=0)


def logit_histograms(
    logits_in: np.ndarray, logits_out: np.ndarray, path, *, loss: str, in_name: str, out_name: str
) -> Path:
    """Fig. 3 of the 2019 paper: intra-class (predicted class) and inter-class logits, in vs out."""
    loss_labels, _ = _labels()
    intra_in, inter_in = intra_inter_logits(logits_in)
    intra_out, inter_out = intra_inter_logits(logits_out)
    bins = _bins(intra_in, inter_in, intra_out, inter_out)
    color = loss_color(loss)
    with _figure(2, 1, size=(FIGSIZE[0], 3.0), sharex=True) as (fig, (top, bottom)):
        _hist_pair(top, intra_in, intra_out, bins, color, f"in: {in_name}", f"out: {out_name}")
        _hist_pair(bottom, inter_in, inter_out, bins, color, f"in: {in_name}", f"out: {out_name}")
        top.set_title(f"{loss_labels.get(loss, loss)}: intra-class logits (predicted class)", loc="left")
        bottom.set_title("inter-class logits (other classes)", loc="left")
        bottom.set_xlabel("logit value" + (" (= −distance)" if not _linear(loss) else ""))
        top.legend(loc="best")
        fig.tight_layout(h_pad=0.6)
        return _save(fig, path)


_QUANTITY = {
    "max_probability": ("maximum probability", "Maximum probability"),
    "entropy": ("entropy of the probabilities (nats)", "Entropy"),
    "min_distance": ("distance to the nearest prototype", "Minimum distance"),
}


def score_histogram(
    values_in: np.ndarray,
    values_out: np.ndarray,
    path,
    *,
    quantity: str,
    loss: str,
    in_name: str,
    out_name: str,
    num_classes: int | None = None,
    note: str | None = None,
) -> Path:
    """Histogram of one per-sample quantity (max probability, entropy, min distance), in vs out."""
    loss_labels, _ = _labels()
    xlabel, title = _QUANTITY[quantity]
    bins = _bins(values_in, values_out)  # zoomed on the data (IsoMax+ probabilities can all be near uniform) ...
    bounds = {
        "max_probability": (1.0 / num_classes if num_classes else 0.0, 1.0),
        "entropy": (0.0, float(np.log(num_classes)) if num_classes else np.inf),
    }.get(quantity)
    if bounds:  # ... within the quantity's natural range
        lo, hi = max(bins[0], bounds[0]), min(bins[-1], bounds[1])
        bins = _bins(values_in, values_out, lo=lo, hi=hi) if hi > lo else _bins(values_in, values_out, lo=lo)
    with _figure() as (fig, ax):
        _hist_pair(ax, values_in, values_out, bins, loss_color(loss), f"in: {in_name}", f"out: {out_name}")
        ax.set_xlabel(xlabel + (f" ({note})" if note else ""))
        ax.set_title(f"{loss_labels.get(loss, loss)}: {title.lower()}", loc="left")
        ax.legend(loc="best")
        fig.tight_layout()
        return _save(fig, path)


def roc_figure(curves: Sequence[dict], path, *, in_name: str, out_name: str) -> Path:
    """ROC curves: ``curves`` holds dicts with loss, score, tp, fp (from :func:`isomax.metrics.roc_sweep`), auroc."""
    loss_labels, score_labels = _labels()
    with _figure(size=(FIGSIZE[0], 2.7)) as (fig, ax):
        ax.axhline(95, color="0.6", lw=0.6, ls=":", zorder=0)
        ax.text(99, 94, "TPR 95%", va="top", ha="right", fontsize=5.5, color="0.4")
        ax.plot([0, 100], [0, 100], color="0.8", lw=0.6, zorder=0)
        for c in curves:
            tpr = 100.0 * c["tp"] / max(c["tp"][0], 1)
            fpr = 100.0 * c["fp"] / max(c["fp"][0], 1)
            keep = _thin(fpr, tpr)
            name = f"{loss_labels.get(c['loss'], c['loss'])} {score_labels.get(c['score'], c['score'])}"
            label = f"{name} ({100 * c['auroc']:.1f})"
            ax.plot(
                fpr[keep], tpr[keep], color=loss_color(c["loss"]), ls=SCORE_STYLES.get(c["score"], "-"), label=label
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 101)
        ax.set_xlabel("FPR: out-distribution accepted (%)")
        ax.set_ylabel("TPR: in-distribution accepted (%)")
        ax.set_title(f"ROC, in: {in_name}, out: {out_name}", loc="left")
        ax.legend(loc="lower right", title="loss score (AUROC %)", title_fontsize=6)
        fig.tight_layout()
        return _save(fig, path)


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = 2000) -> np.ndarray:
    """Indices keeping the corners of a staircase, at most about ``max_points`` of them."""
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    idx = np.unique(np.linspace(0, n - 1, max_points).astype(int))
    return idx


def training_curves(histories: Sequence[dict], path, *, title: str) -> Path:
    """Validation accuracy against epochs; ``histories`` holds dicts with loss, seed and history (log.jsonl rows)."""
    loss_labels, _ = _labels()
    with _figure() as (fig, ax):
        seen = set()
        for h in histories:
            rows = [r for r in h["history"] if r.get("val_accuracy") is not None]
            if not rows:
                continue
            label = None if h["loss"] in seen else loss_labels.get(h["loss"], h["loss"])
            seen.add(h["loss"])
            ax.plot(
                [r["epoch"] for r in rows],
                [100 * r["val_accuracy"] for r in rows],
                color=loss_color(h["loss"]),
                marker="o",
                ms=2,
                lw=0.9,
                alpha=0.85,
                label=label,
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(title, loc="left")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _save(fig, path)


def sweep_figure(rows: Sequence[dict], path, *, val_ood: str, in_name: str) -> Path:
    """Fig. 2 of the 2019 paper: accuracy and TNR@TPR95 (validation out-distribution) against the entropic scale.

    ``rows``: dicts with loss, scale, accuracy, accuracy_std, tnr, tnr_std (percent)."""
    loss_labels, _ = _labels()
    with _figure(size=(FIGSIZE[0], 2.6)) as (fig, ax):
        for loss in dict.fromkeys(r["loss"] for r in rows):
            rs = sorted((r for r in rows if r["loss"] == loss), key=lambda r: r["scale"])
            x = [r["scale"] for r in rs]
            name = loss_labels.get(loss, loss)
            ax.errorbar(
                x,
                [r["accuracy"] for r in rs],
                yerr=[r.get("accuracy_std", 0) for r in rs],
                color=loss_color(loss),
                marker="o",
                ms=3,
                capsize=2,
                lw=1.1,
                label=f"{name}: accuracy",
            )
            ax.errorbar(
                x,
                [r["tnr"] for r in rs],
                yerr=[r.get("tnr_std", 0) for r in rs],
                color=loss_color(loss),
                marker="s",
                ms=3,
                capsize=2,
                lw=1.1,
                ls="--",
                mfc="white",
                label=f"{name}: TNR@TPR95",
            )
        ax.set_xscale("log")
        scales = sorted({r["scale"] for r in rows})
        ax.set_xticks(scales)
        ax.set_xticklabels([f"{s:g}" for s in scales])
        ax.minorticks_off()
        ax.set_xlabel("entropic scale $E_s$ (log axis)")
        ax.set_ylabel("percent (%)")
        ax.set_title(f"in: {in_name}, validation out: {val_ood}", loc="left")
        ax.legend(loc="best")
        fig.tight_layout()
        return _save(fig, path)


# --- deployment (isomax.deploy): calibration and selective classification ------------------------------------


def reliability_diagram(
    bins: dict,
    path,
    *,
    title: str,
    bins_after: dict | None = None,
    ece: float | None = None,
    ece_after: float | None = None,
) -> Path:
    """Accuracy against confidence per bin (``bins`` from :func:`isomax.deploy.reliability_bins`); with
    ``bins_after``, the same after temperature calibration. Bars: accuracy; diagonal: perfect calibration."""
    with _figure() as (fig, ax):
        edges = np.asarray(bins["edges"])
        width = edges[1:] - edges[:-1]
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.6, ls=":", zorder=0)
        sets = [("before", bins, ece, "#0072B2", 1.0)]
        if bins_after is not None:
            sets.append(("after T", bins_after, ece_after, "#D55E00", 0.5))
        for k, (name, b, e, color, frac) in enumerate(sets):
            count = np.asarray(b["count"])
            acc = np.where(count > 0, np.asarray(b["accuracy"]), 0.0)
            shift = 0 if len(sets) == 1 else (k - 0.5) * width / 2
            label = name + (f" (ECE {100 * e:.2f}%)" if e is not None else "")
            ax.bar(
                edges[:-1] + width / 2 + shift,
                acc,
                width=width * (frac if len(sets) > 1 else 0.95),
                color=color,
                alpha=0.8,
                label=label,
                edgecolor="white",
                linewidth=0.3,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(title, loc="left")
        ax.legend(loc="upper left")
        fig.tight_layout()
        return _save(fig, path)


def risk_coverage_figure(curves: Sequence[dict], path, *, title: str) -> Path:
    """Selective risk against coverage; ``curves`` holds dicts with loss, score, coverage, risk (from
    :func:`isomax.deploy.risk_coverage`) and aurc."""
    loss_labels, score_labels = _labels()
    with _figure(size=(FIGSIZE[0], 2.7)) as (fig, ax):
        for c in curves:
            cov, risk = 100.0 * np.asarray(c["coverage"]), 100.0 * np.asarray(c["risk"])
            keep = _thin(cov, risk)
            name = f"{loss_labels.get(c['loss'], c['loss'])} {score_labels.get(c['score'], c['score'])}"
            label = f"{name} ({100 * c['aurc']:.2f})"
            ax.plot(
                cov[keep], risk[keep], color=loss_color(c["loss"]), ls=SCORE_STYLES.get(c["score"], "-"), label=label
            )
        ax.set_xlim(0, 100)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("coverage: in-distribution inputs accepted (%)")
        ax.set_ylabel("selective risk: errors among accepted (%)")
        ax.set_title(title, loc="left")
        ax.legend(loc="upper left", title="loss score (AURC %)", title_fontsize=6)
        fig.tight_layout()
        return _save(fig, path)
