"""The streaming data path on folders of mixed-size JPEGs: peak memory, images/s, time to the first step.

Generates folders of 1,000 / 4,000 / 20,000 JPEGs from the CIFAR-10 JPEG copy (``$ISOMAX_DATA/cifar10-jpg``),
each upscaled to a random width and height in 160..500 px (quality 90), as ``OUT/n<N>/train/<class>/``
plus a ``test/`` of 200 images. Then, per size:

- ``rss``: peak resident memory of ``isomax train --dataset DIR --data-path stream`` (1 epoch, cnn-32-small,
  ``--img-size 64``, ``--threads 1``, ``--workers W``), summed over the process and its workers
  (PSS: pages shared by the forked workers are split between them, not counted twice), sampled
  every 0.1 s from /proc; also the wall time and the time until the first epoch line;
- ``speed`` (on the middle size): images/s of one pass over the training split through
  :meth:`FileImages.loader` vs torchvision ``ImageFolder`` + ``DataLoader`` with the same transforms
  (RandomResizedCrop(64) + flip, uint8 tensors), the same workers and batch size, no model;
- ``first``: seconds from nothing to the first training batch on the device (listing, mean/std sample,
  first batch) in-process.

    python benchmarks/data_streaming.py --sizes 1000 4000 20000 --workers 1 --out /tmp/isomax-stream-bench

Writes OUT/data_streaming.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def generate(src: Path, out: Path, n: int, n_test: int = 200, seed: int = 0) -> Path:
    """``out/train/<class>/*.jpg`` (n images) and ``out/test/<class>/*.jpg`` (n_test), mixed sizes 160..500 px."""
    from PIL import Image

    done = out / ".done"
    if done.exists():
        return out
    rng = random.Random(seed)
    for split, k, src_split in (("train", n, "train"), ("test", n_test, "test")):
        for i in range(k):
            c = CLASSES[i % 10]
            im = Image.open(src / src_split / c / f"{i // 10:04d}.jpg").convert("RGB")
            im = im.resize((rng.randint(160, 500), rng.randint(160, 500)), Image.BICUBIC)
            d = out / split / c
            d.mkdir(parents=True, exist_ok=True)
            im.save(d / f"{i:06d}.jpg", quality=90)
    done.touch()
    return out


def _tree_rss(pid: int) -> int:
    """Sum of the proportional set sizes (PSS, bytes: shared pages split between the processes sharing
    them) of ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    total, stack = 0, [pid]
    while stack:
        q = stack.pop()
        stack += children.get(q, [])
        try:
            for line in Path(f"/proc/{q}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def peak_rss_train(folder: Path, run: Path, workers: int, img_size: int, batch: int) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "isomax",
        "train",
        "--dataset",
        str(folder),
        "--data-path",
        "stream",
        "--img-size",
        str(img_size),
        "--model",
        "cnn-32-small",
        "--epochs",
        "1",
        "--batch-size",
        str(batch),
        "--threads",
        "1",
        "--workers",
        str(workers),
        "--device",
        "cpu",
        "--no-progress",
        "--no-resume",
        "--out",
        str(run),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.1)
    out = proc.stdout.read()
    if proc.returncode:
        raise RuntimeError(out[-2000:])
    return dict(peak_rss_gib=peak / 2**30, seconds=time.perf_counter() - t0)


def _images_per_s(loader, n_batches_warm: int = 2) -> float:
    it = iter(loader)
    for _ in range(n_batches_warm):  # worker start-up is "time to first batch", not throughput
        next(it)
    t0, n = time.perf_counter(), 0
    for x, _ in it:
        n += len(x)
    return n / (time.perf_counter() - t0)


def speed(folder: Path, workers: int, img_size: int, batch: int) -> dict:
    import torch
    from torchvision import datasets
    from torchvision.transforms import v2

    from isomax.data.folder import load_folder

    torch.set_num_threads(1)
    sets, _ = load_folder(folder, img_size, val_fraction=0, workers=workers)
    ours = sets["train"].loader(batch, (0.5,) * 3, (0.25,) * 3, "cpu", train=True)
    tf = v2.Compose([v2.PILToTensor(), v2.RandomResizedCrop(img_size, antialias=True), v2.RandomHorizontalFlip()])
    ref = torch.utils.data.DataLoader(
        datasets.ImageFolder(str(folder / "train"), transform=tf),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
    )
    # alternate, twice, so that a load change on the machine hits both
    a = [_images_per_s(ours), _images_per_s(ref), _images_per_s(ours), _images_per_s(ref)]
    return dict(isomax_img_s=max(a[0], a[2]), torchvision_img_s=max(a[1], a[3]), runs=a)


def first_step(folder: Path, workers: int, img_size: int, batch: int) -> float:
    """Seconds from nothing to the first normalised training batch (listing, mean/std sample, first batch)."""
    code = (
        "import time,sys; t=time.perf_counter(); import torch; torch.set_num_threads(1);"
        "from isomax.presets import Runtime, TrainConfig; from isomax import training;"
        f"c=TrainConfig(dataset={str(folder)!r}, img_size={img_size}, batch_size={batch}, data_path='stream');"
        f"r=Runtime(device='cpu', workers={workers});"
        "tr, va = training.load_data(c, None, r.workers); m, s = training._normalization(c, tr);"
        "l, _, _ = training._loaders(c, r, tr, va, m, s, torch.device('cpu')); next(iter(l));"
        "print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 20000])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("/tmp/isomax-stream-bench"))
    ap.add_argument("--src", type=Path, default=Path(os.environ.get("ISOMAX_DATA", "../shared/data")) / "cifar10-jpg")
    args = ap.parse_args()
    res = dict(workers=args.workers, img_size=args.img_size, batch_size=args.batch_size, cpus=os.cpu_count(), sizes={})
    mid = args.sizes[len(args.sizes) // 2]
    for n in args.sizes:
        t0 = time.perf_counter()
        folder = generate(args.src, args.out / f"n{n}", n)
        print(f"n={n}: folder ready ({time.perf_counter() - t0:.0f}s)", flush=True)
        r = peak_rss_train(folder, args.out / f"run{n}", args.workers, args.img_size, args.batch_size)
        r["first_batch_s"] = first_step(folder, args.workers, args.img_size, args.batch_size)
        res["sizes"][n] = r
        print(f"n={n}: {r}", flush=True)
        if n == mid:  # before the largest size, which takes longest
            res["speed"] = dict(n=mid, **speed(args.out / f"n{mid}", args.workers, args.img_size, args.batch_size))
            print(res["speed"], flush=True)
        (args.out / "data_streaming.json").write_text(json.dumps(res, indent=2))
    print("\n| images | peak PSS (GiB, process + workers) | train 1 epoch (s) | first batch (s) |\n|---|---|---|---|")
    for n, r in res["sizes"].items():
        print(f"| {n:,} | {r['peak_rss_gib']:.2f} | {r['seconds']:.0f} | {r['first_batch_s']:.1f} |")
    s = res["speed"]
    print(
        f"\nimages/s on {s['n']:,} images, {args.workers} worker(s): isomax {s['isomax_img_s']:.0f}, torchvision "
        f"ImageFolder {s['torchvision_img_s']:.0f} ({s['isomax_img_s'] / s['torchvision_img_s']:.2f}x)"
    )


if __name__ == "__main__":
    main()
