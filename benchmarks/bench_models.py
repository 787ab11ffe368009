"""Parameter counts and CPU training-step time of every registered model.

    python benchmarks/bench_models.py [--threads 2] [--steps 10] [--models cnn-28 cnn-32]

One training step = forward + cross-entropy + backward + SGD (Nesterov) step, on random inputs
of the model's design size, in training mode. Reports the median over ``--steps`` timed steps
(after ``--warmup`` untimed ones) and the implied epoch time for the size of the training set of
its benchmark (54,000 Fashion-MNIST images for 28x28 models, 50,000 CIFAR-10 images otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from isomax.models import create_model, list_models

# Batch size and training-set size per input resolution (H): the benchmarks this repo runs.
BATCH_SIZE = {28: 128, 32: 256}  # images per step
TRAIN_SIZE = {28: 54_000, 32: 50_000}  # images per epoch


def time_training_step(name: str, head: str, batch_size: int, steps: int, warmup: int) -> float:
    """Median seconds of one training step of model ``name`` at ``batch_size``."""
    model = create_model(name, num_classes=10, head=head).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch_size, *model.input_size)  # (B, C, H, W)
    y = torch.randint(0, 10, (batch_size,))  # (B,)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    parser.add_argument("--head", default="softmax", choices=["softmax", "isomax", "isomaxplus"])
    parser.add_argument("--models", nargs="*", default=None, help="default: all registered models")
    parser.add_argument("--no-timing", action="store_true", help="parameter counts only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {args.threads} threads, head={args.head}")
    print(f"{'model':<18}{'params':>12}{'features':>10}{'batch':>7}{'ms/step':>10}{'s/epoch':>9}")
    for name in args.models or list_models():
        model = create_model(name, num_classes=10, head=args.head)
        n_params = sum(p.numel() for p in model.parameters())
        height = model.input_size[1]
        batch_size = BATCH_SIZE.get(height, 128)
        row = f"{name:<18}{n_params:>12,}{model.num_features:>10}{batch_size:>7}"
        if not args.no_timing:
            seconds = time_training_step(name, args.head, batch_size, args.steps, args.warmup)
            epoch = seconds * TRAIN_SIZE.get(height, 50_000) / batch_size
            row += f"{1000 * seconds:>10.1f}{epoch:>9.0f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
