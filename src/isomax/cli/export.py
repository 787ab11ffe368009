"""``isomax export``: a run (model, score, threshold) as one ONNX graph (:func:`isomax.deploy.export.export_onnx`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_run_parser, add_runtime_flags

HELP = "export a run (model, score, threshold) as one ONNX graph"


def add_parser(sub) -> argparse.ArgumentParser:
    p = add_run_parser(
        sub,
        "export",
        help=HELP,
        description="Write one ONNX graph: uint8 images (N, H, W, C) -> logits, class, probability, score, accepted, "
        "with the normalisation and RUN_DIR/threshold.json inside and the class names, input size, "
        "mean/std, score, threshold and target TPR in its metadata.",
    )
    p.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    p.add_argument(
        "--exporter",
        choices=("auto", "dynamo", "legacy"),
        default="auto",
        help="torch.onnx.export(dynamo=True), the legacy TorchScript exporter, or auto: dynamo when "
        "torch.export can trace the model, else legacy (default)",
    )
    add_runtime_flags(p, data_dir=False, device=False)
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..deploy.export import export_onnx

    export_onnx(args.run_dir, args.out, exporter=args.exporter)
    return 0
