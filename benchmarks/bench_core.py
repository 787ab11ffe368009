"""Forward+backward time of the IsoMax+ head + loss vs ``nn.Linear`` + ``CrossEntropyLoss``.

The head and loss are timed as users get them: default constructors (``validate_args=True``:
static checks plus the value checks that are free of a host sync, see ``isomax._validation``),
eager mode. Next to it, the same head + loss under ``torch.compile`` (inductor; compile time not
counted). Also the speed-up over the papers' code path (``torch.cdist(..., compute_mode=
"donot_use_mm_for_euclid_dist")`` + softmax then log). All ratios come from one run, with the
contenders interleaved so that machine load affects them alike.

    python benchmarks/bench_core.py [--threads 2] [--repeats 7] [--no-compile]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import isomax

SHAPES = [(128, 342, 10, 2.0), (256, 512, 100, 1.5), (1024, 512, 1000, 1.2)]  # batch, features, classes, target ratio


class PapersHead(nn.Module):
    """The reference code path, transcribed for timing."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(num_classes, num_features))
        self.distance_scale = nn.Parameter(torch.ones(1))

    def forward(self, features):
        d = torch.cdist(
            F.normalize(features), F.normalize(self.prototypes), p=2.0, compute_mode="donot_use_mm_for_euclid_dist"
        )
        return -torch.abs(self.distance_scale) * d


def papers_loss(logits, targets, entropic_scale=10.0):
    p = torch.softmax(entropic_scale * logits, dim=1)
    return -torch.log(p[range(logits.shape[0]), targets]).mean()


def step_time(params, loss_of, x, y, iters):
    """Seconds per forward+backward of ``loss_of(x, y)``."""
    for _ in range(3):  # warm-up
        loss_of(x, y).backward()
    t0 = time.perf_counter()
    for _ in range(iters):
        for p in params:
            p.grad = None
        x.grad = None
        loss_of(x, y).backward()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="median over this many interleaved rounds")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} interleaved rounds; "
        "isomax+ = IsoMaxPlusHead + IsoMaxLoss with default arguments (validation on), eager"
    )
    print(
        f"{'batch x feat x classes':>24} {'linear+CE ms':>13} {'isomax+ ms':>11} {'compiled ms':>12} {'papers ms':>10} "
        f"{'isomax+/linear':>15} {'compiled/linear':>16} {'papers/isomax+':>15}"
    )
    for b, f, c, target in SHAPES:
        x = torch.randn(b, f, requires_grad=True)
        y = torch.randint(0, c, (b,))
        linear, ce = nn.Linear(f, c), nn.CrossEntropyLoss()
        ours, ours_loss = isomax.IsoMaxPlusHead(f, c), isomax.IsoMaxLoss()  # as users get them
        papers = PapersHead(f, c)
        contenders = {
            "linear": (list(linear.parameters()), lambda x, y: ce(linear(x), y)),
            "ours": (list(ours.parameters()), lambda x, y: ours_loss(ours(x), y)),
            "papers": (list(papers.parameters()), lambda x, y: papers_loss(papers(x), y)),
        }
        if not args.no_compile:
            compiled = torch.compile(lambda x, y: ours_loss(ours(x), y), fullgraph=True)
            contenders["compiled"] = (list(ours.parameters()), compiled)
        iters = max(5, int(2e8 / (b * f * c + 1e6)))
        rounds = {k: [] for k in contenders}
        keys = list(contenders)
        for r in range(args.repeats):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:  # rotated order
                rounds[key].append(step_time(*contenders[key], x, y, iters))
        med = {k: sorted(v)[len(v) // 2] for k, v in rounds.items()}
        r_lin, r_pap = med["ours"] / med["linear"], med["papers"] / med["ours"]
        comp_ms = f"{med['compiled'] * 1e3:12.3f}" if "compiled" in med else f"{'-':>12}"
        comp_r = f"{med['compiled'] / med['linear']:15.2f}x" if "compiled" in med else f"{'-':>16}"
        print(
            f"{f'{b} x {f} x {c}':>24} {med['linear'] * 1e3:13.3f} {med['ours'] * 1e3:11.3f} {comp_ms} "
            f"{med['papers'] * 1e3:10.3f} "
            f"{r_lin:14.2f}x {comp_r} {r_pap:14.1f}x  (target isomax+/linear <= {target}x)"
        )


if __name__ == "__main__":
    main()
