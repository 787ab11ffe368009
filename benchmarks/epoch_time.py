"""Epoch time of one model under a preset: our data pipeline vs a plain torchvision DataLoader.

Both pipelines train the same model (same head, loss, optimiser, batch size, bfloat16 autocast on
CUDA as in ``isomax train``) for ``--steps`` steps after ``--warmup`` steps; the time per step is
extrapolated to one epoch of the preset's training split. Pipelines:

- ``ours``: :class:`isomax.data.BatchLoader`, the uint8 images moved to the device once, then
  per batch one gather + one vectorised random-crop/flip + normalisation on the device.
- ``torchvision``: ``torch.utils.data.DataLoader`` (``--num-workers`` worker processes,
  ``pin_memory`` on CUDA) over a per-sample dataset with ``transforms.RandomCrop(H, padding=pad)``
  + ``RandomHorizontalFlip()`` + normalisation, the batch copied to the device each step.
  ``--tv-source tensor`` (default) reads the same decoded uint8 images (a ``TensorDataset``-like
  dataset, tensor transforms); ``--tv-source folder`` is the classic ``ImageFolder`` + PIL +
  ``ToTensor`` pipeline, decoding the JPEGs every epoch (needs an image-folder dataset such as
  ``cifar10-jpg``).

Each pipeline is also timed without the model (``data ms``): the cost of producing batches.

    python benchmarks/epoch_time.py --preset paper --device cuda --steps 50            # DenseNet-BC-100 on a GPU
    python benchmarks/epoch_time.py --preset cifar10-cpu --threads 2 --steps 10
    python benchmarks/epoch_time.py --preset fashion-mnist-quick --model cnn-28 --steps 5 --device cpu
    python benchmarks/epoch_time.py --preset cifar10-cpu --plan 32,M,64,M,128,M,256 --pipelines ours --steps 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from isomax.data import BatchLoader, normalization
from isomax.heads import canonical_head_name
from isomax.losses import make_loss
from isomax.presets import get_preset
from isomax.training import _autocast, build_model, load_data, resolve_device

PIPELINES = ("ours", "torchvision")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to_unit_float(t: torch.Tensor) -> torch.Tensor:
    return t.float().div_(255)  # what ToTensor does to a PIL image (module level: picklable for workers)


class _TensorImages(torch.utils.data.Dataset):
    """Per-sample access to the decoded uint8 images with torchvision tensor transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def torchvision_loader(config, train_set, args, device: torch.device):
    from torchvision import datasets, transforms

    mean, std = normalization(config.dataset)
    h = train_set.shape[1]
    aug = []
    if config.augment:
        aug.append(transforms.RandomCrop(h, padding=config.pad))
        if config.flip:
            aug.append(transforms.RandomHorizontalFlip())
    if args.tv_source == "folder":
        if args.folder:
            root = Path(args.folder)
        else:
            from isomax.data._common import search_roots

            root = next(
                (
                    r / "cifar10-jpg" / "train"
                    for r in search_roots(args.data_dir)
                    if (r / "cifar10-jpg" / "train").is_dir()
                ),
                Path("cifar10-jpg/train"),
            )
        if not root.is_dir():
            raise SystemExit(f"--tv-source folder needs an image folder; {root} does not exist (use --folder)")
        ds = datasets.ImageFolder(
            str(root), transforms.Compose(aug + [transforms.ToTensor(), transforms.Normalize(mean, std)])
        )
    else:
        ds = _TensorImages(
            train_set.images,
            train_set.labels,
            transforms.Compose(aug + [transforms.Lambda(_to_unit_float), transforms.Normalize(mean, std)]),
        )
    return torch.utils.data.DataLoader(
        ds,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.num_workers > 0,
    )


def _batches(loader, device):
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def time_pipeline(name, config, train_set, args, device):
    torch.manual_seed(config.seed)
    if name == "ours":
        mean, std = normalization(config.dataset)
        loader = BatchLoader(
            train_set,
            config.batch_size,
            shuffle=True,
            augment=config.augment,
            pad=config.pad,
            flip=config.flip,
            mean=mean,
            std=std,
            device=device,
            drop_last=True,
            seed=config.seed,
        )
    else:
        loader = torchvision_loader(config, train_set, args, device)
    # the training split (an ImageFolder also holds the validation images)
    steps_per_epoch = len(train_set) // config.batch_size
    if steps_per_epoch == 0:
        raise SystemExit(f"fewer than {config.batch_size} training images")
    if args.plan:
        from isomax.models import SmallCNN

        model = SmallCNN(
            args.plan,
            input_hw=tuple(train_set.shape[1:]),
            num_classes=train_set.num_classes,
            head=canonical_head_name(config.loss),
            in_channels=train_set.shape[0],
        ).to(device)
    else:
        model = build_model(config, train_set.num_classes, train_set.shape[0]).to(device)
    loss_fn = make_loss(config.loss, config.entropic_scale, validate_args=False).to(device)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=1e-3,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )
    model.train()
    batches = _batches(loader, device)

    def step(x, y):
        with _autocast(device, config.amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # data only: the cost of producing the batches (first batch excluded: worker start-up)
    next(batches)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        x, y = next(batches)
    _sync(device)
    data_s = (time.perf_counter() - t0) / args.steps
    for _ in range(args.warmup):
        step(*next(batches))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step(*next(batches))
    _sync(device)
    step_s = (time.perf_counter() - t0) / args.steps
    return dict(
        pipeline=name,
        steps_timed=args.steps,
        steps_per_epoch=steps_per_epoch,
        data_ms=1e3 * data_s,
        step_ms=1e3 * step_s,
        epoch_s=step_s * steps_per_epoch,
        images_per_s=config.batch_size / step_s,
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fashion-mnist-quick")
    p.add_argument("--model", default=None, help="model name (default: the preset's)")
    p.add_argument("--plan", default=None, help="time a SmallCNN with this plan instead, e.g. 32,M,64,M,128,M,256")
    p.add_argument("--loss", default="isomaxplus")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--steps", type=int, default=20, help="timed steps per pipeline (extrapolated to an epoch)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers of the torchvision pipeline")
    p.add_argument("--tv-source", choices=("tensor", "folder"), default="tensor")
    p.add_argument(
        "--folder", default=None, help="image folder for --tv-source folder (default DATA_DIR/cifar10-jpg/train)"
    )
    p.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    p.add_argument("--no-amp", action="store_true", help="no bfloat16 autocast on CUDA")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be >= 1")
    if args.plan:
        args.plan = tuple(int(v) if v.strip().isdigit() else v.strip() for v in args.plan.split(","))
    changes = {
        k: v for k, v in dict(model=args.model, batch_size=args.batch_size, loss=args.loss).items() if v is not None
    }
    if args.no_amp:
        changes["amp"] = False
    config = get_preset(args.preset).config(**changes)
    runtime = get_preset(args.preset).runtime(data_dir=args.data_dir, device=args.device or "auto")
    threads = args.threads or runtime.threads
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(runtime.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_set, _ = load_data(config, runtime.data_dir, runtime.workers)
    what = f"plan {args.plan}" if args.plan else config.model
    print(
        f"{args.preset}: {what}, {config.loss}, batch {config.batch_size}, {len(train_set)} training images, "
        f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
        f"{torch.get_num_threads()} threads, amp {config.amp and device.type == 'cuda'}"
    )
    rows = []
    for name in args.pipelines:
        r = time_pipeline(name, config, train_set, args, device)
        label = name if name == "ours" else f"torchvision ({args.tv_source}, {args.num_workers} workers)"
        print(
            f"  {label:<34} data {r['data_ms']:8.1f} ms/batch   step {r['step_ms']:8.1f} ms   "
            f"epoch {r['epoch_s']:8.1f} s ({r['steps_per_epoch']} steps)   {r['images_per_s']:8.0f} img/s"
        )
        rows.append(r)
    if len(rows) == 2:
        print(f"  torchvision / ours epoch time: {rows[1]['epoch_s'] / rows[0]['epoch_s']:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                dict(
                    preset=args.preset,
                    model=config.model,
                    plan=args.plan,
                    device=str(device),
                    batch_size=config.batch_size,
                    threads=torch.get_num_threads(),
                    results=rows,
                ),
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
