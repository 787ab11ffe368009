"""Forward+backward time of the IsoMax+ head + loss vs ``nn.Linear`` + ``CrossEntropyLoss``.

Also the speed-up over the papers' code path (``torch.cdist(..., compute_mode=
"donot_use_mm_for_euclid_dist")`` + softmax then log). All ratios come from one run, with the
contenders interleaved so that machine load affects them alike.

    python benchmarks/bench_core.py [--threads 2] [--repeats 7]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import isomax

SHAPES = [(128, 342, 10, 2.5), (256, 512, 100, 2.0), (1024, 512, 1000, 1.5)]  # batch, features, classes, target ratio


class PapersHead(nn.Module):
    """The reference code path, transcribed for timing."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(num_classes, num_features))
        self.distance_scale = nn.Parameter(torch.ones(1))

    def forward(self, features):
        d = torch.cdist(F.normalize(features), F.normalize(self.prototypes), p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
        return -torch.abs(self.distance_scale) * d


def papers_loss(logits, targets, entropic_scale=10.0):
    p = torch.softmax(entropic_scale * logits, dim=1)
    return -torch.log(p[range(logits.shape[0]), targets]).mean()


def step_time(head, loss_fn, x, y, iters):
    for _ in range(3):  # warm-up
        loss_fn(head(x), y).backward()
    t0 = time.perf_counter()
    for _ in range(iters):
        head.zero_grad(set_to_none=True)
        x.grad = None
        loss_fn(head(x), y).backward()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="median over this many interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} rounds")
    print(f"{'batch x feat x classes':>24} {'linear+CE ms':>13} {'isomax+ ms':>11} {'papers ms':>10} {'isomax+/linear':>15} {'papers/isomax+':>15}")
    for b, f, c, target in SHAPES:
        x = torch.randn(b, f, requires_grad=True)
        y = torch.randint(0, c, (b,))
        linear, ce = nn.Linear(f, c), nn.CrossEntropyLoss()
        ours, ours_loss = isomax.IsoMaxPlusHead(f, c, validate_args=False), isomax.IsoMaxLoss(validate_args=False)
        papers = PapersHead(f, c)
        iters = max(5, int(2e8 / (b * f * c + 1e6)))
        rounds = {"linear": [], "ours": [], "papers": []}
        contenders = [("linear", linear, ce), ("ours", ours, ours_loss), ("papers", papers, papers_loss)]
        for r in range(args.repeats):
            for key, head, loss in contenders[r % 3:] + contenders[: r % 3]:  # rotated order
                rounds[key].append(step_time(head, loss, x, y, iters))
        med = {k: sorted(v)[len(v) // 2] for k, v in rounds.items()}
        r_lin, r_pap = med["ours"] / med["linear"], med["papers"] / med["ours"]
        print(
            f"{f'{b} x {f} x {c}':>24} {med['linear'] * 1e3:13.3f} {med['ours'] * 1e3:11.3f} {med['papers'] * 1e3:10.3f} "
            f"{r_lin:14.2f}x {r_pap:14.1f}x  (target isomax+/linear <= {target}x)"
        )


if __name__ == "__main__":
    main()
