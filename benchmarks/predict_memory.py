"""Peak memory of ``isomax predict`` on huge images for a small model (issue 19: two 8000x8000 PNGs cost 4.8 GB).

    python benchmarks/predict_memory.py [--size 8000] [--images 2] [--mode RGB] [--src SRC_DIR]

Builds a run directory with an (untrained) ``cnn-28`` model (28x28 grey input, as Fashion-MNIST) and a
threshold fitted for it, writes ``--images`` PNGs of ``--size`` x ``--size`` pixels (a smooth gradient: a
small file, a huge decoded image), runs ``python -m isomax predict`` on them in a child process and
reports the child's peak resident memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``) and the
peak of the same process predicting one 28x28 image (the baseline: Python, torch and the model).
``--src`` runs another checkout's package (e.g. ``/work/main/src`` before the fix) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


def make_run(root: Path) -> Path:
    from isomax.deploy import fit_threshold
    from isomax.deploy._files import model_fingerprint
    from isomax.deploy.threshold import input_description
    from isomax.models import create_model
    from isomax.presets import TrainConfig

    torch.manual_seed(0)
    model = create_model("cnn-28", num_classes=10, head="isomaxplus", in_channels=1)
    run = root / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps(TrainConfig(dataset="fashion-mnist", model="cnn-28", loss="isomaxplus").to_dict())
    )
    data = dict(
        dataset="fashion-mnist",
        channels=1,
        height=28,
        width=28,
        num_classes=10,
        classes=[str(i) for i in range(10)],
        mean=[0.286],
        std=[0.353],
    )
    torch.save(dict(model=model.state_dict(), epoch=1, history=[], data=data), run / "checkpoint.pt")
    t = fit_threshold(
        np.linspace(-2, 0, 1000),
        score="mds",
        temperature=1.0,
        fingerprint=model_fingerprint(model),
        loss="isomaxplus",
        input=input_description((1, 28, 28), [0.286], [0.353]),
    )
    t.save(run)
    return run


def peak_rss_mb(cmd: list[str], env: dict) -> tuple[float, int]:
    """Peak RSS (MB) of one child process running ``cmd``, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    if after <= before:  # ru_maxrss of children is a maximum over all of them: measure one per process
        print("warning: the peak did not rise above an earlier child's; run each measurement alone", file=sys.stderr)
    return after / 1024, proc.returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=8000)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--mode", choices=("L", "RGB"), default="RGB")
    p.add_argument("--src", default=None, help="PYTHONPATH of the package to measure (default: this one)")
    p.add_argument("--baseline", action="store_true", help="measure one 28x28 image instead (run it alone)")
    args = p.parse_args(argv)
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="predict-memory-"))
    run = make_run(tmp)
    (tmp / "images").mkdir()
    if args.baseline:
        Image.fromarray(np.zeros((28, 28), dtype=np.uint8), mode="L").save(tmp / "images" / "small.png")
        what = "one 28x28 image"
    else:
        x = np.linspace(0, 255, args.size, dtype=np.float32)
        row = np.broadcast_to(x.astype(np.uint8), (args.size, args.size))
        im = Image.fromarray(np.ascontiguousarray(row), mode="L")
        im = im.convert(args.mode) if args.mode != "L" else im
        for i in range(args.images):
            im.save(tmp / "images" / f"huge_{i}.png")
        del im, row
        sizes = [f.stat().st_size for f in (tmp / "images").iterdir()]
        what = f"{args.images} {args.size}x{args.size} {args.mode} PNGs ({max(sizes) / 1e3:.0f} KB each)"
    env = dict(os.environ, PYTHONPATH=args.src or str(Path(__file__).resolve().parents[1] / "src"))
    cmd = [
        sys.executable,
        "-m",
        "isomax",
        "predict",
        str(run),
        str(tmp / "images"),
        "--out",
        str(tmp / "p.csv"),
        "--device",
        "cpu",
        "--no-progress",
    ]
    mb, rc = peak_rss_mb(cmd, env)
    print(
        f"isomax predict on {what} with a 28x28 grey cnn-28: peak RSS {mb:.0f} MB (exit {rc}; package "
        f"{env['PYTHONPATH']})"
    )
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
