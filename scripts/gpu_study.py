#!/usr/bin/env python
"""GPU study (issue 22): SoftMax / IsoMax / IsoMax+ / DisMax on CIFAR-10 with ResNet-18, near/far OOD.

The OpenOOD v1.5 CIFAR-10 recipe (ResNet-18 for 32x32 inputs: 3x3 stem, no max-pool, BasicBlock
stages [2, 2, 2, 2], 64-512 channels; SGD Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, batch 128,
cosine schedule; random crop with 4-pixel padding + horizontal flip), with as many epochs as fit the
time budget (OpenOOD trains 100): one short probe times the training step, then every loss gets the
same number of epochs. bfloat16 autocast (the isomax heads compute distances in float32),
channels_last, the whole training set as uint8 on the GPU, augmented there once per epoch.

Out-distributions and roles: near = TinyImageNet-resize; far = MNIST, iSUN; noise = Gaussian,
uniform (``ROLES``), each on a fixed subset (the pack's ``n_ood`` images, seed 0). Metrics from
isomax.metrics (TNR/FPR at 95% TPR with in-distribution positive, AUROC, AUPR-in/out, and the
OpenOOD-style out-positive ones), means per role. ``results.json`` is a list of :class:`isomax.records.RunRecord`
(written by :func:`isomax.records.write_records`, read by :func:`isomax.records.read_records`), with the
evaluation sizes ``n_in``/``n_out`` and the out-positive metrics set.

Two steps:

    # here (CPU), once: pack the data into a zip that fits the device's 64 MiB carry limit
    python scripts/gpu_study.py pack --data /work/shared/data --out .gpu-data/gpu-study-data.zip
    # on the GPU machine (scripts/gpu_study.sh does this): unpack, train, evaluate, write $OUT
    python scripts/gpu_study.py run --pack .gpu-data/gpu-study-data.zip --out $OUT

The pack holds the original files byte for byte (CIFAR-10's JPEG copy whole; TinyImageNet test
JPEGs, iSUN JPEGs and MNIST test digits as seeded subsets) in one stored member plus an index; on
the device they are written back in their original layout and read by isomax's own loaders, so
every image goes through the same decoding and conversion as in the CPU benchmarks. ``run --tiny``
(1 epoch on 512 images, a ResNet-18 with 1/8 of the channels, small evaluation subsets) checks the
whole path on a CPU in seconds.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import shutil
import struct
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

LOSSES = ("softmax", "isomax", "isomaxplus", "dismax", "dismax-fpr")
# role of each out-distribution for CIFAR-10 (OpenOOD v1.5: TinyImageNet near, MNIST far; iSUN, scenes like
# Places365, far; noise apart)
ROLES = {"tinyimagenet-resize": "near", "mnist": "far", "isun": "far", "gaussian": "noise", "uniform": "noise"}
# the scores shown in results.md (results.json has every applicable one)
MAIN_SCORES = {
    "softmax": ("mps", "es"),
    "isomax": ("es", "mds"),
    "isomaxplus": ("mds", "es"),
    "dismax": ("mmles", "es"),
    "dismax-fpr": ("mmles", "es"),
}
PACK_FILES, PACK_INDEX = "files.bin", "index.json"
MAX_PACK_BYTES = 256 * 2**20  # refuse larger packs (the device carries 64 MiB anyway)
IMAGE_EXT = (".jpg", ".jpeg", ".png")

# OpenOOD v1.5 CIFAR-10 recipe
RECIPE = dict(
    batch_size=128, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, pad=4, max_epochs=100, eval_batch_size=1000
)


# ---------------------------------------------------------------------------------------------
# pack (CPU side)
# ---------------------------------------------------------------------------------------------
def _pick(n: int, k: int, seed: int = 0) -> list[int]:
    """The seeded subset of the package (:func:`isomax.sampling.seeded_indices`), in the original order."""
    from isomax.sampling import seeded_indices

    return seeded_indices(n, k, seed).tolist()


def _idx_bytes(array, magic: int) -> bytes:
    """An idx file (MNIST's format) of a uint8 array, gzipped."""
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


def _read_idx(path: Path):
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def collect_files(data: Path, n_ood: int) -> list[tuple[str, bytes]]:
    """(relative path, bytes) of every file the study needs, in the layout isomax's loaders read."""
    files: list[tuple[str, bytes]] = []
    cifar = data / "cifar10-jpg"
    for split in ("train", "test"):
        paths = sorted(p for p in (cifar / split).rglob("*") if p.suffix.lower() in IMAGE_EXT)
        if not paths:
            raise FileNotFoundError(
                f"no CIFAR-10 images under {cifar / split} (expected cifar10-jpg/{split}/<class>/*.jpg)"
            )
        files += [(str(p.relative_to(data)), p.read_bytes()) for p in paths]
    tin = sorted((data / "tiny-imagenet-200" / "test" / "images").glob("*.JPEG"))
    if not tin:
        raise FileNotFoundError(f"no TinyImageNet test images under {data / 'tiny-imagenet-200/test/images'}")
    files += [(str(tin[i].relative_to(data)), tin[i].read_bytes()) for i in _pick(len(tin), n_ood)]
    isun = data / "isun" / "iSUN.tar.gz"
    if not isun.is_file():
        raise FileNotFoundError(f"{isun} is missing")
    with tarfile.open(isun, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(IMAGE_EXT)), key=lambda m: m.name
        )
        for i in _pick(len(members), n_ood):
            name = Path(members[i].name).name
            files.append((f"isun/iSUN/iSUN_patches/{name}", tar.extractfile(members[i]).read()))
    mnist = data / "mnist-test"
    images, labels = _read_idx(mnist / "t10k-images-idx3-ubyte.gz"), _read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    keep = _pick(len(images), n_ood)
    files.append(("mnist-test/t10k-images-idx3-ubyte.gz", _idx_bytes(images[keep], 0x803)))
    files.append(("mnist-test/t10k-labels-idx1-ubyte.gz", _idx_bytes(labels[keep], 0x801)))
    return files


def pack(data: Path, out: Path, n_ood: int) -> dict:
    files = collect_files(data, n_ood)
    blob = b"".join(b for _, b in files)
    index = dict(
        version=1, n_ood=n_ood, sha256=hashlib.sha256(blob).hexdigest(), files=[[name, len(b)] for name, b in files]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    with zipfile.ZipFile(tmp, "w") as z:
        z.writestr(zipfile.ZipInfo(PACK_FILES), blob, compress_type=zipfile.ZIP_STORED)  # JPEGs do not compress
        z.writestr(zipfile.ZipInfo(PACK_INDEX), json.dumps(index), compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, out)
    return dict(path=str(out), bytes=out.stat().st_size, files=len(files), n_ood=n_ood)


def unpack(pack_path: Path, dest: Path) -> dict:
    """Write the pack's files under ``dest`` (checked: sizes, sha256, relative paths only)."""
    if not pack_path.is_file():
        raise FileNotFoundError(f"{pack_path} is missing: make it with `python scripts/gpu_study.py pack` and carry it")
    if pack_path.stat().st_size > MAX_PACK_BYTES:
        raise ValueError(f"{pack_path} is larger than {MAX_PACK_BYTES} bytes")
    with zipfile.ZipFile(pack_path) as z:
        index = json.loads(z.read(PACK_INDEX))
        if z.getinfo(PACK_FILES).file_size > MAX_PACK_BYTES:
            raise ValueError(f"{pack_path}: {PACK_FILES} is too large")
        blob = z.read(PACK_FILES)
    if hashlib.sha256(blob).hexdigest() != index["sha256"] or sum(n for _, n in index["files"]) != len(blob):
        raise ValueError(f"{pack_path} is damaged (sha256 or sizes do not match its index)")
    if dest.exists():
        shutil.rmtree(dest)
    offset = 0
    for name, size in index["files"]:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{pack_path}: unsafe path {name!r}")
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob[offset : offset + size])
        offset += size
    return index


# ---------------------------------------------------------------------------------------------
# run (GPU side; --tiny on a CPU)
# ---------------------------------------------------------------------------------------------
def resnet18(head: str, width_div: int = 1):
    """OpenOOD's ResNet18_32x32: CifarResNet with BasicBlock stages [2, 2, 2, 2], projection shortcuts."""
    from isomax.models.resnet import CifarResNet

    return CifarResNet(
        (2, 2, 2, 2),
        tuple(w // width_div for w in (64, 128, 256, 512)),
        shortcut="B",
        init_mode="fan_out",
        num_classes=10,
        head=head,
    )


def augment(x_pad, pad: int, gen):
    """Random crop (of the zero-padded images) + horizontal flip, one gather, on the images' device.

    ``x_pad`` (N, C, H + 2 pad, W + 2 pad) uint8; random numbers from ``gen`` (on the same device)."""
    import torch

    n, c, hp, wp = x_pad.shape
    h, w, dev = hp - 2 * pad, wp - 2 * pad, x_pad.device
    off = torch.randint(0, 2 * pad + 1, (n, 2), device=dev, generator=gen)
    flip = torch.rand(n, device=dev, generator=gen) < 0.5
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows = off[:, :1] + ar_h  # (N, H)
    cols = off[:, 1:] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)  # (N, W)
    idx = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return torch.gather(x_pad.reshape(n, c, hp * wp), 2, idx).view(n, c, h, w)


class Study:
    def __init__(self, args):
        import torch

        from isomax.data import load_dataset, load_ood, normalization
        from isomax.sampling import seeded_subset

        self.args, self.t0 = args, time.perf_counter()
        self.device = torch.device(
            args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        data_dir = str(args.work)
        train, test = (
            load_dataset("cifar10", "train", data_dir=data_dir),
            load_dataset("cifar10", "test", data_dir=data_dir),
        )
        if args.tiny:  # seeded subsets of 512 training and 256 test images
            train, test = seeded_subset(train, 512, seed=0), seeded_subset(test, 256, seed=0)
        self.train_x = torch.nn.functional.pad(train.images.to(self.device), (RECIPE["pad"],) * 4)  # uint8, padded once
        self.train_y = train.labels.to(self.device)
        self.test = test
        self.ood = []
        n_ood = args.n_ood
        for name in ROLES:
            data = load_ood(name, like=tuple(test.images.shape[1:]), data_dir=data_dir, num_samples=n_ood, seed=0)
            data = seeded_subset(data, n_ood, seed=0)
            self.ood.append(data)
        mean, std = normalization("cifar10")
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.log(
            f"data: train {len(train)}, test {len(test)}, "
            + ", ".join(f"{d.name} {len(d)}" for d in self.ood)
            + f" ({time.perf_counter() - self.t0:.1f}s)"
        )

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    def normalise(self, x):
        import torch

        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last)

    def autocast(self):
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    # ---- training ------------------------------------------------------------------------------
    def make(self, loss_name: str, epochs: int, seed: int):
        import torch

        from isomax.losses import make_loss

        torch.manual_seed(seed)
        model = resnet18(loss_name, 8 if self.args.tiny else 1).to(self.device).to(memory_format=torch.channels_last)
        loss_fn = make_loss(loss_name, validate_args=False).to(self.device)
        for m in model.modules():  # no per-step host syncs for value checks
            if hasattr(m, "validate_args"):
                m.validate_args = False
        opt = torch.optim.SGD(
            model.parameters(),
            lr=RECIPE["lr"],
            momentum=RECIPE["momentum"],
            nesterov=RECIPE["nesterov"],
            weight_decay=RECIPE["weight_decay"],
        )
        steps = epochs * (len(self.train_y) // RECIPE["batch_size"])
        # OpenOOD's cosine annealing per step, from lr to 1e-6
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda it: (
                1e-6 / RECIPE["lr"] + (1 - 1e-6 / RECIPE["lr"]) * 0.5 * (1 + math.cos(math.pi * min(it, steps) / steps))
            ),
        )
        return model, loss_fn, opt, sched

    def epoch_batches(self, gen):
        import torch

        n, bs = len(self.train_y), RECIPE["batch_size"]
        x = augment(self.train_x, RECIPE["pad"], gen)  # (N, 3, 32, 32) uint8, the whole epoch at once
        perm = torch.randperm(n, device=self.device, generator=gen)
        for i in range(n // bs):  # drop_last
            idx = perm[i * bs : (i + 1) * bs]
            yield self.normalise(x[idx]), self.train_y[idx]

    def step(self, model, loss_fn, opt, sched, x, y, gen):

        targets = y
        if getattr(loss_fn, "fpr", False):
            x, targets = loss_fn.batch_transform(x, y, generator=gen)
        with self.autocast():
            logits = model(x)
        loss = loss_fn(logits.float(), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return loss.detach()

    def probe_epochs(self) -> tuple[int, float]:
        """Epochs per loss that fit the budget, from the timed steps of a throw-away model."""
        import torch

        if self.args.epochs:
            return self.args.epochs, float("nan")
        model, loss_fn, opt, sched = self.make("dismax-fpr", 1, 0)  # the slowest step (FPR + distance head)
        gen = torch.Generator(device=self.device).manual_seed(0)
        batches = self.epoch_batches(gen)
        warm, timed = 15, 40
        for i in range(warm + timed):
            if i == warm:
                self.sync()
                t = time.perf_counter()
            x, y = next(batches)
            self.step(model, loss_fn, opt, sched, x, y, gen)
        self.sync()
        step_s = (time.perf_counter() - t) / timed
        epoch_s = step_s * (len(self.train_y) // RECIPE["batch_size"]) * 1.05 + 0.5  # + augmentation, eval margin
        epochs = int(self.args.budget_s / (len(self.args.losses) * epoch_s))
        epochs = max(1, min(RECIPE["max_epochs"], epochs))
        self.log(
            f"probe: {1000 * step_s:.1f} ms/step, ~{epoch_s:.1f} s/epoch -> {epochs} epochs per loss "
            f"({len(self.args.losses)} losses, training budget {self.args.budget_s:.0f}s)"
        )
        return epochs, epoch_s

    def train(self, loss_name: str, epochs: int, seed: int):
        import torch

        model, loss_fn, opt, sched = self.make(loss_name, epochs, seed)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        history = []
        self.sync()
        t = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            total, n = torch.zeros((), device=self.device), 0
            for x, y in self.epoch_batches(gen):
                total += self.step(model, loss_fn, opt, sched, x, y, gen)
                n += 1
            history.append(dict(epoch=epoch + 1, train_loss=float(total) / max(n, 1)))  # one sync per epoch
        self.sync()
        seconds = time.perf_counter() - t
        self.log(f"{loss_name}: {epochs} epochs in {seconds:.1f}s, last train loss {history[-1]['train_loss']:.4f}")
        return model, history, seconds

    # ---- evaluation ----------------------------------------------------------------------------
    def logits(self, model, images):
        import torch

        out = []
        model.eval()
        with torch.no_grad():
            for i in range(0, len(images), RECIPE["eval_batch_size"]):
                x = self.normalise(images[i : i + RECIPE["eval_batch_size"]].to(self.device))
                with self.autocast():
                    out.append(model(x).float().cpu())
        return torch.cat(out)

    def evaluate(self, model, loss_name: str, seed: int, epochs: int) -> list:
        from isomax.evaluation import applicable_scores
        from isomax.metrics import ood_metrics
        from isomax.records import RunRecord
        from isomax.scores import SCORES

        logits_in = self.logits(model, self.test.images)
        accuracy = float((logits_in.argmax(1) == self.test.labels).float().mean())
        records = []
        names = applicable_scores(loss_name)
        s_in = {s: SCORES[s](logits_in) for s in names}
        for data in self.ood:
            logits_out = self.logits(model, data.images)
            for s in names:
                m = ood_metrics(s_in[s], SCORES[s](logits_out), out_positive=True)
                records.append(
                    RunRecord(
                        in_dataset="cifar10",
                        out_dataset=data.name,
                        role=ROLES[data.name],
                        model="resnet18-openood",
                        loss=loss_name,
                        score=s,
                        seed=seed,
                        epochs=epochs,
                        accuracy=accuracy,
                        n_in=len(logits_in),
                        n_out=len(logits_out),
                        **m,
                    )
                )
        self.log(f"{loss_name}: test accuracy {100 * accuracy:.2f}%")
        return records


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def write_markdown(records: list, meta: dict, path: Path) -> None:
    """results.md from the :class:`isomax.records.RunRecord` s of the study."""
    roles = list(dict.fromkeys(ROLES.values()))
    oods = list(ROLES)
    what = (
        "TINY CHECK (ResNet-18 with 1/8 of the channels, 512 training images): not a result"
        if meta["tiny"]
        else "ResNet-18 (OpenOOD recipe)"
    )
    lines = [
        f"# GPU study: CIFAR-10, {what}, {meta['epochs']} epoch(s), seed {meta['seed']}",
        "",
        f"Device: {meta['device_name']}; torch {meta['torch']}; {meta['wall_seconds']:.0f}s in all. "
        "One seed: no ± (a single run, not a mean). Percent. AUROC and FPR@95 (FPR of the out-distribution at 95% "
        "TPR of CIFAR-10 test, in-distribution positive) per role = mean over its out-distributions "
        f"(near: TinyImageNet-resize; far: MNIST, iSUN; noise: Gaussian, uniform), each a fixed subset of "
        f"{meta['n_ood']} images; the in-distribution on {meta['n_in']} test images.",
        "",
        "| loss | score | accuracy | "
        + " | ".join(f"{r} AUROC / FPR@95" for r in roles)
        + " | "
        + " | ".join(f"{o} AUROC" for o in oods)
        + " |",
        "|---|---|---|" + "---|" * (len(roles) + len(oods)),
    ]
    for loss in dict.fromkeys(r.loss for r in records):
        for score in MAIN_SCORES.get(loss, ()):
            rs = [r for r in records if r.loss == loss and r.score == score]
            if not rs:
                continue
            cells = [
                f"{100 * _mean(r.auroc for r in rs if r.role == role):.1f} / "
                f"{100 * _mean(r.fpr_at_tpr95 for r in rs if r.role == role):.1f}"
                for role in roles
            ]
            cells += [f"{100 * _mean(r.auroc for r in rs if r.out_dataset == o):.1f}" for o in oods]
            lines.append(f"| {loss} | {score} | {100 * rs[0].accuracy:.2f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Every applicable score, AUPR-in/out and the out-positive (OpenOOD) metrics: results.json. "
        "Training seconds per loss: " + ", ".join(f"{k} {v:.0f}" for k, v in meta["train_seconds"].items()) + ".",
        "",
    ]
    path.write_text("\n".join(lines))


def run(args) -> None:
    import torch

    from isomax.records import write_records

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    index = unpack(args.pack, args.work)
    args.n_ood = min(args.n_ood or index["n_ood"], index["n_ood"])
    # subsets: the published checksums cannot match (the pack has its sha256)
    os.environ.setdefault("ISOMAX_VERIFY", "0")
    study = Study(args)
    study.log(
        f"device {study.device} ({torch.cuda.get_device_name() if study.cuda else platform.processor() or 'cpu'}), "
        f"torch {torch.__version__}"
    )
    epochs, epoch_s = (1, float("nan")) if args.tiny else study.probe_epochs()
    records, meta_runs = [], {}
    for loss in args.losses:
        model, history, seconds = study.train(loss, epochs, args.seed)
        records += study.evaluate(model, loss, args.seed, epochs)
        meta_runs[loss] = dict(train_seconds=round(seconds, 1), history=history)
        write_records(records, args.out / "results.json")  # after each loss (atomically): nothing lost on a kill
        del model
    meta = dict(
        epochs=epochs,
        seed=args.seed,
        probe_epoch_seconds=epoch_s,
        budget_s=args.budget_s,
        tiny=args.tiny,
        losses=list(args.losses),
        device=str(study.device),
        device_name=torch.cuda.get_device_name() if study.cuda else "CPU",
        torch=torch.__version__,
        python=platform.python_version(),
        n_in=len(study.test),
        n_ood=args.n_ood,
        recipe=RECIPE,
        roles=ROLES,
        train_seconds={k: v["train_seconds"] for k, v in meta_runs.items()},
        runs=meta_runs,
        wall_seconds=round(time.perf_counter() - t0, 1),
    )
    (args.out / "study.json").write_text(json.dumps(meta, indent=1))
    write_markdown(records, meta, args.out / "results.md")
    study.log(f"wrote {args.out / 'results.md'}, results.json, study.json")
    print((args.out / "results.md").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="pack the data for the device (CPU side)")
    pk.add_argument("--data", type=Path, default=Path(os.environ.get("ISOMAX_DATA", "/work/shared/data")))
    pk.add_argument("--out", type=Path, default=ROOT / ".gpu-data" / "gpu-study-data.zip")
    pk.add_argument("--n-ood", type=int, default=1000, help="images per real out-distribution (default 1000)")
    r = sub.add_parser("run", help="unpack, train every loss, evaluate, write OUT")
    r.add_argument("--pack", type=Path, default=ROOT / ".gpu-data" / "gpu-study-data.zip")
    r.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu-study")))
    r.add_argument("--work", type=Path, default=Path("/tmp/isomax-gpu-study-data"), help="where the pack is unpacked")
    r.add_argument("--losses", nargs="+", default=list(LOSSES))
    r.add_argument("--budget-s", type=float, default=390.0, help="seconds of training for all losses together")
    r.add_argument("--epochs", type=int, default=None, help="fixed epochs per loss (default: what fits the budget)")
    r.add_argument("--n-ood", type=int, default=None, help="images per out-distribution (default: the pack's)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto")
    r.add_argument(
        "--tiny",
        action="store_true",
        default=os.environ.get("TINY") == "1",
        help="1 epoch on 512 images, ResNet-18 with 1/8 of the channels, 256 test images (CPU check; also TINY=1)",
    )
    args = p.parse_args(argv)
    if args.command == "pack":
        info = pack(args.data, args.out, args.n_ood)
        print(
            f"wrote {info['path']}: {info['bytes'] / 2**20:.1f} MiB, {info['files']} files, "
            f"{info['n_ood']} per out-distribution"
        )
        return 0
    from isomax.heads import canonical_head_name

    args.losses = [canonical_head_name(name) for name in args.losses]
    if args.tiny:
        args.n_ood = min(args.n_ood or 64, 64)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
