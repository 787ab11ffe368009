"""``isomax export``: a run (model, normalisation, score, threshold) as one self-contained ONNX graph.

Graph (one input, five outputs; ``N`` is dynamic)::

    images   uint8   (N, H, W, C)   as numpy / PIL give them (grey: C = 1), already at the model's size
    logits   float32 (N, K)         softmax(logits) are the class probabilities (temperature included)
    label    int64   (N,)           predicted class index (names in the metadata)
    probability float32 (N,)        softmax probability of that class
    score    float32 (N,)           the threshold's score, higher = more in-distribution
    accepted bool    (N,)           score >= threshold

Metadata (``metadata_props``, strings, JSON for lists): ``class_names``, ``input_size`` ([C, H, W]),
``input_layout`` ("NHWC uint8"), ``mean``, ``std``, ``score``, ``threshold``, ``target_tpr``,
``val_tpr``, ``temperature``, ``isomax_version``, ``exporter``, ``fingerprint`` (of the checkpoint's
weights, as ``threshold.json`` records it), ``loss``.

Output: ``--out`` is refused if it is a directory or a file of a run directory; ``OUT.lock`` is held while
writing (a second export to the same file is refused); the graph goes to ``OUT.<pid>.tmp.onnx`` next to
the target, removed on errors, Ctrl-C and SIGTERM, and by the next export after a SIGKILL.

Exporter: ``exporter="dynamo"`` uses ``torch.onnx.export(..., dynamo=True)`` on the model as it is;
``"legacy"`` the TorchScript exporter (``dynamo=False``) with the head's logits written in plain
ops (``-|d_s| * |f^ - p^_j| / T`` by broadcasting, no data-dependent branch: the head's
precision refinement depends on the values, which a trace would freeze); ``"auto"`` (default)
uses dynamo when ``torch.export`` can trace the model with its own head, else legacy. Which one
was used is returned, logged and stored in the metadata.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, cast

import torch
from torch import Tensor, nn

from ..errors import InputError
from .._io import atomic_write_bytes
from ..heads import DisMaxHead, DistanceHead, euclidean_distances
from ..registry import get_score, list_scores
from ._files import OutputLock, check_output_path, remove_stale_temps, terminate_as_interrupt
from .threshold import Threshold

__all__ = ["DeployModule", "export_onnx", "graph_score", "OUTPUT_NAMES"]

OUTPUT_NAMES = ("logits", "label", "probability", "score", "accepted")


def graph_score(name: str, logits: Tensor) -> Tensor:
    """A score of :mod:`isomax.scores` in its graph form (:class:`isomax.registry.ScoreSpec` ``graph``: the same
    computation without the argument checks, no host sync: exportable)."""
    try:
        spec = get_score(name)
    except ValueError:
        raise InputError(f"Expected a plain score in {list(list_scores())} to export, but got: {name!r}") from None
    return spec.graph(logits)


def _traceable_head_logits(head: DistanceHead, features: Tensor) -> Tensor:
    """The logits of an isomax distance head in plain broadcast ops (exact differences, no branch)."""
    f, p = features.float(), head.prototypes.float()
    if head.normalize:
        f = f / torch.linalg.vector_norm(f, dim=1, keepdim=True).clamp_min(1e-12)
        p = p / torch.linalg.vector_norm(p, dim=1, keepdim=True).clamp_min(1e-12)
    d = (f.unsqueeze(1) - p.unsqueeze(0)).pow(2).sum(-1).sqrt()  # (B, C)
    if head.distance_scale is not None:
        d = head.distance_scale.float().abs() * d
    if head.h is not None:
        d = head.h(d)
    if isinstance(head, DisMaxHead):  # enhanced logits: (d_j + mean_k d_k) / sqrt(2)
        d = (d + d.mean(dim=1, keepdim=True)) / math.sqrt(2.0)
    return -d / head.temperature.float()


class DeployModule(nn.Module):
    """uint8 NHWC images -> ``(logits, label, probability, score, accepted)``; see the module docstring.

    Args:
        model: an isomax model (``forward_features`` + ``head``) or any classifier.
        threshold: the :class:`Threshold` (its ``score`` is the graph's score).
        mean, std: per-channel normalisation in [0, 1]-pixel units.
        traceable_head: compute the isomax head's logits in plain ops (for the legacy exporter).
    """

    threshold: Tensor
    scale: Tensor
    shift: Tensor

    def __init__(self, model: nn.Module, threshold: Threshold, mean, std, *, traceable_head: bool = False) -> None:
        super().__init__()
        self.model = model
        self.score_name = threshold.score
        graph_score(self.score_name, torch.zeros(1, 2))  # raises on a score that cannot be exported
        # float32, like the scores (exact: a fitted threshold is one of the float32 validation scores)
        self.register_buffer("threshold", torch.tensor(float(threshold.threshold), dtype=torch.float32))
        mean_t = torch.as_tensor(mean, dtype=torch.float64).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float64).flatten()
        # as isomax.data.BatchLoader: x_norm = x * 1/(255 std) - mean/std, constants rounded from float64
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).float().view(1, -1, 1, 1))
        self.register_buffer("shift", (mean_t / std_t).float().view(1, -1, 1, 1))
        head = getattr(model, "head", None)
        self.traceable_head = bool(
            traceable_head
            and isinstance(head, DistanceHead)
            and head._distance is euclidean_distances
            and hasattr(model, "forward_features")
        )

    def logits(self, x: Tensor) -> Tensor:
        head = getattr(self.model, "head", None)
        if self.traceable_head and isinstance(head, DistanceHead):
            features = cast("Callable[[Tensor], Tensor]", self.model.forward_features)
            return _traceable_head_logits(head, features(x))
        return self.model(x).float()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        x = images.permute(0, 3, 1, 2).float() * self.scale - self.shift  # (N, C, H, W), normalised
        logits = self.logits(x)
        probability, label = torch.softmax(logits, dim=1).max(dim=1)
        score = graph_score(self.score_name, logits)
        accepted = score >= self.threshold
        return logits, label, probability, score, accepted


def _torch_export_ok(module: nn.Module, example: Tensor) -> tuple[bool, str]:
    import contextlib
    import io
    import logging

    logging.disable(logging.WARNING)  # a failed trace logs the whole graph
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            batch = torch.export.Dim("batch", min=1)
            torch.export.export(module, (example,), dynamic_shapes=({0: batch},), strict=False)
        return True, ""
    except Exception as err:  # noqa: BLE001 - any failure means: not exportable this way
        return False, f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        logging.disable(logging.NOTSET)


def _export(module: nn.Module, example: Tensor, path: Path, dynamo: bool) -> None:
    kwargs: dict[str, Any] = dict(input_names=["images"], output_names=list(OUTPUT_NAMES))
    if dynamo:
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,
            verbose=False,
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            **kwargs,
        )
    else:
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            opset_version=17,
            dynamic_axes={"images": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
            **kwargs,
        )


def export_onnx(
    run_dir: str | os.PathLike, out: str | os.PathLike, *, exporter: str = "auto", log: Callable[[str], None] = print
) -> dict:
    """Export a run directory (with ``threshold.json``) to ``out``; returns the metadata written."""
    import onnx

    from .. import __version__
    from ..runs import Run

    if exporter not in ("auto", "dynamo", "legacy"):
        raise InputError(f"Expected `exporter` to be 'auto', 'dynamo' or 'legacy', but got: {exporter!r}")
    out = Path(out)
    check_output_path(out, Path(run_dir))
    run = Run.load(run_dir, "cpu")
    t, spec = run.threshold(), run.input  # the threshold strictly checked against the model and its input
    for note in run.notes:
        log(note)
    c, h, w = spec.shape
    example = torch.randint(0, 256, (2, h, w, c), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    use_dynamo = exporter == "dynamo"
    if exporter == "dynamo":
        ok, why = _torch_export_ok(DeployModule(run.model, t, spec.mean, spec.std).eval(), example)
        if not ok:
            raise InputError(
                f"torch.export cannot trace this model ({why}); use exporter='legacy' (--exporter legacy) or 'auto'"
            )
    if exporter == "auto":
        use_dynamo, why = _torch_export_ok(DeployModule(run.model, t, spec.mean, spec.std).eval(), example)
        if not use_dynamo:
            log(
                f"export: torch.export cannot trace this model's head yet ({why}); using the legacy TorchScript "
                "exporter with the head's logits in plain ops"
            )
    module = DeployModule(run.model, t, spec.mean, spec.std, traceable_head=not use_dynamo).eval()
    import warnings

    meta = {
        "class_names": json.dumps(run.class_names),
        "input_size": json.dumps(list(spec.shape)),
        "input_layout": "NHWC uint8",
        "mean": json.dumps(list(spec.mean)),
        "std": json.dumps(list(spec.std)),
        "score": t.score,
        "threshold": repr(float(t.threshold)),
        "target_tpr": repr(float(t.target_tpr)),
        "val_tpr": repr(float(t.val_tpr)),
        "temperature": repr(t.temperature),
        "isomax_version": __version__,
        "exporter": "torch.onnx dynamo" if use_dynamo else "torch.onnx legacy (TorchScript)",
        "outputs": json.dumps(list(OUTPUT_NAMES)),
        "fingerprint": run.fingerprint,
        "loss": run.config.loss,
    }
    with OutputLock(out, "export"), terminate_as_interrupt():
        remove_stale_temps(out)  # of a run killed (SIGKILL) or stopped by a full disk before
        out.with_name(out.name + ".tmp.onnx").unlink(missing_ok=True)  # the shared name of isomax <= 0.x
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp.onnx")  # per process, next to the target
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # tracer warnings of the backbone's argument checks (constant in a graph)
                _export(module, example, tmp, use_dynamo)
            proto = onnx.load(str(tmp))
            del proto.metadata_props[:]
            for k, v in meta.items():
                proto.metadata_props.add(key=k, value=v)
            atomic_write_bytes(out, proto.SerializeToString())
        finally:  # also on Ctrl-C / SIGTERM (terminate_as_interrupt) and a full disk
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".data").unlink(missing_ok=True)
    log(f"exported {run.run_dir} ({t}) with the {meta['exporter']} exporter to {out}")
    return meta
