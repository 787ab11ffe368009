"""Where the IsoMax+ head's time goes at small sizes: operator counts and the row gather.

    python benchmarks/bench_head_ops.py [--threads 2]

1. Counts the ATen operators that one forward + backward of IsoMax+ head + ``IsoMaxLoss`` (default
   arguments) dispatches, against ``nn.Linear`` + ``CrossEntropyLoss``, with ``torch.profiler``
   (top-level operators only: those called from Python or from autograd, not their internals), and
   divides the eager time by that count.
2. Times the row gather of the exact nearest-distance recomputation, ``F.embedding(idx, p)``,
   against advanced indexing ``p[idx]``, at the shapes of ``bench_core.py``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

import isomax

SHAPES = [(128, 342, 10), (256, 512, 100), (1024, 512, 1000)]


def seconds(fn, iters: int) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def top_level_ops(fn) -> int:
    """ATen operators dispatched by one call of ``fn``, not counting those nested in another one."""
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    nested = {id(c) for e in events for c in e.cpu_children}
    return sum(1 for e in events if id(e) not in nested)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads")
    print(
        f"{'batch x feat x classes':>24} {'ops linear+CE':>14} {'ops isomax+':>12} {'us/op linear':>13} "
        f"{'us/op isomax+':>14} "
        f"{'p[idx] us':>10} {'embedding us':>13}"
    )
    for b, f, c in SHAPES:
        x, y = torch.randn(b, f, requires_grad=True), torch.randint(0, c, (b,))
        linear, ce = nn.Linear(f, c), nn.CrossEntropyLoss()
        head, loss = isomax.IsoMaxPlusHead(f, c), isomax.IsoMaxLoss()
        steps = {"linear": lambda: ce(linear(x), y).backward(), "isomax+": lambda: loss(head(x), y).backward()}
        iters = max(5, int(2e8 / (b * f * c + 1e6)))
        ops = {k: top_level_ops(fn) for k, fn in steps.items()}
        per_op = {k: 1e6 * seconds(fn, iters) / ops[k] for k, fn in steps.items()}
        p, idx = torch.randn(c, f), torch.randint(0, c, (b,))
        t_index = 1e6 * seconds(lambda: p[idx], 20 * iters)
        t_embed = 1e6 * seconds(lambda: F.embedding(idx, p), 20 * iters)
        print(
            f"{f'{b} x {f} x {c}':>24} {ops['linear']:>14} {ops['isomax+']:>12} {per_op['linear']:>13.1f} "
            f"{per_op['isomax+']:>14.1f} {t_index:>10.1f} {t_embed:>13.1f}"
        )


if __name__ == "__main__":
    main()
